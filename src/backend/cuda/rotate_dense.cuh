// rotate_dense.cuh: the rotation kernel of the common case: a block per token, a thread per (head, 16-byte lane).
#ifndef ROTARY_ROTATE_DENSE_CUH
#define ROTARY_ROTATE_DENSE_CUH
#include <stdint.h>

#include "rotate_vector.cuh"

// The vector path's layout (cuda_rotate_plan.h) with rows read from memory (a table with one id per token, or
// aligned caller rows) and nothing to copy (in place, or rotary_dim == head_dim): the token's cos/sin slice is
// loaded once per thread and used for every head the thread rotates, few registers (a high occupancy hides the
// latency), the next head's loads in flight while the current one is rotated, and the first head's loads issued
// before the position is read (decode). Blocks stride over the tokens.
#ifndef ROTARY_CUDA_DENSE
#define ROTARY_CUDA_DENSE 0  // 1 sends the calls it can take to rc_rotate_dense (not yet run on a GPU)
#endif

namespace rc_dense {

constexpr int kThreads = 256;
constexpr int kMinBlocks = 4;  // blocks per multiprocessor the register budget must allow (64 registers)

template <int DT>
struct rc_vecs {
  uint4 a, b;  // half pairing: the vectors at d and d + rotary_dim/2; interleaved: a only
};

template <int DT, bool INTERLEAVED>
__global__ void __launch_bounds__(kThreads, kMinBlocks) rc_rotate_dense(const rotary_cuda_rotate_plan plan,
                                                                        const uint32_t lane_bits) {
  constexpr int V = rc_vector::rc_vec<DT>::V;
  constexpr int NP = INTERLEAVED ? V / 2 : V;  // pairs per thread
  constexpr int ES = DT == ROTARY_F32 ? 4 : 2;
  const rotary_cuda_positions &p = plan.pos;
  const uint32_t lane = threadIdx.x & ((1u << lane_bits) - 1u), step = kThreads >> lane_bits;
  const uint32_t hq = (uint32_t)plan.t[0].heads, heads = hq + (uint32_t)plan.t[1].heads;
  const int64_t d = (int64_t)lane * V;
  const int64_t second = (int64_t)(plan.rotary_dim / 2) * ES;
  for (uint64_t t = blockIdx.x; t < plan.tokens; t += gridDim.x) {
    uint64_t s;
    const uint64_t b = rc_vector::rc_divmod(t, p.seq_len, &s);
    // byte offsets of head h's vector in the input and the output
    auto offsets = [&](uint32_t h, const char **in, char **out) {
      const int ti = h >= hq;
      const rotary_cuda_rotate_tensor &x = plan.t[ti];
      const int64_t hh = (int64_t)(ti ? h - hq : h);
      *in = (const char *)x.in + ((int64_t)b * x.stride[0] + (int64_t)s * x.stride[1] + hh * x.stride[2] + d) * ES;
      *out = (char *)x.out + ((int64_t)b * x.out_stride[0] + (int64_t)s * x.out_stride[1] + hh * x.out_stride[2] + d) * ES;
    };
    auto load = [&](const char *in, rc_vecs<DT> &v) {
      v.a = __ldcs((const uint4 *)in);
      if (!INTERLEAVED) v.b = __ldcs((const uint4 *)(in + second));
    };
    uint32_t h = threadIdx.x >> lane_bits;
    const char *in = nullptr;
    char *out = nullptr;
    rc_vecs<DT> cur;
    if (h < heads) {  // independent of the position: in flight while it is read
      offsets(h, &in, &out);
      load(in, cur);
    }
    int64_t ids[ROTARY_MAX_STREAMS];
    if (!rc_token_ids(p, b, s, ids)) {
      if (threadIdx.x == 0 && plan.flags) atomicOr((int *)plan.flags, ROTARY_CUDA_FLAG_POSITION);
      continue;
    }
    float c[NP], sn[NP];
    rc_vector::rc_load_cos_sin<NP, true>(p, t, ids, lane * NP, c, sn);
    while (h < heads) {
      const uint32_t hn = h + step;
      const char *next_in = nullptr;
      char *next_out = nullptr;
      rc_vecs<DT> next;
      if (hn < heads) {
        offsets(hn, &next_in, &next_out);
        load(next_in, next);
      }
      float fa[V];
      rc_vector::rc_unpack<DT>(cur.a, fa);
      if (INTERLEAVED) {
#pragma unroll
        for (int k = 0; k < NP; k++) rc_rotate_pair(fa[2 * k], fa[2 * k + 1], c[k], sn[k], &fa[2 * k], &fa[2 * k + 1]);
        __stcs((uint4 *)out, rc_vector::rc_pack<DT>(fa));
      } else {
        float fb[V];
        rc_vector::rc_unpack<DT>(cur.b, fb);
#pragma unroll
        for (int k = 0; k < NP; k++) rc_rotate_pair(fa[k], fb[k], c[k], sn[k], &fa[k], &fb[k]);
        __stcs((uint4 *)out, rc_vector::rc_pack<DT>(fa));
        __stcs((uint4 *)(out + second), rc_vector::rc_pack<DT>(fb));
      }
      cur = next;
      out = next_out;
      h = hn;
    }
  }
}

// log2 of the threads per head (rotating lanes) when the dense kernel can run this plan, else -1.
inline int rc_dense_lane_bits(const rotary_cuda_rotate_plan &plan, uint32_t V, bool vec_rows) {
  if (!ROTARY_CUDA_DENSE || !vec_rows || plan.t[0].copy_tail || (plan.t[1].heads && plan.t[1].copy_tail)) return -1;
  const uint32_t lanes = plan.interleaved ? plan.rotary_dim / V : plan.rotary_dim / 2 / V;
  if (lanes == 0 || lanes > 32 || (lanes & (lanes - 1)) != 0) return -1;  // a power of two within a warp
  if (plan.t[0].heads + plan.t[1].heads > 0xffffffffu - kThreads) return -1;
  int bits = 0;
  while ((1u << bits) < lanes) bits++;
  return bits;
}

}  // namespace rc_dense

#endif  // ROTARY_ROTATE_DENSE_CUH
