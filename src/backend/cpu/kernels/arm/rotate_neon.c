/* arm/rotate_neon.c: the SIMD kernels built for aarch64 NEON. */
#if defined(__aarch64__)
#include "isa_neon.h"
#include "rotate_instances.h"
#endif
