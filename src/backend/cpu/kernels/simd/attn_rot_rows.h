/* simd/attn_rot_rows.h: the blocking of the rotating scores kernels (rows by 4, keys by 2 rotating or by 3 staged, then
 * one by one), shared by every ISA's attention kernels. */
/* Include after defining INLINE, ATTN_VEC (the ISA's fp32 vector type, of the fp8 factor) and
 * rot_block(pr, dt, rot, R, J, q, hd, rd, k, kb, cs, css, so, f8, s, ss): logits of R <= 4 rows against J keys.
 * ATTN_ROT_BODY is the body of a kernel rotary_attn_<dtype>_scores_<pairing>__<isa> (attn_kernels.h's parameter
 * names), for ISA files that also define rot_any, fp8_factor_ok, fp8_any_nan and fp8_fix_scores. */

/* Shapes the vector path does not take (a pair step or the unrotated rest not a multiple of 8, an fp8 scale whose
 * f16 route overflows) go to the scalar kernel; fp8 NaN codes are found apart (they decode finite). */
#define ATTN_ROT_BODY(dtype, DT, pairing, PR)                                                                      \
  if ((PR == PR_HALF ? (rotary_dim / 2) % 8 : rotary_dim % 8) || (head_dim - rotary_dim) % 8 ||                    \
      (DT == DT_FP8 && !fp8_factor_ok(k_scale))) {                                                                  \
    rotary_attn_##dtype##_scores_##pairing##__scalar(q, rows, head_dim, k, k_row_stride, n, k_scale, cs, cs_stride, \
                                                     sin_offset, rotary_dim, s, s_stride);                          \
    return;                                                                                                         \
  }                                                                                                                 \
  rot_any(PR, DT, q, rows, head_dim, k, k_row_stride, n, k_scale, cs, cs_stride, sin_offset, rotary_dim, s,        \
          s_stride);                                                                                                \
  if (DT == DT_FP8 && fp8_any_nan((const unsigned char *)k, k_row_stride, n, head_dim))                            \
    fp8_fix_scores(rows, head_dim, (const unsigned char *)k, k_row_stride, n, s, s_stride);

/* One row block (R rows, then keys J at a time, then the rest one by one). */
INLINE void rot_rows_r(int pr, int dt, int rot, int R, const float *q, size_t hd, size_t rd, const unsigned char *k,
                       ptrdiff_t kb, size_t n, const float *cs, size_t css, size_t so, ATTN_VEC f8, float *s,
                       size_t ss) {
  size_t j = 0;
  if (rot) {
    for (; j + 2 <= n; j += 2)
      rot_block(pr, dt, 1, R, 2, q, hd, rd, k + (ptrdiff_t)j * kb, kb, cs + j * css, css, so, f8, s + j, ss);
  } else {
    for (; j + 3 <= n; j += 3)
      rot_block(pr, dt, 0, R, 3, q, hd, rd, k + (ptrdiff_t)j * kb, kb, cs, css, so, f8, s + j, ss);
  }
  for (; j < n; j++)
    rot_block(pr, dt, rot, R, 1, q, hd, rd, k + (ptrdiff_t)j * kb, kb, cs + j * css, css, so, f8, s + j, ss);
}

/* Every row block of `rows` rows. */
INLINE void rot_rows(int pr, int dt, int rot, const float *q, size_t rows, size_t hd, size_t rd,
                     const unsigned char *k, ptrdiff_t kb, size_t n, const float *cs, size_t css, size_t so,
                     ATTN_VEC f8, float *s, size_t ss) {
  for (size_t r0 = 0; r0 < rows; r0 += 4) {
    const float *qr = q + r0 * hd;
    float *sr = s + r0 * ss;
    switch (rows - r0 < 4 ? rows - r0 : 4) {
      case 4: rot_rows_r(pr, dt, rot, 4, qr, hd, rd, k, kb, n, cs, css, so, f8, sr, ss); break;
      case 3: rot_rows_r(pr, dt, rot, 3, qr, hd, rd, k, kb, n, cs, css, so, f8, sr, ss); break;
      case 2: rot_rows_r(pr, dt, rot, 2, qr, hd, rd, k, kb, n, cs, css, so, f8, sr, ss); break;
      default: rot_rows_r(pr, dt, rot, 1, qr, hd, rd, k, kb, n, cs, css, so, f8, sr, ss); break;
    }
  }
}
