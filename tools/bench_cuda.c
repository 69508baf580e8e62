/* bench_cuda.c: `rotary bench --cuda`: the issue-15 table on a GPU (rotary_cuda_apply with and without a table
 * against an in-place streaming pass and a copy, L2 flushed before every rep, decode in a CUDA graph) and the
 * accuracy row (f32 outputs against fp64 angles, next to the Hugging Face fp32 recipe). docs/bench_cuda.md. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench_cuda.h"
#include "cli_args.h"
#include "rotary.h"

#define HEAD_DIM 128
#define HALF (HEAD_DIM / 2)
#define BASE 10000.0
#define TABLE_POSITIONS 1002048 /* the accuracy row's last offset, 1000000, plus 2048 positions */
#define DECODE_POSITIONS 32768  /* decode positions are drawn below this */
#define WARMUPS 3
#define GRAPH_CALLS 100         /* decode: calls captured in one graph, as in a model's decode graph */
#define GRAPH_REPLAYS 1000      /* decode: replays of a one-call graph between two events */
#define GRAPH_ROUNDS 21         /* medians of that many such stretches */
#define ACC_TOKENS 2048
#define ACC_HEADS 32            /* q and k each */

/* The table's columns: the streaming pass (the limit), ours with the table, ours table-free, a copy. */
enum { OP_LIMIT, OP_OURS, OP_FREE, OP_COPY, OP_COUNT };
static const char *const op_key[OP_COUNT] = {"limit", "ours", "table_free", "copy"};

typedef struct shape {
  const char *id, *label;
  rotary_dtype dtype;
  size_t batch, seq, heads, kv_heads;
  int decode; /* 64 sequences of one token at random positions (OFFSETS on the device), timed in a graph */
  int quick;  /* in --rows quick */
} shape;

static const shape shapes[] = {
    {"bf16", "B1 S2048 32q/32k D128 bf16", ROTARY_BF16, 1, 2048, 32, 32, 0, 1},
    {"f16", "same, f16", ROTARY_F16, 1, 2048, 32, 32, 0, 0},
    {"f32", "same, f32", ROTARY_F32, 1, 2048, 32, 32, 0, 0},
    {"b8", "B8 S2048 32q/8k bf16", ROTARY_BF16, 8, 2048, 32, 8, 0, 0},
    {"s32k", "B1 S32768 32q/8k bf16", ROTARY_BF16, 1, 32768, 32, 8, 0, 0},
    {"decode", "decode 64 x 1, 32q/8k bf16, CUDA graph", ROTARY_BF16, 64, 1, 32, 8, 1, 1},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
static const int64_t acc_offsets[] = {0, 32768, 131072, 1000000};
#define N_ACC (sizeof acc_offsets / sizeof acc_offsets[0])

typedef struct options {
  size_t reps;
  int quick;
  const char *json;
} options;

/* The run: device, stream, events, the L2 flush buffer, the ropes (host and device), the CPU context of the check. */
typedef struct bench {
  options o;
  cudaStream_t stream;
  cudaEvent_t ev0, ev1;
  void *flush;
  size_t flush_bytes;
  unsigned flush_count;
  int32_t *flags; /* device: the kernels' position flags */
  rotary_rope *rope, *rope_free;
  rotary_cuda_rope *cr, *cr_free;
  rotary_context *ctx;
  char err[320]; /* the first failure */
} bench;

/* One row's buffers and results. Times in us, < 0 when not measured. */
typedef struct row {
  const shape *sh;
  size_t esize, q_elems, elems, bytes; /* q then k, contiguous in one buffer */
  void *d_qk, *d_dst;
  int64_t *d_off, *h_off;
  rotary_apply_desc desc, hdesc; /* device call, CPU reference call */
  rotary_status st[OP_COUNT];    /* ROTARY_OK: the column runs */
  double med[OP_COUNT], min[OP_COUNT], max[OP_COUNT];
  double launch[OP_COUNT];       /* decode: one launch per rep, L2 flushed (per call in a graph: med) */
  double graph1[OP_COUNT];       /* decode: replays of a graph of one call, per replay */
  long long mismatch[2];         /* elements unlike the CPU library's: table, table-free (-1: not checked) */
  int32_t flags;
  unsigned capture_failed;       /* decode: bit op set when op's call could not be captured in a graph */
} row;

static int cu_ok(bench *b, int e, const char *what, int line) {
  if (e == 0) return 1;
  if (!b->err[0])
    snprintf(b->err, sizeof b->err, "%s (bench_cuda.c:%d): %s", what, line, cudaGetErrorString((cudaError_t)e));
  return 0;
}
#define CU(call) cu_ok(b, (int)(call), #call, __LINE__)

/* Copies (cudaMemcpyDefault) and sets on the run's stream, waited for: the stream does not wait for the legacy
 * default stream, so plain cudaMemcpy / cudaMemset could still be in flight when a kernel reads the bytes. */
static int copy_sync(bench *b, void *dst, const void *src, size_t bytes) {
  return CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, b->stream)) && CU(cudaStreamSynchronize(b->stream));
}

