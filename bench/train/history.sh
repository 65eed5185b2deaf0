#!/bin/sh
# history.sh COMMIT... -- runs today's bench-train driver against the trainer
# code of earlier commits, for the before/after tables of docs/benchmarks.md.
# Each commit is checked out in a temporary worktree with this bench/train
# copied in (commits before nn.ConvTime report 0 conv time). Arguments after
# "--" go to the bench (e.g. -case resnet18 -steps 2 -no-torch).
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
commits=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do commits="$commits $1"; shift; done
[ $# -gt 0 ] && shift
for c in $commits; do
  dir=$(mktemp -d)
  git worktree add -q --detach "$dir" "$c"
  rm -rf "$dir/bench/train"
  cp -r "$root/bench/train" "$dir/bench/train"
  grep -qs "func ConvTime" "$dir"/nn/*.go || printf 'package nn\n\nimport "time"\n\nfunc ConvTime() time.Duration { return 0 }\n' > "$dir/nn/convtime_history.go"
  (cd "$dir" && go build -o "$dir/bench-train" ./bench/train)
  echo "== commit $(git log -1 --format='%h %s' "$c" | cut -c1-100)"
  (cd "$root" && "$dir/bench-train" "$@") || echo "== commit $c: bench failed"
  git worktree remove --force "$dir"
done
