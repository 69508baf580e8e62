/* bench_kv_setup.c: the kv-write workload: packed QKV rows, the cache and its index, both calls' descriptors, and
 * the check of the unfused pair against the fused call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_dtype.h"
#include "bench_kv.h"

#define KV_SCALE (1.0f / 128.0f) /* fp8 k and v scales: inputs below 2 in magnitude stay inside +-448 */

static void *alloc_aligned(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

static uint64_t next_random(uint64_t *x) {
  *x = *x * 6364136223846793005u + 1442695040888963407u;
  return *x >> 33;
}

/* Values in -2 .. 2 in every input dtype (an fp8 cache with scale 1/128 holds them without saturating). */
static void fill_qkv(const bench_options *o, bench_kv *kv) {
  const size_t n = kv->qkv_bytes / kv->esize;
  uint64_t x = 0x2545f4914f6cdd1du;
  for (size_t i = 0; i < n; i++) {
    const float f = (float)((double)next_random(&x) / 0x1p31 * 4.0 - 2.0);
    if (o->dtype == ROTARY_F32) ((float *)kv->qkv)[i] = f;
    else ((uint16_t *)kv->qkv)[i] = o->dtype == ROTARY_F16 ? bench_f32_to_f16(f) : bench_f32_to_bf16(f);
  }
}

/* Per sequence its cache length (prefill 0; decode random below the table), per token its position and the row
 * of each cache it writes: contiguous, row lengths[b] + s of block b; paged, logical block j of sequence b is
 * physical block perm[b * per_seq + j] (a random permutation: random block order). */
static rotary_status make_index(const bench_options *o, bench_setup *s) {
  bench_kv *kv = s->kv;
  const size_t per_seq = (o->table + kv->block_size - 1) / kv->block_size;
  size_t *perm = NULL;
  uint64_t x = 0x9e3779b97f4a7c15u;
  if (o->cache == ROTARY_CACHE_SLOTS) {
    if (!(perm = malloc(kv->num_blocks * sizeof *perm))) return ROTARY_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < kv->num_blocks; i++) perm[i] = i;
    for (size_t i = kv->num_blocks; i > 1; i--) {
      const size_t j = (size_t)(next_random(&x) % i), t = perm[i - 1];
      perm[i - 1] = perm[j];
      perm[j] = t;
    }
  }
  for (size_t b = 0; b < o->batch; b++) {
    kv->lengths[b] = o->decode ? (int64_t)(next_random(&x) % (o->table - o->tokens + 1)) : 0;
    for (size_t t = 0; t < o->tokens; t++) {
      const size_t i = b * o->tokens + t, p = (size_t)kv->lengths[b] + t;
      kv->pos[i] = (int64_t)p;
      const size_t slot = perm ? perm[b * per_seq + p / kv->block_size] * kv->block_size + p % kv->block_size
                               : b * kv->block_size + p;
      kv->slots[i] = (int64_t)slot;
      kv->dst[i] = slot * kv->kv_row;
    }
  }
  free(perm);
  return ROTARY_OK;
}

static void fill_cache_desc(const bench_options *o, bench_kv *kv) {
  rotary_kv_cache *c = &kv->desc.cache;
  c->index = o->cache;
  c->layout = ROTARY_CACHE_NHD;
  c->dtype = o->cache_dtype;
  c->k = kv->kc;
  c->v = kv->vc;
  c->num_blocks = kv->num_blocks;
  c->block_size = kv->block_size;
  c->lengths = kv->lengths;
  c->slot_mapping = kv->slots;
  c->k_scale = c->v_scale = KV_SCALE;
}

/* The fused call (q in place in the packed rows) and the unfused pair's rotary_apply on the same rows. */
static rotary_status make_descs(const bench_options *o, bench_setup *s) {
  bench_kv *kv = s->kv;
  rotary_kv_write_desc *d = &kv->desc;
  rotary_kv_write_desc_init(d);
  d->batch = o->batch;
  d->seq_len = o->tokens;
  if (o->decode) { /* vLLM passes positions as a tensor: each token at its sequence's cache length */
    d->positions.mode = ROTARY_POSITIONS_IDS_I64;
    d->positions.ids = kv->pos;
  }
  rotary_status st = rotary_kv_write_desc_set_qkv(d, kv->qkv, NULL, o->dtype, o->heads, o->kv_heads, o->head_dim, 0);
  if (st != ROTARY_OK) return st;
  fill_cache_desc(o, kv);
  rotary_apply_desc *a = &kv->rope;
  rotary_apply_desc_init(a);
  a->batch = o->batch;
  a->seq_len = o->tokens;
  a->positions = d->positions;
  const ptrdiff_t row = (ptrdiff_t)kv->row_elems, seq = row * (ptrdiff_t)o->tokens, dim = (ptrdiff_t)o->head_dim;
  rotary_tensor *t[2] = {&a->q, &a->k};
  for (int i = 0; i < 2; i++) {
    char *base = (char *)kv->qkv + (i ? o->heads * o->head_dim * kv->esize : 0);
    *t[i] = (rotary_tensor){base, base, o->dtype, i ? o->kv_heads : o->heads, seq, row, dim, seq, row, dim};
  }
  return ROTARY_OK;
}

