/* bench_kv_impls.c: the kv-write rows: the fused rotary_kv_write, the unfused pair (rotary_apply in place, then a
 * copy of k and v into the cache, as vLLM's rotary_embedding + reshape_and_cache_flash) and the streaming limit. */
#include <string.h>
#include <time.h>

#include "bench_kv.h"
#include "context.h"
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define KV_X86 1
#else
#define KV_X86 0
#endif

#define CHUNK 1024 /* elements the unfused converting copy passes through its fp32 buffer at a time */

typedef struct kv_job {
  const bench_setup *s;
  uint32_t z;  /* a zero the compiler cannot see: the limit must load and store every word */
  int stores;  /* the limit's cache stores: BENCH_KV_MEMCPY, _AVX2 or _NT */
} kv_job;

static volatile uint32_t zero_word = 0;

static void run_tasks(const bench_setup *s, rotary_task_fn fn, kv_job *job) {
  rotary_pool_run(s->ctx->pool, fn, job, s->o->threads, s->o->threads - 1);
}

/* ---- the unfused pair ---- */

/* n elements from a row of the input dtype to a row of the cache dtype, in one pass where a kernel does it, else
 * through fp32 where they differ (the library's fastest conversion kernels; fp8 with its scale). */
static void copy_convert(const bench_kv *kv, const void *in, void *out, size_t n, float scale) {
  if (!kv->to_f32 && !kv->from_f32 && kv->esize == kv->cache_esize) {
    memcpy(out, in, n * kv->esize);
    return;
  }
  if (kv->direct) {
    kv->direct->fn(in, out, n, scale);
    return;
  }
  float buf[CHUNK];
  for (size_t i = 0; i < n; i += CHUNK) {
    const size_t m = n - i < CHUNK ? n - i : CHUNK;
    const void *src = (const char *)in + i * kv->esize;
    const float *f = src;
    if (kv->to_f32) {
      kv->to_f32->fn(src, buf, m, 1.0f);
      f = buf;
    }
    if (kv->from_f32) kv->from_f32->fn(f, (char *)out + i * kv->cache_esize, m, scale);
    else memcpy((char *)out + i * kv->cache_esize, f, m * sizeof(float));
  }
}

/* reshape_and_cache_flash: each token's k row and v row (all kv heads: contiguous in both) to its slot. */
static void cache_copy_task(void *arg, size_t index, size_t count) {
  const bench_setup *s = ((const kv_job *)arg)->s;
  const bench_kv *kv = s->kv;
  const size_t koff = s->o->heads * s->o->head_dim, t1 = bench_split(s->rows, index + 1, count);
  const rotary_kv_cache *c = &kv->desc.cache;
  for (size_t t = bench_split(s->rows, index, count); t < t1; t++) {
    const char *row = (const char *)kv->qkv + t * kv->row_elems * kv->esize;
    char *k = (char *)kv->kc + kv->dst[t] * kv->cache_esize, *v = (char *)kv->vc + kv->dst[t] * kv->cache_esize;
    copy_convert(kv, row + koff * kv->esize, k, kv->kv_row, c->k_scale);
    copy_convert(kv, row + (koff + kv->kv_row) * kv->esize, v, kv->kv_row, c->v_scale);
  }
}

static rotary_status unfused_run(bench_setup *s, size_t arg) {
  (void)arg;
  const rotary_status st = rotary_apply(s->ctx, s->rope, &s->kv->rope);
  if (st != ROTARY_OK) return st;
  kv_job job = {s, 0, 0};
  run_tasks(s, cache_copy_task, &job);
  return ROTARY_OK;
}

static rotary_status fused_run(bench_setup *s, size_t arg) {
  (void)arg;
  return rotary_kv_write(s->ctx, s->rope, &s->kv->desc);
}

/* ---- the limit: each input byte read once, each output byte written once ---- */

/* In place: p[i] += z over n words (a load and a store of each). */
static void touch_generic(uint32_t *p, size_t n, uint32_t z) {
  for (size_t i = 0; i < n; i++) p[i] += z;
}

/* Moves a row of n elements of `from` bytes each into one of `to` bytes each (the high bytes when narrower: the
 * bytes an encoder would write, without its arithmetic; zero-extended when wider). */
