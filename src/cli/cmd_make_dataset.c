/* skd-cl make-dataset --out DIR [--task seg|depth] [--seed S] [--size N] [--train N] [--val N] [--unlabeled N] */
#include <stdio.h>

#include "cli/args.h"
#include "cli/cli.h"

int cmd_make_dataset(const cli_globals *g, int argc, char **argv) {
  const char *out = NULL;
  uint64_t seed = 1;
  skd_demo_options opt;
  skd_demo_options_default(&opt);
  int size = opt.width, task = 0;
  static const char *const tasks[] = {"seg", "depth", NULL};
  const cli_arg args[] = {
      {"task", CLI_CHOICE, &task, "seg: the segmentation demo set; depth: synthetic rooms with 16-bit depth PNGs",
       0, 0, tasks, 0},
      {"out", CLI_STRING, &out, "directory to write train.txt, val.txt, images/ and labels/ into", 0, 0, NULL, 1},
      {"seed", CLI_U64, &seed, "random seed: the same seed writes the same files", 0, 0, NULL, 0},
      {"size", CLI_INT, &size, "image width and height in pixels", 32, 4096, NULL, 0},
      {"train", CLI_INT, &opt.train_count, "number of training images", 1, 1000000, NULL, 0},
      {"val", CLI_INT, &opt.val_count, "number of validation images", 1, 1000000, NULL, 0},
      {"unlabeled", CLI_INT, &opt.unlabeled_count,
       "number of extra images listed without labels in unlabeled.txt (for --unlabeled-list)", 0, 1000000, NULL, 0},
  };
  int rc = cli_parse("make-dataset", "--out DIR [options]", args, (int)(sizeof args / sizeof args[0]), argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  opt.width = opt.height = size;
  if (task == 1) {
    if (skd_depth_demo_write(out, seed, &opt) != SKD_OK) {
      fprintf(stderr, "skd-cl make-dataset: %s\n", skd_error_last());
      return 1;
    }
    printf("wrote %d training and %d validation images (%dx%d) with depth in millimetres to %s\n", opt.train_count,
           opt.val_count, size, size, out);
    return 0;
  }
  if (skd_demo_dataset_write(out, seed, &opt) != SKD_OK) {
    fprintf(stderr, "skd-cl make-dataset: %s\n", skd_error_last());
    return 1;
  }
  const char *const *names = skd_demo_class_names();
  printf("wrote %d training and %d validation images (%dx%d, %d classes:", opt.train_count, opt.val_count, size,
         size, SKD_DEMO_CLASSES);
  for (int c = 0; c < SKD_DEMO_CLASSES; c++) printf(" %s", names[c]);
  printf(") to %s\n", out);
  if (opt.unlabeled_count > 0) printf("and %d unlabeled images listed in %s/unlabeled.txt\n", opt.unlabeled_count, out);
  return 0;
}
