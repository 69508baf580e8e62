/* test_kv_write.c: rotary_kv_write over random shapes, inputs, caches and dtypes against the fp64 oracle, bit for bit. */
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

/*
 * What every case checks (the contract of rotary_kv_write in include/rotary.h):
 *  - q's outputs and k's cache rows are bit for bit the documented fp32 formula (fmaf(x0, c, -(x1 s)), fmaf(x0, s,
 *    x1 c)) with the cos/sin rows rotary_rope_cos_sin reports (COS_SIN: the caller's rows), rounded once to the
 *    destination dtype (fp8: kvo_fp8_encode with k_scale, the OCP reference written from the spec); v's rows are
 *    v's values converted once; the pass-through dims are copied;
 *  - the same outputs are within the usual bound of the fp64 rotation with the true cos/sin (oracle_check_pair);
 *  - every other byte of every buffer (cache sentinels, skipped slots, row padding, inputs, k and v of packed rows)
 *    is unchanged;
 *  - where the cache dtype is the input's, the cache rows equal rotary_apply's output for k bit for bit, and q's
 *    output equals rotary_apply's for q;
 *  - a table-free rope and contexts of 1, 2 and 3 threads give the same bytes.
 * ROTARY_ISA is read once per process: scripts/test.sh reruns this program under ROTARY_ISA=scalar, avx2 and
 * avx512 (its isa_caps stage matches "kv"); every run compares against the same ISA-independent expected bits.
 */

enum { R_QKV, R_Q, R_K, R_V, R_QOUT, R_KC, R_VC, R_AUX0, R_AUX1, R_AUX2, R_COUNT };

typedef struct region {
  tu_guarded g;
  rotary_dtype dt; /* element type; FP8 (1 byte) for byte arrays */
  size_t n;        /* elements */
  unsigned char *init, *expect, *first, *wrote;
  int is_out;
} region;

typedef struct kcase {
  size_t head_dim, rotary_dim;
  rotary_pairing pairing;
  size_t max_positions; /* 0: table-free */
  double scaling;
  size_t batch, seq, q_heads, kv_heads;
  rotary_dtype q_dt, kv_dt, v_dt, cache_dt; /* kv_dt: k's input; v_dt: v's input (independent, as q's) */
  int packed;      /* one QKV buffer through rotary_kv_write_desc_set_qkv */
  size_t row_pad;  /* packed: elements after each row (0 passes row_stride 0) */
  int q_out;       /* q into a separate output */
  int in_layout;   /* separate: 0 BSHD, 1 BHSD, 2 gaps */
  rotary_cache_index index;
  rotary_cache_layout layout;
  size_t block_size, extra_blocks, block_pad;
  int combined;
  rotary_position_mode mode;
  float k_scale, v_scale;
  int specials; /* NaN, Inf, huge and tiny values among k and v */
  int skip_all; /* SLOTS: every slot negative */
  uint64_t seed;
} kcase;

typedef struct kstats {
  oracle_stats dt[3];
  size_t cases, fail_bytes, fail_repeat, fail_status, fail_apply, fail_setup, written_rows, skipped_rows;
} kstats;

typedef struct krun {
  const kcase *kc;
  region reg[R_COUNT];
  size_t T, half;
  int64_t *pos, *slots, *aux_i64;
  int32_t *aux_i32;
  float *c, *s;
  long double *ct, *st, *slack;
  ptrdiff_t qis[3], qos[3], kis[3], vis[3];
  size_t q0, k0, v0, vc0; /* element offsets of q, k, v inside their regions, v's inside its cache region */
  kvo_geom geom;
  rotary_kv_write_desc desc;
} krun;

static rotary_context *g_ctx[3];
static kstats g_total;

/* ---- small helpers ---- */

static void put_bits(rotary_dtype dt, unsigned char *base, size_t idx, uint32_t bits) {
  size_t es = kvo_dtype_size(dt);
  if (es == 4) memcpy(base + idx * 4, &bits, 4);
  else if (es == 2) { uint16_t h = (uint16_t)bits; memcpy(base + idx * 2, &h, 2); }
  else base[idx] = (unsigned char)bits;
}

static uint32_t get_bits(rotary_dtype dt, const unsigned char *base, size_t idx) {
  if (dt == ROTARY_FP8_E4M3) return base[idx];
  return tu_load_bits(dt, base, (ptrdiff_t)idx);
}

static int bits_nan(rotary_dtype dt, uint32_t b) {
  return dt == ROTARY_FP8_E4M3 ? kvo_fp8_isnan((uint8_t)b) : tu_bits_isnan(dt, b);
}

/* v or a rotated k value rounded once to the cache dtype. */
static uint32_t cache_bits(rotary_dtype dt, float x, float scale) {
  return dt == ROTARY_FP8_E4M3 ? kvo_fp8_encode(x, scale) : tu_round_bits(dt, x);
}

static unsigned char *region_alloc(region *g, rotary_dtype dt, size_t n, tu_guard_side side, int is_out) {
  size_t bytes = n * kvo_dtype_size(dt);
  g->dt = dt;
  g->n = n;
  g->is_out = is_out;
  if (!tu_guard_alloc(&g->g, bytes, side)) return NULL;
  g->init = malloc(bytes + 1), g->expect = malloc(bytes + 1), g->first = malloc(bytes + 1);
  g->wrote = calloc(n + 1, 1);
  if (!g->init || !g->expect || !g->first || !g->wrote) return NULL;
  return g->g.ptr;
}

static void region_free(region *g) {
  tu_guard_free(&g->g);
  free(g->init), free(g->expect), free(g->first), free(g->wrote);
  memset(g, 0, sizeof *g);
}

static float random_value(tu_rng *r, int specials) {
  static const float sp[] = {NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 0x1p-10f, -0x1p-12f, 0.0f, -0.0f, 500.0f};
  if (specials && tu_rng_below(r, 5) == 0) return sp[tu_rng_below(r, sizeof sp / sizeof sp[0])];
  if (tu_rng_below(r, 4) != 0) return tu_rng_f32(r, -2.0f, 2.0f);
  return tu_rng_f32_wide(r, -12, 3);
}

