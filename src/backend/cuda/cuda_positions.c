/* cuda_positions.c: rotary_cuda_positions_fill, a validated call's positions described for the CUDA kernels. */
#include "cuda_positions.h"

#include <string.h>

#include "cuda_rope.h"

void rotary_cuda_positions_fill(rotary_cuda_positions *out, const rotary_cuda_rope *rope, const rotary_positions *p,
                                size_t batch, size_t seq_len, rotary_direction dir) {
  rotary_cuda_positions r;
  memset(&r, 0, sizeof r);
  const size_t half = rotary_rope_rotary_dim(rope->host) / 2;
  const size_t tokens = batch * seq_len; /* validated: no overflow */
  const int streams = p->mode == ROTARY_POSITIONS_STREAMS_I32 || p->mode == ROTARY_POSITIONS_STREAMS_I64;
  r.mode = (int32_t)p->mode;
  r.inverse = dir == ROTARY_INVERSE;
  r.wide = p->mode == ROTARY_POSITIONS_IDS_I64 || p->mode == ROTARY_POSITIONS_STREAMS_I64;
  r.n_ids = streams ? (int32_t)p->n_streams : 1; /* validated: n_streams is the rope's, 1 .. ROTARY_MAX_STREAMS */
  const uintptr_t id_size = p->mode == ROTARY_POSITIONS_OFFSETS ? 8u : (r.wide ? 8u : 4u);
  const void *arr = p->mode == ROTARY_POSITIONS_OFFSETS ? (const void *)p->offsets : p->ids;
  r.ids_aligned = ((uintptr_t)arr & (id_size - 1)) == 0;
  r.cos_sin_aligned = (((uintptr_t)p->cos | (uintptr_t)p->sin) & (sizeof(float) - 1)) == 0;
  r.offset = p->offset;
  r.offsets = p->offsets;
  r.ids = p->ids;
  r.cos = p->cos;
  r.sin = p->sin;
  r.row_stride = p->row_stride ? p->row_stride : half;
  r.stream_stride = p->stream_stride ? p->stream_stride : tokens;
  r.seq_len = seq_len;
  r.batch = batch;
  r.max_position = rope->max_position;
  r.half = (uint32_t)half; /* rotary_dim <= ROTARY_MAX_HEAD_DIM */
  r.table = rope->table;
  r.table_row_floats = rope->table_row_floats;
  r.table_sin_offset = rope->table_sin_offset;
  r.inv_freq = rope->inv_freq;
  r.map = rope->map;
  r.scaling = rope->attention_scaling;
  *out = r;
}
