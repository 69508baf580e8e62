/* test_tune.c: rotary_context_tune checks every argument before it runs anything (settings unchanged on error), keeps
 * its report honest (before, after, sources TUNED exactly where a value changed), honours min_gain, the settings
 * mask and the budget, skips candidates that cannot change a plan, and never changes an output bit. Not a timing
 * test: which value wins is never asserted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"
#include "test_util.h"

enum { HD = 64, MAXPOS = 1024, N_CALLS = 3 };

/* Three small out-of-place calls on one rope (half pairing, head_dim 64): a prefill in BSHD with q and k, a
 * heads-major BHSD call (heads 4 KiB apart: the head group matters) with int32 ids, a decode batch with offsets. */
typedef struct calls {
  rotary_rope *rope;
  float *q_in, *k_in, *q_out, *k_out;     /* BSHD f32: 64 tokens x 8 / 2 heads */
  uint16_t *b_in, *b_out;                 /* BHSD bf16: 32 tokens x 8 heads */
  float *d_in, *d_out;                    /* decode f32: 4 x 1 tokens x 8 heads */
  int32_t ids[32];
  int64_t offsets[4];
  rotary_apply_desc desc[N_CALLS];
} calls;

enum { PQ = 64 * 8 * HD, PK = 64 * 2 * HD, NB = 32 * 8 * HD, ND = 4 * 8 * HD };

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static void fill_f32(float *p, size_t n, uint64_t *seed) {
  for (size_t i = 0; i < n; i++) p[i] = (float)((int64_t)(rng_next(seed) >> 40) - (1 << 23)) / (float)(1 << 20);
}

static void fill_bf16(uint16_t *p, size_t n, uint64_t *seed) {
  for (size_t i = 0; i < n; i++) {
    const uint64_t r = rng_next(seed);
    p[i] = (uint16_t)(((r >> 48) & 0x807fu) | ((112 + r % 24) << 7));
  }
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  assert_non_null(p);
  return p;
}

/* Points c's descs at its inputs and the given outputs. */
static void point_descs(calls *c, float *q_out, float *k_out, uint16_t *b_out, float *d_out) {
  rotary_apply_desc *d = &c->desc[0];
  rotary_apply_desc_init(d);
  d->seq_len = 64;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, c->q_in, q_out, ROTARY_F32, 64, 8, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, c->k_in, k_out, ROTARY_F32, 64, 2, HD), ROTARY_OK);
  d->positions.offset = 100;
  d = &c->desc[1];
  rotary_apply_desc_init(d);
  d->seq_len = 32;
  d->positions.mode = ROTARY_POSITIONS_IDS_I32;
  d->positions.ids = c->ids;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BHSD, c->b_in, b_out, ROTARY_BF16, 32, 8, HD), ROTARY_OK);
  d = &c->desc[2];
  rotary_apply_desc_init(d);
  d->batch = 4;
  d->positions.mode = ROTARY_POSITIONS_OFFSETS;
  d->positions.offsets = c->offsets;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, c->d_in, d_out, ROTARY_F32, 1, 8, HD), ROTARY_OK);
}

static void calls_make(calls *c) {
  memset(c, 0, sizeof *c);
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  assert_int_equal(rotary_rope_create(&cfg, MAXPOS, &c->rope), ROTARY_OK);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  c->q_in = xmalloc(PQ * 4), c->k_in = xmalloc(PK * 4), c->q_out = xmalloc(PQ * 4), c->k_out = xmalloc(PK * 4);
  c->b_in = xmalloc(NB * 2), c->b_out = xmalloc(NB * 2), c->d_in = xmalloc(ND * 4), c->d_out = xmalloc(ND * 4);
  fill_f32(c->q_in, PQ, &seed), fill_f32(c->k_in, PK, &seed), fill_bf16(c->b_in, NB, &seed);
  fill_f32(c->d_in, ND, &seed);
  for (int i = 0; i < 32; i++) c->ids[i] = (int32_t)(rng_next(&seed) % MAXPOS);
  for (int i = 0; i < 4; i++) c->offsets[i] = 500 + 77 * i;
  point_descs(c, c->q_out, c->k_out, c->b_out, c->d_out);
}

static void calls_free(calls *c) {
  rotary_rope_destroy(c->rope);
  free(c->q_in), free(c->k_in), free(c->q_out), free(c->k_out), free(c->b_in), free(c->b_out), free(c->d_in);
  free(c->d_out);
}

