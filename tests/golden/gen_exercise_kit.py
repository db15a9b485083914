"""gen_exercise_kit.py — the goldens of the course kit's re-implement exercises.

docs/exercises.md's re-implement exercises remove a function body of run.c,
train.c or tokenizer.c; tests/exercises/test_kit_*.c check the student's
version against the numbers below, which come from PyTorch, transformers and
sentencepiece (none of it lamp's code). Written to tests/golden/exercises/kit/:

  units.txt        one array per line, "name count v0 v1 ...": inputs and
                   PyTorch's outputs of each kernel (rmsnorm, RoPE, softmax,
                   one head's attention, SwiGLU, top-p's kept set, cross-entropy
                   forward and backward, RMSNorm backward, causal GQA attention
                   backward, three AdamW steps).
  gqa-untied.L<n>.logits   transformers' logits of tests/golden/forward's
                   gqa-untied model cut to its first n blocks (n = 0..3), for
                   its first 16 token ids (.logits layout: tests/golden/README.md).
                   A student's forward() run with config.n_layers = n must give
                   them: the first n that fails names the first wrong block.
  gqa-untied.cache transformers' key/value cache of those 16 positions
                   (float32, keys then values, lamp's layout (layer, kv head,
                   position, head_dim); keys in lamp's interleaved RoPE order).
  bpe.txt          sentencepiece's BPE vocabulary of 600 pieces trained on
                   bpe-text.txt (the first 300 lines of data/tinystories/valid.txt,
                   with lamp's options: tools/compare_tokenizer_training.py): a
                   line "piece HEX TEXT" for each learned piece from id 259 on
                   (its UTF-8 bytes in hex, '▁' as a space), then "encoded N
                   ids..." for sentencepiece's ids of the first 20 lines.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_exercise_kit
"""
import os
import shutil
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers.generation.logits_process import TopPLogitsWarper

import lampfile
from tests.golden import gen_forward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")),
                       "exercises", "kit")
N_POSITIONS = 16


class Units:
    def __init__(self):
        self.lines = []

    def add(self, name, values):
        a = np.asarray(values, dtype=np.float64).reshape(-1)
        self.lines.append(name + " " + str(a.size) + "".join(" %.9g" % v for v in a))

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


def t32(a):
    return torch.tensor(np.asarray(a, dtype=np.float32))


