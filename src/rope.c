/* rope.c: rotary embedding objects: validated frequencies and the fp32 cos/sin table built by the rows kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rope.h"

void rotary_config_init(rotary_config *config, size_t head_dim) {
  if (!config) return;
  memset(config, 0, sizeof *config);
  config->struct_size = sizeof *config;
  config->head_dim = head_dim;
  config->rotary_dim = head_dim;
  config->pairing = ROTARY_PAIRING_HALF;
  config->base = 10000.0;
  config->inv_freq = NULL;
  config->attention_scaling = 1.0;
}

static int finite_positive(double v) { return isfinite(v) && v > 0.0; }

static rotary_status validate_config(const rotary_config *c) {
  ROTARY_RETURN_IF(c->struct_size != sizeof *c, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(c->head_dim == 0 || c->head_dim % 2 || c->head_dim > ROTARY_MAX_HEAD_DIM, ROTARY_ERR_HEAD_DIM);
  ROTARY_RETURN_IF(c->rotary_dim == 0 || c->rotary_dim % 2 || c->rotary_dim > c->head_dim, ROTARY_ERR_ROTARY_DIM);
  ROTARY_RETURN_IF(c->pairing != ROTARY_PAIRING_HALF && c->pairing != ROTARY_PAIRING_INTERLEAVED,
                   ROTARY_ERR_PAIRING);
  ROTARY_RETURN_IF(!finite_positive(c->attention_scaling), ROTARY_ERR_FREQUENCY);
  if (c->inv_freq) {
    for (size_t i = 0; i < c->rotary_dim / 2; i++)
      ROTARY_RETURN_IF(!finite_positive(c->inv_freq[i]), ROTARY_ERR_FREQUENCY);
  } else {
    ROTARY_RETURN_IF(!finite_positive(c->base), ROTARY_ERR_FREQUENCY);
  }
  return ROTARY_OK;
}

static rotary_status build_table(rotary_rope *rope) {
  size_t count, bytes;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(rope->max_positions, rope->rotary_dim, &count), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(count, sizeof(float), &bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(bytes > PTRDIFF_MAX, ROTARY_ERR_OVERFLOW);
  rope->table = malloc(bytes);
  ROTARY_RETURN_IF(!rope->table, ROTARY_ERR_OUT_OF_MEMORY);
  const size_t half = rope->rotary_dim / 2;
  for (size_t pos = 0; pos < rope->max_positions; pos++) {
    float *row = rope->table + pos * rope->rotary_dim;
    rotary_rope_compute_row(rope, (int64_t)pos, row, row + half);
  }
  rope->memory_bytes += bytes;
  return ROTARY_OK;
}

rotary_status rotary_rope_create(const rotary_config *config, size_t max_positions, rotary_rope **out) {
  ROTARY_RETURN_IF(!config || !out, ROTARY_ERR_NULL_POINTER);
  rotary_status st = validate_config(config);
  if (st != ROTARY_OK) return st;
  ROTARY_RETURN_IF(max_positions > (uint64_t)ROTARY_MAX_POSITION + 1, ROTARY_ERR_POSITION);

  rotary_rope *rope = calloc(1, sizeof *rope);
  ROTARY_RETURN_IF(!rope, ROTARY_ERR_OUT_OF_MEMORY);
  const size_t half = config->rotary_dim / 2;
  rope->head_dim = config->head_dim;
  rope->rotary_dim = config->rotary_dim;
  rope->max_positions = max_positions;
  rope->pairing = config->pairing;
  rope->attention_scaling = config->attention_scaling;
  rope->rows = rotary_rows_select()->fn;
  rope->inv_freq = malloc(half * sizeof(double));
  if (!rope->inv_freq) {
    free(rope);
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  rope->memory_bytes = sizeof *rope + half * sizeof(double);
  for (size_t i = 0; i < half; i++) {
    rope->inv_freq[i] = config->inv_freq ? config->inv_freq[i]
                                         : pow(config->base, -(double)(2 * i) / (double)config->rotary_dim);
  }
  if (max_positions) {
    st = build_table(rope);
    if (st != ROTARY_OK) {
      rotary_rope_destroy(rope);
      return st;
    }
  }
  *out = rope;
  return ROTARY_OK;
}

void rotary_rope_destroy(rotary_rope *rope) {
  if (!rope) return;
  free(rope->table);
  free(rope->inv_freq);
  free(rope);
}

size_t rotary_rope_memory_bytes(const rotary_rope *rope) { return rope ? rope->memory_bytes : 0; }
size_t rotary_rope_head_dim(const rotary_rope *rope) { return rope ? rope->head_dim : 0; }
size_t rotary_rope_rotary_dim(const rotary_rope *rope) { return rope ? rope->rotary_dim : 0; }
size_t rotary_rope_max_positions(const rotary_rope *rope) { return rope ? rope->max_positions : 0; }
rotary_pairing rotary_rope_pairing(const rotary_rope *rope) { return rope ? rope->pairing : ROTARY_PAIRING_HALF; }

rotary_status rotary_rope_inv_freq(const rotary_rope *rope, double *inv_freq) {
  ROTARY_RETURN_IF(!rope || !inv_freq, ROTARY_ERR_NULL_POINTER);
  memcpy(inv_freq, rope->inv_freq, rope->rotary_dim / 2 * sizeof(double));
  return ROTARY_OK;
}

rotary_status rotary_rope_cos_sin(const rotary_rope *rope, const int64_t *positions, size_t n, float *cos_out,
                                  float *sin_out) {
  ROTARY_RETURN_IF(!rope, ROTARY_ERR_NULL_POINTER);
  if (n == 0) return ROTARY_OK;
  ROTARY_RETURN_IF(!positions || !cos_out || !sin_out, ROTARY_ERR_NULL_POINTER);
  const size_t half = rope->rotary_dim / 2;
  size_t count, bytes, pos_bytes;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(n, half, &count), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(count, sizeof(float), &bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(n, sizeof(int64_t), &pos_bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(UINTPTR_MAX - (uintptr_t)cos_out < bytes || UINTPTR_MAX - (uintptr_t)sin_out < bytes ||
                       UINTPTR_MAX - (uintptr_t)positions < pos_bytes,
                   ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_bytes_overlap(cos_out, bytes, sin_out, bytes) ||
                       rotary_bytes_overlap(positions, pos_bytes, cos_out, bytes) ||
                       rotary_bytes_overlap(positions, pos_bytes, sin_out, bytes),
                   ROTARY_ERR_OVERLAP);
  const int64_t max_pos = rotary_rope_max_position(rope);
  for (size_t j = 0; j < n; j++) ROTARY_RETURN_IF(positions[j] < 0 || positions[j] > max_pos, ROTARY_ERR_POSITION);
  for (size_t j = 0; j < n; j++) {
    float *c = cos_out + j * half, *s = sin_out + j * half;
    if (rope->table) {
      const float *row = rotary_rope_table_row(rope, positions[j]);
      memcpy(c, row, half * sizeof(float));
      memcpy(s, row + half, half * sizeof(float));
    } else {
      rotary_rope_compute_row(rope, positions[j], c, s);
    }
  }
  return ROTARY_OK;
}
