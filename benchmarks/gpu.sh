#!/usr/bin/env bash
# The GPU check, prepared for a lent NVIDIA machine (the `device` tool: one
# command line, a bare x86-64 machine with the NVIDIA driver and no network).
#
# Here, once:   bash benchmarks/gpu.sh --fetch
#   builds skd-cl and its tests (Release) and downloads the .deb files of the
#   shared libraries they load into .gpu-debs/ (ignored by git).
# There:        bash benchmarks/gpu.sh            (carry: build, .gpu-debs)
#   unpacks those libraries under /opt/skd-libs (never over /), finds the
#   NVIDIA OpenCL driver (registering libnvidia-opencl.so.1 when no ICD file
#   names it), then on the GPU's OpenCL device: every test binary and the
#   shell tests, `skd-cl tune`, `skd-cl bench` on demo and paper-small (tuned,
#   then SKD_TUNING=off) and `bench --kernels`, and the PyTorch step with CUDA
#   where a CUDA build of torch exists. Everything is logged to $OUT/gpu.log
#   ($OUT: the device tool's output folder; default gpu-out).
# Exit status: the number of failed test binaries (0: all passed).
set -uo pipefail
cd "$(dirname "$0")/.."
debs=.gpu-debs
runtime_packages=(libclblast1 ocl-icd-libopencl1 libcjson1 libstb0 libsubunit0)

if [[ "${1:-}" == "--fetch" ]]; then
  set -e
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" >/dev/null
  mkdir -p "$debs"
  (cd "$debs" && apt-get download "${runtime_packages[@]}")
  grep -qx "/$debs/" .git/info/exclude 2>/dev/null || echo "/$debs/" >>.git/info/exclude
  echo "ready: carry build and $debs ($(du -sh build "$debs" | awk '{print $1}' | paste -sd+ -))"
  exit 0
fi

out=${OUT:-gpu-out}
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
skd=build/skd-cl
[[ -x $skd ]] || { echo "gpu.sh: $skd is missing: run 'bash benchmarks/gpu.sh --fetch' here and carry build"; exit 100; }

if compgen -G "$debs/*.deb" >/dev/null; then
  mkdir -p /opt/skd-libs
  for f in "$debs"/*.deb; do dpkg -x "$f" /opt/skd-libs; done
  export LD_LIBRARY_PATH=/opt/skd-libs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
  lib=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
  if [[ -n $lib ]]; then
    mkdir -p /opt/skd-libs/vendors
    echo "$lib" >/opt/skd-libs/vendors/nvidia.icd
    export OCL_ICD_VENDORS=/opt/skd-libs/vendors
    echo "registered the NVIDIA OpenCL driver: $lib"
  else
    echo "gpu.sh: no NVIDIA OpenCL driver (libnvidia-opencl.so.1) found; the runs below use what OpenCL lists"
  fi
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "(no nvidia-smi)"
"$skd" list-devices
# The first GPU in skd-cl's list ("*[N] name" lines, then "type GPU").
gpu=$("$skd" list-devices | awk '/^ ?\*?\[[0-9]+\]/ {match($0, /\[[0-9]+\]/); i = substr($0, RSTART + 1, RLENGTH - 2)}
                                  /type +GPU/ {print i; exit}')
if [[ -z $gpu ]]; then echo "gpu.sh: OpenCL lists no GPU"; exit 101; fi
export SKD_DEVICE=$gpu SKD_REFERENCE_DIR=$PWD/tests/reference
echo "== device $gpu"

failed=0
section() { echo; echo "== $* ($(date +%T))"; }
section tests
for t in build/tests/test_*; do
  [[ -x $t && -f $t ]] || continue
  if timeout 300 "$t" >"$out/$(basename "$t").log" 2>&1; then echo "pass  $(basename "$t")"
  else echo "FAIL  $(basename "$t") (log: $out/$(basename "$t").log)"; tail -5 "$out/$(basename "$t").log"; failed=$((failed + 1)); fi
done
for t in test_cli test_bench test_study; do
  if timeout 300 sh "tests/$t.sh" "$skd" >"$out/$t.log" 2>&1; then echo "pass  $t"
  else echo "FAIL  $t"; tail -5 "$out/$t.log"; failed=$((failed + 1)); fi
done

section tune
timeout 900 "$skd" tune
for preset in demo paper-small; do
  section "bench $preset (tuned)"
  "$skd" --profile bench --preset "$preset"
  section "bench $preset (SKD_TUNING=off)"
  SKD_TUNING=off "$skd" bench --preset "$preset" --no-phases
done
section "bench --kernels"
"$skd" bench --kernels --steps 5 --warmup 1

section "PyTorch with CUDA"
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    for preset in demo paper-small; do "$py" benchmarks/torch_step.py --device cuda --preset "$preset"; done
    break
  fi
  echo "$py: no CUDA build of torch"
done
section "done: $failed failed test binaries"
exit "$failed"
