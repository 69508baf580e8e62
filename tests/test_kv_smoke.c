/* test_kv_smoke.c: quick checks of rotary_kv_write / rotary_kv_rerotate against rotary_apply and one rounding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv_oracle.h"
#include "rotary.h"
#include "test_util.h"

enum { HD = 64, QH = 4, KVH = 2, BATCH = 2, SEQ = 3, TOK = BATCH * SEQ, ROW = (QH + 2 * KVH) * HD };
enum { NB = 4, BS = 4, CANARY = 0x5A };

/* bits of an f32 value rounded once to a cache dtype (fp8 with scale) */
static uint32_t round_to(rotary_dtype dt, float v, float scale) {
  return dt == ROTARY_FP8_E4M3 ? kvo_fp8_encode(v, scale) : tu_round_bits(dt, v);
}

/* The reference: k and v of a packed QKV buffer as f32 tensors, k rotated by rotary_apply in f32. */
static void reference_kv(const rotary_rope *rope, rotary_dtype in_dt, const void *qkv, const int64_t *pos,
                         float *k32, float *v32) {
  for (size_t t = 0; t < TOK; t++)
    for (size_t e = 0; e < KVH * HD; e++) {
      k32[t * KVH * HD + e] = tu_load(in_dt, qkv, (ptrdiff_t)(t * ROW + QH * HD + e));
      v32[t * KVH * HD + e] = tu_load(in_dt, qkv, (ptrdiff_t)(t * ROW + (QH + KVH) * HD + e));
    }
  rotary_apply_desc a;
  rotary_apply_desc_init(&a);
  a.batch = BATCH;
  a.seq_len = SEQ;
  a.positions.mode = ROTARY_POSITIONS_IDS_I64;
  a.positions.ids = pos;
  assert_int_equal(rotary_tensor_init(&a.q, ROTARY_LAYOUT_BSHD, k32, k32, ROTARY_F32, SEQ, KVH, HD), ROTARY_OK);
  assert_int_equal(rotary_apply(NULL, rope, &a), ROTARY_OK);
}

/* The reference q: rotary_apply in q's own dtype on a copy of the packed rows. */
static void reference_q(const rotary_rope *rope, rotary_dtype dt, void *qkv_copy, const int64_t *pos) {
  rotary_apply_desc a;
  rotary_apply_desc_init(&a);
  a.batch = BATCH;
  a.seq_len = SEQ;
  a.positions.mode = ROTARY_POSITIONS_IDS_I64;
  a.positions.ids = pos;
  assert_int_equal(rotary_tensor_init(&a.q, ROTARY_LAYOUT_BSHD, qkv_copy, qkv_copy, dt, SEQ, QH, HD), ROTARY_OK);
  a.q.stride_seq = a.q.out_stride_seq = ROW;
  a.q.stride_batch = a.q.out_stride_batch = SEQ * ROW;
  assert_int_equal(rotary_apply(NULL, rope, &a), ROTARY_OK);
}

