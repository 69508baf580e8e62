/* test_kv_errors.c: every bad input of rotary_kv_write and rotary_kv_rerotate returns its status and writes nothing. */
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

#include "rotary.h"
#include "test_util.h"

/* The valid call every case starts from: q [B, S, HQ, D] rotated out of place, k and v [B, S, HK, D], f32; caches
 * of NB blocks of BS rows, NHD, f32. Each case changes one thing. */
enum { D = 8, HQ = 4, HK = 2, S = 2, B = 2, NB = 4, BS = 4, MAXPOS = 256 };
enum { NQ = B * S * HQ * D, NKV = B * S * HK * D, NC = NB * BS * HK * D };
/* The long call: LB x LS tokens, one bad index at the very end. */
enum { LB = 2, LS = 128, LNB = 16, LBS = 16, LNKV = LB * LS * HK * D, LNC = LNB * LBS * HK * D };

/* Float offsets of every tensor and cache in the arena. */
enum {
  Q_IN = 0, Q_OUT = Q_IN + NQ, K_IN = Q_OUT + NQ, V_IN = K_IN + NKV, KC = V_IN + NKV, VC = KC + NC,
  LK_IN = VC + NC, LV_IN = LK_IN + LNKV, LKC = LV_IN + LNKV, LVC = LKC + LNC, ARENA_FLOATS = LVC + LNC
};
#define ARENA_BYTES ((size_t)ARENA_FLOATS * 4)

static float *arena, *snapshot;
static rotary_rope *rope;
static rotary_context *ctx3;
static int n_cases;
/* Index arrays (outside the arena: they must hold valid values), reset by every base_* call. */
static int64_t lengths[B], slot_map[B * S], ids[B * S], long_map[LB * LS];
static int32_t indptr[B + 1], indices[8], last_len[B], long_indptr[LB + 1], long_indices[LNB], long_last[LB];


static void fill_arena(void) {
  for (size_t i = 0; i < ARENA_FLOATS; i++) arena[i] = (float)((int)((i * 2654435761u) >> 7) % 201 - 100) / 37.0f;
}

static void tensor(rotary_tensor *t, float *in, float *out, size_t heads, size_t seq) {
  memset(t, 0, sizeof *t);
  t->in = in, t->out = out, t->dtype = ROTARY_F32, t->n_heads = heads;
  t->stride_head = t->out_stride_head = D;
  t->stride_seq = t->out_stride_seq = (ptrdiff_t)(heads * D);
  t->stride_batch = t->out_stride_batch = (ptrdiff_t)(seq * heads * D);
}

/* The valid short call with cache index `index`:
 *   SEQUENCES lengths {1, 2}: rows 1..2 of block 0, rows 2..3 of block 1;
 *   SLOTS {0, 5, 9, 14};
 *   PAGES indptr {0, 1, 3}, pages {2, 0, 3}, last {3, 1}: sequence 0 ends at row 2 of page 2 (rows 1, 2),
 *         sequence 1 holds 5 rows: row 3 of page 0 and row 0 of page 3. */
static void base(rotary_kv_write_desc *d, rotary_cache_index index) {
  fill_arena();
  rotary_kv_write_desc_init(d);
  d->batch = B, d->seq_len = S;
  d->positions.mode = ROTARY_POSITIONS_OFFSET, d->positions.offset = 3;
  tensor(&d->q, arena + Q_IN, arena + Q_OUT, HQ, S);
  tensor(&d->k, arena + K_IN, NULL, HK, S);
  tensor(&d->v, arena + V_IN, NULL, HK, S);
  lengths[0] = 1, lengths[1] = 2;
  const int64_t sm[B * S] = {0, 5, 9, 14};
  memcpy(slot_map, sm, sizeof sm);
  indptr[0] = 0, indptr[1] = 1, indptr[2] = 3;
  indices[0] = 2, indices[1] = 0, indices[2] = 3;
  last_len[0] = 3, last_len[1] = 1;
  for (int i = 0; i < B * S; i++) ids[i] = i;
  rotary_kv_cache *c = &d->cache;
  c->index = index, c->layout = ROTARY_CACHE_NHD, c->dtype = ROTARY_F32;
  c->k = arena + KC, c->v = arena + VC, c->num_blocks = NB, c->block_size = BS, c->block_stride = 0;
  c->lengths = lengths, c->slot_mapping = slot_map;
  c->page_indptr = indptr, c->page_indices = indices, c->last_page_len = last_len;
  c->k_scale = c->v_scale = 1.0f;
}

