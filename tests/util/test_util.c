/* test_util.c: library-independent test helpers: RNG, fp16/bf16 conversions, ulp math, guarded buffers, canaries. */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS and sysconf under -std=c11 */
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int tu_quick(void) {
  const char *v = getenv("ROTARY_TEST_QUICK");
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* ---- RNG ---- */

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->state = seed; }

uint64_t tu_rng_u64(tu_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n) {
  /* Rejection keeps it unbiased; the bias would not matter, but determinism across platforms does. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = tu_rng_u64(r);
  } while (v >= limit);
  return v % n;
}

double tu_rng_unit(tu_rng *r) { return (double)(tu_rng_u64(r) >> 11) * 0x1.0p-53; }

float tu_rng_f32(tu_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)tu_rng_unit(r); }

float tu_rng_f32_wide(tu_rng *r, int min_exp, int max_exp) {
  uint64_t u = tu_rng_u64(r);
  int e = min_exp + (int)tu_rng_below(r, (uint64_t)(max_exp - min_exp + 1));
  float m = 1.0f + (float)(u & 0x7FFFFF) * 0x1.0p-23f;
  float v = ldexpf(m, e);
  return (u >> 63) ? -v : v;
}

/* ---- bit casts and conversions ---- */

uint32_t tu_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

float tu_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Rounds the integer m * 2^-shift to nearest even (shift >= 1). */
static uint32_t round_shift_rne(uint32_t m, unsigned shift) {
  if (shift >= 32) return 0;
  uint32_t q = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return q;
}

uint16_t tu_f32_to_f16(float f) {
  uint32_t x = tu_f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu)); /* NaN, quiet */
  if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520: rounds (ties to even) to Inf */
  if (ax < 0x38800000u) { /* below 2^-14: binary16 subnormal or zero */
    uint32_t e = ax >> 23;
    if (e < 102) return sign; /* below 2^-25: rounds to zero (2^-25 itself is a tie with 0) */
    uint32_t m = (ax & 0x7FFFFFu) | 0x800000u; /* value = m * 2^(e-150); result unit is 2^-24 */
    return (uint16_t)(sign | round_shift_rne(m, 126u - e));
  }
  uint32_t r = (ax >> 13) - (112u << 10); /* rebias 127 -> 15; a mantissa carry rolls into the exponent */
  uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
  return (uint16_t)(sign | r);
}

float tu_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1Fu;
  uint32_t m = h & 0x3FFu;
  if (e == 0x1F) return tu_bits_f32(sign | 0x7F800000u | (m << 13)); /* Inf or NaN (payload kept) */
  if (e == 0) {
    float v = (float)m * 0x1.0p-24f; /* exact: m < 2^10 */
    return sign ? -v : v;
  }
  return tu_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t tu_f32_to_bf16(float f) {
  uint32_t x = tu_f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x0040u); /* NaN, quiet */
  uint32_t lsb = (x >> 16) & 1u;
  return (uint16_t)((x + 0x7FFFu + lsb) >> 16); /* ties to even; overflow rolls into Inf */
}

float tu_bf16_to_f32(uint16_t h) { return tu_bits_f32((uint32_t)h << 16); }

/* ---- dtype elements ---- */

size_t tu_dtype_size(rotary_dtype dt) { return dt == ROTARY_F32 ? 4 : 2; }

const char *tu_dtype_name(rotary_dtype dt) {
  return dt == ROTARY_F32 ? "f32" : dt == ROTARY_F16 ? "f16" : dt == ROTARY_BF16 ? "bf16" : "?";
}

float tu_bits_value(rotary_dtype dt, uint32_t bits) {
  if (dt == ROTARY_F32) return tu_bits_f32(bits);
  if (dt == ROTARY_F16) return tu_f16_to_f32((uint16_t)bits);
  return tu_bf16_to_f32((uint16_t)bits);
}

uint32_t tu_round_bits(rotary_dtype dt, float v) {
  if (dt == ROTARY_F32) return tu_f32_bits(v);
  if (dt == ROTARY_F16) return tu_f32_to_f16(v);
  return tu_f32_to_bf16(v);
}

uint32_t tu_load_bits(rotary_dtype dt, const void *base, ptrdiff_t idx) {
  if (dt == ROTARY_F32) {
    uint32_t u;
    memcpy(&u, (const unsigned char *)base + idx * 4, 4);
    return u;
  }
  uint16_t h;
  memcpy(&h, (const unsigned char *)base + idx * 2, 2);
  return h;
}

float tu_load(rotary_dtype dt, const void *base, ptrdiff_t idx) {
  return tu_bits_value(dt, tu_load_bits(dt, base, idx));
}

