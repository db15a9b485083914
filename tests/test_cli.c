/* test_cli.c — the programs as a user meets them: ./run and ./tokenizer run
 * as child processes.
 *
 *  - llama2.c's own run.c printed the .txt files in tests/data/llama2c/ for two
 *    checkpoints; ./run must print the same bytes with the same flags.
 *  - Bad input of every kind (broken files, mismatched tokenizer, prompt
 *    longer than the context, bad flags) must give exactly one line on
 *    stderr, starting "lamp: " and naming the problem, an exit status of 1,
 *    and no crash. Under `make asan` the same tests run the sanitizer build,
 *    so a memory error would show up as extra stderr output and a failure.
 *  - Generate and chat behave: deterministic for a seed, independent of the
 *    thread count, chat keeps the conversation and says when it is full. */
#include "tests/testutil.h"

#include <math.h>

#define L2C "tests/data/llama2c/"
#define GOOD_LAMP "tests/golden/forward/llama2c-compat.lamp"  /* seq_len 64, vocab 512 */
#define GOOD_V0 L2C "gqa-shared.bin"
#define IDTOK L2C "idtok512.bin"
#define Q8_LAMP "tests/golden/forward_q8/q8-llama2c.lamp"   /* int8, groups of 32, seq_len 64, vocab 512 */
#define BYTELEVEL_LAMP "tests/golden/tokenizer_bytelevel/smollm.lamp" /* version 2: byte-level tokenizer */
#define Q8_V2 "tests/golden/forward_q8/q8-llama2c.v2.bin"   /* the same, llama2.c version 2 */

/* argv helpers: up to 16 arguments, NULL-terminated, program first. */
#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})

/* ----- llama2.c goldens ---------------------------------------------- */

/* `path` is NULL for the fast path, or "--reference" for run.c's Part I. */
static void check_golden_on(const char *path, const char *model, const char *golden, char *const extra[]) {
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)program("run");
    if (path) argv[n++] = (char *)path;
    argv[n++] = (char *)model;
    argv[n++] = "-z";
    argv[n++] = IDTOK;
    for (int i = 0; extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    Proc p = run_program(NULL, argv);
    size_t want_len;
    char *want = slurp(golden, &want_len);
    ck_assert_msg(want != NULL, "missing %s", golden);
    const char *which = path ? path : "the fast path";
    ck_assert_msg(p.exited && p.code == 0, "%s (%s): exit %d signal %d, stderr: %s", golden, which, p.code, p.signal,
                  p.err);
    ck_assert_msg(p.out_len == want_len && memcmp(p.out, want, want_len) == 0,
                  "%s (%s): output differs from llama2.c's:\n--- got ---\n%s\n--- want ---\n%s", golden, which, p.out,
                  want);
    free(want);
    free_proc(&p);
}

/* Both paths must print llama2.c's bytes. */
static void check_golden(const char *model, const char *golden, char *const extra[]) {
    check_golden_on(NULL, model, golden, extra);
    check_golden_on("--reference", model, golden, extra);
}

START_TEST(test_llama2c_goldens) {
    check_golden(L2C "gqa-shared.bin", L2C "gqa-shared.greedy.txt", ARGS("-t", "0", "-n", "200"));
    check_golden(L2C "gqa-shared.bin", L2C "gqa-shared.t1-p0.9-s42.txt",
                 ARGS("-t", "1.0", "-p", "0.9", "-s", "42", "-n", "200"));
    check_golden(L2C "gqa-shared.bin", L2C "gqa-shared.t0.8-p0-s7.txt",
                 ARGS("-t", "0.8", "-p", "0", "-s", "7", "-n", "200"));
    check_golden(L2C "gqa-unshared.bin", L2C "gqa-unshared.greedy.txt", ARGS("-t", "0", "-n", "200"));
    check_golden(L2C "gqa-unshared.bin", L2C "gqa-unshared.t1-p0.9-s42.txt",
                 ARGS("-t", "1.0", "-p", "0.9", "-s", "42", "-n", "200"));
}
END_TEST

