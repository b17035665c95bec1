/* Label presets: raw label bytes -> training classes (or ignore). */
#include <stdio.h>
#include <string.h>

#include "skd/data.h"

static const char *const cityscapes_names[19] = {
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle"};

/* The official labelId -> trainId table (cityscapesScripts labels.py), ids 0..33;
 * -1 marks ids that are not evaluated (mapped to ignore). */
static const int cityscapes_train_id[34] = {
    -1, -1, -1, -1, -1, -1, -1, /* 0..6: unlabeled, ego vehicle, rectification border, out of roi,
                                   static, dynamic, ground */
    0, 1,                       /* 7 road, 8 sidewalk */
    -1, -1,                     /* 9 parking, 10 rail track */
    2, 3, 4,                    /* 11 building, 12 wall, 13 fence */
    -1, -1, -1,                 /* 14 guard rail, 15 bridge, 16 tunnel */
    5, -1, 6, 7, 8, 9, 10,      /* 17 pole, 18 polegroup, 19 traffic light, 20 sign, 21 vegetation,
                                   22 terrain, 23 sky */
    11, 12, 13, 14, 15,         /* 24 person, 25 rider, 26 car, 27 truck, 28 bus */
    -1, -1,                     /* 29 caravan, 30 trailer */
    16, 17, 18};                /* 31 train, 32 motorcycle, 33 bicycle */

/* SegNet's CamVid (11 classes; 11 = void). */
static const char *const camvid_names[11] = {"sky", "building", "pole", "road", "pavement", "tree",
                                             "sign symbol", "fence", "car", "pedestrian", "bicyclist"};

static const char *const voc_names[21] = {
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor"};

static void identity(skd_label_map *m) {
  for (int v = 0; v < 256; v++) m->table[v] = (uint8_t)v;
}

skd_status skd_label_map_preset(skd_label_map *out, const char *name, int classes) {
  skd_label_map m;
  memset(&m, 0, sizeof m);
  m.ignore = SKD_IGNORE_LABEL;
  identity(&m);
  int preset_classes = 0;
  if (!name) return skd_error(SKD_EINVAL, "label preset: no name given");
  if (strcmp(name, "cityscapes") == 0) {
    preset_classes = 19;
    m.class_names = cityscapes_names;
    for (int id = 0; id < 34; id++)
      m.table[id] = cityscapes_train_id[id] < 0 ? SKD_IGNORE_LABEL : (uint8_t)cityscapes_train_id[id];
  } else if (strcmp(name, "cityscapes-trainids") == 0) {
    preset_classes = 19;
    m.class_names = cityscapes_names;
  } else if (strcmp(name, "camvid") == 0) {
    preset_classes = 11;
    m.class_names = camvid_names;
    m.table[11] = SKD_IGNORE_LABEL; /* void: not a class, as in SegNet's class weights and most papers */
  } else if (strcmp(name, "voc") == 0) {
    preset_classes = 21;
    m.class_names = voc_names;
    m.voc_palette = 1;
  } else if (strcmp(name, "demo") == 0) {
    preset_classes = SKD_DEMO_CLASSES;
    m.class_names = skd_demo_class_names();
  } else if (strcmp(name, "generic") == 0) {
    if (classes < 1 || classes > 255)
      return skd_error(SKD_EINVAL, "label preset generic: classes must be in [1, 255] (got %d)", classes);
    preset_classes = classes;
  } else {
    return skd_error(SKD_EINVAL,
                     "label preset '%s' is unknown (cityscapes, cityscapes-trainids, camvid, voc, demo, generic)",
                     name);
  }
  if (classes != 0 && classes != preset_classes)
    return skd_error(SKD_EINVAL, "label preset %s has %d classes (got classes = %d)", name, preset_classes,
                     classes);
  snprintf(m.name, sizeof m.name, "%s", name);
  m.classes = preset_classes;
  *out = m;
  return SKD_OK;
}
