#!/bin/sh
# End-to-end test of skd-cl export: a ResNet-18 PSPNet student distilled
# for a few steps (pixel and pair distillation) is exported to ONNX, checked
# by the ONNX checker (Debian's python3-onnx) and run in ONNX Runtime
# (onnxruntime-node, tests/onnx), whose outputs must match the logits
# skd-cl's own forward writes for the same images (`predict --logits`):
# normalised error <= 1e-4 and the same argmax on every pixel, at a fixed
# size and with dynamic shapes (sizes that the network's stride and the PSP
# bins do not divide, a batch of two), folded and kept batch norm, baked
# normalisation, opsets 13 and 17, softmax and argmax outputs, external
# data, and a ResNet-50 PSPNet for the Bottleneck blocks. Then the errors:
# a clear message, and no file left.
# usage: test_export.sh path/to/skd-cl
# Exit 77 (skipped): no OpenCL device, or no node/npm or python3-onnx, or
# onnxruntime-node could not be installed (the message says which).
set -u
TEST_NAME=test_export SKD=${1:-}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/cli_helpers.sh"
ORT_DIR=$HERE/onnx
PY=/usr/bin/python3

# ---- a teacher trained for 3 steps, a student distilled from it ----
run make ok "$SKD" make-dataset --out demo --size 64 --train 4 --val 2
run teacher ok "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.125 --crop 64 \
  --batch 2 --steps 3 --out teacher
run student ok "$SKD" train --train-list demo/train.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
  --batch 2 --steps 3 --teacher teacher/last.safetensors --no-holistic --out student
CKPT=student/last.safetensors
[ -f "$CKPT" ] || { fail "training wrote no $CKPT"; exit 1; }
# Bottleneck blocks: a ResNet-50 PSPNet.
run r50 ok "$SKD" train --train-list demo/train.txt --preset demo --arch resnet50 --width 0.0625 --crop 64 \
  --batch 2 --steps 2 --out r50

# ---- errors: a message naming the cause, a non-zero exit, no file ----
run opset12 error "$SKD" export --checkpoint $CKPT --out bad.onnx --opset 12
has opset12.err "--opset 12 is not supported: skd-cl writes opsets 13 to 17"
run opset18 error "$SKD" export --checkpoint $CKPT --out bad.onnx --opset 18
has opset18.err "--opset 18"
absent bad.onnx
run nodir error "$SKD" export --checkpoint $CKPT --out missing/dir/m.onnx
has nodir.err "missing/dir/m.onnx"
absent missing/dir/m.onnx
: >afile
run notdir error "$SKD" export --checkpoint $CKPT --out afile/m.onnx
has notdir.err "afile/m.onnx"
run both error "$SKD" export --checkpoint $CKPT --out bad.onnx --dynamic --height 64
has both.err "--dynamic and --height/--width exclude each other"
run half error "$SKD" export --checkpoint $CKPT --out bad.onnx --height 64
has half.err "give both --height and --width"
run outs error "$SKD" export --checkpoint $CKPT --out bad.onnx --with-softmax --argmax
has outs.err "--with-softmax and --argmax exclude each other"
run empty error "$SKD" export --checkpoint $CKPT --out bad.onnx --height 0 --width 64
has empty.err "--height: '0' is outside [1, 16384]"
absent bad.onnx
# Not a checkpoint, and a checkpoint that holds no PSPNet (one unrelated tensor).
printf 'P6\n2 2\n255\n012345678901' >image.ppm
run notckpt error "$SKD" export --checkpoint image.ppm --out bad.onnx
has notckpt.err "image.ppm"
header='{"other.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
{ printf '\120\000\000\000\000\000\000\000'; printf '%-80s' "$header"; printf '\000\000\200\077\000\000\000\100'; } >other.safetensors
run other error "$SKD" export --checkpoint other.safetensors --out bad.onnx --arch resnet18 --net-width 0.0625 --classes 8
has other.err "other.safetensors"
has other.err "other.weight"
has other.err "say which with --arch and --net-width"
absent bad.onnx

