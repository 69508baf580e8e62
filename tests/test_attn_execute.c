/* test_attn_execute.c: the decode-attention plan (chunks from the shape alone, items, key blocks at page ends) and
 * a small end-to-end smoke of rotary_attention against a naive double-precision loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_plan.h"
#include "attn_validate.h"
#include "kv_oracle.h"
#include "rotary.h"
#include "test_util.h"
#include "tuning.h"

/* ---- plan tests on hand-made views (no cache memory needed: the plan reads only the shape) */

typedef struct shape {
  rotary_attention_desc d;
  rotary_attn_view v;
  rotary_rope *rope;
} shape;

static void shape_init(shape *s, size_t batch, size_t tokens, size_t q_heads, size_t kv_heads, size_t hd,
                       size_t block_size, const size_t *lens, size_t window, rotary_attention_rope mode) {
  memset(s, 0, sizeof *s);
  rotary_config cfg;
  rotary_config_init(&cfg, hd);
  assert_int_equal(rotary_rope_create(&cfg, 0, &s->rope), ROTARY_OK);
  rotary_attention_desc_init(&s->d);
  s->d.batch = batch;
  s->d.tokens = tokens;
  s->d.q_heads = q_heads;
  s->d.kv_heads = kv_heads;
  s->d.window = window;
  s->d.rope_mode = mode;
  s->d.cache.dtype = ROTARY_BF16;
  s->d.cache.block_size = block_size;
  s->v.d = &s->d;
  s->v.head_dim = hd;
  s->v.rotary_dim = hd;
  s->v.group = q_heads / kv_heads;
  s->v.geom.elem = 2;
  s->v.geom.block_size = block_size;
  s->v.geom.kv_heads = kv_heads;
  s->v.geom.head_dim = hd;
  s->v.len = malloc(batch * sizeof(size_t));
  assert_non_null(s->v.len);
  for (size_t b = 0; b < batch; b++) {
    s->v.len[b] = lens[b % 4];
    if (s->v.len[b] > s->v.max_len) s->v.max_len = s->v.len[b];
  }
}

static void shape_free(shape *s) {
  free(s->v.len);
  rotary_rope_destroy(s->rope);
}

static void plan_for(const shape *s, size_t threads, rotary_attn_plan *p) {
  rotary_attn_plan_build(p, s->rope, &s->v, rotary_context_tuning(NULL), threads);
}

/* Everything that decides a result (chunk, items, key block, rows) is the same for every thread count. */
static void test_chunking_ignores_threads(void **state) {
  (void)state;
  const size_t lens[4] = {1, 700, 4096, 513};
  shape s;
  shape_init(&s, 8, 2, 32, 8, 128, 16, lens, 0, ROTARY_ATTENTION_ROPE_QK);
  rotary_attn_plan one, many;
  plan_for(&s, 1, &one);
  assert_int_equal(one.threads, 1);
  for (size_t threads = 2; threads <= 64; threads *= 2) {
    plan_for(&s, threads, &many);
    assert_int_equal(many.chunk, one.chunk);
    assert_int_equal(many.items, one.items);
    assert_int_equal(many.per_task, one.per_task);
    assert_int_equal(many.key_block, one.key_block);
    assert_int_equal(many.rows, one.rows);
    assert_int_equal(many.partial_floats, one.partial_floats);
    assert_true(many.threads >= 1 && many.threads <= threads);
  }
  shape_free(&s);
}

/* Items: the chunks of every sequence (each with every kv head); a window leaves out the chunks no query sees;
 * short calls take smaller chunks (not below ROTARY_ATTN_MIN_CHUNK) so that threads have items to share. */
