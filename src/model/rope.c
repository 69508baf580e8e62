/* rope.c: rotary embedding objects: validated frequencies and the fp32 cos/sin table built by the rows kernel. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rope.h"
#include "rope_streams.h"
#include "scaling.h"

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
  config->scaling.type = ROTARY_SCALING_NONE;
  config->scaling.truncate = 1;
}

static int finite_positive(double v) { return isfinite(v) && v > 0.0; }

#define FAIL_IF ROTARY_FAIL_FIELD_IF

rotary_status rotary_config_check(const rotary_config *c, const char **field) {
  FAIL_IF(!c, "config", ROTARY_ERR_NULL_POINTER);
  FAIL_IF(c->struct_size != sizeof *c, "struct_size", ROTARY_ERR_INVALID_ARGUMENT);
  FAIL_IF(c->head_dim == 0 || c->head_dim % 2 || c->head_dim > ROTARY_MAX_HEAD_DIM, "head_dim", ROTARY_ERR_HEAD_DIM);
  FAIL_IF(c->rotary_dim == 0 || c->rotary_dim % 2 || c->rotary_dim > c->head_dim, "rotary_dim",
          ROTARY_ERR_ROTARY_DIM);
  FAIL_IF(c->pairing != ROTARY_PAIRING_HALF && c->pairing != ROTARY_PAIRING_INTERLEAVED, "pairing",
          ROTARY_ERR_PAIRING);
  /* Every cos and sin is (float)(value * attention): above FLT_MAX the rows would hold infinities. */
  FAIL_IF(!finite_positive(c->attention_scaling) || c->attention_scaling > FLT_MAX, "attention_scaling",
          ROTARY_ERR_FREQUENCY);
  const rotary_status streams = rotary_streams_check(c, field);
  if (streams != ROTARY_OK) return streams;
  if (c->inv_freq) {
    for (size_t i = 0; i < c->rotary_dim / 2; i++) FAIL_IF(!finite_positive(c->inv_freq[i]), "inv_freq",
                                                           ROTARY_ERR_FREQUENCY);
    return ROTARY_OK;
  }
  /* A subnormal base is refused: its powers leave the range where base^(-2i/d) is computed correctly rounded. */
  FAIL_IF(!finite_positive(c->base) || c->base < DBL_MIN, "base", ROTARY_ERR_FREQUENCY);
  rotary_status st = rotary_scaling_check(c, field);
  if (st != ROTARY_OK) return st;
  /* The scaled values themselves: a huge factor or base can still overflow or underflow. */
  const size_t half = c->rotary_dim / 2;
  double stack[64], *f = half <= 64 ? stack : malloc(half * sizeof(double));
  FAIL_IF(!f, "config", ROTARY_ERR_OUT_OF_MEMORY);
  const double attention = rotary_scaling_frequencies(c, c->seq_len, f);
  int bad_freq = 0;
  for (size_t i = 0; i < half; i++) bad_freq |= !finite_positive(f[i]);
  if (f != stack) free(f);
  FAIL_IF(bad_freq, "scaling", ROTARY_ERR_SCALING);
  const double product = attention * c->attention_scaling; /* what multiplies every cos and sin */
  FAIL_IF(!finite_positive(attention) || !finite_positive(product) || product > FLT_MAX, "scaling.attention_factor",
          ROTARY_ERR_SCALING);
  return ROTARY_OK;
}

/* Floats from a table row's cos to its sin: half rounded up to whole 64-byte lines once it fills one. Shorter rows
 * stay packed (their vectors are narrower than a line anyway). */
static size_t table_sin_offset(size_t half) {
  const size_t line = 64 / sizeof(float);
  return half < line ? half : (half + line - 1) / line * line;
}

