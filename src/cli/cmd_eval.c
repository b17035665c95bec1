/* skd-cl eval: a checkpoint's metrics on a labelled list (per-class IoU,
 * mIoU, pixel and mean accuracy, the reference code's mIoU), as a table or
 * one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/model_open.h"

static void progress(void *user, int done, int total) {
  (void)user;
  fprintf(stderr, "\r\033[K%d/%d images", done, total);
  if (done == total) fprintf(stderr, "\r\033[K");
  fflush(stderr);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* NaN (an undefined metric) becomes null. */
static void add_number(cJSON *o, const char *name, double v) {
  if (v != v) cJSON_AddNullToObject(o, name);
  else cJSON_AddNumberToObject(o, name, v);
}

static int print_json(const cli_model *m, const char *list, int images, const skd_metrics *r,
                      const char *const *names, double seconds) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return 0;
  cJSON_AddStringToObject(o, "checkpoint", m->checkpoint);
  cJSON_AddStringToObject(o, "list", list);
  cJSON_AddStringToObject(o, "arch", m->arch);
  cJSON_AddNumberToObject(o, "width", m->width);
  cJSON_AddStringToObject(o, "preset", m->preset);
  cJSON_AddNumberToObject(o, "classes", r->classes);
  cJSON_AddNumberToObject(o, "images", images);
  cJSON_AddNumberToObject(o, "crop", m->crop);
  cJSON_AddBoolToObject(o, "flip", m->flip);
  add_number(o, "mean_iou", r->mean_iou);
  add_number(o, "mean_iou_reference", r->mean_iou_reference);
  add_number(o, "pixel_accuracy", r->pixel_accuracy);
  add_number(o, "mean_accuracy", r->mean_accuracy);
  cJSON_AddNumberToObject(o, "present_classes", r->present);
  cJSON_AddNumberToObject(o, "pixels", (double)r->pixels);
  cJSON_AddNumberToObject(o, "ignored", (double)r->ignored);
  cJSON_AddNumberToObject(o, "seconds", seconds);
  cJSON *arr = cJSON_AddArrayToObject(o, "per_class");
  for (int c = 0; arr && c < r->classes; c++) {
    cJSON *k = cJSON_CreateObject();
    char fallback[32];
    snprintf(fallback, sizeof fallback, "class %d", c);
    cJSON_AddStringToObject(k, "name", names && names[c] ? names[c] : fallback);
    add_number(k, "iou", r->iou[c]);
    add_number(k, "accuracy", r->accuracy[c]);
    cJSON_AddNumberToObject(k, "label_pixels", (double)r->label_pixels[c]);
    cJSON_AddNumberToObject(k, "predicted_pixels", (double)r->predicted_pixels[c]);
    cJSON_AddItemToArray(arr, k);
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) return 0;
  puts(text);
  free(text);
  return 1;
}

static void add_depth_metrics(cJSON *o, const skd_depth_metrics *r) {
  add_number(o, "abs_rel", r->abs_rel);
  add_number(o, "sq_rel", r->sq_rel);
  add_number(o, "rms", r->rms);
  add_number(o, "rms_log", r->rms_log);
  add_number(o, "log10", r->log10);
  add_number(o, "delta1", r->delta[0]);
  add_number(o, "delta2", r->delta[1]);
  add_number(o, "delta3", r->delta[2]);
  cJSON_AddNumberToObject(o, "pixels", (double)r->pixels);
  cJSON_AddNumberToObject(o, "missing", (double)r->missing);
}

/* --task depth: the depth metrics of a depth list, table or JSON. */
static int eval_depth(cli_model *m, const char *list, int json) {
  skd_label_map map;
  skd_dataset *ds = NULL;
  skd_eval_options opt;
  cli_model_eval_options(m, &opt);
  skd_depth_bins bins = cli_model_depth_bins(m);
  skd_depth_acc acc;
  skd_depth_acc_reset(&acc);
  skd_depth_metrics r;
  int terminal = isatty(fileno(stderr));
  double t0 = now_seconds();
  skd_status st = skd_label_map_preset(&map, "generic", 255); /* lists only: the second column is read as depth */
  if (st == SKD_OK) st = skd_dataset_open(&ds, list, m->data_dir, &map);
  if (st == SKD_OK) cli_warn_duplicates(ds, "eval");
  if (st == SKD_OK)
    st = skd_evaluate_depth(m->net, m->arena, ds, &opt, &bins, m->depth_scale, &acc, terminal ? progress : NULL, NULL);
  double seconds = now_seconds() - t0;
  int rc = 0;
  if (st != SKD_OK) {
    fprintf(stderr, "%sskd-cl eval: %s\n", terminal ? "\r\033[K" : "", skd_error_last());
    skd_dataset_free(ds);
    return 1;
  }
  skd_depth_metrics_compute(&acc, &r);
  if (json) {
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o) {
      cJSON_AddStringToObject(o, "checkpoint", m->checkpoint);
      cJSON_AddStringToObject(o, "list", list);
      cJSON_AddStringToObject(o, "task", "depth");
      cJSON_AddStringToObject(o, "arch", m->arch);
      cJSON_AddNumberToObject(o, "width", m->width);
      cJSON_AddNumberToObject(o, "depth_bins", bins.bins);
      cJSON_AddNumberToObject(o, "depth_min", bins.d_min);
      cJSON_AddNumberToObject(o, "depth_max", bins.d_max);
      cJSON_AddNumberToObject(o, "images", skd_dataset_size(ds));
      cJSON_AddNumberToObject(o, "crop", m->crop);
      cJSON_AddBoolToObject(o, "flip", m->flip);
      add_depth_metrics(o, &r);
      cJSON_AddNumberToObject(o, "seconds", seconds);
      text = cJSON_Print(o);
      cJSON_Delete(o);
    }
    if (text) puts(text);
    else fprintf(stderr, "skd-cl eval: out of memory for the JSON output\n"), rc = 1;
    free(text);
  } else {
    char table[1024];
    skd_depth_metrics_format(&r, table, sizeof table);
    printf("%s (%s x%g, %d depth bins over %g..%g m) on %d images of %s, %s%s, %.1f s\n\n%s", m->checkpoint, m->arch,
           (double)m->width, bins.bins, (double)bins.d_min, (double)bins.d_max, skd_dataset_size(ds), list,
           m->crop > 0 ? "sliding windows" : "whole images", m->flip ? " + flip" : "", seconds, table);
  }
  skd_dataset_free(ds);
  return rc;
}

