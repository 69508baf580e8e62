/* apply_case.c: runs one rotary_apply case in guarded buffers and checks every byte against the oracle. */
#include "apply_case.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One guarded buffer: its bytes before the call and a per-element "some view covers it" mask. */
typedef struct region {
  tu_guarded g;
  rotary_dtype dt;
  size_t n; /* elements */
  int is_out;
  unsigned char *init, *mask, *snap;
} region;

/* q or k as the test sees it: where element (0, 0, 0, 0) is in which region, and the strides. */
typedef struct view {
  region *in, *out;
  ptrdiff_t in0, out0;
  rotary_dtype dt;
  size_t n_heads;
  ptrdiff_t is[3], os[3]; /* batch, seq, head strides */
  tu_layout in_kind, out_kind;
} view;

typedef struct run {
  const tu_acase *ac;
  size_t T, half;
  int64_t *pos;
  float *c, *s;         /* per token: the fp32 rows the call uses */
  long double *ct, *st; /* per token: true rows */
  long double *slack;   /* per token: angle error allowance against the truth */
  tu_guarded gaux[3];   /* offsets/ids, caller cos, caller sin: exactly sized, against guard pages */
  region reg[5];
  size_t nreg;
  view v[2];
  size_t nview;
  rotary_apply_desc desc;
} run;

/* ---- memory ---- */

static float random_value(tu_rng *r, rotary_dtype dt) {
  if (tu_rng_below(r, 4) != 0) return tu_rng_f32(r, -2.0f, 2.0f);
  return dt == ROTARY_F16 ? tu_rng_f32_wide(r, -20, 3) : tu_rng_f32_wide(r, -30, 30);
}

static void layout_strides(tu_layout kind, const tu_acase *ac, size_t n_heads, int for_out, ptrdiff_t st[3]) {
  ptrdiff_t hd = (ptrdiff_t)ac->head_dim, S = (ptrdiff_t)ac->seq, H = (ptrdiff_t)n_heads;
  ptrdiff_t sh = hd + 3 + 2 * for_out, nsh = hd + 1 + for_out;
  switch (kind) {
    case TU_L_BSHD: st[0] = S * H * hd, st[1] = H * hd, st[2] = hd; break;
    case TU_L_BHSD: st[0] = H * S * hd, st[1] = hd, st[2] = S * hd; break;
    case TU_L_GAPS: st[2] = sh, st[1] = H * sh + 5, st[0] = S * (H * sh + 5) + 7; break;
    case TU_L_NEG: st[0] = S * H * nsh + 3, st[1] = -(H * nsh), st[2] = -nsh; break;
  }
}

/* Lowest and highest element offset a tensor with these strides touches. */
static void span(const ptrdiff_t st[3], const tu_acase *ac, size_t n_heads, ptrdiff_t *lo, ptrdiff_t *hi) {
  size_t n[3] = {ac->batch, ac->seq, n_heads};
  *lo = 0;
  *hi = (ptrdiff_t)ac->head_dim - 1;
  for (int k = 0; k < 3; k++) {
    ptrdiff_t e = (ptrdiff_t)(n[k] - 1) * st[k];
    if (e < 0) *lo += e;
    else *hi += e;
  }
}

static region *region_new(run *r, rotary_dtype dt, size_t n, tu_guard_side side) {
  region *g = &r->reg[r->nreg++];
  memset(g, 0, sizeof *g);
  g->dt = dt;
  g->n = n;
  if (tu_guard_alloc(&g->g, n * tu_dtype_size(dt), side) == NULL) return NULL;
  tu_canary_fill(g->g.ptr, n * tu_dtype_size(dt), r->ac->seed + r->nreg);
  return g;
}

static void fill_rows(const view *v, const tu_acase *ac, tu_rng *rng) {
  for (size_t b = 0; b < ac->batch; b++)
    for (size_t s = 0; s < ac->seq; s++)
      for (size_t h = 0; h < v->n_heads; h++) {
        ptrdiff_t row = v->in0 + (ptrdiff_t)b * v->is[0] + (ptrdiff_t)s * v->is[1] + (ptrdiff_t)h * v->is[2];
        for (size_t d = 0; d < ac->head_dim; d++)
          tu_store(v->dt, v->in->g.ptr, row + (ptrdiff_t)d, random_value(rng, v->dt));
      }
}

