#!/bin/sh
# End-to-end test of PyTorch checkpoints in skd-cl (files from
# tests/reference/gen_pth.py): eval on a torch-saved PSPNet (zip, and legacy in
# the released teacher's layout) agrees with PyTorch's argmax on every pixel
# (its label image is PyTorch's prediction); predict gives the same bytes from
# the .pth and from its conversion; convert's layouts and errors (no file left
# behind); train --init from a deep-stem and a torchvision backbone, the table,
# its log line, --init-strict, and no init when resuming.
# usage: test_pth.sh path/to/skd-cl   (exit 77: no OpenCL device, skipped)
set -u
TEST_NAME=test_pth SKD=${1:-}
REF=$(cd "$(dirname "$0")/reference/pth" && pwd)
. "$(dirname "$0")/cli_helpers.sh"
START=$(date +%s)

# nothing_left DIR: DIR holds no temporary or partial files.
nothing_left() {
  if ls -a "$1" | grep -q '\.tmp\|\.convert\.'; then fail "temporary file left in $1: $(ls -a "$1")"; fi
  return 0
}

# eval: PyTorch's argmax is the label, so every pixel must be right.
for f in net_zip.pth net_teacher_legacy.pth; do
  run "eval_$f" ok "$SKD" eval --checkpoint "$REF/$f" --width 0.05 --list "$REF/list.txt" --json
  has "eval_$f.out" '"pixel_accuracy":	1,'
  has "eval_$f.out" '"pixels":	4161,'
done

# convert: the teacher layout mapped, the network recorded (eval needs no --width).
mkdir out
run convert ok "$SKD" convert "$REF/net_teacher_legacy.pth" out/teacher.safetensors --width 0.05
has convert.out "layout reference-teacher"
has convert.out "27 renamed"
run eval_converted ok "$SKD" eval --checkpoint out/teacher.safetensors --list "$REF/list.txt" --json
has eval_converted.out '"pixel_accuracy":	1,'
run convert_none error "$SKD" convert "$REF/net_teacher_legacy.pth" out/none.safetensors --width 0.05 --layout none
has convert_none.err "no head.bias (after the none layout)"
run convert_backbone error "$SKD" convert "$REF/deepstem_zip.pth" out/b.safetensors --width 0.05 --classes 5
has convert_backbone.err "would not load"
run convert_script error "$SKD" convert "$REF/torchscript.pt" out/s.safetensors
has convert_script.err "a TorchScript archive (not supported: save the state_dict)"
run convert_junk error "$SKD" convert "$REF/list.txt" out/j.safetensors
has convert_junk.err "list.txt: not a checkpoint (first bytes"
run convert_layout error "$SKD" convert "$REF/net_zip.pth" out/l.safetensors --layout keras
has convert_layout.err "unknown layout 'keras'"
[ "$(ls out)" = "teacher.safetensors" ] || fail "convert left files: $(ls out)"
nothing_left out

# predict: the .pth files and the conversion give the same bytes.
for f in "$REF/net_zip.pth" "$REF/net_teacher_legacy.pth" out/teacher.safetensors; do
  n=$(basename "$f")
  run "predict_$n" ok "$SKD" predict --checkpoint "$f" --width 0.05 --out "p_$n" --logits "$REF/image.png"
done
cmp -s p_net_zip.pth/image.f32 p_net_teacher_legacy.pth/image.f32 || fail "predict: legacy logits differ from zip"
cmp -s p_net_zip.pth/image.f32 p_teacher.safetensors/image.f32 || fail "predict: converted logits differ"
cmp -s p_net_zip.pth/image.png p_teacher.safetensors/image.png || fail "predict: converted PNG differs"

# export and --teacher read .pth files too (the teacher here has 5 classes, the demo set 8).
run export ok "$SKD" export --checkpoint "$REF/net_teacher_legacy.pth" --net-width 0.05 --out m.onnx --height 64 --width 64
[ -s m.onnx ] || fail "export from a .pth wrote no model"

# train --init.
run make ok "$SKD" make-dataset --out demo --size 64 --train 4 --val 2
train() { "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.05 --crop 64 --batch 2 "$@"; }
run init ok train --steps 1 --out r1 --init "$REF/deepstem_zip.pth" --init-strict
has init.err "init from $REF/deepstem_zip.pth (layout none):"
has init.err "loaded            115"
has init.err "missing            35  (pspmodule/dsn/head 35, backbone 0)"
has init.err "unused              2  (fc.bias, fc.weight)"
has r1/log.jsonl '"init":{"path":"'"$REF"'/deepstem_zip.pth","layout":"none","loaded":115,"shape_mismatch":0'
run init_tv ok train --steps 1 --out r2 --init "$REF/torchvision_zip.pth"
has init_tv.err "(layout torchvision)"
has init_tv.err "shape mismatch      2  (conv1.weight, layer1.0.conv1.weight)"
has init_tv.err "backbone 15: conv2.weight"
run init_strict error train --steps 1 --out r3 --init "$REF/torchvision_zip.pth" --init-strict
has init_strict.err "--init-strict: 2 tensors have another shape"
[ -e r3/last.safetensors ] && fail "--init-strict failed but a checkpoint was written"
# A whole network (safetensors) for another class count: all but the classifiers.
run init_net ok train --steps 1 --out r5 --init out/teacher.safetensors
has init_net.err "(layout safetensors)"
has init_net.err "loaded            146"
has init_net.err "shape mismatch      4  (head.weight, head.bias, dsn.3.weight, dsn.3.bias)"
run init_missing error train --steps 1 --out r4 --init nowhere.pth
has init_missing.err "--init: nowhere.pth: cannot open"
run teacher error train --steps 1 --out r6 --teacher "$REF/net_teacher_legacy.pth" --teacher-arch resnet18 \
  --teacher-width 0.05
has teacher.err "net_teacher_legacy.pth holds a network for 5 classes, not 8"
# Resuming keeps the checkpoint's weights: no second init.
run init_resume ok train --steps 2 --out r1 --resume r1/last.safetensors
grep -q "init from" init_resume.err && fail "a resumed run applied --init again"

echo "test_pth: $FAILED failure(s), $(($(date +%s) - START)) s"
[ $FAILED -eq 0 ]
