/* A ResNet-18 PSPNet saved by torch (tests/reference/gen_pth.py) in the zip
 * format under skd-cl's names and in the legacy format under the released
 * teacher's layout opens as a frozen network (the path of --teacher, eval
 * and predict) and gives PyTorch's eval-mode logits, and the same argmax on
 * every pixel. */
#include "reference_file.h"
#include "support.h"
#include "skd/nn/pspnet.h"
#include "skd/train.h"

static void run(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/pth/%s", ref_dir(), file);
  ref_file *ref = ref_open("pth/net.bin");
  const ref_array *x = ref_get(ref, "x"), *q = ref_get(ref, "q");
  skd_net_config arch = {.arch = "resnet18", .width = 0.05f};
  skd_pspnet *net = NULL;
  /* Classes 0: taken from head.bias, which the teacher layout has only
   * once head.1.* is renamed. */
  CK_OK(skd_pspnet_open_checkpoint(&net, T, path, &arch, 0, NULL, NULL));
  ck_assert_int_eq(net->cfg.classes, 5);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  skd_tensor image = dev_upload(x->data, x->dims[0], x->dims[1], x->dims[2], x->dims[3]);
  skd_pspnet_outputs o;
  CK_OK(skd_pspnet_forward(net, arena, &image, 0, 0, &o));
  ck_assert_uint_eq(skd_tensor_numel(&o.q), q->numel);
  float *got = dev_fetch(&o.q);
  double err = rel_error(got, q->data, q->numel);
  check_error("pth network", file, err, 1e-4);
  int classes = q->dims[1], pixels = q->dims[2] * q->dims[3], same = 0;
  for (int p = 0; p < pixels; p++) {
    int a = 0, b = 0;
    for (int c = 1; c < classes; c++) {
      if (got[c * pixels + p] > got[a * pixels + p]) a = c;
      if (q->data[c * pixels + p] > q->data[b * pixels + p]) b = c;
    }
    same += a == b;
  }
  printf("%s: logits relative error %.3g, argmax agrees on %d of %d pixels\n", file, err, same, pixels);
  ck_assert_int_eq(same, pixels);
  skd_arena_free(arena);
  skd_pspnet_free(net);
  ref_close(ref);
}

START_TEST(zip_current_layout) { run("net_zip.pth"); }
END_TEST

START_TEST(legacy_teacher_layout) { run("net_teacher_legacy.pth"); }
END_TEST

int main(void) {
  Suite *s = suite_create("pth_net");
  TCase *tc = support_tcase("pth_net");
  tcase_add_test(tc, zip_current_layout);
  tcase_add_test(tc, legacy_teacher_layout);
  suite_add_tcase(s, tc);
  return support_main(s);
}
