/* cuda_kv_plan.h: one rotary_cuda_kv_write launch as the kernel takes it (plain C: built on the host, by value). */
#ifndef ROTARY_CUDA_KV_PLAN_H
#define ROTARY_CUDA_KV_PLAN_H

#include <stdint.h>

#include "cuda_positions.h"
#include "cuda_rotate_plan.h"
#include "rotary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which kernel a launch runs. */
typedef enum rotary_cuda_kv_path {
  ROTARY_CUDA_KV_GENERAL = 0, /* any strides, alignment and dtypes: element by element */
  ROTARY_CUDA_KV_VECTOR = 1   /* 8 elements at a time with 16-byte loads and stores (fp8: 8 bytes); chosen on the
                                 host when every base pointer (q in and out, k and v inputs, both caches) is 16-byte
                                 aligned, every stride of a dimension with more than one index (q, k, v, the cache's
                                 block_stride) is a multiple of 8 elements, head_dim a multiple of 8 and rotary_dim
                                 of 16 (half pairing: each half whole vectors) or of 8 (interleaved) */
} rotary_cuda_kv_path;

/* The cache side: element (block, row, head, d) of the key (value) cache at k (v) + (block * block_stride + row *
 * row_stride + head * head_stride + d) * its element size (rotary_cache_geom's resolved strides). */
typedef struct rotary_cuda_kv_cache {
  void *k, *v;
  int32_t dtype;              /* rotary_dtype: F32, F16, BF16 or FP8_E4M3 */
  int32_t index;              /* rotary_cache_index */
  uint64_t num_blocks, block_size, block_stride;
  uint64_t row_stride, head_stride;
  uint64_t slots;             /* num_blocks * block_size */
  const int64_t *lengths;     /* SEQUENCES */
  const int64_t *slot_mapping; /* SLOTS */
  const int32_t *page_indptr, *page_indices, *last_page_len; /* PAGES */
  int32_t index_aligned;      /* every index array aligned to its element size (rotary.h asks it; else byte loads) */
  float k_scale, v_scale;     /* fp8: the caller's scales; 1 for the other dtypes */
} rotary_cuda_kv_cache;

typedef struct rotary_cuda_kv_plan {
  rotary_cuda_positions pos;
  rotary_cuda_rotate_tensor q; /* heads 0: q left out; copy_tail: out of place with head_dim > rotary_dim */
  rotary_cuda_rotate_tensor k, v; /* inputs only (out NULL) */
  uint64_t kv_heads;
  rotary_cuda_kv_cache cache;
  uint32_t head_dim, rotary_dim;
  int32_t interleaved;        /* ROTARY_PAIRING_INTERLEAVED, else half */
  int32_t path;               /* rotary_cuda_kv_path */
  uint64_t tokens;            /* batch * seq_len */
  int32_t *flags;             /* device int32 for ROTARY_CUDA_FLAG_*, or NULL */
  int32_t sm_count;           /* multiprocessors of the device: sizes the grid */
} rotary_cuda_kv_plan;

/* Enqueues the plan's kernel on stream (a cudaStream_t). ROTARY_OK, or ROTARY_ERR_DEVICE when the launch fails. */
rotary_status rotary_cuda_kv_launch(const rotary_cuda_kv_plan *plan, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* ROTARY_CUDA_KV_PLAN_H */
