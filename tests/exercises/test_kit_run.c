/* test_kit_run.c — the checks of the re-implement exercises in run.c's
 * Part I (docs/exercises.md): rmsnorm, rope, softmax, attention, kv-cache,
 * swiglu, topp. One Check test case per exercise, named as the exercise;
 * `make grade` runs them and scores each check (exercises/kit.txt).
 *
 * Two kinds of check: the kernel alone against PyTorch on a few inputs
 * chosen to break the usual mistakes (tests/golden/exercises/kit/units.txt),
 * and the kernel in the model, block by block, against transformers
 * (kit_model_check in kit.h). Each failure names the first wrong element,
 * expected and got, and what the pattern usually means. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"
#include "tests/goldens.h"
#include "tests/exercises/kit.h"

/* float32 kernels against float64 PyTorch: a few float roundings */
#define KERNEL_RTOL 1e-5
#define KERNEL_ATOL 1e-6

/* ---- rmsnorm ------------------------------------------------------------ */

START_TEST(test_rmsnorm_vs_pytorch) {
    int n_x, dim;
    float *x = unit_f32("rmsnorm.x", &n_x), *w = unit_f32("rmsnorm.w", &dim);
    const double *want = unit("rmsnorm.out", NULL);
    float eps = (float)unit("rmsnorm.eps", NULL)[0];
    int rows = n_x / dim;
    float *out = malloc(sizeof(float) * (size_t)n_x);
    kit_fill_unwritten(out, (size_t)n_x);
    for (int r = 0; r < rows; r++) rmsnorm(out + r * dim, x + r * dim, w, dim, eps);
    Mismatch m = kit_compare(out, want, n_x, KERNEL_ATOL, KERNEL_RTOL);
    if (m.first >= 0) {
        int r = m.first / dim, i = m.first % dim;
        const char *hint = kit_nan_hint((float)m.got);
        double ratio = m.got / m.want;
        /* the same ratio at every index of the row: the scale is wrong, not the weights */
        int same_ratio = 1;
        for (int j = 0; j < dim; j++)
            if (fabs(out[r * dim + j] / want[r * dim + j] - ratio) > 1e-3 * fabs(ratio)) same_ratio = 0;
        int no_weight = fabs(m.got * w[i] - m.want) < 1e-4 * fabs(m.want) + 1e-6;
        if (!hint && no_weight) hint = "got = expected / weight[i]: the gain `weight` is not applied";
        if (!hint && same_ratio)
            hint = r == 2 ? "the whole row is off by one factor, and this row is tiny (1e-3): eps belongs inside "
                            "the square root, added to the mean of squares"
                          : "the whole row is off by one factor: the scale 1/sqrt(mean(x^2) + eps) is wrong "
                            "(the mean divides by n; the root; eps inside it)";
        if (!hint) hint = "different indices are off differently: each out[i] must be weight[i] * x[i] * scale";
        char got[64];
        kit_fail("row %d (of %d, rows scaled 1, 1e3, 1e-3, 1), index %d: expected %.7g, got %s (%d of %d values "
                 "wrong). %s", r, rows, i, m.want, kit_got((float)m.got, got, sizeof got), m.n_bad, n_x, hint);
    }
    free(x); free(w); free(out);
}
END_TEST

START_TEST(test_rmsnorm_in_the_model) {
    kit_model_check(PATH_REFERENCE, "rmsnorm() runs twice in every block and once before the classifier.");
}
END_TEST

START_TEST(test_rmsnorm_fast_path) {
    kit_model_check(PATH_FAST, "Part II's forward_chunk() calls the same rmsnorm() on every row of a chunk.");
}
END_TEST

/* ---- rope --------------------------------------------------------------- */