/* ----- bad input ------------------------------------------------------- */

/* The contract for every error: exit status 1 (not a signal), nothing on
 * stdout, exactly one line on stderr that starts "lamp: " and contains
 * `keyword`. */
static void expect_error(const char *stdin_text, char *const argv[], const char *keyword) {
    Proc p = run_program(stdin_text, argv);
    char cmd[512] = "";
    for (int i = 0; argv[i]; i++) {   /* the command, for messages (cut at 500 bytes) */
        size_t used = strlen(cmd);
        snprintf(cmd + used, sizeof cmd - used, "%.60s ", argv[i]);
    }
    ck_assert_msg(p.exited, "%s: killed by signal %d", cmd, p.signal);
    ck_assert_msg(p.code == 1, "%s: exit status %d, want 1; stderr: %s", cmd, p.code, p.err);
    ck_assert_msg(p.out_len == 0, "%s: printed to stdout: %s", cmd, p.out);
    const char *newline = strchr(p.err, '\n');
    ck_assert_msg(newline && newline[1] == '\0' && p.err_len == strlen(p.err),
                  "%s: stderr is not exactly one line: %s", cmd, p.err);
    ck_assert_msg(strncmp(p.err, "lamp: ", 6) == 0, "%s: stderr does not start with 'lamp: ': %s", cmd, p.err);
    ck_assert_msg(strstr(p.err, keyword) != NULL, "%s: message does not mention '%s': %s", cmd, keyword, p.err);
    free_proc(&p);
}

/* Write a copy of `src` to tests/tmp/<name>: its first `keep` bytes (or all,
 * keep = 0), then `patch_len` bytes of `patch` written at `patch_at`. */
static const char *make_variant(const char *src, const char *name, size_t keep, size_t patch_at,
                                const void *patch, size_t patch_len) {
    static char path[8][128];
    static int next = 0;
    size_t size;
    char *data = slurp(src, &size);
    ck_assert_ptr_nonnull(data);
    if (keep == 0 || keep > size) keep = size;
    if (patch && patch_at + patch_len <= keep) memcpy(data + patch_at, patch, patch_len);
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], TMP_DIR "/%s.%d", name, (int)getpid());
    write_file(p, data, keep);
    free(data);
    return p;
}

static const char *patched_i32(const char *src, const char *name, size_t at, int32_t value) {
    return make_variant(src, name, 0, at, &value, 4);
}

START_TEST(test_bad_model_files) {
    const char *run = program("run");
    size_t lamp_size, v0_size;
    free(slurp(GOOD_LAMP, &lamp_size));
    free(slurp(GOOD_V0, &v0_size));

    write_file(TMP_DIR "/empty.bin", "", 0);
    expect_error(NULL, ARGS((char *)run, TMP_DIR "/empty.bin"), "empty");
    expect_error(NULL, ARGS((char *)run, "tests/no-such-model.lamp"), "cannot open");
    expect_error(NULL, ARGS((char *)run, "tests"), "not a regular file");
    /* truncated: inside the header, inside the tokenizer, inside the weights */
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "cut-header", 100, 0, NULL, 0)), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "cut-tok", 1000, 0, NULL, 0)), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "cut-half", lamp_size / 2, 0, NULL, 0)), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "cut-4", lamp_size - 4, 0, NULL, 0)), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_V0, "v0-cut", v0_size - 4, 0, NULL, 0), "-z", IDTOK), "truncated");
    /* wrong magic: neither lamp nor a sane llama2.c header */
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "magic", 0, 0, "LAMQ", 4)), "not a lamp model");
    expect_error(NULL, ARGS((char *)run, "Makefile"), "not a lamp model");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "version", 4, 7)), "version 7");
    /* absurd or inconsistent header fields */
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "dim", 8, 1 << 30)), "dim");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "negdim", 8, -64)), "dim");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "layers", 16, 100000)), "n_layers");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "kvheads", 24, 3)), "does not divide");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "headdim", 28, 15)), "head_dim");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "seqlen", 36, 0)), "seq_len");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "vocab", 32, 1 << 22)), "vocab_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "bos", 48, 99999)), "bos_id");
    float nan_value = NAN;
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_LAMP, "theta", 0, 40, &nan_value, 4)), "rope_theta");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "toksize", 72, 0x7fffffff)), "tokenizer section");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "wtype", 60, 9)), "weight type");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_V0, "v0-layers", 8, 1 << 20), "-z", IDTOK), "n_layers");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_V0, "v0-seqlen", 24, 1 << 19), "-z", IDTOK), "header implies");
    /* a version 0 file given a version 2 magic: its first weights are read as the header */
    int32_t v2_header[2] = {0x616b3432, 2};
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_V0, "v2", 0, 0, v2_header, 8), "-z", IDTOK), "bad llama2.c header");
    int32_t v3_header[2] = {0x616b3432, 3};
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(GOOD_V0, "v3", 0, 0, v3_header, 8), "-z", IDTOK), "version 3");
}
END_TEST

