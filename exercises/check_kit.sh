#!/usr/bin/env bash
# check_kit.sh — `make test-exercises` (CI): prove that the course kit's
# checks can fail and can pass (docs/exercises.md).
#
# For each exercise (all of exercises/kit.txt, or those named):
#   1. a handout of that exercise alone (make handout): `make grade` must give
#      it 0 points, every one of its checks failing;
#   2. the same handout with its solution (make solve): full points.
# Then a handout of every exercise at once must grade 0 points in all, and
# 100% with every solution; `make test` must pass in that solved tree too.
# Builds use CFLAGS (default -O1 -march=native, quicker to compile) and two
# jobs.
set -uo pipefail
cd "$(dirname "$0")/.."
export CFLAGS="${CFLAGS:--O1 -march=native}" MAKEFLAGS="-j2"
unset OUT
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(awk '$1 == "exercise" { print $2 }' exercises/kit.txt)
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# grade DIR: run make grade there; its output in DIR.grade.log
grade() { (cd "$1" && exercises/grade.sh) >"$1.grade.log" 2>&1; }
# grade_line DIR NAME: the gradebook line of exercise NAME
grade_line() { grep "^grade: exercise=$2 " "$1.grade.log"; }

for name in "${names[@]}"; do
  dir="$scratch/$name"
  python3 exercises/kit.py handout "$dir" "$name" >/dev/null || { fail "make handout $name"; continue; }
  grade "$dir" && fail "$name: the handout grades without a failure"
  line=$(grade_line "$dir" "$name")
  echo "handout $name:  ${line#grade: }"
  case "$line" in *" points=0 "*" passed=0 "*) ;; *) fail "$name: the handout earns points"; tail -30 "$dir.grade.log";; esac
  python3 exercises/kit.py solve "$dir" "$name" >/dev/null || { fail "make solve $name"; continue; }
  grade "$dir" || { fail "$name: the solved handout does not grade 100%"; tail -30 "$dir.grade.log"; }
  echo "solved  $name:  $(grade_line "$dir" "$name" | sed 's/^grade: //')"
  rm -rf "$dir"
done

if [ $# -eq 0 ]; then
  dir="$scratch/all"
  python3 exercises/kit.py handout "$dir" >/dev/null || fail "make handout (all exercises)"
  grade "$dir" && fail "the full handout grades without a failure"
  echo "full handout: $(tail -1 "$dir.grade.log")"
  grep -q '^total: 0 / ' "$dir.grade.log" || fail "the full handout earns points"
  python3 exercises/kit.py solve "$dir" >/dev/null || fail "make solve (all exercises)"
  grade "$dir" || { fail "the full handout with every solution does not grade 100%"; grep FAIL -A3 "$dir.grade.log"; }
  echo "full handout, every solution: $(tail -1 "$dir.grade.log")"
  # make test as `make` builds it (-O3, rebuilt from clean): the README's
  # sampled story is that build's output; a -O1 build rounds differently
  # and samples another
  (unset CFLAGS; make -C "$dir" --no-print-directory clean && make -C "$dir" --no-print-directory test) \
    >"$dir.test.log" 2>&1 ||
    { fail "make test fails with every solution"; grep -E ':F:|:E:|differs' "$dir.test.log" | head; tail -20 "$dir.test.log"; }
  echo "full handout, every solution: $(tail -1 "$dir.test.log")"
fi
[ $failed = 0 ] && echo "course kit: every check fails on its handout and passes with its solution"
exit $failed
