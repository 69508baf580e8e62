/* test_attention.c: rotary_attention and rotary_decode_step over random shapes, caches and modes against the fp64
 * oracle (tests/util/attn_oracle.h): error bounds per element, thread-count bit identity, NaN/Inf, lse merging. */
#define _DEFAULT_SOURCE
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
#include <sys/mman.h>
#include <unistd.h>

#include "attn_oracle.h"
#include "kv_oracle.h"
#include "rotary.h"
#include "test_util.h"

/*
 * What every case checks (the contract of rotary_attention in include/rotary.h):
 *  - every output element within the oracle's bound of the fp64 attention (attn_oracle.h derives it: fp32 dot
 *    products, exp, online softmax and sums, the rotation with fp32 cos/sin, the rounding to out_dtype), lse within
 *    its bound, NaN where the contract says NaN;
 *  - cache rows no query attends (past L_b, before every query's window, blocks no table lists, block padding) hold
 *    NaN: reading one of them for a query would make its row NaN;
 *  - q and the caches are read-only (mprotect): a write faults; out and lse sit against guard pages; the bytes of
 *    out between strided elements are unchanged;
 *  - contexts of 1, 2 and 3 threads give the bytes of ctx NULL.
 * The maximum errors per (cache dtype, out dtype) are printed in units of u = 2^-24 times W = sum_p P_p |v_p| (the
 * natural scale of an output) and, for f16/bf16 outputs, in ulps of the output type at W.
 */

static rotary_context *g_ctx[3];

typedef struct acase {
  size_t head_dim, rotary_dim;
  rotary_pairing pairing;
  int table_free;
  double scaling;
  size_t batch, tokens, q_heads, kv_heads;
  int64_t lmax;
  rotary_dtype q_dt, out_dt, cache_dt;
  rotary_cache_index index;
  rotary_cache_layout layout;
  size_t block_size, block_pad;
  int combined, share; /* k and v in one buffer; sequences share their first blocks/pages */
  rotary_attention_rope mode;
  int q_layout, out_layout, lse;
  float scale, softcap, q_mag;
  size_t window;
  float k_scale, v_scale;
  rotary_attention_precision precision;
  int wide;     /* values over many binades */
  int all_max;  /* every sequence holds lmax rows */
  int no_nan;   /* rows no query attends hold values, not NaN */
  uint64_t seed;
} acase;

/* Error figures of one (cache dtype, out dtype). */
typedef struct afig {
  size_t elems, lse_rows;
  double max_u;        /* max |err| / (u W) */
  double max_ulp;      /* f16/bf16 out: max |err| / ulp_out(W): the rounding to out_dtype is at most half of it */
  double max_use;      /* max |err| / bound */
  double max_lse, max_lse_use;
} afig;

typedef struct astats {
  afig fig[4][3];
  afig fig_bf16[4]; /* precision BF16 cases, by cache dtype (every out dtype) */
  size_t cases, fail_bound, fail_class, fail_lse, fail_canary, fail_repeat, fail_status, fail_setup, nan_rows;
  size_t printed;
} astats;

static astats g_total;

/* ---- buffers ---- */

typedef struct abuf {
  tu_guarded g;
  size_t bytes;
  unsigned char *init; /* the bytes before the call (outputs) */
} abuf;

static unsigned char *abuf_alloc(abuf *b, size_t bytes, tu_guard_side side) {
  b->bytes = bytes;
  b->init = malloc(bytes + 1);
  if (!b->init) return NULL;
  return tu_guard_alloc(&b->g, bytes, side);
}

static void abuf_free(abuf *b) {
  tu_guard_free(&b->g);
  free(b->init);
  memset(b, 0, sizeof *b);
}

static size_t dsize(rotary_dtype dt) { return kvo_dtype_size(dt); }

static void put_nan(rotary_dtype dt, unsigned char *base, size_t idx) {
  if (dt == ROTARY_F32) { const uint32_t u = 0x7FC00000u; memcpy(base + idx * 4, &u, 4); }
  else if (dt == ROTARY_F16) { const uint16_t h = 0x7E00u; memcpy(base + idx * 2, &h, 2); }
  else if (dt == ROTARY_BF16) { const uint16_t h = 0x7FC0u; memcpy(base + idx * 2, &h, 2); }
  else base[idx] = 0x7F;
}

static void put_value(rotary_dtype dt, unsigned char *base, size_t idx, float x, float scale) {
  if (dt == ROTARY_FP8_E4M3) base[idx] = kvo_fp8_encode(x, scale);
  else tu_store(dt, base, (ptrdiff_t)idx, x);
}

static float random_value(tu_rng *r, int wide) {
  if (wide && tu_rng_below(r, 3) == 0) return tu_rng_f32_wide(r, -14, 2);
  return tu_rng_f32(r, -2.0f, 2.0f);
}

/* ---- one run ---- */

typedef struct arun {
  const acase *ac;
  rotary_rope *rope;
  rotary_attention_desc d;
  abuf q, out, lse, kc, vc;
  int64_t *lengths;
  int32_t *table, *indptr, *indices, *last;
  ptrdiff_t qs[4], os[4]; /* batch, token, head strides as the test addresses them; [3] element 0's offset */
  size_t out_n;           /* out elements (its extent) */
  unsigned char *first_out, *first_lse;
} arun;

/* Strides of a [B, T, H, D] tensor: 0 contiguous (passed as 0, 0, 0), 1 the same strides given, 2 padded, 3 heads
 * major, 4 packed QKV rows (q heads, then 2 * kv_heads heads), 5 tokens in reverse order (negative token stride),
 * 6 heads and sequences in reverse order. st[3] is the offset of element (0, 0, 0) from the buffer's start. */
static void layout_strides(int layout, size_t B, size_t T, size_t H, size_t HK, size_t D, ptrdiff_t st[4],
                           ptrdiff_t pass[3]) {
  if (layout <= 1) st[2] = (ptrdiff_t)D, st[1] = (ptrdiff_t)(H * D), st[0] = (ptrdiff_t)(T * H * D);
  else if (layout == 2) st[2] = (ptrdiff_t)D + 3, st[1] = (ptrdiff_t)(H * (D + 3)) + 5, st[0] = (ptrdiff_t)T * st[1] + 7;
  else if (layout == 3) st[2] = (ptrdiff_t)(T * D), st[1] = (ptrdiff_t)D, st[0] = (ptrdiff_t)(H * T * D);
  else if (layout == 4) st[2] = (ptrdiff_t)D, st[1] = (ptrdiff_t)((H + 2 * HK) * D), st[0] = (ptrdiff_t)T * st[1];
  else if (layout == 5) st[2] = (ptrdiff_t)D, st[1] = -(ptrdiff_t)(H * D + 1), st[0] = (ptrdiff_t)(T * (H * D + 1));
  else st[2] = -(ptrdiff_t)D, st[1] = (ptrdiff_t)(H * D), st[0] = -(ptrdiff_t)(T * H * D);
  const size_t n[3] = {B, T, H};
  st[3] = 0;
  for (int i = 0; i < 3; i++) {
    pass[i] = layout == 0 ? 0 : st[i];
    if (st[i] < 0) st[3] -= (ptrdiff_t)(n[i] - 1) * st[i];
  }
}

static size_t extent(const ptrdiff_t st[4], size_t B, size_t T, size_t H, size_t D) {
  const size_t n[3] = {B, T, H};
  ptrdiff_t hi = st[3];
  for (int i = 0; i < 3; i++)
    if (st[i] > 0) hi += (ptrdiff_t)(n[i] - 1) * st[i];
  return (size_t)hi + D;
}

static size_t at(const ptrdiff_t st[4], size_t b, size_t t, size_t h) {
  return (size_t)(st[3] + (ptrdiff_t)b * st[0] + (ptrdiff_t)t * st[1] + (ptrdiff_t)h * st[2]);
}