static int zero_flags(bench *b) {
  return CU(cudaMemsetAsync(b->flags, 0, sizeof *b->flags, b->stream)) && CU(cudaStreamSynchronize(b->stream));
}

static double cmp_sort_median(double *t, size_t n, double *mn, double *mx);

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float uniform(uint64_t *s) { return (float)((double)(splitmix(s) >> 11) * 0x1p-52 - 1.0); }

/* Standard normal (Box-Muller), like torch.randn: the accuracy row's inputs. */
static float normal(uint64_t *s) {
  const double u = ((double)(splitmix(s) >> 11) + 0.5) * 0x1p-53, v = (double)(splitmix(s) >> 11) * 0x1p-53;
  return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* n random finite elements of dt, magnitudes about 2^-3 .. 2^2 (never zeros: they hide unwritten outputs). */
static void fill_random(rotary_dtype dt, void *p, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    const uint64_t r = splitmix(&seed);
    if (dt == ROTARY_F32) {
      ((float *)p)[i] = uniform(&seed) * 4.0f + (r & 1 ? 0.125f : -0.125f);
    } else if (dt == ROTARY_F16) { /* sign, exponent 12..17, random mantissa */
      ((uint16_t *)p)[i] = (uint16_t)((r & 0x8000u) | ((12u + (unsigned)(r >> 16) % 6u) << 10) | ((r >> 24) & 0x3FFu));
    } else { /* bf16: sign, exponent 124..129, random mantissa */
      ((uint16_t *)p)[i] = (uint16_t)((r & 0x8000u) | ((124u + (unsigned)(r >> 16) % 6u) << 7) | ((r >> 24) & 0x7Fu));
    }
  }
}

/* ---- options ---------------------------------------------------------------------------------------------- */

void bench_cuda_usage(FILE *f) {
  fprintf(f, "usage: rotary bench --cuda [--rows quick|all] [--reps N] [--json FILE]\n"
             "Times rotary_cuda_apply on device 0 (in place, half pairing, BSHD, head_dim 128): with the table and\n"
             "table-free, against an in-place streaming pass over the same q+k bytes (the limit) and a copy; L2\n"
             "flushed before every rep (not timed), median of N reps (default 200) after warm-up, the columns run\n"
             "alternately. Decode 64 x 1: per call in a CUDA graph of %d calls (also a one-call graph replayed %d\n"
             "times, and one launch per rep). Then the accuracy row: f32, max abs error against fp64 angles at\n"
             "offsets 0, 32768, 131072 and 1000000, next to the Hugging Face fp32 recipe. Each row is first checked\n"
             "against rotary_apply on the CPU (bit for bit). --rows quick: the bf16 prefill and decode rows only.\n"
             "--json FILE: the numbers. Exit status 1 when there is no device, a call fails or differs.\n",
          GRAPH_CALLS, GRAPH_REPLAYS);
}

static int parse(int argc, char **argv, options *o) {
  *o = (options){.reps = 200};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *eq = strchr(a, '=');
    const size_t len = eq ? (size_t)(eq - a) : strlen(a);
    if (!strcmp(a, "--cuda")) continue;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return -1;
    const int is_reps = !strncmp(a, "--reps", len) && len == 6, is_rows = !strncmp(a, "--rows", len) && len == 6;
    const int is_json = !strncmp(a, "--json", len) && len == 6;
    if (!is_reps && !is_rows && !is_json) {
      cli_bad("bench", "--cuda takes --rows, --reps and --json only, got '%s'", a);
      bench_cuda_usage(stderr);
      return 0;
    }
    const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
    if (!v) return cli_bad("bench", "%.*s wants a value", (int)len, a);
    if (is_reps && (!cli_parse_size(v, &o->reps) || !o->reps || o->reps > 100000))
      return cli_bad("bench", "--reps must be 1 to 100000, got '%s'", v);
    if (is_rows && strcmp(v, "quick") && strcmp(v, "all"))
      return cli_bad("bench", "--rows wants quick or all, got '%s'", v);
    if (is_rows) o->quick = !strcmp(v, "quick");
    if (is_json) o->json = v;
  }
  return 1;
}

/* ---- one call of each column ------------------------------------------------------------------------------- */

static int run_op(bench *b, row *r, int op) {
  if (op == OP_LIMIT) return CU(bench_cuda_launch_rmw(r->d_qk, r->bytes, 0u, b->stream));
  if (op == OP_COPY) return CU(bench_cuda_launch_copy(r->d_dst, r->d_qk, r->bytes, b->stream));
  const rotary_status st = rotary_cuda_apply(op == OP_OURS ? b->cr : b->cr_free, &r->desc, b->stream, b->flags);
  if (st == ROTARY_OK) return 1;
  if (!b->err[0]) snprintf(b->err, sizeof b->err, "rotary_cuda_apply (%s): %s", op_key[op], rotary_status_string(st));
  return 0;
}

