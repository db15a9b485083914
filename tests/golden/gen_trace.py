"""gen_trace.py — an op-by-op trace of a forward pass, from Hugging Face transformers.

The model is gen_forward.py's "gqa-untied" (the same configuration and seed,
so the same weights as tests/golden/forward/gqa-untied.lamp; checked below),
run in PyTorch (CPU, float32, eager attention) on the first N_POSITIONS of
gen_forward.py's token ids. Forward hooks on its modules record what each op
of run.c's forward pass computes, and the result is written in the format of
`./run --trace` (run.c, section 11) to

    tests/golden/forward/gqa-untied.trace

Each record is the op's output at one position, in lamp's layout:

    embed          model.embed_tokens output
    attn_norm      layers[l].input_layernorm output
    q, k, v        self_attn.q_proj / k_proj / v_proj outputs
    rope_q, rope_k the outputs of transformers' apply_rotary_pos_emb (wrapped)
    kv_cache       rope_k and v side by side (what joins the cache)
    attention      self_attn.o_proj input
    wo             self_attn.o_proj output
    attn_residual  post_attention_layernorm input (x after the attention block)
    ffn_norm       post_attention_layernorm output
    w1, w3         mlp.gate_proj / up_proj outputs
    swiglu         mlp.down_proj input
    w2             mlp.down_proj output
    ffn_residual   layers[l] output
    final_norm     model.norm output
    logits         lm_head output

Hugging Face rotates the two halves of a head where lamp rotates
interleaved pairs, so lamp's wq and wk rows are permuted
(lampfile.rope_permutation); q, k and their rotations are permuted the same
way here, head by head, so they are compared element for element. Nothing
else differs in layout.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_trace
"""

import os
import struct

import numpy as np
import torch
import transformers
from transformers.models.llama import modeling_llama

import lampfile
from tests.golden import gen_forward

NAME = "gqa-untied"
N_POSITIONS = 16
OUT_DIR = gen_forward.OUT_DIR


def main():
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    c = gen_forward.CONFIGS[NAME]
    config = gen_forward.hf_config(c)
    model = gen_forward.random_model(config, c["seed"])
    ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], gen_forward.N_POSITIONS)[:N_POSITIONS]

    # the weights must be the committed .lamp file's, bit for bit
    cfg, tensors = lampfile.hf_to_lamp(model, config)
    _, written, _ = lampfile.read_lamp(os.path.join(OUT_DIR, NAME + ".lamp"))
    assert all(np.array_equal(tensors[k], written[k]) for k in tensors), f"{NAME}.lamp is not this model"

    head_dim, n_heads, n_kv_heads = c["head_dim"], c["n_heads"], c["n_kv_heads"]
    perm = lampfile.rope_permutation(head_dim)
    records = []   # (op, layer, rows (T, n)) in the order they happen

    def rows(tensor):
        return tensor.detach()[0].reshape(N_POSITIONS, -1).numpy().astype(np.float32)

    def heads_to_lamp(x, heads):
        """(T, heads * head_dim) in HF's halves -> lamp's interleaved pairs."""
        return x.reshape(N_POSITIONS, heads, head_dim)[:, :, perm].reshape(N_POSITIONS, -1)

    def output(op, layer, fix=lambda x: x):
        def hook(module, args, out):
            records.append((op, layer, fix(rows(out[0] if isinstance(out, tuple) else out))))
        return hook

    def first_input(op, layer):
        def hook(module, args):
            records.append((op, layer, rows(args[0])))
        return hook

    m = model.model
    m.embed_tokens.register_forward_hook(output("embed", -1))
    for l, layer in enumerate(m.layers):
        a = layer.self_attn
        layer.input_layernorm.register_forward_hook(output("attn_norm", l))
        a.q_proj.register_forward_hook(output("q", l, lambda x: heads_to_lamp(x, n_heads)))
        a.k_proj.register_forward_hook(output("k", l, lambda x: heads_to_lamp(x, n_kv_heads)))
        a.v_proj.register_forward_hook(output("v", l))
        a.o_proj.register_forward_pre_hook(first_input("attention", l))
        a.o_proj.register_forward_hook(output("wo", l))
        layer.post_attention_layernorm.register_forward_pre_hook(first_input("attn_residual", l))
        layer.post_attention_layernorm.register_forward_hook(output("ffn_norm", l))
        layer.mlp.gate_proj.register_forward_hook(output("w1", l))
        layer.mlp.up_proj.register_forward_hook(output("w3", l))
        layer.mlp.down_proj.register_forward_pre_hook(first_input("swiglu", l))
        layer.mlp.down_proj.register_forward_hook(output("w2", l))
        layer.register_forward_hook(output("ffn_residual", l))
    m.norm.register_forward_hook(output("final_norm", -1))
    model.lm_head.register_forward_hook(output("logits", -1))

    # RoPE is a function, not a module: wrap transformers' own, which the
    # attention layers call in order, once per layer
    rotary = modeling_llama.apply_rotary_pos_emb
    calls = []

    def traced_rotary(q, k, cos, sin, *args, **kwargs):
        q_embed, k_embed = rotary(q, k, cos, sin, *args, **kwargs)
        layer = len(calls)
        calls.append(layer)
        # (1, heads, T, head_dim) -> (T, heads * head_dim), lamp's pair order
        as_rows = lambda x, h: heads_to_lamp(x.detach()[0].transpose(0, 1).reshape(N_POSITIONS, -1).numpy(), h)
        records.append(("rope_q", layer, as_rows(q_embed, n_heads)))
        records.append(("rope_k", layer, as_rows(k_embed, n_kv_heads)))
        return q_embed, k_embed

    modeling_llama.apply_rotary_pos_emb = traced_rotary
    try:
        with torch.no_grad():
            model(torch.tensor(ids[None], dtype=torch.long))
    finally:
        modeling_llama.apply_rotary_pos_emb = rotary

    # what joins the cache: the rotated key and the value, side by side
    by_key = {(op, layer): x for op, layer, x in records}
    for l in range(c["n_layers"]):
        records.append(("kv_cache", l, np.concatenate([by_key["rope_k", l], by_key["v", l]], axis=1)))

    path = os.path.join(OUT_DIR, NAME + ".trace")
    n_records = 0
    with open(path, "wb") as f:
        f.write(b"LAMPTRC1")
        for op, layer, x in records:
            for pos in range(N_POSITIONS):
                f.write(op.encode().ljust(16, b"\0"))
                f.write(struct.pack("<iii", layer, pos, x.shape[1]))
                f.write(x[pos].astype("<f4").tobytes())
                n_records += 1
    in_layers = sorted({op for op, layer, _ in records if layer >= 0})
    print(f"{NAME}.trace: {n_records} records ({len(in_layers)} ops x {c['n_layers']} layers and 3 ops outside "
          f"them, x {N_POSITIONS} positions), {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
