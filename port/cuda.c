/* port/cuda.c — the whole forward pass on an NVIDIA GPU: the "cuda" backend.
 *
 * The same port as port/opencl.c, with the same structure (read that one
 * first: it explains the three things every port has to get right). This is
 * the host side, in C, included at the end of run.c's section 11 when it is
 * built with -DLAMP_CUDA; the kernels are in port/cuda_kernels.cu, compiled
 * by nvcc, and each is started by a cuda_* function declared below.
 *
 *     make cuda        # nvcc compiles the kernels, gcc links build/cuda/run and the suites
 *     make cuda-test   # on a machine with an NVIDIA GPU: the golden suites through it
 *
 * Status, honestly: CI compiles and links it; it has never been run (no GPU
 * was lent to the sessions that wrote it). */
#include <cuda_runtime_api.h>

/* the launchers in port/cuda_kernels.cu; each returns its cudaError_t */
int cuda_embed_f32(float *x, const float *table, const int *tokens, int dim, int n);
int cuda_embed_q8(float *x, const int8_t *q, const float *s, const int *tokens, int dim, int gs, int n);
int cuda_rmsnorm(float *out, const float *x, const float *gain, int gain_first, int dim, float eps, int first, int rows);
int cuda_matmul_f32(float *out, const float *x, const float *w, int n, int d, int first, int T);
int cuda_quantize_q8(int8_t *q, float *scale, const float *x, int gs, int first, size_t groups);
int cuda_matmul_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, int n, int d,
                   int gs, int T);
int cuda_rope(float *q, float *k, const float *cos_table, const float *sin_table, int pos, int n_heads, int n_kv_heads,
              int head_dim, int n);
int cuda_store_kv(float *key_cache, float *value_cache, const float *k, const float *v, int l, int pos, int n_kv_heads,
                  int head_dim, int seq_len, int n);
int cuda_attention(float *out, const float *q, const float *key_cache, const float *value_cache, float *att, int l,
                   int pos, int n_heads, int n_kv_heads, int head_dim, int seq_len, int n);
int cuda_swiglu(float *gate, const float *up, size_t n);
int cuda_residual(float *x, const float *delta, size_t n);

static void cuda_check(int status, const char *what) {
    if (status != 0) fatal("CUDA: %s failed: %s", what, cudaGetErrorString((cudaError_t)status));
}

/* A weight matrix on the GPU: float32 values, or int8 values and scales. */
typedef struct {
    float *f;
    int8_t *q;
    float *s;
} CudaMatrix;

/* One model's state on the GPU (t->device); the fields are port/opencl.c's. */
typedef struct {
    CudaMatrix *matrices;        /* (n_layers * 7 + 1): layer l's MAT_WQ .. MAT_W3, then the classifier */
    CudaMatrix embedding;
    float *rms_att, *rms_ffn, *rms_final;
    float *buffers[N_BUFS];      /* BUF_X ..: (CHUNK, width) each */
    float *logits;               /* (CHUNK, vocab_size) */
    int8_t *xq;
    float *xq_scale;
    float *key_cache, *value_cache;   /* (n_layers, n_kv_heads, seq_len, head_dim), Part I's layout */
    float *att;                  /* (CHUNK, n_heads, seq_len) */
    float *rope_cos, *rope_sin;  /* (seq_len, head_dim / 2) */
    int *tokens;                 /* (CHUNK) */
    float *host_logits;          /* (CHUNK, vocab_size): what comes back */
} CudaModel;

static char cuda_device_name[256];

/* GPU memory of `bytes`, filled from host memory if `from` is not NULL, else zeros. */
static void *cuda_buffer(size_t bytes, const void *from) {
    void *p = NULL;
    cuda_check(cudaMalloc(&p, bytes > 0 ? bytes : 1), "cudaMalloc");
    if (from) cuda_check(cudaMemcpy(p, from, bytes, cudaMemcpyHostToDevice), "copying to the GPU");
    else cuda_check(cudaMemset(p, 0, bytes > 0 ? bytes : 1), "cudaMemset");
    return p;
}

static CudaMatrix cuda_matrix(Mat m, size_t numel) {
    CudaMatrix d = {NULL, NULL, NULL};
    if (m.f) {
        d.f = cuda_buffer(numel * sizeof(float), m.f);
    } else {
        d.q = cuda_buffer(numel, m.q);
        d.s = cuda_buffer(numel / (size_t)m.group_size * sizeof(float), m.s);
    }
    return d;
}

static void cuda_free_matrix(CudaMatrix *d) {
    cudaFree(d->f);
    cudaFree(d->q);
    cudaFree(d->s);
}

