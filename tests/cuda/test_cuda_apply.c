/* test_cuda_apply.c: rotary_cuda_apply against the CPU rotary_apply, every byte of every buffer, over a sweep. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_util.h"
#include "oracle.h"
#include "rotary.h"
#include "test_util.h"

/*
 * Each case builds its buffers ("regions") on the host: inputs filled at random (NaN, Inf, zeros and subnormals
 * sprinkled in), outputs poisoned. The CPU library rotates one host copy (the expected bytes); the same bytes go
 * to the device, rotary_cuda_apply runs with the same descriptor on device addresses, and after
 * cudaStreamSynchronize every byte of every region comes back and must equal the CPU's: rotated and pass-through
 * dims, gaps, the v part of packed rows, the inputs of out-of-place calls, the position arrays. The flags word
 * must stay 0. The only allowance: a table-free rope at positions of 2^20 and above may give a row 1 fp32 ulp
 * from the CPU's (include/rotary.h, rotary_cuda_rope_create); such tokens are counted and reported, their row
 * must be within 1 ulp and every head of the token must then be the fp32 formula with the GPU's own row.
 */

#define TABLE 4096            /* positions of table ropes */
#define EXACT_LIMIT (1 << 20) /* table-free: below this every row must be the CPU's */
#define MAX_ROPES 160

typedef enum rope_kind { RK_PLAIN, RK_YARN, RK_LLAMA3, RK_MROPE_SECTIONS, RK_MROPE_INTERLEAVED, RK_COUNT } rope_kind;
static const char *const rope_kind_name[RK_COUNT] = {"plain", "yarn", "llama3", "mrope-sections",
                                                      "mrope-interleaved"};

typedef enum lay { LAY_BSHD, LAY_BHSD, LAY_PACKED, LAY_ODD, LAY_COUNT } lay;
static const char *const lay_name[LAY_COUNT] = {"bshd", "bhsd", "packed", "odd"};
static const char *const mode_name[] = {"offset", "offsets", "ids32", "ids64", "cos_sin", "streams32", "streams64"};

typedef struct gcase {
  size_t hd, rd;
  rotary_pairing pairing;
  rope_kind rk;
  int table_free;
  rotary_position_mode mode;
  rotary_dtype qdt, kdt;
  rotary_direction dir;
  int inplace, misalign;
  lay layout;
  size_t hq, hk; /* hk 0: k absent */
  size_t batch, seq;
  int huge; /* table-free, positions up to 2^40 (q f32, its head 0 rotates unit vectors to show the rows) */
  int default_stream;
  uint64_t seed;
} gcase;

typedef struct rope_slot {
  size_t hd, rd;
  rotary_pairing pairing;
  rope_kind rk;
  int table_free;
  rotary_rope *host;
  rotary_cuda_rope *dev;
} rope_slot;

typedef struct suite {
  rope_slot ropes[MAX_ROPES];
  size_t n_ropes;
  rotary_context *ctx;
  cudaStream_t stream;
  size_t cases, failed;
  size_t huge_tokens, row_mismatch; /* table-free rows above 2^20: tokens checked, rows 1 ulp off */
  double seconds;
} suite;

/* One buffer: its initial bytes, the CPU's result, the GPU's result, and the device copy. */
typedef struct region {
  const char *name;
  unsigned char *init, *exp, *got, *dev;
  size_t bytes;
} region;

/* q or k: where its element (0, 0, 0, 0) is (region, element offset) for input and output, and strides. */
typedef struct view {
  rotary_dtype dt;
  size_t heads;
  int in_reg, out_reg;
  size_t in0, out0;
  ptrdiff_t is[3], os[3]; /* batch, seq, head */
} view;

#define MAX_REGIONS 8

typedef struct run {
  const gcase *gc;
  size_t T, half, n_streams;
  region reg[MAX_REGIONS];
  size_t nreg;
  view v[2];
  int64_t *pos; /* per token: its largest position (any stream) for the huge check */
  rotary_apply_desc desc;
} run;

/* ---- ropes ---- */

