/* skd-cl export: a checkpoint's network as an ONNX model (skd/export.h,
 * docs/EXPORT.md), with the class names, palette, normalisation and run
 * configuration in its metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/model_open.h"

#ifndef SKD_VERSION
#define SKD_VERSION "unknown"
#endif

/* JSON arrays of the class names and the palette's colours; NULL on failure. */
static char *names_json(const skd_label_map *map, int classes) {
  cJSON *a = cJSON_CreateArray();
  for (int c = 0; a && c < classes; c++) {
    char fallback[32];
    snprintf(fallback, sizeof fallback, "class %d", c);
    cJSON_AddItemToArray(a,
                         cJSON_CreateString(map->class_names && map->class_names[c] ? map->class_names[c] : fallback));
  }
  char *s = a ? cJSON_PrintUnformatted(a) : NULL;
  cJSON_Delete(a);
  return s;
}

static char *palette_json(const skd_palette *p, int classes) {
  cJSON *a = cJSON_CreateArray();
  for (int c = 0; a && c < classes; c++) {
    const int rgb[3] = {p->rgb[c][0], p->rgb[c][1], p->rgb[c][2]};
    cJSON_AddItemToArray(a, cJSON_CreateIntArray(rgb, 3));
  }
  char *s = a ? cJSON_PrintUnformatted(a) : NULL;
  cJSON_Delete(a);
  return s;
}

