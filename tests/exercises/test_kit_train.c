/* test_kit_train.c — the checks of the re-implement exercises in train.c
 * (docs/exercises.md): crossentropy, rmsnorm-backward, attention-backward,
 * adamw. One Check test case per exercise, named as the exercise; `make
 * grade` scores each check (exercises/kit.txt).
 *
 * Each function is checked alone against PyTorch autograd or
 * torch.optim.AdamW on small inputs (tests/golden/exercises/kit/units.txt,
 * from tests/golden/gen_exercise_kit.py), then in the whole model: every
 * parameter gradient of one batch against tests/golden/train/tiny.grads
 * (gen_train.py: transformers' LlamaForCausalLM and autograd). */
#define TRAIN_NO_MAIN
#include "train.c"
#include "tests/testutil.h"
#include "tests/goldens.h"
#include "tests/exercises/kit.h"

#define RTOL 1e-5
#define ATOL 1e-6

static char got_buf[64];
#define GOT(x) kit_got((float)(x), got_buf, sizeof got_buf)

/* ---- the whole model's gradients ------------------------------------------
 * The backward runs from the loss down: the classifier, the final RMSNorm,
 * then the blocks from the last to the first, each the feed-forward then
 * the attention. The first tensor in that order whose gradient is off is
 * where to look; each tensor's gradient must be within 1e-4 of its largest
 * value (test_train.c's tolerance). */
static void kit_training_check(const char *exercise_hint) {
    Grads g = read_grads("tests/golden/train/tiny.grads");
    Model m;
    load_grads_model(&m, "tests/golden/train/tiny.lamp", &g);
    float loss = model_forward(&m, g.inputs, g.targets, g.B);
    if (!(fabs((double)loss - g.loss) <= 1e-5 * g.loss))
        kit_fail("the mean loss of the batch is %s, PyTorch's %.7g: the forward is wrong before any gradient "
                 "is computed; crossentropy_forward() computes the loss (exercise crossentropy: in a handout "
                 "with it, do it first). %s", GOT(loss), (double)g.loss, exercise_hint);
    model_backward(&m, g.B, 1.0f / (float)(g.B * g.T));
    const int order[N_TENSORS] = {T_WCLS, T_RMS_FINAL, T_W2, T_W1, T_W3, T_RMS_FFN, T_WO, T_WQ, T_WK, T_WV,
                                  T_RMS_ATT, T_EMBEDDING};
    const Config *c = &m.config;
    /* layers from the last down: the backward's order */
    for (int l = c->n_layers - 1; l >= -1; l--)
        for (int k = 0; k < N_TENSORS; k++) {
            int i = order[k];
            if (!m.numel[i]) continue;
            /* the classifier and the final norm come first (with the last
             * layer), the embedding last (as "layer -1") */
            int whole = i == T_EMBEDDING || i == T_WCLS || i == T_RMS_FINAL;
            if (i == T_EMBEDDING ? l != -1 : whole ? l != c->n_layers - 1 : l < 0) continue;
            size_t offset = 0;
            for (int j = 0; j < i; j++) offset += m.numel[j];
            const float *want = g.grads + offset, *got = m.grads.tensor[i];
            size_t n = m.numel[i], lo = 0, hi = n;
            if (!whole) { lo = n / c->n_layers * l; hi = lo + n / c->n_layers; }
            double scale = 0;
            for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(want[j]));
            for (size_t j = lo; j < hi; j++)
                if (!kit_close(got[j], want[j], 1e-4 * scale, 0)) {
                    char where[64] = "";
                    if (!whole) snprintf(where, sizeof where, " of layer %d", l);
                    kit_fail("gradient of %s%s, element %zu: expected %.6g, got %s (the first tensor off, in the "
                             "backward's order: classifier, final norm, then each block from the last, "
                             "feed-forward before attention). %s", TENSOR_NAMES[i], where, j - lo, (double)want[j],
                             GOT(got[j]), exercise_hint);
                }
        }
    printf("every gradient of tests/golden/train/tiny.lamp matches PyTorch's\n");
    free_model(&m);
    free_grads(&g);
}

/* ---- crossentropy ---------------------------------------------------------- */