static rotary_rope *make_host_rope(const gcase *gc) {
  rotary_config c;
  rotary_config_init(&c, gc->hd);
  c.rotary_dim = gc->rd;
  c.pairing = gc->pairing;
  switch (gc->rk) {
    case RK_YARN:
      c.scaling.type = ROTARY_SCALING_YARN;
      c.scaling.factor = 4.0;
      c.scaling.original_max_position_embeddings = 4096; /* attention factor 0.1 ln 4 + 1, derived */
      break;
    case RK_LLAMA3:
      c.base = 500000.0;
      c.scaling.type = ROTARY_SCALING_LLAMA3;
      c.scaling.factor = 8.0;
      c.scaling.low_freq_factor = 1.0;
      c.scaling.high_freq_factor = 4.0;
      c.scaling.original_max_position_embeddings = 8192;
      break;
    case RK_MROPE_SECTIONS:
    case RK_MROPE_INTERLEAVED: {
      const int sec = gc->rk == RK_MROPE_SECTIONS;
      c.base = 1000000.0;
      c.streams.layout = sec ? ROTARY_STREAMS_SECTIONS : ROTARY_STREAMS_INTERLEAVED;
      c.streams.n_streams = 3;
      c.streams.sections[0] = sec ? 16 : 24;
      c.streams.sections[1] = sec ? 24 : 20;
      c.streams.sections[2] = sec ? 24 : 20;
      break;
    }
    default: break;
  }
  rotary_rope *r = NULL;
  const rotary_status st = rotary_rope_create(&c, gc->table_free ? 0 : TABLE, &r);
  if (st != ROTARY_OK) fail_msg("rotary_rope_create %s hd %zu rd %zu: %s", rope_kind_name[gc->rk], gc->hd, gc->rd,
                                rotary_status_string(st));
  return r;
}

static rope_slot *get_rope(suite *su, const gcase *gc) {
  for (size_t i = 0; i < su->n_ropes; i++) {
    rope_slot *s = &su->ropes[i];
    if (s->hd == gc->hd && s->rd == gc->rd && s->pairing == gc->pairing && s->rk == gc->rk &&
        s->table_free == gc->table_free)
      return s;
  }
  assert_true(su->n_ropes < MAX_ROPES);
  rope_slot *s = &su->ropes[su->n_ropes++];
  s->hd = gc->hd, s->rd = gc->rd, s->pairing = gc->pairing, s->rk = gc->rk, s->table_free = gc->table_free;
  s->host = make_host_rope(gc);
  const rotary_status st = rotary_cuda_rope_create(s->host, 0, &s->dev);
  if (st != ROTARY_OK) fail_msg("rotary_cuda_rope_create: %s", rotary_status_string(st));
  return s;
}

/* ---- regions and views ---- */

static int region_new(run *r, const char *name, size_t bytes) {
  assert_true(r->nreg < MAX_REGIONS);
  region *g = &r->reg[r->nreg];
  g->name = name;
  g->bytes = bytes;
  g->init = malloc(bytes ? bytes : 1);
  g->exp = malloc(bytes ? bytes : 1);
  g->got = malloc(bytes ? bytes : 1);
  assert_true(g->init && g->exp && g->got);
  g->dev = cu_malloc(bytes);
  return (int)r->nreg++;
}

static void regions_free(run *r) {
  for (size_t i = 0; i < r->nreg; i++) {
    free(r->reg[i].init), free(r->reg[i].exp), free(r->reg[i].got);
    cu_free(r->reg[i].dev);
  }
  r->nreg = 0;
}

/* Strides of one tensor of `heads` heads for a layout (packed: rows of `row` elements). */
static void layout_strides(lay l, const gcase *gc, size_t heads, size_t row, ptrdiff_t st[3]) {
  const ptrdiff_t D = (ptrdiff_t)gc->hd, S = (ptrdiff_t)gc->seq, H = (ptrdiff_t)heads;
  switch (l) {
    case LAY_BSHD: st[2] = D, st[1] = H * D, st[0] = S * H * D; break;
    case LAY_BHSD: st[2] = S * D, st[1] = D, st[0] = H * S * D; break;
    case LAY_PACKED: st[2] = D, st[1] = (ptrdiff_t)row, st[0] = S * (ptrdiff_t)row; break;
    default: st[2] = D + 8, st[1] = H * (D + 8) + 3, st[0] = S * (H * (D + 8) + 3) + 5; break; /* LAY_ODD */
  }
}

/* Elements from (0, 0, 0, 0) to one past the last element a tensor with these (positive) strides touches. */
static size_t span(const gcase *gc, size_t heads, const ptrdiff_t st[3]) {
  return (gc->batch - 1) * (size_t)st[0] + (gc->seq - 1) * (size_t)st[1] + (heads - 1) * (size_t)st[2] + gc->hd;
}

static size_t el_in(const view *v, size_t b, size_t s, size_t h, size_t d) {
  return v->in0 + b * (size_t)v->is[0] + s * (size_t)v->is[1] + h * (size_t)v->is[2] + d;
}
static size_t el_out(const view *v, size_t b, size_t s, size_t h, size_t d) {
  return v->out0 + b * (size_t)v->os[0] + s * (size_t)v->os[1] + h * (size_t)v->os[2] + d;
}

