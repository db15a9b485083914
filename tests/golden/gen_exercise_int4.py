"""gen_exercise_int4.py — goldens for the int4 (Q4_0) exercise (docs/exercises.md).

The exercise adds lamp weight type 2, "Q4_0": the nine matrices stored as
4-bit integers in groups of group_size (GS, a multiple of 32) with one
float32 scale per group, exactly as ggml's Q4_0 quantizes a block of 32
(docs/exercises.md gives the format the student implements):

    d = (the value of the group with the largest magnitude) / -8
    q = min(15, trunc(x * (1/d) + 8.5))          (0 .. 15)
    w ~= (q - 8) * d                              (-8d .. 7d)

and packed like ggml's blocks: in each run of 32 weights, byte j holds
weight j in its low nibble and weight j + 16 in its high nibble. run.c then
quantizes the activations to int8 per group (its quantize_q8, lampfile's
quantize_q8_0), so a group's dot product is the exact integer sum of
(q - 8) * x_q, times both scales.

This script writes into tests/golden/exercises/int4/:

    <name>.lamp     the model as a lamp weight-type-2 file
    <name>.logits   int32 n_positions, int32 vocab_size, int32 ids[n_positions],
                    float32 logits[n_positions][vocab_size]; little-endian
                    (the layout of tests/golden/forward/). Row t holds the
                    logits after reading ids[0..t].

The logits are a numpy float64 model of exactly that arithmetic
(forward_q4 below: lampfile.forward with each matmul replaced by "round the
input to float32, quantize it per group with lampfile.quantize_q8_0,
multiply by the exactly dequantized int4 weights in float64"), the approach
of gen_forward_q8.py.

The token ids are chosen (choose_ids) so that no activation of the first 8
positions lies near an int8 rounding midpoint, where run.c's float32 and
numpy's float64 could round it differently; the C test compares those
positions tightly and allows later ones a rounding flip.

The quantizer is written here, not taken from lampfile.py: the
exercise's solution adds one there, and the goldens must not depend on it.
It is cross-checked against an independent implementation, the `gguf`
package (gguf-py, ggml's own Python library): gguf.quants.quantize(...,
Q4_0) must give exactly our nibbles, and our float32 scale rounded to
float16 (gguf stores the scale as float16) must be its scale, on every
quantized tensor of the group-size-32 model. gguf only knows blocks of 32;
for the group-size-64 model we check the same on a copy of its tensors whose
32-blocks each start with their 64-group's extreme value (then every
32-block has the group's scale and gguf must give our nibbles). Finally
gguf.quants.dequantize must equal (q - 8) * float16(d) for all of them.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_exercise_int4
"""

import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lampfile
from tests.golden.gen_forward_q8 import quantized_linear, random_tensors  # (the int8 generator's recipe and matmul)

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")),
                       "exercises", "int4")
N_POSITIONS = 64
# The first CLEAN_PREFIX positions of every golden sequence have no activation
# within NEAR_TIE int8 steps of a rounding midpoint (see choose_ids), so run.c
# must match them closely; later positions may see a rounding flip.
CLEAN_PREFIX = 8
NEAR_TIE = 2e-4
WEIGHT_Q4_0 = 2   # the lamp header's weight_type for int4 (the exercise's extension)
BLOCK = 32        # ggml's Q4_0 block: the unit of the nibble packing

CONFIGS = {
    # GQA, q_dim 96 != dim, separate classifier, Llama-3 theta; groups of 32
    # (ggml's own size): rows of 2, 3 and 5 groups; seq_len 128, so a
    # 100-token prompt is one chunk of 64 and a rest
    "q4-gqa": dict(dim=64, n_heads=6, n_kv_heads=2, head_dim=16, hidden_dim=160, n_layers=3,
                   vocab_size=384, seq_len=128, rope_theta=500000.0, norm_eps=1e-6,
                   shared_classifier=False, group_size=32, seed=21),
    # one kv head, the classifier shared with the int4 embedding table;
    # groups of 64, two 32-blocks of nibbles under one scale: rows of 1 and 3 groups
    "q4-mqa-tied": dict(dim=64, n_heads=4, n_kv_heads=1, head_dim=16, hidden_dim=192, n_layers=2,
                        vocab_size=320, seq_len=64, rope_theta=1000.0, norm_eps=1e-4,
                        shared_classifier=True, group_size=64, seed=22),
}