/* The valid long call: LB sequences of LS tokens into LNB blocks of LBS rows, every slot written. */
static void base_long(rotary_kv_write_desc *d, rotary_cache_index index) {
  base(d, index);
  d->batch = LB, d->seq_len = LS, d->q.n_heads = 0, d->q.in = NULL, d->q.out = NULL;
  tensor(&d->k, arena + LK_IN, NULL, HK, LS);
  tensor(&d->v, arena + LV_IN, NULL, HK, LS);
  d->positions.offset = 0;
  for (int i = 0; i < LB * LS; i++) long_map[i] = (int64_t)((i * 37) % (LNB * LBS)); /* 37 is odd: a permutation */
  long_indptr[0] = 0, long_indptr[1] = LS / LBS, long_indptr[2] = 2 * LS / LBS;
  for (int i = 0; i < LNB; i++) long_indices[i] = (int32_t)((i * 5 + 3) % LNB);
  long_last[0] = long_last[1] = LBS;
  rotary_kv_cache *c = &d->cache;
  c->k = arena + LKC, c->v = arena + LVC, c->num_blocks = LNB, c->block_size = LBS;
  if (index == ROTARY_CACHE_SEQUENCES) c->num_blocks = LB, c->block_size = LS, lengths[0] = lengths[1] = 0;
  c->slot_mapping = long_map, c->page_indptr = long_indptr, c->page_indices = long_indices;
  c->last_page_len = long_last;
}

static void check_status(rotary_status got, rotary_status want, const char *what) {
  tu_check(got == want, "%s: got %d (%s), want %d (%s)", what, (int)got, rotary_status_string(got), (int)want,
        rotary_status_string(want));
}

/* One bad input: its exact status, and not one byte of the arena (q, k, v, both caches) changed, with and
 * without a context. */
static void expect_write(const rotary_rope *r, const rotary_kv_write_desc *d, rotary_status want, const char *what) {
  rotary_context *ctxs[2] = {NULL, ctx3};
  for (int i = 0; i < 2; i++) {
    memcpy(snapshot, arena, ARENA_BYTES);
    char label[200];
    snprintf(label, sizeof label, "%s (ctx %s)", what, ctxs[i] ? "3 threads" : "NULL");
    check_status(rotary_kv_write(ctxs[i], r, d), want, label);
    if (want != ROTARY_OK) tu_check(memcmp(snapshot, arena, ARENA_BYTES) == 0, "%s: the failed call wrote bytes", label);
    memcpy(arena, snapshot, ARENA_BYTES);
  }
  if (want != ROTARY_OK) n_cases++;
}

static void expect_rerotate(const rotary_rope *r, const rotary_kv_rerotate_desc *d, rotary_status want,
                            const char *what) {
  rotary_context *ctxs[2] = {NULL, ctx3};
  for (int i = 0; i < 2; i++) {
    memcpy(snapshot, arena, ARENA_BYTES);
    char label[200];
    snprintf(label, sizeof label, "rerotate: %s (ctx %s)", what, ctxs[i] ? "3 threads" : "NULL");
    check_status(rotary_kv_rerotate(ctxs[i], r, d), want, label);
    if (want != ROTARY_OK) tu_check(memcmp(snapshot, arena, ARENA_BYTES) == 0, "%s: the failed call wrote bytes", label);
    memcpy(arena, snapshot, ARENA_BYTES);
  }
  if (want != ROTARY_OK) n_cases++;
}

static void finish_test(void) {
  const int failures = tu_failures;
  printf("  %d bad inputs so far\n", n_cases);
  tu_failures = 0;
  assert_int_equal(failures, 0);
}

/* ---- valid calls first: the bad cases below differ from these in one thing ---- */

/* Tensors and caches at odd byte addresses (allowed) give the bytes of the aligned call. */
static void unaligned_same_bytes(void) {
  static const size_t from[6] = {Q_IN, Q_OUT, K_IN, V_IN, KC, VC}, n[6] = {NQ, NQ, NKV, NKV, NC, NC};
  static const size_t at[6] = {1, 601, 1203, 1501, 1801, 2901}; /* odd byte offsets in the long-call area */
  unsigned char *scratch = (unsigned char *)(void *)(arena + LK_IN);
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_PAGES);
  for (int i = 0; i < 6; i++) memcpy(scratch + at[i], arena + from[i], n[i] * 4);
  assert_int_equal(rotary_kv_write(ctx3, rope, &d), ROTARY_OK);
  d.q.in = scratch + at[0], d.q.out = scratch + at[1], d.k.in = scratch + at[2], d.v.in = scratch + at[3];
  d.cache.k = scratch + at[4], d.cache.v = scratch + at[5];
  check_status(rotary_kv_write(NULL, rope, &d), ROTARY_OK, "every tensor and cache at an odd byte address");
  for (int i = 0; i < 6; i++)
    tu_check(memcmp(scratch + at[i], arena + from[i], n[i] * 4) == 0, "unaligned call: buffer %d differs", i);
}

