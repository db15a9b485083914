/* port/opencl.c — the whole forward pass on an OpenCL device: a worked port.
 *
 * run.c's forward_chunk() (section 11) calls a table of ops; this file
 * fills one in for OpenCL, the "opencl" backend. It is written to be read
 * beside docs/porting.md and copied for other hardware. Build and test it
 * with
 *
 *     make opencl      # needs an OpenCL runtime: apt-get install pocl-opencl-icd ocl-icd-opencl-dev
 *
 * which compiles run.c with -DLAMP_OPENCL (this file is included at the end
 * of run.c's section 11) and runs the golden tests through it. In CI it runs
 * on the CPU through PoCL, an OpenCL implementation for CPUs; on a GPU the
 * same code runs unchanged.
 *
 * What every port has to get right, and how this one does it:
 *  1. The weights are copied to the device once, when the model is loaded
 *     (opencl_load), and freed with the model (opencl_release): they belong
 *     to the Transformer, never to a cache keyed by host address (a second
 *     model loaded at the same address would find the first one's weights).
 *  2. The activations of a chunk and the KV cache live on the device for
 *     the whole forward pass. Only the token ids go over, and only the
 *     logits come back (and, with --trace, each op's output).
 *  3. The numbers must match run.c's: each kernel below is the plain loop
 *     of its Part I function with one work-item per output (or per row).
 *     Sums run in another order than the CPU's vector code, so results
 *     differ in the last bits: the golden tests' tolerances say how much
 *     may. The int8 matmul does Part I's arithmetic exactly (same groups,
 *     same four partial sums, same fused multiply-adds), and the activation
 *     quantizer rounds as quantize_q8() does.
 * The kernels are the simplest correct ones, not fast ones: a GPU port
 * would tile the matmul and have a work-group share each row. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

/* The kernels, in OpenCL C: the device compiles this text when the first
 * model is loaded. Each names the run.c function it mirrors. Matrices are
 * (rows, cols), row-major; activations a row per position of the chunk. */
