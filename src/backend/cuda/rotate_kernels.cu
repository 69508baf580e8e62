// rotate_kernels.cu: rotary_cuda_rotate_launch, the host entry of the rotation kernels (general or vector path).
#include <cuda_runtime.h>

#include "cuda_rotate_plan.h"
#include "rotate_kernels.cuh"

extern "C" rotary_status rotary_cuda_rotate_launch(const rotary_cuda_rotate_plan *plan, void *stream) {
  const cudaStream_t s = (cudaStream_t)stream;
  const cudaError_t e = plan->path == ROTARY_CUDA_ROTATE_VECTOR ? rc_launch_rotate_vector(*plan, s)
                                                                : rc_launch_rotate_general(*plan, s);
  return e == cudaSuccess ? ROTARY_OK : ROTARY_ERR_DEVICE;
}
