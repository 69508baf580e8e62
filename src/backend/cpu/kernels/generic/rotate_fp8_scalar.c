/* generic/rotate_fp8_scalar.c: the portable rotate-to-fp8 kernels, the reference the vector ones match bit for bit. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_f32_rotate_half_to_fp8__scalar rotary_f32_rotate_interleaved_to_fp8__scalar
 * rotary_f16_rotate_half_to_fp8__scalar rotary_f16_rotate_interleaved_to_fp8__scalar
 * rotary_bf16_rotate_half_to_fp8__scalar rotary_bf16_rotate_interleaved_to_fp8__scalar */
#include <stdint.h>

#include "rotate_fp8_kernels.h"

/* Every head: the pairs rotated by rotary_rotate_pair, the rest as it is, each element encoded (fp8.h). */
static void rotate_fp8_rows(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads,
                            size_t head_dim, size_t rotary_dim, const float *cos, const float *sin, float scale,
                            rotary_dtype d, int interleaved) {
  const size_t esize = d == ROTARY_F32 ? 4 : 2, half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const unsigned char *x = (const unsigned char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    uint8_t *y = (uint8_t *)out + (ptrdiff_t)h * out_stride;
    for (size_t j = 0; j < half; j++)
      rotary_rotate_pair_to_fp8(x, y, interleaved ? 2 * j : j, interleaved ? 2 * j + 1 : j + half, cos[j], sin[j],
                                scale, d);
    for (size_t i = rotary_dim; i < head_dim; i++) y[i] = rotary_fp8_e4m3_encode(rotary_fp8_row_elem(x, i, d), scale);
  }
}

#define RF8_SCALAR(dtype, DTYPE, pairing, interleaved)                                                               \
  void rotary_##dtype##_rotate_##pairing##_to_fp8__scalar(const void *in, ptrdiff_t in_stride, void *out,           \
                                                          ptrdiff_t out_stride, size_t n_heads, size_t head_dim,    \
                                                          size_t rotary_dim, const float *cos, const float *sin,    \
                                                          float scale) {                                            \
    rotate_fp8_rows(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, scale, ROTARY_##DTYPE, \
                    interleaved);                                                                                   \
  }
RF8_SCALAR(f32, F32, half, 0)
RF8_SCALAR(f32, F32, interleaved, 1)
RF8_SCALAR(f16, F16, half, 0)
RF8_SCALAR(f16, F16, interleaved, 1)
RF8_SCALAR(bf16, BF16, half, 0)
RF8_SCALAR(bf16, BF16, interleaved, 1)
