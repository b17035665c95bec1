/* The synthetic demo dataset: small outdoor scenes where context decides.
 *
 * Scene grammar (sizes scale with s = min(W, H) / 128):
 *   scene   := sky / land / shore / water, stacked top to bottom; the land's
 *              top edge is a wavy hill line whose mean height varies between
 *              images (15%..55% of H), so no image row belongs to one class
 *   sky     := class 0 'sky'    texture SW (below)
 *   land    := class 2 'grass'  band 10%..25% of H thick, wavy bottom edge;
 *              holds houses and trees that rise into the sky
 *   shore   := class 3 'sand'   strip 2..6 s thick under the grass
 *   water   := class 1 'water'  texture SW, the SAME random field as the sky
 *   house   := class 5 'house'  wall (one of four colours, siding lines,
 *              dark windows) with a roof; 10..30 s wide
 *   tree    := class 4 'tree'   brown trunk + dark-green blobby crown, radius 4..12 s
 *   float   := an ellipse of radius 3..14 s, two-colour horizontal stripes,
 *              sphere shading. The same generator makes both
 *              class 6 'balloon' (centre in the sky) and
 *              class 7 'buoy'    (centre in the water).
 * Drawing order gives occlusion: land objects far-to-near (by base row), some
 * balloons before the land objects (hidden behind trees and houses), the rest
 * after, buoys far-to-near (overlapping each other, cut by the image border).
 * Per image: a colour gain and tint; per pixel: texture noise and sensor noise,
 * so no class is a colour threshold (grass/tree, sand/yellow walls overlap).
 *
 * Where context matters: sky and water, and balloons and buoys, are locally
 * identical (same texture statistics, same object generator). Only the scene
 * layout tells them apart: what lies above the land is sky, what lies below
 * the shore is water, and a float is a balloon or a buoy by the region around
 * it. Far from the land band (tens of pixels) a small receptive field cannot
 * decide; a network with image-wide context (PSP pooling) can.
 *
 * Every file is a function of (seed, split, index): the counters of the random
 * generator are derived from them, never from a running state. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb/stb_image_write.h>

#include "data_private.h"
#include "skd/data.h"
#include "skd/io/fs.h"

enum { C_SKY, C_WATER, C_GRASS, C_SAND, C_TREE, C_HOUSE, C_BALLOON, C_BUOY };

static const char *const demo_names[SKD_DEMO_CLASSES] = {"sky",  "water", "grass",   "sand",
                                                         "tree", "house", "balloon", "buoy"};

const char *const *skd_demo_class_names(void) { return demo_names; }

void skd_demo_options_default(skd_demo_options *o) {
  o->width = 128;
  o->height = 128;
  o->train_count = 200;
  o->val_count = 50;
  o->unlabeled_count = 0;
}

/* ---- Noise ----------------------------------------------------------------- */

static uint32_t hash3(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u ^ (c + 0x165667B1u) * 0xC2B2AE3Du;
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  h *= 0x297A2D39u;
  h ^= h >> 15;
  return h;
}

static float hash_unit(uint32_t a, uint32_t b, uint32_t c) { return (float)(hash3(a, b, c) >> 8) / 16777216.0f; }

/* Value noise in [-1, 1] on a lattice of `cell` pixels, smoothstep-blended. */
static float value_noise(uint32_t seed, float x, float y, float cell) {
  float fx = x / cell, fy = y / cell;
  float x0 = floorf(fx), y0 = floorf(fy);
  float tx = fx - x0, ty = fy - y0;
  tx = tx * tx * (3.0f - 2.0f * tx);
  ty = ty * ty * (3.0f - 2.0f * ty);
  uint32_t ix = (uint32_t)(int32_t)x0, iy = (uint32_t)(int32_t)y0;
  float a = hash_unit(seed, ix, iy), b = hash_unit(seed, ix + 1, iy);
  float c = hash_unit(seed, ix, iy + 1), d = hash_unit(seed, ix + 1, iy + 1);
  float top = a + tx * (b - a), bot = c + tx * (d - c);
  return 2.0f * (top + ty * (bot - top)) - 1.0f;
}

