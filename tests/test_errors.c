/* test_errors.c: every documented bad input of the public API returns its exact status and writes nothing. */
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

/* The shape every apply case starts from: q [B, S, HQ, D] and k [B, S, HK, D], fp32, BSHD. */
enum { D = 8, HQ = 4, HK = 2, S = 4, B = 2, HALF = D / 2, MAXPOS = 16 };
enum { NQ = B * S * HQ * D, NK = B * S * HK * D };
/* The long case: one bad id at the very end of LONG_B * LONG_S ids. */
enum { LONG_B = 4, LONG_S = 256, LONG_MAXPOS = 512 };

/* Float-index offsets of every region of the arena. */
enum {
  Q_IN = 0, Q_OUT = 1024, K_IN = 2048, K_OUT = 3072, IDS = 4096, OFFS = 4608, COS = 5120, SIN = 6144,
  PACK = 8192, LONG_IN = 16384, LONG_OUT = 24576, LONG_IDS = 32768, LONG_OFFS = 36864, ARENA_FLOATS = 40960
};
#define ARENA_BYTES ((size_t)ARENA_FLOATS * 4)

static unsigned char *arena;    /* every tensor and position array of an apply case lives here */
static unsigned char *snapshot; /* the arena just before the call */
static rotary_rope *rope_tab;   /* head_dim D, table of MAXPOS positions */
static rotary_rope *rope_free;  /* head_dim D, table-free */
static rotary_rope *rope_long;  /* head_dim D, table of LONG_MAXPOS positions */
static rotary_context *ctx3;    /* every bad apply input also goes through a 3-thread context */
static int n_cases;             /* distinct bad inputs checked */
static char sentinel_object;    /* *out handles start pointing here */

#define SENTINEL_ROPE ((rotary_rope *)(void *)&sentinel_object)
#define SENTINEL_CTX ((rotary_context *)(void *)&sentinel_object)

static float *F(size_t at) { return (float *)(void *)(arena + at * 4); }
static int64_t *I64(size_t at) { return (int64_t *)(void *)(arena + at * 4); }
static int32_t *I32(size_t at) { return (int32_t *)(void *)(arena + at * 4); }

/* Records a failed check without stopping the test, so that one run lists every bad case. */

static void check_status(rotary_status got, rotary_status want, const char *what) {
  tu_check(got == want, "%s: got %d (%s), want %d (%s)", what, (int)got, rotary_status_string(got), (int)want,
        rotary_status_string(want));
}

/* Finite floats everywhere, valid positions in the position regions. */
static void fill_arena(void) {
  for (size_t i = 0; i < ARENA_FLOATS; i++) F(0)[i] = (float)((int)((i * 2654435761u) >> 7) % 201 - 100) / 37.0f;
  for (int i = 0; i < B * S; i++) I64(IDS)[i] = (i * 5) % MAXPOS;
  I64(OFFS)[0] = 0;
  I64(OFFS)[1] = MAXPOS - S;
  for (int i = 0; i < LONG_B * LONG_S; i++) I64(LONG_IDS)[i] = (i * 7) % LONG_MAXPOS;
  for (int b = 0; b < LONG_B; b++) I64(LONG_OFFS)[b] = b * 64;
}

static void set_ids32(void) {
  for (int i = 0; i < B * S; i++) I32(IDS)[i] = (i * 3) % MAXPOS;
}

static void tensor_bshd(rotary_tensor *t, const void *in, void *out, size_t heads, size_t seq) {
  memset(t, 0, sizeof(*t));
  t->in = in;
  t->out = out;
  t->dtype = ROTARY_F32;
  t->n_heads = heads;
  t->stride_head = t->out_stride_head = D;
  t->stride_seq = t->out_stride_seq = (ptrdiff_t)(heads * D);
  t->stride_batch = t->out_stride_batch = (ptrdiff_t)(seq * heads * D);
}

/* A valid call: offset positions 2..5, q out of place, k out of place. */
static void base_desc(rotary_apply_desc *d) {
  fill_arena();
  rotary_apply_desc_init(d);
  d->batch = B;
  d->seq_len = S;
  d->positions.mode = ROTARY_POSITIONS_OFFSET;
  d->positions.offset = 2;
  tensor_bshd(&d->q, F(Q_IN), F(Q_OUT), HQ, S);
  tensor_bshd(&d->k, F(K_IN), F(K_OUT), HK, S);
}

/* The long valid call: B = LONG_B, S = LONG_S, one q head, ids. */
static void long_desc(rotary_apply_desc *d, rotary_position_mode mode) {
  fill_arena();
  rotary_apply_desc_init(d);
  d->batch = LONG_B;
  d->seq_len = LONG_S;
  d->positions.mode = mode;
  d->positions.ids = I64(LONG_IDS);
  d->positions.offsets = I64(LONG_OFFS);
  tensor_bshd(&d->q, F(LONG_IN), F(LONG_OUT), 1, LONG_S);
}

/* One bad apply input: the exact status, and not one byte of the arena changed, with and without a context. */
static void expect_apply(const rotary_rope *rope, const rotary_apply_desc *d, rotary_status want, const char *what) {
  rotary_context *ctxs[2] = {NULL, ctx3};
  for (int i = 0; i < 2; i++) {
    memcpy(snapshot, arena, ARENA_BYTES);
    char label[160];
    snprintf(label, sizeof(label), "%s (ctx %s)", what, ctxs[i] ? "3 threads" : "NULL");
    check_status(rotary_apply(ctxs[i], rope, d), want, label);
    tu_check(memcmp(snapshot, arena, ARENA_BYTES) == 0, "%s: the failed call wrote bytes", label);
    memcpy(arena, snapshot, ARENA_BYTES);
  }
  n_cases++;
}

