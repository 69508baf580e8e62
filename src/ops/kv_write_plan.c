/* kv_write_plan.c: plans the KV-cache operations: per tensor the kernels and conversions, task split, scratch. */
#include "kv_write_plan.h"

#include <string.h>

#include "strided_view.h"
#include "task_split.h"
#include "token_rows.h"

/* f32 head rows in the scratch are padded to whole 64-byte lines. */
#define ROTARY_KV_LINE_FLOATS 16u

static rotary_convert_fn convert_fn(rotary_dtype from, rotary_dtype to) {
  if (from == to) return NULL; /* f32 -> f32: read or written in place */
  const rotary_convert_kernel *k = rotary_convert_select(from, to);
  return k ? k->fn : NULL; /* every pair the validation lets through has a kernel */
}

static void path_init(rotary_kv_path *p, rotary_dtype in, const rotary_kv_cache *c, rotary_pairing pairing,
                      float scale) {
  memset(p, 0, sizeof *p);
  p->direct = in == c->dtype;
  p->kernel = rotary_kernel_select(p->direct ? in : ROTARY_F32, pairing);
  p->scale = c->dtype == ROTARY_FP8_E4M3 ? scale : 1.0f;
  p->in_elem = rotary_dtype_size(in);
  if (!p->direct) {
    p->to_f32 = convert_fn(in, ROTARY_F32);
    p->from_f32 = convert_fn(ROTARY_F32, c->dtype);
    if (p->to_f32 && p->from_f32) p->to_cache = convert_fn(in, c->dtype);
  }
}

/* k's one-pass rotate-to-fp8 kernel, when the cache is fp8 and the kernel's ISA is the f32 rotation's: a scalar
 * one-pass kernel would be slower than the vector kernels of the three passes (NEON machines, which have no vector
 * one-pass kernel yet). */
static rotary_rotate_fp8_fn k_to_fp8(rotary_dtype in, const rotary_kv_cache *c, rotary_pairing pairing) {
  if (c->dtype != ROTARY_FP8_E4M3) return NULL;
  const rotary_rotate_fp8_kernel *k = rotary_rotate_fp8_select(in, pairing);
  const rotary_kernel *f32 = rotary_kernel_select(ROTARY_F32, pairing);
  return k && f32 && k->isa == f32->isa ? k->fn : NULL;
}

/* A call that streams its cache writes: the _nt variants (the same ISA, the same codes) of the one-pass fp8 kernels
 * k and v use, where they have one (AVX-512); nonzero when any was taken. An fp8 prefill (llama3-8b heads, 2048
 * tokens, bf16 rows, in-process A/B) measured 0.96-0.98x the time at 1 thread and 0.98-0.99x at 2 with them
 * (docs/kv_cache.md). */
static int fp8_streams(rotary_kv_write_plan *p, const rotary_kv_write_desc *d, rotary_pairing pairing) {
  int any = 0;
  if (p->k.to_fp8) {
    const rotary_rotate_fp8_kernel *k = rotary_rotate_fp8_select_nt(d->k.dtype, pairing);
    if (k) p->k.to_fp8 = k->fn, any = 1;
  }
  if (p->v.to_cache) { /* 16-bit v rows in one pass */
    const rotary_convert_kernel *v = rotary_convert_select_nt(d->v.dtype, d->cache.dtype);
    if (v) p->v.to_cache = v->fn, any = 1;
  } else if (!p->v.direct && !p->v.to_f32) { /* f32 v rows, encoded by from_f32 */
    const rotary_convert_kernel *v = rotary_convert_select_nt(ROTARY_F32, d->cache.dtype);
    if (v) p->v.from_f32 = v->fn, any = 1;
  }
  return any;
}

/* Scratch floats per task: a row buffer too long for the stack (ROTARY_KV_STACK_ROWS), and an f32 head row when a
 * path converts and the row is too long for the stack (ROTARY_KV_STACK_ROW; the executor keeps both on the stack
 * otherwise). The row buffer comes first, rounded up to whole lines, so the head row starts on a line. */
static size_t scratch_floats(const rotary_rope *rope, int row, int head_row) {
  size_t n = 0;
  const size_t task = rotary_rope_task_floats(rope);
  if (row && task > ROTARY_KV_STACK_ROWS)
    n += (task + ROTARY_KV_LINE_FLOATS - 1) / ROTARY_KV_LINE_FLOATS * ROTARY_KV_LINE_FLOATS;
  if (head_row && rope->head_dim > ROTARY_KV_STACK_ROW)
    n += (rope->head_dim + ROTARY_KV_LINE_FLOATS - 1) / ROTARY_KV_LINE_FLOATS * ROTARY_KV_LINE_FLOATS;
  return n;
}

