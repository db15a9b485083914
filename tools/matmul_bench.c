/* matmul_bench.c — run.c's matmul_chunk() alone, on a matrix of your choosing:
 * how many GFLOP/s the tiled kernel reaches for a chunk of T positions, and
 * how many GB/s the one-position loop streams (docs/performance.md,
 * "Measured separately"). Not part of lamp; a tool for measuring.
 *
 *   cc -std=c11 -O3 -march=native -fopenmp -ffp-contract=fast -I. \
 *      -o build/matmul_bench tools/matmul_bench.c tokenizer.c -lm
 *   OMP_NUM_THREADS=1 build/matmul_bench N D T [REPS]
 *
 * W is (D, N), x is (T, N). Prints the best of REPS (default 20) runs:
 * GFLOP/s (2·N·D·T per run) and the GB/s of W read (4·N·D bytes per run;
 * the figure that matters for T = 1). With D·N·4 bytes well beyond the L3
 * cache (e.g. N 768, D 128000: 393 MB) W comes from memory every run. */
#define RUN_NO_MAIN
#include "run.c"

int main(int argc, char **argv) {
    if (argc < 4) fatal("usage: matmul_bench N D T [REPS]");
    int n = atoi(argv[1]), d = atoi(argv[2]), T = atoi(argv[3]), reps = argc > 4 ? atoi(argv[4]) : 20;
    if (n < 1 || d < 1 || T < 1 || T > CHUNK || reps < 1) fatal("need N, D >= 1, 1 <= T <= %d, REPS >= 1", CHUNK);
    float *w = alloc_aligned((size_t)n * d, sizeof(float)), *x = alloc_aligned((size_t)n * T, sizeof(float));
    float *out = alloc_aligned((size_t)d * T, sizeof(float));
    float *scratch = alloc_aligned(matmul_scratch_floats(T, n), sizeof(float));
    for (size_t i = 0; i < (size_t)n * d; i++) w[i] = (float)(i % 7) * 0.1f;   /* any values: the speed does not care */
    for (size_t i = 0; i < (size_t)n * T; i++) x[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double start = time_now();
        matmul_chunk(out, x, w, n, d, T, scratch);
        double took = time_now() - start;
        if (took < best) best = took;
    }
    printf("N %d D %d T %d: %.1f GFLOP/s, W read at %.1f GB/s (best of %d)\n", n, d, T, 2.0 * n * d * T / best / 1e9,
           4.0 * n * d / best / 1e9, reps);
    free(w); free(x); free(out); free(scratch);
    return 0;
}
