#!/usr/bin/env bash
# The test command: installs what is missing, builds with -Werror, runs the
# whole suite on the default OpenCL device (PoCL's CPU device on a machine
# without a GPU), then again under AddressSanitizer + UBSan.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

run_suite() { # build-dir, extra cmake args... (ctest options in $CTEST_EXTRA)
  local dir=$1; shift
  cmake -S . -B "$dir" -DSKD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  rm -f "$dir/errors.tsv"
  (cd "$dir" && SKD_TEST_ERRLOG="$PWD/errors.tsv" ctest --output-on-failure ${CTEST_EXTRA:-})
}

echo "== build and test (RelWithDebInfo, -Werror)"
run_suite build
scripts/error-summary.sh build/errors.tsv

if [[ "${1:-}" != "--no-sanitize" ]]; then
  echo "== build and test with -fsanitize=address,undefined"
  # Only PoCL's ICD is loaded here: other drivers' own leaks (Mesa) are not ours to report,
  # nor are PoCL's (scripts/lsan.supp). LeakSanitizer's own tracer now and then dies with
  # signal 11 at a test's exit while PoCL's threads run (seen about once in three
  # cold-cache runs of test_discriminator); a test that fails is run up to twice more,
  # so a real failure still fails every time and is reported.
  OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/scripts/lsan.supp" \
  CTEST_EXTRA="--repeat until-pass:3" \
    run_suite build-asan -DSKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