/* Fills the table; rows reuse already holds (same values) are copied. */
static rotary_status build_table(rotary_rope *rope, const rotary_rope *reuse) {
  const size_t half = rope->rotary_dim / 2;
  size_t count, bytes;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(rope->max_positions, rotary_rope_row_floats(rope), &count), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(count, sizeof(float), &bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(bytes > PTRDIFF_MAX, ROTARY_ERR_OVERFLOW);
  /* Line-aligned: malloc puts a large block 16 bytes past a page, and with it every cos/sin vector load of the
   * kernels straddled two lines (a quarter of the article-shape call's time). */
  void *table = NULL;
  ROTARY_RETURN_IF(posix_memalign(&table, 64, bytes) != 0, ROTARY_ERR_OUT_OF_MEMORY);
  rope->table = table;
  size_t first = 0;
  if (reuse) {
    first = reuse->max_positions < rope->max_positions ? reuse->max_positions : rope->max_positions;
    memcpy(rope->table, reuse->table, first * rotary_rope_row_floats(rope) * sizeof(float)); /* same rotary_dim: same layout */
  }
  for (size_t pos = first; pos < rope->max_positions; pos++) {
    float *row = rope->table + pos * rotary_rope_row_floats(rope);
    rotary_rope_compute_row(rope, (int64_t)pos, row, row + rope->sin_offset);
    for (size_t i = half; i < rope->sin_offset; i++) row[i] = row[rope->sin_offset + i] = 0.0f; /* padding */
  }
  rope->memory_bytes += bytes;
  return ROTARY_OK;
}

/* A rope's own copy of the config: the arrays it points to (caller inv_freq, or the LongRoPE factors) are copied
 * into rope->owned. */
static rotary_status copy_config(rotary_rope *rope, const rotary_config *c) {
  const size_t half = c->rotary_dim / 2;
  const int longrope = !c->inv_freq && c->scaling.type == ROTARY_SCALING_LONGROPE;
  const size_t n = c->inv_freq ? half : longrope ? 2 * half : 0;
  const int map = c->streams.layout == ROTARY_STREAMS_MAP;
  rope->config = *c;
  if (!map) rope->config.streams.map = NULL; /* only MAP reads it: no pointer into the caller's memory is kept */
  if (!n && !map) return ROTARY_OK;
  const size_t bytes = n * sizeof(double) + (map ? half : 0); /* the map's bytes after the doubles */
  rope->owned = malloc(bytes);
  ROTARY_RETURN_IF(!rope->owned, ROTARY_ERR_OUT_OF_MEMORY);
  rope->memory_bytes += bytes;
  if (map) {
    uint8_t *copy = (uint8_t *)(rope->owned + n);
    memcpy(copy, c->streams.map, half);
    rope->config.streams.map = copy;
  }
  if (!n) return ROTARY_OK;
  if (c->inv_freq) {
    memcpy(rope->owned, c->inv_freq, half * sizeof(double));
    rope->config.inv_freq = rope->owned;
  } else {
    memcpy(rope->owned, c->scaling.short_factor, half * sizeof(double));
    memcpy(rope->owned + half, c->scaling.long_factor, half * sizeof(double));
    rope->config.scaling.short_factor = rope->owned;
    rope->config.scaling.long_factor = rope->owned + half;
  }
  return ROTARY_OK;
}

/* Builds a rope for a checked config; rows [0, reuse_rows) of the table are copied from `reuse` (whose
 * frequencies and attention scaling are the same bits) instead of being computed. */
static rotary_status create_rope(const rotary_config *config, size_t max_positions, const rotary_rope *reuse,
                                 rotary_rope **out) {
  ROTARY_RETURN_IF(max_positions > (uint64_t)ROTARY_MAX_POSITION + 1, ROTARY_ERR_POSITION);
  rotary_rope *rope = calloc(1, sizeof *rope);
  ROTARY_RETURN_IF(!rope, ROTARY_ERR_OUT_OF_MEMORY);
  const size_t half = config->rotary_dim / 2;
  rope->head_dim = config->head_dim;
  rope->rotary_dim = config->rotary_dim;
  rope->max_positions = max_positions;
  rope->pairing = config->pairing;
  rope->sin_offset = table_sin_offset(half); /* twice it is <= rotary_dim + 30, far below SIZE_MAX */
  rope->rows = rotary_rows_select()->fn;
  rope->memory_bytes = sizeof *rope + half * sizeof(double);
  rope->inv_freq = malloc(half * sizeof(double));
  rotary_status st = rope->inv_freq ? copy_config(rope, config) : ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK) {
    const double factor = rotary_scaling_frequencies(&rope->config, config->seq_len, rope->inv_freq);
    rope->attention_scaling = config->attention_scaling * factor;
    if (reuse && (reuse->attention_scaling != rope->attention_scaling ||
                  memcmp(reuse->inv_freq, rope->inv_freq, half * sizeof(double))))
      reuse = NULL; /* the values changed: nothing to copy */
    if (max_positions) st = build_table(rope, reuse);
  }
  if (st == ROTARY_OK) {
    st = rotary_stream_info_build(&rope->streams, &rope->config, rope->inv_freq, max_positions != 0);
    rope->memory_bytes += rope->streams.bytes;
  }
  if (st != ROTARY_OK) {
    rotary_rope_destroy(rope);
    return st;
  }
  *out = rope;
  return ROTARY_OK;
}

