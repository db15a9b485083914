#!/usr/bin/env python3
"""export.py — bring real checkpoints into lamp, and take lamp models out.

    python export.py INPUT OUTPUT [options]          (python export.py -h for the options)

INPUT is recognised by what it is, not by its name:

  a directory with config.json     Hugging Face Llama (model.safetensors, sharded
                                   model.safetensors.index.json, or pytorch_model.bin[.index.json];
                                   float32, float16 or bfloat16)
  a directory with params.json     Meta's original release (consolidated.NN.pth)
  a .pt file                       a llama2.c model.py / train.py checkpoint
  a llama2.c .bin                  versions 0, 1 and 2 (int8)
  a .gguf file                     llama architecture; f32, f16, bf16 and q8_0 tensors
  a .lamp file                     lamp itself (to re-export it: to Hugging Face, to int8, ...)
  tokenizer.model / tokenizer.json / tokenizer.bin   (with --to tokenizer-bin)

OUTPUT is a lamp model (default), a Hugging Face directory (--to hf) or a llama2.c
tokenizer.bin (--to tokenizer-bin). docs/export.md has the details, the tests that
verify each conversion, and the memory figures.

How it works: every source is wrapped in an object that hands out one lamp tensor of
one layer at a time (`source.read(name, layer)`) in lamp's layout (the q/k rows of
Hugging Face checkpoints permuted, see lampfile.py), and the writers stream
those slices to the output file. At no point is the whole model in memory, let alone
two copies of it: the peak is about one tensor (the embedding table, usually).

Only numpy is always needed. torch (for .bin/.pt/.pth files), sentencepiece (for
tokenizer.model) and gguf (for .gguf) are imported when an input or output needs
them; safetensors files are read and written with numpy alone.
"""

import argparse
import glob
import importlib
import json
import os
import re
import struct
import sys
import time
from dataclasses import dataclass

import numpy as np

import lampfile

PROG = "export.py"

# The per-layer lamp tensors. (lampfile.Q8_TENSORS are the matrices that Q8_0
# files store as int8; the RMSNorm gains stay float32.)
LAYERED = ("rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight", "w1", "w2", "w3")
WEIGHT_F32, WEIGHT_Q8_0 = lampfile.WEIGHT_F32, lampfile.WEIGHT_Q8_0
DEFAULT_GROUP_SIZE = 64  # llama2.c's default; halved until it divides every row


class ExportError(Exception):
    """A problem with the input or the request: printed as one line, exit status 1."""


def need(module, pip_name, why):
    """Import a package only when it is needed, with a message naming it if missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{why} needs the Python package '{pip_name}' "
                          f"(pip install {pip_name})") from None


def note(msg):
    """Informational line on stderr (silenced by --quiet)."""
    if not QUIET:
        print(f"{PROG}: {msg}", file=sys.stderr)


QUIET = False


# ---------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second.

    Drawn only when stderr is a terminal (or --progress), so logs and tests stay clean."""

    def __init__(self, total, label, enabled):
        self.total, self.label, self.done = max(int(total), 1), label, 0
        self.enabled, self.drawn = enabled, 0
        self.start = self.last = time.time()

    def add(self, n):
        self.done += int(n)
        now = time.time()
        if self.enabled and (now - self.last > 0.1 or self.done >= self.total > self.drawn):
            self.last, self.drawn = now, self.done
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            print(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}%  {self.done / 1e6:,.0f}"
                  f"/{self.total / 1e6:,.0f} M weights  {now - self.start:5.1f} s",
                  end="", file=sys.stderr, flush=True)

    def finish(self):
        if self.enabled:
            print(file=sys.stderr)


# ---------------------------------------------------------------------------
# Reading raw arrays and converting number formats
# ---------------------------------------------------------------------------

def read_array(f, offset, dtype, count, what):
    """count elements of dtype at byte offset of the open file f, in fresh memory.

    Plain reads, not a memory map: the pages of the source file then never count
    toward this process's memory, and each array is freed as soon as it is written."""
    f.seek(offset)
    a = np.fromfile(f, dtype=dtype, count=count)
    if a.size != count:
        raise ExportError(f"{f.name}: the file ends inside {what} (truncated?)")
    return a


# Element-wise conversions run over this many elements at a time, so that their
# temporaries stay small next to the tensor itself.
CHUNK = 1 << 20


def bf16_to_f32(u16):
    """bfloat16 bits (uint16) -> float32: bfloat16 is the top half of a float32."""
    u = u16.astype(np.uint32)
    u <<= 16
    return u.view(np.float32)


def f32_to_bf16(x):
    """float32 -> bfloat16 bits, rounding to nearest even (as torch does)."""
    u32 = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
    out = np.empty(u32.size, np.uint16)
    for i in range(0, u32.size, CHUNK):
        u = u32[i:i + CHUNK].astype(np.uint64)
        out[i:i + CHUNK] = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return out.reshape(np.shape(x))


def f32_shortest(x):
    """The shortest decimal that reads back as the same float32 (1e-05, not 9.99e-06)."""
    return float(str(np.float32(x)))