static void test_valid_edges(void **state) {
  (void)state;
  rotary_kv_write_desc d;
  for (int k = 0; k < 3; k++) {
    base(&d, (rotary_cache_index)k);
    expect_write(rope, &d, ROTARY_OK, "the base call");
    base_long(&d, (rotary_cache_index)k);
    expect_write(rope, &d, ROTARY_OK, "the long base call");
  }
  base(&d, ROTARY_CACHE_SLOTS);
  for (int i = 0; i < B * S; i++) slot_map[i] = i % 2 ? -1 : INT64_MIN;
  memcpy(snapshot, arena, ARENA_BYTES);
  assert_int_equal(rotary_kv_write(ctx3, rope, &d), ROTARY_OK);
  tu_check(memcmp(snapshot + KC, arena + KC, 2 * NC * 4) == 0, "every slot negative: the caches changed");
  tu_check(memcmp(snapshot + Q_OUT, arena + Q_OUT, NQ * 4) != 0, "every slot negative: q was not rotated");
  base(&d, ROTARY_CACHE_SEQUENCES);
  d.q.n_heads = 0, d.q.in = NULL, d.q.out = NULL;
  expect_write(rope, &d, ROTARY_OK, "q left out (n_heads 0, NULL pointers)");
  base(&d, ROTARY_CACHE_SEQUENCES);
  lengths[0] = BS - S, lengths[1] = 0;
  expect_write(rope, &d, ROTARY_OK, "a sequence filled to exactly block_size");
  base(&d, ROTARY_CACHE_PAGES);
  last_len[1] = BS, indptr[2] = 2;
  expect_write(rope, &d, ROTARY_OK, "last_page_len == block_size");
  base(&d, ROTARY_CACHE_PAGES); /* sequence 0: rows 0, 1 of page 2; sequence 1 (pages {1, 2}, 8 rows): rows 2, 3 */
  indptr[1] = 1, indptr[2] = 3, indices[0] = 2, indices[1] = 1, indices[2] = 2, last_len[0] = 2, last_len[1] = 4;
  expect_write(rope, &d, ROTARY_OK, "two sequences share a page, on different rows");
  base(&d, ROTARY_CACHE_SLOTS);
  d.cache.dtype = ROTARY_BF16, d.cache.k_scale = 0.0f, d.cache.v_scale = NAN;
  expect_write(rope, &d, ROTARY_OK, "scales 0 and NaN ignored by a bf16 cache");
  base(&d, ROTARY_CACHE_SLOTS);
  d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = FLT_TRUE_MIN, d.cache.v_scale = FLT_MAX;
  expect_write(rope, &d, ROTARY_OK, "fp8 scales FLT_TRUE_MIN and FLT_MAX (finite, positive)");
  base(&d, ROTARY_CACHE_SEQUENCES);
  d.cache.num_blocks = NB, d.cache.block_stride = (BS - 1) * HK * D + 3, d.cache.block_size = BS - 1;
  lengths[0] = lengths[1] = 0;
  expect_write(rope, &d, ROTARY_OK, "padded block_stride, more blocks than sequences");
  base(&d, ROTARY_CACHE_SLOTS);
  d.cache.block_size = 1, d.cache.num_blocks = 16;
  expect_write(rope, &d, ROTARY_OK, "block_size 1");
  unaligned_same_bytes();
  finish_test();
}

/* ---- CACHE_INDEX ---- */

