/* goldens.h — what lamp's model suites share: readers for the golden files
 * (their layouts are in tests/golden/README.md) and the comparisons that
 * several suites make of run.c's and train.c's results. Each suite keeps its
 * own tolerances and messages; the code here measures, the suite judges.
 *
 * Include it after run.c or train.c (it calls their functions), like
 * testutil.h. The second half, for train.c, is compiled only where train.c
 * is included (the suites that do so define TRAIN_NO_MAIN). */
/* Its functions are `static inline` (see testutil.h). */
#ifndef LAMP_GOLDENS_H
#define LAMP_GOLDENS_H

#include "tests/testutil.h"

/* One thread: the thread count changes no bit (check_threads_bit_identical
 * below), and thousands of tiny forward passes on two threads can crawl on a
 * busy machine, where every parallel region waits for a descheduled thread. */
static inline void one_thread(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* A golden file, whole; the test fails if it is missing. */
static inline char *slurp_golden(const char *path, size_t *size) {
    char *data = slurp(path, size);
    ck_assert_msg(data != NULL, "missing golden %s (tests/golden/README.md says which script makes it)", path);
    return data;
}

/* ---------------------------------------------------------------------------
 * run.c: logits against a golden, one token at a time
 * -------------------------------------------------------------------------*/

/* A .logits golden: a token sequence and the logits a reference (Hugging
 * Face transformers, or a numpy model) computed at each position. Layout:
 * int32 n_positions, int32 vocab_size, int32 ids[n_positions],
 * float32 logits[n_positions][vocab_size]. */
typedef struct {
    int n_positions, vocab_size;
    int *ids;       /* (n_positions) the input sequence */
    float *logits;  /* (n_positions, vocab_size) what the reference computed */
    char *raw;      /* the whole file: free(g.raw) frees it all */
} Logits;

static inline Logits read_logits(const char *path) {
    Logits g;
    size_t size;
    g.raw = slurp_golden(path, &size);
    memcpy(&g.n_positions, g.raw, 4);
    memcpy(&g.vocab_size, g.raw + 4, 4);
    size_t expected = 8 + 4 * (size_t)g.n_positions * (1 + (size_t)g.vocab_size);
    ck_assert_msg(size == expected, "%s: %zu bytes, expected %zu", path, size, expected);
    g.ids = (int *)(g.raw + 8);
    g.logits = (float *)(g.raw + 8 + 4 * (size_t)g.n_positions);
    return g;
}

/* How far run.c's logits are from a golden's, position by position. */
typedef struct {
    int n_positions;
    float *at;              /* (n_positions) max |logit - golden| at each position */
    float worst;            /* the largest |logit - golden| of all */
    int worst_pos, worst_id; /* where it is: position and token id */
} LogitErrors;

/* The two ways run.c computes logits: Part I's forward(), one token at a
 * time (`./run --reference`), and Part II's forward_chunk(), a chunk of
 * positions at a time (what ./run does). */
enum { PATH_REFERENCE, PATH_FAST };
static inline const char *path_name(int path) { return path == PATH_FAST ? "fast" : "reference"; }

/* Run the model over the golden's sequence, on the given path, and compare
 * every logit with the golden's. The fast path takes the sequence in
 * chunks of CHUNK positions with every position's logits. free(e.at) when
 * done. */
static inline LogitErrors logit_errors_on(int path, const char *model_path, const char *golden_path) {
    Logits g = read_logits(golden_path);
    Transformer t;
    build_transformer(&t, model_path);
    if (path == PATH_FAST) malloc_fast_state(&t);
    else malloc_run_state(&t);
    ck_assert_int_eq(t.config.vocab_size, g.vocab_size);
    ck_assert_int_le(g.n_positions, t.config.seq_len);
    LogitErrors e = {g.n_positions, malloc(sizeof(float) * g.n_positions), 0.0f, -1, -1};
    ck_assert_ptr_nonnull(e.at);
    const float *chunk_logits = NULL;
    for (int pos = 0; pos < g.n_positions; pos++) {
        const float *logits;
        if (path == PATH_REFERENCE) {
            logits = forward(&t, g.ids[pos], pos);
        } else {
            if (pos % CHUNK == 0) {
                int m = g.n_positions - pos < CHUNK ? g.n_positions - pos : CHUNK;
                chunk_logits = forward_chunk(&t, g.ids + pos, m, pos, LOGITS_ALL);
            }
            logits = chunk_logits + (size_t)(pos % CHUNK) * g.vocab_size;
        }
        const float *want = g.logits + (size_t)pos * g.vocab_size;
        float here = 0.0f;
        for (int i = 0; i < g.vocab_size; i++) {
            float d = fabsf(logits[i] - want[i]);
            /* !(d <= x) rather than d > x: every comparison with a NaN is false, so
             * this takes a NaN in where d > x would pass over it */
            if (!(d <= here)) here = d;
            if (!(d <= e.worst)) { e.worst = d; e.worst_pos = pos; e.worst_id = i; }
        }
        e.at[pos] = here;
    }
    free_transformer(&t);
    free(g.raw);
    return e;
}

/* Both paths: the worse of the two, position by position. */
static inline LogitErrors logit_errors(const char *model_path, const char *golden_path) {
    LogitErrors e = logit_errors_on(PATH_REFERENCE, model_path, golden_path);
    LogitErrors f = logit_errors_on(PATH_FAST, model_path, golden_path);
    for (int pos = 0; pos < e.n_positions; pos++)
        if (!(f.at[pos] <= e.at[pos])) e.at[pos] = f.at[pos];
    if (!(f.worst <= e.worst)) { e.worst = f.worst; e.worst_pos = f.worst_pos; e.worst_id = f.worst_id; }
    free(f.at);
    return e;
}

/* ---------------------------------------------------------------------------
 * run.c: a prompt in chunks vs one token at a time
 *
 * The fast path feeds a prompt through forward_chunk, many positions per
 * call (with matrix-matrix kernels), and generates with the chunk of one
 * (matrix-vector). Both must give the same logits, up to the order in
 * which floats are summed. (Part I's forward() against the fast path:
 * test_forward.c's greedy_fast_vs_reference.)
 * -------------------------------------------------------------------------*/

/* Feed `n` tokens one position at a time through the fast path (the chunk
 * of one), then again in chunks of the given sizes (cycled), then through
 * prefill() (the path generate() takes: the logits of the last position
 * only); return the largest |difference| from the one-at-a-time logits at
 * any position. t needs the fast run state. */
static inline float chunked_vs_single(Transformer *t, const int *ids, int n, const int *sizes, int n_sizes) {
    int vocab = t->config.vocab_size;
    float *single = malloc(sizeof(float) * (size_t)n * vocab);
    ck_assert_ptr_nonnull(single);
    for (int pos = 0; pos < n; pos++)
        memcpy(single + (size_t)pos * vocab, forward_chunk(t, ids + pos, 1, pos, LOGITS_LAST), sizeof(float) * vocab);
    float worst = 0.0f;
    for (int pos = 0, k = 0; pos < n; k++) {
        int m = sizes[k % n_sizes];
        if (m > n - pos) m = n - pos;
        const float *logits = forward_chunk(t, ids + pos, m, pos, LOGITS_ALL);
        for (size_t i = 0; i < (size_t)m * vocab; i++) {
            float d = fabsf(logits[i] - single[(size_t)pos * vocab + i]);
            if (!(d <= worst)) worst = d;   /* NaN counts as the worst */
        }
        pos += m;
    }
    const float *last = prefill(t, ids, n, 0);
    for (int i = 0; i < vocab; i++) {
        float d = fabsf(last[i] - single[(size_t)(n - 1) * vocab + i]);
        if (!(d <= worst)) worst = d;
    }
    free(single);
    return worst;
}

/* The two ways every suite cuts a prompt: into chunks of CHUNK positions (as
 * many full ones as fit, then the rest), the result in *full; and into
 * chunks of 1, 3, 4, 7, 13, 5, 2, 9 positions, cycled, which end at every
 * remainder of the kernels' loops, the result in *odd. */
static inline void prefill_errors(Transformer *t, const int *ids, int n, float *full, float *odd) {
    const int full_sizes[] = {CHUNK}, odd_sizes[] = {1, 3, 4, 7, 13, 5, 2, 9};
    *full = chunked_vs_single(t, ids, n, full_sizes, 1);
    *odd = chunked_vs_single(t, ids, n, odd_sizes, 8);
}

/* prefill_errors on the model file at `model_path`, over a fixed
 * pseudo-random sequence of min(seq_len, 200) token ids; returns its length. */
static inline int prefill_errors_of_file(const char *model_path, float *full, float *odd) {
    Transformer t;
    build_transformer(&t, model_path);
    malloc_fast_state(&t);
    int n = t.config.seq_len < 200 ? t.config.seq_len : 200;   /* 200: a full chunk of 128 and 72 more */
    int *ids = malloc(sizeof(int) * n);
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < n; i++) ids[i] = (i * 7919 + 13) % t.config.vocab_size;
    prefill_errors(&t, ids, n, full, odd);
    free(ids);
    free_transformer(&t);
    return n;
}

