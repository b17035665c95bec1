/* The synthetic depth set: a room seen from a camera at a random height,
 * ray-cast per pixel. The nearest of these surfaces gives the depth (z along
 * the optical axis, metres):
 *   floor (y = -cam_h) and ceiling (y = ceil_h): z = height * f / |v - cy|
 *   side walls (x = +-half_w):                   z = half_w * f / |u - cx|
 *   back wall at z = back
 *   boxes: front faces (z = zb, x in [x0, x1], from the floor to their top)
 *   spheres: the first hit of the ray.
 * Colours come from world-space textures (checker floor tiles of 0.5 m,
 * vertical panels on walls, stripes on boxes, a lit sphere), each surface
 * with a random tint, never from the depth itself: the network must read
 * depth off perspective (tiles shrink, lines converge), occlusion and the
 * sizes of things. Everything is a function of (seed, split, index). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "data_private.h"
#include "skd/data.h"
#include "skd/depth.h"
#include "skd/io/fs.h"

#define MAX_BOXES 4
#define MAX_SPHERES 2

typedef struct box {
  float z, x0, x1, top; /* front face at depth z, x range, top (y, metres) */
  float rgb[3];
} box;

typedef struct sphere {
  float x, y, z, r;
  float rgb[3];
} sphere;

typedef struct room {
  float cam_h, ceil_h, half_w, back, f;
  float floor_rgb[2][3], wall_rgb[3], back_rgb[3], ceil_rgb[3];
  int nbox, nsphere;
  box boxes[MAX_BOXES];
  sphere spheres[MAX_SPHERES];
} room;

static void random_colour(rng *r, float *rgb, float lo, float hi) {
  for (int c = 0; c < 3; c++) rgb[c] = rng_range(r, lo, hi);
}

static void make_room(rng *r, int w, room *m) {
  m->f = 0.8f * (float)w;
  m->cam_h = rng_range(r, 0.9f, 1.7f);
  m->ceil_h = rng_range(r, 0.8f, 1.6f);
  m->half_w = rng_range(r, 1.5f, 3.0f);
  m->back = rng_range(r, 5.0f, 9.5f);
  random_colour(r, m->floor_rgb[0], 60, 200);
  for (int c = 0; c < 3; c++) m->floor_rgb[1][c] = m->floor_rgb[0][c] * rng_range(r, 0.45f, 0.7f);
  random_colour(r, m->wall_rgb, 90, 230);
  random_colour(r, m->back_rgb, 90, 230);
  random_colour(r, m->ceil_rgb, 150, 240);
  m->nbox = rng_int(r, 1, MAX_BOXES);
  for (int i = 0; i < m->nbox; i++) {
    box *b = &m->boxes[i];
    b->z = rng_range(r, 1.2f, m->back - 0.5f);
    const float width = rng_range(r, 0.3f, 1.2f);
    b->x0 = rng_range(r, -m->half_w, m->half_w - width);
    b->x1 = b->x0 + width;
    b->top = -m->cam_h + rng_range(r, 0.3f, 1.4f);
    random_colour(r, b->rgb, 40, 240);
  }
  m->nsphere = rng_int(r, 0, MAX_SPHERES);
  for (int i = 0; i < m->nsphere; i++) {
    sphere *s = &m->spheres[i];
    s->r = rng_range(r, 0.15f, 0.5f);
    s->z = rng_range(r, 1.0f, m->back - s->r - 0.2f);
    s->x = rng_range(r, -m->half_w + s->r, m->half_w - s->r);
    s->y = rng_range(r, -m->cam_h + s->r, m->ceil_h - s->r);
    random_colour(r, s->rgb, 60, 240);
  }
}

/* Depth and colour of the ray through pixel (u, v). */
static float trace(const room *m, float u, float v, float cx, float cy, float *rgb) {
  const float dx = (u - cx) / m->f, dy = (cy - v) / m->f; /* ray (dx, dy, 1) */
  float z = m->back;
  int what = 0; /* 0 back, 1 floor, 2 ceiling, 3 side wall, 4 box, 5 sphere */
  int which = 0;
  if (dy < 0 && m->cam_h / -dy < z) z = m->cam_h / -dy, what = 1;
  if (dy > 0 && m->ceil_h / dy < z) z = m->ceil_h / dy, what = 2;
  if (dx != 0 && m->half_w / fabsf(dx) < z) z = m->half_w / fabsf(dx), what = 3;
  for (int i = 0; i < m->nbox; i++) {
    const box *b = &m->boxes[i];
    const float x = dx * b->z, y = dy * b->z;
    if (b->z < z && x >= b->x0 && x <= b->x1 && y >= -m->cam_h && y <= b->top) z = b->z, what = 4, which = i;
  }
  float normal_z = 0.0f;
  for (int i = 0; i < m->nsphere; i++) {
    const sphere *s = &m->spheres[i];
    /* |t d - c|^2 = r^2 with d = (dx, dy, 1): the smaller root. */
    const float dd = dx * dx + dy * dy + 1.0f, dc = dx * s->x + dy * s->y + s->z;
    const float cc = s->x * s->x + s->y * s->y + s->z * s->z - s->r * s->r, disc = dc * dc - dd * cc;
    if (disc <= 0) continue;
    const float t = (dc - sqrtf(disc)) / dd;
    if (t > 0 && t < z) {
      z = t, what = 5, which = i;
      normal_z = (s->z - t) / s->r; /* towards the camera: lit head-on */
    }
  }
  const float x = dx * z, y = dy * z;
  float shade = 1.0f;
  const float *base = m->back_rgb;
  switch (what) {
    case 1: { /* 0.5 m checker tiles in world (x, z) */
      const int k = ((int)floorf(x * 2.0f) + (int)floorf(z * 2.0f)) & 1;
      base = m->floor_rgb[k];
      break;
    }
    case 2: base = m->ceil_rgb; break;
    case 3: /* vertical panels every 0.75 m along z, darker seams */
      base = m->wall_rgb;
      shade = fmodf(z, 0.75f) < 0.06f ? 0.55f : dx < 0 ? 0.85f : 0.95f;
      break;
    case 4: /* horizontal stripes on the box, 0.15 m */
      base = m->boxes[which].rgb;
      shade = ((int)floorf((y + m->cam_h) / 0.15f) & 1) ? 0.75f : 1.0f;
      break;
    case 5:
      base = m->spheres[which].rgb;
      shade = 0.35f + 0.65f * fmaxf(normal_z, 0.0f);
      break;
    default: /* back wall: a grid of 1 m squares */
      shade = (fmodf(fabsf(x) + 10.0f, 1.0f) < 0.04f || fmodf(fabsf(y) + 10.0f, 1.0f) < 0.04f) ? 0.6f : 1.0f;
  }
  for (int c = 0; c < 3; c++) rgb[c] = base[c] * shade;
  return z;
}

