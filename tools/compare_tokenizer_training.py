#!/usr/bin/env python3
"""Compare lamp's BPE trainer (`./tokenizer train`) with SentencePiece's.

Both learn a vocabulary of --vocab-size pieces from the same text (default
data/tinystories/train.txt) with the same settings: BPE, byte fallback,
character_coverage 0.9995, dummy prefix on, whitespace kept as it is,
identity normalization, split_digits off (the default), no line skipped as
too long. Then both vocabularies encode every line of --valid (default
data/tinystories/valid.txt): lamp's with `./tokenizer encode -z`,
SentencePiece's with the sentencepiece library. bytes/token = bytes of the
lines (without their "\\n") / ids, no BOS.

Prints both training times, how many learned pieces the vocabularies share
(and how many at the same id), both bytes/token figures and their ratio,
lamp / sentencepiece. Exits 1 if the ratio is off 1 by more than --tolerance
(default 0.03, i.e. 3%).

Usage (from the repository root, after building ./tokenizer):
  ~/.cache/lamp/venv/bin/python tools/compare_tokenizer_training.py [--vocab-size N]
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

import sentencepiece as spm


def split_lines(data):
    """The lines of a file as ./tokenizer reads them: split at "\\n" only."""
    lines = data.split(b"\n")
    if data.endswith(b"\n") or data == b"":
        lines.pop()
    return lines


def run(args, stdin_bytes=None):
    proc = subprocess.run(args, input=stdin_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False)
    if proc.returncode != 0:
        sys.exit("%s failed with status %d:\n%s" % (" ".join(args), proc.returncode,
                                                     proc.stderr.decode("utf-8", "replace")))
    return proc.stdout


def read_tokenizer_bin(path):
    """The pieces of a llama2.c tokenizer.bin, '▁' written as a space."""
    with open(path, "rb") as f:
        data = f.read()
    pieces, pos = [], 4
    while pos < len(data):
        _score, length = struct.unpack_from("<fI", data, pos)
        pieces.append(data[pos + 8:pos + 8 + length].decode("utf-8"))
        pos += 8 + length
    return pieces


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="data/tinystories/train.txt", help="training text")
    ap.add_argument("--valid", default="data/tinystories/valid.txt", help="text to measure bytes/token on")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--character-coverage", type=float, default=0.9995)
    ap.add_argument("--tolerance", type=float, default=0.03, help="allowed |ratio - 1|")
    ap.add_argument("--tool", default="./tokenizer", help="the lamp tokenizer program")
    args = ap.parse_args()
    if not os.access(args.tool, os.X_OK):
        sys.exit("%s not found: build it first (make)" % args.tool)

    with tempfile.TemporaryDirectory() as tmp:
        lamp_bin = os.path.join(tmp, "lamp.bin")
        start = time.perf_counter()
        run([args.tool, "train", "-i", args.train, "-o", lamp_bin, "--vocab-size", str(args.vocab_size),
             "--character-coverage", str(args.character_coverage)])
        lamp_seconds = time.perf_counter() - start

        start = time.perf_counter()
        spm.SentencePieceTrainer.train(
            input=args.train, model_prefix=os.path.join(tmp, "sp"), vocab_size=args.vocab_size,
            model_type="bpe", byte_fallback=True, character_coverage=args.character_coverage,
            add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
            split_digits=False, max_sentence_length=1 << 30, minloglevel=2)
        sp_seconds = time.perf_counter() - start
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "sp.model"))

        lamp_pieces = read_tokenizer_bin(lamp_bin)
        sp_pieces = [sp.id_to_piece(i).replace("\u2581", " ") for i in range(sp.vocab_size())]
        learned = 259  # after <unk>, <s>, </s> and the 256 byte pieces
        common = len(set(lamp_pieces[learned:]) & set(sp_pieces[learned:]))
        same_id = sum(a == b for a, b in zip(lamp_pieces[learned:], sp_pieces[learned:]))

        with open(args.valid, "rb") as f:
            data = f.read()
        lines = split_lines(data)
        n_bytes = sum(len(line) for line in lines)
        out = run([args.tool, "encode", "-z", lamp_bin], data)
        lamp_tokens = sum(len(line.split()) for line in split_lines(out))
        sp_tokens = sum(len(ids) for ids in sp.encode(lines))

    lamp_bpt, sp_bpt = n_bytes / lamp_tokens, n_bytes / sp_tokens
    ratio = lamp_bpt / sp_bpt
    ok = abs(ratio - 1) <= args.tolerance
    print("trained on %s, %d pieces, character_coverage %g" % (args.train, args.vocab_size,
                                                             args.character_coverage))
    print("  lamp ./tokenizer train       %.2f s" % lamp_seconds)
    print("  sentencepiece %s train    %.2f s" % (spm.__version__, sp_seconds))
    print("  learned pieces in common: %d of %d (%d at the same id)" % (
        common, len(sp_pieces) - learned, same_id))
    print("bytes/token on %s (%d lines, %d bytes):" % (args.valid, len(lines), n_bytes))
    print("  lamp            %.4f  (%d tokens)" % (lamp_bpt, lamp_tokens))
    print("  sentencepiece   %.4f  (%d tokens)" % (sp_bpt, sp_tokens))
    print("  ratio lamp / sentencepiece %.4f (allowed %.2f..%.2f)" % (ratio, 1 - args.tolerance,
                                                                    1 + args.tolerance))
    print("OK" if ok else "MISMATCH: the ratio is off by more than %g%%" % (100 * args.tolerance))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