static const char *opencl_source =
    /* embed(): row `token` of the embedding table; an int8 table dequantized */
    "__kernel void embed_f32(__global float *x, __global const float *table, __global const int *tokens, int dim) {\n"
    "    int j = get_global_id(0), i = get_global_id(1);\n"
    "    x[i * dim + j] = table[(size_t)tokens[i] * dim + j];\n"
    "}\n"
    "__kernel void embed_q8(__global float *x, __global const char *q, __global const float *s,\n"
    "                       __global const int *tokens, int dim, int gs) {\n"
    "    int j = get_global_id(0), i = get_global_id(1);\n"
    "    size_t at = (size_t)tokens[i] * dim + j;\n"
    "    x[i * dim + j] = (float)q[at] * s[at / gs];\n"
    "}\n"
    /* rmsnorm(): one work-item per row (position), rows first ..; the gain
     * starts at float w_first (layer l's is at l * dim) */
    "__kernel void rmsnorm(__global float *out, __global const float *x, __global const float *gain, int w_first,\n"
    "                      int n, float eps, int first) {\n"
    "    size_t row = (get_global_id(0) + first) * (size_t)n;\n"
    "    __global const float *w = gain + w_first;\n"
    "    float ss = 0.0f;\n"
    "    for (int j = 0; j < n; j++) ss += x[row + j] * x[row + j];\n"
    "    float scale = 1.0f / sqrt(ss / (float)n + eps);\n"
    "    for (int j = 0; j < n; j++) out[row + j] = w[j] * (scale * x[row + j]);\n"
    "}\n"
    /* matmul(): out (T, d) = x (T, n) @ W (d, n) transposed, x from its row `first`;
     * one work-item per (row i of W, position t) */
    "__kernel void matmul_f32(__global float *out, __global const float *x, __global const float *w, int n, int d,\n"
    "                         int first) {\n"
    "    int i = get_global_id(0), t = get_global_id(1);\n"
    "    __global const float *row = w + (size_t)i * n, *xt = x + (size_t)(t + first) * n;\n"
    "    float sum = 0.0f;\n"
    "    for (int j = 0; j < n; j++) sum = fma(row[j], xt[j], sum);\n"
    "    out[(size_t)t * d + i] = sum;\n"
    "}\n"
    /* quantize_q8(): one work-item per group of gs; round() is C's roundf, halves away from zero */
    "__kernel void quantize_q8(__global char *q, __global float *scale, __global const float *x, int gs,\n"
    "                          int first) {\n"
    "    size_t g = get_global_id(0), at = g * gs;\n"
    "    x += first;\n"
    "    float max = 0.0f;\n"
    "    for (int j = 0; j < gs; j++) max = fmax(max, fabs(x[at + j]));\n"
    "    float s = max / 127.0f, divisor = s > 0.0f ? s : 1.0f;\n"
    "    scale[g] = s;\n"
    "    for (int j = 0; j < gs; j++) q[at + j] = (char)clamp(round(x[at + j] / divisor), -127.0f, 127.0f);\n"
    "}\n"
    /* matmul_q8() with dot_q8(): exact int32 sums per group, four float partial sums */
    "__kernel void matmul_q8(__global float *out, __global const char *xq, __global const float *xs,\n"
    "                        __global const char *wq, __global const float *ws, int n, int d, int gs) {\n"
    "    int i = get_global_id(0), t = get_global_id(1), groups = n / gs;\n"
    "    __global const char *w = wq + (size_t)i * n, *x = xq + (size_t)t * n;\n"
    "    __global const float *wsc = ws + (size_t)i * groups, *xsc = xs + (size_t)t * groups;\n"
    "    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};\n"
    "    for (int g = 0; g < groups; g++) {\n"
    "        int isum = 0;\n"
    "        for (int j = g * gs; j < (g + 1) * gs; j++) isum += (int)w[j] * (int)x[j];\n"
    "        acc[g % 4] = fma((float)isum, wsc[g] * xsc[g], acc[g % 4]);\n"
    "    }\n"
    "    out[(size_t)t * d + i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);\n"
    "}\n"
    /* rope(): one work-item per (pair of a head of q or k, position); the angles
     * are run.c's rope_angles(), computed on the host once */
    "__kernel void rope(__global float *q, __global float *k, __global const float *cos_table,\n"
    "                   __global const float *sin_table, int pos, int n_heads, int n_kv_heads, int head_dim) {\n"
    "    int p = get_global_id(0), t = get_global_id(1), pairs = head_dim / 2, head = p / pairs, i = p % pairs;\n"
    "    __global float *v = head < n_heads ? q + ((size_t)t * n_heads + head) * head_dim\n"
    "                                       : k + ((size_t)t * n_kv_heads + head - n_heads) * head_dim;\n"
    "    float c = cos_table[(size_t)(pos + t) * pairs + i], s = sin_table[(size_t)(pos + t) * pairs + i];\n"
    "    float v0 = v[2 * i], v1 = v[2 * i + 1];\n"
    "    v[2 * i] = v0 * c - v1 * s;\n"
    "    v[2 * i + 1] = v0 * s + v1 * c;\n"
    "}\n"
    /* store_kv(): the cache in Part I's layout (layer, kv head, position, head_dim) */
    "__kernel void store_kv(__global float *key_cache, __global float *value_cache, __global const float *k,\n"
    "                       __global const float *v, int l, int pos, int n_kv_heads, int head_dim, int seq_len) {\n"
    "    int e = get_global_id(0), t = get_global_id(1), g = e / head_dim, d = e % head_dim;\n"
    "    size_t at = (((size_t)l * n_kv_heads + g) * seq_len + pos + t) * head_dim + d;\n"
    "    key_cache[at] = k[(size_t)t * n_kv_heads * head_dim + e];\n"
    "    value_cache[at] = v[(size_t)t * n_kv_heads * head_dim + e];\n"
    "}\n"
    /* attention() for query head h of position pos + t, in its three steps */
    "__kernel void attention(__global float *out, __global const float *q, __global const float *key_cache,\n"
    "                        __global const float *value_cache, __global float *att, int l, int pos,\n"
    "                        int n_heads, int n_kv_heads, int head_dim, int seq_len) {\n"
    "    int h = get_global_id(0), t = get_global_id(1), last = pos + t, g = h / (n_heads / n_kv_heads);\n"
    "    size_t head = ((size_t)l * n_kv_heads + g) * seq_len * head_dim;\n"
    "    __global const float *qh = q + ((size_t)t * n_heads + h) * head_dim;\n"
    "    __global float *a = att + ((size_t)t * n_heads + h) * seq_len;\n"
    "    float scale = 1.0f / sqrt((float)head_dim);\n"
    "    for (int p = 0; p <= last; p++) {\n"
    "        float score = 0.0f;\n"
    "        for (int d = 0; d < head_dim; d++) score = fma(qh[d], key_cache[head + (size_t)p * head_dim + d], score);\n"
    "        a[p] = score * scale;\n"
    "    }\n"
    "    float max = a[0], sum = 0.0f;\n"
    "    for (int p = 1; p <= last; p++) max = fmax(max, a[p]);\n"
    "    for (int p = 0; p <= last; p++) { a[p] = exp(a[p] - max); sum += a[p]; }\n"
    "    for (int p = 0; p <= last; p++) a[p] /= sum;\n"
    "    __global float *o = out + ((size_t)t * n_heads + h) * head_dim;\n"
    "    for (int d = 0; d < head_dim; d++) {\n"
    "        float acc = 0.0f;\n"
    "        for (int p = 0; p <= last; p++) acc = fma(a[p], value_cache[head + (size_t)p * head_dim + d], acc);\n"
    "        o[d] = acc;\n"
    "    }\n"
    "}\n"
    /* swiglu() and the residual add: one work-item per number */
    "__kernel void swiglu(__global float *gate, __global const float *up) {\n"
    "    size_t i = get_global_id(0);\n"
    "    float g = gate[i];\n"
    "    gate[i] = g / (1.0f + exp(-g)) * up[i];\n"
    "}\n"
    "__kernel void residual(__global float *x, __global const float *delta) {\n"
    "    size_t i = get_global_id(0);\n"
    "    x[i] += delta[i];\n"
    "}\n";

