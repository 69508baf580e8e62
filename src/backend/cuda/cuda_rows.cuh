// cuda_rows.cuh: a token's positions and cos/sin row on the device, the same values as the CPU's rotary_token_row.
#ifndef ROTARY_CUDA_ROWS_CUH
#define ROTARY_CUDA_ROWS_CUH

#include <stdint.h>

#include "cuda_positions.h"
#include "exact_sincos.cuh"
#include "rotary.h"

// Element i of an int64 (wide) or int32 array that may start at any byte (aligned: at its element size).
__device__ __forceinline__ int64_t rc_load_index(const void *base, int wide, int aligned, uint64_t i) {
  if (aligned) {
    return wide ? __ldg((const long long *)base + i) : (int64_t)__ldg((const int *)base + i);
  }
  const unsigned char *b = (const unsigned char *)base + i * (wide ? 8u : 4u);
  uint64_t v = 0;
  for (int k = (wide ? 7 : 3); k >= 0; k--) v = (v << 8) | __ldg(b + k);  // little-endian
  return wide ? (int64_t)v : (int64_t)(int32_t)(uint32_t)v;
}

// A float that may start at any byte.
__device__ __forceinline__ float rc_load_f32_any(const void *p, int aligned) {
  if (aligned) return __ldg((const float *)p);
  const unsigned char *b = (const unsigned char *)p;
  const uint32_t u = (uint32_t)__ldg(b) | (uint32_t)__ldg(b + 1) << 8 | (uint32_t)__ldg(b + 2) << 16 |
                     (uint32_t)__ldg(b + 3) << 24;
  return __uint_as_float(u);
}

// The ids of token (b, s) (ids[j], j < p.n_ids; COS_SIN: none) and whether every one is a position of the rope:
// in [0, p.max_position]. OFFSET runs are checked on the host; OFFSETS checks offsets[b] + s without overflow.
__device__ __forceinline__ bool rc_token_ids(const rotary_cuda_positions &p, uint64_t b, uint64_t s,
                                             int64_t ids[ROTARY_MAX_STREAMS]) {
  const uint64_t t = b * p.seq_len + s;
  switch (p.mode) {
    case ROTARY_POSITIONS_OFFSET: ids[0] = p.offset + (int64_t)s; return true;
    case ROTARY_POSITIONS_OFFSETS: {
      const int64_t o = rc_load_index(p.offsets, 1, p.ids_aligned, b);
      // s < seq_len, which fits int64 (tensor extents are checked); o + s <= max_position without overflow
      const bool ok = o >= 0 && (int64_t)s <= p.max_position && o <= p.max_position - (int64_t)s;
      ids[0] = ok ? o + (int64_t)s : 0;
      return ok;
    }
    case ROTARY_POSITIONS_COS_SIN: ids[0] = 0; return true;
    default: {  // IDS_*, STREAMS_* (one-id modes have n_ids 1, stream_stride unused)
      bool ok = true;
#pragma unroll
      for (int j = 0; j < ROTARY_MAX_STREAMS; j++) {  // unrolled: ids stays in registers
        if (j < p.n_ids) {
          const int64_t id = rc_load_index(p.ids, p.wide, p.ids_aligned, (uint64_t)j * p.stream_stride + t);
          ok = ok && id >= 0 && id <= p.max_position;
          ids[j] = id;
        } else {
          ids[j] = 0;
        }
      }
      return ok;
    }
  }
}

// The position frequency i turns by: ids[map[i]] for several streams, else ids[0]. A token whose streams agree
// gets the 1-D row on the CPU; per frequency this is the same value.
__device__ __forceinline__ int64_t rc_freq_position(const rotary_cuda_positions &p, const int64_t *ids, uint32_t i) {
  if (p.n_ids > 1) {
    const unsigned j = __ldg(p.map + i);
    // map entries are < n_streams (checked at rope creation); unrolled selection keeps ids in registers
    int64_t v = ids[0];
#pragma unroll
    for (unsigned k = 1; k < ROTARY_MAX_STREAMS; k++) v = j == k ? ids[k] : v;
    return v;
  }
  return ids[0];
}

// cos and sin of frequency i of token t with ids from rc_token_ids (a valid token): the table's values, or the
// exact table-free values (attention scaling included), or the caller's COS_SIN row (no scaling); sin negated for
// INVERSE (the CPU's kernel with -sin: bit-identical to rotating by the opposite angle).
__device__ __forceinline__ void rc_row_cos_sin(const rotary_cuda_positions &p, uint64_t t, const int64_t *ids,
                                               uint32_t i, float *c, float *s) {
  float cv, sv;
  if (p.mode == ROTARY_POSITIONS_COS_SIN) {
    const uint64_t bytes = (t * p.row_stride + i) * sizeof(float);  // rows may start at any byte
    cv = rc_load_f32_any((const char *)p.cos + bytes, p.cos_sin_aligned);
    sv = rc_load_f32_any((const char *)p.sin + bytes, p.cos_sin_aligned);
  } else {
    const int64_t pos = rc_freq_position(p, ids, i);
    if (p.table) {
      const float *row = p.table + (uint64_t)pos * p.table_row_floats;
      cv = __ldg(row + i);
      sv = __ldg(row + p.table_sin_offset + i);
    } else {
      rotary_cuda_exact_cos_sin(pos, __ldg(p.inv_freq + i), p.scaling, &cv, &sv);
    }
  }
  *c = cv;
  *s = p.inverse ? -sv : sv;
}

// Fills frequencies first, first + step, ... < p.half of token t's row into c_row and s_row (shared memory, say).
__device__ __forceinline__ void rc_fill_row(const rotary_cuda_positions &p, uint64_t t, const int64_t *ids,
                                            float *c_row, float *s_row, uint32_t first, uint32_t step) {
  for (uint32_t i = first; i < p.half; i += step) rc_row_cos_sin(p, t, ids, i, c_row + i, s_row + i);
}

#endif  // ROTARY_CUDA_ROWS_CUH
