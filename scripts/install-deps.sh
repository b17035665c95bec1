#!/usr/bin/env bash
# Installs the Debian packages skd-cl needs, when any is missing.
# Usage: scripts/install-deps.sh [--rusticl]   (--rusticl adds Mesa's second OpenCL CPU driver)
set -euo pipefail
packages=(gcc make cmake pkg-config ocl-icd-opencl-dev opencl-headers libclblast-dev libstb-dev
          check libcjson-dev pocl-opencl-icd libprotobuf-c-dev protobuf-c-compiler python3-onnx
          libzip-dev)
# Strict image decoding; clang and its runtime (libFuzzer) for scripts/fuzz.sh.
packages+=(libpng-dev libjpeg62-turbo-dev clang libclang-rt-dev)
# Data-parallel training (mpirun -np N skd-cl train) and its test.
packages+=(libopenmpi-dev openmpi-bin)
# ONNX Runtime for test_export comes from npm (tests/onnx); Node.js from another
# source may already provide node and npm, so only a missing command adds them.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi
if [[ "${1:-}" == "--rusticl" ]]; then packages+=(mesa-opencl-icd); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi
echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
