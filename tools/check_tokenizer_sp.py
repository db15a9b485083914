#!/usr/bin/env python3
"""Compare lamp's ./tokenizer with the SentencePiece library on whole files.

For each file (default: data/tinystories/valid.txt data/tinyshakespeare/input.txt):
  encode: every line (without its "\\n") through `./tokenizer encode -z TOKENIZER_BIN`
          (one process for the whole file) and through sentencepiece with
          tests/data/llama2/tokenizer.model; the ids must be identical (no BOS).
  decode: the sentencepiece ids of every line through `./tokenizer decode -z ...`;
          every valid-UTF-8 line without U+2581 ('▁', which SentencePiece reads
          as a space) must come back byte for byte.
Prints "FILE: N lines compared, M mismatches" (encode) and the decode result,
with the first few mismatches, and exits 1 on any mismatch.

Usage (from the repository root, after building ./tokenizer):
  ~/.cache/lamp/venv/bin/python tools/check_tokenizer_sp.py [FILE...]
"""
import argparse
import os
import subprocess
import sys

import sentencepiece as spm

DEFAULT_FILES = ["data/tinystories/valid.txt", "data/tinyshakespeare/input.txt"]
SHOW = 5  # mismatches shown per file and direction


def split_lines(data):
    """The lines of a file as ./tokenizer reads them: split at "\\n" only."""
    lines = data.split(b"\n")
    if data.endswith(b"\n") or data == b"":
        lines.pop()
    return lines


def run_tool(args, stdin_bytes):
    proc = subprocess.run(args, input=stdin_bytes, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        sys.stderr.write("%s failed with status %d:\n%s" % (
            " ".join(args), proc.returncode, proc.stderr.decode("utf-8", "replace")))
        return None
    return proc.stdout


def first_difference(a, b):
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    return i


def window(seq, at, radius=8):
    lo, hi = max(0, at - radius), min(len(seq), at + radius)
    return ("... " if lo > 0 else "") + " ".join(str(x) for x in seq[lo:hi]) + (" ..." if hi < len(seq) else "")


def show_bytes(b, limit=160):
    r = repr(b[:limit])
    return r + ("... (%d bytes)" % len(b) if len(b) > limit else "")


def check_file(path, sp, tool, tokenizer_bin):
    with open(path, "rb") as f:
        data = f.read()
    lines = split_lines(data)
    expected = sp.encode(lines)  # a list of bytes: raw bytes in, no BOS/EOS
    ok = True

    # encode
    out = run_tool([tool, "encode", "-z", tokenizer_bin], data)
    if out is None:
        print("%s: ./tokenizer encode failed" % path)
        return False
    got_lines = split_lines(out)
    if len(got_lines) != len(lines):
        print("%s: %d lines in, but ./tokenizer encode printed %d lines" % (path, len(lines), len(got_lines)))
        ok = False
    mismatches = []
    for i, (line, exp) in enumerate(zip(lines, expected)):
        try:
            got = [int(x) for x in got_lines[i].split()]
        except ValueError:
            got = None
        if got != exp:
            mismatches.append((i, line, exp, got))
    n = min(len(lines), len(got_lines))
    print("%s: %d lines compared, %d mismatches" % (path, n, len(mismatches)))
    for i, line, exp, got in mismatches[:SHOW]:
        print("  line %d: %s" % (i + 1, show_bytes(line)))
        if got is None:
            print("    ./tokenizer printed %r" % got_lines[i][:200])
            continue
        at = first_difference(exp, got)
        print("    first difference at id %d" % at)
        print("    sentencepiece: %s" % window(exp, at))
        print("    lamp:          %s" % window(got, at))
    ok = ok and not mismatches

    # decode (of the sentencepiece ids)
    ids_text = b"".join((" ".join(str(x) for x in ids) + "\n").encode("ascii") for ids in expected)
    out = run_tool([tool, "decode", "-z", tokenizer_bin], ids_text)
    if out is None:
        print("%s: ./tokenizer decode failed" % path)
        return False
    decoded = split_lines(out)
    if len(decoded) != len(lines):
        print("%s: %d id lines in, but ./tokenizer decode printed %d lines" % (path, len(lines), len(decoded)))
        ok = False
    n_checked, bad = 0, []
    for i, line in enumerate(lines[:len(decoded)]):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue  # malformed bytes decode as U+FFFD, as in SentencePiece
        if "\u2581".encode() in line:
            continue  # '▁' is a space to SentencePiece and comes back as one
        n_checked += 1
        if decoded[i] != line:
            bad.append(i)
    print("%s: %d lines decoded, %d do not round-trip" % (path, n_checked, len(bad)))
    for i in bad[:SHOW]:
        at = first_difference(lines[i], decoded[i])
        lo = max(0, at - 30)
        print("  line %d: differs at byte %d" % (i + 1, at))
        print("    line:    %s" % show_bytes(lines[i][lo:], 80))
        print("    decoded: %s" % show_bytes(decoded[i][lo:], 80))
    return ok and not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="text files (default: %s)" % " ".join(DEFAULT_FILES))
    ap.add_argument("--tool", default="./tokenizer", help="the lamp tokenizer program (default ./tokenizer)")
    ap.add_argument("--bin", default="tests/data/llama2/tokenizer.bin", help="tokenizer for -z")
    ap.add_argument("--model", default="tests/data/llama2/tokenizer.model", help="sentencepiece model")
    args = ap.parse_args()
    files = args.files or DEFAULT_FILES
    if not os.access(args.tool, os.X_OK):
        sys.exit("%s not found: build it first (make)" % args.tool)
    sp = spm.SentencePieceProcessor(model_file=args.model)
    print("sentencepiece %s, %s (%d pieces) vs %s -z %s" % (
        spm.__version__, args.model, sp.vocab_size(), args.tool, args.bin))
    ok = True
    for path in files:
        ok = check_file(path, sp, args.tool, args.bin) and ok
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
