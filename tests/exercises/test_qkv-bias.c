/* test_qkv-bias.c — the check of the exercise "q/k/v biases" (docs/exercises.md):
 * graded by `make grade`.
 *
 * Qwen2 is Llama plus a bias after the q, k and v projections. A lamp file
 * with header flags bit 1 set carries three more float32 tensors after wv:
 * bq (n_layers, q_dim), bk and bv (n_layers, kv_dim), each 64-byte aligned
 * (the format is specified in docs/exercises.md). run.c must load them and
 * compute q = Wq x + bq, k = Wk x + bk, v = Wv x + bv before RoPE.
 *
 * tests/golden/gen_exercise_qkv_bias.py made two such models with
 * transformers' own Qwen2ForCausalLM (random weights, biases ~ N(0, 0.3^2))
 * and saved its logits for 64 tokens. Here run.c must reproduce them, in
 * one-token steps and in chunks; files without the flag must still load
 * and run as before; and a file whose header promises biases it does not
 * hold must be refused with one clear line, not read out of bounds.
 *
 * Before the feature exists, loading a model with biases stops the test
 * with run.c's own message, "lamp: ...: unknown flags 0x2 in the lamp
 * header" (Check then reports "Early exit with return value 1"). */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"
#include "tests/goldens.h"
#include "tests/exercises/kit.h"

#define LOAD_STEP "Steps 1 and 2: read_header() must accept flags bit 1, tensor_layout() place bq, bk, bv after wv"

#define DIR "tests/golden/exercises/qkv-bias/"
/* run.c (float32, its own summation order) against transformers. Measured
 * with the reference solution (gcc 12, -O3 -march=native): 2.9e-6 for
 * qwen2-gqa and 4.1e-6 for qwen2-mqa-tied at worst (the Llama models of
 * tests/golden/forward/: 7.9e-6 and 5.0e-6); the logits spread over a few
 * units (std 1.8 and 2.0). The mistakes are far above this bound (printed
 * by the generator): leaving out bq, bk or bv moves the logits by 0.7-1.3,
 * 0.2-0.6 and 7-9; bq/bk in Hugging Face's order (not permuted for lamp's
 * RoPE) by 0.8-1.3. Seen with deliberately broken solutions: bk of layer 0
 * in every layer 0.19-0.33, biases added after RoPE 0.48-1.1. */
#define TOLERANCE 1e-4f
/* A prompt in chunks vs one token at a time: the same arithmetic per row,
 * only the order of some float sums may differ (measured: 0, bit for bit;
 * a bias added to the first row of a chunk only: 0.82). */
#define PREFILL_TOLERANCE 1e-5f

/* Feed the golden sequence one token at a time; the largest |difference|. */
static float logit_error(const char *model_path, const char *golden_path) {
    LogitErrors e = logit_errors(model_path, golden_path);
    printf("%-50s max |logit - transformers| = %.3g (position %d, token %d)\n", model_path, e.worst, e.worst_pos,
           e.worst_id);
    free(e.at);
    return e.worst;
}

/* A Qwen2 model's logits, then a model without biases (flags bit 1 clear)
 * as before. */
#define LOGITS_TEST(name, model, plain)                                                                         \
    START_TEST(name) {                                                                                          \
        one_thread();                                                                                           \
        kit_expect_loads(DIR model ".lamp", LOAD_STEP);                                                         \
        float err = logit_error(DIR model ".lamp", DIR model ".logits");                                        \
        ck_assert_msg(err <= TOLERANCE, "%s: max |logit - transformers| %g > %g. First the layout: bq, bk, bv " \
                      "come right after wv, before wo; read from elsewhere (measured: the biases placed after " \
                      "wo) the logits move by 9.4, as much as without bv (7-9). Then the arithmetic: without " \
                      "bq 0.7-1.3, without bk 0.2-0.6, biases added after RoPE 0.5-1.1", model, err, TOLERANCE);\
        err = logit_error("tests/golden/forward/" plain ".lamp", "tests/golden/forward/" plain ".logits");      \
        ck_assert_msg(err <= TOLERANCE, "%s, a model without biases (flags bit 1 clear): max |logit - "         \
                      "transformers| %g > %g: the biases are added when the flag is clear", plain, err,         \
                      TOLERANCE);                                                                               \
    }                                                                                                           \
    END_TEST

/* the two Qwen2 models: flags 0x2 (own classifier) and 0x3 (shared) */
LOGITS_TEST(test_qwen2_gqa, "qwen2-gqa", "gqa-untied")
LOGITS_TEST(test_qwen2_mqa_tied, "qwen2-mqa-tied", "mqa-tied")

/* A prompt in chunks must give the logits of one token at a time: the bias
 * goes on every row of the chunk, not only the first. Chunks of CHUNK (as
 * many full ones as fit, then the rest) and of 1, 3, 4, 7, 13, ... (every
 * tail), then prefill(), the path ./run takes for a prompt
 * (prefill_errors in tests/goldens.h). */
START_TEST(test_prefill_matches_token_by_token) {
    one_thread();
    const char *models[] = {DIR "qwen2-gqa.lamp", DIR "qwen2-mqa-tied.lamp"};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        kit_expect_loads(models[m], LOAD_STEP);
        float a, b;
        int n = prefill_errors_of_file(models[m], &a, &b);
        printf("%-50s %d positions, chunked vs one at a time: max |delta| %.3g (chunks of %d), %.3g (1, 3, 4, 7, "
               "...)\n", models[m], n, a, CHUNK, b);
        ck_assert_msg(a <= PREFILL_TOLERANCE && b <= PREFILL_TOLERANCE, "%s: chunked vs one at a time %g, %g > %g",
                      models[m], a, b, PREFILL_TOLERANCE);
    }
}
END_TEST