START_TEST(test_crossentropy_forward) {
    int n_logits, N;
    float *logits = unit_f32("ce.logits", &n_logits);
    const double *targets_d = unit("ce.targets", &N), *want = unit("ce.losses", NULL);
    int V = n_logits / N, targets[16];
    for (int n = 0; n < N; n++) targets[n] = (int)targets_d[n];
    float losses[16];
    kit_fill_unwritten(losses, 16);
    crossentropy_forward(losses, logits, targets, (size_t)N, V);
    Mismatch m = kit_compare(losses, want, N, 1e-5, 1e-5);
    if (m.first >= 0) {
        const char *hint = kit_nan_hint((float)m.got);
        if (!hint && m.first == 2)
            hint = "this row's logits are near 1000: exp(1000) overflows float32; compute log(sum exp(x - max)) "
                   "+ max - x[target]";
        if (!hint) hint = "loss_n = -log softmax(logits_n)[target_n] = log(sum_i exp(x_i)) - x[target_n]";
        kit_fail("row %d (of %d, %d classes, target %d): expected loss %.7g, got %s. %s", m.first, N, V,
                 targets[m.first], m.want, GOT(m.got), hint);
    }
    /* the backward needs the probabilities: the logits must have become them */
    const double *grad = unit("ce.grad", NULL);
    double scale = unit("ce.scale", NULL)[0];
    for (int i = 0; i < n_logits; i++) {
        double p = grad[i] / scale + (i % V == targets[i / V]);
        if (!kit_close(logits[i], p, 1e-6, 1e-5))
            kit_fail("row %d, class %d: after the forward, logits[] must hold the probabilities softmax(logits) "
                     "(crossentropy_backward reads them): expected %.7g, got %s", i / V, i % V, p, GOT(logits[i]));
    }
    free(logits);
}
END_TEST

START_TEST(test_crossentropy_backward) {
    int n_logits, N;
    const double *targets_d = unit("ce.targets", &N), *grad = unit("ce.grad", &n_logits);
    double scale = unit("ce.scale", NULL)[0];
    int V = n_logits / N, targets[16];
    for (int n = 0; n < N; n++) targets[n] = (int)targets_d[n];
    /* the probabilities, from PyTorch's gradient: p = grad / scale + onehot */
    float *probs = malloc(sizeof(float) * (size_t)n_logits);
    for (int i = 0; i < n_logits; i++) probs[i] = (float)(grad[i] / scale + (i % V == targets[i / V]));
    crossentropy_backward(probs, targets, (size_t)N, V, (float)scale);
    Mismatch m = kit_compare(probs, grad, n_logits, 1e-7, 1e-5);
    if (m.first >= 0) {
        int row = m.first / V, cls = m.first % V;
        double p = grad[m.first] / scale + (cls == targets[row]);
        const char *hint;
        if (fabs(m.got - p) < 1e-6) hint = "unchanged: the probabilities must become the gradient, in place";
        else if (cls == targets[row]) hint = "this is the target class: its gradient is (p - 1) * scale";
        else if (fabs(m.got - p) < 1e-6 * fabs(p) + 1e-7 || fabs(m.got / m.want - 1 / scale) < 1e-3)
            hint = "off by the factor scale: every entry is multiplied by scale (1 / positions)";
        else hint = "dLoss/dlogit_i = (p_i - [i == target]) * scale";
        kit_fail("row %d, class %d (target %d): expected %.7g, got %s. %s", row, cls, targets[row], m.want,
                 GOT(m.got), hint);
    }
    free(probs);
}
END_TEST

START_TEST(test_crossentropy_in_training) {
    kit_training_check("The loss and the first gradient (the classifier's) come from crossentropy_forward and "
                       "crossentropy_backward.");
}
END_TEST

/* ---- rmsnorm-backward ------------------------------------------------------ */

typedef struct {
    int N, dim;
    float *x, *w, *dy, *rstd, *dx, *dw;
} RmsCase;

