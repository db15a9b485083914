/* train.c — train a Llama-style language model from scratch, in one file of C.
 *
 * run.c shows how a Llama computes its next-token logits; this file shows how
 * such a model *learns*: every gradient is derived in a comment and computed
 * by hand, in reverse order of the forward pass. Read it top to bottom:
 *
 *   1. the model: its parameters, and the activations the backward pass needs
 *   2. matmul: one blocked matrix product serves forward and backward
 *   3. the layers, each forward next to its backward: embedding, RMSNorm,
 *      RoPE, causal grouped-query attention, SwiGLU, cross-entropy
 *   4. the whole model: forward, and backward in reverse order
 *   5. the optimizer: gradient clipping, learning-rate schedule, AdamW
 *   6. data: text tokenized with tokenizer.c, or a pre-tokenized shard;
 *      random (B, T) windows from a seeded generator
 *   7. files: the lamp checkpoint run.c reads, and the resumable training state
 *   8. the training loop and the command line
 *
 * The architecture and the weight layout are exactly run.c's, so the model
 * this program writes is run by `./run out/model.lamp`. Nothing is copied
 * from run.c: it is included with its main() left out (as llama2.c's test.c
 * includes its run.c), and train.c calls its functions as they are: from
 * Part I, Config and its shapes, rope_angles() and rope(), and forward() with
 * the sampler for the text samples printed during training; from Part II,
 * the register-tiled kernel micro_kernel() and its pack_panel(); from Part
 * III, check_config() and the model loader. run.c's functions are not
 * `static`, so the ones train.c does not call are no warning; nor are
 * train.c's own, which its test suite includes the same way. Text is
 * tokenized by tokenizer.c. How to use the program:
 * docs/training.md; the files it reads and writes: docs/format.md.
 *
 * Shapes use B (sequences in a batch), T (positions in a sequence, seq_len),
 * N = B * T (rows: every position of every sequence), and the model's dim,
 * hidden_dim, q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim,
 * vocab_size (V) and n_layers (L). Every matrix is row-major.
 *
 * Determinism: for a given seed, every number this program computes is the
 * same on every run *and for every number of threads*: each output element
 * is computed by one thread, in an order that does not depend on how the
 * work is split, and every sum across rows runs in a fixed order. */
#define RUN_NO_MAIN
#include "run.c"

#include <signal.h>
#include <sys/types.h>

static const double PI = 3.14159265358979323846;

/* Threads: OpenMP when the build has it (make NO_OMP=1 builds without).
 * Starting and stopping a parallel loop costs microseconds on an idle
 * machine, and much more when another program keeps a core busy, so loops
 * over fewer than PARALLEL_MIN elements run on one thread (`if` clauses
 * below). No result depends on it. */
#define PARALLEL_MIN ((size_t)1 << 16)

int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
int thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ===========================================================================
 * 1. The model
 * =========================================================================*/

/* The parameter tensors, in the order of a lamp file (docs/format.md, 1.3). */
enum {
    T_EMBEDDING, T_RMS_ATT, T_WQ, T_WK, T_WV, T_WO, T_RMS_FFN, T_W1, T_W2, T_W3,
    T_RMS_FINAL, T_WCLS, N_TENSORS
};

/* One set of parameter-shaped arrays. The same type holds the weights, their
 * gradients, and AdamW's two moments: element i of grads.wq is the gradient
 * of element i of params.wq. The union gives the same pointers by name (for
 * the math) and by index (for loops over all tensors). With a shared
 * classifier, wcls points at token_embedding and has no storage of its own. */
typedef union {
    struct {
        float *token_embedding;  /* (vocab_size, dim) */
        float *rms_att_weight;   /* (n_layers, dim) */
        float *wq;               /* (n_layers, q_dim, dim) */
        float *wk;               /* (n_layers, kv_dim, dim) */
        float *wv;               /* (n_layers, kv_dim, dim) */
        float *wo;               /* (n_layers, dim, q_dim) */
        float *rms_ffn_weight;   /* (n_layers, dim) */
        float *w1;               /* (n_layers, hidden_dim, dim) gate */
        float *w2;               /* (n_layers, dim, hidden_dim) down */
        float *w3;               /* (n_layers, hidden_dim, dim) up */
        float *rms_final_weight; /* (dim) */
        float *wcls;             /* (vocab_size, dim) */
    };
    float *tensor[N_TENSORS];
} Params;

/* Everything the forward pass computes that the backward pass reads again,
 * for one micro-batch of B sequences (N = B * T rows), plus the backward
 * pass's scratch. Per-layer arrays hold all layers, layer l at offset
 * l * (size of one layer). */
typedef struct {
    int *inputs, *targets; /* (N) token ids, and the id that follows each */
    float *resid;       /* (L + 1, N, dim) the residual stream entering layer l; [L] leaves the last */
    float *resid_mid;   /* (L, N, dim) the residual stream after layer l's attention block */
    float *att_rstd;    /* (L, N) 1 / rms(resid) of the attention RMSNorm */
    float *att_in;      /* (L, N, dim) RMSNorm output: the input of wq, wk, wv */
    float *q;           /* (L, N, q_dim) queries, after RoPE */
    float *k;           /* (L, N, kv_dim) keys, after RoPE */
    float *v;           /* (L, N, kv_dim) values */
    float *att;         /* (L, B, n_heads, T, T) attention weights; row t uses columns 0..t */
    float *att_out;     /* (L, N, q_dim) attention output, heads side by side: the input of wo */
    float *ffn_rstd;    /* (L, N) */
    float *ffn_in;      /* (L, N, dim) RMSNorm output: the input of w1 and w3 */
    float *h1;          /* (L, N, hidden_dim) gate, w1 @ ffn_in */
    float *h3;          /* (L, N, hidden_dim) up, w3 @ ffn_in */
    float *hs;          /* (L, N, hidden_dim) silu(h1) * h3: the input of w2 */
    float *final_rstd;  /* (N) */
    float *final_out;   /* (N, dim) the final RMSNorm's output: the input of the classifier */
    float *logits;      /* (N, V) logits; cross-entropy turns them into probabilities,
                         * the backward pass into their gradient */
    float *losses;      /* (N) -log p(target) at each position */
    /* backward scratch: gradients of one layer's activations */
    float *d_resid;     /* (N, dim) dLoss/d(residual stream), carried down the layers */
    float *d_norm;      /* (N, dim) dLoss/d(an RMSNorm output) */
    float *d_q;         /* (N, q_dim) */
    float *d_k, *d_v;   /* (N, kv_dim) */
    float *d_att_out;   /* (N, q_dim) */
    float *d_h1, *d_h3; /* (N, hidden_dim); d_h1 first holds d(hs) */
} Activations;

typedef struct {
    Config config;          /* run.c's: the shape of the model */
    size_t numel[N_TENSORS]; /* floats in each tensor; 0 for a shared wcls */
    size_t n_params;         /* their sum: the number of trainable parameters */
    Params params, grads, m, v;   /* weights, gradients, AdamW first and second moments */
    Activations acts;
    int batch_size;          /* B the activations are allocated for */
    float *rope_cos, *rope_sin; /* (seq_len, head_dim / 2) RoPE's angles, by run.c's rope_angles() */
    /* run.c's view of the same weights: its forward() and sampler write the
     * text samples (print_sample() gives it a run state while it does). */
    Transformer run;
} Model;

void tensor_sizes(const Config *c, size_t numel[N_TENSORS]) {
    size_t L = (size_t)c->n_layers, dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t V = (size_t)c->vocab_size;
    numel[T_EMBEDDING] = V * dim;
    numel[T_RMS_ATT] = L * dim;
    numel[T_WQ] = L * q_dim * dim;
    numel[T_WK] = L * kv_dim * dim;
    numel[T_WV] = L * kv_dim * dim;
    numel[T_WO] = L * dim * q_dim;
    numel[T_RMS_FFN] = L * dim;
    numel[T_W1] = L * hidden * dim;
    numel[T_W2] = L * dim * hidden;
    numel[T_W3] = L * hidden * dim;
    numel[T_RMS_FINAL] = dim;
    numel[T_WCLS] = c->shared_classifier ? 0 : V * dim;
}

/* Is tensor i a weight matrix? AdamW decays matrices, not RMSNorm gains. */
int is_matrix(int i) { return i != T_RMS_ATT && i != T_RMS_FFN && i != T_RMS_FINAL; }

/* One zeroed allocation carved into the tensors (stored contiguously, in
 * file order, so "all parameters" is also one flat array of n_params). */
void alloc_params(Params *p, const Model *m) {
    float *memory = xcalloc(m->n_params, sizeof(float));
    for (int i = 0; i < N_TENSORS; i++) {
        p->tensor[i] = memory;
        memory += m->numel[i];
    }
    if (m->config.shared_classifier) p->wcls = p->token_embedding;
}

float *falloc(size_t n) { return xcalloc(n, sizeof(float)); }

void alloc_activations(Model *m, int B) {
    const Config *c = &m->config;
    Activations *a = &m->acts;
    size_t L = (size_t)c->n_layers, T = (size_t)c->seq_len, N = (size_t)B * T;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    m->batch_size = B;
    a->inputs = xcalloc(N, sizeof(int));
    a->targets = xcalloc(N, sizeof(int));
    a->resid = falloc((L + 1) * N * dim);
    a->resid_mid = falloc(L * N * dim);
    a->att_rstd = falloc(L * N);
    a->att_in = falloc(L * N * dim);
    a->q = falloc(L * N * q_dim);
    a->k = falloc(L * N * kv_dim);
    a->v = falloc(L * N * kv_dim);
    a->att = falloc(L * (size_t)B * c->n_heads * T * T);
    a->att_out = falloc(L * N * q_dim);
    a->ffn_rstd = falloc(L * N);
    a->ffn_in = falloc(L * N * dim);
    a->h1 = falloc(L * N * hidden);
    a->h3 = falloc(L * N * hidden);
    a->hs = falloc(L * N * hidden);
    a->final_rstd = falloc(N);
    a->final_out = falloc(N * dim);
    a->logits = falloc(N * V);
    a->losses = falloc(N);
    a->d_resid = falloc(N * dim);
    a->d_norm = falloc(N * dim);
    a->d_q = falloc(N * q_dim);
    a->d_k = falloc(N * kv_dim);
    a->d_v = falloc(N * kv_dim);
    a->d_att_out = falloc(N * q_dim);
    a->d_h1 = falloc(N * hidden);
    a->d_h3 = falloc(N * hidden);
}

void free_activations(Activations *a) {
    float *arrays[] = {a->resid, a->resid_mid, a->att_rstd, a->att_in, a->q, a->k, a->v, a->att,
                       a->att_out, a->ffn_rstd, a->ffn_in, a->h1, a->h3, a->hs, a->final_rstd,
                       a->final_out, a->logits, a->losses, a->d_resid, a->d_norm, a->d_q, a->d_k,
                       a->d_v, a->d_att_out, a->d_h1, a->d_h3};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(arrays[i]);
    free(a->inputs);
    free(a->targets);
}

/* Allocate a model of shape c for micro-batches of B sequences: parameters,
 * gradients and moments all zero. The shape must pass run.c's check_config. */
void build_model(Model *m, const Config *c, int B) {
    memset(m, 0, sizeof *m);
    m->config = *c;
    tensor_sizes(c, m->numel);
    for (int i = 0; i < N_TENSORS; i++) m->n_params += m->numel[i];
    alloc_params(&m->params, m);
    alloc_params(&m->grads, m);
    alloc_params(&m->m, m);
    alloc_params(&m->v, m);
    alloc_activations(m, B);
    size_t half = (size_t)c->head_dim / 2;
    m->rope_cos = xmalloc((size_t)c->seq_len * half * sizeof(float));
    m->rope_sin = xmalloc((size_t)c->seq_len * half * sizeof(float));
    for (int pos = 0; pos < c->seq_len; pos++)
        rope_angles(m->rope_cos + pos * half, m->rope_sin + pos * half, pos, c->head_dim, c->rope_theta);
    /* run.c's Transformer, pointed at our weights (its fields are const
     * float *: it reads them, training writes them). */
    Transformer *t = &m->run;
    t->config = *c;
    t->format = FORMAT_LAMP;
    t->path = "(training)";
    const Params *p = &m->params;
    Weights *w = &t->weights;   /* zeroed with *m: float32, no int8 parts */
    w->token_embedding = p->token_embedding;
    w->rms_att_weight = p->rms_att_weight;
    w->wq = p->wq;
    w->wk = p->wk;
    w->wv = p->wv;
    w->wo = p->wo;
    w->rms_ffn_weight = p->rms_ffn_weight;
    w->w1 = p->w1;
    w->w2 = p->w2;
    w->w3 = p->w3;
    w->rms_final_weight = p->rms_final_weight;
    w->wcls = p->wcls;
}

void free_model(Model *m) {
    free(m->params.token_embedding);
    free(m->grads.token_embedding);
    free(m->m.token_embedding);
    free(m->v.token_embedding);
    free_activations(&m->acts);
    free(m->rope_cos);
    free(m->rope_sin);
    memset(m, 0, sizeof *m);
}

/* A standard normal number from two uniform draws (Box-Muller). */
float random_normal(uint64_t *rng) {
    double u1 = ((random_u32(rng) >> 8) + 1) / 16777216.0; /* (0, 1]: log(u1) is finite */
    double u2 = (random_u32(rng) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2));
}

/* A seed for generator `stream`, derived from the user's seed by splitmix64,
 * so the initialization, the training windows, the validation windows and
 * the samples each draw from their own sequence. Never 0 (xorshift's fixed
 * point). */
uint64_t derive_seed(uint64_t seed, uint64_t stream) {
    uint64_t z = seed + stream * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 1;
}
enum { STREAM_INIT = 1, STREAM_TRAIN = 2, STREAM_VAL = 3, STREAM_SAMPLE = 4 };

/* GPT-2's initialization, as llama2.c's model.py uses it: every matrix
 * N(0, 0.02²), except the two that write into the residual stream (wo and
 * w2), N(0, (0.02 / sqrt(2 n_layers))²): the stream is a sum of 2 n_layers
 * such outputs, and this keeps its variance independent of depth. RMSNorm
 * gains start at 1. Tensors are drawn in file order, element by element. */