static void test_item_counts(void **state) {
  (void)state;
  const size_t lens[4] = {1, 512, 513, 2000};
  shape s;
  shape_init(&s, 8, 1, 8, 2, 64, 2048, lens, 0, ROTARY_ATTENTION_ROPE_NONE);
  rotary_attn_plan p;
  plan_for(&s, 1, &p);
  assert_int_equal(p.chunk, ROTARY_ATTN_CHUNK);
  assert_int_equal(p.rows, 4);
  assert_int_equal(p.items, 2 * (1 + 1 + 2 + 4));
  assert_int_equal(p.tasks, p.items);
  shape_free(&s);
  /* 4 sequences: 8 items at 512 rows, 14 at 256, 24 at 128 */
  shape_init(&s, 4, 1, 8, 2, 64, 2048, lens, 0, ROTARY_ATTENTION_ROPE_NONE);
  plan_for(&s, 1, &p);
  assert_int_equal(p.chunk, 128);
  assert_int_equal(p.items, 1 + 4 + 5 + 16);
  shape_free(&s);
  /* one short sequence: one item whatever the chunk */
  const size_t one[4] = {100, 100, 100, 100};
  shape_init(&s, 1, 1, 8, 2, 64, 2048, one, 0, ROTARY_ATTENTION_ROPE_NONE);
  plan_for(&s, 1, &p);
  assert_int_equal(p.chunk, ROTARY_ATTN_MIN_CHUNK);
  assert_int_equal(p.items, 1);
  shape_free(&s);
  /* window 100 over 2000 rows, 3 tokens: token 0 (row 1997) sees rows 1898 .., token 2 .. 1999: chunks 14, 15 */
  const size_t wlens[4] = {3, 512, 513, 2000};
  shape_init(&s, 4, 3, 8, 2, 64, 2048, wlens, 100, ROTARY_ATTENTION_ROPE_NONE);
  plan_for(&s, 1, &p);
  assert_int_equal(p.chunk, 128); /* 1 + 1 + 2 + 2 items at 128 rows: as small as allowed */
  assert_int_equal(p.items, 6);
  void *scratch = aligned_alloc(64, (rotary_attn_plan_scratch_bytes(&p) + 63) / 64 * 64);
  assert_non_null(scratch);
  rotary_attn_plan_bind(&p, scratch);
  size_t first, count, lo, hi;
  rotary_attn_plan_chunks(&p, 3, &first, &count);
  assert_int_equal(first, 14);
  assert_int_equal(count, 2);
  rotary_attn_plan_chunk_rows(&p, 3, 14, &lo, &hi);
  assert_int_equal(lo, 1898);
  assert_int_equal(hi, 1920);
  rotary_attn_plan_chunk_rows(&p, 3, 15, &lo, &hi);
  assert_int_equal(lo, 1920);
  assert_int_equal(hi, 2000);
  /* every item maps back to its sequence and chunk, in order */
  size_t i = 0;
  for (size_t b = 0; b < 4; b++) {
    rotary_attn_plan_chunks(&p, b, &first, &count);
    for (size_t c = 0; c < count; c++, i++) {
      size_t bb, cc;
      rotary_attn_plan_item(&p, i, &bb, &cc);
      assert_int_equal(bb, b);
      assert_int_equal(cc, first + c);
    }
  }
  assert_int_equal(i, p.items);
  free(scratch);
  shape_free(&s);
}

/* The chunk grows (powers of two times 512) when the items would pass the task or partial-result bounds. */
static void test_chunk_growth(void **state) {
  (void)state;
  const size_t lens[4] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
  shape s;
  shape_init(&s, 64, 16, 64, 8, 128, 1u << 20, lens, 0, ROTARY_ATTENTION_ROPE_NONE);
  rotary_attn_plan p;
  plan_for(&s, 2, &p);
  assert_true(p.chunk > ROTARY_ATTN_CHUNK);
  assert_int_equal(p.chunk % ROTARY_ATTN_CHUNK, 0);
  assert_int_equal(p.chunk & (p.chunk - 1), 0);
  assert_true(p.items <= ROTARY_ATTN_MAX_TASKS);
  assert_true(p.items * 8 * p.partial_floats * sizeof(float) <= ROTARY_ATTN_MAX_PARTIAL_BYTES);
  /* half the chunk would break a bound */
  const size_t half_items = 64 * ((1u << 20) / (p.chunk / 2));
  assert_true(half_items > ROTARY_ATTN_MAX_TASKS ||
              half_items * 8 * p.partial_floats * sizeof(float) > ROTARY_ATTN_MAX_PARTIAL_BYTES);
  shape_free(&s);
  /* more sequences than tasks: one chunk each, several items per task */
  const size_t short_lens[4] = {3, 3, 3, 3};
  shape_init(&s, 80000, 1, 4, 2, 64, 16, short_lens, 0, ROTARY_ATTENTION_ROPE_NONE);
  plan_for(&s, 1, &p);
  assert_int_equal(p.items, 80000);
  assert_int_equal(p.per_task, 2);
  assert_int_equal(p.tasks, 40000);
  shape_free(&s);
}

/* Key blocks: at most key_block rows, never across a cache block; with rotated keys (QK) bounded by the fp32 key
 * buffer (every kv head's keys of the block). */