START_TEST(test_rope_vs_meta) {
    const int n_heads = 2, head_dim = 8;
    const int cases[][2] = {{0, 0}, {0, 1}, {0, 7}, {0, 100}, {1, 3}, {1, 63}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        int k = cases[c][0], pos = cases[c][1];
        snprintf(name, sizeof name, "rope.%d.%d.theta", k, pos);
        float theta = (float)unit(name, NULL)[0];
        snprintf(name, sizeof name, "rope.%d.%d.in", k, pos);
        float *v = unit_f32(name, NULL);
        snprintf(name, sizeof name, "rope.%d.%d.out", k, pos);
        const double *want = unit(name, NULL);
        float cos_row[4], sin_row[4];
        kit_fill_unwritten(cos_row, 4);
        kit_fill_unwritten(sin_row, 4);
        rope_angles(cos_row, sin_row, pos, head_dim, theta);
        rope(v, n_heads, head_dim, cos_row, sin_row);
        /* angles up to 100 rad in float32: cosf of a rounded angle */
        Mismatch m = kit_compare(v, want, n_heads * head_dim, 1e-4, 1e-4);
        if (m.first >= 0) {
            int h = m.first / head_dim, d = m.first % head_dim, i = d / 2;
            const char *hint = kit_nan_hint((float)m.got);
            if (!hint && kit_is_unwritten(cos_row[0])) hint = "rope_angles() wrote no cosines";
            if (!hint && pos == 0) hint = "at position 0 the angle is 0 and RoPE must change nothing";
            if (!hint) {
                hint = i == 0 ? "pair 0 turns fastest (freq 1): check the rotation's signs, v'[2i] = v[2i] cos - "
                                "v[2i+1] sin and v'[2i+1] = v[2i] sin + v[2i+1] cos, and that the pairs are "
                                "(v[2i], v[2i+1]) (interleaved), not (v[i], v[i + head_dim/2])"
                              : "pair 0 is right and a later pair is wrong: the frequency freq_i = "
                                "theta^(-2i/head_dim) (a hard-coded theta 10000 fails the theta 500000 cases)";
            }
            char got[64];
            kit_fail("theta %g, position %d, head %d, index %d (pair %d): expected %.7g, got %s (%d of %d wrong). %s",
                     (double)theta, pos, h, d, i, m.want, kit_got((float)m.got, got, sizeof got), m.n_bad,
                     n_heads * head_dim, hint);
        }
        free(v);
    }
}
END_TEST

START_TEST(test_rope_in_the_model) {
    kit_model_check(PATH_REFERENCE, "forward() rotates q and k with rope_angles() of the position.");
}
END_TEST

START_TEST(test_rope_fast_path) {
    kit_model_check(PATH_FAST, "Part II builds its RoPE tables with rope_angles() and calls rope() on every row.");
}
END_TEST

/* ---- softmax ------------------------------------------------------------ */

START_TEST(test_softmax_vs_pytorch) {
    const char *what[] = {"ordinary scores", "scores near +1000 (exp overflows float32 unless the max is "
                          "subtracted first)", "scores near -1000 (exp underflows to 0, then 0/0, unless the max "
                          "is subtracted)", "some scores -inf (min-p writes them; they must get probability 0)",
                          "a single score (its probability is 1)"};
    for (int r = 0; r < 5; r++) {
        char name[64];
        int n;
        snprintf(name, sizeof name, "softmax.%d.in", r);
        float *x = unit_f32(name, &n);
        snprintf(name, sizeof name, "softmax.%d.out", r);
        const double *want = unit(name, NULL);
        softmax(x, n);
        Mismatch m = kit_compare(x, want, n, KERNEL_ATOL, KERNEL_RTOL);
        if (m.first >= 0) {
            const char *hint = kit_nan_hint((float)m.got);
            double sum = 0;
            for (int i = 0; i < n; i++) sum += x[i];
            char got[64];
            if (!hint && fabs(sum - 1) > 1e-4) hint = "the outputs do not add up to 1: divide each exp by their sum";
            if (!hint) hint = "the outputs add up to 1 but are not PyTorch's: exp(x_i - max) / sum_j exp(x_j - max)";
            kit_fail("row %d, %s: index %d of %d: expected %.7g, got %s (outputs add up to %.6g). %s", r, what[r],
                     m.first, n, m.want, kit_got((float)m.got, got, sizeof got), sum, hint);
        }
        free(x);
    }
}
END_TEST

START_TEST(test_softmax_in_the_model) {
    kit_model_check(PATH_REFERENCE, "attention() turns scores into weights with softmax(); so does the sampler.");
}
END_TEST

/* ---- attention (one head) and the heads' kv mapping (GQA) --------------- */

