/* skd-cl predict: colour PNGs of a checkpoint's predicted classes (or their
 * blend over the image) for a list of images or images named on the command
 * line, DIR/<name>.png for each. Every input is checked (readable, distinct
 * output names) before the device is touched; each PNG is written atomically,
 * so a failure leaves no partial file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/model_open.h"
#include "skd/io/fs.h"

typedef struct inputs {
  int n, cap;
  char **path; /* as opened */
  char **name; /* output file name: the base name without its extension, + ".png" */
  int *line;   /* list-file line, 0 for a command-line operand */
} inputs;

static void inputs_free(inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->path[i]), free(in->name[i]);
  free(in->path);
  free(in->name);
  free(in->line);
}

static char *join_path(const char *dir, const char *rel) {
  size_t a = dir && rel[0] != '/' ? strlen(dir) : 0, b = strlen(rel);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  if (a) {
    memcpy(p, dir, a);
    if (dir[a - 1] != '/') p[a++] = '/';
  }
  memcpy(p + a, rel, b + 1);
  return p;
}

static char *output_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  char *p = malloc(len + 5);
  if (!p) return NULL;
  memcpy(p, base, len);
  memcpy(p + len, ".png", 5);
  return p;
}

/* 0, or 1 after printing the error. */
static int add_input(inputs *in, const char *dir, const char *rel, int line) {
  if (in->n == in->cap) {
    int cap = in->cap ? 2 * in->cap : 64;
    char **p = realloc(in->path, (size_t)cap * sizeof *p);
    if (p) in->path = p;
    char **q = realloc(in->name, (size_t)cap * sizeof *q);
    if (q) in->name = q;
    int *l = realloc(in->line, (size_t)cap * sizeof *l);
    if (l) in->line = l;
    if (!p || !q || !l) {
      fprintf(stderr, "skd-cl predict: out of host memory\n");
      return 1;
    }
    in->cap = cap;
  }
  char *path = join_path(dir, rel), *name = path ? output_name(path) : NULL;
  if (!path || !name) {
    free(path);
    fprintf(stderr, "skd-cl predict: out of host memory\n");
    return 1;
  }
  in->path[in->n] = path;
  in->name[in->n] = name;
  in->line[in->n] = line;
  in->n++;
  return 0;
}

/* Lines of a list: the image path first ("image_path [label_path]", as the
 * training and evaluation lists), blank lines and '#' comments skipped. */
static int read_list(inputs *in, const char *list, const char *data_dir) {
  FILE *f = fopen(list, "r");
  if (!f) {
    fprintf(stderr, "skd-cl predict: cannot open list file '%s': %s\n", list, strerror(errno));
    return 1;
  }
  char *dir = NULL;
  if (data_dir) {
    dir = strdup(data_dir);
  } else {
    const char *slash = strrchr(list, '/');
    dir = slash ? strndup(list, slash == list ? 1 : (size_t)(slash - list)) : strdup(".");
  }
  char *buf = NULL;
  size_t cap = 0;
  int line = 0, rc = dir ? 0 : 1;
  while (!rc && getline(&buf, &cap, f) >= 0) {
    line++;
    char *save = NULL, *first = strtok_r(buf, " \t\r\n\v\f", &save);
    if (!first || first[0] == '#') continue;
    rc = add_input(in, dir, first, line);
  }
  if (!rc && ferror(f)) {
    fprintf(stderr, "skd-cl predict: %s: read error after line %d\n", list, line);
    rc = 1;
  }
  free(buf);
  free(dir);
  fclose(f);
  return rc;
}

static const char *where(const inputs *in, int i, const char *list, char *buf, size_t size) {
  if (in->line[i]) snprintf(buf, size, "%s:%d: ", list, in->line[i]);
  else buf[0] = '\0';
  return buf;
}

typedef struct named {
  const char *name;
  int index;
} named;

static int compare_names(const void *a, const void *b) {
  const named *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : x->index - y->index;
}