def q8_dequantize(values, scales, group_size):
    """Q8_0 -> float32, flat: w = value * scale of its group (lampfile.dequantize_q8_0,
    a chunk at a time)."""
    values = values.reshape(-1)
    out = np.empty(values.size, np.float32)
    step = max(CHUNK // group_size, 1) * group_size
    for i in range(0, values.size, step):
        out[i:i + step] = lampfile.dequantize_q8_0(
            values[i:i + step], scales[i // group_size:(i + step) // group_size], group_size)
    return out


def q8_quantize(x, group_size):
    """float32 -> Q8_0 (flat int8 values, float32 scales) with lampfile.quantize_q8_0 (the
    rule run.c's activation quantizer matches bit for bit), a chunk of groups at a time:
    groups are independent, so the result is the same, and the float64 temporaries small."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    values = np.empty(x.size, np.int8)
    scales = np.empty(x.size // group_size, "<f4")
    step = max(CHUNK // group_size, 1) * group_size
    for i in range(0, x.size, step):
        v, s = lampfile.quantize_q8_0(x[i:i + step], group_size)
        values[i:i + step] = v.reshape(-1)
        scales[i // group_size:(i + step) // group_size] = s
    return values, scales


def layer_shape(cfg, name):
    shape = lampfile.tensor_shapes(cfg)[name]
    return shape[1:] if name in LAYERED else shape


def layers_of(cfg, name):
    return range(cfg["n_layers"]) if name in LAYERED else [None]


# ---------------------------------------------------------------------------
# Tokenizers. All of them become a lampfile.Tokenizer (pieces as lamp stores
# them: UTF-8 bytes with SentencePiece's '▁' written as a space, a score and a
# SentencePiece piece type) plus the bos/eos ids the vocabulary declares.
# ---------------------------------------------------------------------------

@dataclass
class Vocab:
    tokenizer: lampfile.Tokenizer
    bos_id: int = -1
    eos_id: int = -1
    origin: str = ""
    chat_template: int = 0  # an index into lampfile.CHAT_TEMPLATES


UNKNOWN_CHAT_TEMPLATE = -1


def chat_template_of(jinja):
    """A Jinja chat template (tokenizer_config.json, GGUF tokenizer.chat_template) -> the
    one of lamp's templates it is (told apart by the markers each one uses), 0 for no
    template, UNKNOWN_CHAT_TEMPLATE for one lamp does not know."""
    if not jinja:
        return 0
    for marker, name in (("<|im_start|>", "chatml"), ("<|start_header_id|>", "llama3"),
                         ("[INST]", "llama2")):
        if marker in jinja:
            return lampfile.CHAT_TEMPLATES.index(name)
    return UNKNOWN_CHAT_TEMPLATE


# GPT-2's byte-level BPE writes each byte of a piece as a printable character: the
# printable bytes as themselves, the other 68 (space, control bytes...) as U+0100 and
# up, in byte order ('Ġ' U+0120 is the space). lamp stores the bytes themselves.
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
              *range(ord("®"), ord("ÿ") + 1)]
_BYTE_OF_CHAR = {chr(b): b for b in _PRINTABLE}
_BYTE_OF_CHAR.update({chr(256 + i): b for i, b in
                      enumerate(b for b in range(256) if b not in _PRINTABLE)})


def byte_level_bytes(piece, origin):
    """A byte-level piece as written in tokenizer.json / GGUF -> the bytes it stands for."""
    try:
        return bytes(_BYTE_OF_CHAR[c] for c in piece)
    except KeyError:
        raise ExportError(f"{origin}: piece {piece!r} is not written in GPT-2's byte-level "
                          f"alphabet") from None


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level_kind(pre, origin):
    """tokenizer.json's pre_tokenizer -> the lamp tokenizer kind that splits the same way:
    ByteLevel alone (GPT-2), Digits(individual) then ByteLevel (SmolLM2), or Llama 3's
    Split pattern then ByteLevel without its own pattern."""
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre]
    names = [st.get("type") if st else None for st in steps]
    last = steps[-1] if steps and steps[-1] else {}
    if last.get("type") == "ByteLevel" and last.get("add_prefix_space"):
        raise ExportError(f"{origin}: ByteLevel with add_prefix_space is not supported by lamp")
    if names == ["ByteLevel"] and last.get("use_regex", True):
        return lampfile.TOKENIZER_GPT2
    if names == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and \
            last.get("use_regex", True):
        return lampfile.TOKENIZER_SMOLLM
    if names == ["Split", "ByteLevel"] and not last.get("use_regex", True) and \
            steps[0].get("pattern", {}).get("Regex") == LLAMA3_PATTERN and \
            steps[0].get("behavior") == "Isolated" and not steps[0].get("invert"):
        return lampfile.TOKENIZER_LLAMA3
    raise ExportError(f"{origin}: byte-level pre-tokenizer {names} is not one lamp knows "
                      f"(GPT-2's ByteLevel, SmolLM2's Digits + ByteLevel, Llama 3's Split + "
                      f"ByteLevel)")


def byte_level_vocab(tokens, types, merges, kind, origin):
    """Pieces (id order), their SentencePiece-style types and the merge list (pairs of
    piece strings, in rank order) -> a byte-level lampfile.Tokenizer. Normal pieces are
    written in the byte alphabet; added tokens (control, user-defined) are plain text."""
    pieces = []
    for s, ptype in zip(tokens, types):
        text = byte_level_bytes(s, origin) if ptype == lampfile.PIECE_NORMAL else s.encode()
        pieces.append((text, 0.0, ptype))
    id_of = {}
    for i, s in enumerate(tokens):
        id_of.setdefault(s, i)
    pairs = []
    for r, merge in enumerate(merges):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        if a not in id_of or b not in id_of or a + b not in id_of:
            raise ExportError(f"{origin}: merge {r} ({a!r} {b!r}) names a piece that is not "
                              f"in the vocabulary")
        pairs.append((id_of[a], id_of[b]))
    return lampfile.Tokenizer(pieces, 0, kind, pairs)


SP_MODEL_TYPES = {1: "Unigram", 2: "BPE", 3: "word", 4: "char"}
BYTE_PIECE = re.compile(r"^<0x[0-9A-F]{2}>$")


def _sp_proto(why):
    need("sentencepiece", "sentencepiece", why)
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        raise ExportError(f"{why} needs the Python package 'protobuf' (pip install protobuf)") from None
    return sentencepiece_model_pb2


def vocab_from_sentencepiece(path):
    """A SentencePiece tokenizer.model -> Vocab. Refuses what tokenizer.c cannot reproduce."""
    pb = _sp_proto("reading a SentencePiece tokenizer.model")
    m = pb.ModelProto()
    try:
        with open(path, "rb") as f:
            m.ParseFromString(f.read())
    except Exception:
        raise ExportError(f"{path}: not a SentencePiece model") from None
    if not len(m.pieces):
        raise ExportError(f"{path}: not a SentencePiece model (no pieces)")
    kind = m.trainer_spec.model_type
    if kind != 2:
        raise ExportError(f"{path}: a SentencePiece {SP_MODEL_TYPES.get(kind, kind)} model; lamp's "
                          f"tokenizer implements SentencePiece BPE only")
    ns = m.normalizer_spec
    if ns.name not in ("", "identity") or ns.precompiled_charsmap:
        raise ExportError(f"{path}: SentencePiece normalization '{ns.name}' is not supported "
                          f"(lamp's tokenizer does not normalize text; train with "
                          f"--normalization_rule_name=identity)")
    if ns.remove_extra_whitespaces:
        raise ExportError(f"{path}: SentencePiece remove_extra_whitespaces is not supported "
                          f"(lamp's tokenizer keeps every space)")
    if not ns.escape_whitespaces or m.trainer_spec.treat_whitespace_as_suffix:
        raise ExportError(f"{path}: this SentencePiece model does not mark whitespace with a "
                          f"'▁' prefix, which lamp's tokenizer assumes")
    pieces = [(p.piece.replace("\u2581", " ").encode("utf-8"), float(np.float32(p.score)),
               int(p.type)) for p in m.pieces]
    n = len(pieces)
    ts = m.trainer_spec
    bos = ts.bos_id if 0 <= ts.bos_id < n else -1
    eos = ts.eos_id if 0 <= ts.eos_id < n else -1
    return Vocab(lampfile.Tokenizer(pieces, int(ns.add_dummy_prefix)), bos, eos, path)


def vocab_to_sentencepiece(vocab):
    """Vocab -> the bytes of a SentencePiece tokenizer.model (for Hugging Face output)."""
    pb = _sp_proto("writing a tokenizer.model for Hugging Face")
    m = pb.ModelProto()
    unk = -1
    for i, (text, score, ptype) in enumerate(vocab.tokenizer.pieces):
        p = m.pieces.add()
        try:
            p.piece = bytes(text).decode("utf-8").replace(" ", "\u2581")
        except UnicodeDecodeError:
            raise ExportError(f"piece {i} is not valid UTF-8, which a SentencePiece model "
                              f"cannot hold") from None
        p.score = score
        p.type = ptype
        if ptype == lampfile.PIECE_UNKNOWN and unk < 0:
            unk = i
    if unk < 0:
        raise ExportError("the vocabulary has no unknown piece, which a SentencePiece "
                          "tokenizer.model requires")
    ts = m.trainer_spec
    ts.model_type = 2  # BPE
    ts.vocab_size = len(m.pieces)
    ts.byte_fallback = any(t == lampfile.PIECE_BYTE for _, _, t in vocab.tokenizer.pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = unk, vocab.bos_id, vocab.eos_id, -1
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = bool(vocab.tokenizer.add_dummy_prefix)
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    return m.SerializeToString()


def vocab_from_tokenizer_bin(path):
    """llama2.c's tokenizer.bin -> Vocab, recovering the piece types as tokenizer.c does."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ExportError(f"{path}: too short to be a tokenizer.bin")
    max_len = struct.unpack_from("<I", data)[0]
    if not 0 < max_len <= 65536:
        raise ExportError(f"{path}: max_token_length {max_len} is not sane: not a tokenizer.bin")
    pieces, off, bos, eos = [], 4, -1, -1
    while off < len(data):
        if off + 8 > len(data):
            raise ExportError(f"{path}: the file ends inside a piece")
        score, n = struct.unpack_from("<fI", data, off)
        text = data[off + 8:off + 8 + n]
        if n > max_len or len(text) != n:
            raise ExportError(f"{path}: piece {len(pieces)} is corrupt")
        off += 8 + n
        i = len(pieces)
        if text == b"<unk>":
            ptype = lampfile.PIECE_UNKNOWN
        elif text in (b"\n<s>\n", b"\n</s>\n"):
            ptype = lampfile.PIECE_CONTROL
            if text == b"\n<s>\n" and bos < 0:
                bos = i
            if text == b"\n</s>\n" and eos < 0:
                eos = i
            text = text.strip(b"\n")  # llama2.c's export decorated them; lamp keeps "<s>"
        elif BYTE_PIECE.match(text.decode("latin-1")):
            ptype = lampfile.PIECE_BYTE
        else:
            ptype = lampfile.PIECE_NORMAL
        pieces.append((text, score, ptype))
    # llama2.c hard-codes BOS 1 and EOS 2
    bos = bos if bos >= 0 else (1 if len(pieces) > 1 else -1)
    eos = eos if eos >= 0 else (2 if len(pieces) > 2 else -1)
    return Vocab(lampfile.Tokenizer(pieces, 1), bos, eos, path)


def write_tokenizer_bin(path, vocab):
    """Vocab -> llama2.c's tokenizer.bin, byte for byte what llama2.c's tokenizer.py writes:
    BOS as "\\n<s>\\n", EOS as "\\n</s>\\n", '▁' as a space, then
    uint32 max_token_length and (float32 score, uint32 length, bytes) per piece."""
    texts = []
    for i, (text, _, _) in enumerate(vocab.tokenizer.pieces):
        if i == vocab.bos_id:
            text = b"\n<s>\n"
        elif i == vocab.eos_id:
            text = b"\n</s>\n"
        texts.append(bytes(text))
    out = [struct.pack("<I", max(len(t) for t in texts))]
    for text, (_, score, _) in zip(texts, vocab.tokenizer.pieces):
        out.append(struct.pack("<fI", score, len(text)) + text)
    write_atomic(path, b"".join(out))


def _walk_types(node):
    """Every "type" value inside a tokenizer.json component (normalizer, pre_tokenizer...)."""
    if isinstance(node, dict):
        if "type" in node:
            yield node["type"], node
        for v in node.values():
            yield from _walk_types(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_types(v)


def vocab_from_tokenizer_json(path):
    """A Hugging Face tokenizer.json of SentencePiece-BPE type (Llama 2, TinyLlama) -> Vocab.

    The merges list becomes scores: a piece made by the merge of rank r gets score -r, so
    lamp's "merge the highest-scoring piece first" picks the merges in the same order."""
    try:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        model = j["model"]
    except (ValueError, KeyError, TypeError):
        raise ExportError(f"{path}: not a Hugging Face tokenizer.json") from None
    parts = {k: j.get(k) for k in ("normalizer", "pre_tokenizer", "decoder", "post_processor")}
    types = [t for t, _ in _walk_types(parts)]
    if "ByteLevel" in types and model.get("type") == "BPE":
        return byte_level_from_tokenizer_json(j, path)
    if model.get("type") != "BPE":
        raise ExportError(f"{path}: a {model.get('type')} tokenizer.json; lamp's tokenizer "
                          f"implements SentencePiece-style and byte-level BPE only")
    norm_text = json.dumps(j.get("normalizer")) + json.dumps(j.get("pre_tokenizer"))
    if "\u2581" not in norm_text and "\\u2581" not in norm_text:
        raise ExportError(f"{path}: not a SentencePiece-style BPE tokenizer (spaces are not "
                          f"marked with '▁')")
    dummy = 0
    for t, node in _walk_types({k: parts[k] for k in ("normalizer", "pre_tokenizer")}):
        if t in ("NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents", "Precompiled"):
            raise ExportError(f"{path}: text normalization '{t}' is not supported by "
                              f"lamp's tokenizer")
        if t == "Prepend" and node.get("prepend") == "\u2581":
            dummy = 1
        if t == "Metaspace" and (node.get("prepend_scheme") in ("first", "always")
                                 or node.get("add_prefix_space")):
            dummy = 1
    vocab = dict(model.get("vocab") or {})
    in_model = set(vocab.values())
    special, added = set(), {}
    for tok in j.get("added_tokens") or []:
        added[tok["id"]] = tok["content"]
        if tok.get("special"):
            special.add(tok["id"])
    id_to_text = {i: s for s, i in vocab.items()}
    for i, s in added.items():
        id_to_text.setdefault(i, s)
    n = max(id_to_text) + 1 if id_to_text else 0
    if len(id_to_text) != n:
        missing = next(i for i in range(n) if i not in id_to_text)
        raise ExportError(f"{path}: token id {missing} has no piece")
    rank = {}
    for r, merge in enumerate(model.get("merges") or []):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        rank.setdefault(a + b, r)
    unk = model.get("unk_token")
    byte_fallback = bool(model.get("byte_fallback"))
    pieces = []
    for i in range(n):
        s = id_to_text[i]
        if s == unk:
            ptype, score = lampfile.PIECE_UNKNOWN, 0.0
        elif i in special:
            ptype, score = lampfile.PIECE_CONTROL, 0.0
        elif i not in in_model:  # an added token that is not special
            ptype, score = lampfile.PIECE_USER_DEFINED, 0.0
        elif byte_fallback and BYTE_PIECE.match(s):
            ptype, score = lampfile.PIECE_BYTE, 0.0
        else:
            ptype, score = lampfile.PIECE_NORMAL, -float(rank.get(s, 0))
        pieces.append((s.replace("\u2581", " ").encode("utf-8"), score, ptype))
    names = {"bos_token": "<s>", "eos_token": "</s>"}
    tc = tokenizer_config(path)
    for k in names:
        v = tc.get(k)
        names[k] = v.get("content") if isinstance(v, dict) else (v or names[k])
    text_to_id = {s: i for i, s in id_to_text.items()}
    bos = text_to_id.get(names["bos_token"], -1)
    eos = text_to_id.get(names["eos_token"], -1)
    return Vocab(lampfile.Tokenizer(pieces, dummy), bos, eos, path,
                 chat_template_of(tc.get("chat_template")))


def tokenizer_config(path):
    """tokenizer_config.json beside a tokenizer.json, as a dict ({} if there is none), with
    the chat template of chat_template.jinja if transformers saved it there instead."""
    here = os.path.dirname(path)
    tc = {}
    if os.path.exists(os.path.join(here, "tokenizer_config.json")):
        with open(os.path.join(here, "tokenizer_config.json"), encoding="utf-8") as f:
            tc = json.load(f)
    if not tc.get("chat_template") and os.path.exists(os.path.join(here, "chat_template.jinja")):
        with open(os.path.join(here, "chat_template.jinja"), encoding="utf-8") as f:
            tc["chat_template"] = f.read()
    return tc


def byte_level_from_tokenizer_json(j, path):
    """A byte-level BPE tokenizer.json (GPT-2, Llama 3, SmolLM2) -> Vocab."""
    model = j["model"]
    if j.get("normalizer"):
        raise ExportError(f"{path}: a byte-level tokenizer with a normalizer is not supported")
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout", "ignore_merges",
                "byte_fallback"):
        if model.get(key):
            raise ExportError(f"{path}: BPE option {key} is not supported by lamp")
    kind = byte_level_kind(j.get("pre_tokenizer"), path)
    id_to_text = {i: t for t, i in model["vocab"].items()}
    types = {}
    for tok in j.get("added_tokens") or []:
        id_to_text.setdefault(tok["id"], tok["content"])
        types[tok["id"]] = lampfile.PIECE_CONTROL if tok.get("special") else \
            lampfile.PIECE_USER_DEFINED
    n = max(id_to_text) + 1
    if len(id_to_text) != n:
        missing = next(i for i in range(n) if i not in id_to_text)
        raise ExportError(f"{path}: token id {missing} has no piece")
    tokens = [id_to_text[i] for i in range(n)]
    tokenizer = byte_level_vocab(tokens, [types.get(i, lampfile.PIECE_NORMAL) for i in range(n)],
                                 model.get("merges") or [], kind, path)
    tc = tokenizer_config(path)
    text_to_id = {t: i for i, t in enumerate(tokens)}
    name = lambda v: v.get("content") if isinstance(v, dict) else v
    bos = text_to_id.get(name(tc.get("bos_token")), -1)
    eos = text_to_id.get(name(tc.get("eos_token")), -1)
    return Vocab(tokenizer, bos, eos, path, chat_template_of(tc.get("chat_template")))


GGUF_PRE_TOKENIZERS = {"gpt-2": lampfile.TOKENIZER_GPT2, "smollm": lampfile.TOKENIZER_SMOLLM,
                       "llama3": lampfile.TOKENIZER_LLAMA3, "llama-bpe": lampfile.TOKENIZER_LLAMA3}


def vocab_from_gguf_fields(field, path):
    """The tokenizer inside a GGUF file (tokenizer.ggml.*) -> Vocab."""
    model = field("tokenizer.ggml.model")
    if model is None:
        return None
    bos, eos = field("tokenizer.ggml.bos_token_id"), field("tokenizer.ggml.eos_token_id")
    bos, eos = -1 if bos is None else int(bos), -1 if eos is None else int(eos)
    chat = chat_template_of(field("tokenizer.chat_template"))
    if model == "gpt2":  # byte-level BPE; tokenizer.ggml.pre names the split (llama.cpp's names)
        pre = field("tokenizer.ggml.pre") or "gpt-2"
        if pre not in GGUF_PRE_TOKENIZERS:
            raise ExportError(f"{path}: byte-level pre-tokenizer '{pre}' (tokenizer.ggml.pre) is "
                              f"not one lamp knows ({', '.join(GGUF_PRE_TOKENIZERS)})")
        tokens = field("tokenizer.ggml.tokens")
        types = [int(t) for t in field("tokenizer.ggml.token_type") or [1] * len(tokens)]
        types = [t if t in (lampfile.PIECE_CONTROL, lampfile.PIECE_USER_DEFINED) else
                 lampfile.PIECE_NORMAL for t in types]
        tokenizer = byte_level_vocab(tokens, types, field("tokenizer.ggml.merges") or [],
                                     GGUF_PRE_TOKENIZERS[pre], path)
        return Vocab(tokenizer, bos, eos, path, chat)
    if model != "llama":
        raise ExportError(f"{path}: tokenizer.ggml.model '{model}' is not supported "
                          f"(lamp reads SentencePiece BPE, 'llama')")
    tokens = field("tokenizer.ggml.tokens")
    scores = field("tokenizer.ggml.scores") or [0.0] * len(tokens)
    types = field("tokenizer.ggml.token_type") or [lampfile.PIECE_NORMAL] * len(tokens)
    pieces = []
    for text, score, ptype in zip(tokens, scores, types):
        ptype = int(ptype)
        if not 1 <= ptype <= 6:
            ptype = lampfile.PIECE_NORMAL
        pieces.append((text.replace("\u2581", " ").encode("utf-8"),
                       float(np.float32(score)), ptype))
    dummy = field("tokenizer.ggml.add_space_prefix")
    return Vocab(lampfile.Tokenizer(pieces, 1 if dummy is None else int(bool(dummy))),
                 bos, eos, path, chat)


def load_vocab(path):
    """Any tokenizer file, or a directory holding one, -> Vocab (None if a dir has none)."""
    if os.path.isdir(path):
        for name in ("tokenizer.model", "tokenizer.json", "tokenizer.bin"):
            p = os.path.join(path, name)
            if os.path.isfile(p):
                return load_vocab(p)
        return None
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"LAMP":
        return LampSource(path).vocab
    if head[:4] == b"GGUF":
        vocab = vocab_from_gguf_fields(GGUFStore(path).field, path)
        if vocab is None:
            raise ExportError(f"{path}: this GGUF file carries no tokenizer")
        return vocab
    if path.endswith(".json"):
        return vocab_from_tokenizer_json(path)
    if path.endswith(".bin"):
        return vocab_from_tokenizer_bin(path)
    return vocab_from_sentencepiece(path)


def fit_vocab(vocab, vocab_size, what):
    """Make the tokenizer have exactly vocab_size pieces: a model may have more embedding
    rows than pieces (padding); they become unused pieces, which are never produced."""
    pieces = list(vocab.tokenizer.pieces)
    if len(pieces) > vocab_size:
        raise ExportError(f"the tokenizer ({vocab.origin}) has {len(pieces)} pieces but {what} "
                          f"has a vocabulary of {vocab_size}: they do not belong together")
    if len(pieces) < vocab_size:
        note(f"the tokenizer has {len(pieces)} pieces, the model {vocab_size} embedding rows; "
             f"the extra {vocab_size - len(pieces)} become unused pieces")
        pieces += [(b"<unused%d>" % i, 0.0, lampfile.PIECE_UNUSED)
                   for i in range(len(pieces), vocab_size)]
    t = vocab.tokenizer
    return Vocab(lampfile.Tokenizer(pieces, t.add_dummy_prefix, t.kind, t.merges),
                 vocab.bos_id, vocab.eos_id, vocab.origin, vocab.chat_template)


# ---------------------------------------------------------------------------
# Tensor stores: where the named tensors of a checkpoint live
# ---------------------------------------------------------------------------

class SafetensorsFile:
    """A .safetensors file read with numpy: 8-byte header length, a JSON header giving
    each tensor's dtype, shape and byte range, then the raw little-endian data."""
    DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        head = self.f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        if not 2 <= n <= 100_000_000:
            raise ExportError(f"{path}: not a safetensors file")
        try:
            self.header = json.loads(self.f.read(n))
        except ValueError:
            raise ExportError(f"{path}: not a safetensors file (bad header)") from None
        self.header.pop("__metadata__", None)
        self.base = 8 + n
        for key, e in self.header.items():
            if e.get("dtype") not in self.DTYPES:
                raise ExportError(f"{path}: tensor {key} has dtype {e.get('dtype')}; export.py "
                                  f"reads F32, F16, BF16 and F64 (quantized checkpoints are "
                                  f"not supported)")

    def keys(self):
        return self.header.keys()

    def shape(self, key):
        return tuple(self.header[key]["shape"])

    def get(self, key):
        e = self.header[key]
        dt = self.DTYPES[e["dtype"]]
        count = int(np.prod(e["shape"], dtype=np.int64))
        a = read_array(self.f, self.base + e["data_offsets"][0], dt, count, f"tensor {key}")
        a = bf16_to_f32(a) if e["dtype"] == "BF16" else a.astype(np.float32, copy=False)
        return a.reshape(e["shape"])


def load_torch(path, why):
    """torch.load, memory-mapped and refusing pickled code (weights_only)."""
    torch = need("torch", "torch", why)
    try:
        try:
            return torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as e:  # old (non-zip) serialization cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{path}: cannot read it as a PyTorch checkpoint of tensors: "
                          f"{msg[:200]}") from None


def torch_to_f32(t):
    import torch
    return t.detach().to(dtype=torch.float32).numpy()


class Store:
    """Named tensors: keys(), shape(key), get(key) -> float32 array; q8(key) -> None."""

    def q8(self, key):
        return None  # (values, scales, group_size) when the tensor is stored as Q8_0


class SafetensorsStore(Store):
    def __init__(self, paths):
        self.files, self.where = [], {}
        for p in paths:
            sf = SafetensorsFile(p)
            self.files.append(sf)
            for k in sf.keys():
                self.where[k] = sf

    def keys(self):
        return self.where.keys()

    def shape(self, key):
        return self.where[key].shape(key)

    def get(self, key):
        return self.where[key].get(key)


class TorchStore(Store):
    """One or more state dicts of torch tensors. With several (Meta's model-parallel
    shards), each matrix is cut into pieces along one axis and get() glues them back:
    `full` gives the shape each key must have, which tells the axis. 1-D tensors (the
    norms) are copies in every shard."""

    def __init__(self, state_dicts, full_shapes=None):
        self.sds = state_dicts
        self.full = full_shapes or {}

    def keys(self):
        return self.sds[0].keys()

    def _axis(self, key):
        shapes = [tuple(sd[key].shape) for sd in self.sds]
        if len(shapes) == 1 or len(shapes[0]) != 2:
            return None
        for axis in (0, 1):
            joined = list(shapes[0])
            joined[axis] = sum(s[axis] for s in shapes)
            if tuple(joined) == tuple(self.full.get(key, ())) and \
                    all(s[1 - axis] == shapes[0][1 - axis] for s in shapes):
                return axis
        raise ExportError(f"cannot join the {len(shapes)} shards of {key}: shapes {shapes}, "
                          f"expected {self.full.get(key)} in all")

    def shape(self, key):
        axis = self._axis(key)
        shape = list(self.sds[0][key].shape)
        if axis is not None:
            shape[axis] = sum(int(sd[key].shape[axis]) for sd in self.sds)
        return tuple(shape)

    def get(self, key):
        axis = self._axis(key)
        if axis is None:
            return torch_to_f32(self.sds[0][key])
        return np.concatenate([torch_to_f32(sd[key]) for sd in self.sds], axis=axis)


# ---------------------------------------------------------------------------
# Sources: a checkpoint as lamp sees it. Each has
#   .cfg    lamp's hyper-parameters (lampfile.py's cfg dict)
#   .vocab  its tokenizer (a Vocab), or None when it carries none
#   .read(name, layer) -> float32 array: one lamp tensor of one layer, in lamp layout
#   .q8(name, layer)   -> (values, scales, group_size) if stored as Q8_0, else None
# ---------------------------------------------------------------------------

def expected_shapes(cfg, names):
    """{key: shape} of every tensor lamp needs, under a checkpoint's own names."""
    return {names[name].format(layer): layer_shape(cfg, name)
            for name in lampfile.tensor_shapes(cfg) for layer in layers_of(cfg, name)}


class KeyedSource:
    """A source whose tensors are found by name in a Store: Hugging Face, Meta,
    llama2.c .pt and GGUF differ only in the names, and in whether the q/k rows
    need Hugging Face's permutation."""
    ignore = re.compile(r"(rotary_emb\.inv_freq|^rope\.freqs|^freqs_c(os|is)|^freqs_sin)")

    def __init__(self, store, names, permute_qk, cfg, vocab, what):
        self.store, self.names, self.permute_qk = store, names, permute_qk
        self.cfg, self.vocab, self.what = cfg, vocab, what
        self.check_keys()

    def key(self, name, layer):
        return self.names[name].format(layer)

    def check_keys(self):
        """Before converting anything: every tensor present with the right shape, and
        nothing lamp would have to ignore (biases, q/k norms, experts...)."""
        want = expected_shapes(self.cfg, self.names)
        have = set(self.store.keys())
        extra = sorted(k for k in have - set(want) if not self.ignore.search(k)
                       and not (k == self.names.get("wcls") and self.cfg["shared_classifier"]))
        biases = [k for k in extra if k.endswith(".bias")]
        if biases:
            raise ExportError(f"{self.what}: has bias tensors ({biases[0]}, ...): attention "
                              f"and feed-forward biases are not supported by lamp")
        if extra:
            raise ExportError(f"{self.what}: has tensors lamp has no place for "
                              f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}): "
                              f"not a plain Llama model")
        for k, shape in want.items():
            if k not in have:
                raise ExportError(f"{self.what}: tensor {k} is missing")
            if tuple(self.store.shape(k)) != tuple(shape):
                raise ExportError(f"{self.what}: tensor {k} has shape {tuple(self.store.shape(k))}, "
                                  f"the config implies {tuple(shape)}")

    def read(self, name, layer):
        w = self.store.get(self.key(name, layer))
        if self.permute_qk and name in ("wq", "wk"):
            heads = self.cfg["n_heads"] if name == "wq" else self.cfg["n_kv_heads"]
            w = lampfile.hf_qk_to_lamp(w, heads, self.cfg["head_dim"])
        return np.ascontiguousarray(w, dtype=np.float32)

    def q8(self, name, layer):
        return self.store.q8(self.key(name, layer))


