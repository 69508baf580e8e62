// rotate_vector.cu: the launch of the vector rotation kernel (rotate_vector.cuh): its work split and grid.
#include <stdint.h>

#include "rotate_kernels.cuh"
#include "rotate_dense.cuh"
#include "rotate_vector.cuh"

namespace {

using namespace rc_vector;

template <int DT>
cudaError_t rc_launch_vector_dtype(const rotary_cuda_rotate_plan &plan, cudaStream_t stream) {
  constexpr uint32_t V = rc_vec<DT>::V;
  const rc_vector_shape sh = rc_vector_plan_shape(plan, V);
  const uint64_t sms = (uint64_t)(plan.sm_count > 0 ? plan.sm_count : 1);
  const uint64_t want = (sh.total + kThreads - 1) / kThreads, cap = sms * 16u;
  const unsigned blocks = (unsigned)(want < cap ? want : cap);
  constexpr int NP_H = V, NP_I = V / 2;  // pairs per lane: half, interleaved
  const uint32_t w = (uint32_t)(plan.interleaved ? rc_row_vec<NP_I>::W : rc_row_vec<NP_H>::W);
  const bool vec_rows = rc_vec_rows(plan.pos, w);
  const int lane_bits = rc_dense::rc_dense_lane_bits(plan, V, vec_rows);
  if (lane_bits >= 0) {
    int per_sm = 0;  // resident blocks per multiprocessor: the grid is one full wave at most, striding over tokens
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, plan.interleaved
                                                                   ? rc_dense::rc_rotate_dense<DT, true>
                                                                   : rc_dense::rc_rotate_dense<DT, false>,
                                                      rc_dense::kThreads, 0) != cudaSuccess ||
        per_sm < 1)
      per_sm = 1;
    const uint64_t wave = sms * (uint64_t)per_sm;
    const unsigned grid = (unsigned)(plan.tokens < wave ? plan.tokens : wave);
    if (plan.interleaved)
      rc_dense::rc_rotate_dense<DT, true><<<grid, rc_dense::kThreads, 0, stream>>>(plan, (uint32_t)lane_bits);
    else
      rc_dense::rc_rotate_dense<DT, false><<<grid, rc_dense::kThreads, 0, stream>>>(plan, (uint32_t)lane_bits);
    return cudaGetLastError();
  }
  if (vec_rows) {
    if (plan.interleaved)
      rc_rotate_vector<DT, true, true><<<blocks, kThreads, 0, stream>>>(plan, sh);
    else
      rc_rotate_vector<DT, false, true><<<blocks, kThreads, 0, stream>>>(plan, sh);
  } else {
    if (plan.interleaved)
      rc_rotate_vector<DT, true, false><<<blocks, kThreads, 0, stream>>>(plan, sh);
    else
      rc_rotate_vector<DT, false, false><<<blocks, kThreads, 0, stream>>>(plan, sh);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t rc_launch_rotate_vector(const rotary_cuda_rotate_plan &plan, cudaStream_t stream) {
  switch (plan.t[0].dtype) {
    case ROTARY_F32: return rc_launch_vector_dtype<ROTARY_F32>(plan, stream);
    case ROTARY_F16: return rc_launch_vector_dtype<ROTARY_F16>(plan, stream);
    default: return rc_launch_vector_dtype<ROTARY_BF16>(plan, stream);
  }
}
