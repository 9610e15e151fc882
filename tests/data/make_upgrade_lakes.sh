#!/bin/bash
# Regenerate the upgrade fixture lakes (tests/data/upgrade_lake_<sha>.tar.gz) with old lakenodes.
# usage: tests/data/make_upgrade_lakes.sh [sha ...]   (from the repository root; default: every era)
# Each sha is checked out in a throwaway worktree and runs tests/upgrade_nodes.py unchanged.
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'git -C "$repo" worktree prune; rm -rf "$work"' EXIT
for sha in "${@:-f3ab3ad 0c7a6ca f8e7dee ed6c62e 57a891a}"; do
  for one in $sha; do
    git -C "$repo" worktree add -f "$work/old-$one" "$one" >/dev/null 2>&1
    lake="$work/lake"; rm -rf "$lake"
    export LAKENODES_URI=$lake PYTHONPATH="$work/old-$one:$repo/tests"
    day() { (cd "$work" && "$python" -c 'import sys, upgrade_nodes; upgrade_nodes.run_day(sys.argv[1])' "$1"); }
    day 2026-01-03
    day 2026-01-04
    UPGRADE_FAIL=numbers day 2026-01-05 >/dev/null 2>&1 && { echo "the failed run did not fail"; exit 1; }
    (cd "$work" && "$python" -m lakenodes search "daily close" >/dev/null)
    (cd "$work" && "$python" -m lakenodes optimize >/dev/null && "$python" -m lakenodes vacuum >/dev/null)
    day 2026-01-05
    tar -C "$lake" --sort=name --owner=0 --group=0 --numeric-owner --mtime=2026-01-05 \
        -czf "$repo/tests/data/upgrade_lake_$one.tar.gz" .
    git -C "$repo" worktree remove --force "$work/old-$one"
    echo "wrote tests/data/upgrade_lake_$one.tar.gz"
  done
done
