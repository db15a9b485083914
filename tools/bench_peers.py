#!/usr/bin/env python3
"""bench_peers.py — lamp and llama.cpp side by side, on the same model, threads and prompt.

    ~/.cache/lamp/venv/bin/python -m tools.bench_peers --install   # once: builds llama.cpp (minutes)
    ~/.cache/lamp/venv/bin/python -m tools.bench_peers [--runs 7] [--threads 2] [--models stories110M]

--install puts PyPI's llama-cpp-python (the version pinned in
tools/requirements-peers.txt) into the tools virtualenv. Its wheel compiles
the llama.cpp it vendors, here with GGML_NATIVE=ON (every SIMD instruction of
this CPU, as lamp's -march=native) and llama.cpp's tools, and keeps the build
folder (~/.cache/lamp/llama-build), whose bin/llama-bench is what this
script times. Not part of CI: the build takes many minutes of two cores.

Then, for each model (a random-weight model of a llama2.c shape, made by
tools/random_model.py as `make bench` does, float32 and int8; llama.cpp gets
the float32 weights as GGUF F32 and Q8_0, written by tools/lamp_to_gguf.py)
and each workload:
    decode   200 tokens generated one at a time from the start (lamp: 200
             greedy tokens after BOS; llama-bench: tg200)
    prompt   a 200-token prompt (lamp: -i PROMPT -n 1, the prompt's own
             timer; llama-bench: pp200)
each program is run --runs times, interleaved: a run of lamp, then the same
run of llama.cpp (the order flips every round), so both see the same moments
of a shared machine. Before each pair it waits (up to --quiet-wait s) for
other processes to leave the CPUs mostly idle and records how busy they were.
The bounds come from tools/roofline.c, measured before and after (the better
of the two: a ceiling): decode cannot beat read bandwidth / bytes per token,
prompts cannot beat the multiply-add peak / FLOPs per token.

Prints a markdown table (medians, lamp / llama.cpp, the bounds) and every run;
writes <out>/peers.json. Timing only: nothing here passes or fails.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from tools.bench import (CHUNK, DECODE_TOKENS, PROMPT_TOKENS, ROOT, attention_flops, cpu_busy, kv_bytes, make_models,
                         make_prompt, model_path, read_roofline, run_once, sh, stats, wait_until_quiet)

VENV = os.path.join(os.path.expanduser("~"), ".cache", "lamp", "venv")
BUILD_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lamp", "llama-build")
LLAMA_BENCH = os.path.join(BUILD_DIR, "bin", "llama-bench")
REQUIREMENTS = os.path.join(ROOT, "tools", "requirements-peers.txt")


def install():
    """pip install the pinned llama-cpp-python, compiled for this CPU, keeping llama-bench."""
    env = dict(os.environ)
    # LLAVA_BUILD=OFF: llama-cpp-python adds llama.cpp's multimodal library itself, and
    # LLAMA_BUILD_TOOLS (llama-bench) would add it a second time
    env["CMAKE_ARGS"] = ("-DGGML_NATIVE=ON -DLLAMA_BUILD_TOOLS=ON -DLLAVA_BUILD=OFF "
                         "-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    cmd = [os.path.join(VENV, "bin", "pip"), "install", "--no-cache-dir", "-C", f"build-dir={BUILD_DIR}",
           "-r", REQUIREMENTS]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)
    if not os.path.exists(LLAMA_BENCH):
        raise SystemExit(f"bench_peers: the build left no {LLAMA_BENCH}")
    print(f"llama-bench: {LLAMA_BENCH}")


def llama_bench_once(kind, gguf, threads, extra):
    """tokens/s of one llama-bench run (one repetition) of tg200 or pp200."""
    n = ["-p", "0", "-n", str(DECODE_TOKENS)] if kind == "decode" else ["-p", str(PROMPT_TOKENS), "-n", "0"]
    out = sh([LLAMA_BENCH, "-m", gguf, "-t", str(threads), "-r", "1", "-o", "json"] + n + extra).stdout
    rows = json.loads(out)
    return float(rows[0]["avg_ts"]), rows[0]


def bound_of(kind, shape, q8, roof, threads, n):
    """The roofline bound of a workload (tokens/s), as tools/bench.py models it."""
    s = stats(shape, q8)
    if kind == "decode":
        avg_pos = (DECODE_TOKENS + 1) / 2
        return roof["read_GBps"][threads] * 1e9 / (s["weight_bytes"] + kv_bytes(s, avg_pos)), "bandwidth"
    avg_pos = (n + 1) / 2
    flops = 2 * (s["matrix_params"] + s["classifier_params"] / n) + attention_flops(s, avg_pos)
    if q8 and "int8_vnni512_GMACs" in roof:
        return 2 * roof["int8_vnni512_GMACs"][threads] * 1e9 / flops, "int8 VNNI peak"
    if q8 and "int8_avx2_GMACs" in roof:
        return 2 * roof["int8_avx2_GMACs"][threads] * 1e9 / flops, "int8 AVX2 peak"
    fma = "fma512_GFLOPs" if "fma512_GFLOPs" in roof else "fma256_GFLOPs"
    return roof[fma][threads] * 1e9 / flops, "FMA peak"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--install", action="store_true", help="build and install llama-cpp-python, then exit")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="stories110M")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="before each pair, wait up to this many seconds for other processes to use < 15%% "
                         "of the CPUs [60]; 0 = never wait")
    ap.add_argument("--run", default=os.path.join(ROOT, "run"), help="the ./run to time")
    ap.add_argument("--llama-args", default="",
                    help="more llama-bench arguments, e.g. '--poll 0': its threads then wait sleeping, as "
                         "lamp's do by default (llama-bench polls 50%% by default)")
    args = ap.parse_args()
    if args.install:
        install()
        return
    if not os.path.exists(LLAMA_BENCH):
        raise SystemExit(f"bench_peers: no {LLAMA_BENCH}: run `python -m tools.bench_peers --install` first")
    os.makedirs(args.out, exist_ok=True)
    shapes = args.models.split(",")
    make_models(args.out, shapes, sys.executable)
    ggufs = {}
    for shape in shapes:
        for q8, kind in ((False, "f32"), (True, "q8_0")):
            path = os.path.join(args.out, f"{shape}.{kind}.gguf")
            if not os.path.exists(path):
                print(sh([sys.executable, "-m", "tools.lamp_to_gguf", model_path(args.out, shape, False), path,
                          "--type", kind], cwd=ROOT).stdout.strip(), flush=True)
            ggufs[(shape, q8)] = path
    roofline = os.path.join(args.out, "roofline")
    if not os.path.exists(roofline):
        sh([os.environ.get("CC", "cc"), "-O3", "-march=native", "-fopenmp", "-o", roofline,
            os.path.join(ROOT, "tools", "roofline.c"), "-lm"])
    print("measuring the machine (tools/roofline.c) ...", flush=True)
    roof_before = read_roofline(args.out)

    variants = [(shape, q8, kind) for shape in shapes for q8 in (False, True) for kind in ("decode", "prompt")]
    prompts = {shape: make_prompt(model_path(args.out, shape, False)) for shape in shapes}
    speeds = {(v, who): [] for v in variants for who in ("lamp", "llama.cpp")}
    busy, counts, llama_info = [], {}, {}
    t0 = time.time()
    for r in range(args.runs):
        print(f"round {r + 1} of {args.runs} ({time.time() - t0:.0f} s so far)", flush=True)
        for v in variants:
            shape, q8, kind = v
            busy.append(round(wait_until_quiet(0.15, args.quiet_wait) if args.quiet_wait > 0 else cpu_busy(), 2))
            for who in (("lamp", "llama.cpp") if r % 2 == 0 else ("llama.cpp", "lamp")):
                if who == "lamp":
                    n, speed = run_once("decode" if kind == "decode" else "prefill", model_path(args.out, shape, q8),
                                        args.threads, prompts[shape], None, run=args.run)
                    counts[v] = n
                else:
                    speed, llama_info[v] = llama_bench_once(kind, ggufs[(shape, q8)], args.threads,
                                                            args.llama_args.split())
                speeds[(v, who)].append(speed)
    print("measuring the machine again ...", flush=True)
    roof_after = read_roofline(args.out)
    roof = {k: {t: max(roof_before[k][t], roof_after.get(k, {}).get(t, 0)) for t in roof_before[k]}
            for k in roof_before}

    info = next(iter(llama_info.values()), {})
    lines = [f"| model | workload | lamp tok/s | llama.cpp tok/s | lamp / llama.cpp | bound tok/s | lamp % of bound |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for v in variants:
        shape, q8, kind = v
        a, b = statistics.median(speeds[(v, "lamp")]), statistics.median(speeds[(v, "llama.cpp")])
        bound, limit = bound_of(kind, shape, q8, roof, args.threads, counts[v])
        name = f"{kind} {'int8 (Q8_0)' if q8 else 'float32'}" + (f" ({counts[v]} tokens)" if kind == "prompt" else "")
        lines.append(f"| {shape} | {name} | {a:.1f} | {b:.1f} | {a / b:.2f}x | {bound:.0f} ({limit}) "
                     f"| {100 * a / bound:.0f}% |")
        rows.append(dict(model=shape, q8=q8, kind=kind, lamp=speeds[(v, "lamp")],
                         llama_cpp=speeds[(v, "llama.cpp")], lamp_median=a, llama_cpp_median=b, bound=bound,
                         limit=limit, tokens=counts[v]))
    fma = "fma512_GFLOPs" if "fma512_GFLOPs" in roof else "fma256_GFLOPs"
    t = args.threads
    bounds = [f"read bandwidth {roof['read_GBps'][t]:.1f} GB/s", f"FMA peak {roof[fma][t]:.0f} GFLOP/s"]
    for key, label in (("int8_vnni512_GMACs", "int8 VNNI-512"), ("int8_avx2_GMACs", "int8 AVX2")):
        if key in roof:
            bounds.append(f"{label} peak {roof[key][t]:.0f} GMAC/s")
    table = "\n".join(lines) + (
        f"\n\n{t} threads; medians of {args.runs} interleaved runs; llama.cpp = llama-bench of llama-cpp-python "
        f"{info.get('build_commit', '?')} (build {info.get('build_number', '?')}, {info.get('cpu_info', '?')}, "
        f"poll {info.get('poll', '?')}{', ' + args.llama_args if args.llama_args else ''}). "
        f"Bounds by tools/roofline.c, {t} threads, the better of before and after: " + "; ".join(bounds) +
        f". CPU use by others before each pair: median {statistics.median(busy):.0%}, max {max(busy):.0%}; "
        f"load average at the end {os.getloadavg()[0]:.2f}.\n")
    with open(os.path.join(args.out, "peers.json"), "w") as f:
        json.dump(dict(date=time.strftime("%Y-%m-%d %H:%M"), threads=t, runs=args.runs, rows=rows, busy=busy,
                       roofline_before=roof_before, roofline_after=roof_after, llama_bench=info), f, indent=1)
    print()
    print(table)
    print("every run (tok/s):")
    for row in rows:
        print(f"  {row['model']} {'int8' if row['q8'] else 'fp32'} {row['kind']:7s} lamp "
              + " ".join(f"{x:.1f}" for x in row["lamp"]) + " | llama.cpp "
              + " ".join(f"{x:.1f}" for x in row["llama_cpp"]))
    print("CPU use by others before each pair: " + " ".join(f"{b:.0%}" for b in busy))


if __name__ == "__main__":
    main()