static int flush_l2(bench *b) {
  return CU(bench_cuda_launch_fill(b->flush, b->flush_bytes, ++b->flush_count, b->stream));
}

/* Each available column once per rep, in turn, L2 flushed before each (outside the events); medians in med. */
static int time_flushed(bench *b, row *r, double *med, double *mn, double *mx) {
  const size_t reps = b->o.reps;
  double *t = malloc(OP_COUNT * reps * sizeof *t);
  int ok = t != NULL;
  if (!ok) snprintf(b->err, sizeof b->err, "out of host memory");
  for (int w = 0; ok && w < WARMUPS; w++)
    for (int op = 0; ok && op < OP_COUNT; op++)
      if (r->st[op] == ROTARY_OK) ok = run_op(b, r, op);
  for (size_t rep = 0; ok && rep < reps; rep++)
    for (int op = 0; ok && op < OP_COUNT; op++) {
      if (r->st[op] != ROTARY_OK) continue;
      float ms = 0;
      ok = flush_l2(b) && CU(cudaEventRecord(b->ev0, b->stream)) && run_op(b, r, op) &&
           CU(cudaEventRecord(b->ev1, b->stream)) && CU(cudaEventSynchronize(b->ev1)) &&
           CU(cudaEventElapsedTime(&ms, b->ev0, b->ev1));
      t[(size_t)op * reps + rep] = (double)ms * 1e3;
    }
  for (int op = 0; ok && op < OP_COUNT; op++)
    med[op] = r->st[op] == ROTARY_OK ? cmp_sort_median(t + (size_t)op * reps, reps, &mn[op], &mx[op]) : -1.0;
  free(t);
  return ok;
}

/* Captures calls calls of op in a graph (global capture mode, as torch.cuda.graph); 0 with the reason on failure. */
static int capture(bench *b, row *r, int op, int calls, cudaGraphExec_t *exec) {
  cudaGraph_t g = NULL;
  *exec = NULL;
  if (!CU(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeGlobal))) return 0;
  int ran = 1;
  for (int i = 0; ran && i < calls; i++) ran = run_op(b, r, op);
  const int ended = CU(cudaStreamEndCapture(b->stream, &g));
  const int ok = ran && ended && CU(cudaGraphInstantiate(exec, g, 0));
  if (g) cudaGraphDestroy(g);
  (void)cudaGetLastError(); /* a failed capture is not sticky */
  return ok;
}

/* Decode: each column captured in a graph of `calls` calls, then GRAPH_ROUNDS rounds of `replays` replays per
 * column, in turn; per call, median (and range) of the rounds in med (min, max: NULL to drop them). */
static int time_graphs(bench *b, row *r, int calls, int replays, double *med, double *mn, double *mx) {
  cudaGraphExec_t ex[OP_COUNT] = {NULL};
  double t[OP_COUNT][GRAPH_ROUNDS], lo, hi;
  int ok = 1;
  for (int op = 0; op < OP_COUNT; op++) {
    med[op] = -1.0;
    if (r->st[op] == ROTARY_OK && !capture(b, r, op, calls, &ex[op])) {
      r->capture_failed |= 1u << op;
      fprintf(stderr, "rotary bench --cuda: decode, %s: graph capture (%d calls) failed: %s\n", op_key[op], calls,
              b->err);
      b->err[0] = 0;
    }
  }
  for (int op = 0; ok && op < OP_COUNT; op++)
    for (int i = 0; ok && ex[op] && i < 3; i++) ok = CU(cudaGraphLaunch(ex[op], b->stream));
  ok = ok && CU(cudaStreamSynchronize(b->stream));
  for (int round = 0; ok && round < GRAPH_ROUNDS; round++)
    for (int op = 0; ok && op < OP_COUNT; op++) {
      if (!ex[op]) continue;
      float ms = 0;
      ok = CU(cudaEventRecord(b->ev0, b->stream));
      for (int i = 0; ok && i < replays; i++) ok = CU(cudaGraphLaunch(ex[op], b->stream));
      ok = ok && CU(cudaEventRecord(b->ev1, b->stream)) && CU(cudaEventSynchronize(b->ev1)) &&
           CU(cudaEventElapsedTime(&ms, b->ev0, b->ev1));
      t[op][round] = (double)ms * 1e3 / ((double)replays * calls);
    }
  for (int op = 0; op < OP_COUNT; op++) {
    if (ok && ex[op]) med[op] = cmp_sort_median(t[op], GRAPH_ROUNDS, mn ? &mn[op] : &lo, mx ? &mx[op] : &hi);
    if (ex[op]) cudaGraphExecDestroy(ex[op]);
  }
  return ok;
}

/* ---- a row: buffers, the check against the CPU library, timing --------------------------------------------- */

