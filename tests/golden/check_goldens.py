#!/usr/bin/env python3
"""Regenerate every golden file from its reference library into a scratch
directory and compare with the committed copies.

This proves two things the C tests cannot: that the committed goldens really
come from the generator scripts (nobody edited them by hand), and that the
references (transformers/PyTorch, sentencepiece, the sampler specification)
still give the same answers with the installed library versions.

Exact byte equality is required for everything except the logits, which
may move by float rounding between PyTorch builds: those must agree within
1e-6 (the C test's tolerance against them is 1e-4). Likewise the floats of
the training goldens (train/*.grads, train/*.adamw) must agree within 1e-5
of their largest value.

    ~/.cache/lamp/venv/bin/python -m tests.golden.check_goldens
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GENERATORS = ["gen_tokenizer.py", "gen_tokenizer_bytelevel.py", "gen_sampler.py", "gen_forward.py", "gen_trace.py",
              "gen_forward_q8.py", "gen_train.py",
              "gen_exercise_qkv_bias.py", "gen_exercise_geglu.py", "gen_exercise_int4.py",
              "gen_exercise_kit.py", "gen_exercise_extend.py"]
LOGITS_TOLERANCE = 1e-6
# train/*.grads and *.adamw (gen_train.py): int32 n, int32 ints[n], then float32
# values. Ints must match exactly, floats within this fraction of the largest.
TRAIN_TOLERANCE = 1e-5


def read_logits(path):
    raw = np.fromfile(path, dtype="<i4")
    n_positions, vocab = int(raw[0]), int(raw[1])
    ids = raw[2:2 + n_positions]
    logits = raw[2 + n_positions:].view("<f4").reshape(n_positions, vocab)
    return ids, logits


def compare_ints_floats(committed, fresh):
    """gen_train.py's layout: int32 n, int32 ints[n], float32 values."""
    a, b = np.fromfile(committed, dtype="<i4"), np.fromfile(fresh, dtype="<i4")
    if a.shape != b.shape or a[0] != b[0] or (a[:1 + a[0]] != b[:1 + b[0]]).any():
        return "different integers (shapes, token ids or step counts)"
    fa, fb = a[1 + a[0]:].view("<f4"), b[1 + b[0]:].view("<f4")
    delta = float(np.abs(fa - fb).max(initial=0.0))
    scale = float(np.abs(fa).max(initial=0.0))
    return None if delta <= TRAIN_TOLERANCE * scale else f"max |delta| {delta:.3g} of {scale:.3g}"


def read_trace(path):
    """gen_trace.py's (and ./run --trace's) records: [(op, layer, pos, values)]."""
    data = open(path, "rb").read()
    assert data[:8] == b"LAMPTRC1", path
    records, at = [], 8
    while at < len(data):
        op = data[at:at + 16].rstrip(b"\0").decode()
        layer, pos, n = np.frombuffer(data, "<i4", 3, at + 16)
        records.append((op, int(layer), int(pos), np.frombuffer(data, "<f4", int(n), at + 28)))
        at += 28 + 4 * int(n)
    return records


def compare_traces(committed, fresh):
    """Same records in the same order; values within LOGITS_TOLERANCE of their record's scale."""
    a, b = read_trace(committed), read_trace(fresh)
    if [r[:3] + (len(r[3]),) for r in a] != [r[:3] + (len(r[3]),) for r in b]:
        return "different records (ops, layers, positions or sizes)"
    worst = max(float(np.abs(x[3] - y[3]).max()) / max(1.0, float(np.abs(y[3]).max())) for x, y in zip(a, b))
    return None if worst <= LOGITS_TOLERANCE else f"max relative |delta| {worst:.3g}"


def compare(committed, fresh):
    """Return None if the files agree, else what differs."""
    if not os.path.exists(fresh):
        return "the generator did not produce it"
    if committed.endswith((".grads", ".adamw")) and os.path.exists(committed):
        return compare_ints_floats(committed, fresh)
    if committed.endswith(".trace"):
        return compare_traces(committed, fresh)
    if committed.endswith(".logits"):
        ids_a, logits_a = read_logits(committed)
        ids_b, logits_b = read_logits(fresh)
        if ids_a.shape != ids_b.shape or (ids_a != ids_b).any():
            return "different input ids"
        if logits_a.shape != logits_b.shape:
            return f"shape {logits_a.shape} vs {logits_b.shape}"
        delta = float(np.abs(logits_a - logits_b).max())
        return None if delta <= LOGITS_TOLERANCE else f"max |delta logits| {delta:.3g}"
    with open(committed, "rb") as a, open(fresh, "rb") as b:
        return None if a.read() == b.read() else "bytes differ"


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, LAMP_GOLDEN_DIR=scratch)
        for generator in GENERATORS:
            print(f"running {generator} ...", flush=True)
            module = "tests.golden." + generator[:-len(".py")]  # run as a module from the root
            subprocess.run([sys.executable, "-m", module], env=env, check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        for root, _, files in os.walk(scratch):
            for name in sorted(files):
                fresh = os.path.join(root, name)
                rel = os.path.relpath(fresh, scratch)
                problem = compare(os.path.join(HERE, rel), fresh)
                if problem is None and not os.path.exists(os.path.join(HERE, rel)):
                    problem = "not committed"
                print(f"  {'ok  ' if problem is None else 'FAIL'} {rel}" + (f": {problem}" if problem else ""))
                passed += problem is None
                failed += problem is not None
    print(f"goldens: {passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