static void check_case(const rotary_rope *rope, rotary_context *ctx, rotary_dtype in_dt, rotary_dtype c_dt,
                       rotary_cache_layout layout, tu_rng *rng) {
  const size_t ie = tu_dtype_size(in_dt), ce = kvo_dtype_size(c_dt), cache_elems = NB * BS * KVH * HD;
  unsigned char *qkv = malloc(TOK * ROW * ie), *ref_q = malloc(TOK * ROW * ie);
  unsigned char *kc = malloc(cache_elems * ce), *vc = malloc(cache_elems * ce);
  float *k32 = malloc(TOK * KVH * HD * sizeof(float)), *v32 = malloc(TOK * KVH * HD * sizeof(float));
  for (size_t i = 0; i < TOK * ROW; i++) tu_store(in_dt, qkv, (ptrdiff_t)i, tu_rng_f32(rng, -4.0f, 4.0f));
  memcpy(ref_q, qkv, TOK * ROW * ie);
  memset(kc, CANARY, cache_elems * ce);
  memset(vc, CANARY, cache_elems * ce);
  const int64_t pos[TOK] = {0, 1, 2, 7, 8, 9};
  const int64_t slots[TOK] = {5, -1, 0, 15, 9, 10};
  reference_kv(rope, in_dt, qkv, pos, k32, v32);
  reference_q(rope, in_dt, ref_q, pos);

  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = BATCH;
  d.seq_len = SEQ;
  d.positions.mode = ROTARY_POSITIONS_IDS_I64;
  d.positions.ids = pos;
  assert_int_equal(rotary_kv_write_desc_set_qkv(&d, qkv, NULL, in_dt, QH, KVH, HD, 0), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_SLOTS;
  d.cache.layout = layout;
  d.cache.dtype = c_dt;
  d.cache.k = kc;
  d.cache.v = vc;
  d.cache.num_blocks = NB;
  d.cache.block_size = BS;
  d.cache.slot_mapping = slots;
  d.cache.k_scale = 0.5f;
  d.cache.v_scale = 0.03125f;
  assert_int_equal(rotary_kv_write(ctx, rope, &d), ROTARY_OK);

  assert_memory_equal(qkv, ref_q, TOK * ROW * ie); /* q rotated in place as rotary_apply does; k, v unchanged */
  const kvo_geom g = {layout, BS, KVH, HD, 0};
  for (size_t t = 0; t < TOK; t++) {
    if (slots[t] < 0) continue;
    for (size_t h = 0; h < KVH; h++)
      for (size_t e = 0; e < HD; e++) {
        const size_t off = kvo_row_offset(&g, (uint64_t)slots[t], h) + e, src = t * KVH * HD + h * HD + e;
        assert_int_equal(c_dt == ROTARY_FP8_E4M3 ? kc[off] : tu_load_bits(c_dt, kc, (ptrdiff_t)off),
                         round_to(c_dt, k32[src], 0.5f));
        assert_int_equal(c_dt == ROTARY_FP8_E4M3 ? vc[off] : tu_load_bits(c_dt, vc, (ptrdiff_t)off),
                         round_to(c_dt, v32[src], 0.03125f));
      }
  }
  /* rows no token writes keep the canary: slot 1 is one */
  for (size_t h = 0; h < KVH; h++)
    for (size_t e = 0; e < HD * ce; e++) assert_int_equal(kc[kvo_row_offset(&g, 1, h) * ce + e], CANARY);
  free(qkv), free(ref_q), free(kc), free(vc), free(k32), free(v32);
}

static void test_write_all_dtypes(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 64, &rope), ROTARY_OK);
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(3, &ctx), ROTARY_OK);
  tu_rng rng;
  tu_rng_seed(&rng, 11);
  const rotary_dtype ins[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  const rotary_dtype caches[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16, ROTARY_FP8_E4M3};
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 2; l++) {
        check_case(rope, NULL, ins[i], caches[c], (rotary_cache_layout)l, &rng);
        check_case(rope, ctx, ins[i], caches[c], (rotary_cache_layout)l, &rng);
      }
  rotary_context_destroy(ctx);
  rotary_rope_destroy(rope);
}

/* Re-rotating bf16 rows by delta is rotary_apply at position |delta| (inverse for delta < 0) on those rows, when
 * the rope's attention scaling is 1: the same table row, the same kernel. */