static void test_key_blocks(void **state) {
  (void)state;
  const size_t bss[] = {1, 7, 16, 64, 100, 4096};
  for (size_t k = 0; k < sizeof bss / sizeof *bss; k++) {
    const size_t lens[4] = {1500, 1500, 1500, 1500};
    shape s;
    shape_init(&s, 1, 1, 4, 1, 128, bss[k], lens, 0, ROTARY_ATTENTION_ROPE_NONE);
    rotary_attn_plan p;
    plan_for(&s, 1, &p);
    assert_int_equal(p.key_block, ROTARY_ATTN_KEY_BLOCK_FEW); /* 4 query rows per kv head: few */
    size_t covered = 0;
    for (size_t c = 0; c * p.chunk < 1500; c++) {
      size_t pb, end;
      rotary_attn_plan_chunk_rows(&p, 0, c, &pb, &end);
      assert_int_equal(pb, covered);
      while (pb < end) {
        const size_t pe = rotary_attn_plan_block_end(&p, pb, end);
        assert_true(pe > pb && pe - pb <= p.key_block);
        assert_int_equal((pe - 1) / bss[k], pb / bss[k]); /* one cache block */
        /* a block ends at the key block length, the chunk's end or the cache block's end */
        assert_true(pe - pb == p.key_block || pe == end || pe % bss[k] == 0);
        pb = pe;
      }
      covered = end;
    }
    assert_int_equal(covered, 1500);
    shape_free(&s);
  }
  const size_t lens[4] = {10, 10, 10, 10};
  shape s;
  shape_init(&s, 1, 1, 8, 4, 1024, 16, lens, 0, ROTARY_ATTENTION_ROPE_QK);
  rotary_attn_plan p;
  plan_for(&s, 1, &p);
  /* QK through the rotating scores kernel (every ISA with attention kernels has both pairings); the lane holds the
   * block's computed cos/sin rows (a table-free rope) */
  assert_true(p.rotate_in_scores);
  assert_int_equal(p.key_block, rotary_attn_key_block_len(p.rows));
  assert_int_equal(p.cs_floats, 2 * s.rope->sin_offset);
  assert_true(p.lane_floats - p.cs_at >= p.key_block * p.cs_floats);
  shape_free(&s);
  /* interleaved pairs: the rotating kernel too, with B and D rows arranged in the lane (rotary_dim each) */
  shape_init(&s, 1, 1, 8, 4, 1024, 16, lens, 0, ROTARY_ATTENTION_ROPE_QK);
  rotary_rope_destroy(s.rope);
  {
    rotary_config cfg;
    rotary_config_init(&cfg, 1024);
    cfg.pairing = ROTARY_PAIRING_INTERLEAVED;
    assert_int_equal(rotary_rope_create(&cfg, 0, &s.rope), ROTARY_OK);
  }
  plan_for(&s, 1, &p);
  assert_true(p.rotate_in_scores);
  assert_int_equal(p.cs_second, 1024);
  assert_int_equal(p.cs_floats, 2048);
  assert_true(p.lane_floats - p.cs_at >= p.key_block * p.cs_floats);
  shape_free(&s);
  /* NHD and HND rows are read in place: the lane holds only the logits (mode NONE) */
  for (int layout = 0; layout < 2; layout++) {
    shape_init(&s, 1, 1, 8, 8, 2048, 64, lens, 0, ROTARY_ATTENTION_ROPE_NONE);
    s.d.cache.layout = layout ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
    plan_for(&s, 1, &p);
    assert_int_equal(p.key_block, rotary_attn_key_block_len(p.rows));
    assert_int_equal(p.lane_floats, ROTARY_ATTN_ROW_BLOCK * p.key_block);
    shape_free(&s);
  }
  /* the block length by query rows per kv head: 8 or fewer (a decode token's group) half as long as more */
  const size_t tokens[3] = {1, 2, 4};
  for (int i = 0; i < 3; i++) {
    shape_init(&s, 1, tokens[i], 8, 2, 128, 64, lens, 0, ROTARY_ATTENTION_ROPE_NONE); /* 4 q heads per kv head */
    plan_for(&s, 1, &p);
    assert_int_equal(p.rows, 4 * tokens[i]);
    assert_int_equal(p.key_block, p.rows <= 8 ? 32 : 64);
    shape_free(&s);
  }
}

/* ---- the prefetch cursors: the key blocks in walk order, and each block's rows covered once by the heads ---- */

/* A validated call over a real cache (the plan reads its index and addresses): batch sequences of lens[b] rows,
 * 4 kv heads of 64 bf16, contiguous (capacity 256) or paged (block 16, blocks in reverse order). */
typedef struct real_call {
  rotary_attention_desc d;
  rotary_attn_view v;
  rotary_rope *rope;
  uint16_t *k, *vc, *q, *out;
  int64_t lens64[3];
  int32_t table[3 * 16];
} real_call;

