"""gen_sampler.py — goldens for lamp's sampler, from a plain Python reference.

This file is a second, independent implementation of the sampling rules (the
first is the C one); it was written from the specification below, not from
any C code, so agreement means both read the specification the same way.

The specification
-----------------
RNG, llama2.c's xorshift*: a uint64 state s, initialised to the raw seed.
    random_u32: s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
                return (s * 0x2545F4914F6CDD1D) >> 32        (all mod 2^64)
    random_f32: (random_u32() >> 8) / 16777216.0             (in [0, 1))

sample(logits, temperature, topp, topk):
    temperature == 0: the index of the largest logit (the first, on ties);
                      no random number is drawn.
    otherwise: probs = softmax(logits / temperature); coin = random_f32()
    (exactly one draw per token), then
    - 0 < topk < n: top-k, then top-p inside it (see sample_topk);
    - else 0 < topp < 1: llama2.c's top-p (see sample_topp);
    - else: inverse CDF over all tokens (see sample_cdf).
"Ordered by probability" always means descending, lower index first on ties.

Output: tests/golden/sampler.txt, three lines per case:
    case <temperature> <topp> <topk> <seed> <n_vocab> <n_draws>
    <n_vocab logits, "%.9g">
    <n_draws sampled ids>
The RNG state carries over from one draw to the next within a case; every
draw of a case uses the same logits.

Run from the repository root:
    ~/.cache/lamp/venv/bin/python -m tests.golden.gen_sampler
"""

import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", HERE), "sampler.txt")
N_DRAWS = 500
MASK64 = (1 << 64) - 1


class Rng:
    """llama2.c's xorshift* generator, with Python integers kept to 64 bits."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def u32(self):
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & MASK64
        s ^= s >> 27
        self.state = s
        return ((s * 0x2545F4914F6CDD1D) & MASK64) >> 32

    def f32(self):
        return (self.u32() >> 8) / 16777216.0  # 24 random bits: exact in float32 too


def by_probability(probs, candidates):
    """candidates (indices) ordered by probability, descending; ties: lower index first."""
    candidates = np.asarray(candidates)
    # a stable sort of -p keeps equal probabilities in index order
    return candidates[np.argsort(-probs[candidates], kind="stable")]


# Diagnostics only: for every draw, how close r came to the cdf boundaries
# around it (relative). A tiny value flags a draw that float32 arithmetic in
# C could legitimately resolve the other way.
closest_boundary = []


F32 = np.float32  # every quantity below is rounded to float32 after each operation


def pick(probs, order, r):
    """Walk `order` accumulating probability; the first token whose running
    cdf exceeds r (r < cdf), or the last one if rounding leaves r above all."""
    cdf = previous = F32(0.0)
    for i in order:
        previous, cdf = cdf, F32(cdf + probs[i])
        if r < cdf:
            break
    closest_boundary.append(float(min(cdf - r, r - previous if previous else 1.0) / cdf))
    return int(i)


def sample_cdf(probs, coin):
    """Plain sampling: tokens 0..n-1 in index order."""
    return pick(probs, np.arange(len(probs)), coin)


def sample_topp(probs, topp, coin):
    """llama2.c's nucleus sampling.

    Tokens below (1 - topp) / (n - 1) cannot be in the nucleus (if one were,
    the others could not add up to topp), so they are dropped before sorting.
    Keep the most likely tokens up to and including the first at which the
    cumulative probability exceeds topp; then sample among them in proportion
    to their probabilities: r = coin * (their total).
    """
    n = len(probs)
    cutoff = F32(F32(1.0) - topp) / F32(n - 1)
    order = by_probability(probs, np.nonzero(probs >= cutoff)[0])
    cum, last = F32(0.0), len(order) - 1
    for j, i in enumerate(order):
        cum = F32(cum + probs[i])
        if cum > topp:
            last = j
            break
    return pick(probs, order[:last + 1], F32(coin * cum))


def sample_topk(probs, topk, topp, coin):
    """The topk most likely tokens; if 0 < topp < 1, the nucleus within them
    (cumulative > topp * their total mass); then sample among those kept."""
    order = by_probability(probs, np.arange(len(probs)))[:topk]
    mass = F32(0.0)
    for i in order:
        mass = F32(mass + probs[i])
    keep = F32(topp * mass) if 0 < topp < 1 else F32(2.0)  # 2 > any mass: keep all
    cum, last = F32(0.0), len(order) - 1
    for j, i in enumerate(order):
        cum = F32(cum + probs[i])
        if cum > keep:
            last = j
            break
    return pick(probs, order[:last + 1], F32(coin * cum))


def softmax_f32(x):
    """softmax with float32 rounding after every step, summing left to right
    (as a plain C loop does). exp is computed in float64 and rounded, i.e. a
    correctly rounded float32 exp, which is what glibc's expf returns."""
    x = x.astype(np.float32)
    m = x.max()
    e = np.array([F32(np.exp(np.float64(F32(v - m)))) for v in x], dtype=np.float32)
    total = F32(0.0)
    for v in e:
        total = F32(total + v)
    return (e / total).astype(np.float32)