START_TEST(test_attention_one_head_vs_pytorch) {
    int hd;
    float *q = unit_f32("attention.q", &hd), *keys = unit_f32("attention.keys", NULL);
    float *values = unit_f32("attention.values", NULL);
    for (int n_pos = 1; n_pos <= 5; n_pos += 2) {
        char name[64];
        snprintf(name, sizeof name, "attention.out.%d", n_pos);
        const double *want = unit(name, NULL);
        float out[8], att[8];
        kit_fill_unwritten(out, 8);
        /* positions the head must not see hold garbage: a causal mask that reads them shows */
        float *k = malloc(sizeof(float) * 8 * 8), *v = malloc(sizeof(float) * 8 * 8);
        for (int i = 0; i < 64; i++) k[i] = v[i] = 1e3f;
        memcpy(k, keys, sizeof(float) * (size_t)n_pos * hd);
        memcpy(v, values, sizeof(float) * (size_t)n_pos * hd);
        attention(out, q, k, v, att, n_pos, hd);
        Mismatch m = kit_compare(out, want, hd, 1e-5, 1e-5);
        if (m.first >= 0) {
            const char *hint = kit_nan_hint((float)m.got);
            if (!hint && fabs(m.got) > 100)
                hint = "huge: positions at or after n_pos (filled with 1000 here) were read; the head sees "
                       "positions 0 .. n_pos - 1 only (the causal mask)";
            if (!hint && n_pos == 1)
                hint = "with one position the output must be that position's value, whatever the score: the "
                       "weighted sum of values (or the weights, which must be 1) is wrong";
            if (!hint)
                hint = "scores q.k_t / sqrt(head_dim) (the scale!), softmax over t < n_pos, out = sum_t a_t v_t; "
                       "out must be set, not added to";
            char got[64];
            kit_fail("n_pos %d, output index %d of %d: expected %.7g, got %s. %s", n_pos, m.first, hd, m.want,
                     kit_got((float)m.got, got, sizeof got), hint);
        }
        free(k); free(v);
    }
    free(q); free(keys); free(values);
}
END_TEST

START_TEST(test_attention_in_the_model) {
    kit_model_check(PATH_REFERENCE, "If test_attention_one_head_vs_pytorch passes and this fails already at "
                    "position 0, look at the loop over the heads in forward(): the model has 6 query heads on 2 "
                    "kv heads, and query head h reads kv head h / (n_heads / n_kv_heads) (heads 0-2 kv head 0, "
                    "3-5 kv head 1), its cache at positions 0 .. pos, writing its output at s->xb + h * head_dim.");
}
END_TEST

/* ---- the KV-cache write in forward() -------------------------------------- */

START_TEST(test_kv_cache_vs_transformers) {
    one_thread();
    Transformer t;
    build_transformer(&t, KIT_MODEL);
    malloc_run_state(&t);
    Logits g = read_logits(KIT_DIR "gqa-untied.L3.logits");
    for (int pos = 0; pos < g.n_positions; pos++) forward(&t, g.ids[pos], pos);
    size_t size;
    char *raw = slurp_golden(KIT_DIR "gqa-untied.cache", &size);
    const Config *c = &t.config;
    int L = c->n_layers, G = c->n_kv_heads, T = g.n_positions, hd = c->head_dim;
    ck_assert_uint_eq(size, 2 * sizeof(float) * (size_t)L * G * T * hd);
    const float *want = (const float *)raw;
    for (int which = 0; which < 2; which++) {
        const float *cache = which == 0 ? t.state.key_cache : t.state.value_cache;
        for (int l = 0; l < L; l++)
            for (int kv = 0; kv < G; kv++)
                for (int p = 0; p < T; p++)
                    for (int d = 0; d < hd; d++) {
                        float w = want[(size_t)which * L * G * T * hd + (((size_t)l * G + kv) * T + p) * hd + d];
                        float got = cache[(((size_t)l * G + kv) * c->seq_len + p) * hd + d];
                        if (kit_close(got, w, 1e-4, 1e-4)) continue;
                        const char *hint;
                        if (got == 0.0f)
                            hint = "nothing was written there (the cache starts as zeros): each position's key "
                                   "and value of every kv head must be copied into the cache, at "
                                   "((l * n_kv_heads + g) * seq_len + pos) * head_dim";
                        else if (which == 0 && l == 0)
                            hint = "the first layer's keys are wrong: keys are cached after RoPE (the value "
                                   "cache is checked after the keys), at the layout in the comment above key_cache";
                        else
                            hint = "a number is there but not this one: the layout is (layer, kv head, position, "
                                   "head_dim) with seq_len positions per head";
                        free(raw);
                        kit_fail("%s cache, layer %d, kv head %d, position %d, index %d: expected %.7g, got %.7g "
                                 "(transformers' past_key_values, keys in lamp's RoPE order). %s",
                                 which ? "value" : "key", l, kv, p, d, (double)w, (double)got, hint);
                    }
    }
    printf("KV cache of %d positions matches transformers\n", T);
    free(raw);
    free(g.raw);
    free_transformer(&t);
}
END_TEST