static void real_call_init(real_call *c, int paged, rotary_cache_layout layout, const size_t *lens) {
  memset(c, 0, sizeof *c);
  rotary_config cfg;
  rotary_config_init(&cfg, 64);
  assert_int_equal(rotary_rope_create(&cfg, 256, &c->rope), ROTARY_OK);
  const size_t blocks = paged ? 3 * 16 : 3, block = paged ? 16 : 256, elems = blocks * block * 4 * 64;
  c->k = aligned_alloc(64, elems * 2); /* line-aligned, so that k's and v's cursors line up */
  c->vc = aligned_alloc(64, elems * 2);
  assert_true(c->k && c->vc);
  memset(c->k, 0, elems * 2);
  memset(c->vc, 0, elems * 2);
  c->q = calloc(3 * 8 * 64, 2);
  c->out = calloc(3 * 8 * 64, 2);
  assert_true(c->q && c->out);
  rotary_attention_desc_init(&c->d);
  c->d.batch = 3;
  c->d.q_heads = 8;
  c->d.kv_heads = 4;
  c->d.q = c->q;
  c->d.q_dtype = ROTARY_BF16;
  c->d.out = c->out;
  c->d.out_dtype = ROTARY_BF16;
  c->d.cache.layout = layout;
  c->d.cache.dtype = ROTARY_BF16;
  c->d.cache.k = c->k;
  c->d.cache.v = c->vc;
  c->d.cache.num_blocks = blocks;
  c->d.cache.block_size = block;
  for (size_t b = 0; b < 3; b++) c->lens64[b] = (int64_t)lens[b];
  c->d.cache.lengths = c->lens64;
  if (paged) {
    c->d.cache.index = ROTARY_CACHE_SLOTS;
    for (size_t i = 0; i < 3 * 16; i++) c->table[i] = (int32_t)(3 * 16 - 1 - i);
    c->d.block_table = c->table;
    c->d.block_table_stride = 16;
  } else {
    c->d.cache.index = ROTARY_CACHE_SEQUENCES;
  }
  assert_int_equal(rotary_validate_attention(c->rope, &c->d, &c->v), ROTARY_OK);
}

static void real_call_free(real_call *c) {
  rotary_attn_view_release(&c->v);
  rotary_rope_destroy(c->rope);
  free(c->k);
  free(c->vc);
  free(c->q);
  free(c->out);
}

static void test_prefetch_cursors(void **state) {
  (void)state;
  const size_t lens[3] = {200, 1, 130};
  for (int paged = 0; paged < 2; paged++)
    for (int layout = 0; layout < 2; layout++) {
      real_call c;
      real_call_init(&c, paged, layout ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD, lens);
      const rotary_cache_geom *g = &c.v.geom;
      rotary_attn_plan p;
      rotary_attn_plan_build(&p, c.rope, &c.v, rotary_context_tuning(NULL), 1);
      void *scratch = aligned_alloc(64, (rotary_attn_plan_scratch_bytes(&p) + 63) / 64 * 64);
      assert_non_null(scratch);
      rotary_attn_plan_bind(&p, scratch); /* the items' table */
      /* every key block of the walk, item by item (one task runs them all) */
      rotary_attn_key_block walk[64];
      size_t nw = 0, item_of[64], end_of[64];
      for (size_t i = 0; i < p.items; i++) {
        size_t b, ch, pb, end;
        rotary_attn_plan_item(&p, i, &b, &ch);
        rotary_attn_plan_chunk_rows(&p, b, ch, &pb, &end);
        for (size_t pe; pb < end; pb = pe) {
          pe = rotary_attn_plan_block_end(&p, pb, end);
          assert_true(nw < 64);
          walk[nw] = (rotary_attn_key_block){b, pb, pe};
          item_of[nw] = i;
          end_of[nw++] = end;
        }
      }
      assert_true(nw >= 5);
      for (size_t w = 0; w < nw; w++) {
        const rotary_attn_key_block nb =
            rotary_attn_plan_block_after(&p, item_of[w], walk[w].b, walk[w].pe, end_of[w], p.items);
        if (w + 1 == nw) { /* the task's last block: nothing after it */
          assert_true(nb.pe == nb.pb);
          rotary_attn_prefetch k, v;
          rotary_attn_plan_prefetch(&p, nb, 0, 8, &k, &v);
          assert_true(k.at == k.end && v.at == v.end);
          continue;
        }
        assert_int_equal(nb.b, walk[w + 1].b);
        assert_int_equal(nb.pb, walk[w + 1].pb);
        assert_int_equal(nb.pe, walk[w + 1].pe);
        /* the heads' k cursors together cover the next block's k rows (NHD: one run of rows; HND: each head's) */
        const size_t n = nb.pe - nb.pb, keys = walk[w].pe - walk[w].pb, row = 64 * 2;
        const size_t slot = rotary_attn_slot(&c.v, nb.b, nb.pb);
        uintptr_t covered = 0; /* NHD: the end of the heads' run so far */
        for (size_t h = 0; h < 4; h++) {
          rotary_attn_prefetch k, v;
          rotary_attn_plan_prefetch(&p, nb, h, keys, &k, &v);
          const uintptr_t off = (uintptr_t)rotary_cache_offset(g, slot, layout ? h : 0) * 2;
          const uintptr_t first = (uintptr_t)c.k + off, last = first + (layout ? n : n * 4) * row;
          /* v's cursor is k's, moved to the value cache */
          assert_int_equal(v.at - (uintptr_t)c.vc, k.at - (uintptr_t)c.k);
          assert_int_equal(v.end - (uintptr_t)c.vc, k.end - (uintptr_t)c.k);
          assert_int_equal(v.per_key, k.per_key);
          assert_int_equal(k.at % 64, 0);
          assert_true(k.per_key * keys * 64 >= k.end - k.at); /* the block's keys ask for all of it */
          if (layout) { /* HND: the head's own rows, exactly */
            assert_int_equal(k.at, first & ~(uintptr_t)63);
            assert_int_equal(k.end, last);
            continue;
          }
          if (h == 0) assert_int_equal(k.at, first & ~(uintptr_t)63);
          else assert_true(k.at <= covered && covered - k.at < 64); /* no gap, no line asked twice over */
          assert_true(k.end > k.at);
          covered = k.end;
          if (h == 3) assert_int_equal(covered, last);
        }
      }
      free(scratch);
      real_call_free(&c);
    }
}

