// exact_sincos.cuh: cos/sin of the exact RoPE angle pos * inv_freq on the device, the CPU rows' bits (sincos.h).
#ifndef ROTARY_CUDA_EXACT_SINCOS_CUH
#define ROTARY_CUDA_EXACT_SINCOS_CUH

#include <stdint.h>

// The CPU library's algorithm, operation for operation (src/backend/cpu/kernels/simd/sincos_template.h, the fast
// path, and src/model/sincos_exact.c, the exact path): the same fp64 additions, multiplications and fmas in the
// same order, each spelled as an intrinsic (__dadd_rn, __dmul_rn, fma), so the GPU's IEEE fp64 gives the same
// bits as the CPU and the rows equal the CPU table's. Fast path: p*w = hi + lo exactly (fma), Cody-Waite against
// pi/2 = P1 + P2 + P3, Horner polynomials on the reduced double-double, times scaling, one rounding to fp32. Angles
// above 2^45 and reduced angles below 2^-49 hi (k > 0) take the exact path, Payne-Hanek with 2/pi in constant
// memory: a separate function, not inlined, so the common path has no loop and no local memory.

#define RX_TWO_OVER_PI 0x1.45f306dc9c883p-1
#define RX_MAGIC 0x1.8p52  // adding it rounds to an integer and leaves it in the low mantissa bits
#define RX_PIO2_1 0x1.921fb54442d18p+0
#define RX_PIO2_2 0x1.1a62633145c07p-54
#define RX_PIO2_3 -0x1.f1976b7ed8fbcp-110
#define RX_HUGE 0x1p45
#define RX_TINY_REL 0x1p-49
#define RX_2OPI_WORDS 24

// Bits 64i+1 .. 64i+64 of 2/pi in word i (src/backend/cpu/sincos_2opi.h; the GPU test compares the two).
static __constant__ uint64_t rx_two_over_pi[RX_2OPI_WORDS] = {
    0xa2f9836e4e441529ull, 0xfc2757d1f534ddc0ull, 0xdb6295993c439041ull, 0xfe5163abdebbc561ull,
    0xb7246e3a424dd2e0ull, 0x06492eea09d1921cull, 0xfe1deb1cb129a73eull, 0xe88235f52ebb4484ull,
    0xe99c7026b45f7e41ull, 0x3991d639835339f4ull, 0x9c845f8bbdf9283bull, 0x1ff897ffde05980full,
    0xef2f118b5a0a6d1full, 0x6d367ecf27cb09b7ull, 0x4f463f669e5fea2dull, 0x7527bac7ebe5f17bull,
    0x3d0739f78a5292eaull, 0x6bfb5fb11f8d5d08ull, 0x56033046fc7b6babull, 0xf0cfbc209af4361dull,
    0xa9e391615ee61b08ull, 0x6599855f14a06840ull, 0x8dffd8804d732731ull, 0x06061556ca73a8c9ull,
};

