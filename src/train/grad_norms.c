/* The --log-grad-norms diagnostic: how large each loss term's gradient is
 * at the student's logits Q and features F, so that the balance between the
 * task and the distillation terms can be read from the log. Host-side and
 * only on logged steps: it syncs with the device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_private.h"

void grad_snapshots_free(grad_snapshots *g) {
  for (int k = 0; k < SKD_TERM_COUNT; k++) free(g->q[k]);
  memset(g, 0, sizeof *g);
}

skd_status grad_snapshot(struct skd_trainer *t, grad_snapshots *g, int term, const skd_tensor *dq) {
  g->q_floats = skd_tensor_numel(dq);
  g->q[term] = malloc(g->q_floats * sizeof(float));
  if (!g->q[term]) return skd_error(SKD_ENOMEM, "gradient norms: out of host memory");
  return skd_tensor_download(t->ctx, dq, g->q[term]);
}

static double sum_squares(const float *v, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i] * v[i];
  return sum;
}

/* ||W^T g|| for the head's weight W (classes x Cf) and g = dQ (N, classes, P). */
static double head_input_norm(const float *w, int classes, int cf, const float *g, int n, size_t plane) {
  double sum = 0.0;
  for (int b = 0; b < n; b++)
    for (int f = 0; f < cf; f++)
      for (size_t p = 0; p < plane; p++) {
        double v = 0.0;
        for (int c = 0; c < classes; c++) v += (double)w[(size_t)c * cf + f] * g[((size_t)b * classes + c) * plane + p];
        sum += v * v;
      }
  return sqrt(sum);
}

skd_status grad_norms_compute(struct skd_trainer *t, const grad_snapshots *g, const skd_tensor *df_pair,
                              skd_step_report *r) {
  const skd_tensor *q = &t->student->out.q;
  const skd_param *head = t->student->head.weight;
  int classes = q->c, cf = head->value.c, n = q->n;
  size_t plane = (size_t)q->h * (size_t)q->w;
  float *w = malloc(skd_tensor_numel(&head->value) * sizeof *w);
  float *diff = malloc(g->q_floats * sizeof *diff);
  float *df = df_pair ? malloc(skd_tensor_numel(df_pair) * sizeof *df) : NULL;
  skd_status st = w && diff && (df || !df_pair) ? SKD_OK : skd_error(SKD_ENOMEM, "gradient norms: out of host memory");
  if (st == SKD_OK) st = skd_tensor_download(t->ctx, &head->value, w);
  if (st == SKD_OK && df) st = skd_tensor_download(t->ctx, df_pair, df);
  const float *before = NULL; /* dQ before the term: zero at first */
  for (int k = 0; k < SKD_TERM_COUNT && st == SKD_OK; k++) {
    if (!g->q[k]) continue;
    for (size_t i = 0; i < g->q_floats; i++) diff[i] = g->q[k][i] - (before ? before[i] : 0.0f);
    r->grad_q[k] = sqrt(sum_squares(diff, g->q_floats));
    r->grad_f[k] = head_input_norm(w, classes, cf, diff, n, plane);
    before = g->q[k];
  }
  if (st == SKD_OK && df) r->grad_f[SKD_TERM_PAIR] = sqrt(sum_squares(df, skd_tensor_numel(df_pair)));
  if (st == SKD_OK) r->has_grad_norms = 1;
  free(w);
  free(diff);
  free(df);
  return st;
}
