#!/usr/bin/env bash
# Runs every native Go fuzz target for a short time each (default 10s):
#   scripts/fuzz.sh [duration]
# Seed corpora live in each package's testdata/fuzz/. A failing input is
# written there by go test (testdata/fuzz/<Target>/<hash>); the script lists
# such new files, to be committed with the fix as regression seeds, and
# exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"
fail=0
# deadline_flake: the run failed only with the bare deadline error.
deadline_flake() {
  grep -q '^    context deadline exceeded$' "$1" &&
    ! grep -q 'Failing input written to' "$1" &&
    [ "$(grep -c -e '^--- FAIL' -e '^    ' "$1")" -eq 2 ]
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while read -r file target; do
  pkg="./$(dirname "$file")"
  start=$SECONDS
  if go test -run "^$target\$" -fuzz "^$target\$" -fuzztime "$dur" "$pkg" >"$out" 2>&1; then
    echo "fuzz $pkg $target: ok ($((SECONDS - start))s)"
  elif deadline_flake "$out" && go test -count=1 -run "^$target\$" "$pkg" >/dev/null 2>&1; then
    # Go 1.26's coordinator can report its own -fuzztime deadline as a
    # failure (go.dev/issue/75804, fixed in 1.27): no input was written and
    # the corpus replays clean, so nothing was found.
    echo "fuzz $pkg $target: ok ($((SECONDS - start))s; ignored the fuzztime deadline race)"
  else
    echo "fuzz $pkg $target: FAILED"
    cat "$out"
    fail=1
  fi
done < <(git ls-files '*_test.go' | xargs grep -o '^func Fuzz[A-Za-z0-9_]*' | sed 's|:func | |' | sort)
if [ "$fail" -ne 0 ]; then
  echo "fuzz: new failing inputs (commit them as seeds with the fix):"
  git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' | sed 's/^?? /  /'
fi
exit "$fail"
