#!/usr/bin/env bash
# Prints, per op, the largest error the tests measured against the plain-C
# reference, against finite differences, against PyTorch, and in other checks
# (tests append "op<TAB>check<TAB>error" to $SKD_TEST_ERRLOG). Errors are
# relative to the largest magnitude of the reference values.
set -euo pipefail
log=${1:-build/errors.tsv}
[[ -s "$log" ]] || exit 0
echo "largest measured error per op (relative to the reference's scale; - : no such check;"
echo "'other' holds every check not named after ref/fd/torch, e.g. step-size sweeps: see the test)"
printf "  %-22s %12s %12s %12s %12s\n" "op" "vs reference" "vs fin.diff" "vs PyTorch" "other"
awk -F'\t' '
  { split($1, words, " "); op = words[1]; check = tolower($1 " " $2); e = $3 + 0
    kind = check ~ /torch/ ? "torch" : check ~ /fd/ ? "fd" : check ~ /ref/ ? "ref" : "other"
    key = op SUBSEP kind
    if (!(key in m) || e > m[key]) m[key] = e
    ops[op] = 1 }
  END {
    for (op in ops) {
      line = sprintf("  %-22s", op)
      split("ref fd torch other", kinds, " ")
      for (k = 1; k <= 4; k++) {
        key = op SUBSEP kinds[k]
        line = line sprintf(" %12s", (key in m) ? sprintf("%.2e", m[key]) : "-")
      }
      print line
    }
  }' "$log" | sort
