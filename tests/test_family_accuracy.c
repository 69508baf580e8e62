/* test_family_accuracy.c: every frequency-scaling family's cos/sin (the rope's own inverse frequencies and
 * attention factor) within 1 fp32 ulp of the true value cos/sin(pos * inv_freq) * attention for every position below
 * 2^20 (quick mode: a sample), with an exact oracle (a double-precision first path here, then
 * tests/util/oracle_exact.h). An argument "K/N" checks only the K-th of N equal slices of the positions (ctest runs
 * slices side by side); none checks them all. */
#define _GNU_SOURCE /* sincos */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_exact.h"
#include "rotary.h"
#include "test_util.h"
#include "true_sweep.h"

/* Phi-3-mini-128k-instruct's LongRoPE factors (examples/configs/phi-3-mini-128k-instruct.json). */
static const double phi3_short[48] = {
    1.1, 1.1, 1.1, 1.3000000000000003, 1.3500000000000003, 1.3500000000000003,
    1.4000000000000004, 1.5500000000000005, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007,
    2.0500000000000007, 2.1000000000000005, 2.1000000000000005, 2.1500000000000004, 2.25, 2.25,
    2.25, 2.25, 2.25, 2.3999999999999995, 2.4499999999999993, 2.499999999999999,
    2.6999999999999984, 2.6999999999999984, 2.7499999999999982, 2.799999999999998, 2.8999999999999977, 3.049999999999997};
static const double phi3_long[48] = {
    1.0700000524520874, 1.1200000047683716, 1.149999976158142, 1.4199999570846558, 1.5699999332427979, 1.7999999523162842,
    2.129999876022339, 2.129999876022339, 3.009999990463257, 5.910000324249268, 6.950000286102295, 9.070000648498535,
    9.930000305175781, 10.710000038146973, 11.130000114440918, 14.609999656677246, 15.409998893737793, 19.809999465942383,
    37.279998779296875, 38.279998779296875, 38.599998474121094, 40.12000274658203, 46.20000457763672, 50.940006256103516,
    53.66000747680664, 54.9373893737793, 56.89738845825195, 57.28738784790039, 59.98738479614258, 60.86738586425781,
    60.887386322021484, 61.71739196777344, 62.91739273071289, 62.957393646240234, 63.41739273071289, 63.8173942565918,
    63.83739471435547, 63.897396087646484, 63.93739700317383, 64.06739807128906, 64.11434936523438, 64.12435150146484,
    64.15435028076172, 64.19435119628906, 64.24435424804688, 64.57435607910156, 64.69000244140625, 64.76000213623047};

typedef struct family_case {
  const char *name;
  rotary_config cfg;
} family_case;

static size_t make_cases(family_case *fc) {
  size_t n = 0;
  rotary_config c;
#define ADD(label) (fc[n].name = (label), fc[n++].cfg = c)
  rotary_config_init(&c, 128); /* Llama-2-7B, Mistral-7B */
  ADD("default (Llama-2)");
  c.scaling.type = ROTARY_SCALING_LINEAR, c.scaling.factor = 4.0;
  ADD("linear x4");
  rotary_config_init(&c, 128);
  c.scaling.type = ROTARY_SCALING_NTK, c.scaling.factor = 8.0;
  ADD("static NTK alpha 8");
  rotary_config_init(&c, 128);
  c.scaling.type = ROTARY_SCALING_DYNAMIC, c.scaling.factor = 2.0, c.scaling.max_position_embeddings = 4096;
  c.seq_len = 16384;
  ADD("dynamic NTK x2 at 16384");
  rotary_config_init(&c, 128); /* Qwen2.5-7B */
  c.base = 1e6, c.scaling.type = ROTARY_SCALING_YARN, c.scaling.factor = 4.0;
  c.scaling.original_max_position_embeddings = 32768;
  ADD("yarn (Qwen2.5)");
  rotary_config_init(&c, 64); /* DeepSeek-V2-Lite */
  c.pairing = ROTARY_PAIRING_INTERLEAVED, c.scaling.type = ROTARY_SCALING_YARN, c.scaling.factor = 40.0;
  c.scaling.original_max_position_embeddings = 4096, c.scaling.mscale = 0.707, c.scaling.mscale_all_dim = 0.707;
  c.scaling.truncate = 0;
  ADD("yarn mscale (DeepSeek-V2)");
  rotary_config_init(&c, 128); /* Llama-3.1-8B */
  c.base = 500000, c.scaling.type = ROTARY_SCALING_LLAMA3, c.scaling.factor = 8, c.scaling.low_freq_factor = 1;
  c.scaling.high_freq_factor = 4, c.scaling.original_max_position_embeddings = 8192;
  ADD("llama3 (Llama-3.1)");
  rotary_config_init(&c, 96); /* Phi-3-mini-128k */
  c.scaling.type = ROTARY_SCALING_LONGROPE, c.scaling.original_max_position_embeddings = 4096;
  c.scaling.max_position_embeddings = 131072, c.scaling.short_factor = phi3_short, c.scaling.long_factor = phi3_long;
  ADD("longrope short (Phi-3)");
  c.seq_len = 131072;
  ADD("longrope long (Phi-3)");
  rotary_config_init(&c, 80); /* Phi-2: partial rotary */
  c.rotary_dim = 32;
  ADD("default partial 32/80 (Phi-2)");
#undef ADD
  return n;
}

