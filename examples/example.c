/* example.c: rotate q and k of a small GQA attention layer in place, then undo it (the README's example). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <rotary.h>

int main(void) {
  enum { SEQ = 16, Q_HEADS = 8, K_HEADS = 2, HEAD_DIM = 64 };
  static float q[SEQ][Q_HEADS][HEAD_DIM], k[SEQ][K_HEADS][HEAD_DIM], q0[SEQ][Q_HEADS][HEAD_DIM];
  for (int s = 0; s < SEQ; s++)
    for (int d = 0; d < HEAD_DIM; d++) {
      for (int h = 0; h < Q_HEADS; h++) q[s][h][d] = q0[s][h][d] = (float)sin(0.1 * (s + h + d));
      for (int h = 0; h < K_HEADS; h++) k[s][h][d] = (float)cos(0.1 * (s + h + d));
    }

  /* LLaMA-style frequencies (base 10000, "half" pairing), cos/sin table for 4096 positions. */
  rotary_config config;
  rotary_config_init(&config, HEAD_DIM);
  rotary_rope *rope;
  rotary_status st = rotary_rope_create(&config, 4096, &rope);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary_rope_create: %s\n", rotary_status_string(st));
    return 1;
  }
  rotary_context *ctx; /* worker threads, one per online CPU */
  if ((st = rotary_context_create(0, &ctx)) != ROTARY_OK) {
    fprintf(stderr, "rotary_context_create: %s\n", rotary_status_string(st));
    return 1;
  }

  /* Decode-style call: these 16 tokens sit at positions 100..115 of the sequence. */
  rotary_apply_desc desc;
  rotary_apply_desc_init(&desc);
  desc.seq_len = SEQ;
  desc.positions.mode = ROTARY_POSITIONS_OFFSET;
  desc.positions.offset = 100;
  rotary_tensor_init(&desc.q, ROTARY_LAYOUT_BSHD, q, q, ROTARY_F32, SEQ, Q_HEADS, HEAD_DIM);
  rotary_tensor_init(&desc.k, ROTARY_LAYOUT_BSHD, k, k, ROTARY_F32, SEQ, K_HEADS, HEAD_DIM);
  if ((st = rotary_apply(ctx, rope, &desc)) != ROTARY_OK) {
    fprintf(stderr, "rotary_apply: %s\n", rotary_status_string(st));
    return 1;
  }
  printf("q[3][0][0]: %.6f -> %.6f\n", q0[3][0][0], q[3][0][0]);

  /* A position past the table is refused before anything is written. */
  desc.positions.offset = 4090;
  st = rotary_apply(ctx, rope, &desc);
  printf("offset 4090 + 16 tokens: %s\n", rotary_status_string(st));
  if (st != ROTARY_ERR_POSITION) return 1;

  /* The inverse rotation (the backward pass) brings q back. */
  desc.positions.offset = 100;
  desc.direction = ROTARY_INVERSE;
  if ((st = rotary_apply(ctx, rope, &desc)) != ROTARY_OK) return 1;
  double worst = 0;
  for (int s = 0; s < SEQ; s++)
    for (int h = 0; h < Q_HEADS; h++)
      for (int d = 0; d < HEAD_DIM; d++) {
        double err = fabs((double)q[s][h][d] - q0[s][h][d]);
        if (err > worst) worst = err;
      }
  printf("max |inverse(forward(q)) - q| = %.3g\n", worst);

  rotary_context_destroy(ctx);
  rotary_rope_destroy(rope);
  return worst < 1e-5 ? 0 : 1;
}
