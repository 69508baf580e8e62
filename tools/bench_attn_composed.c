/* bench_attn_composed.c: the composed decode attention's three passes (QK^T, softmax, logits x V) in plain C,
 * compiled for the baseline ISA and for AVX2 (chosen at run time, as a framework builds its CPU kernels per ISA). */
#include <math.h>
#include <string.h>

#include "bench_attn_composed.h"
#include "bench_dtype.h"

#define TILE 8192 /* floats of decoded rows per tile (32 KiB): head_dim up to BENCH_ATTN_COMPOSED_MAX_DIM */

/* First item of task index among count (an even split). */
static size_t split(size_t n, size_t index, size_t count) {
  const size_t base = n / count, extra = n % count;
  return index * base + (index < extra ? index : extra);
}

/* e4m3 (s eeee mmm, bias 7, S.1111.111 NaN) to fp32 without branches or a table (loops over it vectorize):
 * normal numbers rebiased in the integer bits, subnormals m * 2^-9 (exact). */
static inline float fp8_to_f32(uint8_t byte) {
  const uint32_t mag = byte & 0x7fu;
  const uint32_t normal = (mag << 20) + (120u << 23);
  const uint32_t sub = bench_bits((float)(int)(mag & 7u) * 0x1p-9f);
  const uint32_t r = bench_select(mag == 0x7fu, 0x7fc00000u, bench_select(mag < 8u, sub, normal));
  return bench_float(r | (uint32_t)(byte & 0x80u) << 24);
}

/* Element offset of row p of sequence b, kv head h. */
static size_t row_at(const bench_attn_composed *c, size_t b, size_t p, size_t h) {
  const size_t block = c->block_table ? (size_t)c->block_table[b * c->block_table_stride + p / c->block_size] : b;
  const size_t row = c->block_table ? p % c->block_size : p;
  return block * c->block_stride + (c->hnd ? h * c->block_size + row : row * c->kv_heads + h) * c->head_dim;
}

/* The key rotated at its row as rotary_apply rotates (half pairing): fmaf(x0, c, -(x1 * s)), fmaf(x0, s, x1 * c). */
static void rotate_key(const bench_attn_composed *c, size_t p, float *k) {
  const size_t half = c->head_dim / 2;
  const float *cs = c->key_cos + p * half, *sn = c->key_sin + p * half;
  for (size_t i = 0; i < half; i++) {
    const float x0 = k[i], x1 = k[half + i];
    k[i] = fmaf(x0, cs[i], -(x1 * sn[i]));
    k[half + i] = fmaf(x0, sn[i], x1 * cs[i]);
  }
}

#define AC_NAME(op) op##__generic
#define AC_TARGET
#include "bench_attn_composed_passes.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define ATTN_COMPOSED_AVX2 1
#define AC_NAME(op) op##__avx2
#define AC_TARGET __attribute__((target("avx2")))
#include "bench_attn_composed_passes.h"
#endif

#ifdef ATTN_COMPOSED_AVX2
static int use_avx2(void) { return __builtin_cpu_supports("avx2"); }
#endif

void bench_attn_composed_scores(void *arg, size_t index, size_t count) {
#ifdef ATTN_COMPOSED_AVX2
  if (use_avx2()) {
    scores__avx2(arg, index, count);
    return;
  }
#endif
  scores__generic(arg, index, count);
}

void bench_attn_composed_softmax(void *arg, size_t index, size_t count) {
#ifdef ATTN_COMPOSED_AVX2
  if (use_avx2()) {
    softmax__avx2(arg, index, count);
    return;
  }
#endif
  softmax__generic(arg, index, count);
}

void bench_attn_composed_values(void *arg, size_t index, size_t count) {
#ifdef ATTN_COMPOSED_AVX2
  if (use_avx2()) {
    values__avx2(arg, index, count);
    return;
  }
#endif
  values__generic(arg, index, count);
}
