/* test_convert.c: the element conversion kernels (f16/bf16/fp8 <-> f32) against references written from the specs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert_kernels.h"
#include "fp8.h"
#include "test_util.h"

/*
 * The fp8 reference is written from the OCP 8-bit Floating Point Specification (OFP8) rev 1.0, E4M3: sign, 4
 * exponent bits with bias 7, 3 mantissa bits; exponent 0 holds the subnormals m * 2^-9; S.1111.111 is NaN and there
 * are no infinities, so S.1111.110 = 448 is the largest finite value. It rounds by enumeration in double: the finite
 * code nearest |q|, ties to the even code (the code's last bit is the mantissa's), with the saturating conversion:
 * |q| above 448, Inf included, gives 448 (values in (448, 464) round to 448 anyway; from 464 up, where rounding
 * would reach 480 = NaN's slot, saturation keeps 448). NaN gives S.1111.111 with q's sign. The cache's rule puts
 * q = x / scale in fp32 first (the contract in include/rotary.h), so the reference divides in fp32 too.
 */

#define FP8_NFINITE 0x7f /* codes 0x00 .. 0x7e are the finite magnitudes */
static double fp8_mag[FP8_NFINITE];

static double ref_fp8_magnitude(unsigned c) {
  const unsigned e = (c >> 3) & 15u, m = c & 7u;
  return e == 0 ? ldexp((double)m, -9) : ldexp(1.0 + m / 8.0, (int)e - 7);
}

static void ref_fp8_init(void) {
  for (unsigned c = 0; c < FP8_NFINITE; c++) fp8_mag[c] = ref_fp8_magnitude(c);
}

static uint8_t ref_fp8_round(float q) {
  if (isnan(q)) return (uint8_t)((signbit(q) ? 0x80u : 0u) | 0x7fu);
  const unsigned sign = signbit(q) ? 0x80u : 0u;
  const double a = fabs((double)q);
  if (a > 448.0) return (uint8_t)(sign | 0x7eu);
  unsigned best = 0;
  double best_d = a;
  for (unsigned c = 1; c < FP8_NFINITE; c++) {
    const double d = fabs(fp8_mag[c] - a);
    if (d < best_d || (d == best_d && (c & 1u) == 0)) best = c, best_d = d;
  }
  return (uint8_t)(sign | best);
}

static uint8_t ref_fp8_encode(float x, float scale) { return ref_fp8_round(x / scale); }

/* Decoding: the code's value (exact in fp32) times scale in fp32; NaN codes give the quiet NaN with their sign. */
static uint32_t ref_fp8_decode_bits(uint8_t c, float scale) {
  const uint32_t sign = (c & 0x80u) ? 0x80000000u : 0u;
  if ((c & 0x7fu) == 0x7fu) return sign | 0x7fc00000u;
  const float v = (float)ref_fp8_magnitude(c & 0x7fu);
  return tu_f32_bits((sign ? -v : v) * scale);
}

