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

#define rv_load_bf16(p) \
  _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))

/* Round to nearest even on the bit pattern (as the scalar code does; no DAZ/FTZ), NaNs quieted. */
ROTARY_TARGET static inline void rv_store_bf16(uint16_t *p, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  _mm_storeu_si128((__m128i *)(void *)p, _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}
