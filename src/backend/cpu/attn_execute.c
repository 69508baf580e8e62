/* backend/cpu/attn_execute.c: runs an attention plan: q prepared, chunks attended (online softmax), chunks merged. */
#include "attn_execute.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

/* Address of element `off` (elements of `elem` bytes) from base. */
static inline char *at(const void *base, ptrdiff_t off, size_t elem) {
  return (char *)(uintptr_t)base + off * (ptrdiff_t)elem;
}

/* A lane (working memory of one running task): at most plan->threads tasks run at once, so one is always free. */
static size_t lane_claim(rotary_attn_plan *p) {
  for (;;) {
    for (size_t i = 0; i < p->lanes; i++) {
      int free_flag = 0;
      if (atomic_compare_exchange_strong(&p->lane_busy[i], &free_flag, 1)) return i;
    }
  }
}

static void lane_release(rotary_attn_plan *p, size_t i) { atomic_store(&p->lane_busy[i], 0); }

/* The cos/sin row of a position (the table's, or computed into buf as the table would hold it). */
static inline void position_row(const rotary_rope *rope, size_t pos, float *buf, const float **c, const float **s) {
  if (rope->table) {
    *c = rotary_rope_table_row(rope, (int64_t)pos);
  } else {
    rotary_rope_compute_row(rope, (int64_t)pos, buf, buf + rope->sin_offset);
    *c = buf;
  }
  *s = *c + rope->sin_offset;
}

/* Precision BF16: each of n floats rounded to the nearest bf16 value, ties to even (a NaN stays a NaN, quieted), kept
 * as a float whose low 16 bits are zero: what the `_dot` kernels read as bf16 words (attn_kernels.h). */
static void round_bf16(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = rotary_bf16_to_f32(rotary_f32_to_bf16(x[i]));
}

/* Range [*lo, *hi) of units that task `index` of `count` takes. */
static void task_range(size_t units, size_t index, size_t count, size_t *lo, size_t *hi) {
  const size_t base = units / count, extra = units % count;
  *lo = index * base + (index < extra ? index : extra);
  *hi = *lo + base + (index < extra);
}

/* ---- phase 1: q of every (sequence, kv head) in fp32, rotated at its position (modes Q, QK), times the scale */

static void prepare_sequence(const rotary_attn_plan *p, size_t b, float *rowbuf) {
  const rotary_attn_view *v = p->v;
  const rotary_attention_desc *d = p->d;
  const size_t hd = v->head_dim, group = v->group, kvh = d->kv_heads;
  for (size_t t = 0; t < d->tokens; t++) {
    const float *c = NULL, *s = NULL;
    if (p->rotate_f32) position_row(p->rope, v->len[b] - d->tokens + t, rowbuf, &c, &s);
    for (size_t h = 0; h < kvh; h++) {
      float *dst = p->q + ((b * kvh + h) * p->rows + t * group) * hd;
      for (size_t g = 0; g < group; g++) {
        const char *src = at(d->q, (ptrdiff_t)b * v->q_stride[0] + (ptrdiff_t)t * v->q_stride[1] +
                                       (ptrdiff_t)(h * group + g) * v->q_stride[2], v->q_elem);
        if (p->q_to_f32)
          p->q_to_f32(src, dst + g * hd, hd, 1.0f);
        else
          memcpy(dst + g * hd, src, hd * sizeof(float));
      }
      if (p->rotate_f32)
        rotary_rotate_run(p->rotate_f32, p->tuning->prefetch_bytes, dst, (ptrdiff_t)hd, dst, (ptrdiff_t)hd, group, hd,
                          v->rotary_dim, c, s);
      for (size_t i = 0; i < group * hd; i++) dst[i] *= v->scale;
      if (p->bf16) round_bf16(dst, group * hd);
    }
  }
}

static void prepare_task(void *arg, size_t index, size_t count) {
  rotary_attn_plan *p = arg;
  size_t b, end;
  task_range(p->d->batch, index, count, &b, &end);
  const size_t lane = lane_claim(p);
  float *rowbuf = p->lane + lane * p->lane_floats + p->row_at;
  for (; b < end; b++) prepare_sequence(p, b, rowbuf);
  lane_release(p, lane);
}

