/* bench_attn_setup.c: the attention workload: a KV cache filled with random rows (contiguous or paged in random
 * block order), q, the descriptors of ours and of the composed passes, and the check of ours against composed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_attn.h"
#include "bench_dtype.h"

#define ATTN_FP8_SCALE 0.25f     /* k and v scales of an fp8 cache: values below 2 in e4m3, times 1/4 */
#define ATTN_SPAN_ROWS 256       /* rows of one contiguous sequence per span of the limit */
#define ATTN_CHECK_LIMIT 1e-3    /* max |ours - composed| allowed (outputs are below 1 in magnitude) */
#define ATTN_CHECK_LIMIT_BF16 1e-2 /* the same with precision BF16 (q and weights rounded to 8 bits) */

static void *alloc_aligned(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

static uint64_t next_random(uint64_t *x) {
  *x = *x * 6364136223846793005u + 1442695040888963407u;
  return *x >> 33;
}

/* Random cache elements: -1 .. 1 in f32/f16/bf16; fp8 bytes with the top exponent bit clear (|value| < 2, no NaN). */
static void fill_cache(void *p, size_t n, rotary_dtype d, uint64_t seed) {
  uint64_t x = seed;
  for (size_t i = 0; i < n; i++) {
    const uint64_t r = next_random(&x);
    const float f = (float)((double)r / 0x1p30 - 1.0);
    if (d == ROTARY_FP8_E4M3) ((uint8_t *)p)[i] = (uint8_t)(r & 0xbfu);
    else if (d == ROTARY_F32) ((float *)p)[i] = f;
    else ((uint16_t *)p)[i] = d == ROTARY_F16 ? bench_f32_to_f16(f) : bench_f32_to_bf16(f);
  }
}

/* Paged: sequence b's logical block j is physical block perm[b * blocks_per_seq + j], a random permutation. */
static void make_block_table(bench_attn *a) {
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (size_t i = 0; i < a->num_blocks; i++) a->block_table[i] = (int32_t)i;
  for (size_t i = a->num_blocks; i > 1; i--) {
    const size_t j = (size_t)(next_random(&x) % i);
    const int32_t t = a->block_table[i - 1];
    a->block_table[i - 1] = a->block_table[j];
    a->block_table[j] = t;
  }
}

/* The limit reads what ours reads, each sequence's rows in order: paged, one span per block of the table;
 * contiguous, spans of ATTN_SPAN_ROWS rows. */
static rotary_status make_spans(const bench_options *o, bench_attn *a) {
  const size_t row_bytes = a->kv_row * a->cache_esize, block_bytes = a->block_size * row_bytes;
  const size_t per_seq = a->block_table ? a->blocks_per_seq : (a->len + ATTN_SPAN_ROWS - 1) / ATTN_SPAN_ROWS;
  a->n_spans = o->batch * per_seq;
  if (!(a->spans = malloc(a->n_spans * sizeof *a->spans))) return ROTARY_ERR_OUT_OF_MEMORY;
  for (size_t b = 0; b < o->batch; b++)
    for (size_t j = 0; j < per_seq; j++) {
      bench_attn_span *sp = &a->spans[b * per_seq + j];
      if (a->block_table) {
        const size_t rows = a->len - j * a->block_size < a->block_size ? a->len - j * a->block_size : a->block_size;
        *sp = (bench_attn_span){(size_t)a->block_table[b * per_seq + j] * block_bytes, rows * row_bytes};
      } else {
        const size_t p = j * ATTN_SPAN_ROWS, rows = a->len - p < ATTN_SPAN_ROWS ? a->len - p : ATTN_SPAN_ROWS;
        *sp = (bench_attn_span){b * block_bytes + p * row_bytes, rows * row_bytes};
      }
    }
  return ROTARY_OK;
}

static rotary_status make_buffers(const bench_options *o, bench_attn *a) {
  const int paged = o->cache == ROTARY_CACHE_SLOTS;
  a->len = o->table;
  a->cache_esize = o->cache_dtype == ROTARY_F32 ? 4 : o->cache_dtype == ROTARY_FP8_E4M3 ? 1 : 2;
  a->kv_row = o->kv_heads * o->head_dim;
  a->block_size = paged ? o->block_size : a->len;
  a->blocks_per_seq = (a->len + a->block_size - 1) / a->block_size;
  a->num_blocks = o->batch * a->blocks_per_seq;
  a->cache_bytes = a->num_blocks * a->block_size * a->kv_row * a->cache_esize;
  const size_t qn = o->batch * o->heads * o->head_dim;
  a->kc = alloc_aligned(a->cache_bytes);
  a->vc = alloc_aligned(a->cache_bytes);
  a->q = alloc_aligned(qn * sizeof(float));
  a->q_rot = alloc_aligned(qn * sizeof(float));
  a->out = alloc_aligned(qn * sizeof(float));
  a->logits = alloc_aligned(o->batch * o->heads * a->len * sizeof(float));
  a->lengths = malloc(o->batch * sizeof *a->lengths);
  a->pos = malloc(o->batch * sizeof *a->pos);
  a->block_table = paged ? malloc(a->num_blocks * sizeof *a->block_table) : NULL;
  if (!a->kc || !a->vc || !a->q || !a->q_rot || !a->out || !a->logits || !a->lengths || !a->pos ||
      (paged && !a->block_table))
    return ROTARY_ERR_OUT_OF_MEMORY;
  const size_t elems = a->cache_bytes / a->cache_esize;
  fill_cache(a->kc, elems, o->cache_dtype, 0x2545f4914f6cdd1du);
  fill_cache(a->vc, elems, o->cache_dtype, 0x853c49e6748fea9bu);
  fill_cache(a->q, qn, ROTARY_F32, 0xda3e39cb94b95bdbu);
  memset(a->q_rot, 0, qn * sizeof(float));
  memset(a->out, 0, qn * sizeof(float));
  memset(a->logits, 0, o->batch * o->heads * a->len * sizeof(float));
  for (size_t b = 0; b < o->batch; b++) {
    a->lengths[b] = (int64_t)a->len;
    a->pos[b] = (int64_t)a->len - 1;
  }
  if (paged) make_block_table(a);
  return make_spans(o, a);
}

/* Ours: q f32 [batch, 1, q_heads, head_dim] -> out f32, the cache as written by rotary_kv_write. */
static void make_desc(const bench_options *o, bench_attn *a) {
  rotary_attention_desc *d = &a->desc;
  rotary_attention_desc_init(d);
  d->batch = o->batch;
  d->tokens = 1;
  d->q_heads = o->heads;
  d->kv_heads = o->kv_heads;
  d->q = a->q;
  d->q_dtype = ROTARY_F32;
  d->out = a->out;
  d->out_dtype = ROTARY_F32;
  rotary_kv_cache *c = &d->cache;
  c->index = o->cache;
  c->layout = o->cache_layout;
  c->dtype = o->cache_dtype;
  c->k = a->kc;
  c->v = a->vc;
  c->num_blocks = a->num_blocks;
  c->block_size = a->block_size;
  c->lengths = a->lengths;
  c->k_scale = c->v_scale = ATTN_FP8_SCALE;
  d->block_table = a->block_table;
  d->block_table_stride = a->block_table ? a->blocks_per_seq : 0;
  d->rope_mode = ROTARY_ATTENTION_ROPE_Q;
}

/* The composed row: rotary_apply of q at each sequence's position into q_rot, then the three passes. */
static rotary_status make_composed(const bench_options *o, bench_attn *a) {
  rotary_apply_desc *r = &a->rope_q;
  rotary_apply_desc_init(r);
  r->batch = o->batch;
  r->seq_len = 1;
  r->positions.mode = ROTARY_POSITIONS_IDS_I64;
  r->positions.ids = a->pos;
  rotary_status st = rotary_tensor_init(&r->q, ROTARY_LAYOUT_BSHD, a->q, a->q_rot, ROTARY_F32, 1, o->heads,
                                        o->head_dim);
  if (st != ROTARY_OK) return st;
  bench_attn_composed *c = &a->comp;
  *c = (bench_attn_composed){.batch = o->batch, .q_heads = o->heads, .kv_heads = o->kv_heads,
                             .head_dim = o->head_dim, .lengths = a->lengths, .logits_stride = a->len,
                             .cache_dtype = o->cache_dtype, .k = a->kc, .v = a->vc, .block_size = a->block_size,
                             .block_stride = a->block_size * a->kv_row, .block_table = a->block_table,
                             .block_table_stride = a->blocks_per_seq, .hnd = o->cache_layout == ROTARY_CACHE_HND,
                             .k_scale = ATTN_FP8_SCALE,
                             .v_scale = ATTN_FP8_SCALE, .scale = 1.0f / sqrtf((float)o->head_dim), .q = a->q_rot,
                             .logits = a->logits, .out = a->out};
    return ROTARY_OK;
}

rotary_status bench_attn_setup_create(const bench_options *o, bench_setup *s) {
  memset(s, 0, sizeof *s);
  s->o = o;
  s->rows = o->batch;
  s->attn = calloc(1, sizeof *s->attn);
  rotary_status st = s->attn ? bench_setup_library(o, s) : ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK) st = make_buffers(o, s->attn);
  if (st == ROTARY_OK) {
    make_desc(o, s->attn);
    st = make_composed(o, s->attn);
  }
  if (st != ROTARY_OK) bench_attn_setup_destroy(s);
  return st;
}

