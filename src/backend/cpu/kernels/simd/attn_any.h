/* simd/attn_any.h: what every ISA's scores and values kernels do around their row blocks: staging, fp8 checks,
 * the entry points. */
/* Include after defining INLINE, ATTN_TARGET (the kernels' function attributes; may be empty), ATTN_VEC (the ISA's
 * fp32 vector), ATTN_FACTOR(scale) (the fp8 factor scale * 2^8 in every lane), STAGE_FLOATS, ATTN_STEP (elements
 * a staging step decodes) and
 *   stage_step(dt, src, f8, dst)   ATTN_STEP elements at src decoded (exactly) to the floats at dst
 *   scores_rows(dt, q, rows, hd, k, kb, n, f8, scale, s, ss, pf), values_rows(dt, p, ps, rows, hd, v, vb, n, f8,
 *               scale, o, pf)      the ISA's row blocking over keys at byte stride kb (vb), asking for pf's lines
 *                                  (attn_kernels.h) as it uses each key
 *   fp8_factor_ok, fp8_any_nan, fp8_fix_scores, fp8_fix_values   (x86/attn_avx2.h has them for x86)
 * ATTN_KERNELS(dtype, DT, isa) then defines rotary_attn_<dtype>_scores__<isa> and rotary_attn_<dtype>_values__<isa>
 * (attn_kernels.h's contract). */

/* Decodes n rows of hd elements (hd <= STAGE_FLOATS / n) into buf, row after row: whole steps, then the tail
 * decoded one element at a time (the same values: every decode is exact). */
INLINE void stage_rows(int dt, const unsigned char *p, ptrdiff_t pb, size_t n, size_t hd, ATTN_VEC f8, float scale,
                       float *buf) {
  const size_t es = dt_size[dt], whole = hd - hd % ATTN_STEP;
  for (size_t j = 0; j < n; j++) {
    const unsigned char *row = p + (ptrdiff_t)j * pb;
    float *b = buf + j * hd;
    for (size_t d = 0; d < whole; d += ATTN_STEP) stage_step(dt, row + d * es, f8, b + d);
    if (whole < hd) {
      float t[ATTN_STEP];
      attn_dec_tail(dt, row + whole * es, hd - whole, scale, t, ATTN_STEP);
      memcpy(b + whole, t, (hd - whole) * sizeof(float));
    }
  }
}

/* With more than 4 rows, f16 and fp8 keys are decoded once into a staging block that every row block reads as f32
 * (the decoded values are the same numbers, so the results are the same bits); bf16 and f32 are read in place. */
INLINE void scores_any(int dt, const float *q, size_t rows, size_t hd, const void *k, ptrdiff_t k_row_stride,
                       size_t n, float scale, float *s, size_t ss, rotary_attn_prefetch *pf) {
  const ptrdiff_t kb = k_row_stride * (ptrdiff_t)dt_size[dt];
  const ATTN_VEC f8 = ATTN_FACTOR(scale);
  if (rows > 4 && (dt == DT_F16 || dt == DT_FP8) && hd <= STAGE_FLOATS / 4) {
    float buf[STAGE_FLOATS];
    const size_t block = STAGE_FLOATS / hd;
    for (size_t j = 0; j < n; j += block) {
      const size_t m = n - j < block ? n - j : block;
      stage_rows(dt, (const unsigned char *)k + (ptrdiff_t)j * kb, kb, m, hd, f8, scale, buf);
      scores_rows(DT_F32, q, rows, hd, (const unsigned char *)buf, (ptrdiff_t)(hd * 4), m, f8, scale, s + j, ss, pf);
    }
    return;
  }
  scores_rows(dt, q, rows, hd, (const unsigned char *)k, kb, n, f8, scale, s, ss, pf);
}

