#!/bin/sh
# End-to-end test of skd-cl eval, predict, train's input checks and tune, on a tiny
# demo set: train 3 steps, evaluate (whole images; sliding windows + flip;
# JSON), predict (list, single image, overlay, another image size), and the
# error cases, each of which must exit non-zero with a message naming the
# file or option and leave no output file behind.
# usage: test_cli.sh path/to/skd-cl   (exit 77: no OpenCL device, skipped)
set -u
TEST_NAME=test_cli SKD=${1:-}
. "$(dirname "$0")/cli_helpers.sh"
START=$(date +%s)

# png FILE W H: FILE is a complete PNG of W x H pixels (IHDR read with od).
png() {
  [ -f "$1" ] || { fail "$1 was not written"; return 0; }
  sig=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
  [ "$sig" = 89504e470d0a1a0a ] || fail "$1 is not a PNG (signature $sig)"
  size=$(od -An -tu1 -j16 -N8 "$1" | tr -s ' \n' ' ')
  want=$(printf ' 0 0 %d %d 0 0 %d %d ' $(($2 / 256)) $(($2 % 256)) $(($3 / 256)) $(($3 % 256)))
  [ "$size" = "$want" ] || fail "$1: IHDR size bytes '$size', expected '$want'"
  tail -c 12 "$1" | grep -q IEND || fail "$1 does not end with IEND"
}

# ---- a demo set and a network trained for 3 steps ----
run make ok "$SKD" make-dataset --out demo --size 64 --train 4 --val 2
run make72 ok "$SKD" make-dataset --out demo72 --size 72 --train 1 --val 1 --seed 2
run train ok "$SKD" train --train-list demo/train.txt --val-list demo/val.txt --preset demo --arch resnet18 \
  --width 0.0625 --crop 64 --batch 2 --steps 3 --out run
CKPT=run/last.safetensors
[ -f "$CKPT" ] || { fail "training wrote no $CKPT"; exit 1; }

# ---- SIGTERM (a scheduler preempting the job): saves, says so, exits 143, resumes ----
"$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 --batch 2 \
  --steps 100000 --log-every 1 --out term >term.out 2>term.err &
pid=$!
for _ in $(seq 1 300); do
  [ -s term/log.jsonl ] && break
  sleep 0.1
done
# A second run into the same directory while the first one runs is refused (their checkpoints would mix).
run term_twice error "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.0625 \
  --crop 64 --batch 2 --steps 3 --out term
has term_twice.err "another skd-cl process is writing to term"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "SIGTERM: exit $rc, expected 143"
has term.err "stopped by SIGTERM at step"
[ -f term/last.safetensors ] || fail "SIGTERM: no term/last.safetensors"
absent term/last.safetensors.tmp.$pid
stopped=$(sed -n 's/.*stopped by SIGTERM at step \([0-9]*\).*/\1/p' term.err)
run term_resume ok "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
  --batch 2 --steps $((stopped + 1)) --resume term/last.safetensors --out term
has term_resume.err "steps $stopped..$((stopped + 1))"
grep -q "^{\"resumed_at_step\": $stopped}\$" term/log.jsonl || fail "the log does not mark the resume at step $stopped"

# ---- preemption by SIGKILL: time-based saves, and the same command with --resume auto continues ----
# Both runs use the directory name r (in a/ and b/), so their stored configurations are equal and the
# final checkpoints can be compared byte for byte.
mkdir -p a b
preempt_cmd() { "$SKD" train --train-list ../demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
  --batch 2 --steps 300 --log-every 1 --out r --resume auto --save-minutes 0.00001 "$@"; }
(cd a && preempt_cmd >../straight.out 2>../straight.err) || fail "uninterrupted run: exit $?"
(cd b && exec "$SKD" train --train-list ../demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
  --batch 2 --steps 300 --log-every 1 --out r --resume auto --save-minutes 0.00001 >../killed.out 2>../killed.err) &
pid=$!
for _ in $(seq 1 300); do
  [ "$(wc -l <b/r/log.jsonl 2>/dev/null || echo 0)" -ge 5 ] && break
  sleep 0.02