/* Per-element reference of every conversion: bits of the result (zero-extended). */
static uint32_t ref_convert(rotary_dtype from, rotary_dtype to, uint32_t in, float scale) {
  if (to == ROTARY_F32) {
    if (from == ROTARY_FP8_E4M3) return ref_fp8_decode_bits((uint8_t)in, scale);
    const float v = from == ROTARY_F16 ? tu_f16_to_f32((uint16_t)in) : tu_bf16_to_f32((uint16_t)in);
    uint32_t u = tu_f32_bits(v);
    if (from == ROTARY_F16 && (u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u; /* f16 NaNs come out quiet */
    return u;
  }
  /* f16/bf16 -> fp8: the exact widening first */
  const float x = from == ROTARY_BF16 ? tu_bf16_to_f32((uint16_t)in)
                  : from == ROTARY_F16 ? tu_f16_to_f32((uint16_t)in)
                                       : tu_bits_f32(in);
  if (to == ROTARY_F16) return tu_f32_to_f16(x);
  if (to == ROTARY_BF16) return tu_f32_to_bf16(x);
  return ref_fp8_encode(x, scale);
}

static size_t dt_size(rotary_dtype dt) { return dt == ROTARY_F32 ? 4 : dt == ROTARY_FP8_E4M3 ? 1 : 2; }

static uint32_t get_bits(rotary_dtype dt, const unsigned char *p, size_t i) {
  uint32_t u = 0;
  memcpy(&u, p + i * dt_size(dt), dt_size(dt)); /* little-endian: the element in the low bits */
  return u;
}

static void put_bits(rotary_dtype dt, unsigned char *p, size_t i, uint32_t u) {
  memcpy(p + i * dt_size(dt), &u, dt_size(dt));
}

static const float scales[] = {1.0f, 0.5f, 3.7f, 1e-3f, 0x1p-10f, 1048576.0f, 0.0117f, 0x1.000002p0f, 0x1p-126f};
#define N_SCALES (sizeof scales / sizeof scales[0])

static int supported(const rotary_convert_kernel *k) { return rotary_isa_supported(k->isa); }

/* Runs every kernel of from -> to this CPU can run over n elements of in and compares each output with want. */
static void check_all_kernels(rotary_dtype from, rotary_dtype to, const unsigned char *in, size_t n,
                              const uint32_t *want, float scale, const char *what) {
  unsigned char *out = malloc(n * 4 + 1);
  assert_non_null(out);
  size_t ran = 0;
  for (size_t k = 0; k < rotary_convert_count; k++) {
    const rotary_convert_kernel *kern = &rotary_convert_list[k];
    if (kern->from != from || kern->to != to || !supported(kern)) continue;
    ran++;
    memset(out, 0xa5, n * dt_size(to));
    kern->fn(in, out, n, scale);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
      const uint32_t got = get_bits(to, out, i);
      if (got != want[i] && bad++ < 5)
        print_error("%s %s scale %a: in 0x%08x want 0x%08x got 0x%08x\n", kern->name, what, (double)scale,
                    get_bits(from, in, i), want[i], got);
    }
    assert_int_equal(bad, 0);
  }
  assert_true(ran >= 1);
  free(out);
}

/* ---- the fp8 encoder ---- */

/* Hand-checked codes at the edges (scale 1): saturation, ties, subnormals, signed zero, NaN payloads, Inf. */
static void test_fp8_boundaries(void **state) {
  (void)state;
  static const struct { uint32_t x; uint8_t code; } cases[] = {
      {0x43e00000u, 0x7e}, /* 448: the largest finite */
      {0x43e80000u, 0x7e}, /* 464: halfway to 480; saturates to 448 */
      {0x43e40000u, 0x7e}, /* 456: rounds to 448 */
      {0x43f00000u, 0x7e}, /* 480 */
      {0x7f7fffffu, 0x7e}, /* FLT_MAX */
      {0x7f800000u, 0x7e}, /* +Inf saturates */
      {0xff800000u, 0xfe}, /* -Inf */
      {0xc3e80000u, 0xfe}, /* -464 */
      {0x43d00000u, 0x7d}, /* 416 = 1.625 * 2^8 */
      {0x43d80000u, 0x7e}, /* 432: tie between 416 (odd) and 448 (even) */
      {0x43c80000u, 0x7c}, /* 400: tie between 384 (even) and 416 */
      {0x43700000u, 0x77}, /* 240 */
      {0x3c800000u, 0x08}, /* 2^-6: the smallest normal */
      {0x3b000000u, 0x01}, /* 2^-9: the smallest subnormal */
      {0x3a800000u, 0x00}, /* 2^-10: tie between 0 and 2^-9 goes to 0 */
      {0x3a800001u, 0x01}, /* just above 2^-10 */
      {0xba800000u, 0x80}, /* -2^-10 gives -0 */
      {0x3b400000u, 0x02}, /* 3 * 2^-10: tie between 1 and 2 goes to 2 */
      {0x3ba00000u, 0x02}, /* 5 * 2^-10: tie between 2 and 3 goes to 2 */
      {0x3c700000u, 0x08}, /* 15 * 2^-10: tie between 7 * 2^-9 and 2^-6 goes to 0x08 */
      {0x3c6fffffu, 0x07}, /* just below it */
      {0x3c880000u, 0x08}, /* 2^-6 * 1.0625: tie between 0x08 and 0x09 */
      {0x3c980000u, 0x0a}, /* 2^-6 * 1.1875: tie between 0x09 and 0x0a */
      {0x00000001u, 0x00}, /* the smallest f32 subnormal */
      {0x80000001u, 0x80},
      {0x00000000u, 0x00},
      {0x80000000u, 0x80}, /* -0 kept */
      {0x7fc00000u, 0x7f}, /* NaN */
      {0xffc00000u, 0xff}, /* -NaN keeps its sign */
      {0x7f800001u, 0x7f}, /* signalling NaN */
      {0xff800001u, 0xff},
      {0x7fffffffu, 0x7f},
      {0xffbfffffu, 0xff},
      {0x3f800000u, 0x38}, /* 1 */
      {0xbf900000u, 0xb9}, /* -1.125 */
  };
  ref_fp8_init();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const float x = tu_bits_f32(cases[i].x);
    if (ref_fp8_round(x) != cases[i].code || rotary_fp8_e4m3_from_f32(x) != cases[i].code ||
        rotary_fp8_e4m3_encode(x, 1.0f) != cases[i].code)
      print_error("0x%08x: want 0x%02x, reference 0x%02x, library 0x%02x\n", cases[i].x, cases[i].code,
                  ref_fp8_round(x), rotary_fp8_e4m3_from_f32(x));
    assert_int_equal(ref_fp8_round(x), cases[i].code);
    assert_int_equal(rotary_fp8_e4m3_from_f32(x), cases[i].code);
    assert_int_equal(rotary_fp8_e4m3_encode(x, 1.0f), cases[i].code);
  }
}

