// rotate_vector.cuh: the fast rotation kernel: 16-byte loads and stores of aligned head rows, cos/sin reused per head.
#ifndef ROTARY_ROTATE_VECTOR_CUH
#define ROTARY_ROTATE_VECTOR_CUH
#include <stdint.h>

#include "cuda_math.cuh"
#include "cuda_rotate_plan.h"
#include "cuda_rows.cuh"

namespace rc_vector {

// Build-time switch for a variant not yet run through the GPU suite (the default is the shipped kernel).
// 1: f16/bf16 results packed two at a time (cvt.rn.f16x2/bf16x2.f32). On an H200 it took the bf16 prefill row from
// 73% to 79% of the streaming pass with bit-exact results on the bench's random inputs, but it has not yet run
// against the GPU test suite (NaN, Inf, subnormal inputs): off until it has (docs/cuda.md).
#ifndef ROTARY_CUDA_PACKED_CVT
#define ROTARY_CUDA_PACKED_CVT 0
#endif
constexpr int kThreads = 256;  // threads per block (the launch's)
constexpr int kUnroll = 4;  // heads whose loads are issued together (2: the same speed on an H200, 8: slower)

// How the threads of a launch split the work: thread x = ((t * groups) + group) * lanes + lane. A lane below
// rot_lanes rotates NP pairs (one or two vectors) of heads [group * per_group, ...) of one tensor; a lane from
// rot_lanes on copies one pass-through vector of them (out of place only).
struct rc_vector_shape {
  uint64_t total;       // threads of work: tokens * groups * lanes
  uint32_t lanes;       // rot_lanes + copy lanes
  uint32_t rot_lanes;
  uint64_t per_group;   // heads per group (G)
  uint64_t q_groups;    // groups of q; groups of k follow
  uint64_t groups;      // q_groups + k groups
};

// Elements per 16-byte vector.
template <int DT>
struct rc_vec {
  static constexpr int V = DT == ROTARY_F32 ? 4 : 8;
};

template <int DT>
__device__ __forceinline__ void rc_unpack(const uint4 v, float *f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; k++) {
    if (DT == ROTARY_F32) {
      f[k] = __uint_as_float(w[k]);
    } else if (DT == ROTARY_F16) {
      f[2 * k] = rc_f16_bits_to_f32((uint16_t)(w[k] & 0xffffu));
      f[2 * k + 1] = rc_f16_bits_to_f32((uint16_t)(w[k] >> 16));
    } else {
      f[2 * k] = __uint_as_float(w[k] << 16);
      f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
  }
}

template <int DT>
__device__ __forceinline__ uint4 rc_pack(const float *f) {
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; k++) {
    if (DT == ROTARY_F32) {
      w[k] = __float_as_uint(f[k]);
    } else if (ROTARY_CUDA_PACKED_CVT && !(f[2 * k] != f[2 * k] || f[2 * k + 1] != f[2 * k + 1])) {
      // two values in one conversion (cvt.rn.f16x2.f32 / cvt.rn.bf16x2.f32: round to nearest even, no flush);
      // a NaN takes the elementwise path below, which writes the CPU's NaN bits
      if (DT == ROTARY_F16) {
        const __half2 h = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
        w[k] = *(const uint32_t *)&h;
      } else {
        const __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
        w[k] = *(const uint32_t *)&h;
      }
    } else if (DT == ROTARY_F16) {
      w[k] = (uint32_t)rc_f32_to_f16_bits(f[2 * k]) | (uint32_t)rc_f32_to_f16_bits(f[2 * k + 1]) << 16;
    } else {
      w[k] = (uint32_t)rc_f32_to_bf16_bits(f[2 * k]) | (uint32_t)rc_f32_to_bf16_bits(f[2 * k + 1]) << 16;
    }
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// Floats per vector load of a cos/sin row for NP pairs per lane: 4 (float4) or 2 (float2).
template <int NP>
struct rc_row_vec {
  static constexpr int W = NP % 4 == 0 ? 4 : 2;
};

// cos and sin of frequencies i .. i + NP - 1 of token t (valid). VEC_ROWS (the launch checked alignment): vector
// loads from the table row of ids[0] (one id per token) or from the caller's rows; else frequency by frequency
// (rc_row_cos_sin: several streams, table-free rows). Inverse: sin negated, as rc_row_cos_sin does.
template <int NP, bool VEC_ROWS>
__device__ __forceinline__ void rc_load_cos_sin(const rotary_cuda_positions &p, uint64_t t, const int64_t *ids,
                                                uint32_t i, float *c, float *s) {
  if (!VEC_ROWS) {
#pragma unroll
    for (int k = 0; k < NP; k++) rc_row_cos_sin(p, t, ids, i + (uint32_t)k, &c[k], &s[k]);
    return;
  }
  const float *cr, *sr;
  if (p.mode == ROTARY_POSITIONS_COS_SIN) {
    cr = (const float *)p.cos + t * p.row_stride + i;
    sr = (const float *)p.sin + t * p.row_stride + i;
  } else {
    cr = p.table + (uint64_t)ids[0] * p.table_row_floats + i;
    sr = cr + p.table_sin_offset;
  }
  constexpr int W = rc_row_vec<NP>::W;
#pragma unroll
  for (int k = 0; k < NP; k += W) {
    if (W == 4) {
      const float4 cv = __ldg((const float4 *)(cr + k)), sv = __ldg((const float4 *)(sr + k));
      c[k] = cv.x, c[k + 1] = cv.y, c[k + 2] = cv.z, c[k + 3] = cv.w;
      s[k] = sv.x, s[k + 1] = sv.y, s[k + 2] = sv.z, s[k + 3] = sv.w;
    } else {
      const float2 cv = __ldg((const float2 *)(cr + k)), sv = __ldg((const float2 *)(sr + k));
      c[k] = cv.x, c[k + 1] = cv.y;
      s[k] = sv.x, s[k + 1] = sv.y;
    }
  }
  if (p.inverse) {
#pragma unroll
    for (int k = 0; k < NP; k++) s[k] = -s[k];
  }
}

// q / r and q % r, in 32 bits when both fit (a 64-bit division is a long software sequence).
__device__ __forceinline__ uint64_t rc_divmod(uint64_t q, uint64_t r, uint64_t *rem) {
  if ((q | r) >> 32 == 0) {
    const uint32_t d = (uint32_t)q / (uint32_t)r;
    *rem = (uint32_t)q - d * (uint32_t)r;
    return d;
  }
  const uint64_t d = q / r;
  *rem = q - d * r;
  return d;
}

template <int DT, bool INTERLEAVED, bool VEC_ROWS>
__global__ void __launch_bounds__(kThreads) rc_rotate_vector(const rotary_cuda_rotate_plan plan,
                                                                   const rc_vector_shape sh) {
  constexpr int V = rc_vec<DT>::V;
  constexpr int NP = INTERLEAVED ? V / 2 : V;  // pairs per rotating lane
  constexpr int ES = DT == ROTARY_F32 ? 4 : 2;
  constexpr int U = VEC_ROWS ? kUnroll : 2;  // computed rows: fewer registers live across the sincos calls
  const rotary_cuda_positions &p = plan.pos;
  const uint32_t half = plan.rotary_dim / 2;
  const uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t x = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; x < sh.total; x += stride) {
    uint64_t lane, group;
    const uint64_t r = rc_divmod(x, sh.lanes, &lane);
    const uint64_t t = rc_divmod(r, sh.groups, &group);
    uint64_t s;
    const uint64_t b = rc_divmod(t, p.seq_len, &s);
    const int ti = group >= sh.q_groups;
    const rotary_cuda_rotate_tensor &xt = plan.t[ti];
    const bool rot = lane < sh.rot_lanes;  // lane 0 always rotates: it reports an invalid token
    if (!rot && !xt.copy_tail) continue;
    const uint64_t h0 = (group - (ti ? sh.q_groups : 0)) * sh.per_group;
    const uint64_t h1 = xt.heads - h0 < sh.per_group ? xt.heads : h0 + sh.per_group;
    const char *in = (const char *)xt.in + ((int64_t)b * xt.stride[0] + (int64_t)s * xt.stride[1]) * ES;
    char *out = (char *)xt.out + ((int64_t)b * xt.out_stride[0] + (int64_t)s * xt.out_stride[1]) * ES;
    // Rotating lanes: half pairing, vectors at elements d and d + half hold pairs (d + k, d + half + k); interleaved,
    // one vector at d holds pairs (d + 2k, d + 2k + 1); either way the first frequency is lane * NP, d = lane * V.
    // Copying lanes: one pass-through vector from rotary_dim on.
    const uint32_t d = rot ? (uint32_t)lane * V : plan.rotary_dim + (uint32_t)(lane - sh.rot_lanes) * V;
    const bool second = rot && !INTERLEAVED;
    const size_t second_bytes = (size_t)half * ES;
    uint4 va[U], vb[U];
    auto load_heads = [&](uint64_t h) {
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (h + u < h1) {
          const char *row = in + ((int64_t)(h + u) * xt.stride[2] + d) * ES;
          va[u] = __ldcs((const uint4 *)row);
          if (second) vb[u] = __ldcs((const uint4 *)(row + second_bytes));
        }
      }
    };
    // With rows read from memory the first heads' loads go out before the positions are read: they do not depend
    // on them (decode latency). Computed rows (calls into the exact sincos) would hold them across calls: spills.
    if (VEC_ROWS) load_heads(h0);
    int64_t ids[ROTARY_MAX_STREAMS];
    if (!rc_token_ids(p, b, s, ids)) {
      if (lane == 0 && group == 0 && plan.flags) atomicOr((int *)plan.flags, ROTARY_CUDA_FLAG_POSITION);
      continue;
    }
    float c[NP], sn[NP];
    if (rot) rc_load_cos_sin<NP, VEC_ROWS>(p, t, ids, (uint32_t)lane * NP, c, sn);
    if (!VEC_ROWS) load_heads(h0);
    for (uint64_t h = h0;;) {
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (h + u >= h1) continue;
        char *row = out + ((int64_t)(h + u) * xt.out_stride[2] + d) * ES;
        if (!rot) {
          __stcs((uint4 *)row, va[u]);
          continue;
        }
        float fa[V];
        rc_unpack<DT>(va[u], fa);
        if (INTERLEAVED) {
#pragma unroll
          for (int k = 0; k < NP; k++) rc_rotate_pair(fa[2 * k], fa[2 * k + 1], c[k], sn[k], &fa[2 * k], &fa[2 * k + 1]);
          __stcs((uint4 *)row, rc_pack<DT>(fa));
        } else {
          float fb[V];
          rc_unpack<DT>(vb[u], fb);
#pragma unroll
          for (int k = 0; k < NP; k++) rc_rotate_pair(fa[k], fb[k], c[k], sn[k], &fa[k], &fb[k]);
          __stcs((uint4 *)row, rc_pack<DT>(fa));
          __stcs((uint4 *)(row + second_bytes), rc_pack<DT>(fb));
        }
      }
      h += U;
      if (h >= h1) break;
      load_heads(h);
    }
  }
}

