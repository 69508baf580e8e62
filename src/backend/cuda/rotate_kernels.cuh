// rotate_kernels.cuh: the launchers of the rotation kernels (general, vector), shared by the .cu files.
#ifndef ROTARY_ROTATE_KERNELS_CUH
#define ROTARY_ROTATE_KERNELS_CUH

#include <cuda_runtime.h>

#include "cuda_rotate_plan.h"

// Enqueue the kernel; the launch's error (cudaGetLastError).
cudaError_t rc_launch_rotate_general(const rotary_cuda_rotate_plan &plan, cudaStream_t stream);
cudaError_t rc_launch_rotate_vector(const rotary_cuda_rotate_plan &plan, cudaStream_t stream);

#endif  // ROTARY_ROTATE_KERNELS_CUH
