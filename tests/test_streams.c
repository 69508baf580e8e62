/* test_streams.c: multi-stream positions (mRoPE sections, Qwen3-VL interleaved, 2-D vision, arbitrary maps) against
 * an independent layout model and the fp64 oracle: frequencies, maps, rows, rotary_apply and rotary_kv_write. */
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
#include "streams_oracle.h"
#include "test_util.h"

#ifdef ORACLE_HAVE_MPFR
#include <mpfr.h>
#endif

static const rotary_stream_layout kinds[5] = {ROTARY_STREAMS_SECTIONS, ROTARY_STREAMS_INTERLEAVED,
                                              ROTARY_STREAMS_VISION_2D, ROTARY_STREAMS_VISION_2D_PIXTRAL,
                                              ROTARY_STREAMS_MAP};
static rotary_context *g_ctx3;

/* so_rope, which must succeed. */
static rotary_rope *must_rope(const so_layout *l, size_t hd, size_t rd, rotary_pairing pairing, double base,
                              int scaling, double att, size_t max_positions) {
  rotary_rope *rope = so_rope(l, hd, rd, pairing, base, scaling, att, max_positions);
  assert_non_null(rope);
  return rope;
}

static int is_vision(rotary_stream_layout k) {
  return k == ROTARY_STREAMS_VISION_2D || k == ROTARY_STREAMS_VISION_2D_PIXTRAL;
}

/* ---- frequencies and maps ---- */

/* base^(-num/d) correctly rounded (MPFR), else long double rounded to double. */
static double ref_pow(double base, size_t num, size_t d) {
#ifdef ORACLE_HAVE_MPFR
  mpfr_t b, e, r;
  mpfr_inits2(320, b, e, r, (mpfr_ptr)0);
  mpfr_set_d(b, base, MPFR_RNDN);
  mpfr_set_si(e, -(long)num, MPFR_RNDN);
  mpfr_div_ui(e, e, (unsigned long)d, MPFR_RNDN);
  mpfr_pow(r, b, e, MPFR_RNDN);
  const double v = mpfr_get_d(r, MPFR_RNDN);
  mpfr_clears(b, e, r, (mpfr_ptr)0);
  return v;
#else
  return (double)powl((long double)base, -(long double)num / (long double)d);
#endif
}

/* Vision frequencies: Qwen2-VL ViT row = column = base^(-4i/d); Pixtral column base^(-(4i+2)/d); the map halves. */
static void test_vision_frequencies(void **state) {
  (void)state;
  const double bases[] = {10000, 100, 1e6, 1.5};
  size_t n = 0, wrong = 0;
  for (int k = 2; k <= 3; k++)
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
      for (size_t d = 4; d <= 256; d += 4) {
        so_layout l = {0};
        l.streams.layout = kinds[k];
        rotary_rope *rope = must_rope(&l, d + 4, d, ROTARY_PAIRING_HALF, bases[b], 0, 1.0, 0);
        double w[128];
        uint8_t map[128];
        assert_int_equal(rotary_rope_inv_freq(rope, w), ROTARY_OK);
        assert_int_equal(rotary_rope_stream_map(rope, map), ROTARY_OK);
        assert_int_equal(rotary_rope_streams(rope), 2);
        for (size_t i = 0; i < d / 4; i++) {
          const double row = ref_pow(bases[b], 4 * i, d);
          const double col = kinds[k] == ROTARY_STREAMS_VISION_2D ? row : ref_pow(bases[b], 4 * i + 2, d);
          wrong += (w[i] != row) + (w[d / 4 + i] != col);
          n += 2;
        }
        for (size_t i = 0; i < d / 2; i++) assert_int_equal(map[i], i < d / 4 ? 0 : 1);
        rotary_rope_destroy(rope);
      }
  printf("[vision] %zu inverse frequencies against %s: %zu differ\n", n,
         oracle_have_mpfr() ? "MPFR (correctly rounded)" : "long double", wrong);
#ifdef ORACLE_HAVE_MPFR
  assert_int_equal(wrong, 0);
#else
  assert_true(wrong * 100 <= n); /* long double is not correctly rounded itself: nearly all agree */
#endif
}