void init_weights(Model *m, uint64_t seed) {
    uint64_t rng = derive_seed(seed, STREAM_INIT);
    float residual_std = 0.02f / sqrtf(2.0f * (float)m->config.n_layers);
    for (int i = 0; i < N_TENSORS; i++) {
        float *w = m->params.tensor[i];
        for (size_t j = 0; j < m->numel[i]; j++) {
            if (!is_matrix(i)) w[j] = 1.0f;
            else w[j] = random_normal(&rng) * ((i == T_WO || i == T_W2) ? residual_std : 0.02f);
        }
    }
}

/* ===========================================================================
 * 2. matmul
 *
 * A linear layer with input X (N, in), weight W (out, in) and output
 * Y (N, out) costs three matrix products per training step:
 *     forward:    Y  = X · Wᵀ         (N, out)
 *     backward:   dX = dY · W         (N, in)
 *                 dW += dYᵀ · X       (out, in)
 * (Why those: Y[n][o] = Σ_i X[n][i] W[o][i], so dLoss/dX[n][i] =
 * Σ_o dY[n][o] W[o][i] and dLoss/dW[o][i] = Σ_n dY[n][o] X[n][i].)
 * They are the same operation, C += A · B, on matrices read with different
 * strides, so one function, gemm(), computes all three, and together they
 * are almost all of training's arithmetic.
 *
 * How gemm() is fast, in three steps:
 *  - Register tiling. The micro-kernel computes a tile of TILE_M rows by
 *    TILE_N columns of C and keeps those sums in SIMD registers for the
 *    whole length of the product. Per step k it loads TILE_N values of B
 *    (two vector registers) and TILE_M single values of A, and does
 *    TILE_M * TILE_N multiply-adds: 12 vector FMAs for 2 vector loads, so
 *    the FMA units, not memory, set the pace. (It relies on the compiler
 *    fusing a * b + c into one FMA instruction: -ffp-contract=fast in the
 *    Makefile.)
 *  - Packing. Before the kernel runs, blocks of A and B are copied into the
 *    order the kernel reads them (A in TILE_M-row panels, B in TILE_N-column
 *    panels), so the kernel's loads are contiguous whatever the strides of
 *    the original matrices — this is what lets one kernel serve all three
 *    products — and the edges are padded with zeros.
 *  - Cache blocking. The product runs over blocks of BLOCK_K steps of the
 *    inner dimension; a packed B panel (BLOCK_K x TILE_N) stays in the L1
 *    cache while the kernel sweeps the rows of A, and a packed A block
 *    (BLOCK_M x BLOCK_K) stays in L2.
 * OpenMP splits the rows of C into blocks, one or more per thread. Every
 * element of C is summed by one thread, k in order, whatever the number of
 * threads, so the result does not depend on it. No intrinsics: the loops are
 * plain C with `omp simd`, and the compiler picks the vector instructions
 * (on the reference machine the kernel reaches ~75% of the FMA peak; see
 * docs/training.md).
 * =========================================================================*/

/* The micro-kernel, its TILE_M x TILE_N tile and MatView come from run.c
 * (section 3), where the prompt's matmul uses them too. */
#define BLOCK_K 256   /* inner-dimension block: a B panel, BLOCK_K * TILE_N floats = 32 KB, stays in L1 */
#define BLOCK_M 192   /* rows of A per block at most (a multiple of TILE_M): 192 KB, in L2 */
#define BLOCK_N 4096  /* columns of B packed at once: BLOCK_K * BLOCK_N floats = 4 MB, in L3 */

/* Which part of a product to compute. Attention's (T x T) matrices are
 * causal: row t involves only columns u <= t, the rest are zeros, so half of
 * each product can be skipped. */
typedef enum {
    FULL,        /* all of C = A · B */
    LOWER,       /* skip C's tiles that lie wholly above the diagonal (column > row) */
    K_UPTO_ROW,  /* A(i, k) = 0 for k > i: row i sums over k = 0 .. i only */
    K_FROM_ROW,  /* A(i, k) = 0 for k < i: row i sums over k = i .. K-1 only */
} Shape;

/* The part [*ka, *kb) of the k block k0 .. k0+kc that rows i .. i+TILE_M-1
 * need (all of it unless the shape says some of A is zero). */
void k_range(Shape shape, int i, int k0, int kc, int *ka, int *kb) {
    *ka = 0;
    *kb = kc;
    if (shape == K_UPTO_ROW && i + TILE_M - k0 < kc) *kb = i + TILE_M - k0;
    if (shape == K_FROM_ROW && i - k0 > 0) *ka = i - k0;
}

/* Pack rows i0..i0+mc (mc a multiple of TILE_M) and columns k0..k0+kc of A
 * into TILE_M-row panels: panel q holds, for each k, the TILE_M values of
 * rows i0 + q*TILE_M .. i0 + q*TILE_M + TILE_M-1 side by side. Rows at or
 * past M become 0; the k the shape leaves out are not packed (not read). */
void pack_a(float *dst, MatView A, int M, int i0, int mc, int k0, int kc, Shape shape) {
    for (int q = 0; q < mc; q += TILE_M) {
        int ka, kb, rows = M - (i0 + q) < TILE_M ? M - (i0 + q) : TILE_M;
        k_range(shape, i0 + q, k0, kc, &ka, &kb);
        float *d = dst + (size_t)q * kc;
        const float *s = A.p + (size_t)(i0 + q) * A.rs + (size_t)k0 * A.cs;
        if (rows < TILE_M) {   /* the last panel, padded with zero rows */
            for (int k = ka; k < kb; k++)
                for (int r = 0; r < TILE_M; r++)
                    d[(size_t)k * TILE_M + r] = r < rows ? s[(size_t)r * A.rs + (size_t)k * A.cs] : 0.0f;
        } else if (A.rs == 1) {   /* A's columns are contiguous: copy TILE_M at a time */
            for (int k = ka; k < kb; k++)
                for (int r = 0; r < TILE_M; r++) d[(size_t)k * TILE_M + r] = s[(size_t)k * A.cs + r];
        } else {                  /* A's rows are: read each row along k */
            for (int r = 0; r < TILE_M; r++)
                for (int k = ka; k < kb; k++) d[(size_t)k * TILE_M + r] = s[(size_t)r * A.rs + (size_t)k * A.cs];
        }
    }
}

/* Where packed blocks go: one block of B, and one block of A per thread. */
typedef struct {
    float *a, *b;
} PackBuffers;

#define PACK_A_FLOATS ((size_t)BLOCK_M * BLOCK_K)
size_t pack_b_floats(int N) {
    int n = N < BLOCK_N ? N : BLOCK_N;
    return (size_t)BLOCK_K * ((n + TILE_N - 1) / TILE_N * TILE_N);
}

/* C (M x N, row stride ldc) = A (M x K) · B (K x N), or += with accumulate,
 * computing the part `shape` says, on `threads` threads (1 = only the calling
 * thread, for use inside a parallel loop). Without accumulate, tiles that
 * LOWER skips keep whatever C held. */
void gemm_core(int M, int N, int K, MatView A, MatView B, float *C, size_t ldc, Shape shape, int accumulate,
                      int threads, PackBuffers buf) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    /* K in equal blocks of at most BLOCK_K: the sizes depend only on K, so
     * every sum is added in the same order whatever the threads. */
    int k_blocks = (K + BLOCK_K - 1) / BLOCK_K, kc = (K + k_blocks - 1) / k_blocks;
    /* Rows in blocks of at most BLOCK_M, multiples of TILE_M, at least one per thread. */
    int m_blocks = (M + BLOCK_M - 1) / BLOCK_M;
    m_blocks = (m_blocks + threads - 1) / threads * threads;
    int mc = ((M + m_blocks - 1) / m_blocks + TILE_M - 1) / TILE_M * TILE_M;
    m_blocks = (M + mc - 1) / mc;

    for (int j0 = 0; j0 < N; j0 += BLOCK_N) {
        int nc = N - j0 < BLOCK_N ? N - j0 : BLOCK_N, n_panels = (nc + TILE_N - 1) / TILE_N;
        for (int k0 = 0; k0 < K; k0 += kc) {
            int kcur = K - k0 < kc ? K - k0 : kc;
            #pragma omp parallel num_threads(threads) if (threads > 1)
            {
                /* all threads pack B's block together, then each takes row blocks */
                #pragma omp for schedule(static)
                for (int q = 0; q < n_panels; q++)
                    pack_panel(buf.b + (size_t)q * TILE_N * kcur, B, N, k0, kcur, j0 + q * TILE_N);
                float *ap = buf.a + (threads > 1 ? (size_t)thread_num() * PACK_A_FLOATS : 0);
                #pragma omp for schedule(static)
                for (int ib = 0; ib < m_blocks; ib++) {
                    int i0 = ib * mc, rows = M - i0 < mc ? M - i0 : mc;
                    pack_a(ap, A, M, i0, (rows + TILE_M - 1) / TILE_M * TILE_M, k0, kcur, shape);
                    for (int q = 0; q < n_panels; q++) {
                        int j = j0 + q * TILE_N;
                        for (int r = 0; r < rows; r += TILE_M) {
                            int i = i0 + r, ka, kb;
                            if (shape == LOWER && j > i + TILE_M - 1) continue;
                            k_range(shape, i, k0, kcur, &ka, &kb);
                            if (kb <= ka) continue;
                            /* the first k block this tile reads writes C, the others add */
                            int overwrite = !accumulate && (k0 == 0 || (shape == K_FROM_ROW && i >= k0));
                            const float *a = ap + (size_t)r * kcur + (size_t)ka * TILE_M;
                            const float *b = buf.b + (size_t)q * TILE_N * kcur + (size_t)ka * TILE_N;
                            float *c = C + (size_t)i * ldc + j;
                            if (i + TILE_M <= M && j + TILE_N <= N) {
                                micro_kernel(kb - ka, a, 1, TILE_M, b, c, ldc, 1, overwrite);
                            } else { /* an edge tile: compute it whole, keep what is inside C */
                                float tile[TILE_M * TILE_N];
                                micro_kernel(kb - ka, a, 1, TILE_M, b, tile, TILE_N, 1, 1);
                                for (int tr = 0; tr < TILE_M && i + tr < M; tr++)
                                    for (int tj = 0; tj < TILE_N && j + tj < N; tj++)
                                        c[(size_t)tr * ldc + tj] = (overwrite ? 0.0f : c[(size_t)tr * ldc + tj]) +
                                                                   tile[tr * TILE_N + tj];
                            }
                        }
                    }
                }
            }
        }
    }
}

/* The packing buffers of the parallel gemm, grown on demand. gemm() is
 * called from the main thread only (it starts its own parallel regions). */
static struct {
    PackBuffers buf;
    int threads;
} gemm_buffers;

void gemm_free_buffers(void) {
    free(gemm_buffers.buf.a);
    free(gemm_buffers.buf.b);
    memset(&gemm_buffers, 0, sizeof gemm_buffers);
}

/* C = A · B (or += with accumulate), all of it, on all threads. A product too
 * small to be worth waking the other threads runs on one (the result is the
 * same: no sum depends on the thread count). */
void gemm(int M, int N, int K, MatView A, MatView B, float *C, size_t ldc, int accumulate) {
    int threads = (double)M * N * K < (double)(1 << 19) ? 1 : max_threads();
    if (!gemm_buffers.buf.b || gemm_buffers.threads < threads) {
        gemm_free_buffers();
        gemm_buffers.buf.a = xmalloc((size_t)threads * PACK_A_FLOATS * sizeof(float));
        gemm_buffers.buf.b = xmalloc(pack_b_floats(BLOCK_N) * sizeof(float));
        gemm_buffers.threads = threads;
    }
    gemm_core(M, N, K, A, B, C, ldc, FULL, accumulate, threads, gemm_buffers.buf);
}

/* The linear layer out = in · wᵀ; with accumulate, added to what out holds
 * (the residual stream: the residual connection is then free).
 * in (N, in_dim), w (out_dim, in_dim), out (N, out_dim). */
void matmul_forward(float *out, const float *in, const float *w, size_t N, int in_dim, int out_dim,
                           int accumulate) {
    gemm((int)N, out_dim, in_dim, (MatView){in, (size_t)in_dim, 1}, (MatView){w, 1, (size_t)in_dim}, out,
         (size_t)out_dim, accumulate);
}

/* Its backward: d_in = d_out · w (or += with accumulate: an input that feeds
 * several layers sums their gradients) and d_w += d_outᵀ · in (always +=:
 * micro-batches add up). */
void matmul_backward(float *d_in, float *d_w, const float *d_out, const float *in, const float *w,
                            size_t N, int in_dim, int out_dim, int accumulate) {
    gemm((int)N, in_dim, out_dim, (MatView){d_out, (size_t)out_dim, 1}, (MatView){w, (size_t)in_dim, 1}, d_in,
         (size_t)in_dim, accumulate);
    gemm(out_dim, in_dim, (int)N, (MatView){d_out, 1, (size_t)out_dim}, (MatView){in, (size_t)in_dim, 1}, d_w,
         (size_t)in_dim, 1);
}

/* ===========================================================================
 * 3. The layers: each forward, then its backward
 *
 * A backward function receives dLoss/d(output) and adds dLoss/d(input) and
 * dLoss/d(weights) into its gradient arrays: "adds", because a tensor used
 * twice (the residual stream, a shared classifier, weights across
 * micro-batches) collects the sum of its gradients.
 * =========================================================================*/

/* --- e^x, vectorizable ----------------------------------------------------
 * Softmax, cross-entropy and SwiGLU take tens of millions of exponentials a
 * step. libm's expf() is a function call per number; this one is inline
 * arithmetic, so a loop of them becomes SIMD code (16 at a time with
 * AVX-512). The classic method: e^x = 2^k e^r with k = round(x log2 e) and
 * r = x - k ln 2 in [-0.35, 0.35]; e^r from a degree-7 polynomial (Cephes'
 * expf coefficients); 2^k written straight into a float's exponent bits.
 * Adding 1.5 * 2^23 rounds x log2 e to an integer and leaves that integer in
 * the low bits of the float. Within 1.4 ulp of e^x (measured over
 * [-87, 88]); x is clamped to [-87, 88], so e^x never overflows to inf or
 * underflows to a denormal: beyond, the result is ~1.6e-38 or ~1.7e38. */
