/* llama_step.c: one LLaMA attention-layer decode step (QKV projection, RoPE + cache append + attention, O
 * projection), the fused calls timed against the composed passes: the article's attention-layer claim. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_attn_composed.h"
#include "bench_dtype.h"
#include "rotary.h"

#define MAX_THREADS 64
#define CHECK_REL 1e-3 /* max |fused - composed| over the layer output / max |composed output| */

/* The layer's sizes: hidden -> q_heads + 2 kv_heads heads of head_dim -> hidden. */
typedef struct model {
  const char *name;
  size_t hidden, q_heads, kv_heads, head_dim;
  double base;
} model;

static const model llama3_8b = {"llama3-8b", 4096, 32, 8, 128, 500000.0};
static const model tiny = {"tiny (smoke test)", 256, 4, 2, 64, 10000.0};

typedef struct step {
  model m;
  size_t batch, len, threads, width, attn_width; /* width: a QKV row; attn_width: q_heads * head_dim */
  float *x, *wqkv, *wo, *qkv, *q, *attn, *y, *logits;
  uint16_t *kc, *vc;                 /* bf16 caches [batch][len][kv_heads][head_dim] (contiguous NHD) */
  int64_t *before, *after, *pos;     /* rows held before the step (len - 1), after it (len); the new token's row */
  rotary_rope *rope;
  rotary_context *ctx;
  rotary_kv_write_desc write;        /* fused: q rotated to q, k rotated and v written into the cache ... */
  rotary_attention_desc attend;      /* ... then attention of q over the cache (rotary_decode_step) */
  rotary_apply_desc rope_qk;         /* composed: q and k rotated in place in the QKV rows ... */
  bench_attn_composed comp;          /* ... k and v copied into the cache, then QK^T, softmax, x V */
} step;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t next_random(uint64_t *x) {
  *x = *x * 6364136223846793005u + 1442695040888963407u;
  return *x >> 33;
}

/* n values uniform in -a .. a. */
static void fill(float *p, size_t n, float a, uint64_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = a * (float)((double)next_random(&seed) / 0x1p30 - 1.0);
}

static void *alloc(size_t n, size_t size) {
  void *p = NULL;
  if (n > SIZE_MAX / size || posix_memalign(&p, 64, n ? n * size : 1)) return NULL;
  return p;
}

/* ---- the composed passes on `threads` threads (one fork-join per pass, as one operator after another) ---- */

typedef struct task {
  void (*fn)(void *, size_t, size_t);
  void *arg;
  size_t index, count;
} task;

static void *task_main(void *p) {
  const task *t = p;
  t->fn(t->arg, t->index, t->count);
  return NULL;
}

static void run_tasks(void (*fn)(void *, size_t, size_t), void *arg, size_t count) {
  pthread_t th[MAX_THREADS];
  task t[MAX_THREADS];
  size_t started = 1;
  for (size_t i = 1; i < count; i++) {
    t[i] = (task){fn, arg, i, count};
    if (pthread_create(&th[started], NULL, task_main, &t[i])) fn(arg, i, count); /* no thread: run it here */
    else started++;
  }
  fn(arg, 0, count);
  for (size_t i = 1; i < started; i++) pthread_join(th[i], NULL);
}

/* The new token's k and v rows (rotated k) into row len - 1 of each sequence's cache, rounded to bf16. */
static void cache_copy(const step *s) {
  const size_t kv = s->m.kv_heads * s->m.head_dim;
  for (size_t b = 0; b < s->batch; b++) {
    const float *k = s->qkv + b * s->width + s->attn_width, *v = k + kv;
    uint16_t *kd = s->kc + (b * s->len + s->len - 1) * kv, *vd = s->vc + (b * s->len + s->len - 1) * kv;
    for (size_t i = 0; i < kv; i++) {
      kd[i] = bench_f32_to_bf16(k[i]);
      vd[i] = bench_f32_to_bf16(v[i]);
    }
  }
}