/* int8 files: the group size must be sane and divide every row; the size
 * must match, as for float32 files. */
START_TEST(test_bad_int8_files) {
    const char *run = program("run");
    size_t q8_size, v2_size;
    free(slurp(Q8_LAMP, &q8_size));
    free(slurp(Q8_V2, &v2_size));
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_LAMP, "gs12", 64, 12)), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_LAMP, "gs0", 64, 0)), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_LAMP, "gs-huge", 64, 1 << 20)), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_LAMP, "gs16", 64, 16)), "header implies");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(GOOD_LAMP, "f32-gs", 64, 32)), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_LAMP, "q8-as-f32", 60, 0)), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(Q8_LAMP, "q8-cut", q8_size - 4, 0, NULL, 0)), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)make_variant(Q8_V2, "v2-cut", v2_size - 1, 0, NULL, 0), "-z", IDTOK), "truncated");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_V2, "v2-gs0", 37, 0), "-z", IDTOK), "group_size");
    expect_error(NULL, ARGS((char *)run, (char *)patched_i32(Q8_V2, "v2-gs24", 37, 24), "-z", IDTOK), "group_size");
}
END_TEST

START_TEST(test_bad_tokenizer) {
    const char *run = program("run");
    /* a 32000-piece tokenizer for a 512-token model, and the reverse kind of
     * mismatch: a truncated tokenizer with too few pieces */
    expect_error(NULL, ARGS((char *)run, GOOD_V0, "-z", "tests/data/llama2/tokenizer.bin"), "does not belong");
    expect_error(NULL, ARGS((char *)run, GOOD_V0, "-z", (char *)make_variant(IDTOK, "tok-cut", 3000, 0, NULL, 0)), "tokenizer");
    expect_error(NULL, ARGS((char *)run, GOOD_V0, "-z", "tests/no-such-tokenizer.bin"), "cannot be read");
    expect_error(NULL, ARGS((char *)run, GOOD_LAMP, "-z", "tests/data/llama2/tokenizer.bin"), "does not belong");
}
END_TEST

/* What a version 2 lamp file names that this build does not know: a chat
 * template (header byte 80) or a tokenizer kind (bits 8..15 of the tokenizer
 * flags, 8 bytes into the tokenizer section, which starts at byte 256); and
 * a chat template on the command line that lamp does not have. */