/* Fills a region's elements (dtype values, or random bytes for a cache sentinel). */
static void fill_region(region *g, tu_rng *r, int values, int specials) {
  size_t es = kvo_dtype_size(g->dt);
  if (values)
    for (size_t e = 0; e < g->n; e++) tu_store(g->dt, g->g.ptr, (ptrdiff_t)e, random_value(r, specials));
  else
    tu_canary_fill(g->g.ptr, g->n * es, tu_rng_u64(r));
  memcpy(g->init, g->g.ptr, g->n * es);
  memcpy(g->expect, g->g.ptr, g->n * es);
}

/* ---- inputs ---- */

static void strides_of(int layout, size_t S, size_t H, size_t D, ptrdiff_t st[3], size_t *elems, size_t B) {
  if (layout == 0) st[2] = (ptrdiff_t)D, st[1] = (ptrdiff_t)(H * D), st[0] = (ptrdiff_t)(S * H * D);
  else if (layout == 1) st[2] = (ptrdiff_t)(S * D), st[1] = (ptrdiff_t)D, st[0] = (ptrdiff_t)(H * S * D);
  else st[2] = (ptrdiff_t)(D + 2), st[1] = (ptrdiff_t)(H * (D + 2) + 3), st[0] = (ptrdiff_t)S * st[1] + 5;
  *elems = (size_t)((ptrdiff_t)(B - 1) * st[0] + (ptrdiff_t)(S - 1) * st[1] + (ptrdiff_t)(H - 1) * st[2]) + D;
}

static int setup_packed(krun *r, tu_rng *rng) {
  const kcase *kc = r->kc;
  const size_t D = kc->head_dim, row = (kc->q_heads + 2 * kc->kv_heads) * D, rs = row + kc->row_pad;
  if (!region_alloc(&r->reg[R_QKV], kc->q_dt, (r->T - 1) * rs + row, TU_GUARD_END, !kc->q_out)) return -1;
  fill_region(&r->reg[R_QKV], rng, 1, kc->specials);
  void *qo = NULL;
  if (kc->q_out && kc->q_heads) {
    qo = region_alloc(&r->reg[R_QOUT], kc->q_dt, r->T * kc->q_heads * D, TU_GUARD_START, 1);
    if (!qo) return -1;
    fill_region(&r->reg[R_QOUT], rng, 0, 0);
  }
  if (rotary_kv_write_desc_set_qkv(&r->desc, r->reg[R_QKV].g.ptr, qo, kc->q_dt, kc->q_heads, kc->kv_heads, D,
                                   kc->row_pad ? rs : 0) != ROTARY_OK)
    return -1;
  const ptrdiff_t is[3] = {(ptrdiff_t)(kc->seq * rs), (ptrdiff_t)rs, (ptrdiff_t)D};
  memcpy(r->qis, is, sizeof is), memcpy(r->kis, is, sizeof is), memcpy(r->vis, is, sizeof is);
  r->qos[2] = (ptrdiff_t)D, r->qos[1] = (ptrdiff_t)(kc->q_heads * D), r->qos[0] = (ptrdiff_t)(kc->seq * kc->q_heads * D);
  if (!qo) memcpy(r->qos, is, sizeof is);
  r->q0 = 0, r->k0 = kc->q_heads * D, r->v0 = (kc->q_heads + kc->kv_heads) * D;
  /* the strides set_qkv chose must be the documented ones */
  const size_t es = kvo_dtype_size(kc->q_dt);
  const unsigned char *base = r->reg[R_QKV].g.ptr;
  const rotary_kv_write_desc *d = &r->desc;
  int ok = d->k.in == base + r->k0 * es && d->v.in == base + r->v0 * es && d->k.stride_seq == is[1] &&
           d->k.stride_batch == is[0] && d->v.stride_head == is[2] && d->k.n_heads == kc->kv_heads &&
           d->q.n_heads == kc->q_heads && d->k.dtype == kc->q_dt && d->v.n_heads == kc->kv_heads && !d->k.out &&
           !d->v.out;
  if (kc->q_heads)
    ok = ok && d->q.in == base && d->q.out == (qo ? qo : (void *)r->reg[R_QKV].g.ptr) && d->q.stride_seq == is[1] &&
         d->q.out_stride_seq == r->qos[1] && d->q.out_stride_head == (ptrdiff_t)D;
  return ok ? 0 : -1;
}

static int setup_one(krun *r, tu_rng *rng, int which, rotary_dtype dt, size_t H, ptrdiff_t st[3], rotary_tensor *t) {
  const kcase *kc = r->kc;
  size_t n;
  strides_of(kc->in_layout, kc->seq, H, kc->head_dim, st, &n, kc->batch);
  unsigned char *p = region_alloc(&r->reg[which], dt, n, which == R_V ? TU_GUARD_START : TU_GUARD_END,
                                  which == R_Q && !kc->q_out);
  if (!p) return -1;
  fill_region(&r->reg[which], rng, 1, which != R_Q && kc->specials);
  t->in = p, t->out = p, t->dtype = dt, t->n_heads = H;
  t->stride_batch = t->out_stride_batch = st[0], t->stride_seq = t->out_stride_seq = st[1];
  t->stride_head = t->out_stride_head = st[2];
  return 0;
}

static int setup_separate(krun *r, tu_rng *rng) {
  const kcase *kc = r->kc;
  if (kc->q_heads) {
    if (setup_one(r, rng, R_Q, kc->q_dt, kc->q_heads, r->qis, &r->desc.q) != 0) return -1;
    memcpy(r->qos, r->qis, sizeof r->qis);
    if (kc->q_out) { /* out of place into a BSHD buffer */
      size_t n;
      strides_of(0, kc->seq, kc->q_heads, kc->head_dim, r->qos, &n, kc->batch);
      void *qo = region_alloc(&r->reg[R_QOUT], kc->q_dt, n, TU_GUARD_START, 1);
      if (!qo) return -1;
      fill_region(&r->reg[R_QOUT], rng, 0, 0);
      r->desc.q.out = qo;
      r->desc.q.out_stride_batch = r->qos[0], r->desc.q.out_stride_seq = r->qos[1];
      r->desc.q.out_stride_head = r->qos[2];
    }
  }
  if (setup_one(r, rng, R_K, kc->kv_dt, kc->kv_heads, r->kis, &r->desc.k) != 0) return -1;
  r->desc.k.out = NULL; /* ignored */
  return setup_one(r, rng, R_V, kc->v_dt, kc->kv_heads, r->vis, &r->desc.v);
}

