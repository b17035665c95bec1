#!/bin/sh
# End-to-end test of skd-cl bench on the demo preset: the report has the
# timing lines, every phase of the table and the memory line; --json gives
# the same fields; the temporary data set and teacher are removed at exit; a
# bad preset is an error naming the option; --kernels prints every kernel
# row and a positive peak FMA rate; --profile adds a "% peak" column. No
# timing is asserted.
# usage: test_bench.sh path/to/skd-cl   (exit 77: no OpenCL device, skipped)
set -u
TEST_NAME=test_bench SKD=${1:-}
. "$(dirname "$0")/cli_helpers.sh"
mkdir "$WORK/tmp" || exit 1

TMPDIR="$WORK/tmp" "$SKD" bench --preset demo --steps 2 --warmup 1 >"$WORK/text.out" 2>"$WORK/text.err" ||
  { fail "bench --preset demo: exit $?"; sed 's/^/    /' "$WORK/text.err"; }
cat "$WORK/text.out"
for text in "preset      demo" "ms/step" "images/s" "phase             median ms    share" data teacher_fwd \
  student_fwd task_loss pixel pair holistic_g d_step student_bwd optimiser "device memory" "tuning      "; do
  has "$WORK/text.out" "$text"
done
[ -z "$(ls -A "$WORK/tmp")" ] || fail "bench left files in TMPDIR: $(ls -A "$WORK/tmp")"

TMPDIR="$WORK/tmp" "$SKD" bench --preset demo --steps 1 --warmup 0 --json >"$WORK/json.out" 2>"$WORK/json.err" ||
  { fail "bench --json: exit $?"; sed 's/^/    /' "$WORK/json.err"; }
for text in '"preset": "demo"' '"tuning": "' '"ms_per_step": ' '"images_per_s": ' '"phases_ms": {"data": ' '"optimiser": ' \
  '"memory_bytes": {"total": '; do
  has "$WORK/json.out" "$text"
done

# With --profile: the per-kernel table on stderr, with the peak FMA rate and
# a "% peak" value on the rows whose work is recorded (the convolutions).
TMPDIR="$WORK/tmp" "$SKD" --profile bench --preset demo --steps 1 --warmup 0 --no-phases >"$WORK/whole.out" \
  2>"$WORK/whole.err" || { fail "bench --profile --no-phases: exit $?"; sed 's/^/    /' "$WORK/whole.err"; }
has "$WORK/whole.out" "one device sync per step"
grep -q teacher_fwd "$WORK/whole.out" && fail "bench --no-phases printed the phase table"
has "$WORK/whole.err" "peak FMA: "
has "$WORK/whole.err" "% peak"
# Columns: kernel, calls, total ms, share, GFLOP/s, % peak, GB/s; some row has a percentage in the sixth.
awk '$6 ~ /^[0-9.]+%$/ {found = 1} END {exit !found}' "$WORK/whole.err" ||
  { fail "bench --profile: no kernel row with a % peak value"; sed 's/^/    /' "$WORK/whole.err"; }

# The kernel benchmark: the copy rows and every kernel family's rows, in
# text and JSON (small inputs; no timing asserted).
"$SKD" bench --kernels --size small --steps 2 --warmup 1 >"$WORK/kern.out" 2>"$WORK/kern.err" ||
  { fail "bench --kernels: exit $?"; sed 's/^/    /' "$WORK/kern.err"; }
cat "$WORK/kern.out"
for text in "copy        " "peak FMA: " "median ms" "% copy" "% peak" "copy kernel (float)" "copy kernel (float4)" \
  "clEnqueueCopyBuffer" "softmax_kl fwd (value)" "softmax_kl fwd+bwd (grad)" "pair default fwd " "pair default fwd+bwd" \
  "pair node2 r1 fwd " "pair node2 r1 fwd+bwd" "softmax_rows fwd" "softmax_rows bwd" "batchnorm train fwd" "batchnorm train bwd" \
  "conv vec fwd, 16 channels" "conv vec fwd, 32 channels"; do
  has "$WORK/kern.out" "$text"
done
"$SKD" bench --kernels --size small --steps 1 --warmup 0 --json >"$WORK/kjson.out" 2>"$WORK/kjson.err" ||
  { fail "bench --kernels --json: exit $?"; sed 's/^/    /' "$WORK/kjson.err"; }
for text in '"size": "small"' '"copy_gb_per_s": ' '"peak_fma_gflop_per_s": ' '"name": "softmax_kl fwd (value)"' \
  '"name": "batchnorm train bwd"' '"gflop_per_s": ' '"peak_share": '; do
  has "$WORK/kjson.out" "$text"
done
# The peak FMA rate is positive, in text and JSON.
peak_text=$(sed -n 's/^peak FMA: \([0-9.eE+-]*\) GFLOP\/s.*/\1/p' "$WORK/kern.out")
peak_json=$(sed -n 's/.*"peak_fma_gflop_per_s": \([0-9.eE+-]*\),.*/\1/p' "$WORK/kjson.out")
for peak in "text:$peak_text" "json:$peak_json"; do
  awk -v v="${peak#*:}" 'BEGIN {exit !(v + 0 > 0)}' ||
    fail "bench --kernels: the peak FMA rate (${peak%%:*}) is '${peak#*:}', not positive"
done
"$SKD" bench --kernels --size huge >"$WORK/badk.out" 2>"$WORK/badk.err" && fail "bench --kernels --size huge: exit 0"
has "$WORK/badk.err" "--size"

"$SKD" bench --preset huge >"$WORK/bad.out" 2>"$WORK/bad.err" && fail "bench --preset huge: exit 0"
has "$WORK/bad.err" "--preset"

echo "test_bench: $FAILED failure(s)"
[ $FAILED -eq 0 ]