static void row_desc(rotary_apply_desc *d, const row *r, void *qk, const int64_t *offsets) {
  const shape *sh = r->sh;
  char *q = qk, *k = q + r->q_elems * r->esize;
  rotary_apply_desc_init(d);
  d->batch = sh->batch;
  d->seq_len = sh->seq;
  if (sh->decode) {
    d->positions.mode = ROTARY_POSITIONS_OFFSETS;
    d->positions.offsets = offsets;
  }
  rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, q, q, sh->dtype, sh->seq, sh->heads, HEAD_DIM);
  rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, k, k, sh->dtype, sh->seq, sh->kv_heads, HEAD_DIM);
}

static long long count_mismatches(const void *a, const void *b, size_t n, size_t esize) {
  long long m = 0;
  for (size_t i = 0; i < n; i++) m += memcmp((const char *)a + i * esize, (const char *)b + i * esize, esize) != 0;
  return m;
}

/* Ours (table, then table-free) once from the same random input, compared element by element with rotary_apply
 * on the CPU; a column whose call fails is left out of the timing (its status kept). */
static int check_row(bench *b, row *r) {
  void *in = malloc(r->bytes), *out = malloc(r->bytes), *ref = malloc(r->bytes);
  int ok = in && out && ref;
  if (!ok) snprintf(b->err, sizeof b->err, "out of host memory");
  if (ok) {
    fill_random(r->sh->dtype, in, r->elems, 0x5eed0000u + (uint64_t)(r->sh - shapes));
    memcpy(ref, in, r->bytes);
    row_desc(&r->hdesc, r, ref, r->h_off);
    const rotary_status st = rotary_apply(b->ctx, b->rope, &r->hdesc);
    if (st != ROTARY_OK) ok = 0, snprintf(b->err, sizeof b->err, "rotary_apply (CPU): %s", rotary_status_string(st));
  }
  for (int op = OP_OURS; ok && op <= OP_FREE; op++) {
    ok = copy_sync(b, r->d_qk, in, r->bytes);
    r->st[op] = rotary_cuda_apply(op == OP_OURS ? b->cr : b->cr_free, &r->desc, b->stream, b->flags);
    ok = ok && CU(cudaStreamSynchronize(b->stream)) && copy_sync(b, out, r->d_qk, r->bytes);
    if (ok && r->st[op] == ROTARY_OK) r->mismatch[op - OP_OURS] = count_mismatches(out, ref, r->elems, r->esize);
  }
  ok = ok && copy_sync(b, &r->flags, b->flags, sizeof r->flags);
  free(in);
  free(out);
  free(ref);
  return ok;
}

static int run_row(bench *b, row *r) {
  const shape *sh = r->sh;
  uint64_t seed = 0xdec0de;
  r->esize = sh->dtype == ROTARY_F32 ? 4 : 2;
  r->q_elems = sh->batch * sh->seq * sh->heads * HEAD_DIM;
  r->elems = sh->batch * sh->seq * (sh->heads + sh->kv_heads) * HEAD_DIM;
  r->bytes = r->elems * r->esize;
  r->mismatch[0] = r->mismatch[1] = -1;
  for (int op = 0; op < OP_COUNT; op++) r->med[op] = r->launch[op] = r->graph1[op] = -1.0;
  r->st[OP_LIMIT] = r->st[OP_COPY] = ROTARY_OK;
  int ok = CU(cudaMalloc(&r->d_qk, r->bytes)) && CU(cudaMalloc(&r->d_dst, r->bytes)) && zero_flags(b);
  if (ok && sh->decode) {
    r->h_off = malloc(sh->batch * sizeof *r->h_off);
    ok = r->h_off && CU(cudaMalloc((void **)&r->d_off, sh->batch * sizeof *r->d_off));
    for (size_t i = 0; ok && i < sh->batch; i++) r->h_off[i] = (int64_t)(splitmix(&seed) % DECODE_POSITIONS);
    ok = ok && copy_sync(b, r->d_off, r->h_off, sh->batch * sizeof *r->h_off);
  }
  if (ok) row_desc(&r->desc, r, r->d_qk, r->d_off);
  ok = ok && check_row(b, r);
  double mn[OP_COUNT], mx[OP_COUNT];
  if (ok && sh->decode)
    ok = time_flushed(b, r, r->launch, mn, mx) && time_graphs(b, r, GRAPH_CALLS, GRAPH_REPLAYS / GRAPH_CALLS, r->med,
                                                              r->min, r->max) &&
         time_graphs(b, r, 1, GRAPH_REPLAYS, r->graph1, NULL, NULL);
  else if (ok) ok = time_flushed(b, r, r->med, r->min, r->max);
  int32_t flags = 0;
  ok = ok && copy_sync(b, &flags, b->flags, sizeof flags);
  r->flags |= flags;
  cudaFree(r->d_qk);
  cudaFree(r->d_dst);
  cudaFree(r->d_off);
  free(r->h_off);
  r->d_qk = r->d_dst = NULL;
  r->d_off = r->h_off = NULL;
  return ok;
}

