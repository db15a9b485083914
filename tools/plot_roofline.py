#!/usr/bin/env python3
"""plot_roofline.py — draw the roofline of `make bench`'s results.

    ~/.cache/lamp/venv/bin/python tools/plot_roofline.py build/bench/results.json build/bench/roofline.png

x: arithmetic intensity, FLOPs per byte read from memory; y: GFLOP/s achieved.
A kernel can be no faster than min(bandwidth x intensity, peak): the sloped
roof is memory bandwidth, the flat one the FMA (or int8) peak. Generating a
token reads every weight for 2 FLOPs per weight (0.5 FLOP/byte in float32,
~2 in int8): far left, under the slope. Prompt processing and eval read each
weight once per chunk of up to 64 positions: far right, under the flat roof.
Each point is one median of bench.py, at its own intensity.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

def main():
    results, out = sys.argv[1], sys.argv[2]
    with open(results) as f:
        res = json.load(f)
    roof, fma = res["roofline"], res["fma_key"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [2 ** (k / 4) for k in range(-12, 44)]
    styles = {1: ":", 2: "-"}
    for t in (1, 2):
        t_key = str(t)
        if t_key not in roof["read_GBps"]:
            continue
        bw, peak = roof["read_GBps"][t_key], roof[fma][t_key]
        ax.plot(xs, [min(bw * x, peak) for x in xs], "k" + styles[t], lw=1.5,
                label=f"{t} thread{'s' if t > 1 else ''}: {bw:.0f} GB/s, {peak:.0f} GFLOP/s ({fma.split('_')[0]})")
        if "int8_avx2_GMACs" in roof:
            p8 = 2 * roof["int8_avx2_GMACs"][t_key]
            ax.plot(xs, [min(bw * x, p8) for x in xs], "g" + styles[t], lw=1,
                    label=f"{t} thread{'s' if t > 1 else ''}: int8 AVX2 peak {p8:.0f} GOP/s")
    marks = {"decode": "o", "prefill": "s", "eval": "^"}
    colors = {("fp32", 1): "#9ecae1", ("fp32", 2): "#08519c", ("int8", 1): "#a1d99b", ("int8", 2): "#006d2c"}
    seen = set()
    for row in res["rows"]:
        if row["model"] != "stories110M":
            continue
        x = row["flops_per_token"] / row["bytes_per_token"]   # FLOPs per byte of memory traffic
        y = row["median"] * row["flops_per_token"] / 1e9
        key = (row["weights"], row["threads"], row["kind"])
        label = f"{row['kind']} {row['weights']} {row['threads']}t"
        ax.plot([x], [y], marks[row["kind"]], color=colors[(row["weights"], row["threads"])], ms=8,
                label=label if key not in seen else None)
        seen.add(key)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte read from memory)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"lamp on stories110M-shaped models: the roofline\n({res['machine']}, make bench {res['date']})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
