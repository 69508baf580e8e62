/* x86/isa_avx2.h: the vector vocabulary of the x86 kernel template for AVX2 + FMA + F16C (8 floats). */
#include <immintrin.h>

#define ROTARY_ISA_NAME avx2
#define ROTARY_TARGET __attribute__((target("avx2,fma,f16c")))
#define ROTARY_W 8

typedef __m256 rv_f32;

#define rv_loadu(p) _mm256_loadu_ps(p)
#define rv_storeu(p, v) _mm256_storeu_ps((p), (v))
#define rv_mul(a, b) _mm256_mul_ps((a), (b))
#define rv_fmadd(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define rv_fmsub(a, b, c) _mm256_fmsub_ps((a), (b), (c))
#define rv_dup_even(v) _mm256_moveldup_ps(v)
#define rv_dup_odd(v) _mm256_movehdup_ps(v)
/* [a0 b0 a1 b1 ...] over a's and b's first (lo) or second (hi) half of lanes; -v by its sign bit (keeps -0). */
#define rv_zip_lo(a, b) _mm256_permute2f128_ps(_mm256_unpacklo_ps((a), (b)), _mm256_unpackhi_ps((a), (b)), 0x20)
#define rv_zip_hi(a, b) _mm256_permute2f128_ps(_mm256_unpacklo_ps((a), (b)), _mm256_unpackhi_ps((a), (b)), 0x31)
#define rv_neg(v) _mm256_xor_ps((v), _mm256_set1_ps(-0.0f))
/* Nonzero when any lane of the four vectors is NaN. */
ROTARY_TARGET static inline int rv_any_nan4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 m = _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, d, _CMP_UNORD_Q));
  return !_mm256_testz_ps(m, m);
}

/* W f16 values <-> floats; F16C rounds to nearest even exactly like the scalar conversion. */
#define rv_load_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define rv_store_f16(p, v) \
  _mm_storeu_si128((__m128i *)(void *)(p), _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))

/* Non-temporal stores for outputs too large to stay in cache: they skip reading the destination
 * line before writing it. The instructions need aligned addresses; unaligned ones take an ordinary store. */
#define ROTARY_HAS_NT_STORES 1
ROTARY_TARGET static inline void rv_store_nt(float *p, __m256 v) {
  if (((uintptr_t)p & 31) == 0) _mm256_stream_ps(p, v);
  else _mm256_storeu_ps(p, v);
}
ROTARY_TARGET static inline void rv_store_nt_f16(uint16_t *p, __m256 v) {
  const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (((uintptr_t)p & 15) == 0) _mm_stream_si128((__m128i *)(void *)p, h);
  else _mm_storeu_si128((__m128i *)(void *)p, h);
}

/* 16 bf16 values as two vectors in the lane order of the unpack/pack instructions, which never cross 128-bit lanes:
 * lo holds elements 0-3 and 8-11, hi holds 4-7 and 12-15 (RT_SLOT below). Half the shuffles of one-vector
 * conversions: about 1.7x faster for bf16 kernels, which are otherwise bound by the conversions. */
#define ROTARY_HAS_BF16_PAIRS 1
#define rv_bf16_slot(j) ((((j) >> 2) & 1) * 8 + ((j) >> 3) * 4 + ((j) & 3))

/* The same order for 16 floats (cos/sin arranged once per call): two lane swaps. */
ROTARY_TARGET static inline void rv_arrange2_bf16(float *dst, const float *src) {
  const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(a, b, 0x20));
  _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(a, b, 0x31));
}

ROTARY_TARGET static inline void rv_load2_bf16(const uint16_t *p, __m256 *lo, __m256 *hi) {
  const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p), z = _mm256_setzero_si256();
  *lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, v));
  *hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, v));
}

/* Round to nearest even on the bit pattern, result in the low 16 bits of each 32-bit lane. */
ROTARY_TARGET static inline __m256i rv_round_bf16(__m256i u) {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
}

/* NaNs (rare) are quieted instead of rounded, as the scalar conversion does. Out of line and cold, so the hot
 * loop keeps no value alive for it. */
