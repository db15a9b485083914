/* run.c — run a Llama-family language model, in one file of C.
 *
 * Read it top to bottom; it is written as a lesson, in the order things
 * happen when you type `./run model.lamp -i "Once upon a time"`:
 *
 *   1. the model's configuration and weights, memory-mapped from the file
 *   2. the run state: the activations of one position, and the KV cache
 *   3. the kernels: rmsnorm, matmul, RoPE, softmax, attention, SwiGLU
 *   4. forward(): one token in, the next token's logits out
 *   5. the sampler: logits -> the next token (greedy, temperature, top-p, top-k)
 *   6. generate and chat: the loops that feed tokens back in
 *   7. main: the command line
 *
 * The tokenizer (text <-> token ids) lives in tokenizer.c; the file formats
 * are specified byte by byte in docs/format.md; the architecture, equation
 * by equation, in docs/architecture.md.
 *
 * Everything here is plain C11 plus OpenMP pragmas: the pragmas spread the
 * big loops over the CPU cores and ask the compiler to use SIMD. Build with
 * `make`; without OpenMP (`make NO_OMP=1`) the same code runs on one core. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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

/* Every weight is a pointer straight into the memory-mapped file: loading a
 * model copies nothing. Matrices are (out, in), row-major. Below,
 * q_dim = n_heads * head_dim and kv_dim = n_kv_heads * head_dim. */
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
} Weights;

/* What file a model came from decides a few conventions (see main). */
enum { FORMAT_LAMP, FORMAT_LLAMA2C_V0, FORMAT_LLAMA2C_V1 };

/* ===========================================================================
 * 2. Run state: the activations of the current position, and the KV cache
 * =========================================================================*/

typedef struct {
    float *x;           /* (dim) the residual stream at the current position */
    float *xb;          /* (max(dim, q_dim)) scratch: normalised x, or attention output */
    float *xb2;         /* (dim) scratch: a block's output before the residual add */
    float *hb;          /* (hidden_dim) FFN gate, then the SwiGLU product */
    float *hb2;         /* (hidden_dim) FFN up projection */
    float *q;           /* (q_dim) the query of the current position */
    float *att;         /* (n_heads, seq_len) attention weights */
    float *logits;      /* (vocab_size) the output */
    float *key_cache;   /* (n_layers, seq_len, kv_dim) keys of every position so far */
    float *value_cache; /* (n_layers, seq_len, kv_dim) values of every position so far */
    float *rope_cos;    /* (seq_len, head_dim/2) cos(pos * freq_i), computed once */
    float *rope_sin;    /* (seq_len, head_dim/2) sin(pos * freq_i) */
} RunState;

typedef struct {
    Config config;
    Weights weights;
    RunState state;
    Tokenizer tokenizer;   /* filled from the file for lamp models */
    int has_tokenizer;
    int format;            /* FORMAT_* */
    const char *path;
    unsigned char *data;   /* the memory-mapped file */
    size_t file_size;
} Transformer;

/* --- reading the header --------------------------------------------------
 * Headers are read with memcpy from the mapped bytes (never by casting a
 * struct onto them), so the layout is exactly the one docs/format.md gives. */

static int32_t read_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static uint32_t read_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static float read_f32(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }
static uint64_t read_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

#define LLAMA2C_MAGIC 0x616b3432u

/* Sanity limits: generous enough for 70B-class models, tight enough that a
 * corrupt header is caught before it asks for terabytes of memory. Returns
 * NULL if the config is sane, else a description of what is wrong. */
