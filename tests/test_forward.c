/* test_forward.c — run.c's forward pass against Hugging Face transformers.
 *
 * tests/golden/gen_forward.py builds small random LlamaForCausalLM models
 * (grouped-query attention, separate classifier, rope_theta != 10000,
 * eps != 1e-5, head_dim != dim / n_heads), runs them on a 64-token sequence
 * in PyTorch, and saves the model as lamp (and llama2.c) files next to the
 * logits at every position. Here run.c loads the same files and must give
 * the same logits, within 1e-4, at every position.
 *
 * The int8 (Q8_0) path is checked the same way against
 * tests/golden/gen_forward_q8.py, a numpy model of exactly its arithmetic;
 * then come the properties the fast paths must keep: a prompt processed in
 * chunks gives the logits of one token at a time (for int8, the same
 * bits), the AVX2 int8 kernel and every tiled int8 kernel give the bits of
 * the plain C loop, run.c's quantizer gives the bytes of
 * the Python one, eval's loss is the sum of the forward pass's, and the
 * thread count changes nothing. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"
#include "tests/goldens.h"

#define TOLERANCE 1e-4f
/* int8 vs its numpy model. Both quantize the activations before each
 * matmul, and where an activation lies within float rounding of the
 * midpoint between two int8 steps, run.c (float32) and numpy (float64) round
 * it to neighbouring values: one step of one activation, which moves that
 * position's logits by up to ~0.07 in these small random models (their
 * weights are large on purpose). Measured: at most one such position per
 * file, the others within 2.1e-6. So: every position within Q8_TOLERANCE,
 * except at most Q8_MAX_FLIPS of the 64, which must stay within
 * Q8_FLIP_BOUND (for scale: int8 and float32 logits differ by 0.2-0.4).
 * A wrong scale, group or rounding rule moves every position. */
#define Q8_TOLERANCE 1e-4f
#define Q8_MAX_FLIPS 2
#define Q8_FLIP_BOUND 0.15f
/* chunked prompt processing vs one token at a time */
#define PREFILL_TOLERANCE 1e-5f

/* Run the model over the golden sequence on one path (goldens.h); return the
 * largest |difference|, and in *n_over (if not NULL) at how many positions
 * it exceeds `tolerance`. */
static float logit_error_on(int path, const char *model_path, const char *golden_path, float tolerance,
                            int *n_over) {
    LogitErrors e = logit_errors_on(path, model_path, golden_path);
    float rest = 0.0f;   /* the worst at positions within tolerance */
    int over = 0;
    for (int pos = 0; pos < e.n_positions; pos++) {
        if (!(e.at[pos] <= tolerance)) over++;
        else if (e.at[pos] > rest) rest = e.at[pos];
    }
    if (n_over) {
        *n_over = over;
        printf("%-45s %-9s max |logit - numpy| = %.3g (position %d, token %d); %d of %d positions over %g, "
               "the others within %.3g\n", model_path, path_name(path), e.worst, e.worst_pos, e.worst_id, over,
               e.n_positions, tolerance, rest);
    } else {
        printf("%-45s %-9s max |logit - transformers| = %.3g (position %d, token %d)\n", model_path,
               path_name(path), e.worst, e.worst_pos, e.worst_id);
    }
    free(e.at);
    return e.worst;
}

/* Every golden through both paths: Part I's reference and Part II's fast one. */
#define FORWARD_TEST(name, model, golden)                                                \
    START_TEST(name) {                                                                   \
        for (int path = PATH_REFERENCE; path <= PATH_FAST; path++) {                     \
            float err = logit_error_on(path, "tests/golden/forward/" model,              \
                                       "tests/golden/forward/" golden, TOLERANCE, NULL); \
            ck_assert_msg(err <= TOLERANCE, "%s (%s path): max |delta| %g > %g", model,  \
                          path_name(path), err, TOLERANCE);                              \
        }                                                                                \
    }                                                                                    \
    END_TEST