/* One batch of f32 inputs: the library's scalar encoder and every f32 -> fp8 kernel against the reference. */
static void check_encode_batch(const uint32_t *bits, size_t n, float scale, const char *what) {
  uint32_t *want = malloc(n * sizeof *want);
  assert_non_null(want);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    const float x = tu_bits_f32(bits[i]);
    want[i] = ref_fp8_encode(x, scale);
    const uint8_t got = rotary_fp8_e4m3_encode(x, scale);
    if (got != want[i] && bad++ < 5)
      print_error("%s scale %a: 0x%08x want 0x%02x got 0x%02x\n", what, (double)scale, bits[i], want[i], got);
  }
  assert_int_equal(bad, 0);
  check_all_kernels(ROTARY_F32, ROTARY_FP8_E4M3, (const unsigned char *)bits, n, want, scale, what);
  free(want);
}

/* Every f32 that an f16 or a bf16 holds (all 2^16 patterns of each), at every scale. */
static void test_fp8_encode_exhaustive16(void **state) {
  (void)state;
  ref_fp8_init();
  uint32_t *bits = malloc(65536 * sizeof *bits);
  assert_non_null(bits);
  for (size_t s = 0; s < N_SCALES; s++) {
    for (uint32_t h = 0; h < 65536; h++) bits[h] = tu_f32_bits(tu_f16_to_f32((uint16_t)h));
    check_encode_batch(bits, 65536, scales[s], "f16 values");
    for (uint32_t h = 0; h < 65536; h++) bits[h] = h << 16;
    check_encode_batch(bits, 65536, scales[s], "bf16 patterns");
  }
  free(bits);
}

/* bf16 -> fp8 and f16 -> fp8 in one pass (the KV-cache write's v rows): all 2^16 patterns at every scale, each code
 * the reference encoding of the widened value. */