static inline float expf_simd(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    union { float f; int32_t i; } t, two_k;
    t.f = x * 1.44269504f + 12582912.0f;   /* 12582912 = 1.5 * 2^23 */
    float k = t.f - 12582912.0f;
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;   /* ln 2 in two parts: exact k * (first part) */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* k + 127 in the exponent field. Shifted as unsigned: for x = NaN, t.i
     * is not a small integer and a signed shift or product could overflow
     * (undefined behaviour); p is NaN then anyway, so the result is NaN. */
    two_k.i = (int32_t)((uint32_t)(t.i - 0x4B400000 + 127) << 23);
    return p * two_k.f;
}

/* softmax of x[0..n) in place: run.c's softmax(), with expf_simd so that
 * the loops vectorize. */
void softmax_simd(float *x, int n) {
    float max = x[0], sum = 0.0f;
    for (int i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    #pragma omp simd reduction(+:sum)
    for (int i = 0; i < n; i++) {
        x[i] = expf_simd(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* --- embedding: resid[n] = token_embedding[token n] --------------------- */

void embedding_forward(float *out, const int *tokens, const float *table, size_t N, int dim) {
    for (size_t n = 0; n < N; n++)
        memcpy(out + n * dim, table + (size_t)tokens[n] * dim, (size_t)dim * sizeof(float));
}

/* The forward copied a row, so the row's gradient is the copy's gradient;
 * a token that appears several times collects the sum. Rows in order, on
 * one thread: the sums are deterministic. */
void embedding_backward(float *d_table, const float *d_out, const int *tokens, size_t N, int dim) {
    for (size_t n = 0; n < N; n++) {
        float *row = d_table + (size_t)tokens[n] * dim;
        const float *d = d_out + n * dim;
        #pragma omp simd
        for (int i = 0; i < dim; i++) row[i] += d[i];
    }
}

/* --- RMSNorm: y_i = w_i * r * x_i, r = 1 / sqrt(mean_j(x_j²) + eps) ------
 * The forward keeps r (rstd) for each row, for the backward. The float
 * expressions are run.c's rmsnorm(). */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, size_t N, int dim,
                            float eps) {
    #pragma omp parallel for schedule(static) if (N * dim >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *xn = x + n * dim;
        float *o = out + n * dim;
        float ss = 0.0f;
        #pragma omp simd reduction(+:ss)
        for (int i = 0; i < dim; i++) ss += xn[i] * xn[i];
        float r = 1.0f / sqrtf(ss / (float)dim + eps);
        rstd[n] = r;
        for (int i = 0; i < dim; i++) o[i] = w[i] * (r * xn[i]);
    }
}

/* Backward. r depends on every x_j: dr/dx_j = -r³ x_j / dim. So
 *     dx_j = Σ_i dy_i ∂y_i/∂x_j = Σ_i dy_i w_i (r δ_ij + x_i dr/dx_j)
 *          = r w_j dy_j - (r³ / dim) x_j Σ_i dy_i w_i x_i
 *     dw_i = Σ_rows dy_i r x_i
 * dx is added to d_x (the residual stream's gradient). The gain's gradient
 * sums over rows: each thread owns a slice of columns and adds the rows in
 * order, so the sum is deterministic. */
void rmsnorm_backward(float *d_x, float *d_w, const float *d_out, const float *x, const float *w,
                             const float *rstd, size_t N, int dim) {
    /* EXERCISE rmsnorm-backward BEGIN */
    #pragma omp parallel for schedule(static) if (N * dim >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *xn = x + n * dim, *dy = d_out + n * dim;
        float *dx = d_x + n * dim;
        float r = rstd[n], dot = 0.0f;
        #pragma omp simd reduction(+:dot)
        for (int i = 0; i < dim; i++) dot += dy[i] * w[i] * xn[i];
        float c = r * r * r * dot / (float)dim;
        #pragma omp simd
        for (int i = 0; i < dim; i++) dx[i] += r * w[i] * dy[i] - c * xn[i];
    }
    int chunks = (dim + 15) / 16;
    #pragma omp parallel for schedule(static) if (N * dim >= PARALLEL_MIN)
    for (int chunk = 0; chunk < chunks; chunk++) {
        int lo = chunk * 16, hi = lo + 16 < dim ? lo + 16 : dim;
        for (size_t n = 0; n < N; n++) {
            const float *xn = x + n * dim, *dy = d_out + n * dim;
            for (int i = lo; i < hi; i++) d_w[i] += dy[i] * rstd[n] * xn[i];
        }
    }
    /* EXERCISE rmsnorm-backward END */
}

/* --- RoPE: rotate each pair (v[2i], v[2i+1]) of every head by the angle
 * pos * freq_i. The forward is run.c's rope(), on every row, with run.c's
 * tables; row n of a batch is position n % T. */
void rope_forward(float *vec, size_t N, int T, int n_heads, int head_dim, int stride,
                         const float *cos_table, const float *sin_table) {
    size_t half = (size_t)head_dim / 2;
    #pragma omp parallel for schedule(static) if (N * stride >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        size_t pos = n % (size_t)T;
        rope(vec + n * stride, n_heads, head_dim, cos_table + pos * half, sin_table + pos * half);
    }
}

/* The forward was y = R x with R a rotation of each pair by angle a:
 *     y0 = x0 cos a - x1 sin a,  y1 = x0 sin a + x1 cos a.
 * A rotation's inverse is its transpose, so dx = Rᵀ dy, a rotation by -a:
 *     dx0 = dy0 cos a + dy1 sin a,  dx1 = -dy0 sin a + dy1 cos a.
 * In place: the gradient array holds dy on entry and dx on exit. */
void rope_backward(float *d_vec, size_t N, int T, int n_heads, int head_dim, int stride,
                          const float *cos_table, const float *sin_table) {
    size_t half = (size_t)head_dim / 2;
    #pragma omp parallel for schedule(static) if (N * stride >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        size_t pos = n % (size_t)T;
        const float *cs = cos_table + pos * half, *sn = sin_table + pos * half;
        for (int h = 0; h < n_heads; h++) {
            float *d = d_vec + n * stride + (size_t)h * head_dim;
            for (size_t i = 0; i < half; i++) {
                float d0 = d[2 * i], d1 = d[2 * i + 1];
                d[2 * i] = d0 * cs[i] + d1 * sn[i];
                d[2 * i + 1] = -d0 * sn[i] + d1 * cs[i];
            }
        }
    }
}

/* --- causal grouped-query attention --------------------------------------
 * For each sequence b and query head h, reading kv head g = h / kv_mul
 * (grouped-query attention: kv_mul query heads share one key/value head),
 * with Q, K, V the (T, head_dim) slices of that head:
 *     S = Q Kᵀ / sqrt(head_dim)              (T, T) scores, row t = query t
 *     P = softmax of each row over u <= t     (causal: no looking ahead)
 *     O = P V                                 (T, head_dim)
 * P is kept (in att) for the backward. run.c computes the same one query at
 * a time against its KV cache; here all T queries go at once, so S and O are
 * matrix products — gemm's, run on one thread per (b, h), with the causal
 * shapes that skip the zero half. The (b, h) pairs are shared among the
 * threads. */
typedef struct {
    int B, T, n_heads, n_kv_heads, head_dim;
} AttShape;

/* Per-thread scratch of the attention products, grown on demand (called
 * from the main thread). Each thread gets packing buffers and a (T, T)
 * matrix. */
static struct {
    float *memory;
    size_t size;
} att_scratch;

size_t att_scratch_floats(AttShape s) {
    int n = s.T > s.head_dim ? s.T : s.head_dim;
    return PACK_A_FLOATS + pack_b_floats(n) + (size_t)s.T * s.T;
}

void free_scratch(void) {
    gemm_free_buffers();
    free(att_scratch.memory);
    memset(&att_scratch, 0, sizeof att_scratch);
}

float *attention_scratch(AttShape s) {
    size_t need = att_scratch_floats(s) * (size_t)max_threads();
    if (att_scratch.size < need) {
        free(att_scratch.memory);
        att_scratch.memory = xmalloc(need * sizeof(float));
        att_scratch.size = need;
    }
    return att_scratch.memory;
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                              AttShape s) {
    int T = s.T, hd = s.head_dim, kv_mul = s.n_heads / s.n_kv_heads;
    size_t q_dim = (size_t)s.n_heads * hd, kv_dim = (size_t)s.n_kv_heads * hd, per_thread = att_scratch_floats(s);
    float scale = 1.0f / sqrtf((float)hd), *scratch = attention_scratch(s);
    #pragma omp parallel for collapse(2) schedule(static) \
        if ((size_t)s.B * s.n_heads * T * T * hd >= PARALLEL_MIN)
    for (int b = 0; b < s.B; b++) {
        for (int h = 0; h < s.n_heads; h++) {
            float *mine = scratch + (size_t)thread_num() * per_thread;
            PackBuffers buf = {mine, mine + PACK_A_FLOATS};
            const float *qh = q + (size_t)b * T * q_dim + (size_t)h * hd;
            const float *kg = k + (size_t)b * T * kv_dim + (size_t)(h / kv_mul) * hd;
            const float *vg = v + (size_t)b * T * kv_dim + (size_t)(h / kv_mul) * hd;
            float *p = att + ((size_t)b * s.n_heads + h) * T * T, *o = out + (size_t)b * T * q_dim + (size_t)h * hd;
            /* S = Q Kᵀ: K read transposed, the lower triangle only */
            gemm_core(T, T, hd, (MatView){qh, q_dim, 1}, (MatView){kg, 1, kv_dim}, p, (size_t)T, LOWER, 0, 1, buf);
            for (int t = 0; t < T; t++) {
                float *row = p + (size_t)t * T;
                for (int u = 0; u <= t; u++) row[u] *= scale;
                softmax_simd(row, t + 1);
                for (int u = t + 1; u < T; u++) row[u] = 0.0f;
            }
            /* O = P V, each row summing over u <= t only */
            gemm_core(T, hd, T, (MatView){p, (size_t)T, 1}, (MatView){vg, kv_dim, 1}, o, q_dim, K_UPTO_ROW, 0, 1,
                      buf);
        }
    }
}

/* Backward, from dO = dLoss/dO, in reverse order (the same equations as
 * plain loops, one row at a time: attention_backward_reference() below):
 *   O = P V          ->  dV = Pᵀ dO,   dP = dO Vᵀ
 *   P = softmax(S)   ->  dS = P ⊙ (dP - rowsum(P ⊙ dP))
 *                        (row by row: the softmax Jacobian is diag(p) - p pᵀ)
 *   S = Q Kᵀ * c     ->  dQ = dS K * c,  dK = dSᵀ Q * c    (c = 1/sqrt(head_dim))
 * The kv_mul query heads of a group all add into the same dK and dV, so a
 * thread takes a whole group (b, g): no two threads write the same rows, and
 * the heads are added in a fixed order. d_q, d_k, d_v are overwritten. */
void attention_backward(float *d_q, float *d_k, float *d_v, const float *d_out, const float *att,
                               const float *q, const float *k, const float *v, AttShape s) {
    /* EXERCISE attention-backward BEGIN */
    int T = s.T, hd = s.head_dim, kv_mul = s.n_heads / s.n_kv_heads;
    size_t q_dim = (size_t)s.n_heads * hd, kv_dim = (size_t)s.n_kv_heads * hd, per_thread = att_scratch_floats(s);
    float scale = 1.0f / sqrtf((float)hd), *scratch = attention_scratch(s);
    #pragma omp parallel for collapse(2) schedule(static) \
        if ((size_t)s.B * s.n_heads * T * T * hd >= PARALLEL_MIN)
    for (int b = 0; b < s.B; b++) {
        for (int g = 0; g < s.n_kv_heads; g++) {
            float *mine = scratch + (size_t)thread_num() * per_thread;
            PackBuffers buf = {mine, mine + PACK_A_FLOATS};
            float *ds = buf.b + pack_b_floats(T > hd ? T : hd);   /* (T, T): dP, then dS */
            const float *kg = k + (size_t)b * T * kv_dim + (size_t)g * hd;
            const float *vg = v + (size_t)b * T * kv_dim + (size_t)g * hd;
            float *dkg = d_k + (size_t)b * T * kv_dim + (size_t)g * hd;
            float *dvg = d_v + (size_t)b * T * kv_dim + (size_t)g * hd;
            for (int t = 0; t < T; t++) {
                memset(dkg + (size_t)t * kv_dim, 0, (size_t)hd * sizeof(float));
                memset(dvg + (size_t)t * kv_dim, 0, (size_t)hd * sizeof(float));
            }
            for (int h = g * kv_mul; h < (g + 1) * kv_mul; h++) {
                const float *p = att + ((size_t)b * s.n_heads + h) * T * T;
                const float *qh = q + (size_t)b * T * q_dim + (size_t)h * hd;
                const float *doh = d_out + (size_t)b * T * q_dim + (size_t)h * hd;
                float *dqh = d_q + (size_t)b * T * q_dim + (size_t)h * hd;
                /* dV += Pᵀ dO: row u of Pᵀ is nonzero from t = u on */
                gemm_core(T, hd, T, (MatView){p, 1, (size_t)T}, (MatView){doh, q_dim, 1}, dvg, kv_dim, K_FROM_ROW, 1,
                          1, buf);
                /* dP = dO Vᵀ, lower triangle */
                gemm_core(T, T, hd, (MatView){doh, q_dim, 1}, (MatView){vg, 1, kv_dim}, ds, (size_t)T, LOWER, 0, 1,
                          buf);
                for (int t = 0; t < T; t++) {   /* dS, with the scale of S folded in */
                    const float *pt = p + (size_t)t * T;
                    float *dt = ds + (size_t)t * T, dot = 0.0f;
                    for (int u = 0; u <= t; u++) dot += pt[u] * dt[u];
                    for (int u = 0; u <= t; u++) dt[u] = pt[u] * (dt[u] - dot) * scale;
                    for (int u = t + 1; u < T; u++) dt[u] = 0.0f;
                }
                /* dQ = dS K */
                gemm_core(T, hd, T, (MatView){ds, (size_t)T, 1}, (MatView){kg, kv_dim, 1}, dqh, q_dim, K_UPTO_ROW,
                          0, 1, buf);
                /* dK += dSᵀ Q */
                gemm_core(T, hd, T, (MatView){ds, 1, (size_t)T}, (MatView){qh, q_dim, 1}, dkg, kv_dim, K_FROM_ROW,
                          1, 1, buf);
            }
        }
    }
    /* EXERCISE attention-backward END */
}