FORWARD_TEST(test_gqa_untied, "gqa-untied.lamp", "gqa-untied.logits")
FORWARD_TEST(test_mqa_tied, "mqa-tied.lamp", "mqa-tied.logits")
FORWARD_TEST(test_mha_pad, "mha-pad.lamp", "mha-pad.logits")
FORWARD_TEST(test_llama2c_lamp, "llama2c-compat.lamp", "llama2c-compat.logits")
FORWARD_TEST(test_llama2c_v0, "llama2c-compat.v0.bin", "llama2c-compat.logits")
FORWARD_TEST(test_llama2c_v1, "llama2c-compat.v1.bin", "llama2c-compat.logits")

#define Q8_TEST(name, model, golden)                                                            \
    START_TEST(name) {                                                                          \
        one_thread();                                                                           \
        for (int path = PATH_REFERENCE; path <= PATH_FAST; path++) {                            \
            int over;                                                                           \
            float err = logit_error_on(path, "tests/golden/forward_q8/" model,                  \
                                       "tests/golden/forward_q8/" golden, Q8_TOLERANCE, &over); \
            ck_assert_msg(over <= Q8_MAX_FLIPS && err <= Q8_FLIP_BOUND,                         \
                          "%s (%s path): %d positions over %g (at most %d allowed), max |delta| %g", \
                          model, path_name(path), over, Q8_TOLERANCE, Q8_MAX_FLIPS, err);       \
        }                                                                                       \
    }                                                                                           \
    END_TEST

Q8_TEST(test_q8_gqa, "q8-gqa.lamp", "q8-gqa.logits")
Q8_TEST(test_q8_mqa_tied, "q8-mqa-tied.lamp", "q8-mqa-tied.logits")
Q8_TEST(test_q8_llama2c_lamp, "q8-llama2c.lamp", "q8-llama2c.logits")
Q8_TEST(test_q8_llama2c_v2, "q8-llama2c.v2.bin", "q8-llama2c.logits")

/* The lamp and llama2.c version 2 files of q8-llama2c hold the same int8
 * weights in different layouts: the logits must be bit-identical. */
START_TEST(test_q8_v2_same_as_lamp) {
    one_thread();
    Transformer a, b;
    build_transformer(&a, "tests/golden/forward_q8/q8-llama2c.lamp");
    build_transformer(&b, "tests/golden/forward_q8/q8-llama2c.v2.bin");
    malloc_run_state(&a);
    malloc_run_state(&b);
    ck_assert_int_eq(a.weights.group_size, b.weights.group_size);
    int n = a.config.vocab_size;
    for (int pos = 0; pos < 16; pos++) {
        const float *la = forward(&a, (pos * 31 + 5) % n, pos), *lb = forward(&b, (pos * 31 + 5) % n, pos);
        ck_assert_msg(memcmp(la, lb, sizeof(float) * n) == 0, "lamp and v2 logits differ at position %d", pos);
    }
    free_transformer(&a);
    free_transformer(&b);
}
END_TEST

/* The rounding rule itself: with max|x| = 127 the scale is exactly 1, so
 * x / scale = x; halves go away from zero (not to even), the largest value
 * maps to 127, an all-zero group to scale 0 and zeros. */
