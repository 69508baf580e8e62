/* cuda_rotate_plan.h: one rotary_cuda_apply launch as the kernels take it (plain C: built on the host, by value). */
#ifndef ROTARY_CUDA_ROTATE_PLAN_H
#define ROTARY_CUDA_ROTATE_PLAN_H

#include <stdint.h>

#include "cuda_positions.h"
#include "rotary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One tensor: element (b, s, h, d) at in + (b * stride[0] + s * stride[1] + h * stride[2] + d) * element size. */
typedef struct rotary_cuda_rotate_tensor {
  const void *in;
  void *out;
  int64_t stride[3];     /* batch, seq, head, of the input, in elements */
  int64_t out_stride[3]; /* of the output */
  uint64_t heads;        /* 0: the tensor is left out (k only) */
  int32_t dtype;         /* rotary_dtype: F32, F16 or BF16 */
  int32_t copy_tail;     /* out of place with head_dim > rotary_dim: dims from rotary_dim on are copied bit-exact */
} rotary_cuda_rotate_tensor;

/* Which kernel a launch runs. */
typedef enum rotary_cuda_rotate_path {
  ROTARY_CUDA_ROTATE_GENERAL = 0, /* any strides, alignment, dtypes: element by element, a block per token */
  ROTARY_CUDA_ROTATE_VECTOR = 1   /* 16-byte loads and stores; chosen on the host (cuda_apply.c) when q and k (when
                                     present) have one dtype; every head row of every input and output is
                                     16-byte aligned (pointers 16-byte aligned, each stride of a dimension with more
                                     than one index a multiple of 16 bytes); head_dim is a multiple of the vector
                                     width V (16 bytes of elements) and rotary_dim of 2V (half pairing: each half is
                                     whole vectors) or of V (interleaved) */
} rotary_cuda_rotate_path;

typedef struct rotary_cuda_rotate_plan {
  rotary_cuda_positions pos;
  rotary_cuda_rotate_tensor t[2]; /* q, k */
  uint32_t head_dim, rotary_dim;
  int32_t interleaved;            /* ROTARY_PAIRING_INTERLEAVED, else half */
  int32_t path;                   /* rotary_cuda_rotate_path */
  uint64_t tokens;                /* batch * seq_len */
  int32_t *flags;                 /* device int32 for ROTARY_CUDA_FLAG_POSITION, or NULL */
  int32_t sm_count;               /* multiprocessors of the device: sizes the grid */
} rotary_cuda_rotate_plan;

/* Fills *out for a call that passed every host check (cuda_apply.c): positions, tensors, the path, the rope's
 * sm_count for the grid. */
void rotary_cuda_rotate_plan_build(rotary_cuda_rotate_plan *out, const rotary_cuda_rope *rope,
                                   const rotary_apply_desc *desc, int32_t *flags);

/* Enqueues the plan's kernel on stream (a cudaStream_t). ROTARY_OK, or ROTARY_ERR_DEVICE when the launch fails. */
rotary_status rotary_cuda_rotate_launch(const rotary_cuda_rotate_plan *plan, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* ROTARY_CUDA_ROTATE_PLAN_H */
