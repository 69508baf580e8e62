/* x86/convert_avx2.c: the conversion kernels built for AVX2 + F16C; tails (n % 8) go through the scalar kernels. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "convert_kernels.h"
#include "fp8_avx2.h"

/* ---- fp8 e4m3: encoding steps in fp8_avx2.h; decoding lane by lane as rotary_fp8_e4m3_to_f32 (fp8.h) ---- */

ROTARY_TARGET static inline __m256 fp8_div8(const unsigned char *p, fp8_div d) {
  const __m256 x = _mm256_loadu_ps((const float *)(const void *)p);
  return d.mul ? _mm256_mul_ps(x, d.by) : _mm256_div_ps(x, d.by);
}

void rotary_f32_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f32_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const unsigned char *src = in;
  unsigned char *dst = out;
  const fp8_div d = fp8_div_init(scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const unsigned char *p = src + 4 * i;
    const __m256i b = fp8_encode32(fp8_div8(p, d), fp8_div8(p + 32, d), fp8_div8(p + 64, d), fp8_div8(p + 96, d));
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), b);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i r = fp8_encode8(fp8_div8(src + 4 * i, d));
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storel_epi64((__m128i *)(void *)(dst + i), _mm_packus_epi16(w, w));
  }
  rotary_f32_to_fp8_convert__scalar(src + 4 * i, dst + i, n - i, scale);
}

/* 8 bf16 (f16 0) or f16 (f16 1) elements widened to f32 (exact; F16C quiets a signalling NaN, which encodes as any
 * NaN does) and divided as above: encoding them gives the bits of 16-bit -> f32 -> fp8. */
ROTARY_TARGET static inline __m256 fp8_div8_16bit(const uint16_t *p, fp8_div d, const int f16) {
  const __m256 x = f16 ? rv_load_f16(p) : rv_load_bf16(p);
  return d.mul ? _mm256_mul_ps(x, d.by) : _mm256_div_ps(x, d.by);
}

/* The 16-bit -> fp8 loop, specialized by its callers (f16 constant). */
__attribute__((always_inline)) ROTARY_TARGET static inline size_t fp8_encode_16bit(const uint16_t *src,
                                                                                   unsigned char *dst, size_t n,
                                                                                   float scale, const int f16) {
  const fp8_div d = fp8_div_init(scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i b = fp8_encode32(fp8_div8_16bit(src + i, d, f16), fp8_div8_16bit(src + i + 8, d, f16),
                                   fp8_div8_16bit(src + i + 16, d, f16), fp8_div8_16bit(src + i + 24, d, f16));
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), b);
  }
  return i; /* the tail goes to the scalar kernel */
}

void rotary_bf16_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_bf16_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const uint16_t *src = in;
  unsigned char *dst = out;
  const size_t i = fp8_encode_16bit(src, dst, n, scale, 0);
  rotary_bf16_to_fp8_convert__scalar(src + i, dst + i, n - i, scale);
}

void rotary_f16_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f16_to_fp8_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const uint16_t *src = in;
  unsigned char *dst = out;
  const size_t i = fp8_encode_16bit(src, dst, n, scale, 1);
  rotary_f16_to_fp8_convert__scalar(src + i, dst + i, n - i, scale);
}

/* 8 codes (one per 32-bit lane) to their values times scale; NaN codes give the quiet NaN with their sign. */
ROTARY_TARGET static inline __m256 fp8_decode8(__m256i b, __m256 scale) {
  const __m256i t = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f)), 20);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(b, 24), _mm256_set1_epi32((int)0x80000000u));
  const __m256 nrm = _mm256_castsi256_ps(_mm256_add_epi32(t, _mm256_set1_epi32(0x3c000000)));
  /* exponent field 0: 2^-6 (1 + m/8) - 2^-6 = m 2^-9, exact, with no subnormal operand (safe under DAZ) */
  const __m256 sub = _mm256_sub_ps(_mm256_castsi256_ps(_mm256_add_epi32(t, _mm256_set1_epi32(0x3c800000))),
                                   _mm256_set1_ps(0x1p-6f));
  const __m256 tiny = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x800000), t));
  const __m256 v = _mm256_or_ps(_mm256_blendv_ps(nrm, sub, tiny), _mm256_castsi256_ps(sign));
  const __m256 nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(0x7f00000)));
  const __m256 qnan = _mm256_or_ps(_mm256_castsi256_ps(sign), _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)));
  return _mm256_blendv_ps(_mm256_mul_ps(v, scale), qnan, nan);
}

void rotary_fp8_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_fp8_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const unsigned char *src = in;
  float *dst = out;
  const __m256 s = _mm256_set1_ps(scale);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
    _mm256_storeu_ps(dst + i, fp8_decode8(_mm256_cvtepu8_epi32(b), s));
    _mm256_storeu_ps(dst + i + 8, fp8_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)), s));
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(src + i));
    _mm256_storeu_ps(dst + i, fp8_decode8(_mm256_cvtepu8_epi32(b), s));
  }
  rotary_fp8_to_f32_convert__scalar(src + i, dst + i, n - i, scale);
}

/* ---- f16 and bf16: the vector conversions of isa_avx2.h (F16C quiets a signalling NaN, as the scalar kernel) ---- */

void rotary_f16_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f16_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const uint16_t *src = in;
  float *dst = out;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = rv_load_f16(src + i), b = rv_load_f16(src + i + 8);
    _mm256_storeu_ps(dst + i, a);
    _mm256_storeu_ps(dst + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, rv_load_f16(src + i));
  rotary_f16_to_f32_convert__scalar(src + i, dst + i, n - i, scale);
}

void rotary_f32_to_f16_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f32_to_f16_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const float *src = in;
  uint16_t *dst = out;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
    rv_store_f16(dst + i, a);
    rv_store_f16(dst + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) rv_store_f16(dst + i, _mm256_loadu_ps(src + i));
  rotary_f32_to_f16_convert__scalar(src + i, dst + i, n - i, scale);
}

void rotary_bf16_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_bf16_to_f32_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const uint16_t *src = in;
  float *dst = out;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = rv_load_bf16(src + i), b = rv_load_bf16(src + i + 8);
    _mm256_storeu_ps(dst + i, a);
    _mm256_storeu_ps(dst + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, rv_load_bf16(src + i));
  rotary_bf16_to_f32_convert__scalar(src + i, dst + i, n - i, scale);
}

void rotary_f32_to_bf16_convert__avx2(const void *in, void *out, size_t n, float scale) ROTARY_TARGET;
void rotary_f32_to_bf16_convert__avx2(const void *in, void *out, size_t n, float scale) {
  const float *src = in;
  uint16_t *dst = out;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i r0, r1;
    rv_round2_bf16(_mm256_loadu_ps(src + i), _mm256_loadu_ps(src + i + 8), &r0, &r1);
    /* the pack works within 128-bit lanes: 64-bit groups come out as a lo, b lo, a hi, b hi */
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xd8);
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), p);
  }
  for (; i + 8 <= n; i += 8) rv_store_bf16(dst + i, _mm256_loadu_ps(src + i));
  rotary_f32_to_bf16_convert__scalar(src + i, dst + i, n - i, scale);
}
#endif
