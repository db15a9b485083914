/* fma_peak.c — measure this machine's float32 fused multiply-add peak.
 *
 * A GFLOP/s figure means little without the machine's ceiling, so this
 * program measures the ceiling directly: every thread runs a loop of
 * independent FMAs on registers only (no memory traffic), with enough
 * independent chains (ACC) to hide the FMA latency, once with 8-float
 * (256-bit, AVX2) vectors and once with 16-float (512-bit, AVX-512) vectors.
 * One FMA on an n-float vector counts as 2n floating-point operations.
 *
 * Build and run (the median of 7 runs per width and thread count is printed):
 *     gcc -O2 -march=native -fopenmp -o /tmp/fma_peak tools/fma_peak.c
 *     /tmp/fma_peak            # threads 1 and 2
 *     /tmp/fma_peak 4          # threads 1 to 4
 *
 * GCC/clang vector extensions (not intrinsics) keep it portable: on a CPU
 * without 512-bit vectors the compiler splits v16 into two halves, and the
 * figure says so by coming out no higher than the v8 one. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

#define ACC 12          /* independent chains: latency 4 x 2 pipes = 8 needed, 12 to spare */
#define ITERS 20000000L /* per thread; about 0.1 s */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One thread's loop. The multiplier is slightly below 1 and the addend tiny,
 * so the values stay finite and normal for any number of iterations; the
 * result is summed and printed so the compiler cannot drop the work. The
 * expression a * m + c is contracted into one FMA (-ffp-contract=fast, GCC's
 * default outside strict ISO mode; clang: fp-contract on). */
#define FMA_LOOP(V, LANES)                                                \
    static float fma_loop_##V(long iters, float seed) {                   \
        V acc[ACC], m, c;                                                 \
        for (int l = 0; l < LANES; l++) { m[l] = 0.999999f; c[l] = 1e-7f; } \
        for (int a = 0; a < ACC; a++)                                     \
            for (int l = 0; l < LANES; l++) acc[a][l] = seed + (float)(a + l); \
        for (long i = 0; i < iters; i++) {                                \
            _Pragma("GCC unroll 16")    /* all chains in registers */     \
            for (int a = 0; a < ACC; a++) acc[a] = acc[a] * m + c;        \
            __asm__ volatile("" : "+x"(m)); /* m is opaque: no folding */ \
        }                                                                 \
        float s = 0.0f;                                                   \
        for (int a = 0; a < ACC; a++)                                     \
            for (int l = 0; l < LANES; l++) s += acc[a][l];               \
        return s;                                                         \
    }
FMA_LOOP(v8, 8)
FMA_LOOP(v16, 16)

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    if (max_threads < 1) max_threads = 1;
    float sink = 0.0f;
    for (int width = 8; width <= 16; width *= 2) {
        for (int threads = 1; threads <= max_threads; threads++) {
            double gflops[7];
            for (int run = 0; run < 7; run++) {
                double t0 = now();
                #pragma omp parallel num_threads(threads) reduction(+:sink)
                sink += width == 8 ? fma_loop_v8(ITERS, (float)omp_get_thread_num())
                                   : fma_loop_v16(ITERS, (float)omp_get_thread_num());
                double seconds = now() - t0;
                gflops[run] = 2.0 * width * ACC * (double)ITERS * threads / seconds * 1e-9;
            }
            qsort(gflops, 7, sizeof gflops[0], cmp_double);
            printf("%2d-float vectors, %d thread%s: %6.1f GFLOP/s (median of 7; min %.1f, max %.1f)\n",
                   width, threads, threads > 1 ? "s" : " ", gflops[3], gflops[0], gflops[6]);
        }
    }
    if (sink == 12345.0f) printf("(%g)\n", sink); /* keep the results alive */
    return 0;
}