START_TEST(test_unknown_kinds) {
    char *run = (char *)program("run"), *tok = (char *)program("tokenizer");
    const char *chat = patched_i32(BYTELEVEL_LAMP, "chat9", 80, 9);
    expect_error(NULL, ARGS(run, (char *)chat, "-m", "chat", "-i", "hi"), "unknown chat template 9");
    expect_error(NULL, ARGS(run, (char *)chat, "-i", "hi"), "unknown chat template 9");
    const char *kind = patched_i32(BYTELEVEL_LAMP, "kind9", 256 + 8, 9 << 8);
    expect_error(NULL, ARGS(run, (char *)kind, "-i", "hi"), "unknown tokenizer kind 9");
    expect_error("hi\n", ARGS(tok, "encode", "-z", (char *)kind), "unknown tokenizer kind 9");
    expect_error("1 2\n", ARGS(tok, "decode", "-z", (char *)kind), "unknown tokenizer kind 9");
    expect_error("hi\n", ARGS(run, GOOD_LAMP, "-m", "chat", "--chat-template", "vicuna"), "unknown chat template 'vicuna'");
}
END_TEST

START_TEST(test_prompt_longer_than_context) {
    char prompt[4096] = "";
    for (int i = 0; i < 100; i++) strcat(prompt, "the cat sat on the mat ");
    expect_error(NULL, ARGS((char *)program("run"), GOOD_LAMP, "-i", prompt), "context");
}
END_TEST

START_TEST(test_bad_flags) {
    char *run = (char *)program("run");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-x", "1"), "unknown option");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "--temperature", "1"), "unknown option");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-t"), "needs a value");
    const char *bad[][2] = {
        {"-t", "abc"}, {"-t", "-1"}, {"-t", "nan"}, {"-t", "1e999"}, {"-t", "0.5x"}, {"-t", ""},
        {"-p", "1.5"}, {"-p", "-0.1"}, {"-p", "inf"},
        {"-k", "-3"}, {"-k", "2.5"}, {"-k", "ten"},
        {"-n", "x"}, {"-n", "-1"}, {"-n", "1e12"},
        {"-s", "-5"}, {"-s", "abc"}, {"-s", "99999999999999999999999"}, {"-s", "12x"},
        {"--threads", "0"}, {"--threads", "two"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(NULL, ARGS(run, GOOD_LAMP, (char *)bad[i][0], (char *)bad[i][1]), "invalid value");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-m", "poem"), "invalid mode");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-m", "eval"), "-f FILE");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-f", "README.md"), "-m eval");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-m", "eval", "-f", "tests/no-such-text.txt"), "cannot open");
    write_file(TMP_DIR "/blank.txt", "\n\n\n", 3);
    expect_error(NULL, ARGS(run, GOOD_LAMP, "-m", "eval", "-f", TMP_DIR "/blank.txt"), "no text");
    expect_error(NULL, ARGS(run, GOOD_LAMP, GOOD_LAMP), "two model files");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "--backend", "tpu"), "unknown backend");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "--reference", "--trace", TMP_DIR "/x.trace"), "--backend reference");
    expect_error(NULL, ARGS(run, GOOD_LAMP, "--trace", "tests/no-such-dir/x.trace"), "cannot create trace");
    expect_error(NULL, ARGS(run, "--compare-traces", "tests/no-such.trace", "tests/no-such.trace"), "cannot open trace");
    expect_error(NULL, ARGS(run, "--compare-traces", "Makefile", "Makefile"), "not a lamp trace");
    expect_error(NULL, ARGS(run, "--compare-traces", "Makefile"), "two trace files");
}
END_TEST

/* --trace from two backends of the same run, compared by --compare-traces:
 * they agree (exit 0); -v names the backend. */