/* A q or k tensor in its own region(s), strides from its layout kinds. */
static int setup_tensor(run *r, const tu_tspec *ts, view *v, tu_rng *rng) {
  const tu_acase *ac = r->ac;
  ptrdiff_t lo, hi;
  memset(v, 0, sizeof *v);
  v->dt = ts->dt;
  v->n_heads = ts->n_heads;
  v->in_kind = ts->in_kind;
  v->out_kind = ts->inplace ? ts->in_kind : ts->out_kind;
  layout_strides(ts->in_kind, ac, ts->n_heads, 0, v->is);
  span(v->is, ac, ts->n_heads, &lo, &hi);
  v->in = region_new(r, ts->dt, (size_t)(hi - lo + 1 + ts->misalign), ts->side);
  if (v->in == NULL) return -1;
  v->in0 = ts->misalign - lo;
  fill_rows(v, ac, rng);
  if (ts->inplace) {
    v->out = v->in;
    v->out0 = v->in0;
    memcpy(v->os, v->is, sizeof v->is);
  } else {
    layout_strides(ts->out_kind, ac, ts->n_heads, 1, v->os);
    span(v->os, ac, ts->n_heads, &lo, &hi);
    v->out = region_new(r, ts->dt, (size_t)(hi - lo + 1 + ts->misalign),
                        ts->side == TU_GUARD_END ? TU_GUARD_START : TU_GUARD_END);
    if (v->out == NULL) return -1;
    v->out0 = ts->misalign - lo;
  }
  v->out->is_out = 1;
  return 0;
}

/* Packed QKV: one row per token holding q heads, k heads, v heads; q and k rotated in place. */
static int setup_packed(run *r, tu_rng *rng) {
  const tu_acase *ac = r->ac;
  size_t hd = ac->head_dim, row = (ac->q.n_heads + ac->k.n_heads + ac->v_heads) * hd;
  region *g = region_new(r, ac->q.dt, r->T * row + (size_t)ac->q.misalign, ac->q.side);
  if (g == NULL) return -1;
  for (size_t e = (size_t)ac->q.misalign; e < g->n; e++)
    tu_store(g->dt, g->g.ptr, (ptrdiff_t)e, random_value(rng, g->dt));
  g->is_out = 1;
  for (int t = 0; t < 2; t++) {
    view *v = &r->v[t];
    memset(v, 0, sizeof *v);
    v->in = v->out = g;
    v->dt = g->dt;
    v->n_heads = t == 0 ? ac->q.n_heads : ac->k.n_heads;
    v->in0 = v->out0 = ac->q.misalign + (ptrdiff_t)(t == 0 ? 0 : ac->q.n_heads * hd);
    v->is[0] = v->os[0] = (ptrdiff_t)(ac->seq * row);
    v->is[1] = v->os[1] = (ptrdiff_t)row;
    v->is[2] = v->os[2] = (ptrdiff_t)hd;
    v->in_kind = v->out_kind = TU_L_GAPS;
  }
  r->nview = ac->k.n_heads ? 2 : 1;
  return 0;
}

static int commit_regions(run *r) {
  for (size_t i = 0; i < r->nreg; i++) {
    region *g = &r->reg[i];
    size_t bytes = g->n * tu_dtype_size(g->dt);
    g->init = malloc(bytes);
    g->snap = malloc(bytes);
    g->mask = calloc(g->n, 1);
    if (!g->init || !g->snap || !g->mask) return -1;
    memcpy(g->init, g->g.ptr, bytes);
    if (!g->is_out && tu_guard_readonly(&g->g) != 0) return -1; /* a write into an input then faults */
  }
  return 0;
}

/* ---- positions and rows ---- */

static int64_t position_limit(const tu_acase *ac) {
  if (ac->max_positions > 0) return (int64_t)ac->max_positions;
  return ac->pos == TU_POS_HUGE ? ROTARY_MAX_POSITION + 1 : (int64_t)1 << 20;
}

