/* List files: "image_path label_path" per line, relative to a data directory
 * (the layout of the reference code's dataset lists). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "skd/data.h"

struct skd_dataset {
  skd_label_map map;
  char *list_path;
  int unlabeled; /* image paths only: label[i] is NULL */
  int n, cap;
  char **image;
  char **label;
  int *line;
};

static char *dup_string(const char *s) {
  size_t len = strlen(s);
  char *p = malloc(len + 1);
  if (p) memcpy(p, s, len + 1);
  return p;
}

static char *join_path(const char *dir, const char *rel) {
  if (rel[0] == '/' || !dir || !dir[0]) return dup_string(rel);
  size_t a = strlen(dir), b = strlen(rel);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  size_t at = a;
  if (dir[a - 1] != '/') p[at++] = '/';
  memcpy(p + at, rel, b + 1);
  return p;
}

/* The directory of a file path ("." when it has none). */
static char *parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return dup_string(".");
  if (slash == path) return dup_string("/");
  size_t len = (size_t)(slash - path);
  char *p = malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, path, len);
  p[len] = '\0';
  return p;
}

void skd_dataset_free(skd_dataset *d) {
  if (!d) return;
  for (int i = 0; i < d->n; i++) {
    free(d->image[i]);
    free(d->label[i]);
  }
  free(d->image);
  free(d->label);
  free(d->line);
  free(d->list_path);
  free(d);
}

static skd_status grow(skd_dataset *d) {
  if (d->n < d->cap) return SKD_OK;
  int cap = d->cap ? 2 * d->cap : 64;
  char **im = realloc(d->image, (size_t)cap * sizeof *im);
  if (im) d->image = im;
  char **lb = realloc(d->label, (size_t)cap * sizeof *lb);
  if (lb) d->label = lb;
  int *ln = realloc(d->line, (size_t)cap * sizeof *ln);
  if (ln) d->line = ln;
  if (!im || !lb || !ln) return skd_error(SKD_ENOMEM, "dataset %s: out of host memory", d->list_path);
  d->cap = cap;
  return SKD_OK;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* Splits s in place into at most 3 whitespace-separated fields; returns the count (3 = three or more). */
static int split_fields(char *s, char *field[3]) {
  int n = 0;
  while (*s) {
    while (*s && is_space(*s)) s++;
    if (!*s) break;
    if (n == 3) return 3;
    field[n++] = s;
    while (*s && !is_space(*s)) s++;
    if (*s) *s++ = '\0';
  }
  return n;
}

static skd_status check_readable(const skd_dataset *d, int line, const char *what, const char *path) {
  if (access(path, R_OK) == 0) return SKD_OK;
  int e = errno;
  return skd_error(SKD_EIO, "%s:%d: cannot read %s '%s': %s", d->list_path, line, what, path, strerror(e));
}

static skd_status parse(skd_dataset *d, FILE *f, const char *dir) {
  char *buf = NULL;
  size_t bufcap = 0;
  ssize_t len;
  int line = 0;
  skd_status st = SKD_OK;
  while ((len = getline(&buf, &bufcap, f)) >= 0) {
    line++;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
    /* A UTF-8 byte order mark (editors on Windows write one) is not part of
     * the first path. */
    if (line == 1 && len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) memmove(buf, buf + 3, (size_t)(len -= 3) + 1);
    char shown[84]; /* the line as written, shortened, for messages */
    snprintf(shown, sizeof shown, strlen(buf) > 80 ? "%.77s..." : "%s", buf);
    const char *p = buf;
    while (*p && is_space(*p)) p++;
    if (!*p || *p == '#') continue;
    char *field[3];
    int nf = split_fields(buf, field);
    if (d->unlabeled ? nf > 2 : nf != 2) {
      st = skd_error(SKD_EFORMAT, "%s:%d: expected '%s', got '%s' (%s field%s)", d->list_path, line,
                     d->unlabeled ? "image_path [label_path]" : "image_path label_path", shown,
                     nf == 3 ? "3 or more" : "1", nf == 1 ? "" : "s");
      break;
    }
    if ((st = grow(d)) != SKD_OK) break;
    /* An unlabeled list may be a labeled one: its labels are not read. */
    char *im = join_path(dir, field[0]), *lb = d->unlabeled ? NULL : join_path(dir, field[1]);
    if (!im || (!lb && !d->unlabeled)) {
      free(im);
      free(lb);
      st = skd_error(SKD_ENOMEM, "dataset %s: out of host memory", d->list_path);
      break;
    }
    d->image[d->n] = im;
    d->label[d->n] = lb;
    d->line[d->n] = line;
    d->n++;
    if ((st = check_readable(d, line, "image", im)) != SKD_OK) break;
    if (lb && (st = check_readable(d, line, "label", lb)) != SKD_OK) break;
  }
  if (st == SKD_OK && ferror(f))
    st = skd_error(SKD_EIO, "%s: read error after line %d", d->list_path, line);
  if (st == SKD_OK && d->n == 0) st = skd_error(SKD_EFORMAT, "%s: the list has no samples", d->list_path);
  free(buf);
  return st;
}

static skd_status open_list(skd_dataset **out, const char *list_path, const char *data_dir,
                            const skd_label_map *map, int unlabeled) {
  *out = NULL;
  if (!list_path || !map) return skd_error(SKD_EINVAL, "dataset open: list path and label map are required");
  if (map->classes < 1 || map->classes > 255 || map->ignore < 0 || map->ignore > 255 ||
      map->ignore < map->classes)
    return skd_error(SKD_EINVAL, "dataset open: label map '%s' has %d classes and ignore %d (need 1..255 "
                     "classes, ignore >= classes)", map->name, map->classes, map->ignore);
  skd_dataset *d = calloc(1, sizeof *d);
  if (!d) return skd_error(SKD_ENOMEM, "dataset open: out of host memory");
  d->map = *map;
  d->unlabeled = unlabeled;
  d->list_path = dup_string(list_path);
  char *dir = data_dir ? dup_string(data_dir) : parent_dir(list_path);
  if (!d->list_path || !dir) {
    free(dir);
    skd_dataset_free(d);
    return skd_error(SKD_ENOMEM, "dataset open: out of host memory");
  }
  skd_status st;
  FILE *f = fopen(list_path, "r");
  if (!f) {
    int e = errno;
    st = skd_error(SKD_EIO, "dataset open: cannot open list file '%s': %s", list_path, strerror(e));
  } else {
    st = parse(d, f, dir);
    fclose(f);
  }
  free(dir);
  if (st != SKD_OK) {
    skd_dataset_free(d);
    return st;
  }
  *out = d;
  return SKD_OK;
}

skd_status skd_dataset_open(skd_dataset **out, const char *list_path, const char *data_dir,
                            const skd_label_map *map) {
  return open_list(out, list_path, data_dir, map, 0);
}

skd_status skd_dataset_open_unlabeled(skd_dataset **out, const char *list_path, const char *data_dir,
                                      const skd_label_map *map) {
  return open_list(out, list_path, data_dir, map, 1);
}

int skd_dataset_size(const skd_dataset *d) { return d->n; }
const skd_label_map *skd_dataset_label_map(const skd_dataset *d) { return &d->map; }
const char *skd_dataset_image_path(const skd_dataset *d, int i) { return d->image[i]; }
const char *skd_dataset_label_path(const skd_dataset *d, int i) { return d->label[i]; }
int skd_dataset_line(const skd_dataset *d, int i) { return d->line[i]; }
const char *skd_dataset_list_path(const skd_dataset *d) { return d->list_path; }