int cmd_export(const cli_globals *g, int argc, char **argv) {
  cli_model m;
  int rc = cli_model_init(&m, "export", argc, argv);
  if (rc) return rc;
  skd_onnx_options o;
  skd_onnx_options_default(&o);
  const char *out = NULL;
  int softmax = 0, argmax = 0;
  cli_arg args[] = {
      {"checkpoint", CLI_STRING, &m.checkpoint, "network checkpoint (skd-cl's own, or a converted reference one)", 0, 0,
       NULL, 1},
      {"out", CLI_STRING, &out, "ONNX model to write (atomically; weights over 1.8 GiB go to OUT.data)", 0, 0, NULL, 1},
      {"height", CLI_INT, &o.height, "input height of the fixed-size model", 1, 16384, NULL, 0},
      {"width", CLI_INT, &o.width, "input width of the fixed-size model", 1, 16384, NULL, 0},
      {"dynamic", CLI_FLAG, &o.dynamic, "any input height and width (named dimensions) instead of --height/--width", 0,
       0, NULL, 0},
      {"opset", CLI_INT, &o.opset, "ONNX opset version (13 to 17)", 0, 0, NULL, 0},
      {"with-softmax", CLI_FLAG, &softmax, "output class probabilities (softmax over the classes) instead of logits", 0,
       0, NULL, 0},
      {"argmax", CLI_FLAG, &argmax, "output the class of each pixel (int64) instead of logits", 0, 0, NULL, 0},
      {"keep-batchnorm", CLI_FLAG, &o.keep_batchnorm,
       "BatchNormalization nodes instead of folding them into the convolutions", 0, 0, NULL, 0},
      {"bake-normalisation", CLI_FLAG, &o.bake_normalisation,
       "the model takes 0-255 RGB and normalises it itself (else it takes the normalised input; the metadata says how)",
       0, 0, NULL, 0},
      {"imagenet-norm", CLI_FLAG, &m.imagenet_norm,
       "RGB ImageNet mean/std instead of the reference's BGR mean subtraction (as trained)", 0, 0, NULL, 0},
      {"external-data", CLI_FLAG, &o.external_data, "weights in OUT.data beside the model even when small", 0, 0, NULL,
       0},
      {"arch", CLI_STRING, &m.arch,
       "network when the checkpoint records none: resnet18 | resnet34 | resnet50 | resnet101", 0, 0, NULL, 0},
      {"net-width", CLI_FLOAT, &m.width, "channel width multiplier, likewise (--width of eval and predict)", 0.01, 4,
       NULL, 0},
      {"classes", CLI_INT, &m.classes, "number of classes (0: the checkpoint's)", 0, 255, NULL, 0},
      {"preset", CLI_STRING, &m.preset,
       "label preset for the class names and palette in the metadata: demo | cityscapes | cityscapes-trainids | "
       "camvid | voc | generic",
       0, 0, NULL, 0},
  };
  rc = cli_parse("export", "--checkpoint CKPT --out MODEL.onnx [--height H --width W | --dynamic] [options]", args,
                 (int)(sizeof args / sizeof args[0]), argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  const int has_h = cli_find_option(argc, argv, "height") != NULL, has_w = cli_find_option(argc, argv, "width") != NULL;
  if (o.dynamic && (has_h || has_w)) {
    fprintf(stderr,
            "skd-cl export: --dynamic and --height/--width exclude each other (a dynamic model takes any size)\n");
    return 2;
  }
  if (has_h != has_w) {
    fprintf(stderr, "skd-cl export: give both --height and --width (or --dynamic)\n");
    return 2;
  }
  if (softmax && argmax) {
    fprintf(stderr, "skd-cl export: --with-softmax and --argmax exclude each other (one output)\n");
    return 2;
  }
  if (o.opset < SKD_ONNX_OPSET_MIN || o.opset > SKD_ONNX_OPSET_MAX) {
    fprintf(stderr, "skd-cl export: --opset %d is not supported: skd-cl writes opsets %d to %d\n", o.opset,
            SKD_ONNX_OPSET_MIN, SKD_ONNX_OPSET_MAX);
    return 2;
  }
  if (m.found && m.stored.task == SKD_TASK_DEPTH) { /* the graph would stop at the bins, labelled as classes */
    fprintf(stderr, "skd-cl export: %s is a --task depth network: exporting depth (bins -> depth in the graph) is not "
            "supported yet\n", m.checkpoint);
    return 2;
  }
  o.output = softmax ? SKD_ONNX_PROBABILITIES : argmax ? SKD_ONNX_LABELS : SKD_ONNX_LOGITS;
  if (m.imagenet_norm) skd_normalize_imagenet(&o.normalize);
  rc = cli_model_open(&m, "export", g);
  if (rc) return rc;

  skd_label_map map;
  skd_palette pal;
  if (skd_label_map_preset(&map, m.preset, m.classes) != SKD_OK ||
      skd_palette_preset(&pal, m.preset, m.classes) != SKD_OK) {
    fprintf(stderr, "skd-cl export: --preset %s: %s\n", m.preset, skd_error_last());
    cli_model_close(&m);
    return 2;
  }
  char *names = names_json(&map, m.classes), *colours = palette_json(&pal, m.classes), *config = NULL;
  if (m.found && skd_train_config_to_json(&m.stored, &config) != SKD_OK) config = NULL;
  skd_onnx_meta meta[6];
  int nm = 0;
  meta[nm++] = (skd_onnx_meta){"skd_cl.version", SKD_VERSION};
  meta[nm++] = (skd_onnx_meta){"skd_cl.checkpoint", m.checkpoint};
  meta[nm++] = (skd_onnx_meta){"skd_cl.preset", m.preset};
  if (names) meta[nm++] = (skd_onnx_meta){"skd_cl.class_names", names};
  if (colours) meta[nm++] = (skd_onnx_meta){"skd_cl.palette", colours};
  if (config) meta[nm++] = (skd_onnx_meta){"skd_cl.config", config};
  o.meta = meta;
  o.nmeta = nm;
  o.producer_version = SKD_VERSION;
  skd_status st =
      names && colours ? skd_onnx_export(m.net, &o, out) : skd_error(SKD_ENOMEM, "export: out of host memory");
  if (st != SKD_OK) {
    fprintf(stderr, "skd-cl export: %s\n", skd_error_last());
    rc = 1;
  } else {
    char what[128];
    cli_model_describe(&m, what, sizeof what);
    if (o.dynamic)
      printf("wrote %s: %s, any input size, opset %d\n", out, what, o.opset);
    else
      printf("wrote %s: %s, input %dx%d, opset %d\n", out, what, o.width, o.height, o.opset);
  }
  free(names);
  free(colours);
  free(config);
  cli_model_close(&m);
  return rc;
}
