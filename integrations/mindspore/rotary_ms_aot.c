/* rotary_ms_aot.c: MindSpore AOT Custom-op entry points (CPU) that rotate q and k with librotary in one call. */
#include <stdint.h>
#include <string.h>

#include "rotary.h"

#if defined(__GNUC__)
#define RMS_EXPORT __attribute__((visibility("default")))
#else
#define RMS_EXPORT
#endif

/*
 * Operands, in MindSpore's order (inputs, then outputs), nparam == 6:
 *   0 q      [batch, seq, q_heads, head_dim]   float32 | float16 | bfloat16
 *   1 k      [batch, seq, k_heads, head_dim]   same dtype as q
 *   2 offset [1] int64: position of token (b, s) is offset + s
 *   3 base   [1] int64 holding the IEEE-754 bits of the fp64 theta of inv_freq[i] = base^(-2i/head_dim): an integer
 *            tensor, so that mixed precision (Cell.to_float, amp) never casts it to fp16 as it does float inputs
 *   4 q_out  shape and dtype of q
 *   5 k_out  shape and dtype of k
 * Half pairing (rotate_half), rotary_dim == head_dim. Returns 0 on success, a marshalling error (101..104, below)
 * or the rotary_status (1..13) of the failed library call; no output byte is written on error.
 */
enum { RMS_ERR_NPARAM = 101, RMS_ERR_NDIM = 102, RMS_ERR_SHAPE = 103, RMS_ERR_DTYPE = 104 };

static int dtype_of(const char *name, rotary_dtype *out) {
  if (name == NULL) return RMS_ERR_DTYPE;
  if (strcmp(name, "float32") == 0 || strcmp(name, "float") == 0) *out = ROTARY_F32;
  else if (strcmp(name, "float16") == 0) *out = ROTARY_F16;
  else if (strcmp(name, "bfloat16") == 0) *out = ROTARY_BF16;
  else return RMS_ERR_DTYPE;
  return 0;
}

static int same_shape(const int *ndims, int64_t **shapes, int a, int b) {
  if (ndims[a] != ndims[b]) return 0;
  for (int i = 0; i < ndims[a]; i++)
    if (shapes[a][i] != shapes[b][i]) return 0;
  return 1;
}

static int run(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
               rotary_direction direction) {
  if (nparam != 6 || params == NULL || ndims == NULL || shapes == NULL || dtypes == NULL) return RMS_ERR_NPARAM;
  if (ndims[0] != 4 || ndims[1] != 4 || ndims[2] != 1 || ndims[3] != 1) return RMS_ERR_NDIM;
  if (shapes[2][0] != 1 || shapes[3][0] != 1 || !same_shape(ndims, shapes, 0, 4) ||
      !same_shape(ndims, shapes, 1, 5))
    return RMS_ERR_SHAPE;
  const int64_t *qs = shapes[0], *ks = shapes[1];
  if (qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != ks[3]) return RMS_ERR_SHAPE;
  for (int i = 0; i < 4; i++)
    if (qs[i] < 1 || ks[i] < 1) return RMS_ERR_SHAPE;
  rotary_dtype dt, dk;
  if (dtype_of(dtypes[0], &dt) || dtype_of(dtypes[1], &dk) || dt != dk ||
      strcmp(dtypes[0], dtypes[4] ? dtypes[4] : "") != 0 || strcmp(dtypes[1], dtypes[5] ? dtypes[5] : "") != 0 ||
      strcmp(dtypes[2] ? dtypes[2] : "", "int64") != 0 || strcmp(dtypes[3] ? dtypes[3] : "", "int64") != 0)
    return RMS_ERR_DTYPE;

  size_t batch = (size_t)qs[0], seq = (size_t)qs[1], head_dim = (size_t)qs[3];
  rotary_config cfg;
  rotary_config_init(&cfg, head_dim);
  memcpy(&cfg.base, params[3], sizeof cfg.base);
  rotary_rope *rope = NULL;
  rotary_status st = rotary_rope_create(&cfg, 0, &rope); /* table-free: cos/sin computed per token */
  if (st != ROTARY_OK) return (int)st;

  rotary_apply_desc desc;
  rotary_apply_desc_init(&desc);
  desc.batch = batch;
  desc.seq_len = seq;
  desc.direction = direction;
  desc.positions.mode = ROTARY_POSITIONS_OFFSET;
  desc.positions.offset = *(const int64_t *)params[2];
  st = rotary_tensor_init(&desc.q, ROTARY_LAYOUT_BSHD, params[0], params[4], dt, seq, (size_t)qs[2], head_dim);
  if (st == ROTARY_OK)
    st = rotary_tensor_init(&desc.k, ROTARY_LAYOUT_BSHD, params[1], params[5], dt, seq, (size_t)ks[2], head_dim);
  if (st == ROTARY_OK) st = rotary_apply(NULL, rope, &desc);
  rotary_rope_destroy(rope);
  return (int)st;
}

/* Forward rotation: the Custom op of the attention layer. */
RMS_EXPORT int RotaryRope(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                          void *extra);
RMS_EXPORT int RotaryRope(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                          void *extra) {
  (void)stream;
  (void)extra;
  return run(nparam, params, ndims, shapes, dtypes, ROTARY_FORWARD);
}

/* Rotation by the opposite angle: the backward pass (d_in = R^T d_out) of RotaryRope. */
RMS_EXPORT int RotaryRopeInverse(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra);
RMS_EXPORT int RotaryRopeInverse(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *stream, void *extra) {
  (void)stream;
  (void)extra;
  return run(nparam, params, ndims, shapes, dtypes, ROTARY_INVERSE);
}