/* ---- positions and the rows the call uses ---- */

static int setup_positions(krun *r, tu_rng *rng, const rotary_rope *rope) {
  const kcase *kc = r->kc;
  rotary_positions *p = &r->desc.positions;
  const int64_t S = (int64_t)kc->seq, lim = kc->max_positions ? (int64_t)kc->max_positions : (int64_t)1 << 20;
  region *a = &r->reg[R_AUX0];
  p->mode = kc->mode;
  if (kc->mode == ROTARY_POSITIONS_OFFSET) {
    p->offset = (int64_t)tu_rng_below(rng, (uint64_t)(lim - S + 1));
    for (size_t t = 0; t < r->T; t++) r->pos[t] = p->offset + (int64_t)(t % kc->seq);
  } else if (kc->mode == ROTARY_POSITIONS_OFFSETS || kc->mode == ROTARY_POSITIONS_IDS_I64) {
    size_t n = kc->mode == ROTARY_POSITIONS_OFFSETS ? kc->batch : r->T;
    if (!(r->aux_i64 = (int64_t *)(void *)region_alloc(a, ROTARY_FP8_E4M3, n * 8, TU_GUARD_END, 0))) return -1;
    for (size_t i = 0; i < n; i++) r->aux_i64[i] = (int64_t)tu_rng_below(rng, (uint64_t)(lim - S + 1));
    for (size_t t = 0; t < r->T; t++)
      r->pos[t] = kc->mode == ROTARY_POSITIONS_IDS_I64 ? r->aux_i64[t] : r->aux_i64[t / kc->seq] + (int64_t)(t % kc->seq);
    if (kc->mode == ROTARY_POSITIONS_IDS_I64) p->ids = r->aux_i64;
    else p->offsets = r->aux_i64;
  } else if (kc->mode == ROTARY_POSITIONS_IDS_I32) {
    if (!(r->aux_i32 = (int32_t *)(void *)region_alloc(a, ROTARY_FP8_E4M3, r->T * 4, TU_GUARD_END, 0))) return -1;
    for (size_t t = 0; t < r->T; t++)
      r->pos[t] = r->aux_i32[t] = (int32_t)tu_rng_below(rng, (uint64_t)(lim < INT32_MAX ? lim : INT32_MAX));
    p->ids = r->aux_i32;
  } else { /* COS_SIN: caller rows, any fp32 values, row_stride half + 3 */
    const size_t rs = r->half + 3, n = (r->T - 1) * rs + r->half;
    float *c = (float *)(void *)region_alloc(&r->reg[R_AUX1], ROTARY_F32, n, TU_GUARD_END, 0);
    float *s = (float *)(void *)region_alloc(&r->reg[R_AUX2], ROTARY_F32, n, TU_GUARD_START, 0);
    if (!c || !s) return -1;
    for (size_t e = 0; e < n; e++) c[e] = tu_rng_f32(rng, -1.5f, 1.5f), s[e] = tu_rng_f32(rng, -1.5f, 1.5f);
    for (size_t t = 0; t < r->T; t++)
      for (size_t i = 0; i < r->half; i++) {
        r->ct[t * r->half + i] = r->c[t * r->half + i] = c[t * rs + i];
        r->st[t * r->half + i] = r->s[t * r->half + i] = s[t * rs + i];
      }
    p->cos = c, p->sin = s, p->row_stride = rs;
    memcpy(r->reg[R_AUX1].init, c, n * 4), memcpy(r->reg[R_AUX1].expect, c, n * 4);
    memcpy(r->reg[R_AUX2].init, s, n * 4), memcpy(r->reg[R_AUX2].expect, s, n * 4);
    return 0;
  }
  if (a->g.ptr) memcpy(a->init, a->g.ptr, a->n), memcpy(a->expect, a->g.ptr, a->n);
  long double inv[512];
  oracle_inv_freqs(10000.0, kc->rotary_dim, inv);
  if (rotary_rope_cos_sin(rope, r->pos, r->T, r->c, r->s) != ROTARY_OK) return -1;
  for (size_t t = 0; t < r->T; t++) {
    oracle_cos_sin_true(r->pos[t], inv, r->half, kc->scaling, r->ct + t * r->half, r->st + t * r->half);
    r->slack[t] = (long double)r->pos[t] * 16.0L * DBL_EPSILON * kc->scaling;
  }
  return 0;
}

/* ---- the cache and its index ---- */

/* A random permutation prefix: n distinct values below total. */
static void distinct(tu_rng *rng, uint64_t total, size_t n, int64_t *out) {
  int64_t *all = malloc(total * sizeof *all);
  for (uint64_t i = 0; i < total; i++) all[i] = (int64_t)i;
  for (size_t i = 0; i < n; i++) {
    uint64_t j = i + tu_rng_below(rng, total - i);
    int64_t t = all[i];
    all[i] = all[j], all[j] = t;
    out[i] = all[i];
  }
  free(all);
}