static void test_rerotate_matches_apply(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 64, &rope), ROTARY_OK);
  const size_t elems = NB * BS * KVH * HD;
  uint16_t *cache = malloc(elems * 2), *ref = malloc(elems * 2);
  tu_rng rng;
  tu_rng_seed(&rng, 5);
  for (size_t i = 0; i < elems; i++) cache[i] = tu_f32_to_bf16(tu_rng_f32(&rng, -2.0f, 2.0f));
  const int64_t deltas[] = {5, -7, 0, 100};
  for (int k = 0; k < 4; k++) {
    memcpy(ref, cache, elems * 2);
    rotary_kv_rerotate_desc r;
    rotary_kv_rerotate_desc_init(&r);
    r.cache.layout = ROTARY_CACHE_NHD;
    r.cache.dtype = ROTARY_BF16;
    r.cache.k = cache;
    r.cache.num_blocks = NB;
    r.cache.block_size = BS;
    r.kv_heads = KVH;
    r.first_slot = 3;
    r.n_slots = 9;
    r.delta = deltas[k];
    assert_int_equal(rotary_kv_rerotate(NULL, rope, &r), ROTARY_OK);
    /* the same rows as one tensor: tokens are slots 3 .. 11 (NHD dense: a slot is KVH * HD elements) */
    int64_t ids[9];
    const int64_t mag = deltas[k] < 0 ? -deltas[k] : deltas[k];
    for (int i = 0; i < 9; i++) ids[i] = mag;
    rotary_apply_desc a;
    rotary_apply_desc_init(&a);
    a.seq_len = 9;
    a.positions.mode = ROTARY_POSITIONS_IDS_I64;
    a.positions.ids = ids;
    a.direction = deltas[k] < 0 ? ROTARY_INVERSE : ROTARY_FORWARD;
    uint16_t *rows = ref + 3 * KVH * HD;
    assert_int_equal(rotary_tensor_init(&a.q, ROTARY_LAYOUT_BSHD, rows, rows, ROTARY_BF16, 9, KVH, HD), ROTARY_OK);
    if (mag < 64) { /* beyond the table the call computes the row itself (apply refuses the position) */
      assert_int_equal(rotary_apply(NULL, rope, &a), ROTARY_OK);
      assert_memory_equal(cache, ref, elems * 2);
    }
  }
  free(cache), free(ref);
  rotary_rope_destroy(rope);
}

/* A few bad inputs: each returns its status and writes nothing. */
static void test_bad_inputs(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 64, &rope), ROTARY_OK);
  static uint16_t qkv[TOK * ROW], combined[NB * 2 * BS * KVH * HD];
  uint16_t before[TOK * ROW];
  for (size_t i = 0; i < TOK * ROW; i++) qkv[i] = (uint16_t)(0x3f80 + (i & 0x3f));
  memcpy(before, qkv, sizeof qkv);
  int64_t slots[TOK] = {0, 1, 2, 3, 4, 5};
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = BATCH;
  d.seq_len = SEQ;
  assert_int_equal(rotary_kv_write_desc_set_qkv(&d, qkv, NULL, ROTARY_BF16, QH, KVH, HD, 0), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_SLOTS;
  d.cache.layout = ROTARY_CACHE_HND;
  d.cache.dtype = ROTARY_BF16;
  d.cache.k = combined; /* combined [NB, 2, BS, KVH, HD]: v half a block later */
  d.cache.v = combined + BS * KVH * HD;
  d.cache.num_blocks = NB;
  d.cache.block_size = BS;
  d.cache.block_stride = 2 * BS * KVH * HD;
  d.cache.slot_mapping = slots;
  rotary_kv_write_desc bad = d;
  slots[4] = 1; /* two tokens on slot 1 */
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_CACHE_INDEX);
  slots[4] = NB * BS; /* outside the cache */
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_CACHE_INDEX);
  slots[4] = 4;
  bad.cache.v = combined + 1; /* blocks of k and v overlap */
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_OVERLAP);
  bad = d;
  bad.cache.dtype = ROTARY_FP8_E4M3;
  bad.cache.k_scale = 1.0f;
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_SCALE);
  bad = d;
  bad.cache.k = qkv; /* the cache overlaps the input */
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_OVERLAP);
  bad = d;
  bad.positions.mode = ROTARY_POSITIONS_IDS_I64; /* ids (all 0) read from inside the cache: flat vs flat */
  bad.positions.ids = combined + 64;
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_OVERLAP);
  bad = d;
  bad.k.dtype = ROTARY_FP8_E4M3;
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_DTYPE);
  bad = d;
  bad.v.n_heads = 1;
  assert_int_equal(rotary_kv_write(NULL, rope, &bad), ROTARY_ERR_INVALID_ARGUMENT);
  for (size_t i = 0; i < sizeof combined / 2; i++) assert_int_equal(combined[i], 0);
  assert_memory_equal(qkv, before, sizeof qkv);
  assert_int_equal(rotary_kv_write(NULL, rope, &d), ROTARY_OK); /* interleaved blocks are disjoint */
  rotary_rope_destroy(rope);
}

