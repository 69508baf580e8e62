/* test_cuda_sincos.c: rotary_cuda_exact_cos_sin (the table-free GPU rows) against the CPU library's rows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/backend/cpu/sincos_2opi.h" /* the CPU's 2/pi words, compared with the device's */
#include "cuda_util.h"
#include "rotary.h"
#include "test_util.h"

/*
 * The device function performs the CPU's operations one for one (exact_sincos.cuh), so every value is expected
 * to equal the CPU row bit for bit. Per the contract a value may differ by 1 fp32 ulp (it is counted and printed);
 * more than 1 ulp fails, and so does any difference in the LLaMA sweeps below 2^16 (the fast path there must be
 * the CPU's exactly). The CPU rows come from rotary_rope_cos_sin: the table for positions it holds, a table-free
 * rope beyond (the two give the same bits, include/rotary.h).
 */

/* Defined in exact_rows.cu. */
int rotary_test_cuda_exact_rows(const int64_t *positions, size_t n, const double *inv_freq, size_t half,
                                double scaling, float *cos_out, float *sin_out);
int rotary_test_cuda_exact_2opi(uint64_t *words, size_t n);

#define CHUNK 8192 /* positions per GPU/CPU batch */

typedef struct diff_count {
  uint64_t values, differ, one_ulp, worse;
} diff_count;

/* Compares the GPU rows of positions[0..n) with the CPU rows of rope; adds to *dc. */
static void compare_rows(const rotary_rope *rope, const int64_t *positions, size_t n, diff_count *dc) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2;
  double *inv_freq = malloc(half * sizeof *inv_freq);
  float *cc = malloc(CHUNK * half * sizeof(float)), *cs = malloc(CHUNK * half * sizeof(float));
  float *gc = malloc(CHUNK * half * sizeof(float)), *gs = malloc(CHUNK * half * sizeof(float));
  assert_non_null(inv_freq);
  assert_non_null(cc);
  assert_non_null(cs);
  assert_non_null(gc);
  assert_non_null(gs);
  assert_int_equal(rotary_rope_inv_freq(rope, inv_freq), ROTARY_OK);
  const double scaling = rotary_rope_attention_scaling(rope);
  for (size_t start = 0; start < n; start += CHUNK) {
    const size_t m = n - start < CHUNK ? n - start : CHUNK;
    assert_int_equal(rotary_rope_cos_sin(rope, positions + start, m, cc, cs), ROTARY_OK);
    cu_poison(gc, m * half * sizeof(float), start + 1);
    cu_poison(gs, m * half * sizeof(float), start + 2);
    cu_check(rotary_test_cuda_exact_rows(positions + start, m, inv_freq, half, scaling, gc, gs),
             "rotary_test_cuda_exact_rows");
    for (size_t v = 0; v < m * half; v++) {
      for (int side = 0; side < 2; side++) {
        const float want = side ? cs[v] : cc[v], got = side ? gs[v] : gc[v];
        dc->values++;
        if (memcmp(&want, &got, sizeof want) == 0) continue;
        dc->differ++;
        const uint64_t d = tu_ulp_dist_f32(want, got);
        if (d == 1) {
          dc->one_ulp++;
        } else {
          if (dc->worse++ < 5)
            print_message("  %s differs by %llu ulp: pos %lld inv_freq %a scaling %a: cpu %a gpu %a\n",
                          side ? "sin" : "cos", (unsigned long long)d, (long long)positions[start + v / half],
                          inv_freq[v % half], scaling, (double)want, (double)got);
        }
      }
    }
  }
  free(inv_freq);
  free(cc);
  free(cs);
  free(gc);
  free(gs);
}

/* Prints the counts of one case; fails on any difference above 1 ulp, or on any difference when strict. */
static void report(const char *what, const diff_count *dc, int strict) {
  print_message("test_cuda_sincos: %s: %llu values, %llu differ from the CPU (%llu by 1 ulp, %llu by more)\n", what,
                (unsigned long long)dc->values, (unsigned long long)dc->differ, (unsigned long long)dc->one_ulp,
                (unsigned long long)dc->worse);
  assert_true(dc->values > 0);
  assert_int_equal(dc->worse, 0);
  if (strict) assert_int_equal(dc->differ, 0);
}

