/* backend/cpu/kv_execute.c: the task walks of the KV-cache plans: token-major writes into the caches, slot-range re-rotation. */
#include "kv_execute.h"

#include <stdlib.h>

#include "token_rows.h"

/* Address of element `off` (elements of `elem` bytes) from base. */
static inline char *at(const void *base, ptrdiff_t off, size_t elem) {
  return (char *)(uintptr_t)base + off * (ptrdiff_t)elem;
}

/* Head rows per pass through the f32 row buffer: as many as ROTARY_KV_STACK_ROW floats hold (the buffer is a head
 * row of the task's scratch when one head is longer). */
static inline size_t heads_per_row(size_t hd) { return hd > ROTARY_KV_STACK_ROW ? 1 : ROTARY_KV_STACK_ROW / hd; }

/* n rows of hd elements, `in_step` and `out_step` bytes apart, converted by f (elements of in_elem and out_elem
 * bytes): one call over all of them when both sides are packed. */
static void convert_rows(rotary_convert_fn f, const char *in, ptrdiff_t in_step, size_t in_elem, char *out,
                         ptrdiff_t out_step, size_t out_elem, size_t n, size_t hd, float scale) {
  if ((size_t)in_step == hd * in_elem && (size_t)out_step == hd * out_elem) {
    f(in, out, n * hd, scale);
    return;
  }
  for (size_t h = 0; h < n; h++) f(in + (ptrdiff_t)h * in_step, out + (ptrdiff_t)h * out_step, hd, scale);
}

/* n k head rows through f32 (kv_write_plan.h), heads_per_row of them per pass: in the input rows (kstep bytes
 * apart), out the destination rows (ostep bytes apart, elements of oelem bytes), row the f32 row buffer. A few
 * calls per pass instead of three per head: the same elementwise conversions and per-head rotations, the same
 * bits. */
static void k_through_f32(const rotary_kv_write_plan *p, const char *in, ptrdiff_t kstep, char *out, ptrdiff_t ostep,
                          size_t oelem, size_t n, const float *c, const float *s, float *row) {
  const rotary_kv_path *k = &p->k;
  const size_t hd = p->rope->head_dim, rd = p->rope->rotary_dim, per = heads_per_row(hd);
  for (size_t h0 = 0; h0 < n; h0 += per) {
    const size_t m = n - h0 < per ? n - h0 : per;
    const char *x = in + (ptrdiff_t)h0 * kstep;
    char *y = out + (ptrdiff_t)h0 * ostep;
    const void *src = x;
    ptrdiff_t src_stride = kstep / (ptrdiff_t)sizeof(float); /* f32 input: read in place */
    if (k->to_f32) {
      convert_rows(k->to_f32, x, kstep, k->in_elem, (char *)row, (ptrdiff_t)(hd * sizeof(float)), sizeof(float), m,
                   hd, 1.0f);
      src = row;
      src_stride = (ptrdiff_t)hd;
    }
    if (!k->from_f32) { /* f32 cache: the kernel writes the result in place */
      rotary_rotate_run(k->kernel, p->tuning->prefetch_bytes, src, src_stride, y, ostep / (ptrdiff_t)sizeof(float), m,
                        hd, rd, c, s);
      continue;
    }
    rotary_rotate_run(k->kernel, p->tuning->prefetch_bytes, src, src_stride, row, (ptrdiff_t)hd, m, hd, rd, c, s);
    convert_rows(k->from_f32, (const char *)row, (ptrdiff_t)(hd * sizeof(float)), sizeof(float), y, ostep, oelem, m,
                 hd, k->scale);
  }
}