/* attention_backward as plain loops, one query row t at a time (as llm.c's
 * attention_backward reads): the same equations, without the matrix
 * products, the packing or the threads. It is slow; the tests check that
 * attention_backward() equals it, and it is the one to read first.
 * d_q, d_k, d_v are overwritten. */
void attention_backward_reference(float *d_q, float *d_k, float *d_v, const float *d_out, const float *att,
                                  const float *q, const float *k, const float *v, AttShape s) {
    int T = s.T, hd = s.head_dim, kv_mul = s.n_heads / s.n_kv_heads;
    size_t q_dim = (size_t)s.n_heads * hd, kv_dim = (size_t)s.n_kv_heads * hd;
    float scale = 1.0f / sqrtf((float)hd);
    memset(d_q, 0, (size_t)s.B * T * q_dim * sizeof(float));
    memset(d_k, 0, (size_t)s.B * T * kv_dim * sizeof(float));
    memset(d_v, 0, (size_t)s.B * T * kv_dim * sizeof(float));
    float *d_p = xmalloc((size_t)T * sizeof(float));   /* dP of one row */
    for (int b = 0; b < s.B; b++) {
        for (int h = 0; h < s.n_heads; h++) {
            size_t g = (size_t)(h / kv_mul);
            for (int t = 0; t < T; t++) {
                const float *p = att + (((size_t)b * s.n_heads + h) * T + t) * T;   /* P[t][0..t] */
                const float *qt = q + ((size_t)b * T + t) * q_dim + (size_t)h * hd;
                const float *d_ot = d_out + ((size_t)b * T + t) * q_dim + (size_t)h * hd;
                float *dqt = d_q + ((size_t)b * T + t) * q_dim + (size_t)h * hd;
                /* O[t] = sum_u P[t][u] V[u]  ->  dP[u] = dO[t] . V[u],  dV[u] += P[t][u] dO[t] */
                for (int u = 0; u <= t; u++) {
                    const float *vu = v + ((size_t)b * T + u) * kv_dim + g * hd;
                    float *dvu = d_v + ((size_t)b * T + u) * kv_dim + g * hd;
                    float sum = 0.0f;
                    for (int d = 0; d < hd; d++) {
                        sum += d_ot[d] * vu[d];
                        dvu[d] += p[u] * d_ot[d];
                    }
                    d_p[u] = sum;
                }
                /* P[t] = softmax(S[t])  ->  dS[u] = P[t][u] (dP[u] - sum_w P[t][w] dP[w]) */
                float mean = 0.0f;
                for (int u = 0; u <= t; u++) mean += p[u] * d_p[u];
                /* S[t][u] = Q[t] . K[u] * scale  ->  dQ[t] += dS[u] K[u] scale,  dK[u] += dS[u] Q[t] scale */
                for (int u = 0; u <= t; u++) {
                    float d_s = p[u] * (d_p[u] - mean) * scale;
                    const float *ku = k + ((size_t)b * T + u) * kv_dim + g * hd;
                    float *dku = d_k + ((size_t)b * T + u) * kv_dim + g * hd;
                    for (int d = 0; d < hd; d++) {
                        dqt[d] += d_s * ku[d];
                        dku[d] += d_s * qt[d];
                    }
                }
            }
        }
    }
    free(d_p);
}

/* --- SwiGLU: hs = silu(h1) * h3, silu(x) = x σ(x), σ(x) = 1 / (1 + e^-x) -- */

void swiglu_forward(float *out, const float *h1, const float *h3, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) out[i] = h1[i] / (1.0f + expf_simd(-h1[i])) * h3[i];
}

/* Backward. The product rule, with silu'(x) = σ(x) + x σ(x)(1 - σ(x))
 *                                            = σ(x) (1 + x (1 - σ(x))):
 *     dh3 = dhs * silu(h1),   dh1 = dhs * h3 * silu'(h1)
 * d_h1 holds dhs on entry (so no extra array) and dh1 on exit. */
void swiglu_backward(float *d_h1, float *d_h3, const float *h1, const float *h3, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = h1[i], sig = 1.0f / (1.0f + expf_simd(-x)), d = d_h1[i];
        d_h3[i] = d * x * sig;
        d_h1[i] = d * h3[i] * sig * (1.0f + x * (1.0f - sig));
    }
}

/* --- cross-entropy: loss_n = -log softmax(logits_n)[target_n] -------------
 * computed as log Σ_i e^(x_i - max) + max - x_target, which cannot overflow.
 * The logits are replaced by the probabilities, which the backward needs. */
void crossentropy_forward(float *losses, float *logits, const int *targets, size_t N, int V) {
    /* EXERCISE crossentropy BEGIN */
    #pragma omp parallel for schedule(static) if (N * V >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        float *x = logits + n * (size_t)V;
        float max = x[0];
        for (int i = 1; i < V; i++) max = x[i] > max ? x[i] : max;
        float target_logit = x[targets[n]], sum = 0.0f;
        #pragma omp simd reduction(+:sum)
        for (int i = 0; i < V; i++) {
            x[i] = expf_simd(x[i] - max);
            sum += x[i];
        }
        losses[n] = logf(sum) + max - target_logit;
        float inv = 1.0f / sum;
        #pragma omp simd
        for (int i = 0; i < V; i++) x[i] *= inv;
    }
    /* EXERCISE crossentropy END */
}

/* The mean loss over N positions, each divided by `scale`'s denominator:
 * dLoss/dlogit_i = (p_i - [i == target]) * scale, the classic softmax +
 * cross-entropy gradient (the exp and the log cancel). scale is
 * 1 / (positions in the optimizer step), so the step's gradient is that of
 * the mean loss. The probabilities become the gradient, in place. */
void crossentropy_backward(float *probs, const int *targets, size_t N, int V, float scale) {
    /* EXERCISE crossentropy BEGIN */
    #pragma omp parallel for schedule(static) if (N * V >= PARALLEL_MIN)
    for (size_t n = 0; n < N; n++) {
        float *p = probs + n * (size_t)V;
        p[targets[n]] -= 1.0f;
        #pragma omp simd
        for (int i = 0; i < V; i++) p[i] *= scale;
    }
    /* EXERCISE crossentropy END */
}

/* ===========================================================================
 * 4. The model: forward, and backward in reverse order
 * =========================================================================*/

/* The logits of B sequences of T tokens, inputs (B*T) as in run.c, into
 * acts.logits. With targets, also the cross-entropy: the logits become
 * probabilities and the mean loss is returned (else 0). The activations the
 * backward needs stay in m->acts. */
float model_forward(Model *m, const int *inputs, const int *targets, int B) {
    const Config *c = &m->config;
    const Params *w = &m->params;
    Activations *a = &m->acts;
    int T = c->seq_len, dim = c->dim, hidden = c->hidden_dim, V = c->vocab_size;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    size_t N = (size_t)B * T, ND = N * dim;
    AttShape shape = {B, T, c->n_heads, c->n_kv_heads, c->head_dim};
    const float *cos_t = m->rope_cos, *sin_t = m->rope_sin;
    if (B > m->batch_size) fatal("internal: batch %d larger than allocated %d", B, m->batch_size);
    for (size_t n = 0; n < N; n++)
        if (inputs[n] < 0 || inputs[n] >= V) fatal("token id %d is not below vocab_size %d", inputs[n], V);
    memcpy(a->inputs, inputs, N * sizeof(int));

    embedding_forward(a->resid, inputs, w->token_embedding, N, dim);
    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        const float *x = a->resid + l * ND;
        float *att_in = a->att_in + l * ND, *q = a->q + l * N * q_dim, *k = a->k + l * N * kv_dim;
        float *v = a->v + l * N * kv_dim, *att_out = a->att_out + l * N * q_dim;
        float *mid = a->resid_mid + l * ND, *ffn_in = a->ffn_in + l * ND;
        float *h1 = a->h1 + l * N * hidden, *h3 = a->h3 + l * N * hidden, *hs = a->hs + l * N * hidden;
        float *x_next = a->resid + (l + 1) * ND;

        /* attention block: mid = x + wo @ attention(rope(wq @ n), rope(wk @ n), wv @ n), n = rmsnorm(x) */
        rmsnorm_forward(att_in, a->att_rstd + l * N, x, w->rms_att_weight + l * dim, N, dim, c->norm_eps);
        matmul_forward(q, att_in, w->wq + l * q_dim * dim, N, dim, q_dim, 0);
        matmul_forward(k, att_in, w->wk + l * kv_dim * dim, N, dim, kv_dim, 0);
        matmul_forward(v, att_in, w->wv + l * kv_dim * dim, N, dim, kv_dim, 0);
        rope_forward(q, N, T, c->n_heads, c->head_dim, q_dim, cos_t, sin_t);
        rope_forward(k, N, T, c->n_kv_heads, c->head_dim, kv_dim, cos_t, sin_t);
        attention_forward(att_out, a->att + l * (size_t)B * c->n_heads * T * T, q, k, v, shape);
        memcpy(mid, x, ND * sizeof(float));   /* the residual: wo's product is added to it */
        matmul_forward(mid, att_out, w->wo + l * dim * q_dim, N, q_dim, dim, 1);

        /* feed-forward block: x_next = mid + w2 @ (silu(w1 @ n) * (w3 @ n)), n = rmsnorm(mid) */
        rmsnorm_forward(ffn_in, a->ffn_rstd + l * N, mid, w->rms_ffn_weight + l * dim, N, dim, c->norm_eps);
        matmul_forward(h1, ffn_in, w->w1 + l * hidden * dim, N, dim, hidden, 0);
        matmul_forward(h3, ffn_in, w->w3 + l * hidden * dim, N, dim, hidden, 0);
        swiglu_forward(hs, h1, h3, N * hidden);
        memcpy(x_next, mid, ND * sizeof(float));
        matmul_forward(x_next, hs, w->w2 + l * dim * hidden, N, hidden, dim, 1);
    }
    /* final norm and classifier */
    const float *x = a->resid + (size_t)c->n_layers * ND;
    rmsnorm_forward(a->final_out, a->final_rstd, x, w->rms_final_weight, N, dim, c->norm_eps);
    matmul_forward(a->logits, a->final_out, w->wcls, N, dim, V, 0);
    if (!targets) return 0.0f;

    for (size_t n = 0; n < N; n++)
        if (targets[n] < 0 || targets[n] >= V) fatal("token id %d is not below vocab_size %d", targets[n], V);
    memcpy(a->targets, targets, N * sizeof(int));
    crossentropy_forward(a->losses, a->logits, targets, N, V);
    double sum = 0.0;   /* in order, in double: the same mean every time */
    for (size_t n = 0; n < N; n++) sum += a->losses[n];
    return (float)(sum / (double)N);
}

/* Add the gradient of (the mean loss of the last forward) * loss_scale * N
 * to m->grads: with loss_scale = 1 / (positions per optimizer step), the
 * gradient of the step's mean loss. Every call of the forward, in reverse. */
void model_backward(Model *m, int B, float loss_scale) {
    const Config *c = &m->config;
    const Params *w = &m->params;
    Params *g = &m->grads;
    Activations *a = &m->acts;
    int T = c->seq_len, dim = c->dim, hidden = c->hidden_dim, V = c->vocab_size;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    size_t N = (size_t)B * T, ND = N * dim;
    AttShape shape = {B, T, c->n_heads, c->n_kv_heads, c->head_dim};
    const float *cos_t = m->rope_cos, *sin_t = m->rope_sin;

    /* classifier and final norm */
    crossentropy_backward(a->logits, a->targets, N, V, loss_scale);
    matmul_backward(a->d_norm, g->wcls, a->logits, a->final_out, w->wcls, N, dim, V, 0);
    memset(a->d_resid, 0, ND * sizeof(float));
    rmsnorm_backward(a->d_resid, g->rms_final_weight, a->d_norm, a->resid + (size_t)c->n_layers * ND,
                     w->rms_final_weight, a->final_rstd, N, dim);

    for (size_t l = (size_t)c->n_layers; l-- > 0;) {
        const float *x = a->resid + l * ND, *att_in = a->att_in + l * ND;
        const float *q = a->q + l * N * q_dim, *k = a->k + l * N * kv_dim, *v = a->v + l * N * kv_dim;
        const float *att_out = a->att_out + l * N * q_dim, *mid = a->resid_mid + l * ND;
        const float *ffn_in = a->ffn_in + l * ND;
        const float *h1 = a->h1 + l * N * hidden, *h3 = a->h3 + l * N * hidden, *hs = a->hs + l * N * hidden;

        /* feed-forward block, backward. x_next = mid + w2 @ hs: the residual
         * passes d_resid to mid unchanged; w2's backward gives d(hs). */
        matmul_backward(a->d_h1, g->w2 + l * dim * hidden, a->d_resid, hs, w->w2 + l * dim * hidden, N, hidden,
                        dim, 0);
        swiglu_backward(a->d_h1, a->d_h3, h1, h3, N * hidden);
        /* ffn_in feeds w1 and w3: its gradient is the sum of both */
        matmul_backward(a->d_norm, g->w1 + l * hidden * dim, a->d_h1, ffn_in, w->w1 + l * hidden * dim, N, dim,
                        hidden, 0);
        matmul_backward(a->d_norm, g->w3 + l * hidden * dim, a->d_h3, ffn_in, w->w3 + l * hidden * dim, N, dim,
                        hidden, 1);
        rmsnorm_backward(a->d_resid, g->rms_ffn_weight + l * dim, a->d_norm, mid, w->rms_ffn_weight + l * dim,
                         a->ffn_rstd + l * N, N, dim);

        /* attention block, backward. mid = x + wo @ att_out: d_resid now is
         * d(mid), passed on to x unchanged, and to att_out through wo. */
        matmul_backward(a->d_att_out, g->wo + l * dim * q_dim, a->d_resid, att_out, w->wo + l * dim * q_dim, N,
                        q_dim, dim, 0);
        attention_backward(a->d_q, a->d_k, a->d_v, a->d_att_out, a->att + l * (size_t)B * c->n_heads * T * T, q,
                           k, v, shape);
        rope_backward(a->d_q, N, T, c->n_heads, c->head_dim, q_dim, cos_t, sin_t);
        rope_backward(a->d_k, N, T, c->n_kv_heads, c->head_dim, kv_dim, cos_t, sin_t);
        /* att_in feeds wq, wk and wv: its gradient is the sum of all three */
        matmul_backward(a->d_norm, g->wq + l * q_dim * dim, a->d_q, att_in, w->wq + l * q_dim * dim, N, dim,
                        q_dim, 0);
        matmul_backward(a->d_norm, g->wk + l * kv_dim * dim, a->d_k, att_in, w->wk + l * kv_dim * dim, N, dim,
                        kv_dim, 1);
        matmul_backward(a->d_norm, g->wv + l * kv_dim * dim, a->d_v, att_in, w->wv + l * kv_dim * dim, N, dim,
                        kv_dim, 1);
        rmsnorm_backward(a->d_resid, g->rms_att_weight + l * dim, a->d_norm, x, w->rms_att_weight + l * dim,
                         a->att_rstd + l * N, N, dim);
    }
    embedding_backward(g->token_embedding, a->d_resid, a->inputs, N, dim);
}