/* x -> qkv, then the middle part (its time in *mid_ms), then attn -> y. */
static rotary_status run_step(step *s, int fused, double *mid_ms) {
  const int B = (int)s->batch, H = (int)s->m.hidden, W = (int)s->width, A = (int)s->attn_width;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, W, H, 1.0f, s->x, H, s->wqkv, W, 0.0f, s->qkv, W);
  const double t0 = now_ms();
  rotary_status st = ROTARY_OK;
  if (fused) {
    st = rotary_decode_step(s->ctx, s->rope, &s->write, &s->attend);
  } else {
    st = rotary_apply(s->ctx, s->rope, &s->rope_qk);
    if (st == ROTARY_OK) {
      cache_copy(s);
      run_tasks(bench_attn_composed_scores, &s->comp, s->threads);
      run_tasks(bench_attn_composed_softmax, &s->comp, s->threads);
      run_tasks(bench_attn_composed_values, &s->comp, s->threads);
    }
  }
  *mid_ms = now_ms() - t0;
  if (st == ROTARY_OK)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, A, 1.0f, s->attn, A, s->wo, H, 0.0f, s->y, H);
  return st;
}

/* ---- setup ---- */

static void cache_desc(const step *s, rotary_kv_cache *c, const int64_t *lengths) {
  c->index = ROTARY_CACHE_SEQUENCES;
  c->layout = ROTARY_CACHE_NHD;
  c->dtype = ROTARY_BF16;
  c->k = s->kc;
  c->v = s->vc;
  c->num_blocks = s->batch;
  c->block_size = s->len;
  c->lengths = lengths;
}

static rotary_status make_descs(step *s) {
  const model *m = &s->m;
  rotary_kv_write_desc *w = &s->write;
  rotary_kv_write_desc_init(w);
  w->batch = s->batch;
  w->positions.mode = ROTARY_POSITIONS_IDS_I64;
  w->positions.ids = s->pos;
  rotary_status st = rotary_kv_write_desc_set_qkv(w, s->qkv, s->q, ROTARY_F32, m->q_heads, m->kv_heads,
                                                  m->head_dim, 0);
  if (st != ROTARY_OK) return st;
  cache_desc(s, &w->cache, s->before);
  rotary_attention_desc *a = &s->attend;
  rotary_attention_desc_init(a);
  a->batch = s->batch;
  a->q_heads = m->q_heads;
  a->kv_heads = m->kv_heads;
  a->q = s->q;
  a->q_dtype = ROTARY_F32;
  a->out = s->attn;
  a->out_dtype = ROTARY_F32;
  cache_desc(s, &a->cache, s->after);
  a->rope_mode = ROTARY_ATTENTION_ROPE_NONE; /* q rotated by the write, keys cached rotated */
  rotary_apply_desc *r = &s->rope_qk;
  rotary_apply_desc_init(r);
  r->batch = s->batch;
  r->positions = w->positions;
  const ptrdiff_t row = (ptrdiff_t)s->width, dim = (ptrdiff_t)m->head_dim;
  float *k = s->qkv + s->attn_width;
  r->q = (rotary_tensor){s->qkv, s->qkv, ROTARY_F32, m->q_heads, row, row, dim, row, row, dim};
  r->k = (rotary_tensor){k, k, ROTARY_F32, m->kv_heads, row, row, dim, row, row, dim};
  s->comp = (bench_attn_composed){.batch = s->batch, .q_heads = m->q_heads, .kv_heads = m->kv_heads,
                                  .head_dim = m->head_dim, .lengths = s->after, .logits_stride = s->len,
                                  .cache_dtype = ROTARY_BF16, .k = s->kc, .v = s->vc, .block_size = s->len,
                                  .block_stride = s->len * m->kv_heads * m->head_dim,
                                  .scale = 1.0f / sqrtf((float)m->head_dim), .q = s->qkv, .q_stride = s->width,
                                  .logits = s->logits, .out = s->attn};
  return ROTARY_OK;
}

static void step_destroy(step *s) {
  void *all[] = {s->x, s->wqkv, s->wo, s->qkv, s->q, s->attn, s->y, s->logits, s->kc, s->vc, s->before, s->after,
                 s->pos};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
  rotary_context_destroy(s->ctx);
  rotary_rope_destroy(s->rope);
}

