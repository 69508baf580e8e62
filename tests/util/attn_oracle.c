/* attn_oracle.c: an fp64 reference of rotary_attention with a per-element error bound for the library's fp32 math. */
#include "attn_oracle.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv_oracle.h"
#include "oracle.h"
#include "test_util.h"

#define AO_U 0x1p-24 /* fp32 unit roundoff */

int ao_alloc(ao_result *r, size_t rows, size_t head_dim) {
  memset(r, 0, sizeof *r);
  const size_t n = rows * head_dim + 1;
  r->rows = rows, r->head_dim = head_dim;
  r->out = malloc(n * sizeof(double)), r->bound = malloc(n * sizeof(double)), r->weight = malloc(n * sizeof(double));
  r->cls = calloc(n, 1), r->lse = malloc((rows + 1) * sizeof(double)), r->lse_bound = malloc((rows + 1) * sizeof(double));
  r->lse_cls = calloc(rows + 1, 1), r->attended = calloc(rows + 1, sizeof(size_t));
  if (!r->out || !r->bound || !r->weight || !r->cls || !r->lse || !r->lse_bound || !r->lse_cls || !r->attended) {
    ao_free(r);
    return -1;
  }
  return 0;
}

void ao_free(ao_result *r) {
  free(r->out), free(r->bound), free(r->weight), free(r->cls), free(r->lse), free(r->lse_bound), free(r->lse_cls);
  free(r->attended);
  memset(r, 0, sizeof *r);
}

int64_t ao_seq_len(const rotary_attention_desc *d, size_t b) {
  const rotary_kv_cache *c = &d->cache;
  if (c->index == ROTARY_CACHE_PAGES) {
    const int64_t pages = (int64_t)c->page_indptr[b + 1] - c->page_indptr[b];
    return (pages - 1) * (int64_t)c->block_size + c->last_page_len[b];
  }
  return c->lengths[b];
}

int64_t ao_row_block(const rotary_attention_desc *d, size_t b, int64_t p) {
  const rotary_kv_cache *c = &d->cache;
  const int64_t j = p / (int64_t)c->block_size;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: return (int64_t)b;
    case ROTARY_CACHE_SLOTS: return d->block_table[b * d->block_table_stride + (size_t)j];
    case ROTARY_CACHE_PAGES: return c->page_indices[c->page_indptr[b] + j];
  }
  return -1;
}

size_t ao_elem_offset(const rotary_attention_desc *d, size_t head_dim, int64_t block, size_t row, size_t head) {
  const kvo_geom g = {d->cache.layout, d->cache.block_size, d->kv_heads, head_dim, d->cache.block_stride};
  return kvo_row_offset(&g, (uint64_t)block * d->cache.block_size + row, head);
}

double ao_cache_value(rotary_dtype dt, const void *base, size_t idx, float scale) {
  if (dt == ROTARY_FP8_E4M3) return kvo_fp8_decode(((const uint8_t *)base)[idx], scale);
  return tu_load(dt, base, (ptrdiff_t)idx);
}

int ao_attends(const rotary_attention_desc *d, int64_t L, size_t t, int64_t p) {
  const int64_t i = L - (int64_t)d->tokens + (int64_t)t;
  return p <= i && (d->window == 0 || i - p < (int64_t)d->window);
}

/* The rope as the oracle needs it: exact frequencies, pairing, scaling. */
typedef struct ao_rope {
  size_t head_dim, rotary_dim, half;
  rotary_pairing pairing;
  long double scaling;
  long double inv[ROTARY_MAX_HEAD_DIM / 2];
} ao_rope;

