/* test_table.c: the fp32 cos/sin values of a rope (table and table-free), inverse frequencies and getters. */
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

#include "oracle.h"
#include "oracle_exact.h"
#include "rotary.h"
#include "test_util.h"
#include "true_sweep.h"

#define CHUNK 4096 /* positions per rotary_rope_cos_sin call */

static rotary_rope *make_rope(size_t head_dim, size_t rotary_dim, rotary_pairing pairing, double base,
                              double scaling, const double *inv_freq, size_t max_positions) {
  rotary_config cfg;
  rotary_config_init(&cfg, head_dim);
  cfg.rotary_dim = rotary_dim;
  cfg.pairing = pairing;
  cfg.base = base;
  cfg.attention_scaling = scaling;
  cfg.inv_freq = inv_freq;
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&cfg, max_positions, &rope), ROTARY_OK);
  assert_non_null(rope);
  return rope;
}

/* Every position below 2^20 (quick mode: every 997th and the first 4096) against the true values: cos/sin of the
 * exact angle pos * inv_freq (the rope's fp64 inv_freq as an exact number), correctly rounded. rotary_dim 128 at
 * base 1e4 (head 128, half pairing, scaling 1) is test_family_accuracy's "default (Llama-2)" case, the same values
 * through the same table-free rope: checked there only (it took 13 s here). */
static void exhaustive(const char *what, size_t rotary_dim, double base) {
  rotary_rope *rope = make_rope(rotary_dim, rotary_dim, ROTARY_PAIRING_HALF, base, 1.0, NULL, 0);
  double inv[512];
  assert_int_equal(rotary_rope_inv_freq(rope, inv), ROTARY_OK);
  tu_true_stats st = {0};
  assert_int_equal(tu_true_sweep(inv, rotary_dim / 2, 1.0, 1 << 20, &st), 0);
  tu_true_print(what, &st);
  assert_int_equal(st.over_1ulp, 0);
  rotary_rope_destroy(rope);
}

static void test_exhaustive_partial(void **state) {
  (void)state;
  exhaustive("rd64 base 5e5, positions < 2^20", 64, 500000.0);
}

/* The oracle's fast and long-double paths agree with MPFR wherever they decide (skipped without MPFR). */
static void test_oracle_paths(void **state) {
  (void)state;
  if (!oracle_have_mpfr()) {
    printf("[oracle] built without MPFR: skipped\n");
    return;
  }
  tu_rng r;
  tu_rng_seed(&r, 77);
  size_t n = tu_quick() ? 2000 : 200000, by_path[4] = {0};
  for (size_t k = 0; k < n; k++) {
    int64_t pos = (int64_t)tu_rng_below(&r, (uint64_t)1 << (1 + tu_rng_below(&r, 53)));
    double w = ldexp(1.0 + tu_rng_unit(&r), -(int)tu_rng_below(&r, 40));
    double scaling = (k & 1) ? 1.0 : 1.2345;
    float cf, sf, cm, sm;
    oracle_path path = oracle_exact_cos_sin(pos, w, scaling, &cf, &sf);
    by_path[path]++;
    assert_int_equal(oracle_exact_cos_sin_mpfr(pos, w, scaling, &cm, &sm), ORACLE_MPFR);
    assert_int_equal(tu_f32_bits(cf), tu_f32_bits(cm));
    assert_int_equal(tu_f32_bits(sf), tu_f32_bits(sm));
  }
  printf("[oracle] fast %zu, long double %zu, MPFR %zu of %zu angles: all equal to MPFR's\n", by_path[0],
         by_path[1], by_path[2], n);
}