/* ---- phase 2: one item (sequence b, chunk c, every kv head): online softmax over the chunk's attended rows */

/* The state of one item: its partial results and the lane it runs in. */
typedef struct item_state {
  const rotary_attn_plan *p;
  size_t b, h;
  const float *q;      /* rows x head_dim, prepared */
  float *acc, *m, *l;  /* the item's partial results */
  float *logits;       /* ROW_BLOCK x key_block */
  const float *cs;     /* mode QK: the key block's first row for the rotating kernel (rows cs_stride floats apart) */
  size_t cs_stride;
  float *rowbuf;       /* QK, interleaved pairs: a cos/sin row (arranged into the block's rows) */
  rotary_attn_prefetch *pf_k, *pf_v; /* what the kernels ask for as they go: the next key block's k and v rows */
} item_state;

/* The largest of n logits (-Inf when none is above it); *bad set when one is NaN or +Inf. Four running maxima and
 * no early exit, so that the compares do not wait on one another: a maximum is the same number in any order (of a
 * +0 and a -0 either may come out; both shift every logit alike, exp(-0) = exp(+0)). */
static float row_max(const float *s, size_t n, int *bad) {
  float m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
  int b = 0;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    b |= !(s[j] < INFINITY) | !(s[j + 1] < INFINITY) | !(s[j + 2] < INFINITY) | !(s[j + 3] < INFINITY);
    m0 = s[j] > m0 ? s[j] : m0;
    m1 = s[j + 1] > m1 ? s[j + 1] : m1;
    m2 = s[j + 2] > m2 ? s[j + 2] : m2;
    m3 = s[j + 3] > m3 ? s[j + 3] : m3;
  }
  for (; j < n; j++) {
    b |= !(s[j] < INFINITY);
    m0 = s[j] > m0 ? s[j] : m0;
  }
  *bad = b;
  m0 = m1 > m0 ? m1 : m0;
  m2 = m3 > m2 ? m3 : m2;
  return m2 > m0 ? m2 : m0;
}

/* One row's online-softmax step over n logits at s, in IEEE arithmetic (rotary.h): soft-capping first (+-Inf to
 * +-softcap); a NaN or +Inf logit poisons the row (m NaN: its output and lse are NaN, as exp(Inf - Inf) would
 * make them); -Inf logits weigh 0 (a block of them only adds 0 * v); a new maximum rescales the row's sum and
 * accumulator; s becomes the weights. */
static void softmax_row(const item_state *st, size_t r, float *s, size_t n) {
  const rotary_attn_plan *p = st->p;
  const float cap = p->v->softcap;
  if (isnan(st->m[r])) return;
  if (cap != 0.0f)
    for (size_t j = 0; j < n; j++) s[j] = cap * tanhf(s[j] / cap);
  int bad;
  const float bm = row_max(s, n, &bad);
  if (bad) { /* NaN or +Inf */
    st->m[r] = NAN;
    return;
  }
  if (bm == -INFINITY) { /* every weight exp(-Inf - m) = 0 */
    memset(s, 0, n * sizeof *s);
    return;
  }
  if (bm > st->m[r]) {
    if (st->m[r] != -INFINITY) {
      const float alpha = expf(st->m[r] - bm);
      float *acc = st->acc + r * p->v->head_dim;
      st->l[r] *= alpha;
      for (size_t d = 0; d < p->v->head_dim; d++) acc[d] *= alpha;
    }
    st->m[r] = bm;
  }
  st->l[r] += p->kv.exp(s, n, st->m[r]);
  if (p->bf16) round_bf16(s, n); /* the weights; the sum l stays the fp32 sum of the unrounded ones */
}

/* Rows [r0, r1) (every one of them sees keys [lo, lo + n) of the block) through scores, softmax, values. The block's
 * head rows start at k and v, the cache's row stride apart (read in place); in mode QK the scores kernel rotates
 * each key at its row (st->cs). lo is relative to the block start. */
