/* skd-cl convert IN OUT.safetensors: a PyTorch state_dict (or another
 * safetensors file) as skd-cl's checkpoint: keys mapped from a known layout
 * (skd/nn/layout.h), num_batches_tracked dropped, float32, with a run
 * configuration (network, width, classes) in the metadata so that eval,
 * predict, export and --teacher need no --arch. The result is opened as a
 * network before it replaces OUT; nothing is left behind when it fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "skd/io/pth.h"
#include "skd/nn/layout.h"

typedef struct tensor_in {
  char *name;
  int ndim;
  int64_t shape[SKD_SAFETENSORS_MAX_DIMS];
  size_t numel;
  float *data;
  int is_float;
} tensor_in;

typedef struct input {
  int count;
  tensor_in *t;
  const char *kind;
} input;

static void input_free(input *in) {
  for (int i = 0; i < in->count; i++) {
    free(in->t[i].name);
    free(in->t[i].data);
  }
  free(in->t);
}

/* Every tensor of IN, its float ones as float32, under the file's own names
 * (a .pth is read without the automatic layout of skd_safetensors_open). */
static skd_status read_input(const char *path, input *in) {
  memset(in, 0, sizeof *in);
  unsigned char head[16] = {0};
  FILE *fp = fopen(path, "rb");
  if (!fp) return skd_error(SKD_EIO, "%s: cannot open", path);
  size_t n = fread(head, 1, sizeof head, fp);
  fclose(fp);
  skd_file_kind kind = skd_file_sniff(head, n);
  in->kind = skd_file_kind_name(kind);
  skd_safetensors *f = NULL;
  skd_status st = SKD_OK;
  if (kind == SKD_FILE_PTH_ZIP || kind == SKD_FILE_PTH_LEGACY) {
    /* A temporary handle would apply the auto layout; the raw names are
     * read here, and converted like the safetensors reader does. */
    skd_pth *p = NULL;
    st = skd_pth_read(&p, path);
    if (st) return st;
    in->t = calloc((size_t)p->count + 1, sizeof *in->t);
    if (!in->t) st = skd_error(SKD_ENOMEM, "convert: out of host memory");
    for (int i = 0; st == SKD_OK && i < p->count; i++) {
      const skd_pth_tensor *s = &p->tensors[i];
      tensor_in *t = &in->t[in->count++];
      t->name = strdup(s->name);
      t->ndim = s->ndim;
      memcpy(t->shape, s->shape, sizeof t->shape);
      t->numel = s->numel;
      t->is_float = s->dtype == SKD_DTYPE_F32 || s->dtype == SKD_DTYPE_F16 || s->dtype == SKD_DTYPE_BF16 ||
                    s->dtype == SKD_DTYPE_F64;
      t->data = malloc(s->numel * sizeof(float) + 1);
      if (!t->name || !t->data) st = skd_error(SKD_ENOMEM, "convert: out of host memory");
    }
    skd_pth_free(p);
    if (st) return st;
  }
  /* Values through the safetensors reader (conversion to float32). */
  st = skd_safetensors_open(&f, path);
  if (st) return st;
  if (!in->t) {
    in->t = calloc((size_t)skd_safetensors_count(f) + 1, sizeof *in->t);
    if (!in->t) st = skd_error(SKD_ENOMEM, "convert: out of host memory");
    for (int i = 0; st == SKD_OK && i < skd_safetensors_count(f); i++) {
      const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
      tensor_in *t = &in->t[in->count++];
      t->name = strdup(e->name);
      t->ndim = e->ndim;
      memcpy(t->shape, e->shape, sizeof t->shape);
      t->numel = e->numel;
      t->is_float = e->dtype == SKD_DTYPE_F32 || e->dtype == SKD_DTYPE_F16 || e->dtype == SKD_DTYPE_BF16 ||
                    e->dtype == SKD_DTYPE_F64;
      t->data = malloc(e->numel * sizeof(float) + 1);
      if (!t->name || !t->data) st = skd_error(SKD_ENOMEM, "convert: out of host memory");
    }
  }
  /* The handle has the same tensors under (possibly) mapped names: match
   * them by position in the file's order through the pth.layout it used. */
  const char *auto_layout = skd_safetensors_metadata(f, "pth.layout");
  skd_layout used = SKD_LAYOUT_NONE;
  if (auto_layout) skd_layout_parse(auto_layout, "pth.layout", &used);
  for (int i = 0; st == SKD_OK && i < in->count; i++) {
    tensor_in *t = &in->t[i];
    if (!t->is_float) continue;
    char name[512];
    skd_layout_map(used, t->name, name, sizeof name);
    int k = skd_safetensors_find(f, name);
    st = k < 0 ? skd_error(SKD_EFORMAT, "%s: tensor '%s' cannot be read", path, t->name)
               : skd_safetensors_read_f32(f, k, t->data, t->numel);
  }
  skd_safetensors_close(f);
  return st;
}

/* resnet18/34/50/101 from the blocks of layer3 and the block type. */
static const char *infer_arch(const input *in) {
  int blocks = 0, bottleneck = 0;
  for (int i = 0; i < in->count; i++) {
    int b;
    if (sscanf(in->t[i].name, "layer3.%d.", &b) == 1 && b + 1 > blocks) blocks = b + 1;
    if (!strcmp(in->t[i].name, "layer1.0.conv3.weight")) bottleneck = 1;
  }
  if (!bottleneck && blocks == 2) return "resnet18";
  if (!bottleneck && blocks == 6) return "resnet34";
  if (bottleneck && blocks == 6) return "resnet50";
  if (bottleneck && blocks == 23) return "resnet101";
  return NULL;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcmp(s + n - m, tail) == 0;
}

