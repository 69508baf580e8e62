/* fuzz_attention.c: libFuzzer target: rotary_attention on small descriptors carved from the input (every cache index,
 * layout, dtype and rope mode; lengths, block tables and page tables possibly bad; scales, dtypes, strides and
 * overlaps hostile). */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus_attention && cp tests/fuzz/corpus_attention/* build-fuzz/corpus_attention/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -Iinclude -Ithird_party/cjson/cjson $(find src -type d -printf "-I%p ") tests/fuzz/fuzz_attention.c $(find src third_party/cjson -name "*.c" -not -path "src/hf/*" -not -path "src/backend/cuda/*") -lm -lpthread -o build-fuzz/fuzz_attention
//   build-fuzz/fuzz_attention -max_total_time=60 -artifact_prefix=build-fuzz/ build-fuzz/corpus_attention
// tests/test_fuzz_attention_replay.c includes this file and replays tests/fuzz/corpus_attention/ and pseudo-random
// inputs.
/*
 * The model. Every buffer is its own allocation of exactly the size the descriptor implies (ASan sees one element
 * too far), filled with random bytes (NaN, Inf and huge values included). The faults the input plants are counted
 * as the header documents them: unknown enums, tokens 0 or 17, q_heads not a multiple (INVALID_ARGUMENT), fp8 or
 * unknown dtypes (DTYPE), a bad scale, soft cap or fp8 scale (SCALE), a row beyond the rope's 32-row table with
 * rope mode Q or QK (POSITION), out writing an element twice or a block_stride below a block (STRIDE), out or lse
 * over an input or each other (OVERLAP), and an index the reading below refuses (CACHE_INDEX). No fault: the call
 * must succeed; faults: it must fail with one of their statuses, and then not one byte of any buffer changes. On
 * success the inputs keep their bytes, out's bytes between strided elements keep theirs, and a second call on
 * another context (1, 2 or 3 threads or NULL) gives the same out and lse bytes.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long at_fuzz_failures, at_fuzz_ok, at_fuzz_refused;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void at_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_attention: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  at_fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

typedef struct at_carver {
  const uint8_t *p;
  size_t n;
} at_carver;

static uint8_t at_take(at_carver *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

enum { A_Q, A_OUT, A_LSE, A_KC, A_VC, A_LEN, A_TABLE, A_INDPTR, A_INDICES, A_LAST, A_COUNT };
#define A_BIT(s) (1u << (unsigned)(s))

typedef struct at_input {
  rotary_attention_desc d;
  unsigned char *p[A_COUNT], *copy[A_COUNT], *first[2];
  size_t bytes[A_COUNT], hd, out_elems;
  unsigned faults;
} at_input;

static size_t at_size(rotary_dtype dt) {
  return dt == ROTARY_F32 ? 4 : dt == ROTARY_F16 || dt == ROTARY_BF16 ? 2 : dt == ROTARY_FP8_E4M3 ? 1 : 0;
}

/* xorshift bytes: finite and special values of every dtype. */
static void at_fill(unsigned char *p, size_t bytes, uint64_t *seed) {
  for (size_t j = 0; j < bytes; j++) {
    *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
    p[j] = (unsigned char)(*seed >> 24);
  }
}

static int at_alloc(at_input *in, int i, size_t bytes, uint64_t *seed) {
  const size_t n = bytes ? bytes : 1;
  unsigned char *p = malloc(n), *copy = malloc(n);
  in->bytes[i] = bytes, in->p[i] = p, in->copy[i] = copy;
  if (!p || !copy) return -1;
  at_fill(p, n, seed);
  return 0;
}

static float at_scale(at_carver *r) {
  static const float t[16] = {1.0f, 0.5f, 3.0f, 1e-3f, 0.0078125f, 100.0f, FLT_TRUE_MIN, FLT_MAX,
                              0.0f, -1.0f, NAN, INFINITY, -0.0f, -INFINITY, 0.25f, 2.0f};
  const uint8_t k = at_take(r);
  return t[k < 200 ? k % 8 : (k % 8) + 8];
}

static int at_scale_ok(float s, int zero_ok) { return (zero_ok && s == 0.0f) || (isfinite(s) && s > 0.0f); }

