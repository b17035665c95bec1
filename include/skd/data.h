/* Host-side data pipeline: list files, label presets, strict PNG/JPEG
 * decoding (libpng, libjpeg-turbo), seeded augmentation, a prefetching loader thread, and the
 * synthetic demo dataset. Nothing here touches OpenCL.
 *
 * Flow: skd_dataset_open (list file + label map) -> skd_dataset_read (one
 * decoded, mapped and validated sample) -> skd_augment_sample (scale, pad,
 * crop, mirror, normalise into a crop) -> skd_loader_batch (batch k of a
 * seeded stream) -> skd_loader_next (the same batches, prepared one ahead on
 * a worker thread). */
#ifndef SKD_DATA_H
#define SKD_DATA_H

#include <stdint.h>

#include "skd/status.h"

/* ---- Label maps (presets) ------------------------------------------------ */

#define SKD_IGNORE_LABEL 255

/* Raw label byte -> class. A raw value maps to table[raw]; the result must be
 * in [0, classes) or equal to `ignore`, else reading the label fails. */
typedef struct skd_label_map {
  char name[32];
  int classes;
  int ignore;                     /* 255 in every preset */
  uint8_t table[256];
  int voc_palette;                /* colour labels decode through the VOC colour map */
  const char *const *class_names; /* `classes` names, or NULL */
} skd_label_map;

/* Presets:
 *   "cityscapes"          labelIds (0..33) -> the 19 trainIds; every other id -> 255
 *                         (values 34..254 are not Cityscapes ids: they fail validation)
 *   "cityscapes-trainids" gtFine_labelTrainIds files: identity, 19 classes
 *   "camvid"              SegNet's CamVid: 0..10 the 11 classes, 11 (void) -> 255
 *   "voc"                 21 classes, 255 = boundary (ignored); paletted PNGs give
 *                         their indices, RGB PNGs are decoded by VOC colour
 *   "demo"                the synthetic set of skd_demo_dataset_write, 8 classes
 *   "generic"             identity with `classes` classes (1..255)
 * `classes` is required for generic; for the others it is 0 or the preset's count. */
skd_status skd_label_map_preset(skd_label_map *out, const char *name, int classes);

/* ---- Datasets (list files) ----------------------------------------------- */

/* A list file has one sample per line, "image_path label_path" separated by
 * whitespace, both relative to the data directory (paths cannot contain
 * whitespace). Blank lines and lines starting with '#' are skipped. */
typedef struct skd_dataset skd_dataset;

/* Parses and checks the whole list (two fields per line, both files exist and
 * are readable). data_dir NULL: the directory that holds the list file. The
 * label map is copied. */
skd_status skd_dataset_open(skd_dataset **out, const char *list_path, const char *data_dir,
                            const skd_label_map *map);
/* Images without labels (unlabeled data for distillation): one image path
 * per line; a second field (a label path) is allowed and never read, so a
 * labeled list can serve as well. Samples read from it have every label
 * pixel set to the map's ignore value. */
skd_status skd_dataset_open_unlabeled(skd_dataset **out, const char *list_path, const char *data_dir,
                                      const skd_label_map *map);
void skd_dataset_free(skd_dataset *d);

int skd_dataset_size(const skd_dataset *d);
const char *skd_dataset_list_path(const skd_dataset *d); /* as given to open */
const skd_label_map *skd_dataset_label_map(const skd_dataset *d);
/* Full paths and the list-file line of sample i (0 <= i < size); the label
 * path is NULL in an unlabeled list. */
const char *skd_dataset_image_path(const skd_dataset *d, int i);
const char *skd_dataset_label_path(const skd_dataset *d, int i);
int skd_dataset_line(const skd_dataset *d, int i);
/* Samples whose image path repeats an earlier one's (-1: out of memory); the
 * first such repeat in the file is at *repeat_line, the line it repeats at
 * *first_line (both 0 when there is none). */
int skd_dataset_duplicates(const skd_dataset *d, int *first_line, int *repeat_line);

/* One decoded sample: RGB bytes (h, w, 3) and labels (h, w) already mapped
 * to classes / ignore. */
