/* arm/f64_neon.h: the fp64 vocabulary of the cos/sin rows template for aarch64 Advanced SIMD (2 doubles). */
#include <arm_neon.h>
#include <stdint.h>

#define SD_W 2
#define SD_TARGET /* NEON is part of every aarch64 CPU */
#define SD_NAME(x) x##__neon

typedef float64x2_t sd_v;
typedef uint64x2_t sd_m;

#define SD_U(v) vreinterpretq_u64_f64(v)
#define sd_set1(x) vdupq_n_f64(x)
#define sd_loadu(p) vld1q_f64(p)
#define sd_add(a, b) vaddq_f64((a), (b))
#define sd_sub(a, b) vsubq_f64((a), (b))
#define sd_mul(a, b) vmulq_f64((a), (b))
#define sd_neg(a) vnegq_f64(a)
#define sd_abs(a) vabsq_f64(a)
#define sd_fma(a, b, c) vfmaq_f64((c), (a), (b)) /* c + a * b, one rounding */
#define sd_lt(a, b) vcltq_f64((a), (b))
#define sd_gt(a, b) vcgtq_f64((a), (b))
#define sd_mand(a, b) vandq_u64((a), (b))
#define sd_mor(a, b) vorrq_u64((a), (b))
#define sd_mbits(m) ((unsigned)(vgetq_lane_u64((m), 0) & 1u) | (unsigned)(vgetq_lane_u64((m), 1) & 2u))
#define sd_select_odd(t, a, b) vbslq_f64(vtstq_u64(SD_U(t), vdupq_n_u64(1)), (b), (a))
#define sd_sign_bit1(t) \
  vreinterpretq_f64_u64(vandq_u64(vshlq_n_u64(SD_U(t), 62), vdupq_n_u64(0x8000000000000000ull)))
#define sd_xor(v, sign) vreinterpretq_f64_u64(veorq_u64(SD_U(v), SD_U(sign)))
#define sd_store_f32(p, v) vst1_f32((p), vcvt_f32_f64(v))