/* n v head rows through f32, as k_through_f32 (no rotation), or in one pass where the plan has a kernel for it. */
static void v_through_f32(const rotary_kv_write_plan *p, const char *in, ptrdiff_t vstep, char *out, ptrdiff_t ostep,
                          size_t oelem, size_t n, float *row) {
  const rotary_kv_path *v = &p->v;
  const size_t hd = p->rope->head_dim, per = heads_per_row(hd), f = sizeof(float);
  if (!v->to_f32) { /* f32 input */
    convert_rows(v->from_f32, in, vstep, f, out, ostep, oelem, n, hd, v->scale);
    return;
  }
  if (!v->from_f32) { /* f32 cache */
    convert_rows(v->to_f32, in, vstep, v->in_elem, out, ostep, f, n, hd, 1.0f);
    return;
  }
  if (v->to_cache) { /* one pass (bf16 -> fp8) */
    convert_rows(v->to_cache, in, vstep, v->in_elem, out, ostep, oelem, n, hd, v->scale);
    return;
  }
  for (size_t h0 = 0; h0 < n; h0 += per) {
    const size_t m = n - h0 < per ? n - h0 : per;
    convert_rows(v->to_f32, in + (ptrdiff_t)h0 * vstep, vstep, v->in_elem, (char *)row, (ptrdiff_t)(hd * f), f, m,
                 hd, 1.0f);
    convert_rows(v->from_f32, (const char *)row, (ptrdiff_t)(hd * f), f, out + (ptrdiff_t)h0 * ostep, ostep, oelem,
                 m, hd, v->scale);
  }
}

/* k and v heads [h0, h1) of token (b, s_idx) into `slot` of the caches. */
static void write_kv(const rotary_kv_write_plan *p, size_t b, size_t s_idx, size_t slot, size_t h0, size_t h1,
                     const float *c, const float *s, float *row) {
  const rotary_kv_write_desc *d = p->d;
  const rotary_cache_geom *g = &p->geom;
  const size_t hd = p->rope->head_dim, nh = h1 - h0;
  const ptrdiff_t off = rotary_cache_offset(g, slot, h0);
  char *kc = at(d->cache.k, off, g->elem), *vc = at(d->cache.v, off, g->elem);
  const char *kin = at(d->k.in, (ptrdiff_t)b * d->k.stride_batch + (ptrdiff_t)s_idx * d->k.stride_seq +
                                    (ptrdiff_t)h0 * d->k.stride_head, p->k.in_elem);
  const char *vin = at(d->v.in, (ptrdiff_t)b * d->v.stride_batch + (ptrdiff_t)s_idx * d->v.stride_seq +
                                    (ptrdiff_t)h0 * d->v.stride_head, p->v.in_elem);
  const ptrdiff_t kstep = d->k.stride_head * (ptrdiff_t)p->k.in_elem, vstep = d->v.stride_head * (ptrdiff_t)p->v.in_elem;
  const ptrdiff_t cstep = g->head_stride * (ptrdiff_t)g->elem;
  if (p->k.direct) {
    rotary_rotate_run(p->k.kernel, p->tuning->prefetch_bytes, kin, d->k.stride_head, kc, g->head_stride, nh, hd,
                      p->rope->rotary_dim, c, s);
  } else if (p->k.to_fp8) {
    p->k.to_fp8(kin, d->k.stride_head, kc, g->head_stride, nh, hd, p->rope->rotary_dim, c, s, p->k.scale);
  } else {
    k_through_f32(p, kin, kstep, kc, cstep, g->elem, nh, c, s, row);
  }
  if (p->v.direct) {
    const size_t bytes = hd * g->elem;
    const rotary_copy_fn copy = p->v_copy ? p->v_copy : rotary_copy_nt__scalar; /* the scalar one is memcpy */
    if ((size_t)vstep == bytes && (size_t)cstep == bytes) /* heads contiguous on both sides (NHD, packed rows) */
      copy(vc, vin, nh * bytes);
    else /* head by head (HND caches, strided inputs) */
      for (size_t h = 0; h < nh; h++) copy(vc + (ptrdiff_t)h * cstep, vin + (ptrdiff_t)h * vstep, bytes);
  } else {
    v_through_f32(p, vin, vstep, vc, cstep, g->elem, nh, row);
  }
}

/* q heads [h0, h1) of token (b, s_idx). */
static void rotate_q(const rotary_kv_write_plan *p, size_t b, size_t s_idx, size_t h0, size_t h1, const float *c,
                     const float *s) {
  const rotary_tensor *q = &p->d->q;
  const char *in = at(q->in, (ptrdiff_t)b * q->stride_batch + (ptrdiff_t)s_idx * q->stride_seq +
                                 (ptrdiff_t)h0 * q->stride_head, p->q_elem);
  char *out = at(q->out, (ptrdiff_t)b * q->out_stride_batch + (ptrdiff_t)s_idx * q->out_stride_seq +
                             (ptrdiff_t)h0 * q->out_stride_head, p->q_elem);
  rotary_rotate_run(p->q_kernel, p->tuning->prefetch_bytes, in, q->stride_head, out, q->out_stride_head, h1 - h0,
                    p->rope->head_dim, p->rope->rotary_dim, c, s);
}

