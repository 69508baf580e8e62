/* fuzz_util.h: input carving, verdicts and fp16/bf16 numbers for fuzz_apply.c (included by it only). */
#ifndef ROTARY_FUZZ_UTIL_H
#define ROTARY_FUZZ_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rotary.h"

/* ---- input carving: bytes run out into zeros ---- */

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

static uint8_t rd_u8(reader *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

/* ---- verdicts ---- */

#define BIT(s) (1u << (unsigned)(s))
typedef struct verdict {
  unsigned must, may;
} verdict;

static int status_allowed(verdict v, rotary_status st) {
  if ((unsigned)st > 31) return 0;
  if (v.must) return st != ROTARY_OK && ((v.must | v.may) & BIT(st));
  return st == ROTARY_OK || (v.may & BIT(st));
}

/* ---- numbers ---- */

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0x1f) bits = sign | 0x7f800000u | (m << 13);
  else if (e) bits = sign | ((e + 112) << 23) | (m << 13);
  else {
    float f = ldexpf((float)m, -24);
    return sign ? -f : f;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* quiet, top payload bits */
  if (ax >= 0x477ff000u) return sign | 0x7c00u; /* 65520 and up round to infinity */
  if (ax < 0x38800000u) {                       /* below 2^-14: subnormal, round x * 2^24 to an integer */
    float a;
    memcpy(&a, &ax, 4);
    return sign | (uint16_t)nearbyintf(a * 16777216.0f);
  }
  return sign | (uint16_t)((ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13);
}

static float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static size_t dtype_size(rotary_dtype t) { return t == ROTARY_F32 ? 4 : (t == ROTARY_F16 || t == ROTARY_BF16) ? 2 : 0; }

static float load_elem(const unsigned char *p, rotary_dtype t) {
  if (t == ROTARY_F32) {
    float f;
    memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  memcpy(&h, p, 2);
  return t == ROTARY_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

static void store_elem(unsigned char *p, rotary_dtype t, float f) {
  if (t == ROTARY_F32) {
    memcpy(p, &f, 4);
    return;
  }
  uint16_t h = t == ROTARY_F16 ? f32_to_f16(f) : f32_to_bf16(f);
  memcpy(p, &h, 2);
}

#endif /* ROTARY_FUZZ_UTIL_H */
