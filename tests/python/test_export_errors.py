"""What lamp cannot run is refused: one line on stderr naming what is unsupported,
exit status 1, no traceback, and no output file left behind."""
import json
import os
import struct

import numpy as np
import pytest

import lamptest as lt

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
         "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
         "num_key_value_heads": 1, "vocab_size": 300, "max_position_embeddings": 32,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
         "hidden_act": "silu"}


def hf_dir(tmp, weights=None, **changes):
    """A Hugging Face directory: config.json (LLAMA with changes) + safetensors + tokenizer."""
    d = tmp / "hf"
    os.makedirs(d, exist_ok=True)
    config = {k: v for k, v in {**LLAMA, **changes}.items() if v is not None}
    (d / "config.json").write_text(json.dumps(config))
    if weights is None:
        c = {**LLAMA, **changes}
        dim, hid, kv = c["hidden_size"], c["intermediate_size"], 8 * c["num_key_value_heads"]
        weights = {"model.embed_tokens.weight": (c["vocab_size"], dim), "model.norm.weight": (dim,),
                   "model.layers.0.input_layernorm.weight": (dim,),
                   "model.layers.0.post_attention_layernorm.weight": (dim,),
                   "model.layers.0.self_attn.q_proj.weight": (dim, dim),
                   "model.layers.0.self_attn.k_proj.weight": (kv, dim),
                   "model.layers.0.self_attn.v_proj.weight": (kv, dim),
                   "model.layers.0.self_attn.o_proj.weight": (dim, dim),
                   "model.layers.0.mlp.gate_proj.weight": (hid, dim),
                   "model.layers.0.mlp.up_proj.weight": (hid, dim),
                   "model.layers.0.mlp.down_proj.weight": (dim, hid)}
        weights = {k: np.zeros(s, np.float32) for k, s in weights.items()}
    from safetensors.numpy import save_file
    save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    lt.write_sp_model(str(d / "tokenizer.model"), LLAMA["vocab_size"])
    return d


def good_weights():
    d = {"model.embed_tokens.weight": (300, 16), "model.norm.weight": (16,),
         "model.layers.0.input_layernorm.weight": (16,),
         "model.layers.0.post_attention_layernorm.weight": (16,),
         "model.layers.0.self_attn.q_proj.weight": (16, 16),
         "model.layers.0.self_attn.k_proj.weight": (8, 16),
         "model.layers.0.self_attn.v_proj.weight": (8, 16),
         "model.layers.0.self_attn.o_proj.weight": (16, 16),
         "model.layers.0.mlp.gate_proj.weight": (32, 16), "model.layers.0.mlp.up_proj.weight": (32, 16),
         "model.layers.0.mlp.down_proj.weight": (16, 32)}
    return {k: np.zeros(s, np.float32) for k, s in d.items()}


def gguf_file(tmp, arch="llama", qtype="F32", tokenizer="llama", extra=None):
    path = str(tmp / "m.gguf")
    if tokenizer != "llama":  # just enough of a file to reach the tokenizer check
        import gguf
        w = gguf.GGUFWriter(path, arch)
        w.add_tokenizer_model(tokenizer)
        w.add_token_list(["a", "b"])
        for k, v in (extra or {}).items():
            w.add_string(k, v)
        w.add_tensor("token_embd.weight", np.zeros((2, 32), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path
    cfg = dict(dim=32, hidden_dim=64, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16,
               vocab_size=300, seq_len=32, rope_theta=10000.0, norm_eps=1e-5, bos_id=1,
               eos_id=2, shared_classifier=True)
    tensors = {n: np.zeros(s, np.float32) for n, s in lt.lampfile.tensor_shapes(cfg).items()}
    lt.write_gguf(path, cfg, tensors, lt.synthetic_vocab(300), qtype, arch=arch, extra=extra)
    return path


def hf_attention_bias(tmp):
    return [hf_dir(tmp, attention_bias=True)], "attention/MLP biases"


def hf_bias_tensors(tmp):
    w = good_weights()
    w["model.layers.0.self_attn.q_proj.bias"] = np.zeros(16, np.float32)
    return [hf_dir(tmp, weights=w)], "bias"


def hf_sliding_window(tmp):
    return [hf_dir(tmp, architectures=["MistralForCausalLM"], model_type="mistral",
                   sliding_window=4096)], "sliding-window attention"


def hf_moe(tmp):
    return [hf_dir(tmp, architectures=["MixtralForCausalLM"], model_type="mixtral",
                   num_local_experts=8)], "mixture-of-experts"


def hf_qwen(tmp):
    return [hf_dir(tmp, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
                   use_sliding_window=False, sliding_window=32768)], "Qwen2ForCausalLM"


def hf_rope_scaling(tmp):
    return [hf_dir(tmp, rope_scaling={"rope_type": "llama3", "factor": 8.0})], "llama3"


def hf_qk_norm(tmp):
    w = good_weights()
    w["model.layers.0.self_attn.q_norm.weight"] = np.zeros(8, np.float32)
    return [hf_dir(tmp, weights=w)], "q_norm"


def hf_fp8(tmp):
    d = hf_dir(tmp)
    # rewrite one tensor's dtype in the safetensors header: an 8-bit float checkpoint
    p = d / "model.safetensors"
    data = p.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    head["model.norm.weight"]["dtype"] = "F8_E4M3"
    e = head["model.norm.weight"]["data_offsets"]
    head["model.norm.weight"]["shape"] = [e[1] - e[0]]
    new = json.dumps(head).encode()
    new += b" " * (-len(new) % 8)
    p.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n:])
    return [d], "F8_E4M3"