HF_NAMES = {
    "token_embedding": "model.embed_tokens.weight",
    "rms_att_weight": "model.layers.{}.input_layernorm.weight",
    "wq": "model.layers.{}.self_attn.q_proj.weight",
    "wk": "model.layers.{}.self_attn.k_proj.weight",
    "wv": "model.layers.{}.self_attn.v_proj.weight",
    "wo": "model.layers.{}.self_attn.o_proj.weight",
    "rms_ffn_weight": "model.layers.{}.post_attention_layernorm.weight",
    "w1": "model.layers.{}.mlp.gate_proj.weight",
    "w2": "model.layers.{}.mlp.down_proj.weight",
    "w3": "model.layers.{}.mlp.up_proj.weight",
    "rms_final_weight": "model.norm.weight",
    "wcls": "lm_head.weight",
}

# Meta's original code and llama2.c's model.py use the same names (and the same
# interleaved RoPE as lamp, so no permutation).
META_NAMES = {
    "token_embedding": "tok_embeddings.weight",
    "rms_att_weight": "layers.{}.attention_norm.weight",
    "wq": "layers.{}.attention.wq.weight",
    "wk": "layers.{}.attention.wk.weight",
    "wv": "layers.{}.attention.wv.weight",
    "wo": "layers.{}.attention.wo.weight",
    "rms_ffn_weight": "layers.{}.ffn_norm.weight",
    "w1": "layers.{}.feed_forward.w1.weight",
    "w2": "layers.{}.feed_forward.w2.weight",
    "w3": "layers.{}.feed_forward.w3.weight",
    "rms_final_weight": "norm.weight",
    "wcls": "output.weight",
}

