/* mrope.c: Qwen2-VL-style multimodal RoPE: three position streams per token, text and image tokens in one call (docs/positions.md). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <rotary.h>

enum { TOKENS = 11, Q_HEADS = 4, KV_HEADS = 2, HEAD_DIM = 128 };

int main(void) {
  /* Qwen2-VL's text rope: base 1e6, mrope_section [16, 24, 24]: frequencies 0-15 turn by the temporal id,
   * 16-39 by the height id, 40-63 by the width id. */
  rotary_config config;
  rotary_config_init(&config, HEAD_DIM);
  config.base = 1000000.0;
  config.streams.layout = ROTARY_STREAMS_SECTIONS;
  config.streams.n_streams = 3;
  config.streams.sections[0] = 16;
  config.streams.sections[1] = 24;
  config.streams.sections[2] = 24;
  rotary_rope *rope;
  rotary_status st = rotary_rope_create(&config, 4096, &rope);
  if (st != ROTARY_OK) return fprintf(stderr, "rotary_rope_create: %s\n", rotary_status_string(st)), 1;

  /* 3 text tokens, a 2 x 3 image grid, 2 text tokens, with ids as Hugging Face's get_rope_index makes them:
   * text tokens carry one id in all three streams; image tokens share a temporal id and run over rows and
   * columns; the text after the image starts one past the largest id so far. ids[stream][token]. */
  const int64_t ids[3][TOKENS] = {{0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7},
                                  {0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7},
                                  {0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7}};
  static float q[TOKENS][Q_HEADS][HEAD_DIM], k[TOKENS][KV_HEADS][HEAD_DIM];
  static float q_text[TOKENS][Q_HEADS][HEAD_DIM];
  for (int t = 0; t < TOKENS; t++)
    for (int d = 0; d < HEAD_DIM; d++) {
      for (int h = 0; h < Q_HEADS; h++) q[t][h][d] = q_text[t][h][d] = (float)sin(0.1 * (t + h + d));
      for (int h = 0; h < KV_HEADS; h++) k[t][h][d] = (float)cos(0.1 * (t + h + d));
    }

  /* One call rotates q and k of every token, in place: [tokens, heads, head_dim] is BSHD with batch 1. */
  rotary_apply_desc desc;
  rotary_apply_desc_init(&desc);
  desc.seq_len = TOKENS;
  desc.positions.mode = ROTARY_POSITIONS_STREAMS_I64;
  desc.positions.ids = ids;
  desc.positions.n_streams = 3; /* stream_stride 0: the streams follow each other, TOKENS ids apart */
  rotary_tensor_init(&desc.q, ROTARY_LAYOUT_BSHD, q, q, ROTARY_F32, TOKENS, Q_HEADS, HEAD_DIM);
  rotary_tensor_init(&desc.k, ROTARY_LAYOUT_BSHD, k, k, ROTARY_F32, TOKENS, KV_HEADS, HEAD_DIM);
  st = rotary_apply(NULL, rope, &desc);
  if (st != ROTARY_OK) return fprintf(stderr, "rotary_apply: %s\n", rotary_status_string(st)), 1;

  /* A text token's three ids agree, so it gets the plain 1-D rotation: the same call with the temporal ids
   * alone (IDS mode) gives the same bits on text tokens, and different ones on the image tokens. */
  rotary_apply_desc text = desc;
  text.positions.mode = ROTARY_POSITIONS_IDS_I64;
  text.positions.ids = ids[0];
  text.k.n_heads = 0;
  rotary_tensor_init(&text.q, ROTARY_LAYOUT_BSHD, q_text, q_text, ROTARY_F32, TOKENS, Q_HEADS, HEAD_DIM);
  st = rotary_apply(NULL, rope, &text);
  if (st != ROTARY_OK) return fprintf(stderr, "rotary_apply (1-D): %s\n", rotary_status_string(st)), 1;
  int differ = 0;
  for (int t = 0; t < TOKENS; t++) {
    const int same = !memcmp(q[t], q_text[t], sizeof q[t]);
    const int is_text = ids[0][t] == ids[1][t] && ids[1][t] == ids[2][t];
    if (same != is_text) differ++;
  }
  printf("token 4 (image row 0, column 1): q[0][40] = %.6f; text tokens match the 1-D rope: %s\n", q[4][0][40],
         differ ? "no" : "yes");
  rotary_rope_destroy(rope);
  return differ != 0;
}