START_TEST(test_trace_two_backends) {
    char *run = (char *)program("run");
    mkdir(TMP_DIR, 0755);
    Proc a = run_program(NULL, ARGS(run, GOOD_LAMP, "-s", "5", "-n", "6", "-i", "the", "-v", "--trace", TMP_DIR "/cli-a.trace"));
    Proc b = run_program(NULL, ARGS(run, GOOD_LAMP, "-s", "5", "-n", "6", "-i", "the", "--backend", "reference", "--trace",
                                    TMP_DIR "/cli-b.trace"));
    ck_assert_msg(a.code == 0 && b.code == 0, "exit %d/%d: %s %s", a.code, b.code, a.err, b.err);
    ck_assert_str_eq(a.out, b.out);
    ck_assert_msg(strstr(a.err, "backend ") != NULL, "-v does not name the backend: %s", a.err);
    Proc c = run_program(NULL, ARGS(run, "--compare-traces", TMP_DIR "/cli-a.trace", TMP_DIR "/cli-b.trace"));
    ck_assert_msg(c.exited && c.code == 0 && strstr(c.out, "all within"), "exit %d: %s %s", c.code, c.out, c.err);
    printf("--trace, default backend vs reference: %s", c.out);
    free_proc(&a);
    free_proc(&b);
    free_proc(&c);
}
END_TEST

START_TEST(test_tokenizer_cli_errors) {
    char *tok = (char *)program("tokenizer");
    expect_error(NULL, ARGS(tok, "frobnicate"), "unknown command");
    expect_error(NULL, ARGS(tok, "encode", "-z", IDTOK, "--nope"), "unknown option");
    expect_error("5 600\n", ARGS(tok, "decode", "-z", IDTOK), "outside the vocabulary");
    expect_error("5 x7\n", ARGS(tok, "decode", "-z", IDTOK), "not a list of token ids");
    expect_error("hi\n", ARGS(tok, "encode", "-z", "tests/no-such.bin"), "cannot open");
}
END_TEST

/* ----- behaviour of good runs ----------------------------------------- */

START_TEST(test_help_documents_every_flag) {
    Proc p = run_program(NULL, ARGS((char *)program("run"), "-h"));
    ck_assert_int_eq(p.code, 0);
    const char *flags[] = {"-t ", "-p ", "-k ", "-s ", "-n ", "-i ", "-z ", "-m ", "-y ", "-f ", "--threads", "--backend", "--trace",
                           "--compare-traces", "-v ", "-h "};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(p.out, flags[i]) != NULL, "-h does not document %s", flags[i]);
    free_proc(&p);
}
END_TEST

/* Same seed, same story; the thread count changes nothing; -v reports the seed. */
START_TEST(test_generate_reproducible) {
    char *run = (char *)program("run");
    Proc a = run_program(NULL, ARGS(run, GOOD_LAMP, "-s", "123", "-n", "40", "-i", "the", "--threads", "1", "-v"));
    Proc b = run_program(NULL, ARGS(run, GOOD_LAMP, "-s", "123", "-n", "40", "-i", "the", "--threads", "2"));
    ck_assert_msg(a.code == 0 && b.code == 0, "exit %d/%d signal %d/%d, stderr: %s %s", a.code, b.code,
                  a.signal, b.signal, a.err, b.err);
    ck_assert_str_eq(a.out, b.out);
    ck_assert_msg(strstr(a.err, "seed 123") != NULL, "-v does not print the seed: %s", a.err);
    ck_assert_msg(strstr(a.err, "generated ids") != NULL, "-v does not print the ids: %s", a.err);
    ck_assert_msg(strstr(a.err, "tok/s") != NULL, "no speed report: %s", a.err);
    ck_assert_msg(strncmp(a.out, "the", 3) == 0, "the prompt is not echoed first: %s", a.out);
    free_proc(&a);
    free_proc(&b);
}
END_TEST

/* int8 models run: the lamp and llama2.c version 2 files of the same
 * weights print the same story, for any thread count. */
