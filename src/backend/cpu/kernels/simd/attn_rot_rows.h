/* simd/attn_rot_rows.h: the blocking of the rotating scores kernels (rows by 4 then one by one, keys by 2), shared
 * by every ISA's attention kernels. */
/* Include after defining INLINE, ATTN_VEC (the ISA's fp32 vector type, of the fp8 factor), ATTN_FACTOR(scale)
 * (the fp8 factor scale * 2^8 in every lane), STAGE_FLOATS (the fp32 staging block, floats),
 * rot_block(pr, dt, rot, R, J, q, hd, rd, k, kb, k1, cs, c1, so, f8, s, ss, nst): logits of R rows against J = 2
 * keys, the second k1 bytes (its rows c1 floats) after the first, the first nst stored; kb is the row stride; and
 * rot_key_row(pr, dt, k, c, so, rd, hd, f8, y): one key row decoded and rotated (its cos/sin rows at c) into the
 * fp32 row y, the numbers rot_block computes on the way.
 * ATTN_ROT_BODY is the body of a kernel rotary_attn_<dtype>_scores_<pairing>__<isa> (attn_kernels.h's parameter
 * names), for ISA files that also define fp8_factor_ok, fp8_any_nan and fp8_fix_scores. Only R = 4 and 1,
 * J = 2 are compiled: sanitizer builds took minutes over every (R, J) of every dtype and pairing. */

/* One row block of R rows, keys two at a time: an odd last key is computed twice (the second copy at offset 0) and
 * stored once (each logit's sum is its own: the copy changes no bit). */
INLINE void rot_rows_r(int pr, int dt, int rot, int R, const float *q, size_t hd, size_t rd, const unsigned char *k,
                       ptrdiff_t kb, size_t n, const float *cs, size_t css, size_t so, ATTN_VEC f8, float *s,
                       size_t ss, rotary_attn_prefetch *pf) {
  const size_t pk = pf ? pf->per_key : 0;
  for (size_t j = 0; j < n; j += 2) {
    const int two = j + 1 < n;
    rot_block(pr, dt, rot, R, 2, q, hd, rd, k + (ptrdiff_t)j * kb, kb, two ? kb : 0, cs + j * css, two ? css : 0, so,
              f8, s + j, ss, two ? 2 : 1);
    if (pk) rotary_attn_prefetch_lines(pf, (two ? 2 : 1) * pk);
  }
}

/* Every row: blocks of 4, then the rest one at a time. */
INLINE void rot_rows(int pr, int dt, int rot, const float *q, size_t rows, size_t hd, size_t rd,
                     const unsigned char *k, ptrdiff_t kb, size_t n, const float *cs, size_t css, size_t so,
                     ATTN_VEC f8, float *s, size_t ss, rotary_attn_prefetch *pf) {
  size_t r0 = 0;
  for (; r0 + 4 <= rows; r0 += 4)
    rot_rows_r(pr, dt, rot, 4, q + r0 * hd, hd, rd, k, kb, n, cs, css, so, f8, s + r0 * ss, ss, pf);
  for (; r0 < rows; r0++)
    rot_rows_r(pr, dt, rot, 1, q + r0 * hd, hd, rd, k, kb, n, cs, css, so, f8, s + r0 * ss, ss, pf);
}

/* With more than 4 rows, keys are rotated once into a block of fp32 rows that every row block reads (the same
 * numbers, the same order: the same bits). */
INLINE void rot_any(int pr, int dt, const float *q, size_t rows, size_t hd, const void *k, ptrdiff_t k_row_stride,
                    size_t n, float scale, const float *cs, size_t css, size_t so, size_t rd, float *s, size_t ss,
                    rotary_attn_prefetch *pf) {
  const ptrdiff_t kb = k_row_stride * (ptrdiff_t)dt_size[dt];
  const ATTN_VEC f8 = ATTN_FACTOR(scale);
  const unsigned char *kp = (const unsigned char *)k;
  if (rows > 4 && hd <= STAGE_FLOATS / 4) {
    float buf[STAGE_FLOATS];
    const size_t block = STAGE_FLOATS / hd;
    for (size_t j = 0; j < n; j += block) {
      const size_t m = n - j < block ? n - j : block;
      for (size_t t = 0; t < m; t++)
        rot_key_row(pr, dt, kp + (ptrdiff_t)(j + t) * kb, cs + (j + t) * css, so, rd, hd, f8, buf + t * hd);
      rot_rows(pr, DT_F32, 0, q, rows, hd, rd, (const unsigned char *)buf, (ptrdiff_t)(hd * 4), m, cs, css, so, f8,
               s + j, ss, pf);
    }
    return;
  }
  rot_rows(pr, dt, 1, q, rows, hd, rd, kp, kb, n, cs, css, so, f8, s, ss, pf);
}