/* Lays out q and k (regions and views) for the case. */
static void build_tensors(run *r, tu_rng *rng) {
  const gcase *gc = r->gc;
  const size_t mis = gc->misalign ? 1 : 0;
  const size_t heads[2] = {gc->hq, gc->hk};
  const rotary_dtype dts[2] = {gc->qdt, gc->kdt};
  if (gc->layout == LAY_PACKED) { /* q and k interleaved views of one buffer, v after k, never touched */
    const size_t row = (gc->hq + 2 * gc->hk) * gc->hd;
    const size_t es = tu_dtype_size(gc->qdt), n = gc->batch * gc->seq * row + mis;
    const int pr = region_new(r, "qkv", n * es);
    cu_fill_random(gc->qdt, r->reg[pr].init, n, rng, !gc->huge);
    for (int t = 0; t < 2; t++) {
      view *v = &r->v[t];
      v->dt = gc->qdt, v->heads = heads[t];
      v->in_reg = pr;
      v->in0 = mis + (t ? gc->hq * gc->hd : 0);
      layout_strides(LAY_PACKED, gc, heads[t], row, v->is);
    }
  } else {
    for (int t = 0; t < 2; t++) {
      view *v = &r->v[t];
      v->dt = dts[t], v->heads = heads[t];
      if (!heads[t]) continue;
      layout_strides(gc->layout, gc, heads[t], 0, v->is);
      const size_t n = span(gc, heads[t], v->is) + mis;
      v->in_reg = region_new(r, t ? "k in" : "q in", n * tu_dtype_size(dts[t]));
      v->in0 = mis;
      cu_fill_random(dts[t], r->reg[v->in_reg].init, n, rng, !gc->huge);
    }
  }
  for (int t = 0; t < 2; t++) {
    view *v = &r->v[t];
    if (!heads[t]) continue;
    if (gc->inplace) {
      v->out_reg = v->in_reg, v->out0 = v->in0;
      memcpy(v->os, v->is, sizeof v->os);
      continue;
    }
    layout_strides(gc->layout == LAY_PACKED ? LAY_BSHD : gc->layout, gc, heads[t], 0, v->os);
    const size_t n = span(gc, heads[t], v->os) + mis;
    v->out_reg = region_new(r, t ? "k out" : "q out", n * tu_dtype_size(v->dt));
    v->out0 = mis;
    cu_poison(r->reg[v->out_reg].init, r->reg[v->out_reg].bytes, gc->seed + (uint64_t)t);
  }
  if (gc->huge) { /* q head 0 of every token: unit pairs (1, 0), so that its output is the row the call used */
    const view *q = &r->v[0];
    for (size_t b = 0; b < gc->batch; b++)
      for (size_t s = 0; s < gc->seq; s++)
        for (size_t i = 0; i < r->half; i++) {
          size_t a, bb;
          oracle_pair_index(gc->pairing, gc->rd, i, &a, &bb);
          tu_store(ROTARY_F32, r->reg[q->in_reg].init, (ptrdiff_t)el_in(q, b, s, 0, a), 1.0f);
          tu_store(ROTARY_F32, r->reg[q->in_reg].init, (ptrdiff_t)el_in(q, b, s, 0, bb), 0.0f);
        }
  }
}

static void fill_tensor_desc(const run *r, int t, rotary_tensor *d) {
  const view *v = &r->v[t];
  memset(d, 0, sizeof *d);
  d->n_heads = v->heads;
  d->dtype = v->dt;
  if (!v->heads) return;
  const size_t es = tu_dtype_size(v->dt);
  d->in = r->reg[v->in_reg].exp + v->in0 * es;
  d->out = r->reg[v->out_reg].exp + v->out0 * es;
  d->stride_batch = v->is[0], d->stride_seq = v->is[1], d->stride_head = v->is[2];
  d->out_stride_batch = v->os[0], d->out_stride_seq = v->os[1], d->out_stride_head = v->os[2];
}

/* A position for a token: table ropes [0, TABLE), table-free [0, 2^20), huge: half the draws up to 2^40. */
static int64_t draw_pos(const gcase *gc, tu_rng *rng, int64_t room) {
  int64_t top = gc->table_free ? EXACT_LIMIT : TABLE;
  if (gc->huge && tu_rng_below(rng, 2)) top = (int64_t)1 << 40;
  top -= room;
  const uint64_t pick = tu_rng_below(rng, 16);
  if (pick == 0) return 0;
  if (pick == 1) return top - 1;
  return (int64_t)tu_rng_below(rng, (uint64_t)top);
}