START_TEST(test_generate_int8) {
    char *run = (char *)program("run");
    Proc a = run_program(NULL, ARGS(run, Q8_LAMP, "-t", "0", "-n", "40", "-i", "the cat", "--threads", "1", "-v"));
    Proc b = run_program(NULL, ARGS(run, Q8_V2, "-z", IDTOK, "-t", "0", "-n", "40", "-i", "the cat", "--threads", "2"));
    ck_assert_msg(a.code == 0 && b.code == 0, "exit %d/%d, stderr: %s %s", a.code, b.code, a.err, b.err);
    ck_assert_msg(strstr(a.err, "weights int8 (Q8_0, groups of 32)") != NULL, "-v does not say int8: %s", a.err);
    ck_assert_msg(strncmp(a.out, "the cat", 7) == 0, "the prompt is not echoed first: %s", a.out);
    /* idtok512 and the embedded synthetic tokenizer differ, so compare the ids, not the text */
    Proc c = run_program(NULL, ARGS(run, Q8_V2, "-z", IDTOK, "-t", "0", "-n", "40", "--threads", "2", "-v"));
    Proc d = run_program(NULL, ARGS(run, Q8_LAMP, "-z", IDTOK, "-t", "0", "-n", "40", "--threads", "1", "-v"));
    const char *ids_c = strstr(c.err, "generated ids"), *ids_d = strstr(d.err, "generated ids");
    ck_assert_msg(ids_c && ids_d && strcmp(ids_c, ids_d) == 0, "lamp and v2 files generate differently:\n%s\n%s", c.err, d.err);
    free_proc(&a); free_proc(&b); free_proc(&c); free_proc(&d);
}
END_TEST

/* -m eval: two lines on stdout, the numbers consistent with each other
 * (perplexity = exp(NLL), bits per byte = NLL * tokens / ln 2 / bytes),
 * documents and bytes counted as documented, the same for 1 and 2 threads;
 * int8 models evaluate too. */
static void eval_numbers(const char *model, const char *text_path, const char *threads, long *docs, long *bytes,
                         long *tokens, double *nll, double *ppl, double *bpb) {
    Proc p = run_program(NULL, ARGS((char *)program("run"), (char *)model, "-m", "eval", "-f", (char *)text_path,
                                    "--threads", (char *)threads));
    ck_assert_msg(p.exited && p.code == 0, "eval failed: %s", p.err);
    char path[256];
    int got = sscanf(p.out, "eval %255[^:]: %ld documents, %ld bytes, %ld tokens scored\n"
                            "mean NLL %lf nats/token | perplexity %lf | bits per byte %lf",
                     path, docs, bytes, tokens, nll, ppl, bpb);
    ck_assert_msg(got == 7, "unexpected eval output (%d fields): %s", got, p.out);
    ck_assert_msg(strstr(p.err, "tok/s") != NULL, "no speed report: %s", p.err);
    free_proc(&p);
}

START_TEST(test_eval) {
    /* three documents (blank lines between; a single newline stays inside one) */
    const char *text = "the cat sat on the mat.\nthe dog sat on the log.\n\n\nonce upon a time\n\nthe end\n";
    write_file(TMP_DIR "/eval.txt", text, strlen(text));
    long docs, bytes, tokens, docs2, bytes2, tokens2;
    double nll, ppl, bpb, nll2, ppl2, bpb2;
    eval_numbers(GOOD_LAMP, TMP_DIR "/eval.txt", "1", &docs, &bytes, &tokens, &nll, &ppl, &bpb);
    ck_assert_int_eq(docs, 3);
    ck_assert_int_eq(bytes, strlen("the cat sat on the mat.\nthe dog sat on the log.") + strlen("once upon a time") +
                                strlen("the end"));
    ck_assert_msg(nll > 0 && fabs(ppl - exp(nll)) < 1e-3 * ppl, "perplexity %g is not exp(%g)", ppl, nll);
    ck_assert_msg(fabs(bpb - nll * tokens / log(2.0) / bytes) < 1e-4, "bits per byte %g inconsistent", bpb);
    eval_numbers(GOOD_LAMP, TMP_DIR "/eval.txt", "2", &docs2, &bytes2, &tokens2, &nll2, &ppl2, &bpb2);
    ck_assert_msg(nll2 == nll && tokens2 == tokens, "eval differs between 1 and 2 threads: %.9g vs %.9g", nll, nll2);
    /* int8 weights: close to, but not the same as, float32 */
    eval_numbers(Q8_LAMP, TMP_DIR "/eval.txt", "2", &docs2, &bytes2, &tokens2, &nll2, &ppl2, &bpb2);
    ck_assert_msg(tokens2 > 0 && nll2 > 0, "int8 eval: %g", nll2);
}
END_TEST

