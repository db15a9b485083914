"""gen_exercise_extend.py — goldens of three extend exercises (docs/exercises.md):
RoPE scaling, sliding-window attention and the repetition penalty.

Each starts from tests/golden/forward/gqa-untied (tests/golden/gen_forward.py:
a LlamaForCausalLM with random weights, 6 query heads on 2 kv heads, θ 500000)
and asks transformers what the new feature makes of it:

  rope-scaling/scaled.lamp      gqa-untied.lamp with the new header field
                                rope_scale (float32 at byte 84) = 4
  rope-scaling/scaled.logits    transformers' logits with rope_parameters
                                {"rope_type": "linear", "factor": 4}: position
                                p rotates by the angles of p / 4
  sliding-window/window.lamp    gqa-untied.lamp with sliding_window (int32 at
                                byte 88) = 8
  sliding-window/window.logits  MistralForCausalLM (the same weights;
                                Mistral is Llama with a sliding window),
                                sliding_window = 8: a query at p sees the
                                keys p - 7 .. p
  repetition-penalty/greedy.txt transformers' generate() from the BOS token
                                alone, greedy, 40 new tokens, with
                                repetition_penalty 1.3 and 0.8 (its
                                RepetitionPenaltyLogitsProcessor), and 1.0

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_exercise_extend
"""
import os
import struct

import numpy as np
import torch
import transformers
from transformers import MistralConfig, MistralForCausalLM

import lampfile
from tests.golden import gen_forward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")), "exercises")
BASE = os.path.join(ROOT, "tests", "golden", "forward", "gqa-untied.lamp")
N_POSITIONS = 40
ROPE_SCALE, WINDOW = 4.0, 8


def with_header_field(path, offset, fmt, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(BASE, "rb") as f:
        data = bytearray(f.read())
    assert data[offset:offset + 4] == b"\0\0\0\0", "the field's bytes must be unused (zero) in the base file"
    struct.pack_into(fmt, data, offset, value)
    with open(path, "wb") as f:
        f.write(data)


def main():
    torch.set_num_threads(1)
    print("torch %s, transformers %s, numpy %s" % (torch.__version__, transformers.__version__, np.__version__))
    c = gen_forward.CONFIGS["gqa-untied"]
    llama = gen_forward.random_model(gen_forward.hf_config(c), c["seed"])
    ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], 64)[:N_POSITIONS]
    x = torch.tensor(ids[None], dtype=torch.long)

    # RoPE scaling: the same weights, linear position interpolation
    config = gen_forward.hf_config(c)
    config.rope_parameters = {"rope_type": "linear", "factor": ROPE_SCALE, "rope_theta": c["rope_theta"]}
    scaled = type(llama)(config).float().eval()
    scaled.load_state_dict(llama.state_dict())
    with torch.no_grad():
        logits = scaled(x).logits[0].numpy()
        plain = llama(x).logits[0].numpy()
    d = os.path.join(OUT, "rope-scaling")
    with_header_field(os.path.join(d, "scaled.lamp"), 84, "<f", ROPE_SCALE)
    lampfile.write_logits(os.path.join(d, "scaled.logits"), ids, logits)
    print("rope-scaling: |scaled - unscaled| at position 0 %.2g, at 1..: %.3g" % (
        np.abs(logits[0] - plain[0]).max(), np.abs(logits[1:] - plain[1:]).max()))

    # Sliding window: Mistral with the same weights
    mc = MistralConfig(
        hidden_size=c["dim"], intermediate_size=c["hidden_dim"], num_hidden_layers=c["n_layers"],
        num_attention_heads=1, num_key_value_heads=1, head_dim=c["head_dim"], vocab_size=c["vocab_size"],
        max_position_embeddings=c["seq_len"], rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        rms_norm_eps=c["norm_eps"], tie_word_embeddings=False, sliding_window=WINDOW,
        bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    mc.num_attention_heads = c["n_heads"]
    mc.num_key_value_heads = c["n_kv_heads"]
    mistral = MistralForCausalLM(mc).float().eval()
    missing = mistral.load_state_dict(llama.state_dict(), strict=True)
    del missing
    with torch.no_grad():
        logits = mistral(x).logits[0].numpy()
    d = os.path.join(OUT, "sliding-window")
    with_header_field(os.path.join(d, "window.lamp"), 88, "<i", WINDOW)
    lampfile.write_logits(os.path.join(d, "window.logits"), ids, logits)
    diff = np.abs(logits - plain).max(axis=1)
    assert diff[:WINDOW].max() < 1e-5 and diff[WINDOW:].min() > 1e-3, diff
    print("sliding-window: positions 0..%d as full attention (%.2g), later ones differ by %.3g to %.3g" % (
        WINDOW - 1, diff[:WINDOW].max(), diff[WINDOW:].min(), diff[WINDOW:].max()))

    # Repetition penalty: greedy generation from BOS
    lines = []
    for penalty in (1.3, 0.8, 1.0):
        with torch.no_grad():
            out = llama.generate(torch.tensor([[1]]), max_new_tokens=40, do_sample=False,
                                 repetition_penalty=penalty, eos_token_id=None, pad_token_id=0)
        new = out[0, 1:].tolist()
        lines.append("%g %d %s" % (penalty, len(new), " ".join(map(str, new))))
        print("repetition penalty %g: %d distinct of %d tokens" % (penalty, len(set(new)), len(new)))
    os.makedirs(os.path.join(OUT, "repetition-penalty"), exist_ok=True)
    with open(os.path.join(OUT, "repetition-penalty", "greedy.txt"), "w") as f:
        f.write("# penalty n_tokens ids (transformers generate, greedy, from [BOS=1], tests/golden/forward/"
                "gqa-untied.lamp)\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