// Whether a lane's cos/sin (w floats at a time, lanes' first frequencies multiples of w) can be read with w-float
// vector loads: one id per token and a table whose rows and sin halves keep the alignment, or caller rows whose
// pointers and stride do. Several streams and table-free rows go frequency by frequency.
inline bool rc_vec_rows(const rotary_cuda_positions &p, uint32_t w) {
  if (p.mode == ROTARY_POSITIONS_COS_SIN)
    return ((((uintptr_t)p.cos | (uintptr_t)p.sin) & (w * sizeof(float) - 1)) | (p.row_stride % w)) == 0;
  return p.table && p.n_ids == 1 && p.table_row_floats % w == 0 && p.table_sin_offset % w == 0;
}

// Threads of work with `g` heads per group.
inline uint64_t rc_vector_total(const rotary_cuda_rotate_plan &plan, uint64_t lanes, uint64_t g, uint64_t *q_groups,
                         uint64_t *groups) {
  *q_groups = (plan.t[0].heads + g - 1) / g;
  *groups = *q_groups + (plan.t[1].heads + g - 1) / g;
  return plan.tokens * *groups * lanes;
}

// The work split of a vector launch for elements of V per vector.
inline rc_vector_shape rc_vector_plan_shape(const rotary_cuda_rotate_plan &plan, uint32_t V) {
  rc_vector_shape sh;
  sh.rot_lanes = plan.interleaved ? plan.rotary_dim / V : plan.rotary_dim / 2 / V;
  const int copy = plan.t[0].copy_tail || (plan.t[1].heads && plan.t[1].copy_tail);
  sh.lanes = sh.rot_lanes + (copy ? (plan.head_dim - plan.rotary_dim) / V : 0);
  // Heads per thread: as many as keep at least one full wave of threads (1024 per multiprocessor), so that the
  // cos/sin row is reused and several loads are in flight; rows computed per call (table-free) favour more.
  const uint64_t sms = (uint64_t)(plan.sm_count > 0 ? plan.sm_count : 1);
  const uint64_t target = sms * 1024u;
  const int computed = plan.pos.mode != ROTARY_POSITIONS_COS_SIN && !plan.pos.table;
  uint64_t g = computed ? 64 : 8;
  for (; g > 1; g /= 2) {
    uint64_t qg, gr;
    if (rc_vector_total(plan, sh.lanes, g, &qg, &gr) >= target) break;
  }
  sh.per_group = g;
  sh.total = rc_vector_total(plan, sh.lanes, g, &sh.q_groups, &sh.groups);
  return sh;
}

}  // namespace rc_vector

#endif  // ROTARY_ROTATE_VECTOR_CUH
