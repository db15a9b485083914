"""The other ways in: Meta's consolidated.*.pth, llama2.c's .pt and .bin (versions
0, 1, 2) and GGUF (f32, f16, q8_0). Each file is written here the way its own
tool writes it, from a random LlamaForCausalLM, and after export.py run.c must
give transformers' logits (float sources: within 1e-4) or, for int8 sources,
numpy's logits on the very weights the file holds (within 1e-4; the distance
to the float original is the quantization error, recorded and bounded)."""
import os

import numpy as np
import pytest

import lamptest as lt

CFG = dict(dim=64, n_heads=4, n_kv_heads=2, head_dim=16, hidden_dim=96, n_layers=2,
           vocab_size=320, seq_len=96, rope_theta=10000.0, norm_eps=1e-5)
# int8 weights move the logits of these deliberately chaotic test models (matrices
# N(0, 0.2^2), see lamptest.random_hf_model) by about 0.3 standard deviations of the
# logits: that is the quantization error. The exact check is the one against numpy.
Q8_BOUND = 0.5


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def model(request, tmp_path_factory):
    tied = request.param
    m = lt.random_hf_model(seed=40 + tied, tied=tied, **CFG)
    cfg, tensors = lt.lamp_tensors(m, m.config)
    ids = np.random.default_rng(3).integers(0, CFG["vocab_size"], lt.N_POSITIONS)
    tmp = tmp_path_factory.mktemp("src-tied" if tied else "src-untied")
    lt.write_sp_model(str(tmp / "tokenizer.model"), CFG["vocab_size"])
    return dict(hf=m, cfg=cfg, tensors=tensors, ids=ids, ref=lt.hf_logits(m, ids), tmp=tmp,
                tag="tied" if tied else "untied")


def check_float(m, lamp_path, what):
    delta = np.abs(lt.run_logits(lamp_path, m["ids"]) - m["ref"]).max()
    lt.record(f"{what} ({m['tag']}) -> lamp, run.c vs transformers logits", delta)
    assert delta <= lt.TOLERANCE
    prompt, generated = lt.run_greedy(lamp_path, "Once upon a time")
    assert lt.same_greedy(generated, lt.hf_greedy(m["hf"], prompt), stops=(1, 2),
                          room=CFG["seq_len"] - len(prompt) + 1)


def check_quantized(m, lamp_path, held, what):
    """held: the tensors as the int8 file holds them (dequantized)."""
    got = lt.run_logits(lamp_path, m["ids"])
    exact = lt.lampfile.forward(m["cfg"], held, m["ids"])
    delta = np.abs(got - exact).max()
    lt.record(f"{what} ({m['tag']}) -> lamp, run.c vs numpy on the file's own weights", delta)
    assert delta <= lt.TOLERANCE
    qerr = np.abs(got - m["ref"]).max()
    lt.record(f"{what} ({m['tag']}) -> lamp, run.c vs the float32 original (quantization)", qerr)
    assert qerr <= Q8_BOUND * m["ref"].std()


def check_int8_run(m, lamp_path, held, gs, what):
    """run.c's int8 path on a Q8_0 lamp file against numpy's model of that arithmetic."""
    ids, want, clean = lt.int8_reference(m["cfg"], held, gs)
    assert clean >= 4  # see lamptest.int8_reference
    delta = np.abs(lt.run_logits(lamp_path, ids)[:clean] - want[:clean]).max()
    lt.record(f"{what} ({m['tag']}), run.c int8 vs numpy's int8 arithmetic "
              f"({clean} positions)", delta)
    assert delta <= lt.Q8_TOLERANCE


def test_meta_consolidated(model, tmp_path):
    d = tmp_path / "llama-2-tiny"
    lt.write_meta(str(d), model["cfg"], model["tensors"], n_shards=2)
    lt.export(d, tmp_path / "m.lamp", "--tokenizer", model["tmp"] / "tokenizer.model")
    check_float(model, tmp_path / "m.lamp", "Meta consolidated.00/01.pth")


def test_llama2c_pt(model, tmp_path):
    lt.write_llama2c_pt(str(tmp_path / "ckpt.pt"), model["cfg"], model["tensors"])
    lt.export(tmp_path / "ckpt.pt", tmp_path / "m.lamp", "--tokenizer",
              model["tmp"] / "tokenizer.model")
    cfg, _, _ = lt.lampfile.read_lamp(str(tmp_path / "m.lamp"))
    assert cfg["shared_classifier"] == model["cfg"]["shared_classifier"]
    check_float(model, tmp_path / "m.lamp", "llama2.c train.py .pt")


