"""gen_exercise_qkv_bias.py — goldens for the exercise "q/k/v biases" (Qwen2).

Qwen2 and Qwen2.5 are Llama plus one thing: a bias vector added after the
query, key and value projections (not after the output projection, not in
the feed-forward layer):

    q = Wq x + bq,   k = Wk x + bk,   v = Wv x + bv

The exercise (docs/exercises.md) extends the lamp format with that: header
flags bit 1 says "the q/k/v projections have biases", and three float32
tensors follow wv in the file:

    bq (n_layers, q_dim)   bk (n_layers, kv_dim)   bv (n_layers, kv_dim)

each starting on a 64-byte boundary like every lamp tensor. lamp rotates
interleaved pairs in RoPE where Hugging Face rotates halves, so the rows of
wq and wk are permuted on conversion (lampfile.py, hf_qk_to_lamp); a
bias is one more column of the same rows, so bq and bk are permuted the same
way. The file stores them already permuted: run.c just adds them.

For each configuration below this script builds a small Qwen2ForCausalLM
(transformers' own implementation) with random weights and nonzero biases,
runs it (CPU, float32, eager attention, one thread) on 64 fixed token ids,
and writes into tests/golden/exercises/qkv-bias/:

    <name>.lamp     the model in the extended lamp format (written here:
                    lampfile.write_lamp knows no biases), synthetic tokenizer
    <name>.logits   int32 n_positions, int32 vocab_size, int32 ids[n_positions],
                    then float32 logits[n_positions][vocab_size]; little-endian
                    (the layout of tests/golden/forward/)

Checks made here (the script stops if one fails):

  * Qwen2 is Llama plus biases: the same Qwen2 model with its biases set to
    zero gives the logits of a LlamaForCausalLM with the same weights (same
    RoPE, norms, MLP, GQA), and of lampfile.forward on the converted tensors.
  * The file is right: a float64 numpy forward pass with biases
    (lampfile.forward, which adds bq, bk, bv when present), run on the tensors read
    back from the .lamp file by this script's own reader, reproduces
    transformers' logits within 5e-5.
  * The biases matter: the script prints how far the logits move when the
    biases are left out, and when bq and bk are stored without the RoPE
    permutation (the gotcha of writing a converter).

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_exercise_qkv_bias
"""

import os
import struct

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lampfile

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")),
                       "exercises", "qkv-bias")
N_POSITIONS = 64
TOLERANCE = 5e-5  # max |HF - numpy| allowed; logits are of size ~1..10

FLAG_QKV_BIAS = 2  # lamp header flags, bit 1 (bit 0 is lampfile.FLAG_SHARED_CLASSIFIER)

# The tensor order of a lamp file with flags bit 1 set: the biases right
# after the three matrices they belong to, before wo.
TENSOR_ORDER = ("token_embedding", "rms_att_weight", "wq", "wk", "wv", "bq", "bk", "bv", "wo",
                "rms_ffn_weight", "w1", "w2", "w3", "rms_final_weight", "wcls")

# name -> lamp hyper-parameters, plus tied (share the classifier with the
# embedding) and seed (for the weights and the token ids). Small, so that the
# files stay small; two layers at least, so that a bias read from layer 0's
# row in every layer fails.
CONFIGS = {
    # grouped-query attention (4 query heads share 2 kv heads), q_dim 48 != dim
    # (non-square wq/wo), Qwen2's theta of 10^6, seq_len 128 so that a prompt
    # of 100 tokens is a full chunk of 64 and then the rest
    "qwen2-gqa": dict(dim=32, n_heads=4, n_kv_heads=2, head_dim=12, hidden_dim=64,
                      n_layers=2, vocab_size=260, seq_len=128, rope_theta=1000000.0,
                      norm_eps=1e-6, tied=False, seed=21),
    # one kv head, classifier = embedding table (flags 0x3); bq is 3 x 40 and
    # bk, bv 3 x 8 floats, so they end off a 64-byte boundary: padding after
    # each bias tensor
    "qwen2-mqa-tied": dict(dim=40, n_heads=5, n_kv_heads=1, head_dim=8, hidden_dim=64,
                           n_layers=3, vocab_size=260, seq_len=64, rope_theta=10000.0,
                           norm_eps=1e-5, tied=True, seed=22),
}