/* Useful floating-point operations of one forward + backward over B
 * sequences: 2 per multiply-add of the matrix products and of causal
 * attention (q·k and p·v over the u <= t half only), times 3 (the backward
 * does twice the forward's products). Norms, softmax, SwiGLU and the
 * optimizer are left out: they are a small fraction and not multiply-adds. */
double training_flops(const Config *c, int B) {
    double T = c->seq_len, N = (double)B * T, dim = c->dim, hidden = c->hidden_dim;
    double q_dim = (double)c->n_heads * c->head_dim, kv_dim = (double)c->n_kv_heads * c->head_dim;
    double per_layer = 2.0 * N * (2.0 * dim * q_dim + 2.0 * dim * kv_dim + 3.0 * dim * hidden) +
                       2.0 * 2.0 * B * c->n_heads * (T * (T + 1) / 2.0) * c->head_dim;
    double forward = c->n_layers * per_layer + 2.0 * N * dim * c->vocab_size;
    return 3.0 * forward;
}

/* ===========================================================================
 * 5. The optimizer
 * =========================================================================*/

typedef struct {
    int batch_size;      /* B: sequences per micro-batch */
    int accum_steps;     /* micro-batches per optimizer step (gradient accumulation) */
    int max_steps;       /* optimizer steps in the whole run */
    int warmup_steps;    /* steps of linear warmup */
    float lr, min_lr;    /* peak learning rate; where the cosine ends */
    float weight_decay;  /* decoupled (AdamW) decay of the weight matrices */
    float beta1, beta2, adam_eps;
    float grad_clip;     /* clip the gradient's global norm to this; 0 = off */
    uint64_t seed;
} Hyper;

/* The allowed range of each hyper-parameter, as "lo, hi". The command-line
 * flags (section 9) and a training state read back by --resume (load_state)
 * are held to the same numbers: a state file comes from outside like any
 * other input, and one with accum_steps = 2^27 once overflowed the tokens
 * per step and trained for ever. */
#define RANGE_BATCH 1, 1 << 16
#define RANGE_ACCUM 1, 1 << 16
#define RANGE_STEPS 1, 1 << 30
#define RANGE_WARMUP 0, 1 << 30
#define RANGE_LR 0, 10
#define RANGE_WEIGHT_DECAY 0, 10
#define RANGE_BETA 0, 0.999999
#define RANGE_ADAM_EPS 1e-30, 1
#define RANGE_CLIP 0, 1e30
#define RANGE_VAL_FRACTION 0, 0.5

/* The learning rate of optimizer step `step` (0, 1, ..., max_steps - 1):
 * linear warmup reaching lr at the last warmup step, then a half cosine
 * from lr down to min_lr, reaching min_lr at the last step. */
float learning_rate(const Hyper *h, int step) {
    if (step < h->warmup_steps) return (float)((double)h->lr * (step + 1) / h->warmup_steps);
    double progress = (double)(step - h->warmup_steps + 1) / (double)(h->max_steps - h->warmup_steps);
    if (progress > 1.0) progress = 1.0;
    return (float)(h->min_lr + 0.5 * ((double)h->lr - h->min_lr) * (1.0 + cos(PI * progress)));
}

/* The gradient's global L2 norm: sqrt of the sum of squares of every
 * gradient element. Partial sums over fixed chunks, in double, added in
 * order: the same result for any number of threads. */
double grad_norm(const Model *m) {
    const size_t chunk = 1 << 14;
    const float *g = m->grads.token_embedding;
    size_t n = m->n_params, chunks = (n + chunk - 1) / chunk;
    double *partial = xmalloc(chunks * sizeof(double)), total = 0.0;
    #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t lo = ch * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        partial[ch] = s;
    }
    for (size_t ch = 0; ch < chunks; ch++) total += partial[ch];
    free(partial);
    return sqrt(total);
}

/* AdamW, step t (1, 2, ...) at learning rate lr, the arithmetic of
 * torch.optim.AdamW (PyTorch 2, default options), for every parameter p
 * with gradient g:
 *     p = p * (1 - lr * weight_decay)          decoupled weight decay
 *     m = beta1 m + (1 - beta1) g              first moment (mean)
 *     v = beta2 v + (1 - beta2) g²             second moment (uncentred variance)
 *     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * The two (1 - beta^t) are the bias corrections: m and v start at 0, so
 * early on they underestimate the averages by exactly these factors.
 * Weight decay applies to the weight matrices (the embedding and the
 * classifier included), not to the RMSNorm gains: decaying a gain pulls it
 * towards 0, which shrinks the signal rather than regularizing. */
void adamw_update(Model *m, const Hyper *h, float lr, int t) {
    /* EXERCISE adamw BEGIN */
    float beta1 = h->beta1, beta2 = h->beta2, eps = h->adam_eps;
    float step_size = (float)(lr / (1.0 - pow(h->beta1, t)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(h->beta2, t));
    for (int i = 0; i < N_TENSORS; i++) {
        float decay = is_matrix(i) ? (float)(1.0 - (double)lr * h->weight_decay) : 1.0f;
        float *p = m->params.tensor[i], *g = m->grads.tensor[i], *mm = m->m.tensor[i], *vv = m->v.tensor[i];
        size_t n = m->numel[i];
        #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
        for (size_t j = 0; j < n; j++) {
            float gj = g[j];
            mm[j] = beta1 * mm[j] + (1.0f - beta1) * gj;
            vv[j] = beta2 * vv[j] + (1.0f - beta2) * gj * gj;
            float pj = p[j] * decay;
            p[j] = pj - step_size * (mm[j] / (sqrtf(vv[j]) / bc2_sqrt + eps));
        }
    }
    /* EXERCISE adamw END */
}

/* ===========================================================================
 * 6. Data
 * =========================================================================*/

/* A stream of token ids. Documents follow one another, each starting with
 * BOS (TinyStories style), so the model learns where a text begins. */
typedef struct {
    int *ids;
    size_t n;
} TokenSet;

/* FNV-1a over the ids: the training state records it, so --resume can tell
 * that it is given the same data. */
uint64_t token_hash(const TokenSet *d) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < d->n; i++) {
        uint32_t x = (uint32_t)d->ids[i];
        for (int b = 0; b < 4; b++) { h ^= (x >> (8 * b)) & 0xff; h *= 0x100000001b3ull; }
    }
    return h;
}

int is_blank_line(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Tokenize a text into documents, each with BOS in front.
 * per_line = 0 ("blank"): a document is a run of non-blank lines; blank
 *   lines separate documents; newlines inside a document are text.
 * per_line = 1 ("line"): every non-blank line is a document. */
TokenSet tokenize_text(const Tokenizer *tok, const char *text, size_t len, int per_line, size_t *n_docs) {
    TokenSet d = {NULL, 0};
    size_t cap = 0;
    *n_docs = 0;
    size_t pos = 0;
    while (pos < len) {
        /* skip blank lines; the document starts at the next non-blank one */
        size_t eol = pos;
        while (eol < len && text[eol] != '\n') eol++;
        if (is_blank_line(text + pos, eol - pos)) { pos = eol + 1; continue; }
        size_t start = pos, end = eol;   /* the document is text[start, end) */
        pos = eol + 1;
        while (!per_line && pos < len) {
            size_t next = pos;
            while (next < len && text[next] != '\n') next++;
            if (is_blank_line(text + pos, next - pos)) break;
            end = next;
            pos = next + 1;
        }
        int n;
        int *ids = tokenizer_encode(tok, text + start, end - start, 1, 0, &n);
        if (d.n + (size_t)n > cap) {
            cap = (d.n + (size_t)n) * 2;
            d.ids = xrealloc(d.ids, cap * sizeof(int));
        }
        memcpy(d.ids + d.n, ids, (size_t)n * sizeof(int));
        d.n += (size_t)n;
        free(ids);
        (*n_docs)++;
    }
    return d;
}

/* --- token shards (docs/format.md, section 5) ---------------------------- */

#define SHARD_MAGIC "LTOK"
#define SHARD_VERSION 1u
#define SHARD_HEADER_SIZE 64

unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) fatal("%s is not a regular file", path);
    unsigned char *buf = xmalloc((size_t)st.st_size + 1);
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) fatal("cannot read %s", path);
    fclose(f);
    buf[st.st_size] = 0;
    *size = (size_t)st.st_size;
    return buf;
}

/* Load a data file: a shard if it starts with the shard magic, else text
 * (tokenized with tok). Every id must be below the vocabulary size. */
TokenSet load_tokens(const char *path, const Tokenizer *tok, int per_line) {
    size_t size;
    unsigned char *data = read_file(path, &size);
    if (size == 0) fatal("%s is empty: no text, no tokens", path);
    TokenSet d = {NULL, 0};
    if (size >= 4 && memcmp(data, SHARD_MAGIC, 4) == 0) {
        if (size < SHARD_HEADER_SIZE) fatal("%s: file ends inside the %d-byte shard header", path, SHARD_HEADER_SIZE);
        uint32_t version = read_u32(data + 4), width = read_u32(data + 8), vocab = read_u32(data + 12);
        uint64_t n = read_u64(data + 16);
        if (version != SHARD_VERSION)
            fatal("%s: shard version %u is not supported (this train.c reads %u)", path, version, SHARD_VERSION);
        if (width != 2 && width != 4) fatal("%s: token width %u bytes; a shard has 2 or 4", path, width);
        if (vocab != 0 && vocab != (uint32_t)tok->vocab_size)
            fatal("%s: the shard was made for a vocabulary of %u tokens, the tokenizer has %d", path, vocab,
                  tok->vocab_size);
        if (n > (size - SHARD_HEADER_SIZE) / width || SHARD_HEADER_SIZE + n * width != size)
            fatal("%s: file is %zu bytes but its header promises %llu tokens of %u bytes (truncated or corrupt)",
                  path, size, (unsigned long long)n, width);
        d.n = (size_t)n;
        d.ids = xmalloc((d.n ? d.n : 1) * sizeof(int));
        const unsigned char *ids = data + SHARD_HEADER_SIZE;
        for (size_t i = 0; i < d.n; i++) {
            uint32_t id = width == 2 ? (uint32_t)(ids[2 * i] | ids[2 * i + 1] << 8) : read_u32(ids + 4 * i);
            if (id >= (uint32_t)tok->vocab_size)
                fatal("%s: token %zu is id %u, not below the vocabulary size %d", path, i, id, tok->vocab_size);
            d.ids[i] = (int)id;
        }
    } else {
        size_t n_docs;
        d = tokenize_text(tok, (const char *)data, size, per_line, &n_docs);
        if (d.n == 0) fatal("%s has no text (only blank lines)", path);
    }
    free(data);
    return d;
}

/* B random windows of T + 1 consecutive tokens: inputs are the first T,
 * targets the last T (each position predicts the token after it). The
 * window start is uniform over all n - T starts (64 random bits, modulo). */
void next_batch(const TokenSet *d, int B, int T, uint64_t *rng, int *inputs, int *targets) {
    size_t starts = d->n - (size_t)T;
    for (int b = 0; b < B; b++) {
        uint64_t r = (uint64_t)random_u32(rng) << 32;
        r |= random_u32(rng);
        const int *w = d->ids + r % starts;
        memcpy(inputs + (size_t)b * T, w, (size_t)T * sizeof(int));
        memcpy(targets + (size_t)b * T, w + 1, (size_t)T * sizeof(int));
    }
}

/* ===========================================================================
 * 7. Files: the lamp checkpoint and the training state
 *
 * Both are written atomically: into PATH.tmp, flushed to the disk (fsync),
 * then renamed over PATH. A rename within a directory is atomic, so PATH is
 * always either the old complete file or the new complete file — a crash or
 * a full disk in the middle of a save never leaves a broken checkpoint.
 * =========================================================================*/

typedef struct {
    FILE *f;
    char *tmp;
    const char *path;
    size_t offset;   /* bytes written so far */
} AtomicFile;

AtomicFile atomic_open(const char *path) {
    AtomicFile a = {NULL, xmalloc(strlen(path) + 5), path, 0};
    sprintf(a.tmp, "%s.tmp", path);
    a.f = fopen(a.tmp, "wb");
    if (!a.f) fatal("cannot write %s: %s", a.tmp, strerror(errno));
    return a;
}

