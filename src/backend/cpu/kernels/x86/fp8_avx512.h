/* x86/fp8_avx512.h: the AVX-512 fp8 e4m3 encoding steps shared by the conversion and rotate-to-fp8 kernels. */
#ifndef ROTARY_FP8_AVX512_H
#define ROTARY_FP8_AVX512_H

#include <stdint.h>

#include "fp8.h"
#include "isa_avx512.h"

/* 16 floats (already divided by the scale) to 16 codes (one per 32-bit lane), the integer steps of
 * rotary_fp8_e4m3_from_f32 (fp8.h) on every lane, selected by masks: the AVX2 kernel's test for a block with no NaN
 * and no |q| below 2^-6 failed on most blocks of real k and v rows (one small value in 32 sends the block down the
 * slow path), so there is no fast path here, only the one that handles every lane. */
ROTARY_TARGET static inline __m512i fp8_codes16(__m512 q) {
  const __m512 af = _mm512_abs_ps(q);
  const __m512i a = _mm512_castps_si512(af);
  /* normal results: clamp to 448 (Inf too; the fp32 minimum with 448 first keeps a NaN as it is), rebias and round
   * to 3 mantissa bits, ties to even; a NaN's code comes out above 0x7f and the unsigned minimum makes it 0x7f,
   * while every finite lane is at most 0x7e (448) */
  const __m512i c = _mm512_castps_si512(_mm512_min_ps(_mm512_set1_ps(448.0f), af));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(c, 20), _mm512_set1_epi32(1));
  __m512i o = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(c, _mm512_set1_epi32(0x7ffff - 0x3c000000)), odd),
                                20);
  o = _mm512_min_epu32(o, _mm512_set1_epi32((int)ROTARY_FP8_NAN));
  /* below 2^-6: the fp32 addition of 2^14 rounds |q| to a multiple of 2^-9, the count in the low bits */
  o = _mm512_mask_add_epi32(o, _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32(0x3c800000)),
                            _mm512_castps_si512(_mm512_add_ps(af, _mm512_set1_ps(16384.0f))),
                            _mm512_set1_epi32(-0x46800000));
  /* the sign bit to bit 7 where q's is set */
  const __mmask16 negative = _mm512_cmplt_epi32_mask(_mm512_castps_si512(q), _mm512_setzero_si512());
  return _mm512_mask_or_epi32(o, negative, o, _mm512_set1_epi32(0x80));
}

/* Four blocks of 16 codes (a, b, c, d) as 64 bytes in that order: two packing steps and one permute, where four
 * VPMOVDB narrowings cost more. */
ROTARY_TARGET static inline __m512i fp8_line64(__m512i a, __m512i b, __m512i c, __m512i d) {
  /* each 128-bit lane k now holds dword k of a, then of b, c and d */
  const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(a, b), _mm512_packus_epi32(c, d));
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
}

/* The 16 codes as 16 bytes. */
ROTARY_TARGET static inline __m128i fp8_encode16(__m512 q) { return _mm512_cvtepi32_epi8(fp8_codes16(q)); }

/* The encoders' input dtypes; bf16 and f16 widen to f32 exactly. */
enum { FROM_F32, FROM_BF16, FROM_F16 };

/* 16 elements from lane i of src, as floats, under mask m (lanes outside it neither read nor faulted: a row that
 * ends at a page's end is safe). */
ROTARY_TARGET static inline __m512 fp8_load16(const void *src, size_t i, __mmask16 m, const int from) {
  if (from == FROM_F32) return _mm512_maskz_loadu_ps(m, (const float *)src + i);
  const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)src + i);
  if (from == FROM_F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* x / scale as the scalar code computes it; a power-of-two scale with a normal reciprocal multiplies by it instead
 * (mul: the same real number rounded once, so the same bits), as the AVX2 kernel does. */
ROTARY_TARGET static inline __m512 fp8_divide16(__m512 x, __m512 by, const int mul) {
  return mul ? _mm512_mul_ps(x, by) : _mm512_div_ps(x, by);
}

/* The loop, specialized by the callers for the input type, the division and the stores (constants: no test per
 * block). nt: every whole 64-byte line of dst that four blocks fill is streamed (non-temporal, unfenced: the caller's
 * task fences, kernels.h); the rest, and everything when nt is 0, takes ordinary stores. */
__attribute__((always_inline)) ROTARY_TARGET static inline void fp8_encode_rows(const void *src, unsigned char *dst,
                                                                                size_t n, __m512 by, const int from,
                                                                                const int mul, const int nt) {
  size_t i = 0;
  if (nt) { /* blocks up to dst's first line boundary, then whole lines */
    for (; i + 16 <= n && ((uintptr_t)(dst + i) & 63) != 0; i += 16) {
      const __m512 q = fp8_divide16(fp8_load16(src, i, 0xffff, from), by, mul);
      _mm_storeu_si128((__m128i *)(void *)(dst + i), fp8_encode16(q));
    }
    for (; ((uintptr_t)(dst + i) & 63) == 0 && i + 64 <= n; i += 64) {
      const __m512i c0 = fp8_codes16(fp8_divide16(fp8_load16(src, i, 0xffff, from), by, mul));
      const __m512i c1 = fp8_codes16(fp8_divide16(fp8_load16(src, i + 16, 0xffff, from), by, mul));
      const __m512i c2 = fp8_codes16(fp8_divide16(fp8_load16(src, i + 32, 0xffff, from), by, mul));
      const __m512i c3 = fp8_codes16(fp8_divide16(fp8_load16(src, i + 48, 0xffff, from), by, mul));
      _mm512_stream_si512((void *)(dst + i), fp8_line64(c0, c1, c2, c3));
    }
  }
  for (; i + 64 <= n; i += 64) {
    const __m128i b0 = fp8_encode16(fp8_divide16(fp8_load16(src, i, 0xffff, from), by, mul));
    const __m128i b1 = fp8_encode16(fp8_divide16(fp8_load16(src, i + 16, 0xffff, from), by, mul));
    const __m128i b2 = fp8_encode16(fp8_divide16(fp8_load16(src, i + 32, 0xffff, from), by, mul));
    const __m128i b3 = fp8_encode16(fp8_divide16(fp8_load16(src, i + 48, 0xffff, from), by, mul));
    _mm_storeu_si128((__m128i *)(void *)(dst + i), b0);
    _mm_storeu_si128((__m128i *)(void *)(dst + i + 16), b1);
    _mm_storeu_si128((__m128i *)(void *)(dst + i + 32), b2);
    _mm_storeu_si128((__m128i *)(void *)(dst + i + 48), b3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1u);
    _mm_mask_storeu_epi8(dst + i, m, fp8_encode16(fp8_divide16(fp8_load16(src, i, m, from), by, mul)));
  }
}

#endif /* ROTARY_FP8_AVX512_H */