static const char *check_config(const Config *c, char *why, size_t why_size) {
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

/* --- where each tensor lives ---------------------------------------------
 * A format is a list of tensors in file order. The same list is walked
 * twice: first to compute the size the file must have, then (after checking
 * it) to point each weight into the mapped file. */

typedef struct {
    const float **dst;  /* the Weights field to point, or NULL to skip the tensor */
    size_t numel;       /* number of floats */
} TensorSlot;

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Walk the slots from byte `offset`, each tensor aligned to `align` bytes.
 * Returns where the last tensor ends. With base != NULL, also sets the
 * pointers. */
static size_t place_tensors(const TensorSlot *slots, int n, size_t offset, size_t align,
                            const unsigned char *base) {
    for (int i = 0; i < n; i++) {
        offset = align_up(offset, align);
        if (base && slots[i].dst) *slots[i].dst = (const float *)(base + offset);
        offset += slots[i].numel * sizeof(float);
    }
    return offset;
}

/* The tensor order of each format (docs/format.md). Returns the count. */
static int tensor_layout(Transformer *t, TensorSlot *s) {
    const Config *c = &t->config;
    Weights *w = &t->weights;
    size_t L = (size_t)c->n_layers, dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t vocab = (size_t)c->vocab_size;
    const float **wcls = c->shared_classifier ? NULL : &w->wcls;
    int n = 0;
    if (t->format == FORMAT_LLAMA2C_V1) {   /* norms first, no RoPE tables */
        s[n++] = (TensorSlot){&w->rms_att_weight, L * dim};
        s[n++] = (TensorSlot){&w->rms_ffn_weight, L * dim};
        s[n++] = (TensorSlot){&w->rms_final_weight, dim};
        s[n++] = (TensorSlot){&w->token_embedding, vocab * dim};
        s[n++] = (TensorSlot){&w->wq, L * q_dim * dim};
        s[n++] = (TensorSlot){&w->wk, L * kv_dim * dim};
        s[n++] = (TensorSlot){&w->wv, L * kv_dim * dim};
        s[n++] = (TensorSlot){&w->wo, L * dim * q_dim};
        s[n++] = (TensorSlot){&w->w1, L * hidden * dim};
        s[n++] = (TensorSlot){&w->w2, L * dim * hidden};
        s[n++] = (TensorSlot){&w->w3, L * hidden * dim};
        if (wcls) s[n++] = (TensorSlot){wcls, vocab * dim};
        return n;
    }
    /* lamp and llama2.c version 0 share the order of the tensors */
    s[n++] = (TensorSlot){&w->token_embedding, vocab * dim};
    s[n++] = (TensorSlot){&w->rms_att_weight, L * dim};
    s[n++] = (TensorSlot){&w->wq, L * q_dim * dim};
    s[n++] = (TensorSlot){&w->wk, L * kv_dim * dim};
    s[n++] = (TensorSlot){&w->wv, L * kv_dim * dim};
    s[n++] = (TensorSlot){&w->wo, L * dim * q_dim};
    s[n++] = (TensorSlot){&w->rms_ffn_weight, L * dim};
    s[n++] = (TensorSlot){&w->w1, L * hidden * dim};
    s[n++] = (TensorSlot){&w->w2, L * dim * hidden};
    s[n++] = (TensorSlot){&w->w3, L * hidden * dim};
    s[n++] = (TensorSlot){&w->rms_final_weight, dim};
    if (t->format == FORMAT_LLAMA2C_V0) {   /* stored RoPE tables: skipped, we build our own */
        s[n++] = (TensorSlot){NULL, (size_t)c->seq_len * c->head_dim / 2};
        s[n++] = (TensorSlot){NULL, (size_t)c->seq_len * c->head_dim / 2};
    }
    if (wcls) s[n++] = (TensorSlot){wcls, vocab * dim};
    return n;
}

/* Read the header of whichever format the file is in; fill t->config and
 * t->format, and return the byte offset where the tensors start. */
static size_t read_header(Transformer *t) {
    const unsigned char *d = t->data;
    size_t size = t->file_size;
    Config *c = &t->config;
    const char *path = t->path;
    char why[160];
    memset(c, 0, sizeof *c);

    if (size >= 4 && memcmp(d, "LAMP", 4) == 0) {
        if (size < 256) fatal("%s: file ends inside the 256-byte lamp header (truncated)", path);
        uint32_t version = read_u32(d + 4);
        if (version != 1) fatal("%s: lamp format version %u is not supported (this run.c reads version 1)", path, version);
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
        uint32_t flags = read_u32(d + 56), weight_type = read_u32(d + 60);
        if (flags & ~1u) fatal("%s: unknown flags 0x%x in the lamp header", path, flags);
        c->shared_classifier = (int)(flags & 1u);
        if (weight_type != 0) fatal("%s: weight type %u is not supported (this run.c reads float32, type 0)", path, weight_type);
        t->format = FORMAT_LAMP;
        if (check_config(c, why, sizeof why)) fatal("%s: bad lamp header: %s", path, why);
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
    if (size >= 8 && read_u32(d) == LLAMA2C_MAGIC) {
        int32_t version = read_i32(d + 4);
        if (version == 2) fatal("%s: llama2.c version 2 (int8) checkpoints are not supported yet; export version 0 or 1", path);
        if (version != 1) fatal("%s: llama2.c checkpoint version %d is not supported (versions 0 and 1 are)", path, version);
        if (size < 256) fatal("%s: file ends inside the 256-byte llama2.c header (truncated)", path);
        t->format = FORMAT_LLAMA2C_V1;
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
    if (problem) {
        if (t->format == FORMAT_LLAMA2C_V0)
            fatal("%s: not a lamp model and not a valid llama2.c version 0 checkpoint (%s)", path, why);
        fatal("%s: bad llama2.c header: %s", path, why);
    }
    if (c->vocab_size < 3) fatal("%s: vocab_size %d is too small for a llama2.c model (BOS=1, EOS=2)", path, c->vocab_size);
    return header_size;
}

static void build_transformer(Transformer *t, const char *path) {
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
    TensorSlot slots[16];
    int n = tensor_layout(t, slots);
    size_t align = t->format == FORMAT_LAMP ? 64 : 4;
    size_t expected = place_tensors(slots, n, offset, align, NULL);
    if (expected != t->file_size)
        fatal("%s: file is %zu bytes but its header implies %zu bytes (%s)", path, t->file_size, expected,
              t->file_size < expected ? "truncated" : "trailing data or wrong header");
    place_tensors(slots, n, offset, align, t->data);
    if (t->config.shared_classifier) t->weights.wcls = t->weights.token_embedding;
}

/* Allocate the run state and precompute the RoPE tables. */
static void malloc_run_state(Transformer *t) {
    const Config *c = &t->config;
    RunState *s = &t->state;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t cache = (size_t)c->n_layers * c->seq_len * kv_dim;
    size_t half = (size_t)c->head_dim / 2;
    s->x = xcalloc((size_t)c->dim, sizeof(float));
    s->xb = xcalloc(q_dim > (size_t)c->dim ? q_dim : (size_t)c->dim, sizeof(float));
    s->xb2 = xcalloc((size_t)c->dim, sizeof(float));
    s->hb = xcalloc((size_t)c->hidden_dim, sizeof(float));
    s->hb2 = xcalloc((size_t)c->hidden_dim, sizeof(float));
    s->q = xcalloc(q_dim, sizeof(float));
    s->att = xcalloc((size_t)c->n_heads * c->seq_len, sizeof(float));
    s->logits = xcalloc((size_t)c->vocab_size, sizeof(float));
    s->key_cache = xcalloc(cache, sizeof(float));
    s->value_cache = xcalloc(cache, sizeof(float));
    s->rope_cos = xmalloc((size_t)c->seq_len * half * sizeof(float));
    s->rope_sin = xmalloc((size_t)c->seq_len * half * sizeof(float));
    /* RoPE rotates pair i of every head by the angle pos * freq_i, with
     * freq_i = theta^(-2i/head_dim): fast rotation for the first pairs,
     * slow for the last. The angles depend only on (pos, i), so compute the
     * cosines and sines once here instead of once per token. (The float
     * expressions are the ones llama2.c evaluates per token, so the tables
     * hold bit-identical values.) */
    for (int pos = 0; pos < c->seq_len; pos++) {
        for (size_t i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
            float angle = (float)pos * freq;
            s->rope_cos[(size_t)pos * half + i] = cosf(angle);
            s->rope_sin[(size_t)pos * half + i] = sinf(angle);
        }
    }
}

static void free_transformer(Transformer *t) {
    RunState *s = &t->state;
    free(s->x); free(s->xb); free(s->xb2); free(s->hb); free(s->hb2); free(s->q);
    free(s->att); free(s->logits); free(s->key_cache); free(s->value_cache);
    free(s->rope_cos); free(s->rope_sin);
    if (t->has_tokenizer) tokenizer_free(&t->tokenizer);
    if (t->data) munmap(t->data, t->file_size);
    memset(t, 0, sizeof *t);
}

/* ===========================================================================
 * 3. Kernels
 * =========================================================================*/

/* RMSNorm: out = weight * x / sqrt(mean(x^2) + eps).
 * Unlike LayerNorm it does not subtract the mean; it only rescales. */
static void rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    #pragma omp simd reduction(+:ss)
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = weight[i] * (scale * x[i]);
}

/* matmul: out(d) = W(d, n) @ x(n). Almost all the time of a forward pass is
 * spent here: every weight of the model passes through this loop once per
 * token. The rows are independent, so OpenMP splits them over the cores;
 * inside a row, `omp simd reduction` lets the compiler keep several partial
 * sums in one SIMD register (8 floats with AVX2) and add them at the end. */
static void matmul(float *out, const float *x, const float *w, int n, int d) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < d; i++) {
        const float *row = w + (size_t)i * n;
        float sum = 0.0f;
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j < n; j++) sum += row[j] * x[j];
        out[i] = sum;
    }
}