static void shuffle32(tu_rng *rng, int32_t *a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)tu_rng_below(rng, i);
    int32_t t = a[i - 1];
    a[i - 1] = a[j], a[j] = t;
  }
}

/* The cache index: lengths, block table or pages, num_blocks. */
static int setup_index(arun *r, tu_rng *rng) {
  const acase *ac = r->ac;
  const size_t B = ac->batch, bs = ac->block_size;
  rotary_kv_cache *c = &r->d.cache;
  r->lengths = calloc(B, 8);
  if (!r->lengths) return -1;
  for (size_t b = 0; b < B; b++)
    r->lengths[b] = b == 0 || ac->all_max ? ac->lmax : (int64_t)ac->tokens + (int64_t)tu_rng_below(rng, (uint64_t)(ac->lmax - (int64_t)ac->tokens + 1));
  c->index = ac->index, c->block_size = bs;
  if (ac->index == ROTARY_CACHE_SEQUENCES) {
    c->num_blocks = B + (size_t)tu_rng_below(rng, 2);
    c->lengths = r->lengths;
    return 0;
  }
  size_t total = 0, maxn = 0, shared = 0, nb[8] = {0};
  if (B > 8) return -1;
  for (size_t b = 0; b < B; b++) {
    nb[b] = (size_t)((r->lengths[b] + (int64_t)bs - 1) / (int64_t)bs);
    if (nb[b] > maxn) maxn = nb[b];
  }
  if (ac->share) { /* every sequence starts with the first `shared` blocks of sequence 0 */
    shared = nb[0];
    for (size_t b = 1; b < B; b++) shared = nb[b] - 1 < shared ? nb[b] - 1 : shared;
  }
  for (size_t b = 0; b < B; b++) total += nb[b] - (b ? shared : 0);
  const size_t extra = (size_t)tu_rng_below(rng, 3);
  c->num_blocks = total + extra;
  int32_t *perm = malloc((c->num_blocks + 1) * 4);
  if (!perm) return -1;
  for (size_t i = 0; i < c->num_blocks; i++) perm[i] = (int32_t)i;
  shuffle32(rng, perm, c->num_blocks);
  if (ac->index == ROTARY_CACHE_SLOTS) {
    const size_t stride = maxn + (size_t)tu_rng_below(rng, 3);
    r->d.block_table_stride = stride;
    r->table = malloc(B * stride * 4 + 4);
    if (!r->table) return free(perm), -1;
    size_t k = 0;
    for (size_t b = 0; b < B; b++)
      for (size_t j = 0; j < stride; j++) /* unused entries: values no sequence may use */
        r->table[b * stride + j] = j < nb[b] ? (b && j < shared ? r->table[j] : perm[k++])
                                             : (j % 2 ? -1 - (int32_t)j : INT32_MAX - (int32_t)j);
    r->d.block_table = r->table;
    c->lengths = r->lengths;
  } else {
    r->indptr = malloc((B + 1) * 4), r->last = malloc(B * 4), r->indices = malloc(total * 4 + shared * B * 4 + 4);
    if (!r->indptr || !r->last || !r->indices) return free(perm), -1;
    size_t k = 0, w = 0;
    for (size_t b = 0; b < B; b++) {
      r->indptr[b] = (int32_t)w;
      for (size_t j = 0; j < nb[b]; j++) r->indices[w++] = b && j < shared ? r->indices[j] : perm[k++];
      r->last[b] = (int32_t)(r->lengths[b] - (int64_t)(nb[b] - 1) * (int64_t)bs);
    }
    r->indptr[B] = (int32_t)w;
    c->page_indptr = r->indptr, c->page_indices = r->indices, c->last_page_len = r->last;
    c->lengths = (const int64_t *)(uintptr_t)8; /* not read for PAGES: a pointer that faults if it were */
  }
  free(perm);
  return 0;
}

/* Caches: NaN everywhere, then random values in every row some query attends. */
static int setup_cache(arun *r, tu_rng *rng) {
  const acase *ac = r->ac;
  rotary_kv_cache *c = &r->d.cache;
  const size_t D = ac->head_dim, HK = ac->kv_heads, es = dsize(ac->cache_dt);
  const size_t dense = ac->block_size * HK * D, half = dense + ac->block_pad;
  const size_t stride = ac->combined ? 2 * half : half;
  c->layout = ac->layout, c->dtype = ac->cache_dt, c->k_scale = ac->k_scale, c->v_scale = ac->v_scale;
  c->block_stride = ac->combined || ac->block_pad || tu_rng_below(rng, 2) ? stride : 0;
  const size_t nk = (c->num_blocks - 1) * stride + dense, total = ac->combined ? nk + half : nk;
  unsigned char *k = abuf_alloc(&r->kc, total * es, TU_GUARD_START), *v;
  if (!k) return -1;
  if (ac->combined) v = k + half * es;
  else if (!(v = abuf_alloc(&r->vc, nk * es, TU_GUARD_END))) return -1;
  c->k = k, c->v = v;
  for (size_t e = 0; e < total; e++)
    if (ac->no_nan) put_value(ac->cache_dt, k, e, random_value(rng, 0), ac->k_scale);
    else put_nan(ac->cache_dt, k, e);
  for (size_t e = 0; !ac->combined && e < nk; e++)
    if (ac->no_nan) put_value(ac->cache_dt, v, e, random_value(rng, 0), ac->v_scale);
    else put_nan(ac->cache_dt, v, e);
  for (size_t b = 0; b < ac->batch; b++) {
    const int64_t L = ao_seq_len(&r->d, b);
    for (int64_t p = 0; p < L; p++) {
      int live = 0;
      for (size_t t = 0; t < ac->tokens; t++) live |= ao_attends(&r->d, L, t, p);
      if (!live) continue;
      const int64_t blk = ao_row_block(&r->d, b, p);
      for (size_t g = 0; g < HK; g++) {
        const size_t off = ao_elem_offset(&r->d, D, blk, (size_t)(p % (int64_t)ac->block_size), g);
        for (size_t e = 0; e < D; e++) {
          put_value(ac->cache_dt, k, off + e, random_value(rng, ac->wide), ac->k_scale);
          put_value(ac->cache_dt, v, off + e, random_value(rng, ac->wide), ac->v_scale);
        }
      }
    }
  }
  return 0;
}