rotary_status rotary_rope_create(const rotary_config *config, size_t max_positions, rotary_rope **out) {
  ROTARY_RETURN_IF(!config || !out, ROTARY_ERR_NULL_POINTER);
  rotary_status st = rotary_config_check(config, NULL);
  if (st != ROTARY_OK) return st;
  return create_rope(config, max_positions, NULL, out);
}

rotary_status rotary_rope_derive(const rotary_rope *from, size_t seq_len, size_t max_positions, rotary_rope **out) {
  ROTARY_RETURN_IF(!from || !out, ROTARY_ERR_NULL_POINTER);
  rotary_config c = from->config;
  c.seq_len = seq_len;
  /* The same rule as rotary_rope_create: the frequencies at the new length must pass the same check. */
  const rotary_status st = rotary_config_check(&c, NULL);
  if (st != ROTARY_OK) return st;
  return create_rope(&c, max_positions, from->table ? from : NULL, out);
}

void rotary_rope_destroy(rotary_rope *rope) {
  if (!rope) return;
  free(rope->table);
  free(rope->inv_freq);
  free(rope->owned);
  rotary_stream_info_free(&rope->streams);
  free(rope);
}

size_t rotary_rope_memory_bytes(const rotary_rope *rope) { return rope ? rope->memory_bytes : 0; }
size_t rotary_rope_head_dim(const rotary_rope *rope) { return rope ? rope->head_dim : 0; }
size_t rotary_rope_rotary_dim(const rotary_rope *rope) { return rope ? rope->rotary_dim : 0; }
size_t rotary_rope_max_positions(const rotary_rope *rope) { return rope ? rope->max_positions : 0; }
rotary_pairing rotary_rope_pairing(const rotary_rope *rope) { return rope ? rope->pairing : ROTARY_PAIRING_HALF; }
size_t rotary_rope_seq_len(const rotary_rope *rope) { return rope ? rope->config.seq_len : 0; }
double rotary_rope_attention_scaling(const rotary_rope *rope) { return rope ? rope->attention_scaling : 0.0; }

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
  const rotary_status status = rotary_rope_rows_check(rope, positions, 1, n, n, cos_out, sin_out);
  if (status != ROTARY_OK) return status;
  for (size_t j = 0; j < n; j++) {
    float *c = cos_out + j * half, *s = sin_out + j * half;
    if (rope->table) {
      const float *row = rotary_rope_table_row(rope, positions[j]);
      memcpy(c, row, half * sizeof(float));
      memcpy(s, row + rope->sin_offset, half * sizeof(float));
    } else {
      rotary_rope_compute_row(rope, positions[j], c, s);
    }
  }
  return ROTARY_OK;
}

void rotary_rope_delta_row(const rotary_rope *rope, int64_t delta, float *cos_out, float *sin_out) {
  const size_t half = rope->rotary_dim / 2;
  const int64_t mag = delta < 0 ? -delta : delta;
  if (rope->table && rope->attention_scaling == 1.0 && mag < (int64_t)rope->max_positions) {
    const float *row = rotary_rope_table_row(rope, mag);
    memcpy(cos_out, row, half * sizeof(float));
    memcpy(sin_out, row + rope->sin_offset, half * sizeof(float));
  } else {
    rope->rows(rope->inv_freq, half, 1.0, mag, cos_out, sin_out);
  }
  if (delta < 0)
    for (size_t i = 0; i < half; i++) sin_out[i] = -sin_out[i];
}
