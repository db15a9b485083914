"""lampfile.py — read and write lamp's model files (and llama2.c's) from Python.

This module is the Python twin of the loader in run.c. It knows three formats,
all specified byte for byte in docs/format.md:

* lamp version 1 (section 1): a 256-byte header, the tokenizer, then the
  weights, each tensor starting on a 64-byte boundary;
* llama2.c's legacy version 0 (section 2): a 28-byte header, then packed
  weights including two RoPE tables lamp never reads;
* llama2.c's version 1 (section 3): a 256-byte header, then packed weights.

It also converts a Hugging Face ``LlamaForCausalLM`` into lamp's tensors
(``hf_to_lamp``), which is where the one subtle step lives: Hugging Face and
lamp pair up the numbers inside a head differently when they apply RoPE, so
the rows of ``wq`` and ``wk`` have to be shuffled. ``rope_permutation`` below
explains it and ``check_rope_permutation`` proves it on random numbers.

Finally, ``forward`` is a short reference forward pass in numpy, the yardstick
the goldens in tests/golden/ are checked against.

Only numpy is needed. torch is imported inside ``hf_to_lamp`` and only when it
is handed torch tensors. Run ``python lampfile.py`` for a self-test.

Conventions used throughout:

``cfg``
    a dict with the keys of ``CFG_KEYS`` (dim, hidden_dim, ..., shared_classifier).
``tensors``
    a dict name -> float32 numpy array, with the names and shapes of
    ``tensor_shapes(cfg)``: the layers are stacked, e.g. wq is
    (n_layers, n_heads*head_dim, dim). ``wcls`` is present only when the
    classifier is *not* shared with the embedding table.
``tokenizer``
    a ``Tokenizer`` (or any object / dict with the same two fields):
    ``pieces``, a list of (text: bytes, score: float, type: int), one per token
    id, and ``add_dummy_prefix`` (0 or 1).
"""

import os
import struct
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------
# Constants from docs/format.md
# ---------------------------------------------------------------------------

LAMP_MAGIC = b"LAMP"
# Version 2 adds the chat template (header byte 80) and byte-level tokenizers
# (tokenizer_flags bits 8..15). Writers write version 1 when a file needs
# neither, so such files stay readable by older builds; readers take both.
LAMP_VERSION = 2
LAMP_HEADER_SIZE = 256
LAMP_ALIGN = 64  # every lamp tensor starts at a multiple of this many bytes

LLAMA2C_MAGIC = 0x616B3432  # the bytes "24ka" read as a little-endian uint32
LLAMA2C_V1_HEADER_SIZE = 256

FLAG_SHARED_CLASSIFIER = 1  # lamp header flags, bit 0
TOKENIZER_FLAG_DUMMY_PREFIX = 1  # tokenizer_flags, bit 0

# Tokenizer kinds (tokenizer_flags bits 8..15, docs/format.md 1.2): SentencePiece
# BPE, or byte-level BPE with the split pattern of GPT-2, of Llama 3, or SmolLM2's
# (every digit on its own, then GPT-2's).
TOKENIZER_SENTENCEPIECE, TOKENIZER_GPT2, TOKENIZER_LLAMA3, TOKENIZER_SMOLLM = 0, 1, 2, 3
TOKENIZER_KINDS = ("sentencepiece", "gpt2", "llama3", "smollm")

# Chat templates (header field chat_template, version 2): how run.c's chat
# wraps the turns of a conversation. 0: the model is no chat model.
CHAT_TEMPLATES = ("none", "llama2", "chatml", "llama3")

# SentencePiece piece types (the numbers of its ModelProto)
PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL = 1, 2, 3
PIECE_USER_DEFINED, PIECE_UNUSED, PIECE_BYTE = 4, 5, 6

# The lamp header, fields in file order. '<' = little-endian, no alignment.
#   4s magic, I version, 8 x i (dim .. seq_len), 2 x f (rope_theta, norm_eps),
#   2 x i (bos_id, eos_id), 4 x I (flags, weight_type, group_size, reserved),
#   Q tokenizer_size  -> 80 bytes, then zeros up to 256.
LAMP_HEADER = struct.Struct("<4sI8i2f2i4IQ")
assert LAMP_HEADER.size == 80

CFG_KEYS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
            "vocab_size", "seq_len", "rope_theta", "norm_eps", "bos_id", "eos_id",
            "shared_classifier")

# The order in which lamp stores its tensors (docs/format.md, 1.3).
LAMP_TENSOR_ORDER = ("token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo",
                     "rms_ffn_weight", "w1", "w2", "w3", "rms_final_weight", "wcls")

# Weight types (header field weight_type, docs/format.md 1.1 and 1.4). With
# WEIGHT_Q8_0 these nine matrices are int8 groups; the RMSNorm gains stay float32.
WEIGHT_F32, WEIGHT_Q8_0 = 0, 1
Q8_TENSORS = ("token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls")


@dataclass
class Tokenizer:
    """A vocabulary as lamp stores it: one (text, score, type) per token id; byte-level
    kinds add their merge list, pairs of piece ids in rank order."""
    pieces: list = field(default_factory=list)  # [(bytes, float, int), ...]
    add_dummy_prefix: int = 1
    kind: int = TOKENIZER_SENTENCEPIECE
    merges: list = field(default_factory=list)  # [(left id, right id), ...]


# ---------------------------------------------------------------------------
# Shapes and validation
# ---------------------------------------------------------------------------

def tensor_shapes(cfg):
    """The shape of every lamp tensor for this configuration, in file order."""
    d, h, L = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"]
    q_dim = cfg["n_heads"] * cfg["head_dim"]
    kv_dim = cfg["n_kv_heads"] * cfg["head_dim"]
    V = cfg["vocab_size"]
    shapes = {
        "token_embedding": (V, d),
        "rms_att_weight": (L, d),
        "wq": (L, q_dim, d),
        "wk": (L, kv_dim, d),
        "wv": (L, kv_dim, d),
        "wo": (L, d, q_dim),
        "rms_ffn_weight": (L, d),
        "w1": (L, h, d),  # gate
        "w2": (L, d, h),  # down
        "w3": (L, h, d),  # up
        "rms_final_weight": (d,),
    }
    if not cfg["shared_classifier"]:
        shapes["wcls"] = (V, d)
    return shapes