enum { N_POSITIONS = 1 << 20, QUICK_HEAD = 1024, QUICK_STEP = 997 }; /* quick: 2076 positions (valgrind 24 s at 4096) */
static int64_t g_begin = 0, g_end = N_POSITIONS; /* this run's slice of the positions */

/*
 * The correctly rounded fp32 of cos/sin(pos * w) * scaling, decided in double precision when it can be (not for the
 * sines at position 0, exactly 0, nor for values within about 2^-48 of an fp32 rounding boundary: for those,
 * oracle_exact_cos_sin decides, as it did for every value before; the sweep costs a quarter of what it did with that
 * oracle alone). Returns 1 when *c and *s are certain, else 0.
 * The angle pos * w as hi + lo exactly: w = wh + wl (wh its top 26 significant bits, wl the other 27), and for
 * pos < 2^26 both pos * wh and pos * wl are exact doubles, so hi = pos*wh + pos*wl rounded and lo its exact error
 * (Fast2Sum, |pos*wh| >= |pos*wl|). No fma is needed, and a compiler contracting a product into an fma changes
 * nothing (every product is exact); |lo| <= 2^-20 is required. Then cos(hi + lo) = c - s lo - c lo^2/2 + r, |r| <= |lo|^3/6 + lo^4/24, from
 * libm's c = cos(hi), s = sin(hi), taken as within 2^-50 relative (as oracle_exact.c does); each value's margin
 * bounds libm's error on the two terms it uses (four times over), the left-out terms, and the double roundings
 * (eight roundings of the largest term, which also keeps the margin several double ulps wide, so that rounding
 * v -/+ m to double, then to fp32, brackets the true value's fp32 rounding). The value is certain when v - m and
 * v + m round to the same fp32.
 */
static int fast_cr(int64_t pos, double w, double scaling, float *c, float *s) {
  if (pos < 0 || pos >= ((int64_t)1 << 26) || !(w >= 0x1p-900 && w <= 0x1p900) ||
      !(scaling >= 0x1p-100 && scaling <= 0x1p100))
    return 0;
  uint64_t wb;
  memcpy(&wb, &w, sizeof wb);
  wb &= ~(((uint64_t)1 << 27) - 1); /* the top 26 significant bits (w normal) */
  double wh;
  memcpy(&wh, &wb, sizeof wh);
  const double p = (double)pos, wl = w - wh; /* exact */
  const double a = p * wh, b = p * wl;       /* exact: 26 + 26 and 26 + 27 bits */
  const double hi = a + b, lo = b - (hi - a); /* Fast2Sum: hi + lo = pos * w exactly */
  if (!(hi < 0x1p900) || !(fabs(lo) <= 0x1p-20)) return 0; /* the Taylor terms of lo need |lo| small */
  double sd, cd;
  sincos(hi, &sd, &cd);
  const double l2 = lo * lo / 2, tail = fabs(lo * l2) / 3 + l2 * l2;
  const double vc = cd - sd * lo - cd * l2, vs = sd + cd * lo - sd * l2;
  const double ac = fabs(cd) + fabs(sd * lo), as = fabs(sd) + fabs(cd * lo);
  const double mc = 4 * 0x1p-50 * ac + tail + 8 * 0x1p-53 * (ac + fabs(vc) + 0x1p-1000);
  const double ms = 4 * 0x1p-50 * as + tail + 8 * 0x1p-53 * (as + fabs(vs) + 0x1p-1000);
  const double xc = vc * scaling, xs = vs * scaling, yc = mc * scaling, ys = ms * scaling;
  const float c0 = (float)(xc - yc), c1 = (float)(xc + yc), s0 = (float)(xs - ys), s1 = (float)(xs + ys);
  if (tu_f32_bits(c0) != tu_f32_bits(c1) || tu_f32_bits(s0) != tu_f32_bits(s1)) return 0;
  *c = c0, *s = s0;
  return 1;
}

#define SWEEP_CHUNK 2048 /* positions per rotary_rope_cos_sin call */

/* tu_true_sweep_range with fast_cr as the oracle's first path: a table-free rope with these inverse frequencies and
 * attention scaling, its cos/sin rows at positions begin, begin + step, ... below end against the truth. */