# llama.cpp's names; its converter already permuted q/k to interleaved pairs.
GGUF_NAMES = {
    "token_embedding": "token_embd.weight",
    "rms_att_weight": "blk.{}.attn_norm.weight",
    "wq": "blk.{}.attn_q.weight",
    "wk": "blk.{}.attn_k.weight",
    "wv": "blk.{}.attn_v.weight",
    "wo": "blk.{}.attn_output.weight",
    "rms_ffn_weight": "blk.{}.ffn_norm.weight",
    "w1": "blk.{}.ffn_gate.weight",
    "w2": "blk.{}.ffn_down.weight",
    "w3": "blk.{}.ffn_up.weight",
    "rms_final_weight": "output_norm.weight",
    "wcls": "output.weight",
}


def lamp_cfg(what, **kw):
    """Build and check a lamp cfg; bad values become one-line errors."""
    try:
        lampfile.check_cfg(kw)
    except (ValueError, TypeError) as e:
        raise ExportError(f"{what}: {e}") from None
    return kw


# --- Hugging Face ------------------------------------------------------------

MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts",
            "num_experts_per_tok")


def check_hf_config(c, what):
    """Refuse, with the reason, every Hugging Face config lamp cannot run."""
    for k in MOE_KEYS:
        if c.get(k):
            raise ExportError(f"{what}: mixture-of-experts models ({k} = {c[k]}) are not "
                              f"supported by lamp")
    if c.get("sliding_window") is not None and c.get("use_sliding_window", True):
        raise ExportError(f"{what}: sliding-window attention (sliding_window = "
                          f"{c['sliding_window']}) is not supported by lamp")
    archs = c.get("architectures") or []
    mtype = c.get("model_type")
    if mtype != "llama" or any(a != "LlamaForCausalLM" for a in archs):
        name = archs[0] if archs else f"model_type '{mtype}'"
        raise ExportError(f"{what}: architecture {name} is not supported: lamp runs "
                          f"Llama models (LlamaForCausalLM)")
    if c.get("attention_bias") or c.get("mlp_bias"):
        raise ExportError(f"{what}: attention/MLP biases (attention_bias/mlp_bias = true) are "
                          f"not supported by lamp")
    if c.get("hidden_act", "silu") != "silu":
        raise ExportError(f"{what}: activation '{c['hidden_act']}' is not supported "
                          f"(lamp's feed-forward is SwiGLU with SiLU)")
    if c.get("quantization_config"):
        q = c["quantization_config"]
        raise ExportError(f"{what}: quantized checkpoints ({q.get('quant_method', q)}) are not "
                          f"supported; convert the float16/bfloat16 original")
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "vocab_size", "rms_norm_eps"):
        if not isinstance(c.get(k), (int, float)):
            raise ExportError(f"{what}: config.json has no {k}")


def open_hf(path, args):
    cpath = os.path.join(path, "config.json")
    try:
        with open(cpath, encoding="utf-8") as f:
            config = json.load(f)
    except ValueError as e:
        raise ExportError(f"{cpath}: not valid JSON ({e})") from None
    check_hf_config(config, path)
    config.setdefault("max_position_embeddings", 2048)  # LlamaConfig's default
    try:
        cfg = lampfile.hf_lamp_config(config)
    except (ValueError, TypeError) as e:
        raise ExportError(f"{path}: {e}") from None

    def index(name):
        with open(os.path.join(path, name), encoding="utf-8") as f:
            return sorted(set(json.load(f)["weight_map"].values()))

    files = lambda names: [os.path.join(path, n) for n in names]
    if os.path.exists(os.path.join(path, "model.safetensors.index.json")):
        store = SafetensorsStore(files(index("model.safetensors.index.json")))
    elif os.path.exists(os.path.join(path, "model.safetensors")):
        store = SafetensorsStore(files(["model.safetensors"]))
    elif os.path.exists(os.path.join(path, "pytorch_model.bin.index.json")):
        sds = [load_torch(p, "reading pytorch_model-*.bin")
               for p in files(index("pytorch_model.bin.index.json"))]
        merged = {}
        for sd in sds:
            merged.update(sd)
        store = TorchStore([merged])
    elif os.path.exists(os.path.join(path, "pytorch_model.bin")):
        store = TorchStore([load_torch(os.path.join(path, "pytorch_model.bin"),
                                       "reading pytorch_model.bin")])
    else:
        raise ExportError(f"{path}: no weights (model.safetensors, model.safetensors.index.json "
                          f"or pytorch_model.bin)")
    src = KeyedSource(store, HF_NAMES, True, cfg, load_vocab(path), path)
    # config.json's bos/eos win over the tokenizer's (null there means "none": -1)
    src.stated_ids = {k for k, hf in (("bos_id", "bos_token_id"), ("eos_id", "eos_token_id"))
                      if hf in config}
    return src


# --- Meta's consolidated.*.pth and llama2.c's .pt ------------------------------

