/* cuda_pointers.c: the host checks shared by the CUDA calls: the current device, and every pointer addressable. */
#include "cuda_pointers.h"

#include <cuda_runtime_api.h>
#include <string.h>

#include "check.h"

/* Nonzero when device `device` can address p. */
static int device_addressable(const void *p, int device) {
  struct cudaPointerAttributes a;
  memset(&a, 0, sizeof a);
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  switch (a.type) {
    case cudaMemoryTypeDevice: return a.device == device;
    case cudaMemoryTypeManaged: return 1;
    case cudaMemoryTypeHost: return a.devicePointer != NULL;
    default: return 0;
  }
}

rotary_status rotary_cuda_check_device(int device) {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) {
    (void)cudaGetLastError();
    return ROTARY_ERR_DEVICE;
  }
  return current == device ? ROTARY_OK : ROTARY_ERR_DEVICE;
}

rotary_status rotary_cuda_check_pointers(const void **ptrs, int n, const rotary_positions *positions,
                                         const int32_t *flags, int device) {
  switch (positions->mode) {
    case ROTARY_POSITIONS_OFFSET: break;
    case ROTARY_POSITIONS_OFFSETS: ptrs[n++] = positions->offsets; break;
    case ROTARY_POSITIONS_COS_SIN:
      ptrs[n++] = positions->cos;
      ptrs[n++] = positions->sin;
      break;
    default: ptrs[n++] = positions->ids; break; /* IDS_*, STREAMS_* */
  }
  if (flags) {
    ROTARY_RETURN_IF(((uintptr_t)flags & (sizeof *flags - 1)) != 0, ROTARY_ERR_DEVICE);
    ptrs[n++] = flags;
  }
  for (int i = 0; i < n; i++) ROTARY_RETURN_IF(!device_addressable(ptrs[i], device), ROTARY_ERR_DEVICE);
  return ROTARY_OK;
}
