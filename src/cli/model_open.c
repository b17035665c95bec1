/* Opening a checkpoint for skd-cl eval and predict (model_open.h). */
#include "cli/model_open.h"

#include <stdio.h>
#include <string.h>

static int wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  }
  return 0;
}

int cli_model_init(cli_model *m, const char *command, int argc, char **argv) {
  memset(m, 0, sizeof *m);
  skd_train_config_default(&m->stored);
  m->checkpoint = cli_find_option(argc, argv, "checkpoint");
  if (m->checkpoint) {
    long step;
    double best;
    if (skd_checkpoint_read_config(m->checkpoint, &m->stored, &m->found, &step, &best) != SKD_OK) {
      if (wants_help(argc, argv)) {
        skd_train_config_default(&m->stored);
        m->found = 0;
      } else {
        fprintf(stderr, "skd-cl %s: --checkpoint: %s\n", command, skd_error_last());
        return 1;
      }
    }
  }
  m->arch = m->stored.student.arch;
  m->width = m->stored.student.width;
  m->classes = m->found ? m->stored.classes : 0;
  m->preset = m->found ? m->stored.preset : "generic";
  m->imagenet_norm = m->found ? m->stored.imagenet_norm : 0;
  m->task = m->stored.task; /* defaults: seg, NYUv2's range, millimetres */
  m->depth_min = m->stored.depth_min;
  m->depth_max = m->stored.depth_max;
  m->depth_scale = m->stored.depth_scale;
  return 0;
}

int cli_model_depth_args(cli_model *m, cli_arg *args) {
  static const char *const tasks[] = {"seg", "depth", NULL};
  int n = 0;
  args[n++] = (cli_arg){"task", CLI_CHOICE, &m->task, "seg or depth (default: the checkpoint's)", 0, 0, tasks, 0};
  args[n++] = (cli_arg){"depth-min", CLI_FLOAT, &m->depth_min, "depth: the bins' nearest depth, metres (as trained)",
                        0.001, 1000, NULL, 0};
  args[n++] = (cli_arg){"depth-max", CLI_FLOAT, &m->depth_max, "depth: the bins' farthest depth, metres (as trained)",
                        0.001, 1000, NULL, 0};
  args[n++] = (cli_arg){"depth-scale", CLI_FLOAT, &m->depth_scale,
                        "depth: PNG units per metre, read and written (1000: millimetres)", 0.001, 1000000, NULL, 0};
  return n;
}

skd_depth_bins cli_model_depth_bins(const cli_model *m) {
  skd_depth_bins b = {m->classes, m->depth_min, m->depth_max};
  return b;
}

int cli_model_depth_check(const cli_model *m, const char *command) {
  if (m->found && m->stored.task != m->task) {
    fprintf(stderr, "skd-cl %s: --task %s: %s was trained for --task %s\n", command, m->task ? "depth" : "seg",
            m->checkpoint, m->stored.task ? "depth" : "seg");
    return 2;
  }
  if (m->task != SKD_TASK_DEPTH) return 0;
  skd_depth_bins b = cli_model_depth_bins(m);
  if (skd_depth_bins_check(&b) != SKD_OK) {
    fprintf(stderr, "skd-cl %s: %s (the network has %d outputs)\n", command, skd_error_last(), m->classes);
    return 2;
  }
  return 0;
}