typedef struct skd_sample {
  int h, w;
  uint8_t *rgb;
  uint8_t *label;
  float *depth; /* depth lists (skd_dataset_read_depth): metres, 0 missing; label is then NULL */
} skd_sample;

/* Decodes sample i. Images: PNG, JPEG or binary 8-bit PPM/PGM (grey is expanded to RGB, alpha
 * dropped, 16-bit samples keep their high byte). Labels: 8-bit PNG with 1
 * channel, or paletted (its indices are the values); 3 or 4 channels only when
 * R == G == B on every pixel (alpha is ignored), or for a map with
 * voc_palette; 16-bit labels are refused. Damaged data (truncated, bad CRC,
 * corrupt JPEG) is an error, never padded. Errors name the list line, the file and, for labels, the
 * value and pixel. Thread-safe (the dataset is only read). */
skd_status skd_dataset_read(const skd_dataset *d, int i, skd_sample *out);
void skd_sample_free(skd_sample *s);
/* Depth estimation: the list's second column is a 16-bit grey PNG of depth
 * in units of 1/scale metre (scale 1000: millimetres; 0 = missing). Fills rgb
 * and depth (metres); label stays NULL. Errors name the list line and the file. */
skd_status skd_dataset_read_depth(const skd_dataset *d, int i, float scale, skd_sample *out);

/* One image without a label (prediction): PNG, JPEG or PPM/PGM, decoded strictly, as
 * RGB bytes (h, w, 3) in *rgb (free() it). Errors (SKD_EIO: cannot open,
 * SKD_EFORMAT: cannot decode) name the file. */
skd_status skd_image_read(const char *path, uint8_t **rgb, int *h, int *w);

/* ---- Normalisation and augmentation -------------------------------------- */

/* out[c] = (pixel[c'] - mean[c]) / std[c], with c' = c (RGB) or 2 - c (BGR);
 * mean and std in 0..255 units, in output-channel order. */
typedef struct skd_normalize {
  int bgr;
  float mean[3];
  float std[3];
} skd_normalize;

/* The reference code: BGR, mean (104.008, 116.669, 122.679), std 1. */
void skd_normalize_reference(skd_normalize *n);
/* torchvision's ImageNet: RGB, mean (0.485, 0.456, 0.406) * 255, std (0.229, 0.224, 0.225) * 255. */
void skd_normalize_imagenet(skd_normalize *n);

typedef struct skd_augment {
  int crop_h, crop_w;
  /* Scale factor drawn from [scale_min, scale_max]; with scale_step > 0 it is
   * scale_min + step * k for a uniform integer k (the reference: 0.5 + k / 10,
   * k = 0..16), else uniform. */
  float scale_min, scale_max, scale_step;
  int mirror; /* random horizontal flip */
  skd_normalize normalize;
} skd_augment;

/* The reference's training setting: crop x crop, scale 0.5..2.1 in steps of
 * 0.1, mirror on, reference normalisation. */
void skd_augment_reference(skd_augment *a, int crop);

/* One training crop from a sample, deterministic in (seed, draw); draw is the
 * sample's position in the loader's stream. Scale (bilinear image, nearest
 * labels, half-pixel centres), normalise, pad bottom/right to the crop with 0
 * (the mean after normalisation) and `ignore`, crop at a random offset,
 * mirror. image: (3, crop_h, crop_w) planar; label: (crop_h, crop_w). */
skd_status skd_augment_sample(const skd_sample *s, const skd_augment *a, int ignore, uint64_t seed,
                              uint64_t draw, float *image, uint8_t *label);

/* The same crop for a depth sample (s->depth): the image as above, depth by
 * nearest pixel with its values unchanged (a scaled image is not a closer
 * scene; the scale augmentation is a zoom of the same depths), padding 0
 * (missing). depth: (crop_h, crop_w) metres. */
skd_status skd_augment_depth_sample(const skd_sample *s, const skd_augment *a, uint64_t seed, uint64_t draw,
                                    float *image, float *depth);

/* Evaluation: the whole image, normalised, no augmentation.
 * image: (3, h, w) planar; label: (h, w), copied (NULL: not wanted, and
 * s->label may then be NULL too). */
void skd_normalize_sample(const skd_sample *s, const skd_normalize *n, float *image, uint8_t *label);

