/* test_train.c — train.c against PyTorch, against itself, and against run.c.
 *
 * The goldens in tests/golden/train/ come from tests/golden/gen_train.py:
 * Hugging Face's LlamaForCausalLM, PyTorch autograd and torch.optim.AdamW on
 * one small model (grouped-query attention, separate classifier,
 * rope_theta = 50000, n_heads * head_dim != dim). The suite checks:
 *   - loss, logits and every parameter gradient of one batch vs autograd
 *   - 5 AdamW steps (accumulation, clipping, warmup + cosine) vs torch.optim.AdamW
 *   - finite differences on entries of every parameter tensor
 *   - overfitting one batch drives the loss near zero
 *   - the forward of a checkpoint ./train wrote equals run.c's, at every position
 *   - resuming is bit-for-bit the same as never stopping; 1 and 2 threads agree;
 *     a shard and the text it was made from train the same model
 *   - SIGTERM saves a usable checkpoint; bad inputs give one-line errors
 * Tolerances are stated next to each test, with the errors measured when
 * they were set. */
#define TRAIN_NO_MAIN
#include "train.c"
#include "tests/testutil.h"
#include "tests/goldens.h"

#include <signal.h>

#define GOLDEN_MODEL "tests/golden/train/tiny.lamp"
#define WORK TMP_DIR "/train"

/* ---------------------------------------------------------------------------
 * Against PyTorch
 * -------------------------------------------------------------------------*/

/* Tolerances: loss 1e-5 relative; logits 1e-4 absolute (they are of size ~5);
 * every gradient tensor max |g - g_torch| <= 1e-4 * max |g_torch|. PyTorch's
 * own float32 error against float64 is below 1.2e-6 of max |g| (gen_train.py
 * prints it). Measured when written: loss 1.2e-7, logits 3.8e-6, gradients
 * at most 1.9e-6 (see the printed table). */
START_TEST(test_gradients_vs_pytorch) {
    Grads g = read_grads("tests/golden/train/tiny.grads");
    Model m;
    load_grads_model(&m, GOLDEN_MODEL, &g);

    model_forward(&m, g.inputs, NULL, g.B);
    double logit_err = max_error(m.acts.logits, g.logits, (size_t)g.B * g.T * g.V);
    float loss = model_forward(&m, g.inputs, g.targets, g.B);
    double loss_err = fabs((double)loss - g.loss) / g.loss;
    model_backward(&m, g.B, 1.0f / (float)(g.B * g.T));
    printf("vs PyTorch: loss %.6f (rel error %.2g), max |logit error| %.2g\n", loss, loss_err, logit_err);
    ck_assert_msg(loss_err <= 1e-5, "loss %g vs %g", loss, g.loss);
    ck_assert_msg(logit_err <= 1e-4, "logits differ by %g", logit_err);
    const float *want = g.grads;
    for (int i = 0; i < N_TENSORS; i++) {
        if (!m.numel[i]) continue;
        double err = scaled_error(m.grads.tensor[i], want, m.numel[i]);
        printf("  grad %-17s %7zu values, max |error| / max |g| = %.2g\n", TENSOR_NAMES[i], m.numel[i], err);
        ck_assert_msg(err <= 1e-4, "gradient of %s: error %g of its scale", TENSOR_NAMES[i], err);
        want += m.numel[i];
    }
    free_model(&m);
    free_grads(&g);
}
END_TEST

/* 5 AdamW steps, 2 micro-batches each, clipping on in 3 of them. Tolerances:
 * loss and gradient norm 1e-5 relative, learning rate 1e-6 relative, final
 * weights |w - w_torch| <= 2e-5 (weights ~0.1 to 1, moved by up to 0.03;
 * PyTorch's own float32 run differs from its float64 run by 8.3e-6, which
 * gen_train.py prints).
 * One exception, and it is Adam's nature, not an error: a weight whose
 * gradient is at the level of float32 rounding at some step (nonzero but
 * below 1e-5 of its tensor's largest; both PyTorch and train.c carry errors
 * of ~1e-6 of the largest). Adam moves a weight by about lr * sign(g)
 * whatever |g| is, so the sign of rounding noise can move it by up to lr
 * either way. Such weights (about 100 of 94,000) only have to stay within
 * the largest move Adam allows, 2 * the sum of the learning rates. Exact
 * zeros (the embedding rows of tokens not in the batch) are zero in both and
 * compared strictly. Measured when written: loss 2.3e-7, norm 1.8e-7,
 * weights 1.1e-6 (-O3; 6.7e-6 at -O1 under make asan), rounding-level
 * weights 5.4e-6 (5e-5 at -O1). */
