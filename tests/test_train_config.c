/* The training configuration: defaults, validation messages, JSON round trip. */
#include "support.h"
#include "skd/train_config.h"

/* The defaults are the reference code's, except the three settings whose
 * effect the reference ties to the batch size or whose gradient it truncates
 * (the "skd" recipe); "reference" restores every distillation value. */
START_TEST(defaults_and_recipes) {
  skd_train_config c;
  skd_train_config_default(&c);
  ck_assert_float_eq(c.lambda_pi, 1.0f);
  ck_assert_int_eq(c.pixel_norm_mean, 1);
  ck_assert_int_eq(c.pair_detached_norm, 0);
  ck_assert_float_eq(c.lambda_pa, 1.0f);
  ck_assert_float_eq(c.lambda_d, 0.1f);
  ck_assert_float_eq(c.lambda_gp, 10.0f);
  ck_assert_float_eq(c.pair_pool_scale, 0.5f);
  ck_assert_int_eq(c.pair_window, -1);
  ck_assert_int_eq(c.distill_warmup, 0);
  ck_assert_float_eq(c.lr, 0.01f);
  ck_assert_float_eq(c.d_lr, 4e-4f);
  ck_assert_int_eq(c.crop, 512);
  ck_assert_int_eq(c.batch, 8);

  skd_train_config r = c;
  r.lr = 0.05f; /* not a distillation setting: a recipe leaves it */
  r.distill_warmup = 7;
  CK_OK(skd_train_config_recipe(&r, "reference"));
  ck_assert_float_eq(r.lambda_pi, 10.0f);
  ck_assert_int_eq(r.pixel_norm_mean, 0);
  ck_assert_int_eq(r.pair_detached_norm, 1);
  ck_assert_float_eq(r.lambda_pa, 1.0f);
  ck_assert_float_eq(r.lambda_d, 0.1f);
  ck_assert_int_eq(r.d_width, 64);
  ck_assert_int_eq(r.distill_warmup, 0);
  ck_assert_float_eq(r.lr, 0.05f);
  CK_OK(skd_train_config_recipe(&r, "skd"));
  r.lr = c.lr;
  ck_assert_mem_eq(&r, &c, sizeof c);
  ck_assert_int_eq(skd_train_config_recipe(&r, "paper"), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "unknown recipe 'paper'") != NULL, "%s", skd_error_last());

  /* A train list is the one thing without a default. */
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--train-list") != NULL, "%s", skd_error_last());
  snprintf(c.train_list, sizeof c.train_list, "train.txt");
  CK_OK(skd_train_config_validate(&c));
}
END_TEST

START_TEST(validation_names_the_option) {
  skd_train_config c;
  skd_train_config_default(&c);
  snprintf(c.train_list, sizeof c.train_list, "train.txt");
  c.batch = 0;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--batch") != NULL, "%s", skd_error_last());
  c.batch = 2;
  snprintf(c.student.arch, sizeof c.student.arch, "vgg16");
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "vgg16") != NULL, "%s", skd_error_last());
  snprintf(c.student.arch, sizeof c.student.arch, "resnet50");
  c.scale_min = 2.0f;
  c.scale_max = 1.0f;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  c.scale_min = 0.5f;
  c.tau = NAN;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--tau") != NULL, "%s", skd_error_last());
}
END_TEST

START_TEST(json_round_trip) {
  skd_train_config a, b;
  skd_train_config_default(&a);
  snprintf(a.train_list, sizeof a.train_list, "some/list with space.txt");
  snprintf(a.teacher_path, sizeof a.teacher_path, "t.safetensors");
  a.seed = 18446744073709551615ULL; /* survives: stored as a string */
  a.tau = 2.5f;
  a.pair_window = 3;
  a.adv = SKD_ADV_HINGE;
  a.pixel_norm_mean = 1;
  a.holistic = 0;
  char *json = NULL;
  CK_OK(skd_train_config_to_json(&a, &json));
  skd_train_config_default(&b);
  CK_OK(skd_train_config_from_json(&b, json, "test"));
  ck_assert_mem_eq(&a, &b, sizeof a);
  free(json);
}
END_TEST

START_TEST(json_errors_name_the_field) {
  skd_train_config c, before;
  skd_train_config_default(&c);
  before = c;
  ck_assert_int_eq(skd_train_config_from_json(&c, "[1,2]", "ckpt.safetensors"), SKD_EFORMAT);
  ck_assert_int_eq(skd_train_config_from_json(&c, "{\"batch\": 2.5}", "ckpt.safetensors"), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "ckpt.safetensors") && strstr(skd_error_last(), "config.batch:"), "%s",
                skd_error_last());
  ck_assert_int_eq(skd_train_config_from_json(&c, "{\"crop\": 64, \"adv\": \"lsgan\"}", "x"), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "config.adv:") != NULL, "%s", skd_error_last());
  /* A failed parse changes nothing. */
  ck_assert_mem_eq(&c, &before, sizeof c);
  CK_OK(skd_train_config_from_json(&c, "{\"crop\": 64}", "x"));
  ck_assert_int_eq(c.crop, 64);
}
END_TEST

/* Stored values get the options' range checks, and the error names the file
 * and the field, not an option the user never gave. */