static int setup_run(arun *r, tu_rng *rng) {
  const acase *ac = r->ac;
  const size_t B = ac->batch, T = ac->tokens, HQ = ac->q_heads, HK = ac->kv_heads, D = ac->head_dim;
  rotary_attention_desc *d = &r->d;
  rotary_attention_desc_init(d);
  d->batch = B, d->tokens = T, d->q_heads = HQ, d->kv_heads = HK;
  d->q_dtype = ac->q_dt, d->out_dtype = ac->out_dt;
  d->rope_mode = ac->mode, d->scale = ac->scale, d->softcap = ac->softcap, d->window = ac->window;
  d->precision = ac->precision;
  if (setup_index(r, rng) != 0) return -1;
  /* q */
  ptrdiff_t pass[3];
  layout_strides(ac->q_layout, B, T, HQ, HK, D, r->qs, pass);
  d->q_stride_batch = pass[0], d->q_stride_token = pass[1], d->q_stride_head = pass[2];
  const size_t qn = extent(r->qs, B, T, HQ, D);
  unsigned char *q = abuf_alloc(&r->q, qn * dsize(ac->q_dt), TU_GUARD_END);
  if (!q) return -1;
  for (size_t e = 0; e < qn; e++) tu_store(ac->q_dt, q, (ptrdiff_t)e, ac->q_mag * random_value(rng, ac->wide));
  d->q = q + (size_t)r->qs[3] * dsize(ac->q_dt);
  /* out and lse */
  layout_strides(ac->out_layout == 4 ? 2 : ac->out_layout, B, T, HQ, HK, D, r->os, pass);
  d->out_stride_batch = pass[0], d->out_stride_token = pass[1], d->out_stride_head = pass[2];
  r->out_n = extent(r->os, B, T, HQ, D);
  unsigned char *o = abuf_alloc(&r->out, r->out_n * dsize(ac->out_dt), TU_GUARD_END);
  if (!o) return -1;
  tu_canary_fill(o, r->out.bytes, tu_rng_u64(rng));
  memcpy(r->out.init, o, r->out.bytes);
  d->out = o + (size_t)r->os[3] * dsize(ac->out_dt);
  if (ac->lse) {
    unsigned char *l = abuf_alloc(&r->lse, B * T * HQ * 4, TU_GUARD_START);
    if (!l) return -1;
    tu_canary_fill(l, r->lse.bytes, tu_rng_u64(rng));
    memcpy(r->lse.init, l, r->lse.bytes);
    d->lse = (float *)(void *)l;
  }
  r->first_out = malloc(r->out.bytes + 1), r->first_lse = malloc(r->lse.bytes + 1);
  if (!r->first_out || !r->first_lse) return -1;
  if (setup_cache(r, rng) != 0) return -1;
  /* inputs read-only from here: a write into q or a cache faults */
  if (tu_guard_readonly(&r->q.g) || tu_guard_readonly(&r->kc.g) || (r->vc.g.map && tu_guard_readonly(&r->vc.g)))
    return -1;
  return 0;
}

static void free_run(arun *r) {
  abuf_free(&r->q), abuf_free(&r->out), abuf_free(&r->lse), abuf_free(&r->kc), abuf_free(&r->vc);
  free(r->lengths), free(r->table), free(r->indptr), free(r->indices), free(r->last);
  free(r->first_out), free(r->first_lse);
  rotary_rope_destroy(r->rope);
}

static void print_case(const acase *ac) {
  printf("  case seed 0x%llx: hd %zu rd %zu pairing %d table_free %d scaling %g B %zu T %zu qh %zu kvh %zu lmax %lld "
         "q %s out %s cache %d index %d layout %d bs %zu pad %zu combined %d share %d mode %d q_layout %d "
         "out_layout %d lse %d scale %g softcap %g window %zu k_scale %g v_scale %g wide %d q_mag %g precision %d\n",
         (unsigned long long)ac->seed, ac->head_dim, ac->rotary_dim, (int)ac->pairing, ac->table_free, ac->scaling,
         ac->batch, ac->tokens, ac->q_heads, ac->kv_heads, (long long)ac->lmax, tu_dtype_name(ac->q_dt),
         tu_dtype_name(ac->out_dt), (int)ac->cache_dt, (int)ac->index, (int)ac->layout, ac->block_size,
         ac->block_pad, ac->combined, ac->share, (int)ac->mode, ac->q_layout, ac->out_layout, ac->lse,
         (double)ac->scale, (double)ac->softcap, ac->window, (double)ac->k_scale, (double)ac->v_scale, ac->wide,
         (double)ac->q_mag, (int)ac->precision);
}

/* Every element against the oracle; every byte of out that is no element unchanged. */
static void check_results(arun *r, const ao_result *ref, astats *st) {
  const acase *ac = r->ac;
  const size_t D = ac->head_dim;
  afig *f = ac->precision == ROTARY_ATTENTION_BF16 ? &st->fig_bf16[ac->cache_dt] : &st->fig[ac->cache_dt][ac->out_dt];
  unsigned char *is_elem = calloc(r->out_n, 1);
  size_t bad = 0, row = 0;
  for (size_t b = 0; b < ac->batch; b++)
    for (size_t t = 0; t < ac->tokens; t++)
      for (size_t h = 0; h < ac->q_heads; h++, row++) {
        const size_t base = at(r->os, b, t, h);
        for (size_t e = 0; e < D; e++) {
          const size_t i = row * D + e;
          if (is_elem) is_elem[base + e] = 1;
          const double got = tu_load(ac->out_dt, r->out.g.ptr, (ptrdiff_t)(base + e));
          int ok;
          if (ref->cls[i] == AO_NAN) ok = isnan(got);
          else if (ref->cls[i] == AO_NONFINITE) ok = !isfinite(got);
          else {
            const double err = fabs(got - ref->out[i]);
            ok = err <= ref->bound[i];
            f->elems++;
            if (ref->weight[i] > 0 && err / (0x1p-24 * ref->weight[i]) > f->max_u) f->max_u = err / (0x1p-24 * ref->weight[i]);
            if (ref->bound[i] > 0 && err / ref->bound[i] > f->max_use) f->max_use = err / ref->bound[i];
            if (ac->out_dt != ROTARY_F32) {
              const double ulp = (double)tu_ulp(ac->out_dt, ref->weight[i]);
              if (err / ulp > f->max_ulp) f->max_ulp = err / ulp;
            }
            if (!ok) st->fail_bound++;
          }
          if (!ok) {
            if (ref->cls[i] != AO_FINITE) st->fail_class++;
            if (bad++ < 4 && st->printed++ < 12)
              printf("  FAIL out (b %zu t %zu h %zu d %zu): got %.9g want %.9g bound %.3g class %d attended %zu\n", b,
                     t, h, e, got, ref->out[i], ref->bound[i], ref->cls[i], ref->attended[row]);
          }
        }
        if (ref->lse_cls[row] == AO_NAN) st->nan_rows++;
        if (!ac->lse) continue;
        float l;
        memcpy(&l, r->lse.g.ptr + row * 4, 4);
        int ok;
        if (ref->lse_cls[row] == AO_NAN) ok = isnan(l);
        else {
          const double err = fabs((double)l - ref->lse[row]);
          ok = err <= ref->lse_bound[row];
          f->lse_rows++;
          if (err > f->max_lse) f->max_lse = err;
          if (ref->lse_bound[row] > 0 && err / ref->lse_bound[row] > f->max_lse_use) f->max_lse_use = err / ref->lse_bound[row];
        }
        if (!ok) {
          st->fail_lse++;
          if (bad++ < 4 && st->printed++ < 12)
            printf("  FAIL lse (b %zu t %zu h %zu): got %.9g want %.9g bound %.3g\n", b, t, h, (double)l, ref->lse[row],
                   ref->lse_bound[row]);
        }
      }
  const size_t es = dsize(ac->out_dt);
  for (size_t e = 0; is_elem && e < r->out_n; e++)
    if (!is_elem[e] && memcmp(r->out.g.ptr + e * es, r->out.init + e * es, es)) {
      st->fail_canary++;
      if (st->printed++ < 12) printf("  FAIL out element %zu between strided elements was written\n", e);
      break;
    }
  if (!is_elem) st->fail_setup++;
  free(is_elem);
  if (bad) print_case(ac);
}

/* The same call with another context gives the same bytes. */
static void repeat(arun *r, rotary_context *ctx, astats *st) {
  memcpy(r->out.g.ptr, r->out.init, r->out.bytes);
  if (r->lse.bytes) memcpy(r->lse.g.ptr, r->lse.init, r->lse.bytes);
  rotary_status s = rotary_attention(ctx, r->rope, &r->d);
  if (s != ROTARY_OK) {
    st->fail_status++;
    return;
  }
  if (memcmp(r->out.g.ptr, r->first_out, r->out.bytes) || (r->lse.bytes && memcmp(r->lse.g.ptr, r->first_lse, r->lse.bytes))) {
    if (st->fail_repeat++ < 3) printf("  FAIL %zu threads: bytes differ from ctx NULL\n", rotary_context_threads(ctx)), print_case(r->ac);
  }
}