START_TEST(test_adamw_vs_pytorch) {
    TrainGolden g = read_train_golden("tests/golden/train/tiny.adamw");
    int steps = g.ints[0], accum = g.ints[1], B = g.ints[2], T = g.ints[3];
    Hyper h = {B, accum, steps, g.ints[4], g.floats[0], g.floats[1], g.floats[2], g.floats[3], g.floats[4],
               g.floats[5], g.floats[6], 0};
    const int32_t *windows = g.ints + 5;
    const float *losses = g.floats + 7, *lrs = losses + steps, *norms = lrs + steps, *final = norms + steps;
    Model m;
    load_model_file(&m, GOLDEN_MODEL, B, NULL);
    ck_assert_msg(g.n_floats == 7 + 3 * (size_t)steps + m.n_params, "golden size");
    int *inputs = malloc(sizeof(int) * B * T), *targets = malloc(sizeof(int) * B * T);
    char *noisy = calloc(m.n_params, 1);   /* 1: the weight's gradient was at rounding level at some step */
    double worst_loss = 0, worst_lr = 0, worst_norm = 0, lr_sum = 0;
    for (int step = 0; step < steps; step++) {
        memset(m.grads.token_embedding, 0, m.n_params * sizeof(float));
        double loss = 0.0;
        for (int micro = 0; micro < accum; micro++) {
            split_windows(windows + ((size_t)step * accum + micro) * B * (T + 1), B, T, inputs, targets);
            loss += model_forward(&m, inputs, targets, B);
            model_backward(&m, B, 1.0f / ((float)B * T * accum));
        }
        loss /= accum;
        size_t at = 0;
        for (int i = 0; i < N_TENSORS; i++) {
            float scale = 0.0f;
            for (size_t j = 0; j < m.numel[i]; j++) scale = fmaxf(scale, fabsf(m.grads.tensor[i][j]));
            for (size_t j = 0; j < m.numel[i]; j++, at++)
                if (m.grads.tensor[i][j] != 0.0f && fabsf(m.grads.tensor[i][j]) < 1e-5f * scale) noisy[at] = 1;
        }
        double norm;
        float lr = optimizer_step(&m, &h, step, &norm);
        lr_sum += lr;
        double e_loss = fabs(loss - losses[step]) / losses[step], e_lr = fabs((double)lr - lrs[step]) / lrs[step];
        double e_norm = fabs(norm - norms[step]) / norms[step];
        printf("AdamW step %d: loss %.6f (rel %.2g), lr %.6f (rel %.2g), grad norm %.4f (rel %.2g)%s\n", step, loss,
               e_loss, lr, e_lr, norm, e_norm, norm > h.grad_clip ? ", clipped" : "");
        worst_loss = fmax(worst_loss, e_loss);
        worst_lr = fmax(worst_lr, e_lr);
        worst_norm = fmax(worst_norm, e_norm);
    }
    ck_assert_msg(worst_loss <= 1e-5, "loss error %g", worst_loss);
    ck_assert_msg(worst_lr <= 1e-6, "learning-rate error %g", worst_lr);
    ck_assert_msg(worst_norm <= 1e-5, "gradient-norm error %g", worst_norm);
    double worst_w = 0.0, worst_noisy = 0.0;
    size_t at = 0, n_noisy = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        for (size_t j = 0; j < m.numel[i]; j++, at++) {
            double d = fabs((double)m.params.tensor[i][j] - final[j]);
            if (noisy[at]) {
                n_noisy++;
                worst_noisy = fmax(worst_noisy, d);
                ck_assert_msg(d <= 2.0 * lr_sum, "%s[%zu] moved %g", TENSOR_NAMES[i], j, d);
            } else {
                if (!(d <= worst_w)) worst_w = d;
                ck_assert_msg(d <= 2e-5, "%s[%zu] = %.8g, torch %.8g", TENSOR_NAMES[i], j, m.params.tensor[i][j],
                              final[j]);
            }
        }
        final += m.numel[i];
    }
    printf("AdamW final weights: max |w - w_torch| = %.2g; %zu weights with rounding-level gradients, max %.2g\n",
           worst_w, n_noisy, worst_noisy);
    free(noisy);
    free(inputs);
    free(targets);
    free_model(&m);
    free(g.raw);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Against itself
 * -------------------------------------------------------------------------*/

/* Central differences, (L(w + e) - L(w - e)) / 2e, on the 2 entries with the
 * largest |gradient| and 2 random entries of every tensor. The loss is
 * float32: its rounding noise (~1e-6 on a loss of 8) divided by 2e is the
 * floor of the method, so e is large, 1e-2 (the weights are ~0.1 to 1; the
 * truncation error, of order e² times the third derivative, stays below the
 * noise). Tolerance |fd - g| <= 1e-3 |g| + 2e-4; a wrong derivative (a
 * missing factor, a wrong sign, a swapped index) is off by far more on the
 * largest entries, whose |g| is 0.1 to 0.4. Measured when written: worst
 * |fd - g| = 5.5e-5 over 40 random entries per tensor (e = 1e-3 gave 6.5e-4:
 * the noise). */