void cuda_load(Transformer *t) {
    if (!cuda_device_name[0]) {
        struct cudaDeviceProp prop;
        int device = 0;
        cuda_check(cudaGetDevice(&device), "cudaGetDevice (is there an NVIDIA GPU and driver?)");
        cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
        snprintf(cuda_device_name, sizeof cuda_device_name, "%s", prop.name);
    }
    const Config *c = &t->config;
    const Weights *w = &t->weights;
    CudaModel *m = xcalloc(1, sizeof(CudaModel));
    t->device = m;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t vocab = (size_t)c->vocab_size, seq = (size_t)c->seq_len, half = (size_t)c->head_dim / 2;
    m->matrices = xcalloc(L * 7 + 1, sizeof(CudaMatrix));
    for (size_t l = 0; l < L; l++)
        for (int mat = MAT_WQ; mat <= MAT_W3; mat++) {
            int rows, cols;
            matrix_shape(c, mat, &rows, &cols);
            m->matrices[l * 7 + (size_t)mat] = cuda_matrix(model_matrix(t, mat, (int)l), (size_t)rows * cols);
        }
    m->matrices[L * 7] = cuda_matrix(model_matrix(t, MAT_WCLS, 0), vocab * dim);
    Mat embedding = {w->token_embedding, w->q_token_embedding.q, w->q_token_embedding.s, w->group_size};
    if (!w->group_size) embedding.q = NULL;
    m->embedding = cuda_matrix(embedding, vocab * dim);
    m->rms_att = cuda_buffer(L * dim * sizeof(float), w->rms_att_weight);
    m->rms_ffn = cuda_buffer(L * dim * sizeof(float), w->rms_ffn_weight);
    m->rms_final = cuda_buffer(dim * sizeof(float), w->rms_final_weight);
    size_t widths[N_BUFS] = {dim, max3(dim, q_dim, 0), dim, hidden, hidden, q_dim, kv_dim, kv_dim};
    for (int b = 0; b < N_BUFS; b++) m->buffers[b] = cuda_buffer(CHUNK * widths[b] * sizeof(float), NULL);
    m->logits = cuda_buffer(CHUNK * vocab * sizeof(float), NULL);
    if (w->group_size) {
        size_t widest = max3(dim, q_dim, hidden);
        m->xq = cuda_buffer(CHUNK * widest, NULL);
        m->xq_scale = cuda_buffer(CHUNK * widest / (size_t)w->group_size * sizeof(float), NULL);
    }
    m->key_cache = cuda_buffer(L * seq * kv_dim * sizeof(float), NULL);
    m->value_cache = cuda_buffer(L * seq * kv_dim * sizeof(float), NULL);
    m->att = cuda_buffer(CHUNK * (size_t)c->n_heads * seq * sizeof(float), NULL);
    float *cos_table = xmalloc(seq * half * sizeof(float)), *sin_table = xmalloc(seq * half * sizeof(float));
    for (size_t pos = 0; pos < seq; pos++)
        rope_angles(cos_table + pos * half, sin_table + pos * half, (int)pos, c->head_dim, c->rope_theta);
    m->rope_cos = cuda_buffer(seq * half * sizeof(float), cos_table);
    m->rope_sin = cuda_buffer(seq * half * sizeof(float), sin_table);
    free(cos_table);
    free(sin_table);
    m->tokens = cuda_buffer(CHUNK * sizeof(int), NULL);
    m->host_logits = xmalloc(CHUNK * vocab * sizeof(float));
}

void cuda_release(Transformer *t) {
    CudaModel *m = t->device;
    if (!m) return;
    for (size_t i = 0; i < (size_t)t->config.n_layers * 7 + 1; i++) cuda_free_matrix(&m->matrices[i]);
    cuda_free_matrix(&m->embedding);
    void *all[] = {m->rms_att, m->rms_ffn, m->rms_final, m->logits, m->xq, m->xq_scale, m->key_cache,
                   m->value_cache, m->att, m->rope_cos, m->rope_sin, m->tokens};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cudaFree(all[i]);
    for (int b = 0; b < N_BUFS; b++) cudaFree(m->buffers[b]);
    free(m->matrices);
    free(m->host_logits);
    free(m);
    t->device = NULL;
}

/* --- the ops ---------------------------------------------------------------- */

void cuda_op_embed(Transformer *t, const int *tokens, int n) {
    CudaModel *m = t->device;
    cuda_check(cudaMemcpy(m->tokens, tokens, (size_t)n * sizeof(int), cudaMemcpyHostToDevice), "copying the tokens");
    if (t->weights.group_size)
        cuda_check(cuda_embed_q8(m->buffers[BUF_X], m->embedding.q, m->embedding.s, m->tokens, t->config.dim,
                                 t->weights.group_size, n), "embed_q8");
    else
        cuda_check(cuda_embed_f32(m->buffers[BUF_X], m->embedding.f, m->tokens, t->config.dim, n), "embed_f32");
}

void cuda_op_rmsnorm(Transformer *t, int norm, int l, int n) {
    CudaModel *m = t->device;
    int dim = t->config.dim;
    cuda_check(cuda_rmsnorm(m->buffers[BUF_XB], m->buffers[BUF_X], norm == NORM_ATT ? m->rms_att : m->rms_ffn, l * dim,
                            dim, t->config.norm_eps, 0, n), "rmsnorm");
}

