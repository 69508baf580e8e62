/* simd/attn_exp.h: the attention kernels' vector exp, one body for every ISA from a small vector vocabulary. */
/* Include after defining INLINE, EXP_NAME(x) (x suffixed by the ISA), the fp32 and int32 vector types EV and EI, and
 *   ev_set(c) ev_mul(a, b) ev_add(a, b)   ev_fma(a, b, c) = a * b + c, ev_fnma(a, b, c) = c - a * b (one rounding)
 *   ev_clamp(x)  x clamped to [-110, 89], a NaN kept     ev_round(x)  to the nearest integer, ties to even
 *   ev_to_int(x) an integral value to int32              ei_set(c) ei_add(a, b) ei_sub(a, b)
 *   ei_sra1(n)   n >> 1 (arithmetic)                      ei_shl23(n)  n << 23, its bits read as fp32
 * Every ISA then performs the same IEEE operations lane by lane: the same values. */

/*
 * exp(x) lane by lane: n = round(x log2 e), r = x - n ln2 in two fma steps (Cody-Waite; ln2's high part has 16
 * significant bits, so n * hi is exact for |n| < 256), exp(r) on |r| <= ln2/2 by Cephes expf's polynomial
 * (1 + r + r^2 P(r), P of degree 5), then times 2^n as 2^(n/2) * 2^(n - n/2) (both normal for n in [-160, 128]:
 * subnormal results rounded once, overflow to +Inf). x is clamped to [-110, 89] first, so -Inf gives 0 and +Inf
 * gives +Inf; NaN stays NaN (whatever a NaN lane's n becomes, y is NaN there). Measured (tests/test_attn_kernels.c,
 * 168M arguments of [-87, 0]: every float of [-1, -2^-20], a 2^-13 grid below): at most 1 ulp from the correctly
 * rounded exp.
 */
INLINE EV EXP_NAME(exp_lanes)(EV x) {
  x = ev_clamp(x);
  const EV nf = ev_round(ev_mul(x, ev_set(1.44269504088896341f)));
  EV r = ev_fnma(nf, ev_set(0.693145751953125f), x);
  r = ev_fnma(nf, ev_set(1.428606765330187e-06f), r);
  EV y = ev_set(1.9875691500e-4f);
  y = ev_fma(y, r, ev_set(1.3981999507e-3f));
  y = ev_fma(y, r, ev_set(8.3334519073e-3f));
  y = ev_fma(y, r, ev_set(4.1665795894e-2f));
  y = ev_fma(y, r, ev_set(1.6666665459e-1f));
  y = ev_fma(y, r, ev_set(5.0000001201e-1f));
  y = ev_fma(y, ev_mul(r, r), ev_add(r, ev_set(1.0f)));
  const EI n = ev_to_int(nf);
  const EI n1 = ei_sra1(n), n2 = ei_sub(n, n1);
  const EV s1 = ei_shl23(ei_add(n1, ei_set(127))), s2 = ei_shl23(ei_add(n2, ei_set(127)));
  return ev_mul(ev_mul(y, s1), s2);
}
