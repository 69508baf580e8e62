/* test_rotate_fp8.c: the rotate-to-fp8 kernels against the three passes they replace, on every ISA, with guard pages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert_kernels.h"
#include "fp8.h"
#include "kernels.h"
#include "rotate_fp8_kernels.h"
#include "test_util.h"

/* Powers of two (the vector kernels multiply by the reciprocal) and others (they divide), small and large. */
static const float scales[] = {1.0f / 128.0f, 0.25f, 1.0f, 4.0f, 0.0423f, 3.0f, 1e-3f, 448.0f};

/* Special inputs: NaNs of both signs, infinities, zeros, an f32 subnormal, the f16 maximum, a value past bf16's
 * fp8 range and one an f16 turns into Inf. */
static float special(tu_rng *r) {
  static const uint32_t bits[] = {0x7fc00000u, 0xffc00001u, 0x7f800000u, 0xff800000u, 0x00000000u,
                                  0x80000000u, 0x00000400u, 0x477fe000u, 0x5e000000u, 0x47800000u};
  return tu_bits_f32(bits[tu_rng_below(r, sizeof bits / sizeof bits[0])]);
}

/* One input value: mostly of the size of real k rows, some across many binades (fp8 subnormals and saturation),
 * some special. */
static float draw(tu_rng *r) {
  const uint64_t k = tu_rng_below(r, 32);
  if (k == 0) return special(r);
  if (k < 6) return tu_rng_f32_wide(r, -20, 12);
  return tu_rng_f32(r, -4.0f, 4.0f);
}

/* The three passes of the KV-cache write before these kernels (kv_execute.c's k_through_f32), with the scalar
 * kernels: each head row widened to f32, rotated in place, encoded. */
static void reference(rotary_dtype dt, rotary_pairing pr, const unsigned char *in, ptrdiff_t in_stride, uint8_t *out,
                      ptrdiff_t out_stride, size_t heads, size_t hd, size_t rd, const float *cos, const float *sin,
                      float scale) {
  float *row = malloc(hd * sizeof(float));
  assert_non_null(row);
  const size_t esize = tu_dtype_size(dt);
  for (size_t h = 0; h < heads; h++) {
    const unsigned char *x = in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    if (dt == ROTARY_F32) memcpy(row, x, hd * sizeof(float));
    else if (dt == ROTARY_F16) rotary_f16_to_f32_convert__scalar(x, row, hd, 1.0f);
    else rotary_bf16_to_f32_convert__scalar(x, row, hd, 1.0f);
    if (pr == ROTARY_PAIRING_HALF) rotary_f32_rotate_half__scalar(row, 0, row, 0, 1, hd, rd, cos, sin, -1);
    else rotary_f32_rotate_interleaved__scalar(row, 0, row, 0, 1, hd, rd, cos, sin, -1);
    rotary_f32_to_fp8_convert__scalar(row, out + (ptrdiff_t)h * out_stride, hd, scale);
  }
  free(row);
}

/* Every kernel this CPU runs gives the reference's bytes, over head dims with and without a vector tail, partial
 * rotary dims, gaps between rows on both sides, input at every byte offset, every scale; nothing is read past the
 * input, cos or sin (each ends against a guard page) and nothing is written outside the output rows (canaries in
 * the gaps, a guard page after the last row). */
