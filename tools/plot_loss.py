#!/usr/bin/env python3
"""plot_loss.py — draw a loss curve from train.c's CSV log.

    python tools/plot_loss.py build/model/log.csv docs/img/stories-loss.png

The log has one row per step: step, train_loss, val_loss (empty on steps
without validation), lr, tokens_per_s. The plot shows the training loss of
each step (thin), its running mean over 25 steps, the validation loss, and
the learning rate on a second axis.
"""
import csv
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_loss.py LOG.csv OUT.png")
    steps, train, val_steps, val, lr = [], [], [], [], []
    with open(sys.argv[1]) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            train.append(float(row["train_loss"]))
            lr.append(float(row["lr"]))
            if row["val_loss"]:
                val_steps.append(int(row["step"]))
                val.append(float(row["val_loss"]))
    window = 25
    mean = [sum(train[max(0, i - window + 1):i + 1]) / len(train[max(0, i - window + 1):i + 1])
            for i in range(len(train))]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(steps, train, color="#9ecae1", linewidth=0.6, label="train loss (each step)")
    ax.plot(steps, mean, color="#3182bd", linewidth=1.5, label=f"train loss ({window}-step mean)")
    ax.plot(val_steps, val, "o-", color="#e6550d", markersize=4, label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_ylim(bottom=min(train + val) - 0.2, top=min(max(train), 6.0))
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot(steps, lr, color="#636363", linewidth=1, linestyle="--", label="learning rate")
    lr_ax.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    lr_lines = lr_ax.get_legend_handles_labels()
    ax.legend(lines[0] + lr_lines[0], lines[1] + lr_lines[1], loc="upper right", fontsize=8)
    ax.set_title("models/stories.lamp: make model (dim 256, 6 layers, 1200 steps)")
    fig.tight_layout()
    fig.savefig(sys.argv[2])
    print(f"wrote {sys.argv[2]}: {len(steps)} steps, last validation loss {val[-1]:.4f}")


if __name__ == "__main__":
    main()