static void attend_rows(const item_state *st, size_t r0, size_t r1, const char *k, const char *vv, size_t lo,
                        size_t n) {
  const rotary_attn_plan *p = st->p;
  const rotary_attn_view *v = p->v;
  const size_t hd = v->head_dim, kb = p->key_block;
  const ptrdiff_t rs = v->geom.row_stride, skip = (ptrdiff_t)lo * rs * (ptrdiff_t)v->geom.elem;
  const char *krow = k + skip, *vrow = vv + skip;
  for (size_t a = r0; a < r1; a += ROTARY_ATTN_ROW_BLOCK) {
    const size_t nr = r1 - a < ROTARY_ATTN_ROW_BLOCK ? r1 - a : ROTARY_ATTN_ROW_BLOCK;
    if (st->cs) /* keys rotated in the kernel at their rows' cos/sin */
      p->kv.scores_rot[p->rope->pairing](st->q + a * hd, nr, hd, krow, rs, n, v->k_scale, st->cs + lo * st->cs_stride,
                                         st->cs_stride, p->cs_second, v->rotary_dim, st->logits, kb, st->pf_k);
    else
      p->kv.scores(st->q + a * hd, nr, hd, krow, rs, n, v->k_scale, st->logits, kb, st->pf_k);
    for (size_t r = 0; r < nr; r++) softmax_row(st, a + r, st->logits + r * kb, n);
    p->kv.values(st->logits, kb, nr, hd, vrow, rs, n, v->v_scale, st->acc + a * hd, st->pf_v);
  }
}

/* The keys [*lo, *hi) of the block [pb, pe) that query token t sees (empty: *lo >= *hi). */
static void visible(const rotary_attn_plan *p, size_t b, size_t t, size_t pb, size_t pe, size_t *lo, size_t *hi) {
  const size_t i = p->v->len[b] - p->d->tokens + t, w = p->d->window;
  const size_t first = w && i + 1 > w ? i + 1 - w : 0;
  *lo = first > pb ? first : pb;
  *hi = i + 1 < pe ? i + 1 : pe;
}

/* One key block [pb, pe) inside cache block `block`: the tokens that see the same keys of it run together. */
static void attend_block(const item_state *st, size_t pb, size_t pe) {
  const rotary_attn_plan *p = st->p;
  const rotary_attn_view *v = p->v;
  const rotary_cache_geom *g = &v->geom;
  const ptrdiff_t off = rotary_cache_offset(g, rotary_attn_slot(v, st->b, pb), st->h);
  const char *k = at(p->d->cache.k, off, g->elem), *vv = at(p->d->cache.v, off, g->elem);
  const size_t tokens = p->d->tokens, group = v->group;
  size_t t = 0;
  while (t < tokens) {
    size_t lo, hi;
    visible(p, st->b, t, pb, pe, &lo, &hi);
    size_t t1 = t + 1;
    for (; t1 < tokens; t1++) {
      size_t lo1, hi1;
      visible(p, st->b, t1, pb, pe, &lo1, &hi1);
      if (lo1 != lo || hi1 != hi) break;
    }
    if (lo < hi) attend_rows(st, t * group, t1 * group, k, vv, lo - pb, hi - lo);
    t = t1;
  }
}

/* Points the state at kv head h of item `item` (its prepared q and partial results). */
static void select_head(item_state *st, size_t item, size_t h) {
  const rotary_attn_plan *p = st->p;
  const size_t rows = p->rows, hd = p->v->head_dim, kvh = p->d->kv_heads;
  st->h = h;
  st->q = p->q + (st->b * kvh + h) * rows * hd;
  st->acc = p->partial + (item * kvh + h) * p->partial_floats;
  st->m = st->acc + rows * hd;
  st->l = st->m + rows;
}

/* The rows the rotating scores kernel reads for key rows [pb, pe), made once for every kv head: half pairs, the
 * table's rows (or rows computed into the lane); interleaved pairs, each row's B and D arranged in the lane
 * (attn_kernels.h: B = (c0, s0, c1, s1, ...), D = (-s0, c0, -s1, c1, ...)). */
