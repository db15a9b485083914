/* test_backend.c — every backend of run.c's ops table (section 11) against
 * the goldens: "reference" (Part I's functions), "cpu" (Part II), and, in a
 * build with -DLAMP_OPENCL (`make opencl`) or -DLAMP_CUDA, the port's device.
 * For each backend:
 *  - float32 logits within 1e-4 of transformers on every forward golden;
 *  - int8 logits within 1e-4 of Part I's int8 forward() (a quantized
 *    activation may round to the neighbouring step: see Q8_* below);
 *  - a prompt in chunks gives the logits of one token at a time (1e-5);
 *  - two different models of the same size loaded in one process (at once,
 *    and one after the other, freed in between) each give their own logits;
 *  - the op-by-op trace agrees with transformers' (tests/golden/gen_trace.py)
 *    within 1e-4, and the trace comparer names an op that was changed.
 * The suite runs in one process (no fork), so it can count at the end how
 * many checks ran through each backend, the device's included. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"
#include "tests/goldens.h"

#define TOLERANCE 1e-4f
#define PREFILL_TOLERANCE 1e-5f
/* int8 vs Part I's int8: the same arithmetic, but where an activation lies
 * within rounding of the midpoint of two int8 steps the two may quantize it
 * to neighbouring steps (test_forward.c's Q8_TOLERANCE explains it). */
#define Q8_MAX_FLIPS 2
#define Q8_FLIP_BOUND 0.15f
#define TRACE_TOLERANCE 1e-4

static int checks[N_BACKENDS];   /* how many checks ran through each backend */

/* The logits of every position of `ids` on backend b, chunk by chunk,
 * (n, vocab) in a new array. */
static float *backend_logits(Transformer *t, const int *ids, int n) {
    int vocab = t->config.vocab_size, chunk = t->backend->max_chunk;
    float *all = malloc(sizeof(float) * (size_t)n * vocab);
    ck_assert_ptr_nonnull(all);
    for (int pos = 0; pos < n; pos += chunk) {
        int m = n - pos < chunk ? n - pos : chunk;
        memcpy(all + (size_t)pos * vocab, forward_chunk(t, ids + pos, m, pos, LOGITS_ALL), sizeof(float) * m * vocab);
    }
    return all;
}

/* Part I's forward(), the same way. */
static float *reference_logits_of(const char *model_path, const int *ids, int n) {
    Transformer t;
    build_transformer(&t, model_path);
    malloc_run_state(&t);
    int vocab = t.config.vocab_size;
    float *all = malloc(sizeof(float) * (size_t)n * vocab);
    ck_assert_ptr_nonnull(all);
    for (int pos = 0; pos < n; pos++) memcpy(all + (size_t)pos * vocab, forward(&t, ids[pos], pos), sizeof(float) * vocab);
    free_transformer(&t);
    return all;
}

/* max |a - b| over each of n rows of `width`; the worst row's error, and
 * how many rows are over `tolerance`. */
static float rows_error(const float *a, const float *b, int n, int width, float tolerance, int *n_over) {
    float worst = 0.0f;
    *n_over = 0;
    for (int r = 0; r < n; r++) {
        float here = 0.0f;
        for (int i = 0; i < width; i++) {
            float d = fabsf(a[(size_t)r * width + i] - b[(size_t)r * width + i]);
            if (!(d <= here)) here = d;   /* NaN counts as the worst */
        }
        if (!(here <= tolerance)) (*n_over)++;
        if (!(here <= worst)) worst = here;
    }
    return worst;
}

/* ---- float32: every forward golden within 1e-4 of transformers ------------ */

