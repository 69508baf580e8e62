/* kv_oracle.h: KV-cache test reference (libc only): OCP FP8 E4M3 from the spec, cache geometry, token slots. */
#ifndef KV_ORACLE_H
#define KV_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include "rotary.h" /* enum values and rotary_kv_cache only: no library code is used here */

/* A fuzz target that #includes kv_oracle.c defines KVO_API as static (with unused) so that its copy does not clash
 * with the one every test program links. */
#ifndef KVO_API
#define KVO_API
#endif

/* Bytes per element of a cache or input dtype: f32 4, f16 and bf16 2, fp8 1; 0 for an unknown dtype. */
KVO_API size_t kvo_dtype_size(rotary_dtype dt);

/*
 * OCP 8-bit floating point, E4M3 ("e4m3fn"), written from the OCP OFP8 spec (v1.0, 2023): sign, 4 exponent bits
 * with bias 7, 3 mantissa bits; no infinities; S.1111.111 is NaN; the largest finite value is S.1111.110 = 448;
 * exponent 0 holds the subnormals m * 2^-9 (m = 1..7); the smallest normal is 2^-6.
 *   kvo_fp8_from_f32: x rounded to nearest, ties to even; |x| beyond 448 (Inf included) saturates to +-448
 *                     (the spec's saturating mode, which vLLM's fp8_e4m3 cache uses); NaN gives S.1111.111 with
 *                     x's sign.
 *   kvo_fp8_encode:   the cache's rule: q = x / scale computed in fp32 (one rounding), then kvo_fp8_from_f32(q).
 *   kvo_fp8_decode:   the value times scale in fp32 (one rounding).
 */
KVO_API uint8_t kvo_fp8_from_f32(float x);
KVO_API float kvo_fp8_to_f32(uint8_t b);
KVO_API uint8_t kvo_fp8_encode(float x, float scale);
KVO_API float kvo_fp8_decode(uint8_t b, float scale);
KVO_API int kvo_fp8_isnan(uint8_t b);

/* Where a cache's rows are: the fields of rotary_kv_cache that place elements, plus the head count. */
typedef struct kvo_geom {
  rotary_cache_layout layout;
  size_t block_size, kv_heads, head_dim;
  size_t block_stride; /* 0: dense, block_size * kv_heads * head_dim */
} kvo_geom;

/* Elements from one block to the next (block_stride, or the dense size for 0). */
KVO_API size_t kvo_block_stride(const kvo_geom *g);
/* Element offset of head `head` of slot `slot` (block slot / block_size, row slot % block_size) from block 0. */
KVO_API size_t kvo_row_offset(const kvo_geom *g, uint64_t slot, size_t head);

/*
 * The slot token (b, s) writes, for every token of a batch x seq_len call (slots[b * seq_len + s]; -1: not
 * written), from the cache's index, read as include/rotary.h documents it. Returns 0 when the index is valid;
 * 1 when it is not (a slot, block or page outside the cache, including a listed page that is not written; two
 * tokens on one slot; indptr not starting at 0 or decreasing; a sequence with no page, a last_page_len outside
 * 1 .. block_size, fewer rows than seq_len; a negative length or one that overflows its block). slots is then
 * partly filled. Allocates a scratch copy for the duplicate check; -1 when that fails.
 */
KVO_API int kvo_token_slots(const rotary_kv_cache *c, size_t batch, size_t seq_len, int64_t *slots);

#endif /* KV_ORACLE_H */