/* Value j of n drawn below limit according to the case's position kind. */
static int64_t pick(const tu_acase *ac, tu_rng *rng, int64_t limit, int64_t j, int64_t n) {
  if (ac->pos == TU_POS_ZERO) return 0;
  if (ac->pos == TU_POS_MAX || ac->pos == TU_POS_HUGE) {
    uint64_t near = limit < 1000 ? (uint64_t)limit : 1000;
    return j == 0 ? limit - 1 : (j == n - 1 ? 0 : limit - 1 - (int64_t)tu_rng_below(rng, near));
  }
  if (j == 0 && n > 2) return 0;
  if (j == n - 1 && n > 2) return limit - 1;
  return (int64_t)tu_rng_below(rng, (uint64_t)limit);
}

/* Fills r->pos and the positions of the descriptor; offsets and ids live in exactly sized guarded buffers. */
static int make_positions(run *r, tu_rng *rng) {
  const tu_acase *ac = r->ac;
  rotary_positions *p = &r->desc.positions;
  int64_t limit = position_limit(ac), S = (int64_t)ac->seq;
  p->mode = ac->mode;
  if (ac->mode == ROTARY_POSITIONS_OFFSET) {
    p->offset = pick(ac, rng, limit - S + 1, 0, 1);
    for (size_t t = 0; t < r->T; t++) r->pos[t] = p->offset + (int64_t)(t % ac->seq);
  } else if (ac->mode == ROTARY_POSITIONS_OFFSETS) {
    int64_t *off = (int64_t *)tu_guard_alloc(&r->gaux[0], ac->batch * 8, TU_GUARD_END);
    if (off == NULL) return -1;
    for (size_t b = 0; b < ac->batch; b++) off[b] = pick(ac, rng, limit - S + 1, (int64_t)b, (int64_t)ac->batch);
    for (size_t t = 0; t < r->T; t++) r->pos[t] = off[t / ac->seq] + (int64_t)(t % ac->seq);
    p->offsets = off;
  } else if (ac->mode == ROTARY_POSITIONS_IDS_I32) {
    int32_t *ids = (int32_t *)tu_guard_alloc(&r->gaux[0], r->T * 4, TU_GUARD_END);
    int64_t lim = limit > INT32_MAX ? (int64_t)INT32_MAX + 1 : limit;
    if (ids == NULL) return -1;
    for (size_t t = 0; t < r->T; t++) r->pos[t] = ids[t] = (int32_t)pick(ac, rng, lim, (int64_t)t, (int64_t)r->T);
    p->ids = ids;
  } else {
    int64_t *ids = (int64_t *)tu_guard_alloc(&r->gaux[0], r->T * 8, TU_GUARD_END);
    if (ids == NULL) return -1;
    for (size_t t = 0; t < r->T; t++) r->pos[t] = ids[t] = pick(ac, rng, limit, (int64_t)t, (int64_t)r->T);
    p->ids = ids;
  }
  return 0;
}

/* COS_SIN: caller rows of arbitrary fp32 values (they need not lie on the unit circle), no scaling applied. */
static int make_caller_rows(run *r, tu_rng *rng) {
  size_t half = r->half, rs = r->ac->row_extra ? half + r->ac->row_extra : half;
  size_t n = (r->T - 1) * rs + half;
  float *c = (float *)tu_guard_alloc(&r->gaux[1], n * 4, TU_GUARD_END);
  float *s = (float *)tu_guard_alloc(&r->gaux[2], n * 4, TU_GUARD_START);
  if (c == NULL || s == NULL) return -1;
  for (size_t e = 0; e < n; e++) {
    c[e] = tu_rng_f32(rng, -1.5f, 1.5f);
    s[e] = tu_rng_f32(rng, -1.5f, 1.5f);
  }
  for (size_t t = 0; t < r->T; t++) {
    r->slack[t] = 0.0L;
    for (size_t i = 0; i < half; i++) {
      r->ct[t * half + i] = r->c[t * half + i] = c[t * rs + i];
      r->st[t * half + i] = r->s[t * half + i] = s[t * rs + i];
    }
  }
  r->desc.positions.mode = ROTARY_POSITIONS_COS_SIN;
  r->desc.positions.cos = c;
  r->desc.positions.sin = s;
  r->desc.positions.row_stride = r->ac->row_extra ? rs : 0;
  return 0;
}

