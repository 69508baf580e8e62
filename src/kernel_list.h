/* kernel_list.h: X-macro list of every compiled rotation kernel; included by the registry, tests and benchmarks. */
/* ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA) names rotary_<dtype>_rotate_<pairing>__<isa>. */
ROTARY_KERNEL(f32, F32, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(f32, F32, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_KERNEL(f16, F16, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(f16, F16, interleaved, INTERLEAVED, scalar, SCALAR)
ROTARY_KERNEL(bf16, BF16, half, HALF, scalar, SCALAR)
ROTARY_KERNEL(bf16, BF16, interleaved, INTERLEAVED, scalar, SCALAR)