/* The write walk's input from unit u on (never past unit end; a kv unit's k row, then its v row): what a block of
 * computed rows asks for while it is computed. */
typedef struct kv_cursor {
  const rotary_kv_write_plan *p;
  size_t u, off, end;
  int v; /* in a kv unit: its v row */
} kv_cursor;

/* Asks, into L2, for the next `lines` 64-byte lines of the walk's input head rows, and moves the cursor past them. */
static void prefetch_kv_walk(void *arg, size_t lines) {
  kv_cursor *w = arg;
  const rotary_kv_write_plan *p = w->p;
  const rotary_kv_write_desc *d = p->d;
  const size_t nq = d->q.n_heads, seq = d->seq_len;
  while (lines && w->u < w->end) {
    const size_t t = w->u / p->per_token, h = w->u % p->per_token, b = t / seq, s_idx = t % seq;
    const rotary_tensor *x = h < nq ? &d->q : w->v ? &d->v : &d->k;
    const size_t elem = h < nq ? p->q_elem : w->v ? p->v.in_elem : p->k.in_elem, head = h < nq ? h : h - nq;
    const char *row = at(x->in, (ptrdiff_t)b * x->stride_batch + (ptrdiff_t)s_idx * x->stride_seq +
                                    (ptrdiff_t)head * x->stride_head, elem);
    const size_t bytes = p->rope->head_dim * elem;
    for (; lines && w->off < bytes; w->off += 64, lines--) __builtin_prefetch(row + w->off, 0, 2);
    if (w->off >= bytes) {
      w->off = 0;
      if (h >= nq && !w->v) {
        w->v = 1;
      } else {
        w->v = 0;
        w->u++;
      }
    }
  }
}

/* Computes into buf the cos/sin rows of the tokens from unit u's on, at most p->rows_block of them and none past
 * unit end, asking for the walk's next input as it goes; returns the token after the last. */
static size_t kv_rows_block(const rotary_kv_write_plan *p, size_t u, size_t end, float *buf) {
  kv_cursor w = {p, u, 0, end, 0};
  return rotary_token_rows_block(p->rope, &p->positions, ROTARY_FORWARD, u / p->per_token,
                                 (end - 1) / p->per_token + 1, p->rows_block, p->d->seq_len, buf, prefetch_kv_walk,
                                 &w);
}

/* Task `index` of `count`: units [u, end), token-major (kv_write_plan.h). */
static void write_task(void *arg, size_t index, size_t count) {
  const rotary_kv_write_plan *p = arg;
  const rotary_kv_write_desc *d = p->d;
  const size_t base = p->units / count, extra = p->units % count;
  size_t u = index * base + (index < extra ? index : extra);
  const size_t end = u + base + (index < extra);
  float stack_row[ROTARY_KV_STACK_ROWS] __attribute__((aligned(64)));
  float stack_head[ROTARY_KV_STACK_ROW] __attribute__((aligned(64)));
  float *scratch = p->scratch ? p->scratch + index * p->scratch_floats : NULL;
  const size_t task_floats = rotary_rope_task_floats(p->rope);
  const int long_row = task_floats > ROTARY_KV_STACK_ROWS;
  const size_t row_part = long_row ? (task_floats + 15) / 16 * 16 : 0; /* as kv_write_plan.c lays it out */
  float *buf = long_row ? scratch : stack_row;
  float *head_row = p->rope->head_dim > ROTARY_KV_STACK_ROW ? scratch + row_part : stack_head;
  const size_t nq = d->q.n_heads, per = p->per_token, seq = d->seq_len, rf = rotary_rope_row_floats(p->rope);
  size_t block_t0 = 0, block_t1 = 0; /* rows_block > 1: the tokens whose rows buf holds */
  while (u < end) {
    const size_t t = u / per, h0 = u % per;
    const size_t h1 = end - u < per - h0 ? h0 + (end - u) : per;
    const size_t b = t / seq, s_idx = t % seq;
    const float *c = NULL, *s = NULL; /* always set by rotary_token_row; gcc -O1 (TSan) cannot tell */
    if (p->rows_block > 1) { /* tokens come in order: a token past the block starts the next one */
      if (t >= block_t1) {
        block_t0 = t;
        block_t1 = kv_rows_block(p, u, end, buf);
      }
      c = buf + (t - block_t0) * rf;
      s = c + p->rope->sin_offset;
    } else {
      if (p->rows_in_table && t + 1 < p->tokens) rotary_token_row_prefetch(p->rope, &p->positions, t + 1);
      rotary_token_row(p->rope, &p->positions, ROTARY_FORWARD, t, b, s_idx, buf, &c, &s);
    }
    if (h0 < nq) rotate_q(p, b, s_idx, h0, h1 < nq ? h1 : nq, c, s);
    if (h1 > nq) {
      const int64_t slot = rotary_cache_slot(&d->cache, p->geom.block_size, seq, b, s_idx);
      if (slot >= 0) write_kv(p, b, s_idx, (size_t)slot, (h0 > nq ? h0 : nq) - nq, h1 - nq, c, s, head_row);
    }
    u += h1 - h0;
  }
  if (p->streams) rotary_stream_fence(); /* one fence for the task's streamed cache rows (kernels.h) */
}

