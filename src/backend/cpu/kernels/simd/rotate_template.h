/* simd/rotate_template.h: the SIMD rotation kernels, one body instantiated per ISA (x86/isa_*.h, arm/isa_*.h) and dtype. */
/*
 * Expects an ISA vocabulary (x86/isa_avx2.h, x86/isa_avx512.h, arm/isa_neon.h) and, per dtype:
 *   RT_T            element type                  RT_NAME(pairing)   the kernel's function name
 *   RT_VLOAD(p)     ROTARY_W elements -> rv_f32    RT_VSTORE(p, v)    rv_f32 -> ROTARY_W elements
 *   RT_SLOAD(e)     one element -> float           RT_SSTORE(f)       float -> one element
 * and optionally, for a dtype whose conversions are cheaper two vectors at a time in a lane order of their own:
 *   RT_VLOAD2(p, lo, hi), RT_VSTORE2(p, lo, hi)   2 * ROTARY_W elements <-> two vectors
 *   RT_SLOT(j)      the lane (0 .. 2W-1 over lo then hi) that element j of such a block lands in
 *   RT_ARRANGE2(dst, src)  optional: places one block of 2W floats in that order (else a loop over RT_SLOT)
 *   RT_VSTORE2X2(p, lo, hi, q, lo2, hi2)  optional: two RT_VSTORE2 at once (shares work such as a NaN test)
 * and optionally, for a dtype whose interleaved pairs split into two vectors cheaply (bf16: a pair is one word):
 *   RT_PLOAD(p, a, b), RT_PSTORE(p, a, b)   2 * ROTARY_W elements <-> the first (a) and second (b) elements of
 *                                           ROTARY_W pairs; the interleaved kernel then uses the cos/sin rows as
 *                                           they are, like the half pairing
 * and optionally, for a dtype whose ISA has non-temporal stores (rv_store_nt):
 *   RT_VSTORE_NT(p, v)  as RT_VSTORE, with a non-temporal store   RT_NAME_NT(pairing)  the name of those kernels
 *   (a two-byte dtype with RT_VSTORE2 or RT_PSTORE streams those blocks through a buffer: RT_STREAM_BLOCK)
 * The _nt kernels (for outputs far larger than the caches, out of place) store every full vector that way and leave
 * the store fence to the task that calls them (rotary_stream_fence, kernels.h); their results are the same bits.
 * Every lane computes y0 = fma(x0, c, -(x1 * s)) and y1 = fma(x0, s, x1 * c), the scalar kernels' arithmetic, and
 * a NaN result takes the NaN of rotary_pair_nan (convert.h) instead of whichever NaN the hardware propagated (one
 * test per few vectors, rv_any_nan4; the fix-up is out of line), so results are bit-identical to the scalar
 * kernels, NaNs included; tails use rotary_rotate_pair one pair at a time. Tensors may start at any byte: vector
 * loads and stores are unaligned ones and single elements move through memcpy (RT_NAME(sld), RT_NAME(sst)); the
 * cos/sin rows are float-aligned (apply copies a caller's unaligned rows). The cos/sin values of a token are
 * arranged once per call in the lanes' order (chunks of RT_CHUNK dims, kept in L1) and reused by every head.
 * They are never written during a call (the API checks that no output overlaps them), so they are passed as
 * restrict: the compiler then keeps them in registers across heads instead of reloading them after every store
 * (a quarter of an f32 kernel's time with data in cache).
 */

#ifndef RT_TEMPLATE_ONCE
#define RT_TEMPLATE_ONCE
#include "pair_nan_fix.h"

/* Each head row asks for the memory `ahead` bytes ahead of it (the kernel's prefetch_bytes argument, from the call's
 * settings: the distance that pays differs between CPUs, prefetch.h). A prefetch never faults, so running past the
 * buffer is harmless. */
/* Dims per chunk of arranged cos/sin: 2 x 1 KiB of floats. */
#define RT_CHUNK 256

