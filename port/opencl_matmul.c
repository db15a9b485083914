/* port/opencl_matmul.c — a worked port: run.c's matmul() on an OpenCL device.
 *
 * This is the smallest useful port of lamp to new hardware, written to be
 * copied: one kernel (matmul, where a forward pass spends ~all its time),
 * the host code that feeds it, and nothing else. Everything else in run.c
 * stays on the CPU. Build and test it with
 *
 *     make opencl      # needs an OpenCL runtime: apt-get install pocl-opencl-icd ocl-icd-opencl-dev
 *
 * which compiles run.c with -DLAMP_OPENCL (so matmul() calls
 * opencl_matmul() below) and runs the same golden tests as the CPU build:
 * logits within 1e-4 of transformers, and llama2.c's stories byte for byte.
 * In CI it runs on the CPU through PoCL (an OpenCL implementation for
 * CPUs); on a GPU the same code runs unchanged.
 *
 * The three things every port has to get right:
 *  1. Weights live on the device. They never change, so each weight matrix
 *     is copied once, the first time it is used, and found again by its
 *     host address (the `cache` below). Copying 438 MB per token would be
 *     far slower than computing on the CPU.
 *  2. Activations move every call: x goes to the device, out comes back.
 *     They are small (a few KB), but each transfer has a fixed cost; a
 *     serious port would keep the whole forward pass on the device.
 *  3. The result must match the reference: the kernel sums in a different
 *     order than the CPU loop, so results differ in the last bits; the
 *     golden tests' tolerance (1e-4) is what says that is fine.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

/* One work-item per output row: out[i] = sum_j w[i][j] * x[j]. The same
 * loop as the CPU reference, one row per "thread". (A fast GPU kernel would
 * have a work-group cooperate on a row and read w in coalesced blocks.) */
static const char *opencl_source =
    "__kernel void matmul(__global float *out, __global const float *x,\n"
    "                     __global const float *w, const int n) {\n"
    "    size_t i = get_global_id(0);\n"
    "    __global const float *row = w + i * (size_t)n;\n"
    "    float sum = 0.0f;\n"
    "    for (int j = 0; j < n; j++) sum += row[j] * x[j];\n"
    "    out[i] = sum;\n"
    "}\n";

typedef struct {
    const float *host;  /* the weight's address in the mapped model file */
    cl_mem device;      /* its copy on the device */
} WeightCopy;

static struct {
    int ready;
    cl_context context;
    cl_command_queue queue;
    cl_kernel kernel;
    cl_mem x, out;            /* activation buffers, grown as needed */
    size_t x_capacity, out_capacity;
    WeightCopy *cache;
    int n_cached, cache_capacity;
} ocl;

static void opencl_check(cl_int status, const char *what) {
    if (status != CL_SUCCESS) fatal("OpenCL: %s failed (error %d)", what, (int)status);
}

static void opencl_init(void) {
    cl_platform_id platform;
    cl_device_id device;
    cl_uint count;
    cl_int status;
    if (clGetPlatformIDs(1, &platform, &count) != CL_SUCCESS || count == 0)
        fatal("OpenCL: no platform found (install an OpenCL runtime, e.g. pocl-opencl-icd)");
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &count) != CL_SUCCESS || count == 0)
        fatal("OpenCL: no device found");
    ocl.context = clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    opencl_check(status, "clCreateContext");
    ocl.queue = clCreateCommandQueue(ocl.context, device, 0, &status);
    opencl_check(status, "clCreateCommandQueue");
    cl_program program = clCreateProgramWithSource(ocl.context, 1, &opencl_source, NULL, &status);
    opencl_check(status, "clCreateProgramWithSource");
    if (clBuildProgram(program, 1, &device, "", NULL, NULL) != CL_SUCCESS) {
        char log[4096] = "";
        clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fatal("OpenCL: the matmul kernel did not build: %s", log);
    }
    ocl.kernel = clCreateKernel(program, "matmul", &status);
    opencl_check(status, "clCreateKernel");
    clReleaseProgram(program);
    ocl.ready = 1;
}

/* The device copy of weight matrix w (d rows of n floats), made on first use. */
static cl_mem opencl_weight(const float *w, int n, int d) {
    for (int i = 0; i < ocl.n_cached; i++)
        if (ocl.cache[i].host == w) return ocl.cache[i].device;
    if (ocl.n_cached == ocl.cache_capacity) {
        ocl.cache_capacity = ocl.cache_capacity ? 2 * ocl.cache_capacity : 64;
        ocl.cache = xrealloc(ocl.cache, (size_t)ocl.cache_capacity * sizeof(WeightCopy));
    }
    cl_int status;
    cl_mem buffer = clCreateBuffer(ocl.context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                   (size_t)n * d * sizeof(float), (void *)w, &status);
    opencl_check(status, "clCreateBuffer (weights)");
    ocl.cache[ocl.n_cached++] = (WeightCopy){w, buffer};
    return buffer;
}

/* Grow a device buffer to hold at least `bytes`. */
static void opencl_reserve(cl_mem *buffer, size_t *capacity, size_t bytes, cl_mem_flags flags) {
    if (*capacity >= bytes) return;
    if (*buffer) clReleaseMemObject(*buffer);
    cl_int status;
    *buffer = clCreateBuffer(ocl.context, flags, bytes, NULL, &status);
    opencl_check(status, "clCreateBuffer (activations)");
    *capacity = bytes;
}

/* out(d) = W(d, n) @ x(n), on the device. */
static void opencl_matmul(float *out, const float *x, const float *w, int n, int d) {
    if (!ocl.ready) opencl_init();
    cl_mem weights = opencl_weight(w, n, d);
    opencl_reserve(&ocl.x, &ocl.x_capacity, (size_t)n * sizeof(float), CL_MEM_READ_ONLY);
    opencl_reserve(&ocl.out, &ocl.out_capacity, (size_t)d * sizeof(float), CL_MEM_WRITE_ONLY);
    opencl_check(clEnqueueWriteBuffer(ocl.queue, ocl.x, CL_FALSE, 0, (size_t)n * sizeof(float), x, 0, NULL, NULL),
                 "writing x");
    opencl_check(clSetKernelArg(ocl.kernel, 0, sizeof(cl_mem), &ocl.out), "clSetKernelArg");
    opencl_check(clSetKernelArg(ocl.kernel, 1, sizeof(cl_mem), &ocl.x), "clSetKernelArg");
    opencl_check(clSetKernelArg(ocl.kernel, 2, sizeof(cl_mem), &weights), "clSetKernelArg");
    opencl_check(clSetKernelArg(ocl.kernel, 3, sizeof(int), &n), "clSetKernelArg");
    size_t rows = (size_t)d;
    opencl_check(clEnqueueNDRangeKernel(ocl.queue, ocl.kernel, 1, NULL, &rows, NULL, 0, NULL, NULL),
                 "running the kernel");
    /* a blocking read: when it returns, out holds the result */
    opencl_check(clEnqueueReadBuffer(ocl.queue, ocl.out, CL_TRUE, 0, (size_t)d * sizeof(float), out, 0, NULL, NULL),
                 "reading out");
}
