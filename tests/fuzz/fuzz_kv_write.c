/* fuzz_kv_write.c: libFuzzer target: rotary_kv_write on small descriptors carved from the input (every cache index,
 * layout, dtype and position mode; slots, lengths and page tables possibly bad; scales, dtypes, overlaps hostile),
 * then rotary_kv_rerotate on the same key cache (slot ranges and lists possibly bad). */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus_kv_write && cp tests/fuzz/corpus_kv_write/* build-fuzz/corpus_kv_write/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -Iinclude $(find src -type d -printf "-I%p ") tests/fuzz/fuzz_kv_write.c $(find src -name "*.c" -not -path "src/hf/*") -lm -lpthread -o build-fuzz/fuzz_kv_write
//   build-fuzz/fuzz_kv_write -max_total_time=60 -dict=tests/fuzz/fuzz_kv_write.dict -artifact_prefix=build-fuzz/ build-fuzz/corpus_kv_write
// tests/test_fuzz_kv_replay.c includes this file and replays tests/fuzz/corpus_kv_write/ and pseudo-random inputs.
/*
 * The model. Every buffer is its own allocation of exactly the size the descriptor implies (ASan sees one element
 * too far). The faults the input plants are counted: an fp8 or unknown dtype (DTYPE), an unknown index or layout or
 * v heads != k heads (INVALID_ARGUMENT), an fp8 cache with a scale that is not finite and positive (SCALE), a
 * cache on another cache or q's output on k's input (OVERLAP), a position beyond the table (POSITION), and an
 * index that the reference reading (tests/util/kv_oracle.c) refuses (CACHE_INDEX). No fault: the call must succeed;
 * faults: it must fail with one of their statuses. On failure not one byte of any buffer changes. On success the
 * inputs keep their bytes, every cache row that no token writes keeps its bytes, and an f32 v lands in an f32
 * cache bit for bit.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"

#if defined(__GNUC__)
#define KVO_API static __attribute__((unused))
#else
#define KVO_API static
#endif
#include "../util/kv_oracle.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long kv_fuzz_failures, kv_fuzz_ok, kv_fuzz_refused, kv_fuzz_rerotated, kv_fuzz_rerotate_refused;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void kv_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_kv_write: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  kv_fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

typedef struct carver {
  const uint8_t *p;
  size_t n;
} carver;

static uint8_t take(carver *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

enum { B_Q, B_QOUT, B_K, B_V, B_KC, B_VC, B_POS, B_COS, B_SIN, B_COUNT };
#define BIT(s) (1u << (unsigned)(s))

typedef struct buffers {
  unsigned char *p[B_COUNT], *copy[B_COUNT];
  size_t bytes[B_COUNT];
} buffers;

static int buf_alloc(buffers *b, int i, size_t bytes, uint64_t *seed) {
  b->bytes[i] = bytes;
  b->p[i] = malloc(bytes ? bytes : 1), b->copy[i] = malloc(bytes ? bytes : 1);
  if (!b->p[i] || !b->copy[i]) return -1;
  for (size_t j = 0; j < bytes; j++) { /* xorshift bytes: finite and special values of every dtype */
    *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
    b->p[i][j] = (unsigned char)(*seed >> 24);
  }
  return 0;
}

static float carve_scale(carver *r) {
  static const float t[16] = {1.0f, 0.5f, 3.0f, 1e-3f, 0.0078125f, 100.0f, FLT_TRUE_MIN, FLT_MAX,
                              0.0f, -1.0f, NAN, INFINITY, -0.0f, -INFINITY, 0.25f, 2.0f};
  const uint8_t k = take(r);
  return t[k < 200 ? k % 8 : (k % 8) + 8];
}

/* The carved call and what it should do. */
typedef struct kv_input {
  rotary_kv_write_desc d;
  buffers b;
  size_t T, qh, kvh, hd, rd, row_stride, max_pos;
  rotary_dtype in_dt;
  int packed, q_out;
  unsigned faults; /* BIT(status) of every planted fault */
  int64_t lengths[4], slots[24];
  int32_t indptr[5], indices[16], last[4];
} kv_input;

