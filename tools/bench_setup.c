/* bench_setup.c: the benchmark's workload: rope, context, q/k buffers, positions, tables and intermediates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

size_t bench_split(size_t n, size_t index, size_t count) {
  const size_t base = n / count, extra = n % count;
  return index * base + (index < extra ? index : extra);
}

double bench_qk_bytes(const bench_setup *s) { return (double)s->bytes[0] + (double)s->bytes[1]; }

double bench_ideal_bytes(const bench_setup *s) {
  if (s->in[0] != s->out[0]) return 2.0 * bench_qk_bytes(s); /* every element read and written */
  /* in place only the rotated part of each head moves */
  return 2.0 * (double)s->rows * (double)(s->heads[0] + s->heads[1]) * (double)s->o->rotary_dim * (double)s->esize;
}

/* 64-byte aligned, as framework tensors are (PyTorch's CPU allocator aligns to 64): malloc's 16-byte alignment
 * would make every other 32-byte vector access straddle two cache lines. */
static void *alloc_aligned(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

/* Every byte written before timing; small finite values in every dtype: f32 words are built from two halves,
 * each a valid f16 in 0.5..1 (and a bf16 near 2^-15). */
static void *alloc_touched(size_t bytes, unsigned seed) {
  uint16_t *p = alloc_aligned(bytes);
  if (!p) return NULL;
  for (size_t i = 0; i < bytes / 2; i++) p[i] = (uint16_t)(0x3800u + ((i * 2654435761u + seed) >> 7 & 0x3ffu));
  return p;
}

static void *alloc_zeroed(size_t bytes) {
  void *p = alloc_aligned(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

/* Prefill: token (b, s) at position s. Decode: a random position below the table for each sequence. */
static void fill_positions(const bench_options *o, int64_t *pos, size_t rows) {
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (size_t t = 0; t < rows; t++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    pos[t] = o->decode ? (int64_t)((x >> 33) % o->table) : (int64_t)(t % o->tokens);
  }
}

/* The baselines' cos and sin tables, [table][rotary_dim / 2] each: the rope's own values. */
static rotary_status make_tables(bench_setup *s) {
  const size_t n = s->o->table, half = s->o->rotary_dim / 2;
  int64_t *all = malloc(n * sizeof *all);
  s->cos_tab = malloc(n * half * sizeof(float));
  s->sin_tab = malloc(n * half * sizeof(float));
  rotary_status st = ROTARY_ERR_OUT_OF_MEMORY;
  if (all && s->cos_tab && s->sin_tab) {
    for (size_t i = 0; i < n; i++) all[i] = (int64_t)i;
    st = rotary_rope_cos_sin(s->rope, all, n, s->cos_tab, s->sin_tab);
  }
  free(all);
  return st;
}

/* --tuning, then each --set in order (both were checked while parsing). */
static rotary_status apply_settings(const bench_options *o, rotary_context *ctx) {
  rotary_status st = ROTARY_OK;
  if (o->tuning) {
    char err[1024] = "";
    st = rotary_context_load_tuning(ctx, o->tuning, err, sizeof err);
    if (st != ROTARY_OK) fprintf(stderr, "rotary bench: --tuning: %s\n", err);
  }
  for (size_t i = 0; i < o->n_sets && st == ROTARY_OK; i++)
    st = rotary_context_set_setting(ctx, o->set_which[i], o->set_value[i]);
  return st;
}

rotary_status bench_setup_library(const bench_options *o, bench_setup *s) {
  rotary_config cfg;
  if (o->config) {
    cfg = o->rope; /* the model's family and scaling; dynamic NTK and LongRoPE as for a sequence of table size */
    cfg.seq_len = o->table;
  } else {
    rotary_config_init(&cfg, o->head_dim);
    cfg.rotary_dim = o->rotary_dim;
    cfg.pairing = o->pairing;
    cfg.base = o->base;
  }
  cfg.streams = o->stream_layout; /* the preset's, --stream-layout's or the config's own */
  rotary_status st = rotary_rope_create(&cfg, o->table, &s->rope);
  if (st == ROTARY_OK && o->table_free) st = rotary_rope_create(&cfg, 0, &s->rope_free);
  if (st == ROTARY_OK) st = rotary_context_create(o->threads, &s->ctx);
  if (st == ROTARY_OK) st = apply_settings(o, s->ctx);
  return st;
}

/* Elements from one token's row to the next in the packed QKV buffer (--qkv): q, k and v heads. */
size_t bench_qkv_row(const bench_setup *s) { return (s->heads[0] + 2 * s->heads[1]) * s->o->head_dim; }

static rotary_status make_buffers(const bench_options *o, bench_setup *s) {
  const size_t maxh = s->heads[0] > s->heads[1] ? s->heads[0] : s->heads[1];
  const size_t tmp = s->rows * maxh * o->rotary_dim * s->esize, row = s->rows * o->rotary_dim * s->esize;
  if (o->qkv) { /* one buffer; q and k point at their first heads, in place */
    s->qkv_bytes = s->rows * bench_qkv_row(s) * s->esize;
    if (!(s->qkv = alloc_touched(s->qkv_bytes, 3u))) return ROTARY_ERR_OUT_OF_MEMORY;
  }
  for (int t = 0; t < 2; t++) {
    s->bytes[t] = s->rows * s->heads[t] * o->head_dim * s->esize;
    if (o->qkv) {
      s->in[t] = s->out[t] = (char *)s->qkv + (t ? s->heads[0] * o->head_dim * s->esize : 0);
      continue;
    }
    s->in[t] = alloc_touched(s->bytes[t], (unsigned)t);
    s->out[t] = o->out_of_place ? alloc_touched(s->bytes[t], 7u) : s->in[t];
    if (!s->in[t] || !s->out[t]) return ROTARY_ERR_OUT_OF_MEMORY;
  }
  s->pos = malloc(s->rows * sizeof *s->pos);
  void **tmps[] = {&s->cos_full, &s->sin_full, &s->rot, &s->tmp1, &s->tmp2, &s->sum};
  for (size_t i = 0; i < sizeof tmps / sizeof tmps[0]; i++)
    if (!(*tmps[i] = alloc_zeroed(i < 2 ? row : tmp))) return ROTARY_ERR_OUT_OF_MEMORY;
  if (!s->pos) return ROTARY_ERR_OUT_OF_MEMORY;
  fill_positions(o, s->pos, s->rows);
  return ROTARY_OK;
}

static rotary_status make_desc(const bench_options *o, bench_setup *s) {
  rotary_apply_desc *d = &s->desc;
  rotary_apply_desc_init(d);
  d->batch = o->batch;
  d->seq_len = o->tokens;
  if (o->decode) {
    d->positions.mode = ROTARY_POSITIONS_IDS_I64;
    d->positions.ids = s->pos;
  } /* else offset 0: the library's prefill path, the same positions as s->pos */
  rotary_status st = ROTARY_OK;
  for (int t = 0; t < 2 && st == ROTARY_OK; t++)
    st = rotary_tensor_init(t ? &d->k : &d->q, o->layout, s->in[t], s->out[t], o->dtype, o->tokens,
                            s->heads[t], o->head_dim);
  for (int t = 0; o->qkv && t < 2; t++) { /* views into the packed rows: a token's step is the whole row */
    rotary_tensor *x = t ? &d->k : &d->q;
    x->stride_seq = x->out_stride_seq = (ptrdiff_t)bench_qkv_row(s);
    x->stride_batch = x->out_stride_batch = (ptrdiff_t)(bench_qkv_row(s) * o->tokens);
  }
  return st;
}

rotary_status bench_setup_create(const bench_options *o, bench_setup *s) {
  memset(s, 0, sizeof *s);
  s->o = o;
  s->rows = o->batch * o->tokens; /* sizes were bounded by the option checks */
  s->esize = o->dtype == ROTARY_F32 ? 4 : 2;
  s->heads[0] = o->heads;
  s->heads[1] = o->kv_heads;
  rotary_status st = bench_setup_library(o, s);
  if (st == ROTARY_OK) st = make_buffers(o, s);
  if (st == ROTARY_OK) st = make_tables(s);
  if (st == ROTARY_OK) st = make_desc(o, s);
  if (st != ROTARY_OK) bench_setup_destroy(s);
  return st;
}

void bench_setup_destroy(bench_setup *s) {
  for (int t = 0; t < 2 && !s->qkv; t++) {
    if (s->out[t] != s->in[t]) free(s->out[t]);
    free(s->in[t]);
  }
  free(s->qkv);
  void *others[] = {s->pos, s->cos_tab, s->sin_tab, s->cos_full, s->sin_full, s->rot, s->tmp1, s->tmp2, s->sum};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) free(others[i]);
  rotary_context_destroy(s->ctx);
  rotary_rope_destroy(s->rope);
  rotary_rope_destroy(s->rope_free);
  memset(s, 0, sizeof *s);
}