START_TEST(test_finite_differences) {
    Grads g = read_grads("tests/golden/train/tiny.grads");
    Model m;
    load_model_file(&m, GOLDEN_MODEL, g.B, NULL);
    model_forward(&m, g.inputs, g.targets, g.B);
    model_backward(&m, g.B, 1.0f / (float)(g.B * g.T));
    uint64_t rng = 12345;
    double worst = 0.0;
    for (int i = 0; i < N_TENSORS; i++)
        if (m.numel[i]) worst = fmax(worst, check_finite_differences(&m, i, g.inputs, g.targets, g.B, &rng, ""));
    printf("finite differences: worst |fd - backward| = %.2g over 4 entries of each tensor\n", worst);
    free_model(&m);
    free_grads(&g);
}
END_TEST

/* A small model, trained on one fixed batch, must memorize it: the loss
 * goes from ln(300) = 5.7 to below 0.05. */
START_TEST(test_overfit_one_batch) {
    Tokenizer tok;
    tokenizer_load_file(&tok, GOLDEN_MODEL);
    Config c = {.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                .vocab_size = tok.vocab_size, .seq_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                .bos_id = 1, .eos_id = 2, .shared_classifier = 0};
    int B = 2, T = c.seq_len, steps = 150;
    Model m;
    build_model(&m, &c, B);
    init_weights(&m, 42);
    Hyper h = {B, 1, steps, 10, 1e-2f, 1e-3f, 0.0f, 0.9f, 0.95f, 1e-8f, 1.0f, 42};
    int inputs[32], targets[32];
    uint64_t rng = 7;
    for (int i = 0; i < B * T; i++) inputs[i] = (int)(random_u32(&rng) % (uint32_t)c.vocab_size);
    for (int i = 0; i < B * T; i++) targets[i] = (int)(random_u32(&rng) % (uint32_t)c.vocab_size);
    float first = 0.0f, loss = 0.0f;
    for (int step = 0; step < steps; step++) {
        memset(m.grads.token_embedding, 0, m.n_params * sizeof(float));
        loss = model_forward(&m, inputs, targets, B);
        if (step == 0) first = loss;
        model_backward(&m, B, 1.0f / (float)(B * T));
        optimizer_step(&m, &h, step, NULL);
    }
    loss = model_forward(&m, inputs, targets, B);
    printf("overfit one batch: loss %.4f -> %.4f in %d steps\n", first, loss, steps);
    ck_assert_msg(first > 5.0f && loss < 0.05f, "loss %g -> %g", first, loss);
    free_model(&m);
    tokenizer_free(&tok);
}
END_TEST

/* gemm against a plain double-precision triple loop, for sizes that are not
 * multiples of the tiles or blocks (several K blocks, N past one BLOCK_N
 * block), every stride pattern the layers use, C = and C +=, and the causal
 * shapes attention uses (with A zero where the shape says it is). Tolerance
 * 1e-5 * (1 + sqrt(K)) absolute, the values being uniform in [-0.5, 0.5]. */
static void check_gemm(int M, int N, int K, int layout, Shape shape, int accumulate, int threads, uint64_t *rng) {
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    MatView A = layout & 1 ? (MatView){a, 1, (size_t)M} : (MatView){a, (size_t)K, 1};
    MatView Bv = layout & 2 ? (MatView){b, 1, (size_t)K} : (MatView){b, (size_t)N, 1};
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            int zero = (shape == K_UPTO_ROW && k > i) || (shape == K_FROM_ROW && k < i);
            a[i * A.rs + k * A.cs] = zero ? 0.0f : random_f32(rng) - 0.5f;
        }
    for (int i = 0; i < K * N; i++) b[i] = random_f32(rng) - 0.5f;
    for (int i = 0; i < M * N; i++) c[i] = accumulate ? 1.0f : 1e30f;   /* gemm must overwrite the 1e30 */
    PackBuffers buf = {malloc(sizeof(float) * PACK_A_FLOATS * threads), malloc(sizeof(float) * pack_b_floats(N))};
    gemm_core(M, N, K, A, Bv, c, (size_t)N, shape, accumulate, threads, buf);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            if (shape == LOWER && j > i) continue;   /* not computed */
            double want = accumulate ? 1.0 : 0.0;
            for (int k = 0; k < K; k++) want += (double)A.p[i * A.rs + k * A.cs] * Bv.p[k * Bv.rs + j * Bv.cs];
            ck_assert_msg(fabs(c[i * N + j] - want) <= 1e-5 * (1.0 + sqrt((double)K)),
                          "gemm %dx%dx%d layout %d shape %d accumulate %d threads %d: C[%d][%d] = %g, want %g", M, N,
                          K, layout, shape, accumulate, threads, i, j, c[i * N + j], want);
        }
    free(buf.a);
    free(buf.b);
    free(a);
    free(b);
    free(c);
}