static void carve_shape(kv_input *in, carver *r) {
  rotary_kv_write_desc *d = &in->d;
  const uint8_t b0 = take(r), b1 = take(r), b2 = take(r), b3 = take(r), b4 = take(r);
  rotary_kv_write_desc_init(d);
  d->cache.index = (rotary_cache_index)(b0 % 4 == 3 ? (b0 & 0x10 ? 3 : 1) : b0 % 4);
  if (d->cache.index == (rotary_cache_index)3) in->faults |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  d->cache.layout = (rotary_cache_layout)((b0 >> 2) & 1);
  if (((b0 >> 3) & 7) == 7) d->cache.layout = (rotary_cache_layout)2, in->faults |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  in->packed = (b0 >> 7) & 1;
  d->batch = 1 + b1 % 3u, d->seq_len = 1 + (b1 >> 2) % 4u;
  in->T = d->batch * d->seq_len;
  in->qh = b2 % 4u, in->kvh = 1 + (b2 >> 2) % 3u, in->hd = (size_t)2 << ((b2 >> 4) % 3u);
  in->rd = (b2 >> 6) & 1 ? 2 : in->hd;
  d->cache.block_size = 1 + b3 % 6u, d->cache.num_blocks = 1 + (b3 >> 3) % 6u;
  in->in_dt = (rotary_dtype)(b4 % 3u);
  if ((b4 & 0x30) == 0x30 && (b4 & 3) == 3) in->in_dt = ROTARY_FP8_E4M3, in->faults |= BIT(ROTARY_ERR_DTYPE);
  d->cache.dtype = (rotary_dtype)((b4 >> 2) % 4u);
  if ((b4 >> 4) == 14) d->cache.dtype = (rotary_dtype)9, in->faults |= BIT(ROTARY_ERR_DTYPE);
  in->q_out = (b4 >> 7) & 1;
}

/* Slots, lengths or a page table from the input: mostly inside the cache, sometimes not. */
static void carve_index(kv_input *in, carver *r) {
  rotary_kv_cache *c = &in->d.cache;
  const size_t B = in->d.batch, S = in->d.seq_len, bs = c->block_size, total = c->num_blocks * bs;
  for (size_t b = 0; b < B; b++) {
    const uint8_t v = take(r);
    in->lengths[b] = v == 255 ? -1 : (int64_t)(v % (bs + 1));
  }
  for (size_t t = 0; t < in->T; t++) {
    const uint8_t v = take(r);
    in->slots[t] = v >= 240 ? -1 - (v & 3) : (int64_t)(v % (total + 2));
  }
  int32_t pages = 0;
  const uint8_t mess = take(r);
  for (size_t b = 0; b < B; b++) {
    const uint8_t v = take(r), w = take(r);
    in->indptr[b] = pages;
    size_t n = 1 + v % 3u; /* enough pages for the new tokens, usually */
    if (v >= 250) n = 0;
    in->last[b] = (int32_t)(1 + w % bs);
    if (w >= 250) in->last[b] = w == 255 ? 0 : (int32_t)bs + 1;
    if (n && (n - 1) * bs + (size_t)in->last[b] < S) n = (S + bs - 1) / bs + 1, in->last[b] = (int32_t)bs;
    for (size_t i = 0; i < n && pages < 16; i++) {
      const uint8_t p = take(r);
      in->indices[pages++] = (int32_t)(p >= 250 ? (p == 255 ? -1 : (int)c->num_blocks) : (int)(p % c->num_blocks));
    }
  }
  in->indptr[B] = pages;
  if (mess == 0xEE) in->indptr[0] = 1;
  if (mess == 0xEF && B > 1) in->indptr[1] = pages + 1;
  c->lengths = in->lengths, c->slot_mapping = in->slots;
  c->page_indptr = in->indptr, c->page_indices = in->indices, c->last_page_len = in->last;
}

