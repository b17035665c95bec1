# Shared by the shell tests of the command-line program. Source it after
# `set -u`, with the test's name and skd-cl's path set:
#   TEST_NAME=test_x SKD=${1:-}
#   . "$(dirname "$0")/cli_helpers.sh"
# It makes SKD absolute, exits 77 without an OpenCL device (skipped), makes
# and enters a work directory removed at exit, and defines fail, run and has.
SKD=${SKD:?usage: $TEST_NAME.sh path/to/skd-cl}
case $SKD in /*) ;; *) SKD=$(pwd)/$SKD ;; esac

if ! "$SKD" list-devices --json | grep -q '"index"'; then
  echo "no OpenCL device: skipped"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/skd_$TEST_NAME.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
FAILED=0
PASSED=0

fail() {
  echo "FAIL: $*"
  FAILED=$((FAILED + 1))
}

# run NAME EXPECT CMD...: runs CMD with stdout in NAME.out and stderr in
# NAME.err; EXPECT is "ok" (exit 0) or "error" (any non-zero exit).
run() {
  name=$1 expect=$2
  shift 2
  "$@" >"$name.out" 2>"$name.err"
  rc=$?
  if [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    fail "$name: exit $rc, expected 0"
    sed 's/^/    /' "$name.err"
  elif [ "$expect" = error ] && [ $rc -eq 0 ]; then
    fail "$name: exit 0, expected an error"
  else
    PASSED=$((PASSED + 1))
  fi
  return 0
}

# has FILE TEXT: FILE contains TEXT (fixed string).
has() {
  if grep -qF -- "$2" "$1"; then
    PASSED=$((PASSED + 1))
  else
    fail "$1 does not contain '$2':"
    sed 's/^/    /' "$1"
  fi
}

# absent PATH: nothing at PATH, and no temporary file of an atomic write in its directory.
absent() {
  [ -e "$1" ] && fail "$1 exists but should not"
  dir=$(dirname "$1")
  if [ -d "$dir" ] && ls -a "$dir" | grep -q '\.tmp'; then fail "temporary file left in $dir: $(ls -a "$dir")"; fi
  return 0
}