static rotary_rope *rope_for(const acase *ac) {
  rotary_config cfg;
  rotary_config_init(&cfg, ac->head_dim);
  cfg.rotary_dim = ac->rotary_dim, cfg.pairing = ac->pairing, cfg.attention_scaling = ac->scaling;
  rotary_rope *rope = NULL;
  const size_t maxpos = ac->table_free ? 0 : (size_t)ac->lmax + 7;
  return rotary_rope_create(&cfg, maxpos, &rope) == ROTARY_OK ? rope : NULL;
}

static void run_case(const acase *ac, astats *st) {
  arun r;
  memset(&r, 0, sizeof r);
  r.ac = ac;
  tu_rng rng;
  tu_rng_seed(&rng, ac->seed);
  st->cases++;
  ao_result ref;
  memset(&ref, 0, sizeof ref);
  r.rope = rope_for(ac);
  if (!r.rope || setup_run(&r, &rng) != 0 || ao_alloc(&ref, ac->batch * ac->tokens * ac->q_heads, ac->head_dim) != 0 ||
      ao_attention(&r.d, r.rope, &ref) != 0) {
    st->fail_setup++;
    print_case(ac);
  } else {
    rotary_status s = rotary_attention(NULL, r.rope, &r.d);
    if (s != ROTARY_OK) {
      if (st->fail_status++ < 5) printf("  FAIL status %s\n", rotary_status_string(s)), print_case(ac);
    } else {
      memcpy(r.first_out, r.out.g.ptr, r.out.bytes);
      if (r.lse.bytes) memcpy(r.first_lse, r.lse.g.ptr, r.lse.bytes);
      check_results(&r, &ref, st);
      for (int i = 0; i < 3; i++) repeat(&r, g_ctx[i], st);
    }
  }
  ao_free(&ref);
  free_run(&r);
}

static int stats_ok(const astats *st) {
  return st->fail_bound == 0 && st->fail_class == 0 && st->fail_lse == 0 && st->fail_canary == 0 &&
         st->fail_repeat == 0 && st->fail_status == 0 && st->fail_setup == 0;
}

static const char *cache_name(int c) { return c == 3 ? "fp8" : tu_dtype_name((rotary_dtype)c); }

static void merge_fig(afig *into, const afig *f) {
  into->elems += f->elems, into->lse_rows += f->lse_rows;
  if (f->max_u > into->max_u) into->max_u = f->max_u;
  if (f->max_ulp > into->max_ulp) into->max_ulp = f->max_ulp;
  if (f->max_use > into->max_use) into->max_use = f->max_use;
  if (f->max_lse > into->max_lse) into->max_lse = f->max_lse;
  if (f->max_lse_use > into->max_lse_use) into->max_lse_use = f->max_lse_use;
}

static void print_figs(const astats *st) {
  for (int c = 0; c < 4; c++)
    for (int o = 0; o < 3; o++) {
      const afig *f = &st->fig[c][o];
      if (!f->elems) continue;
      printf("  cache %-4s out %-4s: %8zu elements: max |err| = ", cache_name(c), tu_dtype_name((rotary_dtype)o), f->elems);
      if (o == ROTARY_F32) printf("%7.2f u W", f->max_u);
      else printf("%.3f ulp_out(W)", f->max_ulp);
      printf(", max err/bound %.3g; lse %zu rows: max |err| %.3g, max err/bound %.3g\n", f->max_use, f->lse_rows,
             f->max_lse, f->max_lse_use);
    }
  for (int c = 0; c < 4; c++) {
    const afig *f = &st->fig_bf16[c];
    if (!f->elems) continue;
    printf("  cache %-4s precision BF16: %8zu elements: max |err| = %7.2f u W (any out), max err/bound %.3g; lse %zu "
           "rows: max |err| %.3g, max err/bound %.3g\n", cache_name(c), f->elems, f->max_u, f->max_use, f->lse_rows,
           f->max_lse, f->max_lse_use);
  }
}

static void finish(const char *what, const astats *st) {
  printf("%s: %zu cases, %zu NaN rows; failures: bound %zu class %zu lse %zu canary %zu repeat %zu status %zu setup %zu\n",
         what, st->cases, st->nan_rows, st->fail_bound, st->fail_class, st->fail_lse, st->fail_canary, st->fail_repeat,
         st->fail_status, st->fail_setup);
  print_figs(st);
  g_total.cases += st->cases;
  for (int c = 0; c < 4; c++)
    for (int o = 0; o < 3; o++) merge_fig(&g_total.fig[c][o], &st->fig[c][o]);
  for (int c = 0; c < 4; c++) merge_fig(&g_total.fig_bf16[c], &st->fig_bf16[c]);
  assert_true(st->cases > 0);
  assert_true(stats_ok(st));
}

/* ---- cases ---- */

static float random_scale(tu_rng *rng) {
  return ldexpf(1.0f + (float)tu_rng_below(rng, 1024) / 1024.0f, (int)tu_rng_below(rng, 8) - 5);
}

/* Work of the oracle for a case, in multiply-adds. */
static double work(const acase *ac) {
  return (double)ac->batch * (double)ac->tokens * (double)ac->q_heads * (double)ac->lmax * (double)ac->head_dim;
}

/* Case v: cache dtype, index, layout, rope mode, q and out dtypes by counter (every value within 12 cases), the rest
 * drawn; the shape cut to `budget` multiply-adds. */
static acase make_case(unsigned v, uint64_t seed, double budget) {
  static const size_t hds[9] = {8, 16, 32, 64, 80, 128, 256, 2, 6};
  static const size_t groups[3] = {1, 4, 8};
  static const size_t blocks[3] = {1, 16, 128};
  tu_rng rng;
  tu_rng_seed(&rng, seed);
  acase ac;
  memset(&ac, 0, sizeof ac);
  ac.seed = seed;
  ac.cache_dt = (rotary_dtype)(v % 4);
  ac.index = (rotary_cache_index)(v % 3);
  ac.layout = (rotary_cache_layout)((v / 4) % 2);
  ac.mode = (rotary_attention_rope)((v / 2) % 3);
  ac.q_dt = (rotary_dtype)((v / 3) % 3);
  ac.out_dt = (rotary_dtype)((v / 4 + v / 12) % 3);
  ac.head_dim = hds[tu_rng_below(&rng, 9)];
  ac.rotary_dim = tu_rng_below(&rng, 3) ? ac.head_dim : 2 + 2 * (size_t)tu_rng_below(&rng, ac.head_dim / 2);
  ac.pairing = (rotary_pairing)tu_rng_below(&rng, 2);
  ac.table_free = tu_rng_below(&rng, 5) == 0;
  ac.scaling = tu_rng_below(&rng, 5) ? 1.0 : 1.3465735902799727;
  ac.kv_heads = 1 + (size_t)tu_rng_below(&rng, 3);
  ac.q_heads = ac.kv_heads * groups[tu_rng_below(&rng, 3)];
  ac.batch = 1 + (size_t)tu_rng_below(&rng, 4);
  ac.tokens = tu_rng_below(&rng, 3) ? 1 + (size_t)tu_rng_below(&rng, 16) : 1;
  /* cached lengths log-uniform in [tokens, 5000] */
  const double lo = log((double)ac.tokens), hi = log(5000.0);
  ac.lmax = (int64_t)exp(lo + (hi - lo) * tu_rng_unit(&rng));
  if (ac.lmax < (int64_t)ac.tokens) ac.lmax = (int64_t)ac.tokens;
  while (work(&ac) > budget && ac.batch > 1) ac.batch--;
  while (work(&ac) > budget && ac.q_heads > ac.kv_heads) ac.q_heads /= 2, ac.q_heads -= ac.q_heads % ac.kv_heads;
  while (work(&ac) > budget && ac.head_dim > 16) ac.head_dim /= 2, ac.rotary_dim = ac.head_dim;
  while (work(&ac) > budget && ac.lmax > (int64_t)ac.tokens * 2) ac.lmax /= 2;
  if (ac.q_heads == 0 || ac.q_heads % ac.kv_heads) ac.q_heads = ac.kv_heads;
  ac.block_size = blocks[tu_rng_below(&rng, 3)];
  if (ac.index == ROTARY_CACHE_PAGES && tu_rng_below(&rng, 3) == 0) ac.block_size = 2 + (size_t)tu_rng_below(&rng, 40);
  if (ac.index == ROTARY_CACHE_SEQUENCES) ac.block_size = (size_t)ac.lmax + (size_t)tu_rng_below(&rng, 4);
  ac.block_pad = tu_rng_below(&rng, 3) == 0 ? 5 : 0;
  ac.combined = tu_rng_below(&rng, 3) == 0;
  ac.share = ac.batch > 1 && tu_rng_below(&rng, 2);
  ac.q_layout = (int)tu_rng_below(&rng, 7);
  ac.out_layout = (int)tu_rng_below(&rng, 7);
  ac.lse = tu_rng_below(&rng, 4) != 0;
  ac.scale = tu_rng_below(&rng, 2) ? 0.0f : tu_rng_f32(&rng, 0.02f, 0.6f);
  ac.softcap = tu_rng_below(&rng, 3) ? 0.0f : tu_rng_f32(&rng, 0.5f, 50.0f);
  ac.window = tu_rng_below(&rng, 3) ? 0 : tu_rng_below(&rng, 5) == 0 ? 1 : 1 + (size_t)tu_rng_below(&rng, (uint64_t)ac.lmax);
  ac.q_mag = tu_rng_below(&rng, 4) ? 1.0f : 4.0f;
  ac.wide = tu_rng_below(&rng, 4) == 0;
  ac.k_scale = random_scale(&rng), ac.v_scale = random_scale(&rng);
  ac.precision = v % 5 < 2 ? ROTARY_ATTENTION_BF16 : ROTARY_ATTENTION_F32; /* every cache dtype within 20 cases */
  return ac;
}

