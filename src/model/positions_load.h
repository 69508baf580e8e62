/* positions_load.h: reads of caller position arrays (offsets, int32/int64 ids), which may start at any byte. */
#ifndef ROTARY_POSITIONS_LOAD_H
#define ROTARY_POSITIONS_LOAD_H

#include <stdint.h>
#include <string.h>

#include "rotary.h"

/* Element i of an int64 array: memcpy, which compiles to a plain load. */
static inline int64_t rotary_load_i64(const void *base, size_t i) {
  int64_t v;
  memcpy(&v, (const char *)base + i * sizeof v, sizeof v);
  return v;
}

/* Element i of an int64 (wide) or int32 array. */
static inline int64_t rotary_load_index(const void *base, int wide, size_t i) {
  if (wide) return rotary_load_i64(base, i);
  int32_t v;
  memcpy(&v, (const char *)base + i * sizeof v, sizeof v);
  return v;
}

/* The id of token t of an IDS_I32 or IDS_I64 position list. */
static inline int64_t rotary_load_id(const rotary_positions *p, size_t t) {
  return rotary_load_index(p->ids, p->mode == ROTARY_POSITIONS_IDS_I64, t);
}

/* The ids of token t's n_streams streams of a STREAMS_I32 or STREAMS_I64 list whose stream_stride is resolved
 * (nonzero) into ids; returns nonzero when they are all equal (a text token: the plain 1-D row). */
static inline int rotary_load_stream_ids(const rotary_positions *p, size_t t, int64_t *ids) {
  const int wide = p->mode == ROTARY_POSITIONS_STREAMS_I64;
  int same = 1;
  ids[0] = rotary_load_index(p->ids, wide, t);
  for (size_t j = 1; j < p->n_streams; j++) {
    ids[j] = rotary_load_index(p->ids, wide, j * p->stream_stride + t);
    same &= ids[j] == ids[0];
  }
  return same;
}

#endif /* ROTARY_POSITIONS_LOAD_H */