/* A context of that many threads with the run's --tuning and --set applied (as bench_setup_library does). */
rotary_status bench_attn_set_threads(bench_setup *s, size_t threads) {
  rotary_context *ctx = NULL;
  char err[256];
  rotary_status st = rotary_context_create(threads, &ctx);
  if (st == ROTARY_OK && s->o->tuning) st = rotary_context_load_tuning(ctx, s->o->tuning, err, sizeof err);
  for (size_t i = 0; i < s->o->n_sets && st == ROTARY_OK; i++)
    st = rotary_context_set_setting(ctx, s->o->set_which[i], s->o->set_value[i]);
  if (st != ROTARY_OK) {
    rotary_context_destroy(ctx);
    return st;
  }
  rotary_context_destroy(s->ctx);
  s->ctx = ctx;
  return ROTARY_OK;
}

void bench_attn_setup_destroy(bench_setup *s) {
  bench_attn *a = s->attn;
  if (a) {
    void *all[] = {a->kc, a->vc, a->q, a->q_rot, a->out, a->logits, a->lengths, a->pos, a->block_table, a->spans};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    free(a);
  }
  rotary_context_destroy(s->ctx);
  rotary_rope_destroy(s->rope);
  rotary_rope_destroy(s->rope_free);
  memset(s, 0, sizeof *s);
}