static void test_sweep(void **state) {
  (void)state;
  const unsigned n = tu_quick() ? 40 : 800;
  const double budget = tu_quick() ? 4e4 : 5e6;
  astats st;
  memset(&st, 0, sizeof st);
  for (unsigned v = 0; v < n; v++) {
    acase ac = make_case(v, 0xa7703ull + v * 7919ull, budget);
    run_case(&ac, &st);
  }
  finish("sweep", &st);
}

/* Long caches (up to 5000 rows) with every cache dtype, and llama3-8b heads (32 q, 8 kv, 128 dims). */
static void test_long_and_llama(void **state) {
  (void)state;
  astats st;
  memset(&st, 0, sizeof st);
  const unsigned n = tu_quick() ? 4 : 16;
  for (unsigned v = 0; v < n; v++) {
    acase ac = make_case(v * 5, 0x10a6ull + v, 1e12);
    ac.batch = 1, ac.lmax = tu_quick() ? 700 : 5000 - (int64_t)v;
    ac.tokens = v % 3 ? 1 : 4;
    if (v % 2 && !tu_quick()) ac.head_dim = ac.rotary_dim = 128, ac.q_heads = 32, ac.kv_heads = 8;
    else ac.head_dim = ac.rotary_dim = 16, ac.q_heads = 8, ac.kv_heads = 2;
    if (ac.index == ROTARY_CACHE_SEQUENCES) ac.block_size = (size_t)ac.lmax;
    if (ac.window > (size_t)ac.lmax) ac.window = 1000;
    run_case(&ac, &st);
  }
  finish("long+llama", &st);
}

/* Windows of 1, of exactly the sequence, and longer; one token and sixteen. */
static void test_windows(void **state) {
  (void)state;
  astats st;
  memset(&st, 0, sizeof st);
  for (unsigned v = 0; v < (tu_quick() ? 12u : 48u); v++) {
    acase ac = make_case(v, 0x3d1ull + v, tu_quick() ? 2e4 : 5e5);
    ac.tokens = v % 2 ? 16 : 1;
    if (ac.lmax < 16) ac.lmax = 16;
    if (ac.index == ROTARY_CACHE_SEQUENCES) ac.block_size = (size_t)ac.lmax + 2;
    const size_t w[4] = {1, (size_t)ac.lmax, (size_t)ac.lmax + 9, 1 + (size_t)ac.lmax / 3};
    ac.window = w[(v / 2) % 4];
    run_case(&ac, &st);
  }
  finish("windows", &st);
}

/* ---- NaN and Inf ---- */

/* A small call with 3 tokens, 2 sequences, GQA 2, window 0 or 4: a bad value at one place. The rows that see it are
 * what IEEE arithmetic makes of it (the oracle: a NaN or +Inf logit makes the row NaN, a -Inf logit weighs 0, softcap
 * maps +-Inf to +-softcap, a NaN value element makes that element NaN); every other row is bit for bit the clean
 * call's (rows outside a query's mask cannot affect it). */
typedef struct spot {
  int what;   /* 0 q, 1 key, 2 value */
  float value;
  size_t b, t, h, p, e; /* q: (b, t, h, e); cache: sequence b, row p, kv head h, dim e */
} spot;

static size_t g_nan_fail, g_nan_seen;

static rotary_attention_precision g_nan_precision; /* test_nonfinite runs every placement with each precision */

