#!/usr/bin/env bash
# Prints the largest error each op/check reached in a test run
# (tests append "op<TAB>check<TAB>error" to $SKD_TEST_ERRLOG).
set -euo pipefail
log=${1:-build/errors.tsv}
[[ -s "$log" ]] || exit 0
echo "largest measured error per op and check (relative to the reference's scale):"
awk -F'\t' '{ split($2, w, " "); key = $1 "\t" w[1] " " w[2] " " w[3];
              if (!(key in m) || $3 + 0 > m[key]) m[key] = $3 + 0 }
            END { for (k in m) { split(k, p, "\t"); printf "  %-24s %-24s %.2e\n", p[1], p[2], m[k] } }' "$log" | sort