def qwen2_config(c):
    """A transformers 5 Qwen2Config for configuration c: full attention in every
    layer (no sliding window), default RoPE, SiLU, biases on q/k/v only."""
    config = Qwen2Config(
        hidden_size=c["dim"], intermediate_size=c["hidden_dim"],
        num_hidden_layers=c["n_layers"], num_attention_heads=c["n_heads"],
        num_key_value_heads=c["n_kv_heads"],
        vocab_size=c["vocab_size"], max_position_embeddings=c["seq_len"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        rms_norm_eps=c["norm_eps"], tie_word_embeddings=c["tied"],
        use_sliding_window=False, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    # Qwen2Config has no head_dim argument, but its attention and RoPE read
    # config.head_dim when it is there (a head need not be dim / n_heads wide)
    config.head_dim = c["head_dim"]
    assert set(config.layer_types) == {"full_attention"}, config.layer_types
    return config


def llama_config(c):
    """The LlamaConfig of the same shape (as gen_forward.py's hf_config)."""
    config = LlamaConfig(
        hidden_size=c["dim"], intermediate_size=c["hidden_dim"],
        num_hidden_layers=c["n_layers"], num_attention_heads=1, num_key_value_heads=1,
        head_dim=c["head_dim"], vocab_size=c["vocab_size"], max_position_embeddings=c["seq_len"],
        rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
        rms_norm_eps=c["norm_eps"], tie_word_embeddings=c["tied"],
        bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    config.num_attention_heads = c["n_heads"]  # set after: see gen_forward.py's hf_config
    config.num_key_value_heads = c["n_kv_heads"]
    return config


def random_model(config, seed):
    """Qwen2ForCausalLM with gen_forward.py's weight recipe, plus biases.

    Matrices ~ N(0, 0.1^2), the embedding and the classifier ~ N(0, 0.3^2),
    RMSNorm gains 1 + 0.1 N(0, 1), and the q/k/v biases ~ N(0, 0.3^2): as
    large as the projections themselves (~0.6 here), so that a missing or
    misplaced bias moves the logits by far more than the test's tolerance.
    """
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied lm_head is listed once
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape))
            elif name in ("model.embed_tokens.weight", "lm_head.weight") or name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape))
            else:
                p.copy_(0.1 * torch.randn(p.shape))
    names = {n for n, _ in model.named_parameters()}
    # the architecture this exercise is about: biases on q, k, v; none on o
    assert {f"model.layers.0.self_attn.{p}_proj.bias" for p in "qkv"} <= names, names
    assert not any(("o_proj" in n or "mlp" in n) and n.endswith("bias") for n in names), names
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


def qwen2_to_lamp(model, config):
    """Convert a Qwen2ForCausalLM to lamp tensors -> (cfg, tensors).

    Everything but the biases is Llama's: lampfile.hf_to_lamp converts the
    state dict without them (given the biases it refuses the model, since
    plain lamp would drop them). A bias belongs to the rows of its matrix,
    so bq and bk get the RoPE permutation of wq and wk: hf_qk_to_lamp on the
    bias as a one-column matrix.
    """
    sd = model.state_dict()
    cfg, tensors = lampfile.hf_to_lamp({k: v for k, v in sd.items() if not k.endswith(".bias")}, config)
    L, hd = cfg["n_layers"], cfg["head_dim"]

    def bias(proj, layer):
        return sd[f"model.layers.{layer}.self_attn.{proj}_proj.bias"].detach().numpy().astype(np.float32)

    def permuted(b, n_heads):
        return lampfile.hf_qk_to_lamp(b[:, None], n_heads, hd)[:, 0]

    tensors["bq"] = np.stack([permuted(bias("q", l), cfg["n_heads"]) for l in range(L)])
    tensors["bk"] = np.stack([permuted(bias("k", l), cfg["n_kv_heads"]) for l in range(L)])
    tensors["bv"] = np.stack([bias("v", l) for l in range(L)])
    return cfg, tensors