/* One call split over several threads and tasks (units cut inside tokens) gives the bits of the one-thread call;
 * q goes to a separate output, the cache is HND paged through a page table, k and v through f32 into fp8 and
 * directly into bf16. */
static void run_big(rotary_context *ctx, const rotary_rope *rope, rotary_dtype c_dt, const uint16_t *qkv,
                    uint16_t *q_out, unsigned char *kc, unsigned char *vc) {
  enum { B = 2, S = 100, NBIG = 16, BSZ = 16 };
  static const int32_t indptr[B + 1] = {0, 7, 14}, pages[14] = {3, 1, 4, 15, 9, 2, 6, 5, 0, 8, 7, 10, 11, 12};
  static const int32_t last[B] = {10, 16};
  int64_t offsets[B] = {2, 12};
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = B;
  d.seq_len = S;
  d.positions.mode = ROTARY_POSITIONS_OFFSETS;
  d.positions.offsets = offsets;
  assert_int_equal(rotary_kv_write_desc_set_qkv(&d, qkv, q_out, ROTARY_BF16, QH, KVH, HD, ROW + 8), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_PAGES;
  d.cache.layout = ROTARY_CACHE_HND;
  d.cache.dtype = c_dt;
  d.cache.k = kc;
  d.cache.v = vc;
  d.cache.num_blocks = NBIG;
  d.cache.block_size = BSZ;
  d.cache.page_indptr = indptr;
  d.cache.page_indices = pages;
  d.cache.last_page_len = last;
  d.cache.k_scale = 0.25f;
  d.cache.v_scale = 0.125f;
  assert_int_equal(rotary_kv_write(ctx, rope, &d), ROTARY_OK);
}

static void test_threads_identical(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  rotary_rope *rope, *table;
  assert_int_equal(rotary_rope_create(&cfg, 0, &rope), ROTARY_OK); /* table-free: rows computed, in blocks */
  assert_int_equal(rotary_rope_create(&cfg, 128, &table), ROTARY_OK); /* positions 2 .. 111 */
  const size_t tokens = 200, qkv_elems = tokens * (ROW + 8), q_elems = tokens * QH * HD;
  const size_t cache_bytes = 16 * 16 * KVH * HD * 2;
  uint16_t *qkv = malloc(qkv_elems * 2), *q1 = calloc(q_elems, 2), *q2 = calloc(q_elems, 2);
  unsigned char *k1 = calloc(cache_bytes, 1), *v1 = calloc(cache_bytes, 1);
  unsigned char *k2 = calloc(cache_bytes, 1), *v2 = calloc(cache_bytes, 1);
  tu_rng rng;
  tu_rng_seed(&rng, 3);
  for (size_t i = 0; i < qkv_elems; i++) qkv[i] = tu_f32_to_bf16(tu_rng_f32(&rng, -8.0f, 8.0f));
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(3, &ctx), ROTARY_OK);
  const rotary_dtype dts[2] = {ROTARY_BF16, ROTARY_FP8_E4M3};
  for (int i = 0; i < 2; i++) {
    run_big(NULL, rope, dts[i], qkv, q1, k1, v1);
    run_big(ctx, rope, dts[i], qkv, q2, k2, v2);
    assert_memory_equal(q1, q2, q_elems * 2);
    assert_memory_equal(k1, k2, cache_bytes);
    assert_memory_equal(v1, v2, cache_bytes);
    /* a table rope holds the same rows (one rows kernel): the same bytes, whatever blocks the rows came in */
    run_big(NULL, table, dts[i], qkv, q2, k2, v2);
    assert_memory_equal(q1, q2, q_elems * 2);
    assert_memory_equal(k1, k2, cache_bytes);
    assert_memory_equal(v1, v2, cache_bytes);
    size_t nonzero = 0;
    for (size_t j = 0; j < cache_bytes; j++) nonzero += k1[j] != 0;
    assert_true(nonzero > cache_bytes / 4); /* the calls did write */
  }
  rotary_context_destroy(ctx);
  free(qkv), free(q1), free(q2), free(k1), free(v1), free(k2), free(v2);
  rotary_rope_destroy(rope);
  rotary_rope_destroy(table);
}