START_TEST(test_kv_cache_in_the_model) {
    kit_model_check(PATH_REFERENCE, "forward() writes this position's key and value into the cache, then "
                    "attention() reads positions 0 .. pos from it.");
}
END_TEST

/* ---- swiglu --------------------------------------------------------------- */

START_TEST(test_swiglu_vs_pytorch) {
    int n;
    float *gate = unit_f32("swiglu.gate", &n), *up = unit_f32("swiglu.up", NULL);
    const double *want = unit("swiglu.out", NULL);
    swiglu(gate, up, n);
    Mismatch m = kit_compare(gate, want, n, KERNEL_ATOL, KERNEL_RTOL);
    if (m.first >= 0) {
        float g = (float)unit("swiglu.gate", NULL)[m.first];
        const char *hint = kit_nan_hint((float)m.got);
        if (!hint && fabs(g) >= 80)
            hint = "a gate far from 0 (|g| >= 80): exp(g) overflows float32; write silu as g / (1 + exp(-g)), "
                   "which tends to 0 or g";
        if (!hint) hint = "silu(g) = g * sigmoid(g) = g / (1 + exp(-g)), times up: gate[i] = silu(gate[i]) * up[i]";
        char got[64];
        kit_fail("index %d, gate %g, up %g: expected %.7g, got %s (%d of %d wrong). %s", m.first, (double)g,
                 unit("swiglu.up", NULL)[m.first], m.want, kit_got((float)m.got, got, sizeof got), m.n_bad, n, hint);
    }
    free(up);
    free(gate);
}
END_TEST

START_TEST(test_swiglu_in_the_model) {
    kit_model_check(PATH_REFERENCE, "Every block's feed-forward is w2 @ swiglu(w1 @ x, w3 @ x).");
}
END_TEST

/* ---- top-p ---------------------------------------------------------------- *
 * Which tokens may be drawn is transformers' TopPLogitsWarper's decision;
 * how often each is drawn follows from the probabilities alone: sweeping the
 * coin over [0, 1) in M steps, token i must come out for about
 * p_i / (kept mass) of the coins, whatever order the draw walks. */

#define TOPP_COINS 20000

START_TEST(test_topp_kept_set) {
    for (int k = 0; k < 3; k++) {
        char name[64];
        int n, n_kept;
        snprintf(name, sizeof name, "topp.%d.probs", k);
        float *p = unit_f32(name, &n);
        snprintf(name, sizeof name, "topp.%d.p", k);
        float topp = (float)unit(name, NULL)[0];
        snprintf(name, sizeof name, "topp.%d.kept", k);
        const double *kept = unit(name, &n_kept);
        ProbIndex *cand = malloc(sizeof(ProbIndex) * (size_t)n);
        int *drawn = calloc((size_t)n, sizeof(int));
        for (int c = 0; c < TOPP_COINS; c++) {
            int token = sample_topp(p, n, topp, cand, (c + 0.5f) / TOPP_COINS);
            ck_assert_msg(token >= 0 && token < n, "p %g: sample_topp returned %d, not a token id 0..%d", (double)topp,
                          token, n - 1);
            drawn[token]++;
        }
        for (int i = 0; i < n; i++) {
            int in_set = 0;
            for (int j = 0; j < n_kept; j++) in_set |= (int)kept[j] == i;
            if (in_set && !drawn[i])
                kit_fail("p %g: token %d (probability %.4f) is never drawn, but transformers keeps it (%d tokens "
                         "kept). The set is the smallest prefix of the tokens sorted by probability whose sum "
                         "exceeds p: stop at the first prefix sum > p, and include that token", (double)topp, i,
                         (double)p[i], n_kept);
            if (!in_set && drawn[i])
                kit_fail("p %g: token %d (probability %.4f) is drawn, but transformers drops it (%d tokens kept). "
                         "Only the most likely tokens up to mass p may be drawn: sort by probability, descending",
                         (double)topp, i, (double)p[i], n_kept);
        }
        free(cand); free(drawn); free(p);
    }
}
END_TEST

