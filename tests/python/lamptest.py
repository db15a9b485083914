"""lamptest.py — what the export tests share: running export.py, ./run and the
dump_logits helper, building random Hugging Face models and writing them out
in the other formats (Meta, llama2.c, GGUF) the way their own tools do.

Every model here is tiny and built in the test: nothing is downloaded.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lampfile

EXPORT = os.path.join(ROOT, "export.py")
LLAMA2_MODEL = os.path.join(ROOT, "tests", "data", "llama2", "tokenizer.model")
LLAMA2_BIN = os.path.join(ROOT, "tests", "data", "llama2", "tokenizer.bin")
GOLDEN = os.path.join(ROOT, "tests", "golden", "forward")

TOLERANCE = 1e-4      # |logit difference| allowed against transformers (float32 source)
Q8_TOLERANCE = 2e-4   # run.c's int8 path against numpy's model of it (tests/test_forward.c's)
N_POSITIONS = 32      # logits compared at every position of a sequence this long
N_GREEDY = 64         # greedy tokens compared

# Filled by conftest.py's session fixture.
BIN = {"run": os.path.join(ROOT, "run"), "tokenizer": os.path.join(ROOT, "tokenizer"),
       "dump_logits": None}

# Max |delta| of every comparison, printed at the end of the session (conftest.py).
MEASURED = []


def record(what, delta):
    MEASURED.append((what, float(delta)))
    return float(delta)


# ---------------------------------------------------------------------------
# Running the programs
# ---------------------------------------------------------------------------

def export(*args, ok=True, env=None):
    """python export.py ARGS; with ok=True it must succeed."""
    p = subprocess.run([sys.executable, EXPORT, *map(str, args)], capture_output=True,
                       text=True, env=env)
    if ok:
        assert p.returncode == 0, f"export.py {' '.join(map(str, args))} failed:\n{p.stderr}"
    return p


def run_logits(model, ids):
    """run.c's logits (len(ids), vocab) for ids at positions 0.. (tests/python/dump_logits.c)."""
    out = str(model) + ".logits.f32"
    subprocess.run([BIN["dump_logits"], str(model), out, *map(str, ids)], check=True,
                   capture_output=True)
    logits = np.fromfile(out, "<f4")
    os.remove(out)
    return logits.reshape(len(ids), -1)


def run_greedy(model, prompt, n=N_GREEDY, extra=()):
    """./run MODEL -t 0 -n N -i PROMPT -v -> (prompt ids, generated ids)."""
    p = subprocess.run([BIN["run"], str(model), "-t", "0", "-n", str(n), "-i", prompt, "-v",
                        "--threads", "1", *extra], capture_output=True)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, err
    ids = {m.group(1): [int(x) for x in m.group(2).split()]
           for m in re.finditer(r"^(prompt|generated) ids \(\d+\):(.*)$", err, re.M)}
    return ids["prompt"], ids["generated"]


