/* arm/isa_neon.h: the vector vocabulary of the SIMD kernel template for aarch64 Advanced SIMD (4 floats). */
#include <arm_neon.h>
#include <stdint.h>

#define ROTARY_ISA_NAME neon
#define ROTARY_TARGET /* NEON is part of every aarch64 CPU */
#define ROTARY_W 4

typedef float32x4_t rv_f32;

#define rv_loadu(p) vld1q_f32(p)
#define rv_storeu(p, v) vst1q_f32((p), (v))
#define rv_mul(a, b) vmulq_f32((a), (b))
#define rv_fmadd(a, b, c) vfmaq_f32((c), (a), (b))           /* c + a * b, one rounding */
#define rv_fmsub(a, b, c) vfmaq_f32(vnegq_f32(c), (a), (b))  /* a * b - c, one rounding */
#define rv_dup_even(v) vtrn1q_f32((v), (v))
#define rv_dup_odd(v) vtrn2q_f32((v), (v))
/* [a0 b0 a1 b1 ...] over a's and b's first (lo) or second (hi) half of lanes; -v flips the sign bit. */
#define rv_zip_lo(a, b) vzip1q_f32((a), (b))
#define rv_zip_hi(a, b) vzip2q_f32((a), (b))
#define rv_neg(v) vnegq_f32(v)
/* Nonzero when any lane of the four vectors is NaN: FMAX and FMAXV return NaN when an operand is NaN. */
static inline int rv_any_nan4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  const float m = vmaxvq_f32(vmaxq_f32(vmaxq_f32(a, b), vmaxq_f32(c, d)));
  return m != m;
}

/* FCVTL / FCVTN: exact widening; narrowing rounds to nearest even under the default FPCR (as Linux sets it). */
#define rv_load_f16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(p))))
#define rv_store_f16(p, v) vst1_u16((uint16_t *)(void *)(p), vreinterpret_u16_f16(vcvt_f16_f32(v)))

#define rv_load_bf16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(const void *)(p)), 16))

/* Round to nearest even on the bit pattern, NaNs quieted: the scalar conversion, lane by lane. */
static inline uint16x4_t rv_round_bf16(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint32x4_t r = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb), 16);
  const uint32x4_t nan = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40));
  const uint32x4_t ordered = vceqq_f32(v, v);
  return vmovn_u32(vbslq_u32(ordered, r, nan));
}

static inline void rv_store_bf16(uint16_t *p, float32x4_t v) { vst1_u16(p, rv_round_bf16(v)); }

/* Interleaved pairs split by LD2/ST2: a holds the first element of 4 pairs, b the second. */
#define ROTARY_HAS_BF16_PAIR_SPLIT 1
static inline void rv_pload_bf16(const uint16_t *p, float32x4_t *a, float32x4_t *b) {
  const uint16x4x2_t v = vld2_u16(p);
  *a = vreinterpretq_f32_u32(vshll_n_u16(v.val[0], 16));
  *b = vreinterpretq_f32_u32(vshll_n_u16(v.val[1], 16));
}

static inline void rv_pstore_bf16(uint16_t *p, float32x4_t a, float32x4_t b) {
  uint16x4x2_t v;
  v.val[0] = rv_round_bf16(a);
  v.val[1] = rv_round_bf16(b);
  vst2_u16(p, v);
}
