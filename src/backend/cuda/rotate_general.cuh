// rotate_general.cuh: the general rotation kernel: any strides, alignment and dtypes, element by element, per token.
#ifndef ROTARY_ROTATE_GENERAL_CUH
#define ROTARY_ROTATE_GENERAL_CUH
#include <stdint.h>

#include "cuda_math.cuh"
#include "cuda_rotate_plan.h"
#include "cuda_rows.cuh"

namespace rc_general {

constexpr int kThreads = 256;  // threads per block (the launch's)
constexpr uint32_t kChunk = 1024;  // frequencies of a token's row held in shared memory at a time (8 KiB)

__device__ __forceinline__ uint32_t rc_elem_size(int dtype) { return dtype == ROTARY_F32 ? 4u : 2u; }

// The byte address of element (b, s, h, d) of a tensor with element strides st (64-bit, strides may be negative).
__device__ __forceinline__ const char *rc_elem_addr(const void *base, const int64_t *st, uint64_t b, uint64_t s,
                                                    uint64_t h, uint32_t d, uint32_t es) {
  const int64_t off = (int64_t)b * st[0] + (int64_t)s * st[1] + (int64_t)h * st[2] + (int64_t)d;
  return (const char *)base + off * (int64_t)es;
}

// Element bits at any byte address: one load when aligned, else byte by byte (little-endian).
__device__ __forceinline__ uint32_t rc_load_bits(const char *p, uint32_t es) {
  if (es == 4) {
    if (((uintptr_t)p & 3) == 0) return *(const uint32_t *)p;
  } else if (((uintptr_t)p & 1) == 0) {
    return *(const uint16_t *)p;
  }
  const unsigned char *u = (const unsigned char *)p;
  uint32_t v = 0;
  for (int k = (int)es - 1; k >= 0; k--) v = (v << 8) | u[k];
  return v;
}

__device__ __forceinline__ void rc_store_bits(char *p, uint32_t es, uint32_t v) {
  if (es == 4) {
    if (((uintptr_t)p & 3) == 0) {
      *(uint32_t *)p = v;
      return;
    }
  } else if (((uintptr_t)p & 1) == 0) {
    *(uint16_t *)p = (uint16_t)v;
    return;
  }
  unsigned char *u = (unsigned char *)p;
  for (uint32_t k = 0; k < es; k++) u[k] = (unsigned char)(v >> (8 * k));
}

__device__ __forceinline__ float rc_bits_to_f32(uint32_t v, int dtype) {
  if (dtype == ROTARY_F32) return __uint_as_float(v);
  if (dtype == ROTARY_F16) return rc_f16_bits_to_f32((uint16_t)v);
  return rc_bf16_bits_to_f32((uint16_t)v);
}

__device__ __forceinline__ uint32_t rc_f32_to_bits(float f, int dtype) {
  if (dtype == ROTARY_F32) return __float_as_uint(f);
  if (dtype == ROTARY_F16) return rc_f32_to_f16_bits(f);
  return rc_f32_to_bf16_bits(f);
}

// Rotates the pair (d0, d1) of head h of token (b, s) of tensor x by (c, sn).
__device__ __forceinline__ void rc_general_pair(const rotary_cuda_rotate_tensor &x, uint64_t b, uint64_t s,
                                                uint64_t h, uint32_t d0, uint32_t d1, float c, float sn) {
  const uint32_t es = rc_elem_size(x.dtype);
  const char *in0 = rc_elem_addr(x.in, x.stride, b, s, h, d0, es);
  const char *in1 = rc_elem_addr(x.in, x.stride, b, s, h, d1, es);
  char *out0 = (char *)rc_elem_addr(x.out, x.out_stride, b, s, h, d0, es);
  char *out1 = (char *)rc_elem_addr(x.out, x.out_stride, b, s, h, d1, es);
  const float x0 = rc_bits_to_f32(rc_load_bits(in0, es), x.dtype);
  const float x1 = rc_bits_to_f32(rc_load_bits(in1, es), x.dtype);
  float y0, y1;
  rc_rotate_pair(x0, x1, c, sn, &y0, &y1);
  rc_store_bits(out0, es, rc_f32_to_bits(y0, x.dtype));
  rc_store_bits(out1, es, rc_f32_to_bits(y1, x.dtype));
}

// One block per token (grid-stride over tokens): the token's ids once, its row chunk by chunk in shared memory, every
// pair of every q and k head of the chunk, then the pass-through dims of out-of-place tensors copied bit for bit.
// A token with a position out of range is skipped whole (every thread of the block sees the same ids).
__global__ void __launch_bounds__(kThreads) rc_rotate_general(const rotary_cuda_rotate_plan plan) {
  __shared__ float c_row[kChunk];
  __shared__ float s_row[kChunk];
  const rotary_cuda_positions &p = plan.pos;
  const uint32_t half = plan.rotary_dim / 2, tail = plan.head_dim - plan.rotary_dim;
  const uint64_t hq = plan.t[0].heads, heads = hq + plan.t[1].heads;
  for (uint64_t t = blockIdx.x; t < plan.tokens; t += gridDim.x) {
    const uint64_t b = t / p.seq_len, s = t % p.seq_len;
    int64_t ids[ROTARY_MAX_STREAMS];
    if (!rc_token_ids(p, b, s, ids)) {
      if (threadIdx.x == 0 && plan.flags) atomicOr((int *)plan.flags, ROTARY_CUDA_FLAG_POSITION);
      continue;
    }
    for (uint32_t f0 = 0; f0 < half; f0 += kChunk) {
      const uint32_t n = half - f0 < kChunk ? half - f0 : kChunk;
      __syncthreads();  // the previous chunk's (or token's) readers are done with the rows
      for (uint32_t j = threadIdx.x; j < n; j += blockDim.x) rc_row_cos_sin(p, t, ids, f0 + j, &c_row[j], &s_row[j]);
      __syncthreads();
      const uint64_t work = heads * n;
      for (uint64_t w = threadIdx.x; w < work; w += blockDim.x) {
        const uint64_t h = w / n;
        const uint32_t j = (uint32_t)(w - h * n), i = f0 + j;
        const int ti = h >= hq;
        const uint32_t d0 = plan.interleaved ? 2 * i : i, d1 = plan.interleaved ? 2 * i + 1 : i + half;
        rc_general_pair(plan.t[ti], b, s, ti ? h - hq : h, d0, d1, c_row[j], s_row[j]);
      }
    }
    if (tail == 0) continue;
    const uint64_t work = heads * tail;
    for (uint64_t w = threadIdx.x; w < work; w += blockDim.x) {
      const uint64_t h = w / tail;
      const uint32_t d = plan.rotary_dim + (uint32_t)(w - h * tail);
      const int ti = h >= hq;
      const rotary_cuda_rotate_tensor &x = plan.t[ti];
      if (!x.copy_tail) continue;
      const uint32_t es = rc_elem_size(x.dtype);
      const uint64_t hh = ti ? h - hq : h;
      const uint32_t v = rc_load_bits(rc_elem_addr(x.in, x.stride, b, s, hh, d, es), es);
      rc_store_bits((char *)rc_elem_addr(x.out, x.out_stride, b, s, hh, d, es), es, v);
    }
  }
}

}  // namespace rc_general

#endif  // ROTARY_ROTATE_GENERAL_CUH