void atomic_write(AtomicFile *a, const void *data, size_t size) {
    if (size && fwrite(data, 1, size, a->f) != size) {
        int e = errno;
        fclose(a->f);
        unlink(a->tmp);
        fatal("cannot write %s: %s", a->tmp, strerror(e));
    }
    a->offset += size;
}

void atomic_pad(AtomicFile *a, size_t alignment) {
    static const unsigned char zeros[64] = {0};
    atomic_write(a, zeros, align_up(a->offset, alignment) - a->offset);
}

void atomic_commit(AtomicFile *a) {
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0) {
        int e = errno;
        fclose(a->f);
        unlink(a->tmp);
        fatal("cannot write %s: %s", a->tmp, strerror(e));
    }
    if (fclose(a->f) != 0) { unlink(a->tmp); fatal("cannot write %s: %s", a->tmp, strerror(errno)); }
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        unlink(a->tmp);
        fatal("cannot rename %s to %s: %s", a->tmp, a->path, strerror(e));
    }
    /* make the rename itself durable: fsync the directory (best effort) */
    char *dir = xmalloc(strlen(a->path) + 2);
    strcpy(dir, a->path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = '\0';
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(dir);
    free(a->tmp);
}

void put_i32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }
void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
void put_f32(unsigned char *p, float v) { memcpy(p, &v, 4); }
void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* A lamp model file (docs/format.md, section 1): the 256-byte header, the
 * tokenizer, then the weights in file order, each at a multiple of 64 bytes. */
void save_lamp(const char *path, const Model *m, const Tokenizer *tok) {
    const Config *c = &m->config;
    AtomicFile a = atomic_open(path);
    unsigned char header[256] = {0};
    atomic_write(&a, header, sizeof header);   /* a placeholder until tokenizer_size is known */
    size_t tokenizer_size = tokenizer_write_lamp_section(tok, a.f);
    a.offset += tokenizer_size;
    for (int i = 0; i < N_TENSORS; i++) {
        if (!m->numel[i]) continue;   /* a shared classifier is not stored twice */
        atomic_pad(&a, 64);
        atomic_write(&a, m->params.tensor[i], m->numel[i] * sizeof(float));
    }
    memcpy(header, "LAMP", 4);
    put_u32(header + 4, 1);
    put_i32(header + 8, c->dim);
    put_i32(header + 12, c->hidden_dim);
    put_i32(header + 16, c->n_layers);
    put_i32(header + 20, c->n_heads);
    put_i32(header + 24, c->n_kv_heads);
    put_i32(header + 28, c->head_dim);
    put_i32(header + 32, c->vocab_size);
    put_i32(header + 36, c->seq_len);
    put_f32(header + 40, c->rope_theta);
    put_f32(header + 44, c->norm_eps);
    put_i32(header + 48, c->bos_id);
    put_i32(header + 52, c->eos_id);
    put_u32(header + 56, c->shared_classifier ? 1u : 0u);   /* flags */
    put_u32(header + 60, 0);                                 /* weight type: float32 */
    put_u64(header + 72, (uint64_t)tokenizer_size);
    if (fseek(a.f, 0, SEEK_SET) != 0 || fwrite(header, 1, sizeof header, a.f) != sizeof header)
        fatal("cannot write the header of %s: %s", a.tmp, strerror(errno));
    atomic_commit(&a);
}

/* Read a model file run.c can read (lamp, or llama2.c version 0 or 1) with
 * run.c's own loader, and copy its weights into a new Model for batches of
 * B. Its tokenizer, if it has one, moves into *tok (returns 1). */
int load_model_file(Model *m, const char *path, int B, Tokenizer *tok) {
    Transformer t;
    build_transformer(&t, path);
    build_model(m, &t.config, B);
    const Weights *w = &t.weights;
    const float *src[N_TENSORS] = {w->token_embedding, w->rms_att_weight, w->wq, w->wk, w->wv, w->wo,
                                   w->rms_ffn_weight, w->w1, w->w2, w->w3, w->rms_final_weight, w->wcls};
    for (int i = 0; i < N_TENSORS; i++) {
        if (!m->numel[i]) continue;
        if (!src[i]) fatal("%s: quantized (int8) weights cannot be trained; give a float32 model", path);
        memcpy(m->params.tensor[i], src[i], m->numel[i] * sizeof(float));
    }
    int moved = 0;
    if (t.has_tokenizer && tok) {
        *tok = t.tokenizer;
        t.has_tokenizer = 0;
        moved = 1;
    }
    free_transformer(&t);
    return moved;
}

/* --- the training state --------------------------------------------------
 * Everything needed to continue a run as if it had never stopped: the
 * model's shape and weights, the hyper-parameters, AdamW's moments, the step,
 * the training-window generator's state, which data it was trained on, and
 * the tokenizer. Layout (docs/training.md): a 256-byte header ("LTRS",
 * version, then the fields of state_header below), the tokenizer section,
 * then at the next multiple of 64 bytes the parameters, m and v, each
 * n_params float32 in lamp's tensor order. */

#define STATE_MAGIC "LTRS"
#define STATE_VERSION 1u

typedef struct {
    int step;              /* optimizer steps done */
    uint64_t train_rng;    /* the training-window generator, as it is now */
    uint64_t tokens_seen;  /* training tokens consumed so far */
} Progress;

/* Which data a run trains on: --resume checks it gets the same tokens. */
typedef struct {
    int per_line;          /* --docs: 1 = line, 0 = blank */
    float val_fraction;
    uint64_t train_n, train_hash, val_n, val_hash;
} DataId;

/* The header's fields, in order. One list both writes (save = 1) and reads
 * (save = 0) them, so the two can never disagree. Returns the bytes used. */
size_t state_header(unsigned char *h, int save, Config *c, Hyper *hp, Progress *pr, DataId *d,
                           uint64_t *tokenizer_size) {
    size_t off = 8;
#define FIELD(x)                                                           \
    do {                                                                   \
        if (save) memcpy(h + off, &(x), sizeof(x));                        \
        else memcpy(&(x), h + off, sizeof(x));                             \
        off += sizeof(x);                                                  \
    } while (0)
    FIELD(c->dim); FIELD(c->hidden_dim); FIELD(c->n_layers); FIELD(c->n_heads); FIELD(c->n_kv_heads);
    FIELD(c->head_dim); FIELD(c->vocab_size); FIELD(c->seq_len); FIELD(c->rope_theta); FIELD(c->norm_eps);
    FIELD(c->bos_id); FIELD(c->eos_id); FIELD(c->shared_classifier);
    FIELD(hp->batch_size); FIELD(hp->accum_steps); FIELD(hp->max_steps); FIELD(hp->warmup_steps);
    FIELD(hp->lr); FIELD(hp->min_lr); FIELD(hp->weight_decay); FIELD(hp->beta1); FIELD(hp->beta2);
    FIELD(hp->adam_eps); FIELD(hp->grad_clip); FIELD(hp->seed);
    FIELD(pr->step); FIELD(pr->train_rng); FIELD(pr->tokens_seen);
    FIELD(d->per_line); FIELD(d->val_fraction); FIELD(d->train_n); FIELD(d->train_hash); FIELD(d->val_n);
    FIELD(d->val_hash);
    FIELD(*tokenizer_size);
#undef FIELD
    return off;
}

void save_state(const char *path, Model *m, Hyper *hp, Progress *pr, DataId *d, const Tokenizer *tok) {
    AtomicFile a = atomic_open(path);
    unsigned char header[256] = {0};
    atomic_write(&a, header, sizeof header);
    uint64_t tokenizer_size = tokenizer_write_lamp_section(tok, a.f);
    a.offset += tokenizer_size;
    atomic_pad(&a, 64);
    atomic_write(&a, m->params.token_embedding, m->n_params * sizeof(float));
    atomic_write(&a, m->m.token_embedding, m->n_params * sizeof(float));
    atomic_write(&a, m->v.token_embedding, m->n_params * sizeof(float));
    memcpy(header, STATE_MAGIC, 4);
    put_u32(header + 4, STATE_VERSION);
    state_header(header, 1, &m->config, hp, pr, d, &tokenizer_size);
    if (fseek(a.f, 0, SEEK_SET) != 0 || fwrite(header, 1, sizeof header, a.f) != sizeof header)
        fatal("cannot write the header of %s: %s", a.tmp, strerror(errno));
    atomic_commit(&a);
}

/* A number read from a training state must lie where its flag's would. */
static void check_state_value(const char *path, const char *name, double value, double lo, double hi) {
    if (!(value >= lo && value <= hi))   /* written so that NaN fails too */
        fatal("%s: corrupt training state: %s is %.10g, outside %.10g..%.10g", path, name, value, lo, hi);
}

/* Load a training state: builds the model (weights and moments) and fills
 * the hyper-parameters, progress, data identity and tokenizer. Everything is
 * checked before it is used: magic, version, a sane shape, the exact size. */
void load_state(const char *path, Model *m, Hyper *hp, Progress *pr, DataId *d, Tokenizer *tok) {
    size_t size;
    unsigned char *data = read_file(path, &size);
    if (size < 256 || memcmp(data, STATE_MAGIC, 4) != 0)
        fatal("%s is not a lamp training state (no \"" STATE_MAGIC "\" magic)", path);
    uint32_t version = read_u32(data + 4);
    if (version != STATE_VERSION)
        fatal("%s: training state version %u is not supported (this train.c reads %u)", path, version, STATE_VERSION);
    Config c;
    uint64_t tokenizer_size;
    memset(&c, 0, sizeof c);
    state_header(data, 0, &c, hp, pr, d, &tokenizer_size);
    char why[160];
    if (check_config(&c, why, sizeof why)) fatal("%s: bad model shape in the training state: %s", path, why);
    check_state_value(path, "--batch", hp->batch_size, RANGE_BATCH);
    check_state_value(path, "--accum", hp->accum_steps, RANGE_ACCUM);
    check_state_value(path, "--steps", hp->max_steps, RANGE_STEPS);
    check_state_value(path, "--warmup", hp->warmup_steps, RANGE_WARMUP);
    check_state_value(path, "--lr", hp->lr, RANGE_LR);
    check_state_value(path, "--min-lr", hp->min_lr, 0, hp->lr);   /* main() refuses --min-lr above --lr */
    check_state_value(path, "--weight-decay", hp->weight_decay, RANGE_WEIGHT_DECAY);
    check_state_value(path, "--beta1", hp->beta1, RANGE_BETA);
    check_state_value(path, "--beta2", hp->beta2, RANGE_BETA);
    check_state_value(path, "--adam-eps", hp->adam_eps, RANGE_ADAM_EPS);
    check_state_value(path, "--clip", hp->grad_clip, RANGE_CLIP);
    check_state_value(path, "--val-fraction", d->val_fraction, RANGE_VAL_FRACTION);
    check_state_value(path, "the step", pr->step, 0, hp->max_steps);
    check_state_value(path, "--docs (0 = blank, 1 = line)", d->per_line, 0, 1);
    if (tokenizer_size < 12 || tokenizer_size > size - 256) fatal("%s: corrupt training state (tokenizer size)", path);
    size_t numel[N_TENSORS], n_params = 0;
    tensor_sizes(&c, numel);
    for (int i = 0; i < N_TENSORS; i++) n_params += numel[i];
    size_t weights_at = align_up(256 + (size_t)tokenizer_size, 64);
    if (size != weights_at + 3 * n_params * sizeof(float))
        fatal("%s: file is %zu bytes but its header implies %zu (truncated or corrupt)", path, size,
              weights_at + 3 * n_params * sizeof(float));
    tokenizer_load_lamp_section(tok, data + 256, (size_t)tokenizer_size, path);
    if (tok->vocab_size != c.vocab_size) fatal("%s: the tokenizer does not match vocab_size", path);
    tok->bos_id = c.bos_id;
    tok->eos_id = c.eos_id;
    build_model(m, &c, hp->batch_size);
    size_t bytes = n_params * sizeof(float);
    memcpy(m->params.token_embedding, data + weights_at, bytes);
    memcpy(m->m.token_embedding, data + weights_at + bytes, bytes);
    memcpy(m->v.token_embedding, data + weights_at + 2 * bytes, bytes);
    free(data);
    /* A NaN or inf in the weights or the Adam moments would turn every
     * later step into NaN (a run that diverged and was saved anyway). */
    const float *numbers[3] = {m->params.token_embedding, m->m.token_embedding, m->v.token_embedding};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n_params; i++)
            if (!isfinite(numbers[k][i]))
                fatal("%s: %s number %zu of %zu is not finite (inf or NaN): the run diverged or the file is corrupt",
                      path, k == 0 ? "weight" : "Adam moment", i, n_params);
}

/* --- shards --------------------------------------------------------------- */

/* Write ids as a token shard (docs/format.md, section 5): 16-bit ids when
 * the vocabulary fits, else 32-bit. */
void save_shard(const char *path, const TokenSet *d, int vocab_size) {
    AtomicFile a = atomic_open(path);
    unsigned char header[SHARD_HEADER_SIZE] = {0};
    uint32_t width = vocab_size <= 65536 ? 2 : 4;
    memcpy(header, SHARD_MAGIC, 4);
    put_u32(header + 4, SHARD_VERSION);
    put_u32(header + 8, width);
    put_u32(header + 12, (uint32_t)vocab_size);
    put_u64(header + 16, (uint64_t)d->n);
    atomic_write(&a, header, sizeof header);
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < d->n; i++) {
        uint32_t id = (uint32_t)d->ids[i];
        for (uint32_t b = 0; b < width; b++) buf[used++] = (unsigned char)(id >> (8 * b));   /* little-endian */
        if (used == sizeof buf) { atomic_write(&a, buf, used); used = 0; }
    }
    atomic_write(&a, buf, used);
    atomic_commit(&a);
}

/* ===========================================================================
 * 8. Training
 * =========================================================================*/

/* What happens once a step's gradient is complete: clip its global norm,
 * pick the learning rate, update with AdamW. `step` counts from 0. Returns
 * the learning rate; *norm_out gets the norm before clipping. Clipping is
 * torch.nn.utils.clip_grad_norm_'s: scale by clip / (norm + 1e-6) when that
 * is below 1. */
