/* bench_composed.c: baseline (a), RoPE as a framework's eager ops run it: separate passes through intermediates. */
#include <string.h>

#include "bench.h"
#include "bench_dtype.h"
#include "context.h"

/*
 * What PyTorch eager runs for Hugging Face's apply_rotary_pos_emb (q * cos + rotate_half(q) * sin), per call:
 *   cos, sin = cos_cached[position_ids], sin_cached[position_ids]    gather to [tokens, rotary_dim], model dtype
 *   for x in q, k:
 *     rot  = rotate_half(x)      (a copy: cat(-x2, x1); eager runs neg and cat as two kernels, we count one)
 *     tmp1 = x * cos
 *     tmp2 = rot * sin
 *     out  = tmp1 + tmp2
 *     x[..., :rotary_dim].copy_(out)         in place; out of place the sum lands in the output and a
 *                                            cat(out, x[..., rotary_dim:]) copies the pass-through dims
 * Every op is a plain C loop over token rows that the compiler vectorizes (built twice on x86, for the baseline
 * ISA and for AVX2, picked at run time), run as its own job on the context's pool: a framework op is one parallel
 * loop, and the next op starts when it is done. The intermediates are whole tensors, reused for q then k as a
 * caching allocator would. For f16/bf16, Hugging Face computes in the model dtype; here each op converts every
 * element to fp32, computes, and rounds back to the dtype, so every intermediate is stored in the model dtype, as
 * in the framework. The conversions are plain C (bench_dtype.h); a framework converts f16 with F16C instructions,
 * so the f16 row of (a) is slower here than in a framework (bound by the conversions, not by memory): its
 * speedup overstates the gain for f16.
 */

typedef struct composed_op composed_op;
struct composed_op {
  void (*fn)(const composed_op *op, size_t t0, size_t t1);
  size_t rows, heads, width;              /* tokens, head rows per token, elements per head row */
  const void *a, *b;                      /* operands */
  void *y, *y2;                           /* result (gather: cos into y, sin into y2) */
  size_t a_stride, b_stride, y_stride;    /* elements between head rows */
  size_t esize;                           /* copies: bytes per element */
  int interleaved;
  const int64_t *pos;                     /* gather */
  const float *cos_tab, *sin_tab;
};

/* The portable instances, compiled for the baseline ISA. */
#define CT_T float
#define CT_LOAD(x) (x)
#define CT_STORE(f) (f)
#define CT_NAME(op) op##_f32
#define CT_TARGET
#include "bench_composed_ops.h"

#define CT_T uint16_t
#define CT_LOAD(x) bench_f16_to_f32(x)
#define CT_STORE(f) bench_f32_to_f16(f)
#define CT_NAME(op) op##_f16
#define CT_TARGET
#include "bench_composed_ops.h"

#define CT_T uint16_t
#define CT_LOAD(x) bench_bf16_to_f32(x)
#define CT_STORE(f) bench_f32_to_bf16(f)
#define CT_NAME(op) op##_bf16
#define CT_TARGET
#include "bench_composed_ops.h"

typedef void (*op_fn)(const composed_op *op, size_t t0, size_t t1);
enum { OP_ROTATE, OP_MUL, OP_ADD, OP_GATHER };
static const op_fn generic_ops[3][4] = {
    {rotate_f32, mul_f32, add_f32, gather_f32},
    {rotate_f16, mul_f16, add_f16, gather_f16},
    {rotate_bf16, mul_bf16, add_bf16, gather_bf16},
};

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* The same loops compiled for AVX2 and chosen at run time, as a framework builds its CPU kernels per ISA: the
 * software f16 conversions are compute-bound at SSE2 width. */
#define COMPOSED_AVX2 1
#define CT_T float
#define CT_LOAD(x) (x)
#define CT_STORE(f) (f)
#define CT_NAME(op) op##_f32_avx2
#define CT_TARGET __attribute__((target("avx2")))
#include "bench_composed_ops.h"

#define CT_T uint16_t
#define CT_LOAD(x) bench_f16_to_f32(x)
#define CT_STORE(f) bench_f32_to_f16(f)
#define CT_NAME(op) op##_f16_avx2
#define CT_TARGET __attribute__((target("avx2")))
#include "bench_composed_ops.h"

#define CT_T uint16_t
#define CT_LOAD(x) bench_bf16_to_f32(x)
#define CT_STORE(f) bench_f32_to_bf16(f)
#define CT_NAME(op) op##_bf16_avx2
#define CT_TARGET __attribute__((target("avx2")))
#include "bench_composed_ops.h"