def open_meta(path, args):
    with open(os.path.join(path, "params.json"), encoding="utf-8") as f:
        params = json.load(f)
    missing = [k for k in ("dim", "n_layers", "n_heads") if not isinstance(params.get(k), int)]
    if missing:
        raise ExportError(f"{path}: params.json has no {', '.join(missing)}")
    for k in ("moe", "moe_args", "num_experts"):
        if params.get(k):
            raise ExportError(f"{path}: mixture-of-experts models ({k}) are not supported by lamp")
    if params.get("use_scaled_rope"):
        raise ExportError(f"{path}: RoPE scaling (use_scaled_rope, Llama 3.1) is not supported "
                          f"by lamp")
    if params.get("vision_chunk_size") or params.get("vision_num_cross_attention_layers"):
        raise ExportError(f"{path}: vision models are not supported by lamp")
    shards = sorted(glob.glob(os.path.join(path, "consolidated.*.pth")))
    if not shards:
        raise ExportError(f"{path}: params.json but no consolidated.*.pth")
    sds = [load_torch(p, "reading Meta's consolidated.*.pth") for p in shards]
    dim, n_heads = params["dim"], params["n_heads"]
    n_kv = params.get("n_kv_heads") or n_heads
    store = TorchStore(sds)
    if "tok_embeddings.weight" not in sds[0] or "layers.0.feed_forward.w1.weight" not in sds[0]:
        raise ExportError(f"{shards[0]}: not a Meta Llama checkpoint (no tok_embeddings.weight)")
    # the vocabulary and hidden size come from the tensors (params.json may say -1). The
    # embedding is split by columns in Llama 2's shards, by rows in Llama 3's.
    emb = [tuple(sd["tok_embeddings.weight"].shape) for sd in sds]
    by_columns = sum(s[1] for s in emb) == dim and all(s[0] == emb[0][0] for s in emb)
    vocab_size = emb[0][0] if by_columns else sum(s[0] for s in emb)
    hidden = sum(int(sd["layers.0.feed_forward.w1.weight"].shape[0]) for sd in sds)
    # Meta ships tokenizer.model beside the model directories
    vocab = load_vocab(path) or load_vocab(os.path.dirname(os.path.abspath(path)))
    seq_len = args.seq_len or params.get("max_seq_len")
    if not seq_len:
        seq_len = 4096
        note("params.json does not give the context length; using 4096 (set --seq-len)")
    # tied embeddings (Llama 3.2 1B/3B): output.weight absent, or a copy of the embedding
    shared = "output.weight" not in sds[0]
    if not shared and len(sds) == 1:
        out, emb_t = sds[0]["output.weight"], sds[0]["tok_embeddings.weight"]
        shared = tuple(out.shape) == tuple(emb_t.shape) and bool((out == emb_t).all())
    cfg = lamp_cfg(path, dim=dim, hidden_dim=hidden, n_layers=params["n_layers"],
                   n_heads=n_heads, n_kv_heads=n_kv, head_dim=dim // n_heads,
                   vocab_size=vocab_size, seq_len=int(seq_len),
                   rope_theta=float(params.get("rope_theta", 10000.0)),
                   norm_eps=float(params.get("norm_eps", 1e-5)),
                   bos_id=-1, eos_id=-1, shared_classifier=shared)
    store.full = expected_shapes(cfg, META_NAMES)
    return KeyedSource(store, META_NAMES, False, cfg, vocab, path)


def open_llama2c_pt(path, args):
    ckpt = load_torch(path, "reading a llama2.c .pt checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise ExportError(f"{path}: not a llama2.c checkpoint (no 'model' and 'model_args'); "
                          f"for Meta's consolidated.*.pth give the directory with params.json")
    a = ckpt["model_args"]
    sd = {k[len("_orig_mod."):] if k.startswith("_orig_mod.") else k: v
          for k, v in ckpt["model"].items()}
    if "tok_embeddings.weight" not in sd:
        raise ExportError(f"{path}: the state dict has no tok_embeddings.weight")
    emb = sd["tok_embeddings.weight"]
    out = sd.get("output.weight")
    shared = out is None or out is emb or (tuple(out.shape) == tuple(emb.shape)
                                           and bool((out == emb).all()))
    if shared:
        sd.pop("output.weight", None)
    n_heads = a["n_heads"]
    vocab = load_vocab(os.path.dirname(os.path.abspath(path)))
    cfg = lamp_cfg(path, dim=a["dim"], hidden_dim=tuple(sd["layers.0.feed_forward.w1.weight"].shape)[0],
                   n_layers=a["n_layers"], n_heads=n_heads, n_kv_heads=a.get("n_kv_heads") or n_heads,
                   head_dim=a["dim"] // n_heads, vocab_size=tuple(emb.shape)[0],
                   seq_len=int(args.seq_len or a.get("max_seq_len", 256)), rope_theta=10000.0,
                   norm_eps=float(a.get("norm_eps", 1e-5)),
                   bos_id=-1, eos_id=-1, shared_classifier=shared)
    return KeyedSource(TorchStore([sd]), META_NAMES, False, cfg, vocab, path)


# --- GGUF --------------------------------------------------------------------

GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30


# ---------------------------------------------------------------------------
# GGUF's quantized blocks, dequantized with the arithmetic of gguf-py's
# gguf.quants.dequantize (float32, the same order of operations), so the values
# are identical (tests/python/test_gguf_quants.py checks them one for one).
# Each function takes the raw blocks, an (n_blocks, block_bytes) uint8 array,
# and returns (n_blocks, block_elements) float32.
# ---------------------------------------------------------------------------

def _f16(raw):
    """Columns of raw bytes holding one float16 each -> float32, shape (n_blocks, 1)."""
    return raw.copy().view("<f2").astype(np.float32)


