/* run.c — run a Llama-family language model, in one file of C.
 *
 * The file has three parts. Read Part I first: it is the whole model, as
 * plain math, and it runs on its own (`./run --reference`).
 *
 *   Part I   — the model, as math (the lesson)
 *     1. the configuration and the weights, with their shapes
 *     2. the run state: one position's activations and the KV cache
 *     3. the kernels: rmsnorm, matmul, RoPE, softmax, attention, SwiGLU
 *     4. forward(): one token in, the logits of the next one out
 *     5. the sampler: logits -> the next token
 *     6. generate: the loop that feeds each new token back in
 *   Part II  — making it fast: a prompt in chunks, a register-tiled matmul,
 *     a KV cache in blocks, int8 (Q8_0) weights and their SIMD kernels,
 *     threads. Each fast routine names the Part I routine it replaces, and
 *     tests/test_forward.c checks that both give the same numbers.
 *   Part III — files and the command line: the lamp and llama2.c readers
 *     and their checks, mmap, the chat and eval loops, main().
 *
 * The tokenizer (text <-> token ids) lives in tokenizer.c; the file formats
 * are specified byte by byte in docs/format.md; the architecture, equation
 * by equation, in docs/architecture.md; why the fast path is written the way
 * it is, with measurements, in docs/performance.md. The same forward pass in
 * numpy, a third view of the model, is lampfile.forward (lampfile.py).
 *
 * Everything here is plain C11 plus OpenMP pragmas: the pragmas spread the
 * big loops over the CPU cores and ask the compiler to use SIMD. Build with
 * `make`; without OpenMP (`make NO_OMP=1`) the same code runs on one core.
 *
 * train.c and the test suites include this file with RUN_NO_MAIN defined
 * (main() left out) and use its parts as they are; so the functions here are
 * not `static`, as in llama2.c: one left unused by an includer is no error. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tokenizer.h"
#include "util.h"

/* ###########################################################################
 * PART I — THE MODEL, AS MATH
 * #########################################################################*/

/* ===========================================================================
 * 1. Configuration and weights
 * =========================================================================*/

typedef struct {
    int dim;            /* width of the residual stream (the "model dimension") */
    int hidden_dim;     /* width of the SwiGLU feed-forward layer */
    int n_layers;       /* transformer blocks */
    int n_heads;        /* query heads */
    int n_kv_heads;     /* key/value heads; fewer than n_heads = grouped-query attention */
    int head_dim;       /* width of one head */
    int vocab_size;     /* number of tokens */
    int seq_len;        /* longest context the model was made for */
    float rope_theta;   /* RoPE base: 10000 in Llama 2 */
    float norm_eps;     /* epsilon inside RMSNorm */
    int bos_id, eos_id; /* beginning / end of sequence tokens, -1 if none */
    int shared_classifier; /* 1: the output classifier reuses the embedding table */
} Config;

/* An int8 matrix in "Q8_0" form (docs/format.md, 1.4): the values are cut
 * into groups of group_size consecutive numbers, and each group g has one
 * float scale, w[i] ~= q[i] * s[i / group_size]. One byte per weight instead
 * of four, so a memory-bound forward pass reads a quarter of the bytes. */
typedef struct {
    const int8_t *q;    /* (rows * cols) values in [-127, 127] */
    const float *s;     /* (rows * cols / group_size) scales */
} QMatrix;

/* Every weight is a pointer straight into the memory-mapped file: loading a
 * model copies nothing. Matrices are (out, in), row-major. Below,
 * q_dim = n_heads * head_dim and kv_dim = n_kv_heads * head_dim.
 *
 * A float32 file fills the float pointers. An int8 file (lamp weight type 1,
 * llama2.c version 2) fills the q_ fields instead and leaves the float
 * pointers of the nine matrices NULL; its RMSNorm gains are float32 in both. */
typedef struct {
    const float *token_embedding;  /* (vocab_size, dim) */
    const float *rms_att_weight;   /* (n_layers, dim) RMSNorm gain before attention */
    const float *wq;               /* (n_layers, q_dim, dim) */
    const float *wk;               /* (n_layers, kv_dim, dim) */
    const float *wv;               /* (n_layers, kv_dim, dim) */
    const float *wo;               /* (n_layers, dim, q_dim) */
    const float *rms_ffn_weight;   /* (n_layers, dim) RMSNorm gain before the FFN */
    const float *w1;               /* (n_layers, hidden_dim, dim) gate */
    const float *w2;               /* (n_layers, dim, hidden_dim) down */
    const float *w3;               /* (n_layers, hidden_dim, dim) up */
    const float *rms_final_weight; /* (dim) */
    const float *wcls;             /* (vocab_size, dim) classifier: logits = wcls @ x */
    /* int8 files only */
    int group_size;                /* 0 for float32 weights */
    QMatrix q_token_embedding;     /* (vocab_size, dim) */
    QMatrix q_wcls;                /* (vocab_size, dim); = q_token_embedding when shared */
    QMatrix *q_wq, *q_wk, *q_wv, *q_wo, *q_w1, *q_w2, *q_w3; /* one per layer (n_layers) */
} Weights;

/* What file a model came from decides a few conventions (see main). */
enum { FORMAT_LAMP, FORMAT_LLAMA2C_V0, FORMAT_LLAMA2C_V1, FORMAT_LLAMA2C_V2 };

/* ===========================================================================
 * 2. Run state: the activations of one position, and the KV cache
 * =========================================================================*/

/* forward() (section 4) takes one token at a time. Its activations are
 * vectors for that one position; only the KV cache remembers the earlier
 * positions. */
typedef struct {
    float *x;           /* (dim) the residual stream */
    float *xb;          /* (max(dim, q_dim)) scratch: normalised x, or attention output */
    float *xb2;         /* (dim) scratch: a block's output before the residual add */
    float *hb;          /* (hidden_dim) FFN gate, then the SwiGLU product */
    float *hb2;         /* (hidden_dim) FFN up projection */
    float *q;           /* (q_dim) the query of every head */
    float *k, *v;       /* (kv_dim) this position's key and value of every kv head */
    float *att;         /* (n_heads, seq_len) attention weights */
    float *logits;      /* (vocab_size) the output */
    /* The KV cache: the key and value of every position so far, for every
     * layer and kv head, so that a new token attends to the earlier ones
     * without recomputing them. Key d of position p in layer l, kv head g is
     *     key_cache[((l * n_kv_heads + g) * seq_len + p) * head_dim + d]
     * (Part II keeps the same numbers in a layout its kernels read faster.) */
    float *key_cache;   /* (n_layers, n_kv_heads, seq_len, head_dim) */
    float *value_cache; /* (n_layers, n_kv_heads, seq_len, head_dim) */
    float *rope_cos;    /* (head_dim / 2) cos(pos * freq_i) for the current position */
    float *rope_sin;    /* (head_dim / 2) sin(pos * freq_i) */
    int8_t *xq;         /* int8 models only: an activation quantized for a matmul (Part II) */
    float *xq_scale;    /* its scales */
} RunState;

struct FastState;   /* Part II's run state */
struct Backend;     /* Part II's table of ops */

typedef struct {
    Config config;
    Weights weights;
    RunState state;          /* the reference path's (this part) */
    struct FastState *fast;  /* the fast path's (Part II), or NULL */
    const struct Backend *backend; /* the table of ops feed_tokens() runs (Part II), or NULL: forward() runs */
    void *device;            /* a device backend's state: its copy of the weights, activations, KV cache */
    FILE *trace;             /* --trace: every op's output is written here (Part II), or NULL */
    Tokenizer tokenizer;     /* filled from the file for lamp models */
    int has_tokenizer;
    int chat_template;       /* CHAT_* (Part III; lamp version 2 header), CHAT_NONE otherwise */
    int format;              /* FORMAT_* */
    const char *path;
    unsigned char *data;     /* the memory-mapped file */
    size_t file_size;
} Transformer;

/* Allocate the reference path's run state (zeroed: no uninitialised reads). */
void malloc_run_state(Transformer *t) {
    const Config *c = &t->config;
    RunState *s = &t->state;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t widest = dim > q_dim ? dim : q_dim;
    s->x = xcalloc(dim, sizeof(float));
    s->xb = xcalloc(widest, sizeof(float));
    s->xb2 = xcalloc(dim, sizeof(float));
    s->hb = xcalloc(hidden, sizeof(float));
    s->hb2 = xcalloc(hidden, sizeof(float));
    s->q = xcalloc(q_dim, sizeof(float));
    s->k = xcalloc(kv_dim, sizeof(float));
    s->v = xcalloc(kv_dim, sizeof(float));
    s->att = xcalloc((size_t)c->n_heads * c->seq_len, sizeof(float));
    s->logits = xcalloc((size_t)c->vocab_size, sizeof(float));
    /* the cache can be gigabytes: calloc hands out pages of zeros that the
     * OS maps only when first written, so memory is used as the text grows */
    size_t cache = (size_t)c->n_layers * c->seq_len * kv_dim;
    s->key_cache = xcalloc(cache, sizeof(float));
    s->value_cache = xcalloc(cache, sizeof(float));
    s->rope_cos = xcalloc((size_t)c->head_dim / 2, sizeof(float));
    s->rope_sin = xcalloc((size_t)c->head_dim / 2, sizeof(float));
    if (t->weights.group_size) {
        size_t widest_in = hidden > widest ? hidden : widest;
        s->xq = xcalloc(widest_in, sizeof(int8_t));
        s->xq_scale = xcalloc(widest_in / (size_t)t->weights.group_size, sizeof(float));
    }
}

void free_run_state(RunState *s) {
    free(s->x); free(s->xb); free(s->xb2); free(s->hb); free(s->hb2); free(s->q); free(s->k); free(s->v);
    free(s->att); free(s->logits); free(s->key_cache); free(s->value_cache); free(s->rope_cos); free(s->rope_sin);
    free(s->xq); free(s->xq_scale);
    memset(s, 0, sizeof *s);
}

/* ===========================================================================
 * 3. Kernels
 * =========================================================================*/

/* RMSNorm: out = weight * x / sqrt(mean(x^2) + eps).
 * Unlike LayerNorm it does not subtract the mean; it only rescales. */
void rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    /* EXERCISE rmsnorm BEGIN */
    float ss = 0.0f;
    #pragma omp simd reduction(+:ss)
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = weight[i] * (scale * x[i]);
    /* EXERCISE rmsnorm END */
}

/* One output of a matmul: the dot product of a row of W with x.
 * `omp simd reduction` lets the compiler keep 8 or 16 partial sums in one
 * SIMD register and add them up at the end (on its own it may not reorder
 * float additions, so it could not vectorize this loop). Built with
 * -ffp-contract=fast (see the Makefile), each multiply and add becomes one
 * fused multiply-add (FMA): one rounding instead of two. */
float dot(const float *w, const float *x, int n) {
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int j = 0; j < n; j++) sum += w[j] * x[j];
    return sum;
}

/* matmul: out = W x, with W of shape (d, n), row-major: out_i = sum_j W_ij x_j.
 * Almost all the time of a forward pass is spent here. The d rows are
 * independent, so OpenMP splits them over the cores; each row is computed
 * by one thread, in the same order whatever the number of threads, so 1 or
 * 16 threads give the same bits. This is the reference that every faster
 * matmul in Part II is checked against. */
void matmul(float *out, const float *x, const float *w, int n, int d) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < d; i++) out[i] = dot(w + (size_t)i * n, x, n);
}

/* A weight matrix (d, n) as the forward pass hands it to linear(): float32,
 * or int8 in groups with a scale each (QMatrix, Part II's Q8_0). */
typedef struct {
    const float *f;     /* float32 weights, or NULL when the matrix is int8 */
    const int8_t *q;    /* int8 values */
    const float *s;     /* their scales, one per group */
    int group_size;
} Mat;

/* Matrix l of a stack of per-layer matrices of `size` elements each. */
Mat layer_matrix(const Weights *w, const float *f, const QMatrix *q, size_t l, size_t size) {
    Mat m = {NULL, NULL, NULL, w->group_size};
    if (w->group_size) {
        m.q = q[l].q;
        m.s = q[l].s;
    } else {
        m.f = f + l * size;
    }
    return m;
}

void quantize_q8(int8_t *q, float *scale, const float *x, size_t n, int gs);   /* Part II */
float dot_q8(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n, int gs);
typedef float (*DotQ8)(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n, int gs);
void matmul_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, int n, int d,
               int T, int gs, DotQ8 dot_fn);

/* out = W x through the linear layer W (PyTorch's nn.Linear, no bias).
 * float32 weights go through matmul(). int8 weights (Part II explains them)
 * quantize x the same way and use the portable int8 dot product. */
void linear(float *out, const float *x, Mat w, int n, int d, RunState *s) {
    if (w.f) {
        matmul(out, x, w.f, n, d);
        return;
    }
    quantize_q8(s->xq, s->xq_scale, x, (size_t)n, w.group_size);
    matmul_q8(out, s->xq, s->xq_scale, w.q, w.s, n, d, 1, w.group_size, dot_q8);
}

/* Row `token` of the embedding table into out. An int8 table is
 * dequantized one row at a time, here: never as a whole (a float32 copy
 * of a 32000 x 4096 table would be 500 MB). */
void embed(float *out, const Weights *w, int token, int dim) {
    size_t start = (size_t)token * dim;
    if (!w->group_size) {
        memcpy(out, w->token_embedding + start, (size_t)dim * sizeof(float));
        return;
    }
    const int8_t *q = w->q_token_embedding.q + start;
    const float *s = w->q_token_embedding.s + start / (size_t)w->group_size;
    for (int i = 0; i < dim; i++) out[i] = (float)q[i] * s[i / w->group_size];
}

/* RoPE (rotary position embedding) rotates pair i of every head by the
 * angle pos * freq_i, with freq_i = theta^(-2i/head_dim): fast rotation for
 * the first pairs, slow for the last. rope_angles() computes the cosines and
 * sines of one position. (The float expressions are the ones llama2.c
 * evaluates, so llama2.c checkpoints give bit-identical results.) */
void rope_angles(float *cos_row, float *sin_row, int pos, int head_dim, float theta) {
    /* EXERCISE rope BEGIN */
    for (int i = 0; i < head_dim / 2; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float angle = (float)pos * freq;
        cos_row[i] = cosf(angle);
        sin_row[i] = sinf(angle);
    }
    /* EXERCISE rope END */
}

/* Rotate each pair (v[2i], v[2i+1]) of every head by its angle:
 *     v'[2i]   = v[2i] cos - v[2i+1] sin
 *     v'[2i+1] = v[2i] sin + v[2i+1] cos
 * After this, the dot product of a query at position m with a key at
 * position n depends only on m - n: attention sees relative positions. */
void rope(float *vec, int n_heads, int head_dim, const float *cos_row, const float *sin_row) {
    /* EXERCISE rope BEGIN */
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            float v0 = v[2 * i], v1 = v[2 * i + 1];
            v[2 * i] = v0 * cos_row[i] - v1 * sin_row[i];
            v[2 * i + 1] = v0 * sin_row[i] + v1 * cos_row[i];
        }
    }
    /* EXERCISE rope END */
}

/* softmax in place: x_i = exp(x_i - max) / sum_j exp(x_j - max).
 * Subtracting the max changes nothing mathematically (it cancels between
 * numerator and denominator) and keeps exp() from overflowing: the largest
 * term becomes exp(0) = 1. */
void softmax(float *x, int n) {
    /* EXERCISE softmax BEGIN */
    float max = x[0];
    for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
    /* EXERCISE softmax END */
}

/* Attention of one query head over the positions 0 .. n_pos - 1 of its kv
 * head's cache, in three steps:
 *     1. scores:  s_t = q . k_t / sqrt(head_dim)      for t < n_pos
 *     2. weights: a = softmax(s)
 *     3. output:  out = sum_t a_t v_t
 * i.e. softmax(q Kᵀ / sqrt(head_dim)) V. Only positions up to the query's
 * own are in the cache yet, so the query sees the past and itself: that is
 * the causal mask. Dividing by sqrt(head_dim) keeps the scores' spread the
 * same whatever the head width, so the softmax does not saturate. */
void attention(float *out, const float *q, const float *keys, const float *values, float *att, int n_pos,
               int head_dim) {
    /* EXERCISE attention BEGIN */
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int t = 0; t < n_pos; t++) {                      /* 1. scores */
        const float *k = keys + (size_t)t * head_dim;
        float score = 0.0f;
        for (int d = 0; d < head_dim; d++) score += q[d] * k[d];
        att[t] = score * scale;
    }
    softmax(att, n_pos);                                   /* 2. weights */
    for (int d = 0; d < head_dim; d++) out[d] = 0.0f;      /* 3. weighted sum of the values */
    for (int t = 0; t < n_pos; t++) {
        const float *v = values + (size_t)t * head_dim;
        for (int d = 0; d < head_dim; d++) out[d] += att[t] * v[d];
    }
    /* EXERCISE attention END */
}

/* SwiGLU: h = silu(gate) * up, with silu(x) = x * sigmoid(x) = x / (1 + e^-x).
 * The gate decides, per hidden unit, how much of `up` passes through. A
 * long vector (a chunk's worth, Part II) is split over the cores. */
void swiglu(float *gate, const float *up, int n) {
    /* EXERCISE swiglu BEGIN */
    #pragma omp parallel for schedule(static) if (n >= 32768)
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
    /* EXERCISE swiglu END */
}

/* This position's key and value (s->k, s->v) join layer l's cache, at
 * position pos of every kv head g. */
void store_kv(Transformer *t, size_t l, int pos) {
    const Config *c = &t->config;
    RunState *s = &t->state;
    size_t head_dim = (size_t)c->head_dim;
    /* EXERCISE kv-cache BEGIN */
    for (int g = 0; g < c->n_kv_heads; g++) {
        size_t at = ((l * c->n_kv_heads + g) * c->seq_len + pos) * head_dim;
        memcpy(s->key_cache + at, s->k + g * head_dim, head_dim * sizeof(float));
        memcpy(s->value_cache + at, s->v + g * head_dim, head_dim * sizeof(float));
    }
    /* EXERCISE kv-cache END */
}

/* Attention in layer l for the query at position pos: each query head h
 * reads kv head h / kv_mul (grouped-query attention: kv_mul query heads
 * share one kv head), positions 0 .. pos. The heads' outputs, side by side,
 * go to s->xb (q_dim). */
void attend_heads(Transformer *t, size_t l, int pos) {
    const Config *c = &t->config;
    RunState *s = &t->state;
    size_t head_dim = (size_t)c->head_dim;
    int kv_mul = c->n_heads / c->n_kv_heads;
    /* EXERCISE attention BEGIN */
    for (int h = 0; h < c->n_heads; h++) {
        size_t head = (l * c->n_kv_heads + h / kv_mul) * c->seq_len * head_dim;
        attention(s->xb + h * head_dim, s->q + h * head_dim, s->key_cache + head, s->value_cache + head,
                  s->att + (size_t)h * c->seq_len, pos + 1, (int)head_dim);
    }
    /* EXERCISE attention END */
}

/* ===========================================================================
 * 4. The forward pass: one token in, the logits of the next one out
 * =========================================================================*/

/* A model whose numbers overflow float32 (or a file whose weights hold an
 * inf or NaN) would otherwise print garbage, or sample from NaN. A check
 * after each layer stops it with one line naming the first layer whose
 * output went bad (layer -1: the classifier's logits). */
void check_finite(const Transformer *t, const float *x, size_t count, const char *what, int layer, int pos, int n) {
    int bad = 0;
    for (size_t i = 0; i < count; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);   /* inf or NaN */
    if (!bad) return;
    if (layer >= 0)   /* layers counted from 0, as in the file and the code */
        fatal("%s: the %s after layer %d (of 0..%d) are not finite (inf or NaN) at positions %d..%d: "
              "the model's numbers overflow float32", t->path ? t->path : "model", what, layer,
              t->config.n_layers - 1, pos, pos + n - 1);
    fatal("%s: the %s are not finite (inf or NaN) at positions %d..%d: the model's numbers overflow float32",
          t->path ? t->path : "model", what, pos, pos + n - 1);
}

/* Run `token` at position `pos` through the model; its key and value join
 * the KV cache. Returns the logits of the next token (vocab_size). The
 * positions 0 .. pos - 1 must have been run before (the cache holds them).
 *     x = embedding[token]
 *     for each layer:
 *         x = x + wo @ attention(rope(wq @ rmsnorm(x)), rope(wk @ ..), wv @ ..)
 *         x = x + w2 @ swiglu(w1 @ rmsnorm(x), w3 @ rmsnorm(x))
 *     logits = wcls @ rmsnorm(x) */
