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
  # nor are PoCL's (scripts/lsan.supp). use_tls=0: LeakSanitizer's tracer died with
  # signal 11 reading thread-local storage at a forked test's exit while PoCL's threads
  # shut down (test_discriminator, more than one cold run in three); without scanning TLS
  # it did not in 6 of 6. A test that still fails is run once more, so a real failure
  # fails twice and is reported.
  OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/scripts/lsan.supp":use_tls=0 \
  CTEST_EXTRA="--repeat until-pass:2" \
    run_suite build-asan -DSKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