enum { K_EMBED_F32, K_EMBED_Q8, K_RMSNORM, K_MATMUL_F32, K_QUANTIZE_Q8, K_MATMUL_Q8, K_ROPE, K_STORE_KV,
       K_ATTENTION, K_SWIGLU, K_RESIDUAL, N_KERNELS };
static const char *const opencl_kernel_names[N_KERNELS] = {
    "embed_f32", "embed_q8", "rmsnorm", "matmul_f32", "quantize_q8", "matmul_q8", "rope", "store_kv",
    "attention", "swiglu", "residual"};

/* The device, its queue and the compiled kernels: one per process, made
 * when the first model is loaded. Nothing of a model is kept here. */
static struct {
    int ready;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    cl_kernel kernels[N_KERNELS];
    char name[200];
} ocl;

/* A weight matrix on the device: float32 values, or int8 values and their
 * scales. */
typedef struct {
    cl_mem f, q, s;
} DeviceMatrix;

/* One model's state on the device (t->device). */
typedef struct {
    DeviceMatrix *matrices;      /* (n_layers * 7 + 1): layer l's MAT_WQ .. MAT_W3, then the classifier */
    DeviceMatrix embedding;
    cl_mem rms_att, rms_ffn, rms_final;   /* the RMSNorm gains */
    cl_mem buffers[N_BUFS];      /* BUF_X ..: (CHUNK, width) each */
    cl_mem logits;               /* (CHUNK, vocab_size) */
    cl_mem xq, xq_scale;         /* int8 models: an activation quantized for a matmul */
    cl_mem key_cache, value_cache; /* (n_layers, n_kv_heads, seq_len, head_dim), Part I's layout */
    cl_mem att;                  /* (CHUNK, n_heads, seq_len) attention weights */
    cl_mem rope_cos, rope_sin;   /* (seq_len, head_dim / 2) */
    cl_mem tokens;               /* (CHUNK) token ids */
    float *host_logits;          /* (CHUNK, vocab_size): what comes back */
} OpenCLModel;

