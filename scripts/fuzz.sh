#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, with AddressSanitizer and
# UBSan) and runs each for SKD_FUZZ_SECONDS (default 60), two at a time, from
# its committed seed corpus. Fails when a target crashes, leaks or trips a
# sanitizer; the input that did it is kept in build-fuzz/fuzz/<name>/.
# Usage: scripts/fuzz.sh [name...]   (default: every tests/fuzz/fuzz_<name>.c)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SKD_FUZZ_SECONDS:-60}
dir=build-fuzz
parallel=2

cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DSKD_FUZZ=ON -DSKD_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir" -j "$(nproc)" --target skd_fuzz_targets

names=("$@")
if ((${#names[@]} == 0)); then
  for src in tests/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    names+=("${n#fuzz_}")
  done
fi

# One target: new inputs go to a scratch corpus (the committed seeds stay as
# they are), the output to <name>.log, the exit status to <name>.rc.
fuzz_one() {
  local name=$1 out="$dir/fuzz/$1"
  rm -rf "$out"
  mkdir -p "$out/corpus"
  local seeds=tests/fuzz/corpus/$name
  [[ -d $seeds ]] || seeds=""
  set +e
  TMPDIR="$out" "$dir/tests/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" $seeds >"$out.log" 2>&1
  echo $? >"$out.rc"
}

start=$(date +%s)
running=0
for name in "${names[@]}"; do
  [[ -x $dir/tests/fuzz/fuzz_$name ]] || { echo "fuzz: no target fuzz_$name"; exit 2; }
  if ((running >= parallel)); then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$name" &
  running=$((running + 1))
done
wait

failed=0
for name in "${names[@]}"; do
  rc=$(cat "$dir/fuzz/$name.rc")
  # libFuzzer's last status line: executions, coverage (cov: edges, ft: features), corpus.
  stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/fuzz/$name.log" | tail -n 1 || true)
  if [[ $rc != 0 ]]; then
    echo "fuzz_$name: FAILED (exit $rc), see $dir/fuzz/$name.log:"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$dir/fuzz/$name.log" | head -n 10 | sed 's/^/    /'
    failed=1
  else
    echo "fuzz_$name: ok, ${secs} s: ${stats:-no final stats}"
  fi
done
echo "fuzz: $((${#names[@]})) targets in $(($(date +%s) - start)) s"
exit $failed