static void test_fp8_encode_16bit_all(void **state) {
  (void)state;
  ref_fp8_init();
  uint16_t *h = malloc(65536 * sizeof *h);
  uint32_t *want = malloc(65536 * sizeof *want);
  assert_true(h && want);
  for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
  for (size_t s = 0; s < N_SCALES; s++) {
    for (uint32_t i = 0; i < 65536; i++) want[i] = ref_fp8_encode(tu_bits_f32(i << 16), scales[s]);
    check_all_kernels(ROTARY_BF16, ROTARY_FP8_E4M3, (const unsigned char *)h, 65536, want, scales[s], "bf16 all");
    for (uint32_t i = 0; i < 65536; i++) want[i] = ref_fp8_encode(tu_f16_to_f32((uint16_t)i), scales[s]);
    check_all_kernels(ROTARY_F16, ROTARY_FP8_E4M3, (const unsigned char *)h, 65536, want, scales[s], "f16 all");
  }
  free(h);
  free(want);
}

/* Random f32: any bit pattern, values spread over the fp8 range and beyond, and points near every code's rounding
 * boundaries (midpoints between neighbours, one f32 ulp either side) times the scale. */
static void test_fp8_encode_random(void **state) {
  (void)state;
  ref_fp8_init();
  const size_t batch = 1u << 16, batches = tu_quick() ? 1 : 8; /* 8 x 64 Ki x 6 scales: about 3.1 M inputs */
  uint32_t *bits = malloc(batch * sizeof *bits);
  assert_non_null(bits);
  tu_rng r;
  tu_rng_seed(&r, 0xf8e4a3u);
  /* the brief's four scales, one just above 1 (its reciprocal is inexact: a kernel must divide) and a power of two */
  static const float enc_scales[] = {1.0f, 0.5f, 3.7f, 1e-3f, 0x1.000002p0f, 0x1p-10f};
  for (size_t s = 0; s < sizeof enc_scales / sizeof enc_scales[0]; s++) {
    const float scale = enc_scales[s];
    for (size_t b = 0; b < batches; b++) {
      /* odd batches hold only values at or above 2^-6 after the division: whole vectors take a kernel's fast path
       * (one NaN or tiny value sends its neighbours down the slow one) */
      const int normal_only = (int)(b & 1);
      for (size_t i = 0; i < batch; i++) {
        const uint64_t kind = normal_only ? 1 + tu_rng_below(&r, 3) : tu_rng_below(&r, 4);
        if (kind == 0) {
          bits[i] = (uint32_t)tu_rng_u64(&r);
        } else if (kind == 1) {
          bits[i] = tu_f32_bits(tu_rng_f32_wide(&r, normal_only ? -5 : -14, 10) * scale);
        } else {
          /* a midpoint between two neighbouring codes (or 448 and 480), nudged by -1, 0 or +1 ulp */
          const unsigned c = normal_only ? 8 + (unsigned)tu_rng_below(&r, FP8_NFINITE - 8)
                                         : (unsigned)tu_rng_below(&r, FP8_NFINITE);
          const double hi = c + 1 < FP8_NFINITE ? fp8_mag[c + 1] : 480.0;
          float m = (float)((fp8_mag[c] + hi) / 2 * scale);
          const uint64_t nudge = tu_rng_below(&r, 3);
          if (nudge == 0) m = nextafterf(m, 0.0f);
          if (nudge == 2) m = nextafterf(m, INFINITY);
          if (tu_rng_below(&r, 2)) m = -m;
          bits[i] = tu_f32_bits(m);
        }
      }
      check_encode_batch(bits, batch, scale, "random");
    }
  }
  free(bits);
}

/* ---- decoding, f16, bf16 ---- */