static void opencl_check(cl_int status, const char *what) {
    if (status != CL_SUCCESS) fatal("OpenCL: %s failed (error %d)", what, (int)status);
}

static void opencl_init(void) {
    cl_platform_id platform;
    cl_uint count;
    cl_int status;
    if (clGetPlatformIDs(1, &platform, &count) != CL_SUCCESS || count == 0)
        fatal("OpenCL: no platform found (install an OpenCL runtime, e.g. pocl-opencl-icd)");
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &ocl.device, &count) != CL_SUCCESS || count == 0)
        fatal("OpenCL: no device found");
    clGetDeviceInfo(ocl.device, CL_DEVICE_NAME, sizeof ocl.name - 1, ocl.name, NULL);
    ocl.context = clCreateContext(NULL, 1, &ocl.device, NULL, NULL, &status);
    opencl_check(status, "clCreateContext");
    ocl.queue = clCreateCommandQueue(ocl.context, ocl.device, 0, &status);
    opencl_check(status, "clCreateCommandQueue");
    cl_program program = clCreateProgramWithSource(ocl.context, 1, &opencl_source, NULL, &status);
    opencl_check(status, "clCreateProgramWithSource");
    /* division and sqrt rounded as the CPU rounds them (OpenCL allows a few
     * ulp by default): the int8 quantizer must see the CPU's scale */
    if (clBuildProgram(program, 1, &ocl.device, "-cl-fp32-correctly-rounded-divide-sqrt", NULL, NULL) != CL_SUCCESS) {
        char log[4096] = "";
        clGetProgramBuildInfo(program, ocl.device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fatal("OpenCL: the kernels did not build: %s", log);
    }
    for (int k = 0; k < N_KERNELS; k++) {
        ocl.kernels[k] = clCreateKernel(program, opencl_kernel_names[k], &status);
        opencl_check(status, opencl_kernel_names[k]);
    }
    clReleaseProgram(program);
    ocl.ready = 1;
}

/* A device buffer of `bytes`, filled from host memory if `from` is not NULL. */
static cl_mem opencl_buffer(size_t bytes, const void *from) {
    cl_int status;
    cl_mem buffer = clCreateBuffer(ocl.context, CL_MEM_READ_WRITE | (from ? CL_MEM_COPY_HOST_PTR : 0),
                                   bytes > 0 ? bytes : 1, (void *)from, &status);
    opencl_check(status, "clCreateBuffer");
    return buffer;
}

static DeviceMatrix opencl_matrix(Mat m, size_t numel) {
    DeviceMatrix d = {NULL, NULL, NULL};
    if (m.f) {
        d.f = opencl_buffer(numel * sizeof(float), m.f);
    } else {
        d.q = opencl_buffer(numel, m.q);
        d.s = opencl_buffer(numel / (size_t)m.group_size * sizeof(float), m.s);
    }
    return d;
}

static void opencl_release_matrix(DeviceMatrix *d) {
    if (d->f) clReleaseMemObject(d->f);
    if (d->q) clReleaseMemObject(d->q);
    if (d->s) clReleaseMemObject(d->s);
}