/* Octaves of value noise, coarse to fine, in about [-1, 1]. */
static float fbm(uint32_t seed, float x, float y, float cell, int octaves) {
  float sum = 0.0f, amp = 1.0f, norm = 0.0f;
  for (int o = 0; o < octaves; o++) {
    sum += amp * value_noise(seed + 101u * (uint32_t)o, x, y, cell);
    norm += amp;
    amp *= 0.5f;
    cell *= 0.5f;
  }
  return sum / norm;
}

/* ---- Scene ----------------------------------------------------------------- */

typedef struct scene {
  int w, h;
  float s;
  float *rgb;   /* (h, w, 3) in 0..255 before the colour jitter */
  uint8_t *lab; /* (h, w) */
  uint32_t tex; /* texture noise seed of this image */
  int *top, *bot, *shore; /* per column: first grass row, first sand row, first water row */
} scene;

static void put(scene *sc, int x, int y, float r, float g, float b, int cls) {
  if (x < 0 || y < 0 || x >= sc->w || y >= sc->h) return;
  size_t p = (size_t)y * (size_t)sc->w + (size_t)x;
  sc->rgb[3 * p + 0] = r;
  sc->rgb[3 * p + 1] = g;
  sc->rgb[3 * p + 2] = b;
  sc->lab[p] = (uint8_t)cls;
}

/* The one texture of sky and water: blue with soft clouds/ripples. */
static void sky_water(scene *sc, int x, int y, int cls) {
  float v = fbm(sc->tex + 11u, (float)x, (float)y, 22.0f * sc->s, 3);
  float f = 14.0f * fbm(sc->tex + 13u, (float)x, (float)y, 4.0f * sc->s, 2);
  put(sc, x, y, 100.0f + 45.0f * v + f, 148.0f + 38.0f * v + f, 205.0f + 25.0f * v + f, cls);
}

static void background(scene *sc) {
  for (int y = 0; y < sc->h; y++)
    for (int x = 0; x < sc->w; x++) {
      float gx = (float)x, gy = (float)y;
      if (y < sc->top[x]) {
        sky_water(sc, x, y, C_SKY);
      } else if (y < sc->bot[x]) {
        float v = fbm(sc->tex + 21u, gx * 1.5f, gy * 0.5f, 6.0f * sc->s, 2); /* vertical blades */
        float u = fbm(sc->tex + 23u, gx, gy, 14.0f * sc->s, 2);
        put(sc, x, y, 80.0f + 18.0f * u + 16.0f * v, 140.0f + 22.0f * u + 22.0f * v, 60.0f + 12.0f * v, C_GRASS);
      } else if (y < sc->shore[x]) {
        float v = fbm(sc->tex + 31u, gx, gy, 2.5f * sc->s, 2);
        put(sc, x, y, 205.0f + 18.0f * v, 185.0f + 18.0f * v, 130.0f + 14.0f * v, C_SAND);
      } else {
        sky_water(sc, x, y, C_WATER);
      }
    }
}