static void test_cache_index(void **state) {
  (void)state;
  const rotary_status CI = ROTARY_ERR_CACHE_INDEX;
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_SLOTS), slot_map[3] = NB * BS;
  expect_write(rope, &d, CI, "SLOTS: slot == num_blocks * block_size");
  base(&d, ROTARY_CACHE_SLOTS), slot_map[1] = INT64_MAX;
  expect_write(rope, &d, CI, "SLOTS: slot INT64_MAX");
  base(&d, ROTARY_CACHE_SLOTS), slot_map[2] = 5;
  expect_write(rope, &d, CI, "SLOTS: two tokens of two sequences write slot 5");
  base(&d, ROTARY_CACHE_SLOTS), slot_map[0] = 0, slot_map[1] = 0;
  expect_write(rope, &d, CI, "SLOTS: two tokens of one sequence write slot 0");
  base(&d, ROTARY_CACHE_SEQUENCES), lengths[1] = BS - S + 1;
  expect_write(rope, &d, CI, "SEQUENCES: lengths[b] + seq_len > block_size");
  base(&d, ROTARY_CACHE_SEQUENCES), lengths[0] = -1;
  expect_write(rope, &d, CI, "SEQUENCES: negative length");
  base(&d, ROTARY_CACHE_SEQUENCES), lengths[1] = INT64_MAX;
  expect_write(rope, &d, CI, "SEQUENCES: length INT64_MAX (the sum would overflow)");
  base(&d, ROTARY_CACHE_SEQUENCES), d.cache.num_blocks = B - 1;
  expect_write(rope, &d, CI, "SEQUENCES: fewer blocks than sequences");
  base(&d, ROTARY_CACHE_PAGES), indices[2] = NB;
  expect_write(rope, &d, CI, "PAGES: a written page == num_blocks");
  base(&d, ROTARY_CACHE_PAGES), indices[0] = -1;
  expect_write(rope, &d, CI, "PAGES: a negative page");
  base(&d, ROTARY_CACHE_PAGES);
  indptr[2] = 4, indices[1] = 9, indices[2] = 0, indices[3] = 3; /* sequence 1: pages {9, 0, 3}, writes 0 and 3 */
  expect_write(rope, &d, CI, "PAGES: a listed page outside the cache that no token writes");
  base(&d, ROTARY_CACHE_PAGES), indptr[2] = 2, indices[1] = 2, last_len[1] = 3;
  expect_write(rope, &d, CI, "PAGES: two sequences share page 2 and write the same rows");
  base(&d, ROTARY_CACHE_PAGES), indptr[0] = 1, indptr[1] = 2, indptr[2] = 3, indices[2] = 3, last_len[1] = 3;
  expect_write(rope, &d, CI, "PAGES: indptr[0] != 0");
  base(&d, ROTARY_CACHE_PAGES), indptr[1] = 3, indptr[2] = 1;
  expect_write(rope, &d, CI, "PAGES: decreasing indptr");
  base(&d, ROTARY_CACHE_PAGES), indptr[1] = 0;
  expect_write(rope, &d, CI, "PAGES: a sequence with no page");
  base(&d, ROTARY_CACHE_PAGES), last_len[0] = 0;
  expect_write(rope, &d, CI, "PAGES: last_page_len 0");
  base(&d, ROTARY_CACHE_PAGES), last_len[1] = BS + 1;
  expect_write(rope, &d, CI, "PAGES: last_page_len > block_size");
  base(&d, ROTARY_CACHE_PAGES), last_len[0] = 1;
  expect_write(rope, &d, CI, "PAGES: a sequence holding fewer rows than seq_len");
  base(&d, ROTARY_CACHE_PAGES), last_len[1] = -2;
  expect_write(rope, &d, CI, "PAGES: negative last_page_len");
  base_long(&d, ROTARY_CACHE_SLOTS), long_map[LB * LS - 1] = LNB * LBS;
  expect_write(rope, &d, CI, "SLOTS: the last of 256 slots outside the cache");
  base_long(&d, ROTARY_CACHE_SLOTS), long_map[LB * LS - 1] = long_map[0];
  expect_write(rope, &d, CI, "SLOTS: the last of 256 slots repeats the first");
  base_long(&d, ROTARY_CACHE_PAGES), long_indices[LNB - 1] = LNB;
  expect_write(rope, &d, CI, "PAGES: the last page of the last sequence outside the cache");
  base_long(&d, ROTARY_CACHE_SEQUENCES), lengths[1] = 1;
  expect_write(rope, &d, CI, "SEQUENCES: the last sequence overflows its block by one row");
  finish_test();
}

/* ---- OVERLAP, SCALE, DTYPE ---- */

