/* arm/sincos_neon.c: the cos/sin rows kernel built for aarch64 NEON. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_sincos_rows__neon */
#if defined(__aarch64__)
#include "sincos.h"
#include "f64_neon.h"
#include "sincos_template.h"
#endif