static rotary_rope *make_rope(size_t max_positions) {
  rotary_config c;
  rotary_config_init(&c, D);
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(&c, max_positions, &r), ROTARY_OK);
  assert_non_null(r);
  return r;
}

static int group_setup(void **state) {
  (void)state;
  arena = malloc(ARENA_BYTES);
  snapshot = malloc(ARENA_BYTES);
  if (!arena || !snapshot) return -1;
  rope_tab = make_rope(MAXPOS);
  rope_free = make_rope(0);
  rope_long = make_rope(LONG_MAXPOS);
  return rotary_context_create(3, &ctx3) == ROTARY_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  rotary_rope_destroy(rope_tab);
  rotary_rope_destroy(rope_free);
  rotary_rope_destroy(rope_long);
  rotary_context_destroy(ctx3);
  free(arena);
  free(snapshot);
  return 0;
}

static int test_setup(void **state) {
  (void)state;
  tu_failures = 0;
  return 0;
}

/* ---- rotary_rope_create ---- */

static void expect_create(const rotary_config *c, size_t max_positions, rotary_status want, const char *what) {
  rotary_rope *r = SENTINEL_ROPE;
  rotary_status st = rotary_rope_create(c, max_positions, &r);
  check_status(st, want, what);
  tu_check(r == SENTINEL_ROPE, "%s: *out was set on a failed create", what);
  if (st == ROTARY_OK && r != SENTINEL_ROPE) rotary_rope_destroy(r);
  n_cases++;
}

static void config_dims(rotary_config *c, size_t head_dim, size_t rotary_dim) {
  rotary_config_init(c, 8);
  c->head_dim = head_dim;
  c->rotary_dim = rotary_dim;
}

static void test_create_shape_errors(void **state) {
  (void)state;
  rotary_config c;
  rotary_config_init(&c, 8);
  assert_int_equal(rotary_rope_create(&c, 4, NULL), ROTARY_ERR_NULL_POINTER);
  n_cases++;
  expect_create(NULL, 4, ROTARY_ERR_NULL_POINTER, "create: config NULL");
  c.struct_size = 0;
  expect_create(&c, 4, ROTARY_ERR_INVALID_ARGUMENT, "create: struct_size 0");
  c.struct_size = sizeof(c) - 1;
  expect_create(&c, 4, ROTARY_ERR_INVALID_ARGUMENT, "create: struct_size sizeof - 1");
  rotary_config_init(&c, 0);
  expect_create(&c, 4, ROTARY_ERR_HEAD_DIM, "create: head_dim 0 (config_init(0))");
  config_dims(&c, 3, 2);
  expect_create(&c, 4, ROTARY_ERR_HEAD_DIM, "create: head_dim 3 odd");
  config_dims(&c, ROTARY_MAX_HEAD_DIM + 2, 64);
  expect_create(&c, 4, ROTARY_ERR_HEAD_DIM, "create: head_dim MAX + 2");
  config_dims(&c, SIZE_MAX - 1, 64);
  expect_create(&c, 4, ROTARY_ERR_HEAD_DIM, "create: head_dim SIZE_MAX - 1");
  config_dims(&c, 8, 3);
  expect_create(&c, 4, ROTARY_ERR_ROTARY_DIM, "create: rotary_dim 3 odd");
  config_dims(&c, 8, 10);
  expect_create(&c, 4, ROTARY_ERR_ROTARY_DIM, "create: rotary_dim 10 > head_dim 8");
  config_dims(&c, 8, 0);
  expect_create(&c, 4, ROTARY_ERR_ROTARY_DIM, "create: rotary_dim 0");
  config_dims(&c, 8, 8);
  c.pairing = (rotary_pairing)2;
  expect_create(&c, 4, ROTARY_ERR_PAIRING, "create: pairing 2");
  assert_int_equal(tu_failures, 0);
}

static void test_create_frequency_errors(void **state) {
  (void)state;
  const double bases[] = {0.0, -10000.0, NAN, INFINITY};
  const char *base_names[] = {"create: base 0", "create: base -10000", "create: base NaN", "create: base +Inf"};
  rotary_config c;
  for (int i = 0; i < 4; i++) {
    rotary_config_init(&c, 8);
    c.base = bases[i];
    expect_create(&c, 4, ROTARY_ERR_FREQUENCY, base_names[i]);
  }
  const double bad_freq[] = {NAN, INFINITY, 0.0, -0.5};
  const char *freq_names[] = {"create: inv_freq NaN", "create: inv_freq Inf", "create: inv_freq 0",
                              "create: inv_freq negative"};
  for (int i = 0; i < 4; i++) {
    double inv[4] = {1.0, 0.1, 0.01, 0.001};
    inv[3 - i % 4] = bad_freq[i];
    rotary_config_init(&c, 8);
    c.inv_freq = inv;
    expect_create(&c, 4, ROTARY_ERR_FREQUENCY, freq_names[i]);
  }
  const double scales[] = {0.0, NAN, -1.0, INFINITY};
  const char *scale_names[] = {"create: attention_scaling 0", "create: attention_scaling NaN",
                               "create: attention_scaling -1", "create: attention_scaling Inf"};
  for (int i = 0; i < 4; i++) {
    rotary_config_init(&c, 8);
    c.attention_scaling = scales[i];
    expect_create(&c, 4, ROTARY_ERR_FREQUENCY, scale_names[i]);
  }
  assert_int_equal(tu_failures, 0);
}

static void test_create_size_errors(void **state) {
  (void)state;
  rotary_config c;
  const size_t p53 = (size_t)1 << 53; /* max_positions - 1 == ROTARY_MAX_POSITION: allowed by POSITION */
  config_dims(&c, 65536, 65536);
  expect_create(&c, p53, ROTARY_ERR_OVERFLOW, "create: table 2^53 x 65536 x 4 bytes overflows");
  config_dims(&c, 2048, 2048);
  expect_create(&c, p53, ROTARY_ERR_OVERFLOW, "create: table 2^53 x 2048 x 4 bytes overflows");
  config_dims(&c, 2, 2);
  expect_create(&c, p53 + 1, ROTARY_ERR_POSITION, "create: max_positions - 1 = ROTARY_MAX_POSITION + 1");
  assert_int_equal(tu_failures, 0);
}

