/* test_geglu.c — the check of the exercise "GeGLU: a new op with its
 * backward" (docs/exercises.md): `make exercise-geglu`.
 *
 * Gemma's feed-forward is Llama's with GELU where Llama has SiLU:
 *     h = gelu(w1 x) * (w3 x),  gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * A lamp file says so with header flags bit 2. run.c must run such a model,
 * and train.c must train it: forward, hand-written backward, and the flag
 * kept in the checkpoints it writes.
 *
 * tests/golden/gen_exercise_geglu.py made one such model with transformers'
 * LlamaForCausalLM (hidden_act "gelu_pytorch_tanh", random weights) and
 * saved, from PyTorch, its logits at 64 positions (geglu.logits) and, for
 * one window of 64 tokens, the loss, the logits and the gradient of every
 * parameter from autograd (geglu.grads). The checks, in order:
 *
 *   run.c     logits at every position vs transformers; a prompt in chunks
 *             vs one token at a time; a model without bit 2 is still SwiGLU
 *   train.c   loss and logits vs PyTorch (the forward), every gradient vs
 *             autograd (the backward), finite differences of w1, w3 and the
 *             tensors before them (the backward against train.c's own
 *             forward, no PyTorch involved)
 *   ./train   a checkpoint trained from the model keeps flags bit 2, run.c
 *             computes train.c's logits on it, and a resumed run is the
 *             uninterrupted one, bit for bit (the training state keeps it)
 *
 * Before the feature exists, loading the model stops each test with run.c's
 * own message, "lamp: tests/golden/exercises/geglu/geglu.lamp: unknown flags
 * 0x4 in the lamp header" (Check reports "Early exit with return value 1").
 * Which failure means what is spelled out in docs/exercises.md. */
#define TRAIN_NO_MAIN
#include "train.c"
#include "tests/testutil.h"

#define GOLDEN_DIR "tests/golden/exercises/geglu/"
#define MODEL GOLDEN_DIR "geglu.lamp"
#define WORK TMP_DIR "/exercise-geglu"
#define DATA_TEXT WORK "/stories.txt"

/* run.c (float32, its own summation order) against transformers, as in
 * tests/test_forward.c. Measured with the reference solution (gcc 12, -O3
 * -march=native): 3.6e-6; the logits spread over a few units (std 1.7).
 * The same weights with SiLU move them by 1.6, with exact (erf) GELU
 * instead of the tanh approximation by 2.6e-3 (printed by the generator):
 * both fail. */
#define TOLERANCE 1e-4f
/* A prompt in chunks vs one token at a time: run.c multiplies a chunk with
 * another kernel than a single position, which sums in another order
 * (measured: 3.8e-6). */
#define PREFILL_TOLERANCE 1e-5f

static const char *const TENSOR_NAMES[N_TENSORS] = {
    "token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
    "w1", "w2", "w3", "rms_final_weight", "wcls"};

/* One thread: the thread count changes no bit, and many tiny forward passes
 * on two threads crawl on a busy machine. */