/* Upload the weights, allocate the activations and the KV cache. */
void opencl_load(Transformer *t) {
    if (!ocl.ready) opencl_init();
    const Config *c = &t->config;
    const Weights *w = &t->weights;
    OpenCLModel *m = xcalloc(1, sizeof(OpenCLModel));
    t->device = m;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t vocab = (size_t)c->vocab_size, seq = (size_t)c->seq_len, half = (size_t)c->head_dim / 2;
    m->matrices = xcalloc(L * 7 + 1, sizeof(DeviceMatrix));
    for (size_t l = 0; l < L; l++)
        for (int mat = MAT_WQ; mat <= MAT_W3; mat++) {
            int rows, cols;
            matrix_shape(c, mat, &rows, &cols);
            m->matrices[l * 7 + (size_t)mat] = opencl_matrix(model_matrix(t, mat, (int)l), (size_t)rows * cols);
        }
    m->matrices[L * 7] = opencl_matrix(model_matrix(t, MAT_WCLS, 0), vocab * dim);
    Mat embedding = {w->token_embedding, w->q_token_embedding.q, w->q_token_embedding.s, w->group_size};
    if (!w->group_size) embedding.q = NULL;
    m->embedding = opencl_matrix(embedding, vocab * dim);
    m->rms_att = opencl_buffer(L * dim * sizeof(float), w->rms_att_weight);
    m->rms_ffn = opencl_buffer(L * dim * sizeof(float), w->rms_ffn_weight);
    m->rms_final = opencl_buffer(dim * sizeof(float), w->rms_final_weight);

    size_t widths[N_BUFS] = {dim, max3(dim, q_dim, 0), dim, hidden, hidden, q_dim, kv_dim, kv_dim};
    for (int b = 0; b < N_BUFS; b++) m->buffers[b] = opencl_buffer(CHUNK * widths[b] * sizeof(float), NULL);
    m->logits = opencl_buffer(CHUNK * vocab * sizeof(float), NULL);
    if (w->group_size) {
        size_t widest = max3(dim, q_dim, hidden);
        m->xq = opencl_buffer(CHUNK * widest, NULL);
        m->xq_scale = opencl_buffer(CHUNK * widest / (size_t)w->group_size * sizeof(float), NULL);
    }
    /* the cache starts as zeros, as the CPU's calloc'd one */
    size_t cache = L * seq * kv_dim * sizeof(float);
    float *zeros = xcalloc(cache, 1);
    m->key_cache = opencl_buffer(cache, zeros);
    m->value_cache = opencl_buffer(cache, zeros);
    free(zeros);
    m->att = opencl_buffer(CHUNK * (size_t)c->n_heads * seq * sizeof(float), NULL);
    float *cos_table = xmalloc(seq * half * sizeof(float)), *sin_table = xmalloc(seq * half * sizeof(float));
    for (size_t pos = 0; pos < seq; pos++)
        rope_angles(cos_table + pos * half, sin_table + pos * half, (int)pos, c->head_dim, c->rope_theta);
    m->rope_cos = opencl_buffer(seq * half * sizeof(float), cos_table);
    m->rope_sin = opencl_buffer(seq * half * sizeof(float), sin_table);
    free(cos_table);
    free(sin_table);
    m->tokens = opencl_buffer(CHUNK * sizeof(int), NULL);
    m->host_logits = xmalloc(CHUNK * vocab * sizeof(float));
}

void opencl_release(Transformer *t) {
    OpenCLModel *m = t->device;
    if (!m) return;
    for (size_t i = 0; i < (size_t)t->config.n_layers * 7 + 1; i++) opencl_release_matrix(&m->matrices[i]);
    opencl_release_matrix(&m->embedding);
    cl_mem all[] = {m->rms_att, m->rms_ffn, m->rms_final, m->logits, m->xq, m->xq_scale, m->key_cache,
                    m->value_cache, m->att, m->rope_cos, m->rope_sin, m->tokens};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) if (all[i]) clReleaseMemObject(all[i]);
    for (int b = 0; b < N_BUFS; b++) clReleaseMemObject(m->buffers[b]);
    free(m->matrices);
    free(m->host_logits);
    free(m);
    t->device = NULL;
}