/* ---- getters, rotary_rope_cos_sin ---- */

static void test_inv_freq_errors(void **state) {
  (void)state;
  double buf[HALF];
  memset(buf, 0x5a, sizeof(buf));
  check_status(rotary_rope_inv_freq(NULL, buf), ROTARY_ERR_NULL_POINTER, "inv_freq: rope NULL");
  for (size_t i = 0; i < sizeof(buf); i++) tu_check(((unsigned char *)buf)[i] == 0x5a, "inv_freq: wrote on failure");
  n_cases++;
  check_status(rotary_rope_inv_freq(rope_tab, NULL), ROTARY_ERR_NULL_POINTER, "inv_freq: inv_freq NULL");
  n_cases++;
  assert_int_equal(tu_failures, 0);
}

enum { CS_N = 1000 };

static void expect_cos_sin(const rotary_rope *rope, const int64_t *pos, size_t n, float *cos, float *sin,
                           rotary_status want, const char *what) {
  memcpy(snapshot, arena, ARENA_BYTES);
  check_status(rotary_rope_cos_sin(rope, pos, n, cos, sin), want, what);
  tu_check(memcmp(snapshot, arena, ARENA_BYTES) == 0, "%s: the failed call wrote bytes", what);
  n_cases++;
}

static void test_cos_sin_errors(void **state) {
  (void)state;
  fill_arena();
  int64_t *pos = I64(LONG_IDS); /* CS_N valid table positions */
  float *cos = F(LONG_IN), *sin = F(LONG_OUT);
  const int64_t lim = MAXPOS;
  for (int i = 0; i < CS_N; i++) pos[i] = i % lim;
  expect_cos_sin(NULL, pos, 2, cos, sin, ROTARY_ERR_NULL_POINTER, "cos_sin: rope NULL");
  expect_cos_sin(rope_tab, NULL, 2, cos, sin, ROTARY_ERR_NULL_POINTER, "cos_sin: positions NULL");
  expect_cos_sin(rope_tab, pos, 2, NULL, sin, ROTARY_ERR_NULL_POINTER, "cos_sin: cos NULL");
  expect_cos_sin(rope_tab, pos, 2, cos, NULL, ROTARY_ERR_NULL_POINTER, "cos_sin: sin NULL");
  pos[1] = lim;
  expect_cos_sin(rope_tab, pos, 2, cos, sin, ROTARY_ERR_POSITION, "cos_sin: position == max_positions");
  pos[1] = -1;
  expect_cos_sin(rope_tab, pos, 2, cos, sin, ROTARY_ERR_POSITION, "cos_sin: position -1");
  pos[1] = 1;
  pos[CS_N - 1] = lim;
  expect_cos_sin(rope_tab, pos, CS_N, cos, sin, ROTARY_ERR_POSITION, "cos_sin: bad last of 1000 positions");
  pos[CS_N - 1] = 0;
  pos[0] = ROTARY_MAX_POSITION + 1;
  expect_cos_sin(rope_free, pos, 2, cos, sin, ROTARY_ERR_POSITION, "cos_sin: table-free MAX_POSITION + 1");
  pos[0] = INT64_MIN;
  expect_cos_sin(rope_free, pos, 2, cos, sin, ROTARY_ERR_POSITION, "cos_sin: table-free INT64_MIN");
  pos[0] = 0;
  expect_cos_sin(rope_tab, pos, 2, cos, cos, ROTARY_ERR_OVERLAP, "cos_sin: cos == sin");
  expect_cos_sin(rope_tab, pos, 2, cos, cos + 1, ROTARY_ERR_OVERLAP, "cos_sin: sin = cos + 1");
  /* n * rotary_dim/2 overflows: must be refused before any position is read past pos[CS_N - 1]. */
  rotary_config c;
  config_dims(&c, 65536, 65536);
  rotary_rope *wide = NULL;
  assert_int_equal(rotary_rope_create(&c, 0, &wide), ROTARY_OK);
  expect_cos_sin(wide, pos, (size_t)1 << 49, cos, sin, ROTARY_ERR_OVERFLOW, "cos_sin: n x 32768 overflows");
  rotary_rope_destroy(wide);
  assert_int_equal(tu_failures, 0);
}

static void test_cos_sin_valid_edges(void **state) {
  (void)state;
  check_status(rotary_rope_cos_sin(rope_tab, NULL, 0, NULL, NULL), ROTARY_OK, "cos_sin: n 0, NULL pointers");
  const int64_t pos[3] = {0, ROTARY_MAX_POSITION, ROTARY_MAX_POSITION - 1};
  float cos[3 * HALF], sin[3 * HALF];
  check_status(rotary_rope_cos_sin(rope_free, pos, 3, cos, sin), ROTARY_OK, "cos_sin: table-free MAX_POSITION");
  for (int i = 0; i < 3 * HALF; i++) tu_check(fabsf(cos[i]) <= 1.0f && fabsf(sin[i]) <= 1.0f, "cos_sin: |value| > 1");
  for (int i = 0; i < HALF; i++) tu_check(cos[i] == 1.0f && sin[i] == 0.0f, "cos_sin: position 0 is not identity");
  const int64_t last = MAXPOS - 1;
  check_status(rotary_rope_cos_sin(rope_tab, &last, 1, cos, sin), ROTARY_OK, "cos_sin: max_positions - 1");
  assert_int_equal(tu_failures, 0);
}