# ---------------------------------------------------------------------------
# Q4_0 with a group of GS (a multiple of 32) per float32 scale
# ---------------------------------------------------------------------------

def quantize_q4_0(w, gs):
    """float32 w (any shape, size a multiple of gs) -> (q, d).

    q: uint8 values 0..15, flat, in w's row-major order; d: float32 scales,
    one per group of gs. The float32 arithmetic is ggml's reference
    quantize_row_q4_0_ref evaluated without fused multiply-adds (as gguf-py
    does): d = max / -8, id = 1 / d (0 for an all-zero group), then
    x * id and + 8.5 each rounded to float32, truncated, capped at 15."""
    groups = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, gs)
    first_max = np.abs(groups).argmax(axis=1)               # first of the largest |x|
    extreme = groups[np.arange(len(groups)), first_max]     # ... with its sign
    d = (extreme / np.float32(-8)).astype(np.float32)
    inv = np.zeros_like(d)
    np.divide(np.float32(1), d, out=inv, where=d != 0)      # float32 1/d
    r = (groups * inv[:, None]).astype(np.float32) + np.float32(8.5)
    assert r.dtype == np.float32 and (r >= 0).all()
    q = np.minimum(np.trunc(r), 15).astype(np.uint8)
    return q.reshape(-1), d


