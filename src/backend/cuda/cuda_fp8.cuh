// cuda_fp8.cuh: the KV cache's fp8 e4m3 encoding on the device, bit for bit as the CPU's fp8.h.
#ifndef ROTARY_CUDA_FP8_CUH
#define ROTARY_CUDA_FP8_CUH

#include <stdint.h>

// rotary_fp8_e4m3_from_f32: q rounded to nearest even and saturated (|q| above 448, Inf too, gives +-448), NaN
// gives 0x7F or 0xFF by its sign, -0 gives 0x80. The same integer steps; the subnormal step's fp32 addition is
// spelled __fadd_rn (subnormals are not flushed: the kernels are built without -ftz).
__device__ __forceinline__ uint8_t rc_fp8_e4m3_from_f32(float q) {
  const uint32_t u = __float_as_uint(q);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  uint32_t o;
  if (a > 0x7f800000u) {
    o = 0x7fu;
  } else if (a > 0x43e00000u) {
    o = 0x7eu;
  } else if (a < 0x3c800000u) {
    // below 2^-6: 2^14 has a unit in the last place of 2^-9, so the addition rounds |q| to a multiple of 2^-9
    o = __float_as_uint(__fadd_rn(__uint_as_float(a), 16384.0f)) - 0x46800000u;
  } else {
    o = (a + 0x7ffffu + ((a >> 20) & 1u) - 0x3c000000u) >> 20;
  }
  return (uint8_t)(o | sign);
}

// rotary_fp8_e4m3_encode: x / scale in fp32 (one rounding, __fdiv_rn), then encoded. scale is finite and > 0. A NaN
// x is encoded before the division: the CPU's division keeps x's NaN and its sign (x86 returns the NaN operand), the
// GPU's returns the canonical positive NaN, and the code's sign bit is the NaN's.
__device__ __forceinline__ uint8_t rc_fp8_e4m3_encode(float x, float scale) {
  if (x != x) return (uint8_t)(0x7fu | ((__float_as_uint(x) >> 24) & 0x80u));
  return rc_fp8_e4m3_from_f32(__fdiv_rn(x, scale));
}

#endif  // ROTARY_CUDA_FP8_CUH
