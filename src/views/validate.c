/* validate.c: the checks of a rotary_apply call (strided_view.c does the work); kernels then assume valid input. */
#include "validate.h"

#include <stdint.h>

#include "check.h"
#include "rope.h"

/* Outputs must not write an element twice, and must share no byte with anything else the call reads or writes
 * (an output may coincide exactly with its own input: in place). */
static rotary_status check_aliasing(const rotary_view *out, const rotary_view *in, const int *exact_in_place,
                                    int n_tensors, const rotary_view *arrays, int n_arrays) {
  for (int i = 0; i < n_tensors; i++) {
    ROTARY_RETURN_IF(!rotary_view_writes_once(&out[i]), ROTARY_ERR_STRIDE);
  }
  for (int i = 0; i < n_tensors; i++) {
    for (int j = 0; j < n_tensors; j++) {
      if (i == j && exact_in_place[i]) continue;
      ROTARY_RETURN_IF(!rotary_views_disjoint(&out[i], &in[j]), ROTARY_ERR_OVERLAP);
      ROTARY_RETURN_IF(j > i && !rotary_views_disjoint(&out[i], &out[j]), ROTARY_ERR_OVERLAP);
    }
    for (int j = 0; j < n_arrays; j++) ROTARY_RETURN_IF(!rotary_views_disjoint(&out[i], &arrays[j]), ROTARY_ERR_OVERLAP);
  }
  return ROTARY_OK;
}

rotary_status rotary_validate_apply(const rotary_rope *rope, const rotary_apply_desc *d, int on_device) {
  ROTARY_RETURN_IF(!rope || !d, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(d->struct_size != sizeof *d, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->batch == 0 || d->seq_len == 0 || d->q.n_heads == 0, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->direction != ROTARY_FORWARD && d->direction != ROTARY_INVERSE, ROTARY_ERR_INVALID_ARGUMENT);
  const int n_tensors = d->k.n_heads ? 2 : 1;
  const rotary_tensor *t[2] = {&d->q, &d->k};
  for (int i = 0; i < n_tensors; i++) {
    rotary_status st = rotary_check_tensor_args(t[i], 1);
    if (st != ROTARY_OK) return st;
  }
  rotary_status st = rotary_check_position_args(&d->positions);
  if (st != ROTARY_OK) return st;

  rotary_view in[2], out[2], arrays[2];
  int exact[2];
  for (int i = 0; i < n_tensors; i++) {
    rotary_view_of_tensor(&in[i], t[i]->in, d->batch, d->seq_len, t[i], rope->head_dim, 0);
    rotary_view_of_tensor(&out[i], t[i]->out, d->batch, d->seq_len, t[i], rope->head_dim, 1);
    if ((st = rotary_view_extent(&in[i])) != ROTARY_OK || (st = rotary_view_extent(&out[i])) != ROTARY_OK) return st;
    exact[i] = rotary_tensor_in_place(d->batch, d->seq_len, t[i]);
  }
  int n_arrays;
  if ((st = rotary_check_positions(rope, &d->positions, d->batch, d->seq_len, arrays, &n_arrays, on_device)) != ROTARY_OK)
    return st;
  return check_aliasing(out, in, exact, n_tensors, arrays, n_arrays);
}