/* Every input readable, and no two writing the same output file. */
static int check_inputs(const inputs *in, const char *list) {
  char at[64 + SKD_PATH_MAX];
  for (int i = 0; i < in->n; i++) {
    if (access(in->path[i], R_OK) != 0) {
      int e = errno;
      fprintf(stderr, "skd-cl predict: %scannot read image '%s': %s\n", where(in, i, list, at, sizeof at),
              in->path[i], strerror(e));
      return 1;
    }
  }
  if (in->n < 2) return 0;
  named *order = malloc((size_t)in->n * sizeof *order);
  if (!order) return 1;
  for (int i = 0; i < in->n; i++) order[i] = (named){in->name[i], i};
  qsort(order, (size_t)in->n, sizeof *order, compare_names);
  for (int k = 1; k < in->n; k++) {
    if (strcmp(order[k - 1].name, order[k].name)) continue;
    fprintf(stderr, "skd-cl predict: images '%s' and '%s' would both be written to %s\n",
            in->path[order[k - 1].index], in->path[order[k].index], order[k].name);
    free(order);
    return 1;
  }
  free(order);
  return 0;
}

typedef struct buffers {
  size_t pixels;
  float *image;
  uint8_t *ids, *out;
  float *logits;
  size_t logits_cap; /* floats */
} buffers;

/* The logits (C, H, W) as raw little-endian float32 at path (atomic). */
static skd_status write_logits(cli_model *m, const skd_tensor *logits, const char *path, buffers *b) {
  size_t n = skd_tensor_numel(logits);
  if (n > b->logits_cap) {
    free(b->logits);
    b->logits = malloc(n * sizeof *b->logits);
    b->logits_cap = b->logits ? n : 0;
    if (!b->logits) return skd_error(SKD_ENOMEM, "out of host memory for the logits of %s", path);
  }
  skd_status st = skd_tensor_download(m->ctx, logits, b->logits);
  if (st == SKD_OK) st = skd_write_file_atomic(path, b->logits, n * sizeof *b->logits);
  return st;
}

static skd_status predict_one(cli_model *m, const skd_eval_options *opt, const skd_palette *pal, int overlay,
                              float alpha, const char *in_path, const char *out_path, const char *logits_path,
                              buffers *b) {
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  skd_status st = skd_image_read(in_path, &rgb, &h, &w);
  if (st != SKD_OK) return st;
  size_t pixels = (size_t)h * (size_t)w;
  if (pixels > b->pixels) {
    free(b->image), free(b->ids), free(b->out);
    b->image = malloc(3 * pixels * sizeof *b->image);
    b->ids = malloc(pixels);
    b->out = malloc(3 * pixels);
    b->pixels = b->image && b->ids && b->out ? pixels : 0;
    if (!b->pixels) {
      free(rgb);
      return skd_error(SKD_ENOMEM, "out of host memory for the %dx%d image '%s'", w, h, in_path);
    }
  }
  skd_sample s = {h, w, rgb, NULL, NULL};
  skd_normalize_sample(&s, &opt->normalize, b->image, NULL);
  skd_arena_reset(m->arena);
  skd_tensor x, logits;
  st = skd_arena_tensor(m->arena, &x, 1, 3, h, w);
  if (st == SKD_OK) st = skd_tensor_upload(m->ctx, &x, b->image);
  if (st == SKD_OK) st = skd_predict_logits(m->net, m->arena, &x, opt, &logits);
  if (st == SKD_OK) st = skd_argmax_download_u8(m->ctx, &logits, b->ids);
  if (st == SKD_OK && logits_path) st = write_logits(m, &logits, logits_path, b);
  if (st != SKD_OK) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    st = skd_error(st, "%s (%dx%d): %s", in_path, w, h, msg);
  }
  if (st == SKD_OK)
    st = overlay ? skd_palette_overlay(pal, b->ids, rgb, h, w, alpha, b->out)
                 : skd_palette_colorize(pal, b->ids, h, w, b->out);
  if (st == SKD_OK) st = skd_png_write(out_path, b->out, w, h, 3);
  free(rgb);
  return st;
}