int cli_model_args(cli_model *m, cli_arg *args, int with_data) {
  int n = 0;
  args[n++] = (cli_arg){"checkpoint", CLI_STRING, &m->checkpoint,
                        "network checkpoint (skd-cl's own, or a converted reference one)", 0, 0, NULL, 1};
  args[n++] = (cli_arg){"arch", CLI_STRING, &m->arch,
                        "network when the checkpoint records none: resnet18 | resnet34 | resnet50 | resnet101", 0, 0,
                        NULL, 0};
  args[n++] = (cli_arg){"width", CLI_FLOAT, &m->width, "channel width multiplier, likewise", 0.01, 4, NULL, 0};
  args[n++] = (cli_arg){"classes", CLI_INT, &m->classes, "number of classes (0: the checkpoint's)", 0, 255, NULL, 0};
  args[n++] = (cli_arg){"preset", CLI_STRING, &m->preset,
                        "label preset (class names, palette): demo | cityscapes | cityscapes-trainids | camvid | voc "
                        "| generic",
                        0, 0, NULL, 0};
  if (with_data)
    args[n++] = (cli_arg){"data-dir", CLI_STRING, &m->data_dir,
                          "directory the list's paths are relative to (default: the list file's directory)", 0, 0,
                          NULL, 0};
  args[n++] = (cli_arg){"crop", CLI_INT, &m->crop, "sliding-window size (0: the whole image in one pass)", 0, 8192,
                        NULL, 0};
  args[n++] = (cli_arg){"flip", CLI_FLAG, &m->flip, "also run the mirrored image and average the logits", 0, 0, NULL,
                        0};
  args[n++] = (cli_arg){"imagenet-norm", CLI_FLAG, &m->imagenet_norm,
                        "RGB ImageNet mean/std instead of the reference's BGR mean subtraction (as trained)", 0, 0,
                        NULL, 0};
  return n;
}

/* A network given by --arch/--width that the checkpoint contradicts. */
static int check_network(const cli_model *m, const char *command) {
  if (!skd_arch_depth(m->arch)) {
    fprintf(stderr, "skd-cl %s: --arch: unknown network '%s' (expected resnet18, resnet34, resnet50 or resnet101)\n",
            command, m->arch);
    return 2;
  }
  if (m->found && (strcmp(m->arch, m->stored.student.arch) || m->width != m->stored.student.width)) {
    fprintf(stderr, "skd-cl %s: --arch %s --width %g: %s holds a %s network of width %g (leave --arch and --width "
            "out: the checkpoint records them)\n", command, m->arch, (double)m->width, m->checkpoint,
            m->stored.student.arch, (double)m->stored.student.width);
    return 2;
  }
  if (m->crop > 0 && m->crop < 16) {
    fprintf(stderr, "skd-cl %s: --crop %d is too small (0 for whole images, else at least 16)\n", command, m->crop);
    return 2;
  }
  return 0;
}

int cli_model_open(cli_model *m, const char *command, const cli_globals *g) {
  int rc = check_network(m, command);
  if (rc) return rc;
  m->ctx = cli_open_context(g);
  if (!m->ctx) return 1;
  skd_net_config net;
  memset(&net, 0, sizeof net);
  snprintf(net.arch, sizeof net.arch, "%s", m->arch);
  net.width = m->width;
  skd_status st = skd_pspnet_open_checkpoint(&m->net, m->ctx, m->checkpoint, &net, m->classes, NULL, NULL);
  if (st == SKD_OK) st = skd_arena_create(m->ctx, &m->arena, 0);
  if (st != SKD_OK) {
    fprintf(stderr, "skd-cl %s: %s\n", command, skd_error_last());
    if (st == SKD_EFORMAT && !m->found)
      fprintf(stderr, "skd-cl %s: %s records no network: say which with --arch and %s\n", command,
              m->checkpoint, strcmp(command, "export") ? "--width" : "--net-width");
    cli_model_close(m);
    return 1;
  }
  m->classes = m->net->cfg.classes;
  return 0;
}

void cli_model_close(cli_model *m) {
  skd_arena_free(m->arena);
  skd_pspnet_free(m->net);
  if (m->ctx) cli_close_context(m->ctx);
  m->arena = NULL;
  m->net = NULL;
  m->ctx = NULL;
}

void cli_model_eval_options(const cli_model *m, skd_eval_options *o) {
  skd_eval_options_default(o);
  o->crop = m->crop;
  o->flip = m->flip;
  if (m->imagenet_norm) skd_normalize_imagenet(&o->normalize);
}

void cli_model_describe(const cli_model *m, char *buf, size_t size) {
  snprintf(buf, size, "%s x%g, %d classes", m->arch, (double)m->width, m->classes);
}