/* Two turns through chat; the second must reuse the cache (it starts after
 * the first turn's positions), and a too-long conversation says so. */
START_TEST(test_chat_turns_and_context_full) {
    char *run = (char *)program("run");
    /* the test model's tokenizer has few merges, so keep the turns short:
     * they must fit its 64 positions */
    Proc p = run_program("a\nhi\nyo\n", ARGS(run, GOOD_LAMP, "-m", "chat", "--chat-template", "llama2",
                                              "-n", "3", "-s", "9", "-v"));
    ck_assert_msg(p.exited && p.code == 0, "chat failed: %s", p.err);
    ck_assert_msg(strstr(p.out, "Enter system prompt (optional): ") != NULL, "%s", p.out);
    char *second = strstr(p.out, "Assistant: ");
    ck_assert_msg(second && strstr(second + 1, "Assistant: "), "two assistant turns expected: %s", p.out);
    ck_assert_msg(strstr(p.err, "turn ids (") && strstr(p.err, "reply ids ("), "-v prints no ids: %s", p.err);
    free_proc(&p);

    /* a model whose file names no chat template says so, and stops */
    Proc r = run_program("hi\n", ARGS(run, GOOD_LAMP, "-m", "chat", "-y", ""));
    ck_assert_msg(r.exited && r.code == 1 && strstr(r.err, "is not a chat model"), "%s", r.err);
    free_proc(&r);

    /* each turn is about 60 tokens; the model's context is 64 */
    Proc q = run_program("the cat sat on the mat and the dog sat on the log\n"
                         "the cat sat on the mat and the dog sat on the log\n"
                         "the cat sat on the mat and the dog sat on the log\n",
                         ARGS(run, GOOD_LAMP, "-m", "chat", "--chat-template", "llama2", "-y", "", "-n", "4",
                              "-s", "3"));
    ck_assert_msg(q.exited && q.code == 0, "chat failed: %s", q.err);
    ck_assert_msg(strstr(q.err, "context full") != NULL, "no context-full message: %s", q.err);
    free_proc(&q);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *golden = tcase_create("llama2.c goldens");
    tcase_set_timeout(golden, 120);
    tcase_add_test(golden, test_llama2c_goldens);
    suite_add_tcase(s, golden);
    TCase *bad = tcase_create("bad input");
    tcase_set_timeout(bad, 120);
    tcase_add_test(bad, test_bad_model_files);
    tcase_add_test(bad, test_bad_int8_files);
    tcase_add_test(bad, test_bad_tokenizer);
    tcase_add_test(bad, test_unknown_kinds);
    tcase_add_test(bad, test_prompt_longer_than_context);
    tcase_add_test(bad, test_bad_flags);
    tcase_add_test(bad, test_tokenizer_cli_errors);
    suite_add_tcase(s, bad);
    TCase *good = tcase_create("good runs");
    tcase_set_timeout(good, 120);
    tcase_add_test(good, test_help_documents_every_flag);
    tcase_add_test(good, test_generate_reproducible);
    tcase_add_test(good, test_trace_two_backends);
    tcase_add_test(good, test_generate_int8);
    tcase_add_test(good, test_eval);
    tcase_add_test(good, test_chat_turns_and_context_full);
    suite_add_tcase(s, good);
    return run_suite(s);
}