/* ---- end-to-end smoke against a naive fp64 loop */

enum { HD = 64, QH = 4, KVH = 2, GROUP = QH / KVH, BS = 16, MAXT = 3 };

typedef struct smoke {
  rotary_rope *rope;
  rotary_cache_index index;
  rotary_cache_layout layout;
  rotary_dtype cache_dt;
  size_t batch, tokens, lens[3];
  size_t num_blocks, bt_stride;
  int32_t block_table[3 * 64];
  int32_t indptr[4], indices[3 * 64], last[3];
  int64_t lengths[3];
  void *k, *v;
  float q[3 * MAXT * QH * HD];
  float ks, vs;
} smoke;

static size_t smoke_block(const smoke *s, size_t b, size_t p) {
  switch (s->index) {
    case ROTARY_CACHE_SEQUENCES: return b;
    case ROTARY_CACHE_SLOTS: return (size_t)s->block_table[b * s->bt_stride + p / BS];
    case ROTARY_CACHE_PAGES: return (size_t)s->indices[s->indptr[b] + (int32_t)(p / BS)];
  }
  return 0;
}

static size_t smoke_bs(const smoke *s) { return s->index == ROTARY_CACHE_SEQUENCES ? 1024 : BS; }

/* Element index of (block, row, head, d) in a cache. */
static size_t smoke_elem(const smoke *s, size_t block, size_t row, size_t h, size_t d) {
  const size_t bs = smoke_bs(s);
  const size_t in_block = s->layout == ROTARY_CACHE_NHD ? (row * KVH + h) * HD + d : (h * bs + row) * HD + d;
  return block * bs * KVH * HD + in_block;
}

static double cache_value(const smoke *s, const void *base, float scale, size_t b, size_t p, size_t h, size_t d) {
  const size_t e = smoke_elem(s, smoke_block(s, b, p), p % smoke_bs(s), h, d);
  if (s->cache_dt == ROTARY_FP8_E4M3) return kvo_fp8_decode(((const uint8_t *)base)[e], scale);
  return tu_load(s->cache_dt, base, (ptrdiff_t)e);
}

static void rotate_ref(const rotary_rope *rope, size_t pos, double *x) {
  float c[HD / 2], sn[HD / 2];
  const int64_t p = (int64_t)pos;
  assert_int_equal(rotary_rope_cos_sin(rope, &p, 1, c, sn), ROTARY_OK);
  for (size_t i = 0; i < HD / 2; i++) {
    const double a = x[i], b = x[i + HD / 2];
    x[i] = a * c[i] - b * sn[i];
    x[i + HD / 2] = a * sn[i] + b * c[i];
  }
}