START_TEST(test_gemm_edges) {
    int sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {13, 70, 300}, {6, 32, 256}, {25, 4100, 3}, {50, 9, 700}};
    uint64_t rng = 99;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int layout = 0; layout < 4; layout++)   /* A row-major or transposed, B too */
            for (int accumulate = 0; accumulate < 2; accumulate++)
                check_gemm(sizes[s][0], sizes[s][1], sizes[s][2], layout, FULL, accumulate, 2, &rng);
    int square[] = {1, 5, 16, 37, 64, 300};   /* attention's T x T shapes */
    for (size_t s = 0; s < sizeof square / sizeof square[0]; s++) {
        int T = square[s];
        check_gemm(T, T, 12, 2, LOWER, 0, 1, &rng);    /* S = Q Kᵀ */
        check_gemm(T, 12, T, 0, K_UPTO_ROW, 0, 1, &rng); /* O = P V, dQ = dS K */
        check_gemm(T, 12, T, 1, K_FROM_ROW, 1, 1, &rng); /* dV += Pᵀ dO, dK += dSᵀ Q */
        check_gemm(T, 12, T, 1, K_FROM_ROW, 0, 2, &rng);
    }
    /* and the parallel gemm() itself */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
    gemm(2, 2, 3, (MatView){a, 3, 1}, (MatView){b, 2, 1}, c, 2, 0);
    ck_assert(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
}
END_TEST

/* attention_backward (matrix products on gemm) against its plain-loop
 * reference, on random q, k, v and dO with grouped-query heads and a T
 * that is no multiple of the tiles; P comes from attention_forward. */
START_TEST(test_attention_backward_matches_reference) {
    AttShape shapes[] = {{2, 37, 4, 2, 12}, {1, 16, 3, 1, 8}, {3, 5, 2, 2, 6}};
    uint64_t rng = 7;
    for (size_t n = 0; n < sizeof shapes / sizeof shapes[0]; n++) {
        AttShape sh = shapes[n];
        size_t rows = (size_t)sh.B * sh.T, q_dim = (size_t)sh.n_heads * sh.head_dim;
        size_t kv_dim = (size_t)sh.n_kv_heads * sh.head_dim;
        size_t sizes[] = {rows * q_dim, rows * kv_dim, rows * kv_dim, rows * q_dim};   /* q, k, v, dO */
        float *in[4], *grad[2][3];
        for (int i = 0; i < 4; i++) {
            in[i] = malloc(sizeof(float) * sizes[i]);
            for (size_t j = 0; j < sizes[i]; j++) in[i][j] = 2.0f * random_f32(&rng) - 1.0f;
        }
        for (int w = 0; w < 2; w++)
            for (int i = 0; i < 3; i++) grad[w][i] = malloc(sizeof(float) * sizes[i]);
        float *out = malloc(sizeof(float) * rows * q_dim);
        float *att = malloc(sizeof(float) * sh.B * sh.n_heads * sh.T * sh.T);
        attention_forward(out, att, in[0], in[1], in[2], sh);
        attention_backward(grad[0][0], grad[0][1], grad[0][2], in[3], att, in[0], in[1], in[2], sh);
        attention_backward_reference(grad[1][0], grad[1][1], grad[1][2], in[3], att, in[0], in[1], in[2], sh);
        const char *names[3] = {"dQ", "dK", "dV"};
        for (int i = 0; i < 3; i++) {
            double err = scaled_error(grad[0][i], grad[1][i], sizes[i]);
            printf("attention backward B %d T %d heads %d/%d head_dim %d: %s gemm vs plain loops, "
                   "max |error| / max |g| = %.2g\n", sh.B, sh.T, sh.n_heads, sh.n_kv_heads, sh.head_dim, names[i], err);
            ck_assert_msg(err <= 1e-5, "%s: gemm and plain loops differ by %g of the largest gradient", names[i], err);
        }
        for (int i = 0; i < 4; i++) free(in[i]);
        for (int w = 0; w < 2; w++)
            for (int i = 0; i < 3; i++) free(grad[w][i]);
        free(out);
        free(att);
    }
    free_scratch();
}
END_TEST

/* The schedule: linear warmup reaching lr at the last warmup step, then a
 * cosine that is monotone and reaches min_lr exactly at the last step. */
START_TEST(test_lr_schedule) {
    Hyper h = {1, 1, 110, 10, 1e-3f, 1e-4f, 0, 0.9f, 0.95f, 1e-8f, 1, 1};
    ck_assert(fabsf(learning_rate(&h, 0) - 1e-4f) < 1e-10f);
    ck_assert(fabsf(learning_rate(&h, 4) - 5e-4f) < 1e-10f);
    ck_assert(learning_rate(&h, 9) == 1e-3f);
    ck_assert(learning_rate(&h, 109) == 1e-4f);
    ck_assert(fabsf(learning_rate(&h, 59) - 5.5e-4f) < 1e-9f);   /* half way: the mean */
    for (int s = 10; s < 109; s++) ck_assert(learning_rate(&h, s + 1) <= learning_rate(&h, s));
}
END_TEST