/* All 256 codes at every scale; values checked against the spec's formula. */
static void test_fp8_decode_all(void **state) {
  (void)state;
  uint8_t codes[256];
  uint32_t want[256];
  for (unsigned c = 0; c < 256; c++) codes[c] = (uint8_t)c;
  /* the formula itself, in a few hand-checked codes */
  assert_true(ref_fp8_magnitude(0x7e) == 448.0 && ref_fp8_magnitude(0x01) == 0x1p-9);
  assert_true(ref_fp8_magnitude(0x08) == 0x1p-6 && ref_fp8_magnitude(0x38) == 1.0);
  assert_true(ref_fp8_magnitude(0x07) == 7 * 0x1p-9 && ref_fp8_magnitude(0x77) == 240.0);
  for (size_t s = 0; s < N_SCALES; s++) {
    for (unsigned c = 0; c < 256; c++) {
      want[c] = ref_fp8_decode_bits((uint8_t)c, scales[s]);
      assert_int_equal(tu_f32_bits(rotary_fp8_e4m3_decode((uint8_t)c, scales[s])), want[c]);
      if (scales[s] == 1.0f) {
        assert_int_equal(tu_f32_bits(rotary_fp8_e4m3_to_f32((uint8_t)c)), want[c]);
        /* every finite code encodes back to itself */
        if ((c & 0x7fu) != 0x7fu) assert_int_equal(rotary_fp8_e4m3_from_f32(rotary_fp8_e4m3_to_f32((uint8_t)c)), c);
      }
    }
    check_all_kernels(ROTARY_FP8_E4M3, ROTARY_F32, codes, 256, want, scales[s], "all codes");
  }
}

/* f16 and bf16 to f32: all 2^16 patterns; f32 to f16 and bf16: every f16/bf16 value, their midpoints and random
 * bits, against the conversions of test_util (written from the formats, independent of convert.h). */
static void test_f16_bf16(void **state) {
  (void)state;
  const size_t n = 65536;
  uint16_t *h = malloc(n * sizeof *h);
  uint32_t *f = malloc(n * sizeof *f), *want = malloc(n * sizeof *want);
  assert_true(h && f && want);
  static const rotary_dtype half[2] = {ROTARY_F16, ROTARY_BF16};
  tu_rng r;
  tu_rng_seed(&r, 1616u);
  for (int t = 0; t < 2; t++) {
    const rotary_dtype dt = half[t];
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)i;
    for (size_t i = 0; i < n; i++) want[i] = ref_convert(dt, ROTARY_F32, h[i], 1.0f);
    check_all_kernels(dt, ROTARY_F32, (const unsigned char *)h, n, want, 3.7f, "all patterns");
    for (int pass = 0; pass < 3; pass++) {
      for (size_t i = 0; i < n; i++) {
        const uint32_t v = ref_convert(dt, ROTARY_F32, (uint32_t)i, 1.0f);
        /* pass 0: the values; 1: halfway to the next pattern's value (ties) and one ulp off; 2: random bits */
        if (pass == 0) f[i] = v;
        else if (pass == 1) f[i] = v + (dt == ROTARY_F16 ? 0x1000u : 0x8000u) - (uint32_t)tu_rng_below(&r, 3) + 1u;
        else f[i] = (uint32_t)tu_rng_u64(&r);
      }
      for (size_t i = 0; i < n; i++) want[i] = ref_convert(ROTARY_F32, dt, f[i], 1.0f);
      check_all_kernels(ROTARY_F32, dt, (const unsigned char *)f, n, want, 0.25f, "values, ties, random");
    }
  }
  free(h);
  free(f);
  free(want);
}

/* ---- every kernel against the scalar one: lengths 0 .. 100 (and a few longer), any byte address ---- */

