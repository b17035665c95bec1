#!/bin/sh
# Data-parallel training under mpirun (docs/DISTRIBUTED.md): 2 ranks against
# one process on the same global batch, two identical 2-rank runs bit for
# bit, resuming with another rank count, the checks at start (batch split,
# mismatched options), SIGTERM. Skipped (77) without MPI in the build or
# without mpirun.
set -u
TEST_NAME=test_dist SKD=${1:-} COMPARE=${2:?usage: test_dist.sh skd-cl dist_compare}
. "$(dirname "$0")/cli_helpers.sh"
case $COMPARE in /*) ;; *) COMPARE=$OLDPWD/$COMPARE ;; esac
if [ "$("$COMPARE" --mpi)" != 1 ] || ! command -v mpirun >/dev/null 2>&1; then
  echo "MPI not built in or no mpirun: skipped"
  exit 77
fi
# The sanitizer build: Open MPI keeps allocations until exit in components it
# loads and unloads itself (unknown modules to LeakSanitizer, so no
# suppression can name them); leak checking is left to the single-process
# tests here. Other sanitizer checks stay on.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# Open MPI refuses root without the flag; --oversubscribe: 2 ranks on any core count.
MPI="mpirun --oversubscribe --allow-run-as-root --mca btl self,vader -np"

run make ok "$SKD" make-dataset --out demo --size 128 --train 8 --val 3
# crop 128: the holistic term needs 16x16 logits; width 1/16 keeps it fast.
NET="--preset demo --arch resnet18 --width 0.0625 --crop 128"
TRAIN="train --train-list ../demo/train.txt $NET --batch 4 --log-every 1 --out r"

# ---- one process vs 2 ranks x 2 images, the same global batch of 4 (sync-bn on by default) ----
# Teacher training, one step: the forward (every BN's batch statistics,
# hence the running statistics) matches one process to float rounding.
mkdir -p t1 t2
(cd t1 && "$SKD" $TRAIN --steps 1 >../t1.out 2>../t1.err) || fail "one process: exit $?"
(cd t2 && $MPI 2 "$SKD" $TRAIN --steps 1 >../t2.out 2>../t2.err) || fail "2 ranks: exit $?"
"$COMPARE" t2/r/last.safetensors t1/r/last.safetensors 1e-5 running_ >cmp_stats.out || fail "running statistics: $(cat cmp_stats.out)"
# Every tensor (parameters and momentum = the averaged gradient): docs/DISTRIBUTED.md gives what was measured.
"$COMPARE" t2/r/last.safetensors t1/r/last.safetensors 1e-2 >cmp_all.out || fail "all tensors: $(cat cmp_all.out)"
echo "1 step, running statistics: $(cat cmp_stats.out)"
# Without padded crops (random scale >= 1) every tensor agrees closely; the
# DSN's first conv bias is left out: a bias before BN has an exact gradient
# of 0, so its computed one is rounding alone.
mkdir -p s1 s2
(cd s1 && "$SKD" $TRAIN --steps 1 --scale-min 1 --scale-max 1.5 >../s1.out 2>../s1.err) || fail "one process: exit $?"
(cd s2 && $MPI 2 "$SKD" $TRAIN --steps 1 --scale-min 1 --scale-max 1.5 >../s2.out 2>../s2.err) || fail "2 ranks: exit $?"
"$COMPARE" s2/r/last.safetensors s1/r/last.safetensors 3e-5 "" dsn.0.bias >cmp_nopad.out ||
  fail "no padding: $(cat cmp_nopad.out)"
echo "1 step, scale >= 1, every tensor but dsn.0.bias: $(cat cmp_nopad.out)"
echo "1 step, every tensor: $(cat cmp_all.out)"
# Validation split over the ranks (3 images: 2 + 1), the confusion matrices
# summed: the same scores as one process (whose parameters differ by ~1e-5,
# too little to move a pixel's class here).
mkdir -p v1 v2
(cd v1 && "$SKD" $TRAIN --steps 2 --scale-min 1 --scale-max 1.5 --val-list ../demo/val.txt >../v1.out 2>../v1.err) ||
  fail "one process with validation: exit $?"
(cd v2 && $MPI 2 "$SKD" $TRAIN --steps 2 --scale-min 1 --scale-max 1.5 --val-list ../demo/val.txt >../v2.out \
  2>../v2.err) || fail "2 ranks with validation: exit $?"
grep '"val_miou"' v1/r/log.jsonl >val1.txt
grep '"val_miou"' v2/r/log.jsonl >val2.txt
[ -s val1.txt ] && cmp -s val1.txt val2.txt || fail "validation differs: $(cat val1.txt) vs $(cat val2.txt)"
[ "$(grep -c 'validation mIoU' v2.err)" = 1 ] || fail "the 2-rank validation was not printed once"

# Depth (--task depth) validation is split the same way, the sums merged.
run make_depth ok "$SKD" make-dataset --task depth --out depth --size 128 --train 8 --val 3
DEPTH="train --task depth --train-list ../depth/train.txt --val-list ../depth/val.txt $NET --batch 4 --steps 2
  --scale-min 1 --scale-max 1.5 --out r"
mkdir -p dv1 dv2
(cd dv1 && "$SKD" $DEPTH >../dv1.out 2>../dv1.err) || fail "depth, one process: exit $?"
(cd dv2 && $MPI 2 "$SKD" $DEPTH >../dv2.out 2>../dv2.err) || fail "depth, 2 ranks: exit $?"
grep '"val_abs_rel"' dv1/r/log.jsonl >dval1.txt
grep '"val_abs_rel"' dv2/r/log.jsonl >dval2.txt
[ -s dval1.txt ] && cmp -s dval1.txt dval2.txt || fail "depth validation differs: $(cat dval1.txt) vs $(cat dval2.txt)"

# Full distillation (pixel, pair, holistic) from that teacher: step 1's
# every loss term, D's included, as one process logged it (6 digits).
mkdir -p one a b
teacher=../t1/r/last.safetensors
(cd one && "$SKD" $TRAIN --teacher $teacher --steps 2 >../one.out 2>../one.err) || fail "one process: exit $?"
(cd a && $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 2 >../a.out 2>../a.err) || fail "2 ranks: exit $?"
(cd b && $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 2 >../b.out 2>../b.err) || fail "2 ranks again: exit $?"
# step 1's terms, one "name value" a line
terms() { sed -n 's/^{"step": 1, \(.*\), "images_per_s".*/\1/p' "$1" | tr ',' '\n' | tr -d '":' ; }
terms one/r/log.jsonl >terms_one
terms a/r/log.jsonl >terms_two
[ "$(wc -l <terms_one)" -ge 10 ] || fail "one process logged no step 1 terms"
paste terms_one terms_two | awk '{ d = $2 - $4; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2;
  if ($1 != $3 || d > 1e-5 * m + 1e-9) { print "step 1 " $1 ": " $2 " vs " $4; bad = 1 } } END { exit bad }' \
  >terms.out || fail "$(cat terms.out)"
