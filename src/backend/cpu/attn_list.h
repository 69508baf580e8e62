/* attn_list.h: X-macro list of every compiled decode-attention kernel; included by the registry, dispatch and tests. */
/* ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA) names rotary_attn_<dtype>_scores__<isa> and
 * rotary_attn_<dtype>_values__<isa> for a cache of ROTARY_<DTYPE>; ROTARY_ATTN_EXP(isa, ISA) names
 * rotary_attn_exp__<isa>; ROTARY_ATTN_HALF_KERNEL(dtype, DTYPE, isa, ISA) names
 * rotary_attn_<dtype>_scores_half__<isa> (keys rotated on the way, half pairing), which goes with the same ISA's
 * scores and values (an ISA may have none). Within one dtype (and for exp), later rows are better: dispatch takes
 * the last enabled one. */
ROTARY_ATTN_KERNEL(f32, F32, scalar, SCALAR)
ROTARY_ATTN_KERNEL(f16, F16, scalar, SCALAR)
ROTARY_ATTN_KERNEL(bf16, BF16, scalar, SCALAR)
ROTARY_ATTN_KERNEL(fp8, FP8_E4M3, scalar, SCALAR)
ROTARY_ATTN_EXP(scalar, SCALAR)
ROTARY_ATTN_HALF_KERNEL(f32, F32, scalar, SCALAR)
ROTARY_ATTN_HALF_KERNEL(f16, F16, scalar, SCALAR)
ROTARY_ATTN_HALF_KERNEL(bf16, BF16, scalar, SCALAR)
ROTARY_ATTN_HALF_KERNEL(fp8, FP8_E4M3, scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_ATTN_KERNEL(f32, F32, avx2, AVX2)
ROTARY_ATTN_KERNEL(f16, F16, avx2, AVX2)
ROTARY_ATTN_KERNEL(bf16, BF16, avx2, AVX2)
ROTARY_ATTN_KERNEL(fp8, FP8_E4M3, avx2, AVX2)
ROTARY_ATTN_EXP(avx2, AVX2)
ROTARY_ATTN_HALF_KERNEL(f32, F32, avx2, AVX2)
ROTARY_ATTN_HALF_KERNEL(f16, F16, avx2, AVX2)
ROTARY_ATTN_HALF_KERNEL(bf16, BF16, avx2, AVX2)
ROTARY_ATTN_HALF_KERNEL(fp8, FP8_E4M3, avx2, AVX2)
#endif
#if defined(__aarch64__)
ROTARY_ATTN_KERNEL(f32, F32, neon, NEON)
ROTARY_ATTN_KERNEL(f16, F16, neon, NEON)
ROTARY_ATTN_KERNEL(bf16, BF16, neon, NEON)
ROTARY_ATTN_KERNEL(fp8, FP8_E4M3, neon, NEON)
ROTARY_ATTN_EXP(neon, NEON)
ROTARY_ATTN_HALF_KERNEL(f32, F32, neon, NEON)
ROTARY_ATTN_HALF_KERNEL(f16, F16, neon, NEON)
ROTARY_ATTN_HALF_KERNEL(bf16, BF16, neon, NEON)
ROTARY_ATTN_HALF_KERNEL(fp8, FP8_E4M3, neon, NEON)
#endif