static void house(scene *sc, rng *r, int cx, int base) {
  static const float walls[4][3] = {{170, 75, 55}, {222, 216, 205}, {150, 150, 158}, {212, 190, 95}};
  static const float roofs[2][3] = {{125, 50, 42}, {88, 88, 96}};
  const float *wall = walls[rng_int(r, 0, 3)], *roof = roofs[rng_int(r, 0, 1)];
  int ww = (int)(rng_range(r, 10.0f, 30.0f) * sc->s), wh = (int)(rng_range(r, 8.0f, 20.0f) * sc->s);
  int rh = (int)(rng_range(r, 4.0f, 10.0f) * sc->s) + 1;
  int x0 = cx - ww / 2, y0 = base - wh;
  int win = (int)(3.0f * sc->s) > 1 ? (int)(3.0f * sc->s) : 2, gap = win + 1 + (int)(2.0f * sc->s);
  for (int y = y0; y < base; y++)
    for (int x = x0; x < x0 + ww; x++) {
      int lx = x - x0, ly = y - y0;
      float k = (ly % 3 == 0) ? 0.82f : 1.0f; /* siding */
      float n = 8.0f * fbm(sc->tex + 41u, (float)x, (float)y, 2.0f, 1);
      int in_win = lx >= 2 && lx < ww - 2 && ly >= 2 && ly < wh - 3 && (lx - 2) % gap < win && (ly - 2) % gap < win;
      if (in_win) put(sc, x, y, 40.0f + n, 52.0f + n, 85.0f + n, C_HOUSE);
      else put(sc, x, y, wall[0] * k + n, wall[1] * k + n, wall[2] * k + n, C_HOUSE);
    }
  for (int i = 0; i < rh; i++) { /* roof: a triangle widening downwards, with eaves */
    int half = (ww / 2 + 2) * (i + 1) / rh;
    for (int x = cx - half; x <= cx + half; x++) {
      float n = 10.0f * fbm(sc->tex + 43u, (float)x, (float)i, 1.5f, 1);
      put(sc, x, y0 - rh + i, roof[0] + n, roof[1] + n, roof[2] + n, C_HOUSE);
    }
  }
}

static void tree(scene *sc, rng *r, int cx, int base) {
  float cr = rng_range(r, 4.0f, 12.0f) * sc->s;
  int trunk_h = (int)(rng_range(r, 3.0f, 8.0f) * sc->s) + 1, trunk_w = (int)(cr / 3.0f) + 1;
  for (int y = base - trunk_h - (int)cr / 2; y < base; y++)
    for (int x = cx - trunk_w / 2; x <= cx + trunk_w / 2; x++) {
      float n = 10.0f * fbm(sc->tex + 51u, (float)x * 3.0f, (float)y * 0.5f, 2.0f, 1);
      put(sc, x, y, 100.0f + n, 70.0f + n, 42.0f + n, C_TREE);
    }
  float ccy = (float)(base - trunk_h) - 0.8f * cr;
  float sq = rng_range(r, 0.8f, 1.3f); /* crown aspect */
  for (int y = (int)(ccy - cr * sq) - 1; y <= (int)(ccy + cr * sq) + 1; y++)
    for (int x = cx - (int)cr - 1; x <= cx + (int)cr + 1; x++) {
      float dx = ((float)x - (float)cx) / cr, dy = ((float)y - ccy) / (cr * sq);
      float edge = 1.0f + 0.25f * fbm(sc->tex + 53u, (float)x, (float)y, 3.0f * sc->s, 1); /* ragged outline */
      if (dx * dx + dy * dy > edge * edge) continue;
      float v = fbm(sc->tex + 55u, (float)x, (float)y, 2.5f * sc->s, 2);
      put(sc, x, y, 48.0f + 22.0f * v, 108.0f + 30.0f * v, 50.0f + 16.0f * v, C_TREE);
    }
}

/* A float: the same look whether it becomes a balloon or a buoy. */
static void floater(scene *sc, rng *r, float cx, float cy, float rad, int cls) {
  static const float pairs[4][2][3] = {{{220, 50, 40}, {240, 238, 232}},
                                       {{240, 140, 30}, {250, 220, 60}},
                                       {{205, 45, 120}, {245, 200, 45}},
                                       {{240, 240, 235}, {60, 110, 215}}};
  int pick = rng_int(r, 0, 3);
  float ry = rad * rng_range(r, 0.8f, 1.25f);
  float period = rng_range(r, 2.0f, 5.0f) * sc->s, phase = rng_range(r, 0.0f, 10.0f);
  for (int y = (int)floorf(cy - ry) - 1; y <= (int)ceilf(cy + ry) + 1; y++)
    for (int x = (int)floorf(cx - rad) - 1; x <= (int)ceilf(cx + rad) + 1; x++) {
      float dx = ((float)x - cx) / rad, dy = ((float)y - cy) / ry, d2 = dx * dx + dy * dy;
      if (d2 > 1.0f) continue;
      const float *c = pairs[pick][(int)floorf(((float)y - cy + phase * period) / period) & 1];
      float shade = 1.0f - 0.35f * d2 + 0.12f * (-dx - dy); /* lit from the top left */
      float n = 10.0f * fbm(sc->tex + 61u, (float)x, (float)y, 1.5f, 1);
      put(sc, x, y, c[0] * shade + n, c[1] * shade + n, c[2] * shade + n, cls);
    }
}