/* ---- contexts and rotary_tensor_init ---- */

static void test_context_errors(void **state) {
  (void)state;
  check_status(rotary_context_create(2, NULL), ROTARY_ERR_NULL_POINTER, "context_create: out NULL");
  n_cases++;
  const size_t bad[2] = {1025, SIZE_MAX};
  for (int i = 0; i < 2; i++) {
    rotary_context *c = SENTINEL_CTX;
    check_status(rotary_context_create(bad[i], &c), ROTARY_ERR_INVALID_ARGUMENT, "context_create: n_threads > 1024");
    tu_check(c == SENTINEL_CTX, "context_create(%zu): *out was set on failure", bad[i]);
    n_cases++;
  }
  check_status(rotary_context_set_threads(NULL, 2), ROTARY_ERR_NULL_POINTER, "set_threads: ctx NULL");
  n_cases++;
  rotary_context *c = NULL;
  assert_int_equal(rotary_context_create(2, &c), ROTARY_OK);
  check_status(rotary_context_set_threads(c, 1025), ROTARY_ERR_INVALID_ARGUMENT, "set_threads: 1025");
  tu_check(rotary_context_threads(c) == 2, "set_threads: the count changed on error");
  n_cases++;
  rotary_context_destroy(c);
  assert_int_equal(tu_failures, 0);
}

static void expect_tensor_init(rotary_layout layout, size_t seq, size_t heads, size_t hd, rotary_status want,
                               const char *what) {
  rotary_tensor t, before;
  memset(&t, 0xa5, sizeof(t));
  before = t;
  check_status(rotary_tensor_init(&t, layout, F(Q_IN), F(Q_OUT), ROTARY_F32, seq, heads, hd), want, what);
  tu_check(memcmp(&t, &before, sizeof(t)) == 0, "%s: *t was written on failure", what);
  n_cases++;
}

static void test_tensor_init_errors(void **state) {
  (void)state;
  check_status(rotary_tensor_init(NULL, ROTARY_LAYOUT_BSHD, F(Q_IN), F(Q_OUT), ROTARY_F32, S, HQ, D),
               ROTARY_ERR_NULL_POINTER, "tensor_init: t NULL");
  n_cases++;
  expect_tensor_init((rotary_layout)2, S, HQ, D, ROTARY_ERR_STRIDE, "tensor_init: layout 2");
  expect_tensor_init(ROTARY_LAYOUT_BSHD, (size_t)1 << 40, (size_t)1 << 20, 1024, ROTARY_ERR_OVERFLOW,
                     "tensor_init: seq x heads x head_dim beyond SIZE_MAX");
  expect_tensor_init(ROTARY_LAYOUT_BHSD, (size_t)1 << 31, (size_t)1 << 16, 65536, ROTARY_ERR_OVERFLOW,
                     "tensor_init: seq x heads x head_dim = 2^63 beyond PTRDIFF_MAX");
  assert_int_equal(tu_failures, 0);
}

/* ---- rotary_apply ---- */

/* Every bad case is one change away from one of these calls, so each of them must succeed. */
static void test_apply_base_is_valid(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d);
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "apply: base call");
  check_status(rotary_apply(ctx3, rope_free, &d), ROTARY_OK, "apply: base call, table-free, ctx");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_OFFSETS, d.positions.offsets = I64(OFFS);
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "apply: base call, offsets");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = I64(IDS);
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "apply: base call, int64 ids");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I32, d.positions.ids = I32(IDS), set_ids32();
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "apply: base call, int32 ids");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN, d.positions.cos = F(COS), d.positions.sin = F(SIN);
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "apply: base call, caller cos/sin");
  long_desc(&d, ROTARY_POSITIONS_IDS_I64);
  check_status(rotary_apply(ctx3, rope_long, &d), ROTARY_OK, "apply: long base call, int64 ids");
  long_desc(&d, ROTARY_POSITIONS_OFFSETS);
  check_status(rotary_apply(ctx3, rope_long, &d), ROTARY_OK, "apply: long base call, offsets");
  long_desc(&d, ROTARY_POSITIONS_IDS_I32);
  for (int i = 0; i < LONG_B * LONG_S; i++) I32(LONG_IDS)[i] = i % LONG_MAXPOS;
  check_status(rotary_apply(ctx3, rope_long, &d), ROTARY_OK, "apply: long base call, int32 ids");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_null(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d);
  expect_apply(NULL, &d, ROTARY_ERR_NULL_POINTER, "apply: rope NULL");
  expect_apply(rope_tab, NULL, ROTARY_ERR_NULL_POINTER, "apply: desc NULL");
  base_desc(&d), d.q.in = NULL;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: q.in NULL");
  base_desc(&d), d.q.out = NULL;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: q.out NULL");
  base_desc(&d), d.k.in = NULL;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: k.in NULL, k.n_heads 2");
  base_desc(&d), d.k.out = NULL;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: k.out NULL, k.n_heads 2");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_OFFSETS;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: offsets NULL");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I32;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: ids NULL (int32)");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I64;
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: ids NULL (int64)");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN, d.positions.sin = F(SIN);
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: cos NULL");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN, d.positions.cos = F(COS);
  expect_apply(rope_tab, &d, ROTARY_ERR_NULL_POINTER, "apply: sin NULL");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_invalid(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.struct_size = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: struct_size 0");
  base_desc(&d), d.struct_size = sizeof(d) - 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: struct_size sizeof - 1");
  base_desc(&d), d.batch = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: batch 0");
  base_desc(&d), d.seq_len = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: seq_len 0");
  base_desc(&d), d.q.n_heads = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: q.n_heads 0");
  base_desc(&d), d.positions.mode = (rotary_position_mode)7;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: position mode 7");
  base_desc(&d), d.direction = (rotary_direction)2;
  expect_apply(rope_tab, &d, ROTARY_ERR_INVALID_ARGUMENT, "apply: direction 2");
  base_desc(&d), d.q.dtype = (rotary_dtype)3;
  expect_apply(rope_tab, &d, ROTARY_ERR_DTYPE, "apply: q.dtype 3");
  base_desc(&d), d.k.dtype = (rotary_dtype)77;
  expect_apply(rope_tab, &d, ROTARY_ERR_DTYPE, "apply: k.dtype 77, k.n_heads 2");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_offset_positions(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.positions.offset = -1;
  expect_apply(rope_tab, &d, ROTARY_ERR_POSITION, "apply: offset -1");
  base_desc(&d), d.positions.offset = MAXPOS - S + 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_POSITION, "apply: offset + seq_len - 1 == max_positions");
  base_desc(&d), d.positions.offset = INT64_MAX - 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: offset INT64_MAX - 1, + seq_len - 1 overflows");
  base_desc(&d), d.positions.offset = INT64_MAX;
  expect_apply(rope_free, &d, ROTARY_ERR_OVERFLOW, "apply: table-free offset INT64_MAX overflows");
  base_desc(&d), d.positions.offset = ROTARY_MAX_POSITION - S + 2;
  expect_apply(rope_free, &d, ROTARY_ERR_POSITION, "apply: table-free last position MAX_POSITION + 1");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_OFFSETS, d.positions.offsets = I64(OFFS);
  I64(OFFS)[1] = -1;
  expect_apply(rope_tab, &d, ROTARY_ERR_POSITION, "apply: offsets[1] -1");
  I64(OFFS)[1] = MAXPOS - S + 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_POSITION, "apply: offsets[1] + seq_len - 1 == max_positions");
  I64(OFFS)[1] = INT64_MAX - 2;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: offsets[1] INT64_MAX - 2 overflows");
  long_desc(&d, ROTARY_POSITIONS_OFFSETS);
  I64(LONG_OFFS)[LONG_B - 1] = LONG_MAXPOS - LONG_S + 1;
  expect_apply(rope_long, &d, ROTARY_ERR_POSITION, "apply: long call, last offsets[] entry one past the table");
  assert_int_equal(tu_failures, 0);
}

