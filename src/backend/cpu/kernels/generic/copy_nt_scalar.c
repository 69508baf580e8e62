/* generic/copy_nt_scalar.c: the portable streaming copy: memcpy (no non-temporal stores without an ISA's own). */
#include <string.h>

#include "copy_kernels.h"

void rotary_copy_nt__scalar(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
