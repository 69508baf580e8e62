/* token_rows.h: the cos/sin row of one token (table, computed, or the caller's), for every operation's hot loop. */
#ifndef ROTARY_TOKEN_ROWS_H
#define ROTARY_TOKEN_ROWS_H

#include <stdint.h>
#include <string.h>

#include "positions_load.h"
#include "rope.h"
#include "rotary.h"

/* Points *c and *s at the cos/sin row of token t = (b, s_idx) (t = b * seq_len + s_idx) of positions p (for
 * STREAMS_*, stream_stride resolved: nonzero). buf (rotary_rope_task_floats(rope) floats, 64-byte aligned, sin at
 * rope->sin_offset) holds computed rows, gathered multi-stream rows (then the scratch of a table-free gather
 * follows the row), caller rows copied off float alignment, and for ROTARY_INVERSE the negated sin (rotating by
 * -angle is the same kernel with sin negated; bit-identical to a dedicated kernel). A token whose streams agree
 * takes the 1-D row (the table's, no copy). Positions are assumed validated. */
static inline __attribute__((always_inline)) void rotary_token_row(const rotary_rope *rope,
                                                                   const rotary_positions *p,
                                                                   rotary_direction dir, size_t t, size_t b,
                                                                   size_t s_idx, float *buf, const float **c,
                                                                   const float **s) {
  const size_t half = rope->rotary_dim / 2;
  int64_t pos = 0;
  int have_row = 0; /* *c and *s already set (caller rows, a gathered row) */
  switch (p->mode) {
    case ROTARY_POSITIONS_OFFSET: pos = p->offset + (int64_t)s_idx; break;
    case ROTARY_POSITIONS_OFFSETS: pos = rotary_load_i64(p->offsets, b) + (int64_t)s_idx; break;
    case ROTARY_POSITIONS_IDS_I32:
    case ROTARY_POSITIONS_IDS_I64: pos = rotary_load_id(p, t); break;
    case ROTARY_POSITIONS_STREAMS_I32:
    case ROTARY_POSITIONS_STREAMS_I64: {
      int64_t ids[ROTARY_MAX_STREAMS];
      if (rotary_load_stream_ids(p, t, ids)) {
        pos = ids[0];
        break;
      }
      rotary_rope_stream_row(rope, ids, buf, buf + rope->sin_offset, buf + rotary_rope_row_floats(rope));
      *c = buf;
      *s = buf + rope->sin_offset;
      have_row = 1;
      break;
    }
    case ROTARY_POSITIONS_COS_SIN: {
      const size_t bytes = (p->row_stride ? p->row_stride : half) * t * sizeof(float);
      const char *cr = (const char *)p->cos + bytes, *sr = (const char *)p->sin + bytes;
      if ((((uintptr_t)cr | (uintptr_t)sr) & (sizeof(float) - 1)) == 0) {
        *c = (const float *)(const void *)cr;
        *s = (const float *)(const void *)sr;
      } else { /* a caller's rows off float alignment: kernels read float-aligned rows, so copy them */
        memcpy(buf, cr, half * sizeof(float));
        memcpy(buf + rope->sin_offset, sr, half * sizeof(float));
        *c = buf;
        *s = buf + rope->sin_offset;
      }
      have_row = 1;
      break;
    }
  }
  if (!have_row) {
    if (rope->table) {
      *c = rotary_rope_table_row(rope, pos);
      *s = *c + rope->sin_offset;
    } else {
      rotary_rope_compute_row(rope, pos, buf, buf + rope->sin_offset);
      *c = buf;
      *s = buf + rope->sin_offset;
    }
  }
  if (dir == ROTARY_INVERSE) {
    float *neg = buf + rope->sin_offset;
    for (size_t i = 0; i < half; i++) neg[i] = -(*s)[i];
    if (*c != buf) {
      memcpy(buf, *c, half * sizeof(float));
      *c = buf;
    }
    *s = neg;
  }
}

/* Most cos/sin rows an executor computes at once for a table-free rope (rotary_rows_block_size). */
#define ROTARY_ROWS_BLOCK 64

/* How many tokens' rows an executor computes at once into a buffer of `floats` floats: 1 (token by token) unless
 * the rows are computed (a rope without a table, positions not COS_SIN) and at least two fit (so 1 whenever a row
 * does not fit the buffer, where the executor uses its scratch instead), then as many as fit
 * (the last row's multi-stream gather scratch included), at most ROTARY_ROWS_BLOCK. A row computed between a
 * token's head rows stalls the memory stream for longer than it takes (docs/performance.md); a block of them,
 * computed while the walk's next input lines are asked for, does not. */
static inline size_t rotary_rows_block_size(const rotary_rope *rope, const rotary_positions *p, size_t floats) {
  if (rope->table || p->mode == ROTARY_POSITIONS_COS_SIN || floats < rope->streams.tmp_floats) return 1;
  const size_t rows = (floats - rope->streams.tmp_floats) / rotary_rope_row_floats(rope);
  return rows < 2 ? 1 : rows < ROTARY_ROWS_BLOCK ? rows : ROTARY_ROWS_BLOCK;
}

/* Computes the rows of tokens [t0, t1), t1 = min(t0 + block, t_end) (t = b * seq + s_idx; computed rows as
 * rotary_rows_block_size allows), into buf, rotary_rope_row_floats(rope) floats apart: a computed row lands at the
 * buffer it is given. Before each row calls ahead(arg), which asks for input lines the caller's walk reads next
 * (one per two frequencies of a row: half / 2). Returns t1. */
static inline size_t rotary_token_rows_block(const rotary_rope *rope, const rotary_positions *p, rotary_direction dir,
                                             size_t t0, size_t t_end, size_t block, size_t seq, float *buf,
                                             void (*ahead)(void *arg, size_t lines), void *arg) {
  const size_t rf = rotary_rope_row_floats(rope), lines = rope->rotary_dim / 4 + 1;
  const size_t t1 = t_end - t0 < block ? t_end : t0 + block;
  for (size_t t = t0; t < t1; t++) {
    const float *c, *s;
    ahead(arg, lines);
    rotary_token_row(rope, p, dir, t, t / seq, t % seq, buf + (t - t0) * rf, &c, &s);
  }
  return t1;
}

/* Asks for the table row of token t ahead of its use when positions are ids (decode positions are random, so the
 * hardware cannot guess them; offsets run in order). Stream ids: the row of stream 0's id, the whole row of a
 * text token; an image token's streams hold small grid coordinates whose few rows stay in the cache. Only for a
 * rope with a table. always_inline: as a function whose only effect is prefetching, GCC 12's IPA counted it as pure
 * and deleted its calls, so no prefetch ran. */
static inline __attribute__((always_inline)) void rotary_token_row_prefetch(const rotary_rope *rope,
                                                                            const rotary_positions *p, size_t t) {
  int64_t pos;
  if (p->mode == ROTARY_POSITIONS_IDS_I64 || p->mode == ROTARY_POSITIONS_IDS_I32) {
    pos = rotary_load_id(p, t);
  } else if (p->mode == ROTARY_POSITIONS_STREAMS_I64 || p->mode == ROTARY_POSITIONS_STREAMS_I32) {
    pos = rotary_load_index(p->ids, p->mode == ROTARY_POSITIONS_STREAMS_I64, t);
  } else {
    return;
  }
  const char *row = (const char *)rotary_rope_table_row(rope, pos);
  for (size_t b = 0; b < rotary_rope_row_floats(rope) * sizeof(float); b += 64) __builtin_prefetch(row + b, 0, 3);
}

#endif /* ROTARY_TOKEN_ROWS_H */
