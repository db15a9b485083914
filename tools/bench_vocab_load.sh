#!/usr/bin/env bash
# bench_vocab_load.sh — how long ./tokenizer takes to load a vocabulary built
# to collide in its hash table (tools/colliding_vocab.c), beside the real
# Llama 2 tokenizer.bin: median of 5 runs of `./tokenizer encode` on empty
# input (load, then nothing to encode). docs/tokenizer.md quotes the result.
#   tools/bench_vocab_load.sh [TOKENIZER_PROGRAM]
set -euo pipefail
cd "$(dirname "$0")/.."
prog=${1:-./tokenizer}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/colliding_vocab" tools/colliding_vocab.c
median_load() {
  for _ in 1 2 3 4 5; do
    s=$(date +%s.%N); "$prog" encode -z "$1" </dev/null >/dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc -l
  done | sort -g | sed -n 3p
}
printf '%-40s %s\n' "vocabulary" "load, s (median of 5)"
printf '%-40s %.3f\n' "Llama 2 tokenizer.bin (32,000 pieces)" "$(median_load tests/data/llama2/tokenizer.bin)"
for n in 8192 16384 32768 65536; do
  "$work/colliding_vocab" "$n" "$work/c$n.bin"
  printf '%-40s %.3f\n' "colliding, $n pieces" "$(median_load "$work/c$n.bin")"
done
