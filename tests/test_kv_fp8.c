/* test_kv_fp8.c: fp8 e4m3 KV caches bit-exact against the reference encoder written from the OCP spec. */
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

#include "kv_oracle.h"
#include "oracle.h"
#include "rotary.h"
#include "test_util.h"

static rotary_context *g_ctx;

/* The reference encoder itself, against values read off the OCP E4M3 definition. */
static void test_fp8_reference(void **state) {
  (void)state;
  assert_true(kvo_fp8_to_f32(0x00) == 0.0f && signbit(kvo_fp8_to_f32(0x80)));
  assert_true(kvo_fp8_to_f32(0x01) == 0x1p-9f && kvo_fp8_to_f32(0x07) == 7 * 0x1p-9f);
  assert_true(kvo_fp8_to_f32(0x08) == 0x1p-6f && kvo_fp8_to_f32(0x38) == 1.0f && kvo_fp8_to_f32(0x39) == 1.125f);
  assert_true(kvo_fp8_to_f32(0x7E) == 448.0f && kvo_fp8_to_f32(0xFE) == -448.0f && kvo_fp8_to_f32(0x77) == 240.0f);
  assert_true(isnan(kvo_fp8_to_f32(0x7F)) && isnan(kvo_fp8_to_f32(0xFF)));
  for (unsigned c = 0; c < 256; c++) {
    if ((c & 0x7F) == 0x7F) continue;
    assert_int_equal(kvo_fp8_from_f32(kvo_fp8_to_f32((uint8_t)c)), c); /* every finite code round-trips */
    if ((c & 0x7F) == 0x7E) continue;
    float lo = kvo_fp8_to_f32((uint8_t)c), hi = kvo_fp8_to_f32((uint8_t)(c + 1)), mid = (lo + hi) / 2;
    assert_true(fabsf(hi) > fabsf(lo));
    assert_int_equal(kvo_fp8_from_f32(mid), (c & 1) ? c + 1 : c); /* ties to even */
    assert_int_equal(kvo_fp8_from_f32(nextafterf(mid, 2 * hi)), c + 1);
    assert_int_equal(kvo_fp8_from_f32(nextafterf(mid, 0.0f)), c);
  }
  assert_int_equal(kvo_fp8_from_f32(464.0f), 0x7E); /* beyond 448: saturation, not the next (absent) binade */
  assert_int_equal(kvo_fp8_from_f32(1e30f), 0x7E);
  assert_int_equal(kvo_fp8_from_f32(INFINITY), 0x7E);
  assert_int_equal(kvo_fp8_from_f32(-INFINITY), 0xFE);
  assert_int_equal(kvo_fp8_from_f32(NAN), 0x7F);
  assert_int_equal(kvo_fp8_from_f32(-NAN), 0xFF);
  assert_int_equal(kvo_fp8_from_f32(0x1p-10f), 0x00);     /* half the smallest subnormal: tie to even 0 */
  assert_int_equal(kvo_fp8_from_f32(3 * 0x1p-10f), 0x02); /* 1.5 subnormal units: tie to even 2 */
  assert_int_equal(kvo_fp8_from_f32(-0x1p-10f), 0x80);
  assert_int_equal(kvo_fp8_from_f32(1e-45f), 0x00);
  assert_int_equal(kvo_fp8_from_f32(15 * 0x1p-10f), 0x08); /* 7.5 units: tie to even, the smallest normal */
  assert_int_equal(kvo_fp8_encode(1.0f, 0.5f), 0x40);
  assert_int_equal(kvo_fp8_encode(3.0f, 1.0f / 3.0f), kvo_fp8_from_f32(3.0f / (1.0f / 3.0f)));
  assert_true(kvo_fp8_decode(0x40, 0.25f) == 0.5f);
}

/* The values an fp8 cache must encode exactly: every code, every midpoint and its neighbours, saturation, NaN,
 * Inf and fp32 subnormals, all times the scale. Returns the count written to out. */
static size_t fp8_values(float scale, float *out) {
  size_t n = 0;
  for (unsigned c = 0; c < 0x7E; c++) {
    float lo = kvo_fp8_to_f32((uint8_t)c), hi = kvo_fp8_to_f32((uint8_t)(c + 1)), mid = (lo + hi) / 2;
    out[n++] = lo * scale, out[n++] = -lo * scale, out[n++] = mid * scale, out[n++] = -mid * scale;
    out[n++] = nextafterf(mid * scale, INFINITY), out[n++] = nextafterf(mid * scale, 0.0f);
  }
  static const float sp[] = {448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 1e6f, -448.0f, -470.0f};
  for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) out[n++] = sp[i] * scale;
  static const float raw[] = {INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX, 1e-40f, -1e-45f, 0.0f, -0.0f};
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) out[n++] = raw[i];
  while (n % 16) out[n++] = 1.0f;
  return n;
}