/* A table rope gives bit for bit the values of a table-free rope of the same config. */
static void table_matches_free(size_t head_dim, size_t rotary_dim, rotary_pairing pairing, double base,
                               double scaling) {
  size_t mp = tu_quick() ? 4096 : 65536, half = rotary_dim / 2;
  rotary_rope *table = make_rope(head_dim, rotary_dim, pairing, base, scaling, NULL, mp);
  rotary_rope *free_rope = make_rope(head_dim, rotary_dim, pairing, base, scaling, NULL, 0);
  assert_int_equal(rotary_rope_max_positions(table), mp);
  int64_t *pos = malloc(CHUNK * sizeof *pos);
  float *c1 = malloc(CHUNK * half * 4), *s1 = malloc(CHUNK * half * 4);
  float *c2 = malloc(CHUNK * half * 4), *s2 = malloc(CHUNK * half * 4);
  assert_true(pos && c1 && s1 && c2 && s2);
  size_t mismatches = 0;
  for (size_t p0 = 0; p0 < mp; p0 += CHUNK) {
    for (size_t j = 0; j < CHUNK; j++) pos[j] = (int64_t)(p0 + j);
    assert_int_equal(rotary_rope_cos_sin(table, pos, CHUNK, c1, s1), ROTARY_OK);
    assert_int_equal(rotary_rope_cos_sin(free_rope, pos, CHUNK, c2, s2), ROTARY_OK);
    mismatches += memcmp(c1, c2, CHUNK * half * 4) != 0;
    mismatches += memcmp(s1, s2, CHUNK * half * 4) != 0;
  }
  printf("[table==free] hd %zu rd %zu positions %zu: %zu mismatching chunks\n", head_dim, rotary_dim, mp, mismatches);
  assert_int_equal(mismatches, 0);
  free(pos);
  free(c1);
  free(s1);
  free(c2);
  free(s2);
  rotary_rope_destroy(table);
  rotary_rope_destroy(free_rope);
}

static void test_table_matches_table_free(void **state) {
  (void)state;
  table_matches_free(128, 128, ROTARY_PAIRING_HALF, 10000.0, 1.0);
  table_matches_free(128, 64, ROTARY_PAIRING_INTERLEAVED, 500000.0, 1.0);
  table_matches_free(80, 20, ROTARY_PAIRING_HALF, 10000.0, 1.3466);
}

/* Table-free ropes accept positions up to ROTARY_MAX_POSITION with the same accuracy against the truth. */
static void test_huge_positions(void **state) {
  (void)state;
  rotary_rope *rope = make_rope(128, 128, ROTARY_PAIRING_HALF, 10000.0, 1.0, NULL, 0);
  int64_t pos[64] = {(1 << 20), INT32_MAX, (int64_t)INT32_MAX + 1, (1LL << 32) + 7, (1LL << 40) + 3, 1LL << 52,
                     ROTARY_MAX_POSITION - 1, ROTARY_MAX_POSITION};
  tu_rng r;
  tu_rng_seed(&r, 99);
  for (size_t j = 8; j < 64; j++) pos[j] = (int64_t)tu_rng_below(&r, (uint64_t)ROTARY_MAX_POSITION + 1);
  float c[64 * 64], s[64 * 64];
  double inv[64];
  assert_int_equal(rotary_rope_cos_sin(rope, pos, 64, c, s), ROTARY_OK);
  assert_int_equal(rotary_rope_inv_freq(rope, inv), ROTARY_OK);
  tu_true_stats ts = {0};
  for (size_t j = 0; j < 64; j++) tu_true_check_row(pos[j], inv, 64, 1.0, c + j * 64, s + j * 64, &ts);
  tu_true_print("huge positions", &ts);
  assert_int_equal(ts.over_1ulp, 0);
  rotary_rope_destroy(rope);
}

/* The rope's fp64 inverse frequencies against base^(-2i/rotary_dim) in long double. */
static void test_inv_freq_from_base(void **state) {
  (void)state;
  static const double bases[] = {10000.0, 500000.0, 1e6, 2.0, 1.0000001};
  static const size_t dims[] = {2, 20, 64, 128, 256};
  double worst = 0.0;
  for (size_t b = 0; b < 5; b++)
    for (size_t d = 0; d < 5; d++) {
      rotary_rope *rope = make_rope(dims[d], dims[d], ROTARY_PAIRING_HALF, bases[b], 1.0, NULL, 0);
      double inv[128];
      assert_int_equal(rotary_rope_inv_freq(rope, inv), ROTARY_OK);
      assert_true(inv[0] == 1.0); /* base^0 is exact */
      for (size_t i = 0; i < dims[d] / 2; i++) {
        long double want = oracle_inv_freq(bases[b], dims[d], i);
        double rel = (double)(fabsl((long double)inv[i] - want) / want / DBL_EPSILON);
        if (rel > worst) worst = rel;
      }
      rotary_rope_destroy(rope);
    }
  printf("[inv_freq] max relative error %.3f DBL_EPSILON\n", worst);
  /* pow(base, e) with e rounded to fp64 is off by up to ln(base) * ulp(e) / 2 relative: about 3.3 eps at 5e5. */
  assert_true(worst <= 8.0);
}