static const uint32_t special_f32[] = {
    0x7fc00000u, 0xffc00001u, 0x7f800001u, 0xffbfffffu, 0x7fa00000u, 0x7f800000u, 0xff800000u, 0x00000000u,
    0x80000000u, 0x00000001u, 0x807fffffu, 0x7f7fffffu, 0x43e00000u, 0x43e80000u, 0xc3e80001u, 0x43f00000u,
    0x3b000000u, 0x3a800000u, 0x3b400000u, 0x3c700000u, 0x3c800000u, 0x477fe000u, 0x477ff000u, 0x33000000u,
    0x3f808000u, 0x3f818000u, 0x387fc000u, 0xb8800000u, 0x3c7fffffu, 0xbc000000u};
#define N_SPECIAL_F32 (sizeof special_f32 / sizeof special_f32[0])
static const uint16_t special_16[] = {0x7c01u, 0xfd55u, 0x7e00u, 0x7c00u, 0xfc00u, 0x0001u, 0x83ffu, 0x8000u,
                                      0x7fc0u, 0xff81u, 0x7f80u, 0x0080u, 0x007fu, 0x7bffu, 0x0400u, 0x0000u};
#define N_SPECIAL_16 (sizeof special_16 / sizeof special_16[0])

static uint32_t random_input(tu_rng *r, rotary_dtype from, float scale) {
  const uint64_t kind = tu_rng_below(r, 4);
  if (from == ROTARY_FP8_E4M3) return (uint32_t)tu_rng_below(r, 256);
  if (from != ROTARY_F32)
    return kind == 0 ? special_16[tu_rng_below(r, N_SPECIAL_16)] : (uint32_t)tu_rng_below(r, 65536);
  if (kind == 0) return special_f32[tu_rng_below(r, N_SPECIAL_F32)];
  if (kind == 1) return (uint32_t)tu_rng_u64(r);
  return tu_f32_bits(tu_rng_f32_wide(r, -14, 10) * scale);
}

static const rotary_convert_kernel *scalar_kernel(rotary_dtype from, rotary_dtype to) {
  for (size_t k = 0; k < rotary_convert_count; k++) {
    const rotary_convert_kernel *kern = &rotary_convert_list[k];
    if (kern->from == from && kern->to == to && kern->isa == ROTARY_ISA_SCALAR) return kern;
  }
  return NULL;
}

/* One kernel, one length, one pair of byte offsets: bits equal to the scalar kernel's and the reference's, no byte
 * written outside the output, the input left alone. An input at offset 0 ends right before an unmapped page (a read
 * past its end faults); at offset 1 it starts at an odd address (ASan builds check its end). */
static size_t check_case(const rotary_convert_kernel *k, size_t n, size_t in_off, size_t out_off, float scale,
                         tu_rng *r) {
  const rotary_convert_kernel *ref = scalar_kernel(k->from, k->to);
  assert_non_null(ref);
  const size_t isz = dt_size(k->from), osz = dt_size(k->to), pad = 40;
  tu_guarded g;
  unsigned char *in = in_off ? malloc(n * isz + in_off) : tu_guard_alloc(&g, n * isz, TU_GUARD_END);
  unsigned char *in_copy = malloc(n * isz + pad);
  unsigned char *out = malloc(n * osz + 2 * pad), *out_ref = malloc(n * osz + 2 * pad);
  assert_true(in && in_copy && out && out_ref);
  memset(in, 0x5a, in_off); /* the byte before an odd-address input: compared below, so defined */
  for (size_t i = 0; i < n; i++) put_bits(k->from, in + in_off, i, random_input(r, k->from, scale));
  memcpy(in_copy, in, n * isz + in_off);
  tu_canary_fill(out, n * osz + 2 * pad, 77);
  tu_canary_fill(out_ref, n * osz + 2 * pad, 77);
  k->fn(in + in_off, out + pad + out_off, n, scale);
  ref->fn(in + in_off, out_ref + pad + out_off, n, scale);
  size_t bad = 0;
  if (memcmp(out, out_ref, n * osz + 2 * pad) != 0) bad++; /* outputs and the canaries around them */
  if (memcmp(in, in_copy, n * isz + in_off) != 0) bad++;
  for (size_t i = 0; i < n; i++) {
    const uint32_t want = ref_convert(k->from, k->to, get_bits(k->from, in + in_off, i), scale);
    if (get_bits(k->to, out + pad + out_off, i) != want) bad++;
  }
  if (bad) print_error("%s n %zu in+%zu out+%zu scale %a: %zu mismatches\n", k->name, n, in_off, out_off,
                       (double)scale, bad);
  if (in_off) free(in);
  else tu_guard_free(&g);
  free(in_copy);
  free(out);
  free(out_ref);
  return bad;
}