/* Fills the positions of the case (arrays as regions) with host pointers into the regions' exp copies. */
static void build_positions(run *r, tu_rng *rng) {
  const gcase *gc = r->gc;
  rotary_positions *p = &r->desc.positions;
  p->mode = gc->mode;
  const size_t T = r->T;
  switch (gc->mode) {
    case ROTARY_POSITIONS_OFFSET:
      p->offset = draw_pos(gc, rng, (int64_t)gc->seq);
      for (size_t t = 0; t < T; t++) r->pos[t] = p->offset + (int64_t)(t % gc->seq);
      break;
    case ROTARY_POSITIONS_OFFSETS: {
      const int g = region_new(r, "offsets", gc->batch * sizeof(int64_t));
      int64_t *o = (int64_t *)(void *)r->reg[g].init;
      for (size_t b = 0; b < gc->batch; b++) o[b] = draw_pos(gc, rng, (int64_t)gc->seq);
      for (size_t t = 0; t < T; t++) r->pos[t] = o[t / gc->seq] + (int64_t)(t % gc->seq);
      p->offsets = (const int64_t *)(const void *)r->reg[g].exp;
      break;
    }
    case ROTARY_POSITIONS_IDS_I32:
    case ROTARY_POSITIONS_IDS_I64: {
      const int wide = gc->mode == ROTARY_POSITIONS_IDS_I64;
      const int g = region_new(r, "ids", T * (wide ? 8 : 4));
      for (size_t t = 0; t < T; t++) {
        r->pos[t] = draw_pos(gc, rng, 0);
        if (wide) {
          memcpy(r->reg[g].init + 8 * t, &r->pos[t], 8);
        } else {
          const int32_t v = (int32_t)r->pos[t];
          memcpy(r->reg[g].init + 4 * t, &v, 4);
        }
      }
      p->ids = r->reg[g].exp;
      break;
    }
    case ROTARY_POSITIONS_COS_SIN: {
      const size_t extra = tu_rng_below(rng, 2) ? 3 : 0;
      const size_t stride = r->half + extra, n = (T - 1) * stride + r->half;
      const int gcs = region_new(r, "cos", n * 4), gsn = region_new(r, "sin", n * 4);
      cu_fill_random(ROTARY_F32, r->reg[gcs].init, n, rng, 1);
      cu_fill_random(ROTARY_F32, r->reg[gsn].init, n, rng, 1);
      for (size_t i = 0; i < n; i++) { /* mostly in [-1, 1], as rows are */
        float *c = (float *)(void *)(r->reg[gcs].init + 4 * i), *s = (float *)(void *)(r->reg[gsn].init + 4 * i);
        if (isfinite(*c) && fabsf(*c) > 1.0f) *c = tu_rng_f32(rng, -1.0f, 1.0f);
        if (isfinite(*s) && fabsf(*s) > 1.0f) *s = tu_rng_f32(rng, -1.0f, 1.0f);
      }
      p->cos = (const float *)(const void *)r->reg[gcs].exp;
      p->sin = (const float *)(const void *)r->reg[gsn].exp;
      p->row_stride = extra ? stride : 0;
      for (size_t t = 0; t < T; t++) r->pos[t] = 0;
      break;
    }
    default: { /* STREAMS_I32 / I64 */
      const int wide = gc->mode == ROTARY_POSITIONS_STREAMS_I64;
      const size_t ns = r->n_streams, stride = tu_rng_below(rng, 2) ? T + 5 : T;
      const size_t n = (ns - 1) * stride + T;
      const int g = region_new(r, "stream ids", n * (wide ? 8 : 4));
      cu_poison(r->reg[g].init, r->reg[g].bytes, gc->seed ^ 77u); /* gaps between streams: unread */
      for (size_t t = 0; t < T; t++) {
        const int same = tu_rng_below(rng, 3) == 0;
        const int64_t first = draw_pos(gc, rng, 0);
        r->pos[t] = 0;
        for (size_t j = 0; j < ns; j++) {
          const int64_t id = same ? first : draw_pos(gc, rng, 0);
          if (id > r->pos[t]) r->pos[t] = id;
          if (wide) {
            memcpy(r->reg[g].init + 8 * (j * stride + t), &id, 8);
          } else {
            const int32_t v = (int32_t)id;
            memcpy(r->reg[g].init + 4 * (j * stride + t), &v, 4);
          }
        }
      }
      p->ids = r->reg[g].exp;
      p->n_streams = ns;
      p->stream_stride = stride == T && tu_rng_below(rng, 2) ? 0 : stride;
      break;
    }
  }
}

/* The device address of a host pointer into some region's exp copy (NULL stays NULL). */
static const void *to_dev(const run *r, const void *host) {
  if (!host) return NULL;
  const unsigned char *p = host;
  for (size_t i = 0; i < r->nreg; i++)
    if (p >= r->reg[i].exp && p < r->reg[i].exp + r->reg[i].bytes) return r->reg[i].dev + (p - r->reg[i].exp);
  fail_msg("to_dev: pointer outside every region");
  return NULL;
}

static void desc_to_dev(const run *r, rotary_apply_desc *d) {
  *d = r->desc;
  d->positions.offsets = to_dev(r, r->desc.positions.offsets);
  d->positions.ids = to_dev(r, r->desc.positions.ids);
  d->positions.cos = to_dev(r, r->desc.positions.cos);
  d->positions.sin = to_dev(r, r->desc.positions.sin);
  d->q.in = to_dev(r, r->desc.q.in);
  d->q.out = (void *)(uintptr_t)to_dev(r, r->desc.q.out);
  if (r->desc.k.n_heads) {
    d->k.in = to_dev(r, r->desc.k.in);
    d->k.out = (void *)(uintptr_t)to_dev(r, r->desc.k.out);
  }
}