done
kill -KILL $pid
wait $pid
[ -f b/r/last.safetensors ] || fail "SIGKILL after 5 steps: no time-based b/r/last.safetensors"
(cd b && preempt_cmd >../auto.out 2>../auto.err) || fail "--resume auto: exit $?"
has auto.err "resuming r/last.safetensors at step "
resumed_at=$(sed -n 's/^resuming r\/last.safetensors at step \([0-9]*\)$/\1/p' auto.err)
[ -n "$resumed_at" ] && [ "$resumed_at" -ge 1 ] && [ "$resumed_at" -lt 300 ] || fail "--resume auto resumed at '$resumed_at'"
cmp -s a/r/last.safetensors b/r/last.safetensors || fail "the preempted and resumed run differs from the uninterrupted one"
(cd b && preempt_cmd >../again.out 2>../again.err) || fail "--resume auto of a complete run: exit $?"
has again.err "r/last.safetensors is at step 300 of 300: the run is complete, nothing to do"

# ---- a log that cannot be written (a full disk): the run stops and says so ----
if [ -w /dev/full ]; then
  mkdir -p full && ln -s /dev/full full/log.jsonl
  run full error "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
    --batch 2 --steps 3 --out full
  has full.err "writing full/log.jsonl failed: No space left on device"
fi

# ---- eval ----
run eval ok "$SKD" eval --checkpoint $CKPT --list demo/val.txt
has eval.out "on 2 images of demo/val.txt, whole images"
has eval.out "resnet18 x0.0625, 8 classes"
for name in sky water grass sand tree house balloon buoy; do has eval.out "$name"; done
has eval.out "mean IoU"
has eval.out "reference mean over all"
has eval.out "pixel accuracy"
has eval.out "mean class accuracy"
# The same network, data and whole images as the trainer's validation: the same mIoU.
val=$(sed -n 's/.*validation mIoU \([0-9.]*\)%.*/\1/p' train.err | tail -n 1)
ev=$(sed -n 's/^mean IoU \([0-9.]*\) %.*/\1/p' eval.out)
[ -n "$val" ] && [ "$val" = "$ev" ] || fail "eval mIoU '$ev' differs from the trainer's validation mIoU '$val'"

run eval_window ok "$SKD" eval --checkpoint $CKPT --list demo/val.txt --crop 48 --flip
has eval_window.out "sliding windows of 48x48 + flip"
has eval_window.out "mean IoU"

run eval_json ok "$SKD" eval --checkpoint $CKPT --list demo/val.txt --crop 48 --flip --json
[ "$(head -c 1 eval_json.out)" = "{" ] || fail "eval --json does not start with '{'"
[ "$(tail -n 1 eval_json.out)" = "}" ] || fail "eval --json does not end with '}'"
for key in '"mean_iou":' '"mean_iou_reference":' '"pixel_accuracy":' '"mean_accuracy":' '"per_class":' \
  '"classes":	8' '"images":	2' '"crop":	48' '"flip":	true' '"preset":	"demo"' '"name":	"buoy"'; do
  has eval_json.out "$key"
done
[ "$(grep -c '"iou":' eval_json.out)" -eq 8 ] || fail "eval --json: expected 8 per-class IoUs"
[ -s eval_json.err ] && fail "eval --json wrote to stderr: $(cat eval_json.err)"

# A validation list that repeats an image: a warning (the repeat counts again in the mIoU).
{ cat demo/val.txt; sed -n 2p demo/val.txt; } >demo/dup.txt
run eval_dup ok "$SKD" eval --checkpoint $CKPT --list demo/dup.txt
has eval_dup.err "warning: demo/dup.txt: line 4 names the image of line 2 again (1 repeated line in all)"
grep -q "warning" eval.err && fail "eval warned about a list without repeats: $(cat eval.err)"

# ---- predict ----
run predict_list ok "$SKD" predict --checkpoint $CKPT --out pred --list demo/val.txt
has predict_list.out "wrote 2 predictions to pred"
png pred/val_0000.png 64 64
png pred/val_0001.png 64 64

run predict_one ok "$SKD" predict --checkpoint $CKPT --out pred_overlay --overlay --alpha 0.4 --crop 48 --flip \
  demo/images/train_0001.png
png pred_overlay/train_0001.png 64 64
cmp -s pred_overlay/train_0001.png demo/images/train_0001.png && fail "the overlay is the image itself"