/* --task depth: <name>.png, the depth colour-mapped (near bright), and
 * <name>_depth.png, the metric depth as a 16-bit PNG in 1/depth_scale m. */
static skd_status predict_depth_one(cli_model *m, const skd_eval_options *opt, const char *in_path,
                                    const char *out_path, buffers *b) {
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  skd_status st = skd_image_read(in_path, &rgb, &h, &w);
  if (st != SKD_OK) return st;
  const size_t pixels = (size_t)h * (size_t)w;
  float *image = malloc(3 * pixels * sizeof *image), *depth = malloc(pixels * sizeof *depth);
  uint8_t *colour = malloc(3 * pixels);
  char *dpath = malloc(strlen(out_path) + 8);
  if (!image || !depth || !colour || !dpath) st = skd_error(SKD_ENOMEM, "out of host memory for '%s'", in_path);
  skd_sample s = {h, w, rgb, NULL, NULL};
  skd_tensor x, d;
  skd_depth_bins bins = cli_model_depth_bins(m);
  if (st == SKD_OK) {
    skd_normalize_sample(&s, &opt->normalize, image, NULL);
    skd_arena_reset(m->arena);
    st = skd_arena_tensor(m->arena, &x, 1, 3, h, w);
  }
  if (st == SKD_OK) st = skd_tensor_upload(m->ctx, &x, image);
  if (st == SKD_OK) st = skd_predict_depth(m->net, m->arena, &x, opt, &bins, &d);
  if (st == SKD_OK) st = skd_tensor_download(m->ctx, &d, depth);
  if (st != SKD_OK) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    st = skd_error(st, "%s (%dx%d): %s", in_path, w, h, msg);
  }
  if (st == SKD_OK) {
    skd_depth_colourise(depth, w, h, bins.d_min, bins.d_max, colour);
    st = skd_png_write(out_path, colour, w, h, 3);
  }
  if (st == SKD_OK) {
    strcpy(dpath, out_path);
    strcpy(dpath + strlen(dpath) - 4, "_depth.png"); /* in place of ".png" */
    st = skd_depth_png_write(dpath, depth, w, h, m->depth_scale);
  }
  (void)b;
  free(rgb), free(image), free(depth), free(colour), free(dpath);
  return st;
}