float *forward(Transformer *t, int token, int pos) {
    const Config *c = &t->config;
    const Weights *w = &t->weights;
    RunState *s = &t->state;
    int dim = c->dim, hidden_dim = c->hidden_dim, head_dim = c->head_dim;
    int q_dim = c->n_heads * head_dim, kv_dim = c->n_kv_heads * head_dim;
    if (token < 0 || token >= c->vocab_size || pos < 0 || pos >= c->seq_len)
        fatal("forward: token %d at position %d is outside the model (vocab %d, context %d)", token, pos,
              c->vocab_size, c->seq_len);

    embed(s->x, w, token, dim);
    rope_angles(s->rope_cos, s->rope_sin, pos, head_dim, c->rope_theta);

    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        /* --- attention block */
        rmsnorm(s->xb, s->x, w->rms_att_weight + l * dim, dim, c->norm_eps);
        linear(s->q, s->xb, layer_matrix(w, w->wq, w->q_wq, l, (size_t)q_dim * dim), dim, q_dim, s);
        linear(s->k, s->xb, layer_matrix(w, w->wk, w->q_wk, l, (size_t)kv_dim * dim), dim, kv_dim, s);
        linear(s->v, s->xb, layer_matrix(w, w->wv, w->q_wv, l, (size_t)kv_dim * dim), dim, kv_dim, s);
        rope(s->q, c->n_heads, head_dim, s->rope_cos, s->rope_sin);
        rope(s->k, c->n_kv_heads, head_dim, s->rope_cos, s->rope_sin);
        store_kv(t, l, pos);           /* this position's key and value join the cache */
        attend_heads(t, l, pos);       /* every query head over its kv head's positions 0 .. pos */
        linear(s->xb2, s->xb, layer_matrix(w, w->wo, w->q_wo, l, (size_t)dim * q_dim), q_dim, dim, s);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i];   /* residual */

        /* --- feed-forward block */
        rmsnorm(s->xb, s->x, w->rms_ffn_weight + l * dim, dim, c->norm_eps);
        linear(s->hb, s->xb, layer_matrix(w, w->w1, w->q_w1, l, (size_t)hidden_dim * dim), dim, hidden_dim, s);
        linear(s->hb2, s->xb, layer_matrix(w, w->w3, w->q_w3, l, (size_t)hidden_dim * dim), dim, hidden_dim, s);
        swiglu(s->hb, s->hb2, hidden_dim);
        linear(s->xb2, s->hb, layer_matrix(w, w->w2, w->q_w2, l, (size_t)dim * hidden_dim), hidden_dim, dim, s);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i];   /* residual */
        check_finite(t, s->x, (size_t)dim, "activations", (int)l, pos, 1);
    }

    /* final norm, then the classifier: one logit per vocabulary entry */
    rmsnorm(s->x, s->x, w->rms_final_weight, dim, c->norm_eps);
    linear(s->logits, s->x, layer_matrix(w, w->wcls, &w->q_wcls, 0, 0), dim, c->vocab_size, s);
    check_finite(t, s->logits, (size_t)c->vocab_size, "logits", -1, pos, 1);
    return s->logits;
}

/* Feed n tokens at positions pos .. pos + n - 1 (a prompt, a chat turn) and
 * return the logits after the last one. The reference path runs them
 * through forward() one at a time; with a backend (Part II: the fast CPU
 * code, or a device) a chunk of positions goes through the weights at once. */
float *prefill(Transformer *t, const int *tokens, int n, int pos);   /* Part II */
float *feed_tokens(Transformer *t, const int *tokens, int n, int pos) {
    if (t->backend) return prefill(t, tokens, n, pos);
    float *logits = NULL;
    for (int i = 0; i < n; i++) logits = forward(t, tokens[i], pos + i);
    return logits;
}

/* ===========================================================================
 * 5. The sampler: logits -> next token
 * =========================================================================*/

/* xorshift* (Marsaglia / Vigna), the generator llama2.c uses, so a given
 * seed draws the same numbers here as there. The state must not be 0. */
uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1DULL) >> 32);
}
/* a float in [0, 1) with 24 random bits */
float random_f32(uint64_t *state) { return (float)(random_u32(state) >> 8) / 16777216.0f; }

typedef struct {
    float prob;
    int index;
} ProbIndex;

typedef struct {
    int vocab_size;
    float temperature;  /* 0 = greedy */
    float topp;         /* nucleus sampling; 0 or 1 = off */
    int topk;           /* keep the k most likely tokens; 0 = off */
    float minp;         /* drop tokens less likely than minp x the most likely; 0 = off */
    uint64_t rng_state;
    ProbIndex *candidates; /* (vocab_size) scratch for top-p / top-k */
} Sampler;

void build_sampler(Sampler *s, int vocab_size, float temperature, float topp, int topk, uint64_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->topk = topk;
    s->minp = 0.0f;
    s->rng_state = seed;
    s->candidates = xmalloc((size_t)vocab_size * sizeof(ProbIndex));
}

void free_sampler(Sampler *s) { free(s->candidates); }

int sample_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

/* Draw from the distribution p: walk the cumulative sum until it passes coin. */
int sample_mult(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* in case of rounding errors */
}

/* most probable first; equal probabilities keep the lower token id first */
int compare_prob_desc(const void *a, const void *b) {
    const ProbIndex *x = a, *y = b;
    if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Draw from the first n candidates (sorted, n >= 1), cut at the smallest
 * prefix whose probability exceeds `mass` (all of them if none does). */
int sample_sorted_prefix(const ProbIndex *cand, int n, float mass, float coin) {
    float cumulative = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        cumulative += cand[i].prob;
        if (cumulative > mass) { last = i; break; }
    }
    float r = coin * cumulative;   /* the kept tokens' mass, so no renormalising */
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += cand[i].prob;
        if (r < cdf) return cand[i].index;
    }
    return cand[last].index;
}

/* Top-p ("nucleus") sampling: sample only from the smallest set of tokens
 * whose probabilities add up to more than p, so the long tail of unlikely
 * tokens can never be picked. Tokens below (1 - p) / (n - 1) cannot be in
 * that set, so they are dropped before sorting — as llama2.c does.
 * The most likely token is always kept (as llama.cpp does): in a
 * distribution flatter than the cutoff (a huge temperature with a small p)
 * every token is below it, and there must still be one to draw. */
int sample_topp(const float *p, int n, float topp, ProbIndex *cand, float coin) {
    /* EXERCISE topp BEGIN */
    int n0 = 0, best = sample_argmax(p, n);
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff || i == best) cand[n0++] = (ProbIndex){p[i], i};
    qsort(cand, (size_t)n0, sizeof(ProbIndex), compare_prob_desc);
    return sample_sorted_prefix(cand, n0, topp, coin);
    /* EXERCISE topp END */
}

/* Top-k: keep the k most probable tokens, then (if top-p is on) the top-p
 * subset of those, measured on their renormalised probabilities. */
int sample_topk(const float *p, int n, int k, float topp, ProbIndex *cand, float coin) {
    for (int i = 0; i < n; i++) cand[i] = (ProbIndex){p[i], i};
    qsort(cand, (size_t)n, sizeof(ProbIndex), compare_prob_desc);
    float mass = 0.0f;
    for (int i = 0; i < k; i++) mass += cand[i].prob;
    float keep = (topp > 0.0f && topp < 1.0f) ? topp * mass : 2.0f; /* 2 > any mass: keep all k */
    return sample_sorted_prefix(cand, k, keep, coin);
}

/* logits -> token id. Temperature divides the logits before the softmax:
 * below 1 it sharpens the distribution, above 1 it flattens it, and 0 means
 * always take the most likely token. Exactly one random number is drawn per
 * sampled token (as in llama2.c), so a seed replays a whole story. */
int sample(Sampler *s, float *logits) {
    int n = s->vocab_size;
    if (s->temperature == 0.0f) return sample_argmax(logits, n);
    if (s->minp > 0.0f) {
        /* min-p, as llama.cpp's sampler has it (before the temperature): keep
         * the tokens with p >= minp * p_max, i.e. with a logit at least
         * max + log(minp); the others get probability 0. */
        float max = logits[0];
        for (int i = 1; i < n; i++) if (logits[i] > max) max = logits[i];
        float cutoff = max + logf(s->minp);
        for (int i = 0; i < n; i++) if (logits[i] < cutoff) logits[i] = -INFINITY;
    }
    for (int i = 0; i < n; i++) logits[i] /= s->temperature;
    softmax(logits, n);
    float coin = random_f32(&s->rng_state);
    if (s->topk > 0 && s->topk < n) return sample_topk(logits, n, s->topk, s->topp, s->candidates, coin);
    if (s->topp > 0.0f && s->topp < 1.0f) return sample_topp(logits, n, s->topp, s->candidates, coin);
    return sample_mult(logits, n, coin);
}

/* ===========================================================================
 * 6. Generate: the loop that feeds each new token back in
 * =========================================================================*/

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Does `token` end the text? lamp files name their own EOS (and a BOS in the
 * middle of a text means a new document begins). llama2.c's checkpoints are
 * TinyStories-style: a BOS before every story and no EOS, so llama2.c stops
 * on BOS only; we do the same for its files so the same seed prints the
 * same story. */
int is_stop_token(const Transformer *t, int token) {
    if (t->format != FORMAT_LAMP) return token == t->config.bos_id;
    return token == t->config.eos_id || token == t->config.bos_id;
}

typedef struct {
    int verbose;
    double load_seconds;
} RunInfo;

void print_token_ids(const char *label, const int *ids, int n) {
    fprintf(stderr, "%s (%d):", label, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* The first token sampled ended the text, so nothing but the prompt was
 * printed: say why, rather than leave a newcomer wondering. A prompt of only
 * spaces is the usual cause: a model trained on stories has seen blank space
 * at the end of a story, so end-of-text is its most likely next token. */
void explain_immediate_end(const char *prompt) {
    int blank = prompt[0] != '\0';
    for (const char *p = prompt; *p; p++) blank &= isspace((unsigned char)*p) != 0;
    fprintf(stderr, "lamp: the model ended the text at once: the first token it sampled was end-of-text%s\n",
            blank ? " (the prompt is only whitespace, which ends a text more often than it starts one; "
                    "give some words with -i)" : "");
}

/* Generate: feed the prompt, then sample up to `steps` new tokens, printing
 * each as it comes. steps = 0 means until the context is full. */
void generate(Transformer *t, Tokenizer *tok, Sampler *sampler, const char *prompt, int steps,
                     const RunInfo *info) {
    const Config *c = &t->config;
    int n_prompt;
    int *prompt_ids = tokenizer_encode(tok, prompt, strlen(prompt), 1, 0, &n_prompt);
    if (n_prompt == 0) fatal("the tokenizer has no BOS token, so an empty prompt cannot start a text");
    if (n_prompt > c->seq_len)
        fatal("the prompt is %d tokens but the model's context is %d (seq_len); shorten the prompt",
              n_prompt, c->seq_len);
    /* positions used: the prompt, then one per generated token except the last */
    int max_new = c->seq_len - n_prompt + 1;
    if (steps <= 0 || steps > max_new) steps = max_new;
    int *generated = xmalloc((size_t)steps * sizeof(int));
    int n_generated = 0;

    /* Echo the prompt (its first piece follows BOS, so decode drops the
     * dummy-prefix space), then run it through the model: the logits after
     * its last token are those of the first new token. */
    Utf8Printer printer = {0};
    for (int i = 1; i < n_prompt; i++) {
        size_t len;
        const char *piece = tokenizer_decode(tok, prompt_ids[i - 1], prompt_ids[i], &len);
        utf8_print(&printer, piece, len, stdout);
    }
    fflush(stdout);
    double start = time_now();
    float *logits = feed_tokens(t, prompt_ids, n_prompt, 0);
    double prompt_done = time_now();

    /* Then the model continues it, one token at a time: sample, print, feed
     * the new token back in at the next position. */
    int token = prompt_ids[n_prompt - 1];
    int pos = n_prompt;
    while (n_generated < steps) {
        int next = sample(sampler, logits);
        generated[n_generated++] = next;
        if (is_stop_token(t, next)) break;
        size_t len;
        const char *piece = tokenizer_decode(tok, token, next, &len);
        utf8_print(&printer, piece, len, stdout);
        fflush(stdout);
        token = next;
        if (n_generated == steps) break;    /* the last token is printed, never fed */
        logits = feed_tokens(t, &token, 1, pos++);
    }
    utf8_flush(&printer, stdout);
    printf("\n");
    fflush(stdout);
    if (n_generated == 1 && is_stop_token(t, generated[0]))
        explain_immediate_end(prompt);
    double end = time_now();
    /* Speed. The prompt phase gives the logits of the first new token; the
     * decode phase is the rest. */
    double prompt_s = prompt_done - start, decode_s = end - prompt_done;
    fprintf(stderr, "load %.0f ms | prompt %d tokens, %.1f tok/s | decode %d tokens, %.1f tok/s\n",
            info->load_seconds * 1e3, n_prompt, prompt_s > 0 ? n_prompt / prompt_s : 0.0,
            n_generated, (n_generated > 1 && decode_s > 0) ? (n_generated - 1) / decode_s : 0.0);
    if (info->verbose) {
        print_token_ids("prompt ids", prompt_ids, n_prompt);
        print_token_ids("generated ids", generated, n_generated);
    }
    free(generated);
    free(prompt_ids);
}


/* ###########################################################################
 * PART II — MAKING IT FAST
 *
 * Part I computes every number the model needs. This part computes the same
 * numbers faster, in four steps, each replacing a Part I routine:
 *   7. a prompt goes through the layers a chunk of positions at a time
 *      (forward_chunk() for forward()), so every weight read from memory
 *      serves many positions;
 *   8. the register-tiled matmul for a chunk (matmul_chunk() for matmul());
 *   9. int8 weights, Q8_0 (quantize_q8, dot_q8 and its AVX2 and AVX-512 kernels, and
 *      the tiled int8 matmul of a chunk, matmul_q8_chunk());
 *  10. attention over a KV cache stored in blocks its kernels read with
 *      whole SIMD vectors (attention_chunk() and attend_one() for
 *      attention());
 *  11. the forward pass of a chunk, as a table of ops a backend fills in:
 *      this part's code is one backend, Part I's functions another, and
 *      ports to other hardware (port/) more; --trace writes every op's
 *      output;
 *  12. threads: how many, and how they wait, by default.
 * tests/test_forward.c checks each against Part I. How much each buys, and
 * how it was measured: docs/performance.md.
 * #########################################################################*/

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#endif

/* ===========================================================================
 * 7. Chunks: the run state of many positions at once
 * =========================================================================*/

/* The fast forward pass takes up to CHUNK tokens at once: a prompt goes
 * through the layers CHUNK positions at a time, so every weight read from
 * memory serves CHUNK positions instead of one. Generating a new token is
 * the chunk of one. Bigger chunks read the weights fewer times, but their
 * activations outgrow the caches (docs/performance.md, "chunk size"). */
#define CHUNK 128

/* The tile of the matmul kernel (section 8): TILE_M rows by TILE_N positions.
 * TILE_N is two SIMD registers: 2 x 16 floats with AVX-512, 2 x 8 with AVX,
 * 2 x 4 otherwise (SSE, NEON). 6 x 2 = 12 accumulator registers fit in the
 * 16 of AVX2 and the 32 of AVX-512, with room for the two x vectors. */
#define TILE_M 6
#if defined(__AVX512F__)
#define TILE_N 32
#elif defined(__AVX__)
#define TILE_N 16
#else
#define TILE_N 8
#endif

/* Activations are stored one row per position of the chunk: x[i * dim + j]
 * is element j at the i-th position. The fields are Part I's RunState's,
 * with a row per position. */
struct FastState {
    float *x;           /* (CHUNK, dim) the residual stream */
    float *xb;          /* (CHUNK, max(dim, q_dim)) scratch: normalised x, or attention output */
    float *xb2;         /* (CHUNK, dim) scratch: a block's output before the residual add */
    float *hb;          /* (CHUNK, hidden_dim) FFN gate, then the SwiGLU product */
    float *hb2;         /* (CHUNK, hidden_dim) FFN up projection */
    float *q;           /* (CHUNK, q_dim) queries */
    float *k, *v;       /* (CHUNK, kv_dim) keys and values, before they go into the cache */
    float *att;         /* (CHUNK, n_heads, padded_seq_len) attention weights */
    float *logits;      /* (CHUNK, vocab_size) the output; row 0 for a single position */
    int8_t *xq;         /* (CHUNK, max(dim, q_dim, hidden_dim)) activations quantized for an int8 matmul */
    float *xq_scale;    /* (CHUNK, that / group_size) their scales */
    float *x_panels;    /* a chunk's input to a float32 matmul, rearranged for its kernel */
    /* The KV cache: Part I's numbers, in the layout attention's kernels
     * read (section 10), which is in blocks of
     * TILE_N positions (padded_seq_len: seq_len rounded up to whole blocks).
     * Keys are transposed within a block: element d of the key of position
     * p is at [block p / TILE_N][d][p % TILE_N]. Values are cut into panels
     * of TILE_N of their head_dim elements: element d of position p's value
     * is at [panel d / TILE_N][p][d % TILE_N]. keys_of() and values_of()
     * find a layer's kv head. */
    float *key_cache;   /* (n_layers, n_kv_heads, padded_seq_len / TILE_N, head_dim, TILE_N) */
    float *value_cache; /* (n_layers, n_kv_heads, value_panels, padded_seq_len, TILE_N) */
    int padded_seq_len, value_panels;   /* value_panels = head_dim / TILE_N, rounded up */
    float *rope_cos;    /* (seq_len, head_dim/2) cos(pos * freq_i), computed once by rope_angles() */
    float *rope_sin;    /* (seq_len, head_dim/2) sin(pos * freq_i) */
};
typedef struct FastState FastState;


/* Run-state buffers start on a 64-byte boundary (a cache line), so a vector
 * load of 32 or 64 bytes never straddles two lines. calloc only promises 16. */
void *alloc_aligned(size_t count, size_t size) {
    void *p = NULL;
    size_t bytes = count * size > 0 ? count * size : 1;
    if (posix_memalign(&p, 64, bytes) != 0) fatal("out of memory allocating %zu x %zu bytes", count, size);
    memset(p, 0, bytes);   /* zeroed, like calloc: no uninitialised reads, ever */
    return p;
}

size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

size_t matmul_scratch_floats(int T, int n);   /* section 8 */

/* Allocate the fast path's run state, with RoPE's angles for every position
 * computed once (Part I computes one position's per token). */
extern const struct Backend cpu_backend;   /* section 11 */
void malloc_fast_state(Transformer *t) {
    const Config *c = &t->config;
    FastState *s = t->fast = xcalloc(1, sizeof(FastState));
    t->backend = &cpu_backend;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t half = (size_t)c->head_dim / 2;
    size_t widest = max3(dim, q_dim, hidden);
    s->x = alloc_aligned(CHUNK * dim, sizeof(float));
    s->xb = alloc_aligned(CHUNK * (q_dim > dim ? q_dim : dim), sizeof(float));
    s->xb2 = alloc_aligned(CHUNK * dim, sizeof(float));
    s->hb = alloc_aligned(CHUNK * hidden, sizeof(float));
    s->hb2 = alloc_aligned(CHUNK * hidden, sizeof(float));
    s->q = alloc_aligned(CHUNK * q_dim, sizeof(float));
    s->k = alloc_aligned(CHUNK * kv_dim, sizeof(float));
    s->v = alloc_aligned(CHUNK * kv_dim, sizeof(float));
    s->padded_seq_len = (c->seq_len + TILE_N - 1) / TILE_N * TILE_N;
    s->value_panels = (c->head_dim + TILE_N - 1) / TILE_N;
    s->att = alloc_aligned((size_t)CHUNK * c->n_heads * s->padded_seq_len, sizeof(float));
    s->logits = alloc_aligned((size_t)CHUNK * c->vocab_size, sizeof(float));
    s->x_panels = alloc_aligned(matmul_scratch_floats(CHUNK, (int)widest), sizeof(float));
    if (t->weights.group_size) {
        s->xq = alloc_aligned(CHUNK * widest, sizeof(int8_t));
        s->xq_scale = alloc_aligned(CHUNK * widest / (size_t)t->weights.group_size, sizeof(float));
    }
    size_t heads = (size_t)c->n_layers * c->n_kv_heads;   /* calloc: pages mapped as the text grows */
    s->key_cache = xcalloc(heads * s->padded_seq_len * c->head_dim, sizeof(float));
    s->value_cache = xcalloc(heads * s->padded_seq_len * s->value_panels * TILE_N, sizeof(float));
    s->rope_cos = alloc_aligned((size_t)c->seq_len * half, sizeof(float));
    s->rope_sin = alloc_aligned((size_t)c->seq_len * half, sizeof(float));
    for (int pos = 0; pos < c->seq_len; pos++)
        rope_angles(s->rope_cos + (size_t)pos * half, s->rope_sin + (size_t)pos * half, pos, c->head_dim,
                    c->rope_theta);
}

void free_fast_state(Transformer *t) {
    FastState *s = t->fast;
    if (!s) return;
    free(s->x); free(s->xb); free(s->xb2); free(s->hb); free(s->hb2); free(s->q); free(s->k); free(s->v);
    free(s->att); free(s->logits); free(s->xq); free(s->xq_scale); free(s->x_panels);
    free(s->key_cache); free(s->value_cache); free(s->rope_cos); free(s->rope_sin);
    free(s);
    t->fast = NULL;
}

/* ===========================================================================
 * 8. The register-tiled matmul: many positions at once
 * =========================================================================*/

/* Part I's matmul() reads every weight once per position. Generating, x
 * is one position and that is the best there is: every weight is read
 * from memory for a single multiply-add, so the speed is set by memory
 * bandwidth (int8 weights, section 9, are a quarter of the bytes). For a
 * chunk of T positions the matmul is a matrix-matrix product: each weight,
 * once loaded, can serve T multiply-adds, and the speed is set by how fast
 * the cores multiply and add. Those two ceilings make the "roofline";
 * docs/performance.md measures both and how close each path gets.
 *
 * The question is then how many multiply-adds each load can feed. dot() needs two loads per
 * multiply-add, so with a chunk the loads, not the FMA units, would set the
 * pace. The fix is the classic one of every fast matrix product (BLAS,
 * llm.c's CUDA kernels): keep a tile of outputs in SIMD registers, TILE_M
 * rows of W by TILE_N positions, for the whole length of the dot products.
 * Per step k the kernel loads TILE_N values of x (two vector registers) and
 * TILE_M single weights, and does TILE_M * TILE_N multiply-adds: 12 vector
 * FMAs for 2 vector loads and 6 broadcast ones, so the FMA units set the
 * pace. train.c's gemm() is built on the same kernel, with its operands
 * packed and blocked for the caches (the whole story is told there).
 * (TILE_M and TILE_N are defined in section 7: the KV cache is laid out
 * in their blocks.) */

/* A matrix as the kernels read it: element (i, j) is p[i * rs + j * cs]. A
 * row-major (rows x cols) matrix is {p, cols, 1}; its transpose {p, 1, cols}. */
typedef struct {
    const float *p;
    size_t rs, cs;
} MatView;

/* The tile: for r < TILE_M and j < TILE_N,
 *     c[r * c_rs + j * c_cs]  =  (or +=, without overwrite)  sum over k < kc of a_r[k] * b[k][j],
 * where a_r[k] = a[r * a_rs + k * a_ks] (row r of the left operand, read
 * with any strides) and b is a packed panel: for each k, TILE_N values side
 * by side (pack_panel()). The sums run over k in order, one multiply-add at
 * a time, so every output has the same rounding whoever computes it. The
 * loops over r and j have constant bounds: the compiler unrolls them and
 * keeps acc in registers, and `omp simd` makes the j loop one or two vector
 * instructions. `static inline`: each caller gets a copy specialised to its
 * strides (train.c's packed operands have constant ones). */
static inline void micro_kernel(int kc, const float *a, size_t a_rs, size_t a_ks, const float *b, float *c,
                                size_t c_rs, size_t c_cs, int overwrite) {
    float acc[TILE_M][TILE_N];
    for (int r = 0; r < TILE_M; r++)
        for (int j = 0; j < TILE_N; j++) acc[r][j] = 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *bk = b + (size_t)k * TILE_N;
        #pragma GCC unroll 8
        for (int r = 0; r < TILE_M; r++) {
            float ark = a[r * a_rs + (size_t)k * a_ks];
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) acc[r][j] += ark * bk[j];
        }
    }
    for (int r = 0; r < TILE_M; r++) {
        float *cr = c + r * c_rs;
        if (overwrite) {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) cr[j * c_cs] = acc[r][j];
        } else {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) cr[j * c_cs] += acc[r][j];
        }
    }
}