START_TEST(test_q8_quantizer_rounding) {
    float x[16] = {0.5f, -0.5f, 1.5f, -2.5f, 127.0f, 0.49999997f, -126.5f, 2.4999998f};
    int8_t q[16];
    float scale[2];
    quantize_q8(q, scale, x, 16, 8);
    int8_t want[16] = {1, -1, 2, -3, 127, 0, -127, 2};
    ck_assert_msg(memcmp(q, want, 16) == 0, "got %d %d %d %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]);
    ck_assert(scale[0] == 1.0f && scale[1] == 0.0f);
}
END_TEST

/* run.c quantizes activations with the rule lampfile.quantize_q8_0 applies
 * to weights. Quantizing the float32 weights of q8-gqa in C must give
 * exactly the values and scales that Python wrote into q8-gqa.lamp. */
START_TEST(test_q8_quantizer_matches_python) {
    Transformer f, q;
    build_transformer(&f, "tests/golden/forward_q8/q8-gqa.f32.lamp");
    build_transformer(&q, "tests/golden/forward_q8/q8-gqa.lamp");
    const Config *c = &f.config;
    int gs = q.weights.group_size, L = c->n_layers;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    struct { const char *name; const float *f; const QMatrix *q; int count; size_t per; } m[] = {
        {"token_embedding", f.weights.token_embedding, &q.weights.q_token_embedding, 1, (size_t)c->vocab_size * dim},
        {"wcls", f.weights.wcls, &q.weights.q_wcls, 1, (size_t)c->vocab_size * dim},
        {"wq", f.weights.wq, q.weights.q_wq, L, q_dim * dim},
        {"wk", f.weights.wk, q.weights.q_wk, L, kv_dim * dim},
        {"wv", f.weights.wv, q.weights.q_wv, L, kv_dim * dim},
        {"wo", f.weights.wo, q.weights.q_wo, L, dim * q_dim},
        {"w1", f.weights.w1, q.weights.q_w1, L, hidden * dim},
        {"w2", f.weights.w2, q.weights.q_w2, L, dim * hidden},
        {"w3", f.weights.w3, q.weights.q_w3, L, hidden * dim},
    };
    size_t checked = 0;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        for (int l = 0; l < m[i].count; l++) {
            size_t n = m[i].per;
            int8_t *values = malloc(n);
            float *scales = malloc(n / gs * sizeof(float));
            quantize_q8(values, scales, m[i].f + l * n, n, gs);
            ck_assert_msg(memcmp(values, m[i].q[l].q, n) == 0, "%s[%d]: int8 values differ from Python's", m[i].name, l);
            ck_assert_msg(memcmp(scales, m[i].q[l].s, n / gs * sizeof(float)) == 0, "%s[%d]: scales differ", m[i].name, l);
            checked += n;
            free(values);
            free(scales);
        }
    }
    printf("quantize_q8 = lampfile.quantize_q8_0 on %zu weights of q8-gqa\n", checked);
    free_transformer(&f);
    free_transformer(&q);
}
END_TEST

/* ---- chunked prompt processing ------------------------------------------ */

START_TEST(test_prefill_matches_token_by_token) {
    one_thread();
    const char *models[] = {
        "tests/golden/forward/gqa-untied.lamp",     /* seq_len 128: one full CHUNK */
        "tests/golden/forward/mha-pad.lamp",        /* rows of 40 and 100: loop tails */
        "tests/golden/forward/mqa-tied.lamp",
        "tests/golden/forward_q8/q8-gqa.lamp",
        "tests/golden/forward_q8/q8-mqa-tied.lamp",
        "tests/golden/forward_q8/q8-llama2c.v2.bin",
        "models/stories.lamp",                      /* seq_len 256: a CHUNK of 128, then 72 */
    };
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        float a, b;
        prefill_errors_of_file(models[m], &a, &b);
        printf("%-45s chunked vs one at a time: max |delta| %.3g (chunks of %d), %.3g (1, 3, 4, 7, ...)\n",
               models[m], a, CHUNK, b);
        ck_assert_msg(a <= PREFILL_TOLERANCE && b <= PREFILL_TOLERANCE, "%s: %g, %g > %g", models[m], a, b,
                      PREFILL_TOLERANCE);
        /* int8: the tiled chunk kernel does dot_q8's arithmetic, and the
         * attention of a chunk adds in the order of one position's, so the
         * logits are the same bits */
        if (strstr(models[m], "q8") || strstr(models[m], "stories.lamp"))
            ck_assert_msg(a == 0.0f && b == 0.0f, "%s (int8): chunked logits differ from one at a time by %g, %g",
                          models[m], a, b);
    }
}
END_TEST

/* ---- the fast path vs the reference over a whole generation -------------- */

/* A prompt of 40 pseudo-random tokens, then `steps` greedy tokens, on both
 * paths: Part I one token at a time, Part II with the prompt as one chunk
 * and then the chunk of one. Every greedy token must be the same, and the
 * logits within `tolerance` at every step: PREFILL_TOLERANCE for float32
 * weights. With int8 weights a last-bit difference (a chunk's attention adds
 * in another order) can move a quantized activation by one step (see
 * Q8_TOLERANCE), and over 200 steps the cache carries such steps along:
 * there the tokens must be the same and the logits within
 * Q8_GENERATION_BOUND (measured: 0.19 at most on models/stories.lamp,
 * whose logits span about 30; a wrong kernel moves them by several units).
 * Returns the largest |logit difference|. t needs both run states. */