/* out and lse of one query row in fp64. */
static void reference_row(const smoke *s, rotary_attention_rope mode, size_t window, double softcap, size_t b,
                          size_t t, size_t qh, double *out, double *lse) {
  const size_t L = s->lens[b], i = L - s->tokens + t, h = qh / GROUP;
  double q[HD];
  for (size_t d = 0; d < HD; d++) q[d] = s->q[((b * s->tokens + t) * QH + qh) * HD + d];
  if (mode != ROTARY_ATTENTION_ROPE_NONE) rotate_ref(s->rope, i, q);
  const size_t first = window && i + 1 > window ? i + 1 - window : 0;
  double *logit = malloc((i + 1) * sizeof(double)), big = -INFINITY;
  for (size_t p = first; p <= i; p++) {
    double k[HD], dot = 0.0;
    for (size_t d = 0; d < HD; d++) k[d] = cache_value(s, s->k, s->ks, b, p, h, d);
    if (mode == ROTARY_ATTENTION_ROPE_QK) rotate_ref(s->rope, p, k);
    for (size_t d = 0; d < HD; d++) dot += q[d] * k[d];
    dot /= sqrt((double)HD);
    if (softcap > 0) dot = softcap * tanh(dot / softcap);
    logit[p] = dot;
    if (dot > big) big = dot;
  }
  double sum = 0.0;
  for (size_t d = 0; d < HD; d++) out[d] = 0.0;
  for (size_t p = first; p <= i; p++) {
    const double w = exp(logit[p] - big);
    sum += w;
    for (size_t d = 0; d < HD; d++) out[d] += w * cache_value(s, s->v, s->vs, b, p, h, d);
  }
  for (size_t d = 0; d < HD; d++) out[d] /= sum;
  *lse = big + log(sum);
  free(logit);
}

static void smoke_setup(smoke *s, rotary_cache_index index, rotary_cache_layout layout, rotary_dtype dt,
                        size_t tokens, tu_rng *rng) {
  memset(s, 0, sizeof *s);
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  assert_int_equal(rotary_rope_create(&cfg, 2048, &s->rope), ROTARY_OK);
  s->index = index;
  s->layout = layout;
  s->cache_dt = dt;
  s->batch = 3;
  s->tokens = tokens;
  s->lens[0] = 5;
  s->lens[1] = 700;
  s->lens[2] = 40;
  s->ks = dt == ROTARY_FP8_E4M3 ? 0.02f : 1.0f;
  s->vs = dt == ROTARY_FP8_E4M3 ? 0.03f : 1.0f;
  const size_t bs = smoke_bs(s);
  s->num_blocks = index == ROTARY_CACHE_SEQUENCES ? 3 : 80;
  s->bt_stride = 50;
  /* blocks handed out in a scrambled order (and pages of sequence 2 shared with sequence 1's prefix) */
  size_t next = 0;
  for (size_t b = 0; b < 3; b++) {
    const size_t used = (s->lens[b] + bs - 1) / bs;
    s->indptr[b] = (int32_t)next;
    for (size_t j = 0; j < used; j++) {
      const int32_t blk = (b == 2 && j == 0) ? s->block_table[1 * s->bt_stride] : (int32_t)((next * 37 + 11) % 80);
      s->block_table[b * s->bt_stride + j] = blk;
      s->indices[next++] = blk;
    }
    s->last[b] = (int32_t)(s->lens[b] - (used - 1) * bs);
    s->lengths[b] = (int64_t)s->lens[b];
  }
  s->indptr[3] = (int32_t)next;
  const size_t elems = s->num_blocks * bs * KVH * HD, esz = tu_dtype_size(dt);
  s->k = malloc(elems * esz);
  s->v = malloc(elems * esz);
  assert_non_null(s->k);
  assert_non_null(s->v);
  for (size_t e = 0; e < elems; e++) {
    const float a = tu_rng_f32(rng, -2.0f, 2.0f), b = tu_rng_f32(rng, -1.0f, 1.0f);
    if (dt == ROTARY_FP8_E4M3) {
      ((uint8_t *)s->k)[e] = kvo_fp8_encode(a, s->ks);
      ((uint8_t *)s->v)[e] = kvo_fp8_encode(b, s->vs);
    } else {
      tu_store(dt, s->k, (ptrdiff_t)e, a);
      tu_store(dt, s->v, (ptrdiff_t)e, b);
    }
  }
  for (size_t e = 0; e < sizeof s->q / sizeof *s->q; e++) s->q[e] = tu_rng_f32(rng, -2.0f, 2.0f);
}

static void smoke_free(smoke *s) {
  free(s->k);
  free(s->v);
  rotary_rope_destroy(s->rope);
}

static void smoke_desc(const smoke *s, rotary_attention_desc *d, float *out, float *lse) {
  rotary_attention_desc_init(d);
  d->batch = s->batch;
  d->tokens = s->tokens;
  d->q_heads = QH;
  d->kv_heads = KVH;
  d->q = s->q;
  d->q_dtype = ROTARY_F32;
  d->out = out;
  d->out_dtype = ROTARY_F32;
  d->lse = lse;
  rotary_kv_cache *c = &d->cache;
  c->index = s->index;
  c->layout = s->layout;
  c->dtype = s->cache_dt;
  c->k = s->k;
  c->v = s->v;
  c->num_blocks = s->num_blocks;
  c->block_size = smoke_bs(s);
  c->lengths = s->lengths;
  c->page_indptr = s->indptr;
  c->page_indices = s->indices;
  c->last_page_len = s->last;
  c->k_scale = s->ks;
  c->v_scale = s->vs;
  d->block_table = s->block_table;
  d->block_table_stride = s->bt_stride;
}