cmp -s a/r/last.safetensors b/r/last.safetensors || fail "two identical 2-rank runs differ"
[ "$(grep -c '^training\|^distilling' a.err)" = 1 ] || fail "more than rank 0 printed the start line"
# Without padded crops, 2 steps: the student (but dsn.0.bias) and D (but its
# self-attention, whose gradients are rounding-sized while its gamma is 0 at
# the start) against one process.
mkdir -p onep twop
(cd onep && "$SKD" $TRAIN --teacher $teacher --steps 2 --scale-min 1 --scale-max 1.5 >../onep.out 2>../onep.err) ||
  fail "one process: exit $?"
(cd twop && $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 2 --scale-min 1 --scale-max 1.5 >../twop.out \
  2>../twop.err) || fail "2 ranks: exit $?"
# The issue's bound: every parameter and BN statistic (all but the optimiser
# state) within 1e-5 relative after K = 2 steps of full distillation.
"$COMPARE" twop/r/last.safetensors onep/r/last.safetensors 1e-5 "" optim. >cmp_params.out ||
  fail "distillation, parameters: $(cat cmp_params.out)"
echo "distillation, 2 steps, scale >= 1, every parameter: $(cat cmp_params.out)"
# Without synchronised BN each rank normalises with its 2 images: another
# training, not rounding (docs/DISTRIBUTED.md: parameters differ by ~1).
mkdir -p nosync
(cd nosync && $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 2 --scale-min 1 --scale-max 1.5 --no-sync-bn \
  >../nosync.out 2>../nosync.err) || fail "2 ranks, --no-sync-bn: exit $?"