/* ---------------------------------------------------------------------------
 * The program: ./train
 * -------------------------------------------------------------------------*/

#define DATA_TEXT WORK "/stories.txt"

/* Run ./train with the given arguments after the common ones: a tiny model
 * (GQA, untied, rope_theta 50000) on the tiny tokenizer. */
static Proc run_train(const char *out, const char *const *extra) {
    const char *argv[] = {program("train"), "--tokenizer", GOLDEN_MODEL, "--data", DATA_TEXT, "--out", out,
                          "--dim", "32", "--n-layers", "2", "--n-heads", "4", "--n-kv-heads", "2",
                          "--seq-len", "16", "--untied", "--rope-theta", "50000", "--batch", "2",
                          "--accum", "2", "--warmup", "2", "--eval-every", "2", "--eval-iters", "2",
                          "--sample-every", "0", NULL};
    return run_program_plus(argv, extra);
}

/* N steps in one run == N/2 steps, stop, --resume, N/2 steps: the model and
 * the whole training state (weights, moments, step, generator) bit for bit,
 * and the same losses in the log. */
START_TEST(test_resume_bit_identical) {
    make_training_text(WORK, DATA_TEXT);
    const char *straight[] = {"--steps", "8", "--threads", "1", NULL};
    Proc a = run_train(WORK "/straight", straight);
    expect_success(&a, "8 steps");
    const char *first[] = {"--steps", "8", "--stop-at", "4", "--threads", "1", NULL};
    Proc b = run_train(WORK "/resumed", first);
    expect_success(&b, "4 of 8 steps");
    const char *resume[] = {program("train"), "--resume", WORK "/resumed/train.state", "--data", DATA_TEXT,
                            "--out", WORK "/resumed", "--threads", "1", "--eval-every", "2", "--eval-iters", "2",
                            "--sample-every", "0", NULL};
    Proc c = run_program(NULL, (char *const *)resume);
    expect_success(&c, "resume");
    ck_assert_msg(strstr(c.err, "resuming at step 4 of 8") != NULL, "%s", c.err);
    ck_assert_msg(files_equal(WORK "/straight/model.lamp", WORK "/resumed/model.lamp"), "model.lamp differs");
    ck_assert_msg(files_equal(WORK "/straight/train.state", WORK "/resumed/train.state"), "train.state differs");
    /* the logs agree on step, train loss and val loss (tokens/s differ) */
    char *la = slurp(WORK "/straight/log.csv", NULL), *lb = slurp(WORK "/resumed/log.csv", NULL);
    int rows = 0;
    for (char *p = la, *q = lb; p && q && *p; rows++) {
        char *pe = strchr(p, '\n'), *qe = strchr(q, '\n');
        ck_assert(pe && qe);
        char *pc = p, *qc = q;
        for (int field = 0; field < 3; field++) { pc = strchr(pc, ',') + 1; qc = strchr(qc, ',') + 1; }
        ck_assert_msg(pc - p == qc - q && memcmp(p, q, (size_t)(pc - p)) == 0, "log row %d differs", rows);
        p = pe + 1;
        q = qe + 1;
    }
    ck_assert_int_eq(rows, 9);   /* header + 8 steps */
    free(la);
    free(lb);
    free_proc(&a);
    free_proc(&b);
    free_proc(&c);
}
END_TEST

/* The result does not depend on the number of threads: each sum is done by
 * one thread in a fixed order. The model is large enough (1024 rows of 64)
 * that the matmuls, attention and the row loops really run in parallel
 * (see PARALLEL_MIN). */
START_TEST(test_threads_bit_identical) {
#ifdef _OPENMP
    make_training_text(WORK, DATA_TEXT);
    Proc p[2];
    for (int i = 0; i < 2; i++) {
        const char *out = i ? WORK "/threads2" : WORK "/threads1";
        const char *argv[] = {program("train"), "--tokenizer", GOLDEN_MODEL, "--data", DATA_TEXT, "--out", out,
                              "--dim", "64", "--n-layers", "2", "--n-heads", "4", "--n-kv-heads", "2",
                              "--seq-len", "64", "--batch", "16", "--steps", "2", "--warmup", "1",
                              "--eval-every", "0", "--sample-every", "0", "--threads", i ? "2" : "1", NULL};
        p[i] = run_program(NULL, (char *const *)argv);
        expect_success(&p[i], out);
    }
    ck_assert_msg(files_equal(WORK "/threads1/model.lamp", WORK "/threads2/model.lamp"),
                  "1 and 2 threads trained different weights");
    ck_assert_msg(files_equal(WORK "/threads1/train.state", WORK "/threads2/train.state"),
                  "1 and 2 threads ended in different states");
    free_proc(&p[0]);
    free_proc(&p[1]);
#endif
}
END_TEST