START_TEST(test_float32_goldens) {
    const char *models[][2] = {
        {"gqa-untied.lamp", "gqa-untied.logits"},   {"mqa-tied.lamp", "mqa-tied.logits"},
        {"mha-pad.lamp", "mha-pad.logits"},         {"llama2c-compat.lamp", "llama2c-compat.logits"},
        {"llama2c-compat.v0.bin", "llama2c-compat.logits"}, {"llama2c-compat.v1.bin", "llama2c-compat.logits"}};
    for (int b = 0; b < N_BACKENDS; b++)
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
            char model[256], golden[256];
            snprintf(model, sizeof model, "tests/golden/forward/%s", models[m][0]);
            snprintf(golden, sizeof golden, "tests/golden/forward/%s", models[m][1]);
            Logits g = read_logits(golden);
            Transformer t;
            build_transformer(&t, model);
            start_backend(&t, backends[b]);
            float *got = backend_logits(&t, g.ids, g.n_positions);
            int over;
            float err = rows_error(got, g.logits, g.n_positions, g.vocab_size, TOLERANCE, &over);
            printf("%-9s %-40s max |logit - transformers| = %.3g\n", backends[b]->name, model, err);
            ck_assert_msg(over == 0, "%s on %s: %d positions over %g (max %g)", model, backends[b]->name, over,
                          TOLERANCE, err);
            checks[b]++;
            free(got);
            free(g.raw);
            free_transformer(&t);
        }
}
END_TEST

/* ---- int8: within 1e-4 of Part I's int8 forward() ------------------------ */

START_TEST(test_int8_vs_part_one) {
    const char *models[][2] = {{"q8-gqa.lamp", "q8-gqa.logits"}, {"q8-mqa-tied.lamp", "q8-mqa-tied.logits"},
                               {"q8-llama2c.lamp", "q8-llama2c.logits"}, {"q8-llama2c.v2.bin", "q8-llama2c.logits"}};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char model[256], golden[256];
        snprintf(model, sizeof model, "tests/golden/forward_q8/%s", models[m][0]);
        snprintf(golden, sizeof golden, "tests/golden/forward_q8/%s", models[m][1]);
        Logits g = read_logits(golden);   /* its token ids (test_forward.c compares with its logits) */
        Transformer t;
        build_transformer(&t, model);
        int n = g.n_positions, vocab = t.config.vocab_size, *ids = g.ids;
        float *want = reference_logits_of(model, ids, n);
        for (int b = 0; b < N_BACKENDS; b++) {
            start_backend(&t, backends[b]);
            float *got = backend_logits(&t, ids, n);
            int over;
            float err = rows_error(got, want, n, vocab, TOLERANCE, &over);
            printf("%-9s %-40s int8: max |logit - Part I's int8| = %.3g; %d of %d positions over %g\n",
                   backends[b]->name, model, err, over, n, TOLERANCE);
            ck_assert_msg(over <= Q8_MAX_FLIPS && err <= Q8_FLIP_BOUND, "%s on %s: %d positions over %g, max %g",
                          model, backends[b]->name, over, TOLERANCE, err);
            checks[b]++;
            free(got);
            t.backend->release(&t);
            t.backend = NULL;
        }
        free(want);
        free(g.raw);
        free_transformer(&t);
    }
}
END_TEST

/* ---- a prompt in chunks = one token at a time ----------------------------- */

START_TEST(test_chunked_vs_one_at_a_time) {
    const char *models[] = {"tests/golden/forward/gqa-untied.lamp", "tests/golden/forward/mha-pad.lamp",
                            "tests/golden/forward_q8/q8-gqa.lamp", "models/stories.lamp"};
    for (int b = 0; b < N_BACKENDS; b++) {
        if (backends[b]->max_chunk == 1) continue;   /* the reference: one at a time is all it does */
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
            Transformer t;
            build_transformer(&t, models[m]);
            start_backend(&t, backends[b]);
            int n = t.config.seq_len < 200 ? t.config.seq_len : 200;
            int *ids = malloc(sizeof(int) * n);
            for (int i = 0; i < n; i++) ids[i] = (i * 7919 + 13) % t.config.vocab_size;
            float full, odd;
            prefill_errors(&t, ids, n, &full, &odd);
            printf("%-9s %-40s chunked vs one at a time: max |delta| %.3g (chunks of %d), %.3g (1, 3, 4, 7, ...)\n",
                   backends[b]->name, models[m], full, CHUNK, odd);
            ck_assert_msg(full <= PREFILL_TOLERANCE && odd <= PREFILL_TOLERANCE, "%s on %s: %g, %g", models[m],
                          backends[b]->name, full, odd);
            checks[b]++;
            free(ids);
            free_transformer(&t);
        }
    }
}
END_TEST

