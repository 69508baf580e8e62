/* x86/rotate_avx512.c: the x86 kernels built for AVX-512 F/BW/VL. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "isa_avx512.h"
#include "rotate_instances.h"
#endif