# ---- exports ----
run fixed ok "$SKD" export --checkpoint $CKPT --out fixed.onnx --height 64 --width 64
has fixed.out "wrote fixed.onnx: resnet18 x0.0625, 8 classes, input 64x64, opset 17"
run dyn ok "$SKD" export --checkpoint $CKPT --out dynamic.onnx --dynamic
run dyn_bn ok "$SKD" export --checkpoint $CKPT --out dynamic_bn.onnx --dynamic --keep-batchnorm --bake-normalisation \
  --opset 13
run fixed_ext ok "$SKD" export --checkpoint $CKPT --out fixed_ext.onnx --height 83 --width 57 --bake-normalisation \
  --external-data
[ -s fixed_ext.onnx.data ] || fail "--external-data wrote no fixed_ext.onnx.data"
run softmax ok "$SKD" export --checkpoint $CKPT --out softmax.onnx --dynamic --with-softmax --bake-normalisation
run argmax ok "$SKD" export --checkpoint $CKPT --out argmax.onnx --dynamic --argmax
run r50_export ok "$SKD" export --checkpoint r50/last.safetensors --out r50.onnx --dynamic
has r50_export.out "resnet50 x0.0625"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node or npm missing (scripts/install-deps.sh installs them): the ONNX Runtime checks are skipped"
  [ $FAILED -eq 0 ] || exit 1
  exit 77
fi
if ! $PY -c 'import onnx' 2>/dev/null; then
  echo "python3-onnx missing (scripts/install-deps.sh installs it): the ONNX checks are skipped"
  [ $FAILED -eq 0 ] || exit 1
  exit 77
fi
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  # The CPU runtime is inside the package; its install script would only fetch CUDA parts.
  if ! (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >npm.log 2>&1); then
    echo "npm ci in $ORT_DIR failed (no registry?): the ONNX Runtime checks are skipped"
    sed 's/^/    /' "$ORT_DIR/npm.log" | tail -n 5
    rm -f "$ORT_DIR/npm.log"
    [ $FAILED -eq 0 ] || exit 1
    exit 77
  fi
  rm -f "$ORT_DIR/npm.log"
fi

# ---- the ONNX checker (with shape inference) and the metadata ----
for m in fixed dynamic dynamic_bn fixed_ext softmax argmax r50; do
  run check_$m ok $PY -c 'import sys, onnx; onnx.checker.check_model(sys.argv[1], full_check=True)' $m.onnx
done
meta() {
  $PY -c 'import sys, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
print("\n".join(p.key + "=" + p.value for p in m.metadata_props))
print("opset=%d ir=%d producer=%s" % (m.opset_import[0].version, m.ir_version, m.producer_name))' "$1"
}
meta fixed.onnx >fixed.meta
has fixed.meta "skd_cl.channel_order=BGR"
has fixed.meta "skd_cl.class_names=[\"sky\",\"water\",\"grass\",\"sand\",\"tree\",\"house\",\"balloon\",\"buoy\"]"
has fixed.meta "skd_cl.palette=[["
has fixed.meta "skd_cl.version="
has fixed.meta "skd_cl.config={"
has fixed.meta "opset=17 ir=8 producer=skd-cl"
meta dynamic_bn.onnx >dynamic_bn.meta
has dynamic_bn.meta "opset=13 ir=7"
# The normalisation the metadata records is what the checks below feed the non-baked models.
order=$(sed -n 's/^skd_cl.channel_order=//p' fixed.meta)
mean=$(sed -n 's/^skd_cl.mean=//p' fixed.meta)
std=$(sed -n 's/^skd_cl.std=//p' fixed.meta)
NORM="$order,$mean,$std"
[ "$NORM" = "BGR,104.008003,116.668999,122.679001,1,1,1" ] || fail "metadata normalisation '$NORM'"
# Nodes: no DSN, no dropout; batch norm folded unless kept.
$PY -c 'import sys, onnx
for f in sys.argv[1:]:
    m = onnx.load(f, load_external_data=False)
    ops = [n.op_type for n in m.graph.node]
    print(f, "BatchNormalization=%d Dropout=%d dsn=%d" % (ops.count("BatchNormalization"), ops.count("Dropout"),
          sum(i.name.startswith("dsn") for i in m.graph.initializer)))' fixed.onnx dynamic_bn.onnx >nodes.txt
