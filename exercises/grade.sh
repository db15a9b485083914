#!/usr/bin/env bash
# grade.sh — `make grade`: build and run the checks of the course kit's
# exercises (docs/exercises.md) in this tree, and score them.
#
# The exercises graded are those of $EXERCISES (make grade EXERCISES="a b"),
# else those of exercises/handout.txt (written by `make handout`), else every
# exercise of exercises/kit.txt. Each exercise's checks
# are Check tests of tests/exercises/test_SUITE.c, each worth the points
# kit.txt gives it: a check that passes earns them, one that fails (or does
# not compile, or crashes, or runs out of time) earns 0 and says why.
#
# Prints a table of exercises x checks, then one machine-readable line per
# exercise for a gradebook,
#   grade: exercise=NAME kind=KIND points=P max=Q passed=N checks=M
# and last "total: P / Q points". Exit status 0 when every check passed.
# Needs only bash, awk, make, a C compiler and Check.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=exercises/kit.txt
logs=build/grade
mkdir -p "$logs"
rm -f "$logs"/*.log

if [ -n "${EXERCISES:-}" ]; then          # make grade EXERCISES="rmsnorm rope": only those
  chosen=$EXERCISES
elif [ -f exercises/handout.txt ]; then
  chosen=$(grep -v '^#' exercises/handout.txt)
else
  chosen=$(awk '$1 == "exercise" { print $2 }' "$kit")
fi
[ -n "$chosen" ] || { echo "grade: no exercises to grade" >&2; exit 2; }
suites=$(for e in $chosen; do awk -v e="$e" '$1 == "exercise" && $2 == e { print $6 }' "$kit"; done | sort -u)

# The programs (the CLI checks run them), then each suite on its own, so that
# code that does not compile fails only the checks that need it.
echo "building (logs in $logs/) ..."
make --no-print-directory all >"$logs/build-programs.log" 2>&1 || true
for s in $suites; do
  if make --no-print-directory "tests/exercises/test_$s" >"$logs/build-$s.log" 2>&1; then
    CK_VERBOSITY=verbose CK_DEFAULT_TIMEOUT=120 LAMP_BIN=. timeout 900 "./tests/exercises/test_$s" \
      >"$logs/run-$s.log" 2>&1
  else
    : >"$logs/run-$s.log"
  fi
done

# One line per check from Check's verbose report:
#   file:line:P|F|E:test case:test name:iteration: message
chosen_list=$(echo $chosen)
awk -v chosen="$chosen_list" -v logs="$logs" '
function wrap(text,    out, line, n, i, words) {
  n = split(text, words, " "); out = ""; line = "";
  for (i = 1; i <= n; i++) {
    if (length(line) + length(words[i]) + 1 > 100) { out = out "      " line "\n"; line = "" }
    line = line (line == "" ? "" : " ") words[i]
  }
  return out "      " line
}
function first_error(file,    l) {
  while ((getline l < file) > 0) if (l ~ /error/) { close(file); return l }
  close(file); return "see " file
}
BEGIN {
  n_chosen = split(chosen, names, " ")
  for (i = 1; i <= n_chosen; i++) wanted[names[i]] = i
}
FNR == 1 { file = FILENAME }
file ~ /kit\.txt$/ {
  if ($1 == "exercise" && ($2 in wanted)) { kind[$2] = $3; suite[$2] = $6 }
  if ($1 == "check" && ($2 in wanted)) { n = ++n_checks[$2]; check[$2, n] = $3; points[$2, n] = $4 }
  next
}
{
  # a run log: remember the result and message of each test
  if (match($0, /:[PFE]:[^:]*:[^:]*:[0-9]+: /)) {
    split(substr($0, RSTART + 1, RLENGTH - 1), f, ":")
    s = FILENAME; sub(/.*run-/, "", s); sub(/\.log$/, "", s)
    result[s, f[3]] = f[1]; message[s, f[3]] = substr($0, RSTART + RLENGTH)
  }
}
END {
  printf "\n%-19s %-44s %7s  %s\n", "exercise", "check", "points", "result"
  for (i = 1; i <= n_chosen; i++) {
    e = names[i]
    if (!(e in kind)) { printf "%-19s (not in exercises/kit.txt)\n", e; continue }
    got = 0; max = 0; passed = 0; s = suite[e]
    built = (system("grep -q . " logs "/run-" s ".log") == 0)
    for (k = 1; k <= n_checks[e]; k++) {
      t = check[e, k]; max += points[e, k]
      if ((s, t) in result && result[s, t] == "P") {
        got += points[e, k]; passed++
        printf "%-19s %-44s %3d / %-2d  PASS\n", e, t, points[e, k], points[e, k]
        continue
      }
      if (!built) why = "does not compile: " first_error(logs "/build-" s ".log")
      else if (!((s, t) in result)) why = "did not run (see " logs "/run-" s ".log)"
      else if (result[s, t] == "E") why = "crashed or stopped: " message[s, t] " (stderr: " logs "/run-" s ".log)"
      else why = message[s, t]
      printf "%-19s %-44s %3d / %-2d  FAIL\n%s\n", e, t, 0, points[e, k], wrap(why)
    }
    line[i] = sprintf("grade: exercise=%s kind=%s points=%d max=%d passed=%d checks=%d", e, kind[e], got, max,
                      passed, n_checks[e])
    total += got; total_max += max; all_passed += passed; all_checks += n_checks[e]
  }
  print ""
  for (i = 1; i <= n_chosen; i++) if (i in line) print line[i]
  printf "total: %d / %d points\n", total, total_max
  exit(all_passed == all_checks ? 0 : 1)
}' "$kit" "$logs"/run-*.log
