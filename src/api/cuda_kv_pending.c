/* cuda_kv_pending.c: rotary_cuda_kv_write in a build without the CUDA backend: UNSUPPORTED (as cuda_unsupported.c;
 * a CUDA build compiles backend/cuda/cuda_kv_write.c instead, src/CMakeLists.txt). */
#include "rotary.h"

rotary_status rotary_cuda_kv_write(const rotary_cuda_rope *rope, const rotary_kv_write_desc *desc, void *stream,
                                   int32_t *flags) {
  (void)stream;
  (void)flags;
  if (!rope || !desc) return ROTARY_ERR_NULL_POINTER;
  return ROTARY_ERR_UNSUPPORTED;
}
