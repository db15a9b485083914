"""gen_exercise_geglu.py — goldens for the GeGLU exercise (docs/exercises.md).

The exercise: a lamp model whose header sets flags bit 2 computes its
feed-forward with GELU (tanh approximation) where Llama has SiLU,

    h = gelu_tanh(w1 x) * (w3 x),
    gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),

as Gemma does (transformers' hidden_act "gelu_pytorch_tanh"). run.c must run
such a model and train.c must train it (forward, backward, checkpoints).

One small model is built as a Hugging Face LlamaForCausalLM with
hidden_act = "gelu_pytorch_tanh" (LlamaMLP computes
down_proj(act_fn(gate_proj(x)) * up_proj(x)) with act_fn = ACT2FN[hidden_act],
so this is exactly GeGLU) and random weights, and written to
tests/golden/exercises/geglu/:

  geglu.lamp     the model in lamp format, header flags = 0x4 (bit 2: GELU)
  geglu.logits   transformers' logits at 64 positions, for run.c
                 (gen_forward.py's .logits layout)
  geglu.grads    for one window of 64 + 1 tokens: the mean cross-entropy
                 loss, the logits and the gradient of the loss with respect
                 to every parameter (PyTorch autograd), in lamp's layout, for
                 train.c (gen_train.py's .grads layout)

The layouts, the weight recipe and the conversion are gen_forward.py's and
gen_train.py's, imported from them, so check_goldens.py compares these files
like theirs. Two differences from their models, both on purpose:
  - w1 (the gate) is 3 times larger, N(0, 0.3^2): the gate's inputs then
    spread over about [-7, 6] instead of [-2, 2], where GELU differs most
    from SiLU and from exact (erf) GELU, so the test tells them apart
    (the script measures and prints by how much);
  - lampfile.hf_to_lamp, like export.py, refuses any activation but SiLU (it
    knows no flag for another one). The weights of a GeGLU Llama are
    converted exactly like a SwiGLU one's, so this script converts them
    under a SiLU copy of the config and then sets flags bit 2 in the
    written header itself.

Cross-checks before anything is written: an independent float64 numpy
forward pass (below: lampfile.forward's lamp-convention model with GELU in
the feed-forward) on the tensors read back from geglu.lamp reproduces
transformers' logits; the same PyTorch computation in float64 says how
precise the float32 goldens are.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_exercise_geglu
"""

import copy
import os
import struct

import numpy as np
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
import lampfile
from tests.golden.gen_forward import hf_config, random_model
from tests.golden.gen_train import flat, grads_in_lamp_layout, mean_loss, write_golden

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", HERE), "exercises", "geglu")

FLAG_GELU_TANH = 1 << 2   # lamp header flags, bit 2: the exercise's addition to docs/format.md 1.1
FLAGS_OFFSET = 56         # where the uint32 flags sit in the lamp header

# seq_len 64: run.c's test feeds 64 positions, train.c's batch is one window of 64.
# hidden_dim 72: n * hidden_dim is not a multiple of 16 for odd chunk sizes n.
CONFIG = dict(dim=32, n_heads=4, n_kv_heads=2, head_dim=8, hidden_dim=72, n_layers=2,
              vocab_size=300, seq_len=64, rope_theta=10000.0, norm_eps=1e-5, tied=False, seed=11)
GATE_SCALE = 3.0   # w1 ~ N(0, (3 * 0.1)^2), see the docstring
N_POSITIONS = 64   # geglu.logits
B = 1              # windows in geglu.grads
T = CONFIG["seq_len"]
TOLERANCE = 5e-5   # max |transformers - numpy| allowed; logits are of size ~1..10
C_TOLERANCE = 1e-4  # tests/exercises/test_geglu.c's bound on run.c's and train.c's logits


def gelu_tanh(x):
    """GELU with the tanh approximation (Hendrycks and Gimpel, 2016)."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def geglu_forward(cfg, t, ids):
    """Logits (T, vocab_size) in float64: lampfile.forward (lamp's conventions:
    interleaved RoPE on the permuted wq/wk, grouped-query attention) with
    GeGLU instead of SwiGLU in the feed-forward."""
    return lampfile.forward(cfg, t, ids, activation=gelu_tanh)


def geglu_model(config, seed, hidden_act="gelu_pytorch_tanh"):
    """gen_forward.py's random_model with the given activation and a gate 3x larger."""
    config = copy.deepcopy(config)
    config.hidden_act = hidden_act
    model = random_model(config, seed)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate_proj.weight.mul_(GATE_SCALE)
    return model


def as_silu(config):
    """A copy of config with hidden_act "silu": lampfile.hf_to_lamp (and with
    it grads_in_lamp_layout) accepts only SiLU models, and the weights (and
    gradients) of a GeGLU model convert exactly the same way."""
    config = copy.deepcopy(config)
    config.hidden_act = "silu"
    return config


