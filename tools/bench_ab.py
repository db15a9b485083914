#!/usr/bin/env python3
"""bench_ab.py — two builds of ./run side by side: is B as fast as A?

    ~/.cache/lamp/venv/bin/python -m tools.bench_ab A_RUN B_RUN [--runs 7] [--models stories110M]

For each model (random weights of a llama2.c shape, float32 and int8, made
by `make bench` in build/bench/), 2 threads: decode (200 greedy tokens after
BOS) and prefill (a 200-token prompt), each --runs times. Every run of A is
followed by the same run of B (then the order flips), so the two see the
same moments of a shared machine; the table gives the medians and B / A.
Before each pair it waits (up to --quiet-wait s) for the CPUs to be mostly
idle, as `make bench` does. Timing only: nothing here passes or fails.
"""
import argparse
import os
import statistics

from tools.bench import ROOT, make_models, make_prompt, model_path, run_once, wait_until_quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a_run", help="the ./run to compare against (e.g. built from the previous commit)")
    ap.add_argument("b_run", help="the ./run under test")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="stories110M")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--quiet-wait", type=float, default=60, help="seconds to wait for idle CPUs before each pair [60]")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    shapes = args.models.split(",")
    make_models(args.out, shapes, os.environ.get("PYTHON", "python3"))
    variants = [(shape, q8, kind) for shape in shapes for q8 in (False, True) for kind in ("decode", "prefill")]
    prompts = {shape: make_prompt(model_path(args.out, shape, False)) for shape in shapes}
    speeds = {(v, w): [] for v in variants for w in "AB"}
    busy = []
    for r in range(args.runs):
        for v in variants:
            shape, q8, kind = v
            busy.append(wait_until_quiet(0.15, args.quiet_wait))
            order = "AB" if r % 2 == 0 else "BA"
            for w in order:
                run = args.a_run if w == "A" else args.b_run
                _, speed = run_once(kind, model_path(args.out, shape, q8), args.threads, prompts[shape], None, run=run)
                speeds[(v, w)].append(speed)
        print(f"round {r + 1} of {args.runs} done", flush=True)
    print(f"\n{args.threads} threads, medians of {args.runs} interleaved runs; A = {args.a_run}, B = {args.b_run}")
    print(f"CPU use by others before each pair: median {statistics.median(busy):.2f}, max {max(busy):.2f}\n")
    print("| model | weights | workload | A tok/s | B tok/s | B / A |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        shape, q8, kind = v
        a, b = statistics.median(speeds[(v, "A")]), statistics.median(speeds[(v, "B")])
        print(f"| {shape} | {'int8' if q8 else 'float32'} | {kind} | {a:.1f} | {b:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