#define Q8_GENERATION_BOUND 1.0f
static float greedy_fast_vs_reference(Transformer *t, int steps) {
    float tolerance = t->weights.group_size ? Q8_GENERATION_BOUND : PREFILL_TOLERANCE;
    int vocab = t->config.vocab_size, n_prompt = 40, ids[40];
    ck_assert_int_le(n_prompt + steps, t->config.seq_len);
    for (int i = 0; i < n_prompt; i++) ids[i] = (i * 7919 + 13) % vocab;
    const float *ref = NULL;
    for (int i = 0; i < n_prompt; i++) ref = forward(t, ids[i], i);
    const float *fast = prefill(t, ids, n_prompt, 0);
    float worst = 0.0f;
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < vocab; i++) {
            float d = fabsf(ref[i] - fast[i]);
            if (!(d <= worst)) worst = d;
        }
        int a = sample_argmax(ref, vocab), b = sample_argmax(fast, vocab);
        ck_assert_msg(a == b, "%s: greedy token %d differs: reference %d, fast %d (max |logit delta| so far %g)",
                      t->path, step, a, b, worst);
        ck_assert_msg(worst <= tolerance, "%s: step %d: fast vs reference logits differ by %g > %g", t->path,
                      step, worst, tolerance);
        int pos = n_prompt + step;
        ref = forward(t, a, pos);
        fast = forward_chunk(t, &b, 1, pos, LOGITS_LAST);
    }
    return worst;
}

/* A float32 model of the given shape with random weights, in memory (no
 * file): uniform in +-1/sqrt(fan-in), so activations stay of order one,
 * and RMSNorm gains of 1. free_random_model() frees it. */
static void random_model(Transformer *t, Config c, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->config = c;
    t->format = FORMAT_LAMP;
    t->path = "(random model)";
    size_t L = (size_t)c.n_layers, dim = (size_t)c.dim, hidden = (size_t)c.hidden_dim;
    size_t q_dim = (size_t)c.n_heads * c.head_dim, kv_dim = (size_t)c.n_kv_heads * c.head_dim;
    size_t vocab = (size_t)c.vocab_size;
    struct { const float **dst; size_t numel, fan_in; } tensors[] = {
        {&t->weights.token_embedding, vocab * dim, 1},   {&t->weights.rms_att_weight, L * dim, 0},
        {&t->weights.wq, L * q_dim * dim, dim},          {&t->weights.wk, L * kv_dim * dim, dim},
        {&t->weights.wv, L * kv_dim * dim, dim},         {&t->weights.wo, L * dim * q_dim, q_dim},
        {&t->weights.rms_ffn_weight, L * dim, 0},        {&t->weights.w1, L * hidden * dim, dim},
        {&t->weights.w2, L * dim * hidden, hidden},      {&t->weights.w3, L * hidden * dim, dim},
        {&t->weights.rms_final_weight, dim, 0},          {&t->weights.wcls, vocab * dim, dim},
    };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        float *p = malloc(tensors[i].numel * sizeof(float));
        ck_assert_ptr_nonnull(p);
        float scale = tensors[i].fan_in ? 1.0f / sqrtf((float)tensors[i].fan_in) : 0.0f;
        for (size_t j = 0; j < tensors[i].numel; j++)
            p[j] = scale > 0.0f ? (2.0f * random_f32(&seed) - 1.0f) * scale : 1.0f;
        *tensors[i].dst = p;
    }
}

static void free_random_model(Transformer *t) {
    const Weights *w = &t->weights;
    const float *owned[] = {w->token_embedding, w->rms_att_weight, w->wq, w->wk, w->wv, w->wo,
                            w->rms_ffn_weight, w->w1, w->w2, w->w3, w->rms_final_weight, w->wcls};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) free((void *)owned[i]);
    t->weights = (Weights){0};
    free_transformer(t);
}

START_TEST(test_greedy_200_default_model) {
    Transformer t;
    build_transformer(&t, "models/stories.lamp");
    malloc_run_state(&t);
    malloc_fast_state(&t);
    float worst = greedy_fast_vs_reference(&t, 200);
    printf("%-45s 200 greedy tokens: fast = reference, max |logit delta| %.3g\n", "models/stories.lamp", worst);
    free_transformer(&t);
}
END_TEST