/* --- launching a kernel: its arguments, one at a time, then the grid ----- */

static void arg_mem(int k, int i, cl_mem m) { opencl_check(clSetKernelArg(ocl.kernels[k], (cl_uint)i, sizeof m, &m), "clSetKernelArg"); }
static void arg_int(int k, int i, int v) { opencl_check(clSetKernelArg(ocl.kernels[k], (cl_uint)i, sizeof v, &v), "clSetKernelArg"); }
static void arg_float(int k, int i, float v) { opencl_check(clSetKernelArg(ocl.kernels[k], (cl_uint)i, sizeof v, &v), "clSetKernelArg"); }

/* Run kernel k on a grid of size0 x size1 work-items. */
static void launch(int k, size_t size0, size_t size1) {
    size_t grid[2] = {size0, size1};
    opencl_check(clEnqueueNDRangeKernel(ocl.queue, ocl.kernels[k], 2, NULL, grid, NULL, 0, NULL, NULL),
                 opencl_kernel_names[k]);
}

/* --- the ops ---------------------------------------------------------------- */

void opencl_embed(Transformer *t, const int *tokens, int n) {
    OpenCLModel *m = t->device;
    opencl_check(clEnqueueWriteBuffer(ocl.queue, m->tokens, CL_FALSE, 0, (size_t)n * sizeof(int), tokens, 0, NULL, NULL),
                 "writing the tokens");
    int k = t->weights.group_size ? K_EMBED_Q8 : K_EMBED_F32;
    arg_mem(k, 0, m->buffers[BUF_X]);
    if (k == K_EMBED_F32) {
        arg_mem(k, 1, m->embedding.f);
        arg_mem(k, 2, m->tokens);
        arg_int(k, 3, t->config.dim);
    } else {
        arg_mem(k, 1, m->embedding.q);
        arg_mem(k, 2, m->embedding.s);
        arg_mem(k, 3, m->tokens);
        arg_int(k, 4, t->config.dim);
        arg_int(k, 5, t->weights.group_size);
    }
    launch(k, (size_t)t->config.dim, (size_t)n);
}

/* OpenCL 1.2 hands a kernel whole buffers, not pointers into them: where an
 * op starts inside one (a layer's gain, the rows that want logits) is an
 * argument of the kernel. */
static void opencl_rmsnorm_rows(cl_mem out, cl_mem x, cl_mem gain, int gain_first, int dim, float eps, int first,
                                int rows) {
    arg_mem(K_RMSNORM, 0, out);
    arg_mem(K_RMSNORM, 1, x);
    arg_mem(K_RMSNORM, 2, gain);
    arg_int(K_RMSNORM, 3, gain_first);
    arg_int(K_RMSNORM, 4, dim);
    arg_float(K_RMSNORM, 5, eps);
    arg_int(K_RMSNORM, 6, first);
    launch(K_RMSNORM, (size_t)rows, 1);
}

void opencl_rmsnorm(Transformer *t, int norm, int l, int n) {
    OpenCLModel *m = t->device;
    int dim = t->config.dim;
    opencl_rmsnorm_rows(m->buffers[BUF_XB], m->buffers[BUF_X], norm == NORM_ATT ? m->rms_att : m->rms_ffn, l * dim,
                        dim, t->config.norm_eps, 0, n);
}

/* out (n, rows) = x (n, cols) @ W transposed, x from its row `first`; W
 * float32 or int8 (then x is quantized first, as linear_chunk() does). */