# Another image size: whole, and windows that do not tile it evenly.
run predict_72 ok "$SKD" predict --checkpoint $CKPT --out pred72 demo72/images/val_0000.png
png pred72/val_0000.png 72 72
run predict_72w ok "$SKD" predict --checkpoint $CKPT --out pred72w --crop 48 demo72/images/val_0000.png
png pred72w/val_0000.png 72 72

# ---- a checkpoint without a run configuration (as a converted reference one) ----
# Renaming the metadata key keeps the header's length: no other byte changes.
LC_ALL=C sed 's/"config":/"cOnfig":/' $CKPT >ref.safetensors
run eval_ref ok "$SKD" eval --checkpoint ref.safetensors --list demo/val.txt --preset demo --width 0.0625
ev_ref=$(sed -n 's/^mean IoU \([0-9.]*\) %.*/\1/p' eval_ref.out)
[ "$ev_ref" = "$ev" ] || fail "the checkpoint without config gives mIoU '$ev_ref', with config '$ev'"
run eval_ref_width error "$SKD" eval --checkpoint ref.safetensors --list demo/val.txt --preset demo
has eval_ref_width.err "ref.safetensors"
has eval_ref_width.err "--width"

# A stored configuration value out of range names the file and the field.
LC_ALL=C sed 's/resnet18/resnet99/' $CKPT >badarch.safetensors
run e_stored_arch error "$SKD" eval --checkpoint badarch.safetensors --list demo/val.txt
has e_stored_arch.err "badarch.safetensors: __metadata__ config.arch: unknown network 'resnet99'"

# ---- errors ----
run e_missing error "$SKD" eval --checkpoint missing.safetensors --list demo/val.txt
has e_missing.err "missing.safetensors"
run e_classes error "$SKD" eval --checkpoint $CKPT --list demo/val.txt --classes 5
has e_classes.err "$CKPT holds a network for 8 classes, not 5"
run e_classes_p error "$SKD" predict --checkpoint $CKPT --out e_classes_p --classes 5 demo/images/val_0000.png
has e_classes_p.err "$CKPT"
absent e_classes_p/val_0000.png
run e_arch error "$SKD" eval --checkpoint $CKPT --list demo/val.txt --arch resnet50
has e_arch.err "--arch"
run e_option error "$SKD" eval --checkpoint $CKPT --list demo/val.txt --no-such-option
has e_option.err "--no-such-option"
run e_option_p error "$SKD" predict --checkpoint $CKPT --out e_option_p --bogus 3 demo/images/val_0000.png
has e_option_p.err "--bogus"
absent e_option_p/val_0000.png
run e_list error "$SKD" eval --checkpoint $CKPT --list no_such_list.txt
has e_list.err "no_such_list.txt"
run e_noinput error "$SKD" predict --checkpoint $CKPT --out e_noinput
has e_noinput.err "--list"

run e_image error "$SKD" predict --checkpoint $CKPT --out e_image demo/images/val_0000.png no_such_image.png
has e_image.err "no_such_image.png"
absent e_image/val_0000.png # checked before anything is written
absent e_image/no_such_image.png
echo "not an image" >corrupt.png
run e_corrupt error "$SKD" predict --checkpoint $CKPT --out e_corrupt demo/images/val_0000.png corrupt.png
has e_corrupt.err "corrupt.png"
png e_corrupt/val_0000.png 64 64
absent e_corrupt/corrupt.png
{ head -n 1 demo/val.txt; echo "images/gone.png labels/val_0000.png"; } >demo/bad_val.txt
run e_list_image error "$SKD" predict --checkpoint $CKPT --out e_list_image --list demo/bad_val.txt
has e_list_image.err "demo/bad_val.txt:2:"
has e_list_image.err "gone.png"
absent e_list_image/val_0000.png
mkdir -p other && cp demo/images/val_0000.png other/val_0000.png
run e_same error "$SKD" predict --checkpoint $CKPT --out e_same demo/images/val_0000.png other/val_0000.png
has e_same.err "would both be written to val_0000.png"

# ---- train refuses bad input ----
{ head -n 2 demo/train.txt; echo "images/gone.png labels/train_0000.png"; } >demo/bad_train.txt
run t_list error "$SKD" train --train-list demo/bad_train.txt --preset demo --width 0.0625 --crop 64 --batch 2 \
  --steps 1 --out t_list
