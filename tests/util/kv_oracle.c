/* kv_oracle.c: KV-cache test reference (libc only): OCP FP8 E4M3 from the spec, cache geometry, token slots. */
#include "kv_oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

KVO_API size_t kvo_dtype_size(rotary_dtype dt) {
  switch (dt) {
    case ROTARY_F32: return 4;
    case ROTARY_F16:
    case ROTARY_BF16: return 2;
    case ROTARY_FP8_E4M3: return 1;
  }
  return 0;
}

KVO_API uint8_t kvo_fp8_from_f32(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
  if (isnan(x)) return (uint8_t)(sign | 0x7Fu);
  const float a = fabsf(x);
  if (a >= 448.0f) return (uint8_t)(sign | 0x7Eu); /* saturation, Inf included */
  if (a < 0x1p-6f) {                               /* subnormal range: multiples of 2^-9 (code 8 is 2^-6) */
    const float m = rintf(a * 512.0f);              /* exact scaling; rintf rounds to nearest even */
    return (uint8_t)(sign | (uint8_t)m);
  }
  int e2;
  (void)frexpf(a, &e2);               /* a = f * 2^e2, f in [0.5, 1): a in [2^(e2-1), 2^e2) */
  const int e = e2 - 1;               /* -6 .. 8 */
  const float m = rintf(ldexpf(a, 3 - e)); /* 8 .. 16 eighths of 2^e; 16 carries into the next binade */
  const unsigned code = ((unsigned)(e + 7) << 3) + (unsigned)m - 8u;
  return (uint8_t)(sign | (uint8_t)code); /* a < 448 keeps code <= 0x7E */
}

KVO_API float kvo_fp8_to_f32(uint8_t b) {
  const int e = (b >> 3) & 0xF, m = b & 7;
  float v;
  if (e == 15 && m == 7) v = NAN;
  else if (e == 0) v = ldexpf((float)m, -9);
  else v = ldexpf((float)(8 + m), e - 10); /* (1 + m/8) * 2^(e-7) */
  return (b & 0x80u) ? -v : v;
}

KVO_API uint8_t kvo_fp8_encode(float x, float scale) {
  volatile float q = x / scale; /* one fp32 rounding, as the contract says */
  return kvo_fp8_from_f32(q);
}

KVO_API float kvo_fp8_decode(uint8_t b, float scale) {
  volatile float v = kvo_fp8_to_f32(b) * scale;
  return v;
}

KVO_API int kvo_fp8_isnan(uint8_t b) { return (b & 0x7Fu) == 0x7Fu; }

KVO_API size_t kvo_block_stride(const kvo_geom *g) {
  return g->block_stride ? g->block_stride : g->block_size * g->kv_heads * g->head_dim;
}

KVO_API size_t kvo_row_offset(const kvo_geom *g, uint64_t slot, size_t head) {
  const size_t block = (size_t)(slot / g->block_size), row = (size_t)(slot % g->block_size);
  const size_t in_block = g->layout == ROTARY_CACHE_NHD ? (row * g->kv_heads + head) * g->head_dim
                                                        : (head * g->block_size + row) * g->head_dim;
  return block * kvo_block_stride(g) + in_block;
}

static int cmp_i64(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* 1 when two written slots are equal. */
static int has_duplicate(const int64_t *slots, size_t n) {
  int64_t *copy = malloc((n ? n : 1) * sizeof *copy);
  if (!copy) return -1;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (slots[i] >= 0) copy[m++] = slots[i];
  qsort(copy, m, sizeof *copy, cmp_i64);
  int dup = 0;
  for (size_t i = 1; i < m; i++) dup |= copy[i] == copy[i - 1];
  free(copy);
  return dup;
}

static int sequence_slots(const rotary_kv_cache *c, size_t batch, size_t seq_len, int64_t *slots) {
  if (c->num_blocks < batch) return 1;
  for (size_t b = 0; b < batch; b++) {
    const int64_t len = c->lengths[b];
    if (len < 0 || (uint64_t)len > c->block_size || seq_len > c->block_size - (uint64_t)len) return 1;
    for (size_t s = 0; s < seq_len; s++) slots[b * seq_len + s] = (int64_t)(b * c->block_size + (size_t)len + s);
  }
  return 0;
}

static int mapped_slots(const rotary_kv_cache *c, size_t batch, size_t seq_len, int64_t *slots) {
  const uint64_t total = (uint64_t)c->num_blocks * c->block_size; /* callers keep it small */
  for (size_t i = 0; i < batch * seq_len; i++) {
    const int64_t s = c->slot_mapping[i];
    if (s >= 0 && (uint64_t)s >= total) return 1;
    slots[i] = s < 0 ? -1 : s;
  }
  return 0;
}

static int page_slots(const rotary_kv_cache *c, size_t batch, size_t seq_len, int64_t *slots) {
  if (c->page_indptr[0] != 0) return 1;
  for (size_t b = 0; b < batch; b++)
    if (c->page_indptr[b + 1] < c->page_indptr[b]) return 1;
  for (int32_t i = 0; i < c->page_indptr[batch]; i++)
    if (c->page_indices[i] < 0 || (uint64_t)c->page_indices[i] >= c->num_blocks) return 1;
  const uint64_t bs = c->block_size;
  for (size_t b = 0; b < batch; b++) {
    const int64_t pages = (int64_t)c->page_indptr[b + 1] - c->page_indptr[b];
    const int32_t last = c->last_page_len[b];
    if (pages < 1 || last < 1 || (uint64_t)last > bs) return 1;
    const uint64_t len = (uint64_t)(pages - 1) * bs + (uint64_t)last;
    if (len < seq_len) return 1;
    for (size_t s = 0; s < seq_len; s++) {
      const uint64_t p = len - seq_len + s;
      const int32_t page = c->page_indices[c->page_indptr[b] + (int64_t)(p / bs)];
      slots[b * seq_len + s] = (int64_t)((uint64_t)page * bs + p % bs);
    }
  }
  return 0;
}

KVO_API int kvo_token_slots(const rotary_kv_cache *c, size_t batch, size_t seq_len, int64_t *slots) {
  if (c->block_size == 0 || c->num_blocks == 0) return 1;
  int bad;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: bad = sequence_slots(c, batch, seq_len, slots); break;
    case ROTARY_CACHE_SLOTS: bad = mapped_slots(c, batch, seq_len, slots); break;
    case ROTARY_CACHE_PAGES: bad = page_slots(c, batch, seq_len, slots); break;
    default: return 1;
  }
  if (bad) return 1;
  return has_duplicate(slots, batch * seq_len);
}
