#!/usr/bin/env bash
# The table of docs/PERFORMANCE.md: `skd-cl bench` (with the device's tuning
# file, then with CLBlast's and our defaults) and benchmarks/torch_step.py at
# every thread count from 1 to nproc, RUNS separate runs each, per preset.
# Prints every run's median ms per step, the median of those runs, PyTorch's
# convolution code path per thread count (oneDNN, native or mixed), the best
# thread count's median (pytorch-best) and skd-cl's speed against it
# (pytorch-best ms / skd-cl ms: above 1, skd-cl is faster). Needs a built
# skd-cl (SKD=path, default build/skd-cl) and Debian's python3-torch. Quiet
# machine, please. STEPS="--steps N --warmup M" replaces each preset's counts
# (a quick check of the script).
#   bash benchmarks/side_by_side.sh [RUNS [PRESETS]]   (default 5 "demo paper-small")
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
presets=${2:-demo paper-small}
skd=${SKD:-./build/skd-cl}
py=/usr/bin/python3
max_threads=$(nproc)
declare -A steps=([demo]="--steps 10 --warmup 2" [paper]="--steps 3 --warmup 1" [paper-small]="--steps 3 --warmup 1")

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# fields F1 F2 ...: those fields of the JSON object on stdin, space-separated.
fields() { "$py" -c "import json, sys; d = json.load(sys.stdin); print(*(d[k] for k in sys.argv[1:]))" "$@"; }

for preset in $presets; do
  [ -n "${steps[$preset]:-}" ] || { echo "side_by_side.sh: unknown preset '$preset'" >&2; exit 2; }
  read -ra counts <<<"${STEPS:-${steps[$preset]}}"
  contenders=(tuned defaults)
  for ((t = 1; t <= max_threads; t++)); do contenders+=("pytorch-t$t"); done
  declare -A values=() paths=()
  # Interleaved: each repetition runs every contender once, so that drift on
  # the machine (other load, heat) hits all of them alike.
  for ((i = 0; i < runs; i++)); do
    for who in "${contenders[@]}"; do
      case $who in
        tuned) v=$("$skd" bench --preset "$preset" "${counts[@]}" --json | fields ms_per_step) ;;
        defaults) v=$(SKD_TUNING=off "$skd" bench --preset "$preset" "${counts[@]}" --json | fields ms_per_step) ;;
        pytorch-t*)
          read -r v path < <("$py" benchmarks/torch_step.py --preset "$preset" "${counts[@]}" \
            --threads "${who#pytorch-t}" --json | fields ms_per_step_median conv_path)
          # Every run of one thread count should take the same path; list each one seen.
          [[ " ${paths[$who]:-} " == *" $path "* ]] || paths[$who]="${paths[$who]:-} $path"
          ;;
      esac
      values[$who]="${values[$who]:-} $(printf '%.1f' "$v")"
    done
  done

  declare -A med=()
  best_who="" best_ms=""
  for who in "${contenders[@]}"; do
    # shellcheck disable=SC2086 # the runs' values, one word each
    med[$who]=$(printf '%s\n' ${values[$who]} | median)
    extra=""
    if [[ $who == pytorch-t* ]]; then
      extra="  conv path:${paths[$who]}"
      if [ -z "$best_ms" ] || awk -v a="${med[$who]}" -v b="$best_ms" 'BEGIN {exit !(a < b)}'; then
        best_who=$who best_ms=${med[$who]}
      fi
    fi
    printf '%-12s %-13s median %9.1f ms/step  runs:%s%s\n' "$preset" "$who" "${med[$who]}" "${values[$who]}" "$extra"
  done
  printf '%-12s %-13s median %9.1f ms/step  (%s threads)\n' "$preset" pytorch-best "$best_ms" "${best_who#pytorch-t}"
  for who in tuned defaults; do
    printf '%-12s %-13s skd-cl speed / pytorch-best: %.2f\n' "$preset" "$who" \
      "$(awk -v p="$best_ms" -v s="${med[$who]}" 'BEGIN {print p / s}')"
  done
  unset values paths med
done