/* A rope of head_dim 128 with base `base` (NONE scaling) and a table of max_positions (0: table-free). */
static rotary_rope *llama_rope(double base, size_t max_positions) {
  rotary_config c;
  rotary_config_init(&c, 128);
  c.base = base;
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&c, max_positions, &rope), ROTARY_OK);
  return rope;
}

/* A table-free rope with the given frequencies (rotary_dim 2 * half). */
static rotary_rope *freq_rope(const double *inv_freq, size_t half, double attention_scaling) {
  rotary_config c;
  rotary_config_init(&c, 2 * half);
  c.inv_freq = inv_freq;
  c.attention_scaling = attention_scaling;
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&c, 0, &rope), ROTARY_OK);
  return rope;
}

/* Positions around `center`: [center - below, center + above), clipped to [0, ROTARY_MAX_POSITION]. */
static size_t window(int64_t center, int64_t below, int64_t above, int64_t *out) {
  size_t n = 0;
  for (int64_t p = center - below; p < center + above; p++)
    if (p >= 0 && p <= ROTARY_MAX_POSITION) out[n++] = p;
  return n;
}

/* The device's 2/pi words are the CPU's. */
static void test_two_over_pi(void **state) {
  (void)state;
  uint64_t words[ROTARY_2OPI_WORDS];
  memset(words, 0, sizeof words);
  cu_check(rotary_test_cuda_exact_2opi(words, ROTARY_2OPI_WORDS), "rotary_test_cuda_exact_2opi");
  for (int i = 0; i < ROTARY_2OPI_WORDS; i++) assert_true(words[i] == rotary_two_over_pi[i]);
}

/* Every position below 2^16 of a LLaMA rope (head_dim 128), base 10000 and 500000, against the table: strict. */
static void test_llama_sweep(void **state) {
  (void)state;
  const size_t n = (size_t)1 << 16;
  int64_t *pos = malloc(n * sizeof *pos);
  assert_non_null(pos);
  for (size_t j = 0; j < n; j++) pos[j] = (int64_t)j;
  const double bases[2] = {10000.0, 500000.0};
  for (int b = 0; b < 2; b++) {
    rotary_rope *rope = llama_rope(bases[b], n);
    diff_count dc = {0};
    compare_rows(rope, pos, n, &dc);
    char what[96];
    snprintf(what, sizeof what, "LLaMA base %.0f, every position below 2^16 (table)", bases[b]);
    report(what, &dc, 1);
    rotary_rope_destroy(rope);
  }
  free(pos);
}

/* 2^16 random positions in [2^16, 2^20], and windows near 2^31, 2^40 and 2^53 - 1, table-free CPU rows. */
static void test_llama_large(void **state) {
  (void)state;
  const size_t n = (size_t)1 << 16;
  int64_t *pos = malloc(n * sizeof *pos);
  assert_non_null(pos);
  tu_rng r;
  tu_rng_seed(&r, 0x5C0515);
  const double bases[2] = {10000.0, 500000.0};
  for (int b = 0; b < 2; b++) {
    rotary_rope *rope = llama_rope(bases[b], 0);
    diff_count dc = {0};
    for (size_t j = 0; j < n; j++) pos[j] = (int64_t)((1u << 16) + tu_rng_below(&r, (1u << 20) - (1u << 16) + 1));
    compare_rows(rope, pos, n, &dc);
    char what[96];
    snprintf(what, sizeof what, "LLaMA base %.0f, 2^16 positions in [2^16, 2^20]", bases[b]);
    report(what, &dc, 0);
    const int64_t centers[3] = {(int64_t)1 << 31, (int64_t)1 << 40, ROTARY_MAX_POSITION};
    const char *names[3] = {"2^31", "2^40", "2^53 - 1"};
    for (int c = 0; c < 3; c++) {
      diff_count dw = {0};
      const size_t m = window(centers[c], 2048, 2048, pos);
      compare_rows(rope, pos, m, &dw);
      snprintf(what, sizeof what, "LLaMA base %.0f, %zu positions near %s", bases[b], m, names[c]);
      report(what, &dw, 0);
    }
    rotary_rope_destroy(rope);
  }
  free(pos);
}

/* Huge and tiny inverse frequencies (8 as from a small LongRoPE factor, up to DBL_MAX; down to the smallest
 * subnormal), at small positions, random positions over the whole range and positions near 2^53 - 1: the exact
 * (Payne-Hanek) path and its small-angle branch. */