def _nibbles(qs):
    """(n, k) bytes -> (n, 2k) 4-bit values: the k low nibbles, then the k high ones."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _bits(raw, n_bits):
    """(n, 4) bytes of a little-endian uint32 -> (n, n_bits) of its bits, bit 0 first."""
    word = raw.copy().view("<u4")
    return ((word >> np.arange(n_bits, dtype=np.uint32)) & 1).astype(np.uint8)


def dequant_q4_0(b):
    """32 weights: float16 d, 16 bytes of nibbles q; w = d * (q - 8)."""
    q = _nibbles(b[:, 2:]).astype(np.int8) - np.int8(8)
    return _f16(b[:, :2]) * q.astype(np.float32)


def dequant_q4_1(b):
    """32 weights: float16 d and m, 16 bytes of nibbles q; w = d * q + m."""
    return _f16(b[:, :2]) * _nibbles(b[:, 4:]).astype(np.float32) + _f16(b[:, 2:4])


def dequant_q5_0(b):
    """32 weights: float16 d, a uint32 of fifth bits h, 16 bytes of nibbles; w = d * (q - 16)."""
    q = (_nibbles(b[:, 6:]) | (_bits(b[:, 2:6], 32) << 4)).astype(np.int8) - np.int8(16)
    return _f16(b[:, :2]) * q.astype(np.float32)


def dequant_q5_1(b):
    """32 weights: float16 d and m, a uint32 of fifth bits, 16 bytes of nibbles; w = d * q + m."""
    q = _nibbles(b[:, 8:]) | (_bits(b[:, 4:8], 32) << 4)
    return _f16(b[:, :2]) * q.astype(np.float32) + _f16(b[:, 2:4])


def _k_scales(s):
    """Q4_K/Q5_K: 12 bytes -> 8 six-bit scales and 8 six-bit minimums (one per 32 weights).
    Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 minimums 0-3; scales and
    minimums 4-7 have their low 4 bits in bytes 8-11 and their top 2 bits in the top 2
    bits of bytes 0-3 (scales) and 4-7 (minimums)."""
    d, m, md = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    scale = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    minimum = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return scale.astype(np.float32), minimum.astype(np.float32)


def _k_nibbles(qs):
    """Q4_K/Q5_K: 128 bytes -> 256 nibbles: each 32 bytes give 32 low then 32 high ones."""
    return np.concatenate([_nibbles(qs[:, i:i + 32]) for i in range(0, 128, 32)], axis=-1)


def _k_apply(d, dmin, scale, minimum, q):
    """w = (d * scale) * q - (dmin * minimum), one scale and minimum per 32 weights."""
    n = q.shape[0]
    step = (d * scale).reshape(n, 8, 1)
    low = (dmin * minimum).reshape(n, 8, 1)
    return (step * q.reshape(n, 8, 32).astype(np.float32) - low).reshape(n, 256)


def dequant_q4_k(b):
    """256 weights: float16 d and dmin, 12 bytes of scales, 128 bytes of nibbles."""
    scale, minimum = _k_scales(b[:, 4:16])
    return _k_apply(_f16(b[:, :2]), _f16(b[:, 2:4]), scale, minimum, _k_nibbles(b[:, 16:]))


def dequant_q5_k(b):
    """256 weights: float16 d and dmin, 12 bytes of scales, 32 bytes of fifth bits (bit j
    of byte l belongs to weight 32 j + l), 128 bytes of nibbles."""
    scale, minimum = _k_scales(b[:, 4:16])
    high = np.concatenate([(b[:, 16:48] >> j) & 1 for j in range(8)], axis=-1)
    q = _k_nibbles(b[:, 48:]) | (high << 4)
    return _k_apply(_f16(b[:, :2]), _f16(b[:, 2:4]), scale, minimum, q)


def dequant_q6_k(b):
    """256 weights: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales (one
    per 16 weights), float16 d; w = d * scale * (q - 32). Each half of 128 weights takes
    64 low-nibble bytes (low nibbles for weights 0-63, high for 64-127) and 32 bytes of
    highs (bits 0-1, 2-3, 4-5, 6-7 for weights 0-31, 32-63, 64-95, 96-127)."""
    n = b.shape[0]
    halves = []
    for h in range(2):
        ql = _nibbles(b[:, 64 * h:64 * h + 64])
        qh = np.concatenate([(b[:, 128 + 32 * h:160 + 32 * h] >> s) & 3 for s in (0, 2, 4, 6)],
                            axis=-1)
        halves.append(ql | (qh << 4))
    q = np.concatenate(halves, axis=-1).astype(np.int8) - np.int8(32)
    scale = b[:, 192:208].copy().view(np.int8).astype(np.float32)
    step = (_f16(b[:, 208:210]) * scale).reshape(n, 16, 1)
    return (step * q.reshape(n, 16, 16).astype(np.float32)).reshape(n, 256)


# GGML type number -> (name, weights per block, bytes per block, dequantizer)
GGUF_QUANTS = {2: ("Q4_0", 32, 18, dequant_q4_0), 3: ("Q4_1", 32, 20, dequant_q4_1),
               6: ("Q5_0", 32, 22, dequant_q5_0), 7: ("Q5_1", 32, 24, dequant_q5_1),
               12: ("Q4_K", 256, 144, dequant_q4_k), 13: ("Q5_K", 256, 176, dequant_q5_k),
               14: ("Q6_K", 256, 210, dequant_q6_k)}


class GGUFStore(Store):
    """A GGUF file: the gguf package reads the metadata and where each tensor is; the
    tensors themselves are read with plain reads, one at a time."""

    def __init__(self, path):
        gguf = need("gguf", "gguf", "reading a GGUF file")
        try:
            self.reader = gguf.GGUFReader(path)
        except Exception as e:
            raise ExportError(f"{path}: not a readable GGUF file ({str(e)[:200]})") from None
        self.path, self.f = path, open(path, "rb")
        self.tensors = {t.name: t for t in self.reader.tensors}
        for t in self.tensors.values():
            if int(t.tensor_type) not in (GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, *GGUF_QUANTS):
                try:
                    kind = gguf.GGMLQuantizationType(int(t.tensor_type)).name
                except ValueError:
                    kind = f"type {int(t.tensor_type)}"
                raise ExportError(f"{path}: tensor {t.name} is {kind}; export.py reads F32, "
                                  f"F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K GGUF tensors")

    def field(self, key, default=None):
        f = self.reader.get_field(key)
        return default if f is None else f.contents()

    def keys(self):
        return self.tensors.keys()

    def shape(self, key):
        return tuple(int(x) for x in reversed(self.tensors[key].shape))  # GGUF lists ne[0] first

    def _raw(self, key):
        t = self.tensors[key]
        return read_array(self.f, int(t.data_offset), np.uint8, int(t.n_bytes), f"tensor {key}")

    def get(self, key):
        raw, kind = self._raw(key), int(self.tensors[key].tensor_type)
        if kind == GGML_F32:
            a = raw.view("<f4")
        elif kind == GGML_F16:
            a = raw.view("<f2").astype(np.float32)
        elif kind == GGML_BF16:
            a = bf16_to_f32(raw.view("<u2"))
        elif kind in GGUF_QUANTS:
            _, _, block_bytes, dequantize = GGUF_QUANTS[kind]
            a = dequantize(raw.reshape(-1, block_bytes))
        else:
            a = q8_dequantize(*self._q8_blocks(raw))
        return a.reshape(self.shape(key))

    @staticmethod
    def _q8_blocks(raw):
        """GGUF Q8_0: blocks of 34 bytes, a float16 scale then 32 int8 values."""
        blocks = raw.reshape(-1, 34)
        scales = blocks[:, :2].copy().view("<f2").astype(np.float32).reshape(-1)
        values = blocks[:, 2:].copy().view(np.int8).reshape(-1)
        return values, scales, 32

    def q8(self, key):
        if int(self.tensors[key].tensor_type) != GGML_Q8_0:
            return None
        return self._q8_blocks(self._raw(key))


def open_gguf(path, args):
    store = GGUFStore(path)
    field = store.field
    vocab = vocab_from_gguf_fields(field, path)
    arch = field("general.architecture")
    if arch != "llama":
        raise ExportError(f"{path}: GGUF architecture '{arch}' is not supported: lamp runs "
                          f"Llama models ('llama')")
    p = lambda k, d=None: field(f"llama.{k}", d)
    if p("expert_count", 0):
        raise ExportError(f"{path}: mixture-of-experts models (llama.expert_count = "
                          f"{p('expert_count')}) are not supported by lamp")
    scaling = p("rope.scaling.type")
    if scaling not in (None, "none") or "rope_freqs.weight" in store.tensors:
        raise ExportError(f"{path}: RoPE scaling ({scaling or 'rope_freqs'}) is not "
                          f"supported by lamp")
    if any("sliding_window" in k for k in store.reader.fields):
        raise ExportError(f"{path}: sliding-window attention is not supported by lamp")
    dim, n_heads, n_kv = p("embedding_length"), p("attention.head_count"), \
        p("attention.head_count_kv")
    if isinstance(n_heads, list) or isinstance(n_kv, list):
        raise ExportError(f"{path}: per-layer head counts are not supported by lamp")
    if not dim or not n_heads or "token_embd.weight" not in store.tensors:
        raise ExportError(f"{path}: incomplete llama metadata (embedding_length, "
                          f"attention.head_count) or no token_embd.weight")
    head_dim = p("attention.key_length") or dim // n_heads
    if p("rope.dimension_count", head_dim) != head_dim:
        raise ExportError(f"{path}: partial RoPE (rope.dimension_count "
                          f"{p('rope.dimension_count')} of head_dim {head_dim}) is not "
                          f"supported by lamp")
    cfg = lamp_cfg(path, dim=dim, hidden_dim=p("feed_forward_length"),
                   n_layers=p("block_count"), n_heads=n_heads, n_kv_heads=n_kv or n_heads,
                   head_dim=head_dim, vocab_size=store.shape("token_embd.weight")[0],
                   seq_len=int(args.seq_len or p("context_length", 2048)),
                   rope_theta=float(p("rope.freq_base", 10000.0)),
                   norm_eps=float(p("attention.layer_norm_rms_epsilon", 1e-5)),
                   bos_id=-1, eos_id=-1,
                   shared_classifier="output.weight" not in store.tensors)
    src = KeyedSource(store, GGUF_NAMES, False, cfg, vocab, path)
    if any(int(t.tensor_type) == GGML_Q8_0 for t in store.tensors.values()):
        src.group_size = 32  # --int8 then keeps these values
    return src


# --- llama2.c .bin (versions 0, 1, 2) and lamp ---------------------------------

class OffsetSource:
    """A file whose tensors sit at computable offsets: llama2.c .bin and lamp.
    self.layout[name] = (offset, kind, group_size): kind 'f32', or 'q8' with the
    int8 values at offset and the scales at self.scales_at[name]."""

    def read(self, name, layer):
        shape = layer_shape(self.cfg, name)
        n = int(np.prod(shape))
        off, kind, gs = self.layout[name]
        idx = 0 if layer is None else layer
        if kind == "f32":
            a = read_array(self.f, off + 4 * n * idx, "<f4", n, f"tensor {name}")
        else:
            values, scales, gs = self.q8(name, layer)
            a = q8_dequantize(values, scales, gs)
        return a.reshape(shape)

    def q8(self, name, layer):
        off, kind, gs = self.layout[name]
        if kind != "q8":
            return None
        n = int(np.prod(layer_shape(self.cfg, name)))
        idx = 0 if layer is None else layer
        values = read_array(self.f, off + n * idx, np.int8, n, f"tensor {name}")
        scales = read_array(self.f, self.scales_at[name] + 4 * (n // gs) * idx, "<f4", n // gs,
                            f"the scales of {name}")
        return values, scales, gs

    def finish_layout(self, order, offset, align, weight_type, gs, end=None):
        """Walk the tensors in file order from offset; check the file size."""
        shapes = lampfile.tensor_shapes(self.cfg)
        self.layout, self.scales_at = {}, {}
        for name in order:
            if name not in shapes:
                continue
            n = int(np.prod(shapes[name]))
            offset = lampfile.align(offset, align)
            if weight_type == WEIGHT_F32 or name not in lampfile.Q8_TENSORS:
                self.layout[name] = (offset, "f32", 0)
                offset += 4 * n
            else:
                self.layout[name] = (offset, "q8", gs)
                offset = lampfile.align(offset + n, align)
                self.scales_at[name] = offset
                offset += 4 * (n // gs)
        size = os.path.getsize(self.path)
        if (end or offset) != size:
            raise ExportError(f"{self.path}: the file is {size} bytes, its header implies "
                              f"{end or offset} ({'truncated' if size < (end or offset) else 'trailing data'})")


class LampSource(OffsetSource):
    def __init__(self, path):
        self.path, self.f = path, open(path, "rb")
        try:
            h = lampfile.unpack_header(self.f.read(lampfile.LAMP_HEADER_SIZE), path)
        except ValueError as e:
            raise ExportError(str(e)) from None
        weight_type, gs, tok_size = h["weight_type"], h["group_size"], h["tokenizer_size"]
        bos, eos = h["bos_id"], h["eos_id"]
        if weight_type == WEIGHT_Q8_0 and gs <= 0:
            raise ExportError(f"{path}: weight type {weight_type} with group size {gs}")
        self.cfg = lamp_cfg(path, **{k: h[k] for k in lampfile.CFG_KEYS})
        self.weight_type, self.group_size = weight_type, gs
        tok = self.f.read(tok_size)
        try:
            tokenizer = lampfile.decode_tokenizer(tok)
        except (ValueError, struct.error) as e:
            raise ExportError(f"{path}: bad tokenizer section: {e}") from None
        self.vocab = Vocab(tokenizer, bos, eos, path, h["chat_template"])
        self.finish_layout(lampfile.LAMP_TENSOR_ORDER, lampfile.LAMP_HEADER_SIZE + tok_size,
                           lampfile.LAMP_ALIGN, weight_type, gs)


class Llama2cSource(OffsetSource):
    """llama2.c's .bin: version 0 (no magic), 1 (float32) and 2 (Q8_0), docs/format.md."""

    def __init__(self, path, args):
        self.path, self.f = path, open(path, "rb")
        head = self.f.read(256)
        magic = struct.unpack_from("<I", head)[0] if len(head) >= 4 else 0
        if magic == lampfile.LLAMA2C_MAGIC:
            version = struct.unpack_from("<i", head, 4)[0]
            if version not in (1, 2) or len(head) < 256:
                raise ExportError(f"{path}: llama2.c version {version} is not supported "
                                  f"(versions 0, 1 and 2 are)")
            dims = struct.unpack_from("<7i", head, 8)
            shared = bool(head[36])
            gs = struct.unpack_from("<i", head, 37)[0] if version == 2 else 0
        else:
            if len(head) < 28:
                raise ExportError(f"{path}: too short to be a model")
            version, gs = 0, 0
            dims = list(struct.unpack_from("<7i", head))
            shared = dims[5] > 0
            dims[5] = abs(dims[5])
        dim, hidden, n_layers, n_heads, n_kv, vocab_size, seq_len = dims
        if n_heads <= 0 or dim % n_heads or dim <= 0:
            raise ExportError(f"{path}: not a lamp, GGUF or llama2.c model (its header makes "
                              f"no sense as llama2.c version 0)")
        self.vocab = load_vocab(os.path.dirname(os.path.abspath(path)))
        self.cfg = lamp_cfg(path, dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads,
                            n_kv_heads=n_kv, head_dim=dim // n_heads, vocab_size=vocab_size,
                            seq_len=int(args.seq_len or seq_len), rope_theta=10000.0,
                            norm_eps=1e-5, bos_id=-1, eos_id=-1, shared_classifier=shared)
        self.file_seq_len = seq_len
        self.version, self.group_size = version, gs
        if version == 2:
            self._layout_v2(gs)
        elif version == 1:
            self.finish_layout(("rms_att_weight", "rms_ffn_weight", "rms_final_weight",
                                "token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls"),
                               256, 1, WEIGHT_F32, 0)
        else:
            # version 0 keeps two RoPE tables (seq_len x head_dim/2 each) before wcls
            self.finish_layout(lampfile.LAMP_TENSOR_ORDER[:11], 28, 1, WEIGHT_F32, 0,
                               end=self._v0_end())
            if not shared:
                self.layout["wcls"] = (self._v0_end() - 4 * vocab_size * dim, "f32", 0)

    def _v0_end(self):
        c = self.cfg
        s = lampfile.tensor_shapes(c)
        n = sum(int(np.prod(v)) for v in s.values())
        return 28 + 4 * (n + self.file_seq_len * c["head_dim"])

    def _layout_v2(self, gs):
        """Version 2: the norms in float32, then for each matrix of each layer (embedding,
        wq x L, wk x L, ..., w3 x L, [wcls]) its int8 values followed by its scales."""
        c = self.cfg
        if gs <= 0 or c["dim"] % gs:
            raise ExportError(f"{self.path}: bad group size {gs} in the llama2.c version 2 header")
        shapes = lampfile.tensor_shapes(c)
        self.layout, self.scales_at, self.v2 = {}, {}, {}
        off = 256
        for name in ("rms_att_weight", "rms_ffn_weight", "rms_final_weight"):
            self.layout[name] = (off, "f32", 0)
            off += 4 * int(np.prod(shapes[name]))
        for name in ("token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls"):
            if name not in shapes:
                continue
            self.layout[name] = (None, "q8", gs)
            n = int(np.prod(layer_shape(c, name)))
            if n % gs:
                raise ExportError(f"{self.path}: {name} is not a whole number of groups of {gs}")
            self.v2[name] = []
            for _ in layers_of(c, name):
                self.v2[name].append(off)
                off += n + 4 * (n // gs)
        size = os.path.getsize(self.path)
        if off != size:
            raise ExportError(f"{self.path}: the file is {size} bytes, its header implies {off}")

    def q8(self, name, layer):
        if self.version != 2:
            return None
        off, kind, gs = self.layout[name]
        if kind != "q8":
            return None
        n = int(np.prod(layer_shape(self.cfg, name)))
        start = self.v2[name][0 if layer is None else layer]
        values = read_array(self.f, start, np.int8, n, f"tensor {name}")
        scales = read_array(self.f, start + n, "<f4", n // gs, f"the scales of {name}")
        return values, scales, gs


def open_source(path, args):
    """Recognise INPUT and open it."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "config.json")):
            return open_hf(path, args)
        if os.path.exists(os.path.join(path, "params.json")):
            return open_meta(path, args)
        raise ExportError(f"{path}: a directory with neither config.json (Hugging Face) nor "
                          f"params.json (Meta)")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file or directory")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"LAMP":
        return LampSource(path)
    if head[:4] == b"GGUF":
        return open_gguf(path, args)
    if head[:2] == b"PK" or head[:1] == b"\x80" or path.endswith((".pt", ".pth")):
        if path.endswith(".pth") and os.path.exists(os.path.join(os.path.dirname(path), "params.json")):
            return open_meta(os.path.dirname(path) or ".", args)
        return open_llama2c_pt(path, args)
    if path.endswith((".model", ".json")):
        raise ExportError(f"{path}: a tokenizer, not a model (to convert a tokenizer alone, use "
                          f"--to tokenizer-bin)")
    return Llama2cSource(path, args)


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

TEMP_FILES = []  # written as NAME.tmp and renamed when complete; removed on failure


def temp_name(path):
    TEMP_FILES.append(path + ".tmp")
    return path + ".tmp"


def write_atomic(path, data):
    tmp = temp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_array(f, a, dtype):
    """Write an array's bytes without the copy that tobytes() would make."""
    f.write(memoryview(np.ascontiguousarray(a, dtype=dtype)).cast("B"))


def pad_to(f, align=lampfile.LAMP_ALIGN):
    f.write(b"\0" * (lampfile.align(f.tell(), align) - f.tell()))


def choose_group_size(cfg, requested, source_gs):
    """The Q8_0 group size: the one asked for, else the source's own (int8 sources keep
    their values), else 64 halved until it divides every row (lampfile.q8_group_size)."""
    if requested:
        try:
            lampfile.check_q8_group_size(cfg, requested)
        except ValueError as e:
            good = [g for g in (4, 8, 16, 32, 64, 128, 256) if _valid_gs(cfg, g)]
            raise ExportError(f"--group-size: {e}; this model takes "
                              f"{', '.join(map(str, good)) or 'none'}") from None
        return requested
    if source_gs and _valid_gs(cfg, source_gs):
        return source_gs
    try:
        g = lampfile.q8_group_size(cfg, DEFAULT_GROUP_SIZE)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if g != DEFAULT_GROUP_SIZE:
        note(f"group size {g} (the default {DEFAULT_GROUP_SIZE} does not divide the rows)")
    return g


def _valid_gs(cfg, g):
    try:
        lampfile.check_q8_group_size(cfg, g)
        return True
    except ValueError:
        return False


def write_lamp(path, src, vocab, weight_type, group_size, progress):
    """Stream a lamp file (docs/format.md section 1): one layer of one tensor in memory at a time."""
    cfg = src.cfg
    shapes = lampfile.tensor_shapes(cfg)
    tok = lampfile.encode_tokenizer(vocab.tokenizer)
    tmp = temp_name(path)
    carried = 0
    with open(tmp, "wb") as f:
        f.write(lampfile.pack_header(cfg, weight_type, group_size, len(tok), vocab.tokenizer.kind,
                                     vocab.chat_template))
        f.write(tok)
        for name in lampfile.LAMP_TENSOR_ORDER:
            if name not in shapes:
                continue
            pad_to(f)
            if weight_type == WEIGHT_F32 or name not in lampfile.Q8_TENSORS:
                for layer in layers_of(cfg, name):
                    a = src.read(name, layer)
                    write_array(f, a, "<f4")
                    progress.add(a.size)
                continue
            scales = []
            for layer in layers_of(cfg, name):
                stored = src.q8(name, layer)
                if stored is not None and stored[2] == group_size:
                    values, s, _ = stored  # the source's own int8 values: copied, not re-rounded
                    carried += 1
                else:
                    values, s = q8_quantize(src.read(name, layer), group_size)
                write_array(f, values, np.int8)
                scales.append(s)
                progress.add(values.size)
            pad_to(f)
            for s in scales:
                write_array(f, s, "<f4")
    os.replace(tmp, path)
    return carried


def hf_config_json(cfg, dtype):
    """config.json for LlamaForCausalLM. Floats are written as the shortest decimal that
    reads back as the same float32, so lamp -> Hugging Face -> lamp is byte-identical."""
    theta, eps = f32_shortest(cfg["rope_theta"]), f32_shortest(cfg["norm_eps"])
    token = lambda i: None if i < 0 else int(i)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg["dim"],
        "intermediate_size": cfg["hidden_dim"],
        "num_hidden_layers": cfg["n_layers"],
        "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": cfg["n_kv_heads"],
        "head_dim": cfg["head_dim"],
        "vocab_size": cfg["vocab_size"],
        "max_position_embeddings": cfg["seq_len"],
        "rms_norm_eps": eps,
        "rope_theta": theta,  # transformers 4.x
        "rope_parameters": {"rope_type": "default", "rope_theta": theta},  # transformers 5
        "tie_word_embeddings": bool(cfg["shared_classifier"]),
        "bos_token_id": token(cfg["bos_id"]),
        "eos_token_id": token(cfg["eos_id"]),
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "dtype": dtype,
        "torch_dtype": dtype,
    }


HF_DTYPES = {"float32": ("F32", 4), "float16": ("F16", 2), "bfloat16": ("BF16", 2)}


def write_hf(outdir, src, vocab, dtype, progress):
    """A Hugging Face directory: config.json, model.safetensors (streamed: the header is
    computed from the shapes first, then each tensor is converted and written in turn),
    and the tokenizer as tokenizer.model + tokenizer_config.json."""
    cfg = src.cfg
    st_dtype, size = HF_DTYPES[dtype]
    # in the order of a Hugging Face checkpoint: embedding, layer by layer, norm, head
    order = [("token_embedding", None)]
    order += [(name, layer) for layer in range(cfg["n_layers"]) for name in LAYERED]
    order += [("rms_final_weight", None)] + ([] if cfg["shared_classifier"] else [("wcls", None)])
    entries = [(HF_NAMES[name].format(layer), name, layer, layer_shape(cfg, name))
               for name, layer in order]  # (hf key, lamp name, layer, shape)
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for key, _, _, shape in entries:
        n = int(np.prod(shape)) * size
        header[key] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)  # the data starts 8-byte aligned
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ExportError(f"{outdir}: exists and is not a directory")
    stale = [n for n in sorted(os.listdir(outdir)) if n != "model.safetensors" and
             (n.endswith((".safetensors", ".bin", ".pth")) or n.endswith(".index.json"))] \
        if os.path.isdir(outdir) else []
    if stale:  # transformers would load those instead of, or with, what we write
        raise ExportError(f"{outdir}: already holds other weights ({', '.join(stale[:3])}); "
                          f"write to a new directory")
    os.makedirs(outdir, exist_ok=True)
    if vocab is not None:  # first, so a tokenizer problem stops us before the big write
        sp_bytes = vocab_to_sentencepiece(vocab)
    path = os.path.join(outdir, "model.safetensors")
    with open(temp_name(path), "wb") as f:
        f.write(struct.pack("<Q", len(hjson)) + hjson)
        for key, name, layer, _ in entries:
            a = src.read(name, layer)
            if name in ("wq", "wk"):
                heads = cfg["n_heads"] if name == "wq" else cfg["n_kv_heads"]
                a = lampfile.lamp_qk_to_hf(a, heads, cfg["head_dim"])
            if dtype == "bfloat16":
                b = f32_to_bf16(a)
            else:
                b = np.ascontiguousarray(a, dtype="<f4" if dtype == "float32" else "<f2")
            write_array(f, b, b.dtype)
            progress.add(a.size)
    os.replace(path + ".tmp", path)
    write_atomic(os.path.join(outdir, "config.json"),
                 (json.dumps(hf_config_json(cfg, dtype), indent=2) + "\n").encode())
    if vocab is None:
        return
    write_atomic(os.path.join(outdir, "tokenizer.model"), sp_bytes)
    piece = lambda i: bytes(vocab.tokenizer.pieces[i][0]).decode("utf-8") if i >= 0 else None
    unk = next((i for i, p in enumerate(vocab.tokenizer.pieces)
                if p[2] == lampfile.PIECE_UNKNOWN), -1)
    # No tokenizer_class: transformers 5 then converts tokenizer.model with its generic
    # SentencePiece converter, which gives SentencePiece's ids exactly; its LlamaTokenizer
    # class drops the dummy-prefix space before a leading space. (transformers 4 picks
    # LlamaTokenizerFast from config.json's model_type.)
    tc = {"bos_token": piece(vocab.bos_id), "eos_token": piece(vocab.eos_id),
          "unk_token": piece(unk), "add_bos_token": vocab.bos_id >= 0, "add_eos_token": False,
          "clean_up_tokenization_spaces": False, "model_max_length": cfg["seq_len"]}
    write_atomic(os.path.join(outdir, "tokenizer_config.json"),
                 (json.dumps(tc, indent=2) + "\n").encode())
    stale = os.path.join(outdir, "tokenizer.json")
    if os.path.exists(stale):  # from an earlier export: it would win over tokenizer.model
        os.remove(stale)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

