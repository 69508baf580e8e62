/* rotate_fp8_kernels.h: rotation kernels that write fp8 e4m3 rows (the KV-cache write's k rows into an fp8 cache). */
#ifndef ROTARY_ROTATE_FP8_KERNELS_H
#define ROTARY_ROTATE_FP8_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "fp8.h"
#include "kernels.h"
#include "rotary.h"

/*
 * n_heads head rows of head_dim elements (the kernel's dtype; row h at in + h * in_stride elements) rotated as the
 * rotation kernels rotate them (kernels.h: pairs of [0, rotary_dim), rotary_rotate_pair's formula and NaN rule, cos
 * and sin rows of rotary_dim / 2 floats), elements [rotary_dim, head_dim) as they are, then every element encoded
 * as the conversion kernels encode to fp8 (convert_kernels.h: round_e4m3(y / scale)) into row h at
 * out + h * out_stride bytes. The same bits as rotating into f32 rows and converting those, which is what the
 * KV-cache write did before, in one pass instead of three. in may start at any byte address; out rows do not overlap
 * any input row; scale is finite and > 0 (checked by the caller).
 */
typedef void (*rotary_rotate_fp8_fn)(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride,
                                     size_t n_heads, size_t head_dim, size_t rotary_dim, const float *cos,
                                     const float *sin, float scale);

typedef struct rotary_rotate_fp8_kernel {
  const char *name; /* rotary_<dtype>_rotate_<pairing>_to_fp8__<isa>, with _nt after it for nt */
  rotary_dtype dtype;
  rotary_pairing pairing;
  rotary_isa isa;
  rotary_rotate_fp8_fn fn;
  int nt; /* the output rows' whole 64-byte lines written with non-temporal stores, left unfenced (kernels.h:
             rotary_stream_fence); chosen only by rotary_rotate_fp8_select_nt */
} rotary_rotate_fp8_kernel;

/* One declaration per kernel of the list. */
#define ROTARY_ROTATE_FP8(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                                 \
  void rotary_##dtype##_rotate_##pairing##_to_fp8__##isa(const void *in, ptrdiff_t in_stride, void *out,          \
                                                         ptrdiff_t out_stride, size_t n_heads, size_t head_dim,   \
                                                         size_t rotary_dim, const float *cos, const float *sin,   \
                                                         float scale);
#define ROTARY_ROTATE_FP8_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                           \
  void rotary_##dtype##_rotate_##pairing##_to_fp8__##isa##_nt(const void *in, ptrdiff_t in_stride, void *out,   \
                                                              ptrdiff_t out_stride, size_t n_heads,             \
                                                              size_t head_dim, size_t rotary_dim,               \
                                                              const float *cos, const float *sin, float scale);
#include "rotate_fp8_list.h"
#undef ROTARY_ROTATE_FP8
#undef ROTARY_ROTATE_FP8_NT

/* Every compiled rotate-to-fp8 kernel, usable on this CPU or not (tests run each one that is). */
extern const rotary_rotate_fp8_kernel rotary_rotate_fp8_list[];
extern const size_t rotary_rotate_fp8_count;

/* The best enabled (rotary_isa_enabled) kernel for a dtype and pairing; NULL for an unknown one. */
const rotary_rotate_fp8_kernel *rotary_rotate_fp8_select(rotary_dtype dtype, rotary_pairing pairing);

/* Element i of a row of dtype d (f32, f16 or bf16) at any byte address, as a float (exact). */
static inline float rotary_fp8_row_elem(const void *row, size_t i, rotary_dtype d) {
  const unsigned char *p = row;
  if (d == ROTARY_F32) {
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  memcpy(&h, p + 2 * i, 2);
  return d == ROTARY_F16 ? rotary_f16_to_f32(h) : rotary_bf16_to_f32(h);
}

/* Pair (i0, i1) of row x rotated by rotary_rotate_pair and encoded into y[i0], y[i1]: the reference kernels' step,
 * and the vector kernels' tails. */
static inline void rotary_rotate_pair_to_fp8(const void *x, uint8_t *y, size_t i0, size_t i1, float c, float s,
                                             float scale, rotary_dtype d) {
  float y0, y1;
  rotary_rotate_pair(rotary_fp8_row_elem(x, i0, d), rotary_fp8_row_elem(x, i1, d), c, s, &y0, &y1);
  y[i0] = rotary_fp8_e4m3_encode(y0, scale);
  y[i1] = rotary_fp8_e4m3_encode(y1, scale);
}

/* The non-temporal-store variant of the kernel rotary_rotate_fp8_select picks, or NULL when it has none. */
const rotary_rotate_fp8_kernel *rotary_rotate_fp8_select_nt(rotary_dtype dtype, rotary_pairing pairing);

#endif /* ROTARY_ROTATE_FP8_KERNELS_H */
