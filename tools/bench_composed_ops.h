/* bench_composed_ops.h: the composed baseline's elementwise ops; bench_composed.c includes it per dtype and ISA. */
/*
 * Expects CT_T (element type), CT_LOAD(x) (element -> float), CT_STORE(f) (float -> element), CT_NAME(op)
 * (the function name for this dtype and target) and CT_TARGET (a target attribute, or nothing). Each op covers
 * token rows [t0, t1) of a composed_op (bench_composed.c): `heads` head rows of `width` elements per token, head
 * h of token t at (t * heads + h) * stride of its tensor. Each element is converted to fp32, computed, and
 * converted back: a framework's op in the model dtype.
 */

/* y = rotate_half(a): cat(-a[..., w/2:], a[..., :w/2]) (Hugging Face), or for interleaved pairs the
 * swap-negate of rotate_every_two (GPT-J, Meta's pairs): y[2i] = -a[2i+1], y[2i+1] = a[2i]. */
CT_TARGET static void CT_NAME(rotate)(const composed_op *op, size_t t0, size_t t1) {
  const size_t w = op->width, half = w / 2;
  for (size_t r = t0 * op->heads; r < t1 * op->heads; r++) {
    const CT_T *restrict a = (const CT_T *)op->a + r * op->a_stride;
    CT_T *restrict y = (CT_T *)op->y + r * op->y_stride;
    if (op->interleaved) {
      for (size_t i = 0; i < half; i++) {
        y[2 * i] = CT_STORE(-CT_LOAD(a[2 * i + 1]));
        y[2 * i + 1] = a[2 * i];
      }
    } else {
      for (size_t i = 0; i < half; i++) y[i] = CT_STORE(-CT_LOAD(a[half + i]));
      memcpy(y + half, a, half * sizeof(CT_T));
    }
  }
}

/* y = a * b, b one row per token broadcast over the heads (cos or sin of shape [tokens, 1, width]). */
CT_TARGET static void CT_NAME(mul)(const composed_op *op, size_t t0, size_t t1) {
  for (size_t t = t0; t < t1; t++) {
    const CT_T *restrict b = (const CT_T *)op->b + t * op->width;
    for (size_t h = 0; h < op->heads; h++) {
      const size_t r = t * op->heads + h;
      const CT_T *restrict a = (const CT_T *)op->a + r * op->a_stride;
      CT_T *restrict y = (CT_T *)op->y + r * op->y_stride;
      for (size_t i = 0; i < op->width; i++) y[i] = CT_STORE(CT_LOAD(a[i]) * CT_LOAD(b[i]));
    }
  }
}

/* y = a + b, two tensors of the same shape. */
CT_TARGET static void CT_NAME(add)(const composed_op *op, size_t t0, size_t t1) {
  for (size_t r = t0 * op->heads; r < t1 * op->heads; r++) {
    const CT_T *restrict a = (const CT_T *)op->a + r * op->a_stride;
    const CT_T *restrict b = (const CT_T *)op->b + r * op->b_stride;
    CT_T *restrict y = (CT_T *)op->y + r * op->y_stride;
    for (size_t i = 0; i < op->width; i++) y[i] = CT_STORE(CT_LOAD(a[i]) + CT_LOAD(b[i]));
  }
}

/* cos = table_cos[position_ids], duplicated to the full width (cat(freqs, freqs) for half pairs, each value twice
 * for interleaved ones) and cast to the model dtype; sin likewise into y2. */
CT_TARGET static void CT_NAME(gather)(const composed_op *op, size_t t0, size_t t1) {
  const size_t half = op->width / 2;
  for (size_t t = t0; t < t1; t++) {
    const float *tabs[2] = {op->cos_tab + (size_t)op->pos[t] * half, op->sin_tab + (size_t)op->pos[t] * half};
    CT_T *rows[2] = {(CT_T *)op->y + t * op->width, (CT_T *)op->y2 + t * op->width};
    for (int j = 0; j < 2; j++) {
      const float *restrict src = tabs[j];
      CT_T *restrict dst = rows[j];
      if (op->interleaved) {
        for (size_t i = 0; i < half; i++) dst[2 * i] = dst[2 * i + 1] = CT_STORE(src[i]);
      } else {
        for (size_t i = 0; i < half; i++) dst[i] = dst[half + i] = CT_STORE(src[i]);
      }
    }
  }
}

#undef CT_T
#undef CT_LOAD
#undef CT_STORE
#undef CT_NAME
#undef CT_TARGET