START_TEST(json_values_are_range_checked) {
  static const struct {
    const char *json, *expect;
  } cases[] = {
      {"{\"arch\": \"resnet999\"}", "run.safetensors: __metadata__ config.arch: unknown network 'resnet999'"},
      {"{\"teacher-arch\": \"vgg\"}", "run.safetensors: __metadata__ config.teacher-arch: unknown network 'vgg'"},
      {"{\"crop\": 1e30}", "run.safetensors: __metadata__ config.crop: 1e+30 is outside [16, 8192]"},
      {"{\"batch\": -3}", "run.safetensors: __metadata__ config.batch: -3 is outside [2, 4096]"},
      {"{\"classes\": 1e12}", "run.safetensors: __metadata__ config.classes: 1e+12 is outside [0, 255]"},
      {"{\"lr\": 1e300}", "run.safetensors: __metadata__ config.lr: 1e+300 is outside [0, 10]"},
      {"{\"width\": 0}", "run.safetensors: __metadata__ config.width: 0 is outside [0.01, 4]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    skd_train_config c, before;
    skd_train_config_default(&c);
    before = c;
    ck_assert_int_eq(skd_train_config_from_json(&c, cases[i].json, "run.safetensors"), SKD_EFORMAT);
    ck_assert_msg(strstr(skd_error_last(), cases[i].expect) != NULL, "%s: got '%s'", cases[i].json, skd_error_last());
    ck_assert_mem_eq(&c, &before, sizeof c);
  }
}
END_TEST

/* A float at the bottom of its range (--width 0.01 is stored as 0.0099999998f)
 * validates, prints and reads back (found by tests/fuzz/fuzz_config.c). */
START_TEST(float_bounds_round_trip) {
  skd_train_config c, back;
  skd_train_config_default(&c);
  CK_OK(skd_train_config_from_json(&c, "{\"width\": 0.01, \"tau\": 0.01, \"train-list\": \"t.txt\"}", "a"));
  CK_OK(skd_train_config_validate(&c));
  char *json = NULL;
  CK_OK(skd_train_config_to_json(&c, &json));
  skd_train_config_default(&back);
  CK_OK(skd_train_config_from_json(&back, json, "b"));
  free(json);
  ck_assert(back.student.width == c.student.width && back.tau == c.tau);
  /* Just below the bound in float is still refused. */
  ck_assert_int_eq(skd_train_config_from_json(&c, "{\"width\": 0.0099999}", "c"), SKD_EFORMAT);
}
END_TEST

/* Depth settings: defaults, option checks, stored-config checks, and a
 * stored configuration without them (older checkpoints) reads as
 * segmentation. */
START_TEST(depth_fields) {
  skd_train_config c;
  skd_train_config_default(&c);
  ck_assert_int_eq(c.task, SKD_TASK_SEG);
  ck_assert_int_eq(c.depth_bins, 60);
  ck_assert_float_eq(c.depth_min, 0.5f);
  ck_assert_float_eq(c.depth_max, 10.0f);
  ck_assert_float_eq(c.depth_scale, 1000.0f);
  ck_assert_int_eq(c.d_input_depth, 0);
  snprintf(c.train_list, sizeof c.train_list, "train.txt");
  c.task = SKD_TASK_DEPTH;
  CK_OK(skd_train_config_validate(&c));
  c.depth_bins = 1;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--depth-bins: 1 is outside [2, 255]"), "%s", skd_error_last());
  c.depth_bins = 150;
  c.depth_max = 0.4f;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--depth-max 0.4"), "%s", skd_error_last());
  c.depth_max = 10.0f;
  c.pixel_mask_ignore = 1;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--pixel-mask"), "%s", skd_error_last());
  c.pixel_mask_ignore = 0;
  c.d_input_depth = 1;
  c.d_conditional = 1;
  ck_assert_int_eq(skd_train_config_validate(&c), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--d-input depth"), "%s", skd_error_last());

  skd_train_config d;
  skd_train_config_default(&d);
  CK_OK(skd_train_config_from_json(&d, "{\"task\": \"depth\", \"depth-bins\": 150, \"d-input\": \"depth\"}", "x"));
  ck_assert(d.task == SKD_TASK_DEPTH && d.depth_bins == 150 && d.d_input_depth == 1);
  /* Older checkpoints: no task field -> segmentation. */
  skd_train_config_default(&d);
  CK_OK(skd_train_config_from_json(&d, "{\"crop\": 64}", "x"));
  ck_assert_int_eq(d.task, SKD_TASK_SEG);
  static const struct {
    const char *json, *expect;
  } bad[] = {
      {"{\"depth-bins\": 1e12}", "run.safetensors: __metadata__ config.depth-bins: 1e+12 is outside [2, 255]"},
      {"{\"depth-min\": -1}", "run.safetensors: __metadata__ config.depth-min: -1 is outside [0.001, 1000]"},
      {"{\"depth-scale\": 1e300}", "run.safetensors: __metadata__ config.depth-scale: 1e+300 is outside"},
      {"{\"task\": \"detect\"}", "run.safetensors: __metadata__ config.task: expected one of its choices"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    skd_train_config_default(&d);
    ck_assert_int_eq(skd_train_config_from_json(&d, bad[i].json, "run.safetensors"), SKD_EFORMAT);
    ck_assert_msg(strstr(skd_error_last(), bad[i].expect) != NULL, "%s: got '%s'", bad[i].json, skd_error_last());
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_config");
  TCase *tc = support_tcase_host("train_config");
  tcase_add_test(tc, defaults_and_recipes);
  tcase_add_test(tc, validation_names_the_option);
  tcase_add_test(tc, json_round_trip);
  tcase_add_test(tc, json_errors_name_the_field);
  tcase_add_test(tc, json_values_are_range_checked);
  tcase_add_test(tc, float_bounds_round_trip);
  tcase_add_test(tc, depth_fields);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