/* ---- two models of the same size in one process -------------------------- */

/* A copy of mqa-tied.lamp with every float32 of wq halved: the same size
 * and shape, other logits. */
#define MODEL_A "tests/golden/forward/mqa-tied.lamp"
#define MODEL_B TMP_DIR "/mqa-tied-changed.lamp"
static void make_changed_copy(void) {
    Transformer t;
    build_transformer(&t, MODEL_A);
    size_t size, start = (size_t)((const unsigned char *)t.weights.wq - t.data);
    size_t count = (size_t)t.config.n_layers * t.config.n_heads * t.config.head_dim * t.config.dim;
    free_transformer(&t);
    char *data = slurp(MODEL_A, &size);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < count; i++) {
        float w;
        memcpy(&w, data + start + 4 * i, 4);
        w *= 0.5f;
        memcpy(data + start + 4 * i, &w, 4);
    }
    mkdir(TMP_DIR, 0755);
    write_file(MODEL_B, data, size);
    free(data);
}

START_TEST(test_two_models_same_size) {
    make_changed_copy();
    int n = 24, ids[24];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % 320;
    float *want_a = reference_logits_of(MODEL_A, ids, n), *want_b = reference_logits_of(MODEL_B, ids, n);
    int vocab = 320, over;
    float apart = rows_error(want_a, want_b, n, vocab, TOLERANCE, &over);
    ck_assert_msg(apart > 0.1f, "the changed copy's logits differ by only %g: the test would prove nothing", apart);
    for (int b = 0; b < N_BACKENDS; b++) {
        /* both loaded at once, run in turns */
        Transformer a, c;
        build_transformer(&a, MODEL_A);
        build_transformer(&c, MODEL_B);
        start_backend(&a, backends[b]);
        start_backend(&c, backends[b]);
        float *got_a = backend_logits(&a, ids, n), *got_c = backend_logits(&c, ids, n);
        float err_a = rows_error(got_a, want_a, n, vocab, TOLERANCE, &over);
        ck_assert_msg(over == 0, "%s: model A loaded beside B: %g from A's own logits", backends[b]->name, err_a);
        float err_b = rows_error(got_c, want_b, n, vocab, TOLERANCE, &over);
        ck_assert_msg(over == 0, "%s: model B loaded beside A: %g from B's own logits", backends[b]->name, err_b);
        free(got_a);
        free(got_c);
        free_transformer(&a);
        free_transformer(&c);
        /* one after the other: B is mapped where A was, often at the same address */
        build_transformer(&a, MODEL_A);
        start_backend(&a, backends[b]);
        const void *address_a = a.weights.wq;
        got_a = backend_logits(&a, ids, n);
        free_transformer(&a);
        build_transformer(&c, MODEL_B);
        start_backend(&c, backends[b]);
        int same_address = (const void *)c.weights.wq == address_a;
        got_c = backend_logits(&c, ids, n);
        float err_a2 = rows_error(got_a, want_a, n, vocab, TOLERANCE, &over);
        ck_assert_msg(over == 0, "%s: A alone: %g", backends[b]->name, err_a2);
        float err_b2 = rows_error(got_c, want_b, n, vocab, TOLERANCE, &over);
        ck_assert_msg(over == 0, "%s: B loaded after A was freed%s: %g from B's own logits (A's are %g away)",
                      backends[b]->name, same_address ? " at A's address" : "", err_b2, apart);
        printf("%-9s two models of one size: at once A %.3g, B %.3g; one after the other (B %s A's address) "
               "A %.3g, B %.3g from their own logits (the two models' logits are %.3g apart)\n", backends[b]->name,
               err_a, err_b, same_address ? "at" : "not at", err_a2, err_b2, apart);
        checks[b] += 2;
        free(got_a);
        free(got_c);
        free_transformer(&c);
    }
    free(want_a);
    free(want_b);
}
END_TEST

/* ---- the trace ------------------------------------------------------------ */

