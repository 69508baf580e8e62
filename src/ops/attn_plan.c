/* attn_plan.c: plans a decode-attention call: kernels, the chunk of cache rows, work items, key blocks, scratch. */
#include "attn_plan.h"

#include <stdint.h>
#include <string.h>

#include "check.h"
#include "task_split.h"

/* Scratch parts start on 64-byte lines. */
#define LINE_FLOATS 16u

/* Saturating size arithmetic: SIZE_MAX stands for "too large" and stays so (the scratch is then refused). */
static size_t sat_mul(size_t a, size_t b) {
  size_t r;
  return rotary_mul_overflow_size(a, b, &r) ? SIZE_MAX : r;
}
static size_t sat_add(size_t a, size_t b) {
  size_t r;
  return rotary_add_overflow_size(a, b, &r) ? SIZE_MAX : r;
}
static size_t round_bytes(size_t bytes) {
  return bytes > SIZE_MAX - 64 ? SIZE_MAX : (bytes + 63) / 64 * 64;
}
static size_t round_line(size_t floats) {
  return floats > SIZE_MAX - LINE_FLOATS ? SIZE_MAX : (floats + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS;
}

static rotary_convert_fn convert_fn(rotary_dtype from, rotary_dtype to) {
  if (from == to) return NULL; /* f32 -> f32: copied */
  const rotary_convert_kernel *k = rotary_convert_select(from, to);
  return k ? k->fn : NULL; /* every pair used here has a kernel */
}

/* The first cache row any query of sequence b attends: 0, or with a window the first row of token 0's window. */
static size_t first_row(const rotary_attn_view *v, size_t b) {
  const size_t w = v->d->window, i0 = v->len[b] - v->d->tokens; /* token 0's row */
  return w && i0 + 1 > w ? i0 + 1 - w : 0;
}

static void chunks_of(const rotary_attn_view *v, size_t chunk, size_t b, size_t *first, size_t *count) {
  const size_t c0 = first_row(v, b) / chunk, c1 = (v->len[b] - 1) / chunk;
  *first = c0;
  *count = c1 - c0 + 1;
}

void rotary_attn_plan_chunk_rows(const rotary_attn_plan *plan, size_t b, size_t c, size_t *lo, size_t *hi) {
  const size_t first = first_row(plan->v, b), len = plan->v->len[b], start = c * plan->chunk;
  *lo = start > first ? start : first;
  *hi = len - start > plan->chunk ? start + plan->chunk : len;
}

void rotary_attn_plan_chunks(const rotary_attn_plan *plan, size_t b, size_t *first, size_t *count) {
  chunks_of(plan->v, plan->chunk, b, first, count);
}

/* Items of a call with this chunk, saturating at SIZE_MAX. */
static size_t count_items(const rotary_attn_view *v, size_t chunk) {
  size_t items = 0;
  for (size_t b = 0; b < v->d->batch; b++) {
    size_t first, count;
    chunks_of(v, chunk, b, &first, &count);
    if (rotary_add_overflow_size(items, count, &items)) return SIZE_MAX;
  }
  return items;
}

/* The chunk: ROTARY_ATTN_CHUNK rows; halved (down to ROTARY_ATTN_MIN_CHUNK) while a call has fewer than
 * ROTARY_ATTN_MIN_ITEMS items (a short single sequence still gives every thread work); doubled while the items
 * exceed the task bound or their partial results (kv_heads per item) the byte bound, until one chunk holds the
 * longest sequence. Depends on the shape alone. */
static size_t choose_chunk(const rotary_attn_view *v, size_t partial_floats, size_t *items) {
  size_t chunk = ROTARY_ATTN_CHUNK, n = count_items(v, chunk);
  while (n < ROTARY_ATTN_MIN_ITEMS && chunk > ROTARY_ATTN_MIN_CHUNK) {
    chunk /= 2;
    n = count_items(v, chunk);
  }
  for (;;) {
    const size_t slots = sat_mul(n, v->d->kv_heads);
    const int too_many = n > ROTARY_ATTN_MAX_TASKS ||
                         sat_mul(sat_mul(slots, partial_floats), sizeof(float)) > ROTARY_ATTN_MAX_PARTIAL_BYTES;
    if (!too_many || chunk >= v->max_len || chunk > SIZE_MAX / 2) {
      *items = n;
      return chunk;
    }
    chunk *= 2;
    n = count_items(v, chunk);
  }
}

void rotary_attn_plan_build(rotary_attn_plan *plan, const rotary_rope *rope, const rotary_attn_view *v,
                            const rotary_tuning *tuning, size_t available) {
  rotary_attn_plan p;
  memset(&p, 0, sizeof p);
  const rotary_attention_desc *d = v->d;
  const size_t hd = v->head_dim;
  p.v = v;
  p.d = d;
  p.rope = rope;
  p.tuning = tuning;
  /* every dtype the validation lets through has kernels (attn_select.c: the scalar set at least) */
  rotary_attn_select(d->cache.dtype, &p.kv);
  p.bf16 = d->precision == ROTARY_ATTENTION_BF16;
  if (p.bf16) { /* the `_dot` kernels where the CPU has them (else the same products through scores and values) */
    p.kv.scores = p.kv.scores_dot, p.kv.values = p.kv.values_dot;
    p.kv.scores_name = p.kv.scores_dot_name, p.kv.values_name = p.kv.values_dot_name;
  }
  p.q_to_f32 = convert_fn(d->q_dtype, ROTARY_F32);
  p.out_from_f32 = convert_fn(ROTARY_F32, d->out_dtype);
  if (d->rope_mode != ROTARY_ATTENTION_ROPE_NONE) p.rotate_f32 = rotary_kernel_select(ROTARY_F32, rope->pairing);
  /* QK: keys rotated inside the scores kernel (every ISA's set has both pairings: attn_list.h) */
  p.rotate_in_scores = d->rope_mode == ROTARY_ATTENTION_ROPE_QK;
  if (rope->pairing == ROTARY_PAIRING_HALF) { /* the rope's own rows: cos then sin at sin_offset */
    p.cs_floats = rotary_rope_row_floats(rope);
    p.cs_second = rope->sin_offset;
  } else { /* B then D, each rotary_dim floats padded to a line */
    p.cs_second = round_line(v->rotary_dim);
    p.cs_floats = 2 * p.cs_second;
  }
  p.rows = v->group * d->tokens; /* <= q_heads * tokens: the validation bounded it */
  p.key_block = rotary_attn_key_block_len(p.rows);
  p.partial_floats = round_line(sat_mul(p.rows, sat_add(hd, 2)));
  p.chunk = choose_chunk(v, p.partial_floats, &p.items);
  p.per_task = (p.items + ROTARY_ATTN_MAX_TASKS - 1) / ROTARY_ATTN_MAX_TASKS;
  p.tasks = (p.items + p.per_task - 1) / p.per_task;
  /* threads for the cache traffic (the k and v rows read) */
  double rows_read = 0.0;
  for (size_t b = 0; b < d->batch; b++) rows_read += (double)(v->len[b] - first_row(v, b));
  const double bytes = rows_read * 2.0 * (double)d->kv_heads * (double)hd * (double)v->geom.elem;
  size_t tasks_unused;
  rotary_task_split(bytes, p.tasks, available, tuning, &p.threads, &tasks_unused);
  p.lanes = p.threads;
  /* a lane: logits of a row block, a key block's cos/sin (QK), a cos/sin row buffer (Q, QK) */
  p.lane_floats = round_line(ROTARY_ATTN_ROW_BLOCK * p.key_block);
  p.cs_at = p.lane_floats;
  if (p.rotate_in_scores && (!rope->table || rope->pairing != ROTARY_PAIRING_HALF))
    p.lane_floats += round_line(sat_mul(p.key_block, p.cs_floats));
  p.row_at = p.lane_floats;
  if (d->rope_mode != ROTARY_ATTENTION_ROPE_NONE) p.lane_floats += round_line(rotary_rope_task_floats(rope));
  p.q_floats = sat_mul(sat_mul(sat_mul(d->batch, d->tokens), d->q_heads), hd);
  *plan = p;
}

size_t rotary_attn_plan_scratch_bytes(const rotary_attn_plan *p) {
  size_t total = round_bytes(sat_mul(sat_add(p->d->batch, 1), sizeof(size_t)));
  total = sat_add(total, sat_mul(round_line(p->q_floats), sizeof(float)));
  total = sat_add(total, sat_mul(sat_mul(sat_mul(p->items, p->d->kv_heads), p->partial_floats), sizeof(float)));
  total = sat_add(total, sat_mul(sat_mul(p->lanes, p->lane_floats), sizeof(float)));
  total = sat_add(total, round_bytes(sat_mul(p->lanes, sizeof(atomic_int))));
  return total >= PTRDIFF_MAX ? SIZE_MAX : total;
}

void rotary_attn_plan_bind(rotary_attn_plan *p, void *scratch) {
  char *at = scratch;
  p->item_start = (size_t *)(void *)at;
  at += round_bytes((p->d->batch + 1) * sizeof(size_t));
  p->q = (float *)(void *)at;
  at += round_line(p->q_floats) * sizeof(float);
  p->partial = (float *)(void *)at;
  at += p->items * p->d->kv_heads * p->partial_floats * sizeof(float);
  p->lane = (float *)(void *)at;
  at += p->lanes * p->lane_floats * sizeof(float);
  p->lane_busy = (atomic_int *)(void *)at;
  for (size_t i = 0; i < p->lanes; i++) atomic_init(&p->lane_busy[i], 0);
  size_t items = 0;
  for (size_t b = 0; b < p->d->batch; b++) {
    size_t first, count;
    chunks_of(p->v, p->chunk, b, &first, &count);
    p->item_start[b] = items;
    items += count;
  }
  p->item_start[p->d->batch] = items;
}

void rotary_attn_plan_item(const rotary_attn_plan *p, size_t i, size_t *b, size_t *c) {
  size_t lo = 0, hi = p->d->batch; /* the last b with item_start[b] <= i */
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (p->item_start[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  size_t first, count;
  chunks_of(p->v, p->chunk, lo, &first, &count);
  *b = lo;
  *c = first + (i - p->item_start[lo]);
}

rotary_attn_key_block rotary_attn_plan_block_after(const rotary_attn_plan *p, size_t item, size_t b, size_t pe,
                                                   size_t end, size_t items_end) {
  rotary_attn_key_block n = {b, pe, pe};
  if (pe < end) {
    n.pe = rotary_attn_plan_block_end(p, pe, end);
  } else if (item + 1 < items_end) {
    size_t c, e;
    rotary_attn_plan_item(p, item + 1, &n.b, &c);
    rotary_attn_plan_chunk_rows(p, n.b, c, &n.pb, &e);
    n.pe = rotary_attn_plan_block_end(p, n.pb, e);
  }
  return n;
}

void rotary_attn_plan_prefetch(const rotary_attn_plan *p, rotary_attn_key_block nb, size_t h, size_t keys,
                               rotary_attn_prefetch *k, rotary_attn_prefetch *v) {
  const rotary_cache_geom *g = &p->v->geom;
  *k = *v = (rotary_attn_prefetch){0, 0, 0};
  if (nb.pe <= nb.pb) return;
  const size_t n = nb.pe - nb.pb, row = g->head_dim * g->elem, kvh = p->d->kv_heads;
  const int hnd = p->d->cache.layout == ROTARY_CACHE_HND;
  const ptrdiff_t off = rotary_cache_offset(g, rotary_attn_slot(p->v, nb.b, nb.pb), hnd ? h : 0) * (ptrdiff_t)g->elem;
  /* the rows' bytes: inside one cache block, so within the cache's extent (validated) */
  const size_t span = (n - 1) * (size_t)g->row_stride * g->elem + (hnd ? 1 : kvh) * row;
  const size_t slice = hnd ? span : span / kvh;
  const size_t first = hnd ? 0 : slice * h, last = hnd || h + 1 == kvh ? span : slice * (h + 1);
  const uintptr_t kb = (uintptr_t)p->d->cache.k + (uintptr_t)off, vb = (uintptr_t)p->d->cache.v + (uintptr_t)off;
  k->at = (kb + first) & ~(uintptr_t)63;
  k->end = kb + last;
  v->at = (vb + first) & ~(uintptr_t)63;
  v->end = vb + last;
  const size_t lines = (k->end - k->at + 63) / 64;
  k->per_key = v->per_key = (lines + keys - 1) / keys;
}