static RmsCase rmsnorm_backward_case(void) {
    RmsCase c;
    int n;
    c.x = unit_f32("rmsb.x", &n);
    c.w = unit_f32("rmsb.w", &c.dim);
    c.dy = unit_f32("rmsb.dy", NULL);
    c.N = n / c.dim;
    float eps = (float)unit("rmsb.eps", NULL)[0];
    float *y = malloc(sizeof(float) * (size_t)n);
    c.rstd = malloc(sizeof(float) * (size_t)c.N);
    rmsnorm_forward(y, c.rstd, c.x, c.w, (size_t)c.N, c.dim, eps);
    free(y);
    /* the backward adds to d_x and d_w: start them at 0.5 and take it off */
    c.dx = malloc(sizeof(float) * (size_t)n);
    c.dw = malloc(sizeof(float) * (size_t)c.dim);
    for (int i = 0; i < n; i++) c.dx[i] = 0.5f;
    for (int i = 0; i < c.dim; i++) c.dw[i] = 0.5f;
    rmsnorm_backward(c.dx, c.dw, c.dy, c.x, c.w, c.rstd, (size_t)c.N, c.dim);
    for (int i = 0; i < n; i++) c.dx[i] -= 0.5f;
    for (int i = 0; i < c.dim; i++) c.dw[i] -= 0.5f;
    return c;
}

static void free_rms_case(RmsCase *c) {
    free(c->x); free(c->w); free(c->dy); free(c->rstd); free(c->dx); free(c->dw);
}

START_TEST(test_rmsnorm_backward_dx) {
    RmsCase c = rmsnorm_backward_case();
    const double *want = unit("rmsb.dx", NULL);
    Mismatch m = kit_compare(c.dx, want, c.N * c.dim, 1e-5, 1e-4);
    if (m.first >= 0) {
        int row = m.first / c.dim, i = m.first % c.dim;
        /* the common mistake: only the direct term r w_i dy_i */
        double direct = (double)c.rstd[row] * c.w[i] * c.dy[m.first];
        const char *hint;
        if (fabs(m.got + 0.5) < 1e-6) hint = "d_x is overwritten with 0 or untouched - 0.5: dx must be ADDED to d_x";
        else if (fabs(m.got) < 1e-9) hint = "nothing was added to d_x";
        else if (fabs(m.got - direct) < 1e-5 * fabs(direct) + 1e-6)
            hint = "got only the direct term r * w_i * dy_i: r depends on every x_j too, dr/dx_j = -r^3 x_j / dim, "
                   "which adds -(r^3 / dim) x_j sum_i dy_i w_i x_i";
        else hint = "dx_j = r w_j dy_j - (r^3 / dim) x_j sum_i dy_i w_i x_i (derive it: the product rule through r)";
        kit_fail("dx, row %d (rows of scale 1, 4, 0.2), index %d: expected %.7g, got %.7g. %s", row, i, m.want,
                 m.got, hint);
    }
    free_rms_case(&c);
}
END_TEST

START_TEST(test_rmsnorm_backward_dw) {
    RmsCase c = rmsnorm_backward_case();
    const double *want = unit("rmsb.dw", NULL);
    Mismatch m = kit_compare(c.dw, want, c.dim, 1e-5, 1e-4);
    if (m.first >= 0) {
        double row0 = (double)c.dy[m.first] * c.rstd[0] * c.x[m.first];
        const char *hint;
        if (fabs(m.got) < 1e-9) hint = "nothing was added to d_w (it is added to, like d_x)";
        else if (fabs(m.got - row0) < 1e-5 * fabs(row0) + 1e-6)
            hint = "got row 0's term only: the gain is shared by every row, so its gradient sums over the rows";
        else hint = "dw_i = sum over rows of dy_i * r * x_i";
        kit_fail("dw, index %d: expected %.7g, got %.7g. %s", m.first, m.want, m.got, hint);
    }
    free_rms_case(&c);
}
END_TEST

START_TEST(test_rmsnorm_backward_in_training) {
    kit_training_check("rmsnorm_backward runs for the final norm and twice per block; the first tensor whose "
                       "gradient is off sits below the first wrong RMSNorm backward.");
}
END_TEST

/* ---- attention-backward ---------------------------------------------------- */

typedef struct {
    AttShape s;
    float *dq, *dk, *dv;
} AttCase;