/* Pack rows k0..k0+kc and columns j0..j0+TILE_N of B into one panel, the
 * layout micro_kernel() reads: for each k, TILE_N values side by side.
 * Columns at or past N become 0, so the kernel needs no edge case. */
void pack_panel(float *dst, MatView B, int N, int k0, int kc, int j0) {
    int cols = N - j0 < TILE_N ? N - j0 : TILE_N;
    const float *s = B.p + (size_t)k0 * B.rs + (size_t)j0 * B.cs;
    if (cols < TILE_N) {        /* the last panel, padded with zero columns */
        for (int k = 0; k < kc; k++)
            for (int j = 0; j < TILE_N; j++)
                dst[(size_t)k * TILE_N + j] = j < cols ? s[(size_t)k * B.rs + (size_t)j * B.cs] : 0.0f;
    } else if (B.cs == 1) {     /* B's rows are contiguous: copy a row of the panel at once */
        for (int k = 0; k < kc; k++) {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) dst[(size_t)k * TILE_N + j] = s[(size_t)k * B.rs + j];
        }
    } else {                    /* B's columns are: gather a row of the panel from TILE_N columns */
        for (int k = 0; k < kc; k++) {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) dst[(size_t)k * TILE_N + j] = s[(size_t)j * B.cs + (size_t)k * B.rs];
        }
    }
}

/* Rows of W whose outputs matmul_chunk() gathers before writing them out (below). */
#define ROW_BLOCK (8 * TILE_M)

/* Floats of scratch matmul_chunk() needs for T positions of n inputs: x as panels. */
size_t matmul_scratch_floats(int T, int n) {
    return (size_t)(T + TILE_N - 1) / TILE_N * TILE_N * (size_t)n;
}

/* out (T, d) = x (T, n) @ W (d, n) transposed: row t of out is W @ (row t
 * of x). Replaces Part I's matmul() for a chunk; one position (T = 1) goes
 * to matmul() itself, which streams one row of W per core, the access the
 * hardware prefetcher follows best.
 *
 * For a chunk, the tiled kernel. First x is copied into panels of TILE_N
 * positions (`scratch`, matmul_scratch_floats(T, n) floats), so the kernel
 * reads input k of TILE_N positions with one vector load. Then each TILE_M
 * rows of W, read straight from the weights (TILE_M streams, never copied),
 * meet every panel: each weight comes from memory once per chunk. out is
 * position-major, so a tile written straight into it would touch TILE_N
 * rows d floats apart; when d is a power of two those all fall in one set
 * of the L1 cache and evict each other. So the tiles of ROW_BLOCK rows are
 * gathered in `block` first, then copied out one position at a time. The
 * last d % TILE_M rows go through dot().
 *
 * schedule(static) hands each thread one contiguous range of rows, decided
 * before the loop starts: no scheduling traffic while it runs, and every
 * row costs the same. Every output is computed by one thread, in the same
 * order, whatever the number of threads: 1 or 16 threads give the same
 * bits. (dot()'s partial sums and the kernel's running sum add in
 * different orders, so a chunk and one position differ in the last bits.) */
void matmul_chunk(float *out, const float *x, const float *w, int n, int d, int T, float *scratch) {
    if (T == 1) {
        matmul(out, x, w, n, d);
        return;
    }
    int panels = (T + TILE_N - 1) / TILE_N;
    int tiled_rows = d / TILE_M * TILE_M;
    MatView x_columns = {x, 1, (size_t)n};   /* x transposed: (n, T) */
    #pragma omp parallel
    {
        #pragma omp for schedule(static)
        for (int p = 0; p < panels; p++) pack_panel(scratch + (size_t)p * TILE_N * n, x_columns, T, 0, n, p * TILE_N);
        #pragma omp for schedule(static) nowait
        for (int i0 = 0; i0 < tiled_rows; i0 += ROW_BLOCK) {
            int rows = tiled_rows - i0 < ROW_BLOCK ? tiled_rows - i0 : ROW_BLOCK;
            for (int p = 0; p < panels; p++) {
                float block[TILE_N][ROW_BLOCK];   /* block[j][r]: output i0 + r at position p * TILE_N + j */
                for (int i = 0; i < rows; i += TILE_M)
                    micro_kernel(n, w + (size_t)(i0 + i) * n, (size_t)n, 1, scratch + (size_t)p * TILE_N * n,
                                 &block[0][i], 1, ROW_BLOCK, 1);
                for (int j = 0; j < TILE_N && p * TILE_N + j < T; j++)   /* positions past T were zeros */
                    memcpy(out + (size_t)(p * TILE_N + j) * d + i0, block[j], (size_t)rows * sizeof(float));
            }
        }
        #pragma omp for schedule(static)
        for (int i = tiled_rows; i < d; i++)
            for (int t = 0; t < T; t++) out[(size_t)t * d + i] = dot(w + (size_t)i * n, x + (size_t)t * n, n);
    }
}

/* ===========================================================================
 * 9. int8 weights (Q8_0)
 * =========================================================================*/

/* The weights are int8 in groups of gs, each with a float scale (QMatrix).
 * x is quantized the same way just before the matmul, so that inside a
 * group the dot product is a sum of int8 x int8 products, exact in int32:
 *
 *     sum_j w_j x_j  ~=  sum_g  ws_g * xs_g * ( sum_{j in g} wq_j * xq_j )
 *                                              \______ int32, exact ______/
 *
 * Quantizing x costs a little accuracy; in exchange the inner loop works on
 * bytes: 32 multiply-adds per 256-bit instruction instead of 8. */

/* a * b + c with a single rounding where the CPU has an FMA instruction */
#if defined(FP_FAST_FMAF) || defined(__FMA__)
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* Quantize n floats (n a multiple of gs) in groups of gs: the rule of
 * docs/format.md 1.4, used for the weights by lampfile.py and here
 * for the activations. scale = max|x| / 127, q = round(x / scale) with
 * halves away from zero, so the largest |x| maps to +-127. An all-zero
 * group gets scale 0 and zeros. A chunk's worth is split over the cores; a
 * single position is too little to be worth waking them.
 *
 * Rounding: adding +-0.5 and truncating is round-half-away-from-zero, but
 * in float it can round twice: 0.49999997f + 0.5f is 1.0f, not 0.99999997.
 * In double the sum is exact (r has 24 significant bits and |r| <= 127),
 * so this equals roundf(r), and unlike roundf (a library call unless
 * -fno-trapping-math) it vectorizes. */
void quantize_q8(int8_t *q, float *scale, const float *x, size_t n, int gs) {
    long n_groups = (long)(n / (size_t)gs);
    #pragma omp parallel for schedule(static) if (n_groups >= 512)
    for (long g = 0; g < n_groups; g++) {
        const float *xg = x + (size_t)g * gs;
        int8_t *qg = q + (size_t)g * gs;
        float max = 0.0f;
        int non_finite = 0;
        for (int j = 0; j < gs; j++) {
            float a = fabsf(xg[j]);
            max = a > max ? a : max;
            non_finite |= !(a <= FLT_MAX);   /* inf, or NaN (every comparison with NaN is false) */
        }
        /* An inf or NaN has no int8 value (converting NaN to int is undefined
         * behaviour in C). The group gets a NaN scale instead, so every dot
         * product with it is NaN, and the forward pass's check after the
         * layer (check_finite) names the layer where it happened. */
        if (non_finite) {
            scale[g] = NAN;
            memset(qg, 0, (size_t)gs);
            continue;
        }
        float s = max / 127.0f;
        scale[g] = s;
        float divisor = s > 0.0f ? s : 1.0f;   /* an all-zero group: 0 / 1 = 0 */
        for (int j = 0; j < gs; j++) {
            float r = xg[j] / divisor;
            double rounded = (double)r + (r < 0.0f ? -0.5 : 0.5);
            rounded = rounded > 127.0 ? 127.0 : rounded < -127.0 ? -127.0 : rounded;
            qg[j] = (int8_t)(int)rounded;   /* int conversion truncates toward zero */
        }
    }
}

/* The reference int8 dot product of a row (w, its scales ws) with x (xq,
 * xs), n numbers in groups of gs. The inner loop is what the compiler
 * vectorizes: int8 products summed in int32 (gcc widens the bytes to 16
 * bits and multiplies; it does not find the faster instruction sequence
 * dot_q8_avx2 uses below). isum is exact: at most gs * 127 * 127 < 2^24,
 * so (float)isum is exact too. The four partial sums acc[g % 4] keep the
 * additions from waiting on one another, and fix the order of the float
 * arithmetic so that dot_q8_avx2 can compute the same four at once and give
 * the same bits. */
float dot_q8(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n, int gs) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int g = 0; g < n / gs; g++) {
        const int8_t *wg = w + (size_t)g * gs, *xg = x + (size_t)g * gs;
        int32_t isum = 0;
        #pragma omp simd reduction(+:isum)
        for (int j = 0; j < gs; j++) isum += (int32_t)wg[j] * (int32_t)xg[j];
        acc[g % 4] = MADD((float)isum, ws[g] * xs[g], acc[g % 4]);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

#ifdef HAVE_AVX2_KERNEL
/* A worked example of porting a loop to one CPU family: dot_q8 with AVX2
 * intrinsics (x86 since 2013). Compilers do not find this sequence on their
 * own: `gcc -S` shows dot_q8's inner loop widening the bytes to 16 bits
 * (vpmovsxbw), multiplying (vpmullw), widening to 32 (vpmovsxwd) and adding,
 * about twice the instructions per byte (what it buys: docs/performance.md,
 * "what each trick buys").
 * tests/test_forward.c checks it returns the same bits as dot_q8.
 *
 * The trick: x86 has no signed x signed byte multiply, only vpmaddubsw,
 * unsigned x signed, which multiplies 32 byte pairs and adds neighbours into
 * 16 int16. Move the sign of x onto w, |x| * (w * sign(x)) = w * x, and
 * both fit: |x| <= 127 as unsigned, w * sign(x) in [-127, 127], and a pair
 * sums to at most 2 * 127 * 127 = 32258 < 32767, so nothing saturates.
 * vpmaddwd with ones then adds neighbouring int16 into 8 int32, and
 * those into the running sum. */
static inline __m256i dot32_i8(__m256i sum, __m256i w, __m256i x) {
    __m256i x_abs = _mm256_sign_epi8(x, x);          /* |x| */
    __m256i w_signed = _mm256_sign_epi8(w, x);       /* w * sign(x) (0 where x = 0) */
#if defined(__AVXVNNI__)
    /* CPUs with AVX-VNNI (Zen 4 and 5, Intel since Alder Lake) do the three
     * steps below in one instruction, vpdpbusd (it speeds prompts up;
     * generating, limited by memory, gains nothing) */
    return _mm256_dpbusd_avx_epi32(sum, x_abs, w_signed);
#else
    __m256i pairs = _mm256_maddubs_epi16(x_abs, w_signed);          /* 16 x int16 */
    return _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));  /* 8 x int32 */
#endif
}

/* Software prefetch: ask for the weights this many bytes ahead of the ones
 * being multiplied. Generating a token streams the int8 weights from memory,
 * and the hardware prefetcher alone leaves the memory bus idle part of the
 * time; with the prefetch one thread reads near its bandwidth bound
 * (docs/performance.md).
 * Prefetching past the end of the matrix is harmless: it never faults. */
#define PREFETCH_AHEAD 8192

static inline float dot_q8_avx2_body(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n,
                                     int gs) {
    int n_groups = n / gs, g = 0;
    __m128 acc = _mm_setzero_ps();   /* lane k holds dot_q8's acc[k] */
    for (; g + 4 <= n_groups; g += 4) {   /* four groups at a time */
        __m256i sums[4];
        for (int k = 0; k < 4; k++) {
            const int8_t *wg = w + (size_t)(g + k) * gs, *xg = x + (size_t)(g + k) * gs;
            _mm_prefetch((const char *)(wg + PREFETCH_AHEAD), _MM_HINT_T0);
            __m256i s = _mm256_setzero_si256();
            for (int j = 0; j < gs; j += 32)
                s = dot32_i8(s, _mm256_loadu_si256((const __m256i *)(wg + j)), _mm256_loadu_si256((const __m256i *)(xg + j)));
            sums[k] = s;
        }
        /* add up each group's 8 lanes, all four groups at once: after the
         * three horizontal adds, lane k of each 128-bit half holds half of
         * group g + k's sum */
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(sums[0], sums[1]), _mm256_hadd_epi32(sums[2], sums[3]));
        __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m128 scale = _mm_mul_ps(_mm_loadu_ps(ws + g), _mm_loadu_ps(xs + g));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(isum), scale, acc);   /* = MADD of dot_q8, lane by lane */
    }
    float lanes[4];
    _mm_storeu_ps(lanes, acc);
    for (; g < n_groups; g++) {   /* the last n_groups % 4 groups, as dot_q8 does them */
        const int8_t *wg = w + (size_t)g * gs, *xg = x + (size_t)g * gs;
        _mm_prefetch((const char *)(wg + PREFETCH_AHEAD), _MM_HINT_T0);
        __m256i s = _mm256_setzero_si256();
        for (int j = 0; j < gs; j += 32)
            s = dot32_i8(s, _mm256_loadu_si256((const __m256i *)(wg + j)), _mm256_loadu_si256((const __m256i *)(xg + j)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        lanes[g % 4] = MADD((float)_mm_cvtsi128_si32(s4), ws[g] * xs[g], lanes[g % 4]);
    }
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/* The common group sizes get their own copy of the loop, compiled with gs a
 * constant: the compiler then unrolls the 32-byte steps of a group and the
 * four groups of a step completely, and keeps the sums in registers. */
float dot_q8_avx2(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n, int gs) {
    switch (gs) {
    case 32: return dot_q8_avx2_body(w, ws, x, xs, n, 32);
    case 64: return dot_q8_avx2_body(w, ws, x, xs, n, 64);
    case 128: return dot_q8_avx2_body(w, ws, x, xs, n, 128);
    default:
        if (gs % 32 != 0) return dot_q8(w, ws, x, xs, n, gs);   /* groups of whole 32-byte vectors only */
        return dot_q8_avx2_body(w, ws, x, xs, n, gs);
    }
}
#define DOT_Q8 dot_q8_avx2
#else
#define DOT_Q8 dot_q8
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* dot_q8_avx2 with 512-bit vectors, for CPUs with AVX-512 VNNI: 64 byte
 * products per vpdpbusd. The sign trick of dot32_i8 without vpsignb, which
 * 512-bit registers lack: the bytes where x < 0 form a mask, and a masked
 * subtract from zero negates w there. (|x| = 128 cannot occur: quantize_q8
 * stops at -127.) Replaces dot_q8_avx2 where groups are whole 64-byte
 * vectors; the same groups of four, the same float steps, the same bits
 * (tests/test_forward.c). */
static inline __m512i dot64_i8(__m512i sum, __m512i w, __m512i x) {
    __m512i w_signed = _mm512_mask_sub_epi8(w, _mm512_movepi8_mask(x), _mm512_setzero_si512(), w);
    return _mm512_dpbusd_epi32(sum, _mm512_abs_epi8(x), w_signed);
}

static inline float dot_q8_vnni512_body(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n,
                                        int gs) {
    int n_groups = n / gs, g = 0;
    __m128 acc = _mm_setzero_ps();   /* lane k holds dot_q8's acc[k] */
    for (; g + 4 <= n_groups; g += 4) {
        __m256i sums[4];
        for (int k = 0; k < 4; k++) {
            const int8_t *wg = w + (size_t)(g + k) * gs, *xg = x + (size_t)(g + k) * gs;
            _mm_prefetch((const char *)(wg + PREFETCH_AHEAD), _MM_HINT_T0);
            __m512i s = _mm512_setzero_si512();
            for (int j = 0; j < gs; j += 64)
                s = dot64_i8(s, _mm512_loadu_si512(wg + j), _mm512_loadu_si512(xg + j));
            sums[k] = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
        }
        /* from here on, dot_q8_avx2_body's steps */
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(sums[0], sums[1]), _mm256_hadd_epi32(sums[2], sums[3]));
        __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m128 scale = _mm_mul_ps(_mm_loadu_ps(ws + g), _mm_loadu_ps(xs + g));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(isum), scale, acc);
    }
    float lanes[4];
    _mm_storeu_ps(lanes, acc);
    for (; g < n_groups; g++) {
        const int8_t *wg = w + (size_t)g * gs, *xg = x + (size_t)g * gs;
        __m512i s = _mm512_setzero_si512();
        for (int j = 0; j < gs; j += 64) s = dot64_i8(s, _mm512_loadu_si512(wg + j), _mm512_loadu_si512(xg + j));
        lanes[g % 4] = MADD((float)_mm512_reduce_add_epi32(s), ws[g] * xs[g], lanes[g % 4]);
    }
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

float dot_q8_vnni512(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int n, int gs) {
    switch (gs) {
    case 64: return dot_q8_vnni512_body(w, ws, x, xs, n, 64);
    case 128: return dot_q8_vnni512_body(w, ws, x, xs, n, 128);
    default:
        if (gs % 64 != 0) return dot_q8_avx2(w, ws, x, xs, n, gs);   /* groups of 32, 96, ...: 256-bit */
        return dot_q8_vnni512_body(w, ws, x, xs, n, gs);
    }
}
#undef DOT_Q8
#define DOT_Q8 dot_q8_vnni512
#endif

/* out (T, d) = x (T, n) @ W (d, n) transposed, W and x in int8 groups.
 * One row at a time, against every position of the chunk while the row
 * (n bytes) sits in L1: each weight comes from memory once per chunk.
 * dot_fn is dot_q8 (the portable loop: Part I's linear() uses it) or
 * DOT_Q8 (the fastest this CPU has: the fast path uses it for one
 * position; a chunk goes to matmul_q8_chunk(), below). */
void matmul_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, int n, int d,
               int T, int gs, DotQ8 dot_fn) {
    size_t groups = (size_t)(n / gs);   /* per row */
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < d; i++) {
        const int8_t *row = wq + (size_t)i * n;
        const float *row_scales = ws + (size_t)i * groups;
        for (int t = 0; t < T; t++)
            out[(size_t)t * d + i] = dot_fn(row, row_scales, xq + (size_t)t * n, xs + (size_t)t * groups, n, gs);
    }
}

