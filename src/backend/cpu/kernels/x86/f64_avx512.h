/* x86/f64_avx512.h: the fp64 vocabulary of the cos/sin rows template for AVX-512 F (8 doubles). */
#include <immintrin.h>

#define SD_W 8
#define SD_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define SD_NAME(x) x##__avx512

typedef __m512d sd_v;
typedef __mmask8 sd_m;

#define SD_I(v) _mm512_castpd_si512(v)
#define SD_D(v) _mm512_castsi512_pd(v)
#define sd_set1(x) _mm512_set1_pd(x)
#define sd_loadu(p) _mm512_loadu_pd(p)
#define sd_add(a, b) _mm512_add_pd((a), (b))
#define sd_sub(a, b) _mm512_sub_pd((a), (b))
#define sd_mul(a, b) _mm512_mul_pd((a), (b))
#define sd_neg(a) SD_D(_mm512_xor_si512(SD_I(a), _mm512_set1_epi64(INT64_MIN)))
#define sd_abs(a) SD_D(_mm512_andnot_si512(_mm512_set1_epi64(INT64_MIN), SD_I(a)))
#define sd_fma(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define sd_lt(a, b) _mm512_cmp_pd_mask((a), (b), _CMP_LT_OQ)
#define sd_gt(a, b) _mm512_cmp_pd_mask((a), (b), _CMP_GT_OQ)
#define sd_mand(a, b) ((__mmask8)((a) & (b)))
#define sd_mor(a, b) ((__mmask8)((a) | (b)))
#define sd_mbits(m) ((unsigned)(m))
#define sd_select_odd(t, a, b) _mm512_mask_blend_pd(_mm512_test_epi64_mask(SD_I(t), _mm512_set1_epi64(1)), (a), (b))
#define sd_sign_bit1(t) SD_D(_mm512_and_si512(_mm512_slli_epi64(SD_I(t), 62), _mm512_set1_epi64(INT64_MIN)))
#define sd_xor(v, sign) SD_D(_mm512_xor_si512(SD_I(v), SD_I(sign)))
#define sd_store_f32(p, v) _mm256_storeu_ps((p), _mm512_cvtpd_ps(v))
