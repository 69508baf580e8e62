/* generic/attn_scalar.c: the portable decode-attention kernels (scores, values per cache dtype; exp): the fallback. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores__scalar rotary_attn_f32_values__scalar rotary_attn_f16_scores__scalar
 * rotary_attn_f16_values__scalar rotary_attn_bf16_scores__scalar rotary_attn_bf16_values__scalar
 * rotary_attn_fp8_scores__scalar rotary_attn_fp8_values__scalar rotary_attn_exp__scalar
 * rotary_attn_f32_scores_half__scalar rotary_attn_f16_scores_half__scalar rotary_attn_bf16_scores_half__scalar
 * rotary_attn_fp8_scores_half__scalar rotary_attn_f32_scores_interleaved__scalar
 * rotary_attn_f16_scores_interleaved__scalar rotary_attn_bf16_scores_interleaved__scalar
 * rotary_attn_fp8_scores_interleaved__scalar */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attn_kernels.h"
#include "convert.h"
#include "fp8.h"

/* A cache row is decoded CHUNK elements at a time into a stack buffer, then used by every query row (one decode per
 * element, not one per element and row). Sums run in d order per (row, key) or j order per output: storing a
 * partial fp32 sum between chunks and reloading it is exact, so the chunking changes no bit. */
#define CHUNK 256

/* Element i of a row at p, decoded to fp32 (elements at any byte address: memcpy loads). */
static inline float load_f32(const unsigned char *p, size_t i, float scale) {
  (void)scale;
  float f;
  memcpy(&f, p + 4 * i, 4);
  return f;
}
static inline float load_f16(const unsigned char *p, size_t i, float scale) {
  (void)scale;
  uint16_t h;
  memcpy(&h, p + 2 * i, 2);
  return rotary_f16_to_f32_quiet(h);
}
static inline float load_bf16(const unsigned char *p, size_t i, float scale) {
  (void)scale;
  uint16_t h;
  memcpy(&h, p + 2 * i, 2);
  return rotary_bf16_to_f32(h);
}
static inline float load_fp8(const unsigned char *p, size_t i, float scale) {
  return rotary_fp8_e4m3_decode(p[i], scale);
}

/* Adds the terms of elements [c, c + m) of key j (decoded, or rotated, into buf) to every row's logit, in d order
 * (the first chunk, c = 0, starts the sums). */
static inline void add_terms(const float *q, size_t rows, size_t head_dim, size_t c, const float *buf, size_t m,
                             float *s, size_t s_stride, size_t j) {
  for (size_t r = 0; r < rows; r++) {
    const float *qr = q + r * head_dim + c;
    float acc = c ? s[r * s_stride + j] : 0.0f;
    for (size_t d = 0; d < m; d++) acc = fmaf(qr[d], buf[d], acc);
    s[r * s_stride + j] = acc;
  }
}