static void test_matches_three_passes(void **state) {
  (void)state;
  static const size_t hds[] = {2, 14, 32, 48, 64, 80, 96, 128, 130, 256};
  tu_rng r;
  tu_rng_seed(&r, 0x6a09e667f3bcc908u);
  tu_failures = 0;
  size_t calls = 0, ran[8] = {0};
  for (int dti = ROTARY_F32; dti <= ROTARY_BF16; dti++) {
    const rotary_dtype dt = (rotary_dtype)dti;
    const size_t esize = tu_dtype_size(dt);
    for (int pri = 0; pri < 2; pri++) {
      const rotary_pairing pr = (rotary_pairing)pri;
      for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const size_t hd = hds[hi];
        size_t rds[128];
        const size_t n_rd = tu_rotary_dims(hd, rds);
        for (size_t ri = 0; ri < n_rd; ri += 1 + n_rd / 6) {
          const size_t rd = rds[ri], heads = 1 + tu_rng_below(&r, 4);
          const size_t in_gap = tu_rng_below(&r, 5), out_gap = tu_rng_below(&r, 9), offset = tu_rng_below(&r, 4);
          const ptrdiff_t in_stride = (ptrdiff_t)(hd + in_gap), out_stride = (ptrdiff_t)(hd + out_gap);
          const size_t in_bytes = offset + ((heads - 1) * (size_t)in_stride + hd) * esize;
          const size_t out_bytes = (heads - 1) * (size_t)out_stride + hd;
          tu_guarded gin, gcos, gsin, gout;
          unsigned char *in_buf = tu_guard_alloc(&gin, in_bytes, TU_GUARD_END);
          float *cs = (float *)(void *)tu_guard_alloc(&gcos, rd / 2 * sizeof(float), TU_GUARD_END);
          float *sn = (float *)(void *)tu_guard_alloc(&gsin, rd / 2 * sizeof(float), TU_GUARD_END);
          uint8_t *out = tu_guard_alloc(&gout, out_bytes, TU_GUARD_END);
          uint8_t *want = malloc(out_bytes);
          assert_true(in_buf && cs && sn && out && want);
          unsigned char *in = in_buf + offset;
          for (size_t i = 0; i < in_bytes - offset; i += esize) {
            const float v = draw(&r);
            if (dt == ROTARY_F32) memcpy(in + i, &v, 4);
            else tu_store(dt, in + i, 0, v);
          }
          for (size_t j = 0; j < rd / 2; j++) {
            const double a = tu_rng_unit(&r) * 6.283185307179586;
            cs[j] = (float)cos(a);
            sn[j] = (float)sin(a);
          }
          if (tu_rng_below(&r, 8) == 0) cs[tu_rng_below(&r, rd / 2)] = 1e30f; /* a caller's row may be anything */
          assert_int_equal(tu_guard_readonly(&gin), 0);
          for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si += 1 + tu_rng_below(&r, 3)) {
            const float scale = scales[si];
            tu_canary_fill(want, out_bytes, 7);
            reference(dt, pr, in, in_stride, want, out_stride, heads, hd, rd, cs, sn, scale);
            for (size_t k = 0; k < rotary_rotate_fp8_count; k++) {
              const rotary_rotate_fp8_kernel *K = &rotary_rotate_fp8_list[k];
              if (K->dtype != dt || K->pairing != pr || !rotary_isa_supported(K->isa)) continue;
              tu_canary_fill(out, out_bytes, 7);
              K->fn(in, in_stride, out, out_stride, heads, hd, rd, cs, sn, scale);
              calls++;
              ran[K->isa]++;
              for (size_t b = 0; b < out_bytes; b++)
                if (out[b] != want[b]) {
                  tu_check(0, "%s hd %zu rd %zu heads %zu scale %g offset %zu: byte %zu is %02x, want %02x", K->name,
                           hd, rd, heads, (double)scale, offset, b, out[b], want[b]);
                  break;
                }
            }
          }
          tu_guard_free(&gin), tu_guard_free(&gcos), tu_guard_free(&gsin), tu_guard_free(&gout);
          free(want);
        }
      }
    }
  }
  printf("%zu kernel calls (scalar %zu, avx2 %zu, avx512 %zu with the _nt ones, neon %zu)\n", calls,
         ran[ROTARY_ISA_SCALAR], ran[ROTARY_ISA_AVX2], ran[ROTARY_ISA_AVX512], ran[ROTARY_ISA_NEON]);
  assert_int_equal(tu_failures, 0);
  assert_true(ran[ROTARY_ISA_SCALAR] > 0);
}

/* Values worked out by hand from the formula, the NaN rule and the fp8 rounding (scale 1), on every f32 kernel: a
 * NaN input gives its sign to both codes; Inf times a zero cos is a NaN with no input NaN behind it (0x7F); Inf
 * saturates to 448 (0x7E); 0.15 = 1.2 * 2^-3 rounds to 1.25 * 2^-3 (exponent field 4, mantissa 2: 0x22). */
