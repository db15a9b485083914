#!/usr/bin/env python3
"""bench.py — `make bench`: how fast ./run is, next to what this machine allows.

    ~/.cache/lamp/venv/bin/python tools/bench.py [--out build/bench] [--runs 5]

1. Random-weight models of llama2.c's TinyStories shapes (stories15M, 42M,
   110M), float32 and int8, made once with tools/random_model.py and kept in
   the output folder (outside git).
2. The machine's ceilings, from tools/roofline.c: read bandwidth and FMA
   peak, for 1 and 2 threads.
3. For every model, weight type and thread count (1, 2):
     decode   tok/s generating 200 tokens after BOS (greedy), one at a time
     prefill  tok/s processing a 200-token prompt (run -i PROMPT -n 1)
     eval     tok/s of -m eval on the first stories of data/tinystories/valid.txt
   Each is run --runs times. The runs are interleaved (run 1 of every
   variant, then run 2 of every variant, ...), so a busy moment of a shared
   machine slows all variants alike instead of one; before each run it
   waits (--quiet-wait, up to 60 s) for other processes to leave the CPUs
   mostly idle, and records how busy they were. The table gives medians.
4. The bounds: decode cannot beat bandwidth / bytes read per token (every
   weight, plus the KV cache); prefill and eval cannot beat peak / FLOPs per
   token (the matmuls, attention). Each speed is also given as a fraction of
   its bound.

Writes <out>/results.json (every run, the medians, the bounds) and
<out>/table.md; tools/plot_roofline.py draws <out>/roofline.png from the json.
Timing lives here and only here: no test depends on speed.
"""
import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tools.random_model import SHAPES  # (dim, hidden, layers, heads, kv heads, vocab, seq_len)

PROMPT_TOKENS = 200   # including BOS
DECODE_TOKENS = 200
EVAL_BYTES = 4000     # the first stories of valid.txt, up to about this many bytes
THREADS = (1, 2)
CHUNK = 128           # run.c's CHUNK: positions that share one read of the weights


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def model_path(out, shape, q8):
    return os.path.join(out, f"{shape}{'.q8' if q8 else ''}.lamp")


def make_models(out, shapes, python):
    for shape in shapes:
        for q8 in (False, True):
            path = model_path(out, shape, q8)
            if not os.path.exists(path):
                cmd = [python, "-m", "tools.random_model", shape, path]  # a module of the root
                print(sh(cmd + (["--q8"] if q8 else []), cwd=ROOT).stdout.strip(), flush=True)


def stats(shape, q8):
    """Weights, bytes read and FLOPs per token of a stories model (shared classifier)."""
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = SHAPES[shape]
    head_dim = dim // heads
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    layer_params = dim * q_dim + 2 * dim * kv_dim + q_dim * dim + 3 * dim * hidden
    matrix_params = layers * layer_params          # without the classifier
    classifier = vocab * dim                       # = the embedding table (shared)
    gs = 0
    if q8:
        gs = 64
        while dim % gs or q_dim % gs or hidden % gs:
            gs //= 2
    weight_bytes = (matrix_params + classifier) * ((1 + 4 / gs) if q8 else 4)
    weight_bytes += 4 * (2 * layers + 1) * dim     # RMSNorm gains
    return dict(dim=dim, layers=layers, q_dim=q_dim, kv_dim=kv_dim, vocab=vocab, seq_len=seq_len,
                group_size=gs, matrix_params=matrix_params, classifier_params=classifier,
                weight_bytes=weight_bytes)


def kv_bytes(s, positions):
    """Bytes of the KV cache one token's attention reads at these positions (average)."""
    return 2 * s["layers"] * s["kv_dim"] * 4 * positions


def attention_flops(s, positions):
    return 4 * s["layers"] * s["q_dim"] * positions   # q.k and a.v for every position seen


def make_prompt(model):
    """Words from valid.txt that make exactly PROMPT_TOKENS tokens with BOS (or
    as close as the tokenizer allows; ./run reports the true count)."""
    with open(os.path.join(ROOT, "data", "tinystories", "valid.txt"), encoding="utf-8") as f:
        words = f.read(20000).split()
    tokenizer = os.path.join(ROOT, "tokenizer")

    def count(text):
        return len(sh([tokenizer, "encode", "-z", model, "--bos"], input=text + "\n").stdout.split())

    lo, hi = 1, len(words)
    while lo < hi:   # the most words that fit
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= PROMPT_TOKENS:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    for k in range(1, len(words[lo]) + 1):   # then part of the next word
        if count(text + " " + words[lo][:k]) == PROMPT_TOKENS:
            return text + " " + words[lo][:k]
    return text


