// exact_rows.cu: test-only kernel that fills cos/sin rows with rotary_cuda_exact_cos_sin, and its host wrappers.
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "exact_sincos.cuh"

// cos_out[j * half + i], sin_out[j * half + i] for positions[j] and inv_freq[i], j < n, i < half: one value per thread,
// grid-stride over the n * half values.
__global__ void exact_rows_kernel(const int64_t *positions, uint64_t n, const double *inv_freq, uint64_t half,
                                  double scaling, float *cos_out, float *sin_out) {
  const uint64_t total = n * half;
  const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t v = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; v < total; v += stride) {
    const uint64_t j = v / half, i = v % half;
    rotary_cuda_exact_cos_sin(positions[j], inv_freq[i], scaling, cos_out + v, sin_out + v);
  }
}

// Runs exact_rows_kernel on host arrays (copied to device 0 and back, synchronously): cos_out and sin_out get n * half
// floats each. Returns 0 (cudaSuccess) or the first CUDA error; -1 when n * half * 4 bytes overflows size_t.
extern "C" int rotary_test_cuda_exact_rows(const int64_t *positions, size_t n, const double *inv_freq, size_t half,
                                           double scaling, float *cos_out, float *sin_out) {
  if (n == 0 || half == 0) return 0;
  if (n > SIZE_MAX / half || n * half > SIZE_MAX / sizeof(float) || n > SIZE_MAX / sizeof(int64_t) ||
      half > SIZE_MAX / sizeof(double))
    return -1;
  const size_t values = n * half;
  int64_t *d_pos = NULL;
  double *d_freq = NULL;
  float *d_cos = NULL, *d_sin = NULL;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = cudaMalloc((void **)&d_pos, n * sizeof(int64_t));
  if (err == cudaSuccess) err = cudaMalloc((void **)&d_freq, half * sizeof(double));
  if (err == cudaSuccess) err = cudaMalloc((void **)&d_cos, values * sizeof(float));
  if (err == cudaSuccess) err = cudaMalloc((void **)&d_sin, values * sizeof(float));
  if (err == cudaSuccess) err = cudaMemcpy(d_pos, positions, n * sizeof(int64_t), cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(d_freq, inv_freq, half * sizeof(double), cudaMemcpyHostToDevice);
  if (err == cudaSuccess) {
    const unsigned threads = 256;
    const size_t want = (values + threads - 1) / threads;
    const unsigned blocks = want < 65536 ? (unsigned)want : 65536u;  // grid-stride covers the rest
    exact_rows_kernel<<<blocks, threads>>>(d_pos, n, d_freq, half, scaling, d_cos, d_sin);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  if (err == cudaSuccess) err = cudaMemcpy(cos_out, d_cos, values * sizeof(float), cudaMemcpyDeviceToHost);
  if (err == cudaSuccess) err = cudaMemcpy(sin_out, d_sin, values * sizeof(float), cudaMemcpyDeviceToHost);
  // frees after any error too; the first error is the one reported
  const cudaError_t f0 = cudaFree(d_pos), f1 = cudaFree(d_freq), f2 = cudaFree(d_cos), f3 = cudaFree(d_sin);
  if (err == cudaSuccess) err = f0 != cudaSuccess ? f0 : f1 != cudaSuccess ? f1 : f2 != cudaSuccess ? f2 : f3;
  return (int)err;
}

// Copies the 2/pi words the device reduction uses (the __constant__ table of exact_sincos.cuh) into words; n at
// most RX_2OPI_WORDS. Returns 0 or the CUDA error; -1 for n too large.
extern "C" int rotary_test_cuda_exact_2opi(uint64_t *words, size_t n) {
  if (n > RX_2OPI_WORDS) return -1;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = cudaMemcpyFromSymbol(words, rx_two_over_pi, n * sizeof(uint64_t));
  return (int)err;
}