/* out (n, rows) = x (n, cols) @ W transposed, x from its row `first`. */
static void cuda_linear(Transformer *t, float *out, const float *x, int first, const CudaMatrix *w, int rows, int cols,
                        int n) {
    CudaModel *m = t->device;
    if (w->f) {
        cuda_check(cuda_matmul_f32(out, x, w->f, cols, rows, first, n), "matmul_f32");
        return;
    }
    int gs = t->weights.group_size;
    cuda_check(cuda_quantize_q8(m->xq, m->xq_scale, x, gs, first * cols, (size_t)n * cols / gs), "quantize_q8");
    cuda_check(cuda_matmul_q8(out, m->xq, m->xq_scale, w->q, w->s, cols, rows, gs, n), "matmul_q8");
}

void cuda_op_matmul(Transformer *t, int out, int in, int mat, int l, int n) {
    CudaModel *m = t->device;
    int rows, cols;
    matrix_shape(&t->config, mat, &rows, &cols);
    cuda_linear(t, m->buffers[out], m->buffers[in], 0, &m->matrices[(size_t)l * 7 + (size_t)mat], rows, cols, n);
}

void cuda_op_rope(Transformer *t, int pos, int n) {
    CudaModel *m = t->device;
    const Config *c = &t->config;
    cuda_check(cuda_rope(m->buffers[BUF_Q], m->buffers[BUF_K], m->rope_cos, m->rope_sin, pos, c->n_heads,
                         c->n_kv_heads, c->head_dim, n), "rope");
}

void cuda_op_store_kv(Transformer *t, int l, int pos, int n) {
    CudaModel *m = t->device;
    const Config *c = &t->config;
    cuda_check(cuda_store_kv(m->key_cache, m->value_cache, m->buffers[BUF_K], m->buffers[BUF_V], l, pos, c->n_kv_heads,
                             c->head_dim, c->seq_len, n), "store_kv");
}

void cuda_op_attention(Transformer *t, int l, int pos, int n) {
    CudaModel *m = t->device;
    const Config *c = &t->config;
    cuda_check(cuda_attention(m->buffers[BUF_XB], m->buffers[BUF_Q], m->key_cache, m->value_cache, m->att, l, pos,
                              c->n_heads, c->n_kv_heads, c->head_dim, c->seq_len, n), "attention");
}

void cuda_op_swiglu(Transformer *t, int n) {
    CudaModel *m = t->device;
    cuda_check(cuda_swiglu(m->buffers[BUF_HB], m->buffers[BUF_HB2], (size_t)n * t->config.hidden_dim), "swiglu");
}

void cuda_op_residual(Transformer *t, int n) {
    CudaModel *m = t->device;
    cuda_check(cuda_residual(m->buffers[BUF_X], m->buffers[BUF_XB2], (size_t)n * t->config.dim), "residual");
}

float *cuda_op_logits(Transformer *t, int first, int n) {
    CudaModel *m = t->device;
    const Config *c = &t->config;
    size_t count = (size_t)(n - first);
    cuda_check(cuda_rmsnorm(m->buffers[BUF_X], m->buffers[BUF_X], m->rms_final, 0, c->dim, c->norm_eps, first,
                            (int)count), "rmsnorm (final)");
    cuda_linear(t, m->logits, m->buffers[BUF_X], first, &m->matrices[(size_t)c->n_layers * 7], c->vocab_size, c->dim,
                (int)count);
    /* cudaMemcpy waits for the kernels before it: the logits are complete */
    cuda_check(cudaMemcpy(m->host_logits, m->logits, count * c->vocab_size * sizeof(float), cudaMemcpyDeviceToHost),
               "reading the logits");
    return m->host_logits;
}

void cuda_op_read(Transformer *t, int buf, size_t offset, size_t count, float *host) {
    CudaModel *m = t->device;
    cuda_check(cudaMemcpy(host, m->buffers[buf] + offset, count * sizeof(float), cudaMemcpyDeviceToHost),
               "reading a buffer");
}

void cuda_op_read_kv(Transformer *t, int l, int pos, int n, float *host) {
    CudaModel *m = t->device;
    const Config *c = &t->config;
    size_t head_dim = (size_t)c->head_dim, kv_dim = (size_t)c->n_kv_heads * head_dim;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            size_t at = (((size_t)l * c->n_kv_heads + g) * c->seq_len + (size_t)(pos + i)) * head_dim;
            float *row = host + (size_t)i * 2 * kv_dim + g * head_dim;
            cuda_check(cudaMemcpy(row, m->key_cache + at, head_dim * sizeof(float), cudaMemcpyDeviceToHost),
                       "reading the key cache");
            cuda_check(cudaMemcpy(row + kv_dim, m->value_cache + at, head_dim * sizeof(float), cudaMemcpyDeviceToHost),
                       "reading the value cache");
        }
}

void cuda_describe(const Transformer *t, char *text, size_t size) {
    (void)t;
    snprintf(text, size, "CUDA device \"%s\" (port/cuda.c)", cuda_device_name);
}

const Backend cuda_backend = {
    "cuda", CHUNK, cuda_load, cuda_release, cuda_describe,
    cuda_op_embed, cuda_op_rmsnorm, cuda_op_matmul, cuda_op_rope, cuda_op_store_kv, cuda_op_attention,
    cuda_op_swiglu, cuda_op_residual, cuda_op_logits, cuda_op_read, cuda_op_read_kv,
};
