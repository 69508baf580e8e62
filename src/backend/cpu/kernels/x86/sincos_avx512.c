/* x86/sincos_avx512.c: the cos/sin rows kernel built for AVX-512 F. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "sincos.h"
#include "isa64_avx512.h"
#include "sincos_template.h"
#endif