EXAMPLES = """\
examples:
  # Hugging Face directory (safetensors or pytorch_model.bin) -> lamp, float32
  python export.py ~/models/TinyLlama-1.1B-Chat-v1.0 tinyllama.lamp
  # ... or int8 (Q8_0, groups of 64 weights share one scale)
  python export.py ~/models/TinyLlama-1.1B-Chat-v1.0 tinyllama-q8.lamp --int8 --group-size 64
  # Meta's release: the directory with params.json and consolidated.*.pth
  python export.py ~/llama/llama-2-7b llama2-7b.lamp --tokenizer ~/llama/tokenizer.model
  # llama2.c checkpoints (.bin version 0/1/2, or train.py's .pt) with their tokenizer
  python export.py stories15M.bin stories15M.lamp --tokenizer tokenizer.model
  python export.py out/ckpt.pt mymodel.lamp --tokenizer tokenizer.bin
  # GGUF (llama architecture; f32, f16, bf16, q8_0 tensors; q8_0 stays int8 with --int8)
  python export.py model-q8_0.gguf model.lamp --int8
  # the reverse: a lamp model -> a Hugging Face directory transformers can load
  python export.py model.lamp hf-model/ --to hf
  # a SentencePiece tokenizer.model -> llama2.c tokenizer.bin (byte-identical to llama2.c's)
  python export.py tokenizer.model tokenizer.bin --to tokenizer-bin
"""


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Convert Llama checkpoints (Hugging Face, Meta, llama2.c, GGUF) to lamp "
                    "models, and lamp models to Hugging Face. See docs/export.md.")
    ap.add_argument("input", help="checkpoint file or directory (the kind is recognised)")
    ap.add_argument("output", help="a .lamp file, a directory (--to hf) or a tokenizer.bin")
    ap.add_argument("--to", choices=("lamp", "hf", "tokenizer-bin"),
                    help="what to write [lamp; tokenizer-bin when OUTPUT ends in .bin and INPUT "
                         "is a tokenizer]")
    ap.add_argument("--tokenizer", metavar="PATH",
                    help="tokenizer.model, tokenizer.json, tokenizer.bin, a .gguf or .lamp to "
                         "take the vocabulary from [the one inside or beside INPUT]")
    ap.add_argument("--chat-template", choices=lampfile.CHAT_TEMPLATES,
                    help="the chat template to record (lamp output) [the one the tokenizer's "
                         "config or the GGUF names; none if it names none]")
    ap.add_argument("--int8", action="store_true", help="write Q8_0 int8 weights (lamp output)")
    ap.add_argument("--group-size", type=int, metavar="N",
                    help=f"Q8_0 group size: a multiple of 4 that divides every row "
                         f"[the source's own if it is Q8_0, else {DEFAULT_GROUP_SIZE}]")
    ap.add_argument("--seq-len", type=int, metavar="N",
                    help="context length to record (Meta checkpoints do not say) [the source's]")
    ap.add_argument("--dtype", choices=tuple(HF_DTYPES),
                    help="weight type of Hugging Face output [float32]")
    ap.add_argument("--progress", action="store_true",
                    help="draw the progress bar even when stderr is not a terminal")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    args = ap.parse_args(argv)
    if args.group_size is not None and not args.int8:
        ap.error("--group-size goes with --int8")
    if args.seq_len is not None and args.seq_len <= 0:
        ap.error("--seq-len must be positive")
    if args.dtype and args.to != "hf":
        ap.error("--dtype goes with --to hf (lamp output is float32, or int8 with --int8)")
    args.dtype = args.dtype or "float32"
    return args