#define ATTN_SCALAR(dtype, size)                                                                                  \
  void rotary_attn_##dtype##_scores__scalar(const float *q, size_t rows, size_t head_dim, const void *k,        \
                                            ptrdiff_t k_row_stride, size_t n, float k_scale, float *s,           \
                                            size_t s_stride, rotary_attn_prefetch *pf) {                        \
    float buf[CHUNK];                                                                                           \
    for (size_t j = 0; j < n; j++) {                                                                            \
      const unsigned char *key = (const unsigned char *)k + (ptrdiff_t)j * k_row_stride * (size);              \
      if (pf) rotary_attn_prefetch_lines(pf, pf->per_key);                                                      \
      for (size_t c = 0; c < head_dim; c += CHUNK) {                                                            \
        const size_t m = head_dim - c < CHUNK ? head_dim - c : CHUNK;                                           \
        for (size_t d = 0; d < m; d++) buf[d] = load_##dtype(key, c + d, k_scale);                              \
        add_terms(q, rows, head_dim, c, buf, m, s, s_stride, j);                                                \
      }                                                                                                         \
    }                                                                                                           \
  }                                                                                                             \
  void rotary_attn_##dtype##_values__scalar(const float *p, size_t p_stride, size_t rows, size_t head_dim,      \
                                            const void *v, ptrdiff_t v_row_stride, size_t n, float v_scale,     \
                                            float *o, rotary_attn_prefetch *pf) {                               \
    float buf[CHUNK];                                                                                           \
    for (size_t j = 0; j < n; j++) {                                                                            \
      const unsigned char *val = (const unsigned char *)v + (ptrdiff_t)j * v_row_stride * (size);              \
      if (pf) rotary_attn_prefetch_lines(pf, pf->per_key);                                                      \
      for (size_t c = 0; c < head_dim; c += CHUNK) {                                                            \
        const size_t m = head_dim - c < CHUNK ? head_dim - c : CHUNK;                                           \
        for (size_t d = 0; d < m; d++) buf[d] = load_##dtype(val, c + d, v_scale);                              \
        for (size_t r = 0; r < rows; r++) {                                                                     \
          const float pj = p[r * p_stride + j];                                                                 \
          float *orow = o + r * head_dim + c;                                                                   \
          for (size_t d = 0; d < m; d++) orow[d] = fmaf(pj, buf[d], orow[d]);                                   \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }

ATTN_SCALAR(f32, 4)
ATTN_SCALAR(f16, 2)
ATTN_SCALAR(bf16, 2)
ATTN_SCALAR(fp8, 1)

/* Keys rotated on the way: a key's rotated elements are made CHUNK at a time (first the pairs' first halves, then
 * their second halves, then the unrotated rest, so in d order) and summed in d order per row: the bits of the f32
 * scores kernel on the rotated key rows. */
#define ATTN_SCALAR_HALF(dtype, size)                                                                             \
  void rotary_attn_##dtype##_scores_half__scalar(const float *q, size_t rows, size_t head_dim, const void *k,   \
                                                 ptrdiff_t k_row_stride, size_t n, float k_scale,               \
                                                 const float *cs, size_t cs_stride, size_t sin_offset,          \
                                                 size_t rotary_dim, float *s, size_t s_stride,                  \
                                                 rotary_attn_prefetch *pf) {                                    \
    float buf[CHUNK];                                                                                           \
    const size_t half = rotary_dim / 2;                                                                         \
    for (size_t j = 0; j < n; j++) {                                                                            \
      const unsigned char *key = (const unsigned char *)k + (ptrdiff_t)j * k_row_stride * (size);              \
      if (pf) rotary_attn_prefetch_lines(pf, pf->per_key);                                                      \
      const float *c = cs + j * cs_stride, *sn = c + sin_offset;                                                \
      for (int part = 0; part < 3; part++) { /* y_i (i < half), y_{half+i}, then d >= rotary_dim */           \
        const size_t base = part == 0 ? 0 : part == 1 ? half : rotary_dim;                                      \
        const size_t len = part == 2 ? head_dim - rotary_dim : half;                                            \
        for (size_t c0 = 0; c0 < len; c0 += CHUNK) {                                                            \
          const size_t m = len - c0 < CHUNK ? len - c0 : CHUNK;                                                 \
          for (size_t d = 0; d < m; d++) {                                                                      \
            const size_t i = c0 + d;                                                                            \
            if (part == 2) {                                                                                    \
              buf[d] = load_##dtype(key, rotary_dim + i, k_scale);                                              \
            } else {                                                                                            \
              const float x0 = load_##dtype(key, i, k_scale), x1 = load_##dtype(key, half + i, k_scale);        \
              buf[d] = part == 0 ? fmaf(x0, c[i], -(x1 * sn[i])) : fmaf(x0, sn[i], x1 * c[i]);                  \
            }                                                                                                   \
          }                                                                                                     \
          add_terms(q, rows, head_dim, base + c0, buf, m, s, s_stride, j); /* base + c0 = 0 first */            \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }

ATTN_SCALAR_HALF(f32, 4)
ATTN_SCALAR_HALF(f16, 2)
ATTN_SCALAR_HALF(bf16, 2)
ATTN_SCALAR_HALF(fp8, 1)

/* Interleaved pairs: element e < rotary_dim of a key is fmaf(x_{2i}, B[e], x_{2i+1} * D[e]) for its pair i = e / 2
 * (attn_kernels.h's arranged rows), made CHUNK at a time and summed in d order per row. */
#define ATTN_SCALAR_INTERLEAVED(dtype, size)                                                                      \
  void rotary_attn_##dtype##_scores_interleaved__scalar(                                                        \
      const float *q, size_t rows, size_t head_dim, const void *k, ptrdiff_t k_row_stride, size_t n,            \
      float k_scale, const float *cs, size_t cs_stride, size_t sin_offset, size_t rotary_dim, float *s,         \
      size_t s_stride, rotary_attn_prefetch *pf) {                                                              \
    float buf[CHUNK];                                                                                           \
    for (size_t j = 0; j < n; j++) {                                                                            \
      const unsigned char *key = (const unsigned char *)k + (ptrdiff_t)j * k_row_stride * (size);              \
      if (pf) rotary_attn_prefetch_lines(pf, pf->per_key);                                                      \
      const float *B = cs + j * cs_stride, *D = B + sin_offset;                                                 \
      for (size_t c = 0; c < head_dim; c += CHUNK) {                                                            \
        const size_t m = head_dim - c < CHUNK ? head_dim - c : CHUNK;                                           \
        for (size_t d = 0; d < m; d++) {                                                                        \
          const size_t e = c + d, a = e & ~(size_t)1;                                                           \
          buf[d] = e < rotary_dim ? fmaf(load_##dtype(key, a, k_scale), B[e], load_##dtype(key, a + 1, k_scale) * D[e]) \
                                  : load_##dtype(key, e, k_scale);                                              \
        }                                                                                                       \
        add_terms(q, rows, head_dim, c, buf, m, s, s_stride, j);                                                \
      }                                                                                                         \
    }                                                                                                           \
  }

ATTN_SCALAR_INTERLEAVED(f32, 4)
ATTN_SCALAR_INTERLEAVED(f16, 2)
ATTN_SCALAR_INTERLEAVED(bf16, 2)
ATTN_SCALAR_INTERLEAVED(fp8, 1)

/* expf (the C library's, within 1 ulp where glibc's is used) of s[j] - max, summed in j order. */
float rotary_attn_exp__scalar(float *s, size_t n, float max) {
  float sum = 0.0f;
  for (size_t j = 0; j < n; j++) {
    const float e = expf(s[j] - max);
    s[j] = e;
    sum += e;
  }
  return sum;
}