def check_cfg(cfg):
    """Raise ValueError unless cfg describes a model lamp can run."""
    missing = [k for k in CFG_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"cfg is missing {', '.join(missing)}")
    for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
              "vocab_size", "seq_len"):
        v = cfg[k]
        if int(v) != v or v <= 0 or v >= 2**31:
            raise ValueError(f"cfg[{k!r}] = {v!r}: must be a positive 32-bit integer")
    if cfg["n_heads"] % cfg["n_kv_heads"]:
        raise ValueError(f"n_heads ({cfg['n_heads']}) is not a multiple of "
                         f"n_kv_heads ({cfg['n_kv_heads']})")
    if cfg["head_dim"] % 2:
        raise ValueError(f"head_dim ({cfg['head_dim']}) must be even: RoPE rotates pairs")
    if not cfg["rope_theta"] > 0 or not cfg["norm_eps"] > 0:
        raise ValueError("rope_theta and norm_eps must be positive")
    for k in ("bos_id", "eos_id"):
        if not -1 <= cfg[k] < cfg["vocab_size"]:
            raise ValueError(f"cfg[{k!r}] = {cfg[k]} is neither -1 nor a token id "
                             f"below vocab_size {cfg['vocab_size']}")


def check_tensors(cfg, tensors):
    """Check names and shapes; return the tensors as contiguous little-endian float32.

    A shared classifier has no ``wcls`` of its own. We accept one anyway if it
    is bit-for-bit the embedding table (that is what "shared" means) and drop it.
    """
    shapes = tensor_shapes(cfg)
    tensors = dict(tensors)
    if cfg["shared_classifier"] and "wcls" in tensors:
        if not np.array_equal(tensors["wcls"], tensors.get("token_embedding")):
            raise ValueError("shared_classifier is set but wcls differs from token_embedding")
        del tensors["wcls"]
    unknown = sorted(set(tensors) - set(shapes))
    missing = [n for n in shapes if n not in tensors]
    if unknown:
        raise ValueError(f"unknown tensor(s): {', '.join(unknown)}")
    if missing:
        raise ValueError(f"missing tensor(s): {', '.join(missing)}")
    out = {}
    for name, shape in shapes.items():
        t = np.asarray(tensors[name])
        if t.shape != shape:
            raise ValueError(f"tensor {name} has shape {t.shape}, expected {shape}")
        out[name] = np.ascontiguousarray(t, dtype="<f4")
    return out


def _field(obj, name, default=None):
    """obj.name or obj[name] (default if absent): tokenizers may be objects or dicts."""
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def align(n, a=LAMP_ALIGN):
    """The smallest multiple of a that is >= n."""
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------
# Q8_0: int8 weights in groups (docs/format.md, 1.4)
# ---------------------------------------------------------------------------

def check_q8_group_size(cfg, group_size):
    """Raise ValueError unless group_size is a valid Q8_0 group size for cfg:
    a multiple of 4, at most 1024, dividing every row length (dim, q_dim and
    hidden_dim), so that no group straddles two rows."""
    q_dim = cfg["n_heads"] * cfg["head_dim"]
    if int(group_size) != group_size or not 4 <= group_size <= 1024 or group_size % 4:
        raise ValueError(f"group_size {group_size}: must be a multiple of 4 from 4 to 1024")
    for what, n in (("dim", cfg["dim"]), ("q_dim", q_dim), ("hidden_dim", cfg["hidden_dim"])):
        if n % group_size:
            raise ValueError(f"group_size {group_size} does not divide {what} = {n}")


def q8_group_size(cfg, preferred=64):
    """The largest valid group size that is preferred / 2^k: llama2.c's rule
    (start at 64, halve until it fits), checked against every row length."""
    gs = preferred
    while gs >= 4:
        try:
            check_q8_group_size(cfg, gs)
            return gs
        except ValueError:
            gs //= 2
    raise ValueError(f"no Q8_0 group size of the form {preferred} / 2^k fits this model")


def quantize_q8_0(w, group_size):
    """Quantize w to Q8_0 -> (values, scales).

    values: int8, w's shape; scales: float32, (w.size // group_size,). Group g
    is elements g*group_size ... (g+1)*group_size - 1 of w in row-major order:
    scale = max|x| / 127 (in float32), q = round(x / scale) with halves
    rounded away from zero, clipped to [-127, 127]; an all-zero group has
    scale 0 and values 0. This is the float32 arithmetic of run.c's
    quantize_q8 (which quantizes the activations), so both give the same bytes.
    """
    w = np.ascontiguousarray(w, dtype=np.float32)
    if w.size % group_size:
        raise ValueError(f"{w.size} elements are not a multiple of group_size {group_size}")
    groups = w.reshape(-1, group_size)
    scales = (np.abs(groups).max(axis=1) / np.float32(127)).astype(np.float32)
    ratio = groups / np.where(scales > 0, scales, np.float32(1))[:, None]  # float32 division
    ratio = ratio.astype(np.float64)  # |ratio| + 0.5 is exact in float64: no double rounding
    q = np.clip(np.sign(ratio) * np.floor(np.abs(ratio) + 0.5), -127, 127)
    q[scales == 0] = 0
    return q.astype(np.int8).reshape(w.shape), scales


def dequantize_q8_0(values, scales, group_size):
    """values * scales, group by group, in float32 (as run.c's embedding lookup)."""
    groups = np.asarray(values, dtype=np.float32).reshape(-1, group_size)
    return (groups * np.asarray(scales, dtype=np.float32)[:, None]).reshape(np.shape(values))


# ---------------------------------------------------------------------------
# lamp version 1
# ---------------------------------------------------------------------------