static void test_overlap(void **state) {
  (void)state;
  const rotary_status OV = ROTARY_ERR_OVERLAP;
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_SLOTS), d.cache.k = arena + K_IN;
  expect_write(rope, &d, OV, "the key cache is k's input");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.v = arena + Q_IN + 8;
  expect_write(rope, &d, OV, "the value cache overlaps q's input");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.k = arena + Q_OUT + NQ - 4;
  expect_write(rope, &d, OV, "the key cache starts inside q's output");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.v = arena + V_IN + NKV / 2;
  expect_write(rope, &d, OV, "the value cache overlaps v's input");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.v = arena + KC + 8;
  expect_write(rope, &d, OV, "the value cache overlaps the key cache");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.v = arena + KC;
  expect_write(rope, &d, OV, "the value cache is the key cache");
  base(&d, ROTARY_CACHE_SLOTS);
  d.cache.block_stride = 2 * BS * HK * D / 2, d.cache.v = arena + KC + BS * HK * D / 2, d.cache.num_blocks = NB / 2;
  slot_map[0] = 0, slot_map[1] = 1, slot_map[2] = 4, slot_map[3] = 5; /* inside the 2 blocks */
  expect_write(rope, &d, OV, "a combined cache whose v half starts a quarter block in (k and v rows collide)");
  base(&d, ROTARY_CACHE_SLOTS), d.q.out = arena + K_IN;
  expect_write(rope, &d, OV, "q's output is k's input");
  base(&d, ROTARY_CACHE_SLOTS), d.q.out = arena + VC + 16;
  expect_write(rope, &d, OV, "q's output overlaps the value cache");
  base(&d, ROTARY_CACHE_SLOTS);
  {
    int64_t *inside = (int64_t *)(void *)(arena + VC + 8); /* slot_mapping stored inside the value cache */
    memcpy(inside, slot_map, sizeof slot_map);
    d.cache.slot_mapping = inside;
    expect_write(rope, &d, OV, "slot_mapping lies inside the value cache");
  }
  base(&d, ROTARY_CACHE_PAGES);
  {
    int64_t *inside = (int64_t *)(void *)(arena + KC + 4); /* position ids stored inside the key cache */
    for (int i = 0; i < B * S; i++) inside[i] = i;
    d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = inside;
    expect_write(rope, &d, OV, "position ids lie inside the key cache");
  }
  base(&d, ROTARY_CACHE_SEQUENCES), d.cache.k = arena + Q_IN;
  d.q.out = arena + Q_IN, d.q.out_stride_batch = d.q.stride_batch;
  expect_write(rope, &d, OV, "q in place, and the key cache on q's buffer");
  finish_test();
}

static void test_scale_dtype(void **state) {
  (void)state;
  static const float bad[5] = {0.0f, -0.0f, -1.0f, NAN, INFINITY};
  static const char *names[5] = {"0", "-0", "-1", "NaN", "+Inf"};
  rotary_kv_write_desc d;
  char what[120];
  for (int kv = 0; kv < 2; kv++)
    for (int i = 0; i < 5; i++) {
      base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = ROTARY_FP8_E4M3;
      if (kv) d.cache.v_scale = bad[i];
      else d.cache.k_scale = bad[i];
      snprintf(what, sizeof what, "fp8 cache, %s scale %s", kv ? "v" : "k", names[i]);
      expect_write(rope, &d, ROTARY_ERR_SCALE, what);
    }
  base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = -INFINITY;
  expect_write(rope, &d, ROTARY_ERR_SCALE, "fp8 cache, k scale -Inf");
  base(&d, ROTARY_CACHE_SLOTS), d.q.dtype = ROTARY_FP8_E4M3;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "q's dtype fp8");
  base(&d, ROTARY_CACHE_SLOTS), d.k.dtype = ROTARY_FP8_E4M3;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "k's dtype fp8");
  base(&d, ROTARY_CACHE_SLOTS), d.v.dtype = ROTARY_FP8_E4M3;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "v's dtype fp8");
  base(&d, ROTARY_CACHE_SLOTS), d.v.dtype = (rotary_dtype)9;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "v's dtype unknown (9)");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = (rotary_dtype)7;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "cache dtype unknown (7)");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = (rotary_dtype)-1;
  expect_write(rope, &d, ROTARY_ERR_DTYPE, "cache dtype unknown (-1)");
  finish_test();
}

/* ---- INVALID_ARGUMENT, NULL_POINTER, OVERFLOW, POSITION, STRIDE ---- */