def tensor_shapes(cfg):
    """lampfile.tensor_shapes plus the three biases, in file order."""
    shapes = lampfile.tensor_shapes(cfg)
    L = cfg["n_layers"]
    shapes["bq"] = (L, cfg["n_heads"] * cfg["head_dim"])
    shapes["bk"] = shapes["bv"] = (L, cfg["n_kv_heads"] * cfg["head_dim"])
    return {name: shapes[name] for name in TENSOR_ORDER if name in shapes}


def align64(n):
    return (n + 63) // 64 * 64


def write_lamp_qkv_bias(path, cfg, tensors, tokenizer):
    """A lamp version 1 file (docs/format.md 1.1-1.3), float32, with flags
    bit 1 set and bq, bk, bv after wv; every tensor 64-byte aligned."""
    lampfile.check_cfg(cfg)
    shapes = tensor_shapes(cfg)
    assert set(tensors) == set(shapes), sorted(set(tensors) ^ set(shapes))
    tok = lampfile.encode_tokenizer(tokenizer)
    flags = FLAG_QKV_BIAS | (lampfile.FLAG_SHARED_CLASSIFIER if cfg["shared_classifier"] else 0)
    # the fields of docs/format.md 1.1, in order: magic, version, eight int32
    # sizes, rope_theta, norm_eps, bos_id, eos_id, flags, weight_type 0
    # (float32), group_size 0, reserved 0, tokenizer_size; zeros to byte 256
    header = struct.pack("<4sI8i2f2i4IQ", b"LAMP", 1,
                         cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"],
                         cfg["n_kv_heads"], cfg["head_dim"], cfg["vocab_size"], cfg["seq_len"],
                         cfg["rope_theta"], cfg["norm_eps"], cfg["bos_id"], cfg["eos_id"],
                         flags, 0, 0, 0, len(tok))
    with open(path, "wb") as f:
        f.write(header.ljust(256, b"\0"))
        f.write(tok)
        for name, shape in shapes.items():
            t = np.ascontiguousarray(tensors[name], dtype="<f4")
            assert t.shape == shape, (name, t.shape, shape)
            f.write(b"\0" * (align64(f.tell()) - f.tell()))
            f.write(t.tobytes())


def read_lamp_qkv_bias(path):
    """Read back what write_lamp_qkv_bias wrote -> (cfg, tensors), walking
    the layout independently and checking the file ends where it must."""
    with open(path, "rb") as f:
        data = f.read()
    (magic, version, dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, seq_len,
     rope_theta, norm_eps, bos_id, eos_id, flags, weight_type, group_size, _,
     tok_size) = struct.unpack_from("<4sI8i2f2i4IQ", data, 0)
    assert magic == b"LAMP" and version == 1 and weight_type == 0 and group_size == 0
    assert flags & FLAG_QKV_BIAS and flags & ~3 == 0, hex(flags)
    cfg = dict(dim=dim, hidden_dim=hidden_dim, n_layers=n_layers, n_heads=n_heads,
               n_kv_heads=n_kv_heads, head_dim=head_dim, vocab_size=vocab_size, seq_len=seq_len,
               rope_theta=rope_theta, norm_eps=norm_eps, bos_id=bos_id, eos_id=eos_id,
               shared_classifier=bool(flags & lampfile.FLAG_SHARED_CLASSIFIER))
    off, tensors = 256 + tok_size, {}
    for name, shape in tensor_shapes(cfg).items():
        off = align64(off)
        count = int(np.prod(shape))
        tensors[name] = np.frombuffer(data, "<f4", count, off).reshape(shape).copy()
        off += 4 * count
    assert off == len(data), f"{path}: {len(data)} bytes, the layout ends at {off}"
    assert len(lampfile.decode_tokenizer(data[256:256 + tok_size]).pieces) == vocab_size
    return cfg, tensors


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids[None], dtype=torch.long)).logits[0].double().numpy()


