#!/usr/bin/env python3
"""make_seeds.py — write the fuzz targets' seed corpora (fuzz/corpus/).

    ./tokenizer and ./train built (make), then, in the lamp virtualenv,
    from the repository root:
    python -m fuzz.make_seeds

Small valid inputs of every kind each target reads, so the fuzzer starts
from files that load and mutates from there (docs/fuzzing.md). The seeds
are committed; this script says how they were made, and running it again
writes the same bytes (fixed seeds, no timestamps).
  model/      lamp float32 and int8 models, llama2.c versions 0, 1 and 2,
              each behind 4 bytes of sampler settings (fuzz/fuzz_model.c)
  tokenizer/  tokenizer.bin and lamp tokenizer sections with text; texts
              for the real vocabularies (fuzz/fuzz_tokenizer.c)
  train/      a training state made by ./train, with text and a shard
              (fuzz/fuzz_train.c)
"""
import os
import struct
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import lampfile  # the repository root's (run as a module from there)

CORPUS = os.path.join(ROOT, "fuzz", "corpus")
TEXTS = [b"Once upon a time, there was a little cat.",
         "caf\u00e9 \u2581 na\u00efve \U0001F600 \u4e2d\u6587".encode("utf-8"),
         b"  two  spaces\tand a tab\n\nnew document\n",
         b"\xff\xfe broken \xc3 utf-8 \xed\xa0\x80"]


def put(kind, name, data):
    os.makedirs(os.path.join(CORPUS, kind), exist_ok=True)
    with open(os.path.join(CORPUS, kind, name), "wb") as f:
        f.write(data)


def tiny_cfg(vocab, dim=16, hidden=32, layers=2, heads=2, kv_heads=1, seq_len=16, shared=1):
    return dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv_heads,
                head_dim=dim // heads, vocab_size=vocab, seq_len=seq_len, rope_theta=10000.0,
                norm_eps=1e-5, bos_id=1, eos_id=2, shared_classifier=shared)


def random_tensors(cfg, seed):
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in lampfile.tensor_shapes(cfg).items():
        if name.startswith("rms"):
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = (0.5 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    return tensors


def model_seeds(tmp):
    knobs = [bytes([64, 230, 0, 3]), bytes([0, 0, 0, 131]), bytes([255, 1, 0, 5]), bytes([40, 0, 3, 7])]
    path = os.path.join(tmp, "m")
    cfg = tiny_cfg(272)
    tensors = random_tensors(cfg, 1)
    tok = lampfile.synthetic_tokenizer(272)
    for i, (name, gs) in enumerate([("lamp-f32", 0), ("lamp-q8", 16)]):
        lampfile.write_lamp(path, cfg, tensors, tok, gs)
        put("model", name, knobs[i] + open(path, "rb").read())
    cfg = tiny_cfg(32, shared=0)
    tensors = random_tensors(cfg, 2)
    lampfile.write_llama2c_v0(path, cfg, tensors)
    put("model", "llama2c-v0", knobs[2] + open(path, "rb").read())
    lampfile.write_llama2c_v1(path, cfg, tensors)
    put("model", "llama2c-v1", knobs[3] + open(path, "rb").read())
    lampfile.write_llama2c_v2(path, cfg, tensors, 16)
    put("model", "llama2c-v2", knobs[0] + open(path, "rb").read())


def tokenizer_seeds(tmp):
    text_path, tok_path = os.path.join(tmp, "text.txt"), os.path.join(tmp, "tok.bin")
    with open(text_path, "wb") as f:
        f.write(open(os.path.join(ROOT, "data", "tinystories", "valid.txt"), "rb").read()[:20000])
    subprocess.run([os.path.join(ROOT, "tokenizer"), "train", "-i", text_path, "-o", tok_path,
                    "--vocab-size", "340"], check=True, stderr=subprocess.DEVNULL)
    bin_bytes = open(tok_path, "rb").read()
    section = lampfile.encode_tokenizer(lampfile.synthetic_tokenizer(280))
    for i, text in enumerate(TEXTS):
        put("tokenizer", f"bin-{i}", bytes([0]) + struct.pack("<H", len(bin_bytes)) + bin_bytes + text)
        put("tokenizer", f"section-{i}", bytes([1]) + struct.pack("<H", len(section)) + section + text)
        put("tokenizer", f"file-{i}", bytes([2]) + struct.pack("<H", len(bin_bytes)) + bin_bytes + text)
        for vocab in range(3):
            put("tokenizer", f"real{vocab}-{i}", bytes([3, vocab]) + text)
    return tok_path, text_path


def train_seeds(tmp, tok_path, text_path):
    out = os.path.join(tmp, "run")
    subprocess.run([os.path.join(ROOT, "train"), "--data", text_path, "--tokenizer", tok_path,
                    "--dim", "8", "--n-layers", "1", "--n-heads", "2", "--seq-len", "8", "--batch", "2",
                    "--steps", "2", "--warmup", "1", "--eval-every", "0", "--sample-every", "0",
                    "--val-fraction", "0.1", "--seed", "1", "--threads", "1", "--out", out],
                   check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    state = open(os.path.join(out, "train.state"), "rb").read()
    shard_path = os.path.join(tmp, "shard.bin")
    subprocess.run([os.path.join(ROOT, "train"), "--tokenize", text_path, shard_path, "--tokenizer", tok_path],
                   check=True, stderr=subprocess.DEVNULL)
    head = struct.pack("<I", len(state)) + state
    put("train", "state-text", head + open(text_path, "rb").read()[:3000])
    put("train", "state-shard", head + open(shard_path, "rb").read()[:64 + 2 * 1500])
    put("train", "state-lines", head + b"one line\nanother line\n\nthird\n" * 20)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model_seeds(tmp)
        tok_path, text_path = tokenizer_seeds(tmp)
        train_seeds(tmp, tok_path, text_path)
    for kind in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, kind))
        size = sum(os.path.getsize(os.path.join(CORPUS, kind, f)) for f in files)
        print(f"fuzz/corpus/{kind}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