static rotary_status make_buffers(const bench_options *o, bench_setup *s) {
  bench_kv *kv = s->kv;
  kv->esize = o->dtype == ROTARY_F32 ? 4 : 2;
  kv->cache_esize = o->cache_dtype == ROTARY_F32 ? 4 : o->cache_dtype == ROTARY_FP8_E4M3 ? 1 : 2;
  kv->row_elems = (o->heads + 2 * o->kv_heads) * o->head_dim;
  kv->kv_row = o->kv_heads * o->head_dim;
  kv->qkv_bytes = s->rows * kv->row_elems * kv->esize;
  kv->block_size = o->cache == ROTARY_CACHE_SLOTS ? o->block_size : o->table;
  kv->num_blocks = o->batch * ((o->table + kv->block_size - 1) / kv->block_size);
  kv->cache_bytes = kv->num_blocks * kv->block_size * kv->kv_row * kv->cache_esize;
  kv->qkv = alloc_aligned(kv->qkv_bytes);
  kv->kc = alloc_aligned(kv->cache_bytes); /* untouched: only the rows the calls write get pages */
  kv->vc = alloc_aligned(kv->cache_bytes);
  kv->dst = malloc(s->rows * sizeof *kv->dst);
  kv->lengths = malloc(o->batch * sizeof *kv->lengths);
  kv->slots = malloc(s->rows * sizeof *kv->slots);
  kv->pos = malloc(s->rows * sizeof *kv->pos);
  if (!kv->qkv || !kv->kc || !kv->vc || !kv->dst || !kv->lengths || !kv->slots || !kv->pos)
    return ROTARY_ERR_OUT_OF_MEMORY;
  fill_qkv(o, kv);
  if (o->dtype != o->cache_dtype) {
    kv->to_f32 = o->dtype == ROTARY_F32 ? NULL : rotary_convert_select(o->dtype, ROTARY_F32);
    kv->from_f32 = o->cache_dtype == ROTARY_F32 ? NULL : rotary_convert_select(ROTARY_F32, o->cache_dtype);
    if (kv->to_f32 && kv->from_f32) kv->direct = rotary_convert_select(o->dtype, o->cache_dtype);
  }
  return make_index(o, s);
}

rotary_status bench_kv_setup_create(const bench_options *o, bench_setup *s) {
  memset(s, 0, sizeof *s);
  s->o = o;
  s->rows = o->batch * o->tokens;
  s->esize = o->dtype == ROTARY_F32 ? 4 : 2;
  s->kv = calloc(1, sizeof *s->kv);
  rotary_status st = s->kv ? bench_setup_library(o, s) : ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK) st = make_buffers(o, s);
  if (st == ROTARY_OK) st = make_descs(o, s);
  if (st != ROTARY_OK) bench_kv_setup_destroy(s);
  return st;
}

void bench_kv_setup_destroy(bench_setup *s) {
  bench_kv *kv = s->kv;
  if (kv) {
    void *all[] = {kv->qkv, kv->kc, kv->vc, kv->dst, kv->lengths, kv->slots, kv->pos};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    free(kv);
  }
  rotary_context_destroy(s->ctx);
  rotary_rope_destroy(s->rope);
  rotary_rope_destroy(s->rope_free);
  memset(s, 0, sizeof *s);
}

double bench_kv_input_bytes(const bench_setup *s) { return (double)s->kv->qkv_bytes; }

/* In place only the rotated part of each q head moves; k and v are read in full and written to the cache. */
double bench_kv_ideal_bytes(const bench_setup *s) {
  const bench_kv *kv = s->kv;
  const double q = (double)(s->o->heads * s->o->rotary_dim * kv->esize) * 2.0;
  const double kvb = (double)(2 * kv->kv_row) * (double)(kv->esize + kv->cache_esize);
  return (double)s->rows * (q + kvb);
}

/* One element of a buffer of dtype d, as a double (fp8 through the library's decoder, scale 1). */
static double element(rotary_dtype d, const void *p, size_t i) {
  if (d == ROTARY_F32) return ((const float *)p)[i];
  if (d == ROTARY_FP8_E4M3) {
    float f;
    rotary_convert_select(ROTARY_FP8_E4M3, ROTARY_F32)->fn((const uint8_t *)p + i, &f, 1, 1.0f);
    return f;
  }
  const uint16_t h = ((const uint16_t *)p)[i];
  return d == ROTARY_F16 ? bench_f16_to_f32(h) : bench_bf16_to_f32(h);
}