/* q, k, v (packed rows or three BSHD tensors), q's output and the caches, each its own allocation. */
static int carve_buffers(kv_input *in, carver *r, uint64_t *seed) {
  rotary_kv_write_desc *d = &in->d;
  rotary_kv_cache *c = &d->cache;
  buffers *b = &in->b;
  const size_t es = kvo_dtype_size(in->in_dt), D = in->hd, pad = take(r) % 3u;
  if (in->packed) {
    const size_t row = (in->qh + 2 * in->kvh) * D;
    in->row_stride = row + pad;
    if (buf_alloc(b, B_Q, ((in->T - 1) * in->row_stride + row) * es, seed)) return -1;
    if (in->q_out && in->qh && buf_alloc(b, B_QOUT, in->T * in->qh * D * es, seed)) return -1;
    if (rotary_kv_write_desc_set_qkv(d, b->p[B_Q], b->p[B_QOUT], in->in_dt, in->qh, in->kvh, D,
                                     pad ? in->row_stride : 0) != ROTARY_OK)
      return -1;
  } else {
    if (buf_alloc(b, B_Q, in->T * in->qh * D * es, seed) || buf_alloc(b, B_K, in->T * in->kvh * D * es, seed) ||
        buf_alloc(b, B_V, in->T * in->kvh * D * es, seed))
      return -1;
    if (in->q_out && in->qh && buf_alloc(b, B_QOUT, in->T * in->qh * D * es, seed)) return -1;
    void *qo = in->q_out && in->qh ? b->p[B_QOUT] : b->p[B_Q];
    if (rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, b->p[B_Q], qo, in->in_dt, d->seq_len, in->qh, D) ||
        rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, b->p[B_K], NULL, in->in_dt, d->seq_len, in->kvh, D) ||
        rotary_tensor_init(&d->v, ROTARY_LAYOUT_BSHD, b->p[B_V], NULL, in->in_dt, d->seq_len, in->kvh, D))
      return -1;
    if (!in->qh) d->q.in = NULL, d->q.out = NULL;
  }
  const size_t ce = kvo_dtype_size(c->dtype) ? kvo_dtype_size(c->dtype) : 1;
  const size_t dense = c->block_size * in->kvh * D, half = dense + take(r) % 3u;
  if (take(r) & 1) { /* combined [num_blocks, 2, ...] */
    c->block_stride = 2 * half;
    if (buf_alloc(b, B_KC, ((c->num_blocks - 1) * 2 * half + half + dense) * ce, seed)) return -1;
    c->k = b->p[B_KC], c->v = b->p[B_KC] + half * ce;
  } else {
    c->block_stride = half == dense && (in->T & 1) ? 0 : half;
    const size_t n = ((c->num_blocks - 1) * half + dense) * ce;
    if (buf_alloc(b, B_KC, n, seed) || buf_alloc(b, B_VC, n, seed)) return -1;
    c->k = b->p[B_KC], c->v = b->p[B_VC];
  }
  return 0;
}

/* Positions within a 32-row table, or one beyond it (POSITION). */
static int carve_positions(kv_input *in, carver *r, uint64_t *seed) {
  rotary_positions *p = &in->d.positions;
  const uint8_t m = take(r), o = take(r);
  const int64_t room = (int64_t)(in->max_pos - in->d.seq_len); /* largest valid start */
  const int bad = (m >> 3) == 31;
  if (bad) in->faults |= BIT(ROTARY_ERR_POSITION);
  p->mode = (rotary_position_mode)(m % 5);
  if (p->mode == ROTARY_POSITIONS_OFFSET) {
    p->offset = bad ? room + 1 : o % (room + 1);
  } else if (p->mode == ROTARY_POSITIONS_COS_SIN) {
    if (bad) in->faults &= ~BIT(ROTARY_ERR_POSITION);
    const size_t n = in->T * (in->rd / 2) * 4;
    if (buf_alloc(&in->b, B_COS, n, seed) || buf_alloc(&in->b, B_SIN, n, seed)) return -1;
    p->cos = (const float *)(void *)in->b.p[B_COS], p->sin = (const float *)(void *)in->b.p[B_SIN];
  } else {
    const int ids32 = p->mode == ROTARY_POSITIONS_IDS_I32;
    const size_t n = p->mode == ROTARY_POSITIONS_OFFSETS ? in->d.batch : in->T, es = ids32 ? 4 : 8;
    if (buf_alloc(&in->b, B_POS, n * es, seed)) return -1;
    for (size_t i = 0; i < n; i++) {
      int64_t v = p->mode == ROTARY_POSITIONS_OFFSETS ? take(r) % (room + 1) : take(r) % (int64_t)in->max_pos;
      if (bad && i == n - 1) v = p->mode == ROTARY_POSITIONS_OFFSETS ? room + 1 : (i & 1 ? -1 : (int64_t)in->max_pos);
      if (ids32) { int32_t w = (int32_t)v; memcpy(in->b.p[B_POS] + i * 4, &w, 4); }
      else memcpy(in->b.p[B_POS] + i * 8, &v, 8);
    }
    if (p->mode == ROTARY_POSITIONS_OFFSETS) p->offsets = (const int64_t *)(void *)in->b.p[B_POS];
    else p->ids = in->b.p[B_POS];
  }
  return 0;
}

