/* simd/attn_common.h: what every ISA's attention kernels share: the cache dtype constants and the exact tail decode. */
#ifndef ROTARY_ATTN_COMMON_H
#define ROTARY_ATTN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "fp8.h"

/* Cache dtypes as compile-time constants of the kernels' shared bodies (each kernel inlines them with its own). */
enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_FP8 = 3 };
static const size_t dt_size[4] = {4, 2, 2, 1};

/* Elements [0, t) of a row (t < width) decoded exactly (the scalar rule) into `width` floats, zeros after: the
 * pieces of a row shorter than one vector step. */
static inline void attn_dec_tail(int dt, const unsigned char *p, size_t t, float scale, float *out, size_t width) {
  for (size_t i = 0; i < width; i++) out[i] = 0.0f;
  for (size_t i = 0; i < t; i++) {
    uint16_t h;
    if (dt == DT_F32) memcpy(&out[i], p + 4 * i, 4);
    else if (dt == DT_FP8) out[i] = rotary_fp8_e4m3_decode(p[i], scale);
    else {
      memcpy(&h, p + 2 * i, 2);
      out[i] = dt == DT_F16 ? rotary_f16_to_f32_quiet(h) : rotary_bf16_to_f32(h);
    }
  }
}

#endif /* ROTARY_ATTN_COMMON_H */
