/* test_attention_errors.c: every bad input of rotary_attention and rotary_decode_step returns its documented status
 * and writes nothing (out, lse, q's output, the caches), with buffers against guard pages. */
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

/*
 * The valid call every case starts from: q [B, T, HQ, D] f32, out the same, lse [B, T, HQ]; caches of f32, NHD,
 * 384 elements each (SEQUENCES: 3 blocks of 8 rows; SLOTS and PAGES: 6 blocks of 4 rows), sequence lengths 3 and 7:
 *   SEQUENCES lengths {3, 7};
 *   SLOTS     lengths {3, 7}, block table stride 2: {5, -9 (not used: L_0 = 3 needs one block)}, {0, 3};
 *   PAGES     indptr {0, 1, 3}, pages {2, 4, 0}, last {3, 3}.
 * Every buffer (tensors, caches, index arrays) is its own allocation ending against a PROT_NONE page, so a read or
 * write past any of them faults; each case changes one thing, and after the call every byte of every buffer is
 * compared with its bytes before (out and lse hold a pattern).
 */
enum { D = 8, B = 2, T = 2, HQ = 4, HK = 2, NQ = B * T * HQ * D, NL = B * T * HQ, NC = 384, BS = 4, NB = 6 };

enum { Q, OUT, LSE, KC, VC, KC2, LEN, TABLE, INDPTR, INDICES, LAST, QOUT, KIN, VIN, LEN2, NBUF };
static const size_t buf_bytes[NBUF] = {NQ * 4, NQ * 4, NL * 4, NC * 4, NC * 4, NC * 4, B * 8, B * 2 * 4, (B + 1) * 4,
                                       3 * 4, B * 4, NQ * 4, B * T * HK * D * 4, B * T * HK * D * 4, B * 8};
static tu_guarded g_buf[NBUF];
static unsigned char *g_snap[NBUF];
static rotary_rope *rope, *rope6; /* tables of 64 and 6 positions */
static rotary_context *ctx3;
static int n_cases;

#define P(i) ((void *)g_buf[i].ptr)
#define F(i) ((float *)(void *)g_buf[i].ptr)
#define I64(i) ((int64_t *)(void *)g_buf[i].ptr)
#define I32(i) ((int32_t *)(void *)g_buf[i].ptr)


/* Values, patterns and index arrays of the base call. */
static void fill_all(rotary_cache_index index) {
  tu_rng r;
  tu_rng_seed(&r, 77);
  for (int i = 0; i < NBUF; i++) tu_canary_fill(g_buf[i].ptr, buf_bytes[i], 1000 + (uint64_t)i);
  const int values[] = {Q, KC, VC, KC2, KIN, VIN};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    for (size_t e = 0; e < buf_bytes[values[i]] / 4; e++) F(values[i])[e] = tu_rng_f32(&r, -2.0f, 2.0f);
  I64(LEN)[0] = 3, I64(LEN)[1] = 7;
  const int32_t table[4] = {5, -9, 0, 3}, indptr[3] = {0, 1, 3}, pages[3] = {2, 4, 0}, last[2] = {3, 3};
  memcpy(I32(TABLE), table, sizeof table), memcpy(I32(INDPTR), indptr, sizeof indptr);
  memcpy(I32(INDICES), pages, sizeof pages), memcpy(I32(LAST), last, sizeof last);
  (void)index;
}

