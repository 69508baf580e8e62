/* bench.c: `rotary bench`: times the fused call against a streaming pass over the same buffers, same run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rotary.h"
#include "context.h"

typedef struct options {
  size_t batch, tokens, heads, kv_heads, head_dim, rotary_dim, threads, reps;
  rotary_dtype dtype;
  rotary_pairing pairing;
  int out_of_place, json;
} options;

typedef struct buffers {
  void *in[2], *out[2]; /* q, k; out == in when in place */
  size_t bytes[2];
} buffers;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: rotary bench [--tokens N] [--batch N] [--heads N] [--kv-heads N] [--head-dim N]\n"
          "                    [--rotary-dim N] [--dtype f32|f16|bf16] [--pairing half|interleaved]\n"
          "                    [--threads N] [--reps N] [--out-of-place] [--json]\n"
          "Defaults: the article's LLaMA-7B shape, batch 1, 2048 tokens, 32 q and 32 k heads, head_dim 128, f32,\n"
          "half pairing, q and k in place, all online CPUs, 30 timed repetitions after 3 warm-ups.\n");
}

static int parse_size(const char *s, size_t *v) {
  char *end;
  unsigned long long x = strtoull(s, &end, 10);
  if (!*s || *end || s[0] == '-') return 0;
  *v = (size_t)x;
  return 1;
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){1, 2048, 32, 0, 128, 0, 0, 30, ROTARY_F32, ROTARY_PAIRING_HALF, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    size_t *target = NULL;
    if (!strcmp(a, "--out-of-place")) { o->out_of_place = 1; continue; }
    if (!strcmp(a, "--json")) { o->json = 1; continue; }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
    if (!v) { fprintf(stderr, "rotary bench: %s needs a value\n", a); return 0; }
    i++;
    if (!strcmp(a, "--tokens")) target = &o->tokens;
    else if (!strcmp(a, "--batch")) target = &o->batch;
    else if (!strcmp(a, "--heads")) target = &o->heads;
    else if (!strcmp(a, "--kv-heads")) target = &o->kv_heads;
    else if (!strcmp(a, "--head-dim")) target = &o->head_dim;
    else if (!strcmp(a, "--rotary-dim")) target = &o->rotary_dim;
    else if (!strcmp(a, "--threads")) target = &o->threads;
    else if (!strcmp(a, "--reps")) target = &o->reps;
    else if (!strcmp(a, "--dtype")) {
      if (!strcmp(v, "f32")) o->dtype = ROTARY_F32;
      else if (!strcmp(v, "f16")) o->dtype = ROTARY_F16;
      else if (!strcmp(v, "bf16")) o->dtype = ROTARY_BF16;
      else { fprintf(stderr, "rotary bench: unknown dtype '%s'\n", v); return 0; }
      continue;
    } else if (!strcmp(a, "--pairing")) {
      if (!strcmp(v, "half")) o->pairing = ROTARY_PAIRING_HALF;
      else if (!strcmp(v, "interleaved")) o->pairing = ROTARY_PAIRING_INTERLEAVED;
      else { fprintf(stderr, "rotary bench: unknown pairing '%s'\n", v); return 0; }
      continue;
    } else { fprintf(stderr, "rotary bench: unknown option '%s'\n", a); return 0; }
    if (!parse_size(v, target)) { fprintf(stderr, "rotary bench: %s wants a number, got '%s'\n", a, v); return 0; }
  }
  if (!o->kv_heads) o->kv_heads = o->heads;
  if (!o->rotary_dim) o->rotary_dim = o->head_dim;
  if (!o->threads) o->threads = rotary_cpu_count();
  if (!o->reps || !o->batch || !o->tokens || !o->heads) {
    fprintf(stderr, "rotary bench: --reps, --batch, --tokens and --heads must be positive\n");
    return 0;
  }
  return 1;
}

/* The limit: one read and one write of every byte (a copy when out of place), split like the fused call. */
typedef struct stream_job {
  const buffers *buf;
} stream_job;

static void stream_task(void *arg, size_t index, size_t count) {
  const buffers *b = ((const stream_job *)arg)->buf;
  static volatile uint64_t zero = 0;
  const uint64_t z = zero;
  for (int t = 0; t < 2; t++) {
    size_t words = b->bytes[t] / 8, lo = words * index / count, hi = words * (index + 1) / count;
    const uint64_t *in = (const uint64_t *)b->in[t];
    uint64_t *out = (uint64_t *)b->out[t];
    if (in == out)
      for (size_t i = lo; i < hi; i++) out[i] += z;
    else
      memcpy(out + lo, in + lo, (hi - lo) * 8);
  }
}

static void *alloc_touched(size_t bytes, unsigned seed) {
  uint16_t *p = malloc(bytes);
  if (!p) return NULL;
  /* small finite values in every dtype: f32 words built from two halves, each a valid f16/bf16 around 0.5..1 */
  for (size_t i = 0; i < bytes / 2; i++) p[i] = (uint16_t)(0x3800u + ((i * 2654435761u + seed) >> 7 & 0x3ffu));
  return p;
}

typedef struct stats {
  double median, min, max;
} stats;

static stats summarize(double *t, size_t n) {
  qsort(t, n, sizeof *t, cmp_double);
  return (stats){n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0], t[n - 1]};
}