static void expect_bad_id(const rotary_rope *rope, int wide, int index, int64_t value, const char *what) {
  rotary_apply_desc d;
  base_desc(&d);
  d.positions.mode = wide ? ROTARY_POSITIONS_IDS_I64 : ROTARY_POSITIONS_IDS_I32;
  d.positions.ids = I64(IDS);
  if (wide) I64(IDS)[index] = value;
  else set_ids32(), I32(IDS)[index] = (int32_t)value;
  expect_apply(rope, &d, ROTARY_ERR_POSITION, what);
}

static void test_apply_id_positions(void **state) {
  (void)state;
  expect_bad_id(rope_tab, 0, B * S - 1, MAXPOS, "apply: last int32 id == max_positions");
  expect_bad_id(rope_tab, 0, 0, -1, "apply: first int32 id -1");
  expect_bad_id(rope_tab, 0, 3, INT32_MIN, "apply: int32 id INT32_MIN");
  expect_bad_id(rope_tab, 1, 2, -1, "apply: int64 id -1");
  expect_bad_id(rope_tab, 1, 5, INT64_MIN, "apply: int64 id INT64_MIN");
  expect_bad_id(rope_tab, 1, B * S - 1, MAXPOS, "apply: last int64 id == max_positions");
  expect_bad_id(rope_free, 1, 4, ROTARY_MAX_POSITION + 1, "apply: table-free int64 id MAX_POSITION + 1");
  expect_bad_id(rope_free, 1, 6, INT64_MAX, "apply: table-free int64 id INT64_MAX");
  expect_bad_id(rope_free, 0, 1, -2, "apply: table-free int32 id -2");
  rotary_apply_desc d;
  long_desc(&d, ROTARY_POSITIONS_IDS_I64);
  I64(LONG_IDS)[LONG_B * LONG_S - 1] = LONG_MAXPOS;
  expect_apply(rope_long, &d, ROTARY_ERR_POSITION, "apply: 1024 int64 ids, the last one bad");
  long_desc(&d, ROTARY_POSITIONS_IDS_I32);
  for (int i = 0; i < LONG_B * LONG_S; i++) I32(LONG_IDS)[i] = i % LONG_MAXPOS;
  I32(LONG_IDS)[LONG_B * LONG_S - 1] = -7;
  expect_apply(rope_long, &d, ROTARY_ERR_POSITION, "apply: 1024 int32 ids, the last one negative");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_overflow(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.q.out_stride_batch = PTRDIFF_MAX - 10;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.out_stride_batch PTRDIFF_MAX - 10");
  base_desc(&d), d.q.stride_seq = PTRDIFF_MAX / 2;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.stride_seq PTRDIFF_MAX / 2 (input), 3x overflows");
  base_desc(&d), d.q.out_stride_seq = PTRDIFF_MIN / 2;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.out_stride_seq PTRDIFF_MIN / 2, 3x underflows");
  base_desc(&d), d.k.out_stride_head = PTRDIFF_MAX - 3;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: k.out_stride_head PTRDIFF_MAX - 3");
  base_desc(&d), d.q.out_stride_batch = PTRDIFF_MAX / 4 + 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.out_stride_batch x 4 bytes beyond PTRDIFF_MAX");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN;
  d.positions.cos = F(COS), d.positions.sin = F(SIN), d.positions.row_stride = SIZE_MAX / 4;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: cos/sin row_stride SIZE_MAX / 4, 7 rows overflow");
  d.positions.row_stride = (size_t)1 << 61;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: cos/sin row_stride 2^61, 7 rows beyond PTRDIFF_MAX");
  /* batch * seq_len overflows size_t; table-free so that every position is in range. */
  base_desc(&d), d.batch = (size_t)1 << 32, d.seq_len = (size_t)1 << 32;
  tensor_bshd(&d.q, F(Q_IN), F(Q_OUT), HQ, (size_t)1 << 32);
  d.k.n_heads = 0;
  expect_apply(rope_free, &d, ROTARY_ERR_OVERFLOW, "apply: batch x seq_len = 2^64");
  assert_int_equal(tu_failures, 0);
}

/* Two rows 2^61 floats apart: the element offset fits ptrdiff_t, the 2^63 bytes do not. */
static void test_apply_overflow_cos_sin_bytes(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.batch = 1, d.seq_len = 2, d.positions.mode = ROTARY_POSITIONS_COS_SIN;
  d.positions.cos = F(COS), d.positions.sin = F(SIN), d.positions.row_stride = (size_t)1 << 61;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: cos/sin row_stride 2^61, 2 rows: 2^63 bytes apart");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_stride(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.q.out_stride_head = D / 2;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_head head_dim/2 with 4 heads");
  base_desc(&d), d.q.out_stride_seq = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_seq 0 with seq_len 4");
  base_desc(&d), d.q.out_stride_batch = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_batch 0 with batch 2");
  base_desc(&d), d.q.out_stride_seq = HQ * D - 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_seq one element short");
  base_desc(&d), d.q.out_stride_seq = D;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_seq == stride_head (rows coincide)");
  base_desc(&d), d.k.out_stride_head = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: k.out_stride_head 0 with 2 heads");
  base_desc(&d), d.q.out = F(Q_OUT + NQ), d.q.out_stride_head = -(D / 2);
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: q.out_stride_head -head_dim/2");
  base_desc(&d), d.q.out = F(Q_IN), d.q.stride_seq = d.q.out_stride_seq = 0;
  expect_apply(rope_tab, &d, ROTARY_ERR_STRIDE, "apply: in place with stride_seq 0");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_overlap_tensors(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.q.out = F(Q_IN + 1);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out = q.in + 1 element");
  base_desc(&d), d.q.in = F(Q_OUT + 1);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out = q.in - 1 element");
  base_desc(&d), d.q.out = F(Q_IN + NQ - 1);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out starts on the last element of q.in");
  base_desc(&d), d.k.out = F(Q_OUT);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: k.out == q.out");
  base_desc(&d), d.k.out = F(Q_OUT + 8);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: k.out = q.out + 8 elements");
  base_desc(&d), d.q.out = F(K_IN);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out == k.in");
  base_desc(&d), d.k.out = F(Q_IN);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: k.out == q.in");
  base_desc(&d), d.q.out = F(Q_IN), d.k.out = F(Q_IN + 16);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q in place, k.out inside q");
  base_desc(&d), d.k.in = F(Q_OUT + NQ - 4);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: k.in starts in the tail of q.out");
  assert_int_equal(tu_failures, 0);
}

static void test_apply_overlap_positions(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = F(Q_OUT);
  for (int i = 0; i < B * S; i++) I64(Q_OUT)[i] = i;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out overlaps the int64 ids");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I32, d.positions.ids = F(Q_OUT + 8);
  for (int i = 0; i < B * S; i++) I32(Q_OUT + 8)[i] = i;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out overlaps the int32 ids");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_OFFSETS, d.positions.offsets = I64(K_OUT + 4);
  I64(K_OUT + 4)[0] = 0, I64(K_OUT + 4)[1] = 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: k.out overlaps offsets[]");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN;
  d.positions.cos = F(Q_OUT + 2), d.positions.sin = F(SIN);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: q.out overlaps cos");
  d.positions.cos = F(COS), d.positions.sin = F(K_OUT + NK - 3);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERLAP, "apply: the tail of k.out overlaps sin");
  assert_int_equal(tu_failures, 0);
}