static int setup_index(krun *r, tu_rng *rng, rotary_kv_cache *c) {
  const kcase *kc = r->kc;
  const size_t B = kc->batch, S = kc->seq, bs = kc->block_size;
  int64_t *a64 = calloc(r->T + B + 1, 8);
  int32_t *a32 = calloc(4 * (r->T + B) + 8 + 2 * B * (2 * bs + S), 4);
  r->slots = a64, r->aux_i32 = NULL;
  if (!a64 || !a32) return free(a32), -1;
  c->lengths = NULL, c->slot_mapping = NULL, c->page_indices = NULL;
  if (kc->index == ROTARY_CACHE_SEQUENCES) {
    c->num_blocks = B + kc->extra_blocks;
    int64_t *len = a64 + r->T;
    for (size_t b = 0; b < B; b++) len[b] = (int64_t)tu_rng_below(rng, bs - S + 1);
    c->lengths = len;
  } else if (kc->index == ROTARY_CACHE_SLOTS) {
    c->num_blocks = (r->T + bs - 1) / bs + kc->extra_blocks;
    int64_t *map = malloc(r->T * 8);
    if (!map) return free(a32), -1;
    distinct(rng, (uint64_t)c->num_blocks * bs, r->T, map);
    for (size_t t = 0; t < r->T; t++)
      if (kc->skip_all || tu_rng_below(rng, 5) == 0) map[t] = tu_rng_below(rng, 2) ? -1 : INT64_MIN + (int64_t)t;
    c->slot_mapping = map;
  } else {
    int32_t *indptr = a32, *last = a32 + B + 1, *indices = a32 + 2 * B + 2;
    size_t pages = 0;
    for (size_t b = 0; b < B; b++) {
      size_t L = (size_t)tu_rng_below(rng, 2 * bs + 1) + S, n = (L + bs - 1) / bs;
      indptr[b] = (int32_t)pages;
      last[b] = (int32_t)(L - (n - 1) * bs);
      pages += n;
    }
    indptr[B] = (int32_t)pages;
    c->num_blocks = pages + kc->extra_blocks;
    int64_t *perm = malloc(pages * 8 + 8);
    if (!perm) return free(a32), -1;
    distinct(rng, c->num_blocks, pages, perm);
    for (size_t i = 0; i < pages; i++) indices[i] = (int32_t)perm[i];
    free(perm);
    c->page_indptr = indptr, c->page_indices = indices, c->last_page_len = last;
  }
  r->aux_i32 = a32;
  /* the reference reading of the index must accept what was built */
  return kvo_token_slots(c, B, S, r->slots) == 0 ? 0 : -1;
}

static int setup_cache(krun *r, tu_rng *rng) {
  const kcase *kc = r->kc;
  rotary_kv_cache *c = &r->desc.cache;
  c->index = kc->index, c->layout = kc->layout, c->dtype = kc->cache_dt, c->block_size = kc->block_size;
  c->k_scale = kc->k_scale, c->v_scale = kc->v_scale;
  if (setup_index(r, rng, c) != 0) return -1;
  const size_t dense = kc->block_size * kc->kv_heads * kc->head_dim, half = dense + kc->block_pad;
  const size_t stride = kc->combined ? 2 * half : half;
  c->block_stride = kc->combined || kc->block_pad || tu_rng_below(rng, 2) ? stride : 0;
  r->geom = (kvo_geom){kc->layout, kc->block_size, kc->kv_heads, kc->head_dim, stride};
  const size_t nk = (c->num_blocks - 1) * stride + dense;
  if (kc->combined) {
    unsigned char *p = region_alloc(&r->reg[R_KC], kc->cache_dt, nk + half, TU_GUARD_END, 1);
    if (!p) return -1;
    c->k = p, c->v = p + half * kvo_dtype_size(kc->cache_dt), r->vc0 = half;
  } else {
    c->k = region_alloc(&r->reg[R_KC], kc->cache_dt, nk, TU_GUARD_START, 1);
    c->v = region_alloc(&r->reg[R_VC], kc->cache_dt, nk, TU_GUARD_END, 1);
    if (!c->k || !c->v) return -1;
    fill_region(&r->reg[R_VC], rng, 0, 0);
    r->vc0 = 0;
  }
  fill_region(&r->reg[R_KC], rng, 0, 0);
  return 0;
}

/* ---- expected bytes and checks ---- */

static region *q_in_region(krun *r) { return &r->reg[r->kc->packed ? R_QKV : R_Q]; }
static region *q_out_region(krun *r) { return r->kc->q_out ? &r->reg[R_QOUT] : q_in_region(r); }
static region *k_in_region(krun *r) { return &r->reg[r->kc->packed ? R_QKV : R_K]; }
static region *v_in_region(krun *r) { return &r->reg[r->kc->packed ? R_QKV : R_V]; }
static region *vc_region(krun *r) { return &r->reg[r->kc->combined ? R_KC : R_VC]; }

static size_t at(size_t base, const ptrdiff_t st[3], size_t b, size_t s, size_t h) {
  return (size_t)((ptrdiff_t)base + (ptrdiff_t)b * st[0] + (ptrdiff_t)s * st[1] + (ptrdiff_t)h * st[2]);
}

/* One head row rotated by the formula: out[d] = f32 result (pass-through dims: the input value). */
static void rotate_row(krun *r, size_t t, rotary_dtype dt, const unsigned char *in, size_t irow, float *out) {
  const kcase *kc = r->kc;
  for (size_t d = kc->rotary_dim; d < kc->head_dim; d++) out[d] = tu_load(dt, in, (ptrdiff_t)(irow + d));
  for (size_t i = 0; i < r->half; i++) {
    size_t a, b;
    oracle_pair_index(kc->pairing, kc->rotary_dim, i, &a, &b);
    oracle_formula_f32(tu_load(dt, in, (ptrdiff_t)(irow + a)), tu_load(dt, in, (ptrdiff_t)(irow + b)),
                       r->c[t * r->half + i], r->s[t * r->half + i], &out[a], &out[b]);
  }
}

