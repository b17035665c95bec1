#!/usr/bin/env bash
# The test command: installs what is missing, builds with -Werror, runs the
# whole suite on the default OpenCL device (PoCL's CPU device on a machine
# without a GPU), then again under AddressSanitizer + UBSan.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

run_suite() { # build-dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DSKD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  rm -f "$dir/errors.tsv"
  (cd "$dir" && SKD_TEST_ERRLOG="$PWD/errors.tsv" ctest --output-on-failure)
}

echo "== build and test (RelWithDebInfo, -Werror)"
run_suite build
scripts/error-summary.sh build/errors.tsv

if [[ "${1:-}" != "--no-sanitize" ]]; then
  echo "== build and test with -fsanitize=address,undefined"
  # Only PoCL's ICD is loaded here: other drivers' own leaks (Mesa) are not ours to report.
  OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DSKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
