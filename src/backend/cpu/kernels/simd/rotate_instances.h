/* simd/rotate_instances.h: instantiates the SIMD template for f32, f16 and bf16 under the ISA vocabulary already included. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "kernels.h"

#define RT_PASTE_(dtype, pairing, isa) rotary_##dtype##_rotate_##pairing##__##isa
#define RT_PASTE(dtype, pairing, isa) RT_PASTE_(dtype, pairing, isa)
#define RT_PASTE_NT_(dtype, pairing, isa) rotary_##dtype##_rotate_##pairing##__##isa##_nt
#define RT_PASTE_NT(dtype, pairing, isa) RT_PASTE_NT_(dtype, pairing, isa)

#ifndef RT_ONLY_BF16 /* an ISA that only adds bf16 kernels (AVX512-BF16) */
#define RT_T float
#define RT_NAME(pairing) RT_PASTE(f32, pairing, ROTARY_ISA_NAME)
#define RT_VLOAD(p) rv_loadu(p)
#define RT_VSTORE(p, v) rv_storeu((p), (v))
#define RT_SLOAD(e) (e)
#define RT_SSTORE(f) (f)
#ifdef ROTARY_HAS_NT_STORES
#define RT_NAME_NT(pairing) RT_PASTE_NT(f32, pairing, ROTARY_ISA_NAME)
#define RT_VSTORE_NT(p, v) rv_store_nt((p), (v))
#endif
#include "rotate_template.h"

#define RT_T uint16_t
#define RT_NAME(pairing) RT_PASTE(f16, pairing, ROTARY_ISA_NAME)
#define RT_VLOAD(p) rv_load_f16(p)
#define RT_VSTORE(p, v) rv_store_f16((p), (v))
#define RT_SLOAD(e) rotary_f16_to_f32(e)
#define RT_SSTORE(f) rotary_f32_to_f16(f)
#ifdef ROTARY_HAS_NT_STORES
#define RT_NAME_NT(pairing) RT_PASTE_NT(f16, pairing, ROTARY_ISA_NAME)
#define RT_VSTORE_NT(p, v) rv_store_nt_f16((p), (v))
#endif
#include "rotate_template.h"

#endif

#define RT_T uint16_t
#define RT_NAME(pairing) RT_PASTE(bf16, pairing, ROTARY_ISA_NAME)
#define RT_VLOAD(p) rv_load_bf16(p)
#define RT_VSTORE(p, v) rv_store_bf16((p), (v))
#define RT_SLOAD(e) rotary_bf16_to_f32(e)
#define RT_SSTORE(f) rotary_f32_to_bf16(f)
#ifdef ROTARY_HAS_BF16_PAIRS
#define RT_VLOAD2(p, lo, hi) rv_load2_bf16((p), &(lo), &(hi))
#define RT_VSTORE2(p, lo, hi) rv_store2_bf16((p), (lo), (hi))
#define RT_SLOT(j) rv_bf16_slot(j)
#define RT_ARRANGE2(dst, src) rv_arrange2_bf16((dst), (src))
#define RT_VSTORE2X2(p, lo, hi, q, lo2, hi2) rv_store2x2_bf16((p), (lo), (hi), (q), (lo2), (hi2))
#endif
#ifdef ROTARY_HAS_BF16_PAIR_SPLIT
#define RT_PLOAD(p, a, b) rv_pload_bf16((p), &(a), &(b))
#define RT_PSTORE(p, a, b) rv_pstore_bf16((p), (a), (b))
#endif
#if defined(ROTARY_HAS_NT_STORES) && defined(ROTARY_HAS_BF16_PAIRS)
/* streaming: whole blocks through a buffer (rotate_template.h, RT_STREAM_BLOCK); single vectors (tails of kernels
 * in plain lane order only, never reached here) as ordinary stores */
#define RT_NAME_NT(pairing) RT_PASTE_NT(bf16, pairing, ROTARY_ISA_NAME)
#define RT_VSTORE_NT(p, v) RT_VSTORE((p), (v))
#endif
#include "rotate_template.h"
