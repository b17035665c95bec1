#!/usr/bin/env bash
# The table of docs/PERFORMANCE.md: `skd-cl bench` (with the device's tuning
# file, then with CLBlast's and our defaults) and benchmarks/torch_step.py,
# RUNS separate runs each, for the demo and paper-small presets. Prints every
# run's median ms per step and the median of those runs. Needs a built
# build/skd-cl and Debian's python3-torch. Quiet machine, please.
#   bash benchmarks/side_by_side.sh [RUNS]    (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
skd=./build/skd-cl
py=/usr/bin/python3
declare -A steps=([demo]="--steps 10 --warmup 2" [paper-small]="--steps 3 --warmup 1")

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
field() { "$py" -c "import json, sys; d = json.load(sys.stdin); print(d['$1'])"; }

for preset in demo paper-small; do
  for who in tuned defaults pytorch; do
    values=()
    for ((i = 0; i < runs; i++)); do
      case $who in
        tuned) v=$("$skd" bench --preset "$preset" ${steps[$preset]} --json | field ms_per_step) ;;
        defaults) v=$(SKD_TUNING=off "$skd" bench --preset "$preset" ${steps[$preset]} --json | field ms_per_step) ;;
        pytorch) v=$("$py" benchmarks/torch_step.py --preset "$preset" ${steps[$preset]} --json | field ms_per_step_median) ;;
      esac
      values+=("$v")
    done
    printf '%-12s %-9s median %9.1f ms/step  runs: %s\n' "$preset" "$who" \
      "$(printf '%s\n' "${values[@]}" | median)" "${values[*]}"
  done
done
