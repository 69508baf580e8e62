/* convert_list.h: X-macro list of every compiled conversion kernel; included by the registry, tests and benchmarks. */
/* ROTARY_CONVERT(from, FROM, to, TO, isa, ISA) names rotary_<from>_to_<to>_convert__<isa>, converting ROTARY_<FROM>
 * to ROTARY_<TO>. Within one pair, later rows are better: dispatch takes the last enabled one.
 * ROTARY_CONVERT_NT(...) names rotary_<from>_to_<to>_convert__<isa>_nt, the same kernel streaming the output's whole
 * 64-byte lines (non-temporal stores); a user of this list that does not define it leaves those rows out. */
#ifndef ROTARY_CONVERT_NT
#define ROTARY_CONVERT_NT(from, FROM, to, TO, isa, ISA)
#define ROTARY_CONVERT_NT_DEFAULTED
#endif
ROTARY_CONVERT(f16, F16, f32, F32, scalar, SCALAR)
ROTARY_CONVERT(bf16, BF16, f32, F32, scalar, SCALAR)
ROTARY_CONVERT(fp8, FP8_E4M3, f32, F32, scalar, SCALAR)
ROTARY_CONVERT(f32, F32, f16, F16, scalar, SCALAR)
ROTARY_CONVERT(f32, F32, bf16, BF16, scalar, SCALAR)
ROTARY_CONVERT(f32, F32, fp8, FP8_E4M3, scalar, SCALAR)
ROTARY_CONVERT(bf16, BF16, fp8, FP8_E4M3, scalar, SCALAR)
ROTARY_CONVERT(f16, F16, fp8, FP8_E4M3, scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_CONVERT(f16, F16, f32, F32, avx2, AVX2)
ROTARY_CONVERT(bf16, BF16, f32, F32, avx2, AVX2)
ROTARY_CONVERT(fp8, FP8_E4M3, f32, F32, avx2, AVX2)
ROTARY_CONVERT(f32, F32, f16, F16, avx2, AVX2)
ROTARY_CONVERT(f32, F32, bf16, BF16, avx2, AVX2)
ROTARY_CONVERT(f32, F32, fp8, FP8_E4M3, avx2, AVX2)
ROTARY_CONVERT(bf16, BF16, fp8, FP8_E4M3, avx2, AVX2)
ROTARY_CONVERT(f16, F16, fp8, FP8_E4M3, avx2, AVX2)
ROTARY_CONVERT(f32, F32, fp8, FP8_E4M3, avx512, AVX512)
ROTARY_CONVERT(bf16, BF16, fp8, FP8_E4M3, avx512, AVX512)
ROTARY_CONVERT(f16, F16, fp8, FP8_E4M3, avx512, AVX512)
ROTARY_CONVERT_NT(f32, F32, fp8, FP8_E4M3, avx512, AVX512)
ROTARY_CONVERT_NT(bf16, BF16, fp8, FP8_E4M3, avx512, AVX512)
ROTARY_CONVERT_NT(f16, F16, fp8, FP8_E4M3, avx512, AVX512)
#endif
#ifdef ROTARY_CONVERT_NT_DEFAULTED
#undef ROTARY_CONVERT_NT
#undef ROTARY_CONVERT_NT_DEFAULTED
#endif