static void base(rotary_attention_desc *d, rotary_cache_index index) {
  fill_all(index);
  rotary_attention_desc_init(d);
  d->batch = B, d->tokens = T, d->q_heads = HQ, d->kv_heads = HK;
  d->q = P(Q), d->q_dtype = ROTARY_F32, d->out = P(OUT), d->out_dtype = ROTARY_F32, d->lse = F(LSE);
  rotary_kv_cache *c = &d->cache;
  c->index = index, c->layout = ROTARY_CACHE_NHD, c->dtype = ROTARY_F32, c->k = P(KC), c->v = P(VC);
  c->num_blocks = index == ROTARY_CACHE_SEQUENCES ? 3 : NB, c->block_size = index == ROTARY_CACHE_SEQUENCES ? 8 : BS;
  c->k_scale = c->v_scale = 1.0f;
  if (index != ROTARY_CACHE_PAGES) c->lengths = I64(LEN);
  if (index == ROTARY_CACHE_SLOTS) d->block_table = I32(TABLE), d->block_table_stride = 2;
  if (index == ROTARY_CACHE_PAGES) c->page_indptr = I32(INDPTR), c->page_indices = I32(INDICES), c->last_page_len = I32(LAST);
  d->rope_mode = ROTARY_ATTENTION_ROPE_QK;
}

static void check_status(rotary_status got, rotary_status want, const char *what) {
  tu_check(got == want, "%s: got %d (%s), want %d (%s)", what, (int)got, rotary_status_string(got), (int)want,
        rotary_status_string(want));
}

static void snapshot(void) {
  for (int i = 0; i < NBUF; i++) memcpy(g_snap[i], g_buf[i].ptr, buf_bytes[i]);
}

static void restore_and_compare(const char *label, int must_match) {
  for (int i = 0; i < NBUF; i++) {
    if (must_match) tu_check(memcmp(g_snap[i], g_buf[i].ptr, buf_bytes[i]) == 0, "%s: the failed call wrote into buffer %d", label, i);
    memcpy(g_buf[i].ptr, g_snap[i], buf_bytes[i]);
  }
}

/* One call (ctx NULL and 3 threads): its exact status; on error not one byte of any buffer changed. */
static void expect(const rotary_rope *r, const rotary_attention_desc *d, rotary_status want, const char *what) {
  rotary_context *ctxs[2] = {NULL, ctx3};
  for (int i = 0; i < 2; i++) {
    char label[240];
    snprintf(label, sizeof label, "%s (ctx %s)", what, ctxs[i] ? "3 threads" : "NULL");
    snapshot();
    check_status(rotary_attention(ctxs[i], r, d), want, label);
    restore_and_compare(label, want != ROTARY_OK);
  }
  if (want != ROTARY_OK) n_cases++;
}

static void finish_test(void) {
  const int failures = tu_failures;
  printf("  %d bad inputs so far\n", n_cases);
  tu_failures = 0;
  assert_int_equal(failures, 0);
}

/* ---- valid calls: the base of each index kind and the edges that must pass ---- */