def hf_quantized_config(tmp):
    return [hf_dir(tmp, quantization_config={"quant_method": "gptq", "bits": 4})], "gptq"


def hf_missing_tensor(tmp):
    w = good_weights()
    del w["model.layers.0.mlp.up_proj.weight"]
    return [hf_dir(tmp, weights=w)], "up_proj.weight is missing"


def hf_wrong_shape(tmp):
    w = good_weights()
    w["model.layers.0.mlp.up_proj.weight"] = np.zeros((31, 16), np.float32)
    return [hf_dir(tmp, weights=w)], "up_proj.weight has shape (31, 16)"


def byte_level_tokenizer(tmp):
    """A byte-level BPE whose pre-tokenizer is none lamp knows (Whitespace, then ByteLevel)."""
    j = {"version": "1.0", "added_tokens": [], "normalizer": None,
         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
             {"type": "Whitespace"},
             {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
              "use_regex": True}]},
         "post_processor": None, "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
    (tmp / "tokenizer.json").write_text(json.dumps(j))
    return [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", tmp / "tokenizer.json"], \
        "pre-tokenizer ['Whitespace', 'ByteLevel']"


def wordpiece_tokenizer(tmp):
    """The tokenizer.json of another model type (BERT's WordPiece)."""
    j = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
         "post_processor": None, "decoder": None,
         "model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}}
    (tmp / "tokenizer.json").write_text(json.dumps(j))
    return [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", tmp / "tokenizer.json"], "WordPiece"


def unknown_chat_template(tmp):
    """A GGUF whose chat template is none of lamp's three."""
    template = "{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }}{% endfor %}"
    return [gguf_file(tmp, extra={"tokenizer.chat_template": template})], \
        "chat template is none that lamp knows"


def unigram_tokenizer(tmp):
    import io
    import sentencepiece as spm
    text = open(os.path.join(lt.ROOT, "data", "tinyshakespeare", "input.txt")).read().split("\n")[:2000]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model,
                                   model_type="unigram", vocab_size=300, minloglevel=2)
    (tmp / "uni.model").write_bytes(model.getvalue())
    return [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", tmp / "uni.model"], "Unigram"


def gguf_arch(tmp):
    return [gguf_file(tmp, arch="qwen2")], "GGUF architecture 'qwen2'"


def gguf_iq4(tmp):
    """A tensor type export.py does not list (IQ4_NL: 32 weights in 18 bytes)."""
    import gguf
    path = str(tmp / "m.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tensor("token_embd.weight", np.zeros((2, 18), np.uint8),
                 raw_dtype=gguf.GGMLQuantizationType.IQ4_NL)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return [path], "IQ4_NL"


def gguf_gpt2_tokenizer(tmp):
    """A byte-level GGUF tokenizer whose pre-tokenizer (tokenizer.ggml.pre) lamp lacks."""
    return [gguf_file(tmp, tokenizer="gpt2", extra={"tokenizer.ggml.pre": "qwen2"})], \
        "pre-tokenizer 'qwen2'"


def gguf_moe(tmp):
    return [gguf_file(tmp, extra={"moe": lambda w: w.add_expert_count(8)})], "mixture-of-experts"


def llama2c_truncated(tmp):
    data = open(lt.GOLDEN + "/llama2c-compat.v1.bin", "rb").read()
    (tmp / "t.bin").write_bytes(data[:-100])
    return [tmp / "t.bin", "--tokenizer", lt.GOLDEN + "/llama2c-compat.lamp"], "truncated"


def llama2c_version3(tmp):
    data = bytearray(open(lt.GOLDEN + "/llama2c-compat.v1.bin", "rb").read())
    data[4:8] = struct.pack("<i", 3)
    (tmp / "v3.bin").write_bytes(bytes(data))
    return [tmp / "v3.bin"], "version 3"


def vocab_mismatch(tmp):
    return [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", lt.LLAMA2_MODEL], "32000 pieces"


def no_tokenizer(tmp):
    import shutil
    shutil.copy(lt.GOLDEN + "/llama2c-compat.v1.bin", tmp / "m.bin")
    return [tmp / "m.bin"], "--tokenizer"


def not_there(tmp):
    return [tmp / "nothing-here"], "no such file"


def bad_group_size(tmp):
    return [lt.GOLDEN + "/mha-pad.lamp", "--int8", "--group-size", "12"], "group-size"


def not_a_model(tmp):
    (tmp / "junk.bin").write_bytes(b"\x00" * 100)
    return [tmp / "junk.bin"], "llama2.c"


CASES = [hf_attention_bias, hf_bias_tensors, hf_sliding_window, hf_moe, hf_qwen,
         hf_rope_scaling, hf_qk_norm, hf_fp8, hf_quantized_config, hf_missing_tensor,
         hf_wrong_shape, byte_level_tokenizer, wordpiece_tokenizer, unigram_tokenizer,
         unknown_chat_template, gguf_arch, gguf_iq4,
         gguf_gpt2_tokenizer, gguf_moe, llama2c_truncated, llama2c_version3, vocab_mismatch,
         no_tokenizer, not_there, bad_group_size, not_a_model]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_refused_with_one_line(case, tmp_path):
    args, expected = case(tmp_path)
    out = tmp_path / "out.lamp"
    p = lt.export(*args, out, ok=False)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("export.py: "), p.stderr
    assert expected in lines[0], lines[0]
    assert not os.path.exists(out) and not os.path.exists(str(out) + ".tmp")


@pytest.mark.parametrize("package,make", [
    ("torch", lambda tmp: [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", lt.LLAMA2_MODEL]),
    ("gguf", lambda tmp: [gguf_file(tmp)]),
    ("sentencepiece", lambda tmp: [lt.GOLDEN + "/mha-pad.lamp", "--tokenizer", lt.LLAMA2_MODEL]),
])
def test_missing_package_is_named(package, make, tmp_path):
    """Hide a package (a module of that name that fails to import) and ask for work
    that needs it: the message names the package and how to install it."""
    args = make(tmp_path)
    if package == "torch":  # something that needs torch: a pytorch_model.bin directory
        d = tmp_path / "hfbin"
        os.makedirs(d)
        (d / "config.json").write_text(json.dumps(LLAMA))
        (d / "pytorch_model.bin").write_bytes(b"PK\x03\x04")
        args = [d]
    hide = tmp_path / "hide"
    os.makedirs(hide / package)
    (hide / package / "__init__.py").write_text(f"raise ImportError('no {package} here')\n")
    env = dict(os.environ, PYTHONPATH=str(hide))
    p = lt.export(*args, tmp_path / "out.lamp", ok=False, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"needs the Python package '{package}' (pip install {package})" in p.stderr, p.stderr


def test_help_has_examples():
    p = lt.export("--help")
    assert "examples:" in p.stdout and "--to hf" in p.stdout and "--int8" in p.stdout


def test_numpy_only_for_lamp_to_lamp(tmp_path):
    """Re-exporting a lamp file, or a llama2.c .bin with a tokenizer.bin, needs numpy only."""
    hide = tmp_path / "hide"
    for package in ("torch", "sentencepiece", "gguf", "safetensors", "transformers"):
        os.makedirs(hide / package)
        (hide / package / "__init__.py").write_text("raise ImportError('hidden')\n")
    env = dict(os.environ, PYTHONPATH=str(hide))
    lt.export(lt.GOLDEN + "/mha-pad.lamp", tmp_path / "a.lamp", env=env)
    lt.export(lt.GOLDEN + "/llama2c-compat.v0.bin", tmp_path / "b.lamp", "--tokenizer",
              lt.GOLDEN + "/llama2c-compat.lamp", env=env)
    with open(lt.GOLDEN + "/mha-pad.lamp", "rb") as a, open(tmp_path / "a.lamp", "rb") as b:
        assert a.read() == b.read()
    with open(lt.GOLDEN + "/llama2c-compat.lamp", "rb") as a, open(tmp_path / "b.lamp", "rb") as b:
        assert a.read() == b.read()


def test_hf_output_refuses_a_directory_with_other_weights(tmp_path):
    d = tmp_path / "hf"
    os.makedirs(d)
    (d / "model.safetensors.index.json").write_text("{}")
    p = lt.export(lt.GOLDEN + "/mha-pad.lamp", d, "--to", "hf", ok=False)
    assert p.returncode == 1 and "already holds other weights" in p.stderr
    assert not os.path.exists(d / "model.safetensors")


def test_options(tmp_path):
    """--seq-len overrides the context length; --quiet prints nothing; misplaced options
    are usage errors (argparse's exit status 2)."""
    p = lt.export(lt.GOLDEN + "/mha-pad.lamp", tmp_path / "m.lamp", "--seq-len", "32", "-q")
    assert p.stderr == ""
    assert lt.lampfile.read_lamp(str(tmp_path / "m.lamp"))[0]["seq_len"] == 32
    for bad in (["--group-size", "16"], ["--dtype", "bfloat16"], ["--seq-len", "0"]):
        p = lt.export(lt.GOLDEN + "/mha-pad.lamp", tmp_path / "x.lamp", *bad, ok=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr
