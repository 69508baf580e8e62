// kv_kernels.cu: the KV-cache write on the GPU (q rotated, k rotated into the key cache, v copied into the value
// cache) and its launch: a block per token, an element path for any layout and an 8-element vector path.
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_fp8.cuh"
#include "cuda_kv_plan.h"
#include "cuda_math.cuh"
#include "cuda_rows.cuh"

namespace rc_kv {

constexpr int kThreads = 256;      // threads per block (the launch's)
constexpr uint32_t kChunk = 1024;  // frequencies of a token's row held in shared memory at a time (8 KiB)
constexpr uint32_t kVec = 8;       // elements per item of the vector path

__device__ __forceinline__ uint32_t rc_kv_elem_size(int dtype) {
  return dtype == ROTARY_F32 ? 4u : dtype == ROTARY_FP8_E4M3 ? 1u : 2u;
}

// ---- elements: values, conversions ----

// An input element (f32, f16 or bf16 bits) in fp32, exactly. An f16 NaN comes out quieted, as the CPU's f16 -> f32
// conversion kernel gives it (what reaches an f32 cache through f32); for rotated pairs it makes no difference (the
// pair's NaN rule quiets x0 or x1 anyway). bf16 is a bit move (a signalling NaN stays signalling, as on the CPU).
__device__ __forceinline__ float rc_kv_to_f32(uint32_t bits, int dtype) {
  if (dtype == ROTARY_F32) return __uint_as_float(bits);
  if (dtype == ROTARY_F16) {
    const float f = rc_f16_bits_to_f32((uint16_t)bits);
    return f != f ? __uint_as_float(__float_as_uint(f) | 0x00400000u) : f;
  }
  return rc_bf16_bits_to_f32((uint16_t)bits);
}

// An fp32 value as a destination element's bits, one rounding (fp8: x / scale, encoded).
__device__ __forceinline__ uint32_t rc_kv_from_f32(float f, int dtype, float scale) {
  if (dtype == ROTARY_F32) return __float_as_uint(f);
  if (dtype == ROTARY_F16) return rc_f32_to_f16_bits(f);
  if (dtype == ROTARY_BF16) return rc_f32_to_bf16_bits(f);
  return rc_fp8_e4m3_encode(f, scale);
}

// An element that is not rotated (v, the pass-through dims of k): its bits when the dtypes agree (the CPU's memcpy),
// else through fp32 (the CPU's to_f32 and from_f32 conversions). Inputs are never fp8.
__device__ __forceinline__ uint32_t rc_kv_convert(uint32_t bits, int from, int to, float scale) {
  return from == to ? bits : rc_kv_from_f32(rc_kv_to_f32(bits, from), to, scale);
}

// ---- addresses (64-bit element offsets) ----

// Element (b, s, h, d) of a tensor (input strides, or the output's when out).
__device__ __forceinline__ char *rc_kv_tensor_at(const rotary_cuda_rotate_tensor &x, bool out, uint64_t b,
                                                 uint64_t s, uint64_t h, uint32_t d) {
  const int64_t *st = out ? x.out_stride : x.stride;
  const int64_t off = (int64_t)b * st[0] + (int64_t)s * st[1] + (int64_t)h * st[2] + (int64_t)d;
  const char *base = out ? (const char *)x.out : (const char *)x.in;
  return (char *)base + off * (int64_t)rc_kv_elem_size(x.dtype);
}

// Element (block, row, h, d) of the key cache (v false) or the value cache.
__device__ __forceinline__ char *rc_kv_cache_at(const rotary_cuda_kv_cache &c, bool v, uint64_t block, uint64_t row,
                                                uint64_t h, uint32_t d) {
  const uint64_t off = block * c.block_stride + row * c.row_stride + h * c.head_stride + d;
  return (char *)(v ? c.v : c.k) + off * rc_kv_elem_size(c.dtype);
}

// ---- the element path: one element at any byte address ----

__device__ __forceinline__ uint32_t rc_kv_load_bits(const char *p, uint32_t es) {
  if (((uintptr_t)p & (es - 1)) == 0) {
    if (es == 4) return *(const uint32_t *)p;
    if (es == 2) return *(const uint16_t *)p;
    return *(const uint8_t *)p;
  }
  const unsigned char *u = (const unsigned char *)p;
  uint32_t v = 0;
  for (int k = (int)es - 1; k >= 0; k--) v = (v << 8) | u[k];  // little-endian
  return v;
}

__device__ __forceinline__ void rc_kv_store_bits(char *p, uint32_t es, uint32_t v) {
  if (((uintptr_t)p & (es - 1)) == 0) {
    if (es == 4) {
      *(uint32_t *)p = v;
    } else if (es == 2) {
      *(uint16_t *)p = (uint16_t)v;
    } else {
      *(uint8_t *)p = (uint8_t)v;
    }
    return;
  }
  unsigned char *u = (unsigned char *)p;
  for (uint32_t k = 0; k < es; k++) u[k] = (unsigned char)(v >> (8 * k));
}

__device__ __forceinline__ float rc_kv_load(const char *p, int dtype) {
  return rc_kv_to_f32(rc_kv_load_bits(p, rc_kv_elem_size(dtype)), dtype);
}

__device__ __forceinline__ void rc_kv_store(char *p, int dtype, float scale, float f) {
  rc_kv_store_bits(p, rc_kv_elem_size(dtype), rc_kv_from_f32(f, dtype, scale));
}

// ---- the vector path: 8 elements at a 16-byte aligned address (fp8: 8-byte aligned) ----

// 8 input elements (f32, f16, bf16) in fp32, as rc_kv_to_f32.
__device__ __forceinline__ void rc_kv_load8(const char *p, int dtype, float *f) {
  const uint4 a = *(const uint4 *)p;
  if (dtype == ROTARY_F32) {
    const uint4 b = *(const uint4 *)(p + 16);
    const uint32_t w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = __uint_as_float(w[k]);
    return;
  }
  const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
  for (int k = 0; k < 4; k++) {
    f[2 * k] = rc_kv_to_f32(w[k] & 0xffffu, dtype);
    f[2 * k + 1] = rc_kv_to_f32(w[k] >> 16, dtype);
  }
}

// 8 fp32 values stored as a destination dtype (f32, f16, bf16, fp8 with scale), one rounding each.
__device__ __forceinline__ void rc_kv_store8(char *p, int dtype, float scale, const float *f) {
  if (dtype == ROTARY_F32) {
    *(uint4 *)p = make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]),
                             __float_as_uint(f[3]));
    *(uint4 *)(p + 16) = make_uint4(__float_as_uint(f[4]), __float_as_uint(f[5]), __float_as_uint(f[6]),
                                    __float_as_uint(f[7]));
    return;
  }
  if (dtype == ROTARY_FP8_E4M3) {
    uint32_t w[2] = {0, 0};
#pragma unroll
    for (int k = 0; k < 8; k++) w[k / 4] |= (uint32_t)rc_fp8_e4m3_encode(f[k], scale) << (8 * (k % 4));
    *(uint2 *)p = make_uint2(w[0], w[1]);
    return;
  }
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; k++)
    w[k] = rc_kv_from_f32(f[2 * k], dtype, scale) | rc_kv_from_f32(f[2 * k + 1], dtype, scale) << 16;
  *(uint4 *)p = make_uint4(w[0], w[1], w[2], w[3]);
}

// 8 elements that are not rotated, from an input dtype to a destination dtype (rc_kv_convert).
__device__ __forceinline__ void rc_kv_convert8(const char *src, int from, char *dst, int to, float scale) {
  if (from == to) {  // f32, f16 or bf16 bits
    *(uint4 *)dst = *(const uint4 *)src;
    if (from == ROTARY_F32) *(uint4 *)(dst + 16) = *(const uint4 *)(src + 16);
    return;
  }
  float f[8];
  rc_kv_load8(src, from, f);
  rc_kv_store8(dst, to, scale, f);
}

// ---- the cache index ----

// Where token t = (b, s) writes its k and v rows. False when the token's slot, page or row lies outside the cache
// (it is then skipped whole and flagged); else *write (false: a negative SLOTS slot, k and v not written) and, when
// writing, the cache block and the row in it. Every thread of the block reads the same values.
__device__ __forceinline__ bool rc_kv_dest(const rotary_cuda_kv_cache &c, uint64_t seq_len, uint64_t b, uint64_t s,
                                           uint64_t t, bool *write, uint64_t *block, uint64_t *row) {
  *write = true;
  *block = 0;
  *row = 0;
  const int al = c.index_aligned;
  switch (c.index) {
    case ROTARY_CACHE_SEQUENCES: {
      if (b >= c.num_blocks) return false;
      const int64_t len = rc_load_index(c.lengths, 1, al, b);
      if (len < 0 || (uint64_t)len > c.block_size || seq_len > c.block_size - (uint64_t)len) return false;
      *block = b;
      *row = (uint64_t)len + s;
      return true;
    }
    case ROTARY_CACHE_SLOTS: {
      const int64_t slot = rc_load_index(c.slot_mapping, 1, al, t);
      if (slot < 0) {
        *write = false;
        return true;
      }
      if ((uint64_t)slot >= c.slots) return false;
      *block = (uint64_t)slot / c.block_size;
      *row = (uint64_t)slot % c.block_size;
      return true;
    }
    default: {  // PAGES: pages page_indices[first .. next), the last holding `last` rows after the call
      const int64_t start = rc_load_index(c.page_indptr, 0, al, 0);
      const int64_t first = rc_load_index(c.page_indptr, 0, al, b);
      const int64_t next = rc_load_index(c.page_indptr, 0, al, b + 1);
      const int64_t last = rc_load_index(c.last_page_len, 0, al, b);
      if (start != 0 || first < 0 || next <= first || last < 1 || (uint64_t)last > c.block_size) return false;
      const uint64_t full = (uint64_t)(next - first) - 1, lastu = (uint64_t)last, bs = c.block_size;
      // A row r rows before the sequence's end (1 <= r) lies `back` pages before the last: 0 when r <= last, else
      // ceil((r - last) / bs); the sequence holds seq_len rows when its first new row (r = seq_len) has a page.
      // (pages - 1) * bs + last is never formed: it may not fit 64 bits.
      if (seq_len > lastu && (seq_len - lastu - 1) / bs + 1 > full) return false;
      const uint64_t r = seq_len - s;
      uint64_t back = 0, rw = 0;
      if (r <= lastu) {
        rw = lastu - r;
      } else {
        const uint64_t over = r - lastu;
        back = (over - 1) / bs + 1;
        rw = back * bs - over;  // in [0, bs): back * bs < over + bs, which fits
      }
      const int64_t page = rc_load_index(c.page_indices, 0, al, (uint64_t)first + full - back);
      if (page < 0 || (uint64_t)page >= c.num_blocks) return false;
      *block = (uint64_t)page;
      *row = rw;
      return true;
    }
  }
}

// ---- per token: rotation of one chunk of frequencies, then the pass-through dims and v ----

// Frequencies [f0, f0 + n) of every q head and (kv_rows) k head, element by element; c_row/s_row hold them.
__device__ __forceinline__ void rc_kv_rotate_elems(const rotary_cuda_kv_plan &plan, uint64_t b, uint64_t s,
                                                   uint64_t block, uint64_t row, uint64_t kv_rows, uint32_t f0,
                                                   uint32_t n, const float *c_row, const float *s_row) {
  const uint32_t half = plan.rotary_dim / 2;
  const uint64_t hq = plan.q.heads, work = (hq + kv_rows) * n;
  for (uint64_t w = threadIdx.x; w < work; w += blockDim.x) {
    const uint64_t h = w / n;
    const uint32_t j = (uint32_t)(w - h * n), i = f0 + j;
    const uint32_t d0 = plan.interleaved ? 2 * i : i, d1 = plan.interleaved ? 2 * i + 1 : i + half;
    float y0, y1;
    if (h < hq) {
      const rotary_cuda_rotate_tensor &q = plan.q;
      rc_rotate_pair(rc_kv_load(rc_kv_tensor_at(q, false, b, s, h, d0), q.dtype),
                     rc_kv_load(rc_kv_tensor_at(q, false, b, s, h, d1), q.dtype), c_row[j], s_row[j], &y0, &y1);
      rc_kv_store(rc_kv_tensor_at(q, true, b, s, h, d0), q.dtype, 1.0f, y0);
      rc_kv_store(rc_kv_tensor_at(q, true, b, s, h, d1), q.dtype, 1.0f, y1);
    } else {
      const rotary_cuda_rotate_tensor &k = plan.k;
      const rotary_cuda_kv_cache &c = plan.cache;
      const uint64_t kh = h - hq;
      rc_rotate_pair(rc_kv_load(rc_kv_tensor_at(k, false, b, s, kh, d0), k.dtype),
                     rc_kv_load(rc_kv_tensor_at(k, false, b, s, kh, d1), k.dtype), c_row[j], s_row[j], &y0, &y1);
      rc_kv_store(rc_kv_cache_at(c, false, block, row, kh, d0), c.dtype, c.k_scale, y0);
      rc_kv_store(rc_kv_cache_at(c, false, block, row, kh, d1), c.dtype, c.k_scale, y1);
    }
  }
}

// The same with 8 elements per item: half pairing, 8 frequencies (a vector in each half); interleaved, 4
// frequencies (one vector of 4 pairs). n is a multiple of 8 (half) or 4 (interleaved): the plan's conditions.
__device__ __forceinline__ void rc_kv_rotate_vec(const rotary_cuda_kv_plan &plan, uint64_t b, uint64_t s,
                                                 uint64_t block, uint64_t row, uint64_t kv_rows, uint32_t f0,
                                                 uint32_t n, const float *c_row, const float *s_row) {
  const uint32_t half = plan.rotary_dim / 2, per = plan.interleaved ? n / 4 : n / 8;
  const uint64_t hq = plan.q.heads, work = (hq + kv_rows) * per;
  for (uint64_t w = threadIdx.x; w < work; w += blockDim.x) {
    const uint64_t h = w / per;
    const uint32_t j = (uint32_t)(w - h * per);
    const bool is_q = h < hq;
    const uint64_t th = is_q ? h : h - hq;
    const rotary_cuda_rotate_tensor &x = is_q ? plan.q : plan.k;
    const rotary_cuda_kv_cache &c = plan.cache;
    const int out_dtype = is_q ? x.dtype : c.dtype;
    const float scale = is_q ? 1.0f : c.k_scale;
    if (plan.interleaved) {
      const uint32_t d = 2 * f0 + 8 * j, i = 4 * j;  // elements d .. d + 7, frequencies f0 + i .. + 3
      float v[8];
      rc_kv_load8(rc_kv_tensor_at(x, false, b, s, th, d), x.dtype, v);
#pragma unroll
      for (int k = 0; k < 4; k++) rc_rotate_pair(v[2 * k], v[2 * k + 1], c_row[i + k], s_row[i + k], &v[2 * k], &v[2 * k + 1]);
      char *out = is_q ? rc_kv_tensor_at(x, true, b, s, th, d) : rc_kv_cache_at(c, false, block, row, th, d);
      rc_kv_store8(out, out_dtype, scale, v);
    } else {
      const uint32_t i = 8 * j, d0 = f0 + i, d1 = d0 + half;
      float v0[8], v1[8];
      rc_kv_load8(rc_kv_tensor_at(x, false, b, s, th, d0), x.dtype, v0);
      rc_kv_load8(rc_kv_tensor_at(x, false, b, s, th, d1), x.dtype, v1);
#pragma unroll
      for (int k = 0; k < 8; k++) rc_rotate_pair(v0[k], v1[k], c_row[i + k], s_row[i + k], &v0[k], &v1[k]);
      char *o0 = is_q ? rc_kv_tensor_at(x, true, b, s, th, d0) : rc_kv_cache_at(c, false, block, row, th, d0);
      char *o1 = is_q ? rc_kv_tensor_at(x, true, b, s, th, d1) : rc_kv_cache_at(c, false, block, row, th, d1);
      rc_kv_store8(o0, out_dtype, scale, v0);
      rc_kv_store8(o1, out_dtype, scale, v1);
    }
  }
}

// What is not rotated: q's pass-through dims out of place (bits), k's pass-through dims into the key cache and v's
// whole rows into the value cache (rc_kv_convert). Units of 1 element (general) or kVec (vector path).
template <bool Vec>
__device__ __forceinline__ void rc_kv_copies(const rotary_cuda_kv_plan &plan, uint64_t b, uint64_t s,
                                             uint64_t block, uint64_t row, uint64_t kv_rows) {
  const uint32_t unit = Vec ? kVec : 1u;
  const uint32_t tail = (plan.head_dim - plan.rotary_dim) / unit, whole = plan.head_dim / unit;
  const rotary_cuda_kv_cache &c = plan.cache;
  const uint64_t hq = plan.q.copy_tail ? plan.q.heads : 0;
  // the pass-through dims of q (out of place) and k
  const uint64_t work = (hq + kv_rows) * tail;
  for (uint64_t w = threadIdx.x; w < work; w += blockDim.x) {
    const uint64_t h = w / tail;
    const uint32_t d = plan.rotary_dim + (uint32_t)(w - h * tail) * unit;
    const bool is_q = h < hq;
    const rotary_cuda_rotate_tensor &x = is_q ? plan.q : plan.k;
    const uint64_t th = is_q ? h : h - hq;
    const char *src = rc_kv_tensor_at(x, false, b, s, th, d);
    char *dst = is_q ? rc_kv_tensor_at(x, true, b, s, th, d) : rc_kv_cache_at(c, false, block, row, th, d);
    const int to = is_q ? x.dtype : c.dtype;
    if (Vec) {
      rc_kv_convert8(src, x.dtype, dst, to, c.k_scale);
    } else {
      const uint32_t bits = rc_kv_load_bits(src, rc_kv_elem_size(x.dtype));
      rc_kv_store_bits(dst, rc_kv_elem_size(to), rc_kv_convert(bits, x.dtype, to, c.k_scale));
    }
  }
  // v: every element, unrotated
  const uint64_t vwork = kv_rows * whole;
  for (uint64_t w = threadIdx.x; w < vwork; w += blockDim.x) {
    const uint64_t h = w / whole;
    const uint32_t d = (uint32_t)(w - h * whole) * unit;
    const char *src = rc_kv_tensor_at(plan.v, false, b, s, h, d);
    char *dst = rc_kv_cache_at(c, true, block, row, h, d);
    if (Vec) {
      rc_kv_convert8(src, plan.v.dtype, dst, c.dtype, c.v_scale);
    } else {
      const uint32_t bits = rc_kv_load_bits(src, rc_kv_elem_size(plan.v.dtype));
      rc_kv_store_bits(dst, rc_kv_elem_size(c.dtype), rc_kv_convert(bits, plan.v.dtype, c.dtype, c.v_scale));
    }
  }
}

// One block per token (grid-stride over tokens): the token's positions and cache destination (every thread reads
// the same values, so branches are uniform), then its row chunk by chunk in shared memory, the rotations of q and
// k, and the copies. A token whose positions or destination are out of range is skipped whole and flagged. The
// destination is looked up again after each row fill (cached loads): nothing but the token and its ids lives
// across a table-free row's sincos call, so nothing spills there.
template <bool Vec>
__global__ void __launch_bounds__(kThreads) rc_kv_write(const rotary_cuda_kv_plan plan) {
  __shared__ float c_row[kChunk];
  __shared__ float s_row[kChunk];
  const rotary_cuda_positions &p = plan.pos;
  const uint32_t half = plan.rotary_dim / 2;
  for (uint64_t t = blockIdx.x; t < plan.tokens; t += gridDim.x) {
    const uint64_t b = t / p.seq_len, s = t % p.seq_len;
    int64_t ids[ROTARY_MAX_STREAMS];
    bool write = false;
    uint64_t block = 0, row = 0;
    const bool pos_ok = rc_token_ids(p, b, s, ids);
    const bool cache_ok = rc_kv_dest(plan.cache, p.seq_len, b, s, t, &write, &block, &row);
    if (!pos_ok || !cache_ok) {
      if (threadIdx.x == 0 && plan.flags)
        atomicOr((int *)plan.flags,
                 (pos_ok ? 0 : ROTARY_CUDA_FLAG_POSITION) | (cache_ok ? 0 : ROTARY_CUDA_FLAG_CACHE_INDEX));
      continue;
    }
    for (uint32_t f0 = 0; f0 < half; f0 += kChunk) {
      const uint32_t n = half - f0 < kChunk ? half - f0 : kChunk;
      __syncthreads();  // the previous chunk's (or token's) readers are done with the rows
      for (uint32_t j = threadIdx.x; j < n; j += blockDim.x) rc_row_cos_sin(p, t, ids, f0 + j, &c_row[j], &s_row[j]);
      __syncthreads();
      // true, as above (the index arrays are read-only; should a caller's page_indices lie in memory the call
      // writes, k and v are then not written rather than written to a stale row)
      write = rc_kv_dest(plan.cache, p.seq_len, b, s, t, &write, &block, &row) && write;
      const uint64_t kv_rows = write ? plan.kv_heads : 0;
      if (Vec) {
        rc_kv_rotate_vec(plan, b, s, block, row, kv_rows, f0, n, c_row, s_row);
      } else {
        rc_kv_rotate_elems(plan, b, s, block, row, kv_rows, f0, n, c_row, s_row);
      }
    }
    rc_kv_copies<Vec>(plan, b, s, block, row, write ? plan.kv_heads : 0);
  }
}

}  // namespace rc_kv

extern "C" rotary_status rotary_cuda_kv_launch(const rotary_cuda_kv_plan *plan, void *stream) {
  const uint64_t max_blocks = (uint64_t)(plan->sm_count > 0 ? plan->sm_count : 1) * 8u;
  const uint64_t blocks = plan->tokens < max_blocks ? plan->tokens : max_blocks;
  const cudaStream_t s = (cudaStream_t)stream;
  if (plan->path == ROTARY_CUDA_KV_VECTOR) {
    rc_kv::rc_kv_write<true><<<(unsigned)blocks, rc_kv::kThreads, 0, s>>>(*plan);
  } else {
    rc_kv::rc_kv_write<false><<<(unsigned)blocks, rc_kv::kThreads, 0, s>>>(*plan);
  }
  return cudaGetLastError() == cudaSuccess ? ROTARY_OK : ROTARY_ERR_DEVICE;
}
