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

/* The id of token t of an IDS_I32 or IDS_I64 position list. */
static inline int64_t rotary_load_id(const rotary_positions *p, size_t t) {
  if (p->mode == ROTARY_POSITIONS_IDS_I64) return rotary_load_i64(p->ids, t);
  int32_t v;
  memcpy(&v, (const char *)p->ids + t * sizeof v, sizeof v);
  return v;
}

#endif /* ROTARY_POSITIONS_LOAD_H */