/* Every setting of a context, value and source. */
typedef struct snapshot {
  int64_t value[ROTARY_SETTING_COUNT];
  rotary_setting_source source[ROTARY_SETTING_COUNT];
} snapshot;

static snapshot snap(rotary_context *ctx) {
  snapshot s;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++)
    assert_int_equal(rotary_context_get_setting(ctx, (rotary_setting)i, &s.value[i], &s.source[i]), ROTARY_OK);
  return s;
}

static void assert_same_settings(const snapshot *a, const snapshot *b) {
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    assert_int_equal(a->value[i], b->value[i]);
    assert_int_equal(a->source[i], b->source[i]);
  }
}

/* A context whose prefetch distance was set (source SET), so that "unchanged" covers a source other than the
 * default. */
static rotary_context *make_ctx(size_t threads) {
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(threads, &ctx), ROTARY_OK);
  int64_t v;
  assert_int_equal(rotary_context_get_setting(ctx, ROTARY_SETTING_PREFETCH_BYTES, &v, NULL), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(ctx, ROTARY_SETTING_PREFETCH_BYTES, v == 256 ? 512 : 256), ROTARY_OK);
  return ctx;
}

static void test_options_init(void **state) {
  (void)state;
  rotary_tune_options o;
  memset(&o, 0xab, sizeof o);
  rotary_tune_options_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_true(o.seconds == 10.0);
  assert_true(o.min_gain == 0.03);
  assert_int_equal(o.settings_mask, 0);
  assert_int_equal(o.rounds, 7);
  rotary_tune_options_init(NULL);
}

/* The call fails with want, and the context's settings, the report and every output are as they were. */
static void expect_error(rotary_context *ctx, calls *c, const rotary_apply_desc *descs, size_t n,
                         const rotary_tune_options *o, rotary_status want, const char *what) {
  const snapshot before = snap(ctx);
  rotary_tune_report report, untouched;
  memset(&report, 0x5a, sizeof report);
  untouched = report;
  memset(c->q_out, 0xff, PQ * 4), memset(c->b_out, 0xff, NB * 2), memset(c->d_out, 0xff, ND * 4);
  const rotary_status st = rotary_context_tune(ctx, c->rope, descs, n, o, &report);
  if (st != want) printf("FAIL %s: got %d, want %d\n", what, (int)st, (int)want);
  assert_int_equal(st, want);
  const snapshot after = snap(ctx);
  assert_same_settings(&before, &after);
  assert_memory_equal(&report, &untouched, sizeof report);
  for (size_t i = 0; i < PQ; i++) assert_int_equal(((const uint32_t *)(const void *)c->q_out)[i], 0xffffffffu);
  for (size_t i = 0; i < NB; i++) assert_int_equal(c->b_out[i], 0xffffu);
}

