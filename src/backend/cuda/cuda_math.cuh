// cuda_math.cuh: device f32/f16/bf16 <-> float conversions and the pair rotation, bit for bit as the CPU's convert.h.
#ifndef ROTARY_CUDA_MATH_CUH
#define ROTARY_CUDA_MATH_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

// Element loads: exact. f16 NaNs keep their sign and payload unquieted (sign | 0x7f800000 | mant << 13), as
// rotary_f16_to_f32; the hardware conversion is exact for every other value. bf16 is the upper half of an f32.
__device__ __forceinline__ float rc_f16_bits_to_f32(uint16_t h) {
  const float f = __half2float(__ushort_as_half(h));
  if (f != f) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    return __uint_as_float(sign | 0x7f800000u | ((uint32_t)(h & 0x3ffu) << 13));
  }
  return f;
}

__device__ __forceinline__ float rc_bf16_bits_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

// Element stores: round to nearest even, overflow to infinity, subnormals rounded (never flushed). NaNs as the CPU:
// f16 0x7e00 | top payload bits | sign (other values: the hardware cvt.rn.f16.f32), bf16 upper half | quiet bit.
__device__ __forceinline__ uint16_t rc_f32_to_f16_bits(float f) {
  if (f != f) {
    const uint32_t u = __float_as_uint(f);
    return (uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x3ffu));
  }
  return __half_as_ushort(__float2half_rn(f));
}

// bf16: the CPU's integer rounding itself (as cheap as the conversion instruction, and no question of subnormals).
__device__ __forceinline__ uint16_t rc_f32_to_bf16_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Typed forms: rc_to_f32(x) for float, __half and __nv_bfloat16; rc_from_f32<T>(f) back.
__device__ __forceinline__ float rc_to_f32(float x) { return x; }
__device__ __forceinline__ float rc_to_f32(__half x) { return rc_f16_bits_to_f32(__half_as_ushort(x)); }
__device__ __forceinline__ float rc_to_f32(__nv_bfloat16 x) { return rc_bf16_bits_to_f32(__bfloat16_as_ushort(x)); }

template <class T>
__device__ __forceinline__ T rc_from_f32(float f);
template <>
__device__ __forceinline__ float rc_from_f32<float>(float f) {
  return f;
}
template <>
__device__ __forceinline__ __half rc_from_f32<__half>(float f) {
  return __ushort_as_half(rc_f32_to_f16_bits(f));
}
template <>
__device__ __forceinline__ __nv_bfloat16 rc_from_f32<__nv_bfloat16>(float f) {
  return __ushort_as_bfloat16(rc_f32_to_bf16_bits(f));
}

// The NaN of a rotated pair's NaN output (rotary_pair_nan): x0 quieted when x0 is NaN, else x1 quieted when x1 is
// NaN, else the positive default NaN 0x7fc00000.
__device__ __forceinline__ float rc_pair_nan(float x0, float x1) {
  const uint32_t a = __float_as_uint(x0), b = __float_as_uint(x1);
  if ((a & 0x7fffffffu) > 0x7f800000u) return __uint_as_float(a | 0x00400000u);
  if ((b & 0x7fffffffu) > 0x7f800000u) return __uint_as_float(b | 0x00400000u);
  return __uint_as_float(0x7fc00000u);
}

// One pair, as rotary_rotate_pair: y0 = fmaf(x0, c, -(x1 * s)), y1 = fmaf(x0, s, x1 * c), each product and fma
// rounded to nearest even (explicit intrinsics: nothing contracted or reassociated), a NaN output replaced.
__device__ __forceinline__ void rc_rotate_pair(float x0, float x1, float c, float s, float *y0, float *y1) {
  float a = __fmaf_rn(x0, c, -__fmul_rn(x1, s));
  float b = __fmaf_rn(x0, s, __fmul_rn(x1, c));
  if (a != a || b != b) {
    const float nan = rc_pair_nan(x0, x1);
    if (a != a) a = nan;
    if (b != b) b = nan;
  }
  *y0 = a;
  *y1 = b;
}

#endif  // ROTARY_CUDA_MATH_CUH
