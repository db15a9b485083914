"""Hugging Face -> lamp: random LlamaForCausalLM models, saved by transformers
itself, converted by export.py and run by run.c, must give transformers' logits
(within 1e-4 at every position of a 32-token sequence) and the same 64 greedy
tokens. Then the reverse direction, lamp -> Hugging Face, and the round trips."""
import json
import os
import shutil

import numpy as np
import pytest

import lamptest as lt

# dim, heads, kv heads, head_dim, hidden, layers, vocab, theta, eps, tied
CONFIGS = {
    # plain multi-head attention, tied embeddings, single model.safetensors
    "mha-tied-f32": dict(dim=64, n_heads=4, n_kv_heads=4, head_dim=16, hidden_dim=128,
                         n_layers=2, vocab_size=320, seq_len=128, rope_theta=10000.0,
                         norm_eps=1e-5, tied=True, save="single", dtype="float32"),
    # grouped-query attention, own classifier, Llama 3's theta, sharded safetensors
    "gqa-untied-f32-sharded": dict(dim=64, n_heads=8, n_kv_heads=2, head_dim=8, hidden_dim=160,
                                   n_layers=3, vocab_size=384, seq_len=128, rope_theta=500000.0,
                                   norm_eps=1e-6, tied=False, save="sharded", dtype="float32"),
    # bfloat16 weights; head_dim 24 != dim / n_heads (q/k/o are not square)
    "gqa-tied-bf16": dict(dim=64, n_heads=4, n_kv_heads=2, head_dim=24, hidden_dim=96,
                          n_layers=2, vocab_size=300, seq_len=128, rope_theta=1000.0,
                          norm_eps=1e-4, tied=True, save="single", dtype="bfloat16"),
    # one kv head (multi-query), float16, the older pytorch_model.bin
    "mqa-untied-f16-bin": dict(dim=48, n_heads=4, n_kv_heads=1, head_dim=12, hidden_dim=128,
                               n_layers=2, vocab_size=320, seq_len=128, rope_theta=20000.0,
                               norm_eps=1e-5, tied=False, save="bin", dtype="float16"),
    # pytorch_model-0000N-of-00002.bin shards with their index
    "mha-untied-f32-bin-sharded": dict(dim=32, n_heads=2, n_kv_heads=2, head_dim=16,
                                       hidden_dim=64, n_layers=2, vocab_size=300, seq_len=128,
                                       rope_theta=10000.0, norm_eps=1e-5, tied=False,
                                       save="bin-sharded", dtype="float32"),
}