/* Rotates x (head_dim doubles) at pos exactly; xa receives the magnitude bound per dim. */
static void rotate_exact(const ao_rope *ar, int64_t pos, const double *x, double *y, double *xa) {
  for (size_t d = ar->rotary_dim; d < ar->head_dim; d++) y[d] = x[d], xa[d] = fabs(x[d]);
  for (size_t i = 0; i < ar->half; i++) {
    size_t a, b;
    long double c, s, y0, y1;
    oracle_cos_sin_true(pos, ar->inv + i, 1, ar->scaling, &c, &s);
    oracle_pair_index(ar->pairing, ar->rotary_dim, i, &a, &b);
    oracle_rotate_pair(x[a], x[b], c, s, 0, &y0, &y1);
    y[a] = (double)y0, y[b] = (double)y1;
    xa[a] = xa[b] = (double)(ar->scaling * ((long double)fabs(x[a]) + fabs(x[b])));
  }
}

static void copy_abs(const double *x, size_t n, double *y, double *xa) {
  for (size_t d = 0; d < n; d++) y[d] = x[d], xa[d] = fabs(x[d]);
}

static int all_finite(const double *x, size_t n) {
  for (size_t d = 0; d < n; d++)
    if (!isfinite(x[d])) return 0;
  return 1;
}

/* Half an ulp of the output type at |x| (0 for f32: its rounding is in the fp32 terms). */
static double out_half_ulp(rotary_dtype dt, double x) {
  if (dt == ROTARY_F32) return 0.0;
  return 0.5 * (double)tu_ulp(dt, (long double)fabs(x));
}

/* The per-(b, kv head) cache rows, decoded (and, for QK, rotated) once. */
typedef struct ao_kv {
  double *k, *ka, *v; /* [L][D] */
  uint8_t *kbad;      /* a non-finite key element in row p */
} ao_kv;

static void load_kv(const rotary_attention_desc *d, const ao_rope *ar, size_t b, size_t g, int64_t L, ao_kv *kv,
                    double *tmp) {
  const size_t D = ar->head_dim;
  const rotary_kv_cache *c = &d->cache;
  for (int64_t p = 0; p < L; p++) {
    const int64_t blk = ao_row_block(d, b, p);
    const size_t off = ao_elem_offset(d, D, blk, (size_t)(p % (int64_t)c->block_size), g);
    double *kr = kv->k + (size_t)p * D, *kar = kv->ka + (size_t)p * D, *vr = kv->v + (size_t)p * D;
    for (size_t e = 0; e < D; e++) {
      tmp[e] = ao_cache_value(c->dtype, c->k, off + e, c->k_scale);
      vr[e] = ao_cache_value(c->dtype, c->v, off + e, c->v_scale);
    }
    kv->kbad[p] = !all_finite(tmp, D);
    if (d->rope_mode == ROTARY_ATTENTION_ROPE_QK) rotate_exact(ar, p, tmp, kr, kar);
    else copy_abs(tmp, D, kr, kar);
  }
}

