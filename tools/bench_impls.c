/* bench_impls.c: the fused call (c), the memcpy reference and the streaming pass (the limit): the fastest read and
 * write of the bytes a call must touch that we can write, picked per run among unrolled SIMD loops, store kinds
 * and thread counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "context.h"
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define STREAM_X86 1
#else
#define STREAM_X86 0
#endif

static void copy_task(void *arg, size_t index, size_t count) {
  const bench_setup *s = arg;
  for (int t = 0; t < 2; t++) {
    const size_t lo = bench_split(s->bytes[t], index, count), hi = bench_split(s->bytes[t], index + 1, count);
    memcpy((char *)s->out[t] + lo, (const char *)s->in[t] + lo, hi - lo);
  }
}

static rotary_status copy_run(bench_setup *s, size_t arg) {
  (void)arg;
  rotary_pool_run(s->ctx->pool, copy_task, s, s->o->threads, s->o->threads - 1);
  return ROTARY_OK;
}

static rotary_status fused_run(bench_setup *s, size_t arg) {
  (void)arg;
  return rotary_apply(s->ctx, s->rope, &s->desc);
}

static rotary_status fused_free_run(bench_setup *s, size_t arg) {
  (void)arg;
  return rotary_apply(s->ctx, s->rope_free, &s->desc);
}

static double ideal_bytes(const bench_setup *s) { return bench_ideal_bytes(s); }
static double copy_bytes(const bench_setup *s) { return 2.0 * bench_qk_bytes(s); }

/* The ideal pass plus one cos/sin row (rotary_dim fp32 values) per token. */
static double fused_bytes(const bench_setup *s) {
  return bench_ideal_bytes(s) + (double)s->rows * (double)s->o->rotary_dim * 4.0;
}

const bench_impl bench_impl_copy = {"copy", "copy (memcpy, reference)", copy_run, copy_bytes, 0, NULL, 0};
const bench_impl bench_impl_fused = {"fused", "(c) fused rotary_apply", fused_run, fused_bytes, 1, NULL, 0};
/* Table-free: rows computed per token instead of read, so only the ideal pass moves through memory. */
const bench_impl bench_impl_fused_free = {"fused_table_free", "(c) fused, table-free rope", fused_free_run,
                                          ideal_bytes, 1, NULL, 0};

/* ---- the streaming pass ---- */

#define LINE_WORDS 16 /* 32-bit words per 64-byte cache line: threads split the tensors on line boundaries */
#define PICK_BUDGET_MS 150.0 /* the start-up rounds of all candidates together, about (at least PICK_MIN_ROUNDS) */
#define PICK_MIN_ROUNDS 5
#define PICK_MAX_ROUNDS 101

/* out[i] = in[i] + z for i < n words (z is a zero the compiler cannot see: every word is loaded and stored). */
typedef void (*span_fn)(const uint32_t *in, uint32_t *out, size_t n, uint32_t z);

/* The former pass: a plain loop the compiler vectorizes. Two loops: with one, in == out would fail the compiler's
 * runtime overlap check and run its scalar fallback. */
#define FORMER_BODY                                                          \
  if (in == out) {                                                           \
    for (size_t i = 0; i < n; i++) out[i] += z;                              \
  } else {                                                                   \
    const uint32_t *restrict a = in;                                         \
    uint32_t *restrict y = out;                                              \
    for (size_t i = 0; i < n; i++) y[i] = a[i] + z;                          \
  }

static void former_generic(const uint32_t *in, uint32_t *out, size_t n, uint32_t z) { FORMER_BODY }

/* Plain C, four words a step (the pass where no SIMD kind runs). */
static void scalar_x4(const uint32_t *in, uint32_t *out, size_t n, uint32_t z) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t a = in[i], b = in[i + 1], c = in[i + 2], d = in[i + 3];
    out[i] = a + z;
    out[i + 1] = b + z;
    out[i + 2] = c + z;
    out[i + 3] = d + z;
  }
  for (; i < n; i++) out[i] = in[i] + z;
}

#if STREAM_X86
/* The former pass as it ran on AVX2 machines (built for AVX2, like the kernels). */
__attribute__((target("avx2"))) static void former_avx2(const uint32_t *in, uint32_t *out, size_t n, uint32_t z) {
  FORMER_BODY
}