/* RoPE (rotary position embedding): rotate each pair (v[2i], v[2i+1]) of
 * every head by the angle pos * freq_i:
 *     v'[2i]   = v[2i] cos - v[2i+1] sin
 *     v'[2i+1] = v[2i] sin + v[2i+1] cos
 * After this, the dot product of a query at position m with a key at
 * position n depends only on m - n: attention sees relative positions. */
static void rope(float *vec, int n_heads, int head_dim, const float *cos_row, const float *sin_row) {
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            float v0 = v[2 * i], v1 = v[2 * i + 1];
            v[2 * i] = v0 * cos_row[i] - v1 * sin_row[i];
            v[2 * i + 1] = v0 * sin_row[i] + v1 * cos_row[i];
        }
    }
}

/* softmax in place: x_i = exp(x_i - max) / sum_j exp(x_j - max).
 * Subtracting the max changes nothing mathematically and keeps exp() from
 * overflowing. */
static void softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* Attention for the token at position `pos`, layer cache `layer_offset`.
 * Each query head h looks at the keys of every position t <= pos (causal):
 *     score_t = q_h . k_t / sqrt(head_dim),  a = softmax(score),
 *     out_h   = sum_t a_t v_t
 * With grouped-query attention, n_heads / n_kv_heads query heads share one
 * key/value head: query head h reads kv head h / (n_heads / n_kv_heads).
 * Heads are independent, so OpenMP gives each core its own heads. */
