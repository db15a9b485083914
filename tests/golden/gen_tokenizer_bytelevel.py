#!/usr/bin/env python3
"""Build the byte-level tokenizer goldens: tests/golden/tokenizer_bytelevel/.

lamp's byte-level BPE (GPT-2, Llama 3 and SmolLM2 splits) must give exactly
the ids of Hugging Face's `tokenizers` library. tools/check_tokenizer_bytelevel.py
checks that on whole files with SmolLM2's real 49,152-piece tokenizer, but it
needs Python and a download; these goldens let tests/test_tokenizer.c check the
same thing offline, in `make test`.

Three small BPE vocabularies (1,024 pieces, of which 256 are the bytes) are
trained here with `tokenizers`' BpeTrainer on a fixed sample of lamp's data
files plus a few lines of other scripts (so that some merges join multi-byte
characters), one per pre-tokenizer lamp implements:

  gpt2    ByteLevel (GPT-2's pattern)
  llama3  Split(Llama 3's pattern, isolated) then ByteLevel without its pattern
  smollm  Digits(individual_digits) then ByteLevel (SmolLM2's)

each with the added tokens <|endoftext|>, <|im_start|> and <|im_end|>. export.py
reads each tokenizer.json (the route a real model takes) and the tokenizer is
written into a tiny lamp model file (all weights zero; only its tokenizer
matters), which tokenizer.c loads as it loads any model.

Output (all in tests/golden/tokenizer_bytelevel/):
  lines.in      the input lines, each followed by "\\n" (bytes; some not UTF-8)
  <kind>.lamp   the tokenizer, as a lamp model file
  <kind>.ids    line i holds `tokenizers`' ids for line i (decoded as UTF-8 with
                errors="replace", as lamp does; no special tokens added, added
                tokens in the text matched), space-separated

The lines (deterministic): every line of tests/data/bytelevel/edge_cases.txt,
300 lines each sampled from data/tinystories/valid.txt and
data/tinyshakespeare/input.txt, the crafted lines below (contractions in
every case, digit runs, whitespace runs with tabs and carriage returns, many
scripts, emoji, combining marks, added tokens, malformed UTF-8) and 200
random mixes of those characters.

Usage (from the repository root):
  ~/.cache/lamp/venv/bin/python -m tests.golden.gen_tokenizer_bytelevel
"""
import json
import os
import random
import tempfile

import numpy as np
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

import export
import lampfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")),
                       "tokenizer_bytelevel")
SEED = 20261207
VOCAB_SIZE = 1024
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CRAFTED = [
    # contractions: GPT-2 matches them lower case only, Llama 3 in any case
    "I'm sure you're right, they've said we'll see, he'd go, it's Tom's.",
    "DON'T SHOUT, I'M HERE. YOU'RE LATE. WE'LL GO. SHE'D KNOW. IT'S MINE.",
    "It'S wE'Ll yOu'Re i'M", "'s 't 're 've 'm 'll 'd", "''s '''", "rock'n'roll", "'", "a'",
    "we'd've", "don't's", "I 'm", "l'été d'un garçon", "x'S'T",
    # digits: one at a time (smollm), up to three (llama3), runs (gpt2)
    "1", "12", "123", "1234", "12345", "1234567890123", "3.14159", "1,000,000", "v2.0.1",
    "x1y22z333w4444", "2026-12-07 23:59:59", "-42", "+1 (555) 010-9999", "0x7FFF", "1e-5",
    "٣٤٥ ١٢", "①②③", "½ ¾", "Ⅻ Ⅳ", "²³", "１２３", "abc123def", "123abc", " 123", "  123  ",
    # whitespace: runs, tabs, carriage returns, spaces before letters and at the end
    "a b", "a  b", "a   b", "a    b", "   leading", "trailing   ", " ", "  ", "     ", "\t",
    "\tTab", "a\tb", "a\t\tb", " \t \t", "\t  x", "x  \t", "a\rb", "\r", "a \r b", "\r\r\rx",
    "end.\r", " \r ", "a\u00a0b", "\u00a0\u00a0x", "a\u3000b", "x\u2028y", "\u200bzero width",
    "word  , word", "(  )", "!  !",
    # punctuation and symbols
    "!!!", "...", "?!", "(a)", "[b]", "{c}", "«quoted»", "“curly” ‘quotes’", "— dash – dash",
    "@user #tag $5 %d ^_^ &amp; *", "foo_bar baz-qux", "a/b\\c|d", "~~~===+++", "¿Qué? ¡Sí!",
    "x <= y >= z != w", "#include <stdio.h>", "print('hi')", "e = mc²", "∑ ∫ √ ∞ ≈ ≠",
    # scripts
    "naïve café résumé", "Ελληνικά γράμματα", "Русский язык", "עברית", "العربية",
    "हिन्दी भाषा", "ภาษาไทย", "Tiếng Việt", "你好，世界！", "日本語のテキストです。", "한국어 문장",
    "中文English混合123", "Ｆｕｌｌｗｉｄｔｈ",
    # emoji and combining marks
    "👍", "👍🏽", "👨‍👩‍👧", "🇫🇷🇩🇪", "😀😀😀", "I ❤️ lamp", "e\u0301", "n\u0303o",
    "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032dl\u036e\u0312g\u0306o", "\u0301leading mark",
    # added tokens in the text
    "<|im_start|>user Hello<|im_end|>", "<|endoftext|><|endoftext|>", "text<|im_end|>more",
    "<|im_start", "<|im_start|>", "< |im_end| >", "<|im_end|><|im_start|>assistant",
]
# malformed UTF-8: stray continuation bytes, truncated sequences, overlong
# forms, surrogates, code points past U+10FFFF, bytes that never occur
CRAFTED_BYTES = [b"\xff", b"abc\xc3", b"\xe2\x82", b"x\xe2\x82y", b"\xed\xa0\x80", b"\xc0\xaf",
                 b"\xf4\x90\x80\x80", b"\x80\x80 z", b"ok \xfe\xfe ok", b"caf\xe9", b"\xf0\x9f\x98",
                 b"12\xff34", b"\xc3\xa9\xc3"]
