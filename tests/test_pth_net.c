/* A ResNet-18 PSPNet saved by torch (tests/reference/gen_pth.py) in the zip
 * format under skd-cl's names and in the legacy format under the released
 * teacher's layout opens as a frozen network (the path of --teacher, eval
 * and predict) and gives PyTorch's eval-mode logits, and the same argmax on
 * every pixel. */
#include "reference_file.h"
#include "support.h"
#include "skd/io/safetensors.h"
#include "skd/nn/init_from.h"
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

/* --init from a deep-stem backbone written by torch loads every backbone
 * tensor, value for value; torchvision's layout loads what fits; strict mode
 * refuses it and leaves the network as it was. */
static skd_pspnet *fresh_net(void) {
  skd_pspnet_config pc;
  skd_pspnet_config_default(&pc, 18, 8);
  pc.width = 0.05f;
  skd_pspnet *net = NULL;
  CK_OK(skd_pspnet_create(&net, T, &pc));
  return net;
}

static float *download(skd_pspnet *net, const char *name, size_t *n) {
  const skd_nn_entry *e = skd_nn_params_find(&net->params, name);
  ck_assert_msg(e != NULL, "%s", name);
  *n = skd_tensor_numel(&e->param.value);
  return dev_fetch(&e->param.value);
}

START_TEST(init_from_backbones) {
  char path[1024];
  snprintf(path, sizeof path, "%s/pth/deepstem_zip.pth", ref_dir());
  skd_pspnet *net = fresh_net();
  skd_init_report rep;
  CK_OK(skd_nn_params_init_from(&net->params, path, 1, &rep));
  printf("deep-stem: loaded %d, mismatched %d, missing %d (backbone %d), unused %d\n", rep.loaded, rep.mismatched,
         rep.missing, rep.missing_backbone, rep.unused);
  ck_assert_int_eq(rep.mismatched, 0);
  ck_assert_int_eq(rep.missing_backbone, 0);
  ck_assert_int_eq(rep.unused, 2); /* fc.weight, fc.bias */
  ck_assert_int_eq(rep.loaded + rep.missing, net->params.count);
  skd_safetensors *f = NULL;
  CK_OK(skd_safetensors_open(&f, path));
  int checked = 0;
  for (int i = 0; i < skd_safetensors_count(f); i++) {
    const skd_safetensors_entry *fe = skd_safetensors_entry_at(f, i);
    if (!skd_nn_params_find(&net->params, fe->name)) continue;
    size_t n;
    float *got = download(net, fe->name, &n), *want = malloc(n * sizeof *want);
    ck_assert_uint_eq(n, fe->numel);
    CK_OK(skd_safetensors_read_f32(f, i, want, n));
    ck_assert_msg(memcmp(got, want, n * sizeof *want) == 0, "%s differs", fe->name);
    free(want);
    checked++;
  }
  ck_assert_int_eq(checked, rep.loaded);
  skd_safetensors_close(f);
  skd_pspnet_free(net);

  snprintf(path, sizeof path, "%s/pth/torchvision_zip.pth", ref_dir());
  net = fresh_net();
  size_t n;
  float *before = download(net, "layer2.0.conv1.weight", &n);
  ck_assert_int_eq(skd_nn_params_init_from(&net->params, path, 1, &rep), SKD_EFORMAT);
  ck_assert(strstr(skd_error_last(), "conv1.weight") && strstr(skd_error_last(), "nothing was loaded"));
  ck_assert(memcmp(before, download(net, "layer2.0.conv1.weight", &n), n * sizeof *before) == 0);
  CK_OK(skd_nn_params_init_from(&net->params, path, 0, &rep));
  printf("torchvision: loaded %d, mismatched %d, missing %d (backbone %d), unused %d\n", rep.loaded,
         rep.mismatched, rep.missing, rep.missing_backbone, rep.unused);
  ck_assert_str_eq(rep.layout, "torchvision");
  ck_assert_int_eq(rep.mismatched, 2); /* the 7x7 conv1, layer1.0.conv1 (64 inputs, not 128) */
  ck_assert_int_eq(rep.missing_backbone, 15); /* conv2/bn2, conv3/bn3, layer1.0.downsample */
  ck_assert(memcmp(before, download(net, "layer2.0.conv1.weight", &n), n * sizeof *before) != 0);
  skd_pspnet_free(net);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pth_net");
  TCase *tc = support_tcase("pth_net");
  tcase_add_test(tc, zip_current_layout);
  tcase_add_test(tc, legacy_teacher_layout);
  tcase_add_test(tc, init_from_backbones);
  suite_add_tcase(s, tc);
  return support_main(s);
}