static void describe(const gcase *gc, char *buf, size_t n) {
  snprintf(buf, n,
           "hd %zu rd %zu %s %s%s %s q %s k %s%s %s %s%s %s %zuq/%zuk %zux%zu%s seed %llu", gc->hd, gc->rd,
           gc->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved", rope_kind_name[gc->rk],
           gc->table_free ? " table-free" : "", mode_name[gc->mode], tu_dtype_name(gc->qdt),
           gc->hk ? tu_dtype_name(gc->kdt) : "-", gc->huge ? " huge" : "",
           gc->dir == ROTARY_FORWARD ? "fwd" : "inv", gc->inplace ? "in-place" : "out-of-place",
           gc->misalign ? " misaligned" : "", lay_name[gc->layout], gc->hq, gc->hk, gc->batch, gc->seq,
           gc->default_stream ? " null-stream" : "", (unsigned long long)gc->seed);
}

/* Huge table-free case: tokens whose row (q head 0) differs from the CPU's. Each such token must sit at 2^20 or
 * above, its row within 1 ulp, and every head's rotated dims the fp32 formula with the GPU's row; those bytes are
 * then copied from exp into got so that the byte comparison checks the rest. Returns the failures. */
static size_t huge_rows(run *r, suite *su) {
  const gcase *gc = r->gc;
  const view *q = &r->v[0];
  size_t bad = 0;
  float c[1024], s[1024];
  assert_true(r->half <= 1024);
  for (size_t b = 0; b < gc->batch; b++)
    for (size_t sq = 0; sq < gc->seq; sq++) {
      const size_t t = b * gc->seq + sq;
      su->huge_tokens += r->pos[t] >= EXACT_LIMIT;
      int same = 1, close = 1;
      const unsigned char *qg = r->reg[q->out_reg].got, *qe = r->reg[q->out_reg].exp;
      for (size_t i = 0; i < r->half; i++) {
        size_t a, bb;
        oracle_pair_index(gc->pairing, gc->rd, i, &a, &bb);
        const size_t ea = el_out(q, b, sq, 0, a), eb = el_out(q, b, sq, 0, bb);
        const uint32_t ga = tu_load_bits(ROTARY_F32, qg, (ptrdiff_t)ea), gb = tu_load_bits(ROTARY_F32, qg, (ptrdiff_t)eb);
        const uint32_t xa = tu_load_bits(ROTARY_F32, qe, (ptrdiff_t)ea), xb = tu_load_bits(ROTARY_F32, qe, (ptrdiff_t)eb);
        c[i] = tu_bits_f32(ga), s[i] = tu_bits_f32(gb);
        same &= ga == xa && gb == xb;
        close &= tu_ulp_dist_f32(c[i], tu_bits_f32(xa)) <= 1 && tu_ulp_dist_f32(s[i], tu_bits_f32(xb)) <= 1;
      }
      if (same) continue;
      su->row_mismatch++;
      if (r->pos[t] < EXACT_LIMIT || !close) {
        printf("  token %zu position %lld: GPU row %s the CPU's\n", t, (long long)r->pos[t],
               close ? "differs (below 2^20) from" : "more than 1 ulp from");
        bad++;
        continue;
      }
      for (int ti = 0; ti < 2; ti++) {
        const view *v = &r->v[ti];
        for (size_t h = 0; h < v->heads; h++)
          for (size_t i = 0; i < r->half; i++) {
            size_t a, bb;
            oracle_pair_index(gc->pairing, gc->rd, i, &a, &bb);
            const float x0 = tu_load(v->dt, r->reg[v->in_reg].init, (ptrdiff_t)el_in(v, b, sq, h, a));
            const float x1 = tu_load(v->dt, r->reg[v->in_reg].init, (ptrdiff_t)el_in(v, b, sq, h, bb));
            float y0, y1;
            oracle_formula_f32(x0, x1, c[i], s[i], &y0, &y1);
            const size_t oa = el_out(v, b, sq, h, a), ob = el_out(v, b, sq, h, bb);
            region *o = &r->reg[v->out_reg];
            if (tu_load_bits(v->dt, o->got, (ptrdiff_t)oa) != tu_round_bits(v->dt, y0) ||
                tu_load_bits(v->dt, o->got, (ptrdiff_t)ob) != tu_round_bits(v->dt, y1)) {
              if (bad < 8) printf("  token %zu head %zu pair %zu: not the formula with the GPU's row\n", t, h, i);
              bad++;
            }
            const size_t es = tu_dtype_size(v->dt);
            memcpy(o->got + oa * es, o->exp + oa * es, es);
            memcpy(o->got + ob * es, o->exp + ob * es, es);
          }
      }
    }
  return bad;
}

