/* cuda_positions.h: a call's positions and the rope's rows as the CUDA kernels read them (plain C, for C and CUDA). */
#ifndef ROTARY_CUDA_POSITIONS_H
#define ROTARY_CUDA_POSITIONS_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Passed by value to a kernel. Token t = b * seq_len + s. Every pointer is a device address; the position arrays
 * and caller rows may start at any byte (the *_aligned flags say when plain loads are safe). */
typedef struct rotary_cuda_positions {
  int32_t mode;              /* rotary_position_mode */
  int32_t inverse;           /* ROTARY_INVERSE: every sin is negated (the CPU's rotary_token_row does the same) */
  int32_t wide;              /* IDS_I64 / STREAMS_I64: ids are int64, else int32 */
  int32_t n_ids;             /* ids per token the kernel loads: n_streams for STREAMS_* (1 .. ROTARY_MAX_STREAMS),
                                else 1 (a one-id mode gives every stream the token's one position) */
  int32_t ids_aligned;       /* offsets / ids aligned to their element size */
  int32_t cos_sin_aligned;   /* COS_SIN: cos and sin float aligned (rows keep it: row_stride counts floats) */
  int64_t offset;            /* OFFSET */
  const void *offsets;       /* OFFSETS: batch int64 */
  const void *ids;           /* IDS_*, STREAMS_*: int32 or int64 */
  const void *cos;           /* COS_SIN: fp32 rows, row_stride floats apart */
  const void *sin;
  uint64_t row_stride;       /* COS_SIN: resolved (0 -> rotary_dim/2) */
  uint64_t stream_stride;    /* STREAMS_*: elements between streams, resolved (0 -> batch * seq_len) */
  uint64_t seq_len;
  uint64_t batch;
  int64_t max_position;      /* largest valid position (rotary_cuda_rope.max_position) */
  uint32_t half;             /* rotary_dim / 2: frequencies per row */
  const float *table;        /* device table (cos at 0, sin at table_sin_offset per row) or NULL: table-free */
  uint64_t table_row_floats;
  uint64_t table_sin_offset;
  const double *inv_freq;    /* half fp64 frequencies (table-free rows) */
  const uint8_t *map;        /* stream of each frequency; read only when n_ids > 1 */
  double scaling;            /* attention scaling of table-free rows (never of COS_SIN rows) */
} rotary_cuda_positions;

/* Fills *out for a validated call (rotary_validate_apply passed, or the kv_write equivalent) of batch x seq_len
 * tokens with positions p in direction dir, on rope. Reads host metadata only. */
void rotary_cuda_positions_fill(rotary_cuda_positions *out, const rotary_cuda_rope *rope, const rotary_positions *p,
                                size_t batch, size_t seq_len, rotary_direction dir);

#ifdef __cplusplus
}
#endif

#endif /* ROTARY_CUDA_POSITIONS_H */
