#!/usr/bin/env bash
# Runs every native Go fuzz target for a short time each (default 10s):
#   scripts/fuzz.sh [duration]
# Seed corpora live in each package's testdata/fuzz/; a failure writes the
# crashing input there, and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"
fail=0
while read -r file target; do
  pkg="./$(dirname "$file")"
  echo "fuzz $pkg $target for $dur"
  if ! go test -run "^$target\$" -fuzz "^$target\$" -fuzztime "$dur" "$pkg" >/tmp/supflow-fuzz.$$ 2>&1; then
    cat /tmp/supflow-fuzz.$$
    fail=1
  fi
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$f |"
done | sed 's|^\./||' | sort)
rm -f /tmp/supflow-fuzz.$$
exit "$fail"