/* --tokenize writes the documented shard, and training on it is training on
 * the text. */
START_TEST(test_shard_equals_text) {
    make_training_text(WORK, DATA_TEXT);
    const char *tok_argv[] = {program("train"), "--tokenize", DATA_TEXT, WORK "/stories.bin", "--tokenizer",
                              GOLDEN_MODEL, NULL};
    Proc t = run_program(NULL, (char *const *)tok_argv);
    expect_success(&t, "--tokenize");
    size_t size;
    unsigned char *shard = (unsigned char *)slurp(WORK "/stories.bin", &size);
    ck_assert(size > 64 && memcmp(shard, "LTOK", 4) == 0);
    ck_assert_int_eq(read_u32(shard + 4), 1);      /* version */
    ck_assert_int_eq(read_u32(shard + 8), 2);      /* 16-bit ids */
    ck_assert_int_eq(read_u32(shard + 12), 300);   /* vocab_size */
    ck_assert(read_u64(shard + 16) == (size - 64) / 2 && (size - 64) % 2 == 0);
    ck_assert_int_eq(shard[64] | shard[65] << 8, 1);   /* the first document starts with BOS */
    free(shard);
    const char *text[] = {"--steps", "2", "--threads", "1", NULL};
    Proc a = run_train(WORK "/from_text", text);
    expect_success(&a, "text");
    const char *bin[] = {program("train"), "--tokenizer", GOLDEN_MODEL, "--data", WORK "/stories.bin", "--out",
                         WORK "/from_shard", "--dim", "32", "--n-layers", "2", "--n-heads", "4",
                         "--n-kv-heads", "2", "--seq-len", "16", "--untied", "--rope-theta", "50000", "--batch",
                         "2", "--accum", "2", "--warmup", "2", "--steps", "2", "--threads", "1", "--eval-every",
                         "2", "--eval-iters", "2", "--sample-every", "0", NULL};
    Proc b = run_program(NULL, (char *const *)bin);
    expect_success(&b, "shard");
    ck_assert_msg(files_equal(WORK "/from_text/model.lamp", WORK "/from_shard/model.lamp"), "shard != text");
    free_proc(&t);
    free_proc(&a);
    free_proc(&b);
}
END_TEST

/* The checkpoint ./train writes is a model run.c runs, and run.c computes
 * the same logits as train.c's batched forward at every position. Here the
 * run starts from the golden model (--init: GQA, untied, head_dim * n_heads
 * != dim) and trains 3 steps. Tolerance 1e-5 absolute (logits ~5; the two
 * sum in different orders); measured when written: 1.9e-6. */
START_TEST(test_forward_matches_run_c) {
    make_training_text(WORK, DATA_TEXT);
    const char *argv[] = {program("train"), "--init", GOLDEN_MODEL, "--data", DATA_TEXT, "--out", WORK "/init",
                          "--batch", "2", "--steps", "3", "--warmup", "1", "--lr", "1e-3", "--threads", "1",
                          "--eval-every", "0", "--sample-every", "2", "--sample-tokens", "8", NULL};
    Proc p = run_program(NULL, (char *const *)argv);
    expect_success(&p, "--init");
    ck_assert_msg(strstr(p.out, "--- sample at step 2 ---") != NULL, "no sample printed: %s", p.out);
    Transformer t;
    build_transformer(&t, WORK "/init/model.lamp");
    malloc_run_state(&t);
    Model m;
    load_model_file(&m, WORK "/init/model.lamp", 1, NULL);
    ck_assert_int_eq(m.config.n_kv_heads, 2);
    ck_assert_int_eq(m.config.shared_classifier, 0);
    double worst = run_c_vs_train_c(&t, &m);
    printf("train.c forward vs run.c forward, %d positions: max |logit difference| = %.2g\n", m.config.seq_len,
           worst);
    ck_assert_msg(worst <= 1e-5, "logits differ by %g", worst);
    free_model(&m);
    free_transformer(&t);
    free_proc(&p);
}
END_TEST

/* SIGTERM in the middle of a long run: the step finishes, the checkpoint
 * and the state are saved, the exit status says which signal it was, and
 * the state is at the last logged step. */