/* One query row: q' (rotated), its magnitudes, and everything about its softmax. */
static void one_row(const rotary_attention_desc *d, const ao_rope *ar, const ao_kv *kv, int64_t L, size_t t,
                    const double *qraw, double scale, double *q, double *qa, double *s, double *delta, ao_result *r,
                    size_t row) {
  const size_t D = ar->head_dim;
  const int64_t i = L - (int64_t)d->tokens + (int64_t)t;
  const int64_t lo = d->window && i + 1 > (int64_t)d->window ? i + 1 - (int64_t)d->window : 0;
  const size_t n = (size_t)(i - lo + 1);
  double *o = r->out + row * D, *bd = r->bound + row * D, *w = r->weight + row * D;
  uint8_t *cls = r->cls + row * D;
  r->attended[row] = n;
  const int qbad = !all_finite(qraw, D);
  if (d->rope_mode == ROTARY_ATTENTION_ROPE_NONE) copy_abs(qraw, D, q, qa);
  else rotate_exact(ar, i, qraw, q, qa);
  /* logits through IEEE arithmetic: NaN or +Inf poison the row, -Inf weighs 0 (s[j] = -Inf kept) */
  int bad = 0;
  size_t live = 0;
  double m = -INFINITY;
  for (int64_t p = lo; p <= i; p++) {
    const double *k = kv->k + (size_t)p * D, *ka = kv->ka + (size_t)p * D;
    double dot = 0, mag = 0;
    for (size_t e = 0; e < D; e++) dot += q[e] * k[e], mag += qa[e] * ka[e];
    double x = scale * dot, dl = scale * (double)(D + 24) * AO_U * mag + 4 * AO_U * fabs(x);
    if (d->precision == ROTARY_ATTENTION_BF16) /* q rounded to bf16 (8 significant bits: 2^-8), flushed subnormals */
      dl += scale * 0x1p-8 * mag + scale * (double)D * 0x1p-124 * (1 + mag);
    if (d->softcap > 0) {
      x = (double)d->softcap * tanh(x / (double)d->softcap);
      dl += 8 * AO_U * fabs(x);
    }
    if (qbad || kv->kbad[p]) dl = 16 * AO_U * (fabs(x) + 1); /* a finite logit of a non-finite row: softcap's +-c */
    if (isnan(x) || x == INFINITY) bad = 1;
    if (x > -INFINITY) live++;
    s[p - lo] = x, delta[p - lo] = x > -INFINITY ? dl : 0;
    if (x > m) m = x;
  }
  if (bad || live == 0) { /* the row is NaN (or, with no weight left, unspecified); lse too */
    const uint8_t c = bad ? AO_NAN : AO_ANY;
    for (size_t e = 0; e < D; e++) cls[e] = c, o[e] = NAN, bd[e] = 0, w[e] = 0;
    r->lse_cls[row] = c, r->lse[row] = NAN, r->lse_bound[row] = 0;
    return;
  }
  double z = 0;
  for (size_t j = 0; j < n; j++) z += exp(s[j] - m);
  /* e = sum P E and the per-element sums */
  double e_sum = 0, dmax = 0;
  for (size_t j = 0; j < n; j++) {
    const double P = exp(s[j] - m) / z;
    const double dl = P > 0 ? delta[j] + 16 * AO_U + 4 * AO_U * (m - s[j]) : 0;
    if (dl > dmax) dmax = dl;
    delta[j] = P > 0 ? P * expm1(dl < 700 ? dl : 700) : 0; /* P_p E_p */
    e_sum += delta[j];
    s[j] = P;
  }
  for (size_t e = 0; e < D; e++) {
    double acc = 0, wsum = 0, pe = 0, vmax = 0;
    int nan = 0, inf = 0;
    for (size_t j = 0; j < n; j++) {
      const double v = kv->v[(size_t)(lo + (int64_t)j) * D + e];
      if (isnan(v)) nan = 1;
      else if (isinf(v)) inf = 1;
      else {
        acc += s[j] * v, wsum += s[j] * fabs(v), pe += delta[j] * fabs(v);
        if (fabs(v) > vmax) vmax = fabs(v);
      }
    }
    o[e] = acc, w[e] = wsum;
    cls[e] = nan ? AO_NAN : inf ? AO_NONFINITE : AO_FINITE;
    double b = 1.05 * ((pe + e_sum * wsum) / (1 - e_sum) + (double)(2 * n + 16) * AO_U * wsum +
                       (double)n * 0x1p-126 * vmax);
    if (d->precision == ROTARY_ATTENTION_BF16) b += 1.05 * (0x1p-8 * wsum + (double)n * 0x1p-124 * vmax); /* weights */
    /* logit errors so large that the perturbation bound fails (e >= 1/2: precision BF16 with large logits): the
     * output is still a weighted mean of the values, so it lies within max|v| of the exact one */
    if (d->precision == ROTARY_ATTENTION_BF16 && e_sum >= 0.5)
      b = 1.05 * (2 * vmax + (double)(2 * n + 16) * AO_U * wsum);
    bd[e] = b + out_half_ulp(d->out_dtype, fabs(acc) + b);
  }
  r->lse_cls[row] = AO_FINITE;
  r->lse[row] = m + log(z);
  /* log-sum-exp moves by at most the largest logit error (and by e / (1 - e) while e < 1/2) */
  const double lse_shift = d->precision != ROTARY_ATTENTION_BF16 || e_sum < 0.5 ? e_sum / (1 - e_sum) : dmax;
  r->lse_bound[row] = 1.05 * (lse_shift + (double)(n + 16) * AO_U + (double)n * 0x1p-126) +
                      4 * AO_U * (fabs(r->lse[row]) + fabs(m));
}

