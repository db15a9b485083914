/* roofline.c — measure the two ceilings of this machine that bound run.c's
 * speed (docs/performance.md):
 *
 *   read bandwidth  GB/s a core (or all cores) can stream from memory. When
 *                   generating, every weight is read once per token, so
 *                   tokens/s <= bandwidth / bytes of weights.
 *   FMA peak        float multiply-adds per second, counted as 2 FLOPs each.
 *                   Processing a prompt in chunks reuses every weight, so
 *                   tokens/s <= peak / FLOPs per token.
 *   int8 peak       int8 multiply-adds per second with the AVX2 sequence of
 *                   run.c's dot_q8_avx2 (vpmaddubsw + vpmaddwd + vpaddd), and,
 *                   where the CPU has AVX-512 VNNI, with the vpdpbusd of
 *                   run.c's tiled int8 kernel (q8_tile_sums_vnni512).
 *
 * Each number is the median of 7 runs, for 1 thread and for N threads.
 * Output: one line per measurement, "name threads value", for
 * tools/bench.py to read, e.g. "read_GBps 2 51.9". With --read-only, just
 * the read bandwidth at N threads (median of 5, a fraction of a second):
 * tools/bench.py measures it beside every decode run, because on a shared
 * (virtual) machine the bandwidth two threads get varies from minute to
 * minute (33 to 77 GB/s on the reference machine within a quarter hour).
 *
 *   build/bench/roofline --threads 2        (make bench compiles it)
 *
 * The loops use GCC/Clang vector extensions (vector_size): portable across
 * CPUs, the compiler picks the instructions. Several independent
 * accumulators keep enough loads / FMAs in flight to saturate the hardware
 * (an FMA takes ~4 cycles and a core starts two per cycle, so it needs at
 * least 8 independent chains). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define RUNS 7

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
    return n;
#else
    (void)n;
    return 1;
#endif
}

/* --- read bandwidth ------------------------------------------------------ */

typedef float v8f __attribute__((vector_size(32)));   /* 8 floats, one AVX register */

static volatile float sink;   /* keeps the sums alive, so the loops are not removed */

/* Sum a buffer of n floats; each thread streams one contiguous block, as
 * run.c's matmul does with the rows of W. Four accumulators: 128 bytes, two
 * cache lines, per iteration. Returns GB/s. */
static double read_bandwidth(const float *a, size_t n) {
    double t0 = now();
    float total = 0.0f;
    #pragma omp parallel reduction(+:total)
    {
        v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        const v8f *p = (const v8f *)a;
        long blocks = (long)(n / 32);
        #pragma omp for schedule(static)
        for (long i = 0; i < blocks; i++) {
            s0 += p[4 * i];
            s1 += p[4 * i + 1];
            s2 += p[4 * i + 2];
            s3 += p[4 * i + 3];
        }
        v8f s = (s0 + s1) + (s2 + s3);
        for (int k = 0; k < 8; k++) total += s[k];
    }
    double seconds = now() - t0;
    sink = total;
    return (double)n * sizeof(float) / seconds / 1e9;
}

/* --- FMA peak ------------------------------------------------------------- */

static int omp_threads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}


/* VEC_BYTES-wide vectors: 64 with AVX-512, 32 with AVX, 16 with SSE/NEON.
 * Twelve independent chains, written out so they stay in registers. */
#define FMA_PEAK(name, VEC_BYTES)                                                          \
    static double name(long iterations) {                                                  \
        typedef float vec __attribute__((vector_size(VEC_BYTES)));                         \
        enum { LANES = VEC_BYTES / 4, CHAINS = 12 };                                        \
        double t0 = now();                                                                 \
        float total = 0.0f;                                                                \
        int threads = 1;                                                                   \
        _Pragma("omp parallel reduction(+:total)")                                         \
        {                                                                                  \
            vec m, c;                                                                      \
            for (int k = 0; k < LANES; k++) { m[k] = 0.999999f; c[k] = 1e-7f; }            \
            vec a0 = c, a1 = c * 2, a2 = c * 3, a3 = c * 4, a4 = c * 5, a5 = c * 6;        \
            vec a6 = c * 7, a7 = c * 8, a8 = c * 9, a9 = c * 10, a10 = c * 11, a11 = c * 12; \
            for (long i = 0; i < iterations; i++) { /* 12 FMAs */                           \
                a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;         \
                a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;         \
                a8 = a8 * m + c; a9 = a9 * m + c; a10 = a10 * m + c; a11 = a11 * m + c;     \
            }                                                                              \
            vec s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)); \
            for (int k = 0; k < LANES; k++) total += s[k];                                  \
            _Pragma("omp single") threads = omp_threads();                                 \
        }                                                                                  \
        double seconds = now() - t0;                                                       \
        sink = total;                                                                      \
        return 2.0 * LANES * CHAINS * (double)iterations * threads / seconds / 1e9;        \
    }

FMA_PEAK(fma_peak_128, 16)
FMA_PEAK(fma_peak_256, 32)
#if defined(__AVX512F__)
FMA_PEAK(fma_peak_512, 64)
#endif

/* --- int8 peak: run.c's AVX2 int8 dot product sequence ------------------- */