/* --- the tiled int8 matmul for a chunk -------------------------------------
 * matmul_q8() above is one dot_q8 per (row, position): for a chunk it
 * reloads every position's x for every row, and each dot product ends each
 * group with a horizontal add across a vector. Section 8's answer works
 * here too: a tile of Q8_ROWS rows of W by Q8_PANEL positions of x, its
 * int32 group sums in vector registers, one lane per position. x is
 * rearranged first into panels (pack_q8_panels()): for each 4 consecutive
 * inputs k, the 4 bytes of each of Q8_PANEL positions side by side, so one
 * vector load brings 4 inputs of 16 positions, and one 4-byte broadcast of
 * a weight row meets all of them. The instruction made for this is VNNI's
 * vpdpbusd: in each 32-bit lane, 4 byte products added to an int32 sum.
 *
 * Every output gets exactly dot_q8's arithmetic: the int32 sum of a group
 * is exact whichever way it is added up, and the float steps after it are
 * dot_q8's, in its order (acc[g % 4], then the two pairs). So the chunk
 * gives the bits one position at a time gives, on every kernel below
 * (tests/test_forward.c checks each against the portable one and dot_q8).
 *
 * The loops: each thread takes tiles of Q8_ROWS rows; for each group g of
 * those rows (Q8_ROWS x gs bytes, in L1), every panel of the chunk (all of
 * x, in L2); the float sums of the whole chunk for those rows wait in
 * acc[4][Q8_ROWS][CHUNK], in L1. */
#define Q8_ROWS 4
#define Q8_PANEL 16

/* Bytes and floats of scratch matmul_q8_chunk() needs for T positions of n
 * inputs in groups of gs: x as panels, then its scales as panels. */
size_t q8_panel_bytes(int T, int n) { return (size_t)(T + Q8_PANEL - 1) / Q8_PANEL * Q8_PANEL * n; }
size_t q8_scale_panel_floats(int T, int n, int gs) { return q8_panel_bytes(T, n) / (size_t)gs; }

/* x (T, n) into panels of Q8_PANEL positions: input k of position p * 16 + j
 * is at xp[p][k / 4][j][k % 4], its group's scale at xsp[p][g][j].
 * Positions past T are zeros (scale 0), so the kernels need no edge case. */
void pack_q8_panels(int8_t *xp, float *xsp, const int8_t *xq, const float *xs, int n, int gs, int T) {
    int panels = (T + Q8_PANEL - 1) / Q8_PANEL, groups = n / gs;
    #pragma omp for schedule(static)
    for (int p = 0; p < panels; p++) {
        int8_t *dst = xp + (size_t)p * Q8_PANEL * n;
        float *dst_scales = xsp + (size_t)p * Q8_PANEL * groups;
        for (int j = 0; j < Q8_PANEL; j++) {
            int t = p * Q8_PANEL + j;
            for (int k = 0; k < n; k += 4)
                for (int b = 0; b < 4; b++)
                    dst[((size_t)(k / 4) * Q8_PANEL + j) * 4 + b] = t < T ? xq[(size_t)t * n + k + b] : 0;
            for (int g = 0; g < groups; g++)
                dst_scales[(size_t)g * Q8_PANEL + j] = t < T ? xs[(size_t)t * groups + g] : 0.0f;
        }
    }
}

/* The int32 sums of one group for a tile: for r < Q8_ROWS and j < Q8_PANEL,
 *     isum[r][j] = sum over k < gs of w[r * n + k] * x_j[k],
 * w pointing at the group in row 0 of the tile, xp at the group in a panel.
 * The portable kernel, the reference the others must equal (they do:
 * every sum is exact in int32). */
static inline void q8_tile_sums_portable(int32_t isum[Q8_ROWS][Q8_PANEL], const int8_t *w, size_t n,
                                         const int8_t *xp, int gs) {
    for (int r = 0; r < Q8_ROWS; r++) {
        int32_t s[Q8_PANEL] = {0};
        for (int k = 0; k < gs; k += 4)
            for (int b = 0; b < 4; b++) {
                int32_t wk = w[r * n + k + b];
                #pragma omp simd
                for (int j = 0; j < Q8_PANEL; j++) s[j] += wk * xp[((size_t)(k / 4) * Q8_PANEL + j) * 4 + b];
            }
        for (int j = 0; j < Q8_PANEL; j++) isum[r][j] = s[j];
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* AVX-512 VNNI (Intel since Ice Lake, AMD since Zen 4): the 16 positions
 * of a panel are the 16 lanes of one 512-bit register, and each step is
 * one vpdpbusd per row. vpdpbusd multiplies unsigned bytes by signed ones;
 * here both are signed, and a 512-bit register has no vpsignb for
 * dot32_i8's sign trick. So x moves up by 128 into 0..255 (flipping the top
 * bit does it), and the sum sheds the 128 * (sum of the group's weights) this
 * adds: the sum starts at -128 * w_sums[r], computed once per group of the
 * tile (Q8_NEEDS_W_SUMS), and ends exact. Replaces q8_tile_sums_portable. */
#define Q8_NEEDS_W_SUMS 1
static inline void q8_tile_sums_vnni512(int32_t isum[Q8_ROWS][Q8_PANEL], const int8_t *w, size_t n,
                                        const int8_t *xp, int gs, const int32_t *w_sums) {
    __m512i sum[Q8_ROWS];
    for (int r = 0; r < Q8_ROWS; r++) sum[r] = _mm512_set1_epi32(-128 * w_sums[r]);
    const __m512i top_bit = _mm512_set1_epi8((char)0x80);
    for (int k = 0; k < gs; k += 4) {
        __m512i x_plus_128 = _mm512_xor_si512(_mm512_loadu_si512(xp + (size_t)k * Q8_PANEL), top_bit);
        for (int r = 0; r < Q8_ROWS; r++) {
            int32_t w4;   /* the 4 weights k .. k + 3 of row r, to every lane */
            memcpy(&w4, w + r * n + k, 4);
            sum[r] = _mm512_dpbusd_epi32(sum[r], x_plus_128, _mm512_set1_epi32(w4));
        }
    }
    for (int r = 0; r < Q8_ROWS; r++) _mm512_storeu_si512(isum[r], sum[r]);
}
#define Q8_TILE_SUMS(isum, w, n, xp, gs, w_sums) q8_tile_sums_vnni512(isum, w, n, xp, gs, w_sums)
#elif defined(HAVE_AVX2_KERNEL)
/* AVX2 (and AVX-VNNI, through dot32_i8): a panel is two 256-bit registers
 * of 8 positions, and dot32_i8's sign trick multiplies the broadcast
 * weights by them. Replaces q8_tile_sums_portable. */
#define Q8_NEEDS_W_SUMS 0
static inline void q8_tile_sums_avx2(int32_t isum[Q8_ROWS][Q8_PANEL], const int8_t *w, size_t n,
                                     const int8_t *xp, int gs) {
    __m256i sum[Q8_ROWS][2];
    for (int r = 0; r < Q8_ROWS; r++) sum[r][0] = sum[r][1] = _mm256_setzero_si256();
    for (int k = 0; k < gs; k += 4) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xp + (size_t)k * Q8_PANEL));        /* positions 0-7 */
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xp + (size_t)k * Q8_PANEL + 32));   /* 8-15 */
        for (int r = 0; r < Q8_ROWS; r++) {
            int32_t w4;
            memcpy(&w4, w + r * n + k, 4);
            __m256i w_all = _mm256_set1_epi32(w4);
            sum[r][0] = dot32_i8(sum[r][0], w_all, x0);
            sum[r][1] = dot32_i8(sum[r][1], w_all, x1);
        }
    }
    for (int r = 0; r < Q8_ROWS; r++) {
        _mm256_storeu_si256((__m256i *)isum[r], sum[r][0]);
        _mm256_storeu_si256((__m256i *)(isum[r] + 8), sum[r][1]);
    }
}
#define Q8_TILE_SUMS(isum, w, n, xp, gs, w_sums) q8_tile_sums_avx2(isum, w, n, xp, gs)
#else
#define Q8_NEEDS_W_SUMS 0
#define Q8_TILE_SUMS(isum, w, n, xp, gs, w_sums) q8_tile_sums_portable(isum, w, n, xp, gs)
#endif

/* The tile of rows i0 .. i0 + Q8_ROWS against every panel: their outputs
 * at position t go to out[t * out_rs + r]. `portable` picks the kernel: a
 * constant wherever this is inlined, so the test below is compiled away. */