double bench_attn_cache_bytes(const bench_setup *s) {
  const bench_attn *a = s->attn;
  return 2.0 * (double)s->o->batch * (double)a->len * (double)a->kv_row * (double)a->cache_esize;
}

static double max_abs_diff(const float *x, const float *y, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)x[i] - (double)y[i]);
    if (!(d <= m)) m = d; /* NaN wins */
  }
  return m;
}

/* The composed passes on the calling thread (the reference), with keys rotated at their rows when key_cos is set. */
static rotary_status composed_reference(bench_attn *a, rotary_context *ctx, const rotary_rope *rope) {
  const rotary_status st = rotary_apply(ctx, rope, &a->rope_q);
  if (st != ROTARY_OK) return st;
  bench_attn_composed_scores(&a->comp, 0, 1);
  bench_attn_composed_softmax(&a->comp, 0, 1);
  bench_attn_composed_values(&a->comp, 0, 1);
  return ROTARY_OK;
}

/* Ours in mode m (precision BF16 when bf16) against the composed reference: max |difference| into
 * a->max_diff[m - 1] (BF16: [2]). */
static rotary_status check_mode(bench_setup *s, float *ref, rotary_attention_rope m, int bf16) {
  bench_attn *a = s->attn;
  const size_t n = s->o->batch * s->o->heads * s->o->head_dim;
  rotary_status st = composed_reference(a, s->ctx, s->rope);
  if (st != ROTARY_OK) return st;
  memcpy(ref, a->out, n * sizeof *ref);
  memset(a->out, 0xff, n * sizeof *a->out); /* NaN: an element ours leaves unwritten fails the check */
  a->desc.rope_mode = m;
  a->desc.precision = bf16 ? ROTARY_ATTENTION_BF16 : ROTARY_ATTENTION_F32;
  st = rotary_attention(s->ctx, s->rope, &a->desc);
  a->desc.rope_mode = ROTARY_ATTENTION_ROPE_Q;
  a->desc.precision = ROTARY_ATTENTION_F32;
  if (st != ROTARY_OK) return st;
  const double diff = max_abs_diff(a->out, ref, n), limit = bf16 ? ATTN_CHECK_LIMIT_BF16 : ATTN_CHECK_LIMIT;
  a->max_diff[bf16 ? 2 : m - 1] = diff;
  if (!(diff <= limit)) {
    fprintf(stderr, "rotary bench: rotary_attention (rope_mode %s%s) differs from the composed passes: max |diff| "
            "%.3g (limit %.3g)\n", m == ROTARY_ATTENTION_ROPE_Q ? "Q" : "QK", bf16 ? ", precision BF16" : "", diff,
            limit);
    return ROTARY_ERR_INVALID_ARGUMENT;
  }
  return ROTARY_OK;
}