if "$COMPARE" nosync/r/last.safetensors onep/r/last.safetensors 1e-2 "" optim. >cmp_nosync.out; then
  fail "--no-sync-bn matched one process: $(cat cmp_nosync.out)"
fi
echo "distillation, 2 steps, scale >= 1, --no-sync-bn, every parameter: $(cat cmp_nosync.out)"
# Buckets of 10 kB (dozens per step, started while backward runs) sum the
# same elements: the same bits as one 25 MB bucket.
mkdir -p small
(cd small && SKD_DIST_BUCKET_MB=0.01 $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 2 --scale-min 1 --scale-max 1.5 \
  >../small.out 2>../small.err) || fail "2 ranks, small buckets: exit $?"
cmp -s small/r/last.safetensors twop/r/last.safetensors || fail "small buckets changed the result"
# With unlabeled images each rank's batch is its labeled shard then its
# unlabeled one: dropout masks and D's penalty mixing weights follow the
# global rows (D differed by 0.15 while they followed the local ones).
grep -v '^#' demo/val.txt | cut -d' ' -f1 >demo/unlabeled.txt
UNL="--teacher $teacher --steps 2 --scale-min 1 --scale-max 1.5 --unlabeled-list ../demo/unlabeled.txt --unlabeled-batch 2"
mkdir -p u1 u2
(cd u1 && "$SKD" $TRAIN $UNL >../u1.out 2>../u1.err) || fail "unlabeled, one process: exit $?"
(cd u2 && $MPI 2 "$SKD" $TRAIN $UNL >../u2.out 2>../u2.err) || fail "unlabeled, 2 ranks: exit $?"
"$COMPARE" u2/r/last.safetensors u1/r/last.safetensors 5e-5 "" optim. >cmp_unl.out ||
  fail "unlabeled images, parameters: $(cat cmp_unl.out)"
echo "distillation with unlabeled images, 2 steps, scale >= 1, every parameter: $(cat cmp_unl.out)"
"$COMPARE" twop/r/last.safetensors onep/r/last.safetensors 5e-5 student dsn.0.bias >cmp_ds.out ||
  fail "distillation, student: $(cat cmp_ds.out)"
"$COMPARE" twop/r/last.safetensors onep/r/last.safetensors 5e-5 disc attn >cmp_dd.out ||
  fail "distillation, D: $(cat cmp_dd.out)"
echo "distillation, 2 steps, scale >= 1: student but dsn.0.bias: $(cat cmp_ds.out); D but attention: $(cat cmp_dd.out)"
"$COMPARE" a/r/last.safetensors one/r/last.safetensors 1e9 >cmp_distill.out || fail "distillation: $(cat cmp_distill.out)"
echo "distillation, 2 steps, default scale, every tensor: $(cat cmp_distill.out)"

# ---- resume with another rank count: 2 ranks -> 1 process -> 2 ranks ----
(cd a && "$SKD" $TRAIN --teacher $teacher --steps 3 --resume r/last.safetensors >../r1.out 2>../r1.err) ||
  fail "resume on 1 rank: exit $?"
has r1.err "steps 2..3"
(cd a && $MPI 2 "$SKD" $TRAIN --teacher $teacher --steps 4 --resume r/last.safetensors >../r2.out 2>../r2.err) ||
  fail "resume on 2 ranks: exit $?"
has r2.err "steps 3..4"
grep -q '"step": 4' a/r/log.jsonl || fail "the 2-rank resume logged no step 4"

# ---- list-devices under mpirun: what each rank would take ----
run devices ok $MPI 2 "$SKD" list-devices
has devices.out "rank 0 of 2 (node-local 0): device "
has devices.out "rank 1 of 2 (node-local 1): device "