/* stories110M's shape (dim 768, 12 layers of 12 heads, hidden 2048, vocab
 * 32000), random weights. The sanitizer build (`make asan`) checks memory,
 * not numbers, and runs ~20x slower: there a shape with every dimension
 * divided by 4 (and 3 layers) exercises the same code. */
START_TEST(test_greedy_200_stories110m_shape) {
#if defined(__SANITIZE_ADDRESS__)
    Config c = {.dim = 192, .hidden_dim = 512, .n_layers = 3, .n_heads = 3, .n_kv_heads = 3, .head_dim = 64,
                .vocab_size = 8000, .seq_len = 256, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .bos_id = 1, .eos_id = 2};
#else
    /* named fields: a Config with more fields (an exercise adds some) needs no change here */
    Config c = {.dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12, .n_kv_heads = 12, .head_dim = 64,
                .vocab_size = 32000, .seq_len = 1024, .rope_theta = 10000.0f, .norm_eps = 1e-5f, .bos_id = 1,
                .eos_id = 2};
#endif
    char why[160];
    ck_assert_msg(check_config(&c, why, sizeof why) == NULL, "%s", why);
    Transformer t;
    random_model(&t, c, 110);
    malloc_run_state(&t);
    malloc_fast_state(&t);
    float worst = greedy_fast_vs_reference(&t, 200);
    printf("random model dim %d, %d layers, vocab %d: 200 greedy tokens: fast = reference, max |logit delta| %.3g\n",
           c.dim, c.n_layers, c.vocab_size, worst);
    free_random_model(&t);
}
END_TEST

/* ---- the AVX2 int8 kernel ------------------------------------------------- */

#define NAME_OF(f) #f
#define EXPANDED_NAME(f) NAME_OF(f)   /* the name a macro stands for, as a string */

/* dot_q8_avx2 must return the bits dot_q8 returns: the int32 group sums are
 * exact either way, and the float arithmetic after them is the same
 * operations in the same order. Random rows of 1 to 40 groups, group sizes
 * 32 to 256 (and 16, which the AVX2 version hands to the plain loop). */
START_TEST(test_avx2_int8_dot_matches_portable) {
#ifdef HAVE_AVX2_KERNEL
    uint64_t rng = 42;
    int sizes[] = {16, 32, 64, 96, 128, 192, 256};
    long compared = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int gs = sizes[k];
        for (int groups = 1; groups <= 40; groups++) {
            int n = gs * groups;
            int8_t *w = malloc(n), *x = malloc(n);
            float *ws = malloc(sizeof(float) * groups), *xs = malloc(sizeof(float) * groups);
            for (int trial = 0; trial < 4; trial++) {
                for (int i = 0; i < n; i++) {
                    w[i] = (int8_t)((int)(random_u32(&rng) % 255) - 127);
                    x[i] = (int8_t)((int)(random_u32(&rng) % 255) - 127);
                }
                if (trial == 1) for (int i = 0; i < n; i++) w[i] = x[i] = (i & 1) ? -127 : 127; /* extremes */
                for (int g = 0; g < groups; g++) {
                    ws[g] = random_f32(&rng) * 0.01f;
                    xs[g] = random_f32(&rng) * 0.1f;
                }
                float a = dot_q8(w, ws, x, xs, n, gs), b = dot_q8_avx2(w, ws, x, xs, n, gs);
                ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "gs %d, %d groups: portable %.9g, AVX2 %.9g", gs,
                              groups, a, b);
                b = DOT_Q8(w, ws, x, xs, n, gs);   /* the fastest this build has: AVX-512 VNNI where there is one */
                ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "gs %d, %d groups: portable %.9g, DOT_Q8 %.9g", gs,
                              groups, a, b);
                compared++;
            }
            free(w); free(x); free(ws); free(xs);
        }
    }
    printf("dot_q8_avx2 = dot_q8 and " EXPANDED_NAME(DOT_Q8) " = dot_q8, bit for bit, in %ld random rows\n", compared);
#else
    printf("no AVX2/FMA in this build: the AVX2 int8 kernel is not compiled, nothing to compare\n");