struct land_object {
  int is_house, cx, base;
  uint64_t draw; /* counter of its own generator, so the order of drawing does not shift draws */
};

static int by_base(const void *a, const void *b) {
  const struct land_object *p = a, *q = b;
  if (p->base != q->base) return p->base < q->base ? -1 : 1;
  return p->cx < q->cx ? -1 : p->cx > q->cx;
}

/* Float radius and centre in region cls (sky or water), or 0 when 20 tries fail. */
static int place_float(scene *sc, rng *r, int cls, float *cx, float *cy, float *rad) {
  for (int t = 0; t < 20; t++) {
    *rad = rng_range(r, 3.0f, 14.0f) * sc->s;
    *cx = rng_range(r, 0.0f, (float)sc->w);
    *cy = rng_range(r, 0.0f, (float)sc->h);
    int x = (int)*cx, y = (int)*cy;
    if (x >= sc->w || y >= sc->h) continue;
    if (cls == C_SKY ? y < sc->top[x] - (int)(*rad * 0.3f) : y >= sc->shore[x] + (int)(*rad * 0.5f)) return 1;
  }
  return 0;
}

static void render(scene *sc, uint64_t seed, uint64_t counter) {
  rng r = rng_init(seed, RNG_DEMO, counter);
  int w = sc->w, h = sc->h;
  sc->tex = (uint32_t)rng_u64(&r);
  /* Layout: hill line, grass band, sand strip. */
  float top_mean = rng_range(&r, 0.15f, 0.55f) * (float)h, band = rng_range(&r, 0.10f, 0.25f) * (float)h;
  float amp1 = rng_range(&r, 0.0f, 0.08f) * (float)h, per1 = rng_range(&r, 0.5f, 1.5f) * (float)w;
  float ph1 = rng_range(&r, 0.0f, 6.2832f), amp2 = rng_range(&r, 0.0f, 0.03f) * (float)h;
  float ph2 = rng_range(&r, 0.0f, 6.2832f), sand = rng_range(&r, 2.0f, 6.0f) * sc->s;
  for (int x = 0; x < w; x++) {
    float fx = (float)x;
    float t = top_mean + amp1 * sinf(6.2832f * fx / per1 + ph1);
    float b = top_mean + band + amp2 * sinf(6.2832f * fx / (0.37f * (float)w) + ph2);
    if (b < t + 3.0f * sc->s) b = t + 3.0f * sc->s;
    sc->top[x] = (int)t;
    sc->bot[x] = (int)b;
    sc->shore[x] = (int)(b + sand);
  }
  background(sc);

  /* Land objects, far (small base row) to near. */
  struct land_object obj[8];
  int nobj = 0, nhouse = rng_int(&r, 0, 3), ntree = rng_int(&r, 1, 5);
  for (int i = 0; i < nhouse + ntree; i++) {
    struct land_object *o = &obj[nobj++];
    o->is_house = i < nhouse;
    o->cx = rng_int(&r, 0, w - 1);
    int lo = sc->top[o->cx] + 2, hi = sc->bot[o->cx] - 1;
    o->base = lo < hi ? rng_int(&r, lo, hi) : hi;
    o->draw = rng_u64(&r);
  }
  qsort(obj, (size_t)nobj, sizeof obj[0], by_base);

  /* Floats: drawn behind the land objects (hidden=1) or in front. */
  int nballoon = rng_int(&r, 0, 3), nbuoy = rng_int(&r, 0, 4);
  struct { float cx, cy, rad; int hidden, ok; uint64_t draw; } fl[7];
  for (int i = 0; i < nballoon + nbuoy; i++) {
    int cls = i < nballoon ? C_SKY : C_WATER;
    fl[i].ok = place_float(sc, &r, cls, &fl[i].cx, &fl[i].cy, &fl[i].rad);
    fl[i].hidden = i < nballoon && rng_float(&r) < 0.35f;
    fl[i].draw = rng_u64(&r);
  }
  for (int i = 0; i < nballoon; i++)
    if (fl[i].ok && fl[i].hidden) {
      rng fr = rng_init(seed, RNG_DEMO, fl[i].draw);
      floater(sc, &fr, fl[i].cx, fl[i].cy, fl[i].rad, C_BALLOON);
    }
  for (int i = 0; i < nobj; i++) {
    rng orng = rng_init(seed, RNG_DEMO, obj[i].draw);
    if (obj[i].is_house) house(sc, &orng, obj[i].cx, obj[i].base);
    else tree(sc, &orng, obj[i].cx, obj[i].base);
  }
  for (int i = 0; i < nballoon; i++)
    if (fl[i].ok && !fl[i].hidden) {
      rng fr = rng_init(seed, RNG_DEMO, fl[i].draw);
      floater(sc, &fr, fl[i].cx, fl[i].cy, fl[i].rad, C_BALLOON);
    }
  /* Buoys far to near: a nearer one covers a farther one. */
  for (int pass = 0; pass < nbuoy; pass++) {
    int best = -1;
    for (int i = nballoon; i < nballoon + nbuoy; i++)
      if (fl[i].ok && (best < 0 || fl[i].cy < fl[best].cy)) best = i;
    if (best < 0) break;
    rng fr = rng_init(seed, RNG_DEMO, fl[best].draw);
    floater(sc, &fr, fl[best].cx, fl[best].cy, fl[best].rad, C_BUOY);
    fl[best].ok = 0;
  }

  /* Colour jitter of the whole image, then sensor noise. */
  float gain = rng_range(&r, 0.85f, 1.15f), tint[3];
  for (int c = 0; c < 3; c++) tint[c] = rng_range(&r, -12.0f, 12.0f);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        size_t p = 3 * ((size_t)y * (size_t)w + (size_t)x) + (size_t)c;
        uint32_t k = (uint32_t)(x + w * c);
        float noise = 9.0f * (hash_unit(sc->tex + 71u, k, (uint32_t)y) + hash_unit(sc->tex + 73u, k, (uint32_t)y) - 1.0f);
        sc->rgb[p] = sc->rgb[p] * gain + tint[c] + noise;
      }
}