/* ---------------------------------------------------------------------------
 * run.c: the thread count changes no bit
 * -------------------------------------------------------------------------*/

#ifdef _OPENMP
/* Each output row of a matmul and each attention head is computed by one
 * thread, in the same order whatever the thread count: 16 positions one
 * token at a time and then a chunk of 23 must give the same bits on 1 thread
 * and on 2. Leaves OpenMP set to use every processor. */
static inline void check_threads_bit_identical(const char *model_path) {
    Transformer t;
    build_transformer(&t, model_path);
    malloc_run_state(&t);
    malloc_fast_state(&t);
    int n = t.config.vocab_size, steps = 16, chunk = 23;
    int ids[23];
    for (int i = 0; i < chunk; i++) ids[i] = (i * 53 + 1) % n;
    /* per thread count: the reference's 16 positions, then the fast path's
     * 16 positions one at a time and a chunk of 23 */
    size_t per_run = (size_t)n * (2 * steps + chunk);
    float *one = malloc(sizeof(float) * per_run);
    ck_assert_ptr_nonnull(one);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        size_t at = 0;
        for (int k = 0; k < 2 * steps + 1; k++) {
            int pos = k % steps, token = (pos * 37) % n;
            const float *logits = k < steps         ? forward(&t, token, pos)
                                  : k < 2 * steps   ? forward_chunk(&t, &token, 1, pos, LOGITS_LAST)
                                                    : forward_chunk(&t, ids, chunk, steps, LOGITS_ALL);
            size_t count = (size_t)n * (k < 2 * steps ? 1 : chunk);
            if (threads == 1) memcpy(one + at, logits, sizeof(float) * count);
            else ck_assert_msg(memcmp(one + at, logits, sizeof(float) * count) == 0,
                               "%s: logits (%s path, step %d) differ between 1 and %d threads", model_path,
                               k < steps ? "reference" : "fast", k, threads);
            at += count;
        }
    }
    free(one);
    free_transformer(&t);
    omp_set_num_threads(omp_get_num_procs());
}
#endif

