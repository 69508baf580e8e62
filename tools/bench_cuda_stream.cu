// bench_cuda_stream.cu: the bench-only kernels of `rotary bench --cuda`: the in-place streaming pass (the limit), a
// device-to-device copy and the fill that flushes L2, each over 16-byte vectors, several loads in flight per thread.
#include <cuda_runtime.h>
#include <stdint.h>

#include "bench_cuda.h"

namespace {

constexpr unsigned kThreads = 256; // threads per block
constexpr unsigned kUnroll = 4;    // 16-byte vectors per thread: all loads first, then all stores
constexpr size_t kPerBlock = (size_t)kThreads * kUnroll;

// Index of vector j of this thread: a block covers kPerBlock consecutive vectors, coalesced across the warp.
__device__ size_t vec_index(unsigned j) {
  return (size_t)blockIdx.x * kPerBlock + (size_t)j * kThreads + threadIdx.x;
}

// Every byte read and written back: x ^ key with a key the compiler cannot see (the host passes 0).
__global__ void bench_rmw_u128(uint4 *p, size_t n, unsigned char *tail, unsigned ntail, unsigned key) {
  uint4 v[kUnroll];
#pragma unroll
  for (unsigned j = 0; j < kUnroll; j++)
    if (vec_index(j) < n) v[j] = p[vec_index(j)];
#pragma unroll
  for (unsigned j = 0; j < kUnroll; j++)
    if (vec_index(j) < n) p[vec_index(j)] = make_uint4(v[j].x ^ key, v[j].y ^ key, v[j].z ^ key, v[j].w ^ key);
  if (blockIdx.x == 0 && threadIdx.x < ntail) tail[threadIdx.x] ^= (unsigned char)key;
}

__global__ void bench_copy_u128(uint4 *dst, const uint4 *src, size_t n, unsigned char *dtail,
                                const unsigned char *stail, unsigned ntail) {
  uint4 v[kUnroll];
#pragma unroll
  for (unsigned j = 0; j < kUnroll; j++)
    if (vec_index(j) < n) v[j] = src[vec_index(j)];
#pragma unroll
  for (unsigned j = 0; j < kUnroll; j++)
    if (vec_index(j) < n) dst[vec_index(j)] = v[j];
  if (blockIdx.x == 0 && threadIdx.x < ntail) dtail[threadIdx.x] = stail[threadIdx.x];
}

__global__ void bench_fill_u128(uint4 *p, size_t n, unsigned char *tail, unsigned ntail, unsigned value) {
  const uint4 v = make_uint4(value, value, value, value);
#pragma unroll
  for (unsigned j = 0; j < kUnroll; j++)
    if (vec_index(j) < n) p[vec_index(j)] = v;
  if (blockIdx.x == 0 && threadIdx.x < ntail) tail[threadIdx.x] = (unsigned char)value;
}

// Blocks for n vectors (at least 1, so the tail is done); 0 when the grid would not fit.
unsigned blocks_for(size_t n) {
  const size_t b = n / kPerBlock + (n % kPerBlock != 0);
  return b == 0 ? 1u : b > 0x7fffffffu ? 0u : (unsigned)b;
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

int launched(void) { return (int)cudaGetLastError(); }

} // namespace

extern "C" int bench_cuda_launch_rmw(void *buf, size_t bytes, unsigned key, void *stream) {
  const size_t n = bytes / 16;
  const unsigned blocks = blocks_for(n);
  if (!aligned16(buf) || !blocks) return (int)cudaErrorInvalidValue;
  bench_rmw_u128<<<blocks, kThreads, 0, (cudaStream_t)stream>>>(
      (uint4 *)buf, n, (unsigned char *)buf + n * 16, (unsigned)(bytes % 16), key);
  return launched();
}

extern "C" int bench_cuda_launch_copy(void *dst, const void *src, size_t bytes, void *stream) {
  const size_t n = bytes / 16;
  const unsigned blocks = blocks_for(n);
  if (!aligned16(dst) || !aligned16(src) || !blocks) return (int)cudaErrorInvalidValue;
  bench_copy_u128<<<blocks, kThreads, 0, (cudaStream_t)stream>>>((uint4 *)dst, (const uint4 *)src, n,
                                                                 (unsigned char *)dst + n * 16,
                                                                 (const unsigned char *)src + n * 16,
                                                                 (unsigned)(bytes % 16));
  return launched();
}

extern "C" int bench_cuda_launch_fill(void *buf, size_t bytes, unsigned value, void *stream) {
  const size_t n = bytes / 16;
  const unsigned blocks = blocks_for(n);
  if (!aligned16(buf) || !blocks) return (int)cudaErrorInvalidValue;
  bench_fill_u128<<<blocks, kThreads, 0, (cudaStream_t)stream>>>((uint4 *)buf, n, (unsigned char *)buf + n * 16,
                                                                 (unsigned)(bytes % 16), value);
  return launched();
}
