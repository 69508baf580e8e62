// rotate_general.cu: the launch of the general rotation kernel (rotate_general.cuh): a block per token.
#include <stdint.h>

#include "rotate_general.cuh"
#include "rotate_kernels.cuh"

cudaError_t rc_launch_rotate_general(const rotary_cuda_rotate_plan &plan, cudaStream_t stream) {
  const uint64_t max_blocks = (uint64_t)(plan.sm_count > 0 ? plan.sm_count : 1) * 16u;
  const uint64_t blocks = plan.tokens < max_blocks ? plan.tokens : max_blocks;
  rc_general::rc_rotate_general<<<(unsigned)blocks, rc_general::kThreads, 0, stream>>>(plan);
  return cudaGetLastError();
}
