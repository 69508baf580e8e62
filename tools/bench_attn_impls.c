/* bench_attn_impls.c: the attention rows: rotary_attention with keys stored rotated (rope_mode Q) and rotated on the
 * fly (QK), the composed passes (rotary_apply, QK^T, softmax, x V) and the streaming limit (one read of K and V). */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "bench_attn.h"
#include "context.h"
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define ATTN_X86 1
#else
#define ATTN_X86 0
#endif

/* mode: the rope mode, plus BF16_ROW for precision BF16. */
#define BF16_ROW 16
static rotary_status ours_run(bench_setup *s, size_t mode) {
  bench_attn *a = s->attn;
  a->desc.rope_mode = (rotary_attention_rope)(mode & (BF16_ROW - 1));
  a->desc.precision = mode & BF16_ROW ? ROTARY_ATTENTION_BF16 : ROTARY_ATTENTION_F32;
  return rotary_attention(s->ctx, s->rope, &a->desc);
}

/* Each pass split over the run's threads, as an engine runs one operator after another. */
static rotary_status composed_run(bench_setup *s, size_t arg) {
  (void)arg;
  bench_attn *a = s->attn;
  const size_t n = s->o->threads;
  const rotary_status st = rotary_apply(s->ctx, s->rope, &a->rope_q);
  if (st != ROTARY_OK) return st;
  rotary_pool_run(s->ctx->pool, bench_attn_composed_scores, &a->comp, n, n - 1);
  rotary_pool_run(s->ctx->pool, bench_attn_composed_softmax, &a->comp, n, n - 1);
  rotary_pool_run(s->ctx->pool, bench_attn_composed_values, &a->comp, n, n - 1);
  return ROTARY_OK;
}

/* ---- the limit: every attended K and V byte loaded once, summed so the loads cannot be dropped ---- */

typedef struct limit_job {
  const bench_attn *a;
  int kind;
  _Atomic uint64_t sums[64]; /* the tasks' sums, added at index % 64 (never read: stored so the loads stay) */
} limit_job;

static uint64_t sum_c(const uint8_t *p, size_t bytes) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, w[4];
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    memcpy(w, p + i, 32); /* 8-byte loads (the compiler reads the words in place) */
    s0 += w[0];
    s1 += w[1];
    s2 += w[2];
    s3 += w[3];
  }
  for (; i < bytes; i++) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

#if ATTN_X86
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)(const void *)(p + i)));
    a1 = _mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32)));
    a2 = _mm256_add_epi32(a2, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64)));
    a3 = _mm256_add_epi32(a3, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96)));
  }
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
  uint32_t lanes[8];
  _mm256_storeu_si256((__m256i *)(void *)lanes, t);
  uint64_t s = 0;
  for (int l = 0; l < 8; l++) s += lanes[l];
  return s + sum_c(p + i, bytes - i);
}
#endif

static int have_avx2(void) {
#if ATTN_X86
  return __builtin_cpu_supports("avx2");
#else
  return 0;
#endif
}

static uint64_t sum_bytes(int kind, const uint8_t *p, size_t bytes) {
#if ATTN_X86
  if (kind == BENCH_ATTN_SUM_AVX2) return sum_avx2(p, bytes);
#endif
  (void)kind;
  return sum_c(p, bytes);
}

/* Task index reads its even share of the spans, K then V of each. */
static void limit_task(void *arg, size_t index, size_t count) {
  limit_job *job = arg;
  const bench_attn *a = job->a;
  uint64_t s = 0;
  for (size_t i = bench_split(a->n_spans, index, count); i < bench_split(a->n_spans, index + 1, count); i++) {
    const bench_attn_span sp = a->spans[i];
    s += sum_bytes(job->kind, (const uint8_t *)a->kc + sp.at, sp.bytes);
    s += sum_bytes(job->kind, (const uint8_t *)a->vc + sp.at, sp.bytes);
  }
  atomic_fetch_add_explicit(&job->sums[index % 64], s, memory_order_relaxed);
}

static rotary_status limit_run(bench_setup *s, size_t arg) {
  (void)arg;
  limit_job job = {.a = s->attn, .kind = s->attn->limit_kind};
  const size_t n = s->o->threads;
  rotary_pool_run(s->ctx->pool, limit_task, &job, n, n - 1); /* job escapes: the sums are stored */
  return ROTARY_OK;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Both loops, interleaved, 1 warm-up + 4 timed each; the lower best time wins (the C loop alone without AVX2). */
void bench_attn_pick_limit(bench_setup *s) {
  double best[2] = {1e300, 1e300};
  const int first = have_avx2() ? BENCH_ATTN_SUM_AVX2 : BENCH_ATTN_SUM_C;
  for (int round = 0; round < 5; round++)
    for (int k = first; k <= BENCH_ATTN_SUM_C; k++) {
      s->attn->limit_kind = k;
      const double t0 = now_ms();
      limit_run(s, 0);
      const double ms = now_ms() - t0;
      if (round > 0 && ms < best[k]) best[k] = ms;
    }
  s->attn->limit_kind = best[BENCH_ATTN_SUM_C] < best[first] ? BENCH_ATTN_SUM_C : first;
}

const char *bench_attn_limit_name(const bench_attn *a) {
  return a->limit_kind == BENCH_ATTN_SUM_AVX2 ? "AVX2 load-sum" : "C word sum";
}

static double cache_bytes(const bench_setup *s) { return bench_attn_cache_bytes(s); }

const bench_impl bench_attn_ours_q = {"attn_q", "ours, keys rotated (Q)", ours_run, cache_bytes, 0, NULL,
                                      ROTARY_ATTENTION_ROPE_Q};
const bench_impl bench_attn_ours_qk = {"attn_qk", "ours, rotate on the fly (QK)", ours_run, cache_bytes, 0, NULL,
                                       ROTARY_ATTENTION_ROPE_QK};
const bench_impl bench_attn_ours_q_bf16 = {"attn_q_bf16", "ours, Q, bf16 products (BF16)", ours_run, cache_bytes,
                                           0, NULL, ROTARY_ATTENTION_ROPE_Q | BF16_ROW};
const bench_impl bench_attn_composed_row = {"attn_composed", "composed: rope, QK^T, softmax, xV", composed_run,
                                            cache_bytes, 0, NULL, 0};
const bench_impl bench_attn_limit = {"attn_limit", "streaming read of K and V (limit)", limit_run, cache_bytes, 0,
                                     NULL, 0};