START_TEST(test_topp_frequencies) {
    for (int k = 0; k < 3; k++) {
        char name[64];
        int n, n_kept;
        snprintf(name, sizeof name, "topp.%d.probs", k);
        float *p = unit_f32(name, &n);
        snprintf(name, sizeof name, "topp.%d.p", k);
        float topp = (float)unit(name, NULL)[0];
        snprintf(name, sizeof name, "topp.%d.kept", k);
        const double *kept = unit(name, &n_kept);
        double mass = 0;
        for (int j = 0; j < n_kept; j++) mass += p[(int)kept[j]];
        ProbIndex *cand = malloc(sizeof(ProbIndex) * (size_t)n);
        int *drawn = calloc((size_t)n, sizeof(int));
        for (int c = 0; c < TOPP_COINS; c++) {
            int token = sample_topp(p, n, topp, cand, (c + 0.5f) / TOPP_COINS);
            if (token >= 0 && token < n) drawn[token]++;
        }
        for (int j = 0; j < n_kept; j++) {
            int i = (int)kept[j];
            double want = p[i] / mass, got = (double)drawn[i] / TOPP_COINS;
            if (fabs(got - want) > 3.0 / TOPP_COINS)
                kit_fail("p %g: token %d is drawn for %.4f of the coins, expected %.4f (its probability %.4f "
                         "divided by the kept mass %.4f). %s", (double)topp, i, got, want, (double)p[i], mass,
                         got == 0 ? "never drawn: the draw must walk the kept tokens' cumulative probabilities"
                                  : "the coin in [0, 1) must be scaled by the kept mass (coin * mass), not "
                                    "compared with the raw cumulative sum, or the last kept token gets the rest");
        }
        free(cand); free(drawn); free(p);
    }
}
END_TEST

START_TEST(test_topp_most_likely_first) {
    int n;
    float *p = unit_f32("topp.0.probs", &n);
    ProbIndex *cand = malloc(sizeof(ProbIndex) * (size_t)n);
    int best = sample_argmax(p, n), got = sample_topp(p, n, 0.9f, cand, 0.0f);
    if (got != best)
        kit_fail("coin 0: expected the most likely token %d (p %.4f), got %d (p %.4f): the candidates are sorted "
                 "by probability, most likely first (ties by lower id), and the draw walks them in that order",
                 best, (double)p[best], got, got >= 0 && got < n ? (double)p[got] : -1.0);
    free(cand); free(p);
}
END_TEST

/* One Check test case per exercise, named as the exercise (the grader
 * reads it). */
static TCase *exercise(Suite *s, const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void) {
    Suite *s = suite_create("course kit: run.c Part I");
    TCase *tc = exercise(s, "rmsnorm");
    tcase_add_test(tc, test_rmsnorm_vs_pytorch);
    tcase_add_test(tc, test_rmsnorm_in_the_model);
    tcase_add_test(tc, test_rmsnorm_fast_path);
    tc = exercise(s, "rope");
    tcase_add_test(tc, test_rope_vs_meta);
    tcase_add_test(tc, test_rope_in_the_model);
    tcase_add_test(tc, test_rope_fast_path);
    tc = exercise(s, "softmax");
    tcase_add_test(tc, test_softmax_vs_pytorch);
    tcase_add_test(tc, test_softmax_in_the_model);
    tc = exercise(s, "attention");
    tcase_add_test(tc, test_attention_one_head_vs_pytorch);
    tcase_add_test(tc, test_attention_in_the_model);
    tc = exercise(s, "kv-cache");
    tcase_add_test(tc, test_kv_cache_vs_transformers);
    tcase_add_test(tc, test_kv_cache_in_the_model);
    tc = exercise(s, "swiglu");
    tcase_add_test(tc, test_swiglu_vs_pytorch);
    tcase_add_test(tc, test_swiglu_in_the_model);
    tc = exercise(s, "topp");
    tcase_add_test(tc, test_topp_kept_set);
    tcase_add_test(tc, test_topp_frequencies);
    tcase_add_test(tc, test_topp_most_likely_first);
    return run_suite(s);
}
