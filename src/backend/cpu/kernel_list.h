/* kernel_list.h: X-macro list of every compiled rotation kernel; included by the registry, tests and benchmarks. */
/* ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA) names rotary_<dtype>_rotate_<pairing>__<isa>.
 * Within one dtype and pairing, later rows are better: dispatch takes the last enabled one.
 * ROTARY_KERNEL_NT(...) names rotary_<dtype>_rotate_<pairing>__<isa>_nt, the same kernel with non-temporal stores
 * (large outputs out of place); a user of this list that does not define it leaves those rows out. */
#ifndef ROTARY_KERNEL_NT
#define ROTARY_KERNEL_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#define ROTARY_KERNEL_NT_DEFAULTED
#endif
ROTARY_KERNEL(f32, F32, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(f32, F32, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_KERNEL(f16, F16, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(f16, F16, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_KERNEL(bf16, BF16, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_KERNEL(f32, F32, half, HALF, avx2, AVX2)
ROTARY_KERNEL(f32, F32, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL(f16, F16, half, HALF, avx2, AVX2)
ROTARY_KERNEL(f16, F16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL(bf16, BF16, half, HALF, avx2, AVX2)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL_NT(f32, F32, half, HALF, avx2, AVX2)
ROTARY_KERNEL_NT(f32, F32, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL_NT(f16, F16, half, HALF, avx2, AVX2)
ROTARY_KERNEL_NT(f16, F16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL_NT(bf16, BF16, half, HALF, avx2, AVX2)
ROTARY_KERNEL_NT(bf16, BF16, interleaved, INTERLEAVED, avx2, AVX2)
ROTARY_KERNEL(f32, F32, half, HALF, avx512, AVX512)
ROTARY_KERNEL(f32, F32, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL(f16, F16, half, HALF, avx512, AVX512)
ROTARY_KERNEL(f16, F16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL(bf16, BF16, half, HALF, avx512, AVX512)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL_NT(f32, F32, half, HALF, avx512, AVX512)
ROTARY_KERNEL_NT(f32, F32, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL_NT(f16, F16, half, HALF, avx512, AVX512)
ROTARY_KERNEL_NT(f16, F16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL_NT(bf16, BF16, half, HALF, avx512, AVX512)
ROTARY_KERNEL_NT(bf16, BF16, interleaved, INTERLEAVED, avx512, AVX512)
ROTARY_KERNEL(bf16, BF16, half, HALF, avx512bf16, AVX512BF16)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, avx512bf16, AVX512BF16)
ROTARY_KERNEL_NT(bf16, BF16, half, HALF, avx512bf16, AVX512BF16)
ROTARY_KERNEL_NT(bf16, BF16, interleaved, INTERLEAVED, avx512bf16, AVX512BF16)
#endif
#if defined(__aarch64__)
ROTARY_KERNEL(f32, F32, half, HALF, neon, NEON)
ROTARY_KERNEL(f32, F32, interleaved, INTERLEAVED, neon, NEON)
ROTARY_KERNEL(f16, F16, half, HALF, neon, NEON)
ROTARY_KERNEL(f16, F16, interleaved, INTERLEAVED, neon, NEON)
ROTARY_KERNEL(bf16, BF16, half, HALF, neon, NEON)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, neon, NEON)
#endif
#ifdef ROTARY_KERNEL_NT_DEFAULTED
#undef ROTARY_KERNEL_NT
#undef ROTARY_KERNEL_NT_DEFAULTED
#endif