/* Runs one case; returns 0 when every byte matches. */
static int run_case(suite *su, const gcase *gc) {
  run r;
  memset(&r, 0, sizeof r);
  r.gc = gc;
  r.T = gc->batch * gc->seq;
  r.half = gc->rd / 2;
  rope_slot *rs = get_rope(su, gc);
  r.n_streams = rotary_rope_streams(rs->host);
  r.pos = calloc(r.T, sizeof *r.pos);
  assert_non_null(r.pos);
  tu_rng rng;
  tu_rng_seed(&rng, gc->seed);
  rotary_apply_desc_init(&r.desc);
  r.desc.batch = gc->batch;
  r.desc.seq_len = gc->seq;
  r.desc.direction = gc->dir;
  build_tensors(&r, &rng);
  build_positions(&r, &rng);
  for (size_t i = 0; i < r.nreg; i++) memcpy(r.reg[i].exp, r.reg[i].init, r.reg[i].bytes);
  fill_tensor_desc(&r, 0, &r.desc.q);
  fill_tensor_desc(&r, 1, &r.desc.k);
  char what[256];
  describe(gc, what, sizeof what);
  rotary_status st = rotary_apply(su->ctx, rs->host, &r.desc);
  if (st != ROTARY_OK) fail_msg("CPU rotary_apply refused the case (%s): %s", rotary_status_string(st), what);

  for (size_t i = 0; i < r.nreg; i++) cu_to_device(r.reg[i].dev, r.reg[i].init, r.reg[i].bytes);
  int32_t *flags = cu_malloc(sizeof(int32_t)), hflags = -1;
  cu_memset(flags, 0, sizeof(int32_t));
  rotary_apply_desc dd;
  desc_to_dev(&r, &dd);
  void *stream = gc->default_stream ? NULL : (void *)su->stream;
  st = rotary_cuda_apply(rs->dev, &dd, stream, flags);
  size_t bad = 0;
  if (st != ROTARY_OK) {
    printf("FAIL %s: rotary_cuda_apply returned %s\n", what, rotary_status_string(st));
    bad++;
  }
  cu_sync(stream);
  cu_to_host(&hflags, flags, sizeof hflags);
  cu_free(flags);
  if (st == ROTARY_OK && hflags != 0) {
    printf("FAIL %s: flags %d\n", what, (int)hflags);
    bad++;
  }
  for (size_t i = 0; i < r.nreg; i++) cu_to_host(r.reg[i].got, r.reg[i].dev, r.reg[i].bytes);
  if (gc->huge && !bad) {
    const size_t hb = huge_rows(&r, su);
    if (hb) printf("FAIL %s: %zu table-free outputs outside the allowance\n", what, hb);
    bad += hb;
  }
  for (size_t i = 0; i < r.nreg && st == ROTARY_OK; i++) {
    const region *g = &r.reg[i];
    if (memcmp(g->got, g->exp, g->bytes) == 0) continue;
    size_t first = 0, n = 0;
    for (size_t j = g->bytes; j-- > 0;)
      if (g->got[j] != g->exp[j]) first = j, n++;
    printf("FAIL %s: region \"%s\" (%zu bytes): %zu bytes differ, first at byte %zu (got 0x%02x, CPU 0x%02x, was "
           "0x%02x)\n",
           what, g->name, g->bytes, n, first, g->got[first], g->exp[first], g->init[first]);
    bad++;
  }
  regions_free(&r);
  free(r.pos);
  su->cases++;
  su->failed += bad != 0;
  return bad != 0;
}

/* ---- case generation ---- */

static const size_t dims[][2] = {{128, 128}, {128, 64}, {64, 32}, {80, 80}, {256, 128}, {2, 2}, {6, 4}};
#define N_DIMS (sizeof dims / sizeof dims[0])
static const size_t gqa[][2] = {{32, 8}, {8, 1}, {8, 0}, {4, 4}};
#define N_GQA (sizeof gqa / sizeof gqa[0])
static const size_t small_bs[][2] = {{1, 1}, {64, 1}, {3, 17}};
#define N_BS (sizeof small_bs / sizeof small_bs[0])
static const rotary_dtype dtypes[3] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};

static gcase base_case(uint64_t seed) {
  gcase g;
  memset(&g, 0, sizeof g);
  g.hd = 128, g.rd = 128;
  g.pairing = ROTARY_PAIRING_HALF;
  g.rk = RK_PLAIN;
  g.mode = ROTARY_POSITIONS_IDS_I64;
  g.qdt = g.kdt = ROTARY_BF16;
  g.dir = ROTARY_FORWARD;
  g.inplace = 1;
  g.layout = LAY_BSHD;
  g.hq = 32, g.hk = 8;
  g.batch = 3, g.seq = 17;
  g.seed = seed;
  return g;
}

/* Makes a case valid: mRoPE needs rd 128; packed needs k with q's dtype; huge needs a table-free rope, q f32 and
 * a 64-bit or offset position mode; the streams modes on a one-stream rope pass 1 stream. */
