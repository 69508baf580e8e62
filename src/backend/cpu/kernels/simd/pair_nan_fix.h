/* simd/pair_nan_fix.h: a rotation result's NaN lanes replaced by rotary_pair_nan, for every SIMD rotation kernel. */
#ifndef ROTARY_PAIR_NAN_FIX_H
#define ROTARY_PAIR_NAN_FIX_H

#include <stddef.h>

#include "convert.h"

/* Needs the ISA vocabulary (x86/isa_*.h, arm/isa_neon.h) included first: rv_f32, rv_loadu, rv_storeu, ROTARY_W. */

/* y with every NaN lane replaced by rotary_pair_nan of that lane's x0 and x1. Rare (NaN or Inf data), so out of
 * line and cold: the hot loops keep nothing alive for it, and values go in and out by register. */
__attribute__((noinline, cold)) ROTARY_TARGET static rv_f32 rv_pair_nan_fix(rv_f32 x0, rv_f32 x1, rv_f32 y) {
  float a[ROTARY_W], b[ROTARY_W], v[ROTARY_W];
  rv_storeu(a, x0);
  rv_storeu(b, x1);
  rv_storeu(v, y);
  for (size_t j = 0; j < ROTARY_W; j++)
    if (v[j] != v[j]) v[j] = rotary_pair_nan(a[j], b[j]);
  return rv_loadu(v);
}

#endif /* ROTARY_PAIR_NAN_FIX_H */
