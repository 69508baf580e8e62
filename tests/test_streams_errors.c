/* test_streams_errors.c: every bad input of multi-stream positions (layouts, stream counts, ids) returns its
 * documented status, names its field, and writes nothing. (Beside test_errors.c, which is past 800 lines.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"
#include "test_util.h"

enum { HD = 16, RD = 12, HALF = RD / 2, HQ = 2, HK = 1, B = 2, S = 3, T = B * S, MAXPOS = 32 };
enum { NQ = T * HQ * HD, NK = T * HK * HD };

static int n_cases;
static rotary_context *ctx3;

/* ---- configs ---- */

static void sections_config(rotary_config *c, rotary_stream_layout layout, size_t n, size_t s0, size_t s1,
                            size_t s2, size_t s3) {
  rotary_config_init(c, HD);
  c->rotary_dim = RD;
  c->streams.layout = layout;
  c->streams.n_streams = n;
  c->streams.sections[0] = s0, c->streams.sections[1] = s1, c->streams.sections[2] = s2, c->streams.sections[3] = s3;
}

/* rotary_config_check names the field; rotary_rope_create (table and table-free) gives the status, *out kept. */
static void expect_config(const rotary_config *c, rotary_status want, const char *field, const char *what) {
  const char *got_field = "untouched";
  const rotary_status st = rotary_config_check(c, &got_field);
  if (st != want) printf("FAIL %s: got %d, want %d\n", what, (int)st, (int)want);
  assert_int_equal(st, want);
  if (want != ROTARY_OK) assert_string_equal(got_field, field);
  for (size_t max = 0; max <= MAXPOS; max += MAXPOS) {
    rotary_rope *rope = (rotary_rope *)(void *)&n_cases;
    assert_int_equal(rotary_rope_create(c, max, &rope), want);
    if (want != ROTARY_OK) assert_ptr_equal(rope, (void *)&n_cases);
    else rotary_rope_destroy(rope);
  }
  n_cases += want != ROTARY_OK;
}

static void test_config_errors(void **state) {
  (void)state;
  rotary_config c;
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 3, 2, 2, 2, 0);
  expect_config(&c, ROTARY_OK, NULL, "sections 2,2,2");
  c.streams.layout = (rotary_stream_layout)6;
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.layout", "unknown layout");
  sections_config(&c, ROTARY_STREAMS_NONE, 2, 0, 0, 0, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.n_streams", "NONE with 2 streams");
  for (size_t n = 0; n <= 5; n += 1) {
    if (n >= 2 && n <= 4) continue;
    sections_config(&c, ROTARY_STREAMS_SECTIONS, n, 6, 0, 0, 0);
    expect_config(&c, ROTARY_ERR_STREAMS, "streams.n_streams", "SECTIONS with 0, 1 or 5 streams");
    c.streams.layout = ROTARY_STREAMS_MAP;
    expect_config(&c, ROTARY_ERR_STREAMS, "streams.n_streams", "MAP with 0, 1 or 5 streams");
  }
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 3, 2, 2, 1, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "sections summing to 5 of 6");
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 3, 2, 2, 3, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "sections summing to 7 of 6");
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 2, 3, 3, 1, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "a section past n_streams");
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 2, SIZE_MAX, 7, 0, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "sections wrapping around");
  /* interleaved, half 6, 3 streams: stream j takes j, j + 3, ...; sections[j] slots must exist */
  sections_config(&c, ROTARY_STREAMS_INTERLEAVED, 3, 2, 2, 2, 0);
  expect_config(&c, ROTARY_OK, NULL, "interleaved 2,2,2 (stream 2 at 2 and 5)");
  sections_config(&c, ROTARY_STREAMS_INTERLEAVED, 3, 1, 2, 3, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "interleaved stream 2 with 3 of 6 (slot 8)");
  sections_config(&c, ROTARY_STREAMS_INTERLEAVED, 2, 2, 4, 0, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.sections", "interleaved stream 1 with 4 of 6 (slot 7)");
  uint8_t map[HALF] = {0, 1, 2, 2, 1, 0};
  sections_config(&c, ROTARY_STREAMS_MAP, 3, 0, 0, 0, 0);
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.map", "MAP without a map");
  c.streams.map = map;
  expect_config(&c, ROTARY_OK, NULL, "MAP");
  map[4] = 3;
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.map", "a map entry equal to n_streams");
  sections_config(&c, ROTARY_STREAMS_VISION_2D, 0, 0, 0, 0, 0);
  c.rotary_dim = 14;
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.layout", "vision with rotary_dim 14");
  c.rotary_dim = RD;
  c.streams.n_streams = 3;
  expect_config(&c, ROTARY_ERR_STREAMS, "streams.n_streams", "vision with 3 streams");
  c.streams.n_streams = 2;
  c.streams.layout = ROTARY_STREAMS_VISION_2D_PIXTRAL;
  c.scaling.type = ROTARY_SCALING_LINEAR;
  c.scaling.factor = 2.0;
  expect_config(&c, ROTARY_ERR_SCALING, "scaling.type", "vision with linear scaling");
}