/* ---- Files ----------------------------------------------------------------- */

/* Splits: 0 train, 1 val, 2 unlabeled (images only; its list names no labels). */
static skd_status write_split(const char *dir, uint64_t seed, const skd_demo_options *o, int split, scene *sc,
                              uint8_t *bytes) {
  static const char *const names[] = {"train", "val", "unlabeled"};
  const char *name = names[split];
  int count = split == 0 ? o->train_count : split == 1 ? o->val_count : o->unlabeled_count;
  if (split == 2 && count == 0) return SKD_OK;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s.txt", dir, name);
  FILE *list = fopen(path, "w");
  if (!list) {
    int e = errno;
    return skd_error(SKD_EIO, "demo dataset: cannot write '%s': %s", path, strerror(e));
  }
  fprintf(list, "# skd-cl demo dataset, %s split, seed %llu, %d classes: sky water grass sand tree house "
          "balloon buoy\n", name, (unsigned long long)seed, SKD_DEMO_CLASSES);
  skd_status st = SKD_OK;
  size_t npix = (size_t)sc->w * (size_t)sc->h;
  for (int i = 0; i < count && st == SKD_OK; i++) {
    render(sc, seed, ((uint64_t)split << 32) | (uint64_t)i);
    for (size_t p = 0; p < 3 * npix; p++) {
      float v = sc->rgb[p];
      bytes[p] = (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)(v + 0.5f));
    }
    snprintf(path, sizeof path, split == 2 ? "%s/images/%s_%05d.png" : "%s/images/%s_%04d.png", dir, name, i);
    if (!stbi_write_png(path, sc->w, sc->h, 3, bytes, sc->w * 3)) {
      st = skd_error(SKD_EIO, "demo dataset: cannot write '%s'", path);
      break;
    }
    if (split == 2) {
      fprintf(list, "images/%s_%05d.png\n", name, i);
      continue;
    }
    snprintf(path, sizeof path, "%s/labels/%s_%04d.png", dir, name, i);
    if (!stbi_write_png(path, sc->w, sc->h, 1, sc->lab, sc->w)) {
      st = skd_error(SKD_EIO, "demo dataset: cannot write '%s'", path);
      break;
    }
    fprintf(list, "images/%s_%04d.png labels/%s_%04d.png\n", name, i, name, i);
  }
  if (fclose(list) != 0 && st == SKD_OK) st = skd_error(SKD_EIO, "demo dataset: cannot write %s/%s.txt", dir, name);
  return st;
}