static void test_hand_values(void **state) {
  (void)state;
  const struct {
    float x0, x1, c, s;
    uint8_t y0, y1;
  } cases[] = {
      {-NAN, 1.0f, 1.0f, 0.0f, 0xff, 0xff},     /* x0 a negative NaN: both results take it */
      {1.0f, NAN, 1.0f, 0.0f, 0x7f, 0x7f},      /* x1's NaN when x0 is a number */
      {INFINITY, 1.0f, 0.0f, 1.0f, 0x7f, 0x7e}, /* Inf * 0 - 1: the default NaN; Inf * 1 + 0: saturates */
      {0.3f, 0.0f, 0.5f, 0.0f, 0x22, 0x00},     /* 0.3 * 0.5 = 0.15 -> 0.15625 */
      {-1000.0f, 0.0f, 1.0f, 0.0f, 0xfe, 0x00}, /* -1000 saturates to -448; -1000 * 0 + 0 * 1 = -0 + 0 = +0 */
      {0.001f, 0.0f, 1.0f, 0.0f, 0x01, 0x00},   /* 0.001 = 0.512 * 2^-9: subnormal code 1 */
  };
  tu_failures = 0;
  for (size_t k = 0; k < rotary_rotate_fp8_count; k++) {
    const rotary_rotate_fp8_kernel *K = &rotary_rotate_fp8_list[k];
    if (K->dtype != ROTARY_F32 || !rotary_isa_supported(K->isa)) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      /* 17 pairs: one vector step and a one-pair tail; the case in pair 16 (the tail) and pair 3 */
      enum { PAIRS = 17 };
      float x[2 * PAIRS], c[PAIRS], s[PAIRS];
      uint8_t y[2 * PAIRS];
      for (size_t j = 0; j < PAIRS; j++) {
        const int at = j == 3 || j == 16;
        const size_t i0 = K->pairing == ROTARY_PAIRING_HALF ? j : 2 * j;
        const size_t i1 = K->pairing == ROTARY_PAIRING_HALF ? j + PAIRS : 2 * j + 1;
        x[i0] = at ? cases[i].x0 : 1.0f;
        x[i1] = at ? cases[i].x1 : 0.0f;
        c[j] = at ? cases[i].c : 1.0f;
        s[j] = at ? cases[i].s : 0.0f;
      }
      K->fn(x, 0, y, 0, 1, 2 * PAIRS, 2 * PAIRS, c, s, 1.0f);
      for (size_t j = 3; j < PAIRS; j += 13) {
        const size_t i0 = K->pairing == ROTARY_PAIRING_HALF ? j : 2 * j;
        const size_t i1 = K->pairing == ROTARY_PAIRING_HALF ? j + PAIRS : 2 * j + 1;
        tu_check(y[i0] == cases[i].y0 && y[i1] == cases[i].y1, "%s case %zu pair %zu: %02x %02x, want %02x %02x",
                 K->name, i, j, y[i0], y[i1], cases[i].y0, cases[i].y1);
      }
    }
  }
  assert_int_equal(tu_failures, 0);
}

/* The _nt kernels stream an output line only where it starts on a 64-byte boundary (half pairing: both halves'
 * lines, so rotary_dim a multiple of 128, or rotary_dim 64, one line; interleaved: rotary_dim a multiple of 64):
 * rows on lines (the common cache rows), rows 16, 48 and 1 byte off a line, rows that take no streamed line in their
 * rotated part (head_dim 192 and rotary_dim 96, half pairing), and elements past rotary_dim (streamed by the encoder
 * from their first line boundary on); every one gives the bytes of the scalar kernel, and the bytes around the rows
 * stay as they were. */