/* The rows the library says it uses, and the true rows from the long-double oracle. */
static int make_rows(run *r, const rotary_rope *rope) {
  const tu_acase *ac = r->ac;
  long double inv[256];
  oracle_inv_freqs(ac->base, ac->rotary_dim, inv);
  if (rotary_rope_cos_sin(rope, r->pos, r->T, r->c, r->s) != ROTARY_OK) return -1;
  for (size_t t = 0; t < r->T; t++) {
    oracle_cos_sin_true(r->pos[t], inv, r->half, ac->scaling, r->ct + t * r->half, r->st + t * r->half);
    /* fp64 angle: inv_freq within 8 DBL_EPSILON (test_table) plus its own rounding; inv_freq[0] = 1 is largest */
    r->slack[t] = (long double)r->pos[t] * 16.0L * DBL_EPSILON * ac->scaling;
  }
  return 0;
}

static int make_all_rows(run *r, tu_rng *rng, const rotary_rope *rope) {
  if (r->ac->mode == ROTARY_POSITIONS_COS_SIN) return make_caller_rows(r, rng);
  if (make_positions(r, rng) != 0) return -1;
  return make_rows(r, rope);
}

/* ---- descriptor ---- */

/* Fills t from v; named layouts go through rotary_tensor_init, whose strides must equal the test's own. */
static int fill_tensor(rotary_tensor *t, const view *v, const tu_acase *ac) {
  size_t es = tu_dtype_size(v->dt);
  const void *in = v->in->g.ptr + v->in0 * (ptrdiff_t)es;
  void *out = v->out->g.ptr + v->out0 * (ptrdiff_t)es;
  if ((v->in_kind == TU_L_BSHD || v->in_kind == TU_L_BHSD) && v->in_kind == v->out_kind) {
    rotary_layout layout = v->in_kind == TU_L_BSHD ? ROTARY_LAYOUT_BSHD : ROTARY_LAYOUT_BHSD;
    if (rotary_tensor_init(t, layout, in, out, v->dt, ac->seq, v->n_heads, ac->head_dim) != ROTARY_OK) return -1;
    int same = t->in == in && t->out == out && t->dtype == v->dt && t->n_heads == v->n_heads &&
               t->stride_batch == v->is[0] && t->stride_seq == v->is[1] && t->stride_head == v->is[2] &&
               t->out_stride_batch == v->os[0] && t->out_stride_seq == v->os[1] && t->out_stride_head == v->os[2];
    return same ? 0 : -1;
  }
  t->in = in;
  t->out = out;
  t->dtype = v->dt;
  t->n_heads = v->n_heads;
  t->stride_batch = v->is[0], t->stride_seq = v->is[1], t->stride_head = v->is[2];
  t->out_stride_batch = v->os[0], t->out_stride_seq = v->os[1], t->out_stride_head = v->os[2];
  return 0;
}

/* ---- checks ---- */

static void check_row(run *r, const view *v, size_t t, ptrdiff_t irow, ptrdiff_t orow, tu_astats *as) {
  const tu_acase *ac = r->ac;
  long double sign = ac->dir == ROTARY_INVERSE ? -1.0L : 1.0L;
  for (size_t i = 0; i < r->half; i++) {
    size_t a, b, k = t * r->half + i;
    oracle_pair_index(ac->pairing, ac->rotary_dim, i, &a, &b);
    /* apply bound against the truth: 1 eps of rotation + 1.5 ulp of a table entry (1 ulp from correctly rounded) */
    oracle_pair p = {v->dt, tu_load(v->dt, v->in->init, irow + (ptrdiff_t)a),
                     tu_load(v->dt, v->in->init, irow + (ptrdiff_t)b), r->c[k], (float)sign * r->s[k], r->ct[k],
                     sign * r->st[k], 3.0, r->slack[t]};
    oracle_check_pair(&p, tu_load_bits(v->dt, v->out->g.ptr, orow + (ptrdiff_t)a),
                      tu_load_bits(v->dt, v->out->g.ptr, orow + (ptrdiff_t)b), &as->dt[v->dt]);
  }
  for (size_t d = 0; d < ac->head_dim; d++) v->out->mask[orow + (ptrdiff_t)d] = 1;
  for (size_t d = ac->rotary_dim; d < ac->head_dim; d++)
    if (tu_load_bits(v->dt, v->out->g.ptr, orow + (ptrdiff_t)d) !=
        tu_load_bits(v->dt, v->in->init, irow + (ptrdiff_t)d))
      as->fail_passthrough++;
}