/* k (at position 0, so the rotation is the identity formula) and v through an fp8 cache, bit for bit. */
static void fp8_cache_case(float k_scale, float v_scale, rotary_dtype in_dt, size_t *checked) {
  static float vals[1024];
  const size_t n = fp8_values(k_scale, vals), D = 16, T = n / D;
  float *vvals = malloc(n * 4);
  (void)fp8_values(v_scale, vvals);
  unsigned char *k = malloc(n * 4), *v = malloc(n * 4), *kc = malloc(n), *vc = malloc(n);
  int64_t *ids = calloc(T, 8), *map = malloc(T * 8);
  assert_non_null(k), assert_non_null(v), assert_non_null(kc), assert_non_null(vc), assert_non_null(map);
  for (size_t i = 0; i < n; i++) tu_store(in_dt, k, (ptrdiff_t)i, vals[i]), tu_store(in_dt, v, (ptrdiff_t)i, vvals[i]);
  for (size_t t = 0; t < T; t++) map[t] = (int64_t)(T - 1 - t); /* reversed slots */
  memset(kc, 0x5A, n), memset(vc, 0xA5, n);
  rotary_config cfg;
  rotary_config_init(&cfg, D);
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&cfg, 8, &rope), ROTARY_OK);
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = 1, d.seq_len = T, d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = ids;
  assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, k, k, in_dt, T, 1, D), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.v, ROTARY_LAYOUT_BSHD, v, v, in_dt, T, 1, D), ROTARY_OK);
  d.cache = (rotary_kv_cache){.index = ROTARY_CACHE_SLOTS, .layout = ROTARY_CACHE_NHD, .dtype = ROTARY_FP8_E4M3,
                              .k = kc, .v = vc, .num_blocks = T, .block_size = 1, .slot_mapping = map,
                              .k_scale = k_scale, .v_scale = v_scale};
  assert_int_equal(rotary_kv_write(g_ctx, rope, &d), ROTARY_OK);
  float c0[8], s0[8]; /* rotary_dim / 2 values */
  const int64_t zero = 0;
  assert_int_equal(rotary_rope_cos_sin(rope, &zero, 1, c0, s0), ROTARY_OK);
  size_t bad = 0;
  for (size_t t = 0; t < T; t++)
    for (size_t i = 0; i < D; i++) {
      const size_t e = t * D + i, slot = (size_t)map[t] * D + i, j = i % (D / 2), pa = j, pb = j + D / 2;
      float y0, y1;
      oracle_formula_f32(tu_load(in_dt, k, (ptrdiff_t)(t * D + pa)), tu_load(in_dt, k, (ptrdiff_t)(t * D + pb)),
                         c0[j], s0[j], &y0, &y1);
      uint8_t wk = kvo_fp8_encode(i < D / 2 ? y0 : y1, k_scale), wv = kvo_fp8_encode(tu_load(in_dt, v, (ptrdiff_t)e), v_scale);
      int okk = kc[slot] == wk || (kvo_fp8_isnan(kc[slot]) && kvo_fp8_isnan(wk));
      int okv = vc[slot] == wv || (kvo_fp8_isnan(vc[slot]) && kvo_fp8_isnan(wv));
      if ((!okk || !okv) && bad++ < 8)
        printf("  FAIL fp8 %s scales %g/%g: k %.9g -> 0x%02x want 0x%02x; v %.9g -> 0x%02x want 0x%02x\n",
               tu_dtype_name(in_dt), (double)k_scale, (double)v_scale, (double)(i < D / 2 ? y0 : y1), kc[slot], wk,
               (double)tu_load(in_dt, v, (ptrdiff_t)e), vc[slot], wv);
      *checked += 2;
    }
  rotary_rope_destroy(rope);
  free(k), free(v), free(kc), free(vc), free(ids), free(map), free(vvals);
  assert_int_equal(bad, 0);
}

static void test_fp8_cache_encoding(void **state) {
  (void)state;
  static const float scales[] = {1.0f, 0.5f, 0.3f, 1.0f / 3.0f, 3e-3f, 200.0f, 0x1p-20f, 7.0f};
  size_t checked = 0;
  for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
    for (int dt = 0; dt < 3; dt++) fp8_cache_case(scales[i], scales[(i + 3) % 8], (rotary_dtype)dt, &checked);
  printf("fp8 cache: %zu values encoded bit-exact (every code, midpoint, saturation, NaN, Inf, subnormal)\n", checked);
}


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fp8_reference),
      cmocka_unit_test(test_fp8_cache_encoding),
  };
  if (rotary_context_create(2, &g_ctx) != ROTARY_OK) return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  rotary_context_destroy(g_ctx);
  return rc;
}