#endif
}
END_TEST

/* ---- the tiled int8 matmul of a chunk ------------------------------------ */

/* matmul_q8_chunk() with the portable tile kernel, and with this build's
 * fast one (AVX-512 VNNI, AVX2 / AVX-VNNI, or the portable one again), must
 * both give the bits of matmul_q8() with dot_q8, one (row, position) at a
 * time: the int32 group sums are exact, and the float steps after them are
 * dot_q8's in its order. x: T positions of n floats, quantized here. Returns
 * the number of outputs compared. */
static long check_q8_chunk_kernels(const char *what, const int8_t *wq, const float *ws, int n, int d, int gs,
                                   int T, const float *x) {
    int8_t *xq = malloc((size_t)T * n);
    float *xs = malloc(sizeof(float) * ((size_t)T * n / gs));
    float *want = malloc(sizeof(float) * (size_t)T * d), *got = malloc(sizeof(float) * (size_t)T * d);
    size_t scratch_bytes = q8_panel_bytes(T, n) + sizeof(float) * q8_scale_panel_floats(T, n, gs);
    float *scratch = malloc(scratch_bytes);
    ck_assert(xq && xs && want && got && scratch);
    quantize_q8(xq, xs, x, (size_t)T * n, gs);
    matmul_q8(want, xq, xs, wq, ws, n, d, T, gs, dot_q8);
    matmul_q8(got, xq, xs, wq, ws, n, d, T, gs, DOT_Q8);   /* the one-position kernel, too */
    ck_assert_msg(memcmp(want, got, sizeof(float) * (size_t)T * d) == 0, "%s (n %d, d %d, gs %d): DOT_Q8 differs",
                  what, n, d, gs);
    for (int portable = 1; portable >= 0; portable--) {
        memset(got, 0xff, sizeof(float) * (size_t)T * d);   /* NaNs: an output left unwritten shows */
        matmul_q8_chunk(got, xq, xs, wq, ws, n, d, T, gs, scratch, portable);
        for (size_t i = 0; i < (size_t)T * d; i++)
            ck_assert_msg(memcmp(&want[i], &got[i], sizeof(float)) == 0,
                          "%s (n %d, d %d, gs %d, T %d): %s tile kernel, position %zu row %zu: %.9g, dot_q8 %.9g",
                          what, n, d, gs, T, portable ? "portable" : "fast", i / d, i % d, got[i], want[i]);
    }
    free(xq); free(xs); free(want); free(got); free(scratch);
    return (long)T * d;
}

/* Random weights and activations: group sizes 4 to 256, row counts that
 * leave tails (d % Q8_ROWS) and chunk lengths that leave part of a panel
 * (T % Q8_PANEL), extreme values (all +-127, all zero). */
START_TEST(test_q8_chunk_kernels_random) {
    uint64_t rng = 7;
    int sizes[] = {4, 8, 32, 64, 96, 128, 256}, lengths[] = {2, 5, 16, 17, 33, CHUNK}, rows[] = {1, 4, 7, 13};
    long compared = 0;
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (int groups = 1; groups <= 9; groups += 4)
            for (size_t b = 0; b < sizeof lengths / sizeof lengths[0]; b++)
                for (size_t c = 0; c < sizeof rows / sizeof rows[0]; c++) {
                    int gs = sizes[a], n = gs * groups, T = lengths[b], d = rows[c];
                    int8_t *w = malloc((size_t)d * n);
                    float *ws = malloc(sizeof(float) * ((size_t)d * groups)), *x = malloc(sizeof(float) * (size_t)T * n);
                    int extreme = (a + b + c) % 3;   /* 0 random, 1 all +-127, 2 some all-zero groups */
                    for (size_t i = 0; i < (size_t)d * n; i++)
                        w[i] = extreme == 1 ? ((i & 1) ? -127 : 127) : (int8_t)((int)(random_u32(&rng) % 255) - 127);
                    for (size_t i = 0; i < (size_t)d * groups; i++) ws[i] = random_f32(&rng) * 0.01f;
                    for (size_t i = 0; i < (size_t)T * n; i++)
                        x[i] = extreme == 1 ? ((i & 2) ? -3.0f : 3.0f)
                             : extreme == 2 && (i / gs) % 3 == 0 ? 0.0f : random_f32(&rng) - 0.5f;
                    compared += check_q8_chunk_kernels("random", w, ws, n, d, gs, T, x);
                    free(w); free(ws); free(x);
                }
    printf("matmul_q8_chunk (portable and fast tile kernels) = dot_q8, bit for bit, on %ld random outputs\n", compared);
}
END_TEST

