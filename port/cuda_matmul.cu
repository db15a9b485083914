// port/cuda_matmul.cu — the same port as port/opencl_matmul.c, in CUDA.
//
// run.c built with -DLAMP_CUDA calls cuda_matmul() from matmul(); this file
// is compiled by nvcc and linked in (`make cuda`). The structure is the one
// explained in opencl_matmul.c: weights are copied to the GPU once and found
// again by their host address; x goes over and out comes back on each call.
//
// Status, honestly: CI compiles and links this (nvcc is installed, no GPU is);
// it has not been run on a GPU in this repository's CI. Run `make cuda-test`
// on a machine with an NVIDIA GPU to run the golden tests through it.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

// One block of 256 threads per output row: each thread sums a strided slice
// of the row (so neighbouring threads read neighbouring floats: coalesced),
// then the block adds the 256 partial sums with a tree in shared memory.
__global__ void matmul_kernel(float *out, const float *x, const float *w, int n) {
    __shared__ float partial[256];
    const float *row = w + (size_t)blockIdx.x * n;
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) sum += row[j] * x[j];
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

struct WeightCopy {
    const float *host;
    float *device;
};

static WeightCopy *cache = NULL;
static int n_cached = 0, cache_capacity = 0;
static float *x_device = NULL, *out_device = NULL;
static size_t x_capacity = 0, out_capacity = 0;

static void check(cudaError_t status, const char *what) {
    if (status != cudaSuccess) {
        fprintf(stderr, "lamp: CUDA: %s failed: %s\n", what, cudaGetErrorString(status));
        exit(EXIT_FAILURE);
    }
}

static float *device_weight(const float *w, int n, int d) {
    for (int i = 0; i < n_cached; i++)
        if (cache[i].host == w) return cache[i].device;
    if (n_cached == cache_capacity) {
        cache_capacity = cache_capacity ? 2 * cache_capacity : 64;
        cache = (WeightCopy *)realloc(cache, (size_t)cache_capacity * sizeof(WeightCopy));
        if (!cache) { fprintf(stderr, "lamp: out of memory\n"); exit(EXIT_FAILURE); }
    }
    float *device;
    size_t bytes = (size_t)n * d * sizeof(float);
    check(cudaMalloc(&device, bytes), "cudaMalloc (weights)");
    check(cudaMemcpy(device, w, bytes, cudaMemcpyHostToDevice), "copying weights");
    cache[n_cached++] = WeightCopy{w, device};
    return device;
}

static void reserve(float **buffer, size_t *capacity, size_t bytes) {
    if (*capacity >= bytes) return;
    if (*buffer) cudaFree(*buffer);
    check(cudaMalloc(buffer, bytes), "cudaMalloc (activations)");
    *capacity = bytes;
}

// out(d) = W(d, n) @ x(n) on the GPU.
extern "C" void cuda_matmul(float *out, const float *x, const float *w, int n, int d) {
    float *w_device = device_weight(w, n, d);
    reserve(&x_device, &x_capacity, (size_t)n * sizeof(float));
    reserve(&out_device, &out_capacity, (size_t)d * sizeof(float));
    check(cudaMemcpy(x_device, x, (size_t)n * sizeof(float), cudaMemcpyHostToDevice), "copying x");
    matmul_kernel<<<d, 256>>>(out_device, x_device, w_device, n);
    check(cudaGetLastError(), "launching the kernel");
    check(cudaMemcpy(out, out_device, (size_t)d * sizeof(float), cudaMemcpyDeviceToHost), "copying out");
}