/* ---- accuracy: f32 outputs against fp64 angles ------------------------------------------------------------ */

/* Row (tensor t, token s, head h) of the accuracy buffer: q then k, each [tokens][heads][HEAD_DIM]. */
static size_t acc_row(size_t t, size_t s, size_t h, size_t tokens, size_t heads) { return (t * tokens + s) * heads + h; }

/* The Hugging Face recipe in fp32: inv_freq = 1 / base^(2i/d), angle = float(pos) * inv_freq, cos and sin of
 * that fp32 angle, then q * cos + rotate_half(q) * sin, every operation rounded to fp32. */
static void hf_fp32(const float *in, float *out, size_t tokens, size_t heads, int64_t offset) {
  float inv[HALF];
  for (int i = 0; i < HALF; i++) inv[i] = 1.0f / powf((float)BASE, (float)(2 * i) / (float)HEAD_DIM);
  for (size_t s = 0; s < tokens; s++) {
    float c[HALF], sn[HALF];
    for (int i = 0; i < HALF; i++) {
      const float angle = (float)(offset + (int64_t)s) * inv[i];
      c[i] = cosf(angle);
      sn[i] = sinf(angle);
    }
    for (size_t t = 0; t < 2; t++)
      for (size_t h = 0; h < heads; h++) {
        const float *x = in + acc_row(t, s, h, tokens, heads) * HEAD_DIM;
        float *y = out + acc_row(t, s, h, tokens, heads) * HEAD_DIM;
        for (int i = 0; i < HALF; i++) {
          const float a = x[i] * c[i], b = -x[i + HALF] * sn[i], d = x[i + HALF] * c[i], e = x[i] * sn[i];
          y[i] = a + b;
          y[i + HALF] = d + e;
        }
      }
  }
}

/* The reference: the exact angle pos * inv_freq (inv_freq the rope's fp64 values) in long double, its cos and sin
 * in long double, the rotation in long double, rounded to double. */
static void reference(const double *inv_freq, const float *in, double *ref, size_t tokens, size_t heads,
                      int64_t offset) {
  for (size_t s = 0; s < tokens; s++) {
    long double c[HALF], sn[HALF];
    for (int i = 0; i < HALF; i++) {
      const long double angle = (long double)(offset + (int64_t)s) * (long double)inv_freq[i];
      c[i] = cosl(angle);
      sn[i] = sinl(angle);
    }
    for (size_t t = 0; t < 2; t++)
      for (size_t h = 0; h < heads; h++) {
        const float *x = in + acc_row(t, s, h, tokens, heads) * HEAD_DIM;
        double *y = ref + acc_row(t, s, h, tokens, heads) * HEAD_DIM;
        for (int i = 0; i < HALF; i++) {
          const long double x0 = x[i], x1 = x[i + HALF];
          y[i] = (double)(x0 * c[i] - x1 * sn[i]);
          y[i + HALF] = (double)(x0 * sn[i] + x1 * c[i]);
        }
      }
  }
}

static double max_abs_err(const float *out, const double *ref, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    const double e = fabs((double)out[i] - ref[i]);
    m = e > m || e != e ? e : m; /* a NaN output is the largest error */
  }
  return m;
}

/* err[j][0..2]: ours with the table, ours table-free, the HF fp32 recipe, at offset acc_offsets[j]. */
static int accuracy(bench *b, double err[N_ACC][3], int32_t *flags) {
  const size_t heads = ACC_HEADS, n = 2 * ACC_TOKENS * heads * HEAD_DIM, bytes = n * sizeof(float);
  float *in = malloc(bytes), *out = malloc(bytes);
  double *ref = malloc(n * sizeof *ref), inv_freq[HALF];
  void *d = NULL;
  int ok = in && out && ref && rotary_rope_inv_freq(b->rope, inv_freq) == ROTARY_OK;
  if (!ok) snprintf(b->err, sizeof b->err, "out of host memory");
  ok = ok && CU(cudaMalloc(&d, bytes)) && zero_flags(b);
  row r = {.sh = &(shape){"acc", "accuracy", ROTARY_F32, 1, ACC_TOKENS, ACC_HEADS, ACC_HEADS, 0, 0},
           .esize = 4, .q_elems = n / 2};
  for (size_t j = 0; ok && j < N_ACC; j++) {
    uint64_t seed = 0xacc0 + j;
    for (size_t i = 0; i < n; i++) in[i] = normal(&seed);
    reference(inv_freq, in, ref, ACC_TOKENS, heads, acc_offsets[j]);
    row_desc(&r.desc, &r, d, NULL);
    r.desc.positions.offset = acc_offsets[j];
    for (int m = 0; ok && m < 2; m++) {
      ok = copy_sync(b, d, in, bytes);
      const rotary_status st = ok ? rotary_cuda_apply(m ? b->cr_free : b->cr, &r.desc, b->stream, b->flags)
                                  : ROTARY_ERR_DEVICE;
      err[j][m] = -1.0; /* n/a when the call is refused */
      ok = ok && CU(cudaStreamSynchronize(b->stream));
      if (ok && st == ROTARY_OK) ok = copy_sync(b, out, d, bytes);
      if (ok && st == ROTARY_OK) err[j][m] = max_abs_err(out, ref, n);
    }
    hf_fp32(in, out, ACC_TOKENS, heads, acc_offsets[j]);
    err[j][2] = max_abs_err(out, ref, n);
  }
  ok = ok && copy_sync(b, flags, b->flags, sizeof *flags);
  cudaFree(d);
  free(in);
  free(out);
  free(ref);
  return ok;
}

