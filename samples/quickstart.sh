#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing, builds
# skd-cl, writes the synthetic demo set, trains a teacher, trains a student
# without distillation, distils the same student with all three losses, and
# prints one mIoU table. About 10-15 minutes on a 2-core CPU with PoCL.
#
# Usage: samples/quickstart.sh [OUT_DIR]     (default: quickstart-out)
# Environment: SKD_DEVICE picks the OpenCL device (see skd-cl list-devices).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-quickstart-out}
start=$(date +%s)

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
skd=build/skd-cl
"$skd" list-devices | grep '^\*' || true

mkdir -p "$out"
"$skd" make-dataset --out "$out/data" --seed 1

# The demo networks: a PSPNet-ResNet18 teacher at width 0.25 and a student
# at width 0.125 (an eighth of the paper's channels), both from scratch, on
# 128 x 128 crops (the smallest the holistic discriminator accepts), with a
# learning rate of 0.05 to get far in a few hundred steps.
data=(--train-list "$out/data/train.txt" --val-list "$out/data/val.txt" --preset demo
      --crop 128 --batch 4 --lr 0.05)
student=(--arch resnet18 --width 0.125 --steps "${SKD_STUDENT_STEPS:-200}")
# For students this small and this short a run, the reference's weights
# (pixel-wise 10, summed over the batch; pair-wise 1) drown the task loss; a
# per-pixel mean at weight 1 and a pair-wise weight of 0.1 transfer the
# teacher's knowledge instead (docs/QUICKSTART.md has the measurements).
distill=(--teacher "$out/teacher/last.safetensors" --pixel-norm mean --lambda-pi 1 --lambda-pa 0.1 --d-width 16)

run() { # name, options...
  local name=$1; shift
  echo "== $name"
  "$skd" train "${data[@]}" "$@" --out "$out/$name"
}
run teacher --arch resnet18 --width 0.25 --steps "${SKD_TEACHER_STEPS:-300}"
run student-baseline "${student[@]}"
run student-distilled "${student[@]}" "${distill[@]}"

miou() { # checkpoint -> mIoU in percent
  "$skd" eval --checkpoint "$1" --list "$out/data/val.txt" --json |
    sed -n 's/^[[:space:]]*"mean_iou":[[:space:]]*\([0-9.eE+-]*\),*$/\1/p' | awk '{ printf "%.2f", 100 * $1 }'
}
echo
echo "mIoU on the demo validation set (50 images)"
printf '  %-34s %s\n' "teacher (resnet18 x0.25)" "$(miou "$out/teacher/last.safetensors") %"
printf '  %-34s %s\n' "student baseline (resnet18 x0.125)" "$(miou "$out/student-baseline/last.safetensors") %"
printf '  %-34s %s\n' "student distilled (pixel+pair+ho)" "$(miou "$out/student-distilled/last.safetensors") %"
echo "wall time: $(( $(date +%s) - start )) s"
