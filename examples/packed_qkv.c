/* packed_qkv.c: a decode step of 4 sequences whose q, k and v share one fused QKV row per token (docs/integrations/c.md). */
#include <math.h>
#include <stdio.h>

#include <rotary.h>

enum { BATCH = 4, Q_HEADS = 8, KV_HEADS = 2, HEAD_DIM = 128, ROW = (Q_HEADS + 2 * KV_HEADS) * HEAD_DIM };

int main(void) {
  /* One token per sequence: qkv[b] = [q heads | k heads | v heads], as a fused projection writes them. */
  static float qkv[BATCH][ROW], before[BATCH][ROW];
  for (int b = 0; b < BATCH; b++)
    for (int i = 0; i < ROW; i++) qkv[b][i] = before[b][i] = (float)sin(0.01 * (b * ROW + i));

  rotary_config config;
  rotary_config_init(&config, HEAD_DIM);
  config.base = 500000.0;
  rotary_rope *rope;
  rotary_status st = rotary_rope_create(&config, 8192, &rope);
  if (st != ROTARY_OK) return fprintf(stderr, "rotary_rope_create: %s\n", rotary_status_string(st)), 1;

  /* Each sequence has its own cache length: the new token of row b sits at position cache_len[b]. */
  const int64_t cache_len[BATCH] = {17, 5, 300, 8000};
  rotary_apply_desc desc;
  rotary_apply_desc_init(&desc);
  desc.batch = BATCH;
  desc.seq_len = 1;
  desc.positions.mode = ROTARY_POSITIONS_OFFSETS;
  desc.positions.offsets = cache_len;
  /* q and k are views into the rows: strides in elements, in place; v is not touched. */
  float *q = &qkv[0][0], *k = &qkv[0][Q_HEADS * HEAD_DIM];
  desc.q = (rotary_tensor){.in = q, .out = q, .dtype = ROTARY_F32, .n_heads = Q_HEADS,
                           .stride_batch = ROW, .stride_seq = ROW, .stride_head = HEAD_DIM,
                           .out_stride_batch = ROW, .out_stride_seq = ROW, .out_stride_head = HEAD_DIM};
  desc.k = desc.q; /* same strides, fewer heads, its own place in the row */
  desc.k.in = desc.k.out = k;
  desc.k.n_heads = KV_HEADS;
  if ((st = rotary_apply(NULL, rope, &desc)) != ROTARY_OK) /* NULL context: the calling thread */
    return fprintf(stderr, "rotary_apply: %s\n", rotary_status_string(st)), 1;

  /* Check one pair against the cos/sin row the call used: half pairing rotates dims (i, i + HEAD_DIM/2). */
  float c[HEAD_DIM / 2], s[HEAD_DIM / 2];
  if (rotary_rope_cos_sin(rope, &cache_len[2], 1, c, s) != ROTARY_OK) return 1;
  const int i = 3, kh = Q_HEADS * HEAD_DIM + HEAD_DIM; /* dim 3 of k head 1 in row 2 */
  const float x0 = before[2][kh + i], x1 = before[2][kh + i + HEAD_DIM / 2];
  const float want = fmaf(x0, c[i], -(x1 * s[i]));
  printf("k[2][1][3]: %.6f -> %.6f (expected %.6f)\n", x0, qkv[2][kh + i], want);
  int v_same = 1;
  for (int b = 0; b < BATCH; b++)
    for (int j = (Q_HEADS + KV_HEADS) * HEAD_DIM; j < ROW; j++) v_same &= qkv[b][j] == before[b][j];
  printf("v unchanged: %s\n", v_same ? "yes" : "no");
  rotary_rope_destroy(rope);
  return qkv[2][kh + i] == want && v_same ? 0 : 1;
}