static void check_smoke(const smoke *s, rotary_attention_rope mode, size_t window, float softcap, const float *out,
                        const float *lse) {
  double ref[HD], ref_lse;
  for (size_t b = 0; b < s->batch; b++)
    for (size_t t = 0; t < s->tokens; t++)
      for (size_t qh = 0; qh < QH; qh++) {
        reference_row(s, mode, window, softcap, b, t, qh, ref, &ref_lse);
        const size_t row = (b * s->tokens + t) * QH + qh;
        for (size_t d = 0; d < HD; d++) {
          const double err = fabs(out[row * HD + d] - ref[d]);
          if (err > 2e-5) print_error("b %zu t %zu h %zu d %zu: %.9g vs %.9g\n", b, t, qh, d, out[row * HD + d], ref[d]);
          assert_true(err <= 2e-5);
        }
        assert_true(fabs(lse[row] - ref_lse) <= 2e-5 * fmax(1.0, fabs(ref_lse)));
      }
}

/* Every index kind, layout, rope mode and a few dtypes, windows and soft caps; 1 and 3 threads give the same
 * bits. */
static void test_smoke(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 14);
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(3, &ctx), ROTARY_OK);
  const rotary_dtype dts[] = {ROTARY_F32, ROTARY_BF16, ROTARY_FP8_E4M3};
  enum { ROWS = 3 * MAXT * QH };
  const int quick = getenv("ROTARY_TEST_QUICK") != NULL; /* valgrind, qemu: one cache dtype per index and layout */
  for (int index = 0; index < 3; index++)
    for (int layout = 0; layout < 2; layout++)
      for (size_t k = 0; k < 3; k++) {
        if (quick && k != (size_t)(index + layout) % 3) continue;
        smoke s;
        const size_t tokens = 1 + (size_t)(index + layout + (int)k) % MAXT;
        smoke_setup(&s, (rotary_cache_index)index, (rotary_cache_layout)layout, dts[k], tokens, &rng);
        for (int mode = 0; mode < 3; mode++)
          for (int variant = 0; variant < 2; variant++) {
            const size_t window = variant ? 37 : 0;
            const float softcap = variant ? 3.0f : 0.0f;
            float out[ROWS * HD], lse[ROWS], out3[ROWS * HD], lse3[ROWS];
            rotary_attention_desc d;
            smoke_desc(&s, &d, out, lse);
            d.rope_mode = (rotary_attention_rope)mode;
            d.window = window;
            d.softcap = softcap;
            assert_int_equal(rotary_attention(NULL, s.rope, &d), ROTARY_OK);
            check_smoke(&s, d.rope_mode, window, softcap, out, lse);
            d.out = out3;
            d.lse = lse3;
            assert_int_equal(rotary_attention(ctx, s.rope, &d), ROTARY_OK);
            const size_t rows = s.batch * s.tokens * QH;
            assert_memory_equal(out, out3, rows * HD * sizeof(float));
            assert_memory_equal(lse, lse3, rows * sizeof(float));
          }
        smoke_free(&s);
      }
  rotary_context_destroy(ctx);
}

/* A NaN in an attended key makes the row NaN; one outside the window changes nothing. */
static void test_smoke_nan(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 15);
  smoke s;
  smoke_setup(&s, ROTARY_CACHE_SEQUENCES, ROTARY_CACHE_NHD, ROTARY_F32, 1, &rng);
  float out[3 * QH * HD], lse[3 * QH], before[3 * QH * HD];
  rotary_attention_desc d;
  smoke_desc(&s, &d, out, lse);
  d.window = 100;
  assert_int_equal(rotary_attention(NULL, s.rope, &d), ROTARY_OK);
  memcpy(before, out, sizeof out);
  /* sequence 1 (700 rows) sees rows 600..699: row 10 is outside, row 650 inside (kv head 0) */
  ((float *)s.k)[smoke_elem(&s, 1, 10, 0, 3)] = NAN;
  assert_int_equal(rotary_attention(NULL, s.rope, &d), ROTARY_OK);
  assert_memory_equal(out, before, sizeof out);
  ((float *)s.k)[smoke_elem(&s, 1, 650, 0, 3)] = NAN;
  assert_int_equal(rotary_attention(NULL, s.rope, &d), ROTARY_OK);
  for (size_t qh = 0; qh < QH; qh++) {
    const float *row = out + (1 * QH + qh) * HD;
    for (size_t e = 0; e < HD; e++) assert_true(qh < GROUP ? isnan(row[e]) : row[e] == before[(QH + qh) * HD + e]);
    assert_true(qh < GROUP ? isnan(lse[QH + qh]) : !isnan(lse[QH + qh]));
  }
  smoke_free(&s);
}

