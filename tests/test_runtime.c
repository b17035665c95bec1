/* Runtime: device listing and choice, program build errors, the on-disk
 * kernel cache (hit, corrupt entry), allocation limits, the arena, the
 * workspace and profiling. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

START_TEST(devices_listed) {
  skd_device_info *list = NULL;
  int n = 0;
  CK_OK(skd_devices_list(&list, &n));
  ck_assert_int_ge(n, 1);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(list[i].index, i);
    ck_assert(list[i].name[0] != '\0');
    ck_assert(list[i].max_alloc_bytes > 0 && list[i].max_alloc_bytes <= list[i].global_mem_bytes);
    ck_assert(list[i].max_work_group_size >= 1);
  }
  free(list);
  ck_assert(T->info.name[0] != '\0');
}
END_TEST

START_TEST(bad_device_index) {
  int index = -1;
  ck_assert_int_eq(skd_device_choose(999, &index), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "'999' does not exist") != NULL, "%s", skd_error_last());
  ck_assert_msg(strstr(skd_error_last(), "0:") != NULL, "valid devices listed: %s", skd_error_last());
  setenv("SKD_DEVICE", "abc", 1);
  ck_assert_int_eq(skd_device_choose(-1, &index), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "SKD_DEVICE") != NULL, "%s", skd_error_last());
  /* An explicit index wins over the environment. */
  CK_OK(skd_device_choose(0, &index));
  ck_assert_int_eq(index, 0);
  unsetenv("SKD_DEVICE");
  skd_context_options opt;
  skd_context_options_default(&opt);
  opt.device_index = 999;
  skd_context *ctx = NULL;
  ck_assert_int_eq(skd_context_create(&ctx, &opt), SKD_EINVAL);
  ck_assert(ctx == NULL);
}
END_TEST

START_TEST(build_failure_reports_log) {
  skd_status st = skd_program_build_source(T, "broken", "__kernel void f(__global float *x) { x[0] = ; }\n");
  ck_assert_int_eq(st, SKD_EBUILD);
  ck_assert_msg(strstr(skd_error_last(), "cl/broken.cl") != NULL, "%s", skd_error_last());
  ck_assert_msg(strlen(skd_error_last()) > 60, "build log included: %s", skd_error_last());
  skd_kernel *k;
  ck_assert_int_eq(skd_kernel_get(T, "no_such_family", "x", &k), SKD_EINVAL);
  ck_assert_int_eq(skd_kernel_get(T, "elementwise", "no_such_kernel", &k), SKD_ECL);
  ck_assert_msg(strstr(skd_error_last(), "no_such_kernel") != NULL, "%s", skd_error_last());
}
END_TEST

static void make_temp_dir(char *buf, size_t size) {
  snprintf(buf, size, "/tmp/skd-cache-test-XXXXXX");
  ck_assert(mkdtemp(buf) != NULL);
}

static int first_entry(const char *dir, char *path, size_t size) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while ((e = readdir(d))) {
    if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp")) {
      snprintf(path, size, "%s/%s", dir, e->d_name);
      found = 1;
      break;
    }
  }
  closedir(d);
  return found;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    remove(path);
  }
  closedir(d);
  rmdir(dir);
}

static int fill_works(skd_context *ctx) {
  skd_tensor t;
  float h[5] = {0};
  if (skd_tensor_alloc(ctx, &t, 1, 1, 1, 5) != SKD_OK) return 0;
  int ok = skd_tensor_fill(ctx, &t, 2.5f) == SKD_OK && skd_tensor_download(ctx, &t, h) == SKD_OK && h[4] == 2.5f;
  skd_tensor_release(&t);
  return ok;
}

static skd_context *context_with_cache(const char *dir) {
  skd_context_options opt;
  skd_context_options_default(&opt);
  opt.cache_dir = dir;
  skd_context *ctx = NULL;
  CK_OK(skd_context_create(&ctx, &opt));
  skd_kernel *k;
  CK_OK(skd_kernel_get(ctx, "elementwise", "fill_fwd", &k));
  return ctx;
}

START_TEST(kernel_cache_hit_and_corruption) {
  char dir[64], entry[512];
  make_temp_dir(dir, sizeof dir);
  skd_context *a = context_with_cache(dir);
  ck_assert_int_eq(skd_context_last_build_from_cache(a), 0);
  ck_assert(fill_works(a));
  skd_context_free(a);
  ck_assert_msg(first_entry(dir, entry, sizeof entry), "no cache entry written in %s", dir);

  skd_context *b = context_with_cache(dir);
  ck_assert_int_eq(skd_context_last_build_from_cache(b), 1);
  ck_assert(fill_works(b));
  skd_context_free(b);

  /* Flip bytes in the middle of the binary: the checksum catches it, the
   * program is rebuilt from source, nothing crashes. */
  FILE *f = fopen(entry, "r+b");
  ck_assert(f != NULL);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size / 2, SEEK_SET);
  fputc(0x5a, f);
  fputc(0xa5, f);
  fclose(f);
  skd_context *c = context_with_cache(dir);
  ck_assert_int_eq(skd_context_last_build_from_cache(c), 0);
  ck_assert(fill_works(c));
  skd_context_free(c);

  /* A truncated entry (a crash mid-write elsewhere) is also a miss. */
  ck_assert_int_eq(truncate(entry, 20), 0);
  skd_context *d = context_with_cache(dir);
  ck_assert_int_eq(skd_context_last_build_from_cache(d), 0);
  ck_assert(fill_works(d));
  skd_context_free(d);

  /* Different build options are a different entry. */
  skd_context_options opt;
  skd_context_options_default(&opt);
  opt.cache_dir = dir;
  skd_context *e = NULL;
  CK_OK(skd_context_create(&e, &opt));
  CK_OK(skd_context_set_family_options(e, "elementwise", "-DWG_SIZE=64"));
  skd_kernel *k;
  CK_OK(skd_kernel_get(e, "elementwise", "fill_fwd", &k));
  ck_assert_int_eq(skd_context_last_build_from_cache(e), 0);
  ck_assert_int_eq(skd_context_set_family_options(e, "elementwise", "-DWG_SIZE=32"), SKD_EINVAL);
  skd_context_free(e);
  remove_dir(dir);
}
END_TEST