/* ---------------------------------------------------------------------------
 * train.c (only where it is included)
 * -------------------------------------------------------------------------*/

#ifdef TRAIN_NO_MAIN

static const char *const TENSOR_NAMES[N_TENSORS] = {
    "token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
    "w1", "w2", "w3", "rms_final_weight", "wcls"};

/* A training golden (.grads, .adamw): int32 n_ints, int32 ints[n_ints],
 * float32 floats to the end of the file. What the numbers mean depends on
 * the file (tests/golden/README.md). */
typedef struct {
    char *raw;      /* the whole file: free(g.raw) frees it all */
    int n_ints;
    const int32_t *ints;
    const float *floats;
    size_t n_floats;
} TrainGolden;

static inline TrainGolden read_train_golden(const char *path) {
    TrainGolden g;
    size_t size;
    g.raw = slurp_golden(path, &size);
    memcpy(&g.n_ints, g.raw, 4);
    ck_assert(g.n_ints >= 0 && 4 + 4 * (size_t)g.n_ints <= size);
    g.ints = (const int32_t *)(g.raw + 4);
    g.floats = (const float *)(g.raw + 4 + 4 * (size_t)g.n_ints);
    g.n_floats = (size_t)(size - 4 - 4 * (size_t)g.n_ints) / 4;
    return g;
}

/* Split (B, T + 1) windows into inputs and targets, as next_batch does. */
static inline void split_windows(const int32_t *windows, int B, int T, int *inputs, int *targets) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = windows[b * (T + 1) + t];
            targets[b * T + t] = windows[b * (T + 1) + t + 1];
        }
}

/* A .grads golden, one batch through a model (gen_train.py's layout): the
 * ints are B, T, V, then the B token windows of T + 1; the floats are the
 * mean loss, the logits (B*T, V), then every gradient in lamp's tensor
 * order. */
typedef struct {
    TrainGolden file;
    int B, T, V;
    int *inputs, *targets;   /* (B*T) each, split from the windows */
    float loss;
    const float *logits, *grads;
} Grads;

static inline Grads read_grads(const char *path) {
    Grads g;
    g.file = read_train_golden(path);
    ck_assert(g.file.n_ints >= 3);
    g.B = g.file.ints[0], g.T = g.file.ints[1], g.V = g.file.ints[2];
    ck_assert_int_eq(g.file.n_ints, 3 + g.B * (g.T + 1));
    g.inputs = malloc(sizeof(int) * g.B * g.T);
    g.targets = malloc(sizeof(int) * g.B * g.T);
    ck_assert(g.inputs && g.targets);
    split_windows(g.file.ints + 3, g.B, g.T, g.inputs, g.targets);
    g.loss = g.file.floats[0];
    g.logits = g.file.floats + 1;
    g.grads = g.file.floats + 1 + (size_t)g.B * g.T * g.V;
    return g;
}