static void expect_q(krun *r, size_t t) {
  const kcase *kc = r->kc;
  region *in = q_in_region(r), *out = q_out_region(r);
  float y[1024];
  for (size_t h = 0; h < kc->q_heads; h++) {
    size_t irow = at(r->q0, r->qis, t / kc->seq, t % kc->seq, h);
    size_t orow = at(kc->q_out ? 0 : r->q0, r->qos, t / kc->seq, t % kc->seq, h);
    rotate_row(r, t, kc->q_dt, in->init, irow, y);
    for (size_t d = 0; d < kc->head_dim; d++) {
      uint32_t bits = d < kc->rotary_dim ? tu_round_bits(kc->q_dt, y[d])
                                         : tu_load_bits(kc->q_dt, in->init, (ptrdiff_t)(irow + d));
      put_bits(kc->q_dt, out->expect, orow + d, bits);
      out->wrote[orow + d] = 1;
    }
  }
}

static void expect_kv(krun *r, size_t t) {
  const kcase *kc = r->kc;
  region *kin = k_in_region(r), *vin = v_in_region(r), *kc_r = &r->reg[R_KC], *vc_r = vc_region(r);
  const rotary_dtype cd = kc->cache_dt;
  float y[1024];
  for (size_t h = 0; h < kc->kv_heads; h++) {
    size_t krow = at(r->k0, r->kis, t / kc->seq, t % kc->seq, h), vrow = at(r->v0, r->vis, t / kc->seq, t % kc->seq, h);
    size_t crow = kvo_row_offset(&r->geom, (uint64_t)r->slots[t], h);
    rotate_row(r, t, kc->kv_dt, kin->init, krow, y);
    for (size_t d = 0; d < kc->head_dim; d++) {
      float v = tu_load(kc->v_dt, vin->init, (ptrdiff_t)(vrow + d));
      put_bits(cd, kc_r->expect, crow + d, cache_bits(cd, y[d], kc->k_scale));
      put_bits(cd, vc_r->expect, r->vc0 + crow + d, cache_bits(cd, v, kc->v_scale));
      kc_r->wrote[crow + d] = 1, vc_r->wrote[r->vc0 + crow + d] = 1;
    }
  }
}

static void build_expected(krun *r, kstats *ks) {
  for (size_t t = 0; t < r->T; t++) {
    expect_q(r, t);
    if (r->slots[t] < 0) {
      ks->skipped_rows++;
      continue;
    }
    ks->written_rows++;
    expect_kv(r, t);
  }
}

/* Pairs against the fp64 oracle: q in its dtype, k in the cache dtype (fp8: the fp32 value before encoding). */
static void check_accuracy(krun *r, kstats *ks) {
  const kcase *kc = r->kc;
  for (size_t t = 0; t < r->T; t++)
    for (size_t i = 0; i < r->half; i++) {
      size_t a, b, j = t * r->half + i, bsq = t / kc->seq, s = t % kc->seq;
      oracle_pair_index(kc->pairing, kc->rotary_dim, i, &a, &b);
      for (size_t h = 0; h < kc->q_heads; h++) {
        size_t ir = at(r->q0, r->qis, bsq, s, h), orow = at(kc->q_out ? 0 : r->q0, r->qos, bsq, s, h);
        const unsigned char *in = q_in_region(r)->init, *out = q_out_region(r)->g.ptr;
        oracle_pair p = {kc->q_dt, tu_load(kc->q_dt, in, (ptrdiff_t)(ir + a)), tu_load(kc->q_dt, in, (ptrdiff_t)(ir + b)),
                         r->c[j], r->s[j], r->ct[j], r->st[j], 3.0, r->slack[t]};
        oracle_check_pair(&p, tu_load_bits(kc->q_dt, out, (ptrdiff_t)(orow + a)),
                          tu_load_bits(kc->q_dt, out, (ptrdiff_t)(orow + b)), &ks->dt[kc->q_dt]);
      }
      if (r->slots[t] < 0) continue;
      for (size_t h = 0; h < kc->kv_heads; h++) {
        size_t ir = at(r->k0, r->kis, bsq, s, h), cr = kvo_row_offset(&r->geom, (uint64_t)r->slots[t], h);
        const unsigned char *in = k_in_region(r)->init;
        rotary_dtype dt = kc->cache_dt == ROTARY_FP8_E4M3 ? ROTARY_F32 : kc->cache_dt;
        oracle_pair p = {dt, tu_load(kc->kv_dt, in, (ptrdiff_t)(ir + a)), tu_load(kc->kv_dt, in, (ptrdiff_t)(ir + b)),
                         r->c[j], r->s[j], r->ct[j], r->st[j], 3.0, r->slack[t]};
        uint32_t o0, o1;
        if (dt == kc->cache_dt) {
          o0 = tu_load_bits(dt, r->reg[R_KC].g.ptr, (ptrdiff_t)(cr + a));
          o1 = tu_load_bits(dt, r->reg[R_KC].g.ptr, (ptrdiff_t)(cr + b));
        } else {
          float y0, y1;
          oracle_formula_f32(p.x0, p.x1, p.c, p.s, &y0, &y1);
          o0 = tu_f32_bits(y0), o1 = tu_f32_bits(y1);
        }
        oracle_check_pair(&p, o0, o1, &ks->dt[dt]);
      }
    }
}

/* Every element of every region equals the expected image (written NaNs: any NaN of that dtype). */
static size_t compare_regions(krun *r, const char *what) {
  size_t bad = 0;
  for (int i = 0; i < R_COUNT; i++) {
    const region *g = &r->reg[i];
    if (!g->g.ptr) continue;
    for (size_t e = 0; e < g->n; e++) {
      uint32_t a = get_bits(g->dt, g->g.ptr, e), x = get_bits(g->dt, g->expect, e);
      if (a == x || (g->wrote[e] && bits_nan(g->dt, a) && bits_nan(g->dt, x))) continue;
      if (bad++ < 6)
        printf("  FAIL %s: region %d element %zu: got 0x%x want 0x%x (%s, %s)\n", what, i, e, (unsigned)a,
               (unsigned)x, g->wrote[e] ? "written" : "untouched", tu_dtype_name(g->dt));
    }
  }
  return bad;
}

