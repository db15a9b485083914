#!/usr/bin/env python3
"""random_model.py — write a lamp model of a given shape with random weights.

For benchmarks and tests that need a model of a real size but not real
knowledge: the shapes of llama2.c's TinyStories models are built in.
Only numpy is needed.

    python -m tools.random_model stories110M /tmp/stories110M.lamp
    python -m tools.random_model stories110M /tmp/stories110M.q8.lamp --q8   # int8, groups of 64
    python -m tools.random_model --dim 256 --layers 4 ... out.lamp

--q8 [GS] writes int8 weights (Q8_0, docs/format.md 1.4) in groups of GS;
without GS, 64 halved until it divides every row (llama2.c's rule).
"""
import argparse
import os

import numpy as np

import lampfile

# llama2.c's TinyStories checkpoints (dim, hidden, layers, heads, kv heads, vocab, seq_len)
SHAPES = {
    "stories15M": (288, 768, 6, 6, 6, 32000, 256),
    "stories42M": (512, 1376, 8, 8, 8, 32000, 1024),
    "stories110M": (768, 2048, 12, 12, 12, 32000, 1024),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", nargs="?", choices=sorted(SHAPES), help="a named shape")
    ap.add_argument("out", help="output .lamp file")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--q8", type=int, nargs="?", const=0, default=None, metavar="GS",
                    help="int8 (Q8_0) weights in groups of GS [64, halved until it fits]")
    args = ap.parse_args()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = SHAPES.get(args.shape, (None,) * 7)
    dim = args.dim or dim
    hidden = args.hidden or hidden
    layers = args.layers or layers
    heads = args.heads or heads
    kv_heads = args.kv_heads or kv_heads or heads
    vocab = args.vocab or vocab
    seq_len = args.seq_len or seq_len
    if None in (dim, hidden, layers, heads, vocab, seq_len):
        ap.error("give a named shape or all of --dim --hidden --layers --heads --vocab --seq-len")
    cfg = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv_heads,
               head_dim=dim // heads, vocab_size=vocab, seq_len=seq_len, rope_theta=10000.0,
               norm_eps=1e-5, bos_id=1, eos_id=2, shared_classifier=1)
    rng = np.random.default_rng(args.seed)
    tensors = {}
    for name, shape in lampfile.tensor_shapes(cfg).items():
        if name.startswith("rms"):
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    group_size = 0
    if args.q8 is not None:
        try:
            group_size = args.q8 or lampfile.q8_group_size(cfg)
            lampfile.check_q8_group_size(cfg, group_size)
        except ValueError as e:
            ap.error(f"--q8: {e}")
    lampfile.write_lamp(args.out, cfg, tensors, lampfile.synthetic_tokenizer(vocab), group_size)
    n_params = sum(t.size for t in tensors.values())
    kind = f"int8 in groups of {group_size}" if group_size else "float32"
    print(f"wrote {args.out}: {n_params / 1e6:.1f}M parameters, {kind}, "
          f"{os.path.getsize(args.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