int cmd_eval(const cli_globals *g, int argc, char **argv) {
  cli_model m;
  int rc = cli_model_init(&m, "eval", argc, argv);
  if (rc) return rc;
  const char *list = NULL;
  int json = 0;
  cli_arg args[CLI_MODEL_ARGS + CLI_MODEL_DEPTH_ARGS + 2];
  int n = 0;
  args[n++] = (cli_arg){"list", CLI_STRING, &list,
                        "labelled list: 'image_path label_path' per line ('image_path depth_path' with --task depth)",
                        0, 0, NULL, 1};
  n += cli_model_args(&m, args + n, 1);
  n += cli_model_depth_args(&m, args + n);
  args[n++] = (cli_arg){"json", CLI_FLAG, &json, "print one JSON object instead of the table", 0, 0, NULL, 0};
  rc = cli_parse("eval", "--checkpoint CKPT --list LIST [options]", args, n, argc, argv);
  if (rc) return rc == 1 ? 0 : rc;

  rc = cli_model_open(&m, "eval", g);
  if (rc) return rc;
  if ((rc = cli_model_depth_check(&m, "eval")) != 0 || m.task == SKD_TASK_DEPTH) {
    if (!rc) rc = eval_depth(&m, list, json);
    cli_model_close(&m);
    return rc;
  }
  skd_label_map map;
  skd_dataset *ds = NULL;
  skd_confusion conf = {0};
  skd_metrics r;
  if (skd_label_map_preset(&map, m.preset, m.classes) != SKD_OK) {
    fprintf(stderr, "skd-cl eval: --preset %s: %s\n", m.preset, skd_error_last());
    cli_model_close(&m);
    return 2;
  }
  skd_eval_options opt;
  cli_model_eval_options(&m, &opt);
  int terminal = isatty(fileno(stderr));
  double t0 = now_seconds();
  skd_status st = skd_dataset_open(&ds, list, m.data_dir, &map);
  if (st == SKD_OK) cli_warn_duplicates(ds, "eval");
  if (st == SKD_OK) st = skd_confusion_init(&conf, m.classes);
  if (st == SKD_OK) st = skd_evaluate(m.net, m.arena, ds, &opt, &conf, terminal ? progress : NULL, NULL);
  if (st == SKD_OK) st = skd_metrics_compute(&conf, &r);
  double seconds = now_seconds() - t0;
  if (st != SKD_OK) {
    fprintf(stderr, "%sskd-cl eval: %s\n", terminal ? "\r\033[K" : "", skd_error_last());
    rc = 1;
  } else if (json) {
    rc = print_json(&m, list, skd_dataset_size(ds), &r, map.class_names, seconds) ? 0 : 1;
    if (rc) fprintf(stderr, "skd-cl eval: out of memory for the JSON output\n");
  } else {
    char what[128];
    cli_model_describe(&m, what, sizeof what);
    char how[64];
    if (m.crop > 0) snprintf(how, sizeof how, "sliding windows of %dx%d", m.crop, m.crop);
    else snprintf(how, sizeof how, "whole images");
    printf("%s (%s) on %d images of %s, %s%s, %.1f s\n\n", m.checkpoint, what, skd_dataset_size(ds), list, how,
           m.flip ? " + flip" : "", seconds);
    size_t len = skd_metrics_format(&r, map.class_names, NULL, 0);
    char *text = malloc(len + 1);
    if (text) {
      skd_metrics_format(&r, map.class_names, text, len + 1);
      fputs(text, stdout);
      free(text);
    } else {
      fprintf(stderr, "skd-cl eval: out of memory for the table\n");
      rc = 1;
    }
  }
  skd_confusion_free(&conf);
  skd_dataset_free(ds);
  cli_model_close(&m);
  return rc;
}
