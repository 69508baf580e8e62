/* cuda_util.c: the skip without a device, checked CUDA runtime calls, poison and random fills for the GPU tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"

int cu_require_device(const char *program) {
  const int n = rotary_cuda_device_count();
  if (n == 0) {
    fprintf(stderr, "%s: skipped: no usable CUDA device (rotary_cuda_device_count() == 0)\n", program);
    exit(77);
  }
  return n;
}

void cu_check(int cuda_error, const char *what) {
  if (cuda_error != (int)cudaSuccess)
    fail_msg("%s failed: %s (%d)", what, cudaGetErrorString((cudaError_t)cuda_error), cuda_error);
}

void *cu_malloc(size_t bytes) {
  void *p = NULL;
  cu_check((int)cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
  return p;
}

void cu_free(void *p) {
  if (p) cu_check((int)cudaFree(p), "cudaFree");
}

/* A copy from pageable memory may return before its DMA ends, and cudaMemset is asynchronous: both wait for the
 * device, so that a kernel on a non-blocking stream never races them. */
void cu_to_device(void *dst, const void *src, size_t bytes) {
  if (!bytes) return;
  cu_check((int)cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  cu_check((int)cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void cu_to_host(void *dst, const void *src, size_t bytes) {
  if (bytes) cu_check((int)cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void cu_memset(void *dst, int value, size_t bytes) {
  if (!bytes) return;
  cu_check((int)cudaMemset(dst, value, bytes), "cudaMemset");
  cu_check((int)cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void cu_sync(void *stream) {
  cu_check((int)cudaStreamSynchronize((cudaStream_t)stream), "cudaStreamSynchronize");
  cu_check((int)cudaGetLastError(), "cudaGetLastError");
}

void cu_poison(void *p, size_t bytes, uint64_t seed) {
  tu_rng r;
  tu_rng_seed(&r, seed ^ 0x9015011ull);
  unsigned char *b = p;
  for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)(tu_rng_u64(&r) | 1u);
}

/* The raw bits of one special value of dt. */
static uint32_t special_bits(rotary_dtype dt, tu_rng *r) {
  const uint32_t sign = (uint32_t)tu_rng_below(r, 2);
  const unsigned kind = (unsigned)tu_rng_below(r, 5);
  if (dt == ROTARY_F32) {
    switch (kind) {
      case 0: return sign << 31 | 0x7FC00000u | (uint32_t)tu_rng_below(r, 1u << 22);       /* quiet NaN */
      case 1: return sign << 31 | 0x7F800000u | (1u + (uint32_t)tu_rng_below(r, (1u << 22) - 1)); /* signalling */
      case 2: return sign << 31 | 0x7F800000u;                                              /* Inf */
      case 3: return sign << 31;                                                            /* zero */
      default: return sign << 31 | (1u + (uint32_t)tu_rng_below(r, (1u << 23) - 1));        /* subnormal */
    }
  }
  if (dt == ROTARY_F16) {
    switch (kind) {
      case 0: return sign << 15 | 0x7E00u | (uint32_t)tu_rng_below(r, 1u << 9);
      case 1: return sign << 15 | 0x7C00u | (1u + (uint32_t)tu_rng_below(r, (1u << 9) - 1));
      case 2: return sign << 15 | 0x7C00u;
      case 3: return sign << 15;
      default: return sign << 15 | (1u + (uint32_t)tu_rng_below(r, (1u << 10) - 1));
    }
  }
  switch (kind) { /* bf16 */
    case 0: return sign << 15 | 0x7FC0u | (uint32_t)tu_rng_below(r, 1u << 6);
    case 1: return sign << 15 | 0x7F80u | (1u + (uint32_t)tu_rng_below(r, (1u << 6) - 1));
    case 2: return sign << 15 | 0x7F80u;
    case 3: return sign << 15;
    default: return sign << 15 | (1u + (uint32_t)tu_rng_below(r, (1u << 7) - 1));
  }
}

void cu_fill_random(rotary_dtype dt, void *p, size_t n, tu_rng *r, int specials) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    if (specials && tu_rng_below(r, 64) == 0) {
      const uint32_t bits = special_bits(dt, r);
      if (dt == ROTARY_F32) {
        memcpy(b + 4 * i, &bits, 4);
      } else {
        const uint16_t h = (uint16_t)bits;
        memcpy(b + 2 * i, &h, 2);
      }
      continue;
    }
    const float v = tu_rng_below(r, 4) != 0 ? tu_rng_f32(r, -2.0f, 2.0f)
                    : dt == ROTARY_F16     ? tu_rng_f32_wide(r, -20, 3)
                                           : tu_rng_f32_wide(r, -30, 30);
    tu_store(dt, b, (ptrdiff_t)i, v);
  }
}
