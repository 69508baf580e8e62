/* x86/isa_avx512.h: the vector vocabulary of the x86 kernel template for AVX-512 F/BW/VL (16 floats). */
#include <immintrin.h>

#define ROTARY_ISA_NAME avx512
#define ROTARY_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define ROTARY_W 16

typedef __m512 rv_f32;

#define rv_loadu(p) _mm512_loadu_ps(p)
#define rv_storeu(p, v) _mm512_storeu_ps((p), (v))
#define rv_mul(a, b) _mm512_mul_ps((a), (b))
#define rv_fmadd(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define rv_fmsub(a, b, c) _mm512_fmsub_ps((a), (b), (c))
#define rv_dup_even(v) _mm512_moveldup_ps(v)
#define rv_dup_odd(v) _mm512_movehdup_ps(v)
/* [a0 b0 a1 b1 ...] over a's and b's first (lo) or second (hi) half of lanes; -v by its sign bit (keeps -0). */
#define rv_zip_lo(a, b) \
  _mm512_permutex2var_ps((a), _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), (b))
#define rv_zip_hi(a, b) \
  _mm512_permutex2var_ps((a), _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), (b))
#define rv_neg(v) _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)))
/* Nonzero when any lane of the four vectors is NaN. */
ROTARY_TARGET static inline int rv_any_nan4(__m512 a, __m512 b, __m512 c, __m512 d) {
  return (_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q)) != 0;
}

#define rv_load_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define rv_store_f16(p, v) \
  _mm256_storeu_si256((__m256i *)(void *)(p), _mm512_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))

/* Non-temporal stores for outputs too large to stay in cache: they skip reading the destination
 * line before writing it. The instructions need aligned addresses; unaligned ones take an ordinary store. */
#define ROTARY_HAS_NT_STORES 1
ROTARY_TARGET static inline void rv_store_nt(float *p, __m512 v) {
  if (((uintptr_t)p & 63) == 0) _mm512_stream_ps(p, v);
  else _mm512_storeu_ps(p, v);
}
ROTARY_TARGET static inline void rv_store_nt_f16(uint16_t *p, __m512 v) {
  const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (((uintptr_t)p & 31) == 0) _mm256_stream_si256((__m256i *)(void *)p, h);
  else _mm256_storeu_si256((__m256i *)(void *)p, h);
}

#define rv_load_bf16(p) \
  _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))

/* Integer rounding rather than VCVTNEPS2BF16, which treats subnormal inputs as zero: results stay bit-identical
 * to the scalar kernels. The bf16 lands in the low 16 bits of each 32-bit lane; NaNs are quieted. */
ROTARY_TARGET static inline __m512i rv_round_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, nan);
}

ROTARY_TARGET static inline void rv_store_bf16(uint16_t *p, __m512 v) {
  _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtepi32_epi16(rv_round_bf16(v)));
}

/* bf16 pairs split in place: a pair of bf16 is one 32-bit word, so its first element is the word shifted up and
 * its second the word's high half (no shuffle). a holds the first element of 16 pairs, b the second. Interleaved
 * kernels use this as it is (RT_PLOAD); half-pairing kernels as the lane order of 32 consecutive elements:
 * element j in lane j / 2 of lo (even j) or hi (odd j), with cos/sin arranged to match (RT_SLOT). */
#define ROTARY_HAS_BF16_PAIR_SPLIT 1
#define ROTARY_HAS_BF16_PAIRS 1
ROTARY_TARGET static inline void rv_pload_bf16(const uint16_t *p, __m512 *a, __m512 *b) {
  __m512i v = _mm512_loadu_si512((const void *)p);
  __asm__("" : "+v"(v)); /* one load: otherwise the shift and the mask each read the memory */
  *a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  *b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}

ROTARY_TARGET static inline void rv_pstore_bf16_int(uint16_t *p, __m512 a, __m512 b) {
  _mm512_storeu_si512((void *)p, _mm512_or_si512(rv_round_bf16(a), _mm512_slli_epi32(rv_round_bf16(b), 16)));
}

#define rv_bf16_slot(j) (((j) & 1) * 16 + ((j) >> 1))
/* 32 floats in that order: evens to dst[0..15], odds to dst[16..31]. */
ROTARY_TARGET static inline void rv_arrange2_bf16(float *dst, const float *src) {
  const __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 16);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  _mm512_storeu_ps(dst, _mm512_permutex2var_ps(a, even, b));
  _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(a, _mm512_add_epi32(even, _mm512_set1_epi32(1)), b));
}

#define rv_load2_bf16(p, lo, hi) rv_pload_bf16((p), (lo), (hi))
#define rv_pstore_bf16 rv_pstore_bf16_int
#define rv_store2_bf16 rv_pstore_bf16
#define rv_store2x2_bf16(p, lo, hi, q, lo2, hi2) (rv_store2_bf16((p), (lo), (hi)), rv_store2_bf16((q), (lo2), (hi2)))