/* ---- setup, report, main ----------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double cmp_sort_median(double *t, size_t n, double *mn, double *mx) {
  qsort(t, n, sizeof *t, cmp_double);
  *mn = t[0];
  *mx = t[n - 1];
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Device 0, a stream, two events, the flush buffer (2x L2), the flags word, the ropes (one table for every row,
 * TABLE_POSITIONS long, and a table-free one) and a CPU context for the check. */
static int setup(bench *b, char *device, size_t device_size) {
  int l2 = 0, sms = 0, major = 0, minor = 0, driver = 0, runtime = 0;
  struct cudaDeviceProp prop;
  rotary_config c;
  rotary_config_init(&c, HEAD_DIM);
  c.base = BASE;
  int ok = CU(cudaSetDevice(0)) && CU(cudaGetDeviceProperties(&prop, 0)) &&
           CU(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0)) &&
           CU(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0)) &&
           CU(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0)) &&
           CU(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0)) &&
           CU(cudaDriverGetVersion(&driver)) && CU(cudaRuntimeGetVersion(&runtime));
  if (!ok) return 0;
  snprintf(device, device_size, "%.120s, sm_%d%d, %d SMs, L2 %d MiB, driver %d.%d, runtime %d.%d", prop.name, major, minor,
           sms, l2 >> 20, driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
  b->flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
  ok = CU(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking)) && CU(cudaEventCreate(&b->ev0)) &&
       CU(cudaEventCreate(&b->ev1)) && CU(cudaMalloc(&b->flush, b->flush_bytes)) &&
       CU(cudaMalloc((void **)&b->flags, sizeof *b->flags));
  rotary_status st = ok ? rotary_rope_create(&c, TABLE_POSITIONS, &b->rope) : ROTARY_OK;
  if (ok && st == ROTARY_OK) st = rotary_rope_create(&c, 0, &b->rope_free);
  if (ok && st == ROTARY_OK) st = rotary_cuda_rope_create(b->rope, 0, &b->cr);
  if (ok && st == ROTARY_OK) st = rotary_cuda_rope_create(b->rope_free, 0, &b->cr_free);
  if (ok && st == ROTARY_OK) st = rotary_context_create(0, &b->ctx);
  if (ok && st != ROTARY_OK) ok = 0, snprintf(b->err, sizeof b->err, "rope setup: %s", rotary_status_string(st));
  return ok;
}

static void teardown(bench *b) {
  rotary_cuda_rope_destroy(b->cr);
  rotary_cuda_rope_destroy(b->cr_free);
  rotary_rope_destroy(b->rope);
  rotary_rope_destroy(b->rope_free);
  rotary_context_destroy(b->ctx);
  if (b->flush) cudaFree(b->flush);
  if (b->flags) cudaFree(b->flags);
  if (b->ev0) cudaEventDestroy(b->ev0);
  if (b->ev1) cudaEventDestroy(b->ev1);
  if (b->stream) cudaStreamDestroy(b->stream);
}

/* "21.5 us", "21.5 us (98%)" against the limit, or "n/a". */
static const char *fmt_us(char *buf, size_t size, double us, double limit) {
  if (us < 0) return "n/a";
  if (limit > 0) snprintf(buf, size, "%.3g us (%.0f%%)", us, 100.0 * limit / us);
  else snprintf(buf, size, "%.3g us", us);
  return buf;
}

