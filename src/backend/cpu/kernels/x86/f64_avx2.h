/* x86/f64_avx2.h: the fp64 vocabulary of the cos/sin rows template for AVX2 + FMA (4 doubles). */
#include <immintrin.h>

#define SD_W 4
#define SD_TARGET __attribute__((target("avx2,fma")))
#define SD_NAME(x) x##__avx2

typedef __m256d sd_v;
typedef __m256d sd_m;

#define sd_set1(x) _mm256_set1_pd(x)
#define sd_loadu(p) _mm256_loadu_pd(p)
#define sd_add(a, b) _mm256_add_pd((a), (b))
#define sd_sub(a, b) _mm256_sub_pd((a), (b))
#define sd_mul(a, b) _mm256_mul_pd((a), (b))
#define sd_neg(a) _mm256_xor_pd((a), _mm256_set1_pd(-0.0))
#define sd_abs(a) _mm256_andnot_pd(_mm256_set1_pd(-0.0), (a))
#define sd_fma(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define sd_lt(a, b) _mm256_cmp_pd((a), (b), _CMP_LT_OQ)
#define sd_gt(a, b) _mm256_cmp_pd((a), (b), _CMP_GT_OQ)
#define sd_mand(a, b) _mm256_and_pd((a), (b))
#define sd_mor(a, b) _mm256_or_pd((a), (b))
#define sd_mbits(m) ((unsigned)_mm256_movemask_pd(m))
/* bit 0 of the integer moved to the sign bit, which blendv reads */
#define sd_select_odd(t, a, b) \
  _mm256_blendv_pd((a), (b), _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 63)))
#define sd_sign_bit1(t)                                                                         \
  _mm256_and_pd(_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 62)), \
                _mm256_set1_pd(-0.0))
#define sd_xor(v, sign) _mm256_xor_pd((v), (sign))
#define sd_store_f32(p, v) _mm_storeu_ps((p), _mm256_cvtpd_ps(v))