static void attention(Transformer *t, size_t layer_offset, int pos) {
    const Config *c = &t->config;
    RunState *s = &t->state;
    int head_dim = c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int kv_mul = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    #pragma omp parallel for schedule(static)
    for (int h = 0; h < c->n_heads; h++) {
        const float *q = s->q + (size_t)h * head_dim;
        float *att = s->att + (size_t)h * c->seq_len;
        size_t kv_head = (size_t)(h / kv_mul) * head_dim;
        for (int pos_t = 0; pos_t <= pos; pos_t++) {
            const float *k = s->key_cache + layer_offset + (size_t)pos_t * kv_dim + kv_head;
            float score = 0.0f;
            #pragma omp simd reduction(+:score)
            for (int i = 0; i < head_dim; i++) score += q[i] * k[i];
            att[pos_t] = score * scale;
        }
        softmax(att, pos + 1);
        float *out = s->xb + (size_t)h * head_dim;
        memset(out, 0, (size_t)head_dim * sizeof(float));
        for (int pos_t = 0; pos_t <= pos; pos_t++) {
            const float *v = s->value_cache + layer_offset + (size_t)pos_t * kv_dim + kv_head;
            float a = att[pos_t];
            #pragma omp simd
            for (int i = 0; i < head_dim; i++) out[i] += a * v[i];
        }
    }
}