static void test_errors(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *ctx = make_ctx(2);
  rotary_tune_options ok;
  rotary_tune_options_init(&ok);
  ok.seconds = 0.05;
  assert_int_equal(rotary_context_tune(NULL, c.rope, c.desc, N_CALLS, &ok, NULL), ROTARY_ERR_NULL_POINTER);
  {
    const snapshot before = snap(ctx);
    rotary_tune_report r;
    assert_int_equal(rotary_context_tune(ctx, NULL, c.desc, N_CALLS, &ok, &r), ROTARY_ERR_NULL_POINTER);
    assert_int_equal(rotary_context_tune(ctx, c.rope, NULL, N_CALLS, &ok, &r), ROTARY_ERR_NULL_POINTER);
    const snapshot after = snap(ctx);
    assert_same_settings(&before, &after);
  }
  expect_error(ctx, &c, c.desc, 0, &ok, ROTARY_ERR_INVALID_ARGUMENT, "n_descs 0");
  rotary_apply_desc many[65];
  for (int i = 0; i < 65; i++) many[i] = c.desc[i % N_CALLS];
  expect_error(ctx, &c, many, 65, &ok, ROTARY_ERR_INVALID_ARGUMENT, "n_descs 65");
  rotary_tune_options o = ok;
  o.struct_size = 0;
  expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "struct_size 0");
  o.struct_size = sizeof o + 8;
  expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "struct_size + 8");
  const double bad_seconds[] = {0.0, -1.0, NAN, INFINITY};
  for (int i = 0; i < 4; i++) {
    o = ok, o.seconds = bad_seconds[i];
    expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "seconds");
  }
  const double bad_gain[] = {1.0, -0.1, NAN, INFINITY, 2.0};
  for (int i = 0; i < 5; i++) {
    o = ok, o.min_gain = bad_gain[i];
    expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "min_gain");
  }
  o = ok, o.rounds = 2;
  expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "rounds 2");
  o = ok, o.rounds = SIZE_MAX / 2; /* the timing buffers' size overflows */
  expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_OUT_OF_MEMORY, "rounds SIZE_MAX / 2");
  o = ok, o.settings_mask = 1u << ROTARY_SETTING_COUNT;
  expect_error(ctx, &c, c.desc, N_CALLS, &o, ROTARY_ERR_INVALID_ARGUMENT, "settings_mask bit 5");
  rotary_apply_desc bad[N_CALLS];
  memcpy(bad, c.desc, sizeof bad);
  bad[1].struct_size = 0;
  expect_error(ctx, &c, bad, N_CALLS, &ok, ROTARY_ERR_INVALID_ARGUMENT, "desc 1 struct_size");
  memcpy(bad, c.desc, sizeof bad);
  bad[2].positions.offsets = NULL;
  expect_error(ctx, &c, bad, N_CALLS, &ok, ROTARY_ERR_NULL_POINTER, "desc 2 offsets NULL");
  memcpy(bad, c.desc, sizeof bad);
  bad[2].positions.mode = ROTARY_POSITIONS_OFFSET;
  bad[2].positions.offset = MAXPOS; /* beyond the table: the last call of the list is bad */
  expect_error(ctx, &c, bad, N_CALLS, &ok, ROTARY_ERR_POSITION, "desc 2 position");
  memcpy(bad, c.desc, sizeof bad);
  bad[0].k.out = c.q_out; /* k's output overlaps q's */
  expect_error(ctx, &c, bad, N_CALLS, &ok, ROTARY_ERR_OVERLAP, "desc 0 overlap");
  rotary_context_destroy(ctx);
  calls_free(&c);
}

/* The report says what happened: before is the settings found, after the settings left, a source is TUNED exactly
 * where the value changed (elsewhere it is the source before), the times are positive. */
static void check_report(const snapshot *before, const snapshot *after, const rotary_tune_report *r) {
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    assert_int_equal(r->before[i], before->value[i]);
    assert_int_equal(r->after[i], after->value[i]);
    if (before->value[i] != after->value[i]) assert_int_equal(after->source[i], ROTARY_SOURCE_TUNED);
    else assert_int_equal(after->source[i], before->source[i]);
  }
  assert_true(isfinite(r->before_seconds) && r->before_seconds > 0);
  assert_true(isfinite(r->after_seconds) && r->after_seconds > 0);
}

static rotary_tune_options options(double seconds, double min_gain, unsigned mask) {
  rotary_tune_options o;
  rotary_tune_options_init(&o);
  o.seconds = seconds, o.min_gain = min_gain, o.settings_mask = mask;
  return o;
}

