/* x86/rotate_avx2.c: the x86 kernels built for AVX2 + FMA + F16C. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "isa_avx2.h"
#include "rotate_instances.h"
#endif
