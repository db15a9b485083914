"""gen_forward_q8.py — goldens for run.c's int8 (Q8_0) forward pass.

run.c's int8 path quantizes the weights in groups (docs/format.md 1.4) and,
before every matmul, the activations too, the same way; inside a group the
dot product is then an exact int32 sum. This script computes the logits of
exactly that arithmetic with numpy, in float64, and writes into
tests/golden/forward_q8/:

    <name>.lamp      the model, lamp weight type 1 (lampfile.py)
    <name>.v2.bin    (q8-llama2c only) the same weights as a llama2.c version 2 file
    <name>.f32.lamp  (q8-gqa only) the float32 weights it was quantized from,
                     so the C test can check that run.c's quantizer gives the
                     same bytes as lampfile.quantize_q8_0
    <name>.logits    int32 n_positions, int32 vocab_size, int32 ids[n_positions],
                     float32 logits[n_positions][vocab_size]; little-endian.
                     Row t holds the logits after reading ids[0..t].

The reference (forward_q8 below) is lampfile.forward with each matmul
replaced by: round the input to float32 (what run.c holds), quantize it per
group with lampfile.quantize_q8_0, and multiply the exactly dequantized int8
values in float64. It differs from run.c only by float rounding, mostly where
an activation lies within rounding distance of a quantization boundary and
the two round it to neighbouring integers; the C test allows for that (see
tests/golden/README.md for the measured differences).

The weights are random (numpy, seeded), drawn like gen_forward.py's:
matrices N(0, 0.1^2), embedding and classifier N(0, 0.3^2), RMSNorm gains
1 + 0.1 N(0, 1). It also prints how far the int8 logits are from the float32
model's, for scale.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_forward_q8
"""

import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lampfile

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")), "forward_q8")
N_POSITIONS = 64

# name -> lamp hyper-parameters plus group_size and seed. The group sizes
# exercise both int8 kernels of run.c: the AVX2 one takes groups that are a
# multiple of 32 bytes, four groups at a time with the rest one by one (rows
# of 2, 3 and 5 groups below), and leaves other sizes (16) to the plain loop.
CONFIGS = {
    # GQA, q_dim 96 != dim, Llama-3 theta, groups of 32 (rows of 2, 3 and 5 groups)
    "q8-gqa": dict(dim=64, n_heads=6, n_kv_heads=2, head_dim=16, hidden_dim=160, n_layers=3,
                   vocab_size=512, seq_len=128, rope_theta=500000.0, norm_eps=1e-6,
                   shared_classifier=False, group_size=32, seed=11, f32=True),
    # one kv head, classifier shared with the int8 embedding table, groups of 16
    "q8-mqa-tied": dict(dim=48, n_heads=4, n_kv_heads=1, head_dim=12, hidden_dim=128, n_layers=2,
                        vocab_size=320, seq_len=64, rope_theta=1000.0, norm_eps=1e-4,
                        shared_classifier=True, group_size=16, seed=12),
    # what llama2.c's version 2 format can hold; written both ways
    "q8-llama2c": dict(dim=64, n_heads=4, n_kv_heads=2, head_dim=16, hidden_dim=192, n_layers=2,
                       vocab_size=512, seq_len=64, rope_theta=10000.0, norm_eps=1e-5,
                       shared_classifier=False, group_size=32, seed=13, llama2c=True),
}


def random_tensors(cfg, seed):
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in lampfile.tensor_shapes(cfg).items():
        if name.startswith("rms"):
            t = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name in ("token_embedding", "wcls"):
            t = 0.3 * rng.standard_normal(shape)
        else:
            t = 0.1 * rng.standard_normal(shape)
        tensors[name] = t.astype(np.float32)
    return tensors