/* Input ahead of the current row (read), and the output too when it is elsewhere (write), unless the kernel stores
 * non-temporally (nt): fetching the output line would cost the read those stores avoid. */
/* Always inlined: otherwise GCC 12 dropped every prefetch once the distance came in as an argument (measured: no
 * prefetch instruction left in any SIMD kernel). */
__attribute__((always_inline)) static inline void rt_prefetch_rows(const void *in_row, const void *out_row,
                                                                   size_t bytes, int nt, int ahead) {
  if (ahead < 0) return;
  for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch((const char *)in_row + ahead + l, 0, 3);
  if (out_row != in_row && !nt)
    for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch((const char *)out_row + ahead + l, 1, 3);
}

#endif

#ifdef RT_VSTORE_NT
#define RT_HAS_NT 1
#else
#define RT_HAS_NT 0
#define RT_VSTORE_NT(p, v) RT_VSTORE((p), (v))
#endif
#define RT_PUT(nt, p, v) ((nt) ? RT_VSTORE_NT((p), (v)) : RT_VSTORE((p), (v)))

/* The kernels of one pairing, around its always-inlined body: ordinary stores, and where the dtype and ISA have
 * them (RT_HAS_NT) the _nt kernel: non-temporal stores, left unfenced (rotary_stream_fence, kernels.h). */
