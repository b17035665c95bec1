#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing, builds
# skd-cl, writes the synthetic demo set, then `skd-cl study` trains a teacher
# and, over 3 seeds, a student without distillation (the baseline) and the
# same student distilled from the teacher, and prints the table: each seed's
# mIoU, mean, sd, the paired difference with its 95 % interval, and wins.
# About 9 minutes on a 2-core CPU with PoCL (docs/QUICKSTART.md).
#
# Usage: samples/quickstart.sh [OUT_DIR]     (default: quickstart-out)
# Environment: SKD_DEVICE picks the OpenCL device (see skd-cl list-devices).
# Run it again to see the table at once: finished runs are not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-quickstart-out}
start=$(date +%s)

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target skd-cl >/dev/null
skd=build/skd-cl
"$skd" list-devices | grep '^\*' || true

mkdir -p "$out"
"$skd" make-dataset --out "$out/data" --seed 1

# The demo networks, from scratch on 128 x 128 crops (the smallest the
# holistic discriminator accepts), SGD at lr 0.05 to get far in a few hundred
# steps. The teacher, PSPNet-ResNet18 at width 0.25, trains for 1000 steps; the
# student, at width 0.125 (an eighth of the paper's channels), for 400. Alone,
# that student reaches 76 % mIoU only after 1000 steps or more
# (docs/QUICKSTART.md). The distilled student uses skd-cl's defaults for the
# three losses, with a discriminator of width 32 instead of 64 for speed.
common=(--train-list "$out/data/train.txt" --val-list "$out/data/val.txt" --preset demo
        --crop 128 --batch 4 --lr 0.05 --arch resnet18 --width 0.125 --steps 400)
"$skd" study "${common[@]}" --teacher-run "--width 0.25 --steps 1000" --seeds 3 --out "$out/study" \
  --run "distilled: --d-width 32" --markdown "$out/study.md"
echo "wall time: $(( $(date +%s) - start )) s"
