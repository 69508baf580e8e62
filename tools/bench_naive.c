/* bench_naive.c: baseline (b), the article's per-element RopeFused loop in plain scalar C, threaded by tokens. */
#include <string.h>

#include "bench.h"
#include "context.h"
#include "convert.h"

/*
 * The article's loop structure (section 2.2): for each token, for each head, copy the token's cos and sin rows
 * and the q and k head into local buffers ("DataCopy" into UB), rotate q and k element by element in the same
 * loop, copy the heads back. The local buffers are fp32 (the article's 6.2: fp16 storage, fp32 math): f16 and
 * bf16 elements are converted on the way in and out with the library's scalar conversions (src/backend/cpu/convert.h).
 * This file is compiled without auto-vectorization (tools/CMakeLists.txt): the loop stays scalar, as the
 * article's unoptimized kernel. The buffers are on the stack, BENCH_NAIVE_MAX_DIM floats: bench.c leaves the
 * row out for longer heads. Heads beyond k's count (GQA) rotate q alone. Half pairing rotates
 * (i, i + rotary_dim/2), interleaved (2i, 2i + 1).
 */

typedef struct naive_job {
  bench_setup *s;
} naive_job;

static void load_head(const bench_setup *s, const void *src, float *dst, size_t n) {
  const uint16_t *h = src;
  switch (s->o->dtype) {
    case ROTARY_F32: memcpy(dst, src, n * sizeof(float)); break;
    case ROTARY_F16: for (size_t i = 0; i < n; i++) dst[i] = rotary_f16_to_f32(h[i]); break;
    case ROTARY_BF16: for (size_t i = 0; i < n; i++) dst[i] = rotary_bf16_to_f32(h[i]); break;
    case ROTARY_FP8_E4M3: break; /* a cache dtype: the options refuse it for q and k */
  }
}

static void store_head(const bench_setup *s, const float *src, void *dst, size_t n) {
  uint16_t *h = dst;
  switch (s->o->dtype) {
    case ROTARY_F32: memcpy(dst, src, n * sizeof(float)); break;
    case ROTARY_F16: for (size_t i = 0; i < n; i++) h[i] = rotary_f32_to_f16(src[i]); break;
    case ROTARY_BF16: for (size_t i = 0; i < n; i++) h[i] = rotary_f32_to_bf16(src[i]); break;
    case ROTARY_FP8_E4M3: break; /* a cache dtype: the options refuse it for q and k */
  }
}

/* The article's inner loop: each pair of q and of k rotated with the same c and s. */
static void rotate_pairs(float *q, float *k, const float *c_row, const float *s_row, size_t rotary_dim,
                         int interleaved) {
  const size_t half = rotary_dim / 2, step = interleaved ? 2 : 1, other = interleaved ? 1 : half;
  for (size_t i = 0; i < half; i++) {
    const size_t a = i * step, b = a + other;
    const float c = c_row[i], s = s_row[i];
    if (q) {
      const float q_even = q[a], q_odd = q[b];
      q[a] = q_even * c - q_odd * s;
      q[b] = q_even * s + q_odd * c;
    }
    if (k) {
      const float k_even = k[a], k_odd = k[b];
      k[a] = k_even * c - k_odd * s;
      k[b] = k_even * s + k_odd * c;
    }
  }
}

/* Head h of token t: q and k (when they have that head) in, rotated, out. */
static void naive_head(const bench_setup *s, size_t t, size_t h, const float *c, const float *sn) {
  const size_t D = s->o->head_dim, E = s->esize;
  float ub[2][BENCH_NAIVE_MAX_DIM];
  float *bufs[2] = {NULL, NULL};
  for (int j = 0; j < 2; j++) {
    if (h >= s->heads[j]) continue;
    bufs[j] = ub[j];
    load_head(s, (const char *)s->in[j] + ((t * s->heads[j] + h) * D) * E, ub[j], D);
  }
  rotate_pairs(bufs[0], bufs[1], c, sn, s->o->rotary_dim, s->o->pairing == ROTARY_PAIRING_INTERLEAVED);
  for (int j = 0; j < 2; j++)
    if (bufs[j]) store_head(s, ub[j], (char *)s->out[j] + ((t * s->heads[j] + h) * D) * E, D);
}

static void naive_task(void *arg, size_t index, size_t count) {
  const bench_setup *s = ((naive_job *)arg)->s;
  const size_t half = s->o->rotary_dim / 2;
  const size_t heads = s->heads[0] > s->heads[1] ? s->heads[0] : s->heads[1];
  float c[BENCH_NAIVE_MAX_DIM / 2], sn[BENCH_NAIVE_MAX_DIM / 2];
  for (size_t t = bench_split(s->rows, index, count); t < bench_split(s->rows, index + 1, count); t++) {
    const size_t pos = (size_t)s->pos[t];
    for (size_t h = 0; h < heads; h++) {
      memcpy(c, s->cos_tab + pos * half, half * sizeof(float)); /* the article reloads them for every head */
      memcpy(sn, s->sin_tab + pos * half, half * sizeof(float));
      naive_head(s, t, h, c, sn);
    }
  }
}

static rotary_status naive_run(bench_setup *s, size_t arg) {
  (void)arg;
  if (s->o->head_dim > BENCH_NAIVE_MAX_DIM) return ROTARY_ERR_HEAD_DIM;
  naive_job job = {s};
  rotary_pool_run(s->ctx->pool, naive_task, &job, s->o->threads, s->o->threads - 1);
  return ROTARY_OK;
}

/* q and k read and written once (whole heads), plus a cos and a sin row read per token and head. */
static double naive_bytes(const bench_setup *s) {
  const size_t heads = s->heads[0] > s->heads[1] ? s->heads[0] : s->heads[1];
  return 2.0 * bench_qk_bytes(s) + (double)s->rows * (double)heads * (double)s->o->rotary_dim * 4.0;
}

const bench_impl bench_impl_naive = {"naive", "(b) naive per-element loop", naive_run, naive_bytes, 1, NULL, 0};