static void print_table(const bench *b, const row *rows, size_t n, double err[N_ACC][3], const char *device) {
  char x[4][48];
  printf("rotary bench --cuda: %s\nin place, half pairing, BSHD, head_dim 128; L2 flushed before every rep (%zu MiB "
         "written, not timed); median of %zu reps; %% = the limit's time over the row's\n\n",
         device, b->flush_bytes >> 20, b->o.reps);
  printf("| shape | limit | ours (table) | ours (table-free) | copy | ours GB/s |\n|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < n; i++) {
    const row *r = &rows[i];
    const double lim = r->med[OP_LIMIT], gbs = r->med[OP_OURS] > 0 ? 2.0 * (double)r->bytes / (r->med[OP_OURS] * 1e3) : -1;
    printf("| %s | %s | %s | %s | %s | ", r->sh->label, fmt_us(x[0], 48, lim, 0),
           fmt_us(x[1], 48, r->med[OP_OURS], lim), fmt_us(x[2], 48, r->med[OP_FREE], lim),
           fmt_us(x[3], 48, r->med[OP_COPY], 0));
    if (gbs > 0) printf("%.0f |\n", gbs);
    else printf("n/a |\n");
  }
  for (size_t i = 0; i < n; i++) {
    const row *r = &rows[i];
    printf("%s%s: vs the CPU library: table %lld, table-free %lld elements differ (of %zu); flags %d",
           i ? "" : "\n", r->sh->id, r->mismatch[0], r->mismatch[1], r->elems, (int)r->flags);
    for (int op = OP_OURS; op <= OP_FREE; op++)
      if (r->st[op] != ROTARY_OK) printf("; %s: %s", op_key[op], rotary_status_string(r->st[op]));
    printf("\n");
    if (r->sh->decode) {
      printf("decode: the table's times are per call in a graph of %d calls; one launch per rep (L2 flushed): limit "
             "%s, ours %s, table-free %s, copy %s\n", GRAPH_CALLS, fmt_us(x[0], 48, r->launch[OP_LIMIT], 0),
             fmt_us(x[1], 48, r->launch[OP_OURS], 0), fmt_us(x[2], 48, r->launch[OP_FREE], 0),
             fmt_us(x[3], 48, r->launch[OP_COPY], 0));
      printf("decode: a graph of one call, %d replays between two events, per replay: limit %s, ours %s, "
             "table-free %s, copy %s\n", GRAPH_REPLAYS, fmt_us(x[0], 48, r->graph1[OP_LIMIT], 0),
             fmt_us(x[1], 48, r->graph1[OP_OURS], 0), fmt_us(x[2], 48, r->graph1[OP_FREE], 0),
             fmt_us(x[3], 48, r->graph1[OP_COPY], 0));
    }
  }
  printf("\nAccuracy, f32 inputs, max abs error of the output against fp64 angles, %d positions from the offset, "
         "%d q + %d k heads:\n| offset | ours (table) | ours (table-free) | HF recipe (fp32) |\n|---|---|---|---|\n",
         ACC_TOKENS, ACC_HEADS, ACC_HEADS);
  for (size_t j = 0; err && j < N_ACC; j++) {
    printf("| %lld |", (long long)acc_offsets[j]);
    for (int m = 0; m < 3; m++)
      if (err[j][m] < 0) printf(" n/a |");
      else printf(" %.2g |", err[j][m]);
    printf("\n");
  }
}

/* Adds key: x, or null when x < 0 (not measured). */
static int add_num(cJSON *o, const char *key, double x) {
  return (x < 0 ? cJSON_AddNullToObject(o, key) : cJSON_AddNumberToObject(o, key, x)) != NULL;
}

static cJSON *json_row(const row *r) {
  cJSON *o = cJSON_CreateObject();
  const shape *sh = r->sh;
  int ok = o && cJSON_AddStringToObject(o, "id", sh->id) && cJSON_AddStringToObject(o, "label", sh->label) &&
           cJSON_AddStringToObject(o, "dtype", sh->dtype == ROTARY_F32 ? "f32" : sh->dtype == ROTARY_F16 ? "f16" : "bf16") &&
           add_num(o, "batch", (double)sh->batch) && add_num(o, "seq_len", (double)sh->seq) &&
           add_num(o, "heads", (double)sh->heads) && add_num(o, "kv_heads", (double)sh->kv_heads) &&
           add_num(o, "head_dim", HEAD_DIM) && cJSON_AddBoolToObject(o, "decode_graph", sh->decode) &&
           add_num(o, "bytes", (double)r->bytes) && add_num(o, "flags", r->flags) &&
           add_num(o, "mismatches_table", (double)r->mismatch[0]) &&
           add_num(o, "mismatches_table_free", (double)r->mismatch[1]) &&
           cJSON_AddBoolToObject(o, "ours_capture_failed", (r->capture_failed >> OP_OURS) & 1u) &&
           cJSON_AddBoolToObject(o, "table_free_capture_failed", (r->capture_failed >> OP_FREE) & 1u);
  for (int op = 0; ok && op < OP_COUNT; op++) {
    char key[48];
    snprintf(key, sizeof key, "%s_us", op_key[op]);
    ok = add_num(o, key, r->med[op]);
    snprintf(key, sizeof key, "%s_min_us", op_key[op]);
    ok = ok && add_num(o, key, r->med[op] < 0 ? -1 : r->min[op]);
    snprintf(key, sizeof key, "%s_max_us", op_key[op]);
    ok = ok && add_num(o, key, r->med[op] < 0 ? -1 : r->max[op]);
    snprintf(key, sizeof key, "%s_status", op_key[op]);
    ok = ok && cJSON_AddStringToObject(o, key, rotary_status_string(r->st[op]));
    if (sh->decode) {
      snprintf(key, sizeof key, "%s_launch_us", op_key[op]);
      ok = ok && add_num(o, key, r->launch[op]);
      snprintf(key, sizeof key, "%s_graph1_us", op_key[op]);
      ok = ok && add_num(o, key, r->graph1[op]);
    }
    if (op == OP_OURS || op == OP_FREE) {
      snprintf(key, sizeof key, "%s_pct", op_key[op]);
      const double lim = r->med[OP_LIMIT], us = r->med[op];
      ok = ok && add_num(o, key, lim > 0 && us > 0 ? 100.0 * lim / us : -1);
    }
  }
  ok = ok && add_num(o, "gb_per_s", r->med[OP_OURS] > 0 ? 2.0 * (double)r->bytes / (r->med[OP_OURS] * 1e3) : -1);
  if (!ok) cJSON_Delete(o);
  return ok ? o : NULL;
}