/* Scales, and at most one hostile change of a valid layout of buffers. */
static void carve_hostile(kv_input *in, carver *r) {
  rotary_kv_write_desc *d = &in->d;
  rotary_kv_cache *c = &d->cache;
  c->k_scale = carve_scale(r), c->v_scale = carve_scale(r);
  const int fp8 = c->dtype == ROTARY_FP8_E4M3;
  if (fp8 && (!(c->k_scale > 0.0f) || !(c->v_scale > 0.0f) || isinf(c->k_scale) || isinf(c->v_scale)))
    in->faults |= BIT(ROTARY_ERR_SCALE);
  const uint8_t h = take(r);
  if (h == 1) {
    c->v = c->k, in->faults |= BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 2 && !in->packed && in->qh) {
    d->q.out = in->b.p[B_K], in->faults |= BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 3) {
    d->v.n_heads = in->kvh + 1, in->faults |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  } else if (h == 4 && in->qh) { /* without q heads q's buffer is not part of the call */
    c->k = in->b.p[B_Q], in->faults |= BIT(ROTARY_ERR_OVERLAP);
  }
}

/* On success: inputs unchanged, cache bytes of rows no token writes unchanged, f32 v copied into an f32 cache. */
static void check_success(const kv_input *in, const int64_t *slots) {
  const rotary_kv_write_desc *d = &in->d;
  const buffers *b = &in->b;
  const int q_in_place = in->qh && !in->q_out;
  for (int i = 0; i < B_COUNT; i++) {
    if (!b->p[i] || i == B_QOUT || i == B_KC || i == B_VC || (i == B_Q && q_in_place)) continue;
    if (memcmp(b->p[i], b->copy[i], b->bytes[i])) kv_fail("buffer %d (an input) changed", i);
  }
  const size_t es = kvo_dtype_size(in->in_dt), D = in->hd;
  if (q_in_place && in->packed) /* k, v and padding of every packed row keep their bytes */
    for (size_t t = 0; t < in->T; t++) {
      const size_t from = (t * in->row_stride + in->qh * D) * es, to = t + 1 < in->T ? (t + 1) * in->row_stride * es : b->bytes[B_Q];
      if (memcmp(b->p[B_Q] + from, b->copy[B_Q] + from, to - from)) kv_fail("packed row %zu: k, v or padding changed", t);
    }
  const size_t ce = kvo_dtype_size(d->cache.dtype);
  const kvo_geom g = {d->cache.layout, d->cache.block_size, in->kvh, D, d->cache.block_stride};
  const size_t voff = (size_t)((const unsigned char *)d->cache.v - b->p[d->cache.v == b->p[B_VC] ? B_VC : B_KC]);
  unsigned char *mask[2] = {calloc(b->bytes[B_KC] + 1, 1), calloc(b->bytes[B_VC] + 1, 1)};
  if (!mask[0] || !mask[1]) kv_fail("out of memory");
  for (size_t t = 0; mask[0] && mask[1] && t < in->T; t++)
    for (size_t h = 0; slots[t] >= 0 && h < in->kvh; h++) {
      const size_t row = kvo_row_offset(&g, (uint64_t)slots[t], h) * ce;
      memset(mask[0] + row, 1, D * ce);
      memset(mask[b->p[B_VC] ? 1 : 0] + voff + row, 1, D * ce);
      if (d->cache.dtype != ROTARY_F32 || in->in_dt != ROTARY_F32) continue;
      for (size_t e = 0; e < D; e++) {
        float x, y;
        memcpy(&x, (const unsigned char *)d->v.in + ((size_t)((ptrdiff_t)(t / d->seq_len) * d->v.stride_batch +
               (ptrdiff_t)(t % d->seq_len) * d->v.stride_seq + (ptrdiff_t)h * d->v.stride_head) + e) * 4, 4);
        memcpy(&y, (const unsigned char *)d->cache.v + row + e * 4, 4);
        if (memcmp(&x, &y, 4) && !(isnan(x) && isnan(y))) kv_fail("token %zu head %zu: v not copied exactly", t, h);
      }
    }
  for (int k = 0; k < 2 && mask[0] && mask[1]; k++) {
    const int i = k ? B_VC : B_KC;
    for (size_t j = 0; b->p[i] && j < b->bytes[i]; j++)
      if (!mask[k][j] && b->p[i][j] != b->copy[i][j]) {
        kv_fail("cache %d byte %zu changed though no token writes it", i, j);
        break;
      }
  }
  free(mask[0]), free(mask[1]);
}