static inline void q8_row_tile(float *out, size_t out_rs, const int8_t *xp, const float *xsp, const int8_t *wq,
                               const float *ws, int n, int T, int gs, int i0, int portable) {
    int panels = (T + Q8_PANEL - 1) / Q8_PANEL, groups = n / gs;
    float acc[4][Q8_ROWS][CHUNK];   /* dot_q8's four partial sums, for every position */
    memset(acc, 0, sizeof acc);
    for (int g = 0; g < groups; g++) {
        const int8_t *wg = wq + (size_t)i0 * n + (size_t)g * gs;
        int32_t w_sums[Q8_ROWS] = {0};
        if (Q8_NEEDS_W_SUMS && !portable)
            for (int r = 0; r < Q8_ROWS; r++)
                for (int k = 0; k < gs; k++) w_sums[r] += wg[(size_t)r * n + k];
        for (int p = 0; p < panels; p++) {
            const int8_t *xpg = xp + (size_t)p * Q8_PANEL * n + (size_t)g * gs * Q8_PANEL;
            const float *xs_g = xsp + ((size_t)p * groups + g) * Q8_PANEL;
            int32_t isum[Q8_ROWS][Q8_PANEL];
            if (portable) q8_tile_sums_portable(isum, wg, (size_t)n, xpg, gs);
            else Q8_TILE_SUMS(isum, wg, (size_t)n, xpg, gs, w_sums);
            for (int r = 0; r < Q8_ROWS; r++) {
                float w_scale = ws[(size_t)(i0 + r) * groups + g];
                float *a = &acc[g % 4][r][p * Q8_PANEL];
                #pragma omp simd
                for (int j = 0; j < Q8_PANEL; j++) a[j] = MADD((float)isum[r][j], w_scale * xs_g[j], a[j]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < Q8_ROWS; r++)
            out[(size_t)t * out_rs + r] = (acc[0][r][t] + acc[1][r][t]) + (acc[2][r][t] + acc[3][r][t]);
}

/* Rows i0 .. i0 + rows (at most Q8_BLOCK_ROWS, a multiple of Q8_ROWS), tile
 * by tile. out is position-major: a tile written straight into it would
 * put 16 bytes on each of T lines d floats apart, which in a power-of-two
 * d share one set of the L1 cache (as in matmul_chunk()). So the block's
 * outputs are gathered first, then written a whole cache line per position. */
#define Q8_BLOCK_ROWS 16
static inline void q8_row_block(float *out, const int8_t *xp, const float *xsp, const int8_t *wq, const float *ws,
                                int n, int d, int T, int gs, int i0, int rows, int portable) {
    float block[CHUNK][Q8_BLOCK_ROWS];
    for (int r = 0; r < rows; r += Q8_ROWS)
        q8_row_tile(&block[0][r], Q8_BLOCK_ROWS, xp, xsp, wq, ws, n, T, gs, i0 + r, portable);
    for (int t = 0; t < T; t++) memcpy(out + (size_t)t * d + i0, block[t], sizeof(float) * (size_t)rows);
}

/* out (T, d) = x (T, n) @ W (d, n) transposed, for a chunk: matmul_q8()'s
 * result, bit for bit, with the tiled kernel. Replaces matmul_q8() for a
 * chunk. `scratch` holds the panels (q8_panel_bytes(T, n) bytes, then
 * q8_scale_panel_floats(T, n, gs) floats; the fast state's float32 panels
 * have room). Every output is computed by one thread: the thread count
 * changes no bit. The last d % Q8_ROWS rows, and groups of a size that is
 * not a multiple of 4 (llama2.c files may have them), go through DOT_Q8.
 * `portable` = 1 runs the portable kernel (for the tests). */
void matmul_q8_chunk(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, int n,
                     int d, int T, int gs, void *scratch, int portable) {
    if (gs % 4 != 0 || T > CHUNK) {
        matmul_q8(out, xq, xs, wq, ws, n, d, T, gs, DOT_Q8);
        return;
    }
    float *xsp = scratch;   /* the scales first, so they are aligned for floats */
    int8_t *xp = (int8_t *)(xsp + q8_scale_panel_floats(T, n, gs));
    int tiled_rows = d / Q8_ROWS * Q8_ROWS;
    size_t groups = (size_t)(n / gs);
    #pragma omp parallel
    {
        pack_q8_panels(xp, xsp, xq, xs, n, gs, T);   /* an omp for: the threads share it, then wait */
        if (portable) {
            #pragma omp for schedule(static) nowait
            for (int i0 = 0; i0 < tiled_rows; i0 += Q8_BLOCK_ROWS)
                q8_row_block(out, xp, xsp, wq, ws, n, d, T, gs, i0, tiled_rows - i0 < Q8_BLOCK_ROWS ? tiled_rows - i0 : Q8_BLOCK_ROWS, 1);
        } else {
            #pragma omp for schedule(static) nowait
            for (int i0 = 0; i0 < tiled_rows; i0 += Q8_BLOCK_ROWS)
                q8_row_block(out, xp, xsp, wq, ws, n, d, T, gs, i0, tiled_rows - i0 < Q8_BLOCK_ROWS ? tiled_rows - i0 : Q8_BLOCK_ROWS, 0);
        }
        #pragma omp for schedule(static)
        for (int i = tiled_rows; i < d; i++)
            for (int t = 0; t < T; t++)
                out[(size_t)t * d + i] =
                    DOT_Q8(wq + (size_t)i * n, ws + (size_t)i * groups, xq + (size_t)t * n, xs + (size_t)t * groups, n, gs);
    }
}

/* out (T, d) = x (T, n) through the linear layer W, float32 or int8 (then
 * x is quantized on the fly, into the run state's scratch): Part I's
 * linear(), for a chunk. */
void linear_chunk(float *out, const float *x, Mat w, int n, int d, int T, FastState *s) {
    if (w.f) {
        matmul_chunk(out, x, w.f, n, d, T, s->x_panels);
        return;
    }
    quantize_q8(s->xq, s->xq_scale, x, (size_t)T * n, w.group_size);
    if (T == 1)
        matmul_q8(out, s->xq, s->xq_scale, w.q, w.s, n, d, 1, w.group_size, DOT_Q8);
    else
        matmul_q8_chunk(out, s->xq, s->xq_scale, w.q, w.s, n, d, T, w.group_size, s->x_panels, 0);
}

/* ===========================================================================
 * 10. Attention over a KV cache in blocks
 * =========================================================================*/

/* Where layer l's kv head g keeps its keys and values (layout: section 7). */
float *keys_of(const Transformer *t, int l, int g) {
    const FastState *s = t->fast;
    size_t head = (size_t)l * t->config.n_kv_heads + g;
    return s->key_cache + head * s->padded_seq_len * t->config.head_dim;
}
float *values_of(const Transformer *t, int l, int g) {
    const FastState *s = t->fast;
    size_t head = (size_t)l * t->config.n_kv_heads + g;
    return s->value_cache + head * s->padded_seq_len * s->value_panels * TILE_N;
}

/* Part I's attention(), for the n positions pos .. pos + n - 1 of a
 * chunk, in layer l, on the blocked cache. Each query head h of the position p = pos + i looks at the keys of every
 * position t <= p (causal):
 *     score_t = q_h . k_t / sqrt(head_dim),  a = softmax(score),
 *     out_h   = sum_t a_t v_t
 * The chunk's own keys and values are already in the cache, so position p
 * sees the earlier positions of its chunk, itself, and none after it.
 * With grouped-query attention, n_heads / n_kv_heads query heads share one
 * key/value head: query head h reads kv head h / (n_heads / n_kv_heads).
 *
 * attend_one() computes it for one query (position i of the chunk, head h).
 * The cache's layout (section 7) lets it work on TILE_N keys at a time: in a
 * block, element d of TILE_N consecutive keys sits side by side, so
 *     score[j] += q[d] * key_block[d][j]      for j < TILE_N
 * is one or two vector multiply-adds, and the sum over d needs no
 * horizontal adds at the end. The weighted sum of values is the same kind
 * of loop, on a panel of TILE_N elements of every value. Each score and
 * each output is the same sum, in the same order, as Part I's attention()
 * computes; the two differ only in the last bits, where the compiler fuses
 * a multiply and an add into one FMA in one loop and not in the other.
 * (What the blocks buy over keys stored row by row: docs/performance.md.) */
void attend_one(const Transformer *t, int l, int pos, int i, int h) {
    const Config *c = &t->config;
    const FastState *s = t->fast;
    int head_dim = c->head_dim, q_dim = c->n_heads * head_dim, g = h / (c->n_heads / c->n_kv_heads);
    float scale = 1.0f / sqrtf((float)head_dim);
    int last = pos + i;   /* the position of this query: it sees keys 0 .. last */
    const float *q = s->q + (size_t)i * q_dim + (size_t)h * head_dim;
    const float *keys = keys_of(t, l, g), *values = values_of(t, l, g);
    float *att = s->att + ((size_t)i * c->n_heads + h) * s->padded_seq_len;
    for (int p0 = 0; p0 <= last; p0 += TILE_N) {   /* scores, a block of TILE_N keys at a time */
        const float *key_block = keys + (size_t)p0 * head_dim;
        float score[TILE_N] = {0};
        for (int d = 0; d < head_dim; d++) {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) score[j] += q[d] * key_block[(size_t)d * TILE_N + j];
        }
        for (int j = 0; j < TILE_N && p0 + j <= last; j++) att[p0 + j] = score[j] * scale;
    }
    softmax(att, last + 1);
    float *out = s->xb + (size_t)i * q_dim + (size_t)h * head_dim;
    for (int panel = 0; panel < s->value_panels; panel++) {   /* out = sum_t a_t v_t, TILE_N elements at a time */
        const float *v = values + (size_t)panel * s->padded_seq_len * TILE_N;
        float sum[TILE_N] = {0};
        for (int p = 0; p <= last; p++) {
            #pragma omp simd
            for (int j = 0; j < TILE_N; j++) sum[j] += att[p] * v[(size_t)p * TILE_N + j];
        }
        int width = head_dim - panel * TILE_N < TILE_N ? head_dim - panel * TILE_N : TILE_N;
        memcpy(out + panel * TILE_N, sum, (size_t)width * sizeof(float));
    }
}

/* For a chunk, the same sums as two matrix products, TILE_M positions of
 * one head at a time, on the matmul's tiled kernel:
 *     S = Q Kᵀ      (TILE_M, keys)    a key block is exactly a panel the kernel reads
 *     P = softmax of each row of S / sqrt(head_dim), over the keys the row may see
 *     O = P V       (TILE_M, head_dim), one value panel at a time
 * In a tile, row r may see keys 0 .. pos + i0 + r. The kernel computes the
 * scores of the tile's last row for every row, and the softmax leaves the
 * ones a row may not see at zero, so they add nothing to O. Each output is
 * the same sum, in the same order, as attend_one() computes: a prompt fed
 * in chunks or token by token gives the same bits here.
 *
 * The rows a chunk leaves over (n % TILE_M) and the chunk of one token go
 * through attend_one(). The (tile, head) pairs are independent; later tiles
 * see more keys, so OpenMP deals them out round-robin (static, 1), a fair
 * share of both to every core. */
void attention_chunk(Transformer *t, int l, int pos, int n) {
    const Config *c = &t->config;
    FastState *s = t->fast;
    int head_dim = c->head_dim, n_heads = c->n_heads, q_dim = n_heads * head_dim;
    int kv_mul = n_heads / c->n_kv_heads, tiles = n / TILE_M;
    size_t row_stride = (size_t)n_heads * s->padded_seq_len;   /* from one position's scores to the next's */
    float scale = 1.0f / sqrtf((float)head_dim);
    #pragma omp parallel
    {
        #pragma omp for collapse(2) schedule(static, 1) nowait
        for (int tile = 0; tile < tiles; tile++) {
            for (int h = 0; h < n_heads; h++) {
                int i0 = tile * TILE_M, seen = pos + i0 + TILE_M;   /* keys the tile's last row sees */
                const float *keys = keys_of(t, l, h / kv_mul), *values = values_of(t, l, h / kv_mul);
                const float *q = s->q + (size_t)i0 * q_dim + (size_t)h * head_dim;
                float *att = s->att + ((size_t)i0 * n_heads + h) * s->padded_seq_len;
                for (int p0 = 0; p0 < seen; p0 += TILE_N)   /* S = Q Kᵀ */
                    micro_kernel(head_dim, q, (size_t)q_dim, 1, keys + (size_t)p0 * head_dim, att + p0, row_stride, 1, 1);
                for (int r = 0; r < TILE_M; r++) {          /* P = softmax(S / sqrt(head_dim)), causal */
                    float *row = att + r * row_stride;
                    int visible = pos + i0 + r + 1;
                    for (int k = 0; k < visible; k++) row[k] *= scale;
                    softmax(row, visible);
                    for (int k = visible; k < seen; k++) row[k] = 0.0f;
                }
                for (int panel = 0; panel < s->value_panels; panel++) {   /* O = P V */
                    float tile_out[TILE_M * TILE_N];
                    micro_kernel(seen, att, row_stride, 1, values + (size_t)panel * s->padded_seq_len * TILE_N,
                                 tile_out, TILE_N, 1, 1);
                    float *out = s->xb + (size_t)i0 * q_dim + (size_t)h * head_dim + (size_t)panel * TILE_N;
                    int width = head_dim - panel * TILE_N < TILE_N ? head_dim - panel * TILE_N : TILE_N;
                    for (int r = 0; r < TILE_M; r++)   /* a head narrower than the panel keeps its part */
                        memcpy(out + (size_t)r * q_dim, tile_out + r * TILE_N, (size_t)width * sizeof(float));
                }
            }
        }
        #pragma omp for collapse(2) schedule(static, 1)
        for (int i = tiles * TILE_M; i < n; i++)
            for (int h = 0; h < n_heads; h++) attend_one(t, l, pos, i, h);
    }
}

/* ===========================================================================
 * 11. Backends: the forward pass as a table of ops
 * =========================================================================*/

/* Part I's forward() calls its kernels directly. To run the same forward
 * pass on other hardware (a GPU through OpenCL or CUDA: port/ and
 * docs/porting.md), the ops it is made of become a table of functions that
 * a backend fills in, and forward_chunk() below calls them in order, a
 * chunk of positions at a time. A backend keeps its own copy of what the
 * ops work on: the weights (uploaded once, by load(), and freed with the
 * model by release()), a chunk's activations and the KV cache. They stay
 * where the backend put them for the whole forward pass; only the logits
 * come back. Three backends live in this file or beside it:
 *   "reference"  Part I's functions themselves, one position at a time
 *   "cpu"        this part's: chunks, the tiled matmul, the blocked cache
 *   "opencl", "cuda"  the ports in port/, built with -DLAMP_OPENCL or
 *                -DLAMP_CUDA (make opencl, make cuda)
 * The ops name the activations they read and write (BUF_X is the run
 * state's x, ...), each a row per position of the chunk, and the weight
 * matrices (MAT_WQ is wq, ...) with their layer; how a backend lays them out
 * is its own business. The table is called once per op per layer, never
 * per number: on the CPU it costs nothing measurable. */
enum { BUF_X, BUF_XB, BUF_XB2, BUF_HB, BUF_HB2, BUF_Q, BUF_K, BUF_V, N_BUFS };
enum { MAT_WQ, MAT_WK, MAT_WV, MAT_WO, MAT_W1, MAT_W2, MAT_W3, MAT_WCLS, N_MATS };
enum { NORM_ATT, NORM_FFN };
enum { LOGITS_NONE, LOGITS_LAST, LOGITS_ALL };

/* Each op works on the n positions pos .. pos + n - 1 of a chunk (n <=
 * max_chunk), in layer l. */
typedef struct Backend {
    const char *name;
    int max_chunk;                     /* the most positions one call takes */
    void (*load)(Transformer *t);      /* upload the weights; allocate activations and the KV cache */
    void (*release)(Transformer *t);   /* free all of it (free_transformer() calls it) */
    void (*describe)(const Transformer *t, char *text, size_t size);   /* the device, for -v */
    void (*embed)(Transformer *t, const int *tokens, int n);           /* x = embedding[token] */
    void (*rmsnorm)(Transformer *t, int norm, int l, int n);           /* xb = rmsnorm(x), gain NORM_ATT/FFN */
    void (*matmul)(Transformer *t, int out, int in, int mat, int l, int n);   /* out = W in, float32 or Q8_0 */
    void (*rope)(Transformer *t, int pos, int n);                     /* rotate q and k */
    void (*store_kv)(Transformer *t, int l, int pos, int n);          /* k and v join the cache */
    void (*attention)(Transformer *t, int l, int pos, int n);         /* xb = attention of q over the cache */
    void (*swiglu)(Transformer *t, int n);                            /* hb = silu(hb) * hb2 */
    void (*residual)(Transformer *t, int n);                          /* x += xb2 */
    /* final norm of x's rows first .. n - 1 (in place), then the classifier;
     * returns their logits, (n - first, vocab_size), in host memory */
    float *(*logits)(Transformer *t, int first, int n);
    /* for --trace only: copy to the host count floats of buffer buf from
     * float `offset`, and the cached key and value of positions pos ..
     * pos + n - 1 of layer l as (n, 2 kv_dim) rows, key then value */
    void (*read)(Transformer *t, int buf, size_t offset, size_t count, float *host);
    void (*read_kv)(Transformer *t, int l, int pos, int n, float *host);
} Backend;

/* Matrix mat's shape, rows (outputs) x cols (inputs), and layer l's copy. */
void matrix_shape(const Config *c, int mat, int *rows, int *cols) {
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int shapes[N_MATS][2] = {{q_dim, c->dim},  {kv_dim, c->dim},     {kv_dim, c->dim},
                             {c->dim, q_dim},  {c->hidden_dim, c->dim}, {c->dim, c->hidden_dim},
                             {c->hidden_dim, c->dim}, {c->vocab_size, c->dim}};
    *rows = shapes[mat][0];
    *cols = shapes[mat][1];
}
Mat model_matrix(const Transformer *t, int mat, int l) {
    const Weights *w = &t->weights;
    int rows, cols;
    matrix_shape(&t->config, mat, &rows, &cols);
    size_t size = (size_t)rows * cols;
    switch (mat) {
    case MAT_WQ: return layer_matrix(w, w->wq, w->q_wq, (size_t)l, size);
    case MAT_WK: return layer_matrix(w, w->wk, w->q_wk, (size_t)l, size);
    case MAT_WV: return layer_matrix(w, w->wv, w->q_wv, (size_t)l, size);
    case MAT_WO: return layer_matrix(w, w->wo, w->q_wo, (size_t)l, size);
    case MAT_W1: return layer_matrix(w, w->w1, w->q_w1, (size_t)l, size);
    case MAT_W2: return layer_matrix(w, w->w2, w->q_w2, (size_t)l, size);
    case MAT_W3: return layer_matrix(w, w->w3, w->q_w3, (size_t)l, size);
    default:     return layer_matrix(w, w->wcls, &w->q_wcls, 0, 0);
    }
}

/* --- the trace -------------------------------------------------------------
 * `./run --trace FILE` writes every op's output, for every position, in the
 * order the ops run: one record per (op, layer, position),
 *     char op[16] (the name, NUL-padded), int32 layer (-1 outside the
 *     layers), int32 position, int32 n, float32 values[n]
 * after the 8 bytes "LAMPTRC1"; little-endian, as the CPU writes them.
 * `./run --compare-traces A B` (Part III) reads two and names the first op
 * that differs. TRACE_OPS is the order of the ops in the forward pass. */
#define TRACE_OPS "embed attn_norm q k v rope_q rope_k kv_cache attention wo attn_residual " \
                  "ffn_norm w1 w3 swiglu w2 ffn_residual final_norm logits"

/* n rows of `width` values, positions pos .., into the trace. */
void trace_rows(Transformer *t, const char *op, int layer, int pos, int n, const float *rows, int width) {
    for (int i = 0; i < n; i++) {
        char name[16] = {0};
        strncpy(name, op, sizeof name - 1);
        int32_t head[3] = {layer, pos + i, width};
        if (fwrite(name, 1, 16, t->trace) != 16 || fwrite(head, 4, 3, t->trace) != 3 ||
            fwrite(rows + (size_t)i * width, sizeof(float), (size_t)width, t->trace) != (size_t)width)
            fatal("cannot write the trace: %s", strerror(errno));
    }
}

/* After an op: its output, n rows of `width` floats of buffer buf, into
 * the trace (nothing happens without --trace). */
void trace_op(Transformer *t, const char *op, int layer, int pos, int n, int buf, int width) {
    if (!t->trace) return;
    float *rows = xmalloc((size_t)n * width * sizeof(float));
    t->backend->read(t, buf, 0, (size_t)n * width, rows);
    trace_rows(t, op, layer, pos, n, rows, width);
    free(rows);
}

/* The KV cache's new entries: what store_kv() wrote, read back. */
void trace_kv(Transformer *t, int layer, int pos, int n) {
    if (!t->trace) return;
    int width = 2 * t->config.n_kv_heads * t->config.head_dim;
    float *rows = xmalloc((size_t)n * width * sizeof(float));
    t->backend->read_kv(t, layer, pos, n, rows);
    trace_rows(t, "kv_cache", layer, pos, n, rows, width);
    free(rows);
}

/* --- the forward pass of a chunk ------------------------------------------ */

/* Non-finite activations stop the run with one line naming the layer where
 * they appeared (check_finite(), Part I). The CPU backends' x is host
 * memory, checked after every layer; a device backend's activations stay on
 * the device, so there only the logits are checked, when they come back. */
extern const Backend cpu_backend, reference_backend;
void check_layer_finite(const Transformer *t, int l, int pos, int n) {
    const float *x = t->backend == &cpu_backend         ? t->fast->x
                     : t->backend == &reference_backend ? t->state.x
                                                        : NULL;
    if (x) check_finite(t, x, (size_t)n * t->config.dim, "activations", l, pos, n);
}

/* Part I's forward() for a chunk, on t's backend: feed n tokens (1 <= n <=
 * max_chunk) at positions pos .. pos + n - 1; their keys and values join
 * the KV cache. Returns the logits: of the last position (LOGITS_LAST), of
 * every position, one row of vocab_size each (LOGITS_ALL, for eval), or
 * none (LOGITS_NONE).
 *
 * The n positions go through the layers together, as the rows of a matrix
 * (x is n x dim): every matmul then reads each weight once for all of them
 * instead of once per position. That is why a prompt is processed many
 * times faster than tokens are generated one by one (a new token needs the
 * previous one, so generating is always the chunk of one). The classifier,
 * a quarter of a small model's weights, runs only for the positions whose
 * logits are wanted: for a prompt, only the last. */
float *forward_chunk(Transformer *t, const int *tokens, int n, int pos, int logits_wanted) {
    const Config *c = &t->config;
    const Backend *b = t->backend;
    int dim = c->dim, hidden_dim = c->hidden_dim;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    if (n < 1 || n > b->max_chunk || pos < 0 || pos + n > c->seq_len)
        fatal("forward: %d tokens at position %d do not fit (chunk %d, context %d)", n, pos, b->max_chunk,
              c->seq_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            fatal("forward: token %d at position %d is outside the vocabulary (%d)", tokens[i], pos + i,
                  c->vocab_size);

    b->embed(t, tokens, n);                         /* each token's embedding starts its row of x */
    trace_op(t, "embed", -1, pos, n, BUF_X, dim);
    for (int l = 0; l < c->n_layers; l++) {
        /* --- attention block: x = x + wo @ attention(rope(wq @ n), rope(wk @ n), wv @ n),
         *     with n = rmsnorm(x), for every row */
        b->rmsnorm(t, NORM_ATT, l, n);              trace_op(t, "attn_norm", l, pos, n, BUF_XB, dim);
        b->matmul(t, BUF_Q, BUF_XB, MAT_WQ, l, n);  trace_op(t, "q", l, pos, n, BUF_Q, q_dim);
        b->matmul(t, BUF_K, BUF_XB, MAT_WK, l, n);  trace_op(t, "k", l, pos, n, BUF_K, kv_dim);
        b->matmul(t, BUF_V, BUF_XB, MAT_WV, l, n);  trace_op(t, "v", l, pos, n, BUF_V, kv_dim);
        b->rope(t, pos, n);                         trace_op(t, "rope_q", l, pos, n, BUF_Q, q_dim);
                                                    trace_op(t, "rope_k", l, pos, n, BUF_K, kv_dim);
        b->store_kv(t, l, pos, n);                  trace_kv(t, l, pos, n);
        b->attention(t, l, pos, n);                 trace_op(t, "attention", l, pos, n, BUF_XB, q_dim);
        b->matmul(t, BUF_XB2, BUF_XB, MAT_WO, l, n); trace_op(t, "wo", l, pos, n, BUF_XB2, dim);
        b->residual(t, n);                          trace_op(t, "attn_residual", l, pos, n, BUF_X, dim);
        /* --- feed-forward block: x = x + w2 @ (silu(w1 @ n) * (w3 @ n)), with n = rmsnorm(x) */
        b->rmsnorm(t, NORM_FFN, l, n);              trace_op(t, "ffn_norm", l, pos, n, BUF_XB, dim);
        b->matmul(t, BUF_HB, BUF_XB, MAT_W1, l, n); trace_op(t, "w1", l, pos, n, BUF_HB, hidden_dim);
        b->matmul(t, BUF_HB2, BUF_XB, MAT_W3, l, n); trace_op(t, "w3", l, pos, n, BUF_HB2, hidden_dim);
        b->swiglu(t, n);                            trace_op(t, "swiglu", l, pos, n, BUF_HB, hidden_dim);
        b->matmul(t, BUF_XB2, BUF_HB, MAT_W2, l, n); trace_op(t, "w2", l, pos, n, BUF_XB2, dim);
        b->residual(t, n);                          trace_op(t, "ffn_residual", l, pos, n, BUF_X, dim);
        check_layer_finite(t, l, pos, n);
    }
    if (logits_wanted == LOGITS_NONE) return NULL;

    /* final norm, then the classifier: one logit per vocabulary entry, for
     * the rows that want them */
    int first = logits_wanted == LOGITS_ALL ? 0 : n - 1;
    float *logits = b->logits(t, first, n);
    check_finite(t, logits, (size_t)(n - first) * c->vocab_size, "logits", -1, pos, n);
    if (t->trace) {
        float *rows = xmalloc((size_t)(n - first) * dim * sizeof(float));
        b->read(t, BUF_X, (size_t)first * dim, (size_t)(n - first) * dim, rows);
        trace_rows(t, "final_norm", -1, pos + first, n - first, rows, dim);
        trace_rows(t, "logits", -1, pos + first, n - first, logits, c->vocab_size);
        free(rows);
    }
    return logits;
}

/* Feed n tokens at positions pos .. pos + n - 1 (a prompt, a chat turn), a
 * chunk at a time; returns the logits after the last one. */
float *prefill(Transformer *t, const int *tokens, int n, int pos) {
    float *logits = NULL;
    int chunk = t->backend->max_chunk;
    for (int done = 0; done < n; done += chunk) {
        int m = n - done < chunk ? n - done : chunk;
        logits = forward_chunk(t, tokens + done, m, pos + done, done + m == n ? LOGITS_LAST : LOGITS_NONE);
    }
    return logits;
}

/* --- the CPU backend: this part's fast code ------------------------------- */

float *fast_buffer(const FastState *s, int buf) {
    float *const rows[N_BUFS] = {s->x, s->xb, s->xb2, s->hb, s->hb2, s->q, s->k, s->v};
    return rows[buf];
}

void cpu_embed(Transformer *t, const int *tokens, int n) {
    int dim = t->config.dim;
    for (int i = 0; i < n; i++) embed(t->fast->x + (size_t)i * dim, &t->weights, tokens[i], dim);
}

void cpu_rmsnorm(Transformer *t, int norm, int l, int n) {
    const Config *c = &t->config;
    FastState *s = t->fast;
    size_t dim = (size_t)c->dim;
    const float *gain = (norm == NORM_ATT ? t->weights.rms_att_weight : t->weights.rms_ffn_weight) + l * dim;
    for (size_t i = 0; i < (size_t)n; i++) rmsnorm(s->xb + i * dim, s->x + i * dim, gain, c->dim, c->norm_eps);
}

void cpu_matmul(Transformer *t, int out, int in, int mat, int l, int n) {
    int rows, cols;
    matrix_shape(&t->config, mat, &rows, &cols);
    linear_chunk(fast_buffer(t->fast, out), fast_buffer(t->fast, in), model_matrix(t, mat, l), cols, rows, n,
                 t->fast);
}

/* RoPE's angles come from the tables made once by malloc_fast_state(). */
void cpu_rope(Transformer *t, int pos, int n) {
    const Config *c = &t->config;
    FastState *s = t->fast;
    int head_dim = c->head_dim, q_dim = c->n_heads * head_dim, kv_dim = c->n_kv_heads * head_dim;
    size_t half = (size_t)head_dim / 2;
    for (int i = 0; i < n; i++) {
        const float *cos_row = s->rope_cos + (size_t)(pos + i) * half;
        const float *sin_row = s->rope_sin + (size_t)(pos + i) * half;
        rope(s->q + (size_t)i * q_dim, c->n_heads, head_dim, cos_row, sin_row);
        rope(s->k + (size_t)i * kv_dim, c->n_kv_heads, head_dim, cos_row, sin_row);
    }
}

/* The chunk's keys and values join the cache at positions pos .. pos + n -
 * 1, in its blocked layout (section 7). */
void cpu_store_kv(Transformer *t, int l, int pos, int n) {
    const Config *c = &t->config;
    FastState *s = t->fast;
    int head_dim = c->head_dim, kv_dim = c->n_kv_heads * head_dim;
    for (int g = 0; g < c->n_kv_heads; g++) {
        float *keys = keys_of(t, l, g), *values = values_of(t, l, g);
        for (int i = 0; i < n; i++) {
            int p = pos + i;
            const float *k = s->k + (size_t)i * kv_dim + (size_t)g * head_dim;
            const float *v = s->v + (size_t)i * kv_dim + (size_t)g * head_dim;
            float *key_block = keys + (size_t)(p / TILE_N) * TILE_N * head_dim;
            for (int d = 0; d < head_dim; d++) {
                key_block[(size_t)d * TILE_N + p % TILE_N] = k[d];
                values[((size_t)(d / TILE_N) * s->padded_seq_len + p) * TILE_N + d % TILE_N] = v[d];
            }
        }
    }
}

void cpu_attention(Transformer *t, int l, int pos, int n) { attention_chunk(t, l, pos, n); }

void cpu_swiglu(Transformer *t, int n) { swiglu(t->fast->hb, t->fast->hb2, n * t->config.hidden_dim); }

void cpu_residual(Transformer *t, int n) {
    FastState *s = t->fast;
    for (size_t i = 0; i < (size_t)n * t->config.dim; i++) s->x[i] += s->xb2[i];
}

float *cpu_logits(Transformer *t, int first, int n) {
    const Config *c = &t->config;
    FastState *s = t->fast;
    float *rows = s->x + (size_t)first * c->dim;
    for (int i = 0; i < n - first; i++)
        rmsnorm(rows + (size_t)i * c->dim, rows + (size_t)i * c->dim, t->weights.rms_final_weight, c->dim,
                c->norm_eps);
    linear_chunk(s->logits, rows, model_matrix(t, MAT_WCLS, 0), c->dim, c->vocab_size, n - first, s);
    return s->logits;
}

void cpu_read(Transformer *t, int buf, size_t offset, size_t count, float *host) {
    memcpy(host, fast_buffer(t->fast, buf) + offset, count * sizeof(float));
}

/* The blocked cache, read back into Part I's order. */
void cpu_read_kv(Transformer *t, int l, int pos, int n, float *host) {
    const Config *c = &t->config;
    const FastState *s = t->fast;
    int head_dim = c->head_dim, kv_dim = c->n_kv_heads * head_dim;
    for (int i = 0; i < n; i++) {
        int p = pos + i;
        float *row = host + (size_t)i * 2 * kv_dim;
        for (int g = 0; g < c->n_kv_heads; g++) {
            const float *keys = keys_of(t, l, g), *values = values_of(t, l, g);
            for (int d = 0; d < head_dim; d++) {
                row[g * head_dim + d] = keys[(size_t)(p / TILE_N) * TILE_N * head_dim + (size_t)d * TILE_N + p % TILE_N];
                row[kv_dim + g * head_dim + d] =
                    values[((size_t)(d / TILE_N) * s->padded_seq_len + p) * TILE_N + d % TILE_N];
            }
        }
    }
}

void cpu_describe(const Transformer *t, char *text, size_t size) {
    (void)t;
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
#ifdef HAVE_AVX2_KERNEL
    const char *int8_dot = "AVX2";
#else
    const char *int8_dot = "portable";
#endif
    snprintf(text, size, "this CPU, Part II: chunks of %d positions, tiled matmul (%d x %d), %s int8 dot, %d threads",
             CHUNK, TILE_M, TILE_N, int8_dot, threads);
}

const Backend cpu_backend = {
    "cpu", CHUNK, malloc_fast_state, free_fast_state, cpu_describe,
    cpu_embed, cpu_rmsnorm, cpu_matmul, cpu_rope, cpu_store_kv, cpu_attention, cpu_swiglu, cpu_residual,
    cpu_logits, cpu_read, cpu_read_kv,
};

/* --- the reference backend: Part I's functions, one position at a time --- */

float *run_state_buffer(const RunState *s, int buf) {
    float *const rows[N_BUFS] = {s->x, s->xb, s->xb2, s->hb, s->hb2, s->q, s->k, s->v};
    return rows[buf];
}

void reference_embed(Transformer *t, const int *tokens, int n) {
    (void)n;
    embed(t->state.x, &t->weights, tokens[0], t->config.dim);
}

void reference_rmsnorm(Transformer *t, int norm, int l, int n) {
    (void)n;
    const Config *c = &t->config;
    const float *gain = norm == NORM_ATT ? t->weights.rms_att_weight : t->weights.rms_ffn_weight;
    rmsnorm(t->state.xb, t->state.x, gain + (size_t)l * c->dim, c->dim, c->norm_eps);
}

void reference_matmul(Transformer *t, int out, int in, int mat, int l, int n) {
    (void)n;
    int rows, cols;
    matrix_shape(&t->config, mat, &rows, &cols);
    linear(run_state_buffer(&t->state, out), run_state_buffer(&t->state, in), model_matrix(t, mat, l), cols,
           rows, &t->state);
}

void reference_rope(Transformer *t, int pos, int n) {
    (void)n;
    const Config *c = &t->config;
    RunState *s = &t->state;
    rope_angles(s->rope_cos, s->rope_sin, pos, c->head_dim, c->rope_theta);
    rope(s->q, c->n_heads, c->head_dim, s->rope_cos, s->rope_sin);
    rope(s->k, c->n_kv_heads, c->head_dim, s->rope_cos, s->rope_sin);
}

void reference_store_kv(Transformer *t, int l, int pos, int n) { (void)n; store_kv(t, (size_t)l, pos); }
void reference_attention(Transformer *t, int l, int pos, int n) { (void)n; attend_heads(t, (size_t)l, pos); }
void reference_swiglu(Transformer *t, int n) { (void)n; swiglu(t->state.hb, t->state.hb2, t->config.hidden_dim); }

void reference_residual(Transformer *t, int n) {
    (void)n;
    for (int i = 0; i < t->config.dim; i++) t->state.x[i] += t->state.xb2[i];
}

float *reference_logits(Transformer *t, int first, int n) {
    (void)first, (void)n;
    const Config *c = &t->config;
    RunState *s = &t->state;
    rmsnorm(s->x, s->x, t->weights.rms_final_weight, c->dim, c->norm_eps);
    linear(s->logits, s->x, model_matrix(t, MAT_WCLS, 0), c->dim, c->vocab_size, s);
    return s->logits;
}

void reference_read(Transformer *t, int buf, size_t offset, size_t count, float *host) {
    memcpy(host, run_state_buffer(&t->state, buf) + offset, count * sizeof(float));
}

void reference_read_kv(Transformer *t, int l, int pos, int n, float *host) {
    (void)n;
    const Config *c = &t->config;
    size_t head_dim = (size_t)c->head_dim, kv_dim = (size_t)c->n_kv_heads * head_dim;
    for (int g = 0; g < c->n_kv_heads; g++) {
        size_t at = (((size_t)l * c->n_kv_heads + g) * c->seq_len + pos) * head_dim;
        memcpy(host + g * head_dim, t->state.key_cache + at, head_dim * sizeof(float));
        memcpy(host + kv_dim + g * head_dim, t->state.value_cache + at, head_dim * sizeof(float));
    }
}

void reference_release(Transformer *t) { free_run_state(&t->state); }

void reference_describe(const Transformer *t, char *text, size_t size) {
    (void)t;
    snprintf(text, size, "this CPU, Part I's functions through the ops table, one position at a time");
}

const Backend reference_backend = {
    "reference", 1, malloc_run_state, reference_release, reference_describe,
    reference_embed, reference_rmsnorm, reference_matmul, reference_rope, reference_store_kv,
    reference_attention, reference_swiglu, reference_residual, reference_logits, reference_read,
    reference_read_kv,
};

/* --- the ports, and choosing a backend ------------------------------------ */

#if defined(LAMP_OPENCL)
#include "port/opencl.c"
#endif
#if defined(LAMP_CUDA)
#include "port/cuda.c"
#endif

const Backend *const backends[] = {
    &cpu_backend, &reference_backend,
#if defined(LAMP_OPENCL)
    &opencl_backend,
#endif
#if defined(LAMP_CUDA)
    &cuda_backend,
#endif
};
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

/* What ./run uses when --backend names none: the port the build was made
 * for, else the CPU's fast code. */
#if defined(LAMP_OPENCL)
#define DEFAULT_BACKEND opencl_backend
#elif defined(LAMP_CUDA)
#define DEFAULT_BACKEND cuda_backend
#else
#define DEFAULT_BACKEND cpu_backend
#endif

const Backend *find_backend(const char *name) {
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

/* Run t's forward passes on backend b from now on. */
void start_backend(Transformer *t, const Backend *b) {
    t->backend = b;
    b->load(t);
}


/* ===========================================================================
 * 12. Threads
 * =========================================================================*/

/* Threads default to the physical cores. A second hardware thread on a core
 * (SMT, "hyper-threading") shares that core's FMA units and memory
 * bandwidth, which the matmuls already keep busy, so it adds contention,
 * not speed. Linux's /proc/cpuinfo gives each logical CPU a "physical id"
 * (socket) and "core id": count the distinct pairs. Where it has none (some
 * ARM kernels) or cannot be read, use every processor OpenMP may run on. */
#ifdef _OPENMP
/* the number after the ':' of a "name : value" line of /proc/cpuinfo */
long cpuinfo_value(const char *line) {
    const char *colon = strchr(line, ':');
    return colon ? strtol(colon + 1, NULL, 10) : -1;
}

int physical_cores(void) {
    int procs = omp_get_num_procs();   /* respects the CPU affinity mask */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return procs;
    long pairs[1024];
    int n_pairs = 0;
    long package = -1, core = -1;
    char line[512];
    for (;;) {
        int more = fgets(line, sizeof line, f) != NULL;
        if (!more || line[0] == '\n') {   /* end of one processor's block */
            if (package >= 0 && core >= 0) {
                long key = package * 100000 + core;
                int seen = 0;
                for (int i = 0; i < n_pairs; i++) seen |= pairs[i] == key;
                if (!seen && n_pairs < 1024) pairs[n_pairs++] = key;
            }
            package = core = -1;
            if (!more) break;
            continue;
        }
        if (strncmp(line, "physical id", 11) == 0) package = cpuinfo_value(line);
        if (strncmp(line, "core id", 7) == 0) core = cpuinfo_value(line);
    }
    fclose(f);
    if (n_pairs == 0) return procs;
    return n_pairs < procs ? n_pairs : procs;   /* a container may be allowed fewer CPUs */
}
#endif

/* Waiting threads sleep. Every parallel loop ends with its threads waiting
 * for the last one. OpenMP's threads wait spinning by default, the fastest
 * answer on an idle machine; but when another program holds a core, the
 * thread everybody waits for is the one that lost its core, and the ones
 * spinning keep a core from it: tokens and training steps then take many
 * times longer (docs/performance.md, "a busy machine"). Sleeping threads
 * (OMP_WAIT_POLICY=passive) hand their core back. OpenMP reads the policy
 * once, before main() starts, and has no call to change it later, so main()
 * puts it in the environment and starts the program again (execv: the same
 * process and arguments). A policy the user chose (OMP_WAIT_POLICY, or
 * libgomp's GOMP_SPINCOUNT) is kept; if the exec fails, the run goes on
 * with spinning threads. train.c does the same. */
void wait_passively_by_default(char **argv) {
#if defined(_OPENMP) && defined(__linux__)
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);   /* returns only if it failed */
#endif
    (void)argv;
}


/* ###########################################################################
 * PART III — FILES AND THE COMMAND LINE
 * #########################################################################*/

/* ===========================================================================
 * 13. Reading a model file
 * =========================================================================*/

/* Chat templates: how a chat model wants the turns of a conversation
 * wrapped (the lamp header's chat_template, docs/format.md 1.1; chat() in
 * section 14 uses them). */
enum { CHAT_NONE, CHAT_LLAMA2, CHAT_CHATML, CHAT_LLAMA3, N_CHAT_TEMPLATES };
static const char *const chat_template_names[N_CHAT_TEMPLATES] = {"none", "llama2", "chatml", "llama3"};

/* --- reading the header --------------------------------------------------
 * Headers are read with memcpy from the mapped bytes (never by casting a
 * struct onto them), so the layout is exactly the one docs/format.md gives
 * (llama2.c version 2 even keeps its group size at the odd offset 37). */

int32_t read_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
uint32_t read_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
float read_f32(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }
uint64_t read_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

#define LLAMA2C_MAGIC 0x616b3432u

/* Sanity limits: generous enough for 70B-class models, tight enough that a
 * corrupt header is caught before it asks for terabytes of memory. Returns
 * NULL if the config is sane, else a description of what is wrong. */
const char *check_config(const Config *c, char *why, size_t why_size) {
#define LIMIT(field, lo, hi)                                                              \
    if (!(c->field >= (lo) && c->field <= (hi))) {                                        \
        snprintf(why, why_size, #field " = %g is out of range (%g..%g)", (double)c->field, \
                 (double)(lo), (double)(hi));                                             \
        return why;                                                                       \
    }
    LIMIT(dim, 1, 65536);
    LIMIT(hidden_dim, 1, 1 << 20);
    LIMIT(n_layers, 1, 1024);
    LIMIT(n_heads, 1, 1024);
    LIMIT(n_kv_heads, 1, c->n_heads);
    LIMIT(head_dim, 2, 8192);
    LIMIT(vocab_size, 1, 1 << 22);
    LIMIT(seq_len, 1, 1 << 20);
    LIMIT(rope_theta, 1e-3, 1e12);
    LIMIT(norm_eps, 1e-12, 1e-1);
    LIMIT(bos_id, -1, c->vocab_size - 1);
    LIMIT(eos_id, -1, c->vocab_size - 1);
#undef LIMIT
    if (c->n_heads % c->n_kv_heads != 0) {
        snprintf(why, why_size, "n_kv_heads = %d does not divide n_heads = %d", c->n_kv_heads, c->n_heads);
        return why;
    }
    if (c->head_dim % 2 != 0) {
        snprintf(why, why_size, "head_dim = %d is odd (RoPE rotates pairs)", c->head_dim);
        return why;
    }
    return NULL;
}

/* An int8 group must not straddle two rows, so the group size must divide
 * the length of every row: dim (wq, wk, wv, w1, w3, the embedding and the
 * classifier), q_dim (wo) and hidden_dim (w2). The lamp format also asks for
 * a multiple of 4 (docs/format.md, 1.4); llama2.c's exporter halves 64 until
 * it divides dim, so its files are only held to the divisibility. */
const char *check_group_size(const Config *c, int64_t gs, int lamp, char *why, size_t why_size) {
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    if (gs < 1 || gs > 1024 || (lamp && gs % 4 != 0))
        snprintf(why, why_size, "group_size = %lld is not %s from %d to 1024", (long long)gs,
                 lamp ? "a multiple of 4" : "a number", lamp ? 4 : 1);
    else if (c->dim % gs || q_dim % gs || c->hidden_dim % gs)
        snprintf(why, why_size, "group_size = %lld does not divide dim = %d, q_dim = %lld and hidden_dim = %d",
                 (long long)gs, c->dim, (long long)q_dim, c->hidden_dim);
    else
        return NULL;
    return why;
}

/* --- where each tensor lives ---------------------------------------------
 * A format is a list of tensors in file order. The same list is walked
 * twice: first to compute the size the file must have, then (after checking
 * it) to point each weight into the mapped file. */

typedef struct {
    const float **dst;  /* float32 tensor: the Weights field to point, or NULL to skip it */
    QMatrix *q;         /* int8 tensor: where to put its matrices' pointers (else NULL) */
    int n_matrices;     /* int8: how many matrices are stacked in it (n_layers, or 1) */
    size_t numel;       /* number of elements, all matrices together */
} TensorSlot;

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Walk the slots from byte `offset`, each block aligned to `align` bytes.
 * Returns where the last tensor ends. With base != NULL, also sets the
 * pointers. An int8 tensor is two blocks, values then scales: one pair for
 * the whole stack of matrices in a lamp file, one pair per matrix
 * (`pair_per_matrix`) in a llama2.c version 2 file. */
size_t place_tensors(const TensorSlot *slots, int n, size_t offset, size_t align, int group_size,
                            int pair_per_matrix, const unsigned char *base, const char *path) {
    for (int i = 0; i < n; i++) {
        const TensorSlot *t = &slots[i];
        if (!t->q) {
            offset = align_up(offset, align);
            if (base && t->dst) *t->dst = (const float *)(base + offset);
            offset += t->numel * sizeof(float);
            continue;
        }
        size_t per = t->numel / (size_t)t->n_matrices;  /* elements in one matrix */
        size_t values = 0, scales = 0;
        for (int m = 0; m < t->n_matrices; m++) {
            if (m == 0 || pair_per_matrix) {
                offset = align_up(offset, align);
                values = offset;
                offset += pair_per_matrix ? per : t->numel;
                offset = align_up(offset, align);
                scales = offset;
                offset += (pair_per_matrix ? per : t->numel) / (size_t)group_size * sizeof(float);
            }
            size_t first = pair_per_matrix ? 0 : (size_t)m * per;  /* element where matrix m starts */
            if (base) {
                t->q[m].q = (const int8_t *)(base + values) + first;
                t->q[m].s = (const float *)(base + scales) + first / (size_t)group_size;
                /* a float read from an address that is not a multiple of 4 is
                 * undefined behaviour in C; only a llama2.c file with odd
                 * matrix sizes could do that */
                if (((uintptr_t)t->q[m].s) % sizeof(float) != 0)
                    fatal("%s: int8 scales at byte %zu are not 4-byte aligned (odd matrix size); not supported",
                          path, scales);
            }
        }
    }
    return offset;
}

/* The tensor order of each format (docs/format.md). Returns the count. */
int tensor_layout(Transformer *t, TensorSlot *s) {
    const Config *c = &t->config;
    Weights *w = &t->weights;
    int L = c->n_layers;
    size_t Ls = (size_t)L, dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t vocab = (size_t)c->vocab_size;
    int n = 0;
    /* each of the nine matrices is float32, or int8 (`count` matrices stacked) */
    int q8 = w->group_size > 0;
#define MATRIX(fp, qp, count, numel) \
    (q8 ? (TensorSlot){NULL, (qp), (count), (numel)} : (TensorSlot){(fp), NULL, 0, (numel)})
    if (t->format == FORMAT_LLAMA2C_V1 || t->format == FORMAT_LLAMA2C_V2) { /* norms first, no RoPE tables */
        s[n++] = (TensorSlot){&w->rms_att_weight, NULL, 0, Ls * dim};
        s[n++] = (TensorSlot){&w->rms_ffn_weight, NULL, 0, Ls * dim};
        s[n++] = (TensorSlot){&w->rms_final_weight, NULL, 0, dim};
        s[n++] = MATRIX(&w->token_embedding, &w->q_token_embedding, 1, vocab * dim);
        s[n++] = MATRIX(&w->wq, w->q_wq, L, Ls * q_dim * dim);
        s[n++] = MATRIX(&w->wk, w->q_wk, L, Ls * kv_dim * dim);
        s[n++] = MATRIX(&w->wv, w->q_wv, L, Ls * kv_dim * dim);
        s[n++] = MATRIX(&w->wo, w->q_wo, L, Ls * dim * q_dim);
        s[n++] = MATRIX(&w->w1, w->q_w1, L, Ls * hidden * dim);
        s[n++] = MATRIX(&w->w2, w->q_w2, L, Ls * dim * hidden);
        s[n++] = MATRIX(&w->w3, w->q_w3, L, Ls * hidden * dim);
        if (!c->shared_classifier) s[n++] = MATRIX(&w->wcls, &w->q_wcls, 1, vocab * dim);
        return n;
    }
    /* lamp and llama2.c version 0 share the order of the tensors */
    s[n++] = MATRIX(&w->token_embedding, &w->q_token_embedding, 1, vocab * dim);
    s[n++] = (TensorSlot){&w->rms_att_weight, NULL, 0, Ls * dim};
    s[n++] = MATRIX(&w->wq, w->q_wq, L, Ls * q_dim * dim);
    s[n++] = MATRIX(&w->wk, w->q_wk, L, Ls * kv_dim * dim);
    s[n++] = MATRIX(&w->wv, w->q_wv, L, Ls * kv_dim * dim);
    s[n++] = MATRIX(&w->wo, w->q_wo, L, Ls * dim * q_dim);
    s[n++] = (TensorSlot){&w->rms_ffn_weight, NULL, 0, Ls * dim};
    s[n++] = MATRIX(&w->w1, w->q_w1, L, Ls * hidden * dim);
    s[n++] = MATRIX(&w->w2, w->q_w2, L, Ls * dim * hidden);
    s[n++] = MATRIX(&w->w3, w->q_w3, L, Ls * hidden * dim);
    s[n++] = (TensorSlot){&w->rms_final_weight, NULL, 0, dim};
    if (t->format == FORMAT_LLAMA2C_V0) {   /* stored RoPE tables: skipped, we build our own */
        s[n++] = (TensorSlot){NULL, NULL, 0, (size_t)c->seq_len * c->head_dim / 2};
        s[n++] = (TensorSlot){NULL, NULL, 0, (size_t)c->seq_len * c->head_dim / 2};
    }
    if (!c->shared_classifier) s[n++] = MATRIX(&w->wcls, &w->q_wcls, 1, vocab * dim);
#undef MATRIX
    return n;
}

/* Read the header of whichever format the file is in; fill t->config,
 * t->format and t->weights.group_size, and return the byte offset where the
 * tensors start. */
size_t read_header(Transformer *t) {
    const unsigned char *d = t->data;
    size_t size = t->file_size;
    Config *c = &t->config;
    const char *path = t->path;
    char why[160];
    memset(c, 0, sizeof *c);
    t->weights.group_size = 0;
    t->chat_template = CHAT_NONE;

    if (size >= 4 && memcmp(d, "LAMP", 4) == 0) {
        if (size < 256) fatal("%s: file ends inside the 256-byte lamp header (truncated)", path);
        uint32_t version = read_u32(d + 4);
        if (version != 1 && version != 2)
            fatal("%s: lamp format version %u is not supported (this run.c reads versions 1 and 2)", path, version);
        if (version == 2) {                /* version 2 names the chat template at byte 80 */
            uint32_t chat = read_u32(d + 80);
            if (chat >= N_CHAT_TEMPLATES) fatal("%s: unknown chat template %u in the lamp header", path, chat);
            t->chat_template = (int)chat;
        }
        c->dim = read_i32(d + 8);
        c->hidden_dim = read_i32(d + 12);
        c->n_layers = read_i32(d + 16);
        c->n_heads = read_i32(d + 20);
        c->n_kv_heads = read_i32(d + 24);
        c->head_dim = read_i32(d + 28);
        c->vocab_size = read_i32(d + 32);
        c->seq_len = read_i32(d + 36);
        c->rope_theta = read_f32(d + 40);
        c->norm_eps = read_f32(d + 44);
        c->bos_id = read_i32(d + 48);
        c->eos_id = read_i32(d + 52);
        uint32_t flags = read_u32(d + 56), weight_type = read_u32(d + 60), group_size = read_u32(d + 64);
        if (flags & ~1u) fatal("%s: unknown flags 0x%x in the lamp header", path, flags);
        c->shared_classifier = (int)(flags & 1u);
        if (weight_type > 1)
            fatal("%s: weight type %u is not supported (this run.c reads 0 = float32 and 1 = Q8_0 int8)", path, weight_type);
        t->format = FORMAT_LAMP;
        if (check_config(c, why, sizeof why)) fatal("%s: bad lamp header: %s", path, why);
        if (weight_type == 0 && group_size != 0)
            fatal("%s: bad lamp header: group_size = %u for float32 weights (must be 0)", path, group_size);
        if (weight_type == 1 && check_group_size(c, group_size, 1, why, sizeof why))
            fatal("%s: bad lamp header: %s", path, why);
        t->weights.group_size = (int)group_size;
        uint64_t tokenizer_size = read_u64(d + 72);
        if (tokenizer_size < 12 || tokenizer_size > size - 256)
            fatal("%s: tokenizer section of %llu bytes does not fit in a file of %zu bytes (truncated or corrupt)",
                  path, (unsigned long long)tokenizer_size, size);
        tokenizer_load_lamp_section(&t->tokenizer, d + 256, (size_t)tokenizer_size, path);
        if (t->tokenizer.vocab_size != c->vocab_size)
            fatal("%s: the embedded tokenizer has %d pieces but vocab_size is %d", path,
                  t->tokenizer.vocab_size, c->vocab_size);
        t->tokenizer.bos_id = c->bos_id;   /* the model header is authoritative */
        t->tokenizer.eos_id = c->eos_id;
        t->has_tokenizer = 1;
        return align_up(256 + (size_t)tokenizer_size, 64);
    }

    /* llama2.c: version 1+ starts with a magic number; version 0 has none. */
    size_t header_size;
    const unsigned char *ints;
    int32_t group_size = 0;
    if (size >= 8 && read_u32(d) == LLAMA2C_MAGIC) {
        int32_t version = read_i32(d + 4);
        if (version != 1 && version != 2)
            fatal("%s: llama2.c checkpoint version %d is not supported (versions 0, 1 and 2 are)", path, version);
        if (size < 256) fatal("%s: file ends inside the 256-byte llama2.c header (truncated)", path);
        t->format = version == 1 ? FORMAT_LLAMA2C_V1 : FORMAT_LLAMA2C_V2;
        if (version == 2) group_size = read_i32(d + 37);   /* right after the 1-byte flag */
        ints = d + 8;
        header_size = 256;
    } else {
        if (size < 28) fatal("%s: %zu bytes is too short to be a model (not a lamp or llama2.c checkpoint)", path, size);
        t->format = FORMAT_LLAMA2C_V0;
        ints = d;
        header_size = 28;
    }
    c->dim = read_i32(ints + 0);
    c->hidden_dim = read_i32(ints + 4);
    c->n_layers = read_i32(ints + 8);
    c->n_heads = read_i32(ints + 12);
    c->n_kv_heads = read_i32(ints + 16);
    c->vocab_size = read_i32(ints + 20);
    c->seq_len = read_i32(ints + 24);
    if (t->format == FORMAT_LLAMA2C_V0) {
        /* the sign of vocab_size says whether the classifier is shared */
        c->shared_classifier = c->vocab_size > 0;
        if (c->vocab_size < 0 && c->vocab_size != INT32_MIN) c->vocab_size = -c->vocab_size;
    } else {
        c->shared_classifier = d[36] != 0;
    }
    /* what llama2.c's run.c hard-codes */
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->bos_id = 1;
    c->eos_id = 2;
    const char *problem = check_config(c, why, sizeof why);
    if (!problem && c->dim % c->n_heads != 0) {
        snprintf(why, sizeof why, "dim = %d is not a multiple of n_heads = %d", c->dim, c->n_heads);
        problem = why;
    }
    if (!problem && t->format == FORMAT_LLAMA2C_V2) problem = check_group_size(c, group_size, 0, why, sizeof why);
    if (problem) {
        if (t->format == FORMAT_LLAMA2C_V0)
            fatal("%s: not a lamp model and not a valid llama2.c version 0 checkpoint (%s)", path, why);
        fatal("%s: bad llama2.c header: %s", path, why);
    }
    if (c->vocab_size < 3) fatal("%s: vocab_size %d is too small for a llama2.c model (BOS=1, EOS=2)", path, c->vocab_size);
    t->weights.group_size = group_size;
    return header_size;
}

void build_transformer(Transformer *t, const char *path) {
    memset(t, 0, sizeof *t);
    t->path = path;
    int fd = open(path, O_RDONLY);
    if (fd < 0) fatal("cannot open model %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) fatal("cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) fatal("%s is not a regular file", path);
    if (st.st_size == 0) fatal("%s is empty", path);
    t->file_size = (size_t)st.st_size;
    /* mmap: the file's pages become our memory; the OS reads them on first
     * touch and may share them between processes. Nothing is copied. */
    void *map = mmap(NULL, t->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) fatal("cannot map %s into memory: %s", path, strerror(errno));
    t->data = map;

    size_t offset = read_header(t);
    Weights *w = &t->weights;
    if (w->group_size) {   /* the per-layer int8 matrices: 7 arrays of n_layers */
        size_t L = (size_t)t->config.n_layers;
        w->q_wq = xcalloc(7 * L, sizeof(QMatrix));
        w->q_wk = w->q_wq + L;
        w->q_wv = w->q_wk + L;
        w->q_wo = w->q_wv + L;
        w->q_w1 = w->q_wo + L;
        w->q_w2 = w->q_w1 + L;
        w->q_w3 = w->q_w2 + L;
    }
    TensorSlot slots[16];
    int n = tensor_layout(t, slots);
    /* lamp aligns every block to 64 bytes (a cache line); llama2.c packs them */
    size_t align = t->format == FORMAT_LAMP ? 64 : 1;
    int pair_per_matrix = t->format == FORMAT_LLAMA2C_V2;
    size_t expected = place_tensors(slots, n, offset, align, w->group_size, pair_per_matrix, NULL, path);
    if (expected != t->file_size)
        fatal("%s: file is %zu bytes but its header implies %zu bytes (%s)", path, t->file_size, expected,
              t->file_size < expected ? "truncated" : "trailing data or wrong header");
    place_tensors(slots, n, offset, align, w->group_size, pair_per_matrix, t->data, path);
    if (t->config.shared_classifier) {
        w->wcls = w->token_embedding;
        w->q_wcls = w->q_token_embedding;
    }
}

void free_transformer(Transformer *t) {
    if (t->backend) t->backend->release(t);   /* a device's copy of the weights goes with the model */
    if (t->trace) fclose(t->trace);
    free_run_state(&t->state);
    free_fast_state(t);
    free(t->weights.q_wq);   /* the one allocation behind all seven q_ arrays */
    if (t->has_tokenizer) tokenizer_free(&t->tokenizer);
    if (t->data) munmap(t->data, t->file_size);
    memset(t, 0, sizeof *t);
}

/* ===========================================================================
 * 14. Chat and eval
 * =========================================================================*/

/* Read one line from stdin into *line (growing it as needed), without the
 * newline. Returns 0 at end of input. */
int read_line(const char *question, char **line, size_t *cap) {
    fputs(question, stdout);
    fflush(stdout);
    ssize_t got = getline(line, cap, stdin);
    if (got < 0) return 0;
    if (got > 0 && (*line)[got - 1] == '\n') (*line)[--got] = '\0';
    return 1;
}

/* Chat with a chat model. Each turn is the user's message wrapped in the
 * model's template, and the model answers until it samples the template's
 * end-of-turn token (or EOS / BOS). The whole conversation stays in the KV
 * cache, so each turn runs only its own new tokens through the model; the
 * token that ended the previous answer is fed in front of the next turn.
 *
 *   llama2  [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]   BOS before each turn, ends at EOS
 *   chatml  <|im_start|>system\n{system}<|im_end|>\n
 *           <|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n      ends at <|im_end|>
 *   llama3  <|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>
 *           <|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>
 *           <|start_header_id|>assistant<|end_header_id|>\n\n      BOS once, ends at <|eot_id|>
 * (the system part only in the first turn, and only when there is one). */
typedef struct {
    const char *system;     /* printf formats: the system part (%s), the user part (%s) */
    const char *user;
    const char *between;    /* text after the fed end-of-turn token, before the next turn */
    const char *end_of_turn;/* the piece that ends an answer; NULL: EOS */
    int bos;                /* 1: BOS before every turn, 2: BOS before the first only */
} ChatTemplate;

static const ChatTemplate chat_templates[N_CHAT_TEMPLATES] = {
    [CHAT_LLAMA2] = {"[INST] <<SYS>>\n%s\n<</SYS>>\n\n", "%s [/INST]", "", NULL, 1},
    [CHAT_CHATML] = {"<|im_start|>system\n%s<|im_end|>\n",
                     "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", "\n", "<|im_end|>", 0},
    [CHAT_LLAMA3] = {"<|start_header_id|>system<|end_header_id|>\n\n%s<|eot_id|>",
                     "<|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n", "", "<|eot_id|>", 2},
};

/* The id of the control piece whose text is `text`, or -1. */
int find_control_piece(const Tokenizer *tok, const char *text) {
    for (int id = 0; id < tok->vocab_size; id++)
        if (tok->types[id] == PIECE_CONTROL && strcmp(tok->pieces[id], text) == 0) return id;
    return -1;
}

void chat(Transformer *t, Tokenizer *tok, Sampler *sampler, const char *first_prompt,
                 const char *system_prompt, int max_reply, const RunInfo *info) {
    const Config *c = &t->config;
    if (t->chat_template == CHAT_NONE)
        fatal("%s is not a chat model (its file names no chat template); use -m generate, or "
              "choose a template with --chat-template llama2|chatml|llama3", t->path);
    const ChatTemplate *tpl = &chat_templates[t->chat_template];
    int end_of_turn = tpl->end_of_turn ? find_control_piece(tok, tpl->end_of_turn) : c->eos_id;
    if (tpl->end_of_turn && end_of_turn < 0)
        fatal("%s: the %s chat template ends turns with %s, which this vocabulary lacks", t->path,
              chat_template_names[t->chat_template], tpl->end_of_turn);
    char *user = NULL, *system = NULL;
    size_t user_cap = 0, system_cap = 0;
    int pos = 0, ended_with = -1, turn = 0;   /* ended_with: the token that ended the last answer */
    double busy = 0.0;
    long n_new_tokens = 0;
    if (!system_prompt) {
        if (!read_line("Enter system prompt (optional): ", &system, &system_cap)) goto done;
        system_prompt = system;
    }
    for (;; turn++) {
        const char *user_text;
        if (turn == 0 && first_prompt && first_prompt[0]) {
            user_text = first_prompt;
        } else {
            if (!read_line("User: ", &user, &user_cap)) break;
            user_text = user;
        }
        /* render the turn; sizes are measured first, so no buffer can overflow */
        int with_system = pos == 0 && system_prompt[0];
        const char *between = ended_with >= 0 ? tpl->between : "";
        int n_sys = with_system ? snprintf(NULL, 0, tpl->system, system_prompt) : 0;
        int n_user = snprintf(NULL, 0, tpl->user, user_text);
        size_t need = strlen(between) + (size_t)n_sys + (size_t)n_user;
        char *rendered = xmalloc(need + 1);
        strcpy(rendered, between);
        if (with_system) snprintf(rendered + strlen(between), (size_t)n_sys + 1, tpl->system, system_prompt);
        snprintf(rendered + strlen(between) + (size_t)n_sys, (size_t)n_user + 1, tpl->user, user_text);
        int add_bos = tpl->bos == 1 || (tpl->bos == 2 && pos == 0);
        int n_ids;
        int *ids = tokenizer_encode(tok, rendered, need, add_bos, 0, &n_ids);
        free(rendered);
        /* The previous answer's last token was sampled but not yet fed: put it first. */
        int n_feed = n_ids + (ended_with >= 0 ? 1 : 0);
        if (pos + n_feed > c->seq_len) {
            free(ids);
            fprintf(stderr, "[context full: the conversation has used %d of %d positions; start a new chat]\n",
                    pos, c->seq_len);
            break;
        }
        double t0 = time_now();
        if (ended_with >= 0) {
            ids = xrealloc(ids, (size_t)n_feed * sizeof(int));
            memmove(ids + 1, ids, (size_t)n_ids * sizeof(int));
            ids[0] = ended_with;
        }
        if (info->verbose) print_token_ids("turn ids", ids, n_feed);
        float *logits = feed_tokens(t, ids, n_feed, pos);   /* the whole turn */
        pos += n_feed;
        free(ids);
        ended_with = -1;

        fputs("Assistant: ", stdout);
        Utf8Printer printer = {0};
        int prev = -1, n_reply = 0;
        int *reply = info->verbose ? xmalloc(((size_t)c->seq_len + 1) * sizeof(int)) : NULL;
        for (;;) {
            int next = sample(sampler, logits);
            if (reply) reply[n_reply] = next;
            if (next == end_of_turn || next == c->eos_id || next == c->bos_id) {
                ended_with = next;
                if (reply) n_reply++;
                break;
            }
            size_t len;
            const char *piece = tokenizer_decode(tok, prev, next, &len);
            utf8_print(&printer, piece, len, stdout);
            fflush(stdout);
            prev = next;
            n_reply++;
            n_new_tokens++;
            if (pos >= c->seq_len) break;           /* no room left to feed it back */
            logits = feed_tokens(t, &next, 1, pos++);
            if (max_reply > 0 && n_reply >= max_reply) break;
        }
        utf8_flush(&printer, stdout);
        printf("\n");
        if (reply) {
            print_token_ids("reply ids", reply, n_reply);
            free(reply);
        }
        busy += time_now() - t0;
        if (pos >= c->seq_len) {
            fprintf(stderr, "[context full: %d positions used; start a new chat]\n", c->seq_len);
            break;
        }
    }
done:
    if (info->verbose) fprintf(stderr, "chat: %d positions used, %ld tokens generated, %.1f s\n", pos, n_new_tokens, busy);
    free(user);
    free(system);
}

/* --- eval: how well does the model predict a text? -------------------------
 * The model's loss on a text is the mean negative log-likelihood (NLL) of
 * each token given the ones before it, -log p(token | context), in nats.
 * exp(NLL) is the perplexity: the model is as unsure as if it picked
 * uniformly among that many tokens. NLL depends on the tokenizer (a text cut
 * into more, smaller tokens has a lower NLL per token), so to compare models
 * with different vocabularies we also give bits per byte: the total NLL in
 * bits divided by the bytes of text, how many bits the model would need to
 * compress the text. */

/* -log softmax(logits)[target], with the sum of exponentials in double. */
double token_nll(const float *logits, int vocab_size, int target) {
    float max = logits[0];
    for (int i = 1; i < vocab_size; i++) if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < vocab_size; i++) sum += exp((double)logits[i] - max);
    return (double)max + log(sum) - (double)logits[target];
}

/* Sum of the NLL of tokens[1 .. n-1], each predicted from the tokens before
 * it, starting from an empty cache at position 0 (n <= seq_len). tokens[0]
 * is context only. The last token is never fed in: nothing follows it. */
double sequence_nll(Transformer *t, const int *tokens, int n) {
    const Config *c = &t->config;
    double *nll = xmalloc((size_t)(n > 1 ? n - 1 : 1) * sizeof(double));
    for (int i = 0; i < n - 1 && !t->backend; i++)   /* the reference path: one token at a time */
        nll[i] = token_nll(forward(t, tokens[i], i), c->vocab_size, tokens[i + 1]);
    int chunk = t->backend ? t->backend->max_chunk : 1;
    for (int start = 0; start < n - 1 && t->backend; start += chunk) {   /* a backend: all logits of a chunk */
        int m = n - 1 - start < chunk ? n - 1 - start : chunk;
        const float *logits = forward_chunk(t, tokens + start, m, start, LOGITS_ALL);
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < m; i++)
            nll[start + i] = token_nll(logits + (size_t)i * c->vocab_size, c->vocab_size, tokens[start + i + 1]);
    }
    double total = 0.0;   /* added in order, so the result does not depend on the thread count */
    for (int i = 0; i < n - 1; i++) total += nll[i];
    free(nll);
    return total;
}

/* A long eval would be silent for minutes: once a second, a line on stderr
 * says how far it is (bytes of the file done), how fast, and when it should
 * end. On a terminal the line rewrites itself; in a log it is one line per
 * report. */
typedef struct {
    int tty;
    int printed;
    double last;   /* seconds since the start of the eval, at the last report */
} EvalProgress;

void report_eval_progress(EvalProgress *p, size_t done, size_t size, long n_scored, double seconds) {
    if (seconds - p->last < 1.0 || done >= size) return;
    p->last = seconds;
    p->printed = 1;
    double eta = seconds * (double)(size - done) / (double)done;
    fprintf(stderr, "%seval: %.0f%% of %zu bytes | %ld tokens, %.1f tok/s | ETA %.0f s%s", p->tty ? "\r" : "",
            100.0 * (double)done / (double)size, size, n_scored, (double)n_scored / seconds, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

/* Evaluate the text file at `path`. The exact definition, so that numbers
 * from different models and weight types can be compared:
 *  - documents are separated by blank lines (one or more empty lines); a
 *    document's own single newlines are part of it;
 *  - each document is encoded with BOS first (the dummy-prefix space, as
 *    when prompting) and is scored on its own, from an empty cache: every
 *    token after the BOS is predicted from the ones before it;
 *  - a document longer than the context is cut into windows of seq_len
 *    tokens that overlap by one, so each token is predicted exactly once;
 *    the first token of a window is context only, and a window starts from
 *    an empty cache;
 *  - mean NLL = total NLL / tokens scored; perplexity = exp(mean NLL);
 *    bits per byte = total NLL / ln 2 / bytes, counting the bytes of the
 *    documents (not the blank lines between them). */
void eval_file(Transformer *t, Tokenizer *tok, const char *path, const RunInfo *info) {
    const Config *c = &t->config;
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t size = 0, cap = 0, got;
    do {
        if (size + 65536 > cap) text = xrealloc(text, cap = 2 * cap + 65536);
        got = fread(text + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    if (ferror(f)) fatal("cannot read %s: %s", path, strerror(errno));
    fclose(f);
    if (c->seq_len < 2) fatal("eval needs a context of at least 2 positions (seq_len is %d)", c->seq_len);

    double total_nll = 0.0, start_time = time_now();
    long n_scored = 0, n_bytes = 0, n_docs = 0;
    EvalProgress progress = {isatty(fileno(stderr)), 0, 0.0};
    size_t i = 0;
    while (i < size) {
        while (i < size && text[i] == '\n') i++;            /* blank lines between documents */
        if (i >= size) break;
        size_t begin = i;                                    /* a document ends at "\n\n" or the end */
        while (i < size && !(text[i] == '\n' && (i + 1 == size || text[i + 1] == '\n'))) i++;
        int n;
        int *ids = tokenizer_encode(tok, text + begin, i - begin, 1, 0, &n);
        for (int w = 0; w < n - 1; w += c->seq_len - 1) {    /* windows of seq_len, overlapping by one */
            int len = n - w < c->seq_len ? n - w : c->seq_len;
            total_nll += sequence_nll(t, ids + w, len);
            n_scored += len - 1;
            size_t done = begin + (size_t)((double)(i - begin) * (w + len - 1) / (n - 1));   /* about */
            report_eval_progress(&progress, done, size, n_scored, time_now() - start_time);
        }
        free(ids);
        n_bytes += (long)(i - begin);
        n_docs++;
    }
    if (progress.printed && progress.tty) fputc('\n', stderr);
    free(text);
    if (n_scored == 0) fatal("%s has no text to evaluate", path);
    double seconds = time_now() - start_time, mean = total_nll / (double)n_scored;
    printf("eval %s: %ld documents, %ld bytes, %ld tokens scored\n", path, n_docs, n_bytes, n_scored);
    printf("mean NLL %.6f nats/token | perplexity %.4f | bits per byte %.6f\n", mean, exp(mean),
           total_nll / log(2.0) / (double)n_bytes);
    fflush(stdout);
    fprintf(stderr, "load %.0f ms | eval %ld tokens, %.1f tok/s\n", info->load_seconds * 1e3, n_scored,
            seconds > 0 ? (double)n_scored / seconds : 0.0);
}

/* --- comparing two traces -------------------------------------------------
 * Two traces of the same tokens (section 11 gives the format), from two
 * backends, or from a backend and transformers (tests/golden/gen_trace.py),
 * are compared record by record: (op, layer, position) in both. The error
 * of a record is max_i |a_i - b_i|, divided by max_i |b_i| where that is
 * above 1 (an error relative to the record's scale; activations of a big
 * model reach the hundreds). A bug in one op at one layer changes its own
 * output and everything computed after it: later ops, later layers, and
 * (through attention) later positions. So the first record beyond the
 * tolerance, in the order the forward pass computes them (layer, then op,
 * then position), is where the two computations part: the op to look at. */

typedef struct {
    char op[17];
    int stage, op_index, layer, pos, n;   /* stage: 0 embed, 1 inside the layers, 2 after them */
    const float *values;
} TraceRecord;

typedef struct {
    char *data;             /* the whole file */
    TraceRecord *records;
    int n_records;
} Trace;

/* The position of `op` in TRACE_OPS, or -1. */
int trace_op_index(const char *op) {
    const char *list = TRACE_OPS;
    size_t len = strlen(op);
    for (int i = 0; *list; i++) {
        size_t word = strcspn(list, " ");
        if (word == len && strncmp(list, op, len) == 0) return i;
        list += word;
        list += strspn(list, " ");
    }
    return -1;
}

Trace read_trace(const char *path) {
    Trace t = {0};
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open trace %s: %s", path, strerror(errno));
    size_t size = 0, cap = 0, got;
    do {
        if (size + 65536 > cap) t.data = xrealloc(t.data, cap = 2 * cap + 65536);
        got = fread(t.data + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    fclose(f);
    if (size < 8 || memcmp(t.data, "LAMPTRC1", 8) != 0) fatal("%s is not a lamp trace (no LAMPTRC1 at its start)", path);
    int cap_records = 0;
    for (size_t at = 8; at < size;) {
        if (size - at < 28) fatal("%s: truncated record at byte %zu", path, at);
        TraceRecord r;
        memcpy(r.op, t.data + at, 16);
        r.op[16] = '\0';
        int32_t head[3];
        memcpy(head, t.data + at + 16, 12);
        r.layer = head[0], r.pos = head[1], r.n = head[2];
        r.op_index = trace_op_index(r.op);
        if (r.op_index < 0) fatal("%s: unknown op '%s' at byte %zu", path, r.op, at);
        if (r.n < 0 || (size_t)r.n > (size - at - 28) / 4) fatal("%s: record at byte %zu runs past the end", path, at);
        r.stage = r.op_index == 0 ? 0 : r.layer < 0 ? 2 : 1;
        r.values = (const float *)(t.data + at + 28);   /* 28 = 16 + 12: 4-byte aligned, as the file's start */
        at += 28 + 4 * (size_t)r.n;
        if (t.n_records == cap_records) t.records = xrealloc(t.records, (size_t)(cap_records = 2 * cap_records + 256) * sizeof r);
        t.records[t.n_records++] = r;
    }
    return t;
}

/* The forward pass's order: stage, layer, op, position. */
int compare_trace_records(const void *a, const void *b) {
    const TraceRecord *x = a, *y = b;
    if (x->stage != y->stage) return x->stage - y->stage;
    if (x->layer != y->layer) return x->layer - y->layer;
    if (x->op_index != y->op_index) return x->op_index - y->op_index;
    return x->pos - y->pos;
}

/* Compare the traces at paths a and b; print what was compared and the
 * first record beyond `tolerance` (the one to look at, see above).
 * Returns 0 if every common record is within it, 1 otherwise. */
int compare_traces(const char *path_a, const char *path_b, double tolerance, FILE *out) {
    Trace a = read_trace(path_a), b = read_trace(path_b);
    qsort(a.records, (size_t)a.n_records, sizeof(TraceRecord), compare_trace_records);
    qsort(b.records, (size_t)b.n_records, sizeof(TraceRecord), compare_trace_records);
    int i = 0, j = 0, common = 0, only_a = 0, only_b = 0, failed = 0;
    double worst = 0.0;
    const TraceRecord *worst_at = NULL;
    while (i < a.n_records && j < b.n_records && !failed) {
        const TraceRecord *x = &a.records[i], *y = &b.records[j];
        int order = compare_trace_records(x, y);
        if (order < 0) { only_a++; i++; continue; }
        if (order > 0) { only_b++; j++; continue; }
        i++, j++, common++;
        if (x->n != y->n) {
            fprintf(out, "first difference: %s, layer %d, position %d: %d values in A, %d in B\n", x->op, x->layer,
                    x->pos, x->n, y->n);
            failed = 1;
            break;
        }
        double err = 0.0, scale = 1.0;
        int at = 0;
        for (int k = 0; k < x->n; k++) {
            double d = fabs((double)x->values[k] - (double)y->values[k]);
            if (!(d <= err)) { err = d; at = k; }   /* a NaN counts as the worst */
            if (fabs((double)y->values[k]) > scale) scale = fabs((double)y->values[k]);
        }
        if (!(err / scale <= tolerance)) {
            fprintf(out, "first op beyond %g: %s, layer %d, position %d: max |A - B| = %.3g (record scale %.3g) at "
                    "element %d: A %.7g, B %.7g\n", tolerance, x->op, x->layer, x->pos, err, scale, at,
                    (double)x->values[at], (double)y->values[at]);
            if (x->op_index == 0)
                fprintf(out, "  (embed is the first op: were the two traces given the same tokens?)\n");
            fprintf(out, "  the %d records before it agree within %.3g\n", common - 1, worst);
            failed = 1;
        } else if (err / scale >= worst) {
            worst = err / scale;
            worst_at = x;
        }
    }
    if (!failed) {
        only_a += a.n_records - i;
        only_b += b.n_records - j;
        if (common == 0) fatal("the traces %s and %s have no (op, layer, position) in common", path_a, path_b);
        fprintf(out, "%d records in both traces (%d only in A, %d only in B), all within %g: the largest error is "
                "%.3g (%s, layer %d, position %d)\n", common, only_a, only_b, tolerance, worst, worst_at->op,
                worst_at->layer, worst_at->pos);
    }
    free(a.records); free(a.data); free(b.records); free(b.data);
    return failed;
}

/* ===========================================================================
 * 15. The command line
 * =========================================================================*/
#ifndef RUN_NO_MAIN

#define DEFAULT_MODEL "models/stories.lamp"
#if defined(LAMP_OPENCL)
#define BACKEND_NAMES "cpu, reference, opencl"
#define DEFAULT_BACKEND_NAME "opencl"
#elif defined(LAMP_CUDA)
#define BACKEND_NAMES "cpu, reference, cuda"
#define DEFAULT_BACKEND_NAME "cuda"
#else
#define BACKEND_NAMES "cpu, reference (OpenCL and CUDA: make opencl, make cuda)"
#define DEFAULT_BACKEND_NAME "cpu"
#endif

void print_usage(FILE *out) {
    fprintf(out,
        "usage: run [MODEL] [options]\n"
        "  MODEL      a lamp model (.lamp, float32 or int8) or a llama2.c checkpoint\n"
        "             (.bin, version 0, 1 or 2 = int8);\n"
        "             default " DEFAULT_MODEL "\n"
        "options (defaults in brackets):\n"
        "  -t FLOAT   temperature, 0 = greedy, >= 0 [1.0]\n"
        "  -p FLOAT   top-p (nucleus) in [0,1]; 0 or 1 turns it off [0.9]\n"
        "  -k INT     top-k, keep only the k most likely tokens; 0 = off [0]\n"
        "  -s INT     random seed, 0 = from the clock [0]\n"
        "  -n INT     tokens to generate (chat: per reply); 0 = until the context is full [256]\n"
        "  -i STRING  prompt (chat: the first user message) [none]\n"
        "  -z FILE    tokenizer.bin for llama2.c checkpoints; lamp models carry their own [tokenizer.bin]\n"
        "  -m MODE    generate, chat, or eval (the loss on a text file, -f) [generate]\n"
        "  -f FILE    eval: the text file; documents are separated by blank lines [none]\n"
        "  -y STRING  chat: system prompt; when absent, chat asks for one [none]\n"
        "  --chat-template NAME  chat: none, llama2, chatml or llama3 [the model file's]\n"
        "  --min-p FLOAT  min-p in [0,1]: drop tokens less likely than this x the most likely; 0 = off [0]\n"
        "  --threads N  threads for matmul and attention, at most the CPUs present [OMP_NUM_THREADS, else the physical cores]\n"
        "  --reference  run Part I of run.c only: the plain forward pass, one token at a\n"
        "             time, plain KV cache and matmul (slow; the reference the fast path is checked against)\n"
        "  --backend NAME  the ops table the forward pass runs on: " BACKEND_NAMES " [" DEFAULT_BACKEND_NAME "]\n"
        "  --trace FILE  write every op's output (op, layer, position, values) to FILE (docs/porting.md)\n"
        "  --compare-traces A B  name the first op, layer and position where traces A and B differ by more\n"
        "             than --tolerance [1e-4] (relative to the values' scale above 1); exit 1 if one does\n"
        "  -v         verbose: print the seed, the token ids and timing on stderr\n"
        "  -h         this help\n"
        "The text goes to stdout; load time and tokens per second to stderr.\n"
        "With no prompt, -n counts like llama2.c's -n; with a prompt, lamp's -n counts\n"
        "only new tokens (llama2.c counts the prompt too).\n");
}

/* Strict number parsing: the whole string must be a number in range, or the
 * program stops with a message naming the flag. */
double parse_number(const char *flag, const char *text, double lo, double hi, int integer) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v) || v < lo || v > hi ||
        (integer && v != floor(v)))
    {
        if (integer)   /* "from 0 to 1073741824", not "1.07374e+09" */
            fatal("invalid value '%s' for %s: expected an integer from %.0f to %.0f", text, flag, lo, hi);
        fatal("invalid value '%s' for %s: expected a number from %g to %g", text, flag, lo, hi);
    }
    return v;
}

uint64_t parse_seed(const char *text) {
    char *end;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') fatal("invalid value '%s' for -s: expected an integer from 0 to 2^64-1", text);
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE) fatal("invalid value '%s' for -s: expected an integer from 0 to 2^64-1", text);
    return (uint64_t)v;
}

int main(int argc, char **argv) {
    wait_passively_by_default(argv);   /* section 11 */
    const char *model_path = NULL, *tokenizer_path = NULL, *prompt = "", *mode = "generate";
    const char *system_prompt = NULL, *eval_path = NULL, *backend_name = NULL, *trace_path = NULL;
    double tolerance = 1e-4;
    float temperature = 1.0f, topp = 0.9f, minp = 0.0f;
    int topk = 0, steps = 256, threads = 0, verbose = 0, reference = 0, chat_template = -1;
    uint64_t seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) { print_usage(stdout); return 0; }
        if (strcmp(arg, "-v") == 0) { verbose = 1; continue; }
        if (strcmp(arg, "--reference") == 0) { reference = 1; continue; }
        if (strcmp(arg, "--compare-traces") == 0) {
            if (i + 2 >= argc) fatal("--compare-traces needs two trace files; -h for help");
            for (int k = i + 3; k + 1 < argc; k += 2)
                if (!strcmp(argv[k], "--tolerance")) tolerance = parse_number("--tolerance", argv[k + 1], 0, 1e30, 0);
            return compare_traces(argv[i + 1], argv[i + 2], tolerance, stdout);
        }
        if (arg[0] != '-') {
            if (model_path) fatal("two model files given ('%s' and '%s'); -h for help", model_path, arg);
            model_path = arg;
            continue;
        }
        int known = !strcmp(arg, "-t") || !strcmp(arg, "-p") || !strcmp(arg, "-k") || !strcmp(arg, "-s") ||
                    !strcmp(arg, "-n") || !strcmp(arg, "-i") || !strcmp(arg, "-z") || !strcmp(arg, "-m") ||
                    !strcmp(arg, "-y") || !strcmp(arg, "-f") || !strcmp(arg, "--threads") ||
                    !strcmp(arg, "--min-p") || !strcmp(arg, "--chat-template") || !strcmp(arg, "--backend") ||
                    !strcmp(arg, "--trace");
        if (!known) fatal("unknown option '%s'; -h for help", arg);
        if (i + 1 >= argc) fatal("option %s needs a value; -h for help", arg);
        const char *value = argv[++i];
        if (!strcmp(arg, "-t")) temperature = (float)parse_number("-t", value, 0, 1e6, 0);
        else if (!strcmp(arg, "-p")) topp = (float)parse_number("-p", value, 0, 1, 0);
        else if (!strcmp(arg, "-k")) topk = (int)parse_number("-k", value, 0, 1 << 22, 1);
        else if (!strcmp(arg, "-n")) steps = (int)parse_number("-n", value, 0, 1 << 30, 1);
        else if (!strcmp(arg, "--threads")) threads = (int)parse_number("--threads", value, 1, 1024, 1);
        else if (!strcmp(arg, "-s")) seed = parse_seed(value);
        else if (!strcmp(arg, "-i")) prompt = value;
        else if (!strcmp(arg, "-z")) tokenizer_path = value;
        else if (!strcmp(arg, "-y")) system_prompt = value;
        else if (!strcmp(arg, "-m")) mode = value;
        else if (!strcmp(arg, "-f")) eval_path = value;
        else if (!strcmp(arg, "--min-p")) minp = (float)parse_number("--min-p", value, 0, 1, 0);
        else if (!strcmp(arg, "--backend")) backend_name = value;
        else if (!strcmp(arg, "--trace")) trace_path = value;
        else if (!strcmp(arg, "--chat-template")) {
            for (int k = 0; k < N_CHAT_TEMPLATES; k++)
                if (strcmp(value, chat_template_names[k]) == 0) chat_template = k;
            if (chat_template < 0)
                fatal("unknown chat template '%s' for --chat-template: expected none, llama2, chatml or llama3", value);
        }
    }
    if (strcmp(mode, "generate") != 0 && strcmp(mode, "chat") != 0 && strcmp(mode, "eval") != 0)
        fatal("invalid mode '%s' for -m: expected generate, chat or eval", mode);
    if (!strcmp(mode, "eval") && !eval_path) fatal("-m eval needs a text file to evaluate: -f FILE");
    if (strcmp(mode, "eval") != 0 && eval_path) fatal("-f FILE is the text for -m eval; it does nothing with -m %s", mode);
    if (!model_path) {
        if (access(DEFAULT_MODEL, R_OK) != 0)
            fatal("no model given and the default " DEFAULT_MODEL " is not here; usage: run MODEL [options] (-h for help)");
        model_path = DEFAULT_MODEL;
    }
    const Backend *backend = &DEFAULT_BACKEND;
    if (backend_name && !(backend = find_backend(backend_name)))
        fatal("unknown backend '%s' for --backend: this build has %s", backend_name, BACKEND_NAMES);
    if (reference && (backend_name || trace_path))
        fatal("--reference runs Part I's forward() alone, with no ops table to %s; use --backend reference",
              trace_path ? "trace" : "choose");
    if (seed == 0) seed = (uint64_t)(unsigned int)time(NULL); /* as llama2.c; never 0 */
#ifdef _OPENMP
    if (threads == 0 && !getenv("OMP_NUM_THREADS")) threads = physical_cores();
    /* More threads than CPUs only makes them wait for each other at every
     * barrier (docs/performance.md): use the CPUs there are, and say so. */
    if (threads > omp_get_num_procs()) {
        fprintf(stderr, "lamp: --threads %d is more than the %d CPUs available; using %d\n", threads,
                omp_get_num_procs(), omp_get_num_procs());
        threads = omp_get_num_procs();
    }
    if (threads > 0) omp_set_num_threads(threads);
#else
    if (threads > 1)   /* say so, rather than leave --threads quietly doing nothing */
        fprintf(stderr, "lamp: --threads %d: this ./run was built without OpenMP and runs on one CPU\n", threads);
#endif

    double t0 = time_now();
    Transformer transformer;
    build_transformer(&transformer, model_path);
    Tokenizer file_tokenizer, *tok = &transformer.tokenizer;
    if (tokenizer_path || !transformer.has_tokenizer) {
        /* llama2.c checkpoints need a separate tokenizer; a lamp model may
         * be given another one with -z (it must have the same vocabulary). */
        const char *path = tokenizer_path ? tokenizer_path : "tokenizer.bin";
        if (access(path, R_OK) != 0)
            fatal("%s has no tokenizer inside and %s cannot be read; give one with -z FILE", model_path, path);
        tokenizer_load_bin(&file_tokenizer, path, transformer.config.vocab_size);
        tok = &file_tokenizer;
        tok->bos_id = transformer.config.bos_id;
        tok->eos_id = transformer.config.eos_id;
    }
    if (reference) malloc_run_state(&transformer);   /* Part I */
    else start_backend(&transformer, backend);       /* Part II */
    if (trace_path) {
        if (!(transformer.trace = fopen(trace_path, "wb"))) fatal("cannot create trace %s: %s", trace_path, strerror(errno));
        if (fwrite("LAMPTRC1", 1, 8, transformer.trace) != 8) fatal("cannot write the trace %s", trace_path);
    }
    RunInfo info = {verbose, time_now() - t0};

    Sampler sampler;
    build_sampler(&sampler, transformer.config.vocab_size, temperature, topp, topk, seed);
    sampler.minp = minp;
    if (chat_template >= 0) transformer.chat_template = chat_template;
    if (verbose) {
        const Config *c = &transformer.config;
        fprintf(stderr, "model %s: dim %d, hidden %d, layers %d, heads %d, kv heads %d, head_dim %d, vocab %d, seq_len %d\n",
                model_path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                c->vocab_size, c->seq_len);
        if (transformer.weights.group_size)
            fprintf(stderr, "weights int8 (Q8_0, groups of %d)\n", transformer.weights.group_size);
        else
            fprintf(stderr, "weights float32\n");
        if (reference) {
            fprintf(stderr, "path reference (Part I's forward(): one token at a time)\n");
        } else {
            char device[256];
            backend->describe(&transformer, device, sizeof device);
            fprintf(stderr, "backend %s: %s\n", backend->name, device);
        }
#ifdef _OPENMP
        fprintf(stderr, "threads %d\n", omp_get_max_threads());
#endif
        fprintf(stderr, "seed %llu (replay with -s %llu), temperature %g, top-p %g, top-k %d\n",
                (unsigned long long)seed, (unsigned long long)seed, temperature, topp, topk);
    }
    if (strcmp(mode, "generate") == 0) generate(&transformer, tok, &sampler, prompt, steps, &info);
    else if (strcmp(mode, "chat") == 0) chat(&transformer, tok, &sampler, prompt, system_prompt, steps, &info);
    else eval_file(&transformer, tok, eval_path, &info);

    free_sampler(&sampler);
    if (tok == &file_tokenizer) tokenizer_free(&file_tokenizer);
    free_transformer(&transformer);
    return 0;
}
#endif /* RUN_NO_MAIN */