static AttCase attention_backward_case(void) {
    int n;
    const double *shape = unit("attb.shape", &n);
    AttCase c;
    c.s = (AttShape){(int)shape[0], (int)shape[1], (int)shape[2], (int)shape[3], (int)shape[4]};
    float *q = unit_f32("attb.q", NULL), *k = unit_f32("attb.k", NULL), *v = unit_f32("attb.v", NULL);
    float *dout = unit_f32("attb.dout", NULL);
    size_t rows = (size_t)c.s.B * c.s.T, q_dim = (size_t)c.s.n_heads * c.s.head_dim;
    size_t kv_dim = (size_t)c.s.n_kv_heads * c.s.head_dim;
    float *out = malloc(sizeof(float) * rows * q_dim);
    float *att = malloc(sizeof(float) * (size_t)c.s.B * c.s.n_heads * c.s.T * c.s.T);
    attention_forward(out, att, q, k, v, c.s);
    c.dq = malloc(sizeof(float) * rows * q_dim);
    c.dk = malloc(sizeof(float) * rows * kv_dim);
    c.dv = malloc(sizeof(float) * rows * kv_dim);
    kit_fill_unwritten(c.dq, rows * q_dim);
    kit_fill_unwritten(c.dk, rows * kv_dim);
    kit_fill_unwritten(c.dv, rows * kv_dim);
    attention_backward(c.dq, c.dk, c.dv, dout, att, q, k, v, c.s);
    free(q); free(k); free(v); free(dout); free(out); free(att);
    return c;
}

/* Compare one gradient, (B*T, heads * head_dim) rows; name b, t, head, d. */
static void check_att_grad(const char *what, const float *got, const char *golden, int heads, const char *hint) {
    int n;
    const double *want = unit(golden, &n);
    const double *shape = unit("attb.shape", NULL);
    int T = (int)shape[1], hd = (int)shape[4], H = (int)shape[2], G = (int)shape[3];
    Mismatch m = kit_compare(got, want, n, 1e-5, 1e-4);
    if (m.first < 0) return;
    int row = m.first / (heads * hd), col = m.first % (heads * hd);
    const char *first = kit_nan_hint((float)m.got);
    kit_fail("%s, sequence %d, position %d, head %d, index %d (%d query heads on %d kv heads, T %d): expected "
             "%.7g, got %s. %s", what, row / T, row % T, col / hd, col % hd, H, G, T, m.want, GOT(m.got),
             first ? first : hint);
}

START_TEST(test_attention_backward_dv) {
    AttCase c = attention_backward_case();
    check_att_grad("dV", c.dv, "attb.dv", c.s.n_kv_heads,
                   "dV = P^T dO, summed over the query heads that share the kv head (grouped-query attention); "
                   "position u gets weight from queries t >= u only");
    free(c.dq); free(c.dk); free(c.dv);
}
END_TEST

START_TEST(test_attention_backward_dq) {
    AttCase c = attention_backward_case();
    check_att_grad("dQ", c.dq, "attb.dq", c.s.n_heads,
                   "dP = dO V^T, then the softmax's backward dS = P * (dP - rowsum(P * dP)) over u <= t, then "
                   "dQ = dS K / sqrt(head_dim) (the scale of the scores)");
    free(c.dq); free(c.dk); free(c.dv);
}
END_TEST

START_TEST(test_attention_backward_dk) {
    AttCase c = attention_backward_case();
    check_att_grad("dK", c.dk, "attb.dk", c.s.n_kv_heads,
                   "dK = dS^T Q / sqrt(head_dim), summed over the query heads of the group; if dQ passes and dK "
                   "fails, look at the transpose or at the sum over the group");
    free(c.dq); free(c.dk); free(c.dv);
}
END_TEST

START_TEST(test_attention_backward_in_training) {
    kit_training_check("attention_backward gives the gradients of wq, wk and wv (through RoPE's backward).");
}
END_TEST

/* ---- adamw ------------------------------------------------------------------ */

static const char *const ADAMW_NAMES[N_TENSORS] = {
    "token_embedding", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
    "w1", "w2", "w3", "rms_final_weight", "wcls"};

/* torch.optim.AdamW's 3 steps on the tensors of a tiny train.c model
 * (matrices decayed, RMSNorm gains not). */