# characters the random lines are made of
POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + \
    [" ", " ", " ", "  ", "\t", "\r", "'", "'s", "'LL", ".", ",", "!", "?", "-", "_", "(", ")",
     "\u00a0", "é", "ß", "Ω", "ж", "中", "語", "😀", "👍🏽", "\u0301", "٣", "½", "<|im_end|>"]


def read_lines(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def sample(rng, path, n):
    lines = read_lines(path)
    return [lines[i] for i in sorted(rng.sample(range(len(lines)), n))]


def input_lines():
    rng = random.Random(SEED)
    lines = read_lines("tests/data/bytelevel/edge_cases.txt")
    lines += sample(rng, "data/tinystories/valid.txt", 300)
    lines += sample(rng, "data/tinyshakespeare/input.txt", 300)
    lines += [s.encode() for s in CRAFTED] + CRAFTED_BYTES
    lines += ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 40))).encode() for _ in range(200)]
    assert all(b"\n" not in line and b"\0" not in line for line in lines)
    return lines


def training_text():
    """What the BPEs learn from: the start of the two corpora and the crafted lines."""
    text = []
    for path, n in (("data/tinystories/train.txt", 400_000), ("data/tinyshakespeare/input.txt", 200_000)):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text += f.read(n).splitlines()
    return text + CRAFTED * 20


def train(kind, text):
    tok = Tokenizer(models.BPE())
    tok.decoder = decoders.ByteLevel()
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif kind == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(export.LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=ADDED, show_progress=False)
    tok.train_from_iterator(text, trainer)
    return tok


def write_model(vocab, path):
    """A lamp model around the tokenizer: the smallest valid shapes, zero weights."""
    n = len(vocab.tokenizer.pieces)
    cfg = dict(dim=8, hidden_dim=8, n_layers=1, n_heads=1, n_kv_heads=1, head_dim=8, vocab_size=n,
               seq_len=8, rope_theta=1e4, norm_eps=1e-5, bos_id=-1, eos_id=-1, shared_classifier=True)
    tensors = {k: np.zeros(s, np.float32) for k, s in lampfile.tensor_shapes(cfg).items()}
    lampfile.write_lamp(path, cfg, tensors, vocab.tokenizer)


def main():
    print(f"tokenizers {tokenizers.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    lines = input_lines()
    with open(os.path.join(OUT_DIR, "lines.in"), "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))
    texts = [line.decode("utf-8", errors="replace") for line in lines]
    text = training_text()
    for kind, lamp_kind in (("gpt2", lampfile.TOKENIZER_GPT2), ("llama3", lampfile.TOKENIZER_LLAMA3),
                            ("smollm", lampfile.TOKENIZER_SMOLLM)):
        tok = train(kind, text)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tokenizer.json")
            tok.save(path)
            with open(path, encoding="utf-8") as f:
                assert len(json.load(f)["model"]["merges"]) > 500
            vocab = export.load_vocab(path)
        assert vocab.tokenizer.kind == lamp_kind, (kind, vocab.tokenizer.kind)
        write_model(vocab, os.path.join(OUT_DIR, kind + ".lamp"))
        ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        with open(os.path.join(OUT_DIR, kind + ".ids"), "w") as f:
            f.write("".join(" ".join(map(str, i)) + "\n" for i in ids))
        print(f"{kind}: {tok.get_vocab_size()} pieces, {len(lines)} lines, "
              f"{sum(map(len, ids))} ids -> {kind}.lamp {kind}.ids")


if __name__ == "__main__":
    main()
