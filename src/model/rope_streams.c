/* rope_streams.c: multi-stream positions: layout checks, the frequency-to-stream map, and gathered cos/sin rows. */
#include "rope_streams.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "positions_load.h"
#include "rope.h"

#define FAIL_IF ROTARY_FAIL_FIELD_IF

static int is_vision(rotary_stream_layout l) {
  return l == ROTARY_STREAMS_VISION_2D || l == ROTARY_STREAMS_VISION_2D_PIXTRAL;
}

/* SECTIONS and INTERLEAVED: n_streams entries summing to half, zeros after; interleaved streams j > 0 fit. */
static rotary_status check_sections(const rotary_streams *s, size_t half, const char **field) {
  const size_t n = s->n_streams;
  size_t sum = 0;
  for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) {
    FAIL_IF(j >= n && s->sections[j] != 0, "streams.sections", ROTARY_ERR_STREAMS);
    FAIL_IF(j < n && s->sections[j] > half - sum, "streams.sections", ROTARY_ERR_STREAMS);
    if (j < n) sum += s->sections[j];
  }
  FAIL_IF(sum != half, "streams.sections", ROTARY_ERR_STREAMS);
  if (s->layout != ROTARY_STREAMS_INTERLEAVED) return ROTARY_OK;
  /* stream j takes frequencies j, j + n, ..., j + n (sections[j] - 1): the last one must exist */
  for (size_t j = 1; j < n; j++)
    FAIL_IF(s->sections[j] && n * (s->sections[j] - 1) + j >= half, "streams.sections", ROTARY_ERR_STREAMS);
  return ROTARY_OK;
}

