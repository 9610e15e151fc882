#!/bin/bash
# Regenerate the upgrade fixture lakes (tests/data/upgrade_lake_<sha>.tar.gz) with old lakenodes.
# usage: tests/data/make_upgrade_lakes.sh [sha ...]   (from the repository root; default: every era)
# Each sha is checked out in a throwaway worktree and runs tests/upgrade_nodes.py unchanged.
# "mixed-<sha>" writes upgrade_lake_mixed_<sha>.tar.gz: that sha and this checkout take turns.
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'git -C "$repo" worktree prune; rm -rf "$work"' EXIT
for sha in "${@:-f3ab3ad 0c7a6ca f8e7dee ed6c62e 57a891a}"; do
  for one in $sha; do
    old=${one#mixed-}
    git -C "$repo" worktree add -f "$work/old-$old" "$old" >/dev/null 2>&1
    lake="$work/lake"; rm -rf "$lake"
    export LAKENODES_URI=$lake PYTHONPATH="$work/old-$old:$repo/tests"
    day() { (cd "$work" && "$python" -c 'import sys, upgrade_nodes; upgrade_nodes.run_day(sys.argv[1])' "$1"); }
    if [ "$one" != "$old" ]; then  # old days 1-4, this checkout day 5 and a drop, old again day 6
      day 2026-01-04
      PYTHONPATH="$repo:$repo/tests" day 2026-01-05
      (cd "$work" && PYTHONPATH="$repo" "$python" -m lakenodes data-node drop upgrade_sums --yes >/dev/null)
      day 2026-01-06
      UPGRADE_FAIL=numbers day 2026-01-07 >/dev/null 2>&1 && { echo "the failed run did not fail"; exit 1; }
      tar -C "$lake" --sort=name --owner=0 --group=0 --numeric-owner --mtime=2026-01-06 \
          -czf "$repo/tests/data/upgrade_lake_mixed_$old.tar.gz" .
      git -C "$repo" worktree remove --force "$work/old-$old"
      echo "wrote tests/data/upgrade_lake_mixed_$old.tar.gz"
      continue
    fi
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
