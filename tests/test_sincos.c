/* test_sincos.c: the cos/sin rows kernels: every compiled variant bit-identical to the scalar one, and within 1 ulp
 * of the true value on adversarial angles (near multiples of pi/2, huge positions, tiny and huge frequencies). */
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

#include "oracle_exact.h"
#include "sincos.h"
#include "test_util.h"
#include "true_sweep.h"

#define MAX_HALF 67

/* One input set: a position, up to MAX_HALF frequencies, a scaling. */
typedef struct rows_case {
  int64_t pos;
  size_t half;
  double scaling;
  double w[MAX_HALF];
} rows_case;

static const double scalings[] = {1.0, 0.5, 1.3465735902799727, 1e-3, 1.7, 3e20};

/* A frequency putting pos * w within a few ulps of k * pi/2 (k from the generator): the hardest reductions. */
static double near_quadrant(tu_rng *r, int64_t pos) {
  long double k = (long double)(tu_rng_below(r, 1u << 30) + 1);
  if (tu_rng_below(r, 2)) k = (long double)(tu_rng_below(r, 50) + 1);
  long double target = k * 1.5707963267948966192313216916398L / (long double)pos;
  double w = (double)target;
  for (int d = (int)tu_rng_below(r, 5) - 2; d > 0; d--) w = nextafter(w, INFINITY);
  for (int d = (int)tu_rng_below(r, 5) - 2; d > 0; d--) w = nextafter(w, 0.0);
  return w > 0 ? w : DBL_MIN;
}

/* Adversarial and random cases; n cases are generated from seed. */
static void make_case(tu_rng *r, size_t index, rows_case *c) {
  static const int64_t special_pos[] = {0, 1, 2, 3, 7, 4095, 1 << 20, (1 << 20) - 1, INT32_MAX, 1LL << 40,
                                        (1LL << 52) + 1, ROTARY_MAX_POSITION - 1, ROTARY_MAX_POSITION};
  const size_t n_special = sizeof special_pos / sizeof special_pos[0];
  c->half = 1 + (size_t)tu_rng_below(r, MAX_HALF);
  c->scaling = scalings[tu_rng_below(r, sizeof scalings / sizeof scalings[0])];
  switch (index % 4) {
    case 0: c->pos = (int64_t)tu_rng_below(r, 1u << 20); break;
    case 1: c->pos = special_pos[tu_rng_below(r, n_special)]; break;
    case 2: c->pos = (int64_t)tu_rng_below(r, (uint64_t)ROTARY_MAX_POSITION + 1); break;
    default: c->pos = (int64_t)tu_rng_below(r, (uint64_t)1 << (1 + tu_rng_below(r, 52))); break;
  }
  for (size_t i = 0; i < c->half; i++) {
    switch (tu_rng_below(r, 6)) {
      case 0: c->w[i] = pow(10000.0, -(double)tu_rng_below(r, 64) / 64.0); break;
      case 1: c->w[i] = c->pos ? near_quadrant(r, c->pos) : 1.0; break;
      case 2: c->w[i] = ldexp(1.0 + tu_rng_unit(r), (int)tu_rng_below(r, 2100) - 1074); break; /* any binade */
      case 3: c->w[i] = tu_rng_below(r, 2) ? DBL_TRUE_MIN : DBL_MAX; break;
      case 4: c->w[i] = ldexp(1.0 + tu_rng_unit(r), (int)tu_rng_below(r, 60) - 40); break;
      default: c->w[i] = tu_rng_unit(r) + 1e-300; break;
    }
    if (!(c->w[i] > 0) || !isfinite(c->w[i])) c->w[i] = 1.0;
  }
}

static size_t n_cases(void) { return tu_quick() ? 400 : 20000; }

/* Every compiled variant the CPU runs gives the scalar variant's bits. */
static void test_variants_bit_identical(void **state) {
  (void)state;
  for (size_t k = 0; k < rotary_rows_count; k++) {
    const rotary_rows_kernel *v = &rotary_rows_list[k];
    if (!rotary_isa_supported(v->isa)) {
      printf("[rows] %s: not usable on this CPU, skipped\n", v->name);
      continue;
    }
    tu_rng r;
    tu_rng_seed(&r, 2024);
    size_t mismatches = 0, values = 0;
    for (size_t n = 0; n < n_cases(); n++) {
      rows_case c;
      make_case(&r, n, &c);
      float c1[MAX_HALF], s1[MAX_HALF], c2[MAX_HALF], s2[MAX_HALF];
      rotary_sincos_rows__scalar(c.w, c.half, c.scaling, c.pos, c1, s1);
      v->fn(c.w, c.half, c.scaling, c.pos, c2, s2);
      for (size_t i = 0; i < c.half; i++) {
        int bad = tu_f32_bits(c1[i]) != tu_f32_bits(c2[i]) || tu_f32_bits(s1[i]) != tu_f32_bits(s2[i]);
        if (bad && mismatches < 5)
          printf("  %s: pos %lld w %a: cos %a vs %a, sin %a vs %a\n", v->name, (long long)c.pos, c.w[i],
                 (double)c2[i], (double)c1[i], (double)s2[i], (double)s1[i]);
        mismatches += (size_t)bad;
        values++;
      }
    }
    printf("[rows] %s: %zu rows, %zu values, %zu differ from scalar\n", v->name, n_cases(), values, mismatches);
    assert_int_equal(mismatches, 0);
  }
}

/* The same adversarial cases against the truth: within 1 ulp, figures printed. */
static void test_adversarial_truth(void **state) {
  (void)state;
  const rotary_rows_kernel *v = rotary_rows_select();
  tu_rng r;
  tu_rng_seed(&r, 2024);
  tu_true_stats st = {0};
  for (size_t n = 0; n < n_cases(); n++) {
    rows_case c;
    make_case(&r, n, &c);
    float cs[MAX_HALF], sn[MAX_HALF];
    v->fn(c.w, c.half, c.scaling, c.pos, cs, sn);
    tu_true_check_row(c.pos, c.w, c.half, c.scaling, cs, sn, &st);
  }
  char what[96];
  snprintf(what, sizeof what, "adversarial rows, %s", v->name);
  tu_true_print(what, &st);
  assert_int_equal(st.over_1ulp, 0);
}

/* The exact path alone (which every variant uses for its hard lanes) on any angle, tiny to overflowing. */
static void test_exact_path_truth(void **state) {
  (void)state;
  tu_rng r;
  tu_rng_seed(&r, 31337);
  tu_true_stats st = {0};
  for (size_t n = 0; n < n_cases(); n++) {
    rows_case c;
    make_case(&r, n, &c);
    const size_t m = c.half < 8 ? c.half : 8;
    float cs[8], sn[8];
    for (size_t i = 0; i < m; i++) rotary_sincos_exact(c.pos, c.w[i], c.scaling, &cs[i], &sn[i]);
    tu_true_check_row(c.pos, c.w, m, c.scaling, cs, sn, &st);
  }
  tu_true_print("exact path alone", &st);
  assert_int_equal(st.over_1ulp, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_variants_bit_identical),
      cmocka_unit_test(test_adversarial_truth),
      cmocka_unit_test(test_exact_path_truth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