/* Weights uniform with the variance of 1/fan_in; x in -1 .. 1; every cached row before the step random bf16. */
static rotary_status step_create(step *s, const model *m, size_t batch, size_t len, size_t threads) {
  memset(s, 0, sizeof *s);
  s->m = *m;
  s->batch = batch;
  s->len = len;
  s->threads = threads;
  s->width = (m->q_heads + 2 * m->kv_heads) * m->head_dim;
  s->attn_width = m->q_heads * m->head_dim;
  const size_t kv = m->kv_heads * m->head_dim, cache = batch * len * kv;
  s->x = alloc(batch * m->hidden, sizeof(float));
  s->wqkv = alloc(m->hidden * s->width, sizeof(float));
  s->wo = alloc(s->attn_width * m->hidden, sizeof(float));
  s->qkv = alloc(batch * s->width, sizeof(float));
  s->q = alloc(batch * s->attn_width, sizeof(float));
  s->attn = alloc(batch * s->attn_width, sizeof(float));
  s->y = alloc(batch * m->hidden, sizeof(float));
  s->logits = alloc(batch * m->q_heads * len, sizeof(float));
  s->kc = alloc(cache, sizeof(uint16_t));
  s->vc = alloc(cache, sizeof(uint16_t));
  s->before = alloc(batch, sizeof(int64_t));
  s->after = alloc(batch, sizeof(int64_t));
  s->pos = alloc(batch, sizeof(int64_t));
  if (!s->x || !s->wqkv || !s->wo || !s->qkv || !s->q || !s->attn || !s->y || !s->logits || !s->kc || !s->vc ||
      !s->before || !s->after || !s->pos)
    return ROTARY_ERR_OUT_OF_MEMORY;
  fill(s->x, batch * m->hidden, 1.0f, 1);
  fill(s->wqkv, m->hidden * s->width, sqrtf(3.0f / (float)m->hidden), 2);
  fill(s->wo, s->attn_width * m->hidden, sqrtf(3.0f / (float)s->attn_width), 3);
  uint64_t r = 4;
  for (size_t i = 0; i < cache; i++) {
    s->kc[i] = bench_f32_to_bf16((float)((double)next_random(&r) / 0x1p30 - 1.0));
    s->vc[i] = bench_f32_to_bf16((float)((double)next_random(&r) / 0x1p30 - 1.0));
  }
  for (size_t b = 0; b < batch; b++) {
    s->before[b] = (int64_t)len - 1;
    s->after[b] = (int64_t)len;
    s->pos[b] = (int64_t)len - 1;
  }
  rotary_config cfg;
  rotary_config_init(&cfg, m->head_dim);
  cfg.base = m->base;
  rotary_status st = rotary_rope_create(&cfg, len, &s->rope);
  if (st == ROTARY_OK) st = rotary_context_create(threads, &s->ctx);
  if (st == ROTARY_OK) st = make_descs(s);
  return st;
}

/* ---- measurement ---- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, size_t n) {
  qsort(t, n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef struct figures {
  double step[2], mid[2], diff, rel; /* [0] fused, [1] composed: median ms */
} figures;

/* Both paths once from the same x (each writes the same cache row), their outputs compared. */
static rotary_status check(step *s, figures *f) {
  const size_t n = s->batch * s->m.hidden;
  float *ref = alloc(n, sizeof *ref);
  double mid, scale = 0, diff = 0;
  rotary_status st = ref ? run_step(s, 1, &mid) : ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK) {
    memcpy(ref, s->y, n * sizeof *ref);
    st = run_step(s, 0, &mid);
  }
  for (size_t i = 0; st == ROTARY_OK && i < n; i++) {
    const double d = fabs((double)s->y[i] - (double)ref[i]);
    if (!(d <= diff)) diff = d;
    if (fabs((double)s->y[i]) > scale) scale = fabs((double)s->y[i]);
  }
  free(ref);
  f->diff = diff;
  f->rel = scale > 0 ? diff / scale : diff;
  return st;
}

/* runs alternating rounds (fused then composed, composed then fused), after one warm-up of each. */
static rotary_status measure(step *s, size_t runs, figures *f) {
  double *t = alloc(4 * runs, sizeof *t), mid;
  if (!t) return ROTARY_ERR_OUT_OF_MEMORY;
  rotary_status st = run_step(s, 1, &mid);
  if (st == ROTARY_OK) st = run_step(s, 0, &mid);
  for (size_t r = 0; r < runs && st == ROTARY_OK; r++)
    for (int k = 0; k < 2 && st == ROTARY_OK; k++) {
      const int fused = (int)((r + (size_t)k) % 2 == 0);
      const double t0 = now_ms();
      st = run_step(s, fused, &mid);
      t[(fused ? 0 : 2) * runs + r] = now_ms() - t0;
      t[(fused ? 1 : 3) * runs + r] = mid;
    }
  for (int i = 0; i < 4 && st == ROTARY_OK; i++) *(i % 2 ? &f->mid[i / 2] : &f->step[i / 2]) = median(t + i * runs, runs);
  free(t);
  return st;
}