/* QK's reference rotates each decoded key with the rope's own rows (rotary_rope_cos_sin of 0 .. L - 1). */
static rotary_status key_rows(bench_setup *s, float **cs, float **sn) {
  const size_t len = s->attn->len, half = s->o->head_dim / 2;
  int64_t *all = malloc(len * sizeof *all);
  *cs = malloc(len * half * sizeof **cs);
  *sn = malloc(len * half * sizeof **sn);
  if (!all || !*cs || !*sn) {
    free(all);
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i < len; i++) all[i] = (int64_t)i;
  const rotary_status st = rotary_rope_cos_sin(s->rope, all, len, *cs, *sn);
  free(all);
  return st;
}

rotary_status bench_attn_check(bench_setup *s) {
  bench_attn *a = s->attn;
  float *ref = malloc(s->o->batch * s->o->heads * s->o->head_dim * sizeof *ref), *cs = NULL, *sn = NULL;
  rotary_status st = ref ? check_mode(s, ref, ROTARY_ATTENTION_ROPE_Q, 0) : ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK) st = check_mode(s, ref, ROTARY_ATTENTION_ROPE_Q, 1);
  if (st == ROTARY_OK && s->o->rotary_dim != s->o->head_dim) {
    fprintf(stderr, "rotary bench: the QK check needs rotary_dim == head_dim\n");
    st = ROTARY_ERR_INVALID_ARGUMENT;
  }
  if (st == ROTARY_OK) st = key_rows(s, &cs, &sn);
  if (st == ROTARY_OK) {
    a->comp.key_cos = cs;
    a->comp.key_sin = sn;
    st = check_mode(s, ref, ROTARY_ATTENTION_ROPE_QK, 0);
    a->comp.key_cos = a->comp.key_sin = NULL;
  }
  free(ref);
  free(cs);
  free(sn);
  return st;
}