/* ---- valid edge cases that must succeed ---- */

static float ref_q[NQ], ref_k[NK];

/* The base call's results, out of place, ctx NULL. */
static void compute_reference(void) {
  rotary_apply_desc d;
  base_desc(&d);
  assert_int_equal(rotary_apply(NULL, rope_tab, &d), ROTARY_OK);
  memcpy(ref_q, F(Q_OUT), sizeof(ref_q));
  memcpy(ref_k, F(K_OUT), sizeof(ref_k));
  tu_check(memcmp(ref_q, F(Q_IN), sizeof(ref_q)) != 0, "reference: q.out equals q.in");
}

static void test_valid_k_absent_and_ctx(void **state) {
  (void)state;
  compute_reference();
  rotary_apply_desc d;
  base_desc(&d), d.k.n_heads = 0, d.k.in = NULL, d.k.out = NULL;
  memcpy(snapshot, arena, ARENA_BYTES);
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "valid: k.n_heads 0, k pointers NULL");
  tu_check(memcmp(F(Q_OUT), ref_q, sizeof(ref_q)) == 0, "valid: q without k differs from q with k");
  tu_check(memcmp(F(K_OUT), snapshot + K_OUT * 4, sizeof(ref_k)) == 0, "valid: k.n_heads 0 wrote k.out");
  base_desc(&d);
  check_status(rotary_apply(ctx3, rope_tab, &d), ROTARY_OK, "valid: ctx 3 threads");
  tu_check(memcmp(F(Q_OUT), ref_q, sizeof(ref_q)) == 0, "valid: q with ctx differs from ctx NULL");
  tu_check(memcmp(F(K_OUT), ref_k, sizeof(ref_k)) == 0, "valid: k with ctx differs from ctx NULL");
  base_desc(&d);
  check_status(rotary_apply(NULL, rope_free, &d), ROTARY_OK, "valid: table-free");
  tu_check(memcmp(F(Q_OUT), ref_q, sizeof(ref_q)) == 0, "valid: table-free q differs from the table");
  assert_int_equal(tu_failures, 0);
}

