/* rotate_fp8_list.h: X-macro list of every compiled rotate-to-fp8 kernel; included by the registry, tests and benchmarks. */
/* ROTARY_ROTATE_FP8(dtype, DTYPE, pairing, PAIRING, isa, ISA) names rotary_<dtype>_rotate_<pairing>_to_fp8__<isa>:
 * ROTARY_<DTYPE> rows in, fp8 e4m3 rows out. Within one dtype and pairing, later rows are better: dispatch takes the
 * last enabled one. ROTARY_ROTATE_FP8_NT(...) names rotary_<dtype>_rotate_<pairing>_to_fp8__<isa>_nt, the same
 * kernel streaming the output rows' whole 64-byte lines (non-temporal stores); a user of this list that does not
 * define it leaves those rows out. */
#ifndef ROTARY_ROTATE_FP8_NT
#define ROTARY_ROTATE_FP8_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#define ROTARY_ROTATE_FP8_NT_DEFAULTED
#endif
ROTARY_ROTATE_FP8(f32, F32, half, HALF, scalar, SCALAR)
ROTARY_ROTATE_FP8(f32, F32, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_ROTATE_FP8(f16, F16, half, HALF, scalar, SCALAR)
ROTARY_ROTATE_FP8(f16, F16, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_ROTATE_FP8(bf16, BF16, half, HALF, scalar, SCALAR)
ROTARY_ROTATE_FP8(bf16, BF16, interleaved, INTERLEAVED, scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_ROTATE_FP8(f32, F32, half, HALF, avx2, AVX2)
ROTARY_ROTATE_FP8(f32, F32, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_ROTATE_FP8(f16, F16, half, HALF, avx2, AVX2)
ROTARY_ROTATE_FP8(f16, F16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_ROTATE_FP8(bf16, BF16, half, HALF, avx2, AVX2)
ROTARY_ROTATE_FP8(bf16, BF16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_ROTATE_FP8(f32, F32, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8(f32, F32, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_ROTATE_FP8(f16, F16, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8(f16, F16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_ROTATE_FP8(bf16, BF16, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8(bf16, BF16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(f32, F32, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(f32, F32, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(f16, F16, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(f16, F16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(bf16, BF16, half, HALF, avx512, AVX512)
ROTARY_ROTATE_FP8_NT(bf16, BF16, interleaved, INTERLEAVED, avx512, AVX512)
#endif
#ifdef ROTARY_ROTATE_FP8_NT_DEFAULTED
#undef ROTARY_ROTATE_FP8_NT
#undef ROTARY_ROTATE_FP8_NT_DEFAULTED
#endif