/* Where the cache dtype is the input's, rotary_apply on the same inputs gives the cache's k rows and q's output. */
static size_t check_against_apply(krun *r, const rotary_rope *rope) {
  const kcase *kc = r->kc;
  const size_t D = kc->head_dim, nq = r->T * (kc->q_heads ? kc->q_heads : 1) * D, nk = r->T * kc->kv_heads * D;
  unsigned char *qo = malloc(nq * 4), *ko = malloc(nk * 4);
  rotary_apply_desc ad;
  rotary_apply_desc_init(&ad);
  ad.batch = kc->batch, ad.seq_len = kc->seq, ad.positions = r->desc.positions;
  size_t bad = 0;
  if (!qo || !ko) bad = 1;
  const size_t eq = kvo_dtype_size(kc->q_dt), ek = kvo_dtype_size(kc->kv_dt);
  /* k stands in as q when q is left out (q is required by rotary_apply) */
  rotary_tensor *kt = kc->q_heads ? &ad.k : &ad.q;
  if (!bad && kc->q_heads) {
    rotary_tensor_init(&ad.q, ROTARY_LAYOUT_BSHD, qo, qo, kc->q_dt, kc->seq, kc->q_heads, D);
    ad.q.in = q_in_region(r)->init + r->q0 * eq;
    ad.q.stride_batch = r->qis[0], ad.q.stride_seq = r->qis[1], ad.q.stride_head = r->qis[2];
  }
  if (!bad) {
    rotary_tensor_init(kt, ROTARY_LAYOUT_BSHD, ko, ko, kc->kv_dt, kc->seq, kc->kv_heads, D);
    kt->in = k_in_region(r)->init + r->k0 * ek;
    kt->stride_batch = r->kis[0], kt->stride_seq = r->kis[1], kt->stride_head = r->kis[2];
    if (rotary_apply(NULL, rope, &ad) != ROTARY_OK) bad = 1;
  }
  for (size_t t = 0; !bad && t < r->T; t++) {
    const size_t b = t / kc->seq, s = t % kc->seq;
    for (size_t h = 0; h < kc->q_heads; h++)
      for (size_t d = 0; d < D; d++) {
        uint32_t want = tu_load_bits(kc->q_dt, qo, (ptrdiff_t)((t * kc->q_heads + h) * D + d));
        uint32_t got = tu_load_bits(kc->q_dt, q_out_region(r)->g.ptr, (ptrdiff_t)(at(kc->q_out ? 0 : r->q0, r->qos, b, s, h) + d));
        bad += got != want && !(tu_bits_isnan(kc->q_dt, got) && tu_bits_isnan(kc->q_dt, want));
      }
    if (r->slots[t] < 0 || kc->cache_dt != kc->kv_dt) continue;
    for (size_t h = 0; h < kc->kv_heads; h++)
      for (size_t d = 0; d < D; d++) {
        uint32_t want = tu_load_bits(kc->kv_dt, ko, (ptrdiff_t)((t * kc->kv_heads + h) * D + d));
        uint32_t got = tu_load_bits(kc->kv_dt, r->reg[R_KC].g.ptr,
                                    (ptrdiff_t)(kvo_row_offset(&r->geom, (uint64_t)r->slots[t], h) + d));
        bad += got != want;
      }
  }
  free(qo), free(ko);
  return bad;
}

static void restore_outputs(krun *r) {
  for (int i = 0; i < R_COUNT; i++)
    if (r->reg[i].g.ptr && r->reg[i].is_out) memcpy(r->reg[i].g.ptr, r->reg[i].init, r->reg[i].n * kvo_dtype_size(r->reg[i].dt));
}

/* The same call on another rope or context must give the bytes of the first. */
static void repeat(krun *r, rotary_context *ctx, const rotary_rope *rope, kstats *ks) {
  restore_outputs(r);
  if (rotary_kv_write(ctx, rope, &r->desc) != ROTARY_OK) {
    ks->fail_status++;
    return;
  }
  for (int i = 0; i < R_COUNT; i++)
    if (r->reg[i].g.ptr && memcmp(r->reg[i].g.ptr, r->reg[i].first, r->reg[i].n * kvo_dtype_size(r->reg[i].dt))) {
      ks->fail_repeat++;
      return;
    }
}

static rotary_rope *rope_for(const kcase *kc, size_t max_positions) {
  rotary_config cfg;
  rotary_config_init(&cfg, kc->head_dim);
  cfg.rotary_dim = kc->rotary_dim, cfg.pairing = kc->pairing, cfg.attention_scaling = kc->scaling;
  rotary_rope *rope = NULL;
  return rotary_rope_create(&cfg, max_positions, &rope) == ROTARY_OK ? rope : NULL;
}

static int setup_run(krun *r, tu_rng *rng, const rotary_rope *rope) {
  const kcase *kc = r->kc;
  r->T = kc->batch * kc->seq, r->half = kc->rotary_dim / 2;
  r->pos = calloc(r->T, 8);
  r->c = malloc(r->T * r->half * 4), r->s = malloc(r->T * r->half * 4);
  r->ct = malloc(r->T * r->half * sizeof(long double)), r->st = malloc(r->T * r->half * sizeof(long double));
  r->slack = calloc(r->T, sizeof(long double));
  if (!r->pos || !r->c || !r->s || !r->ct || !r->st || !r->slack) return -1;
  rotary_kv_write_desc_init(&r->desc);
  r->desc.batch = kc->batch, r->desc.seq_len = kc->seq;
  if ((kc->packed ? setup_packed(r, rng) : setup_separate(r, rng)) != 0) return -1;
  if (setup_positions(r, rng, rope) != 0) return -1;
  return setup_cache(r, rng);
}

static void free_run(krun *r) {
  for (int i = 0; i < R_COUNT; i++) region_free(&r->reg[i]);
  free((void *)r->desc.cache.slot_mapping);
  free(r->pos), free(r->slots), free(r->aux_i32), free(r->c), free(r->s), free(r->ct), free(r->st), free(r->slack);
}

