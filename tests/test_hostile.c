/* test_hostile.c — hostile and careless input: each defect that fuzzing
 * found (docs/fuzzing.md), replayed from the input that found it, and the
 * rough edges a newcomer hit. Each test says what used to happen. */
#define TRAIN_NO_MAIN
#include "train.c"
#include "tests/testutil.h"

#define COLLIDING_VOCAB_NO_MAIN
#include "tools/colliding_vocab.c"

#define WORK TMP_DIR "/hostile"
#define STORIES "models/stories.lamp"
#define F32_LAMP "tests/golden/forward/llama2c-compat.lamp"  /* float32, vocab 512 */
#define Q8_LAMP "tests/golden/forward_q8/q8-llama2c.lamp"    /* int8, groups of 32 */
#define TOKENIZER_MODEL "tests/golden/train/tiny.lamp"
#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})

/* The program ended with exit status `code` (not a signal) and, for an
 * error, one line on stderr mentioning `keyword`. */
static void expect_exit(Proc *p, int code, const char *keyword, const char *what) {
    ck_assert_msg(p->exited, "%s: killed by signal %d; stderr: %s", what, p->signal, p->err);
    ck_assert_msg(p->code == code, "%s: exit status %d, expected %d; stderr: %s", what, p->code, code, p->err);
    if (keyword) ck_assert_msg(strstr(p->err, keyword) != NULL, "%s: stderr does not mention '%s': %s", what,
                               keyword, p->err);
}

/* 1. Top-p read cand[-1] when no token passed its cutoff: with -t 1e6 every
 *    probability is about 1/vocab, below (1 - p) / (vocab - 1). */
START_TEST(test_topp_keeps_the_most_likely_token) {
    enum { N = 8 };
    ProbIndex cand[N];
    float flat[N];
    for (int i = 0; i < N; i++) flat[i] = 1.0f / N;
    flat[5] += 1e-6f;                      /* the most likely, barely */
    ck_assert_int_eq(sample_topp(flat, N, 0.0001f, cand, 0.5f), 5);
    float nan[N];
    for (int i = 0; i < N; i++) nan[i] = NAN;
    int id = sample_topp(nan, N, 0.9f, cand, 0.5f);
    ck_assert(id >= 0 && id < N);
    Proc p = run_program(NULL, ARGS((char *)program("run"), STORIES, "-t", "1000000", "-p", "0.0001", "-n", "8", "-s", "1"));
    expect_exit(&p, 0, NULL, "run -t 1000000 -p 0.0001");
    ck_assert_msg(strncmp(p.out, "Once upon a time", 16) == 0, "only the most likely tokens: %s", p.out);
    free_proc(&p);
}
END_TEST

/* 2. quantize_q8 converted NaN to int (undefined behaviour): a group with an
 *    inf or NaN now gets a NaN scale and zeros; forward() then stops with
 *    the layer's name. */
START_TEST(test_non_finite_activations) {
    int8_t q[8];
    float scale[2], x[8] = {1, 2, 3, 4, 1, NAN, 3, 4};
    quantize_q8(q, scale, x, 8, 4);
    ck_assert(scale[0] > 0.0f && isnan(scale[1]));
    for (int j = 4; j < 8; j++) ck_assert_int_eq(q[j], 0);
    x[5] = INFINITY;
    quantize_q8(q, scale, x, 8, 4);
    ck_assert(isnan(scale[1]));

    /* rms_att_weight[0][0] (layer 0), the first block after the token
     * embedding, set to NaN in a float32 and an int8 model */
    const char *models[] = {F32_LAMP, Q8_LAMP};
    for (int m = 0; m < 2; m++) {
        size_t size;
        unsigned char *data = (unsigned char *)slurp(models[m], &size);
        ck_assert_ptr_nonnull(data);
        size_t dim = read_u32(data + 8), vocab = read_u32(data + 32), gs = read_u32(data + 64);
        size_t at = align_up(256 + (size_t)read_u64(data + 72), 64);            /* token embedding */
        at = gs ? align_up(align_up(at + vocab * dim, 64) + vocab * dim / gs * 4, 64)   /* values, scales */
                : align_up(at + vocab * dim * 4, 64);
        float nan_value = NAN;
        memcpy(data + at, &nan_value, 4);
        char path[64];
        snprintf(path, sizeof path, WORK "-nan%d.lamp", m);
        write_file(path, data, size);
        free(data);
        Proc p = run_program(NULL, ARGS((char *)program("run"), path, "-n", "4", "-z", "tests/data/llama2c/idtok512.bin"));
        expect_exit(&p, 1, "after layer 0", path);
        free_proc(&p);
    }
}
END_TEST