/* Hand-checked maps of real models, then random layouts against the independent model. */
static void test_maps(void **state) {
  (void)state;
  so_layout l = {0};
  l.streams.layout = ROTARY_STREAMS_SECTIONS; /* Qwen2-VL 7B: mrope_section [16, 24, 24], head_dim 128 */
  l.streams.n_streams = 3;
  l.streams.sections[0] = 16, l.streams.sections[1] = 24, l.streams.sections[2] = 24;
  rotary_rope *rope = must_rope(&l, 128, 128, ROTARY_PAIRING_HALF, 1e6, 0, 1.0, 0);
  uint8_t map[SO_MAX_HALF];
  assert_int_equal(rotary_rope_streams(rope), 3);
  rotary_rope_stream_map(rope, map);
  assert_true(map[0] == 0 && map[15] == 0 && map[16] == 1 && map[39] == 1 && map[40] == 2 && map[63] == 2);
  rotary_rope_destroy(rope);
  l.streams.layout = ROTARY_STREAMS_INTERLEAVED; /* Qwen3-VL: [24, 20, 20] */
  l.streams.sections[0] = 24, l.streams.sections[1] = 20, l.streams.sections[2] = 20;
  rope = must_rope(&l, 128, 128, ROTARY_PAIRING_HALF, 5e6, 0, 1.0, 0);
  rotary_rope_stream_map(rope, map);
  assert_true(map[0] == 0 && map[1] == 1 && map[2] == 2 && map[3] == 0 && map[57] == 0 && map[58] == 1);
  assert_true(map[59] == 2 && map[60] == 0 && map[61] == 0 && map[62] == 0 && map[63] == 0);
  rotary_rope_destroy(rope);
  /* memory: the map (half bytes); interleaved adds its order (half 16-bit indices), table-free its sorted
   * frequencies (half doubles) */
  for (size_t max = 0; max <= 16; max += 16) {
    rotary_rope *plain = must_rope(&(so_layout){0}, 128, 128, ROTARY_PAIRING_HALF, 5e6, 0, 1.0, max);
    rotary_rope *inter = must_rope(&l, 128, 128, ROTARY_PAIRING_HALF, 5e6, 0, 1.0, max);
    so_layout sec = l;
    sec.streams.layout = ROTARY_STREAMS_SECTIONS;
    rotary_rope *sect = must_rope(&sec, 128, 128, ROTARY_PAIRING_HALF, 5e6, 0, 1.0, max);
    const size_t base = rotary_rope_memory_bytes(plain);
    assert_int_equal(rotary_rope_memory_bytes(sect), base + 64);
    assert_int_equal(rotary_rope_memory_bytes(inter), base + 64 + 64 * 2 + (max ? 0 : 64 * 8));
    rotary_rope_destroy(plain);
    rotary_rope_destroy(inter);
    rotary_rope_destroy(sect);
  }
  rope = must_rope(&(so_layout){0}, 64, 64, ROTARY_PAIRING_HALF, 1e4, 0, 1.0, 16);
  assert_int_equal(rotary_rope_streams(rope), 1);
  memset(map, 7, sizeof map);
  rotary_rope_stream_map(rope, map);
  for (size_t i = 0; i < 32; i++) assert_int_equal(map[i], 0);
  rotary_rope_destroy(rope);
  assert_int_equal(rotary_rope_streams(NULL), 0);
  tu_rng rng;
  tu_rng_seed(&rng, 11);
  for (int it = 0; it < 400; it++) {
    const rotary_stream_layout kind = kinds[it % 5];
    const size_t rd = 4 * (1 + (size_t)tu_rng_below(&rng, 64));
    so_layout r;
    so_random_layout(&rng, kind, rd / 2, &r);
    uint8_t want[SO_MAX_HALF];
    so_map(&r.streams, rd / 2, want);
    rope = must_rope(&r, rd, rd, ROTARY_PAIRING_HALF, 1e4, 0, 1.0, it % 2 ? 8 : 0);
    assert_int_equal(rotary_rope_streams(rope), so_n_streams(&r.streams));
    rotary_rope_stream_map(rope, map);
    assert_memory_equal(map, want, rd / 2);
    rotary_rope_destroy(rope);
  }
}

/* ---- cos/sin rows ---- */