# ---- bench under mpirun: per-rank and total rate, the allreduce time and
# the share hidden behind backward, the last step's buckets ----
export SKD_DIST_BUCKET_MB=0.05
run bench ok $MPI 2 "$SKD" bench --steps 2 --warmup 1 --no-phases
run bench_json ok $MPI 2 "$SKD" bench --steps 2 --warmup 1 --no-phases --json
unset SKD_DIST_BUCKET_MB
has bench.out "ranks       2: "
has bench.out "% hidden), write-back "
has bench.out "bucket 2 "
has bench.out "backward    done on the device at "
has bench_json.out '"ranks": 2, "images_per_s_per_rank": '
has bench_json.out '"allreduce_hidden_percent": '

# ---- checks at start ----
run odd error $MPI 2 "$SKD" train --train-list demo/train.txt $NET --batch 3 --steps 1 --out odd
has odd.err "the global batch must be a multiple of the 2 ranks"
run mismatch error mpirun --oversubscribe --allow-run-as-root --mca btl self,vader \
  -np 1 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 1 --out mm : \
  -np 1 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 1 --lr 0.5 --out mm
has mismatch.err "rank 1's training configuration (or resume step) differs from rank 0's"

run bucket_mismatch error mpirun --oversubscribe --allow-run-as-root --mca btl self,vader \
  -np 1 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 1 --out bm : \
  -np 1 env SKD_DIST_BUCKET_MB=1 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 1 --out bm
has bucket_mismatch.err "rank 1's SKD_DIST_BUCKET_MB differs from rank 0's"
run bad_timeout error env SKD_DIST_TIMEOUT=soon $MPI 2 "$SKD" train --train-list demo/train.txt $NET --steps 1 --out bt
has bad_timeout.err "SKD_DIST_TIMEOUT: expected seconds (0: wait forever) between 0 and 1e+07, got 'soon'"

# ---- SIGTERM to mpirun: every rank stops at the same step, rank 0 saves ----
$MPI 2 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 100000 --log-every 1 --out term \
  >term.out 2>term.err &
pid=$!
for _ in $(seq 1 600); do
  [ -s term/log.jsonl ] && break
  sleep 0.1
done
kill -TERM $pid
wait $pid
has term.err "stopped by SIGTERM at step"
[ -f term/last.safetensors ] || fail "SIGTERM: no term/last.safetensors"

# ---- a rank that fails or hangs: the job ends, the last checkpoint resumes ----
# rank_fault NAME SIGNAL: a 2-rank run saving every step; once it has saved,
# SIGNAL to one rank; mpirun must exit non-zero, and NAME/last.safetensors
# must resume. Sets $took (seconds from the signal to the job's end).
rank_fault() {
  $MPI 2 "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps 100000 --save-every 1 --out "$1" \
    >"$1.out" 2>"$1.err" &
  pid=$!
  for _ in $(seq 1 600); do
    [ -f "$1/last.safetensors" ] && break
    sleep 0.1
  done
  victim=$(pgrep -P $pid | tail -n 1)
  [ -n "$victim" ] && kill -"$2" "$victim"
  signalled=$(date +%s)
  wait $pid
  rc=$?
  took=$(($(date +%s) - signalled))
  [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
  [ $rc -ne 0 ] || fail "$1: mpirun exit 0"
  at=$(grep -ao '"step":"[0-9]*"' "$1/last.safetensors" | head -n 1 | tr -dc '0-9')
  [ -n "$at" ] || fail "$1: last.safetensors has no step"
  run "${1}_resume" ok "$SKD" train --train-list demo/train.txt $NET --batch 4 --steps $((${at:-0} + 1)) \
    --out "$1" --resume "$1/last.safetensors"
}
if command -v pgrep >/dev/null 2>&1; then
  rank_fault killed KILL # a rank dies: mpirun ends the others
  has killed.err "exited on signal 9"
  # a rank hangs without exiting (stopped): the others give up after
  # SKD_DIST_TIMEOUT (10 s: a sanitizer build on a busy machine can keep a
  # rank that long from the first step's collective)
  export SKD_DIST_TIMEOUT=10
  rank_fault hung STOP
  unset SKD_DIST_TIMEOUT
  [ "$took" -lt 60 ] || fail "a hung rank: the job took $took s to end"
  has hung.err "for the other ranks (one of them hangs, or the network is down); giving up (SKD_DIST_TIMEOUT"
fi

echo "$PASSED checks passed, $FAILED failed"
[ $FAILED -eq 0 ]