/* 3. train.c's expf_simd(NaN) overflowed a signed int building 2^k. */
START_TEST(test_expf_simd_nan) {
    ck_assert(isnan(expf_simd(NAN)));
    ck_assert(isnan(expf_simd(-NAN)));
    ck_assert_float_eq_tol(expf_simd(1.0f), expf(1.0f), 1e-6f);
}
END_TEST

/* A training state made by ./train, to be corrupted. */
static char *make_state(size_t *size) {
    mkdir(TMP_DIR, 0755);
    mkdir(WORK, 0755);
    size_t text_size;
    char *text = slurp("data/tinystories/valid.txt", &text_size);
    ck_assert_ptr_nonnull(text);
    write_file(WORK "/text.txt", text, 20000);
    free(text);
    Proc p = run_program(NULL, ARGS((char *)program("train"), "--tokenizer", TOKENIZER_MODEL, "--data",
                                    WORK "/text.txt", "--dim", "16", "--n-layers", "1", "--n-heads", "2",
                                    "--seq-len", "16", "--batch", "2", "--steps", "2", "--eval-every", "0",
                                    "--sample-every", "0", "--threads", "1", "--out", WORK "/run"));
    expect_exit(&p, 0, NULL, "train (setup)");
    free_proc(&p);
    char *state = slurp(WORK "/run/train.state", size);
    ck_assert_ptr_nonnull(state);
    return state;
}

typedef struct {
    Config c;
    Hyper h;
    Progress pr;
    DataId d;
    uint64_t tokenizer_size;
} StateHeader;

/* --resume on the state with its header changed by `change`: exit 1 and
 * the message names `keyword`. */
static void expect_refused(const char *state, size_t size, void (*change)(StateHeader *), const char *keyword) {
    unsigned char *copy = malloc(size);
    memcpy(copy, state, size);
    StateHeader s;
    state_header(copy, 0, &s.c, &s.h, &s.pr, &s.d, &s.tokenizer_size);
    change(&s);
    state_header(copy, 1, &s.c, &s.h, &s.pr, &s.d, &s.tokenizer_size);
    write_file(WORK "/bad.state", copy, size);
    free(copy);
    Proc p = run_program(NULL, ARGS((char *)program("train"), "--resume", WORK "/bad.state", "--data",
                                    WORK "/text.txt", "--out", WORK "/resumed", "--threads", "1"));
    expect_exit(&p, 1, keyword, keyword);
    free_proc(&p);
}

static void val_fraction_2(StateHeader *s) { s->d.val_fraction = 2.0f; }
static void val_fraction_nan(StateHeader *s) { s->d.val_fraction = NAN; }
static void accum_2_27(StateHeader *s) { s->h.accum_steps = 1 << 27; }
static void batch_2_30(StateHeader *s) { s->h.batch_size = 1 << 30; }
static void beta1_1(StateHeader *s) { s->h.beta1 = 1.0f; }
static void min_lr_above_lr(StateHeader *s) { s->h.min_lr = s->h.lr * 2; }

/* 4. val_fraction 2 made all.n - n_val wrap (then a segfault in token_hash);
 * 5. accum_steps 2^27 overflowed B*T*accum and trained for ever, a batch of
 *    2^30 asked for terabytes: a state is held to the flags' ranges. */
START_TEST(test_state_ranges) {
    size_t size;
    char *state = make_state(&size);
    expect_refused(state, size, val_fraction_2, "--val-fraction is 2");
    expect_refused(state, size, val_fraction_nan, "--val-fraction is nan");
    expect_refused(state, size, accum_2_27, "--accum is 134217728, outside 1..65536");
    expect_refused(state, size, batch_2_30, "--batch is 1073741824");
    expect_refused(state, size, beta1_1, "--beta1");
    expect_refused(state, size, min_lr_above_lr, "--min-lr");
    /* and a NaN in the weights (it reached expf_simd(NaN), 3. above) */
    StateHeader s;
    state_header((unsigned char *)state, 0, &s.c, &s.h, &s.pr, &s.d, &s.tokenizer_size);
    float nan_value = NAN;
    memcpy(state + align_up(256 + (size_t)s.tokenizer_size, 64) + 4 * 7, &nan_value, 4);
    write_file(WORK "/nan.state", state, size);
    Proc p = run_program(NULL, ARGS((char *)program("train"), "--resume", WORK "/nan.state", "--data",
                                    WORK "/text.txt", "--out", WORK "/resumed", "--threads", "1"));
    expect_exit(&p, 1, "weight number 7", "NaN weight");
    free_proc(&p);
    /* Finite weights of 3e38 overflow in the first step: the loss is NaN
     * and expf_simd(NaN) ran (signed overflow before); now the trainer
     * stops and says so. */
    s.h.max_steps = 5;
    state_header((unsigned char *)state, 1, &s.c, &s.h, &s.pr, &s.d, &s.tokenizer_size);
    size_t weights_at = align_up(256 + (size_t)s.tokenizer_size, 64), n_params = (size - weights_at) / 12;
    for (size_t i = 0; i < n_params; i++) {
        float huge = 3e38f;
        memcpy(state + weights_at + 4 * i, &huge, 4);
    }
    write_file(WORK "/huge.state", state, size);
    p = run_program(NULL, ARGS((char *)program("train"), "--resume", WORK "/huge.state", "--data",
                               WORK "/text.txt", "--out", WORK "/resumed", "--threads", "1"));
    expect_exit(&p, 1, "training diverged at step", "weights of 3e38");
    free_proc(&p);
    free(state);
}
END_TEST

