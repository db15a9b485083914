"""Tokenizer exports. llama2.c's tokenizer.bin must come out byte-identical to the
one llama2.c's tokenizer.py made from the same tokenizer.model, and on every
vocabulary export.py writes into a lamp file, run.c's tokenizer must give
SentencePiece's ids."""
import io
import json
import os
import shutil

import numpy as np
import pytest

import lamptest as lt


@pytest.fixture(scope="module")
def sp():
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=lt.LLAMA2_MODEL)


@pytest.fixture(scope="module")
def lines():
    return lt.sample_lines(300)


def tiny_lamp(path, vocab_size):
    """A small random lamp model of the given vocabulary, to carry a tokenizer."""
    cfg = dict(dim=16, hidden_dim=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=8,
               vocab_size=vocab_size, seq_len=32, rope_theta=10000.0, norm_eps=1e-5,
               bos_id=1, eos_id=2, shared_classifier=True)
    rng = np.random.default_rng(0)
    tensors = {n: rng.standard_normal(s).astype(np.float32)
               for n, s in lt.lampfile.tensor_shapes(cfg).items()}
    lt.lampfile.write_lamp(str(path), cfg, tensors, lt.lampfile.synthetic_tokenizer(vocab_size))
    return path


def test_tokenizer_bin_is_byte_identical_to_llama2c(tmp_path):
    lt.export(lt.LLAMA2_MODEL, tmp_path / "tokenizer.bin")  # --to inferred from the names
    with open(tmp_path / "tokenizer.bin", "rb") as a, open(lt.LLAMA2_BIN, "rb") as b:
        assert a.read() == b.read()
    # and back: tokenizer.bin -> tokenizer.bin is the identity too
    lt.export(lt.LLAMA2_BIN, tmp_path / "again.bin", "--to", "tokenizer-bin")
    with open(tmp_path / "again.bin", "rb") as a, open(lt.LLAMA2_BIN, "rb") as b:
        assert a.read() == b.read()


def test_sentencepiece_model_into_lamp(tmp_path, sp, lines):
    base = tiny_lamp(tmp_path / "base.lamp", 32000)
    lt.export(base, tmp_path / "m.lamp", "--tokenizer", lt.LLAMA2_MODEL)
    cfg, _, tok = lt.lampfile.read_lamp(str(tmp_path / "m.lamp"))
    assert (cfg["bos_id"], cfg["eos_id"]) == (1, 2)
    assert tok.pieces[1] == (b"<s>", 0.0, lt.lampfile.PIECE_CONTROL)
    assert tok.pieces[29871][0::2] == (b" ", lt.lampfile.PIECE_NORMAL)  # '▁' became a space
    assert tok.pieces[259] == (b"  ", -1e9, lt.lampfile.PIECE_NORMAL)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]


def test_tokenizer_bin_into_lamp(tmp_path, sp, lines):
    base = tiny_lamp(tmp_path / "base.lamp", 32000)
    lt.export(base, tmp_path / "m.lamp", "--tokenizer", lt.LLAMA2_BIN)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]


def llama2_tokenizer_json(outdir):
    """tokenizer.json as transformers 5 converts Llama 2's tokenizer.model."""
    from transformers import AutoTokenizer
    src = os.path.join(outdir, "src")
    os.makedirs(src)
    shutil.copy(lt.LLAMA2_MODEL, src)
    AutoTokenizer.from_pretrained(src).save_pretrained(outdir)
    return os.path.join(outdir, "tokenizer.json")


def test_tokenizer_json_transformers5(tmp_path, sp, lines):
    tj = llama2_tokenizer_json(str(tmp_path))
    base = tiny_lamp(tmp_path / "base.lamp", 32000)
    lt.export(base, tmp_path / "m.lamp", "--tokenizer", tj)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]


def test_tokenizer_json_hub_style(tmp_path, sp, lines):
    """The tokenizer.json of the Llama 2 / TinyLlama hub repositories: a Prepend('▁') +
    Replace(' ', '▁') normalizer, no pre-tokenizer, merges written as "a b" strings."""
    tj = llama2_tokenizer_json(str(tmp_path))
    with open(tj, encoding="utf-8") as f:
        j = json.load(f)
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    j["pre_tokenizer"] = None
    j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    os.makedirs(tmp_path / "hub")
    hub = str(tmp_path / "hub" / "tokenizer.json")
    with open(hub, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(hub)
    assert [hf.encode(x, add_special_tokens=False).ids for x in lines[:50]] == \
        [sp.encode(x) for x in lines[:50]]  # the file is what it claims to be
    base = tiny_lamp(tmp_path / "base.lamp", 32000)
    lt.export(base, tmp_path / "m.lamp", "--tokenizer", hub)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]


def test_gguf_tokenizer(tmp_path, sp, lines):
    """The vocabulary inside a GGUF, stored as llama.cpp stores SentencePiece models."""
    import export as ex
    pieces = []
    for i in range(sp.get_piece_size()):
        ptype = (2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                 else 5 if sp.is_unused(i) else 1)
        pieces.append((sp.id_to_piece(i).replace("\u2581", " ").encode(), sp.get_score(i), ptype))
    vocab = ex.Vocab(lt.lampfile.Tokenizer(pieces, 1), sp.bos_id(), sp.eos_id(), "sp")
    cfg = dict(dim=16, hidden_dim=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=8,
               vocab_size=32000, seq_len=32, rope_theta=10000.0, norm_eps=1e-5,
               bos_id=1, eos_id=2, shared_classifier=True)
    rng = np.random.default_rng(0)
    tensors = {n: rng.standard_normal(s).astype(np.float32)
               for n, s in lt.lampfile.tensor_shapes(cfg).items()}
    lt.write_gguf(str(tmp_path / "m.gguf"), cfg, tensors, vocab)
    lt.export(tmp_path / "m.gguf", tmp_path / "m.lamp")
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]
    lt.export(tmp_path / "m.gguf", tmp_path / "tokenizer.bin", "--to", "tokenizer-bin")
    with open(tmp_path / "tokenizer.bin", "rb") as a, open(lt.LLAMA2_BIN, "rb") as b:
        assert a.read() == b.read()


# Without byte fallback SentencePiece emits ONE <unk> for a run of unknown
# characters ("日本語" -> [0]); tokenizer.c must do the same.
@pytest.mark.parametrize("byte_fallback", [True, False])
def test_trained_sentencepiece_bpe(tmp_path, lines, byte_fallback):
    """A vocabulary that is not Llama 2's: a small BPE model trained here."""
    import sentencepiece as spm
    with open(os.path.join(lt.ROOT, "data", "tinyshakespeare", "input.txt"), encoding="utf-8") as f:
        text = [line for _, line in zip(range(4000), f)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=model, model_type="bpe", vocab_size=700,
        byte_fallback=byte_fallback, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, minloglevel=2)
    path = tmp_path / "shakespeare.model"
    path.write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(path))
    base = tiny_lamp(tmp_path / "base.lamp", sp.get_piece_size())
    lt.export(base, tmp_path / "m.lamp", "--tokenizer", path)
    assert lt.tokenizer_ids(tmp_path / "m.lamp", lines) == [sp.encode(x) for x in lines]
    lt.export(path, tmp_path / "tokenizer.bin")
    assert lt.tokenizer_ids(tmp_path / "tokenizer.bin", lines) == [sp.encode(x) for x in lines]