static void fix_case(gcase *g) {
  if ((g->rk == RK_MROPE_SECTIONS || g->rk == RK_MROPE_INTERLEAVED) && g->rd != 128) g->rk = RK_PLAIN;
  if (g->layout == LAY_PACKED) {
    if (!g->hk) g->hk = 1;
    g->kdt = g->qdt;
  }
  if (g->huge) {
    g->table_free = 1;
    g->qdt = ROTARY_F32;
    if (g->layout == LAY_PACKED) g->kdt = ROTARY_F32;
    if (g->mode != ROTARY_POSITIONS_OFFSET && g->mode != ROTARY_POSITIONS_OFFSETS) g->mode = ROTARY_POSITIONS_IDS_I64;
  }
}

static void check_case(suite *su, gcase g, size_t *fails) {
  fix_case(&g);
  *fails += (size_t)run_case(su, &g);
}

/* One axis at a time from the base case, then every q/k dtype pair, direction and placement. */
static void test_axes(void **state) {
  suite *su = *state;
  size_t fails = 0;
  uint64_t seed = 1000;
  for (size_t i = 0; i < N_DIMS; i++) {
    gcase g = base_case(seed++);
    g.hd = dims[i][0], g.rd = dims[i][1];
    check_case(su, g, &fails);
    g.pairing = ROTARY_PAIRING_INTERLEAVED, g.seed = seed++;
    check_case(su, g, &fails);
  }
  for (int m = 0; m <= ROTARY_POSITIONS_STREAMS_I64; m++) {
    gcase g = base_case(seed++);
    g.mode = (rotary_position_mode)m;
    check_case(su, g, &fails);
  }
  for (size_t i = 0; i < N_GQA; i++) {
    gcase g = base_case(seed++);
    g.hq = gqa[i][0], g.hk = gqa[i][1];
    check_case(su, g, &fails);
  }
  for (size_t i = 0; i < N_BS; i++) {
    gcase g = base_case(seed++);
    g.batch = small_bs[i][0], g.seq = small_bs[i][1];
    check_case(su, g, &fails);
  }
  for (int l = 0; l < LAY_COUNT; l++)
    for (int mis = 0; mis < 2; mis++)
      for (int inplace = 0; inplace < 2; inplace++) {
        gcase g = base_case(seed++);
        g.layout = (lay)l, g.misalign = mis, g.inplace = inplace;
        check_case(su, g, &fails);
      }
  for (int qd = 0; qd < 3; qd++)
    for (int kd = 0; kd < 3; kd++)
      for (int dir = 0; dir < 2; dir++)
        for (int inplace = 0; inplace < 2; inplace++) {
          gcase g = base_case(seed++);
          g.qdt = dtypes[qd], g.kdt = dtypes[kd], g.dir = (rotary_direction)dir, g.inplace = inplace;
          g.default_stream = inplace;
          check_case(su, g, &fails);
        }
  assert_int_equal(fails, 0);
}

/* Every position mode with every rope kind, both pairings, table and table-free. */
static void test_modes_ropes(void **state) {
  suite *su = *state;
  size_t fails = 0;
  uint64_t seed = 2000;
  for (int m = 0; m <= ROTARY_POSITIONS_STREAMS_I64; m++)
    for (int rk = 0; rk < RK_COUNT; rk++)
      for (int p = 0; p < 2; p++)
        for (int tf = 0; tf < 2; tf++) {
          gcase g = base_case(seed++);
          g.mode = (rotary_position_mode)m, g.rk = (rope_kind)rk, g.pairing = (rotary_pairing)p, g.table_free = tf;
          g.dir = (rotary_direction)(seed & 1);
          g.qdt = dtypes[seed % 3], g.kdt = dtypes[(seed / 3) % 3];
          g.batch = 4, g.seq = 9;
          check_case(su, g, &fails);
        }
  assert_int_equal(fails, 0);
}

/* Random combinations of every axis at small sizes. */
static void test_random(void **state) {
  suite *su = *state;
  size_t fails = 0;
  tu_rng rng;
  tu_rng_seed(&rng, 0xC0DA);
  const size_t n = tu_quick() ? 60 : 400;
  for (size_t i = 0; i < n; i++) {
    gcase g = base_case(3000 + i);
    const size_t di = tu_rng_below(&rng, N_DIMS), gi = tu_rng_below(&rng, N_GQA), bi = tu_rng_below(&rng, N_BS);
    g.hd = dims[di][0], g.rd = dims[di][1];
    g.pairing = (rotary_pairing)tu_rng_below(&rng, 2);
    g.rk = (rope_kind)tu_rng_below(&rng, RK_COUNT);
    g.table_free = tu_rng_below(&rng, 4) == 0;
    g.mode = (rotary_position_mode)tu_rng_below(&rng, ROTARY_POSITIONS_STREAMS_I64 + 1);
    g.qdt = dtypes[tu_rng_below(&rng, 3)], g.kdt = dtypes[tu_rng_below(&rng, 3)];
    g.dir = (rotary_direction)tu_rng_below(&rng, 2);
    g.inplace = (int)tu_rng_below(&rng, 2), g.misalign = (int)tu_rng_below(&rng, 2);
    g.layout = (lay)tu_rng_below(&rng, LAY_COUNT);
    g.hq = gqa[gi][0], g.hk = gqa[gi][1];
    g.batch = small_bs[bi][0], g.seq = small_bs[bi][1];
    g.default_stream = tu_rng_below(&rng, 4) == 0;
    check_case(su, g, &fails);
  }
  assert_int_equal(fails, 0);
}

