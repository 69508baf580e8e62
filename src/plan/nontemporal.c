/* nontemporal.c: the default output size from which out-of-place calls store non-temporally (16 MiB). */
#include "nontemporal.h"

size_t rotary_nt_default(void) { return (size_t)16 << 20; }