static void test_extreme_frequencies(void **state) {
  (void)state;
  static const double freqs[16] = {8.0,          3.0,         1.0,        0.5,     1e-3,    1e-9,   1e-30,  1e-300,
                                   0x1p-1074,    DBL_MIN,     1e5,        0x1p60,  1e150,   1e300,  DBL_MAX, 7.5};
  rotary_rope *rope = freq_rope(freqs, 16, 1.0);
  const size_t n = 3 * 4096;
  int64_t *pos = malloc(n * sizeof *pos);
  assert_non_null(pos);
  tu_rng r;
  tu_rng_seed(&r, 0xE47E);
  for (size_t j = 0; j < 4096; j++) pos[j] = (int64_t)j;
  for (size_t j = 4096; j < 8192; j++) /* random over many binades */
    pos[j] = (int64_t)(tu_rng_u64(&r) >> (11 + tu_rng_below(&r, 53)));
  assert_int_equal(window(ROTARY_MAX_POSITION, 4095, 1, pos + 8192), 4096);
  diff_count dc = {0};
  compare_rows(rope, pos, n, &dc);
  report("extreme inverse frequencies (8 ... DBL_MAX, 1e-3 ... 2^-1074)", &dc, 0);
  rotary_rope_destroy(rope);
  free(pos);
}

/* Random frequencies 2^-60 .. 2 (random mantissas) at random positions, attention scaling 0.8125. */
static void test_random_frequencies(void **state) {
  (void)state;
  tu_rng r;
  tu_rng_seed(&r, 0xF4E0);
  double freqs[64];
  for (int i = 0; i < 64; i++) /* (1 + u) / 2^k: a random mantissa, k < 61 (dividing by 2^k is exact) */
    freqs[i] = (1.0 + tu_rng_unit(&r)) / (double)((uint64_t)1 << tu_rng_below(&r, 61));
  rotary_rope *rope = freq_rope(freqs, 64, 0.8125);
  const size_t n = 16384;
  int64_t *pos = malloc(n * sizeof *pos);
  assert_non_null(pos);
  for (size_t j = 0; j < n; j++) pos[j] = (int64_t)(tu_rng_u64(&r) >> (11 + tu_rng_below(&r, 53)));
  diff_count dc = {0};
  compare_rows(rope, pos, n, &dc);
  report("random frequencies 2^-60 .. 2, random positions, scaling 0.8125", &dc, 0);
  rotary_rope_destroy(rope);
  free(pos);
}

/* YaRN (factor 4 over 4096, attention factor derived, times attention_scaling 0.9): a table of 2^14 positions
 * swept whole, and a table-free sample up to 2^24. */
static void test_yarn(void **state) {
  (void)state;
  rotary_config c;
  rotary_config_init(&c, 128);
  c.base = 1000000.0;
  c.attention_scaling = 0.9;
  c.scaling.type = ROTARY_SCALING_YARN;
  c.scaling.factor = 4.0;
  c.scaling.original_max_position_embeddings = 4096;
  const size_t n = (size_t)1 << 14;
  rotary_rope *table = NULL, *free_rope = NULL;
  assert_int_equal(rotary_rope_create(&c, n, &table), ROTARY_OK);
  assert_int_equal(rotary_rope_create(&c, 0, &free_rope), ROTARY_OK);
  assert_true(rotary_rope_attention_scaling(table) != 1.0);
  int64_t *pos = malloc(n * sizeof *pos);
  assert_non_null(pos);
  for (size_t j = 0; j < n; j++) pos[j] = (int64_t)j;
  diff_count dc = {0};
  compare_rows(table, pos, n, &dc);
  report("YaRN (attention scaling != 1), every position below 2^14 (table)", &dc, 0);
  tu_rng r;
  tu_rng_seed(&r, 0x9A4);
  for (size_t j = 0; j < n; j++) pos[j] = (int64_t)tu_rng_below(&r, (uint64_t)1 << 24);
  diff_count dr = {0};
  compare_rows(free_rope, pos, n, &dr);
  report("YaRN (attention scaling != 1), 2^14 positions below 2^24", &dr, 0);
  rotary_rope_destroy(table);
  rotary_rope_destroy(free_rope);
  free(pos);
}

int main(void) {
  cu_require_device("test_cuda_sincos");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_over_pi),         cmocka_unit_test(test_llama_sweep),
      cmocka_unit_test(test_llama_large),         cmocka_unit_test(test_extreme_frequencies),
      cmocka_unit_test(test_random_frequencies), cmocka_unit_test(test_yarn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