// cos and sin of r_hi + r_lo (|r| <= about pi/4) in the quadrant held by t (RX_MAGIC + k), times scaling, to fp32
// (x: cos, y: sin). The CPU's sd_core_n: Taylor coefficients +-1/n! (hex of the correctly rounded quotients),
// Horner with one fma per step, sin(r_hi + r_lo) = sin(r_hi) + r_lo (1 - r_hi^2/2), cos = cos(r_hi) - r_lo r_hi.
__device__ __forceinline__ float2 rx_core_cos_sin(double r_hi, double r_lo, double t, double scaling) {
  const double z = __dmul_rn(r_hi, r_hi);
  double ps = fma(0x1.952c77030ad4ap-49, z, -0x1.ae7f3e733b81fp-41);  // 1/17!, -1/15!
  double pc = fma(-0x1.6827863b97d97p-53, z, 0x1.ae7f3e733b81fp-45);  // -1/18!, 1/16!
  ps = fma(ps, z, 0x1.6124613a86d09p-33);                               // 1/13!
  pc = fma(pc, z, -0x1.93974a8c07c9dp-37);                              // -1/14!
  ps = fma(ps, z, -0x1.ae64567f544e4p-26);                              // -1/11!
  pc = fma(pc, z, 0x1.1eed8eff8d898p-29);                               // 1/12!
  ps = fma(ps, z, 0x1.71de3a556c734p-19);                               // 1/9!
  pc = fma(pc, z, -0x1.27e4fb7789f5cp-22);                              // -1/10!
  ps = fma(ps, z, -0x1.a01a01a01a01ap-13);                              // -1/7!
  pc = fma(pc, z, 0x1.a01a01a01a01ap-16);                               // 1/8!
  ps = fma(ps, z, 0x1.1111111111111p-7);                                // 1/5!
  pc = fma(pc, z, -0x1.6c16c16c16c17p-10);                              // -1/6!
  ps = fma(ps, z, -0x1.5555555555555p-3);                               // -1/3!
  pc = fma(pc, z, 0x1.5555555555555p-5);                                // 1/4!
  pc = fma(pc, z, -0.5);                                                // -1/2!
  const double lo_term = fma(__dmul_rn(-0.5, z), r_lo, r_lo);
  const double sn = __dadd_rn(r_hi, fma(__dmul_rn(r_hi, z), ps, lo_term));
  const double cs = __dadd_rn(1.0, fma(z, pc, -__dmul_rn(r_lo, r_hi)));
  // quadrant k: sin = (S, C, -S, -C)[k % 4], cos = (C, -S, -C, S)[k % 4]; k's low bits are t's
  const unsigned long long tb = (unsigned long long)__double_as_longlong(t);
  const unsigned long long tb1 = (unsigned long long)__double_as_longlong(__dadd_rn(t, 1.0));
  const double s_sel = (tb & 1ull) ? cs : sn, c_sel = (tb & 1ull) ? sn : cs;
  const double s_q = __longlong_as_double((long long)((unsigned long long)__double_as_longlong(s_sel) ^
                                                      ((tb & 2ull) << 62)));
  const double c_q = __longlong_as_double((long long)((unsigned long long)__double_as_longlong(c_sel) ^
                                                      ((tb1 & 2ull) << 62)));
  return make_float2(__double2float_rn(__dmul_rn(c_q, scaling)), __double2float_rn(__dmul_rn(s_q, scaling)));
}

// Bits j .. j+63 of 2/pi as one word, bit j most significant (sincos_exact.c's two_over_pi_bits).
__device__ __forceinline__ uint64_t rx_two_over_pi_word(int i) {
  return i >= 0 && i < RX_2OPI_WORDS ? rx_two_over_pi[i] : 0;
}
__device__ __forceinline__ uint64_t rx_two_over_pi_bits(int j) {
  const int i = j - 1;
  if (i <= -64) return 0;
  if (i < 0) return rx_two_over_pi_word(0) >> -i;
  const int w = i / 64, sh = i % 64;
  return sh ? rx_two_over_pi_word(w) << sh | rx_two_over_pi_word(w + 1) >> (64 - sh) : rx_two_over_pi_word(w);
}