static void carve_shape(at_input *in, at_carver *r) {
  rotary_attention_desc *d = &in->d;
  const uint8_t b0 = at_take(r), b1 = at_take(r), b2 = at_take(r), b3 = at_take(r), b4 = at_take(r), b5 = at_take(r);
  rotary_attention_desc_init(d);
  d->cache.index = (rotary_cache_index)(b0 % 3);
  if ((b0 & 0x1c) == 0x1c) d->cache.index = (rotary_cache_index)3, in->faults |= A_BIT(ROTARY_ERR_INVALID_ARGUMENT);
  d->cache.layout = (rotary_cache_layout)((b0 >> 5) & 1);
  if ((b0 >> 6) == 3 && (b0 & 3) == 1) d->cache.layout = (rotary_cache_layout)2, in->faults |= A_BIT(ROTARY_ERR_INVALID_ARGUMENT);
  d->batch = 1 + b1 % 3u, d->tokens = 1 + (b1 >> 2) % 4u;
  if (b1 >= 0xF8) d->tokens = b1 & 1 ? 0 : ROTARY_ATTENTION_MAX_TOKENS + 1, in->faults |= A_BIT(ROTARY_ERR_INVALID_ARGUMENT);
  d->kv_heads = 1 + b2 % 2u, d->q_heads = d->kv_heads * (1 + (b2 >> 1) % 3u);
  if ((b2 >> 3) == 31) d->q_heads = d->kv_heads == 2 ? 3 : 0, in->faults |= A_BIT(ROTARY_ERR_INVALID_ARGUMENT);
  in->hd = (size_t)2 << ((b2 >> 5) % 3u);
  d->cache.block_size = 1 + b3 % 6u, d->cache.num_blocks = 1 + (b3 >> 3) % 8u;
  d->cache.dtype = (rotary_dtype)(b4 % 4u);
  if ((b4 >> 2) == 63) d->cache.dtype = (rotary_dtype)9, in->faults |= A_BIT(ROTARY_ERR_DTYPE);
  d->q_dtype = (rotary_dtype)((b4 >> 2) % 3u), d->out_dtype = (rotary_dtype)((b4 >> 4) % 3u);
  if ((b5 & 0x0f) == 0x0f) d->q_dtype = ROTARY_FP8_E4M3, in->faults |= A_BIT(ROTARY_ERR_DTYPE);
  if ((b5 & 0x0f) == 0x0e) d->out_dtype = (rotary_dtype)7, in->faults |= A_BIT(ROTARY_ERR_DTYPE);
  d->rope_mode = (rotary_attention_rope)((b5 >> 4) % 3u);
  if ((b5 >> 4) == 15) d->rope_mode = (rotary_attention_rope)5, in->faults |= A_BIT(ROTARY_ERR_INVALID_ARGUMENT);
  d->window = (b5 & 0x30) == 0x30 ? 1 + (b5 & 7) : 0;
}

/* Lengths, a block table or a page table from the input: mostly valid, sometimes not. */
static int carve_index(at_input *in, at_carver *r, uint64_t *seed) {
  rotary_attention_desc *d = &in->d;
  rotary_kv_cache *c = &d->cache;
  const size_t B = d->batch, bs = c->block_size;
  if (at_alloc(in, A_LEN, B * 8, seed)) return -1;
  int64_t *len = (int64_t *)(void *)in->p[A_LEN];
  for (size_t b = 0; b < B; b++) {
    const uint8_t v = at_take(r);
    len[b] = v == 255 ? -1 : v == 254 ? INT64_MAX : (int64_t)(d->tokens + v % 40u);
    if (c->index == ROTARY_CACHE_SEQUENCES && v < 200) len[b] = (int64_t)(d->tokens + v % (bs + 1));
  }
  d->block_table_stride = 1 + at_take(r) % 8u;
  if (at_alloc(in, A_TABLE, B * d->block_table_stride * 4, seed)) return -1;
  int32_t *table = (int32_t *)(void *)in->p[A_TABLE];
  for (size_t i = 0; i < B * d->block_table_stride; i++) {
    const uint8_t v = at_take(r);
    table[i] = v >= 250 ? (v & 1 ? -1 : (int32_t)c->num_blocks) : (int32_t)(v % c->num_blocks);
  }
  uint8_t npages[4];
  size_t pages = 0;
  for (size_t b = 0; b < B; b++) npages[b] = (uint8_t)(at_take(r) % 8u), pages += npages[b];
  if (at_alloc(in, A_INDPTR, (B + 1) * 4, seed) || at_alloc(in, A_INDICES, pages * 4, seed) ||
      at_alloc(in, A_LAST, B * 4, seed))
    return -1;
  int32_t *indptr = (int32_t *)(void *)in->p[A_INDPTR], *indices = (int32_t *)(void *)in->p[A_INDICES];
  int32_t *last = (int32_t *)(void *)in->p[A_LAST];
  int32_t at = 0;
  for (size_t b = 0; b < B; b++) {
    indptr[b] = at, at += npages[b];
    const uint8_t w = at_take(r);
    last[b] = w >= 250 ? (w & 1 ? 0 : (int32_t)bs + 1) : (int32_t)(1 + w % bs);
  }
  indptr[B] = at;
  for (size_t i = 0; i < pages; i++) {
    const uint8_t v = at_take(r);
    indices[i] = v >= 250 ? (v & 1 ? -1 : (int32_t)c->num_blocks) : (int32_t)(v % c->num_blocks);
  }
  if (c->index == ROTARY_CACHE_SEQUENCES || c->index == ROTARY_CACHE_SLOTS) c->lengths = len;
  if (c->index == ROTARY_CACHE_SLOTS) d->block_table = table;
  if (c->index == ROTARY_CACHE_PAGES) c->page_indptr = indptr, c->page_indices = indices, c->last_page_len = last;
  return 0;
}