static void opencl_linear(Transformer *t, cl_mem out, cl_mem x, int first, const DeviceMatrix *w, int rows, int cols,
                          int n) {
    OpenCLModel *m = t->device;
    if (w->f) {
        arg_mem(K_MATMUL_F32, 0, out);
        arg_mem(K_MATMUL_F32, 1, x);
        arg_mem(K_MATMUL_F32, 2, w->f);
        arg_int(K_MATMUL_F32, 3, cols);
        arg_int(K_MATMUL_F32, 4, rows);
        arg_int(K_MATMUL_F32, 5, first);
        launch(K_MATMUL_F32, (size_t)rows, (size_t)n);
        return;
    }
    int gs = t->weights.group_size;
    arg_mem(K_QUANTIZE_Q8, 0, m->xq);
    arg_mem(K_QUANTIZE_Q8, 1, m->xq_scale);
    arg_mem(K_QUANTIZE_Q8, 2, x);
    arg_int(K_QUANTIZE_Q8, 3, gs);
    arg_int(K_QUANTIZE_Q8, 4, first * cols);
    launch(K_QUANTIZE_Q8, (size_t)n * cols / gs, 1);
    arg_mem(K_MATMUL_Q8, 0, out);
    arg_mem(K_MATMUL_Q8, 1, m->xq);
    arg_mem(K_MATMUL_Q8, 2, m->xq_scale);
    arg_mem(K_MATMUL_Q8, 3, w->q);
    arg_mem(K_MATMUL_Q8, 4, w->s);
    arg_int(K_MATMUL_Q8, 5, cols);
    arg_int(K_MATMUL_Q8, 6, rows);
    arg_int(K_MATMUL_Q8, 7, gs);
    launch(K_MATMUL_Q8, (size_t)rows, (size_t)n);
}

void opencl_matmul(Transformer *t, int out, int in, int mat, int l, int n) {
    OpenCLModel *m = t->device;
    int rows, cols;
    matrix_shape(&t->config, mat, &rows, &cols);
    opencl_linear(t, m->buffers[out], m->buffers[in], 0, &m->matrices[(size_t)l * 7 + (size_t)mat], rows, cols, n);
}

void opencl_rope(Transformer *t, int pos, int n) {
    OpenCLModel *m = t->device;
    const Config *c = &t->config;
    arg_mem(K_ROPE, 0, m->buffers[BUF_Q]);
    arg_mem(K_ROPE, 1, m->buffers[BUF_K]);
    arg_mem(K_ROPE, 2, m->rope_cos);
    arg_mem(K_ROPE, 3, m->rope_sin);
    arg_int(K_ROPE, 4, pos);
    arg_int(K_ROPE, 5, c->n_heads);
    arg_int(K_ROPE, 6, c->n_kv_heads);
    arg_int(K_ROPE, 7, c->head_dim);
    launch(K_ROPE, (size_t)(c->n_heads + c->n_kv_heads) * (size_t)(c->head_dim / 2), (size_t)n);
}

void opencl_store_kv(Transformer *t, int l, int pos, int n) {
    OpenCLModel *m = t->device;
    const Config *c = &t->config;
    arg_mem(K_STORE_KV, 0, m->key_cache);
    arg_mem(K_STORE_KV, 1, m->value_cache);
    arg_mem(K_STORE_KV, 2, m->buffers[BUF_K]);
    arg_mem(K_STORE_KV, 3, m->buffers[BUF_V]);
    arg_int(K_STORE_KV, 4, l);
    arg_int(K_STORE_KV, 5, pos);
    arg_int(K_STORE_KV, 6, c->n_kv_heads);
    arg_int(K_STORE_KV, 7, c->head_dim);
    arg_int(K_STORE_KV, 8, c->seq_len);
    launch(K_STORE_KV, (size_t)c->n_kv_heads * c->head_dim, (size_t)n);
}

void opencl_attention(Transformer *t, int l, int pos, int n) {
    OpenCLModel *m = t->device;
    const Config *c = &t->config;
    arg_mem(K_ATTENTION, 0, m->buffers[BUF_XB]);
    arg_mem(K_ATTENTION, 1, m->buffers[BUF_Q]);
    arg_mem(K_ATTENTION, 2, m->key_cache);
    arg_mem(K_ATTENTION, 3, m->value_cache);
    arg_mem(K_ATTENTION, 4, m->att);
    arg_int(K_ATTENTION, 5, l);
    arg_int(K_ATTENTION, 6, pos);
    arg_int(K_ATTENTION, 7, c->n_heads);
    arg_int(K_ATTENTION, 8, c->n_kv_heads);
    arg_int(K_ATTENTION, 9, c->head_dim);
    arg_int(K_ATTENTION, 10, c->seq_len);
    launch(K_ATTENTION, (size_t)c->n_heads, (size_t)n);
}