static skd_status write_split(const char *dir, uint64_t seed, const skd_demo_options *o, int split, float *depth,
                              uint8_t *bytes) {
  const char *name = split == 0 ? "train" : "val";
  const int count = split == 0 ? o->train_count : o->val_count, w = o->width, h = o->height;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s.txt", dir, name);
  FILE *list = fopen(path, "w");
  if (!list) return skd_error(SKD_EIO, "depth dataset: cannot write '%s'", path);
  fprintf(list, "# skd-cl synthetic depth set, %s split, seed %llu: image, depth (16-bit PNG, millimetres)\n", name,
          (unsigned long long)seed);
  skd_status st = SKD_OK;
  for (int i = 0; i < count && st == SKD_OK; i++) {
    rng r = rng_init(seed, RNG_DEMO, ((uint64_t)(split + 8) << 32) | (uint64_t)i);
    room m;
    make_room(&r, w, &m);
    const float cx = 0.5f * (float)w, cy = 0.5f * (float)h;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float rgb[3];
        const size_t p = (size_t)y * w + x;
        depth[p] = trace(&m, (float)x + 0.5f, (float)y + 0.5f, cx, cy, rgb);
        for (int c = 0; c < 3; c++) {
          const float v = rgb[c] + rng_range(&r, -6.0f, 6.0f); /* sensor noise */
          bytes[3 * p + c] = (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)(v + 0.5f));
        }
      }
    snprintf(path, sizeof path, "%s/images/%s_%04d.png", dir, name, i);
    if (!stbi_write_png(path, w, h, 3, bytes, w * 3)) {
      st = skd_error(SKD_EIO, "depth dataset: cannot write '%s'", path);
      break;
    }
    snprintf(path, sizeof path, "%s/depth/%s_%04d.png", dir, name, i);
    st = skd_depth_png_write(path, depth, w, h, 1000.0f);
    fprintf(list, "images/%s_%04d.png depth/%s_%04d.png\n", name, i, name, i);
  }
  if (fclose(list) != 0 && st == SKD_OK) st = skd_error(SKD_EIO, "depth dataset: cannot write %s/%s.txt", dir, name);
  return st;
}

skd_status skd_depth_demo_write(const char *out_dir, uint64_t seed, const skd_demo_options *opt) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  if (opt) o = *opt;
  if (!out_dir || !out_dir[0]) return skd_error(SKD_EINVAL, "depth dataset: no output directory");
  if (o.width < 32 || o.height < 32 || o.width > 4096 || o.height > 4096)
    return skd_error(SKD_EINVAL, "depth dataset: size %dx%d must be within 32..4096", o.width, o.height);
  if (o.train_count < 0 || o.val_count < 0 || o.train_count > 9999 || o.val_count > 9999)
    return skd_error(SKD_EINVAL, "depth dataset: counts %d (train) and %d (val) must be within 0..9999",
                     o.train_count, o.val_count);
  if (strlen(out_dir) > 4000) return skd_error(SKD_EINVAL, "depth dataset: output path too long");
  char sub[4100];
  skd_status st = skd_make_dirs(out_dir, "depth dataset");
  snprintf(sub, sizeof sub, "%s/images", out_dir);
  if (st == SKD_OK) st = skd_make_dirs(sub, "depth dataset");
  snprintf(sub, sizeof sub, "%s/depth", out_dir);
  if (st == SKD_OK) st = skd_make_dirs(sub, "depth dataset");
  if (st != SKD_OK) return st;
  const size_t npix = (size_t)o.width * (size_t)o.height;
  float *depth = malloc(npix * sizeof *depth);
  uint8_t *bytes = malloc(3 * npix);
  if (!depth || !bytes) st = skd_error(SKD_ENOMEM, "depth dataset: out of host memory");
  if (st == SKD_OK) st = write_split(out_dir, seed, &o, 0, depth, bytes);
  if (st == SKD_OK) st = write_split(out_dir, seed, &o, 1, depth, bytes);
  free(depth);
  free(bytes);
  return st;
}
