/* Converts argv[1] (a float) to int: with 1e30 that overflows, which the
 * sanitizer build must catch (float-cast-overflow) and a plain build does not
 * check. ctest runs it both ways (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  volatile float x = argc > 1 ? strtof(argv[1], NULL) : 0.0f; /* not foldable */
  int i = (int)x;
  printf("converted without a sanitizer report (%d)\n", i);
  return 0;
}