static void one_thread(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* ---------------------------------------------------------------------------
 * run.c
 * -------------------------------------------------------------------------*/

typedef struct {
    int n_positions, vocab_size;
    int *ids;       /* (n_positions) the input sequence */
    float *logits;  /* (n_positions, vocab_size) what transformers computed */
    char *raw;
} Logits;

/* Layout (tests/golden/README.md): int32 n_positions, int32 vocab_size,
 * int32 ids[n_positions], float32 logits[n_positions][vocab_size]. */
static Logits read_logits(const char *path) {
    Logits g;
    size_t size;
    g.raw = slurp(path, &size);
    ck_assert_msg(g.raw != NULL, "missing golden %s (run tests/golden/gen_exercise_geglu.py)", path);
    memcpy(&g.n_positions, g.raw, 4);
    memcpy(&g.vocab_size, g.raw + 4, 4);
    size_t expected = 8 + 4 * (size_t)g.n_positions * (1 + (size_t)g.vocab_size);
    ck_assert_msg(size == expected, "%s: %zu bytes, expected %zu", path, size, expected);
    g.ids = (int *)(g.raw + 8);
    g.logits = (float *)(g.raw + 8 + 4 * (size_t)g.n_positions);
    return g;
}

/* run.c one token at a time over the golden sequence: the largest
 * |logit - golden|, and where it is. */
static float run_c_error(const char *model_path, const char *golden_path, int *worst_pos) {
    Logits g = read_logits(golden_path);
    Transformer t;
    build_transformer(&t, model_path);
    malloc_run_state(&t);
    ck_assert_int_eq(t.config.vocab_size, g.vocab_size);
    float worst = 0.0f;
    *worst_pos = -1;
    for (int pos = 0; pos < g.n_positions; pos++) {
        const float *logits = forward(&t, g.ids[pos], pos);
        for (int i = 0; i < g.vocab_size; i++) {
            float d = fabsf(logits[i] - g.logits[(size_t)pos * g.vocab_size + i]);
            if (!(d <= worst)) { worst = d; *worst_pos = pos; }   /* NaN counts as the worst */
        }
    }
    printf("%-45s max |logit - transformers| = %.3g (position %d)\n", model_path, worst, *worst_pos);
    free_transformer(&t);
    free(g.raw);
    return worst;
}

START_TEST(test_run_c_logits) {
    one_thread();
    int pos;
    float err = run_c_error(MODEL, GOLDEN_DIR "geglu.logits", &pos);
    ck_assert_msg(err <= TOLERANCE,
                  "run.c's logits differ from transformers' by %g (position %d; tolerance %g): is the "
                  "feed-forward's activation gelu, tanh approximation, when flags bit 2 is set?",
                  err, pos, TOLERANCE);
}
END_TEST

/* Bit 2 clear must mean SwiGLU, as before. mqa-tied has flags = 0x1 (a
 * shared classifier), so this also catches reading the wrong bit. */
START_TEST(test_swiglu_model_unchanged) {
    one_thread();
    int pos;
    float err = run_c_error("tests/golden/forward/mqa-tied.lamp", "tests/golden/forward/mqa-tied.logits", &pos);
    ck_assert_msg(err <= TOLERANCE,
                  "a SwiGLU model (flags 0x1, bit 2 clear) now differs from transformers by %g at position %d",
                  err, pos);
}
END_TEST

/* The logits of a prompt fed in chunks (sizes cycled from `sizes`) against
 * one token at a time, and those of prefill()'s last position: the largest
 * |difference| (tests/test_forward.c does the same for the SwiGLU models). */
static float chunked_vs_single(Transformer *t, const int *ids, int n, const int *sizes, int n_sizes) {
    int vocab = t->config.vocab_size;
    float *single = malloc(sizeof(float) * (size_t)n * vocab);
    for (int pos = 0; pos < n; pos++)
        memcpy(single + (size_t)pos * vocab, forward(t, ids[pos], pos), sizeof(float) * vocab);
    float worst = 0.0f;
    for (int pos = 0, k = 0; pos < n; k++) {
        int m = sizes[k % n_sizes];
        if (m > n - pos) m = n - pos;
        const float *logits = forward_chunk(t, ids + pos, m, pos, LOGITS_ALL);
        for (size_t i = 0; i < (size_t)m * vocab; i++) {
            float d = fabsf(logits[i] - single[(size_t)pos * vocab + i]);
            if (!(d <= worst)) worst = d;
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

START_TEST(test_run_c_prefill_matches_token_by_token) {
    one_thread();
    Logits g = read_logits(GOLDEN_DIR "geglu.logits");
    Transformer t;
    build_transformer(&t, MODEL);
    malloc_run_state(&t);
    int full[] = {CHUNK}, odd[] = {1, 3, 4, 7, 13, 5, 2, 9};
    float a = chunked_vs_single(&t, g.ids, g.n_positions, full, 1);
    float b = chunked_vs_single(&t, g.ids, g.n_positions, odd, 8);
    printf("run.c chunked vs one at a time: max |delta| %.3g (chunks of %d), %.3g (1, 3, 4, 7, ...)\n", a, CHUNK, b);
    ck_assert_msg(a <= PREFILL_TOLERANCE && b <= PREFILL_TOLERANCE,
                  "a prompt in chunks gives other logits than one token at a time (%g, %g): does "
                  "forward_chunk apply gelu to all n * hidden_dim values of the chunk?", a, b);
    free_transformer(&t);
    free(g.raw);
}
END_TEST

/* ---------------------------------------------------------------------------
 * train.c against PyTorch
 * -------------------------------------------------------------------------*/

/* geglu.grads (gen_train.py's layout): int32 n_ints, ints = B, T, V, then
 * the (B, T + 1) token windows; float32 to the end: the mean loss, the
 * logits (B*T, V), then every gradient in lamp's tensor order. */
typedef struct {
    char *raw;
    int B, T, V;
    int *inputs, *targets;   /* (B*T) each */
    float loss;
    const float *logits, *grads;
    size_t n_floats;
} Grads;

static Grads read_grads(void) {
    Grads g;
    size_t size;
    g.raw = slurp(GOLDEN_DIR "geglu.grads", &size);
    ck_assert_msg(g.raw != NULL, "missing golden " GOLDEN_DIR "geglu.grads (run tests/golden/gen_exercise_geglu.py)");
    int32_t n_ints;
    memcpy(&n_ints, g.raw, 4);
    ck_assert(n_ints >= 3 && 4 + 4 * (size_t)n_ints <= size);
    const int32_t *ints = (const int32_t *)(g.raw + 4);
    g.B = ints[0], g.T = ints[1], g.V = ints[2];
    ck_assert_int_eq(n_ints, 3 + g.B * (g.T + 1));
    g.inputs = malloc(sizeof(int) * g.B * g.T);
    g.targets = malloc(sizeof(int) * g.B * g.T);
    for (int b = 0; b < g.B; b++)
        for (int t = 0; t < g.T; t++) {
            g.inputs[b * g.T + t] = ints[3 + b * (g.T + 1) + t];
            g.targets[b * g.T + t] = ints[3 + b * (g.T + 1) + t + 1];
        }
    const float *floats = (const float *)(g.raw + 4 + 4 * (size_t)n_ints);
    g.n_floats = (size - 4 - 4 * (size_t)n_ints) / 4;
    g.loss = floats[0];
    g.logits = floats + 1;
    g.grads = floats + 1 + (size_t)g.B * g.T * g.V;
    return g;
}

static void free_grads(Grads *g) {
    free(g->inputs);
    free(g->targets);
    free(g->raw);
}

/* The golden model in train.c, for batches of the golden's B. */
static void load_golden_model(Model *m, const Grads *g) {
    load_model_file(m, MODEL, g->B, NULL);
    ck_assert_int_eq(m->config.seq_len, g->T);
    ck_assert_int_eq(m->config.vocab_size, g->V);
    ck_assert_msg(g->n_floats == 1 + (size_t)g->B * g->T * g->V + m->n_params, "golden size");
}

/* Tolerances as in tests/test_train.c: loss 1e-5 relative, logits 1e-4
 * absolute. PyTorch's own float32 error against float64 is 3.1e-8 in the
 * loss and 2.9e-6 in the logits (the generator prints it). Measured with
 * the reference solution: loss 0 (the same float32), logits 3.3e-6. */
START_TEST(test_train_forward_vs_pytorch) {
    Grads g = read_grads();
    Model m;
    load_golden_model(&m, &g);
    model_forward(&m, g.inputs, NULL, g.B);
    double logit_err = 0.0;
    for (size_t i = 0; i < (size_t)g.B * g.T * g.V; i++) {
        double d = fabs((double)m.acts.logits[i] - g.logits[i]);
        if (!(d <= logit_err)) logit_err = d;
    }
    float loss = model_forward(&m, g.inputs, g.targets, g.B);
    double loss_err = fabs((double)loss - g.loss) / g.loss;
    printf("train.c vs PyTorch: loss %.6f (rel error %.2g), max |logit error| %.2g\n", loss, loss_err, logit_err);
    ck_assert_msg(loss_err <= 1e-5 && logit_err <= 1e-4,
                  "train.c's forward differs from PyTorch's: loss %g vs %g, logits by %g. Does model_forward "
                  "compute hs = gelu(h1) * h3 when the model's header has flags bit 2?",
                  loss, g.loss, logit_err);
    free_model(&m);
    free_grads(&g);
}
END_TEST

/* max |a - b| / max |b| over n values: the error relative to the tensor's scale. */
static double scaled_error(const float *a, const float *b, size_t n) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst)) worst = d;   /* NaN counts as the worst */
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return scale > 0 ? worst / scale : worst;
}

/* Every gradient within 1e-4 of its tensor's largest |g|, as in
 * tests/test_train.c. PyTorch's own float32 error is at most 8.8e-7 of it
 * (the generator prints it per tensor). Measured with the reference
 * solution: at most 7.7e-7 (printed below). All tensors are compared before
 * the test fails, and the message names every one that is off.
 *
 * Where an error starts: the backward runs from the classifier down, so a
 * wrong d(h1) in the last layer spoils its w1 and then everything before
 * it, the earlier layers' w2 and w3 included. The last layer's w1, w2 and
 * w3 alone tell the mistakes apart, and the message says which it is. */
#define GRAD_TOLERANCE 1e-4

/* The error of layer l's matrix within tensor i (rows x cols per layer). */
static double layer_error(const Model *m, const float *want_all, int i, int l) {
    const float *want = want_all;
    for (int j = 0; j < i; j++) want += m->numel[j];
    size_t per_layer = m->numel[i] / (size_t)m->config.n_layers;
    return scaled_error(m->grads.tensor[i] + l * per_layer, want + l * per_layer, per_layer);
}

START_TEST(test_train_gradients_vs_pytorch) {
    Grads g = read_grads();
    Model m;
    load_golden_model(&m, &g);
    model_forward(&m, g.inputs, g.targets, g.B);
    model_backward(&m, g.B, 1.0f / (float)(g.B * g.T));
    const float *want = g.grads;
    char wrong[256] = "";
    for (int i = 0; i < N_TENSORS; i++) {
        if (!m.numel[i]) continue;
        double err = scaled_error(m.grads.tensor[i], want, m.numel[i]);
        printf("  grad %-17s %6zu values, max |error| / max |g| = %.2g\n", TENSOR_NAMES[i], m.numel[i], err);
        if (!(err <= GRAD_TOLERANCE)) {
            strcat(wrong, " ");
            strcat(wrong, TENSOR_NAMES[i]);
        }
        want += m.numel[i];
    }
    int last = m.config.n_layers - 1;
    double e1 = layer_error(&m, g.grads, T_W1, last), e2 = layer_error(&m, g.grads, T_W2, last);
    double e3 = layer_error(&m, g.grads, T_W3, last);
    const char *hint = "the feed-forward of the last layer is right: look elsewhere";
    if (!(e2 <= GRAD_TOLERANCE))
        hint = "its w2 needs only hs = gelu(h1) * h3 from the forward: check what model_forward stores in hs";
    else if (!(e3 <= GRAD_TOLERANCE))
        hint = "its w2 is right, w3 is not: check d(h3) = d(hs) * gelu(h1)";
    else if (!(e1 <= GRAD_TOLERANCE))
        hint = "its w2 and w3 are right, w1 is not: d(h1) = d(hs) * h3 * gelu'(h1) is wrong; check the "
               "derivative of gelu";
    ck_assert_msg(wrong[0] == '\0',
                  "gradients differ from PyTorch's (more than %g of the tensor's largest) for:%s. In the last "
                  "layer, where the backward starts, w1 is off by %.2g, w2 by %.2g, w3 by %.2g: %s",
                  GRAD_TOLERANCE, wrong, e1, e2, e3, hint);
    free_model(&m);
    free_grads(&g);
}
END_TEST

/* ---------------------------------------------------------------------------
 * train.c against itself: finite differences
 * -------------------------------------------------------------------------*/

/* Central differences, (L(w + e) - L(w - e)) / 2e, against the backward, on
 * the 2 entries with the largest |gradient| and 2 random entries of w1 and
 * w3 (the tensors GeGLU's backward writes first), rms_ffn_weight (the gain
 * before them, which gets both paths) and wq (far upstream). As in
 * tests/test_train.c: e = 1e-2, large, because the float32 loss is noisy at
 * ~1e-6; tolerance |fd - g| <= 1e-3 |g| + 2e-4. A wrong derivative of gelu
 * is off by far more on the largest entries (|g| 0.04 to 0.23). Measured
 * with the reference solution: worst |fd - g| = 5.7e-5. This test needs no
 * golden gradient: it says whether the backward is the derivative of the
 * forward train.c computes. */
START_TEST(test_train_finite_differences) {
    Grads g = read_grads();
    Model m;
    load_golden_model(&m, &g);
    model_forward(&m, g.inputs, g.targets, g.B);
    model_backward(&m, g.B, 1.0f / (float)(g.B * g.T));
    const int tensors[] = {T_W1, T_W3, T_RMS_FFN, T_WQ};
    const float eps = 1e-2f;
    uint64_t rng = 2024;
    double worst = 0.0;
    for (size_t k = 0; k < sizeof tensors / sizeof tensors[0]; k++) {
        int i = tensors[k];
        size_t n = m.numel[i], picks[4] = {0, 0, 0, 0};
        const float *grad = m.grads.tensor[i];
        for (size_t j = 0; j < n; j++) {   /* the two largest |g| */
            if (fabsf(grad[j]) > fabsf(grad[picks[0]])) { picks[1] = picks[0]; picks[0] = j; }
            else if (j != picks[0] && fabsf(grad[j]) > fabsf(grad[picks[1]])) picks[1] = j;
        }
        picks[2] = random_u32(&rng) % n;
        picks[3] = random_u32(&rng) % n;
        for (int p = 0; p < 4; p++) {
            float *w = &m.params.tensor[i][picks[p]], saved = *w, analytic = grad[picks[p]];
            *w = saved + eps;
            double plus = model_forward(&m, g.inputs, g.targets, g.B);
            *w = saved - eps;
            double minus = model_forward(&m, g.inputs, g.targets, g.B);
            *w = saved;
            double fd = (plus - minus) / (2.0 * eps), err = fabs(fd - analytic);
            worst = fmax(worst, err);
            ck_assert_msg(err <= 1e-3 * fabs(analytic) + 2e-4,
                          "%s[%zu]: finite difference %.6g, backward %.6g: the backward is not the derivative "
                          "of train.c's own forward", TENSOR_NAMES[i], picks[p], fd, analytic);
        }
    }
    printf("finite differences: worst |fd - backward| = %.2g over 4 entries of w1, w3, rms_ffn_weight, wq\n", worst);
    free_model(&m);
    free_grads(&g);
}
END_TEST

/* ---------------------------------------------------------------------------
 * ./train: checkpoints keep the flag
 * -------------------------------------------------------------------------*/

/* A small training text: the first 20 KB of the TinyStories validation file. */
static void make_data(void) {
    mkdir(TMP_DIR, 0755);
    mkdir(WORK, 0755);
    size_t size;
    char *text = slurp("data/tinystories/valid.txt", &size);
    ck_assert_ptr_nonnull(text);
    write_file(DATA_TEXT, text, size < 20000 ? size : 20000);
    free(text);
}

static void expect_success(Proc *p, const char *what) {
    ck_assert_msg(p->exited && p->code == 0, "%s: exit %d, stderr: %s", what, p->code, p->err);
}

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* ./train --init geglu.lamp with extra arguments (NULL-terminated). */
static Proc run_train_from_model(const char *out, const char *const *extra) {
    const char *argv[40] = {program("train"), "--init", MODEL, "--data", DATA_TEXT, "--out", out, "--batch", "2",
                            "--warmup", "1", "--lr", "1e-3", "--threads", "1", "--eval-every", "0",
                            "--sample-every", "0"};
    int n = 0;
    while (argv[n]) n++;
    for (int i = 0; extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    return run_program(NULL, (char *const *)argv);
}

/* Train 2 steps from the GeGLU model: the model.lamp written must have
 * flags bit 2 (0x4: the golden model has its own classifier), and run.c on
 * it must compute the logits train.c computes, at every position (1e-5, as
 * tests/test_train.c's test_forward_matches_run_c; measured: 3.8e-6).
 * Then the same 2 steps as 1 + --resume + 1 must give the same model.lamp
 * and train.state, bit for bit: a training state that forgot the flag would
 * resume as a SwiGLU model. */
START_TEST(test_checkpoints_keep_gelu) {
    make_data();
    const char *two[] = {"--steps", "2", NULL};
    Proc a = run_train_from_model(WORK "/straight", two);
    expect_success(&a, "./train --init " MODEL " --steps 2");
    size_t size;
    unsigned char *file = (unsigned char *)slurp(WORK "/straight/model.lamp", &size);
    ck_assert_msg(file && size > 256, "no model.lamp written");
    uint32_t flags = read_u32(file + 56);
    free(file);
    ck_assert_msg(flags == 4u, "the model.lamp ./train wrote has flags 0x%x, not 0x4: save_lamp must set bit 2 "
                               "for a GeGLU model", flags);

    Transformer t;
    build_transformer(&t, WORK "/straight/model.lamp");
    malloc_run_state(&t);
    Model m;
    load_model_file(&m, WORK "/straight/model.lamp", 1, NULL);
    int T = m.config.seq_len, V = m.config.vocab_size, ids[64];
    ck_assert_int_le(T, 64);
    uint64_t rng = 5;
    for (int i = 0; i < T; i++) ids[i] = (int)(random_u32(&rng) % (uint32_t)V);
    model_forward(&m, ids, NULL, 1);
    double worst = 0.0;
    for (int pos = 0; pos < T; pos++) {
        const float *logits = forward(&t, ids[pos], pos);
        for (int i = 0; i < V; i++) {
            double d = fabs((double)logits[i] - m.acts.logits[(size_t)pos * V + i]);
            if (!(d <= worst)) worst = d;
        }
    }
    printf("checkpoint: train.c forward vs run.c forward, %d positions: max |logit difference| = %.2g\n", T, worst);
    ck_assert_msg(worst <= 1e-5, "on the checkpoint, run.c's and train.c's logits differ by %g", worst);
    free_model(&m);
    free_transformer(&t);

    const char *first[] = {"--steps", "2", "--stop-at", "1", NULL};
    Proc b = run_train_from_model(WORK "/resumed", first);
    expect_success(&b, "./train --init " MODEL " --steps 2 --stop-at 1");
    const char *resume[] = {program("train"), "--resume", WORK "/resumed/train.state", "--data", DATA_TEXT,
                            "--out", WORK "/resumed", "--threads", "1", "--eval-every", "0", "--sample-every", "0",
                            NULL};
    Proc c = run_program(NULL, (char *const *)resume);
    expect_success(&c, "./train --resume");
    ck_assert_msg(files_equal(WORK "/straight/model.lamp", WORK "/resumed/model.lamp"),
                  "2 steps straight and 1 + --resume + 1 wrote different model.lamp files: does the training "
                  "state (state_header) keep the GeGLU flag?");
    ck_assert_msg(files_equal(WORK "/straight/train.state", WORK "/resumed/train.state"),
                  "2 steps straight and 1 + --resume + 1 ended in different train.state files");
    printf("checkpoint: flags 0x%x; 2 steps = 1 + --resume + 1, bit for bit\n", flags);
    free_proc(&a);
    free_proc(&b);
    free_proc(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("exercise geglu");
    TCase *run = tcase_create("run.c");
    tcase_set_timeout(run, 60);
    tcase_add_test(run, test_run_c_logits);
    tcase_add_test(run, test_run_c_prefill_matches_token_by_token);
    tcase_add_test(run, test_swiglu_model_unchanged);
    suite_add_tcase(s, run);
    TCase *train = tcase_create("train.c");
    tcase_set_timeout(train, 120);
    tcase_add_test(train, test_train_forward_vs_pytorch);
    tcase_add_test(train, test_train_gradients_vs_pytorch);
    tcase_add_test(train, test_train_finite_differences);
    suite_add_tcase(s, train);
    TCase *prog = tcase_create("./train checkpoints");
    tcase_set_timeout(prog, 180);
    tcase_add_test(prog, test_checkpoints_keep_gelu);
    suite_add_tcase(s, prog);
    return run_suite(s);
}
