/* generic/rotate_template.h: the portable rotation kernels, instantiated once per dtype by rotate_scalar.c. */
/*
 * Expects, defined by the includer:
 *   ROTARY_T          storage type of one element
 *   ROTARY_LOAD(v)    element -> float (exact)
 *   ROTARY_STORE(f)   float -> element (round to nearest even)
 *   ROTARY_FN(name)   the kernel's function name for pairing `name` (half, interleaved)
 * The arithmetic is written out with explicit fmaf so that SIMD kernels can match it bit for bit:
 *   y0 = fmaf(x0, c, -(x1 * s)),  y1 = fmaf(x0, s, x1 * c)
 */

void ROTARY_FN(half)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads,
                            size_t head_dim, size_t rotary_dim, const float *cos, const float *sin) {
  const size_t half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const ROTARY_T *x = (const ROTARY_T *)in + (ptrdiff_t)h * in_stride;
    ROTARY_T *y = (ROTARY_T *)out + (ptrdiff_t)h * out_stride;
    for (size_t i = 0; i < half; i++) {
      const float x0 = ROTARY_LOAD(x[i]), x1 = ROTARY_LOAD(x[i + half]);
      const float c = cos[i], s = sin[i];
      y[i] = ROTARY_STORE(fmaf(x0, c, -(x1 * s)));
      y[i + half] = ROTARY_STORE(fmaf(x0, s, x1 * c));
    }
    if (y != x && head_dim > rotary_dim)
      memcpy(y + rotary_dim, x + rotary_dim, (head_dim - rotary_dim) * sizeof(ROTARY_T));
  }
}

void ROTARY_FN(interleaved)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                   size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                   const float *sin) {
  const size_t half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const ROTARY_T *x = (const ROTARY_T *)in + (ptrdiff_t)h * in_stride;
    ROTARY_T *y = (ROTARY_T *)out + (ptrdiff_t)h * out_stride;
    for (size_t i = 0; i < half; i++) {
      const float x0 = ROTARY_LOAD(x[2 * i]), x1 = ROTARY_LOAD(x[2 * i + 1]);
      const float c = cos[i], s = sin[i];
      y[2 * i] = ROTARY_STORE(fmaf(x0, c, -(x1 * s)));
      y[2 * i + 1] = ROTARY_STORE(fmaf(x0, s, x1 * c));
    }
    if (y != x && head_dim > rotary_dim)
      memcpy(y + rotary_dim, x + rotary_dim, (head_dim - rotary_dim) * sizeof(ROTARY_T));
  }
}

#undef ROTARY_T
#undef ROTARY_LOAD
#undef ROTARY_STORE
#undef ROTARY_FN