def pack_nibbles(q):
    """uint8 values 0..15 -> bytes: per 32-block, byte j = q[j] | q[j + 16] << 4."""
    blocks = np.asarray(q, dtype=np.uint8).reshape(-1, 2, BLOCK // 2)
    return (blocks[:, 0, :] | (blocks[:, 1, :] << 4)).reshape(-1)


def unpack_nibbles(packed):
    """The inverse of pack_nibbles."""
    b = np.asarray(packed, dtype=np.uint8).reshape(-1, BLOCK // 2)
    return np.concatenate([b & 0x0F, b >> 4], axis=1).reshape(-1)


def dequantize(q, d, gs, dtype):
    """(q - 8) * d, group by group, computed in dtype: float64 is exact (a 4-bit
    integer times a float32); float32 rounds as run.c's embedding lookup does."""
    groups = (q.astype(np.int32) - 8).astype(dtype).reshape(-1, gs)
    return (groups * d.astype(dtype)[:, None]).reshape(-1)


# ---------------------------------------------------------------------------
# The lamp file with weight type 2
# ---------------------------------------------------------------------------

def write_lamp_q4(path, cfg, tensors, tokenizer, gs):
    """docs/format.md section 1 with weight_type 2 and group_size gs: each of the
    nine matrices is two blocks, each starting at a multiple of 64 bytes:
    numel / 2 bytes of packed nibbles, then numel / gs float32 scales."""
    lampfile.check_cfg(cfg)
    tensors = lampfile.check_tensors(cfg, tensors)
    tok = lampfile.encode_tokenizer(tokenizer)
    with open(path, "wb") as f:
        f.write(lampfile.pack_header(cfg, WEIGHT_Q4_0, gs, len(tok)))
        f.write(tok)
        for name in lampfile.LAMP_TENSOR_ORDER:
            if name not in tensors:
                continue
            blocks = [tensors[name]]
            if name in lampfile.Q8_TENSORS:  # the nine matrices; the norms stay float32
                q, d = quantize_q4_0(tensors[name], gs)
                blocks = [pack_nibbles(q), d.astype("<f4")]
            for block in blocks:
                f.write(b"\0" * (lampfile.align(f.tell()) - f.tell()))
                f.write(block.tobytes())


def read_lamp_q4(path, cfg, gs):
    """Walk the file written above on its own (offsets from the format, not from
    the writer) -> {name: (q, d)} for the matrices and {name: float32} for the norms."""
    data = open(path, "rb").read()
    assert struct.unpack_from("<I", data, 60)[0] == WEIGHT_Q4_0
    assert struct.unpack_from("<I", data, 64)[0] == gs
    tok_size = struct.unpack_from("<Q", data, 72)[0]
    off = lampfile.LAMP_HEADER_SIZE + tok_size
    out = {}
    for name, shape in lampfile.tensor_shapes(cfg).items():  # file order
        n = int(np.prod(shape))
        off = lampfile.align(off)
        if name in lampfile.Q8_TENSORS:
            packed = np.frombuffer(data, np.uint8, n // 2, off)
            off = lampfile.align(off + n // 2)
            d = np.frombuffer(data, "<f4", n // gs, off)
            off += 4 * (n // gs)
            out[name] = (unpack_nibbles(packed), d)
        else:
            out[name] = np.frombuffer(data, "<f4", n, off).reshape(shape)
            off += 4 * n
    assert off == len(data), f"{path}: {len(data)} bytes, the layout says {off}"
    return out


# ---------------------------------------------------------------------------
# The cross-check against gguf-py
# ---------------------------------------------------------------------------

def check_against_gguf(w, gs):
    """Our Q4_0 of w must be gguf-py's: the same nibbles in the same bytes, our
    scale rounded to float16 = its float16 scale, and its dequantization =
    (q - 8) * float16(d). gguf quantizes blocks of 32, so for gs > 32 it is
    given a copy of w in which each 32-block starts with its group's extreme
    value: then every block's scale is its group's, and the nibbles must
    agree. Returns the number of weights compared."""
    from gguf import GGMLQuantizationType, quants
    w = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, gs).copy()
    if gs > BLOCK:
        extreme = w[np.arange(len(w)), np.abs(w).argmax(axis=1)]
        w[:, ::BLOCK] = extreme[:, None]
    q, d = quantize_q4_0(w, gs)
    theirs = quants.quantize(w.reshape(-1, BLOCK), GGMLQuantizationType.Q4_0)  # (blocks, 2 + 16)
    their_d = theirs[:, :2].copy().view(np.float16).reshape(-1)
    their_nibbles = theirs[:, 2:].reshape(-1)
    assert np.array_equal(their_nibbles, pack_nibbles(q)), "nibbles differ from gguf's Q4_0"
    d16 = np.repeat(d.astype(np.float16), gs // BLOCK)  # our scale of each 32-block, as float16
    assert np.array_equal(their_d.view(np.uint16), d16.view(np.uint16)), "scales differ from gguf's"
    their_w = quants.dequantize(theirs, GGMLQuantizationType.Q4_0).reshape(-1)
    ours = dequantize(q, d.astype(np.float16).astype(np.float32), gs, np.float32)
    assert np.array_equal(their_w, ours), "dequantized values differ from gguf's"
    return w.size


# ---------------------------------------------------------------------------
# The reference: run.c's int4 arithmetic, in float64
# ---------------------------------------------------------------------------

def forward_q4(cfg, stored, ids, gs):
    """-> (logits (T, vocab_size), float64, of run.c's int4 arithmetic; margin (T,)).

    stored: what read_lamp_q4 gives, the file's own contents. margin[t] is how
    close any activation of position t came to an int8 rounding midpoint (in
    int8 steps): where it is ~1e-5 or less, run.c's float32 may round it the
    other way (see tests/golden/README.md)."""
    margins = []

    shapes = lampfile.tensor_shapes(cfg)
    W = {n: dequantize(*stored[n], gs, np.float64).reshape(shapes[n])
         for n in lampfile.Q8_TENSORS if n in shapes}

    # the embedding row is dequantized in float32, as run.c does on lookup
    embedding = dequantize(*stored["token_embedding"], gs, np.float32).reshape(shapes["token_embedding"])
    logits = lampfile.forward(cfg, stored, ids, linear=quantized_linear(W, gs, margins), embedding=embedding)
    return logits, np.min(margins, axis=0)


def choose_ids(cfg, stored, gs, seed):
    """The token ids: the first of default_rng([seed, k]).integers(0, vocab, 64),
    k = 0, 1, ..., whose first CLEAN_PREFIX positions have no activation within
    NEAR_TIE int8 steps of a rounding midpoint -> (k, ids, logits, margin).

    Why: run.c quantizes its float32 activations, numpy its float64 ones
    rounded to float32, and the two differ by up to ~1e-4 int8 steps (measured
    by dumping run.c's activations for these goldens: median 2e-6, largest
    9.4e-5). An activation nearer than that to a midpoint may be rounded to
    the neighbouring integer by one and not the other, and the change travels
    through the KV cache to every later position. In 9 and 25 of the 64
    positions of these models some activation comes that near, so a flip
    cannot be avoided everywhere, only kept out of the first positions:
    there run.c must agree with the reference closely whatever the compiler."""
    for k in range(10000):
        ids = np.random.default_rng([seed, k]).integers(0, cfg["vocab_size"], N_POSITIONS)
        logits, margin = forward_q4(cfg, stored, ids, gs)
        if margin[:CLEAN_PREFIX].min() >= NEAR_TIE:
            return k, ids, logits, margin
    raise AssertionError("no sequence with a clean prefix")


def self_test():
    """The rule on hand-made numbers, and the packing on a known pattern."""
    # extreme -8 -> d = 1, id = 1: q = trunc(x + 8.5) capped at 15; +8 (as large as
    # the extreme, other sign) is capped to 15, i.e. 7; halves round up
    x = np.array([-8, 8, 0.5, -0.5, 1.49, 7.4, -7.5, 0] + [0] * 24, np.float32)
    q, d = quantize_q4_0(x, 32)
    assert d.tolist() == [1.0] and (q[:8].astype(int) - 8).tolist() == [-8, 7, 1, 0, 1, 7, -7, 0], q
    q, d = quantize_q4_0(np.zeros(32, np.float32), 32)
    assert d.tolist() == [0.0] and (q == 8).all()  # an all-zero group: scale 0, values 8 (= 0)
    packed = pack_nibbles(np.arange(32) % 16)
    assert packed[0] == 0x00 and packed[1] == 0x11 and packed[15] == 0xFF
    assert np.array_equal(unpack_nibbles(packed), np.arange(32) % 16)


def main():
    import gguf
    from importlib.metadata import version
    print(f"numpy {np.__version__}, gguf {version('gguf')}")
    self_test()
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, c in CONFIGS.items():
        cfg = {k: c[k] for k in lampfile.CFG_KEYS if k not in ("bos_id", "eos_id")}
        cfg.update(bos_id=1, eos_id=2)
        gs = c["group_size"]
        tensors = random_tensors(cfg, c["seed"])
        tokenizer = lampfile.synthetic_tokenizer(cfg["vocab_size"])
        base = os.path.join(OUT_DIR, name)
        write_lamp_q4(base + ".lamp", cfg, tensors, tokenizer, gs)

        # The file holds what the reference uses, and what gguf-py quantizes.
        stored = read_lamp_q4(base + ".lamp", cfg, gs)
        checked = 0
        for n in lampfile.Q8_TENSORS:
            if n in tensors:
                q, d = quantize_q4_0(tensors[n], gs)
                assert np.array_equal(stored[n][0], q) and np.array_equal(stored[n][1], d), n
                checked += check_against_gguf(tensors[n], gs)
            elif n in stored:
                raise AssertionError(f"{n} is in the file but not in the model")
        for n in ("rms_att_weight", "rms_ffn_weight", "rms_final_weight"):
            assert np.array_equal(stored[n], tensors[n]), n

        k, ids, logits, margin = choose_ids(cfg, stored, gs, c["seed"])
        lampfile.write_logits(base + ".logits", ids, logits)

        f32 = lampfile.forward(cfg, tensors, ids)
        near = ", ".join(f"{p} ({margin[p]:.1e})" for p in np.argsort(margin)[:3])
        print(f"{name}: {name}.lamp {name}.logits | group_size {gs} | Q4_0 = gguf-py's on "
              f"{checked} weights | ids: default_rng([{c['seed']}, {k}]), nearest tie in positions "
              f"0-{CLEAN_PREFIX - 1}: {margin[:CLEAN_PREFIX].min():.1e} int8 steps, "
              f"{(margin < NEAR_TIE).sum()} later positions nearer than {NEAR_TIE:g}, nearest: {near} | "
              f"max |int4 - float32 logits| {np.abs(logits - f32).max():.3f} "
              f"(mean {np.abs(logits - f32).mean():.3f}, logit std {f32.std():.2f})")


if __name__ == "__main__":
    main()
