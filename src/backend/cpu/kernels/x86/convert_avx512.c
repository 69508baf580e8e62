/* x86/convert_avx512.c: the fp8 encoders built for AVX-512 F/BW/VL: 16 lanes a step, no branch per block, masked tails. */
/* Defines rotary_f32_to_fp8_convert__avx512, rotary_bf16_to_fp8_convert__avx512, rotary_f16_to_fp8_convert__avx512
 * and their streaming variants rotary_f32_to_fp8_convert__avx512_nt, rotary_bf16_to_fp8_convert__avx512_nt,
 * rotary_f16_to_fp8_convert__avx512_nt. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "convert_kernels.h"
#include "fp8_avx512.h"

/* The loop for one scale: x * (1 / scale) where rotary_fp8_scale_inverts allows it (fp8.h), x / scale otherwise. */
__attribute__((always_inline)) ROTARY_TARGET static inline void fp8_encode_scaled(const void *src, void *dst,
                                                                                  size_t n, float scale,
                                                                                  const int from, const int nt) {
  if (rotary_fp8_scale_inverts(scale))
    fp8_encode_rows(src, dst, n, _mm512_set1_ps(1.0f / scale), from, 1, nt);
  else
    fp8_encode_rows(src, dst, n, _mm512_set1_ps(scale), from, 0, nt);
}

void rotary_f32_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f32_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_F32, 0);
}

/* bf16 -> f32 is exact (a bit move), so encoding the widened values gives the bits of bf16 -> f32 -> fp8. */
void rotary_bf16_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_bf16_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_BF16, 0);
}

/* f16 -> f32 is exact (F16C quiets a signalling NaN, which encodes as any NaN does). */
void rotary_f16_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f16_to_fp8_convert__avx512(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_F16, 0);
}
/* The same codes, the output's whole 64-byte lines streamed (fp8_encode_rows). */
void rotary_f32_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f32_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_F32, 1);
}
void rotary_bf16_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_bf16_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_BF16, 1);
}
void rotary_f16_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f16_to_fp8_convert__avx512_nt(const void *in, void *out, size_t n, float scale) {
  fp8_encode_scaled(in, out, n, scale, FROM_F16, 1);
}
#endif