/* U vectors a step: U loads, then U adds of zero and U stores (ordinary, or non-temporal from the first aligned
 * output word on; the task fences). Inlined into each instance with U and NT constant, so the steps unroll. */
__attribute__((target("avx2"), always_inline)) static inline void span_avx2(const uint32_t *in, uint32_t *out,
                                                                            size_t n, uint32_t z, const int U,
                                                                            const int NT) {
  const __m256i zv = _mm256_set1_epi32((int)z);
  size_t i = 0;
  if (NT)
    for (; i < n && ((uintptr_t)(out + i) & 31); i++) out[i] = in[i] + z;
  for (; i + (size_t)(8 * U) <= n; i += (size_t)(8 * U)) {
    __m256i v[8];
    for (int u = 0; u < U; u++) v[u] = _mm256_loadu_si256((const __m256i *)(const void *)(in + i + 8 * u));
    for (int u = 0; u < U; u++) {
      __m256i *p = (__m256i *)(void *)(out + i + 8 * u);
      if (NT) _mm256_stream_si256(p, _mm256_add_epi32(v[u], zv));
      else _mm256_storeu_si256(p, _mm256_add_epi32(v[u], zv));
    }
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_si256((__m256i *)(void *)(out + i),
                        _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(in + i)), zv));
  for (; i < n; i++) out[i] = in[i] + z;
}

/* The same with 512-bit vectors (compiled here with target attributes; run only where the CPU has AVX-512F). */
__attribute__((target("avx512f"), always_inline)) static inline void span_avx512(const uint32_t *in, uint32_t *out,
                                                                                 size_t n, uint32_t z, const int U,
                                                                                 const int NT) {
  const __m512i zv = _mm512_set1_epi32((int)z);
  size_t i = 0;
  if (NT)
    for (; i < n && ((uintptr_t)(out + i) & 63); i++) out[i] = in[i] + z;
  for (; i + (size_t)(16 * U) <= n; i += (size_t)(16 * U)) {
    __m512i v[8];
    for (int u = 0; u < U; u++) v[u] = _mm512_loadu_si512((const void *)(in + i + 16 * u));
    for (int u = 0; u < U; u++) {
      if (NT) _mm512_stream_si512((void *)(out + i + 16 * u), _mm512_add_epi32(v[u], zv));
      else _mm512_storeu_si512((void *)(out + i + 16 * u), _mm512_add_epi32(v[u], zv));
    }
  }
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_si512((void *)(out + i), _mm512_add_epi32(_mm512_loadu_si512((const void *)(in + i)), zv));
  for (; i < n; i++) out[i] = in[i] + z;
}

#define SPAN_INSTANCE(isa, isa_target, U, NT, suffix)                                                             \
  __attribute__((target(isa_target))) static void isa##_x##U##suffix(const uint32_t *in, uint32_t *out, size_t n, \
                                                                 uint32_t z) {                               \
    span_##isa(in, out, n, z, U, NT);                                                                         \
  }
SPAN_INSTANCE(avx2, "avx2", 2, 0, )
SPAN_INSTANCE(avx2, "avx2", 4, 0, )
SPAN_INSTANCE(avx2, "avx2", 8, 0, )
SPAN_INSTANCE(avx2, "avx2", 2, 1, _nt)
SPAN_INSTANCE(avx2, "avx2", 4, 1, _nt)
SPAN_INSTANCE(avx2, "avx2", 8, 1, _nt)
SPAN_INSTANCE(avx512, "avx512f", 2, 0, )
SPAN_INSTANCE(avx512, "avx512f", 4, 0, )
SPAN_INSTANCE(avx512, "avx512f", 8, 0, )
SPAN_INSTANCE(avx512, "avx512f", 2, 1, _nt)
SPAN_INSTANCE(avx512, "avx512f", 4, 1, _nt)
SPAN_INSTANCE(avx512, "avx512f", 8, 1, _nt)
#endif