/* The index as the header reads it: 0 and *max_len, or 1 (CACHE_INDEX). */
static int index_faulty(const at_input *in, uint64_t *max_len) {
  const rotary_attention_desc *d = &in->d;
  const rotary_kv_cache *c = &d->cache;
  const uint64_t bs = c->block_size;
  *max_len = 0;
  if (c->index == ROTARY_CACHE_SEQUENCES && c->num_blocks < d->batch) return 1;
  for (size_t b = 0; b < d->batch; b++) {
    uint64_t L;
    if (c->index == ROTARY_CACHE_PAGES) {
      const int32_t *ip = c->page_indptr;
      if (ip[0] != 0 || ip[b + 1] <= ip[b]) return 1;
      if (c->last_page_len[b] < 1 || (uint64_t)c->last_page_len[b] > bs) return 1;
      for (int32_t i = ip[b]; i < ip[b + 1]; i++)
        if (c->page_indices[i] < 0 || (uint64_t)c->page_indices[i] >= c->num_blocks) return 1;
      L = (uint64_t)(ip[b + 1] - ip[b] - 1) * bs + (uint64_t)c->last_page_len[b];
    } else {
      if (c->lengths[b] < 0) return 1;
      L = (uint64_t)c->lengths[b];
      if (c->index == ROTARY_CACHE_SEQUENCES && L > bs) return 1;
      if (c->index == ROTARY_CACHE_SLOTS) {
        if (L > (uint64_t)d->block_table_stride * bs) return 1;
        for (uint64_t j = 0; j < (L + bs - 1) / bs; j++) {
          const int32_t blk = d->block_table[b * d->block_table_stride + j];
          if (blk < 0 || (uint64_t)blk >= c->num_blocks) return 1;
        }
      }
    }
    if (L < d->tokens) return 1;
    if (L > *max_len) *max_len = L;
  }
  return 0;
}

/* q, out, lse and the caches, each its own allocation; strides sometimes padded. */
static int carve_buffers(at_input *in, at_carver *r, uint64_t *seed) {
  rotary_attention_desc *d = &in->d;
  rotary_kv_cache *c = &d->cache;
  const size_t D = in->hd, B = d->batch, T = d->tokens ? d->tokens : 1, H = d->q_heads ? d->q_heads : 1;
  const uint8_t s = at_take(r);
  const size_t qe = at_size(d->q_dtype) ? at_size(d->q_dtype) : 4, oe = at_size(d->out_dtype) ? at_size(d->out_dtype) : 4;
  const size_t qpad = s & 1, opad = (s >> 1) & 1;
  if (qpad) d->q_stride_head = (ptrdiff_t)(D + 1), d->q_stride_token = (ptrdiff_t)(H * (D + 1)), d->q_stride_batch = (ptrdiff_t)(T * H * (D + 1));
  if (opad) d->out_stride_head = (ptrdiff_t)(D + 2), d->out_stride_token = (ptrdiff_t)(H * (D + 2)), d->out_stride_batch = (ptrdiff_t)(T * H * (D + 2));
  const size_t qn = (B * T * H - 1) * (D + qpad) + D;
  in->out_elems = (B * T * H - 1) * (D + 2 * opad) + D;
  if (at_alloc(in, A_Q, qn * qe, seed) || at_alloc(in, A_OUT, in->out_elems * oe, seed)) return -1;
  d->q = in->p[A_Q], d->out = in->p[A_OUT];
  if (!(s & 4)) {
    if (at_alloc(in, A_LSE, B * T * H * 4, seed)) return -1;
    d->lse = (float *)(void *)in->p[A_LSE];
  }
  const size_t ce = at_size(c->dtype) ? at_size(c->dtype) : 1, dense = c->block_size * d->kv_heads * D;
  const size_t pad = (s >> 3) % 3u;
  c->block_stride = pad ? dense + pad : (s & 0x20 ? dense : 0);
  const size_t n = ((c->num_blocks - 1) * (dense + pad) + dense) * ce;
  if (at_alloc(in, A_KC, n, seed) || at_alloc(in, A_VC, n, seed)) return -1;
  c->k = in->p[A_KC], c->v = in->p[A_VC];
  return 0;
}

