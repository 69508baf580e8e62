/* cuda_unsupported.c: the rotary_cuda_* entry points of a build without the CUDA backend (ROTARY_CUDA off). */
#include "rotary.h"

int rotary_cuda_device_count(void) { return 0; }

rotary_status rotary_cuda_rope_create(const rotary_rope *rope, int device, rotary_cuda_rope **out) {
  (void)device;
  if (!rope || !out) return ROTARY_ERR_NULL_POINTER;
  return ROTARY_ERR_UNSUPPORTED;
}

void rotary_cuda_rope_destroy(rotary_cuda_rope *rope) { (void)rope; }

size_t rotary_cuda_rope_memory_bytes(const rotary_cuda_rope *rope) {
  (void)rope;
  return 0;
}

int rotary_cuda_rope_device(const rotary_cuda_rope *rope) {
  (void)rope;
  return -1;
}

rotary_status rotary_cuda_apply(const rotary_cuda_rope *rope, const rotary_apply_desc *desc, void *stream,
                                int32_t *flags) {
  (void)stream;
  (void)flags;
  if (!rope || !desc) return ROTARY_ERR_NULL_POINTER;
  return ROTARY_ERR_UNSUPPORTED;
}