static void nan_case(rotary_dtype cache_dt, rotary_attention_rope mode, size_t window, float softcap, const spot *sp,
                     uint64_t seed) {
  acase ac;
  memset(&ac, 0, sizeof ac);
  ac.head_dim = ac.rotary_dim = 8, ac.pairing = ROTARY_PAIRING_HALF, ac.scaling = 1.0;
  ac.batch = 2, ac.tokens = 3, ac.q_heads = 4, ac.kv_heads = 2, ac.lmax = 11;
  ac.q_dt = ROTARY_F32, ac.out_dt = ROTARY_F32, ac.cache_dt = cache_dt;
  ac.index = ROTARY_CACHE_PAGES, ac.layout = ROTARY_CACHE_NHD, ac.block_size = 4;
  ac.all_max = 1, ac.no_nan = 1;
  ac.mode = mode, ac.lse = 1, ac.window = window, ac.softcap = softcap, ac.q_mag = 1.0f;
  ac.k_scale = 0.5f, ac.v_scale = 0.25f, ac.seed = seed, ac.precision = g_nan_precision;
  arun r;
  memset(&r, 0, sizeof r);
  r.ac = &ac;
  tu_rng rng;
  tu_rng_seed(&rng, seed);
  r.rope = rope_for(&ac);
  ao_result ref;
  int ok = r.rope && setup_run(&r, &rng) == 0 && ao_alloc(&ref, 24, 8) == 0;
  if (ok) {
    /* the clean call */
    ok = rotary_attention(NULL, r.rope, &r.d) == ROTARY_OK;
    unsigned char *clean = malloc(r.out.bytes), *clean_lse = malloc(r.lse.bytes);
    memcpy(clean, r.out.g.ptr, r.out.bytes), memcpy(clean_lse, r.lse.g.ptr, r.lse.bytes);
    /* the bad value (inputs are read-only: make them writable for this) */
    const int64_t L = ao_seq_len(&r.d, sp->b);
    abuf *buf = sp->what == 0 ? &r.q : sp->what == 1 ? &r.kc : (ac.combined ? &r.kc : &r.vc);
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    mprotect((unsigned char *)buf->g.map + page, buf->g.map_bytes - 2 * page, PROT_READ | PROT_WRITE);
    if (sp->what == 0) tu_store(ROTARY_F32, r.q.g.ptr, (ptrdiff_t)(at(r.qs, sp->b, sp->t, sp->h) + sp->e), sp->value);
    else {
      const size_t off = ao_elem_offset(&r.d, 8, ao_row_block(&r.d, sp->b, (int64_t)sp->p), sp->p % 4, sp->h);
      unsigned char *base = (unsigned char *)(sp->what == 1 ? r.d.cache.k : r.d.cache.v);
      if (cache_dt == ROTARY_FP8_E4M3) base[off + sp->e] = isnan(sp->value) ? 0x7F : kvo_fp8_from_f32(sp->value);
      else tu_store(cache_dt, base, (ptrdiff_t)(off + sp->e), sp->value);
    }
    ok = ok && ao_attention(&r.d, r.rope, &ref) == 0;
    memcpy(r.out.g.ptr, r.out.init, r.out.bytes), memcpy(r.lse.g.ptr, r.lse.init, r.lse.bytes);
    ok = ok && rotary_attention(NULL, r.rope, &r.d) == ROTARY_OK;
    size_t bad = 0;
    for (size_t row = 0; ok && row < 24; row++) {
      const size_t b = row / 12, t = (row / 4) % 3, h = row % 4;
      int hit;
      if (sp->what == 0) hit = b == sp->b && t == sp->t && h == sp->h;
      else hit = b == sp->b && h / 2 == sp->h && ao_attends(&r.d, L, t, (int64_t)sp->p);
      for (size_t e = 0; e < 8; e++) {
        const size_t off = at(r.os, b, t, h) + e;
        const float got = tu_load(ROTARY_F32, r.out.g.ptr, (ptrdiff_t)off);
        const size_t i = row * 8 + e;
        int good;
        if (!hit) good = memcmp(r.out.g.ptr + off * 4, clean + off * 4, 4) == 0;
        else if (ref.cls[i] == AO_NAN) good = isnan(got), g_nan_seen++;
        else if (ref.cls[i] == AO_NONFINITE) good = !isfinite(got);
        else if (ref.cls[i] == AO_FINITE) good = fabs(got - ref.out[i]) <= ref.bound[i];
        else good = 1;
        if (!good && bad++ < 3)
          printf("  FAIL NaN/Inf: %s %g at (b %zu t/p %zu/%zu h %zu e %zu) cache %s mode %d window %zu softcap %g: "
                 "out (b %zu t %zu h %zu d %zu) = %g (%s %g, class %d)\n", sp->what == 0 ? "q" : sp->what == 1 ? "key" : "value",
                 (double)sp->value, sp->b, sp->t, sp->p, sp->h, sp->e, cache_name(cache_dt), (int)mode, window,
                 (double)softcap, b, t, h, e, (double)got, hit ? "oracle" : "should equal the clean call", ref.out[i],
                 ref.cls[i]);
      }
      float l;
      memcpy(&l, r.lse.g.ptr + row * 4, 4);
      int lse_good = 1;
      if (!hit) lse_good = memcmp(r.lse.g.ptr + row * 4, clean_lse + row * 4, 4) == 0;
      else if (ref.lse_cls[row] == AO_NAN) lse_good = isnan(l);
      else if (ref.lse_cls[row] == AO_FINITE) lse_good = fabs((double)l - ref.lse[row]) <= ref.lse_bound[row];
      if (!lse_good && bad++ < 3) printf("  FAIL NaN/Inf: lse of row %zu = %g\n", row, (double)l);
    }
    g_nan_fail += bad + !ok;
    free(clean), free(clean_lse);
    ao_free(&ref);
  } else {
    g_nan_fail++;
  }
  free_run(&r);
}

static void test_nonfinite(void **state) {
  (void)state;
  g_nan_fail = 0, g_nan_seen = 0;
  size_t n = 0;
  for (int prec = 0; prec < 2; prec++)
    for (int c = 0; c < 4; c++)
      for (int m = 0; m < 3; m++)
        for (int w = 0; w < 2; w++) {
          g_nan_precision = (rotary_attention_precision)prec;
          const size_t window = w ? 4 : 0;
          const rotary_attention_rope mode = (rotary_attention_rope)m;
          const rotary_dtype cdt = (rotary_dtype)c;
          const uint64_t seed = 0x9a9ull + (uint64_t)(c * 6 + m * 2 + w);
          /* sequence 1 holds 11 rows (pages of 4); its queries sit at rows 8, 9, 10 */
          const spot spots[] = {
              {0, NAN, 1, 1, 2, 0, 3},        /* NaN in q */
              {0, INFINITY, 0, 2, 1, 0, 0},   /* Inf in q */
              {1, NAN, 1, 0, 1, 8, 5},        /* NaN in a key every query attends */
              {2, NAN, 1, 0, 0, 9, 2},        /* NaN in a value: query rows 9, 10 attend it */
              {1, NAN, 1, 0, 0, 10, 0},       /* NaN in the last row: causal, only the last query */
              {1, NAN, 1, 0, 1, 5, 7},        /* row 5: outside window 4 of every query, inside without */
              {1, NAN, 1, 0, 0, 11, 1},       /* key row 11 of the last page: past L */
              {2, NAN, 1, 0, 1, 11, 0},       /* value row 11: past L */
              {1, NAN, 1, 0, 1, 4, 2},        /* row 4: outside window 4 of every query */
              {1, INFINITY, 1, 0, 0, 9, 4},   /* Inf key */
              {1, -INFINITY, 1, 0, 1, 10, 6}, /* -Inf key */
              {2, INFINITY, 1, 0, 1, 8, 1},   /* Inf value: element 1 Inf or NaN */
          };
          for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
            if (cdt == ROTARY_FP8_E4M3 && isinf(spots[i].value) && spots[i].what) continue; /* e4m3 has no Inf */
            nan_case(cdt, mode, window, 0.0f, &spots[i], seed + i);
            n++;
          }
          /* soft-capping keeps a NaN and maps an Inf logit to +-softcap */
          nan_case(cdt, mode, window, 5.0f, &spots[2], seed + 99), n++;
          if (cdt != ROTARY_FP8_E4M3) nan_case(cdt, mode, window, 5.0f, &spots[9], seed + 98), n++;
        }
  g_nan_precision = ROTARY_ATTENTION_F32;
  printf("non-finite: %zu placements (precision F32 and BF16), %zu NaN outputs expected and checked, %zu failures\n", n,
         g_nan_seen, g_nan_fail);
  assert_int_equal(g_nan_fail, 0);
  assert_true(g_nan_seen > 1000);
}

/* ---- precision BF16: the weights rounded to nearest even ----
 * One query row (q = e_0, scale 1) over keys whose first elements are the logits 0, -2, -3 and -5 (exact in every
 * cache dtype, as is q in bf16), values e_0 * (1, 2, 4, 8): out[0] = sum_j rne(exp(s_j)) * 2^j / l with l the fp32 sum
 * of the unrounded weights. exp(-2) sits far from a bf16 tie and rounds up, so truncating the weights, or leaving
 * them unrounded, moves out[0] by far more than the tolerance (checked here, so the test can fail). */
static float rne_bf16(float x) { return tu_bf16_to_f32(tu_f32_to_bf16(x)); }

static float trunc_bf16(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  b &= 0xffff0000u;
  memcpy(&x, &b, sizeof b);
  return x;
}

