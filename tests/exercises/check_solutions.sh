#!/usr/bin/env bash
# Proves that each exercise's check (docs/exercises.md) can fail and can pass:
# in a scratch copy of the working tree,
#   1. `make exercise-NAME` must FAIL on the tree as it is (the feature is
#      the student's to add, so a check that passed here would check nothing);
#   2. after applying the reference solution exercises/solutions/NAME.patch,
#      `make exercise-NAME` must PASS, and so must `make test` (a correct
#      solution keeps every other golden test passing).
# Usage: tests/exercises/check_solutions.sh [NAME ...]   (default: all)
set -uo pipefail
cd "$(dirname "$0")/../.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for p in exercises/solutions/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for name in "${names[@]}"; do
  dir="$scratch/$name"
  mkdir -p "$dir"
  # the tracked and untracked-but-not-ignored files: what a fresh clone has
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dir"
  echo "== exercise $name: the check on the unsolved tree (must fail)"
  if make -C "$dir" --no-print-directory "exercise-$name" >"$dir.unsolved.log" 2>&1; then
    echo "FAIL: make exercise-$name passed without a solution"; failed=1; continue
  fi
  grep -m 3 -E 'lamp:|Failures|error' "$dir.unsolved.log" | sed 's/^/   unsolved: /'
  echo "== exercise $name: with exercises/solutions/$name.patch (must pass)"
  if ! patch -d "$dir" -p1 --quiet --no-backup-if-mismatch <"exercises/solutions/$name.patch"; then
    echo "FAIL: exercises/solutions/$name.patch does not apply"; failed=1; continue
  fi
  if ! make -C "$dir" --no-print-directory "exercise-$name" >"$dir.solved.log" 2>&1; then
    tail -20 "$dir.solved.log"; echo "FAIL: make exercise-$name fails with the reference solution"; failed=1; continue
  fi
  grep -E '^[0-9]+%: Checks' "$dir.solved.log" | sed 's/^/   solved: /'
  if ! make -C "$dir" --no-print-directory test >"$dir.test.log" 2>&1; then
    tail -20 "$dir.test.log"; echo "FAIL: make test fails with the reference solution of $name"; failed=1; continue
  fi
  echo "   solved: make test passes too"
done
if [ $failed = 0 ]; then echo "exercise checks: all ${#names[@]} fail unsolved and pass solved"; fi
exit $failed
