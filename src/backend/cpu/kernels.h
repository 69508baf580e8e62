/* kernels.h: the internal interface of a rotation kernel and the registry of every compiled variant. */
#ifndef ROTARY_KERNELS_H
#define ROTARY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"
#include "tuning.h"

/*
 * A rotation kernel rotates n_heads head rows of ONE token with one cos/sin row (the row is loaded once and
 * reused by every head). Head h of the input starts at element h * in_stride of in, of the output at
 * h * out_stride of out (elements of the kernel's dtype). Pairs follow the kernel's pairing over the first
 * rotary_dim elements:
 *     out[a] = fmaf(x[a], cos[i], -(x[b] * sin[i]))     out[b] = fmaf(x[a], sin[i], x[b] * cos[i])
 * with (a, b) = (i, i + rotary_dim/2) for half pairing and (2i, 2i + 1) for interleaved, i < rotary_dim/2, math in
 * fp32 and one rounding to the dtype at the end; an output that is NaN is rotary_pair_nan(x[a], x[b]) (convert.h:
 * x[a]'s NaN quieted, else x[b]'s, else the positive default NaN), so every kernel gives the same bits, NaNs
 * included (rotary_rotate_pair is the reference). The inverse rotation is the same kernel with sin negated.
 * Elements [rotary_dim, head_dim) are copied bit for bit when out != in and left alone when out == in.
 * in and out may start at any byte address (no alignment to the element size); cos and sin are float-aligned.
 * Kernels assume valid input (validated once at the API boundary): rotary_dim even and >= 2, head_dim >= rotary_dim,
 * every head row either identical to its input row (in place) or disjoint from every input row.
 * prefetch_bytes: how far ahead of each head row the SIMD kernels ask for memory (rotary_tuning.prefetch_bytes;
 * -1: no software prefetch); the scalar kernels ignore it. It changes speed only, never results.
 */
typedef void (*rotary_rotate_fn)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                 size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                 const float *sin, int prefetch_bytes);

/* Instruction sets a kernel may need, in order of preference within an architecture. */
typedef enum rotary_isa {
  ROTARY_ISA_SCALAR = 0,
  ROTARY_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
  ROTARY_ISA_AVX512 = 2, /* AVX-512 F, BW, VL */
  ROTARY_ISA_AVX512BF16 = 3, /* AVX-512 plus AVX512-DQ and AVX512-BF16 (bf16 kernels only) */
  ROTARY_ISA_NEON = 4         /* aarch64 Advanced SIMD: last, outside the x86 order */
} rotary_isa;

/* "scalar", "avx2", "avx512", "neon", "avx512bf16". */
const char *rotary_isa_name(rotary_isa isa);

typedef struct rotary_kernel {
  const char *name;        /* rotary_<dtype>_rotate_<pairing>__<isa> */
  rotary_dtype dtype;
  rotary_pairing pairing;
  rotary_isa isa;
  rotary_rotate_fn fn;
  int nt;                  /* non-temporal stores (name ends in _nt): chosen only by rotary_kernel_select_nt */
} rotary_kernel;

/* One declaration per kernel of the list. */
#define ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                                  \
  void rotary_##dtype##_rotate_##pairing##__##isa(const void *in, ptrdiff_t in_stride, void *out,               \
                                                  ptrdiff_t out_stride, size_t n_heads, size_t head_dim,        \
                                                  size_t rotary_dim, const float *cos, const float *sin,        \
                                                  int prefetch_bytes);
#define ROTARY_KERNEL_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                               \
  void rotary_##dtype##_rotate_##pairing##__##isa##_nt(const void *in, ptrdiff_t in_stride, void *out,          \
                                                       ptrdiff_t out_stride, size_t n_heads, size_t head_dim,   \
                                                       size_t rotary_dim, const float *cos, const float *sin,   \
                                                       int prefetch_bytes);
#include "kernel_list.h"
#undef ROTARY_KERNEL
#undef ROTARY_KERNEL_NT

/* Every compiled kernel, usable on this CPU or not (tests run each one that is). */
extern const rotary_kernel rotary_kernel_list[];
extern const size_t rotary_kernel_count;