def pack_header(cfg, weight_type, group_size, tokenizer_size, tokenizer_kind=0, chat_template=0):
    """The 256-byte lamp header (docs/format.md, 1.1) for this configuration: version 1
    unless the file needs version 2 (a byte-level tokenizer or a chat template)."""
    flags = FLAG_SHARED_CLASSIFIER if cfg["shared_classifier"] else 0
    version = 2 if tokenizer_kind or chat_template else 1
    header = LAMP_HEADER.pack(
        LAMP_MAGIC, version,
        cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"],
        cfg["n_kv_heads"], cfg["head_dim"], cfg["vocab_size"], cfg["seq_len"],
        cfg["rope_theta"], cfg["norm_eps"], cfg["bos_id"], cfg["eos_id"],
        flags, weight_type, group_size, 0,  # reserved
        tokenizer_size)
    if version == 2:
        header += struct.pack("<I", chat_template)
    return header.ljust(LAMP_HEADER_SIZE, b"\0")


def unpack_header(data, path):
    """The inverse of pack_header: the first 256 bytes of a lamp file -> a dict
    with the cfg keys (CFG_KEYS) and weight_type, group_size, tokenizer_size,
    chat_template. Raises ValueError naming `path` if the magic, version, weight
    type or chat template is not one this reader knows."""
    if len(data) < LAMP_HEADER_SIZE or data[:4] != LAMP_MAGIC:
        raise ValueError(f"{path}: not a lamp file (bad magic)")
    (_, version, dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size,
     seq_len, rope_theta, norm_eps, bos_id, eos_id, flags, weight_type, group_size,
     _reserved, tok_size) = LAMP_HEADER.unpack_from(data, 0)
    if version not in (1, 2):
        raise ValueError(f"{path}: lamp version {version}, this reader knows 1 and 2")
    if weight_type not in (WEIGHT_F32, WEIGHT_Q8_0):
        raise ValueError(f"{path}: weight_type {weight_type}; only 0 (float32) and 1 (Q8_0) are known")
    chat_template = struct.unpack_from("<I", data, LAMP_HEADER.size)[0] if version == 2 else 0
    if chat_template >= len(CHAT_TEMPLATES):
        raise ValueError(f"{path}: unknown chat template {chat_template}")
    return dict(dim=dim, hidden_dim=hidden_dim, n_layers=n_layers, n_heads=n_heads,
                n_kv_heads=n_kv_heads, head_dim=head_dim, vocab_size=vocab_size,
                seq_len=seq_len, rope_theta=rope_theta, norm_eps=norm_eps,
                bos_id=bos_id, eos_id=eos_id,
                shared_classifier=bool(flags & FLAG_SHARED_CLASSIFIER),
                weight_type=weight_type, group_size=group_size, tokenizer_size=tok_size,
                chat_template=chat_template)


def encode_tokenizer(tokenizer):
    """The tokenizer section of a lamp file (docs/format.md, 1.2) as bytes."""
    pieces = list(_field(tokenizer, "pieces"))
    kind = _field(tokenizer, "kind", TOKENIZER_SENTENCEPIECE)
    records = []
    for i, (text, score, ptype) in enumerate(pieces):
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not 1 <= int(ptype) <= 6:
            raise ValueError(f"piece {i} has type {ptype}; SentencePiece types are 1..6")
        # float32 score, uint8 type, uint32 length, then the text itself
        records.append(struct.pack("<fBI", score, int(ptype), len(text)) + bytes(text))
    max_len = max((len(r) - 9 for r in records), default=0)
    flags = TOKENIZER_FLAG_DUMMY_PREFIX if _field(tokenizer, "add_dummy_prefix") else 0
    flags |= kind << 8
    out = struct.pack("<iiI", len(pieces), max_len, flags) + b"".join(records)
    if kind != TOKENIZER_SENTENCEPIECE:  # byte-level: the merge list, (left, right) ids
        merges = np.asarray(_field(tokenizer, "merges"), dtype="<i4").reshape(-1, 2)
        out += struct.pack("<i", len(merges)) + merges.tobytes()
    return out


def decode_tokenizer(data):
    """The inverse of encode_tokenizer: bytes -> Tokenizer."""
    n, max_len, flags = struct.unpack_from("<iiI", data, 0)
    kind = flags >> 8
    if kind >= len(TOKENIZER_KINDS) or flags & ~0xFF01:
        raise ValueError(f"unknown tokenizer kind {kind} (flags 0x{flags:x})")
    off, pieces = 12, []
    for i in range(n):
        score, ptype, length = struct.unpack_from("<fBI", data, off)
        off += 9
        if length > max_len or off + length > len(data):
            raise ValueError(f"tokenizer piece {i} is {length} bytes long: corrupt section")
        pieces.append((bytes(data[off:off + length]), score, ptype))
        off += length
    merges = []
    if kind != TOKENIZER_SENTENCEPIECE:
        (n_merges,) = struct.unpack_from("<i", data, off)
        merges = [tuple(m) for m in np.frombuffer(data, "<i4", 2 * n_merges, off + 4)
                  .reshape(-1, 2).tolist()]
        off += 4 + 8 * n_merges
    if off != len(data):
        raise ValueError(f"tokenizer section has {len(data) - off} stray bytes at its end")
    return Tokenizer(pieces=pieces, add_dummy_prefix=int(flags & TOKENIZER_FLAG_DUMMY_PREFIX),
                     kind=kind, merges=merges)


def write_lamp(path, cfg, tensors, tokenizer, group_size=0, chat_template=0):
    """Write a lamp version 1 model file: header, tokenizer, 64-byte aligned tensors.

    group_size > 0 writes weight type 1 (Q8_0): the float32 tensors are
    quantized here with quantize_q8_0, and each of the nine matrices becomes
    two blocks, int8 values then float32 scales, each 64-byte aligned.
    """
    check_cfg(cfg)
    tensors = check_tensors(cfg, tensors)
    if group_size:
        check_q8_group_size(cfg, group_size)
    n_pieces = len(_field(tokenizer, "pieces"))
    if n_pieces != cfg["vocab_size"]:
        raise ValueError(f"the tokenizer has {n_pieces} pieces but vocab_size is "
                         f"{cfg['vocab_size']}")
    tok = encode_tokenizer(tokenizer)

    with open(path, "wb") as f:
        f.write(pack_header(cfg, WEIGHT_Q8_0 if group_size else WEIGHT_F32, group_size, len(tok),
                            _field(tokenizer, "kind", 0), chat_template))
        f.write(tok)
        for name in LAMP_TENSOR_ORDER:
            if name in tensors:
                blocks = [tensors[name]]
                if group_size and name in Q8_TENSORS:
                    blocks = quantize_q8_0(tensors[name], group_size)  # values, scales
                for block in blocks:
                    f.write(b"\0" * (align(f.tell()) - f.tell()))  # pad to 64 bytes
                    f.write(block.tobytes())