static void test_valid_in_place(void **state) {
  (void)state;
  compute_reference();
  rotary_apply_desc d;
  base_desc(&d), d.q.out = F(Q_IN), d.k.out = F(K_IN);
  check_status(rotary_apply(ctx3, rope_tab, &d), ROTARY_OK, "valid: in place, in == out");
  tu_check(memcmp(F(Q_IN), ref_q, sizeof(ref_q)) == 0, "valid: q in place differs from out of place");
  tu_check(memcmp(F(K_IN), ref_k, sizeof(ref_k)) == 0, "valid: k in place differs from out of place");
  /* q and k read the same input: inputs may alias each other. */
  base_desc(&d), d.k.in = F(Q_IN);
  tensor_bshd(&d.k, F(Q_IN), F(K_OUT), HK, S);
  d.k.stride_seq = HQ * D, d.k.stride_batch = S * HQ * D;
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "valid: k.in == q.in");
  tu_check(memcmp(F(Q_OUT), ref_q, sizeof(ref_q)) == 0, "valid: k.in == q.in changed q");
  assert_int_equal(tu_failures, 0);
}

/* Packed QKV rows [q HQ | k HK | v HK] per token, q and k rotated in place through interleaved views. */
static void test_valid_packed_qkv(void **state) {
  (void)state;
  compute_reference();
  rotary_apply_desc d;
  base_desc(&d);
  const size_t row = (HQ + 2 * HK) * D;
  for (size_t t = 0; t < B * S; t++) {
    memcpy(F(PACK + t * row), F(Q_IN + t * HQ * D), HQ * D * 4);
    memcpy(F(PACK + t * row + HQ * D), F(K_IN + t * HK * D), HK * D * 4);
  }
  memcpy(snapshot, arena, ARENA_BYTES);
  tensor_bshd(&d.q, F(PACK), F(PACK), HQ, S);
  tensor_bshd(&d.k, F(PACK + HQ * D), F(PACK + HQ * D), HK, S);
  d.q.stride_seq = d.q.out_stride_seq = d.k.stride_seq = d.k.out_stride_seq = (ptrdiff_t)row;
  d.q.stride_batch = d.q.out_stride_batch = d.k.stride_batch = d.k.out_stride_batch = (ptrdiff_t)(S * row);
  check_status(rotary_apply(ctx3, rope_tab, &d), ROTARY_OK, "valid: packed QKV in place");
  for (size_t t = 0; t < B * S; t++) {
    tu_check(memcmp(F(PACK + t * row), ref_q + t * HQ * D, HQ * D * 4) == 0, "valid: packed q, token %zu", t);
    tu_check(memcmp(F(PACK + t * row + HQ * D), ref_k + t * HK * D, HK * D * 4) == 0, "valid: packed k, token %zu", t);
    size_t v = (PACK + t * row + (HQ + HK) * D) * 4;
    tu_check(memcmp(arena + v, snapshot + v, HK * D * 4) == 0, "valid: packed v changed, token %zu", t);
  }
  assert_int_equal(tu_failures, 0);
}

/* Zero strides over a count of 1 and a reversed (negative) sequence stride write no element twice. */
static void test_valid_odd_strides(void **state) {
  (void)state;
  compute_reference();
  rotary_apply_desc d;
  base_desc(&d), d.batch = 1, d.seq_len = 1, d.k.n_heads = 0, d.q.n_heads = 1;
  d.q.out_stride_batch = d.q.out_stride_seq = d.q.out_stride_head = 0;
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "valid: zero out strides over counts of 1");
  tu_check(memcmp(F(Q_OUT), ref_q, D * 4) == 0, "valid: zero-stride q row differs");
  base_desc(&d), d.k.n_heads = 0;
  d.q.out = F(Q_OUT + (S - 1) * HQ * D), d.q.out_stride_seq = -(ptrdiff_t)(HQ * D);
  d.q.out_stride_batch = (ptrdiff_t)(S * HQ * D);
  check_status(rotary_apply(ctx3, rope_tab, &d), ROTARY_OK, "valid: negative out_stride_seq");
  for (size_t b = 0; b < B; b++)
    for (size_t s = 0; s < S; s++)
      tu_check(memcmp(F(Q_OUT + (b * S + (S - 1 - s)) * HQ * D), ref_q + (b * S + s) * HQ * D, HQ * D * 4) == 0,
            "valid: reversed token b %zu s %zu", b, s);
  assert_int_equal(tu_failures, 0);
}

static void test_valid_position_limits(void **state) {
  (void)state;
  rotary_apply_desc d;
  base_desc(&d), d.positions.offset = ROTARY_MAX_POSITION - S + 1;
  check_status(rotary_apply(NULL, rope_free, &d), ROTARY_OK, "valid: table-free last position MAX_POSITION");
  for (size_t i = 0; i < NQ; i++) tu_check(isfinite(F(Q_OUT)[i]), "valid: MAX_POSITION output not finite");
  base_desc(&d), d.positions.offset = MAXPOS - S;
  check_status(rotary_apply(ctx3, rope_tab, &d), ROTARY_OK, "valid: last position max_positions - 1");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_IDS_I32, d.positions.ids = I32(IDS);
  set_ids32(), I32(IDS)[0] = MAXPOS - 1;
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "valid: int32 ids incl. max_positions - 1");
  base_desc(&d), d.positions.mode = ROTARY_POSITIONS_COS_SIN;
  d.positions.cos = F(COS), d.positions.sin = F(SIN), d.positions.row_stride = HALF + 3;
  check_status(rotary_apply(NULL, rope_tab, &d), ROTARY_OK, "valid: caller cos/sin, row_stride half + 3");
  assert_int_equal(tu_failures, 0);
}