/* A caller's inv_freq replaces base exactly, is copied at creation, and drives the angles. */
static void test_caller_inv_freq(void **state) {
  (void)state;
  double user[6] = {1.0, 0.5, 1.0 / 3.0, 1e-3, 0.123456789, 3.75};
  rotary_rope *rope = make_rope(16, 12, ROTARY_PAIRING_INTERLEAVED, 2.5, 1.0, user, 0);
  rotary_rope *table = make_rope(16, 12, ROTARY_PAIRING_INTERLEAVED, 2.5, 1.0, user, 3000);
  double saved[6];
  memcpy(saved, user, sizeof user);
  for (size_t i = 0; i < 6; i++) user[i] = 42.0; /* must not reach the ropes: they copied the array */
  double got[6];
  assert_int_equal(rotary_rope_inv_freq(rope, got), ROTARY_OK);
  assert_memory_equal(got, saved, sizeof saved);
  assert_int_equal(rotary_rope_inv_freq(table, got), ROTARY_OK);
  assert_memory_equal(got, saved, sizeof saved);
  int64_t pos[CHUNK];
  float c[CHUNK * 6], s[CHUNK * 6], ct[CHUNK * 6], st[CHUNK * 6];
  for (size_t j = 0; j < CHUNK; j++) pos[j] = j < 2990 ? (int64_t)j : (int64_t)j * 977;
  assert_int_equal(rotary_rope_cos_sin(rope, pos, CHUNK, c, s), ROTARY_OK);
  assert_int_equal(rotary_rope_cos_sin(table, pos, 2990, ct, st), ROTARY_OK);
  assert_memory_equal(c, ct, 2990 * 6 * 4);
  assert_memory_equal(s, st, 2990 * 6 * 4);
  tu_true_stats ts = {0};
  for (size_t j = 0; j < CHUNK; j++) tu_true_check_row(pos[j], saved, 6, 1.0, c + j * 6, s + j * 6, &ts);
  tu_true_print("caller inv_freq", &ts);
  assert_int_equal(ts.over_1ulp, 0);
  rotary_rope_destroy(rope);
  rotary_rope_destroy(table);
}

/* attention_scaling multiplies cos and sin before the single rounding to fp32, with and without a table. */
static void test_attention_scaling(void **state) {
  (void)state;
  static const double scalings[] = {0.5, 1.3465735902799727 /* YaRN 0.1 ln 32 + 1 */, 1.7, 1e-3};
  for (size_t k = 0; k < 4; k++) {
    rotary_rope *free_rope = make_rope(64, 64, ROTARY_PAIRING_HALF, 10000.0, scalings[k], NULL, 0);
    rotary_rope *table = make_rope(64, 64, ROTARY_PAIRING_HALF, 10000.0, scalings[k], NULL, 4096);
    double inv[32];
    assert_int_equal(rotary_rope_inv_freq(free_rope, inv), ROTARY_OK);
    tu_true_stats ts = {0};
    /* every position below 4096, then every 4099th below 2^24 (quick mode: below 1024, then every 32771st: a third
     * less time for this program under valgrind) */
    const int64_t head = tu_quick() ? 1024 : 4096, step = tu_quick() ? 32771 : 4099;
    assert_int_equal(tu_true_sweep_range(inv, 32, scalings[k], 0, head, 1, &ts), 0);
    assert_int_equal(tu_true_sweep_range(inv, 32, scalings[k], head, 1 << 24, step, &ts), 0);
    char what[64];
    snprintf(what, sizeof what, "scaling %.6g", scalings[k]);
    tu_true_print(what, &ts);
    assert_int_equal(ts.over_1ulp, 0);
    /* the table holds the table-free values bit for bit */
    int64_t pos[CHUNK];
    static float c1[CHUNK * 32], s1[CHUNK * 32], c2[CHUNK * 32], s2[CHUNK * 32];
    for (size_t j = 0; j < CHUNK; j++) pos[j] = (int64_t)j;
    assert_int_equal(rotary_rope_cos_sin(free_rope, pos, CHUNK, c1, s1), ROTARY_OK);
    assert_int_equal(rotary_rope_cos_sin(table, pos, CHUNK, c2, s2), ROTARY_OK);
    assert_memory_equal(c1, c2, sizeof c1);
    assert_memory_equal(s1, s2, sizeof s1);
    rotary_rope_destroy(free_rope);
    rotary_rope_destroy(table);
  }
}

