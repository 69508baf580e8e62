/* generic/rotate_scalar_template.h: the portable rotation kernels, instantiated once per dtype by rotate_scalar.c. */
/*
 * Expects, defined by the includer:
 *   ROTARY_T          storage type of one element
 *   ROTARY_LOAD(v)    element -> float (exact)
 *   ROTARY_STORE(f)   float -> element (round to nearest even)
 *   ROTARY_FN(name)   the kernel's function name for pairing `name` (half, interleaved); also names its helpers
 * The arithmetic is rotary_rotate_pair (convert.h), explicit fmaf and the NaN rule, so that SIMD kernels match it
 * bit for bit: y0 = fmaf(x0, c, -(x1 * s)), y1 = fmaf(x0, s, x1 * c).
 * Tensors may start at any byte (NumPy and torch views can): elements are addressed in bytes and moved with memcpy,
 * which compiles to one plain load or store, never an access the compiler may assume aligned.
 */

static inline float ROTARY_FN(ld)(const unsigned char *p) {
  ROTARY_T e;
  memcpy(&e, p, sizeof e);
  return ROTARY_LOAD(e);
}

static inline void ROTARY_FN(st)(unsigned char *p, float f) {
  const ROTARY_T e = ROTARY_STORE(f);
  memcpy(p, &e, sizeof e);
}

/* Rotates the pairs (a_i, b_i) = (first + i * step, first + i * step + gap) elements of every head, i < half. */
static inline void ROTARY_FN(heads)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                    size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                    const float *sin, size_t step, size_t gap) {
  const size_t es = sizeof(ROTARY_T), half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const unsigned char *x = (const unsigned char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)es;
    unsigned char *y = (unsigned char *)out + (ptrdiff_t)h * out_stride * (ptrdiff_t)es;
    for (size_t i = 0; i < half; i++) {
      const size_t a = i * step * es, b = a + gap * es;
      float y0, y1;
      rotary_rotate_pair(ROTARY_FN(ld)(x + a), ROTARY_FN(ld)(x + b), cos[i], sin[i], &y0, &y1);
      ROTARY_FN(st)(y + a, y0);
      ROTARY_FN(st)(y + b, y1);
    }
    if (y != x && head_dim > rotary_dim) memcpy(y + rotary_dim * es, x + rotary_dim * es, (head_dim - rotary_dim) * es);
  }
}

void ROTARY_FN(half)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads,
                     size_t head_dim, size_t rotary_dim, const float *cos, const float *sin, int prefetch_bytes) {
  (void)prefetch_bytes; /* no software prefetch in the portable kernels */
  ROTARY_FN(heads)(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, 1, rotary_dim / 2);
}

void ROTARY_FN(interleaved)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads,
                            size_t head_dim, size_t rotary_dim, const float *cos, const float *sin,
                            int prefetch_bytes) {
  (void)prefetch_bytes; /* no software prefetch in the portable kernels */
  ROTARY_FN(heads)(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, 2, 1);
}

#undef ROTARY_T
#undef ROTARY_LOAD
#undef ROTARY_STORE
#undef ROTARY_FN