/* One layout: cos_sin_streams of a table rope and a table-free rope, against the gather and the exact oracle. */
static void rows_case(tu_rng *rng, rotary_stream_layout kind, size_t rd, int scaling, size_t *inexact,
                      size_t *count) {
  const size_t half = rd / 2, n = 29, table = 3000;
  so_layout l;
  so_random_layout(rng, kind, half, &l);
  const double att = scaling ? 1.0 : 0.75;
  rotary_rope *rt = must_rope(&l, rd, rd, ROTARY_PAIRING_HALF, 1e4, scaling, att, table);
  rotary_rope *rf = must_rope(&l, rd, rd, ROTARY_PAIRING_HALF, 1e4, scaling, att, 0);
  uint8_t map[SO_MAX_HALF];
  so_map(&l.streams, half, map);
  so_ids s;
  so_ids_make(&s, rng, so_n_streams(&l.streams), n, tu_rng_below(rng, 3), (int64_t)table);
  float *buf = malloc(6 * n * half * sizeof(float));
  assert_non_null(buf);
  float *ct = buf, *st = buf + n * half, *cf = st + n * half, *sf = cf + n * half, *ce = sf + n * half,
        *se = ce + n * half;
  const size_t stride = s.stride == n && tu_rng_below(rng, 2) ? 0 : s.stride;
  assert_int_equal(rotary_rope_cos_sin_streams(rt, s.ids, stride, n, ct, st), ROTARY_OK);
  assert_int_equal(rotary_rope_cos_sin_streams(rf, s.ids, stride, n, cf, sf), ROTARY_OK);
  assert_memory_equal(ct, cf, n * half * sizeof(float)); /* table and table-free: the same bits */
  assert_memory_equal(st, sf, n * half * sizeof(float));
  assert_int_equal(so_expected_rows(rt, &s, map, half, ce, se), 0);
  assert_memory_equal(ct, ce, n * half * sizeof(float));
  assert_memory_equal(st, se, n * half * sizeof(float));
  double w[SO_MAX_HALF];
  rotary_rope_inv_freq(rt, w);
  for (size_t t = 0; t < n; t++) {
    int64_t id[ROTARY_MAX_STREAMS];
    float xc[SO_MAX_HALF], xs[SO_MAX_HALF];
    for (size_t j = 0; j < s.ns; j++) id[j] = s.ids[j * s.stride + t];
    so_exact_row(id, map, w, half, rotary_rope_attention_scaling(rt), xc, xs);
    for (size_t i = 0; i < half; i++) {
      assert_true(tu_ulp_dist_f32(xc[i], ct[t * half + i]) <= 1 && tu_ulp_dist_f32(xs[i], st[t * half + i]) <= 1);
      *inexact += (xc[i] != ct[t * half + i]) + (xs[i] != st[t * half + i]);
    }
    *count += 2 * half;
  }
  free(buf);
  so_ids_free(&s);
  rotary_rope_destroy(rt);
  rotary_rope_destroy(rf);
}

static void test_cos_sin_streams(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 21);
  static const size_t rds[] = {4, 8, 12, 16, 40, 64, 96, 128, 256};
  size_t inexact = 0, count = 0;
  const size_t n_rd = tu_quick() ? 4 : sizeof rds / sizeof rds[0];
  for (int k = 0; k < 5; k++)
    for (size_t r = 0; r < n_rd; r++)
      for (int sc = 0; sc < (is_vision(kinds[k]) ? 1 : 4); sc++)
        rows_case(&rng, kinds[k], rds[r], sc, &inexact, &count);
  printf("[rows] %zu multi-stream cos/sin values: all within 1 ulp of the correctly rounded value, %zu not "
         "correctly rounded\n", count, inexact);
  /* a one-stream rope: the streams call is rotary_rope_cos_sin */
  rotary_rope *rope = must_rope(&(so_layout){0}, 64, 32, ROTARY_PAIRING_HALF, 1e4, 0, 1.0, 100);
  int64_t ids[5] = {0, 99, 3, 50, 7};
  float c1[80], s1[80], c2[80], s2[80];
  assert_int_equal(rotary_rope_cos_sin_streams(rope, ids, 0, 5, c1, s1), ROTARY_OK);
  assert_int_equal(rotary_rope_cos_sin(rope, ids, 5, c2, s2), ROTARY_OK);
  assert_memory_equal(c1, c2, sizeof c1);
  assert_memory_equal(s1, s2, sizeof s1);
  assert_int_equal(rotary_rope_cos_sin_streams(rope, NULL, 0, 0, NULL, NULL), ROTARY_OK);
  rotary_rope_destroy(rope);
}

/* ---- streams that agree: the 1-D path, bit for bit ---- */

/* Rotates q only (batch 1, T tokens, BSHD f32) with positions p. */
static rotary_status apply_f32(rotary_context *ctx, const rotary_rope *rope, const rotary_positions *p, size_t T,
                               size_t heads, size_t hd, const float *in, float *out, rotary_direction dir) {
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.seq_len = T;
  d.positions = *p;
  d.direction = dir;
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, in, out, ROTARY_F32, T, heads, hd), ROTARY_OK);
  return rotary_apply(ctx, rope, &d);
}