void opencl_swiglu(Transformer *t, int n) {
    OpenCLModel *m = t->device;
    arg_mem(K_SWIGLU, 0, m->buffers[BUF_HB]);
    arg_mem(K_SWIGLU, 1, m->buffers[BUF_HB2]);
    launch(K_SWIGLU, (size_t)n * t->config.hidden_dim, 1);
}

void opencl_residual(Transformer *t, int n) {
    OpenCLModel *m = t->device;
    arg_mem(K_RESIDUAL, 0, m->buffers[BUF_X]);
    arg_mem(K_RESIDUAL, 1, m->buffers[BUF_XB2]);
    launch(K_RESIDUAL, (size_t)n * t->config.dim, 1);
}

/* The final norm and the classifier for rows first .. n - 1; the logits are
 * the one thing that comes back each step (a blocking read). */
float *opencl_logits(Transformer *t, int first, int n) {
    OpenCLModel *m = t->device;
    const Config *c = &t->config;
    size_t count = (size_t)(n - first);
    opencl_rmsnorm_rows(m->buffers[BUF_X], m->buffers[BUF_X], m->rms_final, 0, c->dim, c->norm_eps, first, (int)count);
    opencl_linear(t, m->logits, m->buffers[BUF_X], first, &m->matrices[(size_t)c->n_layers * 7], c->vocab_size, c->dim,
                  (int)count);
    opencl_check(clEnqueueReadBuffer(ocl.queue, m->logits, CL_TRUE, 0, count * c->vocab_size * sizeof(float),
                                     m->host_logits, 0, NULL, NULL), "reading the logits");
    return m->host_logits;
}

void opencl_read(Transformer *t, int buf, size_t offset, size_t count, float *host) {
    OpenCLModel *m = t->device;
    opencl_check(clEnqueueReadBuffer(ocl.queue, m->buffers[buf], CL_TRUE, offset * sizeof(float), count * sizeof(float),
                                     host, 0, NULL, NULL), "reading a buffer");
}

void opencl_read_kv(Transformer *t, int l, int pos, int n, float *host) {
    OpenCLModel *m = t->device;
    const Config *c = &t->config;
    size_t head_dim = (size_t)c->head_dim, kv_dim = (size_t)c->n_kv_heads * head_dim;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            size_t at = ((((size_t)l * c->n_kv_heads + g) * c->seq_len + (size_t)(pos + i)) * head_dim) * sizeof(float);
            float *row = host + (size_t)i * 2 * kv_dim + g * head_dim;
            opencl_check(clEnqueueReadBuffer(ocl.queue, m->key_cache, CL_TRUE, at, head_dim * sizeof(float), row, 0,
                                             NULL, NULL), "reading the key cache");
            opencl_check(clEnqueueReadBuffer(ocl.queue, m->value_cache, CL_TRUE, at, head_dim * sizeof(float),
                                             row + kv_dim, 0, NULL, NULL), "reading the value cache");
        }
}

void opencl_describe(const Transformer *t, char *text, size_t size) {
    (void)t;
    snprintf(text, size, "OpenCL device \"%s\" (port/opencl.c)", ocl.name);
}

const Backend opencl_backend = {
    "opencl", CHUNK, opencl_load, opencl_release, opencl_describe,
    opencl_embed, opencl_rmsnorm, opencl_matmul, opencl_rope, opencl_store_kv, opencl_attention,
    opencl_swiglu, opencl_residual, opencl_logits, opencl_read, opencl_read_kv,
};