void rotary_kv_write_plan_build(rotary_kv_write_plan *plan, const rotary_rope *rope, const rotary_kv_write_desc *d,
                                const rotary_cache_geom *geom, const rotary_tuning *tuning, size_t available) {
  rotary_kv_write_plan p;
  memset(&p, 0, sizeof p);
  p.rope = rope;
  p.d = d;
  p.tuning = tuning;
  p.geom = *geom;
  if (d->q.n_heads) {
    p.q_kernel = rotary_kernel_select(d->q.dtype, rope->pairing);
    p.q_elem = rotary_dtype_size(d->q.dtype);
  }
  path_init(&p.k, d->k.dtype, &d->cache, rope->pairing, d->cache.k_scale);
  p.k.to_fp8 = k_to_fp8(d->k.dtype, &d->cache, rope->pairing);
  path_init(&p.v, d->v.dtype, &d->cache, rope->pairing, d->cache.v_scale);
  p.tokens = d->batch * d->seq_len; /* rotary_validate_kv_write checked that these do not overflow */
  p.positions = d->positions;
  if (p.positions.stream_stride == 0) p.positions.stream_stride = p.tokens;
  p.per_token = d->q.n_heads + d->k.n_heads;
  p.units = p.tokens * p.per_token;
  p.rows_in_table = rope->table != NULL;
  const double hd = (double)rope->head_dim, tokens = (double)p.tokens;
  const double bytes = tokens * hd *
                       ((double)d->q.n_heads * 2.0 * (double)p.q_elem +
                        (double)d->k.n_heads * (double)(p.k.in_elem + p.v.in_elem + 2 * geom->elem));
  rotary_task_split(bytes, p.units, available, tuning, &p.threads, &p.tasks);
  /* The cache writes stream (non-temporal stores: k's _nt kernel where its dtype has one, v's streaming copy, the
   * fp8 kernels' _nt variants: fp8_streams) when
   * the call moves the settings' stream_store_bytes or more (input read and outputs written, as above): a call
   * that large leaves little of its cache rows in cache anyway, and such stores skip reading each line first (the
   * same-run streaming limit of `rotary bench --op kv-write` writes its cache rows that way). Measured on a 2-core
   * Zen 4, llama3-8b heads, prefill 2048 bf16 (48 MiB moved, 8 MiB of cache rows: below the threshold when it was
   * the cache rows' size), alternating binaries, medians of 40 calls: v streamed 0.71-0.79x the time at 1 thread,
   * 0.73-0.80x at 2; bf16 k through the bf16 _nt kernel as well: no further gain measured (docs/kv_cache.md). */
  if (bytes >= (double)tuning->nt_min_bytes) {
    const rotary_kernel *nt = p.k.direct ? rotary_kernel_select_nt(d->k.dtype, rope->pairing) : NULL;
    if (nt) p.k.kernel = nt;
    if (p.v.direct) p.v_copy = rotary_copy_nt_select()->fn;
    const int fp8 = fp8_streams(&p, d, rope->pairing); /* first: it swaps kernels in */
    p.streams = nt || p.v_copy || fp8;
  }
  p.scratch_floats = scratch_floats(rope, 1, !p.k.direct || !p.v.direct);
  p.rows_block = rotary_rows_block_size(rope, &p.positions, ROTARY_KV_STACK_ROWS);
  *plan = p;
}

void rotary_kv_rerotate_plan_build(rotary_kv_rerotate_plan *plan, const rotary_rope *rope,
                                   const rotary_kv_rerotate_desc *d, const rotary_cache_geom *geom,
                                   const rotary_tuning *tuning, size_t available) {
  rotary_kv_rerotate_plan p;
  memset(&p, 0, sizeof p);
  p.rope = rope;
  p.d = d;
  p.tuning = tuning;
  p.geom = *geom;
  /* the cache is both input and output: fp8 goes through f32, every other dtype is rotated in place */
  const rotary_dtype in = d->cache.dtype == ROTARY_FP8_E4M3 ? ROTARY_F32 : d->cache.dtype;
  path_init(&p.k, in, &d->cache, rope->pairing, d->cache.k_scale);
  if (d->cache.dtype == ROTARY_FP8_E4M3) p.k.to_f32 = convert_fn(ROTARY_FP8_E4M3, ROTARY_F32);
  const double bytes = 2.0 * (double)d->n_slots * (double)d->kv_heads * (double)rope->head_dim * (double)geom->elem;
  rotary_task_split(bytes, d->n_slots, available, tuning, &p.threads, &p.tasks);
  p.scratch_floats = scratch_floats(rope, 0, !p.k.direct);
  *plan = p;
}