def tokenizer_ids(model, lines):
    """./tokenizer encode -z MODEL on lines (no BOS) -> list of id lists."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    p = subprocess.run([BIN["tokenizer"], "encode", "-z", str(model)], input=data,
                       capture_output=True, check=True)
    return [[int(x) for x in line.split()] for line in p.stdout.decode().split("\n")[:len(lines)]]


def sample_lines(n=300):
    """Varied text: TinyStories and Shakespeare lines plus whitespace and Unicode cases."""
    lines = []
    for path in ("data/tinystories/valid.txt", "data/tinyshakespeare/input.txt"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            lines += [line.rstrip("\n") for _, line in zip(range(n), f)]
    lines += ["", " ", "  two leading spaces", "trailing  ", "tabs\tand\tmore", "ümlaut café",
              "日本語のテキスト", "emoji 🤖🎉 mixed", "numbers 12345 3.14159", "<s> not special",
              "a\u2581b", "ALL CAPS SHOUTING", "   ", "x" * 200]
    return lines


# ---------------------------------------------------------------------------
# Random Hugging Face models (tests/golden/gen_forward.py builds them the same way)
# ---------------------------------------------------------------------------

def hf_config(**c):
    from tests.golden import gen_forward
    return gen_forward.hf_config(c)


def random_hf_model(seed=0, **c):
    """LlamaForCausalLM, float32, random weights that make greedy decoding informative.

    tests/golden/gen_forward.py's weights (matrices N(0, 0.1^2)) make a fine logits
    test, but greedy decoding of such a model repeats one token forever: the token's
    own embedding dominates the residual stream. With matrices N(0, 0.2^2) the blocks
    dominate and 64 greedy tokens wander over the vocabulary. The classifier rows of
    BOS (1) and EOS (2) are shrunk so that ./run, which stops at either, rarely does.
    """
    import torch
    from transformers import LlamaForCausalLM
    config = hf_config(**c)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape))
            elif name in ("model.embed_tokens.weight", "lm_head.weight"):
                p.copy_(0.3 * torch.randn(p.shape))
            else:
                p.copy_(0.2 * torch.randn(p.shape))
        model.lm_head.weight[1:3] *= 0.1  # with tied embeddings, the same rows
    return model


def hf_logits(model, ids):
    import torch
    with torch.no_grad():
        return model(torch.tensor([list(ids)], dtype=torch.long)).logits[0].float().numpy()


_GREEDY = {}


def hf_greedy(model, prompt_ids, n=N_GREEDY):
    """Greedy continuation by transformers: argmax of the full forward pass, n times.
    (Remembered per model and prompt: several tests ask for the same one.)"""
    import torch
    key = (id(model), tuple(prompt_ids), n)
    if key not in _GREEDY:
        ids = list(prompt_ids)
        with torch.no_grad():
            for _ in range(n):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        _GREEDY[key] = (model, ids[len(prompt_ids):])  # holding model keeps id() unique
    return _GREEDY[key][1]


def load_hf(path):
    """transformers' own loader on an exported directory, float32, eager attention."""
    import torch
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                attn_implementation="eager").eval()


def same_greedy(run_ids, hf_ids, stops, room=N_GREEDY):
    """./run stops at EOS/BOS, or when the context is full (room = seq_len - prompt + 1);
    up to there, and for all 64 steps otherwise, the two agree."""
    if len(run_ids) < min(len(hf_ids), room):
        assert run_ids and run_ids[-1] in stops, f"./run stopped early at {run_ids}"
    return run_ids == hf_ids[:len(run_ids)]


def synthetic_vocab(vocab_size):
    """lampfile's synthetic tokenizer as an export.Vocab (bos 1, eos 2)."""
    import export as ex
    return ex.Vocab(lampfile.synthetic_tokenizer(vocab_size), 1, 2, "synthetic")


def write_sp_model(path, vocab_size):
    """A SentencePiece tokenizer.model holding the synthetic vocabulary."""
    import export as ex
    with open(path, "wb") as f:
        f.write(ex.vocab_to_sentencepiece(synthetic_vocab(vocab_size)))


def lamp_tensors(model, config):
    """lamp's tensors (interleaved RoPE rows) of a Hugging Face model, via lampfile."""
    return lampfile.hf_to_lamp(model, config)


# ---------------------------------------------------------------------------
# Other formats, written the way their own tools write them
# ---------------------------------------------------------------------------

META = {"token_embedding": "tok_embeddings.weight", "rms_final_weight": "norm.weight",
        "wcls": "output.weight", "rms_att_weight": "layers.{}.attention_norm.weight",
        "wq": "layers.{}.attention.wq.weight", "wk": "layers.{}.attention.wk.weight",
        "wv": "layers.{}.attention.wv.weight", "wo": "layers.{}.attention.wo.weight",
        "rms_ffn_weight": "layers.{}.ffn_norm.weight", "w1": "layers.{}.feed_forward.w1.weight",
        "w2": "layers.{}.feed_forward.w2.weight", "w3": "layers.{}.feed_forward.w3.weight"}