/* A derived rope keeps the streams and the copied map (the caller's map may go away). */
static void test_derive_keeps_streams(void **state) {
  (void)state;
  rotary_config c;
  uint8_t map[HALF] = {2, 1, 0, 0, 1, 2}, got[HALF];
  sections_config(&c, ROTARY_STREAMS_MAP, 3, 0, 0, 0, 0);
  c.streams.map = map;
  c.scaling.type = ROTARY_SCALING_DYNAMIC;
  c.scaling.factor = 2.0;
  c.scaling.max_position_embeddings = 16;
  rotary_rope *a = NULL, *b = NULL;
  assert_int_equal(rotary_rope_create(&c, 8, &a), ROTARY_OK);
  memset(map, 0, sizeof map);
  assert_int_equal(rotary_rope_derive(a, 64, 64, &b), ROTARY_OK);
  assert_int_equal(rotary_rope_streams(b), 3);
  assert_int_equal(rotary_rope_stream_map(b, got), ROTARY_OK);
  const uint8_t want[HALF] = {2, 1, 0, 0, 1, 2};
  assert_memory_equal(got, want, HALF);
  assert_true(rotary_rope_memory_bytes(a) > 0 && rotary_rope_memory_bytes(b) > rotary_rope_memory_bytes(a));
  assert_int_equal(rotary_rope_stream_map(NULL, got), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_rope_stream_map(a, NULL), ROTARY_ERR_NULL_POINTER);
  rotary_rope_destroy(a);
  rotary_rope_destroy(b);
}

/* ---- calls ---- */

static rotary_rope *rope3; /* sections 2, 2, 2 with a table of MAXPOS */
static rotary_rope *rope3_free;
static rotary_rope *rope1;
static float q_in[NQ], k_in[NK], q_out[NQ], k_out[NK];
static int64_t ids[3 * T + 8];
static int32_t ids32[3 * T + 8];

static void good_ids(void) {
  for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) ids32[k] = (int32_t)(ids[k] = (int64_t)((k * 7) % MAXPOS));
}

static void base_desc(rotary_apply_desc *d, rotary_position_mode mode) {
  rotary_apply_desc_init(d);
  d->batch = B, d->seq_len = S;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, q_in, q_out, ROTARY_F32, S, HQ, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, k_in, k_out, ROTARY_F32, S, HK, HD), ROTARY_OK);
  d->positions.mode = mode;
  d->positions.ids = mode == ROTARY_POSITIONS_STREAMS_I32 ? (const void *)ids32 : (const void *)ids;
  d->positions.n_streams = 3;
}

/* The call returns want, with and without a context, and leaves both outputs as they were. */
static void expect_apply(const rotary_rope *rope, const rotary_apply_desc *d, rotary_status want, const char *what) {
  for (int c = 0; c < 2; c++) {
    tu_canary_fill(q_out, sizeof q_out, 3);
    tu_canary_fill(k_out, sizeof k_out, 4);
    const rotary_status st = rotary_apply(c ? ctx3 : NULL, rope, d);
    if (st != want) printf("FAIL %s: got %d (%s), want %d\n", what, (int)st, rotary_status_string(st), (int)want);
    assert_int_equal(st, want);
    if (want == ROTARY_OK) continue;
    assert_int_equal(tu_canary_check(q_out, sizeof q_out, 3), sizeof q_out);
    assert_int_equal(tu_canary_check(k_out, sizeof k_out, 4), sizeof k_out);
  }
  n_cases += want != ROTARY_OK;
}

/* Ids (valid: zeros) inside q's in-place buffer: OVERLAP, the buffer unchanged. */
static void expect_ids_overlap(rotary_position_mode mode) {
  static float buf[NQ];
  rotary_apply_desc d;
  base_desc(&d, mode);
  memset(buf, 0, sizeof buf);
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, buf, buf, ROTARY_F32, S, HQ, HD), ROTARY_OK);
  d.positions.ids = buf + NQ / 2;
  for (int c = 0; c < 2; c++) {
    assert_int_equal(rotary_apply(c ? ctx3 : NULL, rope3_free, &d), ROTARY_ERR_OVERLAP);
    for (size_t e = 0; e < NQ; e++) assert_true(buf[e] == 0.0f);
  }
  n_cases++;
}

