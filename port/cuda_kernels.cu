// port/cuda_kernels.cu — the kernels of the CUDA port, and a C function that
// launches each (port/cuda.c, the host side, calls them).
//
// The same kernels as port/opencl.c's, one for one, in CUDA: one thread per
// output (or per row), the plain loop of the Part I function each names.
// Pointers are device pointers. Grids: x = the output index, y = the
// position in the chunk, 256 threads per block along x.
//
// Status, honestly: CI compiles and links this with nvcc; no GPU was lent to
// the sessions that wrote it, so it has never been executed. `make cuda-test`
// on a machine with an NVIDIA GPU runs the golden suites through it.
#include <cuda_runtime.h>

static dim3 grid_of(size_t size0, size_t size1) { return dim3((unsigned)((size0 + 255) / 256), (unsigned)size1); }
#define INDEX0 (blockIdx.x * (size_t)blockDim.x + threadIdx.x)
#define INDEX1 ((int)blockIdx.y)

// embed(): row `token` of the embedding table; an int8 table dequantized
__global__ void embed_f32(float *x, const float *table, const int *tokens, int dim) {
    size_t j = INDEX0;
    int i = INDEX1;
    if (j < (size_t)dim) x[(size_t)i * dim + j] = table[(size_t)tokens[i] * dim + j];
}
__global__ void embed_q8(float *x, const signed char *q, const float *s, const int *tokens, int dim, int gs) {
    size_t j = INDEX0;
    int i = INDEX1;
    if (j >= (size_t)dim) return;
    size_t at = (size_t)tokens[i] * dim + j;
    x[(size_t)i * dim + j] = (float)q[at] * s[at / gs];
}

// rmsnorm(): one thread per row, rows first ..; the gain starts at gain_first
__global__ void rmsnorm(float *out, const float *x, const float *gain, int gain_first, int n, float eps, int first,
                        int rows) {
    size_t r = INDEX0;
    if (r >= (size_t)rows) return;
    size_t row = (r + first) * (size_t)n;
    const float *w = gain + gain_first;
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[row + j] * x[row + j];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int j = 0; j < n; j++) out[row + j] = w[j] * (scale * x[row + j]);
}

// matmul(): out (T, d) = x (T, n) @ W (d, n) transposed, x from its row `first`
__global__ void matmul_f32(float *out, const float *x, const float *w, int n, int d, int first) {
    size_t i = INDEX0;
    int t = INDEX1;
    if (i >= (size_t)d) return;
    const float *row = w + i * n, *xt = x + (size_t)(t + first) * n;
    float sum = 0.0f;
    for (int j = 0; j < n; j++) sum = fmaf(row[j], xt[j], sum);
    out[(size_t)t * d + i] = sum;
}

// quantize_q8(): one thread per group; roundf rounds halves away from zero
__global__ void quantize_q8(signed char *q, float *scale, const float *x, int gs, int first, size_t groups) {
    size_t g = INDEX0, at = g * gs;
    if (g >= groups) return;
    x += first;
    float max = 0.0f;
    for (int j = 0; j < gs; j++) max = fmaxf(max, fabsf(x[at + j]));
    float s = max / 127.0f, divisor = s > 0.0f ? s : 1.0f;
    scale[g] = s;
    for (int j = 0; j < gs; j++) q[at + j] = (signed char)fminf(fmaxf(roundf(x[at + j] / divisor), -127.0f), 127.0f);
}

// matmul_q8() with dot_q8(): exact int32 sums per group, four float partial sums
__global__ void matmul_q8(float *out, const signed char *xq, const float *xs, const signed char *wq, const float *ws,
                          int n, int d, int gs) {
    size_t i = INDEX0;
    int t = INDEX1, groups = n / gs;
    if (i >= (size_t)d) return;
    const signed char *w = wq + i * n, *x = xq + (size_t)t * n;
    const float *wsc = ws + i * groups, *xsc = xs + (size_t)t * groups;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int g = 0; g < groups; g++) {
        int isum = 0;
        for (int j = g * gs; j < (g + 1) * gs; j++) isum += (int)w[j] * (int)x[j];
        acc[g % 4] = fmaf((float)isum, wsc[g] * xsc[g], acc[g % 4]);
    }
    out[(size_t)t * d + i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// rope(): one thread per (pair of a head of q or k, position)
__global__ void rope(float *q, float *k, const float *cos_table, const float *sin_table, int pos, int n_heads,
                     int n_kv_heads, int head_dim) {
    size_t p = INDEX0;
    int t = INDEX1, half = head_dim / 2;
    if (p >= (size_t)(n_heads + n_kv_heads) * half) return;
    int head = (int)(p / half), i = (int)(p % half);
    float *v = head < n_heads ? q + ((size_t)t * n_heads + head) * head_dim
                              : k + ((size_t)t * n_kv_heads + head - n_heads) * head_dim;
    float c = cos_table[(size_t)(pos + t) * half + i], s = sin_table[(size_t)(pos + t) * half + i];
    float v0 = v[2 * i], v1 = v[2 * i + 1];
    v[2 * i] = v0 * c - v1 * s;
    v[2 * i + 1] = v0 * s + v1 * c;
}

// store_kv(): the cache in Part I's layout (layer, kv head, position, head_dim)
__global__ void store_kv(float *key_cache, float *value_cache, const float *k, const float *v, int l, int pos,
                         int n_kv_heads, int head_dim, int seq_len) {
    size_t e = INDEX0;
    int t = INDEX1;
    if (e >= (size_t)n_kv_heads * head_dim) return;
    int g = (int)(e / head_dim), d = (int)(e % head_dim);
    size_t at = (((size_t)l * n_kv_heads + g) * seq_len + pos + t) * head_dim + d;
    key_cache[at] = k[(size_t)t * n_kv_heads * head_dim + e];
    value_cache[at] = v[(size_t)t * n_kv_heads * head_dim + e];
}

// attention() for query head h of position pos + t, in its three steps
__global__ void attention(float *out, const float *q, const float *key_cache, const float *value_cache, float *att,
                          int l, int pos, int n_heads, int n_kv_heads, int head_dim, int seq_len) {
    size_t h = INDEX0;
    int t = INDEX1, last = pos + t;
    if (h >= (size_t)n_heads) return;
    int g = (int)h / (n_heads / n_kv_heads);
    size_t head = ((size_t)l * n_kv_heads + g) * seq_len * head_dim;
    const float *qh = q + ((size_t)t * n_heads + h) * head_dim;
    float *a = att + ((size_t)t * n_heads + h) * seq_len;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int p = 0; p <= last; p++) {
        float score = 0.0f;
        for (int d = 0; d < head_dim; d++) score = fmaf(qh[d], key_cache[head + (size_t)p * head_dim + d], score);
        a[p] = score * scale;
    }
    float max = a[0], sum = 0.0f;
    for (int p = 1; p <= last; p++) max = fmaxf(max, a[p]);
    for (int p = 0; p <= last; p++) { a[p] = expf(a[p] - max); sum += a[p]; }
    for (int p = 0; p <= last; p++) a[p] /= sum;
    float *o = out + ((size_t)t * n_heads + h) * head_dim;
    for (int d = 0; d < head_dim; d++) {
        float acc = 0.0f;
        for (int p = 0; p <= last; p++) acc = fmaf(a[p], value_cache[head + (size_t)p * head_dim + d], acc);
        o[d] = acc;
    }
}