static void move_generic(const uint8_t *restrict in, uint8_t *restrict out, size_t n, size_t from, size_t to) {
  if (from == to) {
    memcpy(out, in, n * from);
  } else if (from == 2 && to == 1) {
    for (size_t i = 0; i < n; i++) out[i] = in[2 * i + 1];
  } else {
    for (size_t i = 0; i < n; i++)
      for (size_t b = 0; b < to; b++) out[i * to + b] = b + from >= to ? in[i * from + b + from - to] : 0;
  }
}

#if KV_X86
__attribute__((target("avx2"))) static void touch_avx2(uint32_t *p, size_t n, uint32_t z) {
  const __m256i zv = _mm256_set1_epi32((int)z);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 8));
    _mm256_storeu_si256((__m256i *)(void *)(p + i), _mm256_add_epi32(a, zv));
    _mm256_storeu_si256((__m256i *)(void *)(p + i + 8), _mm256_add_epi32(b, zv));
  }
  for (; i < n; i++) p[i] += z;
}

/* Equal sizes, two vectors a step, with ordinary or non-temporal stores (these from the first 32-byte aligned
 * destination byte on). */
__attribute__((target("avx2"))) static void copy_avx2(const uint8_t *in, uint8_t *out, size_t bytes, int nt) {
  size_t i = 0;
  if (nt)
    for (; i < bytes && ((uintptr_t)(out + i) & 31); i++) out[i] = in[i];
  for (; i + 64 <= bytes; i += 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(in + i));
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(in + i + 32));
    if (nt) {
      _mm256_stream_si256((__m256i *)(void *)(out + i), a);
      _mm256_stream_si256((__m256i *)(void *)(out + i + 32), b);
    } else {
      _mm256_storeu_si256((__m256i *)(void *)(out + i), a);
      _mm256_storeu_si256((__m256i *)(void *)(out + i + 32), b);
    }
  }
  for (; i < bytes; i++) out[i] = in[i];
}

/* 2-byte elements to their high bytes (bf16/f16 -> fp8 sized), 32 elements per step. */
__attribute__((target("avx2"))) static void narrow_avx2(const uint8_t *in, uint8_t *out, size_t n, int nt) {
  size_t i = 0;
  if (nt)
    for (; i < n && ((uintptr_t)(out + i) & 31); i++) out[i] = in[2 * i + 1];
  for (; i + 32 <= n; i += 32) {
    __m256i a = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(in + 2 * i)), 8);
    __m256i b = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(in + 2 * i + 32)), 8);
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xd8);
    if (nt) _mm256_stream_si256((__m256i *)(void *)(out + i), p);
    else _mm256_storeu_si256((__m256i *)(void *)(out + i), p);
  }
  for (; i < n; i++) out[i] = in[2 * i + 1];
}
#endif

static void touch(uint32_t *p, size_t n, uint32_t z) {
#if KV_X86
  if (__builtin_cpu_supports("avx2")) {
    touch_avx2(p, n, z);
    return;
  }
#endif
  touch_generic(p, n, z);
}

/* A token's k (or v) row into the cache: the C library's memcpy, or AVX2 with ordinary or non-temporal stores. */
static void move_row(const bench_kv *kv, const uint8_t *in, uint8_t *out, size_t n, int stores) {
#if KV_X86
  if (__builtin_cpu_supports("avx2")) {
    if (kv->esize == kv->cache_esize && stores != BENCH_KV_MEMCPY) {
      copy_avx2(in, out, n * kv->esize, stores == BENCH_KV_NT);
      return;
    }
    if (kv->esize == 2 && kv->cache_esize == 1) {
      narrow_avx2(in, out, n, stores == BENCH_KV_NT);
      return;
    }
  }
#endif
  (void)stores;
  move_generic(in, out, n, kv->esize, kv->cache_esize);
}

