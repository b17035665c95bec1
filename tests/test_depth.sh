#!/bin/sh
# End-to-end test of --task depth: make-dataset --task depth, a tiny training
# run with validation, eval (table and JSON), predict (colour map and 16-bit
# depth PNG), distillation (pair-wise, holistic on the bins and on the depth
# map, pixel-wise), bench, and the error cases (each exits non-zero naming
# the file, line or option).
# usage: test_depth.sh path/to/skd-cl   (exit 77: no OpenCL device, skipped)
set -u
TEST_NAME=test_depth SKD=${1:-}
. "$(dirname "$0")/cli_helpers.sh"
START=$(date +%s)

# png16 FILE W H: FILE is a 16-bit grey PNG of W x H (IHDR: width, height, bit depth 16, colour type 0).
png16() {
  [ -f "$1" ] || { fail "$1 was not written"; return 0; }
  hdr=$(od -An -tu1 -j16 -N10 "$1" | tr -s ' \n' ' ')
  want=$(printf ' 0 0 %d %d 0 0 %d %d 16 0 ' $(($2 / 256)) $(($2 % 256)) $(($3 / 256)) $(($3 % 256)))
  [ "$hdr" = "$want" ] || fail "$1: IHDR bytes '$hdr', expected '$want'"
}

# ---- the synthetic set ----
run make ok "$SKD" make-dataset --task depth --out d64 --size 64 --train 4 --val 2
has make.out "wrote 4 training and 2 validation images (64x64) with depth in millimetres"
has d64/train.txt "images/train_0003.png depth/train_0003.png"
png16 d64/depth/val_0001.png 64 64
run make128 ok "$SKD" make-dataset --task depth --out d128 --size 128 --train 2 --val 1 --seed 3

# ---- a tiny run, validated ----
COMMON="--task depth --arch resnet18 --width 0.0625 --batch 2 --steps 3"
run train ok "$SKD" train $COMMON --train-list d64/train.txt --val-list d64/val.txt --crop 64 --out run
has train.err "60 depth bins"
has train.err "validation abs rel"
has run/log.jsonl '"val_abs_rel"'
has run/log.jsonl '"val_delta3"'
CKPT=run/last.safetensors
[ -f run/best.safetensors ] || fail "no best.safetensors"

# ---- eval ----
run eval ok "$SKD" eval --checkpoint "$CKPT" --list d64/val.txt
has eval.out "60 depth bins over 0.5..10 m"
for m in "abs rel" "sq rel" "RMS " "RMS(log)" "log10" "delta<1.25 " "delta<1.25^2" "delta<1.25^3" "valid pixels 8192"; do
  has eval.out "$m"
done
run eval_json ok "$SKD" eval --checkpoint "$CKPT" --list d64/val.txt --json --flip
for k in abs_rel sq_rel rms rms_log log10 delta1 delta2 delta3; do has eval_json.out "\"$k\":"; done
has eval_json.out '"task":	"depth"'
run eval_seg error "$SKD" eval --checkpoint "$CKPT" --list d64/val.txt --task seg
has eval_seg.err "was trained for --task depth"

# ---- predict ----
run predict ok "$SKD" predict --checkpoint "$CKPT" --out pred --list d64/val.txt
png16 pred/val_0000_depth.png 64 64
[ -f pred/val_0001.png ] || fail "no colour map pred/val_0001.png"
run predict_overlay error "$SKD" predict --checkpoint "$CKPT" --out pred2 --overlay d64/images/val_0000.png
has predict_overlay.err "--overlay is for segmentation"

# ---- distillation: pair-wise + holistic (bins; depth map), pixel-wise ----
D128="--train-list d128/train.txt --val-list d128/val.txt --crop 128 --d-width 8"
run teacher ok "$SKD" train $COMMON $D128 --out t128
run distill ok "$SKD" train $COMMON $D128 --teacher t128/last.safetensors --out s1
has distill.err "distilling"
has distill.err "ho "
grep -q "pixel " distill.err && fail "pixel-wise should be off by default for --task depth"
run distill_map ok "$SKD" train $COMMON $D128 --teacher t128/last.safetensors --d-input depth --pixel --out s2
has distill_map.err "pixel "
run bench ok "$SKD" bench --task depth --steps 1 --warmup 0 --no-phases
has bench.out "60 classes"

# ---- errors ----
run bad_bins error "$SKD" train $COMMON $D128 --teacher t128/last.safetensors --depth-bins 40 --out e1
has bad_bins.err "not 40"
run bad_range error "$SKD" train $COMMON $D128 --teacher t128/last.safetensors --depth-max 20 --out e2
has bad_range.err "the bins must mean the same depths"
run min_max error "$SKD" train $COMMON $D128 --depth-min 5 --depth-max 2 --out e3
has min_max.err "--depth-max 2 must be larger than --depth-min 5"
run one_bin error "$SKD" train $COMMON $D128 --depth-bins 1 --out e4
has one_bin.err "--depth-bins"
run cond error "$SKD" train $COMMON $D128 --d-input depth --d-conditional --out e5
has cond.err "--d-input depth cannot be combined with --d-conditional"
printf '# a comment\nimages/train_0000.png images/train_0001.png\n' >d64/bad8.txt
run eight_bit error "$SKD" eval --checkpoint "$CKPT" --list d64/bad8.txt
has eight_bit.err "bad8.txt:2"
has eight_bit.err "expected a 16-bit grey PNG"
printf 'images/train_0000.png depth/none.png\n' >d64/missing.txt
run missing error "$SKD" train $COMMON --train-list d64/missing.txt --crop 64 --out e6
has missing.err "missing.txt:1"
run study error "$SKD" study --task depth --train-list d64/train.txt --val-list d64/val.txt --teacher "$CKPT" \
  --run "a: --pair" --out e7
has study.err "--task depth is not supported"
run export error "$SKD" export --checkpoint "$CKPT" --out depth.onnx
has export.err "is a --task depth network"
[ -e depth.onnx ] && fail "export of a depth network left depth.onnx"

echo "test_depth: $FAILED failure(s), $(($(date +%s) - START)) s"
[ $FAILED -eq 0 ]