int cmd_predict(const cli_globals *g, int argc, char **argv) {
  cli_model m;
  int rc = cli_model_init(&m, "predict", argc, argv);
  if (rc) return rc;
  const char *out = NULL, *list = NULL;
  int overlay = 0, raw_logits = 0;
  float alpha = 0.5f;
  cli_arg args[CLI_MODEL_ARGS + CLI_MODEL_DEPTH_ARGS + 5];
  int n = 0;
  args[n++] = (cli_arg){"out", CLI_STRING, &out, "directory to write <name>.png into (created)", 0, 0, NULL, 1};
  args[n++] = (cli_arg){"list", CLI_STRING, &list,
                        "list of images, the first path of each line (a training or evaluation list works)", 0, 0,
                        NULL, 0};
  n += cli_model_args(&m, args + n, 1);
  n += cli_model_depth_args(&m, args + n);
  args[n++] = (cli_arg){"overlay", CLI_FLAG, &overlay, "blend the colours over the image", 0, 0, NULL, 0};
  args[n++] = (cli_arg){"alpha", CLI_FLOAT, &alpha, "weight of the colours in the overlay", 0, 1, NULL, 0};
  args[n++] = (cli_arg){"logits", CLI_FLAG, &raw_logits,
                        "also write DIR/<name>.f32: the logits (classes, H, W) as raw little-endian float32", 0, 0,
                        NULL, 0};
  char **operands = calloc((size_t)argc + 1, sizeof *operands);
  int noperands = 0;
  if (!operands) return 1;
  rc = cli_parse_operands("predict", "--checkpoint CKPT --out DIR (--list LIST | IMAGE...) [options]", args, n, argc,
                          argv, operands, &noperands);
  if (rc) {
    free(operands);
    return rc == 1 ? 0 : rc;
  }

  inputs in = {0};
  if (list) rc = read_list(&in, list, m.data_dir);
  for (int i = 0; !rc && i < noperands; i++) rc = add_input(&in, NULL, operands[i], 0);
  free(operands);
  if (!rc && in.n == 0) {
    fprintf(stderr, "skd-cl predict: no images: give --list LIST or image paths (see 'skd-cl predict --help')\n");
    rc = 2;
  }
  if (!rc) rc = check_inputs(&in, list);
  if (!rc && skd_make_dirs(out, "--out") != SKD_OK) {
    fprintf(stderr, "skd-cl predict: %s\n", skd_error_last());
    rc = 1;
  }
  if (!rc) rc = cli_model_open(&m, "predict", g);
  if (rc) {
    inputs_free(&in);
    return rc;
  }
  if ((rc = cli_model_depth_check(&m, "predict")) != 0) {
    cli_model_close(&m);
    inputs_free(&in);
    return rc;
  }
  const int depth = m.task == SKD_TASK_DEPTH;
  if (depth && (overlay || raw_logits)) {
    fprintf(stderr, "skd-cl predict: --%s is for segmentation; --task depth writes <name>.png (colour map) and "
            "<name>_depth.png (16-bit depth)\n", overlay ? "overlay" : "logits");
    cli_model_close(&m);
    inputs_free(&in);
    return 2;
  }
  skd_palette pal;
  if (!depth && skd_palette_preset(&pal, m.preset, m.classes) != SKD_OK) {
    fprintf(stderr, "skd-cl predict: --preset %s: %s\n", m.preset, skd_error_last());
    cli_model_close(&m);
    inputs_free(&in);
    return 2;
  }
  skd_eval_options opt;
  cli_model_eval_options(&m, &opt);
  int terminal = isatty(fileno(stderr));
  buffers b = {0};
  char at[64 + SKD_PATH_MAX];
  for (int i = 0; !rc && i < in.n; i++) {
    char *path = malloc(strlen(out) + strlen(in.name[i]) + 2);
    char *lpath = raw_logits ? malloc(strlen(out) + strlen(in.name[i]) + 2) : NULL;
    if (!path || (raw_logits && !lpath)) {
      fprintf(stderr, "skd-cl predict: out of host memory\n");
      free(path);
      rc = 1;
      break;
    }
    sprintf(path, "%s/%s", out, in.name[i]);
    if (lpath) {
      sprintf(lpath, "%s/%s", out, in.name[i]);
      strcpy(lpath + strlen(lpath) - 4, ".f32"); /* in place of ".png" */
    }
    skd_status st = depth ? predict_depth_one(&m, &opt, in.path[i], path, &b)
                          : predict_one(&m, &opt, &pal, overlay, alpha, in.path[i], path, lpath, &b);
    if (st != SKD_OK) {
      fprintf(stderr, "%sskd-cl predict: %s%s\n", terminal ? "\r\033[K" : "", where(&in, i, list, at, sizeof at),
              skd_error_last());
      rc = 1;
    } else if (terminal) {
      fprintf(stderr, "\r\033[K%d/%d images", i + 1, in.n);
    }
    free(path);
    free(lpath);
  }
  if (terminal && !rc) fprintf(stderr, "\r\033[K");
  if (!rc) printf("wrote %d prediction%s to %s\n", in.n, in.n == 1 ? "" : "s", out);
  free(b.image), free(b.ids), free(b.out), free(b.logits);
  cli_model_close(&m);
  inputs_free(&in);
  return rc;
}