START_TEST(test_sigterm_saves_checkpoint) {
    make_training_text(WORK, DATA_TEXT);
    const char *argv[] = {program("train"), "--tokenizer", GOLDEN_MODEL, "--data", DATA_TEXT, "--out",
                          WORK "/signal", "--dim", "32", "--n-layers", "1", "--n-heads", "2", "--seq-len", "16",
                          "--batch", "2", "--steps", "1000000", "--threads", "1", "--eval-every", "0",
                          "--sample-every", "0", "--ckpt-every", "0", NULL};
    mkdir(WORK "/signal", 0755);
    unlink(WORK "/signal/log.csv");
    unlink(WORK "/signal/train.state");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    /* wait until a few steps are logged (at most ~60 s, for slow sanitizer builds) */
    int rows = 0;
    for (int tries = 0; tries < 6000 && rows < 3; tries++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        char *log = slurp(WORK "/signal/log.csv", NULL);
        rows = 0;
        for (char *p = log; p && (p = strchr(p, '\n')); p++) rows++;
        free(log);
    }
    ck_assert_msg(rows >= 3, "the run logged no steps");
    kill(pid, SIGTERM);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "status %d", status);
    Model m;
    Hyper h;
    Progress pr;
    DataId id;
    Tokenizer tok;
    load_state(WORK "/signal/train.state", &m, &h, &pr, &id, &tok);
    char *log = slurp(WORK "/signal/log.csv", NULL);
    rows = 0;
    for (char *p = log; p && (p = strchr(p, '\n')); p++) rows++;
    ck_assert_msg(pr.step == rows - 1, "state at step %d, log has %d steps", pr.step, rows - 1);
    Transformer t;
    build_transformer(&t, WORK "/signal/model.lamp");   /* whole and readable by run.c */
    printf("SIGTERM: stopped and saved after step %d\n", pr.step);
    free_transformer(&t);
    free(log);
    free_model(&m);
    tokenizer_free(&tok);
}
END_TEST

/* Every --help line documents an option with its default in brackets. */
START_TEST(test_help) {
    const char *argv[] = {program("train"), "-h", NULL};
    Proc p = run_program(NULL, (char *const *)argv);
    ck_assert(p.exited && p.code == 0);
    const char *names[] = {"--dim", "--n-layers", "--n-heads", "--n-kv-heads", "--head-dim", "--hidden-dim",
                           "--seq-len", "--rope-theta", "--norm-eps", "--untied", "--data", "--val",
                           "--val-fraction", "--tokenizer", "--docs", "--init", "--batch", "--accum", "--steps",
                           "--lr", "--min-lr", "--warmup", "--weight-decay", "--beta1", "--beta2", "--adam-eps",
                           "--clip", "--seed", "--eval-every", "--eval-iters", "--sample-every",
                           "--sample-tokens", "--ckpt-every", "--out", "--resume", "--stop-at", "--threads",
                           "--tokenize"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char option[64];
        snprintf(option, sizeof option, "\n  %s ", names[i]);
        char *line = strstr(p.out, option);
        ck_assert_msg(line != NULL, "-h does not mention %s", names[i]);
        char *end = strchr(line + 1, '\n');
        ck_assert_msg(strcmp(names[i], "--tokenize") == 0 || (end && end[-1] == ']'),
                      "%s has no [default]", names[i]);
    }
    free_proc(&p);
}
END_TEST

/* Each bad input: exit status 1 and exactly one line on stderr, "lamp: ..."
 * naming the problem. */
typedef struct {
    const char *expect;          /* a piece of the message */
    const char *argv[40];
} BadCase;