/* The one registry of every compiled kernel, keyed by operation x dtype x variant x ISA: the rotation kernels
 * (kernel_list.h), the cos/sin rows kernels (rows_list.h, sincos.h) and the conversion kernels (convert_list.h,
 * convert_kernels.h). Tests check that every name is unique and found again; `rotary info` lists them. Dispatch
 * keeps its typed functions (rotary_kernel_select, rotary_rows_select, rotary_convert_select). */
typedef enum rotary_kernel_op {
  ROTARY_OP_ROTATE = 0,      /* rotary_<dtype>_rotate_<pairing>__<isa>: rotary_rotate_fn */
  ROTARY_OP_ROTATE_NT = 1,   /* rotary_<dtype>_rotate_<pairing>__<isa>_nt: the same with non-temporal stores */
  ROTARY_OP_SINCOS_ROWS = 2, /* rotary_sincos_rows__<isa>: rotary_rows_fn (sincos.h) */
  ROTARY_OP_CONVERT = 3,     /* rotary_<from>_to_<to>_convert__<isa>: rotary_convert_fn (convert_kernels.h) */
  ROTARY_OP_ATTN_SCORES = 4, /* rotary_attn_<dtype>_scores__<isa>: rotary_attn_scores_fn (attn_kernels.h) */
  ROTARY_OP_ATTN_VALUES = 5, /* rotary_attn_<dtype>_values__<isa>: rotary_attn_values_fn (attn_kernels.h) */
  ROTARY_OP_ATTN_EXP = 6,    /* rotary_attn_exp__<isa>: rotary_attn_exp_fn (attn_kernels.h) */
  ROTARY_OP_ATTN_SCORES_ROT = 7, /* rotary_attn_<dtype>_scores_<pairing>__<isa>: rotary_attn_scores_rot_fn */
  ROTARY_OP_ATTN_SCORES_DOT = 8, /* rotary_attn_<dtype>_scores_dot__<isa>: rotary_attn_scores_fn, precision BF16 */
  ROTARY_OP_ATTN_VALUES_DOT = 9, /* rotary_attn_<dtype>_values_dot__<isa>: rotary_attn_values_fn, precision BF16 */
  ROTARY_OP_COPY_NT = 10,        /* rotary_copy_nt__<isa>: rotary_copy_fn (copy_kernels.h) */
  ROTARY_OP_ROTATE_FP8 = 11,     /* rotary_<dtype>_rotate_<pairing>_to_fp8__<isa>: rotary_rotate_fp8_fn
                                    (rotate_fp8_kernels.h) */
  ROTARY_OP_CONVERT_NT = 12,     /* rotary_<from>_to_<to>_convert__<isa>_nt: rotary_convert_fn, streaming stores */
  ROTARY_OP_ROTATE_FP8_NT = 13   /* rotary_<dtype>_rotate_<pairing>_to_fp8__<isa>_nt: rotary_rotate_fp8_fn, the same */
} rotary_kernel_op;

/* "rotate", "rotate_nt", "sincos_rows", "convert", "attn_scores", "attn_values", "attn_exp", "attn_scores_rot",
 * "attn_scores_dot", "attn_values_dot", "copy_nt", "rotate_fp8", "convert_nt", "rotate_fp8_nt". */
const char *rotary_kernel_op_name(rotary_kernel_op op);

/* A kernel's function, typed by its operation (the members' types are those of rotary_rows_fn,
 * rotary_convert_fn, the rotary_attn_*_fn, rotary_copy_fn and rotary_rotate_fp8_fn, spelled out here because those
 * headers include this one). */