/* Scales, then at most one hostile change. */
static void carve_hostile(at_input *in, at_carver *r) {
  rotary_attention_desc *d = &in->d;
  rotary_kv_cache *c = &d->cache;
  d->scale = at_take(r) < 128 ? 0.0f : at_scale(r);
  d->softcap = at_take(r) < 160 ? 0.0f : at_scale(r);
  c->k_scale = at_scale(r), c->v_scale = at_scale(r);
  if (!at_scale_ok(d->scale, 1) || !at_scale_ok(d->softcap, 1)) in->faults |= A_BIT(ROTARY_ERR_SCALE);
  if (c->dtype == ROTARY_FP8_E4M3 && (!at_scale_ok(c->k_scale, 0) || !at_scale_ok(c->v_scale, 0)))
    in->faults |= A_BIT(ROTARY_ERR_SCALE);
  const uint8_t h = at_take(r);
  const size_t D = in->hd;
  if (h == 1) {
    d->out = (void *)(uintptr_t)d->q, in->faults |= A_BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 2 && d->lse) {
    d->lse = (float *)d->out, in->faults |= A_BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 3) {
    d->out = c->k, in->faults |= A_BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 4 && d->q_heads > 1) { /* heads half a row apart: written twice */
    d->out_stride_head = (ptrdiff_t)(D / 2), d->out_stride_token = (ptrdiff_t)(d->q_heads * D);
    d->out_stride_batch = (ptrdiff_t)(d->tokens * d->q_heads * D);
    in->faults |= A_BIT(ROTARY_ERR_STRIDE);
  } else if (h == 5) {
    c->block_stride = c->block_size * d->kv_heads * D - 1, in->faults |= A_BIT(ROTARY_ERR_STRIDE);
  } else if (h == 6 && d->lse && c->index != ROTARY_CACHE_PAGES) { /* lengths read: SEQUENCES, SLOTS */
    d->lse = (float *)(void *)in->p[A_LEN], in->faults |= A_BIT(ROTARY_ERR_OVERLAP);
  } else if (h == 7) {
    c->v = c->k; /* k and v may be one buffer: both are read */
  }
}

static void snapshot(at_input *in) {
  for (int i = 0; i < A_COUNT; i++)
    if (in->p[i]) memcpy(in->copy[i], in->p[i], in->bytes[i]);
}

static void check_success(at_input *in, rotary_context *other, const rotary_rope *rope) {
  const rotary_attention_desc *d = &in->d;
  for (int i = 0; i < A_COUNT; i++)
    if (in->p[i] && i != A_OUT && i != A_LSE && memcmp(in->p[i], in->copy[i], in->bytes[i]))
      at_fail("input buffer %d changed", i);
  const size_t D = in->hd, oe = at_size(d->out_dtype), stride = d->out_stride_head ? (size_t)d->out_stride_head : D;
  for (size_t e = 0; e < in->out_elems; e++)
    if (e % stride >= D && memcmp(in->p[A_OUT] + e * oe, in->copy[A_OUT] + e * oe, oe)) {
      at_fail("out element %zu between strided rows changed", e);
      break;
    }
  memcpy(in->first[0], in->p[A_OUT], in->bytes[A_OUT]);
  if (in->p[A_LSE]) memcpy(in->first[1], in->p[A_LSE], in->bytes[A_LSE]);
  memcpy(in->p[A_OUT], in->copy[A_OUT], in->bytes[A_OUT]);
  const rotary_status st = rotary_attention(other, rope, d);
  if (st != ROTARY_OK) at_fail("the second call on another context: status %d", (int)st);
  else if (memcmp(in->first[0], in->p[A_OUT], in->bytes[A_OUT]) ||
           (in->p[A_LSE] && memcmp(in->first[1], in->p[A_LSE], in->bytes[A_LSE])))
    at_fail("another context (%zu threads) gave other bytes", rotary_context_threads(other));
}

