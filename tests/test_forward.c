/* test_forward.c — run.c's forward pass against Hugging Face transformers.
 *
 * tests/golden/gen_forward.py builds small random LlamaForCausalLM models
 * (grouped-query attention, separate classifier, rope_theta != 10000,
 * eps != 1e-5, head_dim != dim / n_heads), runs them on a 64-token sequence
 * in PyTorch, and saves the model as lamp (and llama2.c) files next to the
 * logits at every position. Here run.c loads the same files and must give
 * the same logits, within 1e-4, at every position. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"

#define TOLERANCE 1e-4f

typedef struct {
    int n_positions, vocab_size;
    int *ids;       /* (n_positions) the input sequence */
    float *logits;  /* (n_positions, vocab_size) what transformers computed */
    char *raw;
} Golden;

/* Layout (see tests/golden/README.md): int32 n_positions, int32 vocab_size,
 * int32 ids[n_positions], float32 logits[n_positions][vocab_size]. */
static Golden read_golden(const char *path) {
    Golden g;
    size_t size;
    g.raw = slurp(path, &size);
    ck_assert_msg(g.raw != NULL, "missing golden %s", path);
    memcpy(&g.n_positions, g.raw, 4);
    memcpy(&g.vocab_size, g.raw + 4, 4);
    size_t expected = 8 + 4 * (size_t)g.n_positions * (1 + (size_t)g.vocab_size);
    ck_assert_msg(size == expected, "%s: %zu bytes, expected %zu", path, size, expected);
    g.ids = (int *)(g.raw + 8);
    g.logits = (float *)(g.raw + 8 + 4 * (size_t)g.n_positions);
    return g;
}

/* Run the model over the golden sequence; return the largest |difference|. */
static float max_logit_error(const char *model_path, const char *golden_path) {
    Golden g = read_golden(golden_path);
    Transformer t;
    build_transformer(&t, model_path);
    malloc_run_state(&t);
    ck_assert_int_eq(t.config.vocab_size, g.vocab_size);
    ck_assert_int_le(g.n_positions, t.config.seq_len);
    float worst = 0.0f;
    int worst_pos = -1, worst_id = -1;
    for (int pos = 0; pos < g.n_positions; pos++) {
        const float *logits = forward(&t, g.ids[pos], pos);
        const float *want = g.logits + (size_t)pos * g.vocab_size;
        for (int i = 0; i < g.vocab_size; i++) {
            float d = fabsf(logits[i] - want[i]);
            if (!(d <= worst)) { worst = d; worst_pos = pos; worst_id = i; } /* NaN counts as worst */
        }
    }
    printf("%-45s max |logit - transformers| = %.3g (position %d, token %d)\n", model_path, worst,
           worst_pos, worst_id);
    free_transformer(&t);
    free(g.raw);
    return worst;
}

#define FORWARD_TEST(name, model, golden)                                      \
    START_TEST(name) {                                                         \
        float err = max_logit_error("tests/golden/forward/" model,             \
                                    "tests/golden/forward/" golden);           \
        ck_assert_msg(err <= TOLERANCE, "%s: max |delta| %g > %g", model, err, \
                      TOLERANCE);                                              \
    }                                                                          \
    END_TEST

FORWARD_TEST(test_gqa_untied, "gqa-untied.lamp", "gqa-untied.logits")
FORWARD_TEST(test_mqa_tied, "mqa-tied.lamp", "mqa-tied.logits")
FORWARD_TEST(test_mha_pad, "mha-pad.lamp", "mha-pad.logits")
FORWARD_TEST(test_llama2c_lamp, "llama2c-compat.lamp", "llama2c-compat.logits")
FORWARD_TEST(test_llama2c_v0, "llama2c-compat.v0.bin", "llama2c-compat.logits")
FORWARD_TEST(test_llama2c_v1, "llama2c-compat.v1.bin", "llama2c-compat.logits")

/* The number of threads must not change a single bit of the logits: each
 * output row of matmul and each attention head is computed by one thread in
 * the same order, whatever the thread count. */
START_TEST(test_threads_bit_identical) {
#ifdef _OPENMP
    const char *path = "tests/golden/forward/gqa-untied.lamp";
    Transformer t;
    build_transformer(&t, path);
    malloc_run_state(&t);
    int n = t.config.vocab_size, steps = 16;
    float *one = malloc(sizeof(float) * (size_t)n * steps);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (int pos = 0; pos < steps; pos++) {
            const float *logits = forward(&t, (pos * 37) % n, pos);
            if (threads == 1) memcpy(one + (size_t)pos * n, logits, sizeof(float) * n);
            else ck_assert_msg(memcmp(one + (size_t)pos * n, logits, sizeof(float) * n) == 0,
                               "logits at position %d differ between 1 and 2 threads", pos);
        }
    }
    free(one);
    free_transformer(&t);
#endif
}
END_TEST

/* The RoPE tables must hold exactly the values llama2.c computes per token
 * (powf/cosf/sinf on the same float inputs), so llama2.c checkpoints give
 * bit-identical results. */
START_TEST(test_rope_table_matches_per_token_formula) {
    Transformer t;
    build_transformer(&t, "tests/golden/forward/llama2c-compat.v0.bin");
    malloc_run_state(&t);
    int head_size = t.config.head_dim, half = head_size / 2;
    for (int pos = 0; pos < t.config.seq_len; pos++) {
        for (int i = 0; i < head_size; i += 2) {
            float freq = 1.0f / powf(10000.0f, (float)i / (float)head_size); /* llama2.c's run.c */
            float val = (float)pos * freq;
            ck_assert(t.state.rope_cos[pos * half + i / 2] == cosf(val));
            ck_assert(t.state.rope_sin[pos * half + i / 2] == sinf(val));
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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