LAYERED = ("rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight", "w1", "w2", "w3")


def meta_state_dict(cfg, tensors):
    """lamp tensors -> the state dict of Meta's / llama2.c's model.py (same layout)."""
    import torch
    sd = {}
    for name, t in tensors.items():
        if name in LAYERED:
            for layer in range(cfg["n_layers"]):
                sd[META[name].format(layer)] = torch.from_numpy(t[layer].copy())
        else:
            sd[META[name]] = torch.from_numpy(t.copy())
    return sd


def write_meta(outdir, cfg, tensors, n_shards=2):
    """Meta's release layout: params.json and consolidated.NN.pth, model-parallel shards
    split as Llama 2's model code splits them (columns of the embedding, wo and w2; rows
    of everything else; norms copied)."""
    import torch
    os.makedirs(outdir, exist_ok=True)
    sd = meta_state_dict(cfg, tensors)
    if cfg["shared_classifier"]:  # Llama 3.2 1B/3B: tied, yet output.weight is stored
        sd["output.weight"] = sd["tok_embeddings.weight"].clone()
    sd["rope.freqs"] = torch.zeros(cfg["head_dim"] // 2)  # Llama 2 checkpoints carry this
    for shard in range(n_shards):
        part = {}
        for k, v in sd.items():
            if v.dim() == 1:
                part[k] = v.clone()
                continue
            axis = 1 if (k == "tok_embeddings.weight" or k.endswith(("attention.wo.weight",
                                                                      "feed_forward.w2.weight"))) else 0
            part[k] = v.chunk(n_shards, dim=axis)[shard].clone()
        torch.save(part, os.path.join(outdir, f"consolidated.{shard:02d}.pth"))
    params = {"dim": cfg["dim"], "n_layers": cfg["n_layers"], "n_heads": cfg["n_heads"],
              "n_kv_heads": cfg["n_kv_heads"], "vocab_size": -1, "multiple_of": 32,
              "norm_eps": cfg["norm_eps"], "rope_theta": cfg["rope_theta"],
              "max_seq_len": cfg["seq_len"]}
    with open(os.path.join(outdir, "params.json"), "w") as f:
        json.dump(params, f)


def write_llama2c_pt(path, cfg, tensors):
    """What llama2.c's train.py saves: {"model": state_dict, "model_args": ..., ...}."""
    import torch
    sd = meta_state_dict(cfg, tensors)
    if cfg["shared_classifier"]:
        sd["output.weight"] = sd["tok_embeddings.weight"]  # tied: the same tensor
    sd = {"_orig_mod." + k: v for k, v in sd.items()}  # as torch.compile leaves them
    args = dict(dim=cfg["dim"], n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
                n_kv_heads=cfg["n_kv_heads"], vocab_size=cfg["vocab_size"], multiple_of=32,
                norm_eps=cfg["norm_eps"], max_seq_len=cfg["seq_len"], dropout=0.0)
    torch.save({"model": sd, "model_args": args, "iter_num": 0, "best_val_loss": 1.0,
                "config": {"batch_size": 8}}, path)


def write_llama2c_v2(path, cfg, tensors, group_size):
    """llama2.c's version 2 (int8) file, by lampfile.write_llama2c_v2. Returns the
    tensors as the file holds them (matrices quantized and dequantized)."""
    lampfile.write_llama2c_v2(path, cfg, tensors, group_size)
    return {n: lampfile.dequantize_q8_0(*lampfile.quantize_q8_0(t, group_size), group_size)
            if n in lampfile.Q8_TENSORS else t for n, t in tensors.items()}


def int8_reference(cfg, tensors, group_size, n=N_POSITIONS, seeds=range(1, 17)):
    """Token ids and the logits of run.c's int8 arithmetic on them (weights and
    activations quantized), by tests/golden/gen_forward_q8.py's numpy model of it.

    Where an activation lies within ~1e-5 steps of a rounding midpoint, run.c's float32
    and numpy's float64 may round it to neighbouring integers, and the difference then
    reaches every later position through the KV cache. So of a few id sequences this
    takes the one whose first such position comes latest, and returns
    (ids, logits, n_clean): positions before n_clean are comparable to run.c within
    Q8_TOLERANCE (all 32 for most models; models with bfloat16 weights meet exact
    ties within a few positions). tensors may be float32 or already on the Q8_0 grid
    (quantizing those again gives the same values)."""
    from tests.golden import gen_forward_q8
    best = None
    for seed in seeds:
        ids = np.random.default_rng(seed).integers(0, cfg["vocab_size"], n)
        out = gen_forward_q8.forward_q8(cfg, tensors, ids, group_size)
        logits, margin = out if isinstance(out, tuple) else (out, np.ones(n))
        near = np.nonzero(margin < 2e-5)[0]
        clean = int(near[0]) if len(near) else n
        if best is None or clean > best[2]:
            best = (ids, logits, clean)
        if clean == n:
            break
    return best


GGUF = {"token_embedding": "token_embd.weight", "rms_final_weight": "output_norm.weight",
        "wcls": "output.weight", "rms_att_weight": "blk.{}.attn_norm.weight",
        "wq": "blk.{}.attn_q.weight", "wk": "blk.{}.attn_k.weight", "wv": "blk.{}.attn_v.weight",
        "wo": "blk.{}.attn_output.weight", "rms_ffn_weight": "blk.{}.ffn_norm.weight",
        "w1": "blk.{}.ffn_gate.weight", "w2": "blk.{}.ffn_down.weight", "w3": "blk.{}.ffn_up.weight"}


def write_gguf(path, cfg, tensors, vocab, qtype="F32", arch="llama", extra=None):
    """A GGUF file as llama.cpp's convert_hf_to_gguf.py lays it out, with the `gguf`
    package: llama.* metadata, the SentencePiece vocabulary (tokenizer.ggml.*), and the
    tensors under llama.cpp's names with q/k already interleaved (= lamp's layout).
    Matrices are stored as qtype (F32, F16 or Q8_0); norms stay F32, as llama.cpp keeps
    them. Returns the tensors as the file holds them (dequantized)."""
    import gguf
    w = gguf.GGUFWriter(path, arch)
    w.add_context_length(cfg["seq_len"])
    w.add_embedding_length(cfg["dim"])
    w.add_block_count(cfg["n_layers"])
    w.add_feed_forward_length(cfg["hidden_dim"])
    w.add_head_count(cfg["n_heads"])
    w.add_head_count_kv(cfg["n_kv_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["norm_eps"])
    if vocab is not None:
        w.add_tokenizer_model("llama")
        w.add_token_list([bytes(t).decode("utf-8").replace(" ", "\u2581")
                          for t, _, _ in vocab.tokenizer.pieces])
        w.add_token_scores([s for _, s, _ in vocab.tokenizer.pieces])
        w.add_token_types([t for _, _, t in vocab.tokenizer.pieces])
        w.add_bos_token_id(vocab.bos_id)
        w.add_eos_token_id(vocab.eos_id)
        w.add_unk_token_id(0)
    for k, v in (extra or {}).items():
        v(w) if callable(v) else w.add_string(k, v)
    held = {}
    qt = getattr(gguf.GGMLQuantizationType, qtype)
    for name, t in tensors.items():
        mats = t if name in LAYERED else t[None]
        out = []
        for layer, m in enumerate(mats):
            key = GGUF[name].format(layer)
            m = np.ascontiguousarray(m, dtype=np.float32)
            if m.ndim == 1 or qtype == "F32":
                w.add_tensor(key, m)
                out.append(m)
            else:
                data = gguf.quants.quantize(m, qt)
                w.add_tensor(key, data, raw_dtype=qt)
                out.append(gguf.quants.dequantize(data, qt).reshape(m.shape).astype(np.float32))
        held[name] = np.stack(out) if name in LAYERED else out[0]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held