skd_status skd_demo_dataset_write(const char *out_dir, uint64_t seed, const skd_demo_options *opt) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  if (opt) o = *opt;
  if (!out_dir || !out_dir[0]) return skd_error(SKD_EINVAL, "demo dataset: no output directory");
  if (o.width < 32 || o.height < 32 || o.width > 4096 || o.height > 4096)
    return skd_error(SKD_EINVAL, "demo dataset: size %dx%d must be within 32..4096", o.width, o.height);
  if (o.train_count < 0 || o.val_count < 0 || o.unlabeled_count < 0 || o.train_count > 99999 ||
      o.val_count > 99999 || o.unlabeled_count > 99999)
    return skd_error(SKD_EINVAL, "demo dataset: counts %d (train), %d (val) and %d (unlabeled) must be within 0..99999",
                     o.train_count, o.val_count, o.unlabeled_count);
  if (strlen(out_dir) > 4000) return skd_error(SKD_EINVAL, "demo dataset: output path too long");
  char sub[4100];
  skd_status st = skd_make_dirs(out_dir, "demo dataset");
  snprintf(sub, sizeof sub, "%s/images", out_dir);
  if (st == SKD_OK) st = skd_make_dirs(sub, "demo dataset");
  snprintf(sub, sizeof sub, "%s/labels", out_dir);
  if (st == SKD_OK) st = skd_make_dirs(sub, "demo dataset");
  if (st != SKD_OK) return st;

  size_t npix = (size_t)o.width * (size_t)o.height;
  scene sc = {o.width, o.height, (float)(o.width < o.height ? o.width : o.height) / 128.0f,
              malloc(3 * npix * sizeof(float)), malloc(npix), 0,
              malloc((size_t)o.width * sizeof(int)), malloc((size_t)o.width * sizeof(int)),
              malloc((size_t)o.width * sizeof(int))};
  uint8_t *bytes = malloc(3 * npix);
  if (!sc.rgb || !sc.lab || !sc.top || !sc.bot || !sc.shore || !bytes)
    st = skd_error(SKD_ENOMEM, "demo dataset: out of host memory");
  if (st == SKD_OK) st = write_split(out_dir, seed, &o, 0, &sc, bytes);
  if (st == SKD_OK) st = write_split(out_dir, seed, &o, 1, &sc, bytes);
  if (st == SKD_OK) st = write_split(out_dir, seed, &o, 2, &sc, bytes);
  free(sc.rgb);
  free(sc.lab);
  free(sc.top);
  free(sc.bot);
  free(sc.shore);
  free(bytes);
  return st;
}
