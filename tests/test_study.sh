#!/bin/sh
# End-to-end test of distillation's user-facing tools on a tiny demo set:
#   - make-dataset --unlabeled writes an image-only list; train takes it with
#     --unlabeled-list (and refuses it without a teacher);
#   - --log-grad-norms adds each term's gradient norms to the JSON log;
#   - --recipe reference sets the reference's values and later options win;
#   - skd-cl study trains the baseline and each setting over the seeds, skips
#     finished runs when run again, refuses a finished run whose options
#     changed, and computes mean, sd, paired difference, 95 % interval and
#     wins as written out by hand below.
# usage: test_study.sh path/to/skd-cl   (exit 77: no OpenCL device, skipped)
set -u
TEST_NAME=test_study SKD=${1:-}
. "$(dirname "$0")/cli_helpers.sh"

# ---- data: an unlabeled split ----
run make ok "$SKD" make-dataset --out demo --size 64 --train 4 --val 2 --unlabeled 3
has make.out "3 unlabeled images listed in demo/unlabeled.txt"
[ "$(grep -vc '^#' demo/unlabeled.txt)" = 3 ] || fail "unlabeled.txt does not list 3 images"
grep -v '^#' demo/unlabeled.txt | grep -q ' ' && fail "unlabeled.txt names labels"
for f in $(grep -v '^#' demo/unlabeled.txt); do [ -f "demo/$f" ] || fail "demo/$f was not written"; done

COMMON="--train-list demo/train.txt --val-list demo/val.txt --preset demo --arch resnet18 --width 0.0625 --crop 64 \
  --batch 2 --steps 2"
run teacher ok "$SKD" train $COMMON --out teacher
T=teacher/last.safetensors

# ---- train with unlabeled images and gradient norms ----
run unl ok "$SKD" train $COMMON --teacher $T --no-holistic --unlabeled-list demo/unlabeled.txt --unlabeled-batch 3 \
  --log-grad-norms --log-every 1 --distill-warmup 4 --out unl
has unl/log.jsonl '"grad_logits": {"task": '
has unl/log.jsonl '"grad_features": {"task": '
# Every step is logged with norms; the pair-wise term has none at the logits.
[ "$(grep -c '"grad_logits"' unl/log.jsonl)" = 2 ] || fail "expected gradient norms on both steps"
grep '"grad_logits"' unl/log.jsonl | grep -q '"pair": 0,' || fail "pair-wise gradient at the logits is not 0"
run unl_noteacher error "$SKD" train $COMMON --unlabeled-list demo/unlabeled.txt --out unl_noteacher
has unl_noteacher.err "--unlabeled-list needs --teacher"
printf 'a.png b.png c.png\n' >demo/bad_unlabeled.txt
run unl_bad error "$SKD" train $COMMON --teacher $T --unlabeled-list demo/bad_unlabeled.txt --out unl_bad
has unl_bad.err "demo/bad_unlabeled.txt:1: expected 'image_path [label_path]'"
printf 'images/nothing_here.png\n' >demo/gone_unlabeled.txt
run unl_gone error "$SKD" train $COMMON --teacher $T --unlabeled-list demo/gone_unlabeled.txt --out unl_gone
has unl_gone.err "demo/gone_unlabeled.txt:1: cannot read image"

# ---- recipes: the reference's values, and options given after them win ----
run recipe ok "$SKD" train $COMMON --teacher $T --no-holistic --recipe reference --lambda-pa 0.5 --steps 1 --out recipe
run recipe_help ok "$SKD" train --recipe reference --help
has recipe_help.out "--lambda-pi X              pixel-wise weight (reference 10) [default: 10]"
has recipe_help.out "--pixel-norm CHOICE        pixel-wise normalisation: reference (sum over batch / H'W') or mean (per pixel) (reference | mean) [default: reference]"
has recipe_help.out "--pair-norm CHOICE         affinity gradient: exact cosine, or detached norm (the reference code) (exact | detached) [default: detached]"
run recipe_bad error "$SKD" train $COMMON --recipe paper --out recipe_bad
has recipe_bad.err "unknown recipe 'paper' (expected skd or reference)"

# ---- study ----
STUDY="$COMMON --teacher $T --no-holistic --seeds 2 --first-seed 5 --out st"
run study ok "$SKD" study $STUDY --run "pix: --no-pair" --run "all:" --markdown st.md
for r in baseline pix all; do
  for s in 5 6; do [ -f "st/$r/seed-$s/result.json" ] || fail "st/$r/seed-$s/result.json was not written"; done
