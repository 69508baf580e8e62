/* cuda_apply.c: rotary_cuda_apply: host checks (validation, device, pointers), the launch plan, the launch. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_pointers.h"
#include "cuda_positions.h"
#include "cuda_rope.h"
#include "cuda_rotate_plan.h"
#include "rope.h"
#include "validate.h"

/* Every pointer the kernel reads or writes (tensors, position arrays, flags) is addressable by the device. */
static rotary_status check_pointers(const rotary_apply_desc *d, const int32_t *flags, int device) {
  const void *ptrs[4 + ROTARY_CUDA_POINTERS_APPENDED];
  int n = 0;
  ptrs[n++] = d->q.in;
  if (d->q.out != d->q.in) ptrs[n++] = d->q.out; /* in place: one lookup */
  if (d->k.n_heads) {
    ptrs[n++] = d->k.in;
    if (d->k.out != d->k.in) ptrs[n++] = d->k.out;
  }
  return rotary_cuda_check_pointers(ptrs, n, &d->positions, flags, device);
}

static void tensor_plan(rotary_cuda_rotate_tensor *r, const rotary_tensor *t, size_t head_dim, size_t rotary_dim) {
  memset(r, 0, sizeof *r);
  if (!t->n_heads) return;
  r->in = t->in;
  r->out = t->out;
  r->stride[0] = t->stride_batch;
  r->stride[1] = t->stride_seq;
  r->stride[2] = t->stride_head;
  r->out_stride[0] = t->out_stride_batch;
  r->out_stride[1] = t->out_stride_seq;
  r->out_stride[2] = t->out_stride_head;
  r->heads = t->n_heads;
  r->dtype = (int32_t)t->dtype;
  /* validated: an output that is not exactly its input overlaps no input, so it needs the pass-through dims */
  r->copy_tail = t->in != t->out && head_dim > rotary_dim;
}

/* Nonzero when stride (elements) is a whole number of 16-byte vectors, or its dimension has one index only. */
static int stride_ok(ptrdiff_t stride, size_t extent, size_t vec) {
  return extent <= 1 || stride % (ptrdiff_t)vec == 0;
}

/* The vector path's conditions (cuda_rotate_plan.h, ROTARY_CUDA_ROTATE_VECTOR). */
static int vector_ok(const rotary_apply_desc *d, size_t head_dim, size_t rotary_dim, rotary_pairing pairing) {
  if (d->k.n_heads && d->k.dtype != d->q.dtype) return 0;
  const size_t vec = 16 / rotary_dtype_size(d->q.dtype); /* elements per 16-byte vector: 4 or 8 */
  if (head_dim % vec || rotary_dim % (pairing == ROTARY_PAIRING_HALF ? 2 * vec : vec)) return 0;
  const rotary_tensor *t[2] = {&d->q, &d->k};
  for (int i = 0; i < (d->k.n_heads ? 2 : 1); i++) {
    if ((((uintptr_t)t[i]->in | (uintptr_t)t[i]->out) & 15u) != 0) return 0;
    if (!stride_ok(t[i]->stride_batch, d->batch, vec) || !stride_ok(t[i]->out_stride_batch, d->batch, vec) ||
        !stride_ok(t[i]->stride_seq, d->seq_len, vec) || !stride_ok(t[i]->out_stride_seq, d->seq_len, vec) ||
        !stride_ok(t[i]->stride_head, t[i]->n_heads, vec) || !stride_ok(t[i]->out_stride_head, t[i]->n_heads, vec))
      return 0;
  }
  return 1;
}

void rotary_cuda_rotate_plan_build(rotary_cuda_rotate_plan *out, const rotary_cuda_rope *rope,
                                   const rotary_apply_desc *desc, int32_t *flags) {
  const rotary_rope *host = rope->host;
  memset(out, 0, sizeof *out);
  rotary_cuda_positions_fill(&out->pos, rope, &desc->positions, desc->batch, desc->seq_len, desc->direction);
  tensor_plan(&out->t[0], &desc->q, host->head_dim, host->rotary_dim);
  tensor_plan(&out->t[1], &desc->k, host->head_dim, host->rotary_dim);
  out->head_dim = (uint32_t)host->head_dim; /* <= ROTARY_MAX_HEAD_DIM */
  out->rotary_dim = (uint32_t)host->rotary_dim;
  out->interleaved = host->pairing == ROTARY_PAIRING_INTERLEAVED;
  out->path = vector_ok(desc, host->head_dim, host->rotary_dim, host->pairing) ? ROTARY_CUDA_ROTATE_VECTOR
                                                                              : ROTARY_CUDA_ROTATE_GENERAL;
  out->tokens = (uint64_t)desc->batch * desc->seq_len; /* validated: no overflow */
  out->flags = flags;
  out->sm_count = rope->sm_count;
}

rotary_status rotary_cuda_apply(const rotary_cuda_rope *rope, const rotary_apply_desc *desc, void *stream,
                                int32_t *flags) {
  ROTARY_RETURN_IF(!rope || !desc, ROTARY_ERR_NULL_POINTER);
  rotary_status st = rotary_validate_apply(rope->host, desc, 1);
  if (st != ROTARY_OK) return st;
  if ((st = rotary_cuda_check_device(rope->device)) != ROTARY_OK) return st;
  if ((st = check_pointers(desc, flags, rope->device)) != ROTARY_OK) return st;
  rotary_cuda_rotate_plan plan;
  rotary_cuda_rotate_plan_build(&plan, rope, desc, flags);
  return rotary_cuda_rotate_launch(&plan, stream);
}