static void print_case(const kcase *kc) {
  printf("  case seed %llu: hd %zu rd %zu pairing %d B %zu S %zu qh %zu kvh %zu q %s k %s v %s cache %s packed %d pad %zu "
         "qout %d in_layout %d index %d layout %d bs %zu extra %zu pad %zu combined %d mode %d maxpos %zu\n",
         (unsigned long long)kc->seed, kc->head_dim, kc->rotary_dim, (int)kc->pairing, kc->batch, kc->seq,
         kc->q_heads, kc->kv_heads, tu_dtype_name(kc->q_dt), tu_dtype_name(kc->kv_dt), tu_dtype_name(kc->v_dt),
         kc->cache_dt == ROTARY_FP8_E4M3 ? "fp8" : tu_dtype_name(kc->cache_dt), kc->packed, kc->row_pad, kc->q_out,
         kc->in_layout, (int)kc->index, (int)kc->layout, kc->block_size, kc->extra_blocks, kc->block_pad,
         kc->combined, (int)kc->mode, kc->max_positions);
}

static void run_case(const kcase *kc_in, kstats *ks) {
  kcase norm = *kc_in, *kc = &norm;
  if (kc->packed) kc->kv_dt = kc->v_dt = kc->q_dt; /* one buffer, one dtype */
  krun r;
  memset(&r, 0, sizeof r);
  r.kc = kc;
  tu_rng rng;
  tu_rng_seed(&rng, kc->seed);
  rotary_rope *rope = rope_for(kc, kc->max_positions), *rope_free = rope_for(kc, 0);
  ks->cases++;
  if (!rope || !rope_free || setup_run(&r, &rng, rope) != 0) {
    ks->fail_setup++;
  } else {
    build_expected(&r, ks);
    rotary_status st = rotary_kv_write(NULL, rope, &r.desc);
    if (st != ROTARY_OK) {
      if (ks->fail_status++ < 5) printf("  FAIL status %s\n", rotary_status_string(st)), print_case(kc);
    } else {
      for (int i = 0; i < R_COUNT; i++)
        if (r.reg[i].g.ptr) memcpy(r.reg[i].first, r.reg[i].g.ptr, r.reg[i].n * kvo_dtype_size(r.reg[i].dt));
      size_t bad = compare_regions(&r, "bytes");
      if (bad && ks->fail_bytes < 3) print_case(kc);
      ks->fail_bytes += bad;
      check_accuracy(&r, ks);
      ks->fail_apply += check_against_apply(&r, rope);
      for (int i = 0; i < 3; i++) repeat(&r, g_ctx[i], rope, ks);
      if (kc->mode != ROTARY_POSITIONS_COS_SIN && kc->max_positions) repeat(&r, g_ctx[2], rope_free, ks);
    }
  }
  free_run(&r);
  rotary_rope_destroy(rope);
  rotary_rope_destroy(rope_free);
}

static int kstats_ok(const kstats *ks) {
  for (int i = 0; i < 3; i++)
    if (!oracle_stats_ok(&ks->dt[i])) return 0;
  return ks->fail_bytes == 0 && ks->fail_repeat == 0 && ks->fail_status == 0 && ks->fail_apply == 0 &&
         ks->fail_setup == 0;
}

static void finish(const char *what, const kstats *ks) {
  printf("%s: %zu cases, %zu token rows written, %zu skipped; failures: bytes %zu repeat %zu status %zu apply %zu "
         "setup %zu\n", what, ks->cases, ks->written_rows, ks->skipped_rows, ks->fail_bytes, ks->fail_repeat,
         ks->fail_status, ks->fail_apply, ks->fail_setup);
  for (int i = 0; i < 3; i++)
    if (ks->dt[i].pairs)
      printf("  %-4s pairs %zu: max err %.3g (vs used c/s), %.3g (vs true), bound use %.3g; fail bits %zu bound %zu "
             "true %zu\n", tu_dtype_name((rotary_dtype)i), ks->dt[i].pairs, ks->dt[i].max_err, ks->dt[i].max_err_true,
             ks->dt[i].max_bound_use, ks->dt[i].fail_bits, ks->dt[i].fail_bound, ks->dt[i].fail_true);
  g_total.cases += ks->cases;
  for (int i = 0; i < 3; i++) oracle_stats_merge(&g_total.dt[i], &ks->dt[i]);
  assert_true(ks->cases > 0);
  assert_true(kstats_ok(ks));
}

/* ---- cases ---- */

static const rotary_cache_index kinds[5] = {ROTARY_CACHE_SEQUENCES, ROTARY_CACHE_SEQUENCES, ROTARY_CACHE_SLOTS,
                                            ROTARY_CACHE_PAGES, ROTARY_CACHE_PAGES};

static float random_scale(tu_rng *rng) {
  return ldexpf(1.0f + (float)tu_rng_below(rng, 1024) / 1024.0f, (int)tu_rng_below(rng, 12) - 9);
}

/* The table length of a case with a table: 4096 positions (quick mode: 256). A rope's table costs about 0.15 ms a
 * position to build under valgrind, which runs the quick mode; the table path is the same for any length. */
static size_t table_len(void) { return tu_quick() ? 256 : 4096; }