#define RT_ENTRY(name, pairing, nt)                                                                              \
  ROTARY_TARGET void name(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, \
                          size_t head_dim, size_t rotary_dim, const float *cos, const float *sin, int ahead) {  \
    RT_NAME(pairing##_body)(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, nt, ahead); \
  }
#if RT_HAS_NT
#define RT_ENTRIES(pairing) RT_ENTRY(RT_NAME(pairing), pairing, 0) RT_ENTRY(RT_NAME_NT(pairing), pairing, 1)
#else
#define RT_ENTRIES(pairing) RT_ENTRY(RT_NAME(pairing), pairing, 0)
#endif

#ifdef RT_VLOAD2
#define RT_ARRANGED 1
#else
#define RT_ARRANGED 0
#define RT_VLOAD2(p, lo, hi) ((lo) = RT_VLOAD(p), (hi) = RT_VLOAD((p) + ROTARY_W))
#define RT_VSTORE2(p, lo, hi) (RT_VSTORE((p), (lo)), RT_VSTORE((p) + ROTARY_W, (hi)))
#define RT_SLOT(j) (j)
#endif
#ifndef RT_VSTORE2X2
#define RT_VSTORE2X2(p, lo, hi, q, lo2, hi2) (RT_VSTORE2((p), (lo), (hi)), RT_VSTORE2((q), (lo2), (hi2)))
#endif
#ifndef RT_ARRANGE2
#define RT_ARRANGE2(dst, src)                                                   \
  do {                                                                          \
    for (size_t j_ = 0; j_ < 2 * ROTARY_W; j_++) (dst)[RT_SLOT(j_)] = (src)[j_]; \
  } while (0)
#endif

/* The _nt kernels of a dtype whose vectors convert two at a time in a lane order of its own (RT_VSTORE2, RT_PSTORE:
 * bf16) put each converted block of 2W two-byte elements, in memory order, into an L1 buffer and stream it from
 * there as one float vector (a bit move): the conversions stay as they are, one vector load is added per streamed
 * vector. */
#if RT_HAS_NT
#define RT_STREAM_BLOCK(p, buf)                                                                          \
  do {                                                                                                   \
    _Static_assert(sizeof(RT_T) == 2, "a block of 2W elements is one float vector");                     \
    rv_store_nt((float *)(void *)(p), rv_loadu((const float *)(const void *)(buf)));                     \
  } while (0)
#endif

/* dst[k] for k < n: src values placed in the lane order of whole 2W blocks; the tail keeps its order. */
ROTARY_TARGET static inline void RT_NAME(arrange)(float *dst, const float *src, size_t n) {
  const size_t full = n - n % (2 * ROTARY_W);
  for (size_t b = 0; b < full; b += 2 * ROTARY_W) RT_ARRANGE2(dst + b, src + b);
  for (size_t k = full; k < n; k++) dst[k] = src[k];
}

/* One element at any byte address, through memcpy (one plain load or store). */
ROTARY_TARGET static inline float RT_NAME(sld)(const RT_T *p) {
  RT_T e;
  memcpy(&e, p, sizeof e);
  return RT_SLOAD(e);
}
ROTARY_TARGET static inline void RT_NAME(sst)(RT_T *p, float f) {
  const RT_T e = RT_SSTORE(f);
  memcpy(p, &e, sizeof e);
}

/* One pair of tail elements at x[i0], x[i1] -> y[i0], y[i1]: the scalar kernels' rotary_rotate_pair. */
ROTARY_TARGET static inline void RT_NAME(pair)(const RT_T *x, RT_T *y, size_t i0, size_t i1, float c, float s) {
  float y0, y1;
  rotary_rotate_pair(RT_NAME(sld)(x + i0), RT_NAME(sld)(x + i1), c, s, &y0, &y1);
  RT_NAME(sst)(y + i0, y0);
  RT_NAME(sst)(y + i1, y1);
}

/* Out of place, the dims past rotary_dim pass through bit for bit. */
ROTARY_TARGET static inline void RT_NAME(copy_rest)(const RT_T *x, ptrdiff_t in_stride, RT_T *y, ptrdiff_t out_stride,
                                                    size_t n_heads, size_t head_dim, size_t rotary_dim) {
  if (head_dim == rotary_dim || x == y) return;
  for (size_t h = 0; h < n_heads; h++)
    memcpy(y + (ptrdiff_t)h * out_stride + rotary_dim, x + (ptrdiff_t)h * in_stride + rotary_dim,
           (head_dim - rotary_dim) * sizeof(RT_T));
}

/* Rotates the pairs [i0, i0 + n) of every head (half pairing); c and s are that range's cos/sin in lane order.
 * Always inlined, so a constant half (and n) turns the loops into straight code: see RT_NAME(half). */
__attribute__((always_inline)) ROTARY_TARGET static inline void RT_NAME(half_heads)(
    const RT_T *in, ptrdiff_t in_stride, RT_T *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim,
    size_t half, size_t i0, size_t n, const float *restrict c, const float *restrict s, const int nt,
    const int ahead) {
  const size_t vend = n - n % (2 * ROTARY_W);
  /* The vector part of the rows, loaded once for every head (n <= RT_CHUNK / 2): registers when n is constant. */
  rv_f32 cv[RT_CHUNK / 2 / ROTARY_W], sv[RT_CHUNK / 2 / ROTARY_W];
  for (size_t j = 0; j < vend / ROTARY_W; j++) {
    cv[j] = rv_loadu(c + j * ROTARY_W);
    sv[j] = rv_loadu(s + j * ROTARY_W);
  }
  for (size_t h = 0; h < n_heads; h++) {
    const RT_T *x = in + (ptrdiff_t)h * in_stride + i0;
    RT_T *y = out + (ptrdiff_t)h * out_stride + i0;
    if (i0 == 0) rt_prefetch_rows(x, y, head_dim * sizeof(RT_T), nt, ahead);
    size_t i = 0;
#pragma GCC unroll 4 /* whole for the common head dims: the hoisted rows then stay in registers */
    for (; i < vend; i += 2 * ROTARY_W) {
      rv_f32 a0, a1, b0, b1;
      RT_VLOAD2(x + i, a0, a1);
      RT_VLOAD2(x + half + i, b0, b1);
      const rv_f32 c0 = cv[i / ROTARY_W], c1 = cv[i / ROTARY_W + 1];
      const rv_f32 s0 = sv[i / ROTARY_W], s1 = sv[i / ROTARY_W + 1];
      rv_f32 y00 = rv_fmsub(a0, c0, rv_mul(b0, s0)), y01 = rv_fmsub(a1, c1, rv_mul(b1, s1));
      rv_f32 y10 = rv_fmadd(a0, s0, rv_mul(b0, c0)), y11 = rv_fmadd(a1, s1, rv_mul(b1, c1));
      if (__builtin_expect(rv_any_nan4(y00, y01, y10, y11), 0)) {
        y00 = rv_pair_nan_fix(a0, b0, y00), y10 = rv_pair_nan_fix(a0, b0, y10);
        y01 = rv_pair_nan_fix(a1, b1, y01), y11 = rv_pair_nan_fix(a1, b1, y11);
      }
      if (RT_HAS_NT && nt) {
#if RT_ARRANGED && RT_HAS_NT
        RT_T buf[4 * ROTARY_W] __attribute__((aligned(64)));
        RT_VSTORE2X2(buf, y00, y01, buf + 2 * ROTARY_W, y10, y11);
        RT_STREAM_BLOCK(y + i, buf);
        RT_STREAM_BLOCK(y + half + i, buf + 2 * ROTARY_W);
#else
        RT_VSTORE_NT(y + i, y00);
        RT_VSTORE_NT(y + i + ROTARY_W, y01);
        RT_VSTORE_NT(y + half + i, y10);
        RT_VSTORE_NT(y + half + i + ROTARY_W, y11);
#endif
      } else {
        RT_VSTORE2X2(y + i, y00, y01, y + half + i, y10, y11);
      }
    }
    for (; !RT_ARRANGED && i + ROTARY_W <= n; i += ROTARY_W) {
      const rv_f32 c0 = rv_loadu(c + i), s0 = rv_loadu(s + i);
      const rv_f32 a = RT_VLOAD(x + i), b = RT_VLOAD(x + half + i);
      rv_f32 y0 = rv_fmsub(a, c0, rv_mul(b, s0)), y1 = rv_fmadd(a, s0, rv_mul(b, c0));
      if (__builtin_expect(rv_any_nan4(y0, y1, y0, y1), 0))
        y0 = rv_pair_nan_fix(a, b, y0), y1 = rv_pair_nan_fix(a, b, y1);
      RT_PUT(nt, y + i, y0);
      RT_PUT(nt, y + half + i, y1);
    }
    for (; i < n; i++) RT_NAME(pair)(x, y, i, i + half, c[i], s[i]);
  }
}

__attribute__((always_inline)) ROTARY_TARGET static inline void RT_NAME(half_body)(
    const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim,
    size_t rotary_dim, const float *cos, const float *sin, const int nt, const int ahead) {
  const size_t half = rotary_dim / 2;
  const RT_T *x = (const RT_T *)in;
  RT_T *y = (RT_T *)out;
  float C[RT_CHUNK / 2] __attribute__((aligned(64))), S[RT_CHUNK / 2] __attribute__((aligned(64)));
  for (size_t i0 = 0; i0 < half; i0 += RT_CHUNK / 2) {
    const size_t n = half - i0 < RT_CHUNK / 2 ? half - i0 : RT_CHUNK / 2;
    const float *c = cos + i0, *s = sin + i0;
    if (RT_ARRANGED) {
      RT_NAME(arrange)(C, c, n);
      RT_NAME(arrange)(S, s, n);
      c = C;
      s = S;
    }
    /* The common fully rotated head dims get loops with constant trip counts (a head of 128 f32 is only 2-4
     * vector steps, so the loop control of the general case was a large share of a decode call's work). */
    switch (half == n && head_dim == rotary_dim ? half : 0) {
      case 32: RT_NAME(half_heads)(x, in_stride, y, out_stride, n_heads, 64, 32, 0, 32, c, s, nt, ahead); break;
      case 48: RT_NAME(half_heads)(x, in_stride, y, out_stride, n_heads, 96, 48, 0, 48, c, s, nt, ahead); break;
      case 64: RT_NAME(half_heads)(x, in_stride, y, out_stride, n_heads, 128, 64, 0, 64, c, s, nt, ahead); break;
      case 128: RT_NAME(half_heads)(x, in_stride, y, out_stride, n_heads, 256, 128, 0, 128, c, s, nt, ahead); break;
      default: RT_NAME(half_heads)(x, in_stride, y, out_stride, n_heads, head_dim, half, i0, n, c, s, nt, ahead); break;
    }
  }
  RT_NAME(copy_rest)(x, in_stride, y, out_stride, n_heads, head_dim, rotary_dim);
}

RT_ENTRIES(half)

#ifdef RT_PLOAD
/* Rotates the first n dims of every head (interleaved pairing) with pairs split by RT_PLOAD; c and s are the
 * plain cos/sin rows. Always inlined, so a constant n becomes straight code. */
__attribute__((always_inline)) ROTARY_TARGET static inline void RT_NAME(pairs_heads)(
    const RT_T *in, ptrdiff_t in_stride, RT_T *out, ptrdiff_t out_stride, size_t n_heads, size_t n,
    const float *restrict c, const float *restrict s, const int nt, const int ahead) {
  const size_t vend = n - n % (2 * ROTARY_W);
  /* The vector part of the rows, loaded once for every head when short enough (registers when n is constant). */
  enum { HOIST = RT_CHUNK / 2 / ROTARY_W };
  const int hoist = vend / (2 * ROTARY_W) <= HOIST;
  rv_f32 cv[HOIST], sv[HOIST];
  for (size_t j = 0; hoist && j < vend / (2 * ROTARY_W); j++) {
    cv[j] = rv_loadu(c + j * ROTARY_W);
    sv[j] = rv_loadu(s + j * ROTARY_W);
  }
  for (size_t h = 0; h < n_heads; h++) {
    const RT_T *x = in + (ptrdiff_t)h * in_stride;
    RT_T *y = out + (ptrdiff_t)h * out_stride;
    rt_prefetch_rows(x, y, n * sizeof(RT_T), nt, ahead);
    size_t i = 0;
#pragma GCC unroll 8 /* whole for the common head dims: the hoisted rows then stay in registers */
    for (; i < vend; i += 2 * ROTARY_W) {
      rv_f32 a, b;
      RT_PLOAD(x + i, a, b);
      const size_t k = i / (2 * ROTARY_W);
      const rv_f32 c0 = hoist ? cv[k] : rv_loadu(c + i / 2), s0 = hoist ? sv[k] : rv_loadu(s + i / 2);
      rv_f32 y0 = rv_fmsub(a, c0, rv_mul(b, s0)), y1 = rv_fmadd(a, s0, rv_mul(b, c0));
      if (__builtin_expect(rv_any_nan4(y0, y1, y0, y1), 0))
        y0 = rv_pair_nan_fix(a, b, y0), y1 = rv_pair_nan_fix(a, b, y1);
#if RT_HAS_NT
      if (nt) {
        RT_T buf[2 * ROTARY_W] __attribute__((aligned(64)));
        RT_PSTORE(buf, y0, y1);
        RT_STREAM_BLOCK(y + i, buf);
        continue;
      }
#endif
      RT_PSTORE(y + i, y0, y1);
    }
    for (; i < n; i += 2) RT_NAME(pair)(x, y, i, i + 1, c[i / 2], s[i / 2]);
  }
}
#endif

/* Rotates dims [d0, d0 + n) of every head (interleaved pairing) with B and D of that range in lane order;
 * Bt holds B in plain order for the tail. Always inlined, so a constant n becomes straight code. */
__attribute__((always_inline)) ROTARY_TARGET static inline void RT_NAME(interleaved_heads)(
    const RT_T *in, ptrdiff_t in_stride, RT_T *out, ptrdiff_t out_stride, size_t n_heads, size_t d0, size_t n,
    const float *restrict B, const float *restrict D, const float *restrict Bt, const int nt, const int ahead) {
  const size_t vend = n - n % (2 * ROTARY_W);
  for (size_t h = 0; h < n_heads; h++) {
    const RT_T *x = in + (ptrdiff_t)h * in_stride + d0;
    RT_T *y = out + (ptrdiff_t)h * out_stride + d0;
    rt_prefetch_rows(x, y, n * sizeof(RT_T), nt, ahead);
    size_t i = 0;
    for (; i < vend; i += 2 * ROTARY_W) {
      rv_f32 v0, v1;
      RT_VLOAD2(x + i, v0, v1);
      rv_f32 y0 = rv_fmadd(rv_dup_even(v0), rv_loadu(B + i), rv_mul(rv_dup_odd(v0), rv_loadu(D + i)));
      rv_f32 y1 = rv_fmadd(rv_dup_even(v1), rv_loadu(B + i + ROTARY_W),
                           rv_mul(rv_dup_odd(v1), rv_loadu(D + i + ROTARY_W)));
      if (__builtin_expect(rv_any_nan4(y0, y1, y0, y1), 0)) {
        y0 = rv_pair_nan_fix(rv_dup_even(v0), rv_dup_odd(v0), y0);
        y1 = rv_pair_nan_fix(rv_dup_even(v1), rv_dup_odd(v1), y1);
      }
      if (RT_HAS_NT && nt) {
#if RT_ARRANGED && RT_HAS_NT
        RT_T buf[2 * ROTARY_W] __attribute__((aligned(64)));
        RT_VSTORE2(buf, y0, y1);
        RT_STREAM_BLOCK(y + i, buf);
#else
        RT_VSTORE_NT(y + i, y0);
        RT_VSTORE_NT(y + i + ROTARY_W, y1);
#endif
      } else {
        RT_VSTORE2(y + i, y0, y1);
      }
    }
    for (; !RT_ARRANGED && i + ROTARY_W <= n; i += ROTARY_W) {
      const rv_f32 v = RT_VLOAD(x + i);
      rv_f32 y0 = rv_fmadd(rv_dup_even(v), rv_loadu(B + i), rv_mul(rv_dup_odd(v), rv_loadu(D + i)));
      if (__builtin_expect(rv_any_nan4(y0, y0, y0, y0), 0)) y0 = rv_pair_nan_fix(rv_dup_even(v), rv_dup_odd(v), y0);
      RT_PUT(nt, y + i, y0);
    }
    for (; i < n; i += 2) RT_NAME(pair)(x, y, i, i + 1, Bt[i], Bt[i + 1]);
  }
}

__attribute__((always_inline)) ROTARY_TARGET static inline void RT_NAME(interleaved_body)(
    const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim,
    size_t rotary_dim, const float *cos, const float *sin, const int nt, const int ahead) {
  /* Lanes hold [x0 x1 x0' x1' ...]; with a = even lanes duplicated, b = odd lanes duplicated,
   * B = [c s c' s' ...] and D = [-s c -s' c' ...], fma(a, B, b * D) is exactly the scalar pair formula. The lane
   * orders of RT_VLOAD2 keep pairs adjacent, so the duplication works in them too. */
  const RT_T *x = (const RT_T *)in;
  RT_T *y = (RT_T *)out;
#ifdef RT_PLOAD
  switch (rotary_dim) { /* constant trip counts for the common head dims, as in the half pairing */
    case 64: RT_NAME(pairs_heads)(x, in_stride, y, out_stride, n_heads, 64, cos, sin, nt, ahead); break;
    case 96: RT_NAME(pairs_heads)(x, in_stride, y, out_stride, n_heads, 96, cos, sin, nt, ahead); break;
    case 128: RT_NAME(pairs_heads)(x, in_stride, y, out_stride, n_heads, 128, cos, sin, nt, ahead); break;
    case 256: RT_NAME(pairs_heads)(x, in_stride, y, out_stride, n_heads, 256, cos, sin, nt, ahead); break;
    default: RT_NAME(pairs_heads)(x, in_stride, y, out_stride, n_heads, rotary_dim, cos, sin, nt, ahead); break;
  }
  RT_NAME(copy_rest)(x, in_stride, y, out_stride, n_heads, head_dim, rotary_dim);
  return;
#endif
  /* Bt, Dt: plain order, built with vector zips (a scalar loop here was a tenth of an article-shape call);
   * B, D: the lane order of RT_VLOAD2, a copy only for dtypes that have one of their own. */
  float Bt[RT_CHUNK] __attribute__((aligned(64))), Dt[RT_CHUNK] __attribute__((aligned(64)));
#if RT_ARRANGED
  float B[RT_CHUNK] __attribute__((aligned(64))), D[RT_CHUNK] __attribute__((aligned(64)));
#else
  float *const B = Bt, *const D = Dt;
#endif
  for (size_t d0 = 0; d0 < rotary_dim; d0 += RT_CHUNK) {
    const size_t n = rotary_dim - d0 < RT_CHUNK ? rotary_dim - d0 : RT_CHUNK;
    const float *cs = cos + d0 / 2, *sn = sin + d0 / 2;
    size_t j = 0;
    for (; j + ROTARY_W <= n / 2; j += ROTARY_W) {
      const rv_f32 c = rv_loadu(cs + j), s = rv_loadu(sn + j), ns = rv_neg(s);
      rv_storeu(Bt + 2 * j, rv_zip_lo(c, s));
      rv_storeu(Bt + 2 * j + ROTARY_W, rv_zip_hi(c, s));
      rv_storeu(Dt + 2 * j, rv_zip_lo(ns, c));
      rv_storeu(Dt + 2 * j + ROTARY_W, rv_zip_hi(ns, c));
    }
    for (; j < n / 2; j++) {
      Bt[2 * j] = cs[j];
      Bt[2 * j + 1] = sn[j];
      Dt[2 * j] = -sn[j];
      Dt[2 * j + 1] = cs[j];
    }
#if RT_ARRANGED
    RT_NAME(arrange)(B, Bt, n);
    RT_NAME(arrange)(D, Dt, n);
#endif
    /* constant trip counts for the common head dims, as in the half pairing */
    switch (n == rotary_dim ? n : 0) {
      case 64: RT_NAME(interleaved_heads)(x, in_stride, y, out_stride, n_heads, 0, 64, B, D, Bt, nt, ahead); break;
      case 96: RT_NAME(interleaved_heads)(x, in_stride, y, out_stride, n_heads, 0, 96, B, D, Bt, nt, ahead); break;
      case 128: RT_NAME(interleaved_heads)(x, in_stride, y, out_stride, n_heads, 0, 128, B, D, Bt, nt, ahead); break;
      case 256: RT_NAME(interleaved_heads)(x, in_stride, y, out_stride, n_heads, 0, 256, B, D, Bt, nt, ahead); break;
      default: RT_NAME(interleaved_heads)(x, in_stride, y, out_stride, n_heads, d0, n, B, D, Bt, nt, ahead); break;
    }
  }
  RT_NAME(copy_rest)(x, in_stride, y, out_stride, n_heads, head_dim, rotary_dim);
}

RT_ENTRIES(interleaved)

#undef RT_ARRANGED
#undef RT_STREAM_BLOCK
#undef RT_HAS_NT
#undef RT_VSTORE_NT
#undef RT_PUT
#undef RT_ENTRY
#undef RT_ENTRIES
#undef RT_NAME_NT
#undef RT_VLOAD2
#undef RT_VSTORE2
#undef RT_SLOT
#undef RT_ARRANGE2
#undef RT_VSTORE2X2
#undef RT_PLOAD
#undef RT_PSTORE
#undef RT_T
#undef RT_NAME
#undef RT_VLOAD
#undef RT_VSTORE
#undef RT_SLOAD
#undef RT_SSTORE