#define TRACE_MODEL "tests/golden/forward/gqa-untied.lamp"
#define TRACE_GOLDEN "tests/golden/forward/gqa-untied.trace"

/* Trace the golden's first n_positions ids on backend b into `path`. */
static void write_backend_trace(const Backend *b, const char *path, int n_positions) {
    Logits g = read_logits("tests/golden/forward/gqa-untied.logits");
    Transformer t;
    build_transformer(&t, TRACE_MODEL);
    start_backend(&t, b);
    mkdir(TMP_DIR, 0755);
    t.trace = fopen(path, "wb");
    ck_assert_ptr_nonnull(t.trace);
    ck_assert(fwrite("LAMPTRC1", 1, 8, t.trace) == 8);
    free(backend_logits(&t, g.ids, n_positions));
    free_transformer(&t);   /* closes the trace */
    free(g.raw);
}

/* compare_traces' printed lines, and its result. */
static int compare_and_print(const char *a, const char *b, const char *label, char *text, size_t size) {
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    int failed = compare_traces(a, b, TRACE_TOLERANCE, out);
    rewind(out);
    size_t got = fread(text, 1, size - 1, out);
    text[got] = '\0';
    fclose(out);
    printf("%-9s %s", label, text);
    return failed;
}

START_TEST(test_trace_vs_transformers) {
    for (int b = 0; b < N_BACKENDS; b++) {
        char path[256], text[1024];
        snprintf(path, sizeof path, TMP_DIR "/%s.trace", backends[b]->name);
        write_backend_trace(backends[b], path, 16);
        int failed = compare_and_print(path, TRACE_GOLDEN, backends[b]->name, text, sizeof text);
        ck_assert_msg(!failed, "%s's trace vs transformers': %s", backends[b]->name, text);
        ck_assert_msg(strstr(text, " 0 only in B"), "%s's trace misses records of transformers': %s",
                      backends[b]->name, text);
        checks[b]++;
    }
}
END_TEST

/* The comparer must name a changed op: copy transformers' trace, change one
 * value of swiglu at layer 1, position 5, and it must be what is named. */
START_TEST(test_trace_comparer_names_the_op) {
    size_t size;
    char *data = slurp(TRACE_GOLDEN, &size);
    ck_assert_ptr_nonnull(data);
    int changed = 0;
    for (size_t at = 8; at < size && !changed;) {
        int32_t head[3];
        memcpy(head, data + at + 16, 12);
        if (strcmp(data + at, "swiglu") == 0 && head[0] == 1 && head[1] == 5) {
            float v;
            memcpy(&v, data + at + 28 + 4 * 3, 4);
            v += 0.01f;
            memcpy(data + at + 28 + 4 * 3, &v, 4);
            changed = 1;
        }
        at += 28 + 4 * (size_t)head[2];
    }
    ck_assert(changed);
    mkdir(TMP_DIR, 0755);
    write_file(TMP_DIR "/changed.trace", data, size);
    free(data);
    char text[1024];
    ck_assert(compare_and_print(TMP_DIR "/changed.trace", TRACE_GOLDEN, "comparer", text, sizeof text) == 1);
    ck_assert_msg(strstr(text, "swiglu, layer 1, position 5:") && strstr(text, "element 3"), "%s", text);
    ck_assert(compare_and_print(TRACE_GOLDEN, TRACE_GOLDEN, "comparer", text, sizeof text) == 0);
}
END_TEST

int main(void) {
    one_thread();
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("every backend");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_float32_goldens);
    tcase_add_test(tc, test_int8_vs_part_one);
    tcase_add_test(tc, test_chunked_vs_one_at_a_time);
    tcase_add_test(tc, test_two_models_same_size);
    tcase_add_test(tc, test_trace_vs_transformers);
    tcase_add_test(tc, test_trace_comparer_names_the_op);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);   /* one process: the counts below add up over the tests */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int b = 0; b < N_BACKENDS; b++) {
        Transformer t;   /* describe() names the device; it needs no model */
        memset(&t, 0, sizeof t);
        char device[256];
        backends[b]->describe(&t, device, sizeof device);
        printf("%d checks ran through backend %s: %s\n", checks[b], backends[b]->name, device);
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
