"""gen_forward.py — forward-pass goldens from Hugging Face transformers.

For each configuration below we build a small LlamaForCausalLM with random
weights, run it (CPU, float32, eager attention) on 64 fixed token ids, and
write into tests/golden/forward/:

    <name>.lamp     the model in lamp's format (lampfile.py), with a
                    synthetic tokenizer
    <name>.logits   int32 n_positions, int32 vocab_size, int32 ids[n_positions],
                    then float32 logits[n_positions][vocab_size]; little-endian.
                    Row t holds the logits after reading ids[0..t].

llama2c-compat is also written as llama2.c version 0 and version 1 files,
which share its .logits.

Each configuration is cross-checked: an independent numpy forward pass
(lampfile.forward: float64, lamp's interleaved RoPE), run on the tensors read
back from the .lamp file, must reproduce Hugging Face's logits. That proves the
q/k row permutation in hf_to_lamp and the file writer/reader.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_forward
"""

import os

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lampfile

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")), "forward")
N_POSITIONS = 64
TOLERANCE = 5e-5  # max |HF - numpy| allowed; logits are of size ~1..10

# name -> lamp hyper-parameters, plus: tied (share the classifier with the
# embedding), seed (for the weights and the token ids), llama2c (also write
# llama2.c version 0 and 1 files)
CONFIGS = {
    # head_dim * n_heads = 96 != dim: q/k/o are not square
    "gqa-untied": dict(dim=64, n_heads=6, n_kv_heads=2, head_dim=16, hidden_dim=160,
                       n_layers=3, vocab_size=512, seq_len=128, rope_theta=500000.0,
                       norm_eps=1e-6, tied=False, seed=1),
    # multi-query attention (a single kv head), classifier = embedding table
    "mqa-tied": dict(dim=48, n_heads=4, n_kv_heads=1, head_dim=12, hidden_dim=128,
                     n_layers=2, vocab_size=320, seq_len=64, rope_theta=1000.0,
                     norm_eps=1e-4, tied=True, seed=2),
    # within what llama2.c's formats can express
    "llama2c-compat": dict(dim=64, n_heads=4, n_kv_heads=2, head_dim=16, hidden_dim=172,
                           n_layers=2, vocab_size=512, seq_len=64, rope_theta=10000.0,
                           norm_eps=1e-5, tied=False, seed=3, llama2c=True),
    # plain multi-head attention, and sizes chosen so that the norm tensors
    # (3 x 40 and 40 floats) end off a 64-byte boundary: the loader must skip
    # padding between tensors. (When dim is a multiple of 16, as above, every
    # tensor after the first happens to end on a boundary, and a loader that
    # ignores the alignment rule would still pass.)
    "mha-pad": dict(dim=40, n_heads=5, n_kv_heads=5, head_dim=8, hidden_dim=100,
                    n_layers=3, vocab_size=300, seq_len=64, rope_theta=10000.0,
                    norm_eps=1e-5, tied=False, seed=4),
}


def hf_config(c):
    """A transformers 5 LlamaConfig for configuration c."""
    # transformers 5 validates hidden_size % num_attention_heads == 0 even when
    # head_dim is given (64 % 6 fails), although the model itself only needs
    # head_dim. So we build the config with a head count that passes, then set
    # the real one; the attribute is read when the model is constructed.
    config = LlamaConfig(
        hidden_size=c["dim"], intermediate_size=c["hidden_dim"],
        num_hidden_layers=c["n_layers"], num_attention_heads=1,
        num_key_value_heads=1, head_dim=c["head_dim"],
        vocab_size=c["vocab_size"], max_position_embeddings=c["seq_len"],
        # transformers 5 keeps theta in rope_parameters (4.x had config.rope_theta)
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        rms_norm_eps=c["norm_eps"], tie_word_embeddings=c["tied"],
        bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    config.num_attention_heads = c["n_heads"]
    config.num_key_value_heads = c["n_kv_heads"]
    return config


def random_model(config, seed):
    """LlamaForCausalLM with weights big enough that every bug shows.

    Matrices ~ N(0, 0.1); the embedding and the classifier ~ N(0, 0.3), so
    the logits spread over a few units (far from uniform, not one-hot);
    RMSNorm weights 1 + 0.1 N(0, 1) instead of all ones, so a norm that is
    skipped or applied to the wrong vector changes the answer.
    """
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        # named_parameters lists a tied lm_head only once (as embed_tokens)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape))
            elif name in ("model.embed_tokens.weight", "lm_head.weight"):
                p.copy_(0.3 * torch.randn(p.shape))
            else:
                p.copy_(0.1 * torch.randn(p.shape))
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


def main():
    torch.set_num_threads(1)  # one thread: the same float sums, the same bytes, every run
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"numpy {np.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, c in CONFIGS.items():
        config = hf_config(c)
        model = random_model(config, c["seed"])
        ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], N_POSITIONS)
        with torch.no_grad():
            logits = model(torch.tensor(ids[None], dtype=torch.long)).logits[0].numpy()

        cfg, tensors = lampfile.hf_to_lamp(model, config)
        tokenizer = lampfile.synthetic_tokenizer(cfg["vocab_size"])
        base = os.path.join(OUT_DIR, name)
        lampfile.write_lamp(base + ".lamp", cfg, tensors, tokenizer)
        lampfile.write_logits(base + ".logits", ids, logits)

        # The cross-check reads what was written, so it also tests the file.
        cfg2, tensors2, _ = lampfile.read_lamp(base + ".lamp")
        diff = np.abs(lampfile.forward(cfg2, tensors2, ids) - logits).max()
        assert diff < TOLERANCE, f"{name}: numpy and HF logits differ by {diff}"
        written = [name + ".lamp"]
        if c.get("llama2c"):
            lampfile.write_llama2c_v0(base + ".v0.bin", cfg, tensors)
            lampfile.write_llama2c_v1(base + ".v1.bin", cfg, tensors)
            for ext in (".v0.bin", ".v1.bin"):
                _, t3 = lampfile.read_llama2c(base + ext)
                assert all(np.array_equal(t3[k], tensors[k]) for k in tensors), ext
            written += [name + ".v0.bin", name + ".v1.bin"]

        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        print(f"{name}: {' '.join(written)} {name}.logits | max |HF - numpy| {diff:.2e} | "
              f"logit std {logits.std():.2f}, mean top prob {p.max(1).mean():.2f}")


if __name__ == "__main__":
    main()