int cmd_convert(const cli_globals *g, int argc, char **argv) {
  const char *layout_text = "auto", *arch = NULL;
  float width = 1.0f;
  int classes = 0;
  cli_arg args[] = {
      {"layout", CLI_STRING, &layout_text,
       "key layout of IN: auto | reference-teacher (head.0 = pspmodule, head.1 = head) | torchvision | none", 0, 0,
       NULL, 0},
      {"arch", CLI_STRING, &arch, "network: resnet18 | resnet34 | resnet50 | resnet101 (default: from the keys)", 0, 0,
       NULL, 0},
      {"width", CLI_FLOAT, &width, "channel width multiplier of the network", 0.01, 4, NULL, 0},
      {"classes", CLI_INT, &classes, "number of classes (0: head.bias's)", 0, 255, NULL, 0},
  };
  char **ops = calloc((size_t)argc + 1, sizeof *ops);
  int nops = 0;
  int rc = ops ? cli_parse_operands("convert", "IN OUT.safetensors [--layout L] [--arch A --width W]", args,
                                    (int)(sizeof args / sizeof args[0]), argc, argv, ops, &nops)
               : 1;
  if (rc || nops != 2) {
    if (!rc) fprintf(stderr, "skd-cl convert: expected IN and OUT.safetensors, got %d operands\n", nops);
    free(ops);
    return rc == 1 ? 0 : 2;
  }
  const char *in_path = ops[0], *out_path = ops[1];
  free(ops);
  skd_layout layout;
  if (skd_layout_parse(layout_text, "--layout", &layout) != SKD_OK) {
    fprintf(stderr, "skd-cl convert: %s\n", skd_error_last());
    return 2;
  }
  input in;
  if (read_input(in_path, &in) != SKD_OK) {
    fprintf(stderr, "skd-cl convert: %s\n", skd_error_last());
    input_free(&in);
    return 1;
  }
  const char **names = malloc(((size_t)in.count + 1) * sizeof *names);
  for (int i = 0; names && i < in.count; i++) names[i] = in.t[i].name;
  if (layout == SKD_LAYOUT_AUTO) layout = names ? skd_layout_detect(names, in.count) : SKD_LAYOUT_NONE;
  free(names);
  if (!arch) arch = infer_arch(&in);
  if (!arch) {
    fprintf(stderr, "skd-cl convert: %s: cannot tell the network from its keys: give --arch\n", in_path);
    input_free(&in);
    return 2;
  }

  /* Map, drop, and collect into the writer. */
  skd_safetensors_writer *w = NULL;
  skd_status st = skd_safetensors_writer_create(&w);
  int mapped = 0, dropped = 0, kept = 0;
  for (int i = 0; st == SKD_OK && i < in.count; i++) {
    const tensor_in *t = &in.t[i];
    char name[512];
    if (ends_with(t->name, "num_batches_tracked") || !t->is_float) {
      dropped++;
      continue;
    }
    mapped += skd_layout_map(layout, t->name, name, sizeof name);
    st = skd_safetensors_writer_add(w, name, t->ndim, t->shape, t->data);
    kept++;
    if (!classes && !strcmp(name, "head.bias") && t->ndim == 1) classes = (int)t->shape[0];
  }
  skd_train_config cfg;
  skd_train_config_default(&cfg);
  snprintf(cfg.student.arch, sizeof cfg.student.arch, "%s", arch);
  cfg.student.width = width;
  cfg.classes = classes;
  char *json = NULL;
  if (st == SKD_OK && classes < 1)
    st = skd_error(SKD_EFORMAT, "%s: no head.bias (after the %s layout): give --classes", in_path,
                   skd_layout_name(layout));
  if (st == SKD_OK) st = skd_train_config_to_json(&cfg, &json);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "format", "skd-cl checkpoint converted from PyTorch");
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "config", json);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "source", in_path);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "source_layout", skd_layout_name(layout));
  free(json);
  /* Written beside OUT, opened as the network, then renamed over OUT. */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.convert.%ld", out_path, (long)getpid());
  if (st == SKD_OK) st = skd_safetensors_write(w, tmp);
  skd_safetensors_writer_free(w);
  input_free(&in);
  if (st != SKD_OK) {
    fprintf(stderr, "skd-cl convert: %s\n", skd_error_last());
    return 1;
  }
  skd_context *ctx = cli_open_context(g);
  skd_pspnet *net = NULL;
  st = ctx ? skd_pspnet_open_checkpoint(&net, ctx, tmp, &cfg.student, 0, NULL, NULL) : SKD_ECL;
  if (st == SKD_OK && rename(tmp, out_path) != 0)
    st = skd_error(SKD_EIO, "%s: cannot rename the converted file into place", out_path);
  if (st != SKD_OK) {
    if (ctx) fprintf(stderr, "skd-cl convert: the result would not load as a %s x%g network: %s\n", arch,
                     (double)width, skd_error_last());
    unlink(tmp);
    skd_pspnet_free(net);
    if (ctx) cli_close_context(ctx);
    return 1;
  }
  /* It loaded, so nothing was missing or left unused. */
  printf("wrote %s: %s x%g, %d classes, from %s (%s, layout %s): %d tensors, %d renamed, %d dropped "
         "(num_batches_tracked, integers), none missing or unused\n",
         out_path, arch, (double)width, net->cfg.classes, in_path, in.kind, skd_layout_name(layout), kept, mapped,
         dropped);
  skd_pspnet_free(net);
  cli_close_context(ctx);
  return 0;
}