/* 6. 65,536 pieces whose hashes share one slot (tools/colliding_vocab.c)
 *    took 4.9 s to load: linear probing, N^2 / 2 comparisons. The pieces of a
 *    slot are now sorted and binary-searched. Checked here without a clock:
 *    the pieces really do share a slot, and the slot holds every one of
 *    them in search order. (docs/tokenizer.md has the load times.) */
START_TEST(test_colliding_vocabulary) {
    enum { N = 65536 };
    mkdir(TMP_DIR, 0755);
    ck_assert_int_eq(write_colliding_vocab(WORK "-colliding.bin", N), 0);
    Tokenizer t;
    tokenizer_load_file(&t, WORK "-colliding.bin");
    ck_assert_int_eq(t.vocab_size, N);
    ck_assert_uint_eq(t.table_size, 2 * N);
    size_t biggest = 0, slot = 0;
    for (size_t s = 0; s < t.table_size; s++) {
        size_t n = (size_t)(t.bucket_start[s + 1] - t.bucket_start[s]);
        if (n > biggest) { biggest = n; slot = s; }
    }
    ck_assert_uint_eq(biggest, N);   /* the attack works: one slot holds every piece */
    for (int i = t.bucket_start[slot] + 1; i < t.bucket_start[slot + 1]; i++) {
        int a = t.bucket_ids[i - 1], b = t.bucket_ids[i];
        int la = t.piece_lengths[a], lb = t.piece_lengths[b];   /* shorter first, then by bytes */
        ck_assert(la < lb || (la == lb && memcmp(t.pieces[a], t.pieces[b], (size_t)la) < 0));
    }
    tokenizer_free(&t);
}
END_TEST

/* Newcomer: --threads 1000 on a machine with a few CPUs ran for minutes. */
START_TEST(test_threads_past_the_cpus) {
    Proc p = run_program(NULL, ARGS((char *)program("run"), STORIES, "--threads", "1000", "-n", "20", "-s", "1"));
#ifdef _OPENMP
    expect_exit(&p, 0, "CPUs available; using", "--threads 1000");
#else   /* a build without OpenMP (make NO_OMP=1) runs on one CPU, and says so */
    expect_exit(&p, 0, "built without OpenMP", "--threads 1000");
#endif
    free_proc(&p);
}
END_TEST

/* Newcomer: range errors printed integers as "1.07374e+09". */
START_TEST(test_integer_ranges_print_as_integers) {
    Proc p = run_program(NULL, ARGS((char *)program("run"), STORIES, "-n", "x"));
    expect_exit(&p, 1, "expected an integer from 0 to 1073741824", "run -n x");
    free_proc(&p);
    p = run_program(NULL, ARGS((char *)program("train"), "--steps", "0"));
    expect_exit(&p, 1, "expected an integer from 1 to 1073741824", "train --steps 0");
    free_proc(&p);
}
END_TEST

/* Newcomer: a prompt of only spaces printed the spaces and stopped, with
 * no word of why. (On the shipped model, seed 1 samples end-of-text first.) */
START_TEST(test_immediate_end_explained) {
    Proc p = run_program(NULL, ARGS((char *)program("run"), STORIES, "-i", "   ", "-n", "3", "-s", "1"));
    expect_exit(&p, 0, "the prompt is only whitespace", "run -i '   '");
    free_proc(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("hostile");
    TCase *defects = tcase_create("fuzz-found defects");
    tcase_set_timeout(defects, 300);
    tcase_add_test(defects, test_topp_keeps_the_most_likely_token);
    tcase_add_test(defects, test_non_finite_activations);
    tcase_add_test(defects, test_expf_simd_nan);
    tcase_add_test(defects, test_state_ranges);
    tcase_add_test(defects, test_colliding_vocabulary);
    suite_add_tcase(s, defects);
    TCase *newcomer = tcase_create("newcomer");
    tcase_set_timeout(newcomer, 300);
    tcase_add_test(newcomer, test_threads_past_the_cpus);
    tcase_add_test(newcomer, test_integer_ranges_print_as_integers);
    tcase_add_test(newcomer, test_immediate_end_explained);
    suite_add_tcase(s, newcomer);
    return run_suite(s);
}
