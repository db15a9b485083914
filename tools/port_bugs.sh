#!/usr/bin/env bash
# tools/port_bugs.sh — docs/porting.md's debugging story, reproduced.
#
# Four one-line bugs, each put into a scratch copy of the OpenCL port
# (port/opencl.c) under build/port-bugs/NAME/: in RoPE, in the softmax of
# attention, in SwiGLU and in the KV-cache write. Each scratch build traces
# the same prompt as the reference backend (Part I's functions) and
# `./run --compare-traces` names the first op, layer and position where
# they part. Prints the changed line and the comparer's lines for each.
# Needs an OpenCL runtime (PoCL: apt-get install pocl-opencl-icd
# ocl-icd-opencl-dev) and a built ./run; takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=tests/golden/forward/gqa-untied.lamp   # 3 layers, 6 heads over 2 kv heads
PROMPT="the quick brown fox jumps over the lazy dog"
# -n 1: the prompt only (the token sampled after it is never fed), so both
# traces are of the same tokens
RUN_FLAGS=(-i "$PROMPT" -n 1 -t 0)
WORK=build/port-bugs
CC=${CC:-gcc}
mkdir -p "$WORK"
./run "$MODEL" "${RUN_FLAGS[@]}" --backend reference --trace "$WORK/reference.trace" >/dev/null 2>&1

# bug NAME 'sed expression': a scratch copy with the one changed line, built
# with -DLAMP_OPENCL, traced, compared with the reference
bug() {
    local name=$1 edit=$2 dir=$WORK/$1
    rm -rf "$dir"
    mkdir -p "$dir/port"
    cp run.c tokenizer.c tokenizer.h unicode_table.h util.h "$dir/"
    cp port/opencl.c port/cuda.c "$dir/port/"
    sed -i "$edit" "$dir/port/opencl.c"
    local changed
    changed=$(diff port/opencl.c "$dir/port/opencl.c" | grep -c '^>' || true)
    if [ "$changed" != 1 ]; then echo "port_bugs.sh: the $name edit changed $changed lines, not 1" >&2; exit 1; fi
    echo "=== $name: port/opencl.c, one line changed:"
    diff port/opencl.c "$dir/port/opencl.c" | grep '^[<>]' | sed 's/^/    /' || true
    $CC -std=c11 -ffp-contract=fast -O2 -march=native -fopenmp -DLAMP_OPENCL -o "$dir/run" "$dir/run.c" \
        "$dir/tokenizer.c" -lOpenCL -lm
    "$dir/run" "$MODEL" "${RUN_FLAGS[@]}" --trace "$WORK/$name.trace" >/dev/null 2>&1
    echo "\$ ./run --compare-traces $WORK/$name.trace $WORK/reference.trace"
    ./run --compare-traces "$WORK/$name.trace" "$WORK/reference.trace" || true
}

bug rope 's/v\[2 \* i\] = v0 \* c - v1 \* s;/v[2 * i] = v0 * c + v1 * s;/'
bug softmax 's/for (int p = 0; p <= last; p++) a\[p\] \/= sum;/for (int p = 0; p < last; p++) a[p] \/= sum;/'
bug swiglu 's/gate\[i\] = g \/ (1.0f + exp(-g)) \* up\[i\];/gate[i] = g \/ (1.0f + exp(g)) * up[i];/'
bug kv_cache_write 's/seq_len + pos + t) \* head_dim + d;/seq_len + pos) * head_dim + d;/'
