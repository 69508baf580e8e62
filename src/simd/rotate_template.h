/* simd/rotate_template.h: the SIMD rotation kernels, one body instantiated per ISA (x86/isa_*.h, arm/isa_*.h) and dtype. */
/*
 * Expects an ISA vocabulary (x86/isa_avx2.h, x86/isa_avx512.h, arm/isa_neon.h) and, per dtype:
 *   RT_T            element type               RT_NAME(pairing)  the kernel's function name
 *   RT_VLOAD(p)     ROTARY_W elements -> rv_f32  RT_VSTORE(p, v)   rv_f32 -> ROTARY_W elements
 *   RT_SLOAD(e)     one element -> float         RT_SSTORE(f)      float -> one element
 * Every lane computes y0 = fma(x0, c, -(x1 * s)) and y1 = fma(x0, s, x1 * c), the scalar kernels' arithmetic, so
 * results are bit-identical to them; tails use the same formula one pair at a time.
 */

#ifndef RT_PREFETCH_BYTES
/* Each head row asks for the memory this far ahead of it (about four 128-dim f32 heads): the hardware prefetchers
 * alone leave a single core short of the streaming rate (measured: 1 thread went from about 95% to 120-130% of a plain
 * in-place streaming pass on the article's shape). A prefetch never faults, so running past the buffer is harmless. */
#define RT_PREFETCH_BYTES 2048

static inline void rt_prefetch_row(const void *row, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch((const char *)row + RT_PREFETCH_BYTES + l, 1, 3);
}
#endif

#ifndef RT_CHUNK
/* Interleaved rows are processed in chunks of this many dims: the chunk's cos/sin, rearranged for the lanes, stay
 * in L1 (2 x 1 KiB) while every head of the token uses them. */
#define RT_CHUNK 256
#endif

ROTARY_TARGET void RT_NAME(half)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                 size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                 const float *sin) {
  const size_t half = rotary_dim / 2;
  const size_t vend = half - half % ROTARY_W;
  for (size_t h = 0; h < n_heads; h++) {
    const RT_T *x = (const RT_T *)in + (ptrdiff_t)h * in_stride;
    RT_T *y = (RT_T *)out + (ptrdiff_t)h * out_stride;
    rt_prefetch_row(x, head_dim * sizeof(RT_T));
    size_t i = 0;
    for (; i < vend; i += ROTARY_W) {
      const rv_f32 c = rv_loadu(cos + i), s = rv_loadu(sin + i);
      const rv_f32 x0 = RT_VLOAD(x + i), x1 = RT_VLOAD(x + half + i);
      const rv_f32 y0 = rv_fmsub(x0, c, rv_mul(x1, s));
      const rv_f32 y1 = rv_fmadd(x0, s, rv_mul(x1, c));
      RT_VSTORE(y + i, y0);
      RT_VSTORE(y + half + i, y1);
    }
    for (; i < half; i++) {
      const float x0 = RT_SLOAD(x[i]), x1 = RT_SLOAD(x[i + half]);
      y[i] = RT_SSTORE(fmaf(x0, cos[i], -(x1 * sin[i])));
      y[i + half] = RT_SSTORE(fmaf(x0, sin[i], x1 * cos[i]));
    }
    if (y != x && head_dim > rotary_dim) memcpy(y + rotary_dim, x + rotary_dim, (head_dim - rotary_dim) * sizeof(RT_T));
  }
}

ROTARY_TARGET void RT_NAME(interleaved)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                        size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                        const float *sin) {
  /* Lanes hold [x0 x1 x0' x1' ...]; with a = even lanes duplicated, b = odd lanes duplicated,
   * B = [c s c' s' ...] and D = [-s c -s' c' ...], fma(a, B, b * D) is exactly the scalar pair formula. */
  float B[RT_CHUNK] __attribute__((aligned(64))), D[RT_CHUNK] __attribute__((aligned(64)));
  for (size_t d0 = 0; d0 < rotary_dim; d0 += RT_CHUNK) {
    const size_t n = rotary_dim - d0 < RT_CHUNK ? rotary_dim - d0 : RT_CHUNK;
    const size_t vend = n - n % ROTARY_W;
    for (size_t j = 0; j < n / 2; j++) {
      const float c = cos[d0 / 2 + j], s = sin[d0 / 2 + j];
      B[2 * j] = c;
      B[2 * j + 1] = s;
      D[2 * j] = -s;
      D[2 * j + 1] = c;
    }
    for (size_t h = 0; h < n_heads; h++) {
      const RT_T *x = (const RT_T *)in + (ptrdiff_t)h * in_stride + d0;
      RT_T *y = (RT_T *)out + (ptrdiff_t)h * out_stride + d0;
      rt_prefetch_row(x, n * sizeof(RT_T));
      size_t i = 0;
      for (; i < vend; i += ROTARY_W) {
        const rv_f32 v = RT_VLOAD(x + i);
        RT_VSTORE(y + i, rv_fmadd(rv_dup_even(v), rv_loadu(B + i), rv_mul(rv_dup_odd(v), rv_loadu(D + i))));
      }
      for (; i < n; i += 2) {
        const float x0 = RT_SLOAD(x[i]), x1 = RT_SLOAD(x[i + 1]), c = B[i], s = B[i + 1];
        y[i] = RT_SSTORE(fmaf(x0, c, -(x1 * s)));
        y[i + 1] = RT_SSTORE(fmaf(x0, s, x1 * c));
      }
    }
  }
  if (head_dim > rotary_dim && out != in) {
    for (size_t h = 0; h < n_heads; h++) {
      const RT_T *x = (const RT_T *)in + (ptrdiff_t)h * in_stride;
      RT_T *y = (RT_T *)out + (ptrdiff_t)h * out_stride;
      memcpy(y + rotary_dim, x + rotary_dim, (head_dim - rotary_dim) * sizeof(RT_T));
    }
  }
}

#undef RT_T
#undef RT_NAME
#undef RT_VLOAD
#undef RT_VSTORE
#undef RT_SLOAD
#undef RT_SSTORE