/* ---- Batches and the loader ---------------------------------------------- */

typedef struct skd_batch {
  int n, h, w;
  float *image;   /* (n, 3, h, w) float32, normalised */
  uint8_t *label; /* (n, h, w): class or ignore */
  float *depth;   /* depth loaders only: (n, h, w) metres, 0 missing */
  int *index;     /* (n): dataset index of each sample */
  int64_t number; /* k: this batch's number in the stream */
  size_t capacity_image, capacity_label, capacity_index; /* elements allocated */
  size_t capacity_depth;
} skd_batch;

/* Frees a batch filled by skd_loader_batch (not one from skd_loader_next). */
void skd_batch_free(skd_batch *b);

typedef struct skd_loader_config {
  int batch; /* samples per batch */
  /* train 1: an endless stream; stream position p is sample perm_e[p mod N] of
   * epoch e = p / N, perm_e a permutation drawn from (seed, e); each sample is
   * augmented with draw = p into crop-sized batches.
   * train 0: one pass in list order, whole normalised images; the last batch
   * may be short; images of one batch must have equal sizes (batch 1 always works). */
  int train;
  skd_augment augment; /* train 0 uses only augment.normalize */
  int64_t first_batch; /* the stream starts at this batch (resuming a run) */
  float depth_scale;   /* > 0: a depth list (skd_dataset_read_depth with this scale), batches fill depth */
  /* Data parallel (train 1): batch k takes stream positions
   * k * stream_batch + stream_first + b, b < batch, so the ranks' shards of
   * one global batch are disjoint and each sample keeps its augmentation
   * draw. stream_batch 0: batch (one process). */
  int stream_batch, stream_first;
} skd_loader_config;

/* Batch k of the stream defined by (dataset, config, seed), computed on the
 * calling thread; out is reused and grown as needed (zero it before first use).
 * Past the end of an evaluation pass out->n is 0. */
skd_status skd_loader_batch(const skd_dataset *d, const skd_loader_config *c, uint64_t seed, int64_t k,
                            skd_batch *out);

/* A worker thread prepares batch k + 1 while the caller uses batch k. */
typedef struct skd_loader skd_loader;

skd_status skd_loader_create(skd_loader **out, const skd_dataset *d, const skd_loader_config *c,
                             uint64_t seed);
/* The next batch, owned by the loader and valid until the next call or
 * skd_loader_free. *out is NULL at the end of an evaluation pass. An error of
 * the worker is returned here with its message (and again on later calls). */
skd_status skd_loader_next(skd_loader *l, const skd_batch **out);
void skd_loader_free(skd_loader *l);

/* ---- The synthetic demo dataset ------------------------------------------ */

#define SKD_DEMO_CLASSES 8

typedef struct skd_demo_options {
  int width, height;        /* 128 x 128 */
  int train_count, val_count; /* 200, 50 */
  int unlabeled_count;        /* 0: images of a third split, listed without labels */
} skd_demo_options;

void skd_demo_options_default(skd_demo_options *o);

/* Class names of the demo set, SKD_DEMO_CLASSES of them. */
const char *const *skd_demo_class_names(void);

/* Writes out_dir/{train,val}.txt, out_dir/images/NAME.png (RGB) and
 * out_dir/labels/NAME.png (8-bit class ids), creating the directories; with
 * unlabeled_count > 0 also out_dir/unlabeled.txt (image paths only). Every
 * file is a function of (seed, split, index) alone. opt NULL: defaults. */
skd_status skd_demo_dataset_write(const char *out_dir, uint64_t seed, const skd_demo_options *opt);

/* The synthetic depth set (make-dataset --task depth): rooms seen by a pinhole
 * camera (floor, ceiling, side and back walls, boxes standing on the floor,
 * spheres), textured in world coordinates, ray-cast to exact depths between
 * about 0.6 and 9.5 m. Writes out_dir/{train,val}.txt ("image depth" lines),
 * images/NAME.png (RGB) and depth/NAME.png (16-bit millimetres). Same
 * determinism and options as the demo set (unlabeled_count is ignored). */
skd_status skd_depth_demo_write(const char *out_dir, uint64_t seed, const skd_demo_options *opt);

#endif