done
[ -d st/baseline/seed-7 ] && fail "a third seed was trained"
has study.out "baseline"
has st.md "| run | seed 5 | seed 6 | mean | sd | vs baseline (95 % interval) | wins |"
# The baseline runs without the teacher.
grep -qF '\"teacher\":\"\",' st/baseline/seed-5/result.json || fail "the baseline was given the teacher"
grep -qF '\"teacher\":\"teacher/last.safetensors\",' st/pix/seed-5/result.json || fail "pix was not given the teacher"

# Set the mIoU of every finished run by hand; a second run of the same study
# trains nothing and reports from them. baseline 0.50, 0.60; pix 0.53, 0.64
# (differences 3 and 4 points: mean 3.5, sd 0.7071, t(1) = 12.706, interval
# 3.5 -/+ 12.706 * 0.7071 / sqrt(2) = 3.5 -/+ 6.353); all 0.49, 0.61 (-1, +1).
setmiou() { sed -i "s/\"mean_iou\":[^,]*/\"mean_iou\":\t$3/" "st/$1/seed-$2/result.json"; }
setmiou baseline 5 0.50; setmiou baseline 6 0.60
setmiou pix 5 0.53; setmiou pix 6 0.64
setmiou all 5 0.49; setmiou all 6 0.61
# A result written before a field existed (here: log-grad-norms, at its default) still counts as done.
sed -i 's/,\\"log-grad-norms\\":false//' st/all/seed-6/result.json
grep -q 'log-grad-norms' st/all/seed-6/result.json && fail "could not remove log-grad-norms from the stored config"
run study2 ok "$SKD" study $STUDY --run "pix: --no-pair" --run "all:" --json
[ "$(grep -c 'done before' study2.err)" = 6 ] || fail "the second study retrained a finished run"
tr -d ' \n\t' <study2.out >flat.json
# near RUN KEY EXPECTED: the run's KEY in the JSON is within 1e-9 of EXPECTED.
near() {
  got=$(sed -n "s/.*\"name\":\"$1\"[^}]*\"$2\":\([-0-9.eE+]*\).*/\1/p" flat.json)
  if awk -v g="$got" -v e="$3" 'BEGIN { d = g - e; exit !(g != "" && d < 1e-9 && d > -1e-9) }'; then
    PASSED=$((PASSED + 1))
  else
    fail "$1 $2 is '$got', expected $3"
  fi
}
near baseline mean_points 55
near baseline sd_points 7.0710678118654755
near pix mean_points 58.5
near pix diff_points 3.5
near pix diff_ci95_low -2.853
near pix diff_ci95_high 9.853
near pix wins 2
near all mean_points 55
near all diff_points 0
near all diff_ci95_low -12.706
near all wins 1

# A finished run whose options changed is refused, naming the file.
run study3 error "$SKD" study $STUDY --run "pix: --no-pair --lambda-pi 2" --run "all:"
has study3.err "st/pix/seed-5/result.json was trained with other options"
# A plan file gives the same runs; bad lines name the file and line.
printf '# runs\npix: --no-pair\n\nall:\n' >plan.txt
run study_plan ok "$SKD" study $STUDY --plan plan.txt
printf 'pix --no-pair\n' >badplan.txt
run study_badplan error "$SKD" study $STUDY --plan badplan.txt
has study_badplan.err "badplan.txt:1: expected 'NAME: OPTIONS'"
# --no-teacher: another run without distillation.
run study_noteacher ok "$SKD" study $STUDY --run "pix: --no-pair" --run "lr2: --no-teacher --lr 0.03125"
grep -qF '\"teacher\":\"\",' st/lr2/seed-5/result.json || fail "--no-teacher still gave lr2 the teacher"
grep -qF '\"lr\":0.03125,' st/lr2/seed-5/result.json || fail "lr2 did not get --lr 0.03125"
run study_norun error "$SKD" study $STUDY
has study_norun.err "give at least one distillation setting"
run study_badopt error "$SKD" study $STUDY --run "x: --lambda-pi nine"
has study_badopt.err "--lambda-pi"

# An interrupted run resumes: a run directory holding a checkpoint of step 1
# of 2 and no result continues from it.
rm st/all/seed-6/result.json
"$SKD" train $COMMON --teacher $T --no-holistic --seed 6 --steps 1 --out st/all/seed-6 >/dev/null 2>&1 ||
  fail "could not write a step-1 checkpoint"
run study_resume ok "$SKD" study $STUDY --run "pix: --no-pair" --run "all:"
has study_resume.err "all, seed 6"
has study_resume.err "(resumed)"

echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