static void check_view(run *r, const view *v, tu_astats *as) {
  const tu_acase *ac = r->ac;
  for (size_t b = 0; b < ac->batch; b++)
    for (size_t s = 0; s < ac->seq; s++)
      for (size_t h = 0; h < v->n_heads; h++) {
        ptrdiff_t irow = v->in0 + (ptrdiff_t)b * v->is[0] + (ptrdiff_t)s * v->is[1] + (ptrdiff_t)h * v->is[2];
        ptrdiff_t orow = v->out0 + (ptrdiff_t)b * v->os[0] + (ptrdiff_t)s * v->os[1] + (ptrdiff_t)h * v->os[2];
        check_row(r, v, b * ac->seq + s, irow, orow, as);
      }
}

/* Every element no view wrote (gaps, misalignment pads, v heads, whole input buffers) keeps its bytes. */
static void check_untouched(run *r, tu_astats *as) {
  for (size_t i = 0; i < r->nreg; i++) {
    const region *g = &r->reg[i];
    size_t es = tu_dtype_size(g->dt);
    for (size_t e = 0; e < g->n; e++)
      if (!g->mask[e] && memcmp(g->g.ptr + e * es, g->init + e * es, es) != 0) as->fail_canary++;
  }
}

static void restore_outputs(run *r, int snapshot) {
  for (size_t i = 0; i < r->nreg; i++) {
    region *g = &r->reg[i];
    size_t bytes = g->n * tu_dtype_size(g->dt);
    if (!g->is_out) continue;
    if (snapshot) memcpy(g->snap, g->g.ptr, bytes);
    memcpy(g->g.ptr, g->init, bytes);
  }
}

static int outputs_match_snapshot(const run *r) {
  for (size_t i = 0; i < r->nreg; i++) {
    const region *g = &r->reg[i];
    if (g->is_out && memcmp(g->snap, g->g.ptr, g->n * tu_dtype_size(g->dt)) != 0) return 0;
  }
  return 1;
}

/* The same call again (other rope or a thread pool) must give the same bits. */
static void repeat_call(run *r, rotary_context *ctx, const rotary_rope *rope, tu_astats *as) {
  restore_outputs(r, 0);
  if (rotary_apply(ctx, rope, &r->desc) != ROTARY_OK) as->fail_status++;
  if (!outputs_match_snapshot(r)) as->fail_repeat++;
}

/* ---- one case ---- */

static int run_alloc(run *r, const tu_acase *ac) {
  memset(r, 0, sizeof *r);
  r->ac = ac;
  r->T = ac->batch * ac->seq;
  r->half = ac->rotary_dim / 2;
  r->pos = calloc(r->T, sizeof *r->pos);
  r->c = malloc(r->T * r->half * sizeof *r->c);
  r->s = malloc(r->T * r->half * sizeof *r->s);
  r->ct = malloc(r->T * r->half * sizeof *r->ct);
  r->st = malloc(r->T * r->half * sizeof *r->st);
  r->slack = calloc(r->T, sizeof *r->slack);
  return r->pos && r->c && r->s && r->ct && r->st && r->slack ? 0 : -1;
}

static void run_free(run *r) {
  for (size_t i = 0; i < r->nreg; i++) {
    tu_guard_free(&r->reg[i].g);
    free(r->reg[i].init);
    free(r->reg[i].mask);
    free(r->reg[i].snap);
  }
  for (int i = 0; i < 3; i++) tu_guard_free(&r->gaux[i]);
  free(r->pos);
  free(r->c);
  free(r->s);
  free(r->ct);
  free(r->st);
  free(r->slack);
}

static int setup_tensors(run *r, tu_rng *rng) {
  const tu_acase *ac = r->ac;
  if (ac->packed) {
    if (setup_packed(r, rng) != 0) return -1;
  } else {
    if (setup_tensor(r, &ac->q, &r->v[0], rng) != 0) return -1;
    r->nview = 1;
    if (ac->k.n_heads && setup_tensor(r, &ac->k, &r->v[r->nview++], rng) != 0) return -1;
  }
  return commit_regions(r);
}

static int fill_desc(run *r) {
  const tu_acase *ac = r->ac;
  rotary_apply_desc_init(&r->desc);
  r->desc.batch = ac->batch;
  r->desc.seq_len = ac->seq;
  r->desc.direction = ac->dir;
  if (fill_tensor(&r->desc.q, &r->v[0], ac) != 0) return -1;
  if (r->nview == 2 && fill_tensor(&r->desc.k, &r->v[1], ac) != 0) return -1;
  return 0;
}