/* What a kv-write leaves: q of every row, then each token's k row and v row (copied out of the caches). */
static void snapshot(const bench_setup *s, uint8_t *q, uint8_t *k, uint8_t *v) {
  const bench_kv *kv = s->kv;
  const size_t qb = s->o->heads * s->o->head_dim * kv->esize, rb = kv->kv_row * kv->cache_esize;
  for (size_t t = 0; t < s->rows; t++) {
    memcpy(q + t * qb, (const uint8_t *)kv->qkv + t * kv->row_elems * kv->esize, qb);
    memcpy(k + t * rb, (const uint8_t *)kv->kc + kv->dst[t] * kv->cache_esize, rb);
    memcpy(v + t * rb, (const uint8_t *)kv->vc + kv->dst[t] * kv->cache_esize, rb);
  }
}

/* max |x - ref| / max |ref| over each of the three parts, the largest; NaN (a row left unwritten) gives inf. */
static double rel_error(const bench_setup *s, uint8_t *const ref[3], uint8_t *const out[3]) {
  const size_t n[3] = {s->rows * s->o->heads * s->o->head_dim, s->rows * s->kv->kv_row, s->rows * s->kv->kv_row};
  double err = 0;
  for (int part = 0; part < 3; part++) {
    const rotary_dtype d = part ? s->o->cache_dtype : s->o->dtype;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n[part]; i++) {
      const double r = element(d, ref[part], i), diff = fabs(element(d, out[part], i) - r);
      if (isnan(diff)) return INFINITY;
      if (diff > worst) worst = diff;
      if (fabs(r) > scale) scale = fabs(r);
    }
    const double e = scale > 0 ? worst / scale : worst;
    if (e > err) err = e;
  }
  return err;
}

/* The input back, and every cache row the calls write poisoned (all ones: NaN in every dtype). */
static void reset(bench_setup *s, const void *saved) {
  bench_kv *kv = s->kv;
  memcpy(kv->qkv, saved, kv->qkv_bytes);
  for (size_t t = 0; t < s->rows; t++) {
    memset((uint8_t *)kv->kc + kv->dst[t] * kv->cache_esize, 0xff, kv->kv_row * kv->cache_esize);
    memset((uint8_t *)kv->vc + kv->dst[t] * kv->cache_esize, 0xff, kv->kv_row * kv->cache_esize);
  }
}

/* The unfused pair rounds twice where the dtypes differ (to the input's dtype, then to the cache's); the fused call
 * once. Equal dtypes: the same bits. Else within one unit in the last place of the coarser dtype (relative). */
static double tolerance(const bench_options *o) {
  if (o->dtype == o->cache_dtype) return 0;
  const rotary_dtype d[2] = {o->dtype, o->cache_dtype};
  double tol = 0x1p-23;
  for (int i = 0; i < 2; i++) {
    const double ulp = d[i] == ROTARY_FP8_E4M3 ? 0x1p-3 : d[i] == ROTARY_BF16 ? 0x1p-8 : d[i] == ROTARY_F16 ? 0x1p-11
                                                                                                        : 0x1p-23;
    if (ulp > tol) tol = ulp;
  }
  return tol;
}

static rotary_status check_rows(bench_setup *s, bench_result *r, size_t n, void *saved, uint8_t *ref[3],
                                uint8_t *out[3]) {
  reset(s, saved);
  rotary_status st = bench_kv_fused.run(s, 0);
  if (st != ROTARY_OK) return st;
  snapshot(s, ref[0], ref[1], ref[2]);
  for (size_t i = 0; i < n && st == ROTARY_OK; i++) {
    r[i].max_rel_err = -1;
    if (!r[i].impl->checked) continue;
    reset(s, saved);
    if ((st = r[i].impl->run(s, r[i].impl->arg)) != ROTARY_OK) break;
    snapshot(s, out[0], out[1], out[2]);
    r[i].max_rel_err = rel_error(s, ref, out);
    if (!(r[i].max_rel_err <= tolerance(s->o))) {
      fprintf(stderr, "rotary bench: %s differs from rotary_kv_write: max relative error %.3g (limit %.3g)\n",
              r[i].impl->label, r[i].max_rel_err, tolerance(s->o));
      st = ROTARY_ERR_INVALID_ARGUMENT;
    }
  }
  reset(s, saved);
  return st;
}

rotary_status bench_kv_check(bench_setup *s, bench_result *r, size_t n) {
  const size_t qb = s->rows * s->o->heads * s->o->head_dim * s->kv->esize, rb = s->rows * s->kv->kv_row * 4;
  void *saved = malloc(s->kv->qkv_bytes);
  uint8_t *ref[3] = {malloc(qb), malloc(rb), malloc(rb)}, *out[3] = {malloc(qb), malloc(rb), malloc(rb)};
  rotary_status st = ROTARY_ERR_OUT_OF_MEMORY;
  if (saved && ref[0] && ref[1] && ref[2] && out[0] && out[1] && out[2]) {
    memcpy(saved, s->kv->qkv, s->kv->qkv_bytes);
    st = check_rows(s, r, n, saved, ref, out);
  }
  free(saved);
  for (int i = 0; i < 3; i++) {
    free(ref[i]);
    free(out[i]);
  }
  return st;
}
