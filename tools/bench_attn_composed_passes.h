/* bench_attn_composed_passes.h: the composed attention's passes; bench_attn_composed.c includes it once per ISA. */
/*
 * Expects AC_NAME(op) (the function name for this target) and AC_TARGET (a target attribute, or nothing), and
 * bench_attn_composed.c's split, row_at, TILE and the fp8 helpers. Plain C: a compiler vectorizes the loops for the
 * target (mul and add, no fma: fp32 math as written). Cached rows are decoded a tile at a time (TILE / head_dim
 * rows, as a GEMM packs a panel), then used: the loads of a tile are independent, so many are in flight.
 */

/* One cached head row decoded to fp32 (fp8: the e4m3 value times the scale, one fp32 multiply). */
AC_TARGET static void AC_NAME(decode_row)(const bench_attn_composed *c, const void *cache, size_t at, float scale,
                                          float *restrict dst) {
  const size_t n = c->head_dim;
  if (c->cache_dtype == ROTARY_F32) {
    memcpy(dst, (const float *)cache + at, n * sizeof *dst);
  } else if (c->cache_dtype == ROTARY_BF16) {
    const uint16_t *restrict src = (const uint16_t *)cache + at;
    for (size_t d = 0; d < n; d++) dst[d] = bench_bf16_to_f32(src[d]);
  } else if (c->cache_dtype == ROTARY_F16) {
    const uint16_t *restrict src = (const uint16_t *)cache + at;
    for (size_t d = 0; d < n; d++) dst[d] = bench_f16_to_f32(src[d]);
  } else {
    const uint8_t *restrict src = (const uint8_t *)cache + at;
    for (size_t d = 0; d < n; d++) dst[d] = fp8_to_f32(src[d]) * scale;
  }
}

/* A dot product in 8 lanes (vector registers once compiled), then the lanes summed. */
AC_TARGET static float AC_NAME(dot)(const float *restrict a, const float *restrict b, size_t n) {
  float acc[8] = {0};
  size_t d = 0;
  for (; d + 8 <= n; d += 8)
    for (size_t l = 0; l < 8; l++) acc[l] += a[d + l] * b[d + l];
  for (; d < n; d++) acc[0] += a[d] * b[d];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

AC_TARGET static void AC_NAME(scores)(const bench_attn_composed *c, size_t index, size_t count) {
  const size_t items = c->batch * c->kv_heads, group = c->q_heads / c->kv_heads, D = c->head_dim, T = TILE / D;
  float key[TILE];
  for (size_t it = split(items, index, count); it < split(items, index + 1, count); it++) {
    const size_t b = it / c->kv_heads, h = it % c->kv_heads, L = (size_t)c->lengths[b];
    const float *q = c->q + b * (c->q_stride ? c->q_stride : c->q_heads * D) + h * group * D;
    float *logits = c->logits + (b * c->q_heads + h * group) * c->logits_stride;
    for (size_t p0 = 0; p0 < L; p0 += T) {
      const size_t n = L - p0 < T ? L - p0 : T;
      for (size_t j = 0; j < n; j++) {
        AC_NAME(decode_row)(c, c->k, row_at(c, b, p0 + j, h), c->k_scale, key + j * D);
        if (c->key_cos) rotate_key(c, p0 + j, key + j * D);
      }
      for (size_t g = 0; g < group; g++)
        for (size_t j = 0; j < n; j++)
          logits[g * c->logits_stride + p0 + j] = c->scale * AC_NAME(dot)(q + g * D, key + j * D, D);
    }
  }
}

AC_TARGET static void AC_NAME(softmax)(const bench_attn_composed *c, size_t index, size_t count) {
  const size_t items = c->batch * c->q_heads;
  for (size_t it = split(items, index, count); it < split(items, index + 1, count); it++) {
    const size_t L = (size_t)c->lengths[it / c->q_heads];
    float *row = c->logits + it * c->logits_stride, max = -INFINITY, sum = 0;
    for (size_t p = 0; p < L; p++) max = row[p] > max ? row[p] : max;
    for (size_t p = 0; p < L; p++) {
      row[p] = expf(row[p] - max);
      sum += row[p];
    }
    const float inv = 1.0f / sum;
    for (size_t p = 0; p < L; p++) row[p] *= inv;
  }
}

AC_TARGET static void AC_NAME(values)(const bench_attn_composed *c, size_t index, size_t count) {
  const size_t items = c->batch * c->kv_heads, group = c->q_heads / c->kv_heads, D = c->head_dim, T = TILE / D;
  float value[TILE];
  for (size_t it = split(items, index, count); it < split(items, index + 1, count); it++) {
    const size_t b = it / c->kv_heads, h = it % c->kv_heads, L = (size_t)c->lengths[b];
    const float *probs = c->logits + (b * c->q_heads + h * group) * c->logits_stride;
    float *out = c->out + (b * c->q_heads + h * group) * D; /* the group's q heads are adjacent */
    memset(out, 0, group * D * sizeof *out);
    for (size_t p0 = 0; p0 < L; p0 += T) {
      const size_t n = L - p0 < T ? L - p0 : T;
      for (size_t j = 0; j < n; j++) AC_NAME(decode_row)(c, c->v, row_at(c, b, p0 + j, h), c->v_scale, value + j * D);
      for (size_t g = 0; g < group; g++) {
        float *restrict o = out + g * D;
        for (size_t j = 0; j < n; j++) {
          const float w = probs[g * c->logits_stride + p0 + j];
          const float *restrict v = value + j * D;
          for (size_t d = 0; d < D; d++) o[d] += w * v[d];
        }
      }
    }
  }
}

#undef AC_NAME
#undef AC_TARGET