void tu_store(rotary_dtype dt, void *base, ptrdiff_t idx, float v) {
  uint32_t bits = tu_round_bits(dt, v);
  if (dt == ROTARY_F32) {
    memcpy((unsigned char *)base + idx * 4, &bits, 4);
  } else {
    uint16_t h = (uint16_t)bits;
    memcpy((unsigned char *)base + idx * 2, &h, 2);
  }
}

int tu_bits_isnan(rotary_dtype dt, uint32_t bits) {
  if (dt == ROTARY_F32) return (bits & 0x7FFFFFFFu) > 0x7F800000u;
  if (dt == ROTARY_F16) return (bits & 0x7FFFu) > 0x7C00u;
  return (bits & 0x7FFFu) > 0x7F80u;
}

/* ---- ulps ---- */

long double tu_ulp(rotary_dtype dt, long double x) {
  int precision = dt == ROTARY_F32 ? 24 : dt == ROTARY_F16 ? 11 : 8;
  int emin = dt == ROTARY_F16 ? -14 : -126;
  x = fabsl(x);
  int e = emin;
  if (x >= ldexpl(1.0L, emin)) {
    (void)frexpl(x, &e); /* x = f * 2^e with f in [0.5, 1): the binade is [2^(e-1), 2^e) */
    e -= 1;
  }
  return ldexpl(1.0L, e - precision + 1);
}

/* Maps bits to an integer that orders like the values, so the difference counts representable values. */
static int64_t ordered(rotary_dtype dt, uint32_t bits) {
  uint32_t sign_bit = dt == ROTARY_F32 ? 0x80000000u : 0x8000u;
  int64_t mag = (int64_t)(bits & (sign_bit - 1u));
  return (bits & sign_bit) ? -mag : mag;
}

uint64_t tu_ulp_dist_bits(rotary_dtype dt, uint32_t a, uint32_t b) {
  int64_t d = ordered(dt, a) - ordered(dt, b);
  return (uint64_t)(d < 0 ? -d : d);
}

uint64_t tu_ulp_dist_f32(float a, float b) { return tu_ulp_dist_bits(ROTARY_F32, tu_f32_bits(a), tu_f32_bits(b)); }

/* ---- guarded buffers ---- */

static size_t page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (size_t)p : 4096;
}

unsigned char *tu_guard_alloc(tu_guarded *g, size_t bytes, tu_guard_side side) {
  size_t page = page_size();
  size_t data_pages = (bytes + page - 1) / page;
  if (data_pages == 0) data_pages = 1;
  size_t map_bytes = (data_pages + 2) * page;
  memset(g, 0, sizeof *g);
  void *map = mmap(NULL, map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return NULL;
  unsigned char *data = (unsigned char *)map + page;
  if (mprotect(data, data_pages * page, PROT_READ | PROT_WRITE) != 0) {
    munmap(map, map_bytes);
    return NULL;
  }
  g->map = map;
  g->map_bytes = map_bytes;
  g->bytes = bytes;
  g->ptr = side == TU_GUARD_START ? data : data + data_pages * page - bytes;
  return g->ptr;
}

int tu_guard_readonly(tu_guarded *g) {
  size_t page = page_size();
  unsigned char *data = (unsigned char *)g->map + page;
  return mprotect(data, g->map_bytes - 2 * page, PROT_READ);
}

void tu_guard_free(tu_guarded *g) {
  if (g->map != NULL) munmap(g->map, g->map_bytes);
  memset(g, 0, sizeof *g);
}

/* ---- canaries ---- */

static unsigned char canary_byte(uint64_t seed, size_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
  z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
  return (unsigned char)(z >> 56);
}

void tu_canary_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = canary_byte(seed, i);
}

size_t tu_canary_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != canary_byte(seed, i)) return i;
  return n;
}

size_t tu_rotary_dims(size_t hd, size_t *out) {
  size_t n = 0;
  if (hd <= 64 && !tu_quick()) {
    for (size_t rd = 2; rd <= hd; rd += 2) out[n++] = rd;
    return n;
  }
  size_t cand[4] = {2, (hd / 4) & ~(size_t)1, (hd / 2) & ~(size_t)1, hd};
  for (size_t j = 0; j < 4; j++)
    if (cand[j] >= 2 && (n == 0 || cand[j] != out[n - 1])) out[n++] = cand[j];
  return n;
}

int tu_failures;

void tu_check(int ok, const char *fmt, ...) {
  if (ok) return;
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL: ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  tu_failures++;
}