def sample(logits, temperature, topp, topk, rng):
    if temperature == 0:
        return int(np.argmax(logits))  # numpy's argmax returns the first maximum
    x = (np.asarray(logits, dtype=np.float32) / F32(temperature)).astype(np.float32)
    probs = softmax_f32(x)
    coin = F32(rng.f32())
    n = len(probs)
    if 0 < topk < n:
        return sample_topk(probs, topk, F32(topp), coin)
    if 0 < topp < 1:
        return sample_topp(probs, F32(topp), coin)
    return sample_cdf(probs, coin)


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

def make_logits(n_vocab):
    """Seeded N(0, 3^2) logits, rounded to float32 because that is what the C
    side holds; "%.9g" prints a float32 exactly, so both sides start equal."""
    return (3.0 * np.random.default_rng(n_vocab).standard_normal(n_vocab)).astype(np.float32)


# Ties, to pin down "the first maximum" and "lower index first".
TIED = np.array([1.0, 3.0, 0.5, 3.0, -1.0, 3.0, 2.0], dtype=np.float32)

BIG_SEED = 18446744073709551557  # the largest prime below 2^64

# (temperature, topp, topk, seed, n_vocab or "tied")
CASES = [
    (0, 0, 0, 42, 100),             # greedy
    (0, 0.9, 20, 42, 1000),         # greedy ignores top-p and top-k
    (0, 0, 0, 1, "tied"),           # greedy on a tie: the first maximum
    (1, 0, 0, 42, 7),               # plain sampling
    (1, 0, 0, 42, 100),
    (1, 0, 0, BIG_SEED, 1000),
    (0.7, 0, 0, 7, 100),            # temperature
    (0.7, 0, 0, 7, 1000),
    (1, 0.9, 0, 42, 100),           # llama2.c top-p
    (1, 0.9, 0, BIG_SEED, 1000),
    (1, 0.9, 0, 3, 7),
    (1.3, 0.5, 0, 123, 100),
    (1.3, 0.5, 0, 5, 1000),
    (1, 0.5, 0, 11, "tied"),        # top-p with tied probabilities
    (1, 0.9, 20, 42, 100),          # top-k, then top-p inside it
    (1, 0.9, 20, 99, 1000),
    (0.8, 0, 5, 7, 100),            # top-k alone
    (0.8, 0, 5, 2, 7),
    (0.8, 0, 5, BIG_SEED, 1000),
    (1, 0, 2, 11, "tied"),          # top-k with tied probabilities
    (1, 1, 0, 42, 100),             # p = 1 is no top-p: equals (1, 0, 0, 42, 100)
    (1, 0, 1, 42, 100),             # k = 1 is greedy
    (1, 0.9, 1, 9, 1000),           # k = 1 is greedy, whatever p says
    (1, 0.9, 100, 42, 100),         # k >= n is no top-k: equals (1, 0.9, 0, 42, 100)
    (1, 0, 1000, 42, 1000),         # k = n, plain: equals (1, 0, 0, 42, 1000)
    (1, 0, 0, 42, 1000),
    (1.5, 0.95, 0, 2024, 1000),
]