static void test_apply_errors(void **state) {
  (void)state;
  rotary_apply_desc d;
  for (int wide = 0; wide < 2; wide++) {
    const rotary_position_mode mode = wide ? ROTARY_POSITIONS_STREAMS_I64 : ROTARY_POSITIONS_STREAMS_I32;
    good_ids();
    base_desc(&d, mode);
    expect_apply(rope3, &d, ROTARY_OK, "valid");
    expect_apply(rope3_free, &d, ROTARY_OK, "valid, table-free");
    const size_t counts[4] = {0, 1, 2, 4};
    for (int k = 0; k < 4; k++) {
      base_desc(&d, mode), d.positions.n_streams = counts[k];
      expect_apply(rope3, &d, ROTARY_ERR_STREAMS, "n_streams not the rope's 3");
    }
    base_desc(&d, mode), d.positions.n_streams = 2;
    expect_apply(rope1, &d, ROTARY_ERR_STREAMS, "2 streams for a one-stream rope");
    base_desc(&d, mode), d.positions.n_streams = 1;
    expect_apply(rope1, &d, ROTARY_OK, "1 stream for a one-stream rope");
    base_desc(&d, mode), d.positions.ids = NULL;
    expect_apply(rope3, &d, ROTARY_ERR_NULL_POINTER, "NULL ids");
    base_desc(&d, mode), d.positions.stream_stride = T - 1;
    expect_apply(rope3, &d, ROTARY_ERR_INVALID_ARGUMENT, "stream_stride below batch * seq_len");
    base_desc(&d, mode), d.positions.stream_stride = T + 4;
    expect_apply(rope3, &d, ROTARY_OK, "stream_stride above batch * seq_len");
    base_desc(&d, mode), d.positions.stream_stride = SIZE_MAX / 2;
    expect_apply(rope3, &d, ROTARY_ERR_OVERFLOW, "stream_stride whose extent overflows");
    base_desc(&d, mode), d.positions.stream_stride = PTRDIFF_MAX / 8;
    expect_apply(rope3_free, &d, ROTARY_ERR_OVERFLOW, "the ids' extent in bytes above PTRDIFF_MAX");
    const int64_t bad[3] = {MAXPOS, -1, (int64_t)1 << 40};
    for (int v = 0; v < 3; v++) {
      base_desc(&d, mode);
      if (wide) ids[2 * T + T - 1] = bad[v];
      else ids32[2 * T + T - 1] = (int32_t)(v == 2 ? INT32_MIN : bad[v]);
      expect_apply(rope3, &d, ROTARY_ERR_POSITION, "an id out of range in stream 2, last token");
      good_ids();
    }
    base_desc(&d, mode), d.positions.stream_stride = T + 2;
    if (wide) ids[T + 1] = -5; /* in the gap after stream 0: never read */
    else ids32[T + 1] = -5;
    expect_apply(rope3, &d, ROTARY_OK, "a bad value in the gap between streams");
    if (wide) ids[T + 2 + 1] = MAXPOS; /* token 1 of stream 1 */
    else ids32[T + 2 + 1] = MAXPOS;
    expect_apply(rope3, &d, ROTARY_ERR_POSITION, "an id out of range in stream 1");
    good_ids();
    expect_ids_overlap(mode);
  }
}