def check_zero_bias_is_llama(c, model, ids):
    """Qwen2 with zero biases must be Llama: compare with LlamaForCausalLM
    carrying the same weights, and with lampfile.forward (no biases)."""
    zero = Qwen2ForCausalLM(model.config).float().eval()
    zero.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in zero.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
    llama = LlamaForCausalLM(llama_config(c)).float().eval()
    sd = {k: v for k, v in zero.state_dict().items() if not k.endswith(".bias")}
    missing, unexpected = llama.load_state_dict(sd, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    if c["tied"]:
        assert llama.lm_head.weight.data_ptr() == llama.model.embed_tokens.weight.data_ptr()
    qwen, ref = hf_logits(zero, ids), hf_logits(llama, ids)
    cfg, tensors = lampfile.hf_to_lamp(sd, zero.config)   # the (zero) biases left out
    vs_llama = np.abs(qwen - ref).max()
    vs_numpy = np.abs(qwen - lampfile.forward(cfg, tensors, ids)).max()
    assert vs_llama < 1e-5 and vs_numpy < TOLERANCE, (vs_llama, vs_numpy)
    return vs_llama, vs_numpy


def main():
    torch.set_num_threads(1)  # one thread: the same float sums, the same bytes, every run
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"numpy {np.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, c in CONFIGS.items():
        config = qwen2_config(c)
        model = random_model(config, c["seed"])
        ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], N_POSITIONS)
        logits = hf_logits(model, ids).astype(np.float32)

        cfg, tensors = qwen2_to_lamp(model, config)
        base = os.path.join(OUT_DIR, name)
        write_lamp_qkv_bias(base + ".lamp", cfg, tensors, lampfile.synthetic_tokenizer(cfg["vocab_size"]))
        lampfile.write_logits(base + ".logits", ids, logits)

        # The cross-check reads what was written, so it also tests the file.
        cfg2, tensors2 = read_lamp_qkv_bias(base + ".lamp")
        assert all(np.array_equal(tensors2[k], tensors[k]) for k in tensors)
        diff = np.abs(lampfile.forward(cfg2, tensors2, ids) - logits).max()
        assert diff < TOLERANCE, f"{name}: numpy and HF logits differ by {diff}"

        vs_llama, vs_numpy = check_zero_bias_is_llama(c, model, ids)
        # what the mistakes cost, in logits: leaving out all biases, or one
        # of them (bk the least: without RoPE, q.bk would be the same for
        # every key and cancel in the softmax; only its rotation shows)
        no_bias = {k: v for k, v in tensors2.items() if k not in ("bq", "bk", "bv")}
        missing = np.abs(lampfile.forward(cfg2, no_bias, ids) - logits).max()
        one_missing = [np.abs(lampfile.forward(cfg2, dict(tensors2, **{b: 0 * tensors2[b]}), ids) - logits).max()
                       for b in ("bq", "bk", "bv")]
        hd = cfg["head_dim"]
        unpermute = lambda b, n: np.stack([lampfile.lamp_qk_to_hf(r[:, None], n, hd)[:, 0] for r in b])
        hf_order = dict(tensors2, bq=unpermute(tensors2["bq"], cfg["n_heads"]),
                        bk=unpermute(tensors2["bk"], cfg["n_kv_heads"]))
        unpermuted = np.abs(lampfile.forward(cfg2, hf_order, ids) - logits).max()
        print(f"{name}: {name}.lamp {name}.logits | max |HF - numpy| {diff:.2e} | "
              f"zero biases: Qwen2 vs Llama {vs_llama:.1e}, vs lampfile.forward {vs_numpy:.1e} | "
              f"without biases off by {missing:.2f} (without bq, bk, bv: "
              f"{', '.join(f'{d:.2f}' for d in one_missing)}), "
              f"with bq/bk not permuted {unpermuted:.2f} | "
              f"logit std {logits.std():.2f}")


if __name__ == "__main__":
    main()