static void run_input(at_input *in, const rotary_rope *rope, rotary_context *ctx, rotary_context *other) {
  rotary_attention_desc *d = &in->d;
  uint64_t max_len = 0;
  if (d->cache.index <= ROTARY_CACHE_PAGES && d->tokens && index_faulty(in, &max_len)) in->faults |= A_BIT(ROTARY_ERR_CACHE_INDEX);
  if ((d->rope_mode == ROTARY_ATTENTION_ROPE_Q || d->rope_mode == ROTARY_ATTENTION_ROPE_QK) && max_len > 32) in->faults |= A_BIT(ROTARY_ERR_POSITION);
  snapshot(in);
  if (getenv("AT_FUZZ_VERBOSE"))
    fprintf(stderr, "B %zu T %zu qh %zu kvh %zu hd %zu index %d layout %d cache %d q %d out %d mode %d bs %zu nb %zu "
            "stride %zu scale %g softcap %g window %zu faults 0x%x\n", d->batch, d->tokens, d->q_heads, d->kv_heads,
            in->hd, (int)d->cache.index, (int)d->cache.layout, (int)d->cache.dtype, (int)d->q_dtype,
            (int)d->out_dtype, (int)d->rope_mode, d->cache.block_size, d->cache.num_blocks, d->cache.block_stride,
            (double)d->scale, (double)d->softcap, d->window, in->faults);
  const rotary_status st = rotary_attention(ctx, rope, d);
  if (st == ROTARY_OK) {
    at_fuzz_ok++;
    if (in->faults) at_fail("status OK although the input has faults 0x%x", in->faults);
    else check_success(in, other, rope);
    return;
  }
  at_fuzz_refused++;
  if (!in->faults) at_fail("status %d (%s) for a valid input", (int)st, rotary_status_string(st));
  else if (!(in->faults & A_BIT(st)))
    at_fail("status %d (%s), expected one of the faults 0x%x", (int)st, rotary_status_string(st), in->faults);
  for (int i = 0; i < A_COUNT; i++)
    if (in->p[i] && memcmp(in->p[i], in->copy[i], in->bytes[i])) at_fail("a failed call (status %d) changed buffer %d", (int)st, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  at_carver r = {data, size};
  at_input in;
  memset(&in, 0, sizeof in);
  carve_shape(&in, &r);
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ size;
  for (size_t i = 0; i < size && i < 16; i++) seed = seed * 31 + data[i];
  static rotary_context *pool[3]; /* 1, 2 and 3 threads, made once and kept (reachable: no leak) */
  const uint8_t th = at_take(&r);
  const int a = th % 4, b = (th >> 2) % 4; /* 0: NULL, else pool[n - 1] */
  for (int i = 0; i < 3; i++)
    if (!pool[i] && rotary_context_create((size_t)i + 1, &pool[i]) != ROTARY_OK) pool[i] = NULL;
  rotary_config cfg;
  rotary_config_init(&cfg, in.hd);
  cfg.pairing = (rotary_pairing)(at_take(&r) & 1);
  rotary_rope *rope = NULL;
  if (rotary_rope_create(&cfg, 32, &rope) == ROTARY_OK && carve_index(&in, &r, &seed) == 0 &&
      carve_buffers(&in, &r, &seed) == 0 && (in.first[0] = malloc(in.bytes[A_OUT] + 1)) &&
      (in.first[1] = malloc(in.bytes[A_LSE] + 1))) {
    carve_hostile(&in, &r);
    run_input(&in, rope, a ? pool[a - 1] : NULL, b ? pool[b - 1] : NULL);
  }
  rotary_rope_destroy(rope);
  for (int i = 0; i < A_COUNT; i++) free(in.p[i]), free(in.copy[i]);
  free(in.first[0]), free(in.first[1]);
  return 0;
}
