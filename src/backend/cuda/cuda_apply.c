/* cuda_apply.c: rotary_cuda_apply (placeholder until the rotate kernels land). */
#include "rotary.h"

rotary_status rotary_cuda_apply(const rotary_cuda_rope *rope, const rotary_apply_desc *desc, void *stream,
                                int32_t *flags) {
  (void)stream;
  (void)flags;
  if (!rope || !desc) return ROTARY_ERR_NULL_POINTER;
  return ROTARY_ERR_UNSUPPORTED;
}
