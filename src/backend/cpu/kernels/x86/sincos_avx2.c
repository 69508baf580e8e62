/* x86/sincos_avx2.c: the cos/sin rows kernel built for AVX2 + FMA. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "sincos.h"
#include "isa64_avx2.h"
#include "sincos_template.h"
#endif
