"""Draw docs/img/kv_cache.png: the KV cache of one (layer, kv head), plain and blocked.

    python docs/img/kv_cache.py docs/img/kv_cache.png     (make docs-images)

Each square is one float; its label is "position,element". Memory runs along
a row, then down the rows, then on to the next block or panel (left to
right). The sizes are toy ones so that every float can be labelled:
head_dim 8, TILE_N 4, seq_len 12.

- Plain, (n_layers, n_kv_heads, seq_len, head_dim): one key (or value) per
  row, position after position.
- Keys, blocked, (n_layers, n_kv_heads, seq_len / TILE_N, head_dim, TILE_N):
  the keys of TILE_N consecutive positions stored transposed, so that row d
  of a block holds element d of TILE_N keys: one vector, which attend_one()
  in run.c multiplies by q[d] and adds to TILE_N scores at once.
- Values, in panels, (n_layers, n_kv_heads, head_dim / TILE_N, seq_len,
  TILE_N): TILE_N elements of every value; row p of a panel is one vector,
  which attend_one() multiplies by the attention weight a[p] and adds to
  TILE_N elements of the output.

The outlined floats are the same numbers in the three layouts.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

HEAD_DIM, TILE_N, SEQ_LEN = 8, 4, 12
BLOCKS = SEQ_LEN // TILE_N        # key blocks
PANELS = HEAD_DIM // TILE_N       # value panels

# One colour family per block of TILE_N positions, lighter for later
# positions in the block, so a position can be followed between layouts.
FAMILIES = [plt.cm.Blues, plt.cm.Oranges, plt.cm.Greens]
KEY_EXAMPLE = (1, 7)     # key block 1, row d = 7: element 7 of the keys of positions 4..7
VALUE_EXAMPLE = (1, 9)   # value panel 1, row p = 9: elements 4..7 of the value of position 9
KEY_MARK, VALUE_MARK = "#c0392b", "#6c3483"


def colour(p):
    return FAMILIES[p // TILE_N](0.55 - 0.09 * (p % TILE_N))


def cell(ax, x, y, p, d, mark=None):
    """The float (position p, element d) drawn at column x, row y (y grows down)."""
    ax.add_patch(Rectangle((x, -y - 1), 1, 1, facecolor=colour(p), edgecolor="white", linewidth=1))
    ax.text(x + 0.5, -y - 0.5, f"{p},{d}", ha="center", va="center", fontsize=6.5)
    if mark:
        ax.add_patch(Rectangle((x + 0.06, -y - 0.94), 0.88, 0.88, fill=False, edgecolor=mark, linewidth=2.2))


def key_mark(p, d):
    b, row = KEY_EXAMPLE
    return KEY_MARK if p // TILE_N == b and d == row else None


def value_mark(p, d):
    panel, row = VALUE_EXAMPLE
    return VALUE_MARK if p == row and d // TILE_N == panel else None


def title(ax, x, y, text, **kw):
    ax.text(x, -y + 0.4, text, ha="left", va="bottom", fontsize=9, **kw)


def main(out):
    fig, ax = plt.subplots(figsize=(15.5, 8.6))
    ax.set_aspect("equal")
    ax.axis("off")

    # Plain: rows are positions, columns the head_dim elements.
    x0 = 0
    title(ax, x0, 0, "plain, keys and values alike:\n(n_layers, n_kv_heads,\n    seq_len, head_dim)\n"
                     "row p = the key (or value)\n    of position p")
    for p in range(SEQ_LEN):
        ax.text(x0 - 0.3, -p - 0.5, f"p={p}", ha="right", va="center", fontsize=7)
        for d in range(HEAD_DIM):
            cell(ax, x0 + d, p, p, d, key_mark(p, d) or value_mark(p, d))
    for d in range(HEAD_DIM):
        ax.text(x0 + d + 0.5, -SEQ_LEN - 0.4, f"d={d}", ha="center", va="top", fontsize=7)

    # Keys, blocked: block b holds positions b*TILE_N .. +TILE_N-1, transposed.
    x1 = HEAD_DIM + 4
    title(ax, x1, 0, "keys, blocked: (n_layers, n_kv_heads,\n    seq_len / TILE_N, head_dim, TILE_N)\n"
                     "TILE_N positions per block, stored transposed:\n"
                     "row d of a block = element d of TILE_N keys")
    for b in range(BLOCKS):
        bx = x1 + b * (TILE_N + 1)
        ax.text(bx + TILE_N / 2, -HEAD_DIM - 0.4, f"block {b}\npositions {b * TILE_N}..{b * TILE_N + TILE_N - 1}",
                ha="center", va="top", fontsize=7.5)
        for d in range(HEAD_DIM):
            if b == 0:
                ax.text(bx - 0.3, -d - 0.5, f"d={d}", ha="right", va="center", fontsize=7)
            for j in range(TILE_N):
                p = b * TILE_N + j
                cell(ax, bx + j, d, p, d, key_mark(p, d))
    b, d = KEY_EXAMPLE
    ax.annotate("one vector: score[j] += q[d] · key_block[d][j]\n"
                f"for the {TILE_N} positions j of the block (attend_one)",
                xy=(x1 + b * (TILE_N + 1) + 0.2, -d - 1), xytext=(x1 + 0.5, -HEAD_DIM - 2.6),
                fontsize=8, color=KEY_MARK, ha="left", va="top",
                arrowprops=dict(arrowstyle="->", color=KEY_MARK))

    # Values, in panels: panel k holds elements k*TILE_N .. +TILE_N-1 of every value.
    x2 = x1 + BLOCKS * (TILE_N + 1) + 4
    title(ax, x2, 0, "values, in panels: (n_layers, n_kv_heads,\n    head_dim / TILE_N, seq_len, TILE_N)\n"
                     "row p of a panel = TILE_N elements of value p")
    for k in range(PANELS):
        px = x2 + k * (TILE_N + 1)
        ax.text(px + TILE_N / 2, -SEQ_LEN - 0.4, f"panel {k}\nelements {k * TILE_N}..{k * TILE_N + TILE_N - 1}",
                ha="center", va="top", fontsize=7.5)
        for p in range(SEQ_LEN):
            if k == 0:
                ax.text(px - 0.3, -p - 0.5, f"p={p}", ha="right", va="center", fontsize=7)
            for j in range(TILE_N):
                d = k * TILE_N + j
                cell(ax, px + j, p, p, d, value_mark(p, d))
    k, p = VALUE_EXAMPLE
    ax.annotate("one vector: sum[j] += a[p] · v[p][j]\n"
                f"for {TILE_N} elements j of the output (attend_one)",
                xy=(x2 + k * (TILE_N + 1) + TILE_N, -p - 0.5), xytext=(x2 + 2 * (TILE_N + 1) + 0.3, -p + 1.5),
                fontsize=8, color=VALUE_MARK, ha="left", va="top",
                arrowprops=dict(arrowstyle="->", color=VALUE_MARK))

    ax.text(0, -SEQ_LEN - 2.6,
            f"One (layer, kv head) of the cache, with toy sizes: head_dim {HEAD_DIM}, TILE_N {TILE_N}, "
            f"seq_len {SEQ_LEN}. A square is one float, labelled position,element.\n"
            "Memory runs along a row, then down the rows, then on to the next block or panel. "
            "The (layer, kv head) stretches follow one another in both layouts;\n"
            "keys_of() and values_of() in run.c return where one starts. "
            "Outlined: the same floats in each layout.",
            ha="left", va="top", fontsize=8.5)
    ax.set_xlim(-2, x2 + 2 * (TILE_N + 1) + 9)
    ax.set_ylim(-SEQ_LEN - 4.6, 4.4)
    fig.savefig(out, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/kv_cache.png")