rotary_status rotary_streams_check(const rotary_config *c, const char **field) {
  const rotary_streams *s = &c->streams;
  const size_t half = c->rotary_dim / 2, n = s->n_streams;
  switch (s->layout) {
    case ROTARY_STREAMS_NONE: FAIL_IF(n > 1, "streams.n_streams", ROTARY_ERR_STREAMS); return ROTARY_OK;
    case ROTARY_STREAMS_SECTIONS:
    case ROTARY_STREAMS_INTERLEAVED:
      FAIL_IF(n < 2 || n > ROTARY_MAX_STREAMS, "streams.n_streams", ROTARY_ERR_STREAMS);
      return check_sections(s, half, field);
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL:
      FAIL_IF(n != 0 && n != 2, "streams.n_streams", ROTARY_ERR_STREAMS);
      FAIL_IF(c->rotary_dim % 4, "streams.layout", ROTARY_ERR_STREAMS); /* half the frequencies per stream */
      FAIL_IF(c->scaling.type != ROTARY_SCALING_NONE, "scaling.type", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_STREAMS_MAP:
      FAIL_IF(n < 2 || n > ROTARY_MAX_STREAMS, "streams.n_streams", ROTARY_ERR_STREAMS);
      FAIL_IF(!s->map, "streams.map", ROTARY_ERR_STREAMS);
      for (size_t i = 0; i < half; i++) FAIL_IF(s->map[i] >= n, "streams.map", ROTARY_ERR_STREAMS);
      return ROTARY_OK;
  }
  FAIL_IF(1, "streams.layout", ROTARY_ERR_STREAMS);
}

unsigned rotary_streams_stream_of(const rotary_streams *s, size_t half, size_t i) {
  switch (s->layout) {
    case ROTARY_STREAMS_NONE: return 0;
    case ROTARY_STREAMS_SECTIONS: {
      unsigned j = 0;
      for (size_t end = s->sections[0]; i >= end && j + 1 < s->n_streams; end += s->sections[++j]) {}
      return j;
    }
    case ROTARY_STREAMS_INTERLEAVED: {
      const size_t j = i % s->n_streams;
      return j > 0 && i < s->n_streams * s->sections[j] ? (unsigned)j : 0;
    }
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL: return i < half / 2 ? 0 : 1;
    case ROTARY_STREAMS_MAP: return s->map[i];
  }
  return 0;
}

/* Streams per token of a checked layout. */
static size_t stream_count(const rotary_streams *s) {
  if (s->layout == ROTARY_STREAMS_NONE) return 1;
  return is_vision(s->layout) ? 2 : s->n_streams;
}

/* The runs of info->map (counted always, stored when few). */
static void find_runs(rotary_stream_info *info, size_t half) {
  info->n_runs = 0;
  for (size_t i = 0; i < half;) {
    size_t e = i + 1;
    while (e < half && info->map[e] == info->map[i]) e++;
    if (info->n_runs < ROTARY_STREAM_RUNS)
      info->runs[info->n_runs] = (rotary_stream_run){(uint32_t)i, (uint32_t)(e - i), info->map[i]};
    info->n_runs++;
    i = e;
  }
}

/* Many runs: the stream-sorted order, and (table-free) the frequencies in that order. */
static void fill_gather(rotary_stream_info *info, size_t half, const double *inv_freq) {
  size_t k = 0;
  for (size_t j = 0; j < info->n; j++) {
    info->start[j] = k;
    for (size_t i = 0; i < half; i++) {
      if (info->map[i] != j) continue;
      if (info->sorted_inv_freq) info->sorted_inv_freq[k] = inv_freq[i];
      info->order[k++] = (uint16_t)i; /* half <= ROTARY_MAX_HEAD_DIM / 2 = 32768 */
    }
  }
  info->start[info->n] = k;
  if (info->sorted_inv_freq) info->tmp_floats = 2 * half;
}

rotary_status rotary_stream_info_build(rotary_stream_info *info, const rotary_config *c, const double *inv_freq,
                                       int has_table) {
  memset(info, 0, sizeof *info);
  info->n = stream_count(&c->streams);
  if (info->n == 1) return ROTARY_OK;
  const size_t half = c->rotary_dim / 2;
  size_t runs = 0; /* counted first: the block's size depends on it */
  for (size_t i = 0, prev = 0; i < half; i++) {
    const size_t j = rotary_streams_stream_of(&c->streams, half, i);
    runs += i == 0 || j != prev;
    prev = j;
  }
  const int many = runs > ROTARY_STREAM_RUNS;
  const size_t sorted = many && !has_table ? half * sizeof(double) : 0;
  const size_t order = many ? half * sizeof(uint16_t) : 0;
  info->bytes = sorted + order + half; /* doubles first: every part stays aligned */
  char *block = malloc(info->bytes);
  if (!block) {
    info->bytes = 0;
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  info->block = block;
  info->sorted_inv_freq = sorted ? (double *)(void *)block : NULL;
  info->order = order ? (uint16_t *)(void *)(block + sorted) : NULL;
  info->map = (uint8_t *)(block + sorted + order);
  for (size_t i = 0; i < half; i++) info->map[i] = (uint8_t)rotary_streams_stream_of(&c->streams, half, i);
  find_runs(info, half);
  if (many) fill_gather(info, half, inv_freq);
  return ROTARY_OK;
}

void rotary_stream_info_free(rotary_stream_info *info) {
  free(info->block);
  info->block = NULL;
}

/* ---- gathered rows ---- */

void rotary_rope_stream_row(const rotary_rope *rope, const int64_t *ids, float *cos, float *sin, float *tmp) {
  const rotary_stream_info *st = &rope->streams;
  const size_t half = rope->rotary_dim / 2;
  if (st->n_runs <= ROTARY_STREAM_RUNS) {
    for (size_t r = 0; r < st->n_runs; r++) {
      const rotary_stream_run run = st->runs[r];
      const int64_t id = ids[run.stream];
      if (rope->table) {
        const float *row = rotary_rope_table_row(rope, id) + run.start;
        memcpy(cos + run.start, row, run.len * sizeof(float));
        memcpy(sin + run.start, row + rope->sin_offset, run.len * sizeof(float));
      } else {
        rope->rows(rope->inv_freq + run.start, run.len, rope->attention_scaling, id, cos + run.start,
                   sin + run.start);
      }
    }
    return;
  }
  if (rope->table) { /* stream 0's whole row, then each other stream's frequencies over it */
    const float *first = rotary_rope_table_row(rope, ids[0]);
    memcpy(cos, first, half * sizeof(float));
    memcpy(sin, first + rope->sin_offset, half * sizeof(float));
    for (size_t j = 1; j < st->n; j++) {
      if (ids[j] == ids[0]) continue;
      const float *row = rotary_rope_table_row(rope, ids[j]), *row_sin = row + rope->sin_offset;
      for (size_t k = st->start[j]; k < st->start[j + 1]; k++) {
        const size_t i = st->order[k];
        cos[i] = row[i];
        sin[i] = row_sin[i];
      }
    }
    return;
  }
  for (size_t j = 0; j < st->n; j++) /* each stream's frequencies, contiguous in the sorted order */
    rope->rows(st->sorted_inv_freq + st->start[j], st->start[j + 1] - st->start[j], rope->attention_scaling, ids[j],
               tmp + st->start[j], tmp + half + st->start[j]);
  for (size_t k = 0; k < half; k++) {
    cos[st->order[k]] = tmp[k];
    sin[st->order[k]] = tmp[half + k];
  }
}

/* ---- public queries ---- */

size_t rotary_rope_streams(const rotary_rope *rope) { return rope ? rope->streams.n : 0; }

rotary_status rotary_rope_stream_map(const rotary_rope *rope, uint8_t *map) {
  ROTARY_RETURN_IF(!rope || !map, ROTARY_ERR_NULL_POINTER);
  const size_t half = rope->rotary_dim / 2;
  if (rope->streams.map) memcpy(map, rope->streams.map, half);
  else memset(map, 0, half);
  return ROTARY_OK;
}

rotary_status rotary_stream_ids_bytes(size_t n_streams, size_t stride, size_t n, size_t size, size_t *bytes) {
  size_t count;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(n_streams - 1, stride, &count) ||
                       rotary_add_overflow_size(count, n, &count) || rotary_mul_overflow_size(count, size, bytes),
                   ROTARY_ERR_OVERFLOW);
  return ROTARY_OK;
}

rotary_status rotary_rope_rows_check(const rotary_rope *rope, const int64_t *ids, size_t n_streams, size_t stride,
                                     size_t n, const float *cos_out, const float *sin_out) {
  const size_t half = rope->rotary_dim / 2;
  size_t count, bytes, id_bytes;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(n, half, &count), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(count, sizeof(float), &bytes), ROTARY_ERR_OVERFLOW);
  const rotary_status status = rotary_stream_ids_bytes(n_streams, stride, n, sizeof(int64_t), &id_bytes);
  if (status != ROTARY_OK) return status;
  ROTARY_RETURN_IF(UINTPTR_MAX - (uintptr_t)cos_out < bytes || UINTPTR_MAX - (uintptr_t)sin_out < bytes ||
                       UINTPTR_MAX - (uintptr_t)ids < id_bytes,
                   ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_bytes_overlap(cos_out, bytes, sin_out, bytes) ||
                       rotary_bytes_overlap(ids, id_bytes, cos_out, bytes) ||
                       rotary_bytes_overlap(ids, id_bytes, sin_out, bytes),
                   ROTARY_ERR_OVERLAP);
  const int64_t max_pos = rotary_rope_max_position(rope);
  for (size_t j = 0; j < n_streams; j++)
    for (size_t t = 0; t < n; t++) ROTARY_RETURN_IF(ids[j * stride + t] < 0 || ids[j * stride + t] > max_pos,
                                                    ROTARY_ERR_POSITION);
  return ROTARY_OK;
}

