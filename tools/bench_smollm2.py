#!/usr/bin/env python3
"""bench_smollm2.py — SmolLM2-135M-Instruct's speed in ./run beside its bandwidth bound.

    ~/.cache/lamp/venv/bin/python -m tools.bench_smollm2 smollm2.lamp [--threads 2] [--runs 5]

For a lamp export of SmolLM2 (make smollm2 makes smollm2.lamp), --runs times:
wait for the machine to be mostly idle (tools/bench.py's wait_until_quiet), measure
the read bandwidth `threads` threads get right now (tools/roofline.c --read-only),
then
    decode   tok/s generating up to 200 tokens (greedy) after BOS
    prefill  tok/s processing a prompt of 200 tokens (tools/bench.py's make_prompt)
Prints the median of each and the decode bound: generating a token reads every
weight once (the tied embedding table once more, as the classifier; one row of it
as the embedding is negligible), so tok/s <= bandwidth / bytes of weights, with
bytes = the file's int8 values and float32 scales (or float32 weights). Timing lives
in benchmarks, never in tests: this script checks nothing.
"""
import argparse
import os
import statistics
import subprocess

import lampfile
from tools import bench

ROOT = bench.ROOT


def weight_bytes(path):
    """Bytes read per generated token: every matrix and the classifier, as stored."""
    cfg, _, _ = lampfile.read_lamp(path)
    shapes = lampfile.tensor_shapes(cfg)
    gs = cfg["group_size"]
    total = 0
    for name in lampfile.Q8_TENSORS:
        if name not in shapes or name == "token_embedding" and not cfg["shared_classifier"]:
            continue
        n = 1
        for d in shapes[name]:
            n *= d
        total += n * (1 + 4 / gs) if gs else 4 * n
    return total, cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    out = os.path.join(ROOT, "build", "bench")
    os.makedirs(out, exist_ok=True)
    roofline = os.path.join(out, "roofline")
    subprocess.run(["cc", "-O3", "-march=native", "-fopenmp", "-o", roofline,
                    os.path.join(ROOT, "tools", "roofline.c")], check=True)
    prompt = bench.make_prompt(args.model)
    nbytes, cfg = weight_bytes(args.model)
    runs = {"bandwidth": [], "decode": [], "decoded": [], "prefill": [], "busy": []}
    for _ in range(args.runs):
        runs["busy"].append(bench.wait_until_quiet(0.15, 60))
        runs["bandwidth"].append(bench.read_bandwidth_now(out, args.threads))
        n, speed = bench.run_once("decode", args.model, args.threads, prompt, None)
        runs["decode"].append(speed)
        runs["decoded"].append(n)
        runs["prefill"].append(bench.run_once("prefill", args.model, args.threads, prompt, None)[1])
    med = {k: statistics.median(v) for k, v in runs.items()}
    bound = med["bandwidth"] * 1e9 / nbytes
    kind = f"int8, groups of {cfg['group_size']}" if cfg["group_size"] else "float32"
    print(f"{args.model} ({kind}): {nbytes / 1e6:.1f} MB of weights read per token; "
          f"{args.threads} threads, medians of {args.runs} runs (others' CPU use before each run: "
          f"{', '.join(f'{b:.0%}' for b in runs['busy'])})")
    print(f"  read bandwidth   {med['bandwidth']:.1f} GB/s (runs: {', '.join(f'{x:.1f}' for x in runs['bandwidth'])})")
    print(f"  decode           {med['decode']:.1f} tok/s (runs: {', '.join(f'{x:.1f}' for x in runs['decode'])}); "
          f"bound {bound:.0f} tok/s = {med['bandwidth']:.1f} GB/s / {nbytes / 1e6:.1f} MB; "
          f"{med['decode'] / bound:.0%} of it; {med['decoded']:.0f} tokens generated")
    print(f"  prefill          {med['prefill']:.1f} tok/s (runs: {', '.join(f'{x:.1f}' for x in runs['prefill'])}), "
          f"200-token prompt")


if __name__ == "__main__":
    main()