def save_hf(model, path, save, dtype, vocab_size):
    """Save as transformers does (or, for .bin, as older transformers did) + tokenizer.model."""
    import torch
    model = model.to(getattr(torch, dtype))
    if save.startswith("bin"):
        os.makedirs(path, exist_ok=True)
        model.config.save_pretrained(path)
        sd = {k: v for k, v in model.state_dict().items()
              if not (model.config.tie_word_embeddings and k == "lm_head.weight")}
        if save == "bin":
            torch.save(sd, os.path.join(path, "pytorch_model.bin"))
        else:  # two shards and the index, as older transformers wrote them
            keys, weight_map = sorted(sd), {}
            for i, part in enumerate((keys[:len(keys) // 2], keys[len(keys) // 2:])):
                name = f"pytorch_model-{i + 1:05d}-of-00002.bin"
                torch.save({k: sd[k] for k in part}, os.path.join(path, name))
                weight_map.update({k: name for k in part})
            with open(os.path.join(path, "pytorch_model.bin.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": weight_map}, f)
    else:
        model.save_pretrained(path, max_shard_size="40KB" if save == "sharded" else "10GB")
    lt.write_sp_model(os.path.join(path, "tokenizer.model"), vocab_size)
    return lt.load_hf(path)  # the reference: what transformers reads back, in float32


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def hf_case(request, tmp_path_factory):
    name = request.param
    c = dict(CONFIGS[name])
    save, dtype = c.pop("save"), c.pop("dtype")
    tmp = tmp_path_factory.mktemp(name)
    model = lt.random_hf_model(seed=sorted(CONFIGS).index(name) + 10, **c)
    ref = save_hf(model, str(tmp / "hf"), save, dtype, c["vocab_size"])
    files = os.listdir(tmp / "hf")
    if save == "sharded":
        assert "model.safetensors.index.json" in files
    lt.export(tmp / "hf", tmp / "model.lamp")
    return name, c, ref, tmp


def test_logits_match_transformers(hf_case):
    name, c, ref, tmp = hf_case
    ids = np.random.default_rng(1).integers(0, c["vocab_size"], lt.N_POSITIONS)
    delta = np.abs(lt.run_logits(tmp / "model.lamp", ids) - lt.hf_logits(ref, ids)).max()
    lt.record(f"HF {name} -> lamp, run.c vs transformers logits (32 positions)", delta)
    assert delta <= lt.TOLERANCE


def test_greedy_tokens_match_transformers(hf_case):
    name, c, ref, tmp = hf_case
    prompt, generated = lt.run_greedy(tmp / "model.lamp", "Once upon a time the little cat")
    assert prompt[0] == 1 and len(prompt) > 3
    expected = lt.hf_greedy(ref, prompt)
    print(f"{name}: prompt {prompt}, greedy {generated}")
    assert len(set(generated)) > 1 or len(generated) < 8, "a degenerate test model"
    assert lt.same_greedy(generated, expected, stops=(1, 2)), (generated, expected)


def test_header_carries_the_config(hf_case):
    name, c, ref, tmp = hf_case
    cfg, _, tok = lt.lampfile.read_lamp(str(tmp / "model.lamp"))
    for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
              "vocab_size", "seq_len"):
        assert cfg[k] == c[k], k
    assert cfg["rope_theta"] == np.float32(c["rope_theta"])
    assert cfg["norm_eps"] == np.float32(c["norm_eps"])
    assert cfg["shared_classifier"] == c["tied"]
    assert (cfg["bos_id"], cfg["eos_id"]) == (1, 2)
    assert tok == lt.lampfile.synthetic_tokenizer(c["vocab_size"])


def test_hf_to_lamp_to_hf_same_logits(hf_case):
    """HF -> lamp -> HF: transformers gives the same logits on both directories."""
    name, c, ref, tmp = hf_case
    out = tmp / "back"
    lt.export(tmp / "model.lamp", out, "--to", "hf")
    back = lt.load_hf(str(out))
    ids = np.random.default_rng(2).integers(0, c["vocab_size"], lt.N_POSITIONS)
    delta = np.abs(lt.hf_logits(back, ids) - lt.hf_logits(ref, ids)).max()
    lt.record(f"HF {name} -> lamp -> HF, transformers logits", delta)
    assert delta <= 1e-6
    # and the state dicts are equal, tensor by tensor (bf16/f16 sources: upcast exactly)
    import torch
    a, b = ref.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_int8_output(hf_case):
    """--int8: every weight of the Q8_0 file is within half a quantization step of the
    float32 one, and run.c's int8 forward pass (which quantizes the activations too)
    gives the logits of numpy's model of that arithmetic."""
    name, c, ref, tmp = hf_case
    out = tmp / "model-q8.lamp"
    lt.export(tmp / "hf", out, "--int8", "--group-size", "16")
    cfg, f32, _ = lt.lampfile.read_lamp(str(tmp / "model.lamp"))
    cfg_q8, q8, _ = lt.lampfile.read_lamp(str(out))
    assert cfg_q8.pop("group_size") == 16 and cfg_q8 == cfg
    for k in f32:
        step = np.abs(f32[k].reshape(-1, 16)).max(axis=1, keepdims=True) / 127
        err = np.abs(f32[k] - q8[k]).reshape(-1, 16)
        # half a step, plus float32 rounding of x / scale (up to 127 * 2^-24 steps)
        assert (err <= step * (0.5 + 1e-4)).all() if k in lt.lampfile.Q8_TENSORS \
            else not err.any(), k
    # the file is exactly what lampfile's own Q8_0 writer makes of the same weights
    tok = lt.lampfile.synthetic_tokenizer(c["vocab_size"])
    lt.lampfile.write_lamp(str(tmp / "lampfile-q8.lamp"), cfg, f32, tok, group_size=16)
    with open(out, "rb") as a, open(tmp / "lampfile-q8.lamp", "rb") as b:
        assert a.read() == b.read()
    ids, want, clean = lt.int8_reference(cfg, f32, 16)
    assert clean >= 4  # see lamptest.int8_reference
    got = lt.run_logits(out, ids)
    delta = np.abs(got[:clean] - want[:clean]).max()
    lt.record(f"HF {name} -> lamp int8 (GS 16), run.c vs numpy's int8 arithmetic "
              f"({clean} positions)", delta)
    assert delta <= lt.Q8_TOLERANCE
    lt.record(f"HF {name} -> lamp int8 (GS 16), run.c vs transformers float32 (quantization)",
              np.abs(got - lt.hf_logits(ref, ids)).max())


# ---------------------------------------------------------------------------
# lamp -> Hugging Face
# ---------------------------------------------------------------------------

GOLDENS = ["mqa-tied", "mha-pad", "llama2c-compat", "gqa-untied"]


@pytest.mark.parametrize("name", GOLDENS)
def test_lamp_to_hf_to_lamp_is_byte_identical(name, tmp_path):
    src = os.path.join(lt.GOLDEN, name + ".lamp")
    lt.export(src, tmp_path / "hf", "--to", "hf")
    assert sorted(os.listdir(tmp_path / "hf")) == ["config.json", "model.safetensors",
                                                   "tokenizer.model", "tokenizer_config.json"]
    lt.export(tmp_path / "hf", tmp_path / "back.lamp")
    with open(src, "rb") as a, open(tmp_path / "back.lamp", "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("name", ["mqa-tied", "mha-pad", "llama2c-compat"])
def test_lamp_to_hf_generates_like_run(name, tmp_path):
    """transformers loads the exported directory (weights and tokenizer) and greedily
    generates the tokens ./run generates."""
    src = os.path.join(lt.GOLDEN, name + ".lamp")
    lt.export(src, tmp_path / "hf", "--to", "hf")
    model = lt.load_hf(str(tmp_path / "hf"))
    text = "Once upon a time there was a little girl named Lily"
    prompt, generated = lt.run_greedy(src, text)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok(text)["input_ids"] == prompt  # the same ids, BOS included
    room = model.config.max_position_embeddings - len(prompt) + 1
    assert lt.same_greedy(generated, lt.hf_greedy(model, prompt, min(room, lt.N_GREEDY)),
                          stops=(1, 2), room=room)
    # and the logits themselves, against the golden transformers produced
    raw = np.fromfile(os.path.join(lt.GOLDEN, name + ".logits"), "<i4")
    n, vocab = raw[:2]
    ids, want = raw[2:2 + n], raw[2 + n:].view("<f4").reshape(n, vocab)
    delta = np.abs(lt.hf_logits(model, ids) - want).max()
    lt.record(f"golden {name}.lamp -> HF, transformers vs golden logits (64 positions)", delta)
    assert delta <= 1e-5


def test_lamp_to_hf_bfloat16(tmp_path):
    src = os.path.join(lt.GOLDEN, "mha-pad.lamp")
    lt.export(src, tmp_path / "hf", "--to", "hf", "--dtype", "bfloat16")
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"))
    assert m.dtype == torch.bfloat16
    with open(tmp_path / "hf" / "config.json") as f:
        assert json.load(f)["dtype"] == "bfloat16"
    # bfloat16 keeps 8 bits of mantissa: every weight within 2^-9 relative
    lt.export(tmp_path / "hf", tmp_path / "back.lamp")
    _, a, _ = lt.lampfile.read_lamp(src)
    _, b, _ = lt.lampfile.read_lamp(str(tmp_path / "back.lamp"))
    for k in a:
        assert np.all(np.abs(a[k] - b[k]) <= np.abs(a[k]) * 2.0 ** -8), k


def test_rope_permutation_inverse():
    rng = np.random.default_rng(0)
    for heads, hd in ((3, 16), (1, 64), (8, 2)):
        w = rng.standard_normal((heads * hd, 5))
        assert np.array_equal(
            lt.lampfile.lamp_qk_to_hf(lt.lampfile.hf_qk_to_lamp(w, heads, hd), heads, hd), w)


def test_tokenizer_json_beside_the_model(tmp_path):
    """A directory with tokenizer.json and no tokenizer.model (as many hub models are)."""
    c = dict(CONFIGS["mha-tied-f32"])
    c.pop("save"), c.pop("dtype")
    c["vocab_size"] = 32000
    c["dim"], c["hidden_dim"], c["n_layers"] = 16, 32, 1
    c["head_dim"] = 4
    model = lt.random_hf_model(seed=3, **c)
    model.save_pretrained(tmp_path / "hf")
    from transformers import AutoTokenizer
    os.makedirs(tmp_path / "tokdir")
    shutil.copy(lt.LLAMA2_MODEL, tmp_path / "tokdir" / "tokenizer.model")
    AutoTokenizer.from_pretrained(str(tmp_path / "tokdir")).save_pretrained(str(tmp_path / "hf"))
    assert "tokenizer.json" in os.listdir(tmp_path / "hf")
    assert "tokenizer.model" not in os.listdir(tmp_path / "hf")
    lt.export(tmp_path / "hf", tmp_path / "m.lamp")
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=lt.LLAMA2_MODEL)
    lines = lt.sample_lines(150)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]


def test_hf_to_lamp_refuses_biases():
    """A Qwen2 model is a Llama with q/k/v biases. lamp has no bias terms, so
    lampfile.hf_to_lamp must refuse it rather than drop the biases and
    return a model that computes something else (export.py checks the
    tensor names on its own; this is the library under it)."""
    import transformers
    cfg = transformers.Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                                   max_position_embeddings=64)
    model = transformers.Qwen2ForCausalLM(cfg)
    with pytest.raises(ValueError, match="bias"):
        lt.lampfile.hf_to_lamp(model, cfg)