static void test_valid(void **state) {
  (void)state;
  rotary_attention_desc d;
  for (int k = 0; k < 3; k++) {
    base(&d, (rotary_cache_index)k);
    expect(rope, &d, ROTARY_OK, "the base call");
    base(&d, (rotary_cache_index)k);
    d.lse = NULL;
    expect(rope, &d, ROTARY_OK, "lse NULL");
  }
  base(&d, ROTARY_CACHE_SLOTS); /* the byte comparison sees a call's writes: a valid call changes out and lse */
  snapshot();
  assert_int_equal(rotary_attention(ctx3, rope, &d), ROTARY_OK);
  tu_check(memcmp(g_snap[OUT], g_buf[OUT].ptr, buf_bytes[OUT]) != 0, "the base call did not write out");
  tu_check(memcmp(g_snap[LSE], g_buf[LSE].ptr, buf_bytes[LSE]) != 0, "the base call did not write lse");
  for (int i = 0; i < NBUF; i++)
    if (i != OUT && i != LSE) tu_check(memcmp(g_snap[i], g_buf[i].ptr, buf_bytes[i]) == 0, "the base call wrote buffer %d", i);
  restore_and_compare("base", 0);
  base(&d, ROTARY_CACHE_PAGES);
  d.rope_mode = ROTARY_ATTENTION_ROPE_NONE;
  expect(rope6, &d, ROTARY_OK, "rope_mode NONE: rows beyond the rope's table are fine (no rotation)");
  for (int k = 0; k < 3; k++) {
    base(&d, (rotary_cache_index)k);
    d.cache.slot_mapping = (const int64_t *)(void *)P(OUT); /* "not read": no overlap either */
    expect(rope, &d, ROTARY_OK, "cache.slot_mapping pointing into out (not read)");
  }
  base(&d, ROTARY_CACHE_SEQUENCES);
  d.cache.dtype = ROTARY_BF16, d.cache.k_scale = 0.0f, d.cache.v_scale = NAN;
  expect(rope, &d, ROTARY_OK, "scales 0 and NaN ignored by a bf16 cache");
  base(&d, ROTARY_CACHE_SEQUENCES);
  d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = FLT_TRUE_MIN, d.cache.v_scale = FLT_MAX;
  expect(rope, &d, ROTARY_OK, "fp8 scales FLT_TRUE_MIN and FLT_MAX");
  base(&d, ROTARY_CACHE_PAGES);
  d.out = F(OUT) + 32, d.out_stride_batch = 64, d.out_stride_token = -32, d.out_stride_head = 8;
  expect(rope, &d, ROTARY_OK, "a negative out token stride");
  base(&d, ROTARY_CACHE_SLOTS);
  I64(LEN)[0] = T, I64(LEN)[1] = 2 * BS;
  expect(rope, &d, ROTARY_OK, "L_b == tokens, and L_b == block_table_stride * block_size");
  base(&d, ROTARY_CACHE_SEQUENCES);
  I64(LEN)[1] = 8;
  expect(rope, &d, ROTARY_OK, "SEQUENCES: L_b == block_size");
  base(&d, ROTARY_CACHE_PAGES);
  I32(INDPTR)[1] = 1, I32(INDICES)[1] = 2, I32(LAST)[0] = BS; /* sequence 1 = pages {2, 0}: page 2 shared */
  expect(rope, &d, ROTARY_OK, "PAGES: a page shared by two sequences");
  base(&d, ROTARY_CACHE_PAGES);
  d.scale = FLT_MAX, d.softcap = FLT_TRUE_MIN, d.window = SIZE_MAX;
  expect(rope, &d, ROTARY_OK, "scale FLT_MAX, softcap FLT_TRUE_MIN, window SIZE_MAX");
  finish_test();
}

/* ---- NULL_POINTER, INVALID_ARGUMENT, DTYPE, SCALE, POSITION ---- */