START_TEST(allocation_over_limit) {
  skd_tensor t;
  /* One float more than the largest allocation the device allows. */
  unsigned long long floats = T->info.max_alloc_bytes / 4 + 1;
  int w = 1 << 20;
  int h = (int)((floats + (unsigned long long)w - 1) / (unsigned long long)w);
  skd_status st = skd_tensor_alloc(T, &t, 1, 1, h, w);
  ck_assert_int_eq(st, SKD_ENOMEM);
  ck_assert_msg(strstr(skd_error_last(), "MAX_MEM_ALLOC_SIZE") != NULL || strstr(skd_error_last(), "2^31"),
                "%s", skd_error_last());
  ck_assert(t.mem == NULL);
  ck_assert_int_eq(skd_tensor_alloc(T, &t, 1, -1, 2, 2), SKD_EINVAL);
  cl_mem m = NULL;
  ck_assert_int_eq(skd_buffer_create(T, (size_t)T->info.max_alloc_bytes + 4096, "big thing", &m), SKD_ENOMEM);
  ck_assert_msg(strstr(skd_error_last(), "big thing") != NULL, "%s", skd_error_last());
}
END_TEST

START_TEST(arena_steady_state) {
  skd_arena *a = NULL;
  CK_OK(skd_arena_create(T, &a, 1 << 16));
  size_t align = T->info.base_addr_align_bytes >= 4 ? T->info.base_addr_align_bytes : 128;
  for (int step = 0; step < 3; step++) {
    skd_arena_reset(a);
    skd_tensor t[6];
    int sizes[6] = {7, 1000, 5, 40000, 3, 1}; /* 40000 floats exceed a chunk: gets its own */
    for (int i = 0; i < 6; i++) {
      CK_OK(skd_arena_tensor(a, &t[i], 1, 1, 1, sizes[i]));
      ck_assert_int_eq((t[i].offset * 4) % align, 0);
      CK_OK(skd_tensor_fill(T, &t[i], (float)i));
    }
    for (int i = 0; i < 6; i++) {
      float *h = dev_fetch(&t[i]);
      for (int j = 0; j < sizes[i]; j++) ck_assert_float_eq(h[j], (float)i);
    }
    if (step == 0) ck_assert_uint_ge(skd_arena_buffer_creations(a), 2);
  }
  unsigned long created = skd_arena_buffer_creations(a);
  skd_arena_reset(a);
  skd_tensor t;
  CK_OK(skd_arena_tensor(a, &t, 1, 1, 1, 7));
  ck_assert_uint_eq(skd_arena_buffer_creations(a), created);
  ck_assert(skd_arena_peak_bytes(a) >= (7 + 1000 + 5 + 40000 + 3 + 1) * 4);
  skd_arena_free(a);
}
END_TEST

START_TEST(workspace_reused) {
  cl_mem a, b, c;
  CK_OK(skd_workspace_get(T, 1000, &a));
  CK_OK(skd_workspace_get(T, 500, &b));
  ck_assert(a == b);
  CK_OK(skd_workspace_get(T, 5000, &c));
  CK_OK(skd_workspace_get(T, 5000, &b));
  ck_assert(c == b);
}
END_TEST

START_TEST(profiling_counts_kernels) {
  skd_context_options opt;
  skd_context_options_default(&opt);
  opt.profiling = 1;
  skd_context *ctx = NULL;
  CK_OK(skd_context_create(&ctx, &opt));
  skd_tensor t;
  CK_OK(skd_tensor_alloc(ctx, &t, 1, 2, 3, 4));
  for (int i = 0; i < 3; i++) CK_OK(skd_tensor_fill(ctx, &t, 1.0f));
  skd_profile_entry *e = NULL;
  int n = 0;
  CK_OK(skd_profile_summary(ctx, &e, &n));
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(e[0].name, "fill_fwd");
  ck_assert_uint_eq(e[0].calls, 3);
  ck_assert(e[0].total_ms >= 0.0);
  free(e);
  skd_tensor_release(&t);
  skd_context_free(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = support_tcase("runtime");
  tcase_add_test(tc, devices_listed);
  tcase_add_test(tc, bad_device_index);
  tcase_add_test(tc, build_failure_reports_log);
  tcase_add_test(tc, kernel_cache_hit_and_corruption);
  tcase_add_test(tc, allocation_over_limit);
  tcase_add_test(tc, arena_steady_state);
  tcase_add_test(tc, workspace_reused);
  tcase_add_test(tc, profiling_counts_kernels);
  suite_add_tcase(s, tc);
  return support_main(s);
}
