/* q8_bench.c — run.c's int8 matmuls alone, on a matrix of your choosing
 * (docs/performance.md, "The tiled int8 matmul"). Not part of lamp; a tool
 * for measuring.
 *
 *   cc -std=c11 -O3 -march=native -fopenmp -ffp-contract=fast -I. \
 *      -o build/q8_bench tools/q8_bench.c tokenizer.c -lm
 *   OMP_NUM_THREADS=1 build/q8_bench N D T GS [REPS]
 *
 * W is (D, N) int8 in groups of GS, x is (T, N). For T > 1 it times the
 * chunk both ways: matmul_q8_chunk() (the tiled kernel) and matmul_q8() with
 * DOT_Q8 (one dot product per row and position, what a chunk used before),
 * in G multiply-adds per second (N·D·T per run). For T = 1 it times the
 * one-position path, matmul_q8() with DOT_Q8 and with dot_q8_avx2, in GB/s
 * of W read. Each figure is the best of REPS (default 20) runs, in CPU time
 * of the process (on a machine shared with others, CPU time moves less than
 * wall time; with one thread the two agree on an idle machine). */
#define RUN_NO_MAIN
#include "run.c"

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the best CPU time of `reps` calls of matmul_q8_chunk (chunk = 1) or matmul_q8 with dot_fn */
static double best_of(int reps, int chunk, DotQ8 dot_fn, float *out, const int8_t *xq, const float *xs,
                      const int8_t *w, const float *ws, int n, int d, int T, int gs, void *scratch) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double start = cpu_seconds();
        if (chunk) matmul_q8_chunk(out, xq, xs, w, ws, n, d, T, gs, scratch, 0);
        else matmul_q8(out, xq, xs, w, ws, n, d, T, gs, dot_fn);
        double took = cpu_seconds() - start;
        if (took < best) best = took;
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc < 5) fatal("usage: q8_bench N D T GS [REPS]");
    int n = atoi(argv[1]), d = atoi(argv[2]), T = atoi(argv[3]), gs = atoi(argv[4]);
    int reps = argc > 5 ? atoi(argv[5]) : 20;
    if (n < 1 || d < 1 || T < 1 || T > CHUNK || gs < 4 || gs % 4 || n % gs || reps < 1)
        fatal("need N, D >= 1, 1 <= T <= %d, GS a multiple of 4 dividing N, REPS >= 1", CHUNK);
    int8_t *w = alloc_aligned((size_t)n * d, 1), *xq = alloc_aligned((size_t)n * T, 1);
    float *ws = alloc_aligned((size_t)n * d / gs, sizeof(float)), *xs = alloc_aligned((size_t)n * T / gs, sizeof(float));
    float *x = alloc_aligned((size_t)n * T, sizeof(float)), *out = alloc_aligned((size_t)d * T, sizeof(float));
    void *scratch = alloc_aligned(q8_panel_bytes(T, n) + sizeof(float) * q8_scale_panel_floats(T, n, gs), 1);
    for (size_t i = 0; i < (size_t)n * d; i++) w[i] = (int8_t)((int)((i * 2654435761u) >> 7) % 255 - 127);
    for (size_t i = 0; i < (size_t)n * d / gs; i++) ws[i] = 0.001f * (float)(i % 7 + 1);
    for (size_t i = 0; i < (size_t)n * T; i++) x[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
    quantize_q8(xq, xs, x, (size_t)n * T, gs);
    double macs = (double)n * d * T, bytes = (double)n * d * (1.0 + 4.0 / gs);
    if (T > 1) {
        double tiled = best_of(reps, 1, DOT_Q8, out, xq, xs, w, ws, n, d, T, gs, scratch);
        double rows = best_of(reps < 5 ? reps : 5, 0, DOT_Q8, out, xq, xs, w, ws, n, d, T, gs, scratch);
        printf("N %d D %d T %d GS %d: matmul_q8_chunk %.3f ms (%.1f GMAC/s), matmul_q8 with DOT_Q8 %.3f ms (%.1f GMAC/s)\n",
               n, d, T, gs, 1e3 * tiled, macs / tiled / 1e9, 1e3 * rows, macs / rows / 1e9);
    } else {
        double fast = best_of(reps, 0, DOT_Q8, out, xq, xs, w, ws, n, d, 1, gs, scratch);
#ifdef HAVE_AVX2_KERNEL
        double avx2 = best_of(reps, 0, dot_q8_avx2, out, xq, xs, w, ws, n, d, 1, gs, scratch);
#else
        double avx2 = best_of(reps, 0, dot_q8, out, xq, xs, w, ws, n, d, 1, gs, scratch);
#endif
        printf("N %d D %d GS %d, one position (%.0f MB): DOT_Q8 %.1f GB/s, dot_q8_avx2 %.1f GB/s\n", n, d, gs,
               bytes / 1e6, bytes / fast / 1e9, bytes / avx2 / 1e9);
    }
    return 0;
}