/* ---- ./run as a user meets it -------------------------------------------- */

#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})

/* Exit status 1 (not a crash), nothing on stdout, exactly one line on
 * stderr that starts "lamp: " and contains `keyword` (as tests/test_cli.c). */
static void expect_error(char *const argv[], const char *keyword) {
    Proc p = run_program(NULL, argv);
    ck_assert_msg(p.exited, "%s: killed by signal %d", argv[1], p.signal);
    ck_assert_msg(p.code == 1, "%s: exit status %d, want 1; stderr: %s", argv[1], p.code, p.err);
    ck_assert_msg(p.out_len == 0, "%s: printed to stdout: %s", argv[1], p.out);
    const char *newline = strchr(p.err, '\n');
    ck_assert_msg(newline && newline[1] == '\0' && p.err_len == strlen(p.err),
                  "%s: stderr is not exactly one line: %s", argv[1], p.err);
    ck_assert_msg(strncmp(p.err, "lamp: ", 6) == 0, "%s: stderr does not start with 'lamp: ': %s", argv[1], p.err);
    ck_assert_msg(strstr(p.err, keyword) != NULL, "%s: the message does not mention '%s': %s", argv[1], keyword,
                  p.err);
    printf("%-50s refused: %s", argv[1], p.err);
    free_proc(&p);
}

/* tests/tmp/<name>: a copy of the lamp file `src` with its header flags
 * (uint32 at byte 56) OR-ed with `set`. */
static const char *with_flags(const char *src, const char *name, uint32_t set) {
    static char path[2][128];
    static int next = 0;
    size_t size;
    char *data = slurp(src, &size);
    ck_assert_ptr_nonnull(data);
    uint32_t flags;
    memcpy(&flags, data + 56, 4);
    flags |= set;
    memcpy(data + 56, &flags, 4);
    char *p = path[next++ % 2];
    snprintf(p, sizeof path[0], TMP_DIR "/%s.%d.lamp", name, (int)getpid());
    write_file(p, data, size);
    free(data);
    return p;
}

/* A Llama file with flags bit 1 turned on promises three bias tensors it
 * does not hold: the size check must say the file is truncated (reading
 * past the end of the mapping would crash instead). Bit 2 means nothing
 * (bit 2 is the GeGLU exercise's): it must still be refused as unknown. And ./run generates from a
 * model with biases. */
START_TEST(test_run_program) {
    const char *run = program("run");
    const char *missing = with_flags("tests/golden/forward/gqa-untied.lamp", "no-biases-inside", 2u);
    expect_error(ARGS((char *)run, (char *)missing, "-n", "4"), "truncated");
    const char *unknown = with_flags(DIR "qwen2-gqa.lamp", "flag-bit-4", 16u);
    expect_error(ARGS((char *)run, (char *)unknown, "-n", "4"), "unknown flags 0x12");
    unlink(missing);
    unlink(unknown);

    Proc p = run_program(NULL, ARGS((char *)run, DIR "qwen2-mqa-tied.lamp", "-t", "0", "-n", "12", "-i", "the",
                                    "--threads", "1"));
    ck_assert_msg(p.exited && p.code == 0, "./run on qwen2-mqa-tied.lamp: exit %d, signal %d, stderr: %s", p.code,
                  p.signal, p.err);
    ck_assert_msg(p.out_len > 3, "./run on qwen2-mqa-tied.lamp printed nothing");
    free_proc(&p);
}
END_TEST

/* Step 4: train.c loads models with run.c's loader but has no gradient for
 * the biases, so `./train --init` on a model with biases must stop with one
 * "lamp: " line that says so (the word "bias"), not train without them. */
START_TEST(test_train_refuses_biases) {
    const char *text = "Once upon a time there was a little dog. The dog liked to run in the park.\n";
    mkdir(TMP_DIR "/step4", 0755);
    write_file(TMP_DIR "/step4/text.txt", text, strlen(text));
    /* a copy whose path does not say "bias" itself */
    size_t size;
    char *model = slurp(DIR "qwen2-gqa.lamp", &size);
    write_file(TMP_DIR "/step4/qwen2.lamp", model, size);
    free(model);
    Proc p = run_program(NULL, ARGS((char *)program("train"), "--init", TMP_DIR "/step4/qwen2.lamp", "--data",
                                    TMP_DIR "/step4/text.txt", "--out", TMP_DIR "/step4/out",
                                    "--steps", "1", "--batch", "2"));
    ck_assert_msg(p.exited && p.code == 1, "./train --init a model with biases: exit %d (signal %d), want 1: it must "
                  "refuse a model with biases; stderr: %s", p.code, p.signal, p.err);
    ck_assert_msg(strncmp(p.err, "lamp: ", 6) == 0 && strstr(p.err, "bias") != NULL,
                  "./train --init a model with biases: want one \"lamp: \" line naming the biases, got: %s", p.err);
    printf("./train refuses the model: %s", p.err);
    free_proc(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("exercise qkv-bias");
    TCase *tc = tcase_create("q/k/v biases (Qwen2)");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_qwen2_gqa);
    tcase_add_test(tc, test_qwen2_mqa_tied);
    tcase_add_test(tc, test_prefill_matches_token_by_token);
    tcase_add_test(tc, test_run_program);
    tcase_add_test(tc, test_train_refuses_biases);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