START_TEST(test_bad_inputs) {
    make_training_text(WORK, DATA_TEXT);
    write_file(WORK "/empty.txt", "", 0);
    write_file(WORK "/short.txt", "Once upon a time.\n", 18);
    write_file(WORK "/blank.txt", "\n \n\t\n", 5);
    /* shards: one with an id past the vocabulary, one truncated, one for another vocabulary */
    unsigned char shard[64 + 2 * 40] = {'L', 'T', 'O', 'K'};
    put_u32(shard + 4, 1);
    put_u32(shard + 8, 2);
    put_u32(shard + 12, 300);
    put_u64(shard + 16, 40);
    for (int i = 0; i < 40; i++) shard[64 + 2 * i] = (unsigned char)(i + 3);
    shard[64 + 2 * 17] = 0x2c;   /* id 300 */
    shard[64 + 2 * 17 + 1] = 0x01;
    write_file(WORK "/badid.bin", shard, sizeof shard);
    write_file(WORK "/truncated.bin", shard, sizeof shard - 1);
    put_u32(shard + 12, 512);
    write_file(WORK "/othervocab.bin", shard, sizeof shard);
    write_file(WORK "/notastate", "LAMP and some bytes, but not a training state at all.........", 61);
    write_file(WORK "/a-file", "x", 1);
    /* a real state to resume, and a truncated copy */
    const char *small[] = {"--steps", "2", "--threads", "1", NULL};
    Proc ok = run_train(WORK "/bad", small);
    expect_success(&ok, "setup");
    free_proc(&ok);
    size_t state_size;
    char *state = slurp(WORK "/bad/train.state", &state_size);
    write_file(WORK "/truncated.state", state, state_size - 4);
    free(state);

    const char *T = program("train"), *TOK = GOLDEN_MODEL, *OUT = WORK "/bad-out";
    BadCase cases[] = {
        {"is empty", {T, "--tokenizer", TOK, "--data", WORK "/empty.txt", "--out", OUT}},
        {"no text", {T, "--tokenizer", TOK, "--data", WORK "/blank.txt", "--out", OUT}},
        {"fewer than one window", {T, "--tokenizer", TOK, "--data", WORK "/short.txt", "--out", OUT}},
        {"not below the vocabulary size 300", {T, "--tokenizer", TOK, "--data", WORK "/badid.bin", "--seq-len", "8"}},
        {"truncated or corrupt", {T, "--tokenizer", TOK, "--data", WORK "/truncated.bin"}},
        {"made for a vocabulary of 512", {T, "--tokenizer", TOK, "--data", WORK "/othervocab.bin"}},
        {"cannot open", {T, "--tokenizer", TOK, "--data", WORK "/missing.txt"}},
        {"does not divide",
         {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--n-heads", "6", "--n-kv-heads", "4", "--dim", "48"}},
        {"n_kv_heads = 8 is out of range",
         {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--n-heads", "4", "--n-kv-heads", "8", "--dim", "32"}},
        {"odd", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--dim", "36", "--n-heads", "4"}},
        {"not a multiple of n-heads", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--dim", "30", "--n-heads", "4"}},
        {"cannot create the output directory",
         {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--seq-len", "16", "--dim", "16", "--n-heads", "2", "--out",
          WORK "/a-file/sub"}},
        {"is not a directory",
         {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--seq-len", "16", "--dim", "16", "--n-heads", "2", "--out",
          WORK "/a-file"}},
        {"unknown option '--learning-rate'", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--learning-rate", "1"}},
        {"needs a value", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--lr"}},
        {"invalid value '-1' for --lr", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--lr", "-1"}},
        {"invalid value '2.5' for --batch", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--batch", "2.5"}},
        {"invalid value 'abc' for --steps", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--steps", "abc"}},
        {"invalid value 'x' for --seed", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--seed", "x"}},
        {"invalid value 'words' for --docs", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--docs", "words"}},
        {"is given twice", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--lr", "1", "--lr", "2"}},
        {"is above --lr", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--lr", "1e-4", "--min-lr", "1e-3"}},
        {"no training data", {T, "--tokenizer", TOK}},
        {"no tokenizer", {T, "--data", DATA_TEXT}},
        {"validation tokens", {T, "--tokenizer", TOK, "--data", DATA_TEXT, "--val-fraction", "0.001"}},
        {"cannot be given with --init", {T, "--init", TOK, "--data", DATA_TEXT, "--dim", "64"}},
        {"needs --tokenizer", {T, "--tokenize", DATA_TEXT, WORK "/x.bin"}},
        {"needs two values", {T, "--tokenize", DATA_TEXT}},
        {"cannot be changed when resuming", {T, "--resume", WORK "/bad/train.state", "--data", DATA_TEXT, "--lr", "1"}},
        {"not a lamp training state", {T, "--resume", WORK "/notastate", "--data", DATA_TEXT}},
        {"truncated or corrupt", {T, "--resume", WORK "/truncated.state", "--data", DATA_TEXT}},
        {"is not the training data", {T, "--resume", WORK "/bad/train.state", "--data", "data/tinystories/valid.txt"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Proc p = run_program(NULL, (char *const *)cases[i].argv);
        int lines = 0;
        for (size_t j = 0; j < p.err_len; j++) lines += p.err[j] == '\n';
        ck_assert_msg(p.exited && p.code == 1, "case '%s': exit %d (stderr: %s)", cases[i].expect, p.code, p.err);
        ck_assert_msg(lines == 1 && strncmp(p.err, "lamp: ", 6) == 0 && strstr(p.err, cases[i].expect),
                      "case '%s': stderr was: %s", cases[i].expect, p.err);
        free_proc(&p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *pytorch = tcase_create("vs PyTorch");
    tcase_set_timeout(pytorch, 120);
    tcase_add_test(pytorch, test_gradients_vs_pytorch);
    tcase_add_test(pytorch, test_adamw_vs_pytorch);
    suite_add_tcase(s, pytorch);
    TCase *self = tcase_create("self-consistency");
    tcase_set_timeout(self, 120);
    tcase_add_test(self, test_finite_differences);
    tcase_add_test(self, test_overfit_one_batch);
    tcase_add_test(self, test_gemm_edges);
    tcase_add_test(self, test_attention_backward_matches_reference);
    tcase_add_test(self, test_lr_schedule);
    suite_add_tcase(s, self);
    TCase *prog = tcase_create("the train program");
    tcase_set_timeout(prog, 180);
    tcase_add_test(prog, test_resume_bit_identical);
    tcase_add_test(prog, test_threads_bit_identical);
    tcase_add_test(prog, test_shard_equals_text);
    tcase_add_test(prog, test_forward_matches_run_c);
    tcase_add_test(prog, test_sigterm_saves_checkpoint);
    tcase_add_test(prog, test_help);
    tcase_add_test(prog, test_bad_inputs);
    suite_add_tcase(s, prog);
    return run_suite(s);
}
