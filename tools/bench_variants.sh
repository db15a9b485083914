#!/usr/bin/env bash
# bench_variants.sh — what each trick in run.c buys (docs/performance.md,
# "What each trick buys"): builds run.c again with one trick taken out at a
# time, then times every variant on the same stories110M-shaped model, one
# thread, interleaved (run 1 of every variant, then run 2, ...), and prints
# the medians. Needs build/bench/stories110M.lamp and .q8.lamp (make bench
# makes them). About 5 minutes on the reference machine.
#
#   tools/bench_variants.sh [runs]          (default 5)
#
# Each variant is the current run.c with one edit (sed), so the comparison
# is always against the code as it is now. "start" is run.c as it was
# before the tiled kernel (commit 4be8b4c), when it is in the git history.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
OUT=build/variants
mkdir -p "$OUT"
F32=build/bench/stories110M.lamp
Q8=build/bench/stories110M.q8.lamp
for m in $F32 $Q8; do [ -f "$m" ] || { echo "bench_variants: $m is missing; run make bench first" >&2; exit 1; }; done
CC=${CC:-gcc}
CFLAGS="-std=c11 -O3 -march=native -fopenmp"

build() {   # build NAME EXTRA_CFLAGS SED_SCRIPT: run.c with the sed edit, checked to have changed
    local name=$1 extra=$2 script=$3
    sed -e "$script" run.c > "$OUT/$name.c"
    if [ -n "$script" ] && cmp -s run.c "$OUT/$name.c"; then echo "bench_variants: the edit for $name changed nothing" >&2; exit 1; fi
    $CC $CFLAGS $extra -I. -o "$OUT/$name" "$OUT/$name.c" tokenizer.c -lm
}
build now        "-ffp-contract=fast" ""
build no_fma     "-ffp-contract=off"  ""
build chunk16    "-ffp-contract=fast" 's/^#define CHUNK 128$/#define CHUNK 16/'
build chunk32    "-ffp-contract=fast" 's/^#define CHUNK 128$/#define CHUNK 32/'
build chunk64    "-ffp-contract=fast" 's/^#define CHUNK 128$/#define CHUNK 64/'
build no_tiled_attention "-ffp-contract=fast" 's|tiles = n / TILE_M;|tiles = 0;|'
build no_avx2_int8 "-ffp-contract=fast" 's|^#define HAVE_AVX2_KERNEL 1$||'
build no_vnni    "-ffp-contract=fast -mno-avxvnni" ""
build no_prefetch "-ffp-contract=fast" 's|^ *_mm_prefetch(.*PREFETCH_AHEAD.*$||'
build gs_variable "-ffp-contract=fast" 's#^    case \(32\|64\|128\): return dot_q8_avx2_body.*$##'
variants="now no_fma chunk16 chunk32 chunk64 no_tiled_attention"
q8_variants="now no_avx2_int8 no_vnni no_prefetch gs_variable"
if git cat-file -e 4be8b4c:run.c 2>/dev/null; then
    git show 4be8b4c:run.c > "$OUT/start.c"
    $CC $CFLAGS -ffp-contract=fast -I. -o "$OUT/start" "$OUT/start.c" tokenizer.c -lm
    variants="$variants start"
fi

# a prompt of ~350 tokens: the first 150 words of the validation text
PROMPT=$(head -c 20000 data/tinystories/valid.txt | tr -s ' \n' '  ' | cut -d' ' -f1-150)
speed() {   # speed BINARY MODEL KIND -> tokens/s
    local args=(-t 0 -n 200)
    [ "$3" = prompt ] && args=(-t 0 -n 1 -i "$PROMPT")
    "$1" "$2" --threads 1 "${args[@]}" 2>&1 >/dev/null | tail -1 |
        sed -n "s/.*$( [ "$3" = prompt ] && echo prompt || echo decode ) [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p"
}
results=$(mktemp)
for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS" >&2
    for v in $variants; do
        echo "float32 prompt $v $(speed "$OUT/$v" $F32 prompt)" >> "$results"
        echo "float32 generate $v $(speed "$OUT/$v" $F32 generate)" >> "$results"
    done
    for v in $q8_variants; do
        echo "int8 prompt $v $(speed "$OUT/$v" $Q8 prompt)" >> "$results"
        echo "int8 generate $v $(speed "$OUT/$v" $Q8 generate)" >> "$results"
    done
done
n_prompt=$("$OUT/now" $F32 --threads 1 -t 0 -n 1 -i "$PROMPT" 2>&1 >/dev/null | tail -1 | sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p')
echo "medians of $RUNS interleaved runs, one thread, tokens/s (stories110M shape; the prompt is $n_prompt tokens)"
awk '
    { key = $1 " " $2 " " $3; v[key] = v[key] " " $4; n[key]++ }
    END { for (k in v) { m = split(substr(v[k], 2), a, " ");
          for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
          med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2;
          printf "%-40s %8.1f   (runs:%s)\n", k, med, v[k] } }' "$results" | sort
rm -f "$results"