@pytest.mark.parametrize("version", [0, 1])
def test_llama2c_bin(model, version, tmp_path):
    writer = [lt.lampfile.write_llama2c_v0, lt.lampfile.write_llama2c_v1][version]
    writer(str(tmp_path / "m.bin"), model["cfg"], model["tensors"])
    lt.export(tmp_path / "m.bin", tmp_path / "m.lamp", "--tokenizer",
              model["tmp"] / "tokenizer.model")
    check_float(model, tmp_path / "m.lamp", f"llama2.c .bin version {version}")
    # the same weights through run.c's own llama2.c reader: the same logits, bit for bit
    assert np.array_equal(lt.run_logits(tmp_path / "m.lamp", model["ids"]),
                          lt.run_logits(tmp_path / "m.bin", model["ids"]))


def test_llama2c_bin_v2(model, tmp_path):
    held = lt.write_llama2c_v2(str(tmp_path / "q.bin"), model["cfg"], model["tensors"], 32)
    lt.export(tmp_path / "q.bin", tmp_path / "m.lamp", "--tokenizer",
              model["tmp"] / "tokenizer.model")
    check_quantized(model, tmp_path / "m.lamp", held, "llama2.c .bin version 2 (int8, GS 32)")


def test_llama2c_bin_v2_to_int8_keeps_the_values(model, tmp_path):
    """int8 in, int8 out with the same group size: the values are copied, not re-rounded."""
    held = lt.write_llama2c_v2(str(tmp_path / "q.bin"), model["cfg"], model["tensors"], 32)
    lt.export(tmp_path / "q.bin", tmp_path / "q.lamp", "--int8", "--tokenizer",
              model["tmp"] / "tokenizer.model")
    import export as ex
    src = ex.LampSource(str(tmp_path / "q.lamp"))
    assert src.group_size == 32
    for name, t in held.items():
        got = np.stack([src.read(name, l) for l in ex.layers_of(src.cfg, name)])
        assert np.array_equal(got.reshape(t.shape), t), name
    check_int8_run(model, tmp_path / "q.lamp", held, 32, "llama2.c v2 -> lamp int8")


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0"])
def test_gguf(model, qtype, tmp_path):
    vocab = lt.synthetic_vocab(CFG["vocab_size"])
    held = lt.write_gguf(str(tmp_path / "m.gguf"), model["cfg"], model["tensors"], vocab, qtype)
    lt.export(tmp_path / "m.gguf", tmp_path / "m.lamp")
    cfg, _, tok = lt.lampfile.read_lamp(str(tmp_path / "m.lamp"))
    assert tok == vocab.tokenizer and (cfg["bos_id"], cfg["eos_id"]) == (1, 2)
    assert cfg["shared_classifier"] == model["cfg"]["shared_classifier"]
    if qtype == "F32":
        check_float(model, tmp_path / "m.lamp", "GGUF f32")
    else:
        check_quantized(model, tmp_path / "m.lamp", held, f"GGUF {qtype.lower()}")


def test_gguf_q8_0_to_int8_keeps_the_values(model, tmp_path):
    vocab = lt.synthetic_vocab(CFG["vocab_size"])
    held = lt.write_gguf(str(tmp_path / "m.gguf"), model["cfg"], model["tensors"], vocab, "Q8_0")
    p = lt.export(tmp_path / "m.gguf", tmp_path / "q.lamp", "--int8")
    assert "kept the source's own int8 values" in p.stderr
    import export as ex
    src = ex.LampSource(str(tmp_path / "q.lamp"))
    assert src.group_size == 32
    for name, t in held.items():
        got = np.stack([src.read(name, l) for l in ex.layers_of(src.cfg, name)])
        assert np.array_equal(got.reshape(t.shape), t), name
    check_int8_run(model, tmp_path / "q.lamp", held, 32, "GGUF q8_0 -> lamp int8")


def test_golden_llama2c_checkpoints(tmp_path):
    """tests/data/llama2c's checkpoints (made for llama2.c's own run.c): converted to
    lamp, run.c gives bit-identical logits to the .bin files themselves."""
    tok = os.path.join(lt.ROOT, "tests", "data", "llama2c", "idtok512.bin")
    for name in ("gqa-shared", "gqa-unshared"):
        src = os.path.join(lt.ROOT, "tests", "data", "llama2c", name + ".bin")
        lt.export(src, tmp_path / (name + ".lamp"), "--tokenizer", tok)
        ids = np.random.default_rng(0).integers(0, 512, lt.N_POSITIONS)
        assert np.array_equal(lt.run_logits(tmp_path / (name + ".lamp"), ids),
                              lt.run_logits(src, ids))