static rotary_rope *make_rope(const tu_acase *ac, size_t max_positions) {
  rotary_config cfg;
  rotary_config_init(&cfg, ac->head_dim);
  cfg.rotary_dim = ac->rotary_dim;
  cfg.pairing = ac->pairing;
  cfg.base = ac->base;
  cfg.attention_scaling = ac->scaling;
  rotary_rope *rope = NULL;
  return rotary_rope_create(&cfg, max_positions, &rope) == ROTARY_OK ? rope : NULL;
}

/* Calls, checks, then repeats with the table-free rope and the pool. */
static void call_and_check(run *r, rotary_rope *main_rope, rotary_rope *free_rope, rotary_context *pool,
                           tu_astats *as) {
  rotary_status st = rotary_apply(NULL, main_rope, &r->desc);
  if (st != ROTARY_OK) {
    printf("  rotary_apply: %s (hd %zu rd %zu mode %d)\n", rotary_status_string(st), r->ac->head_dim,
           r->ac->rotary_dim, (int)r->ac->mode);
    as->fail_status++;
    return;
  }
  for (size_t i = 0; i < r->nview; i++) check_view(r, &r->v[i], as);
  check_untouched(r, as);
  restore_outputs(r, 1);
  if (free_rope) repeat_call(r, NULL, free_rope, as);
  if (pool) repeat_call(r, pool, main_rope, as);
}

void tu_apply_case(const tu_acase *ac, rotary_context *pool, tu_astats *as) {
  run r;
  tu_rng rng;
  tu_rng_seed(&rng, ac->seed);
  rotary_rope *main_rope = make_rope(ac, ac->max_positions);
  rotary_rope *free_rope = ac->max_positions ? make_rope(ac, 0) : NULL;
  as->cases++;
  if (run_alloc(&r, ac) != 0 || setup_tensors(&r, &rng) != 0) {
    as->fail_setup++;
  } else if (main_rope == NULL || (ac->max_positions && free_rope == NULL) || fill_desc(&r) != 0) {
    as->fail_status++;
  } else {
    if (make_all_rows(&r, &rng, main_rope) != 0) as->fail_status++;
    else call_and_check(&r, main_rope, free_rope, pool, as);
  }
  rotary_rope_destroy(main_rope);
  rotary_rope_destroy(free_rope);
  run_free(&r);
}

/* ---- figures ---- */

void tu_astats_merge(tu_astats *into, const tu_astats *from) {
  for (int d = 0; d < 3; d++) oracle_stats_merge(&into->dt[d], &from->dt[d]);
  into->fail_passthrough += from->fail_passthrough;
  into->fail_canary += from->fail_canary;
  into->fail_repeat += from->fail_repeat;
  into->fail_status += from->fail_status;
  into->fail_setup += from->fail_setup;
  into->cases += from->cases;
}

void tu_astats_print(const char *what, const tu_astats *as) {
  for (int d = 0; d < 3; d++) {
    const oracle_stats *o = &as->dt[d];
    if (o->pairs == 0) continue;
    printf("[%s] %-4s pairs %9zu  max err %.4f %s (vs true cos/sin %.4f; %zu angle-limited outputs left out)  "
           "bound use %.3f  fails: bound %zu true %zu bits %zu\n",
           what, tu_dtype_name((rotary_dtype)d), o->pairs, o->max_err, d == ROTARY_F32 ? "eps*(|x0c|+|x1s|)" : "ulp",
           o->max_err_true, o->angle_limited, o->max_bound_use, o->fail_bound, o->fail_true, o->fail_bits);
  }
  printf("[%s] cases %zu  fails: status %zu setup %zu pass-through %zu untouched %zu repeat %zu\n", what, as->cases,
         as->fail_status, as->fail_setup, as->fail_passthrough, as->fail_canary, as->fail_repeat);
}

int tu_astats_ok(const tu_astats *as) {
  for (int d = 0; d < 3; d++)
    if (!oracle_stats_ok(&as->dt[d])) return 0;
  return as->fail_status + as->fail_setup + as->fail_passthrough + as->fail_canary + as->fail_repeat == 0;
}