def run_case(temperature, topp, topk, seed, n_vocab):
    """-> (logits, the n_draws sampled ids)."""
    logits = TIED if n_vocab == "tied" else make_logits(n_vocab)
    # The C side holds temperature and topp as float; use the same values.
    t32, p32 = float(np.float32(temperature)), float(np.float32(topp))
    rng = Rng(seed)
    draws = [sample(logits.astype(np.float64), t32, p32, topk, rng) for _ in range(N_DRAWS)]
    return logits, draws


def check_against_llama2c():
    """Replay the stories karpathy/llama2.c's own run.c printed for two small
    checkpoints (tests/data/llama2c/README.md): with lampfile.forward for the
    logits and this file's sampler, every token must come out the same. This
    ties the specification above to llama2.c's actual behaviour."""
    import lampfile
    data = os.path.join(ROOT, "tests", "data", "llama2c")
    runs = [("gqa-shared", "greedy", 0, 0, 0), ("gqa-shared", "t1-p0.9-s42", 1.0, 0.9, 42),
            ("gqa-shared", "t0.8-p0-s7", 0.8, 0, 7), ("gqa-unshared", "greedy", 0, 0, 0),
            ("gqa-unshared", "t1-p0.9-s42", 1.0, 0.9, 42)]
    for model, name, temperature, topp, seed in runs:
        cfg, tensors = lampfile.read_llama2c(os.path.join(data, model + ".bin"))
        with open(os.path.join(data, f"{model}.{name}.txt")) as f:
            expected = [int(x) for x in re.findall(r"#(\d+)", f.read())]  # piece i is " #i"
        rng, ids = Rng(seed), [1]  # llama2.c starts from BOS ...
        for _ in range(200):  # ... runs -n 200 steps ...
            logits = lampfile.forward(cfg, tensors, ids)[-1].astype(np.float32)
            token = sample(logits.astype(np.float64), float(np.float32(temperature)),
                           float(np.float32(topp)), 0, rng)
            if token == 1:  # ... and stops when it samples BOS
                break
            ids.append(token)
        assert ids[1:] == expected, f"{model}.{name}: the reference disagrees with llama2.c"
    print(f"the reference reproduces llama2.c's output for all {len(runs)} runs in {data}")


def main():
    print(f"numpy {np.__version__}")
    results = {}
    lines = []
    for case in CASES:
        closest_boundary.clear()
        logits, draws = run_case(*case)
        results[case] = draws
        t, p, k, seed, _ = case
        lines.append(f"case {t} {p} {k} {seed} {len(logits)} {len(draws)}")
        lines.append(" ".join("%.9g" % v for v in logits))
        lines.append(" ".join(map(str, draws)))
        margin = f"{min(closest_boundary):.1e}" if closest_boundary else "-"
        print(f"case t={t} p={p} k={k} seed={seed} n={len(logits)}: "
              f"{len(set(draws))} distinct ids, first {draws[:5]}, "
              f"closest cdf boundary {margin}")

    # Sanity checks of the specification itself.
    greedy = results[(0, 0, 0, 42, 100)][0]
    assert set(results[(1, 0, 1, 42, 100)]) == {greedy}, "k = 1 must be greedy"
    assert set(results[(1, 0.9, 1, 9, 1000)]) == {int(np.argmax(make_logits(1000)))}
    assert set(results[(0, 0, 0, 1, "tied")]) == {1}, "greedy must pick the first maximum"
    assert results[(1, 1, 0, 42, 100)] == results[(1, 0, 0, 42, 100)], "p = 1 is no top-p"
    assert results[(1, 0.9, 100, 42, 100)] == results[(1, 0.9, 0, 42, 100)], "k >= n"
    assert results[(1, 0, 1000, 42, 1000)] == results[(1, 0, 0, 42, 1000)], "k = n"
    assert set(results[(1, 0, 2, 11, "tied")]) == {1, 3}, "top-2 of a 3-way tie: ids 1, 3"

    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(CASES)} cases")
    check_against_llama2c()


if __name__ == "__main__":
    main()
