/* rope.h: the internals of a rotary embedding (frequencies and the optional cos/sin table). */
#ifndef ROTARY_ROPE_H
#define ROTARY_ROPE_H

#include <stdint.h>

#include "rope_streams.h"
#include "rotary.h"
#include "sincos.h"

struct rotary_rope {
  size_t head_dim;
  size_t rotary_dim;
  size_t max_positions;      /* 0: table-free */
  rotary_pairing pairing;
  double attention_scaling;  /* the config's times the family's attention factor */
  double *inv_freq;          /* rotary_dim / 2 values */
  rotary_config config;      /* as created, seq_len included; inv_freq and the LongRoPE factors point into
                                `owned`, so that rotary_rope_derive can recompute the frequencies */
  double *owned;             /* copies of the config's arrays (rotary_dim/2 doubles each), or NULL */
  float *table;              /* 64-byte aligned; per position (rotary_rope_row_floats): rotary_dim/2 cos at 0 and
                                rotary_dim/2 sin at sin_offset; NULL when table-free */
  size_t sin_offset;         /* rotary_dim/2 rounded up to whole 64-byte lines (when at least one line): every
                                cos and sin row starts on a line, so the kernels' vector loads never split; the
                                rows a call computes (table-free, inverse) are laid out the same way */
  rotary_rows_fn rows;       /* the cos/sin rows kernel chosen at creation: builds the table and table-free rows */
  rotary_stream_info streams; /* multi-stream positions: n = 1 for a one-stream rope (rope_streams.h) */
  size_t memory_bytes;
};

/* Largest position a call may use with this rope. */
static inline int64_t rotary_rope_max_position(const rotary_rope *rope) {
  return rope->max_positions ? (int64_t)rope->max_positions - 1 : ROTARY_MAX_POSITION;
}

/* Computes the cos and sin row of one valid position exactly as the table holds it (the same rows kernel): cos and
 * sin of the exact angle pos * inv_freq in fp64, times attention_scaling, one rounding to fp32. */
static inline void rotary_rope_compute_row(const rotary_rope *rope, int64_t pos, float *cos, float *sin) {
  rope->rows(rope->inv_freq, rope->rotary_dim / 2, rope->attention_scaling, pos, cos, sin);
}

/* Floats per cos/sin row, padding included: the table's stride, and what a computed row needs. */
static inline size_t rotary_rope_row_floats(const rotary_rope *rope) { return 2 * rope->sin_offset; }

/* The cos row of a valid position in the table (its sin row starts rope->sin_offset floats later). */
static inline const float *rotary_rope_table_row(const rotary_rope *rope, int64_t pos) {
  return rope->table + (size_t)pos * rotary_rope_row_floats(rope);
}

/* Floats of the per-task buffer that rotary_token_row needs: a row, and the scratch of a table-free gather. */
static inline size_t rotary_rope_task_floats(const rotary_rope *rope) {
  return rotary_rope_row_floats(rope) + rope->streams.tmp_floats;
}

/* Writes the cos and sin row (rotary_dim/2 values each) of a token of a multi-stream rope whose stream j has id
 * ids[j] (valid positions; j < rope->streams.n): frequency i takes the row of ids[map[i]], the very values the
 * table (or the rows kernel) holds for that id. tmp: rope->streams.tmp_floats floats (unused when 0). */
void rotary_rope_stream_row(const rotary_rope *rope, const int64_t *ids, float *cos, float *sin, float *tmp);

/* The cos and sin row (rotary_dim/2 values each) that turns a row by delta positions, for re-rotating cached keys
 * that carry the attention scaling already: cos and sin of the exact angle |delta| * inv_freq[i] in fp64, rounded
 * once to fp32 WITHOUT attention scaling (the table's row when the rope's scaling is 1 and |delta| is in the
 * table: the same bits), and sin negated when delta < 0 (sin is odd, cos even: exactly the row of -|delta|).
 * |delta| <= ROTARY_MAX_POSITION (checked by the caller). */
void rotary_rope_delta_row(const rotary_rope *rope, int64_t delta, float *cos, float *sin);

#endif /* ROTARY_ROPE_H */