static void test_bf16_weights(void **state) {
  (void)state;
  enum { D = 8, N = 4 };
  const float logits[N] = {0.0f, -2.0f, -3.0f, -5.0f};
  double want = 0, want_trunc = 0, want_plain = 0, l = 0;
  for (int j = 0; j < N; j++) {
    const float w = expf(logits[j]);
    l += (double)w;
    want += (double)rne_bf16(w) * (double)(1 << j);
    want_trunc += (double)trunc_bf16(w) * (double)(1 << j);
    want_plain += (double)w * (double)(1 << j);
  }
  want /= l, want_trunc /= l, want_plain /= l;
  const double tol = 1e-6 * want; /* the exp kernel's 2 ulp and the fp32 sums, many times over */
  assert_true(fabs(want - want_trunc) > 100 * tol && fabs(want - want_plain) > 100 * tol);
  rotary_config c;
  rotary_config_init(&c, D);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&c, 64, &rope), ROTARY_OK);
  for (int dt = 0; dt < 4; dt++) {
    unsigned char k[N * D * 4], v[N * D * 4];
    for (int j = 0; j < N; j++)
      for (int e = 0; e < D; e++) {
        put_value((rotary_dtype)dt, k, (size_t)(j * D + e), e == 0 ? logits[j] : 0.0f, 1.0f);
        put_value((rotary_dtype)dt, v, (size_t)(j * D + e), e == 0 ? (float)(1 << j) : 0.0f, 1.0f);
      }
    float q[D] = {1.0f}, out[D];
    const int64_t len = N;
    for (int prec = 0; prec < 2; prec++) {
      rotary_attention_desc d;
      rotary_attention_desc_init(&d);
      d.q_heads = d.kv_heads = 1;
      d.q = q, d.q_dtype = ROTARY_F32, d.out = out, d.out_dtype = ROTARY_F32;
      d.cache.index = ROTARY_CACHE_SEQUENCES, d.cache.layout = ROTARY_CACHE_NHD, d.cache.dtype = (rotary_dtype)dt;
      d.cache.k = k, d.cache.v = v, d.cache.num_blocks = 1, d.cache.block_size = N, d.cache.lengths = &len;
      d.cache.k_scale = d.cache.v_scale = 1.0f;
      d.scale = 1.0f;
      d.precision = (rotary_attention_precision)prec;
      for (size_t t = 0; t < 3; t++) {
        assert_int_equal(rotary_attention(t ? g_ctx[t - 1] : NULL, rope, &d), ROTARY_OK);
        const double w = prec ? want : want_plain;
        if (!(fabs((double)out[0] - w) <= tol))
          fail_msg("cache %s precision %d: out[0] = %.9g, want %.9g (truncated weights %.9g, unrounded %.9g)",
                   cache_name(dt), prec, (double)out[0], w, want_trunc, want_plain);
      }
    }
  }
  printf("bf16 weights: out[0] %.9g (rounded) against %.9g truncated and %.9g unrounded, every cache dtype\n", want,
         want_trunc, want_plain);
  rotary_rope_destroy(rope);
}

/* ---- merging two calls by their lse ---- */

/* One decode token (mode NONE, no window: the query attends every row) over a sequence's pages split in two calls
 * (the first k pages, the rest): out = (e^lse1 out1 + e^lse2 out2) / (e^lse1 + e^lse2) is the full call's, within
 * the sum of the calls' bounds; lse = log(e^lse1 + e^lse2). */
static void test_lse_merge(void **state) {
  (void)state;
  size_t fails = 0, n = 0;
  double max_u = 0;
  for (unsigned v = 0; v < (tu_quick() ? 4u : 24u); v++) {
    acase ac = make_case(v, 0x3e79eull + v, 1e5);
    ac.index = ROTARY_CACHE_PAGES, ac.mode = ROTARY_ATTENTION_ROPE_NONE, ac.window = 0, ac.tokens = 1;
    ac.batch = 1, ac.share = 0, ac.lse = 1, ac.out_dt = ROTARY_F32, ac.block_size = 16;
    if (ac.lmax < 40) ac.lmax = 40;
    arun r;
    memset(&r, 0, sizeof r);
    r.ac = &ac;
    tu_rng rng;
    tu_rng_seed(&rng, ac.seed);
    r.rope = rope_for(&ac);
    ao_result ref[3];
    memset(ref, 0, sizeof ref);
    const size_t rows = ac.q_heads, D = ac.head_dim;
    int ok = r.rope && setup_run(&r, &rng) == 0;
    for (int i = 0; ok && i < 3; i++) ok = ao_alloc(&ref[i], rows, D) == 0;
    ok = ok && ao_attention(&r.d, r.rope, &ref[0]) == 0;
    const int32_t pages = r.indptr[1], k = 1 + (int32_t)(v % (uint32_t)(pages - 1));
    float *o[2] = {malloc(rows * D * 4), malloc(rows * D * 4)}, *l[2] = {malloc(rows * 4), malloc(rows * 4)};
    int32_t ip[2][2] = {{0, k}, {0, pages - k}}, last[2] = {(int32_t)ac.block_size, r.last[0]};
    for (int part = 0; ok && part < 2; part++) {
      rotary_attention_desc d = r.d;
      d.cache.page_indptr = ip[part], d.cache.page_indices = r.indices + (part ? k : 0), d.cache.last_page_len = &last[part];
      d.out = o[part], d.lse = l[part], d.out_dtype = ROTARY_F32;
      d.out_stride_batch = d.out_stride_token = d.out_stride_head = 0;
      ok = rotary_attention(g_ctx[1], r.rope, &d) == ROTARY_OK && ao_attention(&d, r.rope, &ref[1 + part]) == 0;
    }
    for (size_t h = 0; ok && h < rows; h++) {
      const double m = fmax(l[0][h], l[1][h]), a = exp(l[0][h] - m), b = exp(l[1][h] - m);
      const double lse = m + log(a + b), want_lse = ref[0].lse[h];
      if (!(fabs(lse - want_lse) <= ref[1].lse_bound[h] + ref[2].lse_bound[h] + 1e-12 * fabs(want_lse))) {
        if (fails++ < 4) printf("  FAIL merge lse head %zu: %.9g want %.9g\n", h, lse, want_lse);
      }
      for (size_t e = 0; e < D; e++) {
        const size_t i = h * D + e;
        const double got = (a * o[0][i] + b * o[1][i]) / (a + b), want = ref[0].out[i];
        const double bound = ref[1].bound[i] + ref[2].bound[i] + 1e-12 * fabs(want);
        if (ref[0].weight[i] > 0 && fabs(got - want) / (0x1p-24 * ref[0].weight[i]) > max_u)
          max_u = fabs(got - want) / (0x1p-24 * ref[0].weight[i]);
        if (!(fabs(got - want) <= bound) && fails++ < 4)
          printf("  FAIL merge out head %zu dim %zu: %.9g want %.9g bound %.3g\n", h, e, got, want, bound);
      }
    }
    fails += !ok, n++;
    free(o[0]), free(o[1]), free(l[0]), free(l[1]);
    for (int i = 0; i < 3; i++) ao_free(&ref[i]);
    free_run(&r);
  }
  printf("lse merge: %zu splits, max |err| %.2f u W, %zu failures\n", n, max_u, fails);
  assert_int_equal(fails, 0);
}

/* ---- rotary_decode_step ---- */

/* rotary_decode_step(write, attn) against rotary_kv_write(write) then rotary_attention(attn), on two copies of
 * every buffer: the caches, q's output, out and lse, byte for byte; every index kind, cache dtype and layout. */