static void usage(FILE *f) {
  fprintf(f, "usage: llama_step [--batch B --len L] [--threads N] [--blas-threads N] [--runs R] [--quick]\n"
             "One LLaMA 3 8B attention-layer decode step (bf16 KV cache): the fused rotary_decode_step against the\n"
             "composed passes, between the same cblas_sgemm projections. Default: batch 1 and 16 x cached rows 1024\n"
             "and 4096, all CPUs for the attention, 10 runs. --quick: a tiny layer, batch 2 x 40 rows, 2 runs (the\n"
             "smoke test). --blas-threads (OpenBLAS only; default 1): OpenBLAS's idle workers spin after each sgemm\n"
             "and take cores from the attention's threads, so by default the projections run on one thread.\n");
}

/* OpenBLAS's thread count (other CBLAS libraries: their own setting, e.g. an environment variable). */
static const char *set_blas_threads(size_t n) {
#ifdef LLAMA_STEP_OPENBLAS
  openblas_set_num_threads((int)n);
  return "OpenBLAS";
#else
  (void)n;
  return "a CBLAS (threads its own)";
#endif
}

static int parse_size(const char *v, size_t *out) {
  char *end;
  const unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
  if (!v || *v == '-' || *end || x == 0 || x > (1ull << 30)) return 0;
  *out = (size_t)x;
  return 1;
}

int main(int argc, char **argv) {
  size_t batch = 0, len = 0, threads = rotary_cpu_count(), runs = 10, blas_threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  const model *m = &llama3_8b;
  for (int i = 1; i < argc; i++) {
    size_t *field = !strcmp(argv[i], "--batch")   ? &batch
                    : !strcmp(argv[i], "--len")     ? &len
                    : !strcmp(argv[i], "--threads") ? &threads
                    : !strcmp(argv[i], "--runs")    ? &runs
                    : !strcmp(argv[i], "--blas-threads") ? &blas_threads
                                                    : NULL;
    if (!strcmp(argv[i], "--quick")) {
      m = &tiny;
      batch = 2;
      len = 40;
      runs = 2;
    } else if (!field || !parse_size(i + 1 < argc ? argv[++i] : NULL, field) || threads > MAX_THREADS ||
               blas_threads > MAX_THREADS) {
      usage(stderr);
      return 2;
    }
  }
  if (!batch != !len) {
    usage(stderr);
    return 2;
  }
  const size_t batches[2] = {batch ? batch : 1, 16}, lens[2] = {len ? len : 1024, 4096}, n = batch ? 1 : 2;
  const char *blas = set_blas_threads(blas_threads);
  printf("llama_step: %s attention layer (hidden %zu, %zu q / %zu kv heads, head_dim %zu), bf16 KV cache, %zu "
         "thread%s, %zu runs (medians); projections: cblas_sgemm of %s, %zu thread%s\n",
         m->name, m->hidden, m->q_heads, m->kv_heads, m->head_dim, threads, threads == 1 ? "" : "s", runs, blas,
         blas_threads, blas_threads == 1 ? "" : "s");
  printf("\n| batch | cached rows | fused step ms | composed step ms | step reduction | attention part: fused ms | "
         "composed ms | max |diff| (rel) |\n|---|---|---|---|---|---|---|---|\n");
  int bad = 0;
  for (size_t bi = 0; bi < n; bi++)
    for (size_t li = 0; li < n; li++) {
      step s;
      figures f;
      memset(&f, 0, sizeof f);
      rotary_status st = step_create(&s, m, batches[bi], lens[li], threads);
      if (st == ROTARY_OK) st = check(&s, &f);
      if (st == ROTARY_OK && !(f.rel <= CHECK_REL)) {
        fprintf(stderr, "llama_step: the fused and composed outputs differ: max |diff| %.3g, relative %.3g\n",
                f.diff, f.rel);
        bad = 1;
      }
      if (st == ROTARY_OK) st = measure(&s, runs, &f);
      step_destroy(&s);
      if (st != ROTARY_OK) {
        fprintf(stderr, "llama_step: %s\n", rotary_status_string(st));
        return 1;
      }
      printf("| %zu | %zu | %.3f | %.3f | %.1f%% | %.3f | %.3f | %.2g (%.2g) |\n", batches[bi], lens[li], f.step[0],
             f.step[1], (1.0 - f.step[0] / f.step[1]) * 100.0, f.mid[0], f.mid[1], f.diff, f.rel);
      fflush(stdout);
    }
  printf("\nstep reduction: 1 - fused / composed step time (the same sgemm projections in both); the article\n"
         "reports 28%% less time in LLaMA-7B inference from fusing RoPE into its attention layer.\n");
  return bad;
}