static void block_rows(item_state *st, float *lane, size_t pb, size_t pe) {
  const rotary_attn_plan *p = st->p;
  const rotary_rope *rope = p->rope;
  st->cs_stride = p->cs_floats;
  if (rope->pairing == ROTARY_PAIRING_HALF && rope->table) {
    st->cs = rotary_rope_table_row(rope, (int64_t)pb);
    return;
  }
  float *rows = lane + p->cs_at;
  for (size_t j = 0; j < pe - pb; j++) {
    float *row = rows + j * p->cs_floats;
    if (rope->pairing == ROTARY_PAIRING_HALF) {
      rotary_rope_compute_row(rope, (int64_t)(pb + j), row, row + rope->sin_offset);
      continue;
    }
    const float *c, *s;
    position_row(rope, pb + j, st->rowbuf, &c, &s);
    float *B = row, *D = row + p->cs_second;
    for (size_t i = 0; i < p->v->rotary_dim / 2; i++) {
      B[2 * i] = c[i], B[2 * i + 1] = s[i];
      D[2 * i] = -s[i], D[2 * i + 1] = c[i];
    }
  }
  st->cs = rows;
}

/* Item `item`: every kv head of its chunk, key block by key block (the block's heads one after another, so an NHD
 * cache is read front to back). While a head's rows of one block are used, its kernels ask for the head's share
 * of the next block's rows (rotary_attn_plan_prefetch), a line every few keys: the rows then come from memory while the
 * arithmetic runs, where without it the block's reads and the arithmetic took turns. */
static void run_item(rotary_attn_plan *p, size_t item, size_t items_end, float *lane) {
  const size_t kvh = p->d->kv_heads, rows = p->rows, hd = p->v->head_dim;
  item_state st;
  size_t c;
  st.p = p;
  rotary_attn_plan_item(p, item, &st.b, &c);
  st.logits = lane;
  st.cs = NULL;
  st.cs_stride = 0;
  st.rowbuf = lane + p->row_at;
  rotary_attn_prefetch pf_k, pf_v;
  st.pf_k = &pf_k;
  st.pf_v = &pf_v;
  for (size_t h = 0; h < kvh; h++) {
    select_head(&st, item, h);
    memset(st.acc, 0, rows * hd * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
      st.m[r] = -INFINITY;
      st.l[r] = 0.0f;
    }
  }
  size_t pb, end;
  rotary_attn_plan_chunk_rows(p, st.b, c, &pb, &end);
  size_t pe = rotary_attn_plan_block_end(p, pb, end);
  while (pb < end) {
    if (p->rotate_in_scores) block_rows(&st, lane, pb, pe);
    const rotary_attn_key_block nb = rotary_attn_plan_block_after(p, item, st.b, pe, end, items_end);
    for (size_t h = 0; h < kvh; h++) {
      select_head(&st, item, h);
      rotary_attn_plan_prefetch(p, nb, h, pe - pb, &pf_k, &pf_v);
      attend_block(&st, pb, pe);
    }
    pb = pe;
    pe = pe < end ? nb.pe : end; /* before end, nb is this item's next block */
  }
}

static void attend_task(void *arg, size_t index, size_t count) {
  rotary_attn_plan *p = arg;
  (void)count;
  const size_t lo = index * p->per_task, hi = lo + p->per_task < p->items ? lo + p->per_task : p->items;
  const size_t lane = lane_claim(p);
  for (size_t i = lo; i < hi; i++) run_item(p, i, hi, p->lane + lane * p->lane_floats);
  lane_release(p, lane);
}

/* ---- phase 3: the chunks of each (sequence, kv head) merged in chunk order, out and lse written */