/* tasks * floats floats, 64-byte aligned (floats is rounded up to whole lines); NULL when floats is 0. */
static rotary_status alloc_scratch(float **out, size_t *floats, size_t tasks) {
  *out = NULL;
  if (!*floats) return ROTARY_OK;
  *floats = (*floats + 15) / 16 * 16; /* bounded by a few head rows: no overflow */
  *out = aligned_alloc(64, tasks * *floats * sizeof(float));
  return *out ? ROTARY_OK : ROTARY_ERR_OUT_OF_MEMORY;
}

rotary_status rotary_kv_write_execute(rotary_kv_write_plan *plan, rotary_pool *pool) {
  rotary_status st = alloc_scratch(&plan->scratch, &plan->scratch_floats, plan->tasks);
  if (st != ROTARY_OK) return st;
  rotary_pool_run(pool, write_task, plan, plan->tasks, plan->threads - 1);
  free(plan->scratch);
  plan->scratch = NULL;
  return ROTARY_OK;
}

/* Task `index` of `count`: the plan's slots [i, end), each row's kv heads turned in place. */
static void rerotate_task(void *arg, size_t index, size_t count) {
  const rotary_kv_rerotate_plan *p = arg;
  const rotary_kv_rerotate_desc *d = p->d;
  const rotary_cache_geom *g = &p->geom;
  const size_t base = d->n_slots / count, extra = d->n_slots % count;
  size_t i = index * base + (index < extra ? index : extra);
  const size_t end = i + base + (index < extra);
  float stack_head[ROTARY_KV_STACK_ROW] __attribute__((aligned(64)));
  float *row = p->rope->head_dim > ROTARY_KV_STACK_ROW ? p->scratch + index * p->scratch_floats : stack_head;
  const size_t hd = p->rope->head_dim, rd = p->rope->rotary_dim;
  const ptrdiff_t cstep = g->head_stride * (ptrdiff_t)g->elem;
  for (; i < end; i++) {
    const int64_t slot = d->slots ? d->slots[i] : (int64_t)(d->first_slot + i);
    if (slot < 0) continue;
    char *k = at(d->cache.k, rotary_cache_offset(g, (size_t)slot, 0), g->elem);
    if (p->k.direct) {
      rotary_rotate_run(p->k.kernel, p->tuning->prefetch_bytes, k, g->head_stride, k, g->head_stride, d->kv_heads, hd,
                        rd, p->cos, p->sin);
      continue;
    }
    /* fp8: only the rotary_dim elements that turn are decoded and encoded again; the rest stay as they are */
    for (size_t h = 0; h < d->kv_heads; h++) {
      char *r = k + (ptrdiff_t)h * cstep;
      p->k.to_f32(r, row, rd, p->k.scale);
      rotary_rotate_run(p->k.kernel, p->tuning->prefetch_bytes, row, 0, row, 0, 1, rd, rd, p->cos, p->sin);
      p->k.from_f32(row, r, rd, p->k.scale);
    }
  }
}

rotary_status rotary_kv_rerotate_execute(rotary_kv_rerotate_plan *plan, rotary_pool *pool) {
  rotary_status st = alloc_scratch(&plan->scratch, &plan->scratch_floats, plan->tasks);
  if (st != ROTARY_OK) return st;
  rotary_pool_run(pool, rerotate_task, plan, plan->tasks, plan->threads - 1);
  free(plan->scratch);
  plan->scratch = NULL;
  return ROTARY_OK;
}
