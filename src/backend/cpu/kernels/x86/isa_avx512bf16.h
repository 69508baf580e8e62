/* x86/isa_avx512bf16.h: the AVX-512 vocabulary plus AVX512-BF16's VCVTNE2PS2BF16 for the bf16 stores. */
#include "isa_avx512.h"

#undef ROTARY_ISA_NAME
#undef ROTARY_TARGET
#define ROTARY_ISA_NAME avx512bf16
#define ROTARY_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

/* Lanes holding an fp32 subnormal (VFPCLASSPS, AVX512-DQ, which every AVX512-BF16 CPU has): VCVTNE2PS2BF16 turns
 * those into zero, the scalar kernels round them. */
ROTARY_TARGET static inline __mmask16 rv_bf16_subnormal(__m512 v) { return _mm512_fpclass_ps_mask(v, 0x20); }

/* Pairs back from the two vectors of rv_pload_bf16: one VCVTNE2PS2BF16 (a's values to the low 256 bits, b's to the
 * high) and a word permute that interleaves the halves. It rounds to nearest even and quiets NaNs exactly like
 * the integer rounding (NaN: upper half | 0x40); only subnormal inputs differ (it makes them zero), so vectors with
 * a subnormal lane take the integer rounding. Such a lane comes out as a zero, which real data rarely holds: one
 * test of the packed words for zeros (2 bytes a lane) stands in for the two subnormal tests of the inputs. */
#undef rv_pstore_bf16
ROTARY_TARGET static inline void rv_pstore_bf16(uint16_t *p, __m512 a, __m512 b) {
  const __m512i r = (__m512i)_mm512_cvtne2ps_pbh(b, a);
  const __mmask32 zeros = _mm512_testn_epi16_mask(r, _mm512_set1_epi16(0x7fff));
  if (__builtin_expect(zeros == 0, 1) || (rv_bf16_subnormal(a) | rv_bf16_subnormal(b)) == 0) {
    const __m512i zip = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                          0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001a000a, 0x001b000b,
                                          0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
    _mm512_storeu_si512((void *)p, _mm512_permutexvar_epi16(zip, r));
  } else {
    rv_pstore_bf16_int(p, a, b);
  }
}