static void write_row(const rotary_attn_plan *p, size_t b, size_t h, size_t r, const float *row, float lse) {
  const rotary_attn_view *v = p->v;
  const rotary_attention_desc *d = p->d;
  const size_t t = r / v->group, qh = h * v->group + r % v->group, hd = v->head_dim;
  char *dst = at(d->out, (ptrdiff_t)b * v->out_stride[0] + (ptrdiff_t)t * v->out_stride[1] +
                             (ptrdiff_t)qh * v->out_stride[2], v->out_elem);
  if (p->out_from_f32)
    p->out_from_f32(row, dst, hd, 1.0f);
  else
    memcpy(dst, row, hd * sizeof(float));
  if (d->lse) memcpy(d->lse + (b * d->tokens + t) * d->q_heads + qh, &lse, sizeof lse);
}

static void merge_unit(const rotary_attn_plan *p, size_t unit) {
  const size_t kvh = p->d->kv_heads, b = unit / kvh, h = unit % kvh, hd = p->v->head_dim, rows = p->rows;
  size_t first_chunk, count;
  rotary_attn_plan_chunks(p, b, &first_chunk, &count);
  float *const part0 = p->partial + (p->item_start[b] * kvh + h) * p->partial_floats;
  const size_t step = kvh * p->partial_floats; /* from one chunk's slot of head h to the next's */
  for (size_t r = 0; r < rows; r++) {
    float big = -INFINITY;
    int nan = 0;
    for (size_t c = 0; c < count; c++) {
      const float m = part0[c * step + rows * hd + r];
      if (isnan(m)) nan = 1;
      if (m > big) big = m;
    }
    float *dst = part0 + r * hd; /* chunk 0's accumulator becomes the result */
    if (nan) {
      for (size_t d = 0; d < hd; d++) dst[d] = NAN;
      write_row(p, b, h, r, dst, NAN);
      continue;
    }
    /* IEEE throughout: a chunk that attended nothing (m -Inf, l 0, accumulator 0) weighs exp(-Inf) = 0; a row
     * whose every logit was -Inf (big -Inf) comes out NaN, as exp(-Inf - -Inf) makes it */
    float sum = 0.0f;
    for (size_t c = 0; c < count; c++) {
      const float *part = part0 + c * step;
      const float w = expf(part[rows * hd + r] - big);
      sum += part[rows * hd + rows + r] * w;
      if (c == 0) {
        for (size_t d = 0; d < hd; d++) dst[d] *= w;
      } else {
        const float *acc = part + r * hd;
        for (size_t d = 0; d < hd; d++) dst[d] += acc[d] * w;
      }
    }
    for (size_t d = 0; d < hd; d++) dst[d] /= sum;
    write_row(p, b, h, r, dst, big + logf(sum));
  }
}

static void merge_task(void *arg, size_t index, size_t count) {
  const rotary_attn_plan *p = arg;
  size_t u, end;
  task_range(p->d->batch * p->d->kv_heads, index, count, &u, &end);
  for (; u < end; u++) merge_unit(p, u);
}

static size_t phase_tasks(size_t units, size_t threads) {
  const size_t want = threads > 1 ? threads * 8 : 1;
  const size_t n = units < want ? units : want;
  return n < ROTARY_ATTN_MAX_TASKS ? n : ROTARY_ATTN_MAX_TASKS;
}

rotary_status rotary_attn_execute(rotary_attn_plan *plan, rotary_pool *pool, void *scratch) {
  void *owned = NULL;
  if (!scratch) { /* no context lent its memory: this call's own */
    const size_t bytes = rotary_attn_plan_scratch_bytes(plan);
    if (bytes == SIZE_MAX) return ROTARY_ERR_OUT_OF_MEMORY;
    scratch = owned = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!scratch) return ROTARY_ERR_OUT_OF_MEMORY;
  }
  rotary_attn_plan_bind(plan, scratch);
  const size_t helpers = plan->threads - 1;
  rotary_pool_run(pool, prepare_task, plan, phase_tasks(plan->d->batch, plan->threads), helpers);
  rotary_pool_run(pool, attend_task, plan, plan->tasks, helpers);
  rotary_pool_run(pool, merge_task, plan, phase_tasks(plan->d->batch * plan->d->kv_heads, plan->threads), helpers);
  free(owned);
  return ROTARY_OK;
}