/* Position 0: cos(0) * scaling rounded once, and sin exactly +0. */
static void test_position_zero(void **state) {
  (void)state;
  static const double scalings[] = {1.0, 0.7071, 1.3465735902799727};
  for (size_t k = 0; k < 3; k++)
    for (size_t mp = 0; mp <= 16; mp += 16) {
      rotary_rope *rope = make_rope(96, 80, ROTARY_PAIRING_INTERLEAVED, 10000.0, scalings[k], NULL, mp);
      int64_t zero = 0;
      float c[40], s[40];
      assert_int_equal(rotary_rope_cos_sin(rope, &zero, 1, c, s), ROTARY_OK);
      for (size_t i = 0; i < 40; i++) {
        assert_int_equal(tu_f32_bits(c[i]), tu_f32_bits((float)scalings[k]));
        assert_int_equal(tu_f32_bits(s[i]), 0u);
      }
      rotary_rope_destroy(rope);
    }
}

/* memory_bytes: the table (max_positions * rotary_dim * 4, each half row padded to whole 64-byte lines from 16
 * floats up) plus the fp64 inverse frequencies. */
static void test_memory_bytes(void **state) {
  (void)state;
  static const size_t cfg[][3] = {{128, 64, 1000}, {128, 128, 0}, {64, 2, 7}, {256, 256, 8192}, {80, 40, 100},
                                  {64, 24, 9}};
  for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
    rotary_rope *rope = make_rope(cfg[k][0], cfg[k][1], ROTARY_PAIRING_HALF, 10000.0, 1.0, NULL, cfg[k][2]);
    const size_t half = cfg[k][1] / 2, padded = half < 16 ? half : (half + 15) / 16 * 16;
    size_t want = cfg[k][2] * 2 * padded * 4 + half * sizeof(double);
    size_t got = rotary_rope_memory_bytes(rope);
    printf("[memory] hd %zu rd %zu max_positions %zu: %zu bytes (table + inv_freq = %zu)\n", cfg[k][0], cfg[k][1],
           cfg[k][2], got, want);
    /* The header names exactly these two parts; a small allowance covers the rope's own bookkeeping. */
    assert_true(got >= want);
    assert_true(got <= want + 1024);
    rotary_rope_destroy(rope);
  }
  assert_int_equal(rotary_rope_memory_bytes(NULL), 0);
}

static void test_getters_and_defaults(void **state) {
  (void)state;
  rotary_config cfg;
  memset(&cfg, 0xA5, sizeof cfg);
  rotary_config_init(&cfg, 96);
  assert_int_equal(cfg.struct_size, sizeof cfg);
  assert_int_equal(cfg.head_dim, 96);
  assert_int_equal(cfg.rotary_dim, 96);
  assert_int_equal(cfg.pairing, ROTARY_PAIRING_HALF);
  assert_true(cfg.base == 10000.0);
  assert_null(cfg.inv_freq);
  assert_true(cfg.attention_scaling == 1.0);
  rotary_rope *rope = make_rope(96, 32, ROTARY_PAIRING_INTERLEAVED, 10000.0, 1.0, NULL, 33);
  assert_int_equal(rotary_rope_head_dim(rope), 96);
  assert_int_equal(rotary_rope_rotary_dim(rope), 32);
  assert_int_equal(rotary_rope_max_positions(rope), 33);
  assert_int_equal(rotary_rope_pairing(rope), ROTARY_PAIRING_INTERLEAVED);
  rotary_rope_destroy(rope);
  rope = make_rope(96, 96, ROTARY_PAIRING_HALF, 10000.0, 1.0, NULL, 0);
  assert_int_equal(rotary_rope_max_positions(rope), 0);
  assert_int_equal(rotary_rope_pairing(rope), ROTARY_PAIRING_HALF);
  rotary_rope_destroy(rope);
  assert_int_equal(rotary_rope_head_dim(NULL), 0);
  assert_int_equal(rotary_rope_rotary_dim(NULL), 0);
  assert_int_equal(rotary_rope_max_positions(NULL), 0);
  assert_int_equal(rotary_rope_pairing(NULL), 0);
  rotary_rope_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_getters_and_defaults),
      cmocka_unit_test(test_memory_bytes),
      cmocka_unit_test(test_position_zero),
      cmocka_unit_test(test_inv_freq_from_base),
      cmocka_unit_test(test_caller_inv_freq),
      cmocka_unit_test(test_attention_scaling),
      cmocka_unit_test(test_huge_positions),
      cmocka_unit_test(test_oracle_paths),
      cmocka_unit_test(test_table_matches_table_free),
      cmocka_unit_test(test_exhaustive_partial),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