def kernels(u, rng):
    # RMSNorm: rows of ordinary size, a large one (1e3), a tiny one (1e-3,
    # where eps matters), dim 16; PyTorch's own torch.nn.functional.rms_norm.
    dim, eps = 16, 1e-5
    x = rng.normal(size=(4, dim)).astype(np.float32)
    x[1] *= 1e3
    x[2] *= 1e-3
    w = (1 + 0.3 * rng.normal(size=dim)).astype(np.float32)
    out = F.rms_norm(t32(x).double(), (dim,), t32(w).double(), eps)
    u.add("rmsnorm.x", x); u.add("rmsnorm.w", w); u.add("rmsnorm.eps", [eps]); u.add("rmsnorm.out", out)

    # RoPE as Meta's reference llama (model.py): pairs (x[2i], x[2i+1]) as
    # complex numbers times e^(i pos freq_i), freq_i = theta^(-2i/head_dim).
    n_heads, hd = 2, 8
    for k, (theta, positions) in enumerate([(10000.0, [0, 1, 7, 100]), (500000.0, [3, 63])]):
        for pos in positions:
            v = rng.normal(size=n_heads * hd).astype(np.float32)
            freqs = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
            cis = torch.polar(torch.ones(hd // 2, dtype=torch.float64), pos * freqs)
            z = torch.view_as_complex(t32(v).double().reshape(n_heads, hd // 2, 2).contiguous())
            rotated = torch.view_as_real(z * cis).reshape(-1)
            name = "rope.%d.%d" % (k, pos)
            u.add(name + ".in", v); u.add(name + ".theta", [theta]); u.add(name + ".out", rotated)

    # softmax: ordinary rows, one near 1000 (exp overflows float without the
    # max subtracted), one near -1000 (underflows to 0/0), one with -inf
    # entries (min-p writes them), one of length 1.
    rows = [rng.normal(size=10) * 3, 1000 + rng.normal(size=10), -1000 + rng.normal(size=10),
            np.where(np.arange(10) % 3 == 0, -np.inf, rng.normal(size=10)), np.array([2.5])]
    for i, r in enumerate(rows):
        r = r.astype(np.float32)
        u.add("softmax.%d.in" % i, r); u.add("softmax.%d.out" % i, torch.softmax(t32(r).double(), 0))

    # One head's attention over 5 cached positions (and over the first 1
    # only): torch.nn.functional.scaled_dot_product_attention.
    hd, n = 8, 5
    q = rng.normal(size=hd).astype(np.float32)
    keys = rng.normal(size=(n, hd)).astype(np.float32)
    values = rng.normal(size=(n, hd)).astype(np.float32)
    u.add("attention.q", q); u.add("attention.keys", keys); u.add("attention.values", values)
    for n_pos in (1, 3, 5):
        o = F.scaled_dot_product_attention(t32(q).double()[None, None, None], t32(keys[:n_pos]).double()[None, None],
                                           t32(values[:n_pos]).double()[None, None])
        u.add("attention.out.%d" % n_pos, o)

    # SwiGLU, silu(g) * u, with gates far out where exp overflows.
    g = np.concatenate([rng.normal(size=8) * 4, [100.0, -100.0, 88.0, -88.0, 0.0]]).astype(np.float32)
    up = rng.normal(size=g.size).astype(np.float32)
    u.add("swiglu.gate", g); u.add("swiglu.up", up)
    u.add("swiglu.out", F.silu(t32(g).double()) * t32(up).double())

    # Top-p: transformers' TopPLogitsWarper decides which tokens are kept
    # (the others get -inf); the probabilities come from float32 softmax.
    V = 40
    for k, topp in enumerate([0.9, 0.5, 0.99]):
        logits = (rng.normal(size=V) * 2).astype(np.float32)
        probs = torch.softmax(t32(logits), 0)
        warped = TopPLogitsWarper(top_p=topp)(None, t32(logits)[None].clone())[0]
        kept = np.nonzero(np.isfinite(warped.numpy()))[0]
        u.add("topp.%d.probs" % k, probs); u.add("topp.%d.p" % k, [topp]); u.add("topp.%d.kept" % k, kept)


def trainer(u, rng):
    # cross-entropy per row (reduction none), and the gradient of
    # scale * sum(losses) w.r.t. the logits; one row near 1000.
    N, V, scale = 4, 11, 0.25
    logits = (rng.normal(size=(N, V)) * 3).astype(np.float32)
    logits[2] += 1000
    targets = rng.integers(0, V, N)
    x = t32(logits).double().requires_grad_()
    losses = F.cross_entropy(x, torch.tensor(targets), reduction="none")
    (scale * losses.sum()).backward()
    u.add("ce.logits", logits); u.add("ce.targets", targets); u.add("ce.scale", [scale])
    u.add("ce.losses", losses.detach()); u.add("ce.grad", x.grad)

    # RMSNorm backward: autograd of y = rms_norm(x, w) against dy.
    N, dim, eps = 3, 12, 1e-5
    x = (rng.normal(size=(N, dim)) * [[1.0], [4.0], [0.2]]).astype(np.float32)
    w = (1 + 0.3 * rng.normal(size=dim)).astype(np.float32)
    dy = rng.normal(size=(N, dim)).astype(np.float32)
    xt, wt = t32(x).double().requires_grad_(), t32(w).double().requires_grad_()
    F.rms_norm(xt, (dim,), wt, eps).backward(t32(dy).double())
    u.add("rmsb.x", x); u.add("rmsb.w", w); u.add("rmsb.dy", dy); u.add("rmsb.eps", [eps])
    u.add("rmsb.dx", xt.grad); u.add("rmsb.dw", wt.grad)

    # Causal grouped-query attention backward: B 2, T 5, 4 query heads on 2
    # kv heads, head_dim 8; rows (B*T, heads*head_dim) as train.c keeps them.
    B, T, H, G, hd = 2, 5, 4, 2, 8
    q = rng.normal(size=(B, T, H * hd)).astype(np.float32)
    k = rng.normal(size=(B, T, G * hd)).astype(np.float32)
    v = rng.normal(size=(B, T, G * hd)).astype(np.float32)
    do = rng.normal(size=(B, T, H * hd)).astype(np.float32)
    qt, kt, vt = (t32(a).double().requires_grad_() for a in (q, k, v))
    Q = qt.view(B, T, H, hd).transpose(1, 2)
    K = kt.view(B, T, G, hd).transpose(1, 2).repeat_interleave(H // G, dim=1)
    Vv = vt.view(B, T, G, hd).transpose(1, 2).repeat_interleave(H // G, dim=1)
    o = F.scaled_dot_product_attention(Q, K, Vv, is_causal=True).transpose(1, 2).reshape(B, T, H * hd)
    o.backward(t32(do).double())
    u.add("attb.shape", [B, T, H, G, hd])
    for name, a in (("q", q), ("k", k), ("v", v), ("dout", do)):
        u.add("attb." + name, a)
    u.add("attb.dq", qt.grad); u.add("attb.dk", kt.grad); u.add("attb.dv", vt.grad)

    # AdamW: torch.optim.AdamW, three steps, on one tensor of every kind of
    # train.c's model (tests/exercises/test_kit_train.c builds that model):
    # matrices decay, RMSNorm gains do not.
    cfg = dict(dim=8, hidden_dim=16, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=4, vocab_size=12)
    lr, betas, eps, wd = 0.01, (0.9, 0.95), 1e-8, 0.1
    u.add("adamw.config", [cfg[k] for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                              "head_dim", "vocab_size")])
    u.add("adamw.hyper", [lr, betas[0], betas[1], eps, wd])
    names = ["token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight", "w1", "w2", "w3",
             "rms_final_weight", "wcls"]
    shapes = {"token_embedding": (12, 8), "rms_att_weight": (1, 8), "wq": (1, 8, 8), "wk": (1, 4, 8),
              "wv": (1, 4, 8), "wo": (1, 8, 8), "rms_ffn_weight": (1, 8), "w1": (1, 16, 8), "w2": (1, 8, 16),
              "w3": (1, 16, 8), "rms_final_weight": (8,), "wcls": (12, 8)}
    params = [torch.tensor(rng.normal(size=shapes[n]).astype(np.float32)).double().requires_grad_()
              for n in names]
    decay = [p for n, p in zip(names, params) if not n.startswith("rms")]
    gains = [p for n, p in zip(names, params) if n.startswith("rms")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": gains, "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    u.add("adamw.params0", torch.cat([p.detach().reshape(-1) for p in params]))
    for step in range(3):
        grads = [rng.normal(size=p.shape).astype(np.float32) * (10.0 ** (step - 1)) for p in params]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g).double()
        u.add("adamw.grads%d" % step, np.concatenate([g.reshape(-1) for g in grads]))
        opt.step()
    u.add("adamw.params3", torch.cat([p.detach().reshape(-1) for p in params]))
    u.add("adamw.m3", torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in params]))
    u.add("adamw.v3", torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in params]))


def model_goldens():
    """Logits of gqa-untied cut to n blocks, and its KV cache, from transformers."""
    c = gen_forward.CONFIGS["gqa-untied"]
    config = gen_forward.hf_config(c)
    model = gen_forward.random_model(config, c["seed"])
    ids = np.random.default_rng(c["seed"]).integers(0, c["vocab_size"], 64)[:N_POSITIONS]
    x = torch.tensor(ids[None], dtype=torch.long)
    layers = model.model.layers
    with torch.no_grad():
        out = model(x, use_cache=True)
        cache = out.past_key_values
        keys, values = [], []
        for l in range(c["n_layers"]):
            k = cache.layers[l].keys[0].numpy()      # (kv_heads, T, head_dim), HF's halves order
            v = cache.layers[l].values[0].numpy()
            perm = lampfile.rope_permutation(c["head_dim"])
            keys.append(k[:, :, perm])
            values.append(v)
        with open(os.path.join(OUT_DIR, "gqa-untied.cache"), "wb") as f:
            f.write(np.ascontiguousarray(np.stack(keys), dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(np.stack(values), dtype="<f4").tobytes())
        for n in range(c["n_layers"] + 1):
            model.model.layers = layers[:n]
            model.config.num_hidden_layers = n
            logits = model(x, use_cache=False).logits[0].numpy()
            lampfile.write_logits(os.path.join(OUT_DIR, "gqa-untied.L%d.logits" % n), ids, logits)
        model.model.layers = layers
        model.config.num_hidden_layers = c["n_layers"]
        # the full model must agree with tests/golden/forward/gqa-untied.logits
        golden = np.fromfile(os.path.join(ROOT, "tests", "golden", "forward", "gqa-untied.logits"), dtype="<f4",
                             offset=8 + 4 * 64).reshape(64, -1)[:N_POSITIONS]
        assert np.abs(golden - logits).max() < 1e-5, np.abs(golden - logits).max()


def bpe_golden():
    import sentencepiece as spm
    src = os.path.join(ROOT, "data", "tinystories", "valid.txt")
    with open(src, "rb") as f:
        lines = f.read().split(b"\n")[:300]
    text_path = os.path.join(OUT_DIR, "bpe-text.txt")
    with open(text_path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    tmp = tempfile.mkdtemp()
    try:
        spm.SentencePieceTrainer.train(
            input=text_path, model_prefix=os.path.join(tmp, "sp"), vocab_size=BPE_VOCAB, model_type="bpe",
            byte_fallback=True, character_coverage=0.9995, add_dummy_prefix=True,
            remove_extra_whitespaces=False, normalization_rule_name="identity", split_digits=False,
            max_sentence_length=1 << 30, minloglevel=2, num_threads=1)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "sp.model"))
        pieces = [sp.id_to_piece(i).replace("\u2581", " ") for i in range(259, sp.vocab_size())]
        encoded = [sp.encode(line.decode("utf-8")) for line in lines[:SEGMENTED_LINES]]
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(OUT_DIR, "bpe.txt"), "w", encoding="utf-8") as f:
        f.write("vocab_size %d\n" % BPE_VOCAB)
        for p in pieces:   # the piece's UTF-8 bytes in hex, then the piece to read
            f.write("piece %s %s\n" % (p.encode("utf-8").hex(), p.replace(" ", "\u2581")))
        for ids in encoded:
            f.write("encoded %d %s\n" % (len(ids), " ".join(str(i) for i in ids)))


BPE_VOCAB = 600
SEGMENTED_LINES = 20


def main():
    torch.set_num_threads(1)
    print("torch %s, transformers %s, numpy %s" % (torch.__version__, transformers.__version__, np.__version__))
    os.makedirs(OUT_DIR, exist_ok=True)
    u = Units()
    rng = np.random.default_rng(14)
    kernels(u, rng)
    trainer(u, rng)
    u.write(os.path.join(OUT_DIR, "units.txt"))
    model_goldens()
    bpe_golden()
    print("wrote", OUT_DIR)


if __name__ == "__main__":
    main()
