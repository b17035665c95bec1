/* Confusion matrix (uint64 counts, exact and order-independent) and the
 * segmentation metrics derived from it; definitions in skd/eval.h. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/eval.h"

skd_status skd_confusion_init(skd_confusion *m, int classes) {
  memset(m, 0, sizeof *m);
  if (classes < 1 || classes > SKD_EVAL_MAX_CLASSES)
    return skd_error(SKD_EINVAL, "confusion matrix: classes must be in [1, %d] (got %d)", SKD_EVAL_MAX_CLASSES,
                     classes);
  m->counts = calloc((size_t)classes * (size_t)classes, sizeof *m->counts);
  if (!m->counts) return skd_error(SKD_ENOMEM, "confusion matrix: out of host memory (%d classes)", classes);
  m->classes = classes;
  return SKD_OK;
}

void skd_confusion_free(skd_confusion *m) {
  free(m->counts);
  memset(m, 0, sizeof *m);
}

void skd_confusion_reset(skd_confusion *m) {
  memset(m->counts, 0, (size_t)m->classes * (size_t)m->classes * sizeof *m->counts);
  m->ignored = 0;
}

skd_status skd_confusion_add(skd_confusion *m, const uint8_t *pred, const uint8_t *label, size_t n, int ignore) {
  const int k = m->classes;
  /* Validate everything first so that a bad pixel leaves the matrix as it was. */
  for (size_t i = 0; i < n; i++) {
    if (label[i] == ignore) continue;
    if (label[i] >= k)
      return skd_error(SKD_EINVAL, "confusion matrix: label %d at pixel %zu is not a class (%d classes, ignore %d)",
                       label[i], i, k, ignore);
    if (pred[i] >= k)
      return skd_error(SKD_EINVAL, "confusion matrix: prediction %d at pixel %zu is not a class (%d classes)",
                       pred[i], i, k);
  }
  uint64_t ignored = 0;
  for (size_t i = 0; i < n; i++) {
    if (label[i] == ignore) {
      ignored++;
      continue;
    }
    m->counts[(size_t)label[i] * (size_t)k + pred[i]]++;
  }
  m->ignored += ignored;
  return SKD_OK;
}

skd_status skd_confusion_merge(skd_confusion *dst, const skd_confusion *src) {
  if (dst->classes != src->classes)
    return skd_error(SKD_EINVAL, "confusion matrix merge: %d classes into %d", src->classes, dst->classes);
  size_t cells = (size_t)dst->classes * (size_t)dst->classes;
  for (size_t i = 0; i < cells; i++) dst->counts[i] += src->counts[i];
  dst->ignored += src->ignored;
  return SKD_OK;
}

skd_status skd_metrics_compute(const skd_confusion *m, skd_metrics *out) {
  const int k = m->classes;
  memset(out, 0, sizeof *out);
  if (k < 1 || k > SKD_EVAL_MAX_CLASSES || !m->counts)
    return skd_error(SKD_EINVAL, "metrics: the confusion matrix is not initialised (%d classes)", k);
  out->classes = k;
  out->ignored = m->ignored;
  for (int l = 0; l < k; l++)
    for (int p = 0; p < k; p++) {
      uint64_t v = m->counts[(size_t)l * (size_t)k + p];
      out->label_pixels[l] += v;
      out->predicted_pixels[p] += v;
      out->pixels += v;
    }
  uint64_t correct = 0;
  double iou_sum = 0.0, iou_ref_sum = 0.0, acc_sum = 0.0;
  int labelled = 0;
  for (int c = 0; c < k; c++) {
    uint64_t tp = m->counts[(size_t)c * (size_t)k + c];
    uint64_t l = out->label_pixels[c], p = out->predicted_pixels[c];
    uint64_t uni = l + p - tp;
    out->true_positives[c] = tp;
    correct += tp;
    out->iou[c] = uni ? (double)tp / (double)uni : NAN;
    out->accuracy[c] = l ? (double)tp / (double)l : NAN;
    iou_ref_sum += uni ? (double)tp / (double)uni : 0.0;
    if (uni) {
      iou_sum += out->iou[c];
      out->present++;
    }
    if (l) {
      acc_sum += out->accuracy[c];
      labelled++;
    }
  }
  out->mean_iou = out->present ? iou_sum / out->present : NAN;
  out->mean_iou_reference = iou_ref_sum / k;
  out->mean_accuracy = labelled ? acc_sum / labelled : NAN;
  out->pixel_accuracy = out->pixels ? (double)correct / (double)out->pixels : NAN;
  return SKD_OK;
}

/* snprintf into a growing text that may be truncated; *len counts what the
 * whole text needs. */
struct text {
  char *buf;
  size_t size, len;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = t->len < t->size ? t->buf + t->len : NULL;
  size_t room = t->len < t->size ? t->size - t->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) t->len += (size_t)n;
}

/* A percentage in a field of `width`, or "n/a". */
static void put_percent(struct text *t, double v, int width) {
  if (isnan(v))
    put(t, "%*s", width, "n/a");
  else
    put(t, "%*.2f", width, 100.0 * v);
}

#define NAME_MAX_WIDTH 24

size_t skd_metrics_format(const skd_metrics *m, const char *const *names, char *buf, size_t size) {
  struct text t = {buf, size, 0};
  if (buf && size) buf[0] = '\0';
  int width = 5; /* "class" */
  for (int c = 0; c < m->classes; c++) {
    int len = names && names[c] ? (int)strlen(names[c]) : (int)snprintf(NULL, 0, "class %d", c);
    if (len > width) width = len;
  }
  if (width > NAME_MAX_WIDTH) width = NAME_MAX_WIDTH;
  put(&t, "%-*s %8s %8s %14s\n", width, "class", "IoU %", "acc %", "pixels");
  for (int c = 0; c < m->classes; c++) {
    char fallback[32];
    const char *name = names && names[c] ? names[c] : (snprintf(fallback, sizeof fallback, "class %d", c), fallback);
    put(&t, "%-*.*s ", width, width, name);
    put_percent(&t, m->iou[c], 8);
    put(&t, " ");
    put_percent(&t, m->accuracy[c], 8);
    put(&t, " %14" PRIu64 "\n", m->label_pixels[c]);
  }
  put(&t, "mean IoU ");
  put_percent(&t, m->mean_iou, 0);
  put(&t, " %% over %d of %d classes (absent classes excluded; reference mean over all: ", m->present,
      m->classes);
  put_percent(&t, m->mean_iou_reference, 0);
  put(&t, " %%)\npixel accuracy ");
  put_percent(&t, m->pixel_accuracy, 0);
  put(&t, " %%, mean class accuracy ");
  put_percent(&t, m->mean_accuracy, 0);
  put(&t, " %%, %" PRIu64 " pixels (%" PRIu64 " ignored)\n", m->pixels, m->ignored);
  return t.len;
}
