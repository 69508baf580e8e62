/* x86/sincos_avx2.c: the cos/sin rows kernel built for AVX2 + FMA. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_sincos_rows__avx2 */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "sincos.h"
#include "f64_avx2.h"
#include "sincos_template.h"
#endif