/* One layout: tokens whose streams all hold the same id rotate exactly as the 1-D ids (one-id modes of the same
 * rope, and a one-stream rope with the same frequencies). */
static void agree_case(tu_rng *rng, rotary_stream_layout kind, size_t rd, size_t max_positions) {
  const size_t T = 23, heads = 3, hd = rd + 6, half = rd / 2, n_el = T * heads * hd;
  so_layout l;
  so_random_layout(rng, kind, half, &l);
  rotary_rope *multi = must_rope(&l, hd, rd, ROTARY_PAIRING_INTERLEAVED, 1e4, 0, 0.75, max_positions);
  double w[SO_MAX_HALF];
  rotary_rope_inv_freq(multi, w);
  rotary_config c;
  rotary_config_init(&c, hd);
  c.rotary_dim = rd;
  c.pairing = ROTARY_PAIRING_INTERLEAVED;
  c.inv_freq = w;
  c.attention_scaling = 0.75;
  rotary_rope *one = NULL;
  assert_int_equal(rotary_rope_create(&c, max_positions, &one), ROTARY_OK);
  const size_t ns = rotary_rope_streams(multi);
  int64_t ids[4 * 23];
  int32_t ids32[4 * 23];
  for (size_t t = 0; t < T; t++) ids[t] = (int64_t)tu_rng_below(rng, max_positions ? max_positions : 1u << 30);
  for (size_t k = 0; k < ns * T; k++) ids32[k] = (int32_t)(ids[k] = ids[k % T]);
  float *x = malloc(5 * n_el * sizeof(float));
  assert_non_null(x);
  for (size_t e = 0; e < n_el; e++) x[e] = tu_rng_f32(rng, -4.0f, 4.0f);
  float *ref = x + n_el, *y = ref + n_el;
  for (int dir = 0; dir < 2; dir++) {
    const rotary_positions p1 = {.mode = ROTARY_POSITIONS_IDS_I64, .ids = ids};
    const rotary_positions p64 = {.mode = ROTARY_POSITIONS_STREAMS_I64, .ids = ids, .n_streams = ns};
    const rotary_positions p32 = {.mode = ROTARY_POSITIONS_STREAMS_I32, .ids = ids32, .n_streams = ns};
    assert_int_equal(apply_f32(NULL, one, &p1, T, heads, hd, x, ref, (rotary_direction)dir), ROTARY_OK);
    assert_int_equal(apply_f32(NULL, multi, &p1, T, heads, hd, x, y, (rotary_direction)dir), ROTARY_OK);
    assert_memory_equal(y, ref, n_el * sizeof(float));
    assert_int_equal(apply_f32(g_ctx3, multi, &p64, T, heads, hd, x, y, (rotary_direction)dir), ROTARY_OK);
    assert_memory_equal(y, ref, n_el * sizeof(float));
    assert_int_equal(apply_f32(NULL, multi, &p32, T, heads, hd, x, y, (rotary_direction)dir), ROTARY_OK);
    assert_memory_equal(y, ref, n_el * sizeof(float));
    const rotary_positions off = {.mode = ROTARY_POSITIONS_OFFSET, .offset = max_positions ? 5 : 1 << 20};
    assert_int_equal(apply_f32(NULL, one, &off, T, heads, hd, x, ref, (rotary_direction)dir), ROTARY_OK);
    assert_int_equal(apply_f32(g_ctx3, multi, &off, T, heads, hd, x, y, (rotary_direction)dir), ROTARY_OK);
    assert_memory_equal(y, ref, n_el * sizeof(float));
  }
  free(x);
  rotary_rope_destroy(multi);
  rotary_rope_destroy(one);
}

static void test_streams_agree(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 31);
  static const size_t rds[] = {4, 16, 64, 128, 200};
  for (int k = 0; k < 5; k++)
    for (size_t r = 0; r < sizeof rds / sizeof rds[0]; r++) {
      agree_case(&rng, kinds[k], rds[r], 512);
      agree_case(&rng, kinds[k], rds[r], 0);
    }
}

static int setup(void **state) {
  (void)state;
  return rotary_context_create(3, &g_ctx3) == ROTARY_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rotary_context_destroy(g_ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vision_frequencies), cmocka_unit_test(test_maps),
      cmocka_unit_test(test_cos_sin_streams),    cmocka_unit_test(test_streams_agree),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
