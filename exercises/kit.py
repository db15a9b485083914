#!/usr/bin/env python3
"""kit.py — make a student's copy of lamp, and put solutions back into one.

    python3 exercises/kit.py handout DIR [NAME ...]   (make handout DIR=...)
    python3 exercises/kit.py solve DIR [NAME ...]     (make solve DIR=...)
    python3 exercises/kit.py list

handout writes to DIR (which must not exist) the files a fresh clone of this
tree has, then, for each chosen exercise (all of exercises/kit.txt by default):
a re-implement exercise's regions, between its "EXERCISE NAME BEGIN" and
"EXERCISE NAME END" marker comments in run.c, train.c or tokenizer.c, become
the stub of exercises/stubs/NAME.c (it compiles, and fails the checks); an
extend exercise needs nothing (the feature is missing). Left out: the
solutions (exercises/solutions/), the stubs and this script, and the golden
generators of the exercises (tests/golden/gen_exercise_*.py), which would show
the answers. exercises/handout.txt lists the chosen exercises: `make grade`
grades those.

solve puts the instructor's solutions into a handout DIR: a re-implement
exercise's regions get this tree's code back, an extend exercise's patch is
applied (exercises/solutions/NAME.patch; all of them at once:
extend-all.patch, as they touch the same lines). A handout with every solution solved must grade
100% (exercises/check_kit.sh, in CI).

Standard library only: an instructor's machine needs no virtualenv.
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["run.c", "train.c", "tokenizer.c"]
LEFT_OUT = ("exercises/solutions/", "exercises/stubs/", "exercises/kit.py", "exercises/check_kit.sh",
            "tests/golden/gen_exercise_")
NEXT_REGION = "/* next region */\n"


def die(message):
    sys.exit("kit.py: " + message)


def read_kit():
    """[(name, kind, level, minutes, suite)] in kit.txt's order."""
    exercises = []
    with open(os.path.join(ROOT, "exercises", "kit.txt")) as f:
        for line in f:
            words = line.split()
            if words and words[0] == "exercise":
                exercises.append(tuple(words[1:6]))
    return exercises


def choose(names):
    kit = read_kit()
    known = {e[0]: e for e in kit}
    for n in names:
        if n not in known:
            die("no exercise '%s' in exercises/kit.txt (make list-exercises)" % n)
    return [e for e in kit if not names or e[0] in names]


def regions(text, name):
    """(start, end) of each region of exercise `name`: the lines strictly
    between its BEGIN and END marker lines."""
    begin = re.compile(r"^[ \t]*/\* EXERCISE %s BEGIN \*/\n" % re.escape(name), re.M)
    end = re.compile(r"^[ \t]*/\* EXERCISE %s END \*/\n" % re.escape(name), re.M)
    out, pos = [], 0
    while True:
        b = begin.search(text, pos)
        if not b:
            return out
        e = end.search(text, b.end())
        if not e:
            die("EXERCISE %s BEGIN without its END" % name)
        out.append((b.end(), e.start()))
        pos = e.end()


def replace_regions(path, name, blocks):
    """Replace the regions of `name` in the file at path by blocks, in order;
    returns how many there were (0: the exercise is not in this file)."""
    with open(path) as f:
        text = f.read()
    found = regions(text, name)
    if not found:
        return 0
    if len(found) != len(blocks):
        die("%s: %d regions of %s, but %d replacements" % (path, len(found), name, len(blocks)))
    for (start, end), block in reversed(list(zip(found, blocks))):
        text = text[:start] + block + text[end:]
    with open(path, "w") as f:
        f.write(text)
    return len(found)


def source_blocks(name):
    """{file: [the regions' text in this tree]} of a re-implement exercise."""
    out = {}
    for src in SOURCES:
        with open(os.path.join(ROOT, src)) as f:
            text = f.read()
        found = regions(text, name)
        if found:
            out[src] = [text[s:e] for s, e in found]
    if not out:
        die("no EXERCISE %s markers in %s" % (name, ", ".join(SOURCES)))
    return out


def stub_blocks(name):
    with open(os.path.join(ROOT, "exercises", "stubs", name + ".c")) as f:
        return f.read().split(NEXT_REGION)


def handout(target, names):
    if os.path.exists(target):
        die("%s exists; give a new directory" % target)
    chosen = choose(names)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split("\0")
    for rel in files:
        if not rel or rel.startswith(LEFT_OUT) or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        dst = os.path.join(target, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), dst)
    for name, kind, *_ in chosen:
        if kind != "reimplement":
            continue
        stubs = stub_blocks(name)
        used = 0
        for src, blocks in source_blocks(name).items():
            n = replace_regions(os.path.join(target, src), name, stubs[used:used + len(blocks)])
            used += n
        if used != len(stubs):
            die("exercises/stubs/%s.c has %d regions, the sources %d" % (name, len(stubs), used))
    with open(os.path.join(target, "exercises", "handout.txt"), "w") as f:
        f.write("# the exercises of this handout (make grade grades these)\n")
        for e in chosen:
            f.write(e[0] + "\n")
    print("handout in %s: %s" % (target, " ".join(e[0] for e in chosen)))


def solve(target, names):
    if not os.path.isdir(target):
        die("%s is not a directory" % target)
    chosen = choose(names)
    extends = [e[0] for e in chosen if e[1] == "extend"]
    every_extend = [e[0] for e in read_kit() if e[1] == "extend"]
    for name, kind, *_ in chosen:
        if kind != "reimplement":
            continue
        for src, blocks in source_blocks(name).items():
            if replace_regions(os.path.join(target, src), name, blocks) != len(blocks):
                die("%s: the EXERCISE %s markers are gone" % (src, name))
        print("solved", name)
    # The extend solutions touch the same lines (the header's flags, Config),
    # so each patch applies to a handout on its own, and all of them together
    # are one patch, extend-all.patch, made by applying them in kit.txt's order
    # and resolving those lines by hand.
    if len(extends) > 1 and extends == every_extend:
        patches = [("every extend exercise", "extend-all")]
    else:
        patches = [(name, name) for name in extends]
    for what, patch_name in patches:
        patch = os.path.join(ROOT, "exercises", "solutions", patch_name + ".patch")
        r = subprocess.run(["patch", "-p1", "--quiet", "--no-backup-if-mismatch", "-d", target, "-i", patch])
        if r.returncode != 0:
            die("exercises/solutions/%s.patch does not apply to %s%s" % (
                patch_name, target, " (extend solutions other than one or all of them may overlap)"
                if len(patches) > 1 else ""))
        print("solved", what)


def main(argv):
    if len(argv) >= 1 and argv[0] == "list":
        for name, kind, level, minutes, suite in read_kit():
            print("%-20s %-12s difficulty %s, about %s min" % (name, kind, level, minutes))
        return
    if len(argv) < 2 or argv[0] not in ("handout", "solve"):
        die("usage: kit.py handout|solve DIR [NAME ...], or kit.py list")
    (handout if argv[0] == "handout" else solve)(argv[1], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