static void test_misc_null_getters(void **state) {
  (void)state;
  tu_check(rotary_rope_head_dim(NULL) == 0 && rotary_rope_rotary_dim(NULL) == 0, "getters: NULL rope not 0");
  tu_check(rotary_rope_max_positions(NULL) == 0 && rotary_rope_memory_bytes(NULL) == 0, "getters: NULL rope not 0");
  tu_check(rotary_context_threads(NULL) == 0, "context_threads(NULL) not 0");
  rotary_rope_destroy(NULL);
  rotary_context_destroy(NULL);
  tu_check(strcmp(rotary_status_string((rotary_status)99), "unknown status") == 0, "status_string(99)");
  tu_check(strcmp(rotary_status_string((rotary_status)-1), "unknown status") == 0, "status_string(-1)");
  for (int s = 0; s <= ROTARY_ERR_INVALID_ARGUMENT; s++) {
    const char *text = rotary_status_string((rotary_status)s);
    tu_check(text && *text && strcmp(text, "unknown status") != 0, "status_string(%d) has no text", s);
  }
  tu_check(strcmp(rotary_kernel_name((rotary_dtype)3, ROTARY_PAIRING_HALF), "unknown") == 0, "kernel_name dtype 3");
  tu_check(strcmp(rotary_kernel_name(ROTARY_F32, (rotary_pairing)2), "unknown") == 0, "kernel_name pairing 2");
  assert_int_equal(tu_failures, 0);
}

/* Extents that land exactly on INT64_MIN or INT64_MAX: the checks themselves must not overflow (UBSan flagged the
 * negation of INT64_MIN bytes and the end index INT64_MAX + 1 before they were done in checked arithmetic). */
static void test_apply_extent_edges(void **state) {
  (void)state;
  rotary_apply_desc d;
  /* f16: -2^62 elements are exactly INT64_MIN bytes before the base */
  base_desc(&d), d.k.n_heads = 0, d.q.dtype = ROTARY_F16, d.q.stride_batch = -((ptrdiff_t)1 << 62);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: f16 q.stride_batch -2^62 (INT64_MIN bytes)");
  base_desc(&d), d.k.n_heads = 0, d.q.dtype = ROTARY_F16, d.q.out_stride_batch = -((ptrdiff_t)1 << 62);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: f16 q.out_stride_batch -2^62 (INT64_MIN bytes)");
  /* f32: -2^61 elements are INT64_MIN bytes too */
  base_desc(&d), d.k.out_stride_batch = -((ptrdiff_t)1 << 61);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: f32 k.out_stride_batch -2^61 (INT64_MIN bytes)");
  /* one head, two tokens: the last element index is exactly INT64_MAX */
  base_desc(&d), d.k.n_heads = 0, d.batch = 1, d.seq_len = 2, d.q.n_heads = 1;
  d.q.stride_seq = PTRDIFF_MAX - (D - 1);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.stride_seq INT64_MAX - 7: last index INT64_MAX");
  d.q.stride_seq = D, d.q.out_stride_seq = PTRDIFF_MAX - (D - 1);
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.out_stride_seq INT64_MAX - (head_dim - 1)");
  d.q.out_stride_seq = PTRDIFF_MAX - 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: q.out_stride_seq INT64_MAX - 1");
  d.q.dtype = ROTARY_F16, d.q.out_stride_seq = PTRDIFF_MIN;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: f16 q.out_stride_seq INT64_MIN");
  d.q.out_stride_seq = -((ptrdiff_t)1 << 62) - 1;
  expect_apply(rope_tab, &d, ROTARY_ERR_OVERFLOW, "apply: f16 q.out_stride_seq -2^62 - 1");
  assert_int_equal(tu_failures, 0);
}

static void test_case_count(void **state) {
  (void)state;
  printf("bad-input cases: %d\n", n_cases);
  assert_true(n_cases >= 40);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_create_shape_errors, test_setup),
      cmocka_unit_test_setup(test_create_frequency_errors, test_setup),
      cmocka_unit_test_setup(test_create_size_errors, test_setup),
      cmocka_unit_test_setup(test_inv_freq_errors, test_setup),
      cmocka_unit_test_setup(test_cos_sin_errors, test_setup),
      cmocka_unit_test_setup(test_cos_sin_valid_edges, test_setup),
      cmocka_unit_test_setup(test_context_errors, test_setup),
      cmocka_unit_test_setup(test_tensor_init_errors, test_setup),
      cmocka_unit_test_setup(test_apply_base_is_valid, test_setup),
      cmocka_unit_test_setup(test_apply_null, test_setup),
      cmocka_unit_test_setup(test_apply_invalid, test_setup),
      cmocka_unit_test_setup(test_apply_offset_positions, test_setup),
      cmocka_unit_test_setup(test_apply_id_positions, test_setup),
      cmocka_unit_test_setup(test_apply_overflow, test_setup),
      cmocka_unit_test_setup(test_apply_stride, test_setup),
      cmocka_unit_test_setup(test_apply_overlap_tensors, test_setup),
      cmocka_unit_test_setup(test_apply_overlap_positions, test_setup),
      cmocka_unit_test_setup(test_valid_k_absent_and_ctx, test_setup),
      cmocka_unit_test_setup(test_valid_in_place, test_setup),
      cmocka_unit_test_setup(test_valid_packed_qkv, test_setup),
      cmocka_unit_test_setup(test_valid_odd_strides, test_setup),
      cmocka_unit_test_setup(test_valid_position_limits, test_setup),
      cmocka_unit_test_setup(test_misc_null_getters, test_setup),
      cmocka_unit_test_setup(test_apply_overflow_cos_sin_bytes, test_setup),
      cmocka_unit_test_setup(test_apply_extent_edges, test_setup),
      cmocka_unit_test(test_case_count),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