static void test_kernels_tails(void **state) {
  (void)state;
  ref_fp8_init();
  tu_rng r;
  tu_rng_seed(&r, 0xc0471u);
  static const size_t longer[] = {127, 128, 129, 255, 256, 1000, 4099};
  size_t ran = 0, bad = 0;
  for (size_t k = 0; k < rotary_convert_count; k++) {
    const rotary_convert_kernel *kern = &rotary_convert_list[k];
    if (!supported(kern)) {
      print_message("skipped (this CPU cannot run it): %s\n", kern->name);
      continue;
    }
    ran++;
    const int fp8 = kern->from == ROTARY_FP8_E4M3 || kern->to == ROTARY_FP8_E4M3;
    for (size_t s = 0; s < (fp8 ? N_SCALES : 2); s++)
      for (size_t n = 0; n <= 100 + sizeof longer / sizeof longer[0]; n++)
        for (size_t off = 0; off < 4; off++)
          bad += check_case(kern, n <= 100 ? n : longer[n - 101], off & 1, off >> 1, scales[s], &r);
  }
  print_message("%zu of %zu conversion kernels ran\n", ran, rotary_convert_count);
  assert_int_equal(bad, 0);
}

/* One special value (NaN, Inf, zero, subnormal, tie, ...) at each position of 64 ordinary values: a vector kernel's
 * fast path for blocks of ordinary values must notice it wherever it sits. */
static void test_fp8_lone_specials(void **state) {
  (void)state;
  ref_fp8_init();
  tu_rng r;
  tu_rng_seed(&r, 0x10e5u);
  uint32_t bits[64], want[64];
  for (size_t s = 0; s < N_SPECIAL_F32; s++)
    for (size_t p = 0; p < 64; p++) {
      for (size_t i = 0; i < 64; i++) bits[i] = tu_f32_bits(tu_rng_f32_wide(&r, -5, 8) * 3.7f);
      bits[p] = special_f32[s];
      for (size_t i = 0; i < 64; i++) want[i] = ref_fp8_encode(tu_bits_f32(bits[i]), 3.7f);
      check_all_kernels(ROTARY_F32, ROTARY_FP8_E4M3, (const unsigned char *)bits, 64, want, 3.7f, "lone special");
      /* the same values as bf16 (truncated: still ordinary, the special kept), through the bf16 encoders */
      uint16_t h[64];
      for (size_t i = 0; i < 64; i++) {
        h[i] = (uint16_t)(bits[i] >> 16);
        want[i] = ref_fp8_encode(tu_bits_f32((uint32_t)h[i] << 16), 3.7f);
      }
      check_all_kernels(ROTARY_BF16, ROTARY_FP8_E4M3, (const unsigned char *)h, 64, want, 3.7f, "lone special bf16");
      /* and as f16 (rounded: the ordinary values stay ordinary, the special stays special or becomes one) */
      for (size_t i = 0; i < 64; i++) {
        h[i] = (uint16_t)tu_f32_to_f16(tu_bits_f32(bits[i]));
        want[i] = ref_fp8_encode(tu_f16_to_f32(h[i]), 3.7f);
      }
      check_all_kernels(ROTARY_F16, ROTARY_FP8_E4M3, (const unsigned char *)h, 64, want, 3.7f, "lone special f16");
    }
}

/* ---- the list and the choice ---- */

