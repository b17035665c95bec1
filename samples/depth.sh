#!/usr/bin/env bash
# Depth estimation end to end (docs/DEPTH.md): writes the synthetic depth set,
# trains a teacher, then over 3 seeds a student without distillation (the
# baseline) and the same student distilled from the teacher (pair-wise and
# holistic, skd-cl's defaults for --task depth: pixel-wise off), evaluates
# each on the validation list and prints abs rel and delta < 1.25 per seed,
# their mean and standard deviation, and the seeds the distilled student wins.
#
# Usage: samples/depth.sh [OUT_DIR]          (default: depth-out)
# Environment: SKD=path/to/skd-cl skips installing and building;
#   TEACHER_STEPS (600), STUDENT_STEPS (200), SEEDS ("1 2 3"), DISTILL_OPTS (extra train
#   options of the distilled students, e.g. "--pixel"); SKD_DEVICE picks the
#   OpenCL device. Finished runs are not trained again (train --resume auto).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-depth-out}
teacher_steps=${TEACHER_STEPS:-600}
student_steps=${STUDENT_STEPS:-200}
seeds=${SEEDS:-"1 2 3"}
start=$(date +%s)

skd=${SKD:-}
if [ -z "$skd" ]; then
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" --target skd-cl >/dev/null
  skd=build/skd-cl
fi

mkdir -p "$out"
"$skd" make-dataset --task depth --out "$out/data" --seed 1 --train 200 --val 40

# 128 x 128 crops (the smallest the holistic discriminator takes), SGD at lr
# 0.05; the bins: 60 over 0.5 .. 10 m (the defaults). The teacher is
# PSPNet-ResNet18 at width 0.25, the students at width 0.125.
common=(--task depth --train-list "$out/data/train.txt" --val-list "$out/data/val.txt" --crop 128 --batch 4
        --lr 0.05 --arch resnet18 --resume auto)
train() { # name, then train options; the log goes to OUT/NAME.log
  local name=$1
  shift
  echo "training $name..."
  "$skd" train "${common[@]}" --out "$out/$name" "$@" >"$out/$name.log" 2>&1 || {
    tail -5 "$out/$name.log"
    exit 1
  }
}
# "abs_rel delta1" of a checkpoint on the validation list.
score() {
  "$skd" eval --checkpoint "$1" --list "$out/data/val.txt" --json |
    awk -F'[:,]' '/"abs_rel"/ {a = $2} /"delta1"/ {d = $2} END {gsub(/[ \t]/, "", a); gsub(/[ \t]/, "", d); print a, d}'
}

train teacher --width 0.25 --steps "$teacher_steps" --seed 1
read -r t_abs t_d1 < <(score "$out/teacher/last.safetensors")
rows=""
for seed in $seeds; do
  train "baseline-$seed" --width 0.125 --steps "$student_steps" --seed "$seed"
  train "distilled-$seed" --width 0.125 --steps "$student_steps" --seed "$seed" \
    --teacher "$out/teacher/last.safetensors" --d-width 16 ${DISTILL_OPTS:-}
  read -r b_abs b_d1 < <(score "$out/baseline-$seed/last.safetensors")
  read -r s_abs s_d1 < <(score "$out/distilled-$seed/last.safetensors")
  rows+="$seed $b_abs $s_abs $b_d1 $s_d1"$'\n'
done

echo
printf 'teacher (resnet18 x0.25, %s steps): abs rel %.4f, delta<1.25 %.4f\n' "$teacher_steps" "$t_abs" "$t_d1"
echo "students (resnet18 x0.125, $student_steps steps), on $out/data/val.txt:"
printf '%s' "$rows" | awk '
  function sd(s, q, n) { return n > 1 ? sqrt((q - s * s / n) / (n - 1)) : 0 }
  BEGIN { printf "%-6s %14s %14s %16s %16s\n", "seed", "abs rel base", "abs rel dist", "delta1 base", "delta1 dist" }
  NF == 5 {
    n++; printf "%-6s %14.4f %14.4f %16.4f %16.4f\n", $1, $2, $3, $4, $5
    for (k = 2; k <= 5; k++) { s[k] += $k; q[k] += $k * $k }
    wa += $3 < $2; wd += $5 > $4
  }
  END {
    printf "%-6s %14.4f %14.4f %16.4f %16.4f\n", "mean", s[2] / n, s[3] / n, s[4] / n, s[5] / n
    printf "%-6s %14.4f %14.4f %16.4f %16.4f\n", "sd", sd(s[2], q[2], n), sd(s[3], q[3], n), sd(s[4], q[4], n), sd(s[5], q[5], n)
    printf "distilled wins: %d of %d seeds on abs rel (lower), %d of %d on delta<1.25 (higher)\n", wa, n, wd, n
  }'
echo "wall time: $(( $(date +%s) - start )) s"