static void adamw_run(Model *m, Hyper *h, float *lr) {
    int n;
    const double *cfg = unit("adamw.config", &n), *hyper = unit("adamw.hyper", NULL);
    Config c = {0};
    c.dim = (int)cfg[0]; c.hidden_dim = (int)cfg[1]; c.n_layers = (int)cfg[2]; c.n_heads = (int)cfg[3];
    c.n_kv_heads = (int)cfg[4]; c.head_dim = (int)cfg[5]; c.vocab_size = (int)cfg[6];
    c.seq_len = 4; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f; c.bos_id = c.eos_id = -1;
    build_model(m, &c, 1);
    *lr = (float)hyper[0];
    memset(h, 0, sizeof *h);
    h->beta1 = (float)hyper[1]; h->beta2 = (float)hyper[2]; h->adam_eps = (float)hyper[3];
    h->weight_decay = (float)hyper[4];
    int n_params;
    const double *p0 = unit("adamw.params0", &n_params);
    ck_assert_int_eq((int)m->n_params, n_params);
    for (int i = 0; i < n_params; i++) m->params.token_embedding[i] = (float)p0[i];
    for (int t = 1; t <= 3; t++) {
        char name[32];
        snprintf(name, sizeof name, "adamw.grads%d", t - 1);
        const double *g = unit(name, NULL);
        for (int i = 0; i < n_params; i++) m->grads.token_embedding[i] = (float)g[i];
        adamw_update(m, h, *lr, t);
    }
}

/* The tensor and index of flat parameter j. */
static int adamw_tensor(const Model *m, int j, int *index) {
    int i = 0;
    while (j >= (int)m->numel[i]) j -= (int)m->numel[i++];
    *index = j;
    return i;
}

START_TEST(test_adamw_moments) {
    Model m;
    Hyper h;
    float lr;
    adamw_run(&m, &h, &lr);
    const char *which[2] = {"first moment m", "second moment v"};
    const float *got[2] = {m.m.token_embedding, m.v.token_embedding};
    const char *golden[2] = {"adamw.m3", "adamw.v3"};
    for (int k = 0; k < 2; k++) {
        Mismatch mm = kit_compare(got[k], unit(golden[k], NULL), (int)m.n_params, 1e-9, 1e-5);
        if (mm.first >= 0) {
            int index, i = adamw_tensor(&m, mm.first, &index);
            kit_fail("%s after 3 steps, %s[%d]: expected %.7g, got %.7g. %s", which[k], ADAMW_NAMES[i], index,
                     mm.want, mm.got,
                     k == 0 ? "m = beta1 m + (1 - beta1) g, kept in m->m between steps (not bias-corrected there)"
                            : "v = beta2 v + (1 - beta2) g^2, kept in m->v between steps (not bias-corrected there)");
        }
    }
    free_model(&m);
}
END_TEST

START_TEST(test_adamw_params) {
    Model m;
    Hyper h;
    float lr;
    adamw_run(&m, &h, &lr);
    const double *want = unit("adamw.params3", NULL);
    Mismatch mm = kit_compare(m.params.token_embedding, want, (int)m.n_params, 1e-6, 1e-5);
    if (mm.first >= 0) {
        int index, i = adamw_tensor(&m, mm.first, &index);
        int gain = i == T_RMS_ATT || i == T_RMS_FFN || i == T_RMS_FINAL;
        const char *hint = gain ? "an RMSNorm gain: it is not decayed (weight decay applies to the matrices only)"
                                : "a matrix: p = p (1 - lr wd), then p -= lr / (1 - beta1^t) * m / (sqrt(v) / "
                                  "sqrt(1 - beta2^t) + eps) (both bias corrections; eps outside the root)";
        kit_fail("parameter after 3 steps, %s[%d]: expected %.8g, got %.8g (it started at %.8g). %s",
                 ADAMW_NAMES[i], index, mm.want, mm.got, unit("adamw.params0", NULL)[mm.first], hint);
    }
    free_model(&m);
}
END_TEST

static TCase *exercise(Suite *s, const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void) {
    one_thread();
    Suite *s = suite_create("course kit: train.c");
    TCase *tc = exercise(s, "crossentropy");
    tcase_add_test(tc, test_crossentropy_forward);
    tcase_add_test(tc, test_crossentropy_backward);
    tcase_add_test(tc, test_crossentropy_in_training);
    tc = exercise(s, "rmsnorm-backward");
    tcase_add_test(tc, test_rmsnorm_backward_dx);
    tcase_add_test(tc, test_rmsnorm_backward_dw);
    tcase_add_test(tc, test_rmsnorm_backward_in_training);
    tc = exercise(s, "attention-backward");
    tcase_add_test(tc, test_attention_backward_dv);
    tcase_add_test(tc, test_attention_backward_dq);
    tcase_add_test(tc, test_attention_backward_dk);
    tcase_add_test(tc, test_attention_backward_in_training);
    tc = exercise(s, "adamw");
    tcase_add_test(tc, test_adamw_moments);
    tcase_add_test(tc, test_adamw_params);
    return run_suite(s);
}
