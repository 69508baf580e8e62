/* strided_view.c: extents, double-write and disjointness proofs of strided views, and the position checks. */
#include "strided_view.h"

#include <string.h>

#include "check.h"
#include "positions_load.h"
#include "rope.h"

size_t rotary_dtype_size(rotary_dtype dtype) {
  switch (dtype) {
    case ROTARY_F32: return 4;
    case ROTARY_F16:
    case ROTARY_BF16: return 2;
    case ROTARY_FP8_E4M3: return 1;
  }
  return 0;
}

/* Fills the extent of r from base, counts and strides; OVERFLOW when any offset or address wraps. */
rotary_status rotary_view_extent(rotary_view *r) {
  int64_t lo = 0, hi = (int64_t)r->row - 1;
  for (int d = 0; d < 3; d++) {
    int64_t span;
    ROTARY_RETURN_IF(r->count[d] - 1 > INT64_MAX, ROTARY_ERR_OVERFLOW);
    ROTARY_RETURN_IF(rotary_mul_overflow_i64((int64_t)r->stride[d], (int64_t)(r->count[d] - 1), &span),
                     ROTARY_ERR_OVERFLOW);
    ROTARY_RETURN_IF(rotary_add_overflow_i64(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi), ROTARY_ERR_OVERFLOW);
  }
  /* Every step checked: lo_bytes may be exactly INT64_MIN (whose negation does not exist, so its magnitude is
   * taken in unsigned arithmetic) and hi may be exactly INT64_MAX (so the end index hi + 1 is checked too). */
  int64_t end, lo_bytes, hi_bytes;
  ROTARY_RETURN_IF(rotary_add_overflow_i64(hi, 1, &end), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_i64(lo, (int64_t)r->elem, &lo_bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_i64(end, (int64_t)r->elem, &hi_bytes), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(lo_bytes < PTRDIFF_MIN || hi_bytes > PTRDIFF_MAX, ROTARY_ERR_OVERFLOW);
  const uint64_t below = 0u - (uint64_t)lo_bytes; /* lo_bytes <= 0: its magnitude, INT64_MIN included */
  ROTARY_RETURN_IF(below > r->base, ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(UINTPTR_MAX - r->base < (uintptr_t)hi_bytes, ROTARY_ERR_OVERFLOW);
  r->lo = r->base - (uintptr_t)below;
  r->hi = r->base + (uintptr_t)hi_bytes;
  return ROTARY_OK;
}

/* Nonzero when the n dims (count, stride) nest around an inner block of `inner` elements: sorted by |stride|,
 * each stride is at least the extent of everything inside it, so no two (index, inner element) pairs meet. */
int rotary_strides_nest(const size_t *count, const ptrdiff_t *stride, int n, uint64_t inner) {
  uint64_t mag[3];
  size_t cnt[3];
  int m = 0;
  for (int d = 0; d < n; d++) {
    if (count[d] <= 1) continue;
    uint64_t a = stride[d] < 0 ? (uint64_t)0 - (uint64_t)stride[d] : (uint64_t)stride[d];
    int j = m++;
    while (j > 0 && mag[j - 1] > a) {
      mag[j] = mag[j - 1];
      cnt[j] = cnt[j - 1];
      j--;
    }
    mag[j] = a;
    cnt[j] = count[d];
  }
  uint64_t extent = inner; /* bounded by the region's extent, already checked not to overflow */
  for (int j = 0; j < m; j++) {
    if (mag[j] < extent) return 0;
    extent += mag[j] * (cnt[j] - 1);
  }
  return 1;
}

/* Nonzero when two strides address the same elements over `count` indices (any strides do for one index). */
static int same_stride(ptrdiff_t a, ptrdiff_t b, size_t count) { return count <= 1 || a == b; }

/* Nonzero when a and b share no byte. Proven either by disjoint extents or, for views of one buffer that share
 * batch and seq strides (q and k inside packed QKV rows), by disjoint per-token footprints whose union nests
 * within the token strides. Anything else is reported as overlapping: the check errs on the safe side. */
int rotary_views_disjoint(const rotary_view *a, const rotary_view *b) {
  if (a->hi <= b->lo || b->hi <= a->lo) return 1;
  if (a->elem != b->elem || a->elem == 0) return 0; /* flat arrays: only their extents count */
  for (int d = 0; d < 2; d++)
    if (a->count[d] != b->count[d] || !same_stride(a->stride[d], b->stride[d], a->count[d])) return 0;
  const rotary_view *r[2] = {a, b};
  uintptr_t start[2], end[2];
  for (int i = 0; i < 2; i++) {
    ptrdiff_t span = r[i]->stride[2] * (ptrdiff_t)(r[i]->count[2] - 1); /* within the checked extent */
    ptrdiff_t first = span < 0 ? span : 0, last = span < 0 ? 0 : span;
    start[i] = r[i]->base + (uintptr_t)(first * (ptrdiff_t)r[i]->elem);
    end[i] = r[i]->base + (uintptr_t)((last + (ptrdiff_t)r[i]->row) * (ptrdiff_t)r[i]->elem);
  }
  if (start[0] < end[1] && start[1] < end[0]) return 0;
  uintptr_t lo = start[0] < start[1] ? start[0] : start[1];
  uintptr_t hi = end[0] > end[1] ? end[0] : end[1];
  uint64_t width = (hi - lo + a->elem - 1) / a->elem;
  return rotary_strides_nest(a->count, a->stride, 2, width);
}

void rotary_view_of_tensor(rotary_view *v, const void *base, size_t batch, size_t seq, const rotary_tensor *t,
                           size_t head_dim, int output) {
  v->base = (uintptr_t)base;
  v->elem = rotary_dtype_size(t->dtype);
  v->count[0] = batch;
  v->count[1] = seq;
  v->count[2] = t->n_heads;
  v->stride[0] = output ? t->out_stride_batch : t->stride_batch;
  v->stride[1] = output ? t->out_stride_seq : t->stride_seq;
  v->stride[2] = output ? t->out_stride_head : t->stride_head;
  v->row = head_dim;
}

void rotary_view_span(rotary_view *v, uintptr_t lo, uintptr_t hi) {
  memset(v, 0, sizeof *v);
  v->base = v->lo = lo;
  v->hi = hi;
}

int rotary_view_writes_once(const rotary_view *v) { return rotary_strides_nest(v->count, v->stride, 3, v->row); }

/* A flat read-only array of `bytes` bytes at p as a region; OVERFLOW when it cannot be indexed or would wrap. */
rotary_status rotary_view_flat(rotary_view *r, const void *p, size_t bytes) {
  ROTARY_RETURN_IF(bytes > PTRDIFF_MAX || UINTPTR_MAX - (uintptr_t)p < bytes, ROTARY_ERR_OVERFLOW);
  r->base = r->lo = (uintptr_t)p;
  r->hi = r->lo + bytes;
  r->elem = 0; /* never equal to a tensor's: only extents are compared */
  return ROTARY_OK;
}

/* In place: the output is exactly the input, element for element. */
int rotary_tensor_in_place(size_t batch, size_t seq, const rotary_tensor *t) {
  return t->in == t->out && same_stride(t->stride_batch, t->out_stride_batch, batch) &&
         same_stride(t->stride_seq, t->out_stride_seq, seq) &&
         same_stride(t->stride_head, t->out_stride_head, t->n_heads);
}

rotary_status rotary_check_tensor_args(const rotary_tensor *t, int need_out) {
  ROTARY_RETURN_IF(!t->in || (need_out && !t->out), ROTARY_ERR_NULL_POINTER);
  /* fp8 is a KV-cache dtype only: no rotation kernel reads or writes it */
  ROTARY_RETURN_IF(rotary_dtype_size(t->dtype) == 0 || t->dtype == ROTARY_FP8_E4M3, ROTARY_ERR_DTYPE);
  return ROTARY_OK;
}

rotary_status rotary_check_position_args(const rotary_positions *p) {
  switch (p->mode) {
    case ROTARY_POSITIONS_OFFSET: return ROTARY_OK;
    case ROTARY_POSITIONS_OFFSETS: return p->offsets ? ROTARY_OK : ROTARY_ERR_NULL_POINTER;
    case ROTARY_POSITIONS_IDS_I32:
    case ROTARY_POSITIONS_IDS_I64: return p->ids ? ROTARY_OK : ROTARY_ERR_NULL_POINTER;
    case ROTARY_POSITIONS_COS_SIN: return p->cos && p->sin ? ROTARY_OK : ROTARY_ERR_NULL_POINTER;
    case ROTARY_POSITIONS_STREAMS_I32:
    case ROTARY_POSITIONS_STREAMS_I64: return p->ids ? ROTARY_OK : ROTARY_ERR_NULL_POINTER;
  }
  return ROTARY_ERR_INVALID_ARGUMENT;
}

/* Checks that first .. first + seq_len - 1 are positions of the rope. */
static rotary_status check_run(int64_t first, size_t seq_len, int64_t max_pos) {
  int64_t last;
  ROTARY_RETURN_IF(first < 0, ROTARY_ERR_POSITION);
  ROTARY_RETURN_IF(seq_len - 1 > INT64_MAX, ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_add_overflow_i64(first, (int64_t)(seq_len - 1), &last), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(last > max_pos, ROTARY_ERR_POSITION);
  return ROTARY_OK;
}

/* STREAMS_*: the rope's stream count, a stride of at least `tokens`, the ids' extent as a flat view, every id of
 * every stream in range. */
static rotary_status check_stream_ids(const rotary_rope *rope, const rotary_positions *p, size_t tokens,
                                      rotary_view *array, int on_device) {
  ROTARY_RETURN_IF(p->n_streams != rope->streams.n, ROTARY_ERR_STREAMS);
  const size_t stride = p->stream_stride ? p->stream_stride : tokens;
  ROTARY_RETURN_IF(stride < tokens, ROTARY_ERR_INVALID_ARGUMENT);
  const size_t size = p->mode == ROTARY_POSITIONS_STREAMS_I64 ? 8 : 4;
  size_t bytes;
  rotary_status st = rotary_stream_ids_bytes(p->n_streams, stride, tokens, size, &bytes);
  if (st != ROTARY_OK || (st = rotary_view_flat(array, p->ids, bytes)) != ROTARY_OK || on_device) return st;
  const int64_t max_pos = rotary_rope_max_position(rope);
  for (size_t j = 0; j < p->n_streams; j++) {
    for (size_t t = 0; t < tokens; t++) {
      const int64_t id = rotary_load_index(p->ids, size == 8, j * stride + t);
      ROTARY_RETURN_IF(id < 0 || id > max_pos, ROTARY_ERR_POSITION);
    }
  }
  return ROTARY_OK;
}

/* Range-checks every position and describes the read-only arrays behind them as regions (*n of them). */
rotary_status rotary_check_positions(const rotary_rope *rope, const rotary_positions *p, size_t batch,
                                     size_t seq_len, rotary_view *arrays, int *n, int on_device) {
  const int64_t max_pos = rotary_rope_max_position(rope);
  size_t bytes, tokens;
  rotary_status st;
  *n = 0;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(batch, seq_len, &tokens), ROTARY_ERR_OVERFLOW);
  switch (p->mode) {
    case ROTARY_POSITIONS_OFFSET: return check_run(p->offset, seq_len, max_pos);
    case ROTARY_POSITIONS_OFFSETS:
      ROTARY_RETURN_IF(rotary_mul_overflow_size(batch, sizeof(int64_t), &bytes), ROTARY_ERR_OVERFLOW);
      if ((st = rotary_view_flat(&arrays[(*n)++], p->offsets, bytes)) != ROTARY_OK || on_device) return st;
      for (size_t b = 0; b < batch; b++) {
        if ((st = check_run(rotary_load_i64(p->offsets, b), seq_len, max_pos)) != ROTARY_OK) return st;
      }
      return ROTARY_OK;
    case ROTARY_POSITIONS_IDS_I32:
    case ROTARY_POSITIONS_IDS_I64: {
      const int wide = p->mode == ROTARY_POSITIONS_IDS_I64;
      ROTARY_RETURN_IF(rotary_mul_overflow_size(tokens, wide ? 8 : 4, &bytes), ROTARY_ERR_OVERFLOW);
      if ((st = rotary_view_flat(&arrays[(*n)++], p->ids, bytes)) != ROTARY_OK || on_device) return st;
      for (size_t t = 0; t < tokens; t++) {
        const int64_t id = rotary_load_id(p, t);
        ROTARY_RETURN_IF(id < 0 || id > max_pos, ROTARY_ERR_POSITION);
      }
      return ROTARY_OK;
    }
    case ROTARY_POSITIONS_COS_SIN: {
      const size_t half = rope->rotary_dim / 2;
      const size_t row_stride = p->row_stride ? p->row_stride : half;
      size_t count;
      ROTARY_RETURN_IF(rotary_mul_overflow_size(tokens - 1, row_stride, &count), ROTARY_ERR_OVERFLOW);
      ROTARY_RETURN_IF(rotary_add_overflow_size(count, half, &count), ROTARY_ERR_OVERFLOW);
      ROTARY_RETURN_IF(rotary_mul_overflow_size(count, sizeof(float), &bytes), ROTARY_ERR_OVERFLOW);
      if ((st = rotary_view_flat(&arrays[(*n)++], p->cos, bytes)) != ROTARY_OK) return st;
      return rotary_view_flat(&arrays[(*n)++], p->sin, bytes);
    }
    case ROTARY_POSITIONS_STREAMS_I32:
    case ROTARY_POSITIONS_STREAMS_I64: return check_stream_ids(rope, p, tokens, &arrays[(*n)++], on_device);
  }
  return ROTARY_ERR_INVALID_ARGUMENT;
}