float optimizer_step(Model *m, const Hyper *h, int step, double *norm_out) {
    double norm = grad_norm(m);
    if (norm_out) *norm_out = norm;
    if (h->grad_clip > 0.0f) {
        float coef = (float)(h->grad_clip / (norm + 1e-6));
        if (coef < 1.0f) {
            float *g = m->grads.token_embedding;
            #pragma omp parallel for schedule(static) if (m->n_params >= PARALLEL_MIN)
            for (size_t i = 0; i < m->n_params; i++) g[i] *= coef;
        }
    }
    float lr = learning_rate(h, step);
    adamw_update(m, h, lr, step + 1);
    return lr;
}

/* One optimizer step: accum_steps micro-batches of B random windows, each
 * forward and backward, the gradients adding up; then the update. The loss
 * is averaged over the micro-batches, and each position's gradient is
 * scaled by 1 / (all positions of the step), so the step follows the
 * gradient of the mean loss whatever the accumulation. */
float train_step(Model *m, const Hyper *h, const TokenSet *train, Progress *pr, int *inputs, int *targets,
                        float *lr_out, double *norm_out) {
    int B = h->batch_size, T = m->config.seq_len;
    memset(m->grads.token_embedding, 0, m->n_params * sizeof(float));
    float scale = 1.0f / ((float)B * (float)T * (float)h->accum_steps);
    double loss = 0.0;
    for (int micro = 0; micro < h->accum_steps; micro++) {
        next_batch(train, B, T, &pr->train_rng, inputs, targets);
        loss += model_forward(m, inputs, targets, B);
        model_backward(m, B, scale);
    }
    float lr = optimizer_step(m, h, pr->step, norm_out);
    if (lr_out) *lr_out = lr;
    pr->step++;
    pr->tokens_seen += (uint64_t)B * T * h->accum_steps;
    return (float)(loss / h->accum_steps);
}

/* Mean loss on `iters` batches of validation windows. The windows come from
 * a generator seeded the same way every time, so successive evaluations
 * measure the same text and can be compared. */
float evaluate(Model *m, const TokenSet *val, int iters, int B, uint64_t seed, int *inputs, int *targets) {
    uint64_t rng = derive_seed(seed, STREAM_VAL);
    double sum = 0.0;
    for (int i = 0; i < iters; i++) {
        next_batch(val, B, m->config.seq_len, &rng, inputs, targets);
        sum += model_forward(m, inputs, targets, B);
    }
    return (float)(sum / iters);
}

/* A short text from the current weights, with run.c's forward() and
 * sampler (temperature 1, top-p 0.9): start at BOS, stop at BOS or EOS.
 * forward() needs a run state with its KV cache, for the sample only. */
void print_sample(Model *m, const Tokenizer *tok, int max_tokens, uint64_t seed) {
    const Config *c = &m->config;
    if (c->bos_id < 0) return;   /* nothing to start a text with */
    Sampler sampler;
    build_sampler(&sampler, c->vocab_size, 1.0f, 0.9f, 0, seed);
    malloc_run_state(&m->run);
    Utf8Printer printer = {0};
    int token = c->bos_id;
    for (int pos = 0; pos < max_tokens && pos < c->seq_len; pos++) {
        float *logits = forward(&m->run, token, pos);
        int next = sample(&sampler, logits);
        if (next == c->bos_id || next == c->eos_id) break;
        size_t len;
        const char *piece = tokenizer_decode(tok, token, next, &len);
        utf8_print(&printer, piece, len, stdout);
        token = next;
    }
    utf8_flush(&printer, stdout);
    putchar('\n');
    fflush(stdout);
    free_sampler(&sampler);
    free_run_state(&m->run.state);
}

/* ---------------------------------------------------------------------------
 * The command line
 * -------------------------------------------------------------------------*/
#ifndef TRAIN_NO_MAIN

typedef enum { OPT_INT, OPT_FLOAT, OPT_U64, OPT_STRING, OPT_FLAG } OptType;

typedef struct {
    const char *name;
    OptType type;
    void *value;      /* where the parsed value goes; its initial value is the default */
    double lo, hi;    /* the allowed range, for numbers */
    int in_state;     /* fixed by the training state: --resume refuses a new value */
    const char *help;
    int given;        /* set while parsing */
} Option;

/* All settings, with their defaults. */
static Config opt_model = {.dim = 288, .hidden_dim = 0, .n_layers = 6, .n_heads = 6, .n_kv_heads = 0,
                           .head_dim = 0, .seq_len = 256, .rope_theta = 10000.0f, .norm_eps = 1e-5f};
static Hyper opt_hyper = {.batch_size = 8, .accum_steps = 1, .max_steps = 2000, .warmup_steps = 100,
                          .lr = 5e-4f, .min_lr = 0.0f, .weight_decay = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f,
                          .adam_eps = 1e-8f, .grad_clip = 1.0f, .seed = 1337};
static const char *opt_data, *opt_val, *opt_tokenizer, *opt_docs = "blank", *opt_init, *opt_resume;
static const char *opt_out = "out";
static float opt_val_fraction = 0.05f;
static int opt_untied, opt_eval_every = 100, opt_eval_iters = 10, opt_sample_every = 500;
static int opt_sample_tokens = 100, opt_ckpt_every = 500, opt_stop_at, opt_threads;

static Option options[] = {
    /* the model */
    {"--dim", OPT_INT, &opt_model.dim, 2, 65536, 1, "width of the residual stream", 0},
    {"--n-layers", OPT_INT, &opt_model.n_layers, 1, 1024, 1, "transformer blocks", 0},
    {"--n-heads", OPT_INT, &opt_model.n_heads, 1, 1024, 1, "query heads", 0},
    {"--n-kv-heads", OPT_INT, &opt_model.n_kv_heads, 0, 1024, 1, "key/value heads, dividing n-heads; 0 = n-heads", 0},
    {"--head-dim", OPT_INT, &opt_model.head_dim, 0, 8192, 1, "width of a head, even; 0 = dim / n-heads", 0},
    {"--hidden-dim", OPT_INT, &opt_model.hidden_dim, 0, 1 << 20, 1,
     "SwiGLU width; 0 = 8 dim / 3 rounded up to a multiple of 32", 0},
    {"--seq-len", OPT_INT, &opt_model.seq_len, 1, 1 << 16, 1, "context length T: positions per training window", 0},
    {"--rope-theta", OPT_FLOAT, &opt_model.rope_theta, 1e-3, 1e12, 1, "RoPE base", 0},
    {"--norm-eps", OPT_FLOAT, &opt_model.norm_eps, 1e-12, 0.1, 1, "epsilon inside RMSNorm", 0},
    {"--untied", OPT_FLAG, &opt_untied, 0, 1, 1, "the classifier gets its own weights instead of the embedding's", 0},
    /* the data */
    {"--data", OPT_STRING, &opt_data, 0, 0, 0, "training data: a text file or a token shard (required)", 0},
    {"--val", OPT_STRING, &opt_val, 0, 0, 0, "validation data, text or shard; none = hold out the end of --data", 0},
    {"--val-fraction", OPT_FLOAT, &opt_val_fraction, RANGE_VAL_FRACTION, 1,
     "without --val: the share of --data held out; 0 = no validation", 0},
    {"--tokenizer", OPT_STRING, &opt_tokenizer, 0, 0, 1,
     "tokenizer.bin or lamp model (required unless --init has one)", 0},
    {"--docs", OPT_STRING, &opt_docs, 0, 0, 1,
     "a text's documents: runs of non-blank lines (blank) or lines (line)", 0},
    {"--init", OPT_STRING, &opt_init, 0, 0, 1,
     "start from this model (lamp or llama2.c file): its shape and weights", 0},
    /* the optimization */
    {"--batch", OPT_INT, &opt_hyper.batch_size, RANGE_BATCH, 1, "B: sequences per micro-batch", 0},
    {"--accum", OPT_INT, &opt_hyper.accum_steps, RANGE_ACCUM, 1,
     "micro-batches per optimizer step (gradient accumulation)", 0},
    {"--steps", OPT_INT, &opt_hyper.max_steps, RANGE_STEPS, 1, "optimizer steps", 0},
    {"--lr", OPT_FLOAT, &opt_hyper.lr, RANGE_LR, 1, "peak learning rate", 0},
    {"--min-lr", OPT_FLOAT, &opt_hyper.min_lr, RANGE_LR, 1, "learning rate at the last step; 0 = lr / 10", 0},
    {"--warmup", OPT_INT, &opt_hyper.warmup_steps, RANGE_WARMUP, 1, "steps of linear warmup", 0},
    {"--weight-decay", OPT_FLOAT, &opt_hyper.weight_decay, RANGE_WEIGHT_DECAY, 1, "AdamW decay of the weight matrices", 0},
    {"--beta1", OPT_FLOAT, &opt_hyper.beta1, RANGE_BETA, 1, "AdamW beta1", 0},
    {"--beta2", OPT_FLOAT, &opt_hyper.beta2, RANGE_BETA, 1, "AdamW beta2", 0},
    {"--adam-eps", OPT_FLOAT, &opt_hyper.adam_eps, RANGE_ADAM_EPS, 1, "AdamW epsilon", 0},
    {"--clip", OPT_FLOAT, &opt_hyper.grad_clip, RANGE_CLIP, 1, "clip the gradient's global norm to this; 0 = off", 0},
    {"--seed", OPT_U64, &opt_hyper.seed, 0, 0, 1, "random seed: initialization, windows, samples", 0},
    /* evaluation, output */
    {"--eval-every", OPT_INT, &opt_eval_every, 0, 1 << 30, 0, "validation loss every this many steps; 0 = never", 0},
    {"--eval-iters", OPT_INT, &opt_eval_iters, 1, 1 << 20, 0, "batches per validation", 0},
    {"--sample-every", OPT_INT, &opt_sample_every, 0, 1 << 30, 0,
     "print a generated text every this many steps; 0 = never", 0},
    {"--sample-tokens", OPT_INT, &opt_sample_tokens, 1, 1 << 20, 0, "longest sample, in tokens", 0},
    {"--ckpt-every", OPT_INT, &opt_ckpt_every, 0, 1 << 30, 0,
     "save the checkpoint every this many steps; 0 = only at the end", 0},
    {"--out", OPT_STRING, &opt_out, 0, 0, 0, "output directory: model.lamp, train.state, log.csv", 0},
    {"--resume", OPT_STRING, &opt_resume, 0, 0, 0,
     "continue the run saved in this train.state (give --data, --val again)", 0},
    {"--stop-at", OPT_INT, &opt_stop_at, 0, 1 << 30, 0,
     "stop after this step and save (continue with --resume); 0 = never", 0},
    {"--threads", OPT_INT, &opt_threads, 0, 1024, 0, "threads; 0 = all cores", 0},
};
#define N_OPTIONS ((int)(sizeof options / sizeof options[0]))

void print_usage(FILE *out) {
    fprintf(out,
            "usage: train --data FILE --tokenizer FILE [options]     train a model\n"
            "       train --resume OUT/train.state --data FILE       continue a run\n"
            "       train --tokenize IN OUT --tokenizer FILE         tokenize a text into a shard\n"
            "options (defaults in brackets):\n");
    for (int i = 0; i < N_OPTIONS; i++) {
        const Option *o = &options[i];
        char def[64];
        const char *arg = "";
        switch (o->type) {
        case OPT_INT: arg = " INT"; snprintf(def, sizeof def, "%d", *(int *)o->value); break;
        case OPT_FLOAT: arg = " FLOAT"; snprintf(def, sizeof def, "%g", *(float *)o->value); break;
        case OPT_U64: arg = " INT"; snprintf(def, sizeof def, "%llu", (unsigned long long)*(uint64_t *)o->value); break;
        case OPT_STRING:
            arg = strcmp(o->name, "--docs") == 0 ? " MODE" : strcmp(o->name, "--out") == 0 ? " DIR" : " FILE";
            snprintf(def, sizeof def, "%s", *(const char **)o->value ? *(const char **)o->value : "none");
            break;
        case OPT_FLAG: snprintf(def, sizeof def, "off"); break;
        }
        char left[40];
        snprintf(left, sizeof left, "%s%s", o->name, arg);
        fprintf(out, "  %-20s %s [%s]\n", left, o->help, def);
    }
    fprintf(out,
            "  --tokenize IN OUT    tokenize text file IN (with --tokenizer, --docs) into shard OUT, then exit\n"
            "  -h, --help           this help\n"
            "Progress goes to stderr, samples to stdout, a CSV log to OUT/log.csv.\n"
            "SIGINT/SIGTERM save the checkpoint and the state, then exit. docs/training.md explains more.\n");
}

/* Strict number parsing: the whole string must be a number in range. */
double parse_value(const Option *o, const char *text) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    int integer = o->type == OPT_INT;
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v) || v < o->lo || v > o->hi ||
        (integer && v != floor(v)))
    {
        if (integer)   /* "from 1 to 1073741824", not "1.07374e+09" */
            fatal("invalid value '%s' for %s: expected an integer from %.0f to %.0f", text, o->name, o->lo, o->hi);
        fatal("invalid value '%s' for %s: expected a number from %g to %g", text, o->name, o->lo, o->hi);
    }
    return v;
}

static const char *tokenize_in, *tokenize_out;

void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) { print_usage(stdout); exit(0); }
        if (!strcmp(arg, "--tokenize")) {
            if (i + 2 >= argc) fatal("--tokenize needs two values: the text file and the shard to write");
            tokenize_in = argv[++i];
            tokenize_out = argv[++i];
            continue;
        }
        Option *o = NULL;
        for (int j = 0; j < N_OPTIONS; j++)
            if (!strcmp(arg, options[j].name)) o = &options[j];
        if (!o) fatal("unknown option '%s'; -h for help", arg);
        if (o->given) fatal("option %s is given twice", arg);
        o->given = 1;
        if (o->type == OPT_FLAG) { *(int *)o->value = 1; continue; }
        if (i + 1 >= argc) fatal("option %s needs a value; -h for help", arg);
        const char *value = argv[++i];
        switch (o->type) {
        case OPT_INT: *(int *)o->value = (int)parse_value(o, value); break;
        case OPT_FLOAT: *(float *)o->value = (float)parse_value(o, value); break;
        case OPT_U64: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(value, &end, 10);
            if (value[0] == '-' || value[0] == '\0' || *end != '\0' || errno == ERANGE)
                fatal("invalid value '%s' for %s: expected an integer from 0 to 2^64-1", value, arg);
            *(uint64_t *)o->value = (uint64_t)v;
            break;
        }
        case OPT_STRING: *(const char **)o->value = value; break;
        case OPT_FLAG: break;
        }
    }
}