static int write_json(const bench *b, const row *rows, size_t n, double err[N_ACC][3], const char *device) {
  cJSON *doc = cJSON_CreateObject(), *arr = doc ? cJSON_AddArrayToObject(doc, "rows") : NULL;
  int ok = arr && cJSON_AddStringToObject(doc, "device", device) && add_num(doc, "reps", (double)b->o.reps) &&
           add_num(doc, "flush_bytes", (double)b->flush_bytes) && add_num(doc, "graph_calls", GRAPH_CALLS) &&
           add_num(doc, "graph_replays", GRAPH_REPLAYS) &&
           cJSON_AddStringToObject(doc, "version", rotary_version_string());
  for (size_t i = 0; ok && i < n; i++) {
    cJSON *o = json_row(&rows[i]);
    ok = o && cJSON_AddItemToArray(arr, o);
  }
  cJSON *acc = ok ? cJSON_AddArrayToObject(doc, "accuracy") : NULL;
  ok = ok && acc;
  for (size_t j = 0; ok && err && j < N_ACC; j++) {
    cJSON *o = cJSON_CreateObject();
    ok = o && cJSON_AddItemToArray(acc, o) && add_num(o, "offset", (double)acc_offsets[j]) &&
         add_num(o, "table", err[j][0]) && add_num(o, "table_free", err[j][1]) && add_num(o, "hf_fp32", err[j][2]);
  }
  char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  FILE *f = text ? fopen(b->o.json, "w") : NULL;
  ok = f && fprintf(f, "%s\n", text) > 0;
  if (f && fclose(f) != 0) ok = 0;
  cJSON_free(text);
  if (!ok) fprintf(stderr, "rotary bench --cuda: cannot write %s\n", b->o.json);
  return ok;
}

int bench_cuda_main(int argc, char **argv) {
  bench b = {0};
  const int parsed = parse(argc, argv, &b.o);
  if (parsed < 0) bench_cuda_usage(stdout);
  if (parsed <= 0) return parsed < 0 ? 0 : 2;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    fprintf(stderr, "rotary bench --cuda: no CUDA device (%s): nothing to time\n",
            e != cudaSuccess ? cudaGetErrorString(e) : "the driver sees none");
    return 1;
  }
  char device[400] = "";
  row rows[N_SHAPES];
  size_t n = 0;
  double err[N_ACC][3];
  int32_t acc_flags = 0;
  int ok = setup(&b, device, sizeof device);
  for (size_t i = 0; ok && i < N_SHAPES; i++) {
    if (b.o.quick && !shapes[i].quick) continue;
    rows[n] = (row){.sh = &shapes[i]};
    if ((ok = run_row(&b, &rows[n]))) n++;
  }
  const int acc_ok = ok && accuracy(&b, err, &acc_flags);
  if (n) print_table(&b, rows, n, acc_ok ? err : NULL, device); /* what was measured, even after a failure */
  ok = acc_ok;
  if (ok && acc_flags) printf("accuracy: the kernels flagged positions (%d)\n", (int)acc_flags);
  if (n && b.o.json && !write_json(&b, rows, n, acc_ok ? err : NULL, device)) ok = 0;
  if (!ok && b.err[0]) fprintf(stderr, "rotary bench --cuda: %s\n", b.err);
  int exact = 1; /* the contract: the table path is the CPU library's, bit for bit, and no position is flagged */
  for (size_t i = 0; ok && i < n; i++)
    exact &= rows[i].st[OP_OURS] == ROTARY_OK && rows[i].mismatch[0] == 0 && rows[i].flags == 0 &&
             !(rows[i].capture_failed & (1u << OP_OURS | 1u << OP_FREE));
  if (ok && !exact)
    fprintf(stderr, "rotary bench --cuda: ours failed, differs from the CPU library, flagged a position or could "
                    "not be captured in a graph (see above)\n");
  teardown(&b);
  return ok && exact && !acc_flags ? 0 : 1;
}