static void test_arguments(void **state) {
  (void)state;
  const rotary_status NP = ROTARY_ERR_NULL_POINTER, IA = ROTARY_ERR_INVALID_ARGUMENT, DT = ROTARY_ERR_DTYPE;
  const rotary_status SC = ROTARY_ERR_SCALE;
  rotary_attention_desc d;
  base(&d, ROTARY_CACHE_PAGES);
  expect(NULL, &d, NP, "rope NULL");
  expect(rope, NULL, NP, "desc NULL");
  base(&d, ROTARY_CACHE_PAGES), d.q = NULL, expect(rope, &d, NP, "q NULL");
  base(&d, ROTARY_CACHE_PAGES), d.out = NULL, expect(rope, &d, NP, "out NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.k = NULL, expect(rope, &d, NP, "cache.k NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.v = NULL, expect(rope, &d, NP, "cache.v NULL");
  base(&d, ROTARY_CACHE_SEQUENCES), d.cache.lengths = NULL, expect(rope, &d, NP, "SEQUENCES: lengths NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.cache.lengths = NULL, expect(rope, &d, NP, "SLOTS: lengths NULL");
  base(&d, ROTARY_CACHE_SLOTS), d.block_table = NULL, expect(rope, &d, NP, "SLOTS: block_table NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.page_indptr = NULL, expect(rope, &d, NP, "PAGES: page_indptr NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.page_indices = NULL, expect(rope, &d, NP, "PAGES: page_indices NULL");
  base(&d, ROTARY_CACHE_PAGES), d.cache.last_page_len = NULL, expect(rope, &d, NP, "PAGES: last_page_len NULL");

  base(&d, ROTARY_CACHE_PAGES), d.struct_size = 0, expect(rope, &d, IA, "struct_size 0");
  base(&d, ROTARY_CACHE_PAGES), d.struct_size += 8, expect(rope, &d, IA, "struct_size too large");
  base(&d, ROTARY_CACHE_PAGES), d.batch = 0, expect(rope, &d, IA, "batch 0");
  base(&d, ROTARY_CACHE_PAGES), d.tokens = 0, expect(rope, &d, IA, "tokens 0");
  base(&d, ROTARY_CACHE_PAGES), d.tokens = ROTARY_ATTENTION_MAX_TOKENS + 1, expect(rope, &d, IA, "tokens 17");
  base(&d, ROTARY_CACHE_PAGES), d.kv_heads = 0, expect(rope, &d, IA, "kv_heads 0");
  base(&d, ROTARY_CACHE_PAGES), d.q_heads = 5, expect(rope, &d, IA, "q_heads 5, not a multiple of kv_heads 2");
  base(&d, ROTARY_CACHE_PAGES), d.q_heads = 0, expect(rope, &d, IA, "q_heads 0");
  base(&d, ROTARY_CACHE_PAGES), d.q_heads = 1, expect(rope, &d, IA, "q_heads 1 below kv_heads 2");
  base(&d, ROTARY_CACHE_PAGES), d.cache.index = (rotary_cache_index)3, expect(rope, &d, IA, "unknown index kind");
  base(&d, ROTARY_CACHE_PAGES), d.cache.layout = (rotary_cache_layout)2, expect(rope, &d, IA, "unknown layout");
  base(&d, ROTARY_CACHE_PAGES), d.rope_mode = (rotary_attention_rope)3, expect(rope, &d, IA, "unknown rope_mode");
  base(&d, ROTARY_CACHE_PAGES), d.rope_mode = (rotary_attention_rope)-1, expect(rope, &d, IA, "rope_mode -1");
  base(&d, ROTARY_CACHE_PAGES), d.precision = (rotary_attention_precision)2, expect(rope, &d, IA, "unknown precision");
  base(&d, ROTARY_CACHE_SLOTS), d.precision = (rotary_attention_precision)-1, expect(rope, &d, IA, "precision -1");
  base(&d, ROTARY_CACHE_PAGES), d.cache.num_blocks = 0, expect(rope, &d, IA, "num_blocks 0");
  base(&d, ROTARY_CACHE_PAGES), d.cache.block_size = 0, expect(rope, &d, IA, "block_size 0");

  base(&d, ROTARY_CACHE_PAGES), d.q_dtype = ROTARY_FP8_E4M3, expect(rope, &d, DT, "q fp8");
  base(&d, ROTARY_CACHE_PAGES), d.q_dtype = (rotary_dtype)9, expect(rope, &d, DT, "q dtype 9");
  base(&d, ROTARY_CACHE_PAGES), d.out_dtype = ROTARY_FP8_E4M3, expect(rope, &d, DT, "out fp8");
  base(&d, ROTARY_CACHE_PAGES), d.out_dtype = (rotary_dtype)-1, expect(rope, &d, DT, "out dtype -1");
  base(&d, ROTARY_CACHE_PAGES), d.cache.dtype = (rotary_dtype)4, expect(rope, &d, DT, "cache dtype 4");

  static const float bad_scale[5] = {-1.0f, -FLT_TRUE_MIN, NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 5; i++) {
    char what[80];
    snprintf(what, sizeof what, "scale %g", (double)bad_scale[i]);
    base(&d, ROTARY_CACHE_PAGES), d.scale = bad_scale[i], expect(rope, &d, SC, what);
    snprintf(what, sizeof what, "softcap %g", (double)bad_scale[i]);
    base(&d, ROTARY_CACHE_PAGES), d.softcap = bad_scale[i], expect(rope, &d, SC, what);
  }
  static const float bad_fp8[4] = {0.0f, -1.0f, NAN, INFINITY};
  for (int i = 0; i < 4; i++) {
    char what[80];
    snprintf(what, sizeof what, "fp8 k_scale %g", (double)bad_fp8[i]);
    base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = ROTARY_FP8_E4M3, d.cache.k_scale = bad_fp8[i];
    expect(rope, &d, SC, what);
    snprintf(what, sizeof what, "fp8 v_scale %g", (double)bad_fp8[i]);
    base(&d, ROTARY_CACHE_SLOTS), d.cache.dtype = ROTARY_FP8_E4M3, d.cache.v_scale = bad_fp8[i];
    expect(rope, &d, SC, what);
  }

  base(&d, ROTARY_CACHE_PAGES), expect(rope6, &d, ROTARY_ERR_POSITION, "QK: key rows 6 of sequence 1 beyond a 6-row table");
  base(&d, ROTARY_CACHE_PAGES), d.rope_mode = ROTARY_ATTENTION_ROPE_Q;
  expect(rope6, &d, ROTARY_ERR_POSITION, "Q: query positions 5, 6 beyond a 6-row table");
  finish_test();
}

/* ---- OVERFLOW, STRIDE, OVERLAP ---- */

static void test_buffers(void **state) {
  (void)state;
  const rotary_status OF = ROTARY_ERR_OVERFLOW, ST = ROTARY_ERR_STRIDE, OV = ROTARY_ERR_OVERLAP;
  rotary_attention_desc d;
  base(&d, ROTARY_CACHE_PAGES);
  d.q_stride_batch = PTRDIFF_MAX / 2, d.q_stride_token = HQ * D, d.q_stride_head = D;
  expect(rope, &d, OF, "q batch stride PTRDIFF_MAX / 2");
  base(&d, ROTARY_CACHE_PAGES);
  d.out_stride_batch = T * HQ * D, d.out_stride_token = HQ * D, d.out_stride_head = PTRDIFF_MAX / 4;
  expect(rope, &d, OF, "out head stride PTRDIFF_MAX / 4");
  base(&d, ROTARY_CACHE_PAGES), d.cache.num_blocks = SIZE_MAX / 64;
  expect(rope, &d, OF, "num_blocks SIZE_MAX / 64: the cache's extent overflows");
  base(&d, ROTARY_CACHE_PAGES), d.cache.block_stride = SIZE_MAX / 8;
  expect(rope, &d, OF, "block_stride SIZE_MAX / 8");
  base(&d, ROTARY_CACHE_PAGES), d.q_heads = (size_t)1 << 62;
  expect(rope, &d, OF, "q_heads 2^62: q's extent overflows");

  base(&d, ROTARY_CACHE_PAGES);
  d.out_stride_batch = T * HQ * D, d.out_stride_token = HQ * D, d.out_stride_head = D / 2;
  expect(rope, &d, ST, "out heads overlap (head stride D/2)");
  base(&d, ROTARY_CACHE_PAGES);
  d.out_stride_batch = 0, d.out_stride_token = HQ * D, d.out_stride_head = D;
  expect(rope, &d, ST, "out batch stride 0: both sequences write one place");
  base(&d, ROTARY_CACHE_PAGES), d.cache.block_stride = BS * HK * D - 1;
  expect(rope, &d, ST, "block_stride one element smaller than a block");

  base(&d, ROTARY_CACHE_PAGES), d.out = F(Q) + 4, expect(rope, &d, OV, "out overlaps q");
  base(&d, ROTARY_CACHE_PAGES), d.out = F(KC) + 10, expect(rope, &d, OV, "out inside cache.k");
  base(&d, ROTARY_CACHE_PAGES), d.out = F(VC) + NC - 8, expect(rope, &d, OV, "out overlaps the end of cache.v");
  base(&d, ROTARY_CACHE_PAGES), d.lse = F(OUT) + 5, expect(rope, &d, OV, "lse inside out");
  base(&d, ROTARY_CACHE_PAGES), d.lse = F(Q) + 3, expect(rope, &d, OV, "lse inside q");
  base(&d, ROTARY_CACHE_PAGES), d.lse = F(KC) + 1, expect(rope, &d, OV, "lse inside cache.k");
  base(&d, ROTARY_CACHE_SLOTS), d.out = P(TABLE), expect(rope, &d, OV, "out over the block table");
  base(&d, ROTARY_CACHE_SLOTS), d.lse = F(LEN), expect(rope, &d, OV, "lse over lengths (SLOTS)");
  base(&d, ROTARY_CACHE_SEQUENCES), d.out = P(LEN), expect(rope, &d, OV, "out over lengths (SEQUENCES)");
  base(&d, ROTARY_CACHE_PAGES), d.out = P(INDICES), expect(rope, &d, OV, "out over page_indices");
  base(&d, ROTARY_CACHE_PAGES), d.lse = F(INDPTR), expect(rope, &d, OV, "lse over page_indptr");
  base(&d, ROTARY_CACHE_PAGES), d.lse = F(LAST), expect(rope, &d, OV, "lse over last_page_len");
  base(&d, ROTARY_CACHE_PAGES), d.out = F(Q), expect(rope, &d, OV, "out == q (attention is never in place)");
  finish_test();
}

/* ---- CACHE_INDEX ---- */

static void test_cache_index(void **state) {
  (void)state;
  const rotary_status CI = ROTARY_ERR_CACHE_INDEX;
  rotary_attention_desc d;
  base(&d, ROTARY_CACHE_SEQUENCES), I64(LEN)[0] = T - 1, expect(rope, &d, CI, "SEQUENCES: L_b < tokens");
  base(&d, ROTARY_CACHE_SEQUENCES), I64(LEN)[1] = 9, expect(rope, &d, CI, "SEQUENCES: L_b > block_size");
  base(&d, ROTARY_CACHE_SEQUENCES), I64(LEN)[0] = -1, expect(rope, &d, CI, "SEQUENCES: L_b negative");
  base(&d, ROTARY_CACHE_SEQUENCES), I64(LEN)[1] = INT64_MAX, expect(rope, &d, CI, "SEQUENCES: L_b INT64_MAX");
  base(&d, ROTARY_CACHE_SEQUENCES), d.cache.num_blocks = 1, expect(rope, &d, CI, "SEQUENCES: num_blocks < batch");
  base(&d, ROTARY_CACHE_SLOTS), I64(LEN)[1] = 0, expect(rope, &d, CI, "SLOTS: L_b 0");
  base(&d, ROTARY_CACHE_SLOTS), I32(TABLE)[3] = -1, expect(rope, &d, CI, "SLOTS: a used block number negative");
  base(&d, ROTARY_CACHE_SLOTS), I32(TABLE)[2] = NB, expect(rope, &d, CI, "SLOTS: a used block number == num_blocks");
  base(&d, ROTARY_CACHE_SLOTS), I32(TABLE)[0] = INT32_MAX, expect(rope, &d, CI, "SLOTS: block number INT32_MAX");
  base(&d, ROTARY_CACHE_SLOTS), d.block_table_stride = 1;
  expect(rope, &d, CI, "SLOTS: block_table_stride * block_size < L_b");
  base(&d, ROTARY_CACHE_SLOTS), I64(LEN)[1] = 2 * BS + 1;
  expect(rope, &d, CI, "SLOTS: L_b one row past block_table_stride * block_size");
  base(&d, ROTARY_CACHE_SLOTS), I64(LEN)[0] = INT64_MAX, expect(rope, &d, CI, "SLOTS: L_b INT64_MAX");
  base(&d, ROTARY_CACHE_PAGES), I32(INDPTR)[0] = 1, expect(rope, &d, CI, "PAGES: indptr[0] != 0");
  base(&d, ROTARY_CACHE_PAGES), I32(INDPTR)[1] = 3, I32(INDPTR)[2] = 1, expect(rope, &d, CI, "PAGES: decreasing indptr");
  base(&d, ROTARY_CACHE_PAGES), I32(INDPTR)[1] = 0, expect(rope, &d, CI, "PAGES: a sequence with no page");
  base(&d, ROTARY_CACHE_PAGES), I32(LAST)[0] = 0, expect(rope, &d, CI, "PAGES: last_page_len 0");
  base(&d, ROTARY_CACHE_PAGES), I32(LAST)[1] = BS + 1, expect(rope, &d, CI, "PAGES: last_page_len > block_size");
  base(&d, ROTARY_CACHE_PAGES), I32(LAST)[1] = -3, expect(rope, &d, CI, "PAGES: last_page_len negative");
  base(&d, ROTARY_CACHE_PAGES), I32(INDICES)[1] = -1, expect(rope, &d, CI, "PAGES: a page index negative");
  base(&d, ROTARY_CACHE_PAGES), I32(INDICES)[2] = NB, expect(rope, &d, CI, "PAGES: a page index == num_blocks");
  base(&d, ROTARY_CACHE_PAGES), I32(LAST)[0] = 1, expect(rope, &d, CI, "PAGES: L_b (1) < tokens");
  finish_test();
}

/* ---- rotary_decode_step ---- */

/* A valid step: write T tokens per sequence into a SEQUENCES cache holding {1, 5} rows (then {3, 7}); q rotated into
 * QOUT, which attn reads. */
static void base_step(rotary_kv_write_desc *w, rotary_attention_desc *a) {
  base(a, ROTARY_CACHE_SEQUENCES);
  a->rope_mode = ROTARY_ATTENTION_ROPE_NONE, a->q = P(QOUT);
  I64(LEN2)[0] = 1, I64(LEN2)[1] = 5;
  rotary_kv_write_desc_init(w);
  w->batch = B, w->seq_len = T;
  w->positions.mode = ROTARY_POSITIONS_OFFSETS, w->positions.offsets = I64(LEN2);
  rotary_tensor_init(&w->q, ROTARY_LAYOUT_BSHD, P(Q), P(QOUT), ROTARY_F32, T, HQ, D);
  rotary_tensor_init(&w->k, ROTARY_LAYOUT_BSHD, P(KIN), NULL, ROTARY_F32, T, HK, D);
  rotary_tensor_init(&w->v, ROTARY_LAYOUT_BSHD, P(VIN), NULL, ROTARY_F32, T, HK, D);
  w->cache = a->cache;
  w->cache.lengths = I64(LEN2);
}

static void expect_step(const rotary_kv_write_desc *w, const rotary_attention_desc *a, rotary_status want,
                        const char *what) {
  rotary_context *ctxs[2] = {NULL, ctx3};
  for (int i = 0; i < 2; i++) {
    char label[240];
    snprintf(label, sizeof label, "decode_step: %s (ctx %s)", what, ctxs[i] ? "3 threads" : "NULL");
    snapshot();
    check_status(rotary_decode_step(ctxs[i], rope, w, a), want, label);
    restore_and_compare(label, want != ROTARY_OK);
  }
  if (want != ROTARY_OK) n_cases++;
}

static void test_decode_step(void **state) {
  (void)state;
  const rotary_status IA = ROTARY_ERR_INVALID_ARGUMENT;
  rotary_kv_write_desc w;
  rotary_attention_desc a;
  base_step(&w, &a), expect_step(&w, &a, ROTARY_OK, "the base step");
  base_step(&w, &a), expect_step(NULL, &a, ROTARY_ERR_NULL_POINTER, "write NULL");
  base_step(&w, &a), expect_step(&w, NULL, ROTARY_ERR_NULL_POINTER, "attn NULL");
  base_step(&w, &a), a.q = P(Q), expect_step(&w, &a, IA, "attn q is write's q input, not its output");
  base_step(&w, &a), a.q_dtype = ROTARY_BF16, expect_step(&w, &a, IA, "attn q dtype bf16, write's q f32");
  base_step(&w, &a), a.q_stride_batch = T * HQ * D, a.q_stride_token = HQ * D, a.q_stride_head = D;
  a.q_stride_token = HQ * D + 0, a.q_stride_batch = T * HQ * D + 8;
  expect_step(&w, &a, IA, "attn q strides not write's q output strides");
  base_step(&w, &a), a.q_heads = HK, expect_step(&w, &a, IA, "attn q_heads 2, write's q 4 heads");
  base_step(&w, &a), a.batch = 1, expect_step(&w, &a, IA, "attn batch 1, write batch 2");
  base_step(&w, &a), a.tokens = 1, expect_step(&w, &a, IA, "attn tokens 1, write seq_len 2");
  base_step(&w, &a), a.rope_mode = ROTARY_ATTENTION_ROPE_Q, expect_step(&w, &a, IA, "attn rope_mode Q");
  base_step(&w, &a), a.cache.k = P(KC2), expect_step(&w, &a, IA, "attn cache.k another buffer");
  base_step(&w, &a), a.cache.layout = ROTARY_CACHE_HND, expect_step(&w, &a, IA, "attn cache layout HND");
  base_step(&w, &a), a.cache.dtype = ROTARY_BF16, expect_step(&w, &a, IA, "attn cache dtype bf16, write's f32");
  base_step(&w, &a), a.cache.block_size = 7, expect_step(&w, &a, IA, "attn block_size 7, write's 8");
  base_step(&w, &a), I64(LEN)[0] = 4, I64(LEN)[1] = 8;
  expect_step(&w, &a, IA, "attn lengths {4, 8} after a write to rows {1, 2}, {5, 6} (not rows L_b - tokens + s)");
  base_step(&w, &a), w.cache.dtype = a.cache.dtype = ROTARY_FP8_E4M3, a.cache.k_scale = 2.0f;
  expect_step(&w, &a, IA, "fp8 k_scale 1 in write, 2 in attn");
  /* a bad attention: the write must not run either */
  base_step(&w, &a), a.scale = NAN, expect_step(&w, &a, ROTARY_ERR_SCALE, "attn scale NaN (the cache untouched)");
  base_step(&w, &a), a.out = F(KC) + 3, expect_step(&w, &a, ROTARY_ERR_OVERLAP, "attn out inside the cache");
  /* a bad write: nothing of the attention either */
  base_step(&w, &a), I64(LEN2)[1] = 7, I64(LEN)[1] = 9;
  expect_step(&w, &a, ROTARY_ERR_CACHE_INDEX, "write lengths + seq_len beyond block_size");
  base_step(&w, &a), w.k.dtype = ROTARY_FP8_E4M3, expect_step(&w, &a, ROTARY_ERR_DTYPE, "write k fp8");
  finish_test();
}

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < NBUF; i++) {
    if (!tu_guard_alloc(&g_buf[i], buf_bytes[i], TU_GUARD_END)) return -1;
    if (!(g_snap[i] = malloc(buf_bytes[i]))) return -1;
  }
  rotary_config cfg;
  rotary_config_init(&cfg, D);
  if (rotary_rope_create(&cfg, 64, &rope) != ROTARY_OK || rotary_rope_create(&cfg, 6, &rope6) != ROTARY_OK) return -1;
  return rotary_context_create(3, &ctx3) == ROTARY_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  printf("%d bad inputs, each with its status and no byte written\n", n_cases);
  for (int i = 0; i < NBUF; i++) tu_guard_free(&g_buf[i]), free(g_snap[i]);
  rotary_rope_destroy(rope), rotary_rope_destroy(rope6);
  rotary_context_destroy(ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),       cmocka_unit_test(test_arguments),   cmocka_unit_test(test_buffers),
      cmocka_unit_test(test_cache_index), cmocka_unit_test(test_decode_step),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
