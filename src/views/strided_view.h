/* strided_view.h: reusable checks of strided views (extent, overflow, no double write, disjointness, positions). */
#ifndef ROTARY_STRIDED_VIEW_H
#define ROTARY_STRIDED_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

/* Bytes per element of a valid dtype (fp8: 1); 0 for an unknown one. */
size_t rotary_dtype_size(rotary_dtype dtype);

/* The memory of one strided view: count[0] x count[1] x count[2] rows of `row` contiguous elements (a tensor:
 * batch x seq x heads head rows), or a flat read-only byte range (elem 0). */
typedef struct rotary_view {
  uintptr_t base;       /* address of element (0, 0, 0, 0) */
  size_t elem;          /* bytes per element; 0 for a flat array (only its extent is compared) */
  size_t count[3];      /* batch, seq, heads */
  ptrdiff_t stride[3];  /* elements */
  size_t row;           /* elements per row */
  uintptr_t lo, hi;     /* byte extent [lo, hi), set by rotary_view_extent */
} rotary_view;

/* The input (output = 0) or output (output = 1) view of tensor t over batch x seq tokens of head_dim elements.
 * Call rotary_view_extent next. */
void rotary_view_of_tensor(rotary_view *v, const void *base, size_t batch, size_t seq, const rotary_tensor *t,
                           size_t head_dim, int output);

/* Fills the extent of v from base, counts and strides; OVERFLOW when any offset or address wraps. */
rotary_status rotary_view_extent(rotary_view *v);

/* A flat read-only array of `bytes` bytes at p as a view; OVERFLOW when it cannot be indexed or would wrap. */
rotary_status rotary_view_flat(rotary_view *v, const void *p, size_t bytes);

/* A flat view [lo, hi) of bytes known not to wrap (a cache's extent). */
void rotary_view_span(rotary_view *v, uintptr_t lo, uintptr_t hi);

/* Nonzero when the n dims (count, stride) nest around an inner block of `inner` elements: no two (index, inner
 * element) pairs meet, so a view with these strides writes no element twice. */
int rotary_strides_nest(const size_t *count, const ptrdiff_t *stride, int n, uint64_t inner);

/* Nonzero when the output view v writes no element twice. */
int rotary_view_writes_once(const rotary_view *v);

/* Nonzero when a and b share no byte: disjoint extents, or views of one buffer sharing batch and seq strides whose
 * per-token footprints are disjoint and nest within the token strides (q, k and v of packed QKV rows). Anything
 * else counts as overlapping: the check errs on the safe side. */
int rotary_views_disjoint(const rotary_view *a, const rotary_view *b);

/* Nonzero when t's output is exactly its input, element for element (in place), over batch x seq tokens. */
int rotary_tensor_in_place(size_t batch, size_t seq, const rotary_tensor *t);

/* in and out set, dtype one a rotation reads (f32, f16, bf16: fp8 is a cache dtype only). NULL_POINTER, DTYPE.
 * need_out 0 checks only in (a tensor that is only read). */
rotary_status rotary_check_tensor_args(const rotary_tensor *t, int need_out);

/* The arrays the position mode needs are set; INVALID_ARGUMENT for an unknown mode. */
rotary_status rotary_check_position_args(const rotary_positions *p);

/* Range-checks every position of batch x seq_len tokens as rotary_apply does (POSITION, OVERFLOW) and describes
 * the read-only arrays behind them as flat views (*n of them, at most 2, into arrays). on_device: the arrays live
 * in GPU memory and are not read (their extents are still described); only host metadata is checked (the OFFSET
 * run, stream counts, strides), the kernel checks the values. */
rotary_status rotary_check_positions(const rotary_rope *rope, const rotary_positions *p, size_t batch,
                                     size_t seq_len, rotary_view *arrays, int *n, int on_device);

#endif /* ROTARY_STRIDED_VIEW_H */