struct rotary_attn_prefetch; /* attn_kernels.h */
typedef union rotary_kernel_fn {
  rotary_rotate_fn rotate; /* ROTATE, ROTATE_NT */
  void (*sincos_rows)(const double *inv_freq, size_t half, double scaling, int64_t pos, float *cos, float *sin);
  void (*convert)(const void *in, void *out, size_t n, float scale); /* CONVERT, CONVERT_NT */
  void (*attn_scores)(const float *q, size_t rows, size_t head_dim, const void *k, ptrdiff_t k_row_stride, size_t n,
                      float k_scale, float *s, size_t s_stride, struct rotary_attn_prefetch *pf);
  void (*attn_values)(const float *p, size_t p_stride, size_t rows, size_t head_dim, const void *v,
                      ptrdiff_t v_row_stride, size_t n, float v_scale, float *o, struct rotary_attn_prefetch *pf);
  float (*attn_exp)(float *s, size_t n, float max);
  void (*copy)(void *dst, const void *src, size_t bytes);
  void (*attn_scores_rot)(const float *q, size_t rows, size_t head_dim, const void *k, ptrdiff_t k_row_stride,
                          size_t n, float k_scale, const float *cs, size_t cs_stride, size_t sin_offset,
                          size_t rotary_dim, float *s, size_t s_stride, struct rotary_attn_prefetch *pf);
  void (*rotate_fp8)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads,
                     size_t head_dim, size_t rotary_dim, const float *cos, const float *sin,
                     float scale); /* ROTATE_FP8, ROTATE_FP8_NT */
} rotary_kernel_fn;

typedef struct rotary_kernel_info {
  const char *name;        /* the function's full name, as defined in src/ */
  rotary_kernel_op op;
  rotary_dtype dtype;      /* rotate: the tensors'; convert, rotate_fp8: the input's; attn scores/values: the
                              cache's; sincos rows, attn exp: ROTARY_F32 (the rows'); copy: ROTARY_F32 (bytes) */
  rotary_dtype out_dtype;  /* convert: the output's; rotate_fp8: ROTARY_FP8_E4M3; attn scores/values: ROTARY_F32;
                              others: dtype */
  const char *variant;     /* rotate, rotate_fp8: "half" or "interleaved"; convert: "to_<dtype>"; attn dot: "dot";
                              sincos rows, other attn, copy: "" */
  rotary_isa isa;
  rotary_kernel_fn fn;
} rotary_kernel_info;

extern const rotary_kernel_info rotary_kernel_registry[];
extern const size_t rotary_kernel_registry_count;

/* The registry entry named `name`, or NULL. */
const rotary_kernel_info *rotary_kernel_find(const char *name);

/* Nonzero when this CPU and OS can run code of that ISA (whatever ROTARY_ISA says). */
int rotary_isa_supported(rotary_isa isa);

/* Nonzero when dispatch may pick that ISA: supported, and not excluded by the environment variable ROTARY_ISA
 * (scalar, avx2, avx512, avx512bf16 or neon: the best ISA dispatch may use; read once per process). */
int rotary_isa_enabled(rotary_isa isa);

/* Runs a rotation kernel with the prefetch distance its plan chose (rotate_plan.h: the call's prefetch_bytes
 * setting, or one token's step for rows that do not follow one another). Operations call kernels only through
 * this, so that the way plans reach kernels can change in one place. */
static inline void rotary_rotate_run(const rotary_kernel *k, int prefetch_bytes, const void *in, ptrdiff_t in_stride,
                                     void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim,
                                     size_t rotary_dim, const float *cos, const float *sin) {
  k->fn(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, prefetch_bytes);
}

/* Non-temporal stores are weakly ordered: the `_nt` rotation kernels and the streaming copy (copy_kernels.h) leave
 * them pending and do not fence, since a fence per call (per token, in the executors' walks) made the core wait for
 * each token's stores to reach memory before it went on (kv-write prefill, bf16, 2048 tokens: 0.79-0.80x the time
 * without it, docs/kv_cache.md). A task that called them runs this once at its end, before it counts as done, so the
 * stores are visible to the thread that waits for it as ordinary stores would be. A no-op where nothing streams. */
static inline void rotary_stream_fence(void) {
#if defined(__x86_64__) || defined(__i386__)
  /* SFENCE itself (an i386 build without -msse has no builtin for it; a CPU that runs the _nt kernels has SSE) */
  __asm__ __volatile__("sfence" ::: "memory");
#endif
}

/* The best enabled kernel for a dtype and pairing on this CPU; NULL for an unknown dtype or pairing. */
const rotary_kernel *rotary_kernel_select(rotary_dtype dtype, rotary_pairing pairing);

/* The non-temporal-store variant of the kernel rotary_kernel_select picks, or NULL when it has none. */
const rotary_kernel *rotary_kernel_select_nt(rotary_dtype dtype, rotary_pairing pairing);

#endif /* ROTARY_KERNELS_H */
