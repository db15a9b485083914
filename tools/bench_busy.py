#!/usr/bin/env python3
"""bench_busy.py — how ./run and ./train hold up when another program keeps a core busy.

    ~/.cache/lamp/venv/bin/python -m tools.bench_busy A_DIR B_DIR [--runs 5] [--threads 2]

A_DIR and B_DIR each hold a build of run and train (e.g. one of the previous
commit and one of this). For each build and workload:
    decode   ./run tok/s generating 200 tokens (greedy) of build/bench's int8
             stories110M-shaped random model (made by `make bench`)
    train    ./train tok/s of the default model shape of docs/training.md
             (dim 256, 8/4 heads, batch 16 x 256, the 4,096-piece tokenizer),
             the median of the steps after the first of a --train-steps run
the speed alone ("idle") and with a competitor: `sh -c 'while :; do :; done'`,
one single-threaded CPU-bound process at normal priority, started just before
the run and stopped after it. The runs are interleaved (each round: every
build, workload and condition), and the CPU use of other processes is
recorded before each run (tools/bench.py's cpu_busy): on a shared machine
"idle" means "without our competitor", not an idle machine. Prints medians,
busy / idle, and every run. Timing only: nothing here passes or fails.
"""
import argparse
import os
import re
import statistics
import subprocess

from tools.bench import ROOT, cpu_busy, make_models, model_path

TRAIN_ARGS = ["--data", os.path.join(ROOT, "data", "tinystories", "valid.txt"),
              "--tokenizer", os.path.join(ROOT, "models", "stories-tok4096.bin"),
              "--dim", "256", "--n-heads", "8", "--n-kv-heads", "4", "--batch", "16",
              "--eval-every", "0", "--sample-every", "0", "--ckpt-every", "0", "--warmup", "1"]


def decode_speed(build, model, threads):
    err = subprocess.run([os.path.join(build, "run"), model, "--threads", str(threads), "-t", "0", "-n", "200"],
                         capture_output=True, text=True, check=True).stderr
    return float(re.search(r"decode \d+ tokens, ([\d.]+) tok/s", err).group(1))


def train_speed(build, threads, steps, out):
    err = subprocess.run([os.path.join(build, "train")] + TRAIN_ARGS +
                         ["--threads", str(threads), "--steps", str(steps), "--out", out],
                         capture_output=True, text=True, check=True).stderr
    speeds = [float(x) for x in re.findall(r"\| (\d+) tok/s \|", err.replace("\r", "\n"))]
    return statistics.median(speeds[1:] if len(speeds) > 1 else speeds)   # the first step warms up


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", help="folders with run and train")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    args = ap.parse_args()
    make_models(args.out, ["stories110M"], os.environ.get("PYTHON", "python3"))
    model = model_path(args.out, "stories110M", True)
    train_out = os.path.join(args.out, "bench_busy_train")
    speeds, busy = {}, []
    for r in range(args.runs):
        for kind in ("decode", "train"):
            for competitor in ((False, True) if r % 2 == 0 else (True, False)):
                for build in (args.builds if r % 2 == 0 else args.builds[::-1]):
                    busy.append(cpu_busy())
                    comp = subprocess.Popen(["sh", "-c", "while :; do :; done"]) if competitor else None
                    try:
                        speed = (decode_speed(build, model, args.threads) if kind == "decode"
                                 else train_speed(build, args.threads, args.train_steps, train_out))
                    finally:
                        if comp:
                            comp.kill()
                            comp.wait()
                    speeds.setdefault((build, kind, competitor), []).append(speed)
        print(f"round {r + 1} of {args.runs} done", flush=True)
    print(f"\n{args.threads} threads; medians of {args.runs} interleaved runs; CPU use by others before each run: "
          f"median {statistics.median(busy):.0%}, max {max(busy):.0%}; load average at the end "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| build | workload | alone tok/s | beside a busy core tok/s | busy / alone |")
    print("|---|---|---|---|---|")
    for build in args.builds:
        for kind in ("decode", "train"):
            a = statistics.median(speeds[(build, kind, False)])
            b = statistics.median(speeds[(build, kind, True)])
            print(f"| {build} | {kind} | {a:.1f} | {b:.1f} | {100 * b / a:.0f}% |")
    print("\nevery run (tok/s):")
    for (build, kind, competitor), v in speeds.items():
        print(f"  {build} {kind} {'beside a busy core' if competitor else 'alone'}: " + " ".join(f"{x:.1f}" for x in v))
    print("CPU use by others before each run: " + " ".join(f"{b:.0%}" for b in busy))


if __name__ == "__main__":
    main()