#if defined(__AVX2__)
/* 32 int8 multiply-adds into acc, as run.c's dot32_i8 + the add */
#define INT8_STEP(acc, w, x) \
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x)), ones))

static double int8_peak(long iterations) {
    double t0 = now();
    int total = 0, threads = 1;
    #pragma omp parallel reduction(+:total)
    {
        __m256i ones = _mm256_set1_epi16(1), w = _mm256_set1_epi8(3);
        __m256i x0 = _mm256_set1_epi8(-5), x1 = _mm256_set1_epi8(7), x2 = _mm256_set1_epi8(-9), x3 = _mm256_set1_epi8(11);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (long i = 0; i < iterations; i++) {
            /* tell the compiler the inputs change, so it recomputes the products
             * (in run.c they are fresh loads); this emits no instruction */
            __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(w));
            INT8_STEP(a0, w, x0); INT8_STEP(a1, w, x1); INT8_STEP(a2, w, x2); INT8_STEP(a3, w, x3);
            INT8_STEP(a4, x0, x1); INT8_STEP(a5, x1, x2); INT8_STEP(a6, x2, x3); INT8_STEP(a7, x3, x0);
        }
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                     _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
        total += _mm256_extract_epi32(s, 0);
        #pragma omp single
        threads = omp_threads();
    }
    double seconds = now() - t0;
    sink = (float)total;
    return 32.0 * 8 * (double)iterations * threads / seconds / 1e9;
}
#endif

#if defined(__AVX512VNNI__)
/* 64 int8 multiply-adds into acc: one vpdpbusd, as in q8_tile_sums_vnni512 */
static double int8_vnni512_peak(long iterations) {
    double t0 = now();
    int total = 0, threads = 1;
    #pragma omp parallel reduction(+:total)
    {
        __m512i w = _mm512_set1_epi8(3), x0 = _mm512_set1_epi8(5), x1 = _mm512_set1_epi8(7);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (long i = 0; i < iterations; i++) {
            __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(w));   /* as in int8_peak */
            a0 = _mm512_dpbusd_epi32(a0, x0, w); a1 = _mm512_dpbusd_epi32(a1, x1, w);
            a2 = _mm512_dpbusd_epi32(a2, x0, w); a3 = _mm512_dpbusd_epi32(a3, x1, w);
            a4 = _mm512_dpbusd_epi32(a4, x0, w); a5 = _mm512_dpbusd_epi32(a5, x1, w);
            a6 = _mm512_dpbusd_epi32(a6, x0, w); a7 = _mm512_dpbusd_epi32(a7, x1, w);
        }
        __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                     _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
        total += _mm512_reduce_add_epi32(s);
        #pragma omp single
        threads = omp_threads();
    }
    double seconds = now() - t0;
    sink = (float)total;
    return 64.0 * 8 * (double)iterations * threads / seconds / 1e9;
}
#endif

int main(int argc, char **argv) {
    int threads = 2, read_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--read-only")) read_only = 1;
        else {
            fprintf(stderr, "usage: roofline [--threads N] [--read-only]\n");
            return 1;
        }
    }
    if (threads < 1) threads = 1;
    size_t n = (size_t)1 << 28;   /* 1 GiB of floats: far beyond any cache */
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) {
        fprintf(stderr, "roofline: cannot allocate 1 GiB\n");
        return 1;
    }
    set_threads(threads);
    #pragma omp parallel for schedule(static)   /* touch every page, as each thread will read it */
    for (long i = 0; i < (long)n; i++) a[i] = 1.0f;

    if (read_only) {
        double v[5];
        set_threads(threads);
        for (int r = 0; r < 5; r++) v[r] = read_bandwidth(a, n);
        printf("read_GBps %d %.1f\n", threads, median(v, 5));
        free(a);
        return 0;
    }
    int counts[2] = {1, threads};
    for (int c = 0; c < (threads > 1 ? 2 : 1); c++) {
        int t = set_threads(counts[c]);
        double v[RUNS];
        read_bandwidth(a, n);   /* warm-up */
        for (int r = 0; r < RUNS; r++) v[r] = read_bandwidth(a, n);
        printf("read_GBps %d %.1f\n", t, median(v, RUNS));
        for (int r = 0; r < RUNS; r++) v[r] = fma_peak_128(20000000);
        printf("fma128_GFLOPs %d %.1f\n", t, median(v, RUNS));
        for (int r = 0; r < RUNS; r++) v[r] = fma_peak_256(20000000);
        printf("fma256_GFLOPs %d %.1f\n", t, median(v, RUNS));
#if defined(__AVX512F__)
        for (int r = 0; r < RUNS; r++) v[r] = fma_peak_512(20000000);
        printf("fma512_GFLOPs %d %.1f\n", t, median(v, RUNS));
#endif
#if defined(__AVX2__)
        for (int r = 0; r < RUNS; r++) v[r] = int8_peak(20000000);
        printf("int8_avx2_GMACs %d %.1f\n", t, median(v, RUNS));
#endif
#if defined(__AVX512VNNI__)
        for (int r = 0; r < RUNS; r++) v[r] = int8_vnni512_peak(20000000);
        printf("int8_vnni512_GMACs %d %.1f\n", t, median(v, RUNS));
#endif
        fflush(stdout);
    }
    free(a);
    return 0;
}