int given(const char *name) {
    for (int j = 0; j < N_OPTIONS; j++)
        if (!strcmp(options[j].name, name)) return options[j].given;
    return 0;
}

/* The model's shape from the flags and the tokenizer; derived defaults
 * filled in; an impossible shape is an error naming the problem. */
Config config_from_options(const Tokenizer *tok) {
    Config c = opt_model;
    if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
    if (c.head_dim == 0) {
        if (c.dim % c.n_heads != 0)
            fatal("impossible model shape: dim %d is not a multiple of n-heads %d (or give --head-dim)", c.dim,
                  c.n_heads);
        c.head_dim = c.dim / c.n_heads;
    }
    if (c.hidden_dim == 0) c.hidden_dim = (8 * c.dim / 3 + 31) / 32 * 32;
    c.vocab_size = tok->vocab_size;
    c.bos_id = tok->bos_id;
    c.eos_id = tok->eos_id;
    c.shared_classifier = !opt_untied;
    char why[160];
    if (check_config(&c, why, sizeof why)) fatal("impossible model shape: %s", why);
    return c;
}

/* --- the output directory and the CSV log -------------------------------- */

char *join_path(const char *dir, const char *name) {
    char *p = xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Make the output directory if needed and prove it is writable now, before
 * any training time is spent. */
void prepare_output(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (mkdir(dir, 0755) != 0) fatal("cannot create the output directory %s: %s", dir, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        fatal("output %s exists and is not a directory", dir);
    }
    char *probe = join_path(dir, ".write-test");
    FILE *f = fopen(probe, "wb");
    if (!f) fatal("cannot write in the output directory %s: %s", dir, strerror(errno));
    fclose(f);
    unlink(probe);
    free(probe);
}

/* Open the CSV log. A new run starts it; a resumed run keeps the rows up to
 * the step it resumes from (rows written after the last save of an
 * interrupted run are dropped: they are about to be redone). */
FILE *open_log(const char *path, int resume_step) {
    if (resume_step > 0) {
        size_t size;
        FILE *probe = fopen(path, "rb");
        char *old = NULL;
        if (probe) { fclose(probe); old = (char *)read_file(path, &size); }
        AtomicFile a = atomic_open(path);
        const char *header = "step,train_loss,val_loss,lr,tokens_per_s\n";
        atomic_write(&a, header, strlen(header));
        for (char *line = old ? strchr(old, '\n') : NULL; line && line[1];) {
            char *start = line + 1, *end = strchr(start, '\n');
            size_t len = end ? (size_t)(end - start) + 1 : strlen(start);
            if (atoi(start) <= resume_step) atomic_write(&a, start, len);
            line = end;
        }
        atomic_commit(&a);
        free(old);
    }
    FILE *f = fopen(path, resume_step > 0 ? "a" : "w");
    if (!f) fatal("cannot write %s: %s", path, strerror(errno));
    if (resume_step == 0) fprintf(f, "step,train_loss,val_loss,lr,tokens_per_s\n");
    return f;
}

/* --- signals: save, then exit --------------------------------------------- */

static volatile sig_atomic_t stop_signal = 0;

void on_signal(int sig) { stop_signal = sig; }

/* SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after the current step,
 * save, and exit. The handler is one-shot: a second Ctrl-C kills at once
 * (the checkpoint on disk is still whole: saves are atomic). */
void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void format_duration(char *buf, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
}

/* --tokenize IN OUT */
void tokenize_to_shard(void) {
    if (!opt_tokenizer) fatal("--tokenize needs --tokenizer FILE");
    Tokenizer tok;
    tokenizer_load_file(&tok, opt_tokenizer);
    size_t size;
    unsigned char *text = read_file(tokenize_in, &size);
    if (size == 0) fatal("%s is empty: no text to tokenize", tokenize_in);
    size_t n_docs;
    TokenSet d = tokenize_text(&tok, (const char *)text, size, strcmp(opt_docs, "line") == 0, &n_docs);
    if (d.n == 0) fatal("%s has no text (only blank lines)", tokenize_in);
    save_shard(tokenize_out, &d, tok.vocab_size);
    fprintf(stderr, "%s: %zu documents, %zu tokens (%.2f bytes per token) -> %s\n", tokenize_in, n_docs, d.n,
            (double)size / (double)d.n, tokenize_out);
    free(d.ids);
    free(text);
    tokenizer_free(&tok);
}

int main(int argc, char **argv) {
    wait_passively_by_default(argv);   /* run.c, section 11: threads that wait sleep */
    parse_args(argc, argv);
    if (strcmp(opt_docs, "blank") != 0 && strcmp(opt_docs, "line") != 0)
        fatal("invalid value '%s' for --docs: expected blank or line", opt_docs);
    if (tokenize_in) { tokenize_to_shard(); return 0; }
#ifdef _OPENMP
    if (opt_threads > 0) omp_set_num_threads(opt_threads);
#endif
    if (!opt_data) fatal("no training data: give --data FILE (a text file or a token shard); -h for help");

    Model m;
    Tokenizer tok;
    Hyper h;
    Progress pr = {0, 0, 0};
    DataId id = {0, 0.0f, 0, 0, 0, 0}, resumed_id = id;
    if (opt_resume) {
        for (int j = 0; j < N_OPTIONS; j++)
            if (options[j].given && options[j].in_state)
                fatal("%s cannot be changed when resuming: the training state fixes it", options[j].name);
        load_state(opt_resume, &m, &h, &pr, &resumed_id, &tok);
        id = resumed_id;
    } else {
        h = opt_hyper;
        if (!given("--min-lr")) h.min_lr = h.lr / 10.0f;
        if (h.min_lr > h.lr) fatal("--min-lr %g is above --lr %g", h.min_lr, h.lr);
        if (opt_init) {
            const char *shape[] = {"--dim", "--n-layers", "--n-heads", "--n-kv-heads", "--head-dim",
                                   "--hidden-dim", "--rope-theta", "--norm-eps", "--untied"};
            for (size_t j = 0; j < sizeof shape / sizeof shape[0]; j++)
                if (given(shape[j])) fatal("%s cannot be given with --init: the model file sets the shape", shape[j]);
            Tokenizer from_file;
            int has = load_model_file(&m, opt_init, h.batch_size, &from_file);
            if (opt_tokenizer) {
                if (has) tokenizer_free(&from_file);
                tokenizer_load_file(&tok, opt_tokenizer);
                if (tok.vocab_size != m.config.vocab_size)
                    fatal("%s has %d pieces but the model %s has vocab_size %d", opt_tokenizer, tok.vocab_size,
                          opt_init, m.config.vocab_size);
            } else if (has) {
                tok = from_file;
            } else {
                fatal("%s has no tokenizer inside: give --tokenizer FILE", opt_init);
            }
            tok.bos_id = m.config.bos_id;
            tok.eos_id = m.config.eos_id;
            if (given("--seq-len") && opt_model.seq_len != m.config.seq_len)
                fatal("--seq-len %d differs from the model's seq_len %d", opt_model.seq_len, m.config.seq_len);
        } else {
            if (!opt_tokenizer) fatal("no tokenizer: give --tokenizer FILE (a llama2.c tokenizer.bin or a lamp model)");
            tokenizer_load_file(&tok, opt_tokenizer);
            Config c = config_from_options(&tok);
            build_model(&m, &c, h.batch_size);
            init_weights(&m, h.seed);
        }
        pr.train_rng = derive_seed(h.seed, STREAM_TRAIN);
        id.per_line = strcmp(opt_docs, "line") == 0;
        id.val_fraction = opt_val ? 0.0f : opt_val_fraction;
    }
    const Config *c = &m.config;
    int T = c->seq_len, B = h.batch_size;

    /* the data */
    TokenSet all = load_tokens(opt_data, &tok, id.per_line), train = all, val = {NULL, 0};
    if (opt_val) {
        val = load_tokens(opt_val, &tok, id.per_line);
    } else if (id.val_fraction > 0.0f) {
        size_t n_val = (size_t)((double)all.n * id.val_fraction);
        train.n = all.n - n_val;
        val = (TokenSet){all.ids + train.n, n_val};
    }
    if (train.n < (size_t)T + 1)
        fatal("%s: %zu training tokens, fewer than one window of seq_len + 1 = %d; give more text or a smaller "
              "--seq-len", opt_data, train.n, T + 1);
    if (val.n > 0 && val.n < (size_t)T + 1)
        fatal("%zu validation tokens, fewer than one window of seq_len + 1 = %d; give --val FILE, a larger "
              "--val-fraction, or --val-fraction 0", val.n, T + 1);
    if (opt_resume) {
        if (train.n != resumed_id.train_n || token_hash(&train) != resumed_id.train_hash)
            fatal("%s is not the training data of the run in %s (%zu tokens; the run had %llu)", opt_data,
                  opt_resume, train.n, (unsigned long long)resumed_id.train_n);
        if (val.n != resumed_id.val_n || (val.n && token_hash(&val) != resumed_id.val_hash))
            fatal("the validation data differs from the run in %s (%zu tokens; the run had %llu)", opt_resume,
                  val.n, (unsigned long long)resumed_id.val_n);
    } else {
        id.train_n = train.n;
        id.train_hash = token_hash(&train);
        id.val_n = val.n;
        id.val_hash = val.n ? token_hash(&val) : 0;
    }

    prepare_output(opt_out);
    char *model_path = join_path(opt_out, "model.lamp"), *state_path = join_path(opt_out, "train.state");
    char *log_path = join_path(opt_out, "log.csv");
    FILE *log = open_log(log_path, pr.step);
    install_signal_handlers();

    double flops_per_step = training_flops(c, B) * h.accum_steps;
    fprintf(stderr,
            "model: dim %d, hidden %d, layers %d, heads %d, kv heads %d, head_dim %d, vocab %d, seq_len %d, "
            "%s classifier: %.2fM parameters\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, T,
            c->shared_classifier ? "shared" : "own", m.n_params / 1e6);
    fprintf(stderr, "data: %zu training tokens, %zu validation tokens; %d x %d x %d = %lld tokens per step, "
            "%.1f GFLOP per step, %d thread%s\n", train.n, val.n, B, T, h.accum_steps,
            (long long)B * T * h.accum_steps,
            flops_per_step / 1e9, max_threads(), max_threads() > 1 ? "s" : "");
    if (pr.step > 0) fprintf(stderr, "resuming at step %d of %d\n", pr.step, h.max_steps);

    int *inputs = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
    int tty = isatty(fileno(stderr)), start_step = pr.step;
    double start_time = time_now();
    while (pr.step < h.max_steps) {
        double t0 = time_now();
        float lr;
        float loss = train_step(&m, &h, &train, &pr, inputs, targets, &lr, NULL);
        double dt = time_now() - t0;
        int step = pr.step;
        /* NaN weights only make more NaN: stop here, before a checkpoint or
         * a sample is made of them (and the last good checkpoint is kept). */
        if (!isfinite(loss))
            fatal("training diverged at step %d: the loss is %g; try a lower --lr, or --clip", step, loss);
        double tokens_per_s = (double)B * T * h.accum_steps / dt;
        char eta[32];
        format_duration(eta, sizeof eta, (time_now() - start_time) / (step - start_step) * (h.max_steps - step));
        fprintf(stderr, "%sstep %d/%d | loss %.4f | lr %.2e | %.0f tok/s | %.1f GFLOP/s | ETA %s%s",
                tty ? "\r" : "", step, h.max_steps, loss, lr, tokens_per_s, flops_per_step / dt / 1e9, eta,
                tty ? "\033[K" : "\n");
        int last = step == h.max_steps;
        float val_loss = -1.0f;
        if (val.n > 0 && opt_eval_every > 0 && (step % opt_eval_every == 0 || last)) {
            val_loss = evaluate(&m, &val, opt_eval_iters, B, h.seed, inputs, targets);
            fprintf(stderr, "%sstep %d: val loss %.4f\n", tty ? "\n" : "", step, val_loss);
        }
        fprintf(log, "%d,%.6f,", step, loss);
        if (val_loss >= 0.0f) fprintf(log, "%.6f", val_loss);
        fprintf(log, ",%.6e,%.1f\n", lr, tokens_per_s);
        fflush(log);
        if (opt_sample_every > 0 && (step % opt_sample_every == 0 || last)) {
            if (tty) fputc('\n', stderr);
            printf("--- sample at step %d ---\n", step);
            print_sample(&m, &tok, opt_sample_tokens, derive_seed(h.seed, STREAM_SAMPLE) + (uint64_t)step);
        }
        int stopping = stop_signal || (step == opt_stop_at && !last);
        if (last || stopping || (opt_ckpt_every > 0 && step % opt_ckpt_every == 0)) {
            save_lamp(model_path, &m, &tok);
            save_state(state_path, &m, &h, &pr, &id, &tok);
        }
        if (stopping) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "stopped after step %d%s; saved %s and %s (continue with --resume %s)\n", step,
                    stop_signal == SIGINT ? " by SIGINT" : stop_signal == SIGTERM ? " by SIGTERM" : "", model_path,
                    state_path, state_path);
            break;
        }
    }
    int status = stop_signal ? 128 + stop_signal : 0;   /* the shell's convention for "killed by" */
    if (pr.step == h.max_steps) {
        if (tty) fputc('\n', stderr);
        fprintf(stderr, "done: %d steps, %.1f s; saved %s\n", pr.step, time_now() - start_time, model_path);
    }
    fclose(log);
    free(inputs);
    free(targets);
    free(model_path);
    free(state_path);
    free(log_path);
    free(all.ids);
    if (opt_val) free(val.ids);
    free_model(&m);
    tokenizer_free(&tok);
    free_scratch();
    return status;
}
#endif /* TRAIN_NO_MAIN */