def read_lamp(path):
    """Read a lamp version 1 or 2 file -> (cfg, tensors, tokenizer); a chat template
    (version 2) is cfg["chat_template"].

    Checks the magic, the version, the weight type and that the file is exactly
    as long as its header says, like run.c does. A Q8_0 file (weight type 1)
    gives its matrices dequantized to float32 (values * scales, as run.c
    computes them) and cfg["group_size"].
    """
    with open(path, "rb") as f:
        data = f.read()
    h = unpack_header(data, path)
    cfg = {k: h[k] for k in CFG_KEYS}
    if h["chat_template"]:
        cfg["chat_template"] = h["chat_template"]
    weight_type, group_size, tok_size = h["weight_type"], h["group_size"], h["tokenizer_size"]
    check_cfg(cfg)
    q8 = weight_type == WEIGHT_Q8_0
    if q8:
        check_q8_group_size(cfg, group_size)
        cfg["group_size"] = group_size

    # Walk the layout once to find where the file must end.
    shapes = tensor_shapes(cfg)
    off = LAMP_HEADER_SIZE + tok_size
    offsets, scale_offsets = {}, {}
    for name in LAMP_TENSOR_ORDER:
        if name in shapes:
            off = align(off)
            offsets[name] = off
            numel = int(np.prod(shapes[name]))
            if q8 and name in Q8_TENSORS:  # int8 values, then float32 scales
                off = align(off + numel)
                scale_offsets[name] = off
                off += 4 * (numel // group_size)
            else:
                off += 4 * numel
    if len(data) != off:
        raise ValueError(f"{path}: file is {len(data)} bytes, its header implies {off}")

    tokenizer = decode_tokenizer(data[LAMP_HEADER_SIZE:LAMP_HEADER_SIZE + tok_size])
    if len(tokenizer.pieces) != cfg["vocab_size"]:
        raise ValueError(f"{path}: {len(tokenizer.pieces)} pieces, vocab_size {cfg['vocab_size']}")
    tensors = {name: np.frombuffer(data, "<f4", int(np.prod(shapes[name])), o)
                     .reshape(shapes[name]).copy()
               for name, o in offsets.items() if name not in scale_offsets}
    for name, o in scale_offsets.items():
        numel = int(np.prod(shapes[name]))
        q = np.frombuffer(data, np.int8, numel, offsets[name])
        scales = np.frombuffer(data, "<f4", numel // group_size, o)
        tensors[name] = dequantize_q8_0(q, scales, group_size).reshape(shapes[name])
    return cfg, tensors, tokenizer


# ---------------------------------------------------------------------------
# llama2.c versions 0 and 1
# ---------------------------------------------------------------------------

def _check_llama2c_cfg(cfg):
    """llama2.c's formats cannot express lamp's extra hyper-parameters."""
    check_cfg(cfg)
    if cfg["head_dim"] * cfg["n_heads"] != cfg["dim"]:
        raise ValueError(f"llama2.c formats need head_dim == dim / n_heads "
                         f"({cfg['dim']} / {cfg['n_heads']}), not {cfg['head_dim']}")
    if cfg["rope_theta"] != 10000:
        raise ValueError(f"llama2.c formats fix rope_theta at 10000, not {cfg['rope_theta']}")
    if np.float32(cfg["norm_eps"]) != np.float32(1e-5):
        raise ValueError(f"llama2.c formats fix norm_eps at 1e-5, not {cfg['norm_eps']}")


def _llama2c_dims(cfg):
    return (cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"],
            cfg["n_kv_heads"], cfg["vocab_size"], cfg["seq_len"])


def llama2c_rope_tables(head_dim, seq_len, theta=10000.0):
    """freq_cis_real and freq_cis_imag as llama2.c's model.py computes them (in float32).

    freqs[i] = 1 / theta^(2i / head_dim); angle[t, i] = t * freqs[i].
    Shapes (seq_len, head_dim // 2). lamp skips these; they only fill the file.
    """
    exponent = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    freqs = np.float32(1.0) / (np.float32(theta) ** exponent)
    t = np.arange(seq_len, dtype=np.float32)
    angles = np.outer(t, freqs).astype(np.float32)
    return np.cos(angles), np.sin(angles)


def write_llama2c_v0(path, cfg, tensors):
    """Write llama2.c's legacy format (docs/format.md, section 2).

    A negative vocab_size in the header says "the classifier is separate";
    wcls then comes last, after the two RoPE tables.
    """
    _check_llama2c_cfg(cfg)
    t = check_tensors(cfg, tensors)
    dims = list(_llama2c_dims(cfg))
    if not cfg["shared_classifier"]:
        dims[5] = -dims[5]
    cos, sin = llama2c_rope_tables(cfg["head_dim"], cfg["seq_len"])
    body = [t["token_embedding"], t["rms_att_weight"], t["wq"], t["wk"], t["wv"], t["wo"],
            t["rms_ffn_weight"], t["w1"], t["w2"], t["w3"], t["rms_final_weight"], cos, sin]
    if not cfg["shared_classifier"]:
        body.append(t["wcls"])
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", *dims))
        for a in body:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def write_llama2c_v1(path, cfg, tensors):
    """Write llama2.c's version 1 format (docs/format.md, section 3): norms first."""
    _check_llama2c_cfg(cfg)
    t = check_tensors(cfg, tensors)
    header = struct.pack("<Ii7iB", LLAMA2C_MAGIC, 1, *_llama2c_dims(cfg),
                         1 if cfg["shared_classifier"] else 0)
    body = [t["rms_att_weight"], t["rms_ffn_weight"], t["rms_final_weight"],
            t["token_embedding"], t["wq"], t["wk"], t["wv"], t["wo"],
            t["w1"], t["w2"], t["w3"]]
    if not cfg["shared_classifier"]:
        body.append(t["wcls"])
    with open(path, "wb") as f:
        f.write(header.ljust(LLAMA2C_V1_HEADER_SIZE, b"\0"))
        for a in body:
            f.write(a.tobytes())


def write_llama2c_v2(path, cfg, tensors, group_size):
    """Write llama2.c's version 2 (Q8_0) format: the version 1 header plus an
    int32 group_size at the unaligned byte 37; the float32 norms; then each
    matrix (every layer's separately) as its int8 values followed by its
    scales, all packed (docs/format.md, section 3)."""
    _check_llama2c_cfg(cfg)
    check_q8_group_size(cfg, group_size)
    t = check_tensors(cfg, tensors)
    header = struct.pack("<Ii7iBi", LLAMA2C_MAGIC, 2, *_llama2c_dims(cfg),
                         1 if cfg["shared_classifier"] else 0, group_size)
    with open(path, "wb") as f:
        f.write(header.ljust(LLAMA2C_V1_HEADER_SIZE, b"\0"))
        for name in ("rms_att_weight", "rms_ffn_weight", "rms_final_weight"):
            f.write(t[name].tobytes())
        for name in Q8_TENSORS:
            if name in t:
                for matrix in (t[name] if t[name].ndim == 3 else t[name][None]):
                    for block in quantize_q8_0(matrix, group_size):
                        f.write(block.tobytes())


def read_llama2c(path):
    """Read a llama2.c version 0 or version 1 file -> (cfg, tensors).

    The tokenizer is not in these files (it is a separate tokenizer.bin), and
    the bos/eos ids are llama2.c's hard-coded 1 and 2.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) >= 8 and struct.unpack_from("<I", data, 0)[0] == LLAMA2C_MAGIC:
        version = struct.unpack_from("<i", data, 4)[0]
        if version != 1:
            raise ValueError(f"{path}: llama2.c version {version}; only 0 and 1 are read")
        dims = struct.unpack_from("<7i", data, 8)
        shared = bool(data[36])
        off = LLAMA2C_V1_HEADER_SIZE
        order = ["rms_att_weight", "rms_ffn_weight", "rms_final_weight", "token_embedding",
                 "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls"]
    else:
        version = 0
        dims = list(struct.unpack_from("<7i", data, 0))
        shared = dims[5] > 0
        dims[5] = abs(dims[5])
        off = 28
        order = ["token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo",
                 "rms_ffn_weight", "w1", "w2", "w3", "rms_final_weight",
                 "freq_cis_real", "freq_cis_imag", "wcls"]
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = dims
    if n_heads <= 0 or dim % n_heads:
        raise ValueError(f"{path}: dim {dim} is not a multiple of n_heads {n_heads}")
    cfg = dict(dim=dim, hidden_dim=hidden_dim, n_layers=n_layers, n_heads=n_heads,
               n_kv_heads=n_kv_heads, head_dim=dim // n_heads, vocab_size=vocab_size,
               seq_len=seq_len, rope_theta=10000.0, norm_eps=1e-5, bos_id=1, eos_id=2,
               shared_classifier=shared)
    check_cfg(cfg)
    shapes = tensor_shapes(cfg)
    shapes["freq_cis_real"] = shapes["freq_cis_imag"] = (seq_len, cfg["head_dim"] // 2)
    tensors = {}
    for name in order:
        if name not in shapes:
            continue  # wcls of a shared classifier
        count = int(np.prod(shapes[name]))
        if off + 4 * count > len(data):
            raise ValueError(f"{path}: file ends inside tensor {name}")
        tensors[name] = np.frombuffer(data, "<f4", count, off).reshape(shapes[name]).copy()
        off += 4 * count
    if off != len(data):
        raise ValueError(f"{path}: file is {len(data)} bytes, its header implies {off}")
    tensors.pop("freq_cis_real", None)  # lamp rebuilds the RoPE tables itself
    tensors.pop("freq_cis_imag", None)
    return cfg, tensors


# ---------------------------------------------------------------------------
# Hugging Face -> lamp
# ---------------------------------------------------------------------------

def rope_permutation(head_dim):
    """Row order that turns a Hugging Face head into a lamp head.

    RoPE rotates pairs of numbers inside each head, pair i by the angle
    pos * theta^(-2i/head_dim). The two codebases pick different pairs:

        lamp / Meta / llama2.c:  pair i = (x[2i], x[2i+1])           interleaved
        Hugging Face:            pair i = (x[i], x[i + head_dim/2])  halves

    Both rotate pair i by the same angle, with the first member playing the
    part of the real axis. So a Hugging Face head becomes a lamp head by moving
    HF element i to position 2i and HF element i + head_dim/2 to 2i + 1:

        lamp[2i]     = hf[i]
        lamp[2i + 1] = hf[i + head_dim/2]

    The returned array `perm` satisfies lamp = hf[perm]. Applying it to the
    rows of q_proj and k_proj means q and k come out already interleaved. The
    attention score q.k is a sum over the head, and q and k are shuffled the
    same way, so the scores - and everything after them - are unchanged. v and
    o are not rotated and need no change.
    """
    half = head_dim // 2
    # perm[2i] = i, perm[2i+1] = i + half: stack the two halves and interleave them
    return np.stack([np.arange(half), np.arange(half) + half], axis=1).reshape(-1)


def hf_qk_to_lamp(w, n_heads, head_dim):
    """Permute the rows of an HF q_proj/k_proj weight (n_heads*head_dim, dim) for lamp.

    Same as w[perm of every head]; written with reshapes, it is
        (n_heads, 2, half, dim)  -- head, which half, index in the half
     -> (n_heads, half, 2, dim)  -- head, pair, member of the pair
    """
    dim = w.shape[1]
    return (w.reshape(n_heads, 2, head_dim // 2, dim)
             .transpose(0, 2, 1, 3)
             .reshape(n_heads * head_dim, dim))


def lamp_qk_to_hf(w, n_heads, head_dim):
    """The inverse of hf_qk_to_lamp: lamp (interleaved) rows -> Hugging Face (halves).

    (n_heads, half, 2, dim) -> (n_heads, 2, half, dim), so that
    lamp_qk_to_hf(hf_qk_to_lamp(w, h, d), h, d) == w exactly (a pure shuffle).
    """
    dim = w.shape[1]
    return (w.reshape(n_heads, head_dim // 2, 2, dim)
             .transpose(0, 2, 1, 3)
             .reshape(n_heads * head_dim, dim))


def rope_interleaved(x, pos, theta):
    """lamp's RoPE on one head x (head_dim,) at position pos (float64 reference)."""
    i = np.arange(len(x) // 2)
    angle = pos * theta ** (-2.0 * i / len(x))
    c, s = np.cos(angle), np.sin(angle)
    a, b = x[0::2], x[1::2]
    out = np.empty_like(x)
    out[0::2] = a * c - b * s
    out[1::2] = a * s + b * c
    return out


def rope_halves(x, pos, theta):
    """Hugging Face's RoPE on one head: x*cos + rotate_half(x)*sin."""
    half = len(x) // 2
    i = np.arange(half)
    angle = np.concatenate([pos * theta ** (-2.0 * i / len(x))] * 2)
    rotated = np.concatenate([-x[half:], x[:half]])  # HF's rotate_half
    return x * np.cos(angle) + rotated * np.sin(angle)


def check_rope_permutation(head_dim=16, dim=24, n_heads=3, theta=10000.0, seed=0):
    """Prove numerically that hf_qk_to_lamp turns HF's RoPE into lamp's.

    For a random weight W and input x: the HF way computes q = W x and
    rotates halves; the lamp way computes q' = W' x with the permuted W' and
    rotates interleaved pairs. Then q' must be q with each head permuted, and
    q'.k' must equal q.k. Returns the largest difference seen.
    """
    rng = np.random.default_rng(seed)
    w_q = rng.standard_normal((n_heads * head_dim, dim))
    w_k = rng.standard_normal((n_heads * head_dim, dim))
    x, y = rng.standard_normal(dim), rng.standard_normal(dim)
    perm = rope_permutation(head_dim)
    worst = 0.0
    for pos_q, pos_k in [(0, 0), (5, 2), (37, 11)]:
        for h in range(n_heads):
            rows = slice(h * head_dim, (h + 1) * head_dim)
            q_hf = rope_halves(w_q[rows] @ x, pos_q, theta)
            k_hf = rope_halves(w_k[rows] @ y, pos_k, theta)
            q_lamp = rope_interleaved(hf_qk_to_lamp(w_q, n_heads, head_dim)[rows] @ x, pos_q, theta)
            k_lamp = rope_interleaved(hf_qk_to_lamp(w_k, n_heads, head_dim)[rows] @ y, pos_k, theta)
            worst = max(worst, np.abs(q_lamp - q_hf[perm]).max(),
                        abs(q_lamp @ k_lamp - q_hf @ k_hf))
    if worst > 1e-9:
        raise AssertionError(f"RoPE permutation is wrong: difference {worst}")
    return worst


def _conf(config, name, default=None):
    """config.name for a transformers config object, config[name] for a config.json dict."""
    if isinstance(config, dict):
        return config.get(name, default)
    return getattr(config, name, default)


def hf_rope_theta(config):
    """RoPE base from a Llama config: transformers 4 has config.rope_theta,
    transformers 5 moved it into config.rope_parameters['rope_theta']."""
    params = _conf(config, "rope_parameters") or {}
    scaling = _conf(config, "rope_scaling") or {}
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type")
    if rope_type not in (None, "default"):
        raise ValueError(f"RoPE type {rope_type!r} (rope scaling) is not supported by lamp")
    theta = _conf(config, "rope_theta")
    if theta is None:
        theta = params.get("rope_theta", 10000.0)
    return float(theta)


def _to_numpy(t):
    """A torch tensor (any dtype, any device) or array -> float32 numpy array."""
    if hasattr(t, "detach"):  # torch.Tensor; torch itself is only needed here
        import torch
        return t.detach().to(device="cpu", dtype=torch.float32).numpy()
    return np.asarray(t, dtype=np.float32)


def hf_to_lamp(state_dict_or_model, hf_config):
    """Convert a Hugging Face LlamaForCausalLM to lamp: -> (cfg, tensors).

    state_dict_or_model: the model itself, or its state_dict (torch tensors or
    numpy arrays, keys like "model.layers.0.self_attn.q_proj.weight").
    hf_config: the model's config, or the dict of its config.json.
    """
    sd = state_dict_or_model
    if hasattr(sd, "state_dict"):
        sd = sd.state_dict()
    cfg = hf_lamp_config(hf_config)
    n_layers, n_heads, n_kv_heads, head_dim = (
        cfg[k] for k in ("n_layers", "n_heads", "n_kv_heads", "head_dim"))
    tied = cfg["shared_classifier"]
    biases = sorted(k for k in sd if k.endswith(".bias"))
    if biases:   # e.g. Qwen2's q/k/v biases: dropping them would give a silently wrong model
        raise ValueError(f"lamp has no bias terms; this model has {biases[0]} (and {len(biases) - 1} more)")

    def get(key):
        if key not in sd:
            raise ValueError(f"state dict has no {key!r}")
        return _to_numpy(sd[key])

    def stack(fmt, fix=lambda w: w):
        return np.stack([fix(get(fmt.format(i))) for i in range(n_layers)])

    layer = "model.layers.{}."
    tensors = {
        "token_embedding": get("model.embed_tokens.weight"),
        "rms_att_weight": stack(layer + "input_layernorm.weight"),
        "wq": stack(layer + "self_attn.q_proj.weight",
                    lambda w: hf_qk_to_lamp(w, n_heads, head_dim)),
        "wk": stack(layer + "self_attn.k_proj.weight",
                    lambda w: hf_qk_to_lamp(w, n_kv_heads, head_dim)),
        "wv": stack(layer + "self_attn.v_proj.weight"),
        "wo": stack(layer + "self_attn.o_proj.weight"),
        "rms_ffn_weight": stack(layer + "post_attention_layernorm.weight"),
        "w1": stack(layer + "mlp.gate_proj.weight"),
        "w2": stack(layer + "mlp.down_proj.weight"),
        "w3": stack(layer + "mlp.up_proj.weight"),
        "rms_final_weight": get("model.norm.weight"),
    }
    if not tied:
        tensors["wcls"] = get("lm_head.weight")
    return cfg, check_tensors(cfg, tensors)


def hf_lamp_config(hf_config):
    """The lamp cfg of a Hugging Face Llama config (a config object or the
    dict of a config.json). Raises ValueError for what lamp cannot run."""
    n_heads = _conf(hf_config, "num_attention_heads")
    n_kv_heads = _conf(hf_config, "num_key_value_heads") or n_heads
    dim = _conf(hf_config, "hidden_size")
    head_dim = _conf(hf_config, "head_dim") or dim // n_heads  # may differ from dim/n_heads
    n_layers = _conf(hf_config, "num_hidden_layers")
    tied = bool(_conf(hf_config, "tie_word_embeddings", False))
    if _conf(hf_config, "attention_bias") or _conf(hf_config, "mlp_bias"):
        raise ValueError("lamp has no bias terms; this model uses attention/mlp biases")
    if _conf(hf_config, "hidden_act", "silu") != "silu":
        raise ValueError(f"lamp's feed-forward uses SiLU, not {_conf(hf_config, 'hidden_act')}")

    def token_id(name):
        v = _conf(hf_config, name)
        if isinstance(v, (list, tuple)):  # Llama 3 instruct lists several EOS ids
            v = v[0] if v else None
        return -1 if v is None else int(v)

    cfg = dict(dim=dim, hidden_dim=_conf(hf_config, "intermediate_size"),
               n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
               head_dim=head_dim, vocab_size=_conf(hf_config, "vocab_size"),
               seq_len=_conf(hf_config, "max_position_embeddings"),
               rope_theta=hf_rope_theta(hf_config),
               norm_eps=float(_conf(hf_config, "rms_norm_eps")),
               bos_id=token_id("bos_token_id"), eos_id=token_id("eos_token_id"),
               shared_classifier=tied)
    check_cfg(cfg)
    return cfg


# ---------------------------------------------------------------------------
# A reference forward pass, in numpy, the way lamp computes it
# ---------------------------------------------------------------------------

def rmsnorm(x, w, eps):
    """Scale each row of x to root-mean-square 1, then by the weights w."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, theta):
    """Interleaved RoPE on x of shape (T, n_heads, head_dim); row t is position t."""
    T, _, hd = x.shape
    freqs = theta ** (-np.arange(0, hd, 2) / hd)  # (hd/2,)
    angle = np.arange(T)[:, None] * freqs  # (T, hd/2)
    c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]  # the pairs (x[2i], x[2i+1])
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def write_logits(path, ids, logits):
    """A .logits golden (tests/golden/README.md): int32 n_positions, int32
    vocab_size, int32 ids[n_positions], float32 logits[n_positions][vocab_size],
    little-endian. Row t holds the logits after reading ids[0..t]."""
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", *logits.shape))
        f.write(np.asarray(ids, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())


def silu(x):
    """SiLU, x * sigmoid(x): the gate activation of Llama's SwiGLU."""
    return x / (1 + np.exp(-x))


def forward(cfg, t, ids, linear=None, embedding=None, activation=silu):
    """Logits (T, vocab_size), in float64, for the tokens ids at positions 0..T-1.

    Row t is what the model predicts after reading ids[0..t]. Written for
    clarity, not speed: it recomputes everything, with no KV cache. It is the
    yardstick the goldens are checked with (tests/golden/gen_*.py), and the
    one copy of the forward pass they all use; they vary it through:

      linear(x, name, layer): x @ W.T for matrix `name` of that layer (layer
          None for the classifier). Default: in float64 from t. The int8 and
          int4 generators pass run.c's quantized arithmetic.
      embedding: the table the token rows are looked up in (default
          t["token_embedding"]); the quantized generators pass it dequantized
          in float32, as run.c looks rows up.
      activation: of the feed-forward gate: SiLU (SwiGLU), or GELU (GeGLU).
    t needs only the RMSNorm gains (and the matrices, with the default
    linear). Biases bq, bk, bv in t, when there (Qwen2, the q/k/v-bias
    exercise), are added after their projections, before RoPE.
    """
    if linear is None:
        def linear(x, name, layer):
            w = np.asarray(t[name] if layer is None else t[name][layer], dtype=np.float64)
            return x @ w.T

    def gain(name, layer=None):
        return np.asarray(t[name] if layer is None else t[name][layer], dtype=np.float64)

    def projection(x, name, layer):  # with its bias, if the model has one
        y = linear(x, name, layer)
        bias = "b" + name[1]  # wq -> bq
        return y + np.asarray(t[bias][layer], dtype=np.float64) if bias in t else y

    T, nh, nkv, hd = len(ids), cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    causal = np.triu(np.full((T, T), -np.inf), k=1)  # position t sees 0..t
    table = t["token_embedding"] if embedding is None else embedding
    x = np.asarray(table[ids], dtype=np.float64)  # (T, dim)
    for l in range(cfg["n_layers"]):
        xb = rmsnorm(x, gain("rms_att_weight", l), eps)
        q = rope(projection(xb, "wq", l).reshape(T, nh, hd), theta)
        k = rope(projection(xb, "wk", l).reshape(T, nkv, hd), theta)
        v = projection(xb, "wv", l).reshape(T, nkv, hd)
        heads = []
        for h in range(nh):
            kv = h // (nh // nkv)  # grouped-query attention: heads share kv heads
            att = q[:, h] @ k[:, kv].T / np.sqrt(hd) + causal
            att = np.exp(att - att.max(axis=1, keepdims=True))
            att /= att.sum(axis=1, keepdims=True)
            heads.append(att @ v[:, kv])
        x = x + linear(np.concatenate(heads, axis=1), "wo", l)
        xb = rmsnorm(x, gain("rms_ffn_weight", l), eps)
        gate, up = linear(xb, "w1", l), linear(xb, "w3", l)
        x = x + linear(activation(gate) * up, "w2", l)  # SwiGLU (or GeGLU)
    x = rmsnorm(x, gain("rms_final_weight"), eps)
    return linear(x, "wcls" if "wcls" in t else "token_embedding", None)


# ---------------------------------------------------------------------------
# A tokenizer for test models
# ---------------------------------------------------------------------------

# Words for the synthetic vocabulary. Each word enters together with all its
# prefixes (" t", " th", " the"), so every piece can be built by BPE merges.
_WORDS = (" the", " and", " a", " to", " was", " he", " she", " it", " of", " in",
          " her", " his", " they", " said", " with", " on", " you", " day", " big",
          " cat", " dog", " sun", " tree", " play", " little", " happy", " friend",
          "ing", "ed", "er", "ly", "es", "th", "he", "in", "an", "on", "at",
          "en", "nd", "re", "st", "ou", "ll", ".", ",", "!", "?", "'", "\n",
          " Once", " upon", " time", " there", " girl", " boy", " named", " Lily",
          " Tom", " park", " ball", " went", " saw", " very", " wanted", " go")


def _synthetic_texts():
    """Distinct piece texts, forever: letters, the words above, then letter pairs."""
    seen = set()
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    singles = [" "] + letters + [c.upper() for c in letters]
    for text in singles:
        seen.add(text)
        yield text
    for word in _WORDS:
        for end in range(1, len(word) + 1):
            text = word[:end]
            if text not in seen:
                seen.add(text)
                yield text
    for n in range(2, 9):  # then aa, ab, ... and longer runs, never exhausted in practice
        for i in range(26 ** n):
            text = "".join(letters[(i // 26 ** k) % 26] for k in reversed(range(n)))
            if text not in seen:
                seen.add(text)
                yield text


def synthetic_tokenizer(vocab_size):
    """A Llama-2-shaped vocabulary for random test models.

    id 0 "<unk>", 1 "<s>", 2 "</s>", ids 3..258 the byte pieces <0x00>..<0xFF>,
    then normal pieces (" ", letters, common words and their prefixes, ...)
    with scores 0, -1, -2, ... so earlier pieces merge first.
    """
    if vocab_size < 259:
        raise ValueError(f"a synthetic tokenizer needs vocab_size >= 259 (3 special "
                         f"+ 256 byte pieces), not {vocab_size}")
    pieces = [(b"<unk>", 0.0, PIECE_UNKNOWN), (b"<s>", 0.0, PIECE_CONTROL),
              (b"</s>", 0.0, PIECE_CONTROL)]
    pieces += [(b"<0x%02X>" % b, 0.0, PIECE_BYTE) for b in range(256)]
    texts = _synthetic_texts()
    for k in range(vocab_size - len(pieces)):
        pieces.append((next(texts).encode("utf-8"), -float(k), PIECE_NORMAL))
    return Tokenizer(pieces=pieces, add_dummy_prefix=1)


# ---------------------------------------------------------------------------
# Self-test: python lampfile.py
# ---------------------------------------------------------------------------

def _self_test():
    import tempfile
    print(f"RoPE permutation: max difference {check_rope_permutation():.2e}")
    print(f"  (head_dim 64, theta 5e5) {check_rope_permutation(64, 32, 2, 5e5, 1):.2e}")

    rng = np.random.default_rng(0)
    for shared in (False, True):
        cfg = dict(dim=32, hidden_dim=48, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8,
                   vocab_size=300, seq_len=16, rope_theta=10000.0, norm_eps=1e-5,
                   bos_id=1, eos_id=2, shared_classifier=shared)
        tensors = {n: rng.standard_normal(s).astype(np.float32)
                   for n, s in tensor_shapes(cfg).items()}
        tok = synthetic_tokenizer(cfg["vocab_size"])
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "m.lamp")
            write_lamp(p, cfg, tensors, tok)
            cfg2, t2, tok2 = read_lamp(p)
            # the header stores theta and eps as float32, so compare them that way
            as_f32 = lambda c: {k: float(np.float32(v)) if isinstance(v, float) else v
                                for k, v in c.items()}
            assert as_f32(cfg2) == as_f32(cfg) and tok2 == tok, "lamp round trip changed"
            assert all(np.array_equal(tensors[n], t2[n]) for n in tensors)
            for writer in (write_llama2c_v0, write_llama2c_v1):
                p = os.path.join(tmp, "m.bin")
                writer(p, cfg, tensors)
                cfg3, t3 = read_llama2c(p)
                assert as_f32(cfg3) == as_f32(cfg) and all(np.array_equal(tensors[n], t3[n]) for n in tensors)
            p = os.path.join(tmp, "q8.lamp")  # Q8_0: the file holds exactly what quantize_q8_0 gives
            write_lamp(p, cfg, tensors, tok, group_size=8)
            cfg4, t4, _ = read_lamp(p)
            assert cfg4.pop("group_size") == 8 and as_f32(cfg4) == as_f32(cfg)
            for n in tensors:
                want = dequantize_q8_0(*quantize_q8_0(tensors[n], 8), 8) if n in Q8_TENSORS else tensors[n]
                assert np.array_equal(t4[n], want), f"Q8_0 round trip changed {n}"
        # a wrong shape must be refused with a message naming the tensor
        bad = dict(tensors, wk=tensors["wk"][:, :-1])
        try:
            write_lamp(os.devnull, cfg, bad, tok)
            raise AssertionError("a bad shape was accepted")
        except ValueError as e:
            assert "wk" in str(e)
    print("lamp (float32 and Q8_0) and llama2.c v0/v1 round trips: ok")
    # Q8_0 rounding: scale 127/127 = 1, halves go away from zero, a zero group stays zero
    x = np.array([0.5, -0.5, 1.5, -2.5, 127, 0.49999997, -126.5, 0] + [0] * 8, np.float32)
    q, scales = quantize_q8_0(x, 8)
    assert q.tolist() == [1, -1, 2, -3, 127, 0, -127, 0] + [0] * 8, q
    assert scales.tolist() == [1.0, 0.0], scales
    print("Q8_0 quantizer rule: ok")


if __name__ == "__main__":
    _self_test()