__attribute__((noinline, cold)) ROTARY_TARGET static __m256i rv_nan_fix_bf16(__m256 v, __m256i r) {
  const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(_mm256_castps_si256(v), 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(r, q, _mm256_castps_si256(nan));
}

/* Two blocks at once (the a and b halves of a head): one NaN test for four vectors. */
ROTARY_TARGET static inline void rv_store2x2_bf16(uint16_t *p, __m256 lo, __m256 hi, uint16_t *q, __m256 lo2,
                                                  __m256 hi2) {
  __m256i r0 = rv_round_bf16(_mm256_castps_si256(lo)), r1 = rv_round_bf16(_mm256_castps_si256(hi));
  __m256i r2 = rv_round_bf16(_mm256_castps_si256(lo2)), r3 = rv_round_bf16(_mm256_castps_si256(hi2));
  const __m256 any_nan = _mm256_or_ps(_mm256_cmp_ps(lo, hi, _CMP_UNORD_Q), _mm256_cmp_ps(lo2, hi2, _CMP_UNORD_Q));
  if (__builtin_expect(!_mm256_testz_ps(any_nan, any_nan), 0)) {
    r0 = rv_nan_fix_bf16(lo, r0);
    r1 = rv_nan_fix_bf16(hi, r1);
    r2 = rv_nan_fix_bf16(lo2, r2);
    r3 = rv_nan_fix_bf16(hi2, r3);
  }
  _mm256_storeu_si256((__m256i *)(void *)p, _mm256_packus_epi32(r0, r1));
  _mm256_storeu_si256((__m256i *)(void *)q, _mm256_packus_epi32(r2, r3));
}

/* Both vectors rounded (bf16 in the low 16 bits of each 32-bit lane), with one NaN test for the two. */
ROTARY_TARGET static inline void rv_round2_bf16(__m256 lo, __m256 hi, __m256i *r0, __m256i *r1) {
  *r0 = rv_round_bf16(_mm256_castps_si256(lo));
  *r1 = rv_round_bf16(_mm256_castps_si256(hi));
  const __m256 any_nan = _mm256_cmp_ps(lo, hi, _CMP_UNORD_Q);
  if (__builtin_expect(!_mm256_testz_ps(any_nan, any_nan), 0)) {
    *r0 = rv_nan_fix_bf16(lo, *r0);
    *r1 = rv_nan_fix_bf16(hi, *r1);
  }
}

ROTARY_TARGET static inline void rv_store2_bf16(uint16_t *p, __m256 lo, __m256 hi) {
  __m256i r0, r1;
  rv_round2_bf16(lo, hi, &r0, &r1);
  _mm256_storeu_si256((__m256i *)(void *)p, _mm256_packus_epi32(r0, r1));
}

/* bf16 -> f32 is a byte move: both 128-bit lanes get the 8 values, and one shuffle puts lane 0's first four and
 * lane 1's last four into the high halves of 32-bit slots (2 instructions instead of widen + shift). */
ROTARY_TARGET static inline __m256 rv_load_bf16(const uint16_t *p) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)p));
  const __m256i spread = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7,
                                          -1, -1, 8, 9, -1, -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15);
  return _mm256_castsi256_ps(_mm256_shuffle_epi8(v, spread));
}

/* Round to nearest even on the bit pattern (as the scalar code does; no DAZ/FTZ), NaNs quieted. The NaN fix-up is
 * a blend only on the rare vectors that hold one; the high halves are gathered by a shuffle and a permute. */
ROTARY_TARGET static inline void rv_store_bf16(uint16_t *p, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
  const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  if (__builtin_expect(!_mm256_testz_ps(nan, nan), 0))
    r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x400000)), _mm256_castps_si256(nan));
  const __m256i gather = _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1,
                                          2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
  r = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(r, gather), 0x08);
  _mm_storeu_si128((__m128i *)(void *)p, _mm256_castsi256_si128(r));
}

/* Interleaved pairs split in place: a bf16 pair is one 32-bit word, so its first element is the word shifted up
 * and its second the word's high half (no shuffle). a holds the first element of 8 pairs, b the second. */
#define ROTARY_HAS_BF16_PAIR_SPLIT 1
ROTARY_TARGET static inline void rv_pload_bf16(const uint16_t *p, __m256 *a, __m256 *b) {
  const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
  *a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  *b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u)));
}

ROTARY_TARGET static inline void rv_pstore_bf16(uint16_t *p, __m256 a, __m256 b) {
  __m256i r0, r1;
  rv_round2_bf16(a, b, &r0, &r1);
  _mm256_storeu_si256((__m256i *)(void *)p, _mm256_or_si256(r0, _mm256_slli_epi32(r1, 16)));
}