static void test_streamed_lines(void **state) {
  (void)state;
  static const size_t shapes[][2] = {{128, 128}, {256, 256}, {128, 64}, {192, 192}, {64, 64}, {256, 96}};
  static const size_t offsets[] = {0, 16, 1, 48};
  tu_rng r;
  tu_rng_seed(&r, 0xbb67ae8584caa73bu);
  tu_failures = 0;
  size_t ran = 0;
  for (size_t k = 0; k < rotary_rotate_fp8_count; k++) {
    const rotary_rotate_fp8_kernel *K = &rotary_rotate_fp8_list[k];
    if (!K->nt || !rotary_isa_supported(K->isa)) continue;
    const rotary_rotate_fp8_kernel *ref = NULL;
    for (size_t i = 0; i < rotary_rotate_fp8_count; i++)
      if (rotary_rotate_fp8_list[i].isa == ROTARY_ISA_SCALAR && rotary_rotate_fp8_list[i].dtype == K->dtype &&
          rotary_rotate_fp8_list[i].pairing == K->pairing)
        ref = &rotary_rotate_fp8_list[i];
    assert_non_null(ref);
    const size_t esize = tu_dtype_size(K->dtype);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
      for (size_t oi = 0; oi < sizeof offsets / sizeof offsets[0]; oi++) {
        const size_t hd = shapes[si][0], rd = shapes[si][1], heads = 3, off = offsets[oi];
        const size_t bytes = (heads * hd + 2 * 64 + off + 63) / 64 * 64;
        unsigned char *in = malloc(heads * hd * esize), *got = aligned_alloc(64, bytes), *want = aligned_alloc(64, bytes);
        float cs[128], sn[128];
        assert_true(in && got && want);
        for (size_t i = 0; i < heads * hd; i++) {
          const float v = draw(&r);
          if (K->dtype == ROTARY_F32) memcpy(in + 4 * i, &v, 4);
          else tu_store(K->dtype, in, (ptrdiff_t)i, v);
        }
        for (size_t j = 0; j < rd / 2; j++) cs[j] = (float)cos(0.3 * (double)j), sn[j] = (float)sin(0.3 * (double)j);
        tu_canary_fill(got, bytes, 11);
        tu_canary_fill(want, bytes, 11);
        const float scale = (si & 1) ? 0.0423f : 0.25f;
        ref->fn(in, (ptrdiff_t)hd, want + 64 + off, (ptrdiff_t)hd, heads, hd, rd, cs, sn, scale);
        K->fn(in, (ptrdiff_t)hd, got + 64 + off, (ptrdiff_t)hd, heads, hd, rd, cs, sn, scale);
        rotary_stream_fence();
        ran++;
        tu_check(!memcmp(got, want, bytes), "%s hd %zu rd %zu offset %zu: not the scalar kernel's bytes", K->name, hd,
                 rd, off);
        free(in), free(got), free(want);
      }
  }
  printf("%zu streamed cases\n", ran);
  assert_int_equal(tu_failures, 0);
  if (rotary_isa_supported(ROTARY_ISA_AVX512)) assert_true(ran > 0); /* the AVX-512 _nt kernels exist and ran */
}

/* Dispatch picks the best enabled kernel for every dtype and pairing (its streaming variant: the same ISA), and
 * nothing for an unknown one. */
static void test_select(void **state) {
  (void)state;
  for (int dt = ROTARY_F32; dt <= ROTARY_BF16; dt++)
    for (int pr = 0; pr < 2; pr++) {
      const rotary_rotate_fp8_kernel *best = rotary_rotate_fp8_select((rotary_dtype)dt, (rotary_pairing)pr);
      assert_non_null(best);
      assert_true(best->dtype == (rotary_dtype)dt && best->pairing == (rotary_pairing)pr);
      assert_true(rotary_isa_enabled(best->isa) && !best->nt);
      const rotary_rotate_fp8_kernel *nt = rotary_rotate_fp8_select_nt((rotary_dtype)dt, (rotary_pairing)pr);
      if (nt) assert_true(nt->nt && nt->isa == best->isa && nt->dtype == best->dtype && nt->pairing == best->pairing);
      for (size_t k = 0; k < rotary_rotate_fp8_count; k++) {
        const rotary_rotate_fp8_kernel *K = &rotary_rotate_fp8_list[k];
        if (K->dtype == best->dtype && K->pairing == best->pairing && rotary_isa_enabled(K->isa)) {
          assert_true(K->isa <= best->isa);
          if (K->nt && K->isa == best->isa) assert_ptr_equal(nt, K);
        }
      }
    }
  assert_null(rotary_rotate_fp8_select(ROTARY_FP8_E4M3, ROTARY_PAIRING_HALF));
  assert_null(rotary_rotate_fp8_select(ROTARY_F32, (rotary_pairing)2));
  assert_null(rotary_rotate_fp8_select_nt(ROTARY_FP8_E4M3, ROTARY_PAIRING_HALF));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_select),
      cmocka_unit_test(test_hand_values),
      cmocka_unit_test(test_matches_three_passes),
      cmocka_unit_test(test_streamed_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
