/* x86/convert_avx2.c: the conversion kernels built for AVX2 + F16C; tails (n % 8) go through the scalar kernels. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "convert_kernels.h"
#include "fp8.h"
#include "isa_avx2.h"

/* ---- fp8 e4m3, lane by lane the integer steps of rotary_fp8_e4m3_from_f32 / rotary_fp8_e4m3_to_f32 (fp8.h) ---- */

/* 8 floats (already divided by the scale) to 8 codes, one per 32-bit lane. */
ROTARY_TARGET static inline __m256i fp8_encode8(__m256 q) {
  const __m256i u = _mm256_castps_si256(q);
  const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  /* normal results: rebias and round to 3 mantissa bits, ties to even (wraps below 2^-6: replaced below) */
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
  const __m256i nrm = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff - 0x3c000000)), odd), 20);
  /* above 448 (Inf and NaN too) nrm exceeds 0x7e: saturate; NaN lanes then add one, giving 0x7f */
  const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
  const __m256i big = _mm256_sub_epi32(_mm256_min_epu32(nrm, _mm256_set1_epi32(0x7e)), nan);
  /* below 2^-6: the fp32 addition of 2^14 rounds |q| to a multiple of 2^-9, the count in the low bits */
  const __m256i sub = _mm256_sub_epi32(
      _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(16384.0f))),
      _mm256_set1_epi32(0x46800000));
  const __m256i tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a);
  return _mm256_or_si256(_mm256_blendv_epi8(big, sub, tiny), sign);
}

/* x / scale as the scalar code computes it (a multiply where rotary_fp8_scale_inverts allows it, fp8.h). */
typedef struct fp8_div {
  __m256 by;
  int mul;
} fp8_div;

ROTARY_TARGET static inline fp8_div fp8_div_init(float scale) {
  fp8_div d;
  d.mul = rotary_fp8_scale_inverts(scale);
  d.by = _mm256_set1_ps(d.mul ? 1.0f / scale : scale);
  return d;
}

/* The common case, 8 lanes with no NaN and |q| >= 2^-6: the magnitude's code (clamped to 448 first), no sign. */
ROTARY_TARGET static inline __m256i fp8_normal8(__m256i a) {
  const __m256i c = _mm256_min_epu32(a, _mm256_set1_epi32(0x43e00000));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(c, 20), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(c, _mm256_set1_epi32(0x7ffff - 0x3c000000)), odd), 20);
}

/* 32 codes in order from four vectors of 8 (one code per 32-bit lane, in 0 .. 0xff): the packs work within 128-bit
 * lanes, so 4-byte groups come out as r0 lo, r1 lo, r2 lo, r3 lo, r0 hi, ... and one permute restores the order. */
ROTARY_TARGET static inline __m256i fp8_pack32(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
  const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 32 floats already divided: the fast path when no lane is NaN or below 2^-6 (tested for the four vectors at once:
 * their unsigned minimum and one unordered compare per two vectors); signs come from packing the float bits with
 * signed saturation (a negative word stays negative). Otherwise the full per-lane path. */
ROTARY_TARGET static inline __m256i fp8_encode32(__m256 q0, __m256 q1, __m256 q2, __m256 q3) {
  const __m256i abs = _mm256_set1_epi32(0x7fffffff);
  const __m256i u0 = _mm256_castps_si256(q0), u1 = _mm256_castps_si256(q1);
  const __m256i u2 = _mm256_castps_si256(q2), u3 = _mm256_castps_si256(q3);
  const __m256i a0 = _mm256_and_si256(u0, abs), a1 = _mm256_and_si256(u1, abs);
  const __m256i a2 = _mm256_and_si256(u2, abs), a3 = _mm256_and_si256(u3, abs);
  const __m256i lo = _mm256_min_epu32(_mm256_min_epu32(a0, a1), _mm256_min_epu32(a2, a3));
  const __m256 nan = _mm256_or_ps(_mm256_cmp_ps(q0, q1, _CMP_UNORD_Q), _mm256_cmp_ps(q2, q3, _CMP_UNORD_Q));
  const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), lo), _mm256_castps_si256(nan));
  if (__builtin_expect(!_mm256_testz_si256(bad, bad), 0))
    return fp8_pack32(fp8_encode8(q0), fp8_encode8(q1), fp8_encode8(q2), fp8_encode8(q3));
  const __m256i mag = fp8_pack32(fp8_normal8(a0), fp8_normal8(a1), fp8_normal8(a2), fp8_normal8(a3));
  const __m256i sign = _mm256_packs_epi16(_mm256_packs_epi32(u0, u1), _mm256_packs_epi32(u2, u3));
  const __m256i sign_ordered = _mm256_permutevar8x32_epi32(sign, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_or_si256(mag, _mm256_and_si256(sign_ordered, _mm256_set1_epi8((char)0x80)));
}

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