rotary_status rotary_rope_cos_sin_streams(const rotary_rope *rope, const int64_t *ids, size_t stream_stride,
                                          size_t n, float *cos_out, float *sin_out) {
  ROTARY_RETURN_IF(!rope, ROTARY_ERR_NULL_POINTER);
  if (n == 0) return ROTARY_OK;
  ROTARY_RETURN_IF(!ids || !cos_out || !sin_out, ROTARY_ERR_NULL_POINTER);
  const size_t ns = rope->streams.n, half = rope->rotary_dim / 2;
  const size_t stride = stream_stride ? stream_stride : n;
  ROTARY_RETURN_IF(stride < n, ROTARY_ERR_INVALID_ARGUMENT);
  const rotary_status status = rotary_rope_rows_check(rope, ids, ns, stride, n, cos_out, sin_out);
  if (status != ROTARY_OK) return status;
  float *tmp = NULL;
  if (rope->streams.tmp_floats) {
    tmp = malloc(rope->streams.tmp_floats * sizeof(float));
    ROTARY_RETURN_IF(!tmp, ROTARY_ERR_OUT_OF_MEMORY);
  }
  for (size_t t = 0; t < n; t++) {
    int64_t id[ROTARY_MAX_STREAMS] = {ids[t]};
    int same = 1;
    for (size_t j = 1; j < ns; j++) {
      id[j] = ids[j * stride + t];
      same &= id[j] == id[0];
    }
    float *c = cos_out + t * half, *s = sin_out + t * half;
    if (!same) {
      rotary_rope_stream_row(rope, id, c, s, tmp);
    } else if (rope->table) {
      const float *row = rotary_rope_table_row(rope, id[0]);
      memcpy(c, row, half * sizeof(float));
      memcpy(s, row + rope->sin_offset, half * sizeof(float));
    } else {
      rotary_rope_compute_row(rope, id[0], c, s);
    }
  }
  free(tmp);
  return ROTARY_OK;
}
