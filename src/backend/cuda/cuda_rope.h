/* cuda_rope.h: a rope's read-only data on one CUDA device (rotary_cuda_rope), shared by every CUDA operation. */
#ifndef ROTARY_CUDA_ROPE_H
#define ROTARY_CUDA_ROPE_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

struct rotary_cuda_rope {
  const rotary_rope *host; /* the host rope (outlives this): every call's host checks read its metadata */
  int device;              /* the CUDA device ordinal */
  const float *table;      /* device copy of host->table (same layout: rows of table_row_floats floats, cos at 0,
                              sin at table_sin_offset), or NULL for a table-free rope */
  size_t table_row_floats; /* rotary_rope_row_floats(host) */
  size_t table_sin_offset; /* host->sin_offset */
  int64_t max_position;    /* rotary_rope_max_position(host) */
  const double *inv_freq;  /* device copy of host->inv_freq (rotary_dim/2 doubles) */
  const uint8_t *map;      /* device copy of host->streams.map (rotary_dim/2 bytes), NULL for one stream */
  size_t n_streams;        /* host->streams.n */
  double attention_scaling;
  int sm_count;            /* multiprocessors of the device (read once here, used to size every launch's grid) */
  size_t device_bytes;     /* what rotary_cuda_rope_memory_bytes reports */
};

#endif /* ROTARY_CUDA_ROPE_H */