has nodes.txt "fixed.onnx BatchNormalization=0 Dropout=0 dsn=0"
has nodes.txt "dynamic_bn.onnx BatchNormalization=28 Dropout=0 dsn=0"

# ---- images, skd-cl's logits, ONNX Runtime's outputs ----
# Deterministic PPM images: smooth colour fields plus noise.
node -e '
const fs = require("fs");
let s = 12345;
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
for (const [name, w, h] of [["a64", 64, 64], ["b64", 64, 64], ["c57x83", 57, 83], ["d41x33", 41, 33], ["e97x70", 97, 70]]) {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        px[3 * (y * w + x) + c] = Math.max(0, Math.min(255, Math.round(
          128 + 90 * Math.sin((x * (c + 1)) / 9 + y / 13 + c) + 40 * (rnd() - 0.5))));
  fs.writeFileSync(name + ".ppm", Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), px]));
}' || fail "could not write the test images"
run predict ok "$SKD" predict --checkpoint $CKPT --out pred --logits a64.ppm b64.ppm c57x83.ppm d41x33.ppm e97x70.ppm
for i in a64 b64 c57x83 d41x33 e97x70; do [ -s pred/$i.f32 ] || fail "predict --logits wrote no pred/$i.f32"; done
run predict50 ok "$SKD" predict --checkpoint r50/last.safetensors --out pred50 --logits c57x83.ppm

ort() {
  name=$1
  shift
  node "$ORT_DIR/compare.js" "$@" --classes 8 >"$name.ort" 2>&1
  rc=$?
  sed 's/^/    /' "$name.ort"
  [ $rc -eq 0 ] && PASSED=$((PASSED + 1)) || fail "$name: ONNX Runtime disagrees with skd-cl (exit $rc)"
}
echo "ONNX Runtime vs skd-cl's forward:"
ort fixed fixed.onnx --normalise "$NORM" a64.ppm pred/a64.f32
for i in a64 c57x83 d41x33 e97x70; do ort dynamic_$i dynamic.onnx --normalise "$NORM" $i.ppm pred/$i.f32; done
ort dynamic_batch dynamic.onnx --normalise "$NORM" a64.ppm pred/a64.f32 b64.ppm pred/b64.f32
for i in c57x83 b64; do ort dynamic_bn_$i dynamic_bn.onnx --normalise baked $i.ppm pred/$i.f32; done
ort fixed_ext fixed_ext.onnx --normalise baked c57x83.ppm pred/c57x83.f32
ort softmax softmax.onnx --normalise baked --output probabilities d41x33.ppm pred/d41x33.f32
ort argmax argmax.onnx --normalise "$NORM" --output labels e97x70.ppm pred/e97x70.f32
ort r50 r50.onnx --normalise "$NORM" c57x83.ppm pred50/c57x83.f32
# The comparison itself must be able to fail: logits of another image.
node "$ORT_DIR/compare.js" dynamic.onnx --classes 8 --normalise "$NORM" a64.ppm pred/b64.f32 >swap.ort 2>&1 &&
  fail "compare.js accepted the logits of another image"
# A fixed-size model refuses another size.
node "$ORT_DIR/compare.js" fixed.onnx --classes 8 --normalise "$NORM" c57x83.ppm pred/c57x83.f32 >wrong_size.ort 2>&1 &&
  fail "the 64x64 model ran on a 57x83 image"

echo "test_export: $PASSED checks passed, $FAILED failed"
[ $FAILED -eq 0 ]