/* Shapes the vector path does not take (a pair step or the unrotated rest not a multiple of 8, an fp8 scale whose
 * f16 route overflows) go to the scalar kernel; fp8 NaN codes are found apart (they decode finite). */
#define ATTN_ROT_BODY(dtype, DT, pairing, PR)                                                                      \
  if ((PR == PR_HALF ? (rotary_dim / 2) % 8 : rotary_dim % 8) || (head_dim - rotary_dim) % 8 ||                    \
      (DT == DT_FP8 && !fp8_factor_ok(k_scale))) {                                                                  \
    rotary_attn_##dtype##_scores_##pairing##__scalar(q, rows, head_dim, k, k_row_stride, n, k_scale, cs, cs_stride, \
                                                     sin_offset, rotary_dim, s, s_stride, pf);                      \
    return;                                                                                                         \
  }                                                                                                                 \
  rot_any(PR, DT, q, rows, head_dim, k, k_row_stride, n, k_scale, cs, cs_stride, sin_offset, rotary_dim, s,        \
          s_stride, pf);                                                                                            \
  if (DT == DT_FP8 && fp8_any_nan((const unsigned char *)k, k_row_stride, n, head_dim))                            \
    fp8_fix_scores(rows, head_dim, (const unsigned char *)k, k_row_stride, n, s, s_stride);

/* The eight rotating scores kernels of an ISA, rotary_attn_<dtype>_scores_<pairing>__<isa> for every cache dtype and
 * both pairings, in ISA files that also define ATTN_TARGET (the kernels' function attributes; may be empty) and
 * PR_HALF, PR_INTER. */
#define ATTN_ROT_KERNEL(dtype, DT, pairing, PR, isa)                                                               \
  void rotary_attn_##dtype##_scores_##pairing##__##isa(const float *q, size_t rows, size_t head_dim, const void *k, \
                                                       ptrdiff_t k_row_stride, size_t n, float k_scale,             \
                                                       const float *cs, size_t cs_stride, size_t sin_offset,        \
                                                       size_t rotary_dim, float *s, size_t s_stride,                \
                                                       rotary_attn_prefetch *pf) ATTN_TARGET;                       \
  void rotary_attn_##dtype##_scores_##pairing##__##isa(const float *q, size_t rows, size_t head_dim, const void *k, \
                                                       ptrdiff_t k_row_stride, size_t n, float k_scale,             \
                                                       const float *cs, size_t cs_stride, size_t sin_offset,        \
                                                       size_t rotary_dim, float *s, size_t s_stride,                \
                                                       rotary_attn_prefetch *pf) {                                  \
    ATTN_ROT_BODY(dtype, DT, pairing, PR)                                                                            \
  }
#define ATTN_ROT_KERNELS(isa)                                     \
  ATTN_ROT_KERNEL(f32, DT_F32, half, PR_HALF, isa)                \
  ATTN_ROT_KERNEL(f16, DT_F16, half, PR_HALF, isa)                \
  ATTN_ROT_KERNEL(bf16, DT_BF16, half, PR_HALF, isa)              \
  ATTN_ROT_KERNEL(fp8, DT_FP8, half, PR_HALF, isa)                \
  ATTN_ROT_KERNEL(f32, DT_F32, interleaved, PR_INTER, isa)        \
  ATTN_ROT_KERNEL(f16, DT_F16, interleaved, PR_INTER, isa)        \
  ATTN_ROT_KERNEL(bf16, DT_BF16, interleaved, PR_INTER, isa)      \
  ATTN_ROT_KERNEL(fp8, DT_FP8, interleaved, PR_INTER, isa)
