/* cuda_pointers.h: the host checks of a CUDA call: the current device is the rope's, and it can address every pointer. */
#ifndef ROTARY_CUDA_POINTERS_H
#define ROTARY_CUDA_POINTERS_H

#include <stdint.h>

#include "rotary.h"

/* DEVICE unless the calling thread's current device is `device` (the rope's); clears the error a failed
 * cudaGetDevice may raise. */
rotary_status rotary_cuda_check_device(int device);

/* Room a caller leaves in its pointer list for what rotary_cuda_check_pointers appends (positions, flags). */
#define ROTARY_CUDA_POINTERS_APPENDED 3

/* Appends the position arrays of `positions` (by mode) and flags (when not NULL) to ptrs[0 .. *n), which has room
 * for ROTARY_CUDA_POINTERS_APPENDED more, then checks every entry: device memory of `device`, managed memory, or
 * host memory mapped into the device's address space (cudaPointerGetAttributes; the error it may raise is
 * cleared). DEVICE for the first one that is not, or for flags not 4-byte aligned (atomicOr needs it). */
rotary_status rotary_cuda_check_pointers(const void **ptrs, int n, const rotary_positions *positions,
                                         const int32_t *flags, int device);

#endif /* ROTARY_CUDA_POINTERS_H */