def quantized_linear(W, gs, margins):
    """The matmul of run.c's quantized paths, as lampfile.forward's `linear`:
    x (T, n), held in float32 by run.c, is quantized to int8 in groups of gs
    and multiplied, in float64, by W[name] (d, n), the weights dequantized
    exactly. Appends to margins, for each position, how close any of its
    activations came to an int8 rounding midpoint (in int8 steps)."""
    def linear(x, name, layer):
        w = W[name] if layer is None else W[name][layer]
        xf = x.astype(np.float32)  # run.c holds x in float32 and quantizes that
        q, s = lampfile.quantize_q8_0(xf, gs)
        ratio = np.abs(xf.reshape(-1, gs) / np.where(s > 0, s, 1)[:, None])
        margins.append(np.abs(ratio - np.floor(ratio) - 0.5).reshape(x.shape).min(axis=1))
        xd = q.astype(np.float64) * np.repeat(s.astype(np.float64), gs).reshape(q.shape)
        return xd @ w.T  # = sum over groups of w_scale * x_scale * (exact integer sum)
    return linear


def forward_q8(cfg, t, ids, gs):
    """-> (logits (T, vocab_size) in float64 of run.c's int8 arithmetic, margin (T,)).

    t: float32 tensors; the nine matrices are quantized here (as the file
    holds them) and dequantized exactly into float64. margin[t] is how close
    any activation of position t came to a rounding midpoint, in int8 steps:
    where it is ~1e-5 or less, run.c's float32 may round the other way."""
    margins = []
    def deq(name):  # q * s is exact in float64 (8 bits times 24 bits)
        q, s = lampfile.quantize_q8_0(t[name], gs)
        return q.astype(np.float64) * np.repeat(s.astype(np.float64), gs).reshape(q.shape)

    W = {n: deq(n) for n in lampfile.Q8_TENSORS if n in t}
    # the embedding row is dequantized in float32, as run.c does
    emb_q, emb_s = lampfile.quantize_q8_0(t["token_embedding"], gs)
    embedding = lampfile.dequantize_q8_0(emb_q, emb_s, gs)
    logits = lampfile.forward(cfg, t, ids, linear=quantized_linear(W, gs, margins), embedding=embedding)
    return logits, np.min(margins, axis=0)


def main():
    print(f"numpy {np.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, c in CONFIGS.items():
        cfg = {k: c[k] for k in lampfile.CFG_KEYS if k not in ("bos_id", "eos_id")}
        cfg.update(bos_id=1, eos_id=2)
        gs = c["group_size"]
        tensors = random_tensors(cfg, c["seed"])
        tokenizer = lampfile.synthetic_tokenizer(cfg["vocab_size"])
        ids = np.random.default_rng(c["seed"]).integers(0, cfg["vocab_size"], N_POSITIONS)
        base = os.path.join(OUT_DIR, name)
        lampfile.write_lamp(base + ".lamp", cfg, tensors, tokenizer, group_size=gs)
        written = [name + ".lamp"]
        if c.get("f32"):
            lampfile.write_lamp(base + ".f32.lamp", cfg, tensors, tokenizer)
            written.append(name + ".f32.lamp")
        if c.get("llama2c"):
            lampfile.write_llama2c_v2(base + ".v2.bin", cfg, tensors, gs)
            written.append(name + ".v2.bin")
        logits, margin = forward_q8(cfg, tensors, ids, gs)
        lampfile.write_logits(base + ".logits", ids, logits)

        # The file holds what the reference used: read it back and compare.
        cfg2, t2, _ = lampfile.read_lamp(base + ".lamp")
        assert cfg2["group_size"] == gs
        for n in lampfile.Q8_TENSORS:
            if n in tensors:
                want = lampfile.dequantize_q8_0(*lampfile.quantize_q8_0(tensors[n], gs), gs)
                assert np.array_equal(t2[n], want), f"{name}: {n} read back differs"
        f32 = lampfile.forward(cfg, tensors, ids)
        near = ", ".join(f"{p} ({margin[p]:.1e})" for p in np.argsort(margin)[:3])
        print(f"{name}: {' '.join(written)} {name}.logits | group_size {gs} | "
              f"max |int8 - float32 logits| {np.abs(logits - f32).max():.3f} "
              f"(logit std {f32.std():.2f}) | positions nearest a rounding tie: {near}")


if __name__ == "__main__":
    main()