/* Case v of the sweep: the dtype grid and the cache kinds by counter, everything else drawn. */
static kcase make_case(unsigned v, uint64_t seed) {
  static const size_t hds[8] = {8, 16, 32, 64, 80, 128, 2, 6};
  static const size_t heads[7][2] = {{4, 2}, {32, 8}, {8, 1}, {3, 3}, {0, 2}, {6, 2}, {1, 1}};
  static const size_t blocks[3] = {1, 16, 128};
  tu_rng rng;
  tu_rng_seed(&rng, seed);
  kcase kc;
  memset(&kc, 0, sizeof kc);
  kc.seed = seed;
  kc.q_dt = kc.kv_dt = (rotary_dtype)(v % 3);
  kc.cache_dt = (rotary_dtype)((v / 3) % 4);
  kc.index = kinds[(v / 12) % 5];
  kc.layout = (v / 12) % 5 == 1 || (v / 12) % 5 == 4 ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
  if (kc.index == ROTARY_CACHE_SLOTS && tu_rng_below(&rng, 4) == 0) kc.layout = ROTARY_CACHE_HND;
  kc.mode = (rotary_position_mode)((v / 60) % 5);
  kc.head_dim = hds[tu_rng_below(&rng, 8)];
  kc.rotary_dim = tu_rng_below(&rng, 3) ? kc.head_dim : 2 + 2 * (size_t)tu_rng_below(&rng, kc.head_dim / 2);
  kc.pairing = (rotary_pairing)tu_rng_below(&rng, 2);
  kc.max_positions = tu_rng_below(&rng, 4) ? table_len() : 0;
  kc.scaling = tu_rng_below(&rng, 5) ? 1.0 : 1.3465735902799727;
  const size_t *hp = heads[tu_rng_below(&rng, 7)];
  kc.q_heads = hp[0], kc.kv_heads = hp[1];
  kc.batch = 1 + (size_t)tu_rng_below(&rng, 3);
  kc.seq = tu_rng_below(&rng, 3) ? 1 + (size_t)tu_rng_below(&rng, 5) : 1 + (size_t)tu_rng_below(&rng, 12);
  kc.packed = (int)tu_rng_below(&rng, 2);
  kc.row_pad = tu_rng_below(&rng, 3) == 0 ? 7 : 0;
  kc.q_out = (int)tu_rng_below(&rng, 2);
  kc.in_layout = (int)tu_rng_below(&rng, 3);
  if (!kc.packed && tu_rng_below(&rng, 4) == 0) kc.kv_dt = (rotary_dtype)((kc.q_dt + 1 + tu_rng_below(&rng, 2)) % 3);
  kc.v_dt = kc.kv_dt;
  if (!kc.packed && tu_rng_below(&rng, 4) == 0) kc.v_dt = (rotary_dtype)((kc.kv_dt + 1 + tu_rng_below(&rng, 2)) % 3);
  kc.block_size = blocks[tu_rng_below(&rng, 3)];
  if (kc.index == ROTARY_CACHE_SEQUENCES && kc.block_size < kc.seq)
    kc.block_size = kc.seq + (size_t)tu_rng_below(&rng, 4);
  if (kc.head_dim * kc.kv_heads * kc.block_size > 65536 && kc.batch > 2) kc.batch = 2;
  kc.extra_blocks = (size_t)tu_rng_below(&rng, 3);
  kc.block_pad = tu_rng_below(&rng, 3) == 0 ? 5 : 0;
  kc.combined = (int)tu_rng_below(&rng, 2);
  kc.k_scale = random_scale(&rng), kc.v_scale = random_scale(&rng);
  return kc;
}

static void test_sweep(void **state) {
  (void)state;
  const unsigned n = tu_quick() ? 120 : 900;
  kstats ks = {0};
  for (unsigned v = 0; v < n; v++) {
    kcase kc = make_case(v, 0x6b76000ull + v * 7919ull);
    run_case(&kc, &ks);
  }
  finish("sweep", &ks);
}

/* llama3-8b heads (32 q, 8 kv, 128 dims): prefill and decode into every cache kind, bf16 and fp8 caches. */
static void test_llama_shapes(void **state) {
  (void)state;
  kstats ks = {0};
  for (unsigned v = 0; v < (tu_quick() ? 6u : 20u); v++) {
    kcase kc = make_case(v * 12 + (v % 2 ? 8 : 6), 0x11a3aull + v); /* bf16 -> bf16 or fp8 caches */
    kc.head_dim = kc.rotary_dim = 128, kc.q_heads = 32, kc.kv_heads = 8;
    kc.batch = v % 2 ? 4 : 1, kc.seq = v % 2 ? 1 : 33;
    kc.block_size = kc.index == ROTARY_CACHE_SEQUENCES ? 40 : 16;
    kc.packed = v % 4 < 2, kc.q_out = v % 3 == 0, kc.max_positions = table_len();
    run_case(&kc, &ks);
  }
  finish("llama3-8b", &ks);
}

/* MQA (8 q heads, 1 kv head) and k/v-only calls over block sizes 1, 16 and 128. */
static void test_mqa_and_block_sizes(void **state) {
  (void)state;
  static const size_t blocks[3] = {1, 16, 128};
  kstats ks = {0};
  for (unsigned v = 0; v < (tu_quick() ? 20u : 60u); v++) {
    kcase kc = make_case(v * 7, 0x3a9ull + v);
    kc.q_heads = v % 4 == 3 ? 0 : 8, kc.kv_heads = 1;
    if (kc.index != ROTARY_CACHE_SEQUENCES) kc.block_size = blocks[v % 3];
    run_case(&kc, &ks);
  }
  finish("mqa+blocks", &ks);
}

/* NaN, Inf, huge and tiny values among k and v, into every cache dtype and index: NaN stays NaN, fp8 saturates. */
static void test_special_values(void **state) {
  (void)state;
  kstats ks = {0};
  for (unsigned v = 0; v < (tu_quick() ? 40u : 120u); v++) {
    kcase kc = make_case(v, 0x5bec1a1ull + v);
    kc.specials = 1;
    run_case(&kc, &ks);
  }
  finish("specials", &ks);
}

/* Every token padding (negative slots): q is rotated, the caches keep every byte. */
static void test_all_slots_skipped(void **state) {
  (void)state;
  kstats ks = {0};
  for (unsigned v = 0; v < 24; v++) {
    kcase kc = make_case(24 + v % 12, 0x5c1bull + v);
    kc.skip_all = 1;
    run_case(&kc, &ks);
  }
  assert_int_equal(ks.written_rows, 0);
  finish("all skipped", &ks);
}

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    if (rotary_context_create((size_t)i + 1, &g_ctx[i]) != ROTARY_OK) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  printf("total: %zu cases\n", g_total.cases);
  for (int i = 0; i < 3; i++) rotary_context_destroy(g_ctx[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep),               cmocka_unit_test(test_llama_shapes),
      cmocka_unit_test(test_mqa_and_block_sizes), cmocka_unit_test(test_special_values),
      cmocka_unit_test(test_all_slots_skipped),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