/* Prefill-sized calls: 2 x 2048 tokens. */
static void test_prefill(void **state) {
  suite *su = *state;
  size_t fails = 0;
  gcase g = base_case(4000);
  g.batch = 2, g.seq = 2048, g.mode = ROTARY_POSITIONS_OFFSET;
  check_case(su, g, &fails); /* bf16 BSHD in place 32q/8k */
  if (!tu_quick()) {
    gcase f = g;
    f.seed = 4001, f.qdt = f.kdt = ROTARY_F32, f.layout = LAY_BHSD, f.inplace = 0, f.mode = ROTARY_POSITIONS_OFFSETS;
    check_case(su, f, &fails);
    f = g;
    f.seed = 4002, f.qdt = f.kdt = ROTARY_F16, f.layout = LAY_PACKED, f.pairing = ROTARY_PAIRING_INTERLEAVED;
    check_case(su, f, &fails);
    f = g;
    f.seed = 4003, f.table_free = 1, f.mode = ROTARY_POSITIONS_IDS_I64, f.hd = 256, f.rd = 128, f.hq = 8, f.hk = 1;
    check_case(su, f, &fails);
    f = g;
    f.seed = 4004, f.rk = RK_MROPE_SECTIONS, f.mode = ROTARY_POSITIONS_STREAMS_I64, f.layout = LAY_ODD;
    f.misalign = 1, f.dir = ROTARY_INVERSE;
    check_case(su, f, &fails);
    f = g;
    f.seed = 4005, f.rk = RK_YARN, f.hd = 80, f.rd = 80, f.qdt = ROTARY_F32, f.kdt = ROTARY_BF16, f.inplace = 0;
    check_case(su, f, &fails);
  }
  assert_int_equal(fails, 0);
}

/* Table-free positions up to 2^40: rows must be the CPU's below 2^20; above, a row 1 ulp off is counted. */
static void test_table_free_huge(void **state) {
  suite *su = *state;
  size_t fails = 0;
  for (size_t i = 0; i < N_DIMS; i++)
    for (int p = 0; p < 2; p++) {
      gcase g = base_case(5000 + 2 * i + (size_t)p);
      g.hd = dims[i][0], g.rd = dims[i][1], g.pairing = (rotary_pairing)p;
      g.huge = 1, g.table_free = 1, g.qdt = ROTARY_F32, g.kdt = dtypes[(i + (size_t)p) % 3];
      g.hq = 2, g.hk = 1, g.batch = 16, g.seq = 64, g.mode = ROTARY_POSITIONS_IDS_I64;
      g.dir = (rotary_direction)p, g.inplace = (int)(i & 1);
      g.rk = i % 3 == 2 ? RK_YARN : RK_PLAIN;
      check_case(su, g, &fails);
    }
  printf("table-free above 2^20: %zu token rows checked, %zu rows 1 ulp from the CPU's (allowed there)\n",
         su->huge_tokens, su->row_mismatch);
  assert_int_equal(fails, 0);
}

static int setup(void **state) {
  suite *su = calloc(1, sizeof *su);
  if (!su) return -1;
  if (rotary_context_create(0, &su->ctx) != ROTARY_OK) return -1;
  if (cudaSetDevice(0) != cudaSuccess || cudaStreamCreateWithFlags(&su->stream, cudaStreamNonBlocking) != cudaSuccess)
    return -1;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  su->seconds = (double)t0.tv_sec + 1e-9 * (double)t0.tv_nsec;
  *state = su;
  return 0;
}

static int teardown(void **state) {
  suite *su = *state;
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("test_cuda_apply: %zu of %zu configurations passed (%zu ropes, %.1f s)\n", su->cases - su->failed,
         su->cases, su->n_ropes, (double)t1.tv_sec + 1e-9 * (double)t1.tv_nsec - su->seconds);
  for (size_t i = 0; i < su->n_ropes; i++) {
    rotary_cuda_rope_destroy(su->ropes[i].dev);
    rotary_rope_destroy(su->ropes[i].host);
  }
  cudaStreamDestroy(su->stream);
  rotary_context_destroy(su->ctx);
  free(su);
  return 0;
}

int main(void) {
  cu_require_device("test_cuda_apply");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_axes),     cmocka_unit_test(test_modes_ropes),    cmocka_unit_test(test_random),
      cmocka_unit_test(test_prefill),  cmocka_unit_test(test_table_free_huge),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
