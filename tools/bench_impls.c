/* bench_impls.c: the fused call (c) and the references: the streaming pass (the limit) and memcpy. */
#include <string.h>

#include "bench.h"
#include "context.h"
#include "tuning.h"
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#endif

typedef struct pass_job {
  const bench_setup *s;
  uint32_t z; /* a zero the compiler cannot see: the pass must load and store every word */
} pass_job;

static volatile uint32_t zero_word = 0;

/* Words [lo, hi): out = in + 0. Two loops: with one, in == out would fail the compiler's runtime overlap check and
 * run the scalar fallback. */
#define PASS_WORDS_BODY                                                      \
  if (in == out) {                                                           \
    for (size_t i = lo; i < hi; i++) out[i] += z;                            \
  } else {                                                                   \
    const uint32_t *restrict a = in;                                         \
    uint32_t *restrict y = out;                                              \
    for (size_t i = lo; i < hi; i++) y[i] = a[i] + z;                        \
  }

typedef void (*pass_fn)(const uint32_t *in, uint32_t *out, size_t lo, size_t hi, uint32_t z);

static void pass_generic(const uint32_t *in, uint32_t *out, size_t lo, size_t hi, uint32_t z) { PASS_WORDS_BODY }

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* Built for AVX2 too, like the kernels: with data in cache the vector width, not memory, sets the pace. */
__attribute__((target("avx2"))) static void pass_avx2(const uint32_t *in, uint32_t *out, size_t lo, size_t hi,
                                                      uint32_t z) {
  PASS_WORDS_BODY
}
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* Out of place with non-temporal stores, as rotary_apply's _nt kernels write large outputs (src/plan/stream.h). */
__attribute__((target("avx2"))) static void pass_avx2_nt(const uint32_t *in, uint32_t *out, size_t lo, size_t hi,
                                                         uint32_t z) {
  const __m256i zv = _mm256_set1_epi32((int)z);
  size_t i = lo;
  for (; i < hi && ((uintptr_t)(out + i) & 31); i++) out[i] = in[i] + z;
  for (; i + 8 <= hi; i += 8)
    _mm256_stream_si256((__m256i *)(void *)(out + i),
                        _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(in + i)), zv));
  for (; i < hi; i++) out[i] = in[i] + z;
  _mm_sfence();
}
#endif

static pass_fn pass_for_cpu(int nt) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) return nt ? pass_avx2_nt : pass_avx2;
#endif
  (void)nt;
  return pass_generic;
}

/* The library streams out-of-place outputs from its context's nt_min_bytes on; so does the limit it is held to. */
static int pass_streams(const bench_setup *s) {
  const double out_bytes = (s->in[0] != s->out[0]) ? bench_qk_bytes(s) : 0;
  return out_bytes > 0 && out_bytes >= (double)rotary_context_tuning(s->ctx)->nt_min_bytes;
}

static void pass_words(const bench_setup *s, int t, size_t lo, size_t hi, uint32_t z) {
  pass_for_cpu(pass_streams(s))(s->in[t], s->out[t], lo, hi, z);
}

/* The limit: one read and one write of what the call must touch. Out of place or with every dim rotating that
 * is the whole tensors; in place with partial rotary only the first rotary_dim elements of each head. */
static void stream_task(void *arg, size_t index, size_t count) {
  const pass_job *job = arg;
  const bench_setup *s = job->s;
  const size_t D = s->o->head_dim, R = s->o->rotary_dim;
  for (int t = 0; t < 2; t++) {
    if (s->in[t] != s->out[t] || R == D) {
      const size_t words = s->bytes[t] / 4;
      pass_words(s, t, bench_split(words, index, count), bench_split(words, index + 1, count), job->z);
      continue;
    }
    const size_t heads = s->heads[t], w = R * s->esize / 4, stride = D * s->esize / 4;
    const size_t r1 = bench_split(s->rows, index + 1, count) * heads;
    for (size_t r = bench_split(s->rows, index, count) * heads; r < r1; r++)
      pass_words(s, t, r * stride, r * stride + w, job->z);
  }
}

static rotary_status stream_run(bench_setup *s) {
  pass_job job = {s, zero_word};
  rotary_pool_run(s->ctx->pool, stream_task, &job, s->o->threads, s->o->threads - 1);
  return ROTARY_OK;
}

static void copy_task(void *arg, size_t index, size_t count) {
  const bench_setup *s = ((const pass_job *)arg)->s;
  for (int t = 0; t < 2; t++) {
    const size_t lo = bench_split(s->bytes[t], index, count), hi = bench_split(s->bytes[t], index + 1, count);
    memcpy((char *)s->out[t] + lo, (const char *)s->in[t] + lo, hi - lo);
  }
}

static rotary_status copy_run(bench_setup *s) {
  pass_job job = {s, 0};
  rotary_pool_run(s->ctx->pool, copy_task, &job, s->o->threads, s->o->threads - 1);
  return ROTARY_OK;
}

static rotary_status fused_run(bench_setup *s) { return rotary_apply(s->ctx, s->rope, &s->desc); }
static rotary_status fused_free_run(bench_setup *s) { return rotary_apply(s->ctx, s->rope_free, &s->desc); }

static double stream_bytes(const bench_setup *s) { return bench_ideal_bytes(s); }
static double copy_bytes(const bench_setup *s) { return 2.0 * bench_qk_bytes(s); }

/* The ideal pass plus one cos/sin row (rotary_dim fp32 values) per token. */
static double fused_bytes(const bench_setup *s) {
  return bench_ideal_bytes(s) + (double)s->rows * (double)s->o->rotary_dim * 4.0;
}

const bench_impl bench_impl_stream = {"stream", "streaming pass (the limit)", stream_run, stream_bytes, 0,
                                      NULL};
const bench_impl bench_impl_copy = {"copy", "copy (memcpy, reference)", copy_run, copy_bytes, 0, NULL};
const bench_impl bench_impl_fused = {"fused", "(c) fused rotary_apply", fused_run, fused_bytes, 1, NULL};
/* Table-free: rows computed per token instead of read, so only the ideal pass moves through memory. */
const bench_impl bench_impl_fused_free = {"fused_table_free", "(c) fused, table-free rope", fused_free_run,
                                          stream_bytes, 1, NULL};