static void limit_task(void *arg, size_t index, size_t count) {
  const kv_job *job = arg;
  const bench_setup *s = job->s;
  const bench_kv *kv = s->kv;
  const size_t D = s->o->head_dim, R = s->o->rotary_dim, H = s->o->heads, es = kv->esize;
  const size_t t1 = bench_split(s->rows, index + 1, count);
  for (size_t t = bench_split(s->rows, index, count); t < t1; t++) {
    uint8_t *row = (uint8_t *)kv->qkv + t * kv->row_elems * es;
    if (R == D) touch((uint32_t *)(void *)row, H * D * es / 4, job->z);
    else
      for (size_t h = 0; h < H; h++) touch((uint32_t *)(void *)(row + h * D * es), R * es / 4, job->z);
    move_row(kv, row + H * D * es, (uint8_t *)kv->kc + kv->dst[t] * kv->cache_esize, kv->kv_row, job->stores);
    move_row(kv, row + (H * D + kv->kv_row) * es, (uint8_t *)kv->vc + kv->dst[t] * kv->cache_esize, kv->kv_row,
             job->stores);
  }
#if KV_X86
  if (job->stores == BENCH_KV_NT) _mm_sfence();
#endif
}

static rotary_status limit_run(bench_setup *s, size_t arg) {
  (void)arg;
  kv_job job = {s, zero_word, s->kv->limit_stores};
  run_tasks(s, limit_task, &job);
  return ROTARY_OK;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* The limit is the fastest plain pass: each store kind runs 5 times (interleaved, after one warm-up each), and the
 * kind with the best time is kept (a narrower cache has no memcpy kind: both ordinary kinds are one loop). */
void bench_kv_pick_limit_stores(bench_setup *s) {
  double best[3] = {1e300, 1e300, 1e300};
  const int first = s->kv->esize == s->kv->cache_esize ? BENCH_KV_MEMCPY : BENCH_KV_AVX2;
  for (int round = 0; round < 6; round++)
    for (int k = first; k <= BENCH_KV_NT; k++) {
      s->kv->limit_stores = k;
      const double t0 = now_ms();
      limit_run(s, 0);
      const double ms = now_ms() - t0;
      if (round > 0 && ms < best[k]) best[k] = ms;
    }
  s->kv->limit_stores = first;
  for (int k = first + 1; k <= BENCH_KV_NT; k++)
    if (best[k] < best[s->kv->limit_stores]) s->kv->limit_stores = k;
}

const char *bench_kv_limit_stores_name(const bench_kv *kv) {
  int avx2 = 0;
#if KV_X86
  avx2 = __builtin_cpu_supports("avx2");
#endif
  if (!avx2) return kv->esize == kv->cache_esize ? "memcpy" : "plain C loops";
  if (kv->limit_stores == BENCH_KV_NT) return "AVX2 non-temporal stores";
  return kv->limit_stores == BENCH_KV_MEMCPY && kv->esize == kv->cache_esize ? "memcpy" : "AVX2 stores";
}

/* Bytes each row's loops move per call (cos/sin rows: rotary_dim fp32 values per token). */
static double cos_sin_bytes(const bench_setup *s) { return (double)s->rows * (double)s->o->rotary_dim * 4.0; }
static double fused_bytes(const bench_setup *s) { return bench_kv_ideal_bytes(s) + cos_sin_bytes(s); }
static double limit_bytes(const bench_setup *s) { return bench_kv_ideal_bytes(s); }
static double unfused_bytes(const bench_setup *s) {
  const bench_kv *kv = s->kv;
  const double rope = 2.0 * (double)((s->o->heads + s->o->kv_heads) * s->o->rotary_dim * kv->esize);
  const double copy = (double)(2 * kv->kv_row) * (double)(kv->esize + kv->cache_esize);
  return (double)s->rows * (rope + copy) + cos_sin_bytes(s);
}

const bench_impl bench_kv_fused = {"kv_fused", "fused rotary_kv_write", fused_run, fused_bytes, 0, NULL, 0};
const bench_impl bench_kv_unfused = {"kv_unfused", "unfused: rope + cache copy", unfused_run, unfused_bytes, 1,
                                     NULL, 0};
/* The same pair where the cache dtype differs from the input's (fp8: vLLM's quantizing copy). */
const bench_impl bench_kv_unfused_convert = {"kv_unfused", "unfused: rope + converting copy", unfused_run,
                                             unfused_bytes, 1, NULL, 0};
const bench_impl bench_kv_limit = {"kv_limit", "streaming pass (the limit)", limit_run, limit_bytes, 0, NULL, 0};