def set_gelu_flag(path):
    """Set flags bit 2 in the header of the lamp file at path."""
    with open(path, "r+b") as f:
        f.seek(FLAGS_OFFSET)
        (flags,) = struct.unpack("<I", f.read(4))
        f.seek(FLAGS_OFFSET)
        f.write(struct.pack("<I", flags | FLAG_GELU_TANH))


def main():
    torch.set_num_threads(1)  # one thread: the same float sums, the same bytes, every run
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    c = CONFIG
    config = hf_config(c)
    config.hidden_act = "gelu_pytorch_tanh"
    model = geglu_model(config, c["seed"])
    act = model.model.layers[0].mlp.act_fn
    assert type(act).__name__ == "GELUTanh", type(act)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    assert torch.allclose(act(x), torch.from_numpy(gelu_tanh(x.numpy())), rtol=0, atol=1e-12)

    cfg, tensors = lampfile.hf_to_lamp(model, as_silu(config))
    lamp_path = os.path.join(OUT_DIR, "geglu.lamp")
    lampfile.write_lamp(lamp_path, cfg, tensors, lampfile.synthetic_tokenizer(cfg["vocab_size"]))
    set_gelu_flag(lamp_path)
    cfg2, tensors2, _ = lampfile.read_lamp(lamp_path)   # (read_lamp does not know bit 2; it ignores it)
    with open(lamp_path, "rb") as f:
        f.seek(FLAGS_OFFSET)
        assert struct.unpack("<I", f.read(4))[0] == FLAG_GELU_TANH

    # --- run.c: logits at 64 positions --------------------------------------
    ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], N_POSITIONS)
    with torch.no_grad():
        logits = model(torch.tensor(ids[None], dtype=torch.long)).logits[0].numpy()
    diff = np.abs(geglu_forward(cfg2, tensors2, ids) - logits).max()
    assert diff < TOLERANCE, f"numpy and transformers logits differ by {diff}"
    lampfile.write_logits(os.path.join(OUT_DIR, "geglu.logits"), ids, logits)
    gate = np.concatenate([h.detach().numpy().reshape(-1) for h in gate_inputs(model, ids)])
    print(f"geglu.lamp, geglu.logits: max |transformers - numpy| {diff:.2e}, logit std {logits.std():.2f}, "
          f"gate inputs in [{gate.min():.1f}, {gate.max():.1f}], std {gate.std():.2f}")
    # what a wrong activation (SiLU, or exact erf GELU) does to the logits:
    # at least 10 times the C test's tolerance, so the test tells them apart
    for wrong in ("silu", "gelu"):
        with torch.no_grad():
            other = geglu_model(config, c["seed"], wrong)(torch.tensor(ids[None])).logits[0].numpy()
        change = np.abs(other - logits).max()
        print(f"  the same weights with hidden_act {wrong!r}: max |logit change| {change:.2e}")
        assert change > 10 * C_TOLERANCE, f"{wrong}: the test could not tell it from GeGLU"

    # --- train.c: loss, logits and gradients of one window -------------------
    windows = np.random.default_rng(c["seed"] + 1).integers(0, c["vocab_size"], (B, T + 1))
    model.zero_grad()
    loss, train_logits = mean_loss(model, windows)
    loss.backward()
    grads = grads_in_lamp_layout(model, as_silu(config))
    train_logits = train_logits.detach().numpy().reshape(B * T, -1)
    model64 = copy.deepcopy(model).double()
    model64.zero_grad()
    loss64, logits64 = mean_loss(model64, windows)
    loss64.backward()
    grads64 = grads_in_lamp_layout(model64, as_silu(config))
    print(f"float32 vs float64 PyTorch: loss rel {abs(loss.item() - loss64.item()) / loss64.item():.1e}, "
          f"logits abs {np.abs(train_logits - logits64.detach().numpy().reshape(B * T, -1)).max():.1e}")
    for name in grads:
        err = np.abs(grads[name] - grads64[name]).max() / np.abs(grads64[name]).max()
        print(f"  grad {name:17s} max |g| {np.abs(grads64[name]).max():.2e}, float32 error / max |g| {err:.1e}")
    diff = np.abs(geglu_forward(cfg2, tensors2, windows[0, :-1]) - train_logits[:T]).max()
    assert diff < TOLERANCE, f"numpy and transformers logits differ by {diff}"
    write_golden(os.path.join(OUT_DIR, "geglu.grads"), [B, T, c["vocab_size"], *windows.reshape(-1)],
                 np.concatenate([[loss.item()], train_logits.reshape(-1), flat(cfg, grads)]))
    print(f"geglu.grads: loss {loss.item():.6f}, {sum(g.size for g in grads.values())} gradient values")


def gate_inputs(model, ids):
    """The inputs of the GELU in every layer (w1 @ rmsnorm(x)), for the printout."""
    seen = []
    hooks = [layer.mlp.gate_proj.register_forward_hook(lambda m, i, o: seen.append(o))
             for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor(ids[None], dtype=torch.long))
    for h in hooks:
        h.remove()
    return seen


if __name__ == "__main__":
    main()