def make_eval_text(out):
    with open(os.path.join(ROOT, "data", "tinystories", "valid.txt"), encoding="utf-8") as f:
        text = f.read(EVAL_BYTES * 2)
    cut = text.rfind("\n\n", 0, EVAL_BYTES)
    path = os.path.join(out, "eval.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:cut + 1])
    return path


def cpu_busy(seconds=0.25):
    """Fraction of the machine's CPU time used by others over a short moment
    (nothing of ours runs then), from /proc/stat; 0 where it cannot be read."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)   # idle + iowait, total
    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
        return 1 - (i1 - i0) / max(1, t1 - t0)
    except OSError:
        return 0.0


def wait_until_quiet(limit, max_wait):
    """On a shared machine, wait (up to max_wait s) until others use less than
    `limit` of the CPUs; return the last fraction seen."""
    waited, busy = 0.0, cpu_busy()
    while busy > limit and waited < max_wait:
        time.sleep(1.0)
        waited += 1.25
        busy = cpu_busy()
    return busy


def run_once(kind, model, threads, prompt, eval_path, run=os.path.join(ROOT, "run")):
    base = [run, model, "--threads", str(threads)]
    if kind == "decode":
        err = sh(base + ["-t", "0", "-n", str(DECODE_TOKENS)]).stderr
        m = re.search(r"decode (\d+) tokens, ([\d.]+) tok/s", err)
    elif kind == "prefill":
        err = sh(base + ["-t", "0", "-n", "1", "-i", prompt]).stderr
        m = re.search(r"prompt (\d+) tokens, ([\d.]+) tok/s", err)
    else:
        err = sh(base + ["-m", "eval", "-f", eval_path]).stderr
        m = re.search(r"eval (\d+) tokens, ([\d.]+) tok/s", err)
    if not m:
        raise RuntimeError(f"{kind}: no speed in {err!r}")
    return int(m.group(1)), float(m.group(2))


def read_bandwidth_now(out, threads):
    """GB/s that `threads` threads read right now (tools/roofline.c --read-only)."""
    line = sh([os.path.join(out, "roofline"), "--threads", str(threads), "--read-only"]).stdout.split()
    return float(line[2])


def read_roofline(out):
    exe = os.path.join(out, "roofline")
    lines = sh([exe, "--threads", str(max(THREADS))]).stdout.split("\n")
    roof = {}
    for line in lines:
        if line.strip():
            name, threads, value = line.split()
            roof.setdefault(name, {})[int(threads)] = float(value)
    return roof


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 5)))
    ap.add_argument("--models", default=os.environ.get("BENCH_MODELS", "stories15M,stories42M,stories110M"))
    ap.add_argument("--python", default=sys.executable, help="the Python that has numpy (for random_model.py)")
    ap.add_argument("--quiet-wait", type=float, default=float(os.environ.get("BENCH_QUIET_WAIT", 60)),
                    help="before each run, wait up to this many seconds for other processes to use "
                         "< 15%% of the CPUs [60]; 0 = never wait")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    shapes = args.models.split(",")
    make_models(args.out, shapes, args.python)
    eval_path = make_eval_text(args.out)

    print("measuring the machine (tools/roofline.c) ...", flush=True)
    roof_before = read_roofline(args.out)

    variants = [(shape, q8, threads, kind) for shape in shapes for q8 in (False, True)
                for threads in THREADS for kind in ("decode", "prefill", "eval")]
    prompts = {shape: make_prompt(model_path(args.out, shape, False)) for shape in shapes}
    runs = {v: [] for v in variants}
    busy = {v: [] for v in variants}
    bandwidth = {v: [] for v in variants}   # GB/s measured beside each decode run
    counts = {}
    t0 = time.time()
    for r in range(args.runs):
        print(f"run {r + 1} of {args.runs} ({len(variants)} variants, {time.time() - t0:.0f} s so far)", flush=True)
        for v in variants:
            shape, q8, threads, kind = v
            busy[v].append(round(wait_until_quiet(0.15, args.quiet_wait) if args.quiet_wait > 0 else cpu_busy(), 2))
            before = read_bandwidth_now(args.out, threads) if kind == "decode" else None
            n, speed = run_once(kind, model_path(args.out, shape, q8), threads, prompts[shape], eval_path)
            runs[v].append(speed)
            if kind == "decode":   # the better of just before and just after: the ceiling at that moment
                bandwidth[v].append(max(before, read_bandwidth_now(args.out, threads)))
            counts[v] = n
    print("measuring the machine again ...", flush=True)
    roof_after = read_roofline(args.out)
    # the bound uses the better of the two measurements: a ceiling, not a typical value
    roof = {k: {t: max(roof_before[k][t], roof_after.get(k, {}).get(t, 0)) for t in roof_before[k]}
            for k in roof_before}
    fma_key = "fma512_GFLOPs" if "fma512_GFLOPs" in roof else "fma256_GFLOPs"

    rows = []
    for v in variants:
        shape, q8, threads, kind = v
        s = stats(shape, q8)
        n = counts[v]
        # FLOPs and bytes of memory traffic per token, as modelled here:
        #   decode:  every weight and the KV cache so far, for each token (the
        #            stream of weights evicts the cache from L2/L3 every token)
        #   prefill: the weights once per chunk of CHUNK positions; the
        #            classifier for the last position only; a layer's KV
        #            cache is read by the whole chunk while in cache: not counted
        #   eval:    like prefill, with the classifier for every position;
        #            documents are ~100-300 tokens, so chunks are about half full
        if kind == "decode":
            avg_pos = (DECODE_TOKENS + 1) / 2
            flops = 2 * (s["matrix_params"] + s["classifier_params"]) + attention_flops(s, avg_pos)
            traffic = s["weight_bytes"] + kv_bytes(s, avg_pos)
        elif kind == "prefill":
            avg_pos = (n + 1) / 2
            flops = 2 * (s["matrix_params"] + s["classifier_params"] / n) + attention_flops(s, avg_pos)
            traffic = s["weight_bytes"] * math.ceil(n / CHUNK) / n
        else:
            avg_pos = min(s["seq_len"], 200) / 2
            flops = 2 * (s["matrix_params"] + s["classifier_params"]) + attention_flops(s, avg_pos)
            traffic = s["weight_bytes"] / (CHUNK / 2)
        fractions = None
        if kind == "decode":
            bound = roof["read_GBps"][threads] * 1e9 / traffic
            limit = "bandwidth"
            # each run against the bandwidth measured beside it
            fractions = [x * traffic / (bw * 1e9) for x, bw in zip(runs[v], bandwidth[v])]
        else:
            peak = (2 * roof["int8_avx2_GMACs"][threads] if q8 and "int8_avx2_GMACs" in roof
                    else roof[fma_key][threads]) * 1e9
            bound = peak / flops
            limit = "int8 peak" if q8 else "FMA peak"
        med = statistics.median(runs[v])
        rows.append(dict(model=shape, weights="int8" if q8 else "fp32", threads=threads, kind=kind,
                         tokens=n, runs=runs[v], busy_before=busy[v], median=med, bound=bound,
                         fraction=med / bound, limit=limit, bandwidth_beside=bandwidth[v],
                         fractions_beside=fractions,
                         fraction_beside=statistics.median(fractions) if fractions else None,
                         flops_per_token=flops, bytes_per_token=traffic, weight_bytes=s["weight_bytes"],
                         group_size=s["group_size"]))

    machine = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        machine = f"{names[0]}, {len(names)} CPUs" if names else machine
    except OSError:
        pass
    result = dict(machine=machine, date=time.strftime("%Y-%m-%d %H:%M"),
                  runs=args.runs, roofline_before=roof_before, roofline_after=roof_after, roofline=roof,
                  fma_key=fma_key, rows=rows, load=os.getloadavg())
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)

    lines = ["| model | weights | threads | decode tok/s | % of bw bound, bw beside each run | % of bw bound, roofline's bw "
             "| prefill tok/s | % of FLOP bound | prefill / decode | eval tok/s | % of FLOP bound |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["model"], r["weights"], r["threads"], r["kind"]): r for r in rows}
    for shape in shapes:
        for w in ("fp32", "int8"):
            for t in THREADS:
                d, p, e = (by[(shape, w, t, k)] for k in ("decode", "prefill", "eval"))
                lines.append(f"| {shape} | {w} | {t} | {d['median']:.1f} | {100 * d['fraction_beside']:.0f}% "
                             f"| {100 * d['fraction']:.0f}% "
                             f"| {p['median']:.0f} | {100 * p['fraction']:.0f}% | {p['median'] / d['median']:.1f}x "
                             f"| {e['median']:.0f} | {100 * e['fraction']:.0f}% |")
    bounds = [f"read bandwidth {roof['read_GBps'][1]:.1f} GB/s (1 thread), {roof['read_GBps'][max(THREADS)]:.1f} "
              f"GB/s ({max(THREADS)} threads); FMA peak ({fma_key.split('_')[0]}) {roof[fma_key][1]:.0f} / "
              f"{roof[fma_key][max(THREADS)]:.0f} GFLOP/s"]
    if "int8_avx2_GMACs" in roof:
        bounds.append(f"int8 AVX2 peak {roof['int8_avx2_GMACs'][1]:.0f} / {roof['int8_avx2_GMACs'][max(THREADS)]:.0f} GMAC/s")
    bounds.append("decode: bound = read bandwidth / (bytes of weights + KV cache read per token); 'beside each "
                  "run' divides each run by the bandwidth measured just before and after it (the better of the "
                  "two), 'roofline's bw' by the better of tools/roofline.c's measurements before and after the benchmark")
    table = "\n".join(lines) + "\n\nBounds measured by tools/roofline.c: " + "; ".join(bounds) + \
        f".\nMedians of {args.runs} interleaved runs; load average at the end {os.getloadavg()[0]:.2f}.\n"
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print()
    print(table)
    print("every run:")
    for r in rows:
        beside = (" GB/s beside: " + " ".join(f"{b:.1f}" for b in r["bandwidth_beside"]) + ";"
                  if r["bandwidth_beside"] else "")
        print(f"  {r['model']:12s} {r['weights']} {r['threads']}t {r['kind']:8s} "
              + " ".join(f"{x:.1f}" for x in r["runs"]) + f"  (bound {r['bound']:.0f};{beside} CPU used by others "
              + "before each run: " + " ".join(f"{b:.0%}" for b in r["busy_before"]) + ")")
    print(f"\nwrote {os.path.join(args.out, 'results.json')} and table.md")


if __name__ == "__main__":
    main()