static void run_input(kv_input *in, const rotary_rope *rope, rotary_context *ctx) {
  int64_t slots[24];
  rotary_kv_cache *c = &in->d.cache;
  if (c->index <= ROTARY_CACHE_PAGES && kvo_token_slots(c, in->d.batch, in->d.seq_len, slots) != 0)
    in->faults |= BIT(ROTARY_ERR_CACHE_INDEX);
  for (int i = 0; i < B_COUNT; i++)
    if (in->b.p[i]) memcpy(in->b.copy[i], in->b.p[i], in->b.bytes[i]);
  if (getenv("KV_FUZZ_VERBOSE"))
    fprintf(stderr, "B %zu S %zu qh %zu kvh %zu hd %zu rd %zu packed %d q_out %d in %d cache %d index %d layout %d "
            "bs %zu nb %zu stride %zu mode %d faults 0x%x q.in %p q.out %p k.in %p v.in %p kc %p vc %p\n",
            in->d.batch, in->d.seq_len, in->qh, in->kvh, in->hd, in->rd, in->packed, in->q_out, (int)in->in_dt,
            (int)c->dtype, (int)c->index, (int)c->layout, c->block_size, c->num_blocks, c->block_stride,
            (int)in->d.positions.mode, in->faults, in->d.q.in, in->d.q.out, in->d.k.in, in->d.v.in, c->k, c->v);
  const rotary_status st = rotary_kv_write(ctx, rope, &in->d);
  if (st == ROTARY_OK) {
    kv_fuzz_ok++;
    if (in->faults) kv_fail("status OK although the input has faults 0x%x", in->faults);
    else check_success(in, slots);
    return;
  }
  kv_fuzz_refused++;
  if (!in->faults) kv_fail("status %d (%s) for a valid input", (int)st, rotary_status_string(st));
  else if (!(in->faults & BIT(st)))
    kv_fail("status %d (%s), expected one of the faults 0x%x", (int)st, rotary_status_string(st), in->faults);
  for (int i = 0; i < B_COUNT; i++)
    if (in->b.p[i] && memcmp(in->b.p[i], in->b.copy[i], in->b.bytes[i]))
      kv_fail("a failed call (status %d) changed buffer %d", (int)st, i);
}

/* Then, when the input asks (a trailing byte), rotary_kv_rerotate on the same key cache: slots as a range or a list
 * (possibly outside the cache, repeated, or stored inside the cache), a delta possibly too large. Faults predict
 * the status as above; on failure no byte changes, on success only the chosen keys' rows of the key cache do. */