has t_list.err "demo/bad_train.txt:3:"
has t_list.err "gone.png"
absent t_list/last.safetensors
# A PNG whose IDAT zlib stream is cut to half, chunk CRC recomputed (gzip's trailer holds
# the same CRC-32) and IEND intact: strict decoding refuses it, naming the list line.
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) \
  $(($1 & 255)))"; }
src=demo/images/train_0000.png
len=$(od -An -tu1 -j33 -N4 $src | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
half=$((len / 2))
tail -c +38 $src | head -c $((4 + half)) >idat_body
crc=$(gzip -c idat_body | tail -c 8 | head -c 4 | od -An -tu1 | awk '{print $4 * 16777216 + $3 * 65536 + $2 * 256 + $1}')
{ head -c 33 $src; be32 $half; cat idat_body; be32 "$crc"; tail -c 12 $src; } >demo/images/cut.png
{ head -n 1 demo/train.txt; echo "images/cut.png labels/train_0000.png"; } >demo/cut_train.txt
run t_cut error "$SKD" train --train-list demo/cut_train.txt --preset demo --width 0.0625 --crop 64 --batch 2 \
  --steps 1 --out t_cut
has t_cut.err "demo/cut_train.txt:2: cannot decode image"
has t_cut.err "cut.png': Not enough image data"
absent t_cut/last.safetensors
run t_batch error "$SKD" train --train-list demo/train.txt --preset demo --batch 1 --out t_batch
has t_batch.err "--batch"
run t_arch error "$SKD" train --train-list demo/train.txt --preset demo --arch resnet7 --out t_arch
has t_arch.err "resnet7"
absent t_arch/last.safetensors

# ---- the trainer's teacher goes through the same checkpoint opening ----
DISTIL="--train-list demo/train.txt --width 0.0625 --crop 64 --batch 2 --steps 1 --no-holistic"
run t_teacher ok "$SKD" train $DISTIL --preset demo --teacher $CKPT --out t_teacher
run t_teacher_ref ok "$SKD" train $DISTIL --preset demo --teacher ref.safetensors --teacher-arch resnet18 \
  --teacher-width 0.0625 --out t_teacher_ref
loss=$(sed -n 's/.*"loss": \([^,]*\),.*/\1/p' t_teacher/log.jsonl)
loss_ref=$(sed -n 's/.*"loss": \([^,]*\),.*/\1/p' t_teacher_ref/log.jsonl)
[ -n "$loss" ] && [ "$loss" = "$loss_ref" ] || fail "distillation loss '$loss' (teacher with config) vs '$loss_ref'"
run t_teacher_classes error "$SKD" train $DISTIL --preset generic --classes 9 --teacher ref.safetensors \
  --teacher-arch resnet18 --teacher-width 0.0625 --out t_teacher_classes
has t_teacher_classes.err "teacher: ref.safetensors holds a network for 8 classes, not 9"

# ---- tune (quick: tiny shapes, two candidates) ----
run tune ok "$SKD" tune --quick --out tuning/quick.txt
has tune.out "wrote tuning/quick.txt"
has tune.out "GFLOP/s; geometric mean"
has tune.err "tuning GEMM on"
has tuning/quick.txt "device "
tail -n 1 tuning/quick.txt | grep -qx end || fail "tuning/quick.txt does not end with 'end'"
absent tuning/quick.txt.tmp
run tune_use ok env SKD_TUNING=tuning/quick.txt "$SKD" bench --preset demo --steps 1 --warmup 0 --no-phases
has tune_use.out "tuning      tuning/quick.txt"
echo x >not_a_dir
run tune_bad_out error "$SKD" tune --quick --out not_a_dir/t.txt
has tune_bad_out.err "not_a_dir"
{ grep -v '^end$' tuning/quick.txt; echo "Xgemm KWG=x"; echo end; } >tuning/bad.txt
run tune_bad_file error env SKD_TUNING=tuning/bad.txt "$SKD" bench --preset demo --steps 1 --warmup 0
has tune_bad_file.err "tuning/bad.txt: line"
has tune_bad_file.err "Xgemm KWG: expected a whole number"
has tune_bad_file.err "rerun \`skd-cl tune\` or delete the file"

echo "test_cli: $FAILED failure(s), $(($(date +%s) - START)) s"
[ $FAILED -eq 0 ]