static int sweep_range(const double *inv, size_t half, double att, int64_t begin, int64_t end, int64_t step,
                       tu_true_stats *st) {
  rotary_config cfg;
  rotary_config_init(&cfg, 2 * half);
  cfg.inv_freq = inv;
  cfg.attention_scaling = att;
  rotary_rope *rope = NULL;
  if (rotary_rope_create(&cfg, 0, &rope) != ROTARY_OK) return -1;
  int64_t *pos = malloc(SWEEP_CHUNK * sizeof *pos);
  float *cv = malloc(SWEEP_CHUNK * half * sizeof *cv), *sv = malloc(SWEEP_CHUNK * half * sizeof *sv);
  int rc = pos && cv && sv ? 0 : -1;
  for (int64_t p0 = begin; rc == 0 && p0 < end; p0 += step * SWEEP_CHUNK) {
    size_t n = 0;
    for (int64_t p = p0; p < end && n < SWEEP_CHUNK; p += step) pos[n++] = p;
    if (rotary_rope_cos_sin(rope, pos, n, cv, sv) != ROTARY_OK) rc = -1;
    for (size_t j = 0; rc == 0 && j < n; j++)
      for (size_t i = 0; i < half; i++) {
        float cr_c, cr_s;
        int path = ORACLE_FAST;
        if (!fast_cr(pos[j], inv[i], att, &cr_c, &cr_s))
          path = (int)oracle_exact_cos_sin(pos[j], inv[i], att, &cr_c, &cr_s);
        const float got[2] = {cv[j * half + i], sv[j * half + i]}, cr[2] = {cr_c, cr_s};
        if (path == ORACLE_FAST && !memcmp(got, cr, sizeof got)) st->entries += 2; /* tu_true_check's count */
        else tu_true_check(got[0], cr[0], path, st), tu_true_check(got[1], cr[1], path, st);
      }
  }
  free(pos);
  free(cv);
  free(sv);
  rotary_rope_destroy(rope);
  return rc;
}

/* The positions of [g_begin, g_end) that tu_true_sweep would check over [0, N_POSITIONS) (quick mode: the first
 * QUICK_HEAD and every QUICK_STEP-th after), so that the slices together check exactly what one run checks. */
static int sweep_slice(const double *inv, size_t half, double att, tu_true_stats *st) {
  if (!tu_quick()) return sweep_range(inv, half, att, g_begin, g_end, 1, st);
  int rc = 0;
  if (g_begin < QUICK_HEAD) rc = sweep_range(inv, half, att, g_begin, g_end < QUICK_HEAD ? g_end : QUICK_HEAD, 1, st);
  int64_t first = g_begin > QUICK_HEAD ? g_begin : QUICK_HEAD;
  first = QUICK_HEAD + (first - QUICK_HEAD + QUICK_STEP - 1) / QUICK_STEP * QUICK_STEP;
  if (rc == 0 && first < g_end) rc = sweep_range(inv, half, att, first, g_end, QUICK_STEP, st);
  return rc;
}

static void test_every_family(void **state) {
  (void)state;
  family_case fc[16];
  const size_t n = make_cases(fc);
  tu_true_stats all = {0};
  for (size_t k = 0; k < n; k++) {
    rotary_rope *rope = NULL;
    assert_int_equal(rotary_rope_create(&fc[k].cfg, 0, &rope), ROTARY_OK);
    double inv[64];
    const size_t half = fc[k].cfg.rotary_dim / 2;
    assert_int_equal(rotary_rope_inv_freq(rope, inv), ROTARY_OK);
    const double att = rotary_rope_attention_scaling(rope);
    rotary_rope_destroy(rope);
    tu_true_stats st = {0};
    assert_int_equal(sweep_slice(inv, half, att, &st), 0);
    tu_true_print(fc[k].name, &st);
    if (st.over_1ulp) fail_msg("%s: %llu values more than 1 ulp from the truth", fc[k].name,
                               (unsigned long long)st.over_1ulp);
    all.entries += st.entries, all.not_cr += st.not_cr, all.over_1ulp += st.over_1ulp, all.slow += st.slow;
    if (st.max_ulp > all.max_ulp) all.max_ulp = st.max_ulp;
  }
  tu_true_print("every family", &all);
  assert_int_equal(all.over_1ulp, 0);
}

int main(int argc, char **argv) {
  unsigned k = 0, n = 1;
  if (argc > 1 && (sscanf(argv[1], "%u/%u", &k, &n) != 2 || n == 0 || k >= n)) {
    fprintf(stderr, "usage: %s [K/N]  (the K-th of N slices of the positions, 0 <= K < N)\n", argv[0]);
    return 2;
  }
  g_begin = (int64_t)k * N_POSITIONS / n, g_end = (int64_t)(k + 1) * N_POSITIONS / n;
  if (n > 1) printf("[slice %u/%u] positions %lld to %lld\n", k, n, (long long)g_begin, (long long)g_end - 1);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_family)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