static void test_arguments(void **state) {
  (void)state;
  const rotary_status IA = ROTARY_ERR_INVALID_ARGUMENT, NP = ROTARY_ERR_NULL_POINTER;
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_SLOTS), d.cache.index = (rotary_cache_index)3;
  expect_write(rope, &d, IA, "unknown cache index (3)");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.layout = (rotary_cache_layout)2;
  expect_write(rope, &d, IA, "unknown cache layout (2)");
  base(&d, ROTARY_CACHE_SLOTS), d.k.n_heads = HK + 1;
  expect_write(rope, &d, IA, "k.n_heads != v.n_heads");
  base(&d, ROTARY_CACHE_SLOTS), d.k.n_heads = 0, d.v.n_heads = 0;
  expect_write(rope, &d, IA, "k.n_heads 0");
  base(&d, ROTARY_CACHE_SLOTS), d.struct_size = sizeof d - 8;
  expect_write(rope, &d, IA, "struct_size too small");
  base(&d, ROTARY_CACHE_SLOTS), d.struct_size = 0;
  expect_write(rope, &d, IA, "struct_size 0");
  base(&d, ROTARY_CACHE_SLOTS), d.batch = 0;
  expect_write(rope, &d, IA, "batch 0");
  base(&d, ROTARY_CACHE_SLOTS), d.seq_len = 0;
  expect_write(rope, &d, IA, "seq_len 0");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.block_size = 0;
  expect_write(rope, &d, IA, "block_size 0");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.num_blocks = 0;
  expect_write(rope, &d, IA, "num_blocks 0");
  base(&d, ROTARY_CACHE_SLOTS), d.positions.mode = (rotary_position_mode)7;
  expect_write(rope, &d, IA, "unknown position mode");
  base(&d, ROTARY_CACHE_SLOTS);
  expect_write(NULL, &d, NP, "rope NULL");
  expect_write(rope, NULL, NP, "desc NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.k = NULL;
  expect_write(rope, &d, NP, "key cache NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.v = NULL;
  expect_write(rope, &d, NP, "value cache NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.k.in = NULL;
  expect_write(rope, &d, NP, "k.in NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.v.in = NULL;
  expect_write(rope, &d, NP, "v.in NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.q.in = NULL;
  expect_write(rope, &d, NP, "q.in NULL with q heads");
  base(&d, ROTARY_CACHE_SLOTS), d.q.out = NULL;
  expect_write(rope, &d, NP, "q.out NULL with q heads");
  base(&d, ROTARY_CACHE_SEQUENCES), d.cache.lengths = NULL;
  expect_write(rope, &d, NP, "SEQUENCES: lengths NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.slot_mapping = NULL;
  expect_write(rope, &d, NP, "SLOTS: slot_mapping NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.page_indptr = NULL;
  expect_write(rope, &d, NP, "PAGES: page_indptr NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.page_indices = NULL;
  expect_write(rope, &d, NP, "PAGES: page_indices NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.last_page_len = NULL;
  expect_write(rope, &d, NP, "PAGES: last_page_len NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = NULL;
  expect_write(rope, &d, NP, "IDS_I64 positions with ids NULL");
  finish_test();
}

static void test_sizes_positions(void **state) {
  (void)state;
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_SLOTS), d.cache.num_blocks = SIZE_MAX / 64;
  expect_write(rope, &d, ROTARY_ERR_OVERFLOW, "num_blocks * block_stride overflows");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.block_stride = SIZE_MAX / 2;
  expect_write(rope, &d, ROTARY_ERR_OVERFLOW, "block_stride SIZE_MAX / 2");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.block_size = SIZE_MAX / 4;
  expect_write(rope, &d, ROTARY_ERR_OVERFLOW, "block_size * kv_heads * head_dim overflows");
  base(&d, ROTARY_CACHE_SLOTS), d.positions.offset = MAXPOS - 1;
  expect_write(rope, &d, ROTARY_ERR_POSITION, "offset + seq_len - 1 beyond the table");
  base(&d, ROTARY_CACHE_PAGES), d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = ids, ids[B * S - 1] = -1;
  expect_write(rope, &d, ROTARY_ERR_POSITION, "the last position id -1");
  base(&d, ROTARY_CACHE_SEQUENCES), d.positions.mode = ROTARY_POSITIONS_IDS_I64, d.positions.ids = ids;
  ids[0] = MAXPOS;
  expect_write(rope, &d, ROTARY_ERR_POSITION, "a position id == the table size");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.block_stride = BS * HK * D - D;
  slot_map[0] = 3, slot_map[1] = 4; /* head 1 of row 3 of block 0 is head 0 of row 0 of block 1 */
  expect_write(rope, &d, ROTARY_ERR_STRIDE, "block_stride below a block: two written rows share elements");
  base(&d, ROTARY_CACHE_SLOTS), d.q.out_stride_head = 0;
  expect_write(rope, &d, ROTARY_ERR_STRIDE, "q's output writes an element twice");
  finish_test();
}

/* ---- rotary_kv_write_desc_set_qkv ---- */

/* One bad set_qkv call: its status, and the descriptor unchanged (documented: on error desc is unchanged). */
static void expect_qkv(rotary_kv_write_desc *d, const void *qkv, rotary_dtype dt, size_t qh, size_t kvh, size_t hd,
                       size_t rs, rotary_status want, const char *what) {
  rotary_kv_write_desc before;
  if (d) memcpy(&before, d, sizeof before);
  check_status(rotary_kv_write_desc_set_qkv(d, qkv, NULL, dt, qh, kvh, hd, rs), want, what);
  if (d) tu_check(memcmp(&before, d, sizeof before) == 0, "set_qkv %s: the descriptor changed", what);
  n_cases++;
}

static void test_set_qkv(void **state) {
  (void)state;
  rotary_kv_write_desc d;
  base(&d, ROTARY_CACHE_SLOTS);
  const size_t row = (HQ + 2 * HK) * D;
  assert_int_equal(rotary_kv_write_desc_set_qkv(&d, arena, NULL, ROTARY_F32, HQ, HK, D, 0), ROTARY_OK);
  tu_check(d.k.out == NULL && d.v.out == NULL, "set_qkv: k.out and v.out are not NULL");
  const rotary_status IA = ROTARY_ERR_INVALID_ARGUMENT;
  expect_qkv(&d, arena, ROTARY_F32, HQ, 0, D, 0, IA, "kv_heads 0");
  expect_qkv(&d, arena, ROTARY_F32, HQ, HK, 0, 0, IA, "head_dim 0");
  expect_qkv(&d, arena, ROTARY_F32, HQ, HK, D, row - 1, IA, "row_stride smaller than a row");
  expect_qkv(&d, NULL, ROTARY_F32, HQ, HK, D, 0, ROTARY_ERR_NULL_POINTER, "qkv NULL");
  expect_qkv(NULL, arena, ROTARY_F32, HQ, HK, D, 0, ROTARY_ERR_NULL_POINTER, "desc NULL");
  expect_qkv(&d, arena, ROTARY_FP8_E4M3, HQ, HK, D, 0, ROTARY_ERR_DTYPE, "dtype fp8");
  expect_qkv(&d, arena, (rotary_dtype)9, HQ, HK, D, 0, ROTARY_ERR_DTYPE, "dtype unknown (9)");
  expect_qkv(&d, arena, ROTARY_F32, HQ, HK, D, SIZE_MAX / 2, ROTARY_ERR_OVERFLOW, "row_stride * tokens overflows");
  expect_qkv(&d, arena, ROTARY_F32, SIZE_MAX / 4, HK, D, 0, ROTARY_ERR_OVERFLOW, "heads * head_dim overflows");
  finish_test();
}

/* ---- rotary_kv_rerotate ---- */

static void base_rerotate(rotary_kv_rerotate_desc *d, int64_t *slots) {
  rotary_kv_write_desc w;
  base(&w, ROTARY_CACHE_SLOTS);
  rotary_kv_rerotate_desc_init(d);
  d->cache = w.cache;
  d->kv_heads = HK, d->first_slot = 2, d->n_slots = 5, d->delta = -3;
  slots[0] = 1, slots[1] = -1, slots[2] = NB * BS - 1, slots[3] = 7;
}

static void test_rerotate(void **state) {
  (void)state;
  const rotary_status CI = ROTARY_ERR_CACHE_INDEX;
  rotary_kv_rerotate_desc d;
  int64_t slots[4];
  base_rerotate(&d, slots);
  expect_rerotate(rope, &d, ROTARY_OK, "the base range");
  d.slots = slots, d.n_slots = 4;
  expect_rerotate(rope, &d, ROTARY_OK, "the base list");
  base_rerotate(&d, slots), d.cache.v = NULL, d.cache.index = (rotary_cache_index)77, d.cache.lengths = NULL;
  expect_rerotate(rope, &d, ROTARY_OK, "v and the index are not read");
  base_rerotate(&d, slots), d.first_slot = NB * BS - 4;
  expect_rerotate(rope, &d, CI, "a range past the cache's last slot");
  base_rerotate(&d, slots), d.first_slot = SIZE_MAX - 1;
  expect_rerotate(rope, &d, CI, "first_slot + n_slots wraps around");
  base_rerotate(&d, slots), d.slots = slots, d.n_slots = 4, slots[3] = NB * BS;
  expect_rerotate(rope, &d, CI, "the last listed slot outside the cache");
  base_rerotate(&d, slots), d.slots = slots, d.n_slots = 4, slots[3] = 1;
  expect_rerotate(rope, &d, CI, "a slot listed twice");
  base_rerotate(&d, slots), d.delta = ROTARY_MAX_POSITION + 1;
  expect_rerotate(rope, &d, ROTARY_ERR_POSITION, "delta above ROTARY_MAX_POSITION");
  base_rerotate(&d, slots), d.delta = INT64_MIN;
  expect_rerotate(rope, &d, ROTARY_ERR_POSITION, "delta INT64_MIN");
  base_rerotate(&d, slots), d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = 0.0f;
  expect_rerotate(rope, &d, ROTARY_ERR_SCALE, "fp8 cache, k scale 0");
  base_rerotate(&d, slots), d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = NAN;
  expect_rerotate(rope, &d, ROTARY_ERR_SCALE, "fp8 cache, k scale NaN");
  base_rerotate(&d, slots), d.cache.dtype = (rotary_dtype)5;
  expect_rerotate(rope, &d, ROTARY_ERR_DTYPE, "unknown cache dtype");
  base_rerotate(&d, slots), d.cache.layout = (rotary_cache_layout)3;
  expect_rerotate(rope, &d, ROTARY_ERR_INVALID_ARGUMENT, "unknown layout");
  base_rerotate(&d, slots), d.n_slots = 0;
  expect_rerotate(rope, &d, ROTARY_ERR_INVALID_ARGUMENT, "n_slots 0 (a zero count)");
  base_rerotate(&d, slots), d.kv_heads = 0;
  expect_rerotate(rope, &d, ROTARY_ERR_INVALID_ARGUMENT, "kv_heads 0");
  base_rerotate(&d, slots), d.struct_size = 1;
  expect_rerotate(rope, &d, ROTARY_ERR_INVALID_ARGUMENT, "struct_size 1");
  base_rerotate(&d, slots), d.cache.block_size = 0;
  expect_rerotate(rope, &d, ROTARY_ERR_INVALID_ARGUMENT, "block_size 0");
  base_rerotate(&d, slots), d.cache.k = NULL;
  expect_rerotate(rope, &d, ROTARY_ERR_NULL_POINTER, "key cache NULL");
  base_rerotate(&d, slots);
  expect_rerotate(NULL, &d, ROTARY_ERR_NULL_POINTER, "rope NULL");
  expect_rerotate(rope, NULL, ROTARY_ERR_NULL_POINTER, "desc NULL");
  base_rerotate(&d, slots), d.cache.block_stride = BS * HK * D - 1;
  expect_rerotate(rope, &d, ROTARY_ERR_STRIDE, "block_stride smaller than a block");
  base_rerotate(&d, slots);
  {
    int64_t *inside = (int64_t *)(void *)(arena + KC + 16); /* a slot list stored inside the key cache */
    inside[0] = 0, inside[1] = 15;
    d.slots = inside, d.n_slots = 2;
    expect_rerotate(rope, &d, ROTARY_ERR_OVERLAP, "the slot list lies inside the key cache");
  }
  base_rerotate(&d, slots), d.cache.num_blocks = SIZE_MAX / 8;
  expect_rerotate(rope, &d, ROTARY_ERR_OVERFLOW, "num_blocks * block_stride overflows");
  finish_test();
}

static int group_setup(void **state) {
  (void)state;
  arena = malloc(ARENA_BYTES), snapshot = malloc(ARENA_BYTES);
  rotary_config c;
  rotary_config_init(&c, D);
  if (!arena || !snapshot || rotary_rope_create(&c, MAXPOS, &rope) != ROTARY_OK) return -1;
  return rotary_context_create(3, &ctx3) == ROTARY_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  printf("%d distinct bad inputs of rotary_kv_write, set_qkv and rotary_kv_rerotate checked\n", n_cases);
  free(arena), free(snapshot);
  rotary_rope_destroy(rope);
  rotary_context_destroy(ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_edges),  cmocka_unit_test(test_cache_index),     cmocka_unit_test(test_overlap),
      cmocka_unit_test(test_scale_dtype),  cmocka_unit_test(test_arguments),       cmocka_unit_test(test_sizes_positions),
      cmocka_unit_test(test_set_qkv),      cmocka_unit_test(test_rerotate),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