/* Real weights: every int8 matrix of layer 0 and the classifier of the
 * int8 goldens (groups of 32 to 96, and llama2.c's) and of the trained
 * models/stories.lamp (groups of 64; and requantized in groups of 32),
 * against chunks of 128 and 37 positions (stories.lamp: 128) of
 * activations taken from the model's own embedding table. The one-position
 * kernel (DOT_Q8) is compared too (check_q8_chunk_kernels). */
START_TEST(test_q8_chunk_kernels_real_weights) {
    const char *int8_models[] = {"tests/golden/forward_q8/q8-gqa.lamp", "tests/golden/forward_q8/q8-mqa-tied.lamp",
                                 "tests/golden/forward_q8/q8-llama2c.v2.bin", "models/stories.lamp"};
    long compared = 0;
    int lengths[] = {CHUNK, 37};
    for (size_t m = 0; m < sizeof int8_models / sizeof int8_models[0]; m++) {
        Transformer t;
        build_transformer(&t, int8_models[m]);
        const Config *c = &t.config;
        int gs = t.weights.group_size, dim = c->dim, q_dim = c->n_heads * c->head_dim;
        int kv_dim = c->n_kv_heads * c->head_dim, hidden = c->hidden_dim;
        const QMatrix *mats[] = {&t.weights.q_wq[0], &t.weights.q_wk[0], &t.weights.q_wo[0], &t.weights.q_w1[0],
                                 &t.weights.q_w2[0], &t.weights.q_wcls};
        int ins[] = {dim, dim, q_dim, dim, hidden, dim}, outs[] = {q_dim, kv_dim, dim, hidden, dim, c->vocab_size};
        float *e = malloc(sizeof(float) * dim);
        for (size_t b = 0; b < (m == 3 ? 1 : 2); b++)   /* stories.lamp: one chunk, its matrices are larger */
            for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
                int T = lengths[b], n = ins[i], d = outs[i];
                float *x = malloc(sizeof(float) * (size_t)T * n);
                for (int p = 0; p < T; p++) {   /* embedding rows, repeated to fill the wider inputs */
                    embed(e, &t.weights, (p * 31 + 5) % c->vocab_size, dim);
                    for (int k = 0; k < n; k++) x[(size_t)p * n + k] = e[k % dim] * (1.0f + (float)(k / dim));
                }
                compared += check_q8_chunk_kernels(int8_models[m], mats[i]->q, mats[i]->s, n, d, gs, T, x);
                if (m == 3 && b == 0) {   /* the trained weights again, in groups of 32 */
                    float *wf = malloc(sizeof(float) * (size_t)d * n);
                    int8_t *wq = malloc((size_t)d * n);
                    float *ws = malloc(sizeof(float) * ((size_t)d * n / 32));
                    for (size_t k = 0; k < (size_t)d * n; k++) wf[k] = (float)mats[i]->q[k] * mats[i]->s[k / gs];
                    quantize_q8(wq, ws, wf, (size_t)d * n, 32);
                    compared += check_q8_chunk_kernels("models/stories.lamp in groups of 32", wq, ws, n, d, 32, T, x);
                    free(wf); free(wq); free(ws);
                }
                free(x);
            }
        free(e);
        free_transformer(&t);
    }
    printf("matmul_q8_chunk (portable and fast tile kernels) = dot_q8, bit for bit, on %ld outputs of real weights\n",
           compared);
}
END_TEST

/* ---- eval ------------------------------------------------------------------ */

/* sequence_nll (chunked, all logits at once) must equal the sum of
 * -log softmax computed from forward(), one token at a time. */
