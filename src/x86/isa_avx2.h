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

/* W f16 values <-> floats; F16C rounds to nearest even exactly like the scalar conversion. */
#define rv_load_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define rv_store_f16(p, v) \
  _mm_storeu_si128((__m128i *)(void *)(p), _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))

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