// swiglu() and the residual add: one thread per number
__global__ void swiglu(float *gate, const float *up, size_t n) {
    size_t i = INDEX0;
    if (i >= n) return;
    float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
}
__global__ void residual(float *x, const float *delta, size_t n) {
    size_t i = INDEX0;
    if (i < n) x[i] += delta[i];
}

// ---- the launchers port/cuda.c calls; each returns cudaGetLastError() ----

extern "C" {
int cuda_embed_f32(float *x, const float *table, const int *tokens, int dim, int n) {
    embed_f32<<<grid_of(dim, n), 256>>>(x, table, tokens, dim);
    return (int)cudaGetLastError();
}
int cuda_embed_q8(float *x, const signed char *q, const float *s, const int *tokens, int dim, int gs, int n) {
    embed_q8<<<grid_of(dim, n), 256>>>(x, q, s, tokens, dim, gs);
    return (int)cudaGetLastError();
}
int cuda_rmsnorm(float *out, const float *x, const float *gain, int gain_first, int dim, float eps, int first,
                 int rows) {
    rmsnorm<<<grid_of(rows, 1), 256>>>(out, x, gain, gain_first, dim, eps, first, rows);
    return (int)cudaGetLastError();
}
int cuda_matmul_f32(float *out, const float *x, const float *w, int n, int d, int first, int T) {
    matmul_f32<<<grid_of(d, T), 256>>>(out, x, w, n, d, first);
    return (int)cudaGetLastError();
}
int cuda_quantize_q8(signed char *q, float *scale, const float *x, int gs, int first, size_t groups) {
    quantize_q8<<<grid_of(groups, 1), 256>>>(q, scale, x, gs, first, groups);
    return (int)cudaGetLastError();
}
int cuda_matmul_q8(float *out, const signed char *xq, const float *xs, const signed char *wq, const float *ws, int n,
                   int d, int gs, int T) {
    matmul_q8<<<grid_of(d, T), 256>>>(out, xq, xs, wq, ws, n, d, gs);
    return (int)cudaGetLastError();
}
int cuda_rope(float *q, float *k, const float *cos_table, const float *sin_table, int pos, int n_heads, int n_kv_heads,
              int head_dim, int n) {
    rope<<<grid_of((size_t)(n_heads + n_kv_heads) * (head_dim / 2), n), 256>>>(q, k, cos_table, sin_table, pos,
                                                                                n_heads, n_kv_heads, head_dim);
    return (int)cudaGetLastError();
}
int cuda_store_kv(float *key_cache, float *value_cache, const float *k, const float *v, int l, int pos, int n_kv_heads,
                  int head_dim, int seq_len, int n) {
    store_kv<<<grid_of((size_t)n_kv_heads * head_dim, n), 256>>>(key_cache, value_cache, k, v, l, pos, n_kv_heads,
                                                                   head_dim, seq_len);
    return (int)cudaGetLastError();
}
int cuda_attention(float *out, const float *q, const float *key_cache, const float *value_cache, float *att, int l,
                   int pos, int n_heads, int n_kv_heads, int head_dim, int seq_len, int n) {
    attention<<<grid_of(n_heads, n), 256>>>(out, q, key_cache, value_cache, att, l, pos, n_heads, n_kv_heads,
                                            head_dim, seq_len);
    return (int)cudaGetLastError();
}
int cuda_swiglu(float *gate, const float *up, size_t n) {
    swiglu<<<grid_of(n, 1), 256>>>(gate, up, n);
    return (int)cudaGetLastError();
}
int cuda_residual(float *x, const float *delta, size_t n) {
    residual<<<grid_of(n, 1), 256>>>(x, delta, n);
    return (int)cudaGetLastError();
}
}