START_TEST(test_eval_nll_matches_forward) {
    one_thread();
    const char *models[] = {"tests/golden/forward/gqa-untied.lamp", "tests/golden/forward_q8/q8-gqa.lamp"};
    for (size_t m = 0; m < 2; m++) {
        Transformer t;
        build_transformer(&t, models[m]);
        malloc_run_state(&t);   /* forward() */
        malloc_fast_state(&t);  /* sequence_nll() takes the fast path when it has one */
        int n = 100, vocab = t.config.vocab_size;
        int ids[100];
        for (int i = 0; i < n; i++) ids[i] = (i * 104729 + 7) % vocab;
        double want = 0.0;
        for (int pos = 0; pos + 1 < n; pos++) {
            const float *logits = forward(&t, ids[pos], pos);
            double max = logits[0], sum = 0.0;
            for (int i = 1; i < vocab; i++) if (logits[i] > max) max = logits[i];
            for (int i = 0; i < vocab; i++) sum += exp(logits[i] - max);
            want += max + log(sum) - logits[ids[pos + 1]];
        }
        double got = sequence_nll(&t, ids, n);
        printf("%-45s eval NLL %.9f, one token at a time %.9f\n", models[m], got, want);
        ck_assert_msg(fabs(got - want) <= 1e-4, "%s: %.9f vs %.9f", models[m], got, want);
        free_transformer(&t);
    }
}
END_TEST

/* The number of threads must not change a single bit of the logits
 * (check_threads_bit_identical in tests/goldens.h). */
START_TEST(test_threads_bit_identical) {
#ifdef _OPENMP
    check_threads_bit_identical("tests/golden/forward/gqa-untied.lamp");
    check_threads_bit_identical("tests/golden/forward_q8/q8-gqa.lamp");
#endif
}
END_TEST

/* The fast path's RoPE tables must hold exactly the values llama2.c
 * computes per token (powf/cosf/sinf on the same float inputs), so
 * llama2.c checkpoints give bit-identical results. */
START_TEST(test_rope_table_matches_per_token_formula) {
    Transformer t;
    build_transformer(&t, "tests/golden/forward/llama2c-compat.v0.bin");
    malloc_fast_state(&t);
    int head_size = t.config.head_dim, half = head_size / 2;
    for (int pos = 0; pos < t.config.seq_len; pos++) {
        for (int i = 0; i < head_size; i += 2) {
            float freq = 1.0f / powf(10000.0f, (float)i / (float)head_size); /* llama2.c's run.c */
            float val = (float)pos * freq;
            ck_assert(t.fast->rope_cos[pos * half + i / 2] == cosf(val));
            ck_assert(t.fast->rope_sin[pos * half + i / 2] == sinf(val));
        }
    }
    free_transformer(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("logits vs transformers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gqa_untied);
    tcase_add_test(tc, test_mqa_tied);
    tcase_add_test(tc, test_mha_pad);
    tcase_add_test(tc, test_llama2c_lamp);
    tcase_add_test(tc, test_llama2c_v0);
    tcase_add_test(tc, test_llama2c_v1);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_rope_table_matches_per_token_formula);
    suite_add_tcase(s, tc);
    TCase *q8 = tcase_create("int8 weights");
    tcase_set_timeout(q8, 180);
    tcase_add_test(q8, test_q8_gqa);
    tcase_add_test(q8, test_q8_mqa_tied);
    tcase_add_test(q8, test_q8_llama2c_lamp);
    tcase_add_test(q8, test_q8_llama2c_v2);
    tcase_add_test(q8, test_q8_v2_same_as_lamp);
    tcase_add_test(q8, test_q8_quantizer_rounding);
    tcase_add_test(q8, test_q8_quantizer_matches_python);
    tcase_add_test(q8, test_avx2_int8_dot_matches_portable);
    tcase_add_test(q8, test_q8_chunk_kernels_random);
    tcase_add_test(q8, test_q8_chunk_kernels_real_weights);
    suite_add_tcase(s, q8);
    TCase *fast = tcase_create("fast paths keep the results");
    tcase_set_timeout(fast, 600);
    tcase_add_test(fast, test_prefill_matches_token_by_token);
    tcase_add_test(fast, test_eval_nll_matches_forward);
    tcase_add_test(fast, test_greedy_200_default_model);
    tcase_add_test(fast, test_greedy_200_stories110m_shape);
    suite_add_tcase(s, fast);
    return run_suite(s);
}
