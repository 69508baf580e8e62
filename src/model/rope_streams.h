/* rope_streams.h: multi-stream positions of a rope: the frequency-to-stream map, its checks, and row gathering. */
#ifndef ROTARY_ROPE_STREAMS_H
#define ROTARY_ROPE_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

/* Maps with at most this many runs (maximal ranges of frequencies of one stream) gather a row run by run (memcpy
 * from a table row, or one rows-kernel call per run); maps with more (interleaved, scattered) go by a
 * stream-sorted frequency order: with a table, stream 0's row copied whole, then each other stream's frequencies
 * copied over it; table-free, each stream's frequencies computed in one rows-kernel call, then put in place.
 * Sections give n_streams runs, vision layouts 2. */
#define ROTARY_STREAM_RUNS 8

typedef struct rotary_stream_run {
  uint32_t start, len, stream;
} rotary_stream_run;

/* What a rope knows about its streams (all zero but n = 1 for a one-stream rope). One allocation, `block`. */
typedef struct rotary_stream_info {
  size_t n;                                /* ids per token: 1 .. ROTARY_MAX_STREAMS */
  uint8_t *map;                            /* rotary_dim/2 entries; NULL for one stream */
  size_t n_runs;                           /* runs of the map; runs[] holds them when <= ROTARY_STREAM_RUNS */
  rotary_stream_run runs[ROTARY_STREAM_RUNS];
  uint16_t *order;                         /* many runs: frequencies sorted by stream (stable) */
  double *sorted_inv_freq;                 /* many runs, table-free: inv_freq[order[k]] */
  size_t start[ROTARY_MAX_STREAMS + 1];    /* many runs: stream j is order[start[j] .. start[j+1]) */
  size_t tmp_floats;                       /* scratch a table-free gather needs: 2 x half (sorted cos, sin), else 0 */
  void *block;
  size_t bytes;                            /* of block */
} rotary_stream_info;

/* Checks config->streams for a config whose dims are valid; on error *field (when not NULL) names the field.
 * STREAMS, or SCALING for a vision layout with scaling (field "scaling.type"). */
rotary_status rotary_streams_check(const rotary_config *c, const char **field);

/* The stream of frequency i of a checked layout (0 for NONE). */
unsigned rotary_streams_stream_of(const rotary_streams *s, size_t half, size_t i);

/* Fills info for a checked config (map from the layout, runs, and what the gather needs: the sorted order, and
 * table-free the sorted frequencies; inv_freq: the rope's half frequencies). OUT_OF_MEMORY. */
rotary_status rotary_stream_info_build(rotary_stream_info *info, const rotary_config *c, const double *inv_freq,
                                       int has_table);

void rotary_stream_info_free(rotary_stream_info *info);

/* Bytes from the first to past the last of n_streams x n ids of `size` bytes, streams `stride` ids apart
 * (n_streams >= 1): ((n_streams - 1) * stride + n) * size. OVERFLOW. */
rotary_status rotary_stream_ids_bytes(size_t n_streams, size_t stride, size_t n, size_t size, size_t *bytes);

/* The checks of a rows query (rotary_rope_cos_sin, rotary_rope_cos_sin_streams) with non-NULL pointers and n > 0:
 * n rows of rotary_dim/2 floats into cos_out and sin_out, from n_streams x n int64 ids streams `stride` apart
 * (a 1-D query: 1 stream). OVERFLOW (sizes, address ranges), OVERLAP (cos, sin and ids), POSITION (any id). */
rotary_status rotary_rope_rows_check(const rotary_rope *rope, const int64_t *ids, size_t n_streams, size_t stride,
                                     size_t n, const float *cos_out, const float *sin_out);

#endif /* ROTARY_ROPE_STREAMS_H */