static void test_decode_step(void **state) {
  (void)state;
  size_t fails = 0, n = 0;
  for (unsigned v = 0; v < (tu_quick() ? 12u : 48u); v++) {
    tu_rng rng;
    tu_rng_seed(&rng, 0xdec0de + v);
    const size_t D = v % 2 ? 16 : 64, HK = 1 + v % 2, HQ = HK * (v % 3 ? 4 : 1), B = 1 + v % 3, T = 1 + (v * 7) % 5;
    const size_t cap = 48;
    const rotary_cache_index index = (rotary_cache_index)(v % 3);
    const size_t bs = index == ROTARY_CACHE_SEQUENCES ? cap : v % 4 == 1 ? 1 : 16; /* rows per block */
    const rotary_dtype cdt = (rotary_dtype)((v / 3) % 4), qdt = (rotary_dtype)((v / 2) % 3);
    rotary_config cfg;
    rotary_config_init(&cfg, D);
    rotary_rope *rope = NULL;
    if (rotary_rope_create(&cfg, 256, &rope) != ROTARY_OK) { fails++; continue; }
    int64_t len_before[3], len_after[3];
    size_t total_rows = 0;
    for (size_t b = 0; b < B; b++) {
      len_before[b] = (int64_t)tu_rng_below(&rng, cap - T);
      len_after[b] = len_before[b] + (int64_t)T;
    }
    /* blocks: SEQUENCES one per sequence of cap rows; SLOTS/PAGES ceil(cap / bs) per sequence, shuffled */
    const size_t per = index == ROTARY_CACHE_SEQUENCES ? 1 : (cap + bs - 1) / bs;
    const size_t nblocks = B * per + 1, block = bs * HK * D;
    const size_t es = dsize(cdt), cache_bytes = nblocks * block * es;
    int32_t *perm = malloc(nblocks * 4), *table = malloc(B * per * 4), indptr[4], last[3];
    for (size_t i = 0; i < nblocks; i++) perm[i] = (int32_t)i;
    shuffle32(&rng, perm, nblocks);
    for (size_t i = 0; i < B * per; i++) table[i] = index == ROTARY_CACHE_SEQUENCES ? (int32_t)i : perm[i];
    int64_t *slots = malloc(B * T * 8);
    int32_t *pages = malloc(B * per * 4);
    size_t np = 0;
    for (size_t b = 0; b < B; b++) {
      indptr[b] = (int32_t)np;
      const size_t need = (size_t)(len_after[b] + (int64_t)bs - 1) / bs;
      for (size_t j = 0; j < need; j++) pages[np++] = table[b * per + j];
      last[b] = (int32_t)(len_after[b] - (int64_t)(need - 1) * (int64_t)bs);
      for (size_t t = 0; t < T; t++) {
        const int64_t p = len_before[b] + (int64_t)t;
        slots[b * T + t] = (int64_t)table[b * per + (size_t)p / bs] * (int64_t)bs + p % (int64_t)bs;
      }
      total_rows += (size_t)len_after[b];
    }
    indptr[B] = (int32_t)np;
    /* inputs: packed QKV rows (q rotated into q_out), random; caches with random old rows */
    const size_t row = (HQ + 2 * HK) * D, nq = B * T * HQ * D;
    unsigned char *qkv = malloc(B * T * row * 4), *qo[2] = {malloc(nq * 4), malloc(nq * 4)};
    unsigned char *kc[2] = {malloc(cache_bytes), malloc(cache_bytes)}, *vc[2] = {malloc(cache_bytes), malloc(cache_bytes)};
    float *out[2] = {malloc(nq * 4), malloc(nq * 4)}, *lse[2] = {malloc(B * T * HQ * 4), malloc(B * T * HQ * 4)};
    for (size_t e = 0; e < B * T * row; e++) tu_store(qdt, qkv, (ptrdiff_t)e, tu_rng_f32(&rng, -2, 2));
    for (size_t e = 0; e < nblocks * block; e++) {
      put_value(cdt, kc[0], e, tu_rng_f32(&rng, -2, 2), 0.25f);
      put_value(cdt, vc[0], e, tu_rng_f32(&rng, -2, 2), 0.125f);
    }
    memcpy(kc[1], kc[0], cache_bytes), memcpy(vc[1], vc[0], cache_bytes);
    rotary_kv_write_desc w[2];
    rotary_attention_desc a[2];
    for (int i = 0; i < 2; i++) {
      rotary_kv_write_desc_init(&w[i]);
      w[i].batch = B, w[i].seq_len = T;
      w[i].positions.mode = ROTARY_POSITIONS_OFFSETS, w[i].positions.offsets = len_before;
      if (rotary_kv_write_desc_set_qkv(&w[i], qkv, qo[i], qdt, HQ, HK, D, 0) != ROTARY_OK) fails++;
      rotary_kv_cache *c = &w[i].cache;
      c->index = index, c->layout = (rotary_cache_layout)(v % 2), c->dtype = cdt, c->k = kc[i], c->v = vc[i];
      c->num_blocks = nblocks, c->block_size = bs;
      c->lengths = len_before, c->slot_mapping = slots, c->page_indptr = indptr, c->page_indices = pages;
      c->last_page_len = last, c->k_scale = 0.25f, c->v_scale = 0.125f;
      if (index == ROTARY_CACHE_SEQUENCES) { /* block b is sequence b: the identity */
        c->num_blocks = B;
      }
      rotary_attention_desc_init(&a[i]);
      a[i].batch = B, a[i].tokens = T, a[i].q_heads = HQ, a[i].kv_heads = HK;
      a[i].q = qo[i], a[i].q_dtype = qdt, a[i].q_stride_batch = w[i].q.out_stride_batch;
      a[i].q_stride_token = w[i].q.out_stride_seq, a[i].q_stride_head = w[i].q.out_stride_head;
      a[i].out = out[i], a[i].out_dtype = (rotary_dtype)(v % 3), a[i].lse = lse[i];
      a[i].cache = *c, a[i].cache.lengths = len_after, a[i].block_table = table, a[i].block_table_stride = per;
      a[i].rope_mode = ROTARY_ATTENTION_ROPE_NONE, a[i].window = v % 4 == 3 ? 5 : 0;
      a[i].softcap = v % 5 == 4 ? 20.0f : 0.0f;
    }
    (void)total_rows;
    const rotary_status s0 = rotary_decode_step(g_ctx[v % 3], rope, &w[0], &a[0]);
    rotary_status s1 = rotary_kv_write(NULL, rope, &w[1]);
    if (s1 == ROTARY_OK) s1 = rotary_attention(NULL, rope, &a[1]);
    const size_t on = nq * dsize(a[0].out_dtype);
    const int same = s0 == ROTARY_OK && s1 == ROTARY_OK && !memcmp(kc[0], kc[1], cache_bytes) &&
                     !memcmp(vc[0], vc[1], cache_bytes) && !memcmp(qo[0], qo[1], nq * dsize(qdt)) &&
                     !memcmp(out[0], out[1], on) && !memcmp(lse[0], lse[1], B * T * HQ * 4);
    if (!same && fails++ < 4)
      printf("  FAIL decode_step case %u (index %d cache %s q %s): status %s / %s, bytes differ\n", v, (int)index,
             cache_name(cdt), tu_dtype_name(qdt), rotary_status_string(s0), rotary_status_string(s1));
    n++;
    free(perm), free(table), free(slots), free(pages), free(qkv);
    for (int i = 0; i < 2; i++) free(qo[i]), free(kc[i]), free(vc[i]), free(out[i]), free(lse[i]);
    rotary_rope_destroy(rope);
  }
  printf("decode_step: %zu steps, %zu failures\n", n, fails);
  assert_int_equal(fails, 0);
}

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    if (rotary_context_create((size_t)i + 1, &g_ctx[i]) != ROTARY_OK) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  printf("total: %zu cases; error figures over every test (u = 2^-24; W = sum_p P_p |v_p|):\n", g_total.cases);
  print_figs(&g_total);
  for (int i = 0; i < 3; i++) rotary_context_destroy(g_ctx[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep),      cmocka_unit_test(test_long_and_llama), cmocka_unit_test(test_windows),
      cmocka_unit_test(test_nonfinite),  cmocka_unit_test(test_lse_merge),      cmocka_unit_test(test_decode_step),
      cmocka_unit_test(test_bf16_weights),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