static void run_rerotate(kv_input *in, carver *r, const rotary_rope *rope, rotary_context *ctx) {
  const uint8_t sel = take(r);
  if (!(sel & 1) || !in->b.p[B_KC] || in->d.cache.k != in->b.p[B_KC]) return;
  const rotary_kv_cache *wc = &in->d.cache;
  rotary_kv_rerotate_desc d;
  rotary_kv_rerotate_desc_init(&d);
  d.cache = *wc, d.cache.v = NULL, d.kv_heads = in->kvh;
  unsigned faults = 0;
  if (wc->layout > ROTARY_CACHE_HND) faults |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if (!kvo_dtype_size(wc->dtype)) faults |= BIT(ROTARY_ERR_DTYPE);
  if (wc->dtype == ROTARY_FP8_E4M3 && !(isfinite(wc->k_scale) && wc->k_scale > 0.0f)) faults |= BIT(ROTARY_ERR_SCALE);
  const uint64_t total = (uint64_t)wc->num_blocks * wc->block_size;
  const uint8_t dl = take(r);
  d.delta = dl >= 250 ? (dl & 1 ? ROTARY_MAX_POSITION + 1 : -ROTARY_MAX_POSITION) : (int64_t)(dl % 64) - 32;
  if (dl >= 250 && (dl & 1)) faults |= BIT(ROTARY_ERR_POSITION);
  int64_t list[8];
  int64_t chosen[8];
  size_t n_chosen = 0;
  d.n_slots = take(r) % 6u;
  if (d.n_slots == 0) faults |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if (sel & 2) { /* a list; bit 2: stored inside the key cache */
    for (size_t i = 0; i < d.n_slots; i++) {
      const uint8_t v = take(r);
      list[i] = v >= 240 ? -1 : (int64_t)(v % (total + 1));
      if (list[i] >= (int64_t)total) faults |= BIT(ROTARY_ERR_CACHE_INDEX);
      for (size_t j = 0; j < i; j++)
        if (list[i] >= 0 && list[j] == list[i]) faults |= BIT(ROTARY_ERR_CACHE_INDEX);
      if (list[i] >= 0 && list[i] < (int64_t)total) chosen[n_chosen++] = list[i];
    }
    d.slots = list;
    if ((sel & 4) && in->b.bytes[B_KC] >= sizeof list + 8) {
      d.slots = (const int64_t *)(void *)(in->b.p[B_KC] + 8); /* aligned: malloc's alignment plus 8 */
      memcpy(in->b.p[B_KC] + 8, list, d.n_slots * sizeof *list);
      if (d.n_slots) faults |= BIT(ROTARY_ERR_OVERLAP);
    }
  } else {
    d.first_slot = take(r) % (total + 1);
    if (d.first_slot + d.n_slots > total) faults |= BIT(ROTARY_ERR_CACHE_INDEX);
    for (size_t i = 0; i < d.n_slots && d.first_slot + i < total; i++) chosen[n_chosen++] = (int64_t)(d.first_slot + i);
  }
  for (int i = 0; i < B_COUNT; i++)
    if (in->b.p[i]) memcpy(in->b.copy[i], in->b.p[i], in->b.bytes[i]);
  const rotary_status st = rotary_kv_rerotate(ctx, rope, &d);
  kv_fuzz_rerotated++;
  if (st != ROTARY_OK) {
    kv_fuzz_rerotate_refused++;
    if (!faults) kv_fail("rerotate: status %d for a valid input", (int)st);
    else if (!(faults & BIT(st))) kv_fail("rerotate: status %d, expected one of the faults 0x%x", (int)st, faults);
    for (int i = 0; i < B_COUNT; i++)
      if (in->b.p[i] && memcmp(in->b.p[i], in->b.copy[i], in->b.bytes[i])) kv_fail("rerotate: failed call wrote");
    return;
  }
  if (faults) kv_fail("rerotate: status OK although the input has faults 0x%x", faults);
  const size_t ce = kvo_dtype_size(wc->dtype);
  const kvo_geom g = {wc->layout, wc->block_size, in->kvh, in->hd, wc->block_stride};
  unsigned char *mask = calloc(in->b.bytes[B_KC] + 1, 1);
  if (!mask) return;
  for (size_t i = 0; i < n_chosen; i++)
    for (size_t h = 0; h < in->kvh; h++) memset(mask + kvo_row_offset(&g, (uint64_t)chosen[i], h) * ce, 1, in->hd * ce);
  for (size_t j = 0; j < in->b.bytes[B_KC]; j++)
    if (!mask[j] && in->b.p[B_KC][j] != in->b.copy[B_KC][j]) {
      kv_fail("rerotate: key cache byte %zu changed though no chosen slot holds it", j);
      break;
    }
  if (in->b.p[B_VC] && memcmp(in->b.p[B_VC], in->b.copy[B_VC], in->b.bytes[B_VC])) kv_fail("rerotate: v changed");
  free(mask);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  carver r = {data, size};
  kv_input in;
  memset(&in, 0, sizeof in);
  in.max_pos = 32;
  carve_shape(&in, &r);
  carve_index(&in, &r);
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ size;
  for (size_t i = 0; i < size && i < 16; i++) seed = seed * 31 + data[i];
  rotary_config cfg;
  rotary_config_init(&cfg, in.hd);
  cfg.rotary_dim = in.rd, cfg.pairing = (rotary_pairing)(take(&r) & 1);
  rotary_rope *rope = NULL;
  static rotary_context *pool[2]; /* 2 and 3 threads, made once and kept (reachable: no leak) */
  const int threads = take(&r) % 3;
  if (threads && !pool[threads - 1] && rotary_context_create((size_t)threads + 1, &pool[threads - 1]) != ROTARY_OK)
    pool[threads - 1] = NULL;
  if (rotary_rope_create(&cfg, in.max_pos, &rope) == ROTARY_OK && carve_buffers(&in, &r, &seed) == 0 &&
      carve_positions(&in, &r, &seed) == 0) {
    carve_hostile(&in, &r);
    run_input(&in, rope, threads ? pool[threads - 1] : NULL);
    run_rerotate(&in, &r, rope, threads ? pool[threads - 1] : NULL);
  }
  rotary_rope_destroy(rope);
  for (int i = 0; i < B_COUNT; i++) free(in.b.p[i]), free(in.b.copy[i]);
  return 0;
}
