/* x86/isa_avx512bf16.h: the AVX-512 vocabulary plus AVX512-BF16's VCVTNE2PS2BF16 for the bf16 stores. */
#include "isa_avx512.h"

#undef ROTARY_ISA_NAME
#undef ROTARY_TARGET
#define ROTARY_ISA_NAME avx512bf16
#define ROTARY_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))
#define ROTARY_HAS_BF16_PAIRS 1

/* Lanes holding an fp32 subnormal: VCVTNE2PS2BF16 turns those into zero, the scalar kernels round them. */
ROTARY_TARGET static inline __mmask16 rv_bf16_subnormal(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __mmask16 exp_zero = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_test_epi32_mask(exp_zero, u, _mm512_set1_epi32(0x007fffff));
}

/* 32 bf16 from two vectors, in order. VCVTNE2PS2BF16 rounds to nearest even and quiets NaNs exactly like
 * rv_store_bf16 (NaN: upper half | 0x40); only subnormal inputs differ, and they take rv_store_bf16. */
ROTARY_TARGET static inline void rv_store2_bf16(uint16_t *p, __m512 lo, __m512 hi) {
  if (__builtin_expect((rv_bf16_subnormal(lo) | rv_bf16_subnormal(hi)) == 0, 1)) {
    _mm512_storeu_si512((void *)p, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  } else {
    rv_store_bf16(p, lo);
    rv_store_bf16(p + 16, hi);
  }
}

ROTARY_TARGET static inline void rv_load2_bf16(const uint16_t *p, __m512 *lo, __m512 *hi) {
  *lo = rv_load_bf16(p);
  *hi = rv_load_bf16(p + 16);
}

ROTARY_TARGET static inline void rv_store2x2_bf16(uint16_t *p, __m512 lo, __m512 hi, uint16_t *q, __m512 lo2,
                                                  __m512 hi2) {
  rv_store2_bf16(p, lo, hi);
  rv_store2_bf16(q, lo2, hi2);
}

/* Interleaved pairs back from the two vectors of rv_pload_bf16: one VCVTNE2PS2BF16 and a word permute that
 * interleaves its halves; vectors with subnormal lanes take the integer rounding. */
#undef rv_pstore_bf16
ROTARY_TARGET static inline void rv_pstore_bf16(uint16_t *p, __m512 a, __m512 b) {
  if (__builtin_expect((rv_bf16_subnormal(a) | rv_bf16_subnormal(b)) == 0, 1)) {
    const __m512i zip = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                          0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001a000a, 0x001b000b,
                                          0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
    _mm512_storeu_si512((void *)p, _mm512_permutexvar_epi16(zip, (__m512i)_mm512_cvtne2ps_pbh(b, a)));
  } else {
    rv_pstore_bf16_int(p, a, b);
  }
}

/* The pairs keep their order: arranging cos/sin is a copy. */
#define rv_bf16_slot(j) (j)
ROTARY_TARGET static inline void rv_arrange2_bf16(float *dst, const float *src) {
  _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
  _mm512_storeu_ps(dst + 16, _mm512_loadu_ps(src + 16));
}