// The exact path (sincos_exact.c's rotary_sincos_exact, word for word): the exact product pos * m * 2^e (w =
// m * 2^e) as 128 bits, times a 320-bit window of 2/pi modulo 4, the fraction to a double-double times pi/2, then
// rx_core_cos_sin. Not inlined: its arrays stay out of the callers' fast path.
inline __device__ __noinline__ float2 rx_exact_cos_sin(int64_t pos, double w, double scaling) {
  const uint64_t wb = (uint64_t)__double_as_longlong(w);
  const int biased = (int)(wb >> 52 & 0x7ff);
  const uint64_t m = (wb & ((1ull << 52) - 1)) | (biased ? 1ull << 52 : 0);
  const int e = (biased ? biased : 1) - 1075;  // w = m * 2^e
  const uint64_t n0 = (uint64_t)pos * m, n1 = __umul64hi((uint64_t)pos, m);  // the angle is (n1:n0) * 2^e
  const int bits = n1 ? 128 - __clzll((long long)n1) : n0 ? 64 - __clzll((long long)n0) : 0;
  if (bits + e < 0) {  // below 1/2: no reduction; r = the product's top 53 bits and the rest
    const int sh = bits > 53 ? bits - 53 : 0;  // <= 53: the product has at most 106 bits
    const uint64_t top = sh ? n0 >> sh | n1 << (64 - sh) : n0;
    const uint64_t rest = sh ? n0 & ((1ull << sh) - 1) : 0;
    return rx_core_cos_sin(ldexp((double)top, e + sh), ldexp((double)rest, e), RX_MAGIC, scaling);
  }
  // f = n * window mod 2^320, least significant word first (window word 4 - k holds bits e - 1 + 64k on)
  uint64_t v[5], f[5] = {0, 0, 0, 0, 0};
  for (int k = 0; k < 5; k++) v[4 - k] = rx_two_over_pi_bits(e - 1 + 64 * k);
  const uint64_t n[2] = {n0, n1};
  for (int a = 0; a < 2; a++) {
    uint64_t carry = 0;
    for (int b = 0; a + b < 5; b++) {  // (hi:lo) = n[a] * v[b] + f[a + b] + carry < 2^128
      uint64_t lo = n[a] * v[b], hi = __umul64hi(n[a], v[b]);
      lo += f[a + b];
      hi += lo < f[a + b];
      lo += carry;
      hi += lo < carry;
      f[a + b] = lo;
      carry = hi;
    }
  }
  unsigned q = (unsigned)(f[4] >> 62);
  f[4] &= ~(3ull << 62);
  double sign = 1.0;
  if (f[4] >> 61) {  // fraction >= 1/2: the next quadrant, reduced angle negative; f = 2^318 - f
    q++;
    sign = -1.0;
    unsigned borrow = 1;
    for (int k = 0; k < 5; k++) {
      const uint64_t x = ~f[k] + borrow;
      borrow = borrow && x == 0;
      f[k] = x;
    }
    f[4] &= ~(3ull << 62);
  }
  // the 318 fraction bits as a double-double fh + fl (fraction_to_dd)
  double fh = 0.0, fl = 0.0;
  int lz = 0;
  while (lz < 320 && !f[4]) {
    for (int k = 4; k > 0; k--) f[k] = f[k - 1];
    f[0] = 0;
    lz += 64;
  }
  if (lz < 320) {
    const int sh = __clzll((long long)f[4]);
    if (sh) {
      for (int k = 4; k > 0; k--) f[k] = f[k] << sh | f[k - 1] >> (64 - sh);
      f[0] <<= sh;
    }
    lz += sh;
    fh = ldexp((double)(f[4] & ~0x7ffull), 2 - 64 - lz);
    fl = ldexp(__dadd_rn((double)(f[4] & 0x7ffull), ldexp((double)f[3], -64)), 2 - 64 - lz);
  }
  // r = fraction * pi/2 in double-double (pi/2 = PIO2_HI + PIO2_LO to 2^-107)
  const double PIO2_HI = 0x1.921fb54442d18p+0, PIO2_LO = 0x1.1a62633145c07p-54;
  const double ph = __dmul_rn(fh, PIO2_HI);
  const double pl = __dadd_rn(fma(fh, PIO2_HI, -ph), __dadd_rn(__dmul_rn(fh, PIO2_LO), __dmul_rn(fl, PIO2_HI)));
  const double r_hi = __dadd_rn(ph, pl), r_lo = __dsub_rn(pl, __dsub_rn(r_hi, ph));
  return rx_core_cos_sin(__dmul_rn(sign, r_hi), __dmul_rn(sign, r_lo), __dadd_rn(RX_MAGIC, (double)(q & 3u)),
                         scaling);
}

// *c = cos(pos * inv_freq) * scaling, *s = sin(...) * scaling, rounded once to fp32: the CPU rows' bits for the
// exact angle (pos in [0, 2^53 - 1], inv_freq positive finite, scaling positive). Fast path: Cody-Waite, no loop.
__device__ __forceinline__ void rotary_cuda_exact_cos_sin(int64_t pos, double inv_freq, double scaling, float *c,
                                                          float *s) {
  const double w = inv_freq, p = (double)pos;  // exact: pos < 2^53
  const double hi = __dmul_rn(p, w);
  const double lo = fma(p, w, -hi);  // p * w = hi + lo exactly
  const double t = __dadd_rn(__dmul_rn(hi, RX_TWO_OVER_PI), RX_MAGIC);
  const double k = __dsub_rn(t, RX_MAGIC);
  const double a = fma(-k, RX_PIO2_1, hi);                         // exact
  const double cc = fma(-k, RX_PIO2_3, fma(-k, RX_PIO2_2, lo));  // lo - k P2 - k P3
  const double r_hi = __dadd_rn(a, cc), r_lo = __dsub_rn(cc, __dsub_rn(r_hi, a));
  // huge angles (+inf included), and reduced angles so near a nonzero multiple of pi/2 that the error could matter
  const bool hard = RX_HUGE < hi || (k > 0.5 && fabs(r_hi) < __dmul_rn(hi, RX_TINY_REL));
  float2 cs;
  if (hard) {
    cs = rx_exact_cos_sin(pos, w, scaling);
  } else {
    cs = rx_core_cos_sin(r_hi, r_lo, t, scaling);
  }
  *c = cs.x;
  *s = cs.y;
}

#endif  // ROTARY_CUDA_EXACT_SINCOS_CUH
