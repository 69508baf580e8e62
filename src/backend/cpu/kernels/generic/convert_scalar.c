/* generic/convert_scalar.c: the scalar conversion kernels (the reference the vector ones match bit for bit). */
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "convert_kernels.h"
#include "fp8.h"

/* Elements move through memcpy: in and out may start at any byte address. */

void rotary_f16_to_f32_convert__scalar(const void *in, void *out, size_t n, float scale) {
  (void)scale;
  const unsigned char *src = in;
  unsigned char *dst = out;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    const float f = rotary_f16_to_f32_quiet(h);
    memcpy(dst + 4 * i, &f, 4);
  }
}

void rotary_bf16_to_f32_convert__scalar(const void *in, void *out, size_t n, float scale) {
  (void)scale;
  const unsigned char *src = in;
  unsigned char *dst = out;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    const float f = rotary_bf16_to_f32(h);
    memcpy(dst + 4 * i, &f, 4);
  }
}

void rotary_fp8_to_f32_convert__scalar(const void *in, void *out, size_t n, float scale) {
  const uint8_t *src = in;
  unsigned char *dst = out;
  for (size_t i = 0; i < n; i++) {
    const float f = rotary_fp8_e4m3_decode(src[i], scale);
    memcpy(dst + 4 * i, &f, 4);
  }
}

void rotary_f32_to_f16_convert__scalar(const void *in, void *out, size_t n, float scale) {
  (void)scale;
  const unsigned char *src = in;
  unsigned char *dst = out;
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, src + 4 * i, 4);
    const uint16_t h = rotary_f32_to_f16(f);
    memcpy(dst + 2 * i, &h, 2);
  }
}

void rotary_f32_to_bf16_convert__scalar(const void *in, void *out, size_t n, float scale) {
  (void)scale;
  const unsigned char *src = in;
  unsigned char *dst = out;
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, src + 4 * i, 4);
    const uint16_t h = rotary_f32_to_bf16(f);
    memcpy(dst + 2 * i, &h, 2);
  }
}

void rotary_f32_to_fp8_convert__scalar(const void *in, void *out, size_t n, float scale) {
  const unsigned char *src = in;
  uint8_t *dst = out;
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, src + 4 * i, 4);
    dst[i] = rotary_fp8_e4m3_encode(f, scale);
  }
}

/* bf16 -> f32 is exact, so this is bf16 -> f32 -> fp8 in one pass (the KV-cache write's v rows into an fp8 cache). */
void rotary_bf16_to_fp8_convert__scalar(const void *in, void *out, size_t n, float scale) {
  const unsigned char *src = in;
  uint8_t *dst = out;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    dst[i] = rotary_fp8_e4m3_encode(rotary_bf16_to_f32(h), scale);
  }
}

/* f16 -> f32 is exact, so this is f16 -> f32 -> fp8 in one pass (v rows of an f16 model into an fp8 cache). */
void rotary_f16_to_fp8_convert__scalar(const void *in, void *out, size_t n, float scale) {
  const unsigned char *src = in;
  uint8_t *dst = out;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    dst[i] = rotary_fp8_e4m3_encode(rotary_f16_to_f32(h), scale);
  }
}