static const op_fn avx2_ops[3][4] = {
    {rotate_f32_avx2, mul_f32_avx2, add_f32_avx2, gather_f32_avx2},
    {rotate_f16_avx2, mul_f16_avx2, add_f16_avx2, gather_f16_avx2},
    {rotate_bf16_avx2, mul_bf16_avx2, add_bf16_avx2, gather_bf16_avx2},
};
#endif

static const op_fn *ops_for(rotary_dtype dtype) {
#ifdef COMPOSED_AVX2
  if (__builtin_cpu_supports("avx2")) return avx2_ops[dtype];
#endif
  return generic_ops[dtype];
}

/* y = a, head row by head row (copy_ or cat: no arithmetic, the bytes move). */
static void copy_rows(const composed_op *op, size_t t0, size_t t1) {
  for (size_t r = t0 * op->heads; r < t1 * op->heads; r++)
    memcpy((char *)op->y + r * op->y_stride * op->esize, (const char *)op->a + r * op->a_stride * op->esize,
           op->width * op->esize);
}

static void op_task(void *arg, size_t index, size_t count) {
  const composed_op *op = arg;
  op->fn(op, bench_split(op->rows, index, count), bench_split(op->rows, index + 1, count));
}

/* One framework op: a parallel loop over token rows, done before the next starts. */
static void run_op(bench_setup *s, composed_op op, op_fn fn, const void *a, size_t as, const void *b, size_t bs,
                   void *y, size_t ys) {
  op.fn = fn;
  op.a = a;
  op.b = b;
  op.y = y;
  op.a_stride = as;
  op.b_stride = bs;
  op.y_stride = ys;
  rotary_pool_run(s->ctx->pool, op_task, &op, s->o->threads, s->o->threads - 1);
}

static void composed_tensor(bench_setup *s, composed_op op, int t) {
  const op_fn *f = ops_for(s->o->dtype);
  const size_t D = s->o->head_dim, R = s->o->rotary_dim;
  const char *x = s->in[t];
  char *y = s->out[t];
  op.heads = s->heads[t];
  run_op(s, op, f[OP_ROTATE], x, D, NULL, 0, s->rot, R);
  run_op(s, op, f[OP_MUL], x, D, s->cos_full, 0, s->tmp1, R);
  run_op(s, op, f[OP_MUL], s->rot, R, s->sin_full, 0, s->tmp2, R);
  if (x == y) {
    run_op(s, op, f[OP_ADD], s->tmp1, R, s->tmp2, R, s->sum, R);
    run_op(s, op, copy_rows, s->sum, R, NULL, 0, y, D);
  } else {
    run_op(s, op, f[OP_ADD], s->tmp1, R, s->tmp2, R, y, D);
    if (R < D) {
      op.width = D - R; /* cat(out, x_pass): the pass-through dims */
      run_op(s, op, copy_rows, x + R * s->esize, D, NULL, 0, y + R * s->esize, D);
    }
  }
}

static rotary_status composed_run(bench_setup *s, size_t arg) {
  (void)arg;
  composed_op op = {0};
  op.rows = s->rows;
  op.width = s->o->rotary_dim;
  op.esize = s->esize;
  op.interleaved = s->o->pairing == ROTARY_PAIRING_INTERLEAVED;
  op.pos = s->pos;
  op.cos_tab = s->cos_tab;
  op.sin_tab = s->sin_tab;
  op.heads = 1;
  op.y2 = s->sin_full;
  run_op(s, op, ops_for(s->o->dtype)[OP_GATHER], NULL, 0, NULL, 0, s->cos_full, 0);
  composed_tensor(s, op, 0);
  composed_tensor(s, op, 1);
  return ROTARY_OK;
}

/* Every tensor an op reads or writes counts once at its own size (a broadcast cos row is read from cache). */
static double composed_bytes(const bench_setup *s) {
  const double T = (double)s->rows, R = (double)s->o->rotary_dim, D = (double)s->o->head_dim, E = (double)s->esize;
  double b = T * R * 4.0 + 2.0 * T * R * E; /* gather: fp32 table rows in, cos and sin out */
  for (int t = 0; t < 2; t++) {
    const double n = T * (double)s->heads[t] * R * E; /* the rotated part of x */
    b += 2 * n;                                       /* rotate_half: read x, write rot */
    b += 2 * (2 * n + T * R * E);                     /* x * cos, rot * sin */
    b += 3 * n;                                       /* tmp1 + tmp2 */
    if (s->in[t] == s->out[t]) b += 2 * n;            /* copy back into x */
    else b += 2 * T * (double)s->heads[t] * (D - R) * E; /* pass-through dims */
  }
  return b;
}

const bench_impl bench_impl_composed = {"composed", "(a) C model of HF eager ops", composed_run, composed_bytes, 1,
                                        NULL, 0};