enum { ISA_NONE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

/* The loops a candidate can run: the former pass first (so the pick can report it), then the SIMD kinds. */
typedef struct stream_kind {
  const char *name;
  span_fn fn;
  int isa;         /* what the CPU must have */
  int nt;          /* non-temporal stores: out of place only */
  int former;      /* the pass rotary bench used before issue 13 */
} stream_kind;

static const stream_kind kinds[] = {
#if STREAM_X86
    {"C loop (former)", former_avx2, ISA_AVX2, 0, 1},
    {"AVX2 x2", avx2_x2, ISA_AVX2, 0, 0},
    {"AVX2 x4", avx2_x4, ISA_AVX2, 0, 0},
    {"AVX2 x8", avx2_x8, ISA_AVX2, 0, 0},
    {"AVX2 x2 NT", avx2_x2_nt, ISA_AVX2, 1, 0},
    {"AVX2 x4 NT", avx2_x4_nt, ISA_AVX2, 1, 0},
    {"AVX2 x8 NT", avx2_x8_nt, ISA_AVX2, 1, 0},
    {"AVX-512 x2", avx512_x2, ISA_AVX512, 0, 0},
    {"AVX-512 x4", avx512_x4, ISA_AVX512, 0, 0},
    {"AVX-512 x8", avx512_x8, ISA_AVX512, 0, 0},
    {"AVX-512 x2 NT", avx512_x2_nt, ISA_AVX512, 1, 0},
    {"AVX-512 x4 NT", avx512_x4_nt, ISA_AVX512, 1, 0},
    {"AVX-512 x8 NT", avx512_x8_nt, ISA_AVX512, 1, 0},
#endif
    {"C loop (former)", former_generic, ISA_NONE, 0, 1},
    {"C x4", scalar_x4, ISA_NONE, 0, 0},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static int cpu_isa(void) {
#if STREAM_X86
  if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
  if (__builtin_cpu_supports("avx2")) return ISA_AVX2;
#endif
  return ISA_NONE;
}

typedef struct pass_job {
  const bench_setup *s;
  const stream_kind *kind;
  uint32_t z;
} pass_job;

static volatile uint32_t zero_word = 0;

/* Task index of count: its cache lines of each tensor (out of place or with every dim rotating: the whole tensors),
 * or its token rows (in place with partial rotary: the first rotary_dim elements of each head). */
static void pass_task(void *arg, size_t index, size_t count) {
  const pass_job *job = arg;
  const bench_setup *s = job->s;
  const span_fn fn = job->kind->fn;
  const size_t D = s->o->head_dim, R = s->o->rotary_dim;
  if (s->qkv) { /* --qkv: each token's q and k heads (one run when every dim rotates), v left alone */
    const size_t row = bench_qkv_row(s) * s->esize / 4, stride = D * s->esize / 4, w = R * s->esize / 4;
    const size_t heads = s->heads[0] + s->heads[1], r1 = bench_split(s->rows, index + 1, count);
    uint32_t *base = s->qkv;
    for (size_t r = bench_split(s->rows, index, count); r < r1; r++) {
      if (R == D) fn(base + r * row, base + r * row, heads * stride, job->z);
      else
        for (size_t h = 0; h < heads; h++) fn(base + r * row + h * stride, base + r * row + h * stride, w, job->z);
    }
#if STREAM_X86
    if (job->kind->nt) _mm_sfence(); /* never in place today (list_candidates), but as the other branch does */
#endif
    return;
  }
  for (int t = 0; t < 2; t++) {
    const uint32_t *in = s->in[t];
    uint32_t *out = s->out[t];
    if (s->in[t] != s->out[t] || R == D) {
      const size_t words = s->bytes[t] / 4, lines = (words + LINE_WORDS - 1) / LINE_WORDS;
      const size_t lo = bench_split(lines, index, count) * LINE_WORDS;
      size_t hi = bench_split(lines, index + 1, count) * LINE_WORDS;
      if (hi > words) hi = words;
      if (hi > lo) fn(in + lo, out + lo, hi - lo, job->z);
      continue;
    }
    const size_t heads = s->heads[t], w = R * s->esize / 4, stride = D * s->esize / 4;
    const size_t r1 = bench_split(s->rows, index + 1, count) * heads;
    for (size_t r = bench_split(s->rows, index, count) * heads; r < r1; r++)
      fn(in + r * stride, out + r * stride, w, job->z);
  }
#if STREAM_X86
  if (job->kind->nt) _mm_sfence();
#endif
}

static void run_candidate(const bench_setup *s, const bench_stream_cand *c) {
  pass_job job = {s, &kinds[c->kind], zero_word};
  rotary_pool_run(s->ctx->pool, pass_task, &job, c->threads, c->threads - 1);
}

/* The candidates of this run: each kind the CPU runs (non-temporal ones out of place only) with all the run's
 * threads and, when there are several, with one; the former pass with all threads only, as it ran. */
static void list_candidates(const bench_setup *s, bench_stream_pick *p) {
  const int isa = cpu_isa(), oop = s->in[0] != s->out[0];
  int have_former = 0;
  p->n = 0;
  for (size_t k = 0; k < N_KINDS; k++) {
    if (kinds[k].isa > isa || (kinds[k].nt && !oop) || (kinds[k].former && have_former)) continue;
    have_former |= kinds[k].former;
    if (kinds[k].former) p->former = p->n;
    for (int one = 0; one < 2 && p->n < BENCH_STREAM_MAX; one++) {
      if (one && (s->o->threads == 1 || kinds[k].former)) continue;
      p->c[p->n++] = (bench_stream_cand){(unsigned)k, one ? 1 : s->o->threads, 0, 0};
    }
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Every candidate once (a warm-up, which sets the number of rounds), then the rounds, candidates interleaved in
 * each; the limit is the candidate with the lowest median (the former pass wins ties: it is listed first). */
rotary_status bench_stream_pick_best(bench_setup *s) {
  bench_stream_pick *p = &s->stream;
  list_candidates(s, p);
  double warm = 0;
  for (size_t i = 0; i < p->n; i++) {
    const double t0 = now_ms();
    run_candidate(s, &p->c[i]);
    warm += now_ms() - t0;
  }
  size_t rounds = warm > 0 ? (size_t)(PICK_BUDGET_MS / warm) : PICK_MAX_ROUNDS;
  rounds = rounds < PICK_MIN_ROUNDS ? PICK_MIN_ROUNDS : rounds > PICK_MAX_ROUNDS ? PICK_MAX_ROUNDS : rounds;
  double *t = malloc(p->n * rounds * sizeof *t);
  if (!t) return ROTARY_ERR_OUT_OF_MEMORY;
  for (size_t r = 0; r < rounds; r++)
    for (size_t i = 0; i < p->n; i++) {
      const double t0 = now_ms();
      run_candidate(s, &p->c[i]);
      t[i * rounds + r] = now_ms() - t0;
    }
  p->rounds = rounds;
  p->best = 0;
  for (size_t i = 0; i < p->n; i++) {
    double *ti = t + i * rounds;
    qsort(ti, rounds, sizeof *ti, cmp_double);
    p->c[i].median_ms = rounds % 2 ? ti[rounds / 2] : 0.5 * (ti[rounds / 2 - 1] + ti[rounds / 2]);
    p->c[i].min_ms = ti[0];
    if (p->c[i].median_ms < p->c[p->best].median_ms) p->best = i;
  }
  free(t);
  return ROTARY_OK;
}

void bench_stream_name(const bench_setup *s, size_t i, char *buf, size_t size) {
  const bench_stream_cand *c = &s->stream.c[i];
  snprintf(buf, size, "%s, %zu thread%s", kinds[c->kind].name, c->threads, c->threads == 1 ? "" : "s");
}

int bench_stream_is_former(const bench_setup *s, size_t i) { return kinds[s->stream.c[i].kind].former; }

static rotary_status stream_run(bench_setup *s, size_t arg) {
  (void)arg;
  run_candidate(s, &s->stream.c[s->stream.best]);
  return ROTARY_OK;
}

static rotary_status candidate_run(bench_setup *s, size_t arg) {
  run_candidate(s, &s->stream.c[arg]);
  return ROTARY_OK;
}

static double stream_bytes(const bench_setup *s) { return bench_ideal_bytes(s); }

const bench_impl bench_impl_stream = {"stream", "streaming pass (the limit)", stream_run, stream_bytes, 0, NULL, 0};

/* --stream-candidates: a row per candidate ("stream_<i>"), timed in blocks against the limit like any row. */
void bench_stream_rows(bench_setup *s) {
  bench_stream_pick *p = &s->stream;
  for (size_t i = 0; i < p->n; i++) {
    snprintf(p->ids[i], sizeof p->ids[i], "stream_%zu", i);
    char name[48];
    bench_stream_name(s, i, name, sizeof name);
    snprintf(p->labels[i], sizeof p->labels[i], "pass %s", name);
    p->rows[i] = (bench_impl){p->ids[i], p->labels[i], candidate_run, stream_bytes, 0, NULL, i};
  }
}
