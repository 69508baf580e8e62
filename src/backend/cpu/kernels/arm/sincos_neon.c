/* arm/sincos_neon.c: the cos/sin rows kernel built for aarch64 NEON. */
#if defined(__aarch64__)
#include "sincos.h"
#include "isa64_neon.h"
#include "sincos_template.h"
#endif