static inline void free_grads(Grads *g) {
    free(g->inputs);
    free(g->targets);
    free(g->file.raw);
}

/* The model of a .grads golden in train.c, for batches of its B; checks that
 * the model and the golden fit each other. */
static inline void load_grads_model(Model *m, const char *model_path, const Grads *g) {
    load_model_file(m, model_path, g->B, NULL);
    ck_assert_int_eq(m->config.seq_len, g->T);
    ck_assert_int_eq(m->config.vocab_size, g->V);
    ck_assert_msg(g->file.n_floats == 1 + (size_t)g->B * g->T * g->V + m->n_params, "golden size");
}

/* max |a - b| over n values. */
static inline double max_error(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d;   /* NaN counts as the worst */
    }
    return worst;
}

/* max |a - b| / max |b| over n values: the error relative to the tensor's scale. */
static inline double scaled_error(const float *a, const float *b, size_t n) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d;   /* NaN counts as the worst */
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return scale > 0 ? worst / scale : worst;
}

/* Central differences, (L(w + e) - L(w - e)) / 2e with e = 1e-2, against the
 * gradient of tensor i that model_backward left in m->grads for this batch,
 * on 4 of its entries: the 2 with the largest |gradient| and 2 drawn from
 * rng. Each must be within 1e-3 |g| + 2e-4 (why e and this bound:
 * test_finite_differences in tests/test_train.c); a failure's message ends
 * with `hint`. Returns the largest |fd - g|. */
static inline double check_finite_differences(Model *m, int i, const int *inputs, const int *targets, int B,
                                       uint64_t *rng, const char *hint) {
    const float eps = 1e-2f;
    size_t n = m->numel[i], picks[4] = {0, 0, 0, 0};
    const float *grad = m->grads.tensor[i];
    for (size_t j = 0; j < n; j++) {   /* the two largest |g| */
        if (fabsf(grad[j]) > fabsf(grad[picks[0]])) { picks[1] = picks[0]; picks[0] = j; }
        else if (j != picks[0] && fabsf(grad[j]) > fabsf(grad[picks[1]])) picks[1] = j;
    }
    picks[2] = random_u32(rng) % n;
    picks[3] = random_u32(rng) % n;
    double worst = 0.0;
    for (int p = 0; p < 4; p++) {
        float *w = &m->params.tensor[i][picks[p]], saved = *w, analytic = grad[picks[p]];
        *w = saved + eps;
        double plus = model_forward(m, inputs, targets, B);
        *w = saved - eps;
        double minus = model_forward(m, inputs, targets, B);
        *w = saved;
        double fd = (plus - minus) / (2.0 * eps), err = fabs(fd - analytic);
        worst = fmax(worst, err);
        ck_assert_msg(err <= 1e-3 * fabs(analytic) + 2e-4, "%s[%zu]: finite difference %.6g, backward %.6g%s",
                      TENSOR_NAMES[i], picks[p], fd, analytic, hint);
    }
    return worst;
}

/* run.c's forward (one token at a time) and train.c's model_forward (a batch
 * of one sequence) on the same model, fed seq_len (at most 64) fixed
 * pseudo-random tokens: the largest |logit difference| at any position.
 * `m` must be loaded for batches of 1. */
static inline double run_c_vs_train_c(Transformer *t, Model *m) {
    int T = m->config.seq_len, V = m->config.vocab_size, ids[64];
    ck_assert_int_le(T, 64);
    uint64_t rng = 5;
    for (int i = 0; i < T; i++) ids[i] = (int)(random_u32(&rng) % (uint32_t)V);
    model_forward(m, ids, NULL, 1);
    double worst = 0.0;
    for (int pos = 0; pos < T; pos++) {
        const float *logits = forward(t, ids[pos], pos);
        for (int i = 0; i < V; i++) {
            double d = fabs((double)logits[i] - m->acts.logits[(size_t)pos * V + i]);
            if (!(d <= worst)) worst = d;
        }
    }
    return worst;
}

/* A small training text at `path`, in the folder `dir` (made if missing):
 * the first 20 KB of the TinyStories validation file. */
static inline void make_training_text(const char *dir, const char *path) {
    mkdir(TMP_DIR, 0755);
    mkdir(dir, 0755);
    size_t size;
    char *text = slurp("data/tinystories/valid.txt", &size);
    ck_assert_ptr_nonnull(text);
    write_file(path, text, size < 20000 ? size : 20000);
    free(text);
}

#endif /* TRAIN_NO_MAIN */

#endif
