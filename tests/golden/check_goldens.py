#!/usr/bin/env python3
"""Regenerate every golden file from its reference library into a scratch
directory and compare with the committed copies.

This proves two things the C tests cannot: that the committed goldens really
come from the generator scripts (nobody edited them by hand), and that the
references (transformers/PyTorch, sentencepiece, the sampler specification)
still give the same answers with the installed library versions.

Exact byte equality is required for everything except the logits, which
may move by float rounding between PyTorch builds: those must agree within
1e-6 (the C test's tolerance against them is 1e-4).

    ~/.cache/lamp/venv/bin/python tests/golden/check_goldens.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATORS = ["gen_tokenizer.py", "gen_sampler.py", "gen_forward.py"]
LOGITS_TOLERANCE = 1e-6


def read_logits(path):
    raw = np.fromfile(path, dtype="<i4")
    n_positions, vocab = int(raw[0]), int(raw[1])
    ids = raw[2:2 + n_positions]
    logits = raw[2 + n_positions:].view("<f4").reshape(n_positions, vocab)
    return ids, logits


def compare(committed, fresh):
    """Return None if the files agree, else what differs."""
    if not os.path.exists(fresh):
        return "the generator did not produce it"
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
            subprocess.run([sys.executable, os.path.join(HERE, generator)], env=env, check=True,
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