/* The values' counterpart of scores_any. */
INLINE void values_any(int dt, const float *p, size_t ps, size_t rows, size_t hd, const void *v,
                       ptrdiff_t v_row_stride, size_t n, float scale, float *o, rotary_attn_prefetch *pf) {
  const ptrdiff_t vb = v_row_stride * (ptrdiff_t)dt_size[dt];
  const ATTN_VEC f8 = ATTN_FACTOR(scale);
  if (rows > 4 && (dt == DT_F16 || dt == DT_FP8) && hd <= STAGE_FLOATS / 4) {
    float buf[STAGE_FLOATS];
    const size_t block = STAGE_FLOATS / hd;
    for (size_t j = 0; j < n; j += block) {
      const size_t m = n - j < block ? n - j : block;
      stage_rows(dt, (const unsigned char *)v + (ptrdiff_t)j * vb, vb, m, hd, f8, scale, buf);
      values_rows(DT_F32, p + j, ps, rows, hd, (const unsigned char *)buf, (ptrdiff_t)(hd * 4), m, f8, scale, o, pf);
    }
    return;
  }
  values_rows(dt, p, ps, rows, hd, (const unsigned char *)v, vb, n, f8, scale, o, pf);
}

/* The scores and values kernels of one cache dtype. fp8: a scale whose f16 route overflows goes to the scalar
 * kernel; NaN codes (which the vector decode turns into finite numbers) are found apart and poison what they touch. */
#define ATTN_KERNELS(dtype, DT, isa)                                                                                \
  void rotary_attn_##dtype##_scores__##isa(const float *q, size_t rows, size_t head_dim, const void *k,             \
                                           ptrdiff_t k_row_stride, size_t n, float k_scale, float *s,               \
                                           size_t s_stride, rotary_attn_prefetch *pf) ATTN_TARGET;                  \
  void rotary_attn_##dtype##_scores__##isa(const float *q, size_t rows, size_t head_dim, const void *k,             \
                                           ptrdiff_t k_row_stride, size_t n, float k_scale, float *s,               \
                                           size_t s_stride, rotary_attn_prefetch *pf) {                             \
    if (DT == DT_FP8 && !fp8_factor_ok(k_scale)) {                                                                  \
      rotary_attn_fp8_scores__scalar(q, rows, head_dim, k, k_row_stride, n, k_scale, s, s_stride, pf);              \
      return;                                                                                                        \
    }                                                                                                                \
    scores_any(DT, q, rows, head_dim, k, k_row_stride, n, k_scale, s, s_stride, pf);                                \
    if (DT == DT_FP8 && fp8_any_nan((const unsigned char *)k, k_row_stride, n, head_dim))                           \
      fp8_fix_scores(rows, head_dim, (const unsigned char *)k, k_row_stride, n, s, s_stride);                       \
  }                                                                                                                  \
  void rotary_attn_##dtype##_values__##isa(const float *p, size_t p_stride, size_t rows, size_t head_dim,          \
                                           const void *v, ptrdiff_t v_row_stride, size_t n, float v_scale,         \
                                           float *o, rotary_attn_prefetch *pf) ATTN_TARGET;                         \
  void rotary_attn_##dtype##_values__##isa(const float *p, size_t p_stride, size_t rows, size_t head_dim,          \
                                           const void *v, ptrdiff_t v_row_stride, size_t n, float v_scale,         \
                                           float *o, rotary_attn_prefetch *pf) {                                    \
    if (DT == DT_FP8 && !fp8_factor_ok(v_scale)) {                                                                  \
      rotary_attn_fp8_values__scalar(p, p_stride, rows, head_dim, v, v_row_stride, n, v_scale, o, pf);              \
      return;                                                                                                        \
    }                                                                                                                \
    values_any(DT, p, p_stride, rows, head_dim, v, v_row_stride, n, v_scale, o, pf);                                \
    if (DT == DT_FP8 && fp8_any_nan((const unsigned char *)v, v_row_stride, n, head_dim))                           \
      fp8_fix_values(rows, head_dim, (const unsigned char *)v, v_row_stride, n, o);                                 \
  }