/* rotary_rope_cos_sin_streams: statuses, and nothing written. */
static void test_cos_sin_streams_errors(void **state) {
  (void)state;
  float c[T * HALF + 4], s[T * HALF + 4];
  struct {
    const int64_t *ids;
    size_t stride, n;
    float *c, *s;
    rotary_status want;
    const char *what;
  } cases[] = {
      {NULL, 0, T, c, s, ROTARY_ERR_NULL_POINTER, "NULL ids"},
      {ids, 0, T, NULL, s, ROTARY_ERR_NULL_POINTER, "NULL cos"},
      {ids, 0, T, c, NULL, ROTARY_ERR_NULL_POINTER, "NULL sin"},
      {ids, T - 1, T, c, s, ROTARY_ERR_INVALID_ARGUMENT, "stride below n"},
      {ids, SIZE_MAX / 2, T, c, s, ROTARY_ERR_OVERFLOW, "the ids' extent overflows"},
      {ids, 0, T, c, c + 2, ROTARY_ERR_OVERLAP, "cos and sin overlap"},
      {(const int64_t *)(void *)c, 0, 2, c + 6, s, ROTARY_ERR_OVERLAP, "ids inside cos"},
      {ids, 0, T, c, s, ROTARY_ERR_POSITION, "an id out of range in stream 2"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    good_ids();
    if (cases[k].want == ROTARY_ERR_POSITION) ids[2 * T + 1] = MAXPOS;
    tu_canary_fill(c, sizeof c, 8);
    tu_canary_fill(s, sizeof s, 9);
    if (cases[k].ids == (const int64_t *)(void *)c) memset(c, 0, 2 * 3 * sizeof(int64_t));
    unsigned char c0[sizeof c], s0[sizeof s];
    memcpy(c0, c, sizeof c);
    memcpy(s0, s, sizeof s);
    const rotary_status st =
        rotary_rope_cos_sin_streams(rope3, cases[k].ids, cases[k].stride, cases[k].n, cases[k].c, cases[k].s);
    if (st != cases[k].want) printf("FAIL %s: got %d\n", cases[k].what, (int)st);
    assert_int_equal(st, cases[k].want);
    assert_memory_equal(c, c0, sizeof c);
    assert_memory_equal(s, s0, sizeof s);
    n_cases++;
  }
  good_ids();
  assert_int_equal(rotary_rope_cos_sin_streams(NULL, ids, 0, T, c, s), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_rope_cos_sin_streams(rope3, ids, 0, T, c, s), ROTARY_OK);
}

/* rotary_kv_write: stream count, stride and ids checked before any cache byte is written. */
static void test_kv_write_errors(void **state) {
  (void)state;
  float kc[B * 8 * HK * HD], vc[B * 8 * HK * HD], v_in[NK];
  int64_t lengths[B] = {1, 2};
  rotary_kv_write_desc d;
  const struct {
    size_t n_streams, stride;
    int bad_id;
    rotary_status want;
  } cases[] = {{3, 0, 0, ROTARY_OK},
               {2, 0, 0, ROTARY_ERR_STREAMS},
               {3, T - 1, 0, ROTARY_ERR_INVALID_ARGUMENT},
               {3, 0, 1, ROTARY_ERR_POSITION}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    good_ids();
    if (cases[k].bad_id) ids[2 * T + T - 1] = MAXPOS;
    rotary_kv_write_desc_init(&d);
    d.batch = B, d.seq_len = S;
    d.positions.mode = ROTARY_POSITIONS_STREAMS_I64;
    d.positions.ids = ids;
    d.positions.n_streams = cases[k].n_streams;
    d.positions.stream_stride = cases[k].stride;
    assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, q_in, q_out, ROTARY_F32, S, HQ, HD), ROTARY_OK);
    assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, k_in, NULL, ROTARY_F32, S, HK, HD), ROTARY_OK);
    assert_int_equal(rotary_tensor_init(&d.v, ROTARY_LAYOUT_BSHD, v_in, NULL, ROTARY_F32, S, HK, HD), ROTARY_OK);
    d.cache.index = ROTARY_CACHE_SEQUENCES;
    d.cache.dtype = ROTARY_F32;
    d.cache.k = kc, d.cache.v = vc, d.cache.num_blocks = B, d.cache.block_size = 8, d.cache.lengths = lengths;
    tu_canary_fill(kc, sizeof kc, 11);
    tu_canary_fill(vc, sizeof vc, 12);
    tu_canary_fill(q_out, sizeof q_out, 13);
    assert_int_equal(rotary_kv_write(ctx3, rope3, &d), cases[k].want);
    if (cases[k].want == ROTARY_OK) continue;
    assert_int_equal(tu_canary_check(kc, sizeof kc, 11), sizeof kc);
    assert_int_equal(tu_canary_check(vc, sizeof vc, 12), sizeof vc);
    assert_int_equal(tu_canary_check(q_out, sizeof q_out, 13), sizeof q_out);
    n_cases++;
  }
}

static void test_case_count(void **state) {
  (void)state;
  printf("multi-stream bad inputs checked: %d\n", n_cases);
  assert_true(n_cases >= 40);
}

static int setup(void **state) {
  (void)state;
  rotary_config c;
  sections_config(&c, ROTARY_STREAMS_SECTIONS, 3, 2, 2, 2, 0);
  int bad = rotary_rope_create(&c, MAXPOS, &rope3) != ROTARY_OK;
  bad |= rotary_rope_create(&c, 0, &rope3_free) != ROTARY_OK;
  sections_config(&c, ROTARY_STREAMS_NONE, 0, 0, 0, 0, 0);
  bad |= rotary_rope_create(&c, MAXPOS, &rope1) != ROTARY_OK;
  bad |= rotary_context_create(3, &ctx3) != ROTARY_OK;
  for (size_t e = 0; e < NQ; e++) q_in[e] = (float)e * 0.25f;
  for (size_t e = 0; e < NK; e++) k_in[e] = (float)e * -0.5f;
  return bad ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  rotary_rope_destroy(rope3);
  rotary_rope_destroy(rope3_free);
  rotary_rope_destroy(rope1);
  rotary_context_destroy(ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_errors),        cmocka_unit_test(test_derive_keeps_streams),
      cmocka_unit_test(test_apply_errors),         cmocka_unit_test(test_cos_sin_streams_errors),
      cmocka_unit_test(test_kv_write_errors),      cmocka_unit_test(test_case_count),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