/* SwiGLU: h = silu(gate) * up, with silu(x) = x * sigmoid(x) = x / (1 + e^-x).
 * The gate decides, per hidden unit, how much of `up` passes through. */
static void swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* ===========================================================================
 * 4. The forward pass: one token at position pos -> logits for the next
 * =========================================================================*/

static float *forward(Transformer *t, int token, int pos) {
    const Config *c = &t->config;
    const Weights *w = &t->weights;
    RunState *s = &t->state;
    int dim = c->dim, hidden_dim = c->hidden_dim;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    size_t half = (size_t)c->head_dim / 2;
    const float *cos_row = s->rope_cos + (size_t)pos * half, *sin_row = s->rope_sin + (size_t)pos * half;

    /* the token's embedding is the start of the residual stream */
    memcpy(s->x, w->token_embedding + (size_t)token * dim, (size_t)dim * sizeof(float));

    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        /* --- attention block: x = x + wo @ attention(rope(wq @ n), rope(wk @ n), wv @ n),
         *     with n = rmsnorm(x) */
        rmsnorm(s->xb, s->x, w->rms_att_weight + l * dim, dim, c->norm_eps);
        /* this position's key and value go straight into the cache */
        size_t layer_offset = l * (size_t)c->seq_len * kv_dim;
        float *k = s->key_cache + layer_offset + (size_t)pos * kv_dim;
        float *v = s->value_cache + layer_offset + (size_t)pos * kv_dim;
        matmul(s->q, s->xb, w->wq + l * q_dim * dim, dim, q_dim);
        matmul(k, s->xb, w->wk + l * kv_dim * dim, dim, kv_dim);
        matmul(v, s->xb, w->wv + l * kv_dim * dim, dim, kv_dim);
        rope(s->q, c->n_heads, c->head_dim, cos_row, sin_row);
        rope(k, c->n_kv_heads, c->head_dim, cos_row, sin_row);
        attention(t, layer_offset, pos);                  /* -> s->xb (q_dim) */
        matmul(s->xb2, s->xb, w->wo + l * dim * q_dim, q_dim, dim);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i]; /* residual */

        /* --- feed-forward block: x = x + w2 @ (silu(w1 @ n) * (w3 @ n)),
         *     with n = rmsnorm(x) */
        rmsnorm(s->xb, s->x, w->rms_ffn_weight + l * dim, dim, c->norm_eps);
        matmul(s->hb, s->xb, w->w1 + l * hidden_dim * dim, dim, hidden_dim);
        matmul(s->hb2, s->xb, w->w3 + l * hidden_dim * dim, dim, hidden_dim);
        swiglu(s->hb, s->hb2, hidden_dim);
        matmul(s->xb2, s->hb, w->w2 + l * dim * hidden_dim, hidden_dim, dim);
        for (int i = 0; i < dim; i++) s->x[i] += s->xb2[i]; /* residual */
    }

    /* final norm, then the classifier: one logit per vocabulary entry */
    rmsnorm(s->x, s->x, w->rms_final_weight, dim, c->norm_eps);
    matmul(s->logits, s->x, w->wcls, dim, c->vocab_size);
    return s->logits;
}

/* ===========================================================================
 * 5. The sampler: logits -> next token
 * =========================================================================*/

/* xorshift* (Marsaglia / Vigna), the generator llama2.c uses, so a given
 * seed draws the same numbers here as there. The state must not be 0. */
static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1DULL) >> 32);
}
/* a float in [0, 1) with 24 random bits */
static float random_f32(uint64_t *state) { return (float)(random_u32(state) >> 8) / 16777216.0f; }

typedef struct {
    float prob;
    int index;
} ProbIndex;

typedef struct {
    int vocab_size;
    float temperature;  /* 0 = greedy */
    float topp;         /* nucleus sampling; 0 or 1 = off */
    int topk;           /* keep the k most likely tokens; 0 = off */
    uint64_t rng_state;
    ProbIndex *candidates; /* (vocab_size) scratch for top-p / top-k */
} Sampler;

static void build_sampler(Sampler *s, int vocab_size, float temperature, float topp, int topk, uint64_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->topk = topk;
    s->rng_state = seed;
    s->candidates = xmalloc((size_t)vocab_size * sizeof(ProbIndex));
}