static const char *dt_name(rotary_dtype dt) {
  switch (dt) {
    case ROTARY_F32: return "f32";
    case ROTARY_F16: return "f16";
    case ROTARY_BF16: return "bf16";
    case ROTARY_FP8_E4M3: return "fp8";
  }
  return "?";
}

static void test_list_and_select(void **state) {
  (void)state;
  static const rotary_dtype pairs[8][2] = {{ROTARY_F16, ROTARY_F32},  {ROTARY_BF16, ROTARY_F32},
                                           {ROTARY_FP8_E4M3, ROTARY_F32}, {ROTARY_F32, ROTARY_F16},
                                           {ROTARY_F32, ROTARY_BF16}, {ROTARY_F32, ROTARY_FP8_E4M3},
                                           {ROTARY_BF16, ROTARY_FP8_E4M3}, {ROTARY_F16, ROTARY_FP8_E4M3}};
  for (size_t k = 0; k < rotary_convert_count; k++) {
    const rotary_convert_kernel *kern = &rotary_convert_list[k];
    char name[96];
    snprintf(name, sizeof name, "rotary_%s_to_%s_convert__%s%s", dt_name(kern->from), dt_name(kern->to),
             rotary_isa_name(kern->isa), kern->nt ? "_nt" : "");
    assert_string_equal(kern->name, name);
    assert_non_null(kern->fn);
  }
  for (size_t p = 0; p < 8; p++) {
    const rotary_convert_kernel *sel = rotary_convert_select(pairs[p][0], pairs[p][1]);
    assert_non_null(sel);
    assert_non_null(scalar_kernel(pairs[p][0], pairs[p][1]));
    assert_int_equal(sel->from, pairs[p][0]);
    assert_int_equal(sel->to, pairs[p][1]);
    assert_true(rotary_isa_enabled(sel->isa));
    /* the last enabled row of the list for the pair (streaming rows aside); its streaming variant, if any, has the
     * same ISA */
    const rotary_convert_kernel *last = NULL, *last_nt = NULL;
    for (size_t k = 0; k < rotary_convert_count; k++)
      if (rotary_convert_list[k].from == pairs[p][0] && rotary_convert_list[k].to == pairs[p][1] &&
          rotary_isa_enabled(rotary_convert_list[k].isa))
        *(rotary_convert_list[k].nt ? &last_nt : &last) = &rotary_convert_list[k];
    assert_ptr_equal(sel, last);
    const rotary_convert_kernel *nt = rotary_convert_select_nt(pairs[p][0], pairs[p][1]);
    if (last_nt && last_nt->isa == sel->isa) assert_ptr_equal(nt, last_nt);
    else assert_null(nt);
    if (nt) assert_true(nt->nt && nt->from == sel->from && nt->to == sel->to);
    print_message("%s -> %s: %s\n", dt_name(pairs[p][0]), dt_name(pairs[p][1]), sel->name);
  }
  assert_null(rotary_convert_select(ROTARY_F32, ROTARY_F32));
  assert_null(rotary_convert_select_nt(ROTARY_F32, ROTARY_F32));
  assert_null(rotary_convert_select_nt((rotary_dtype)7, ROTARY_F32));
  assert_null(rotary_convert_select(ROTARY_F16, ROTARY_BF16));
  assert_null(rotary_convert_select((rotary_dtype)7, ROTARY_F32));
  assert_null(rotary_convert_select(ROTARY_F32, (rotary_dtype)-1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_and_select),
      cmocka_unit_test(test_fp8_boundaries),
      cmocka_unit_test(test_fp8_encode_exhaustive16),
      cmocka_unit_test(test_fp8_encode_16bit_all),
      cmocka_unit_test(test_fp8_encode_random),
      cmocka_unit_test(test_fp8_lone_specials),
      cmocka_unit_test(test_fp8_decode_all),
      cmocka_unit_test(test_f16_bf16),
      cmocka_unit_test(test_kernels_tails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