int ao_attention(const rotary_attention_desc *d, const rotary_rope *rope, ao_result *r) {
  const size_t D = rotary_rope_head_dim(rope), B = d->batch, T = d->tokens, HQ = d->q_heads, HK = d->kv_heads;
  const size_t G = HQ / HK;
  ao_rope *ar = malloc(sizeof *ar);
  if (!ar) return -1;
  ar->head_dim = D, ar->rotary_dim = rotary_rope_rotary_dim(rope), ar->half = ar->rotary_dim / 2;
  ar->pairing = rotary_rope_pairing(rope), ar->scaling = rotary_rope_attention_scaling(rope);
  {
    double inv[ROTARY_MAX_HEAD_DIM / 2];
    rotary_rope_inv_freq(rope, inv);
    for (size_t i = 0; i < ar->half; i++) ar->inv[i] = inv[i];
  }
  int64_t Lmax = 1;
  for (size_t b = 0; b < B; b++)
    if (ao_seq_len(d, b) > Lmax) Lmax = ao_seq_len(d, b);
  const size_t LD = (size_t)Lmax * D;
  ao_kv kv = {malloc(LD * 8), malloc(LD * 8), malloc(LD * 8), malloc((size_t)Lmax)};
  double *tmp = malloc(D * 8 * 3), *s = malloc((size_t)Lmax * 8), *delta = malloc((size_t)Lmax * 8);
  int rc = 0;
  if (!kv.k || !kv.ka || !kv.v || !kv.kbad || !tmp || !s || !delta) rc = -1;
  const double scale = d->scale == 0 ? 1.0 / sqrt((double)D) : (double)d->scale;
  const ptrdiff_t sh = d->q_stride_head || d->q_stride_token || d->q_stride_batch ? d->q_stride_head : (ptrdiff_t)D;
  const ptrdiff_t st = d->q_stride_head || d->q_stride_token || d->q_stride_batch ? d->q_stride_token
                                                                                  : (ptrdiff_t)(HQ * D);
  const ptrdiff_t sb = d->q_stride_head || d->q_stride_token || d->q_stride_batch ? d->q_stride_batch
                                                                                  : (ptrdiff_t)(T * HQ * D);
  for (size_t b = 0; rc == 0 && b < B; b++) {
    const int64_t L = ao_seq_len(d, b);
    for (size_t g = 0; g < HK; g++) {
      load_kv(d, ar, b, g, L, &kv, tmp);
      for (size_t t = 0; t < T; t++)
        for (size_t h = g * G; h < (g + 1) * G; h++) {
          const ptrdiff_t qo = (ptrdiff_t)b * sb + (ptrdiff_t)t * st + (ptrdiff_t)h * sh;
          double *qraw = tmp, *q = tmp + D, *qa = tmp + 2 * D;
          for (size_t e = 0; e < D; e++) qraw[e] = tu_load(d->q_dtype, d->q, qo + (ptrdiff_t)e);
          one_row(d, ar, &kv, L, t, qraw, scale, q, qa, s, delta, r, (b * T + t) * HQ + h);
        }
    }
  }
  free(kv.k), free(kv.ka), free(kv.v), free(kv.kbad), free(tmp), free(s), free(delta), free(ar);
  return rc;
}