/* A tune on a small budget succeeds and reports honestly. */
static void test_tiny_budget(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *ctx = make_ctx(2);
  const snapshot before = snap(ctx);
  /* 0.2 s holds a few candidates' rounds of these calls (about 20 us a round here); slow tools (valgrind, qemu,
   * TSan) run them 20-50 times slower */
  const rotary_tune_options o = options(tu_quick() ? 3.0 : 0.2, 0.03, 0);
  rotary_tune_report r;
  assert_int_equal(rotary_context_tune(ctx, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
  const snapshot after = snap(ctx);
  check_report(&before, &after, &r);
  assert_true(r.candidates > 0);
  printf("tiny budget: %zu candidates%s, %.1f us before, %.1f us after\n", r.candidates,
         r.out_of_time ? " (out of time)" : "", 1e6 * r.before_seconds, 1e6 * r.after_seconds);
  rotary_context_destroy(ctx);
  calls_free(&c);
}

/* Tuned settings (min_gain 0: the likeliest to change something) give every output bit a default context gives. */
static void test_outputs_unchanged(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *tuned = make_ctx(2), *plain;
  assert_int_equal(rotary_context_create(2, &plain), ROTARY_OK);
  const rotary_tune_options o = options(0.3, 0.0, 0);
  rotary_tune_report r;
  assert_int_equal(rotary_context_tune(tuned, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
  float *q2 = xmalloc(PQ * 4), *k2 = xmalloc(PK * 4), *d2 = xmalloc(ND * 4);
  uint16_t *b2 = xmalloc(NB * 2);
  memset(c.q_out, 0xff, PQ * 4), memset(c.k_out, 0xff, PK * 4), memset(c.b_out, 0xff, NB * 2);
  memset(c.d_out, 0xff, ND * 4);
  memset(q2, 0, PQ * 4), memset(k2, 0, PK * 4), memset(b2, 0, NB * 2), memset(d2, 0, ND * 4);
  for (int i = 0; i < N_CALLS; i++) assert_int_equal(rotary_apply(tuned, c.rope, &c.desc[i]), ROTARY_OK);
  calls other = c;
  point_descs(&other, q2, k2, b2, d2);
  for (int i = 0; i < N_CALLS; i++) assert_int_equal(rotary_apply(plain, c.rope, &other.desc[i]), ROTARY_OK);
  assert_memory_equal(c.q_out, q2, PQ * 4);
  assert_memory_equal(c.k_out, k2, PK * 4);
  assert_memory_equal(c.b_out, b2, NB * 2);
  assert_memory_equal(c.d_out, d2, ND * 4);
  int changed = 0;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) changed += r.before[i] != r.after[i];
  printf("outputs identical with %d setting(s) changed\n", changed);
  free(q2), free(k2), free(b2), free(d2);
  rotary_context_destroy(plain);
  rotary_context_destroy(tuned);
  calls_free(&c);
}

/* No candidate falls by 99%: nothing changes, sources included. */
static void test_min_gain_high(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *ctx = make_ctx(2);
  const snapshot before = snap(ctx);
  const rotary_tune_options o = options(0.2, 0.99, 0);
  rotary_tune_report r;
  assert_int_equal(rotary_context_tune(ctx, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
  const snapshot after = snap(ctx);
  assert_same_settings(&before, &after);
  check_report(&before, &after, &r);
  rotary_context_destroy(ctx);
  calls_free(&c);
}

/* A mask of one setting: every other setting keeps its value and source. */
static void test_mask_one(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
    rotary_context *ctx = make_ctx(2);
    const snapshot before = snap(ctx);
    const rotary_tune_options o = options(0.1, 0.0, 1u << s);
    rotary_tune_report r;
    assert_int_equal(rotary_context_tune(ctx, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
    const snapshot after = snap(ctx);
    check_report(&before, &after, &r);
    for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
      if (i == s) continue;
      assert_int_equal(after.value[i], before.value[i]);
      assert_int_equal(after.source[i], before.source[i]);
    }
    rotary_context_destroy(ctx);
  }
  calls_free(&c);
}

/* A budget shorter than the warm-up: out of time before the first candidate, nothing changed; options and report
 * NULL take the defaults and report nothing. */
static void test_budget_and_nulls(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *ctx = make_ctx(2);
  const snapshot before = snap(ctx);
  const rotary_tune_options o = options(1e-9, 0.0, 0);
  rotary_tune_report r;
  assert_int_equal(rotary_context_tune(ctx, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
  assert_int_equal(r.out_of_time, 1);
  assert_int_equal(r.candidates, 0);
  const snapshot after = snap(ctx);
  assert_same_settings(&before, &after);
  check_report(&before, &after, &r);
  /* the defaults' 10 s budget outlasts these small calls' candidates */
  assert_int_equal(rotary_context_tune(ctx, c.rope, c.desc, N_CALLS, NULL, NULL), ROTARY_OK);
  rotary_context_destroy(ctx);
  calls_free(&c);
}

/* Candidates that cannot change any call's plan are not timed: the thread split on one thread, stream stores for
 * in-place calls, the head group without a heads-major tensor. The same settings with calls they do change are
 * timed (controls). */
static void test_skips(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *one = make_ctx(1), *two = make_ctx(2);
  const unsigned split = 1u << ROTARY_SETTING_THREAD_BYTES | 1u << ROTARY_SETTING_TASKS_PER_THREAD;
  rotary_tune_options o = options(5.0, 0.03, split);
  rotary_tune_report r;
  assert_int_equal(rotary_context_tune(one, c.rope, c.desc, N_CALLS, &o, &r), ROTARY_OK);
  assert_int_equal(r.candidates, 0);
  assert_int_equal(r.out_of_time, 0);
  o.settings_mask = 1u << ROTARY_SETTING_THREAD_BYTES;
  assert_int_equal(rotary_context_tune(two, c.rope, c.desc, 1, &o, &r), ROTARY_OK);
  assert_true(r.candidates > 0);

  rotary_apply_desc in_place[N_CALLS];
  memcpy(in_place, c.desc, sizeof in_place);
  in_place[0].q.out = c.q_in, in_place[0].k.out = c.k_in, in_place[1].q.out = c.b_in, in_place[2].q.out = c.d_in;
  o.settings_mask = 1u << ROTARY_SETTING_STREAM_STORE_BYTES;
  assert_int_equal(rotary_context_tune(two, c.rope, in_place, N_CALLS, &o, &r), ROTARY_OK);
  assert_int_equal(r.candidates, 0);
  assert_int_equal(r.out_of_time, 0);

  const rotary_apply_desc bshd[2] = {c.desc[0], c.desc[2]};
  o.settings_mask = 1u << ROTARY_SETTING_HEAD_GROUP;
  assert_int_equal(rotary_context_tune(two, c.rope, bshd, 2, &o, &r), ROTARY_OK);
  assert_int_equal(r.candidates, 0);
  assert_int_equal(r.out_of_time, 0);
  assert_int_equal(rotary_context_tune(two, c.rope, &c.desc[1], 1, &o, &r), ROTARY_OK);
  assert_true(r.candidates > 0);
  rotary_context_destroy(one);
  rotary_context_destroy(two);
  calls_free(&c);
}

/* A call that fails after validation (the first call's output is the second's position ids, valid until the first
 * call writes them) stops the run with its status and the settings it started with. */
static void test_error_in_a_call(void **state) {
  (void)state;
  calls c;
  calls_make(&c);
  rotary_context *ctx = make_ctx(2);
  float *x_in = xmalloc(HD * 4), *x_out = calloc(HD, 4), *y_in = xmalloc(32 * HD * 4), *y_out = xmalloc(32 * HD * 4);
  assert_non_null(x_out);
  for (int i = 0; i < HD; i++) x_in[i] = 1.0f; /* position 0 keeps it: ids 0x3f8000003f800000 */
  uint64_t seed = 7;
  fill_f32(y_in, 32 * HD, &seed);
  rotary_apply_desc d[2];
  rotary_apply_desc_init(&d[0]);
  assert_int_equal(rotary_tensor_init(&d[0].q, ROTARY_LAYOUT_BSHD, x_in, x_out, ROTARY_F32, 1, 1, HD), ROTARY_OK);
  rotary_apply_desc_init(&d[1]);
  d[1].seq_len = 32;
  d[1].positions.mode = ROTARY_POSITIONS_IDS_I64;
  d[1].positions.ids = x_out;
  assert_int_equal(rotary_tensor_init(&d[1].q, ROTARY_LAYOUT_BSHD, y_in, y_out, ROTARY_F32, 32, 1, HD), ROTARY_OK);
  const snapshot before = snap(ctx);
  const rotary_tune_options o = options(0.2, 0.0, 0);
  rotary_tune_report r;
  memset(&r, 0x5a, sizeof r);
  const rotary_tune_report untouched = r;
  assert_int_equal(rotary_context_tune(ctx, c.rope, d, 2, &o, &r), ROTARY_ERR_POSITION);
  const snapshot after = snap(ctx);
  assert_same_settings(&before, &after);
  assert_memory_equal(&r, &untouched, sizeof r);
  free(x_in), free(x_out), free(y_in), free(y_out);
  rotary_context_destroy(ctx);
  calls_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_init),   cmocka_unit_test(test_errors),
      cmocka_unit_test(test_tiny_budget),    cmocka_unit_test(test_outputs_unchanged),
      cmocka_unit_test(test_min_gain_high),  cmocka_unit_test(test_mask_one),
      cmocka_unit_test(test_budget_and_nulls), cmocka_unit_test(test_skips),
      cmocka_unit_test(test_error_in_a_call),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
