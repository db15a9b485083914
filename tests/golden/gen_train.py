"""gen_train.py — training goldens for train.c from PyTorch autograd and torch.optim.AdamW.

One small model (grouped-query attention, separate classifier, rope_theta !=
10000, n_heads * head_dim != dim) is built as a Hugging Face LlamaForCausalLM
with random weights and written as a lamp file. PyTorch then computes, on CPU
in float32 with one thread:

  tiny.grads   for one batch of token windows: the mean cross-entropy loss,
               the logits, and the gradient of the loss with respect to
               every parameter (autograd), in lamp's layout;
  tiny.adamw   5 optimizer steps of torch.optim.AdamW with gradient
               accumulation (2 micro-batches per step), global-norm gradient
               clipping, linear warmup then cosine decay, and weight decay on
               the weight matrices only: the hyper-parameters, the batches,
               each step's loss, learning rate and gradient norm, and the
               final weights.

train.c must reproduce them (tests/test_train.c). The lr schedule and the
parameter groups below mirror train.c exactly; the update itself is
torch.optim.AdamW's own.

Both files have one layout: int32 n_ints, int32 ints[n_ints], then float32
values to the end of the file (tests/golden/README.md says what they hold).

Cross-checks before anything is written: the same model in float64 gives the
reference for how precise the float32 goldens themselves are (printed), and
lampfile.forward (float64 numpy, lamp's conventions) on the written .lamp
file must reproduce Hugging Face's logits, which proves the conversion.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_train
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
import lampfile
from tests.golden.gen_forward import hf_config, random_model  # (one model recipe for all goldens)

# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", HERE), "train")

CONFIG = dict(dim=64, n_heads=4, n_kv_heads=2, head_dim=12, hidden_dim=96, n_layers=2,
              vocab_size=300, seq_len=16, rope_theta=50000.0, norm_eps=1e-5, tied=False, seed=7)
B = 3          # sequences in the gradient batch
T = CONFIG["seq_len"]

# The optimizer run: float32-representable values, so C and Python hold the same numbers.
ADAMW = dict(steps=5, accum=2, batch=2, warmup=2, lr=0.01, min_lr=0.001, weight_decay=0.1,
             beta1=0.9, beta2=0.95, eps=1e-8, clip=7.0)
for key in ("lr", "min_lr", "weight_decay", "beta1", "beta2", "eps", "clip"):
    ADAMW[key] = float(np.float32(ADAMW[key]))


def learning_rate(step, h):
    """train.c's schedule: linear warmup reaching lr at the last warmup step,
    then a half cosine reaching min_lr at the last step (step counts from 0)."""
    if step < h["warmup"]:
        return h["lr"] * (step + 1) / h["warmup"]
    progress = min(1.0, (step - h["warmup"] + 1) / (h["steps"] - h["warmup"]))
    return h["min_lr"] + 0.5 * (h["lr"] - h["min_lr"]) * (1.0 + math.cos(math.pi * progress))


def mean_loss(model, windows):
    """Mean cross-entropy over every position of windows (B, T + 1) -> (loss, logits)."""
    ids = torch.tensor(windows, dtype=torch.long)
    logits = model(ids[:, :-1]).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    return loss, logits


def run_adamw(model, batches, h, verbose=False):
    """h["steps"] steps of torch.optim.AdamW as train.c takes them: the gradient
    of each step's mean loss over h["accum"] micro-batches, clipped to a global
    norm of h["clip"], lr from learning_rate(), weight decay on the weight
    matrices only (not the RMSNorm gains). -> (model, losses, lrs, norms)."""
    decay = [p for n, p in model.named_parameters() if not n.endswith("norm.weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    assert all(p.dim() == 2 for p in decay) and all(p.dim() == 1 for p in no_decay)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": h["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    losses, lrs, norms = [], [], []
    for step in range(h["steps"]):
        opt.zero_grad()
        total = 0.0
        for micro in range(h["accum"]):
            loss, _ = mean_loss(model, batches[step, micro])
            (loss / h["accum"]).backward()   # the gradient of the step's mean loss
            total += loss.item() / h["accum"]
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), h["clip"])
        lr = learning_rate(step, h)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        losses.append(total)
        lrs.append(lr)
        norms.append(norm.item())
        if verbose:
            print(f"  step {step}: loss {total:.6f}, lr {lr:.6f}, grad norm {norm.item():.4f}"
                  f"{' (clipped)' if norm.item() > h['clip'] else ''}")
    return model, losses, lrs, norms


def grads_in_lamp_layout(model, config):
    """Every parameter's .grad, converted like the weights (hf_to_lamp permutes
    the rows of wq and wk; a gradient is permuted the same way as its weight)."""
    grads = {name: p.grad for name, p in model.named_parameters()}
    _, tensors = lampfile.hf_to_lamp(grads, config)
    return tensors


def flat(cfg, tensors):
    """All tensors in lamp's order as one float32 vector: train.c's layout in memory."""
    return np.concatenate([tensors[n].reshape(-1) for n in lampfile.LAMP_TENSOR_ORDER
                           if n in lampfile.tensor_shapes(cfg)]).astype("<f4")


def write_golden(path, ints, floats):
    """int32 n_ints, int32 ints[n_ints], float32 floats[...]."""
    ints = np.asarray(ints, dtype="<i4").reshape(-1)
    with open(path, "wb") as f:
        f.write(np.asarray([len(ints)], dtype="<i4").tobytes())
        f.write(ints.tobytes())
        f.write(np.asarray(floats, dtype="<f4").reshape(-1).tobytes())


def main():
    torch.set_num_threads(1)  # one thread: the same float sums, the same bytes, every run
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    os.makedirs(OUT_DIR, exist_ok=True)
    c = CONFIG
    config = hf_config(c)
    model = random_model(config, c["seed"])
    cfg, tensors = lampfile.hf_to_lamp(model, config)
    lampfile.write_lamp(os.path.join(OUT_DIR, "tiny.lamp"), cfg, tensors,
                        lampfile.synthetic_tokenizer(cfg["vocab_size"]))
    rng = np.random.default_rng(c["seed"])

    # --- gradients of one batch -------------------------------------------
    windows = rng.integers(0, c["vocab_size"], (B, T + 1))
    model.zero_grad()
    loss, logits = mean_loss(model, windows)
    loss.backward()
    grads = grads_in_lamp_layout(model, config)
    logits = logits.detach().numpy().reshape(B * T, -1)

    # how precise is float32 PyTorch itself? the same in float64
    model64 = copy.deepcopy(model).double()
    model64.zero_grad()
    loss64, logits64 = mean_loss(model64, windows)
    loss64.backward()
    grads64 = grads_in_lamp_layout(model64, config)
    print(f"float32 vs float64 PyTorch: loss rel {abs(loss.item() - loss64.item()) / loss64.item():.1e}, "
          f"logits abs {np.abs(logits - logits64.detach().numpy().reshape(B * T, -1)).max():.1e}")
    for name in grads:
        err = np.abs(grads[name] - grads64[name]).max() / np.abs(grads64[name]).max()
        print(f"  grad {name:17s} max |g| {np.abs(grads64[name]).max():.2e}, "
              f"float32 error / max |g| {err:.1e}")
    # the conversion, checked on what was written
    cfg2, tensors2, _ = lampfile.read_lamp(os.path.join(OUT_DIR, "tiny.lamp"))
    for b in range(B):
        diff = np.abs(lampfile.forward(cfg2, tensors2, windows[b, :-1]) - logits[b * T:(b + 1) * T]).max()
        assert diff < 5e-5, f"numpy and HF logits differ by {diff}"
    write_golden(os.path.join(OUT_DIR, "tiny.grads"), [B, T, c["vocab_size"], *windows.reshape(-1)],
                 np.concatenate([[loss.item()], logits.reshape(-1), flat(cfg, grads)]))
    print(f"tiny.grads: loss {loss.item():.6f}, {sum(g.size for g in grads.values())} gradient values")

    # --- AdamW -------------------------------------------------------------
    h = ADAMW
    batches = rng.integers(0, c["vocab_size"], (h["steps"], h["accum"], h["batch"], T + 1))
    model, losses, lrs, norms = run_adamw(random_model(config, c["seed"]), batches, h, verbose=True)
    # the float32 run's own rounding, measured against the same run in float64
    model64, losses64, _, _ = run_adamw(random_model(config, c["seed"]).double(), batches, h)
    _, final = lampfile.hf_to_lamp(model, config)
    _, final64 = lampfile.hf_to_lamp(model64, config)
    print(f"float32 vs float64 AdamW: losses rel {max(abs(a - b) / b for a, b in zip(losses, losses64)):.1e}, "
          f"final weights abs {max(np.abs(final[n] - final64[n]).max() for n in final):.1e}")
    _, final = lampfile.hf_to_lamp(model, config)
    ints = [h["steps"], h["accum"], h["batch"], T, h["warmup"], *batches.reshape(-1)]
    floats = [h["lr"], h["min_lr"], h["weight_decay"], h["beta1"], h["beta2"], h["eps"], h["clip"],
              *losses, *lrs, *norms]
    write_golden(os.path.join(OUT_DIR, "tiny.adamw"), ints, np.concatenate([floats, flat(cfg, final)]))
    print(f"tiny.adamw: {h['steps']} steps, final loss {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