def is_tokenizer_file(path):
    if os.path.isdir(path):
        return False
    base = os.path.basename(path)
    if base.endswith((".model", ".json")):
        return True
    if base.endswith(".bin") and os.path.isfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:4] in (b"LAMP", b"GGUF") or struct.unpack_from("<I", head.ljust(8, b"\0"))[0] \
                == lampfile.LLAMA2C_MAGIC:
            return False
        try:
            vocab_from_tokenizer_bin(path)
            return True
        except ExportError:
            return False
    return False


def run(args):
    global QUIET
    QUIET = args.quiet
    to = args.to or ("tokenizer-bin" if args.output.endswith(".bin") and
                     is_tokenizer_file(args.input) else "lamp")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise ExportError("INPUT and OUTPUT are the same file")
    t0 = time.time()

    if to == "tokenizer-bin":
        vocab = load_vocab(args.tokenizer or args.input)
        if vocab is None:
            raise ExportError(f"{args.input}: no tokenizer found")
        write_tokenizer_bin(args.output, vocab)
        note(f"wrote {args.output}: llama2.c tokenizer.bin, {len(vocab.tokenizer.pieces)} pieces")
        return

    src = open_source(args.input, args)
    cfg = src.cfg
    if args.seq_len:
        cfg["seq_len"] = args.seq_len
    if args.tokenizer:
        src.vocab = load_vocab(args.tokenizer)
        if src.vocab is None:
            raise ExportError(f"{args.tokenizer}: no tokenizer found")
    vocab = src.vocab
    if vocab is None and to == "lamp":
        raise ExportError(f"{args.input}: carries no tokenizer and none was found beside it; "
                          f"a lamp file needs one: pass --tokenizer (tokenizer.model, "
                          f"tokenizer.json or tokenizer.bin)")
    if vocab is not None:
        vocab = fit_vocab(vocab, cfg["vocab_size"], args.input)
        if args.chat_template:
            vocab.chat_template = lampfile.CHAT_TEMPLATES.index(args.chat_template)
        elif vocab.chat_template == UNKNOWN_CHAT_TEMPLATE and to == "lamp":
            raise ExportError(f"{vocab.origin}: its chat template is none that lamp knows "
                              f"(Llama 2 [INST], ChatML <|im_start|>, Llama 3 "
                              f"<|start_header_id|>); choose one with --chat-template "
                              f"none|llama2|chatml|llama3")
        # BOS/EOS: what the checkpoint's own config states (Hugging Face's config.json, a
        # lamp header unless another tokenizer is given), else the tokenizer's
        stated = getattr(src, "stated_ids", ())
        if isinstance(src, LampSource) and not args.tokenizer:
            stated = ("bos_id", "eos_id")
        for k, v in (("bos_id", vocab.bos_id), ("eos_id", vocab.eos_id)):
            if k not in stated:
                cfg[k] = v
        vocab.bos_id, vocab.eos_id = cfg["bos_id"], cfg["eos_id"]
    lampfile.check_cfg(cfg)
    total = sum(int(np.prod(s)) for s in lampfile.tensor_shapes(cfg).values())
    show = (sys.stderr.isatty() or args.progress) and not args.quiet
    summary = (f"{cfg['n_layers']} layers, dim {cfg['dim']}, {cfg['n_heads']}/{cfg['n_kv_heads']} "
               f"heads, vocab {cfg['vocab_size']}, {total / 1e6:.1f} M weights")

    if to == "hf":
        if args.int8:
            raise ExportError("--int8 is for lamp output; Hugging Face output is --dtype "
                              "float32, float16 or bfloat16")
        if cfg["dim"] % cfg["n_heads"]:
            note(f"warning: dim {cfg['dim']} is not a multiple of n_heads {cfg['n_heads']}; "
                 f"the model is valid but transformers 5's config check refuses to load it")
        progress = Progress(total, "hf", show)
        write_hf(args.output, src, vocab, args.dtype, progress)
        progress.finish()
        note(f"wrote {args.output}/ (Hugging Face, {args.dtype}): {summary}, "
             f"{time.time() - t0:.1f} s")
        return

    weight_type, gs = WEIGHT_F32, 0
    if args.int8:
        weight_type = WEIGHT_Q8_0
        gs = choose_group_size(cfg, args.group_size, getattr(src, "group_size", 0))
    progress = Progress(total, "lamp", show)
    carried = write_lamp(args.output, src, vocab, weight_type, gs, progress)
    progress.finish()
    if carried:
        note(f"kept the source's own int8 values and scales for {carried} matrices "
             f"(no second rounding)")
    kind = f"Q8_0 int8, group size {gs}" if args.int8 else "float32"
    note(f"wrote {args.output} (lamp, {kind}, {os.path.getsize(args.output) / 1e6:.1f} MB): "
         f"{summary}, {time.time() - t0:.1f} s")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ExportError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # lampfile's checks, unreadable files, a full disk
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, with a way to see more
        if os.environ.get("LAMP_EXPORT_TRACEBACK"):
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e} "
              f"(set LAMP_EXPORT_TRACEBACK=1 to see where)", file=sys.stderr)
        return 1
    finally:
        for p in TEMP_FILES:  # no half-written output survives a failure
            if os.path.exists(p):
                os.remove(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