int rotary_cli_bench(int argc, char **argv) {
  options o;
  if (!parse_options(argc, argv, &o)) {
    usage(stderr);
    return 2;
  }
  rotary_config cfg;
  rotary_config_init(&cfg, o.head_dim);
  cfg.rotary_dim = o.rotary_dim;
  cfg.pairing = o.pairing;
  rotary_rope *rope = NULL;
  rotary_context *ctx = NULL;
  rotary_status st = rotary_rope_create(&cfg, o.tokens, &rope);
  if (st == ROTARY_OK) st = rotary_context_create(o.threads, &ctx);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
    return 1;
  }
  const size_t esize = o.dtype == ROTARY_F32 ? 4 : 2;
  buffers buf = {0};
  const size_t heads[2] = {o.heads, o.kv_heads};
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = o.batch;
  d.seq_len = o.tokens;
  int ok = 1;
  for (int t = 0; t < 2 && ok; t++) {
    buf.bytes[t] = o.batch * o.tokens * heads[t] * o.head_dim * esize;
    buf.in[t] = alloc_touched(buf.bytes[t], (unsigned)t);
    buf.out[t] = o.out_of_place ? alloc_touched(buf.bytes[t], 7u) : buf.in[t];
    ok = buf.in[t] && buf.out[t];
    if (ok) st = rotary_tensor_init(t ? &d.k : &d.q, ROTARY_LAYOUT_BSHD, buf.in[t], buf.out[t], o.dtype, o.tokens,
                                    heads[t], o.head_dim);
    ok = ok && st == ROTARY_OK;
  }
  if (!ok) {
    fprintf(stderr, "rotary bench: %s\n", st != ROTARY_OK ? rotary_status_string(st) : "out of memory");
    return 1;
  }

  double *ts = malloc(o.reps * sizeof(double)), *tf = malloc(o.reps * sizeof(double));
  stream_job sj = {&buf};
  for (size_t r = 0; r < o.reps + 3; r++) {
    /* alternate the two so that both see the same machine state; the first 3 rounds warm up */
    double t0 = now_ms();
    rotary_pool_run(ctx->pool, stream_task, &sj, o.threads); /* the context's own workers: no second pool spins */
    double t1 = now_ms();
    st = rotary_apply(ctx, rope, &d);
    double t2 = now_ms();
    if (st != ROTARY_OK) {
      fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
      return 1;
    }
    if (r >= 3) {
      ts[r - 3] = t1 - t0;
      tf[r - 3] = t2 - t1;
    }
  }
  const double bytes = 2.0 * (double)(buf.bytes[0] + buf.bytes[1]); /* each byte read once and written once */
  const stats s = summarize(ts, o.reps), f = summarize(tf, o.reps);
  static const char *dtype_names[] = {"f32", "f16", "bf16"};
  const char *dt = dtype_names[o.dtype];
  const char *pairing = o.pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved";
  const char *kname = rotary_kernel_name(o.dtype, o.pairing);
  if (o.json) {
    printf("{\"shape\":{\"batch\":%zu,\"tokens\":%zu,\"heads\":%zu,\"kv_heads\":%zu,\"head_dim\":%zu,"
           "\"rotary_dim\":%zu,\"pairing\":\"%s\",\"in_place\":%s},\"bytes_moved\":%.0f,\"rows\":[",
           o.batch, o.tokens, o.heads, o.kv_heads, o.head_dim, o.rotary_dim, pairing,
           o.out_of_place ? "false" : "true", bytes);
    const stats *rows[2] = {&s, &f};
    const char *impl[2] = {"stream", "fused"};
    for (int i = 0; i < 2; i++)
      printf("%s{\"impl\":\"%s\",\"dtype\":\"%s\",\"threads\":%zu,\"median_ms\":%.4f,\"min_ms\":%.4f,"
             "\"max_ms\":%.4f,\"gb_per_s\":%.2f,\"pct_of_stream\":%.1f}",
             i ? "," : "", impl[i], dt, o.threads, rows[i]->median, rows[i]->min, rows[i]->max,
             bytes / rows[i]->median * 1e-6, s.median / rows[i]->median * 100.0);
    printf("]}\n");
  } else {
    printf("rotary bench: batch %zu, %zu tokens, %zu q / %zu k heads, head_dim %zu (rotary %zu), %s, %s pairing, "
           "%s, %zu threads, %zu reps\n",
           o.batch, o.tokens, o.heads, o.kv_heads, o.head_dim, o.rotary_dim, dt, pairing,
           o.out_of_place ? "out of place" : "in place", o.threads, o.reps);
    printf("kernel: %s; bytes moved per call: %.1f MiB\n\n", kname, bytes / (1024.0 * 1024.0));
    printf("%-30s %10s %20s %8s %8s %10s\n", "implementation", "median ms", "min-max ms", "passes", "GB/s",
           "% stream");
    printf("%-30s %10.3f %9.3f-%-10.3f %8d %8.2f %9.1f%%\n", "streaming pass (the limit)", s.median, s.min, s.max,
           1, bytes / s.median * 1e-6, 100.0);
    printf("%-30s %10.3f %9.3f-%-10.3f %8d %8.2f %9.1f%%\n", "fused rotary_apply", f.median, f.min, f.max, 1,
           bytes / f.median * 1e-6, s.median / f.median * 100.0);
  }
  free(ts);
  free(tf);
  for (int t = 0; t < 2; t++) {
    if (buf.out[t] != buf.in[t]) free(buf.out[t]);
    free(buf.in[t]);
  }
  rotary_context_destroy(ctx);
  rotary_rope_destroy(rope);
  return 0;
}