/* Rotating by d1 then d2 agrees with d1 + d2 within 3 (u + 5 * 2^-24) r + 3 a per element (docs/kv_cache.md: r the
 * pair's norm, u the cache dtype's unit roundoff, a half its smallest subnormal step), and a row turned by d then
 * -d comes back within the same bound. */
static double pair_value(rotary_dtype dt, const void *p, size_t i, float scale) {
  return dt == ROTARY_FP8_E4M3 ? (double)kvo_fp8_decode(((const unsigned char *)p)[i], scale)
                               : (double)tu_load(dt, p, (ptrdiff_t)i);
}

static void rerotate(const rotary_rope *rope, rotary_dtype dt, void *cache, int64_t delta, float scale) {
  rotary_kv_rerotate_desc r;
  rotary_kv_rerotate_desc_init(&r);
  r.cache.layout = ROTARY_CACHE_HND;
  r.cache.dtype = dt;
  r.cache.k = cache;
  r.cache.num_blocks = NB;
  r.cache.block_size = BS;
  r.cache.k_scale = scale;
  r.kv_heads = KVH;
  r.first_slot = 0;
  r.n_slots = NB * BS;
  r.delta = delta;
  assert_int_equal(rotary_kv_rerotate(NULL, rope, &r), ROTARY_OK);
}

static void test_rerotate_composition(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  cfg.attention_scaling = 0.75; /* rows computed without it: never the table's */
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 64, &rope), ROTARY_OK);
  const size_t elems = NB * BS * KVH * HD;
  unsigned char *a = malloc(elems * 4), *b = malloc(elems * 4), *orig = malloc(elems * 4);
  const rotary_dtype dts[4] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16, ROTARY_FP8_E4M3};
  const double units[4] = {0x1p-24, 0x1p-11, 0x1p-8, 0x1p-4}, halfsub[4] = {0x1p-150, 0x1p-25, 0x1p-134, 0x1p-10};
  const char *names[4] = {"f32", "f16", "bf16", "fp8"};
  const int64_t pairs[3][2] = {{30, 50}, {-20, 7}, {1000000007, -3}};
  tu_rng rng;
  tu_rng_seed(&rng, 9);
  for (int k = 0; k < 4; k++) {
    const rotary_dtype dt = dts[k];
    const float scale = dt == ROTARY_FP8_E4M3 ? 0.0625f : 1.0f;
    const size_t ce = kvo_dtype_size(dt);
    for (size_t i = 0; i < elems; i++) {
      const float v = tu_rng_f32(&rng, -10.0f, 10.0f);
      if (dt == ROTARY_FP8_E4M3) orig[i] = kvo_fp8_encode(v, scale);
      else tu_store(dt, orig, (ptrdiff_t)i, v);
    }
    for (int p = 0; p < 3; p++) {
      memcpy(a, orig, elems * ce);
      memcpy(b, orig, elems * ce);
      rerotate(rope, dt, a, pairs[p][0], scale);
      rerotate(rope, dt, a, pairs[p][1], scale);
      rerotate(rope, dt, b, pairs[p][0] + pairs[p][1], scale);
      double worst = 0;
      for (size_t row = 0; row < elems; row += HD)
        for (size_t i = 0; i < HD / 2; i++) {
          const double x0 = pair_value(dt, orig, row + i, scale), x1 = pair_value(dt, orig, row + i + HD / 2, scale);
          const double r = sqrt(x0 * x0 + x1 * x1);
          const double bound = 3.0 * (units[k] + 5 * 0x1p-24) * r + 3.0 * halfsub[k] * scale;
          for (size_t e = 0; e < 2; e++) {
            const size_t at = row + i + e * HD / 2;
            const double d = fabs(pair_value(dt, a, at, scale) - pair_value(dt, b, at, scale));
            assert_true(d <= bound);
            if (d / bound > worst) worst = d / bound;
          }
        }
      print_message("%s d1 %lld d2 %lld: worst difference %.3f of the bound\n", names[k],
                    (long long)pairs[p][0], (long long)pairs[p][1], worst);
    }
  }
  free(a), free(b), free(orig);
  rotary_rope_destroy(rope);
}