static void free_sampler(Sampler *s) { free(s->candidates); }

static int sample_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

/* Draw from the distribution p: walk the cumulative sum until it passes coin. */
static int sample_mult(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* in case of rounding errors */
}

/* most probable first; equal probabilities keep the lower token id first */
static int compare_prob_desc(const void *a, const void *b) {
    const ProbIndex *x = a, *y = b;
    if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Draw from the first n candidates (sorted), cut at the smallest prefix whose
 * probability exceeds `mass` (all of them if none does). */
static int sample_sorted_prefix(const ProbIndex *cand, int n, float mass, float coin) {
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
 * that set, so they are dropped before sorting — as llama2.c does. */
static int sample_topp(const float *p, int n, float topp, ProbIndex *cand, float coin) {
    int n0 = 0;
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff) cand[n0++] = (ProbIndex){p[i], i};
    qsort(cand, (size_t)n0, sizeof(ProbIndex), compare_prob_desc);
    return sample_sorted_prefix(cand, n0, topp, coin);
}

/* Top-k: keep the k most probable tokens, then (if top-p is on) the top-p
 * subset of those, measured on their renormalised probabilities. */
static int sample_topk(const float *p, int n, int k, float topp, ProbIndex *cand, float coin) {
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
static int sample(Sampler *s, float *logits) {
    int n = s->vocab_size;
    if (s->temperature == 0.0f) return sample_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= s->temperature;
    softmax(logits, n);
    float coin = random_f32(&s->rng_state);
    if (s->topk > 0 && s->topk < n) return sample_topk(logits, n, s->topk, s->topp, s->candidates, coin);
    if (s->topp > 0.0f && s->topp < 1.0f) return sample_topp(logits, n, s->topp, s->candidates, coin);
    return sample_mult(logits, n, coin);
}

/* ===========================================================================
 * 6. Generate and chat
 * =========================================================================*/

static double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Does `token` end the text? lamp files name their own EOS (and a BOS in the
 * middle of a text means a new document begins). llama2.c's checkpoints are
 * TinyStories-style: a BOS before every story and no EOS, so llama2.c stops
 * on BOS only; we do the same for its files so the same seed prints the
 * same story. */
static int is_stop_token(const Transformer *t, int token) {
    if (t->format != FORMAT_LAMP) return token == t->config.bos_id;
    return token == t->config.eos_id || token == t->config.bos_id;
}

typedef struct {
    int verbose;
    double load_seconds;
} RunInfo;

static void print_token_ids(const char *label, const int *ids, int n) {
    fprintf(stderr, "%s (%d):", label, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Generate: feed the prompt, then sample up to `steps` new tokens, printing
 * each as it comes. steps = 0 means until the context is full. */
static void generate(Transformer *t, Tokenizer *tok, Sampler *sampler, const char *prompt, int steps,
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

    Utf8Printer printer = {0};
    int token = prompt_ids[0];
    int pos = 0;
    double start = time_now(), prompt_done = start;
    /* The prompt is echoed as it is fed in (its first piece follows BOS, so
     * decode drops the dummy-prefix space), then the model continues it. */
    while (n_generated < steps) {
        float *logits = forward(t, token, pos);
        int next;
        if (pos + 1 < n_prompt) {
            next = prompt_ids[pos + 1];     /* still inside the prompt: force it */
        } else {
            if (pos + 1 == n_prompt) prompt_done = time_now();
            next = sample(sampler, logits);
            generated[n_generated++] = next;
        }
        pos++;
        if (pos >= n_prompt && is_stop_token(t, next)) break;
        size_t len;
        const char *piece = tokenizer_decode(tok, token, next, &len);
        utf8_print(&printer, piece, len, stdout);
        fflush(stdout);
        token = next;
    }
    utf8_flush(&printer, stdout);
    printf("\n");
    fflush(stdout);
    double end = time_now();
    /* Speed. The prompt phase produces the first new token; the decode
     * phase is the rest. */
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

/* Read one line from stdin into *line (growing it as needed), without the
 * newline. Returns 0 at end of input. */
static int read_line(const char *question, char **line, size_t *cap) {
    fputs(question, stdout);
    fflush(stdout);
    ssize_t got = getline(line, cap, stdin);
    if (got < 0) return 0;
    if (got > 0 && (*line)[got - 1] == '\n') (*line)[--got] = '\0';
    return 1;
}

/* Chat with a Llama 2 chat model. Each user turn is wrapped in Llama 2's
 * template, [INST] ... [/INST], with the system prompt inside <<SYS>> tags in
 * the first turn. The whole conversation stays in the KV cache, so each turn
 * runs only its own new tokens through the model. */
static void chat(Transformer *t, Tokenizer *tok, Sampler *sampler, const char *first_prompt,
                 const char *system_prompt, int max_reply, const RunInfo *info) {
    const Config *c = &t->config;
    char *user = NULL, *system = NULL;
    size_t user_cap = 0, system_cap = 0;
    int pos = 0, ended_with_eos = 0, turn = 0;
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
        const char *fmt = (pos == 0 && system_prompt[0]) ? "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]"
                                                          : "[INST] %s [/INST]";
        int need = (pos == 0 && system_prompt[0]) ? snprintf(NULL, 0, fmt, system_prompt, user_text)
                                                  : snprintf(NULL, 0, fmt, user_text);
        char *rendered = xmalloc((size_t)need + 1);
        if (pos == 0 && system_prompt[0]) snprintf(rendered, (size_t)need + 1, fmt, system_prompt, user_text);
        else snprintf(rendered, (size_t)need + 1, fmt, user_text);
        int n_ids;
        int *ids = tokenizer_encode(tok, rendered, (size_t)need, 1, 0, &n_ids);
        free(rendered);
        /* The model's previous answer ended with EOS; it was sampled but not
         * yet fed in. Feed it now, so the cache holds "... answer </s><s>[INST] ...". */
        int n_feed = n_ids + (ended_with_eos ? 1 : 0);
        if (pos + n_feed > c->seq_len) {
            free(ids);
            fprintf(stderr, "[context full: the conversation has used %d of %d positions; start a new chat]\n",
                    pos, c->seq_len);
            break;
        }
        double t0 = time_now();
        float *logits = NULL;
        if (ended_with_eos) logits = forward(t, c->eos_id, pos++);
        for (int i = 0; i < n_ids; i++) logits = forward(t, ids[i], pos++);
        free(ids);
        ended_with_eos = 0;

        fputs("Assistant: ", stdout);
        Utf8Printer printer = {0};
        int prev = -1, n_reply = 0;
        for (;;) {
            int next = sample(sampler, logits);
            if (next == c->eos_id) { ended_with_eos = 1; break; }
            size_t len;
            const char *piece = tokenizer_decode(tok, prev, next, &len);
            utf8_print(&printer, piece, len, stdout);
            fflush(stdout);
            prev = next;
            n_reply++;
            n_new_tokens++;
            if (pos >= c->seq_len) break;           /* no room left to feed it back */
            logits = forward(t, next, pos++);
            if (max_reply > 0 && n_reply >= max_reply) break;
        }
        utf8_flush(&printer, stdout);
        printf("\n");
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

/* ===========================================================================
 * 7. The command line
 * =========================================================================*/
#ifndef RUN_NO_MAIN

#define DEFAULT_MODEL "models/stories.lamp"

static void print_usage(FILE *out) {
    fprintf(out,
        "usage: run [MODEL] [options]\n"
        "  MODEL      a lamp model (.lamp) or a llama2.c checkpoint (.bin, version 0 or 1);\n"
        "             default " DEFAULT_MODEL "\n"
        "options (defaults in brackets):\n"
        "  -t FLOAT   temperature, 0 = greedy, >= 0 [1.0]\n"
        "  -p FLOAT   top-p (nucleus) in [0,1]; 0 or 1 turns it off [0.9]\n"
        "  -k INT     top-k, keep only the k most likely tokens; 0 = off [0]\n"
        "  -s INT     random seed, 0 = from the clock [0]\n"
        "  -n INT     tokens to generate (chat: per reply); 0 = until the context is full [256]\n"
        "  -i STRING  prompt (chat: the first user message) [none]\n"
        "  -z FILE    tokenizer.bin for llama2.c checkpoints; lamp models carry their own [tokenizer.bin]\n"
        "  -m MODE    generate or chat [generate]\n"
        "  -y STRING  chat: system prompt; when absent, chat asks for one [none]\n"
        "  --threads N  threads for matmul and attention [number of cores]\n"
        "  -v         verbose: print the seed, the token ids and timing on stderr\n"
        "  -h         this help\n"
        "The text goes to stdout; load time and tokens per second to stderr.\n"
        "With no prompt, -n counts like llama2.c's -n; with a prompt, lamp's -n counts\n"
        "only new tokens (llama2.c counts the prompt too).\n");
}

/* Strict number parsing: the whole string must be a number in range, or the
 * program stops with a message naming the flag. */
static double parse_number(const char *flag, const char *text, double lo, double hi, int integer) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v) || v < lo || v > hi ||
        (integer && v != floor(v)))
        fatal("invalid value '%s' for %s: expected %s from %g to %g", text, flag,
              integer ? "an integer" : "a number", lo, hi);
    return v;
}

static uint64_t parse_seed(const char *text) {
    char *end;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') fatal("invalid value '%s' for -s: expected an integer from 0 to 2^64-1", text);
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE) fatal("invalid value '%s' for -s: expected an integer from 0 to 2^64-1", text);
    return (uint64_t)v;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *tokenizer_path = NULL, *prompt = "", *mode = "generate";
    const char *system_prompt = NULL;
    float temperature = 1.0f, topp = 0.9f;
    int topk = 0, steps = 256, threads = 0, verbose = 0;
    uint64_t seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) { print_usage(stdout); return 0; }
        if (strcmp(arg, "-v") == 0) { verbose = 1; continue; }
        if (arg[0] != '-') {
            if (model_path) fatal("two model files given ('%s' and '%s'); -h for help", model_path, arg);
            model_path = arg;
            continue;
        }
        int known = !strcmp(arg, "-t") || !strcmp(arg, "-p") || !strcmp(arg, "-k") || !strcmp(arg, "-s") ||
                    !strcmp(arg, "-n") || !strcmp(arg, "-i") || !strcmp(arg, "-z") || !strcmp(arg, "-m") ||
                    !strcmp(arg, "-y") || !strcmp(arg, "--threads");
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
    }
    if (strcmp(mode, "generate") != 0 && strcmp(mode, "chat") != 0)
        fatal("invalid mode '%s' for -m: expected generate or chat", mode);
    if (!model_path) {
        if (access(DEFAULT_MODEL, R_OK) != 0)
            fatal("no model given and the default " DEFAULT_MODEL " is not here; usage: run MODEL [options] (-h for help)");
        model_path = DEFAULT_MODEL;
    }
    if (seed == 0) seed = (uint64_t)(unsigned int)time(NULL); /* as llama2.c; never 0 */
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
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
    malloc_run_state(&transformer);
    RunInfo info = {verbose, time_now() - t0};

    Sampler sampler;
    build_sampler(&sampler, transformer.config.vocab_size, temperature, topp, topk, seed);
    if (verbose) {
        const Config *c = &transformer.config;
        fprintf(stderr, "model %s: dim %d, hidden %d, layers %d, heads %d, kv heads %d, head_dim %d, vocab %d, seq_len %d\n",
                model_path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                c->vocab_size, c->seq_len);
        fprintf(stderr, "seed %llu (replay with -s %llu), temperature %g, top-p %g, top-k %d\n",
                (unsigned long long)seed, (unsigned long long)seed, temperature, topp, topk);
    }
    if (strcmp(mode, "generate") == 0) generate(&transformer, tok, &sampler, prompt, steps, &info);
    else chat(&transformer, tok, &sampler, prompt, system_prompt, steps, &info);

    free_sampler(&sampler);
    if (tok == &file_tokenizer) tokenizer_free(&file_tokenizer);
    free_transformer(&transformer);
    return 0;
}
#endif /* RUN_NO_MAIN */