/* rotary_decode_step: the write then the attention, the same bits as the two calls; a step whose lengths do not
 * follow the write is refused before anything is written. */
static void test_decode_step(void **state) {
  (void)state;
  enum { B = 2, S = 2, ROWQKV = (QH + 2 * KVH) * HD, CAP = 64, CACHE = B * CAP * KVH * HD };
  tu_rng rng;
  tu_rng_seed(&rng, 16);
  rotary_config cfg;
  rotary_config_init(&cfg, HD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, 256, &rope), ROTARY_OK);
  static float qkv[2][B * S * ROWQKV], kc[2][CACHE], vc[2][CACHE], qo[2][B * S * QH * HD], out[2][B * S * QH * HD];
  for (size_t e = 0; e < B * S * ROWQKV; e++) qkv[0][e] = qkv[1][e] = tu_rng_f32(&rng, -1.0f, 1.0f);
  for (size_t e = 0; e < CACHE; e++) {
    kc[0][e] = kc[1][e] = tu_rng_f32(&rng, -1.0f, 1.0f);
    vc[0][e] = vc[1][e] = tu_rng_f32(&rng, -1.0f, 1.0f);
  }
  const int64_t before[B] = {10, 30}, after[B] = {12, 32};
  rotary_kv_write_desc w[2];
  rotary_attention_desc a[2];
  for (int i = 0; i < 2; i++) {
    rotary_kv_write_desc_init(&w[i]);
    w[i].batch = B;
    w[i].seq_len = S;
    w[i].positions.mode = ROTARY_POSITIONS_OFFSETS;
    w[i].positions.offsets = before;
    assert_int_equal(rotary_kv_write_desc_set_qkv(&w[i], qkv[i], qo[i], ROTARY_F32, QH, KVH, HD, 0), ROTARY_OK);
    w[i].cache.index = ROTARY_CACHE_SEQUENCES;
    w[i].cache.dtype = ROTARY_F32;
    w[i].cache.k = kc[i];
    w[i].cache.v = vc[i];
    w[i].cache.num_blocks = B;
    w[i].cache.block_size = CAP;
    w[i].cache.lengths = before;
    rotary_attention_desc_init(&a[i]);
    a[i].batch = B;
    a[i].tokens = S;
    a[i].q_heads = QH;
    a[i].kv_heads = KVH;
    a[i].q = qo[i];
    a[i].q_dtype = ROTARY_F32;
    a[i].out = out[i];
    a[i].out_dtype = ROTARY_F32;
    a[i].cache = w[i].cache;
    a[i].cache.lengths = after;
  }
  assert_int_equal(rotary_kv_write(NULL, rope, &w[0]), ROTARY_OK);
  assert_int_equal(rotary_attention(NULL, rope, &a[0]), ROTARY_OK);
  a[1].cache.lengths = before; /* the lengths before the write: not this step */
  assert_int_equal(rotary_decode_step(NULL, rope, &w[1], &a[1]), ROTARY_ERR_INVALID_ARGUMENT);
  a[1].cache.lengths = after;
  a[1].rope_mode = ROTARY_ATTENTION_ROPE_Q;
  assert_int_equal(rotary_decode_step(NULL, rope, &w[1], &a[1]), ROTARY_ERR_INVALID_ARGUMENT);
  a[1].rope_mode = ROTARY_ATTENTION_ROPE_NONE;
  assert_int_equal(rotary_decode_step(NULL, rope, &w[1], &a[1]), ROTARY_OK);
  assert_memory_equal(kc[0], kc[1], sizeof kc[0]);
  assert_memory_equal(vc[0], vc[1], sizeof vc[0]);
  assert_memory_equal(qo[0], qo[1], sizeof qo[0]);
  assert_memory_equal(out[0], out[1], sizeof out[0]);
  rotary_rope_destroy(rope);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunking_ignores_threads),
      cmocka_unit_test(test_item_counts),
      cmocka_unit_test(test_chunk_growth),
      cmocka_unit_test(test_key_blocks),
      cmocka_unit_test(test_prefetch_cursors),
      cmocka_unit_test(test_smoke),
      cmocka_unit_test(test_smoke_nan),
      cmocka_unit_test(test_decode_step),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