/* head_dim 2048: the cos/sin row and the f32 head row live in the per-call scratch, not on the stack. */
static void test_long_heads(void **state) {
  (void)state;
  enum { LHD = 2048, LTOK = 3 };
  rotary_config cfg;
  rotary_config_init(&cfg, LHD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 0, &rope), ROTARY_OK);
  uint16_t *k = malloc(LTOK * LHD * 2), *v = malloc(LTOK * LHD * 2);
  float *k32 = malloc(LTOK * LHD * 4);
  unsigned char *kc = calloc(8 * LHD, 1), *vc = calloc(8 * LHD, 1);
  tu_rng rng;
  tu_rng_seed(&rng, 17);
  for (size_t i = 0; i < LTOK * LHD; i++) {
    k[i] = tu_f32_to_f16(tu_rng_f32(&rng, -3.0f, 3.0f));
    v[i] = tu_f32_to_f16(tu_rng_f32(&rng, -3.0f, 3.0f));
    k32[i] = tu_f16_to_f32(k[i]);
  }
  rotary_apply_desc a;
  rotary_apply_desc_init(&a);
  a.seq_len = LTOK;
  a.positions.offset = 5;
  assert_int_equal(rotary_tensor_init(&a.q, ROTARY_LAYOUT_BSHD, k32, k32, ROTARY_F32, LTOK, 1, LHD), ROTARY_OK);
  assert_int_equal(rotary_apply(NULL, rope, &a), ROTARY_OK);
  const int64_t lengths[1] = {2};
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.seq_len = LTOK;
  d.positions.offset = 5;
  assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, k, NULL, ROTARY_F16, LTOK, 1, LHD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.v, ROTARY_LAYOUT_BSHD, v, NULL, ROTARY_F16, LTOK, 1, LHD), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_SEQUENCES;
  d.cache.dtype = ROTARY_FP8_E4M3;
  d.cache.k = kc;
  d.cache.v = vc;
  d.cache.num_blocks = 1;
  d.cache.block_size = 8;
  d.cache.lengths = lengths;
  d.cache.k_scale = d.cache.v_scale = 0.5f;
  assert_int_equal(rotary_kv_write(NULL, rope, &d), ROTARY_OK);
  for (size_t t = 0; t < LTOK; t++)
    for (size_t e = 0; e < LHD; e++) {
      assert_int_equal(kc[(2 + t) * LHD + e], kvo_fp8_encode(k32[t * LHD + e], 0.5f));
      assert_int_equal(vc[(2 + t) * LHD + e], kvo_fp8_encode(tu_f16_to_f32(v[t * LHD + e]), 0.5f));
    }
  for (size_t e = 0; e < 2 * LHD; e++) assert_int_equal(kc[e], 0);
  rotary_kv_rerotate_desc r;
  rotary_kv_rerotate_desc_init(&r);
  r.cache = d.cache;
  r.kv_heads = 1;
  r.n_slots = 1;
  for (size_t t = 0; t < LTOK; t++) { /* back to position 0: the f16 keys within two fp8 roundings */
    r.first_slot = 2 + t;
    r.delta = -(int64_t)(5 + t);
    assert_int_equal(rotary_kv_rerotate(NULL, rope, &r), ROTARY_OK);
  }
  for (size_t t = 0; t < LTOK; t++)
    for (size_t e = 0; e < LHD; e++) {
      const double x = tu_f16_to_f32(k[t * LHD + e]), y = kvo_fp8_decode(kc[(2 + t) * LHD + e], 0.5f);
      assert_true(fabs(x - y) <= 2.0 * 0x1p-4 * 3.0 * sqrt(2.0) + 0.01); /* 2 fp8 roundings, pair norm <= 3 sqrt 2 */
    }
  free(k), free(v), free(k32), free(kc), free(vc);
  rotary_rope_destroy(rope);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_all_dtypes),
      cmocka_unit_test(test_rerotate_matches_apply),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_threads_identical),
      cmocka_unit_test(test_rerotate_composition),
      cmocka_unit_test(test_long_heads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
