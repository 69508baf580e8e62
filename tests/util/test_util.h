/* test_util.h: library-independent test helpers: RNG, fp16/bf16 conversions, ulp math, guarded buffers, canaries. */
#ifndef TU_TEST_UTIL_H
#define TU_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "rotary.h" /* only for the rotary_dtype enum values: no library code is used here */

/* Nonzero when ROTARY_TEST_QUICK is set (to anything but "" or "0"): slow tools such as valgrind set it. */
int tu_quick(void);

/* Deterministic splitmix64 generator: the same seed gives the same stream on every platform. */
typedef struct tu_rng {
  uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_u64(tu_rng *r);
uint64_t tu_rng_below(tu_rng *r, uint64_t n); /* uniform in [0, n); n > 0 */
double tu_rng_unit(tu_rng *r);                /* uniform in [0, 1) with 53 random bits */
float tu_rng_f32(tu_rng *r, float lo, float hi);
/* Random sign, random 23-bit mantissa, exponent uniform in [min_exp, max_exp]: spans many binades. */
float tu_rng_f32_wide(tu_rng *r, int min_exp, int max_exp);

/* Bit casts. */
uint32_t tu_f32_bits(float f);
float tu_bits_f32(uint32_t u);

/* IEEE binary16 and bfloat16 conversions written from the formats' definitions: round to nearest even, NaN stays
 * NaN (quieted, sign kept), overflow gives Inf, subnormals both ways. */
uint16_t tu_f32_to_f16(float f);
float tu_f16_to_f32(uint16_t h);
uint16_t tu_f32_to_bf16(float f);
float tu_bf16_to_f32(uint16_t h);

/* Element helpers for a buffer of dtype: size, exact decode to float, rounded encode, raw bits (zero-extended). */
size_t tu_dtype_size(rotary_dtype dt);
const char *tu_dtype_name(rotary_dtype dt);
float tu_load(rotary_dtype dt, const void *base, ptrdiff_t idx);
void tu_store(rotary_dtype dt, void *base, ptrdiff_t idx, float v);
uint32_t tu_load_bits(rotary_dtype dt, const void *base, ptrdiff_t idx);
uint32_t tu_round_bits(rotary_dtype dt, float v); /* bits of v rounded to dt */
float tu_bits_value(rotary_dtype dt, uint32_t bits);
int tu_bits_isnan(rotary_dtype dt, uint32_t bits);

/* Spacing of dt at |x|: 2^(e - p + 1) for |x| in [2^e, 2^(e+1)), the subnormal spacing below the normal range. */
long double tu_ulp(rotary_dtype dt, long double x);
/* Number of representable values of dt between a and b (finite, same type); +0 and -0 are 0 apart. */
uint64_t tu_ulp_dist_bits(rotary_dtype dt, uint32_t a, uint32_t b);
uint64_t tu_ulp_dist_f32(float a, float b);

/* A buffer placed against an unmapped (PROT_NONE) page: any access past the chosen side faults at once.
 * Both sides have a guard page; TU_GUARD_END puts the last byte right before one, TU_GUARD_START puts the first
 * byte right after one (page aligned). */
typedef enum tu_guard_side { TU_GUARD_END = 0, TU_GUARD_START = 1 } tu_guard_side;

typedef struct tu_guarded {
  void *map;
  size_t map_bytes;
  unsigned char *ptr;
  size_t bytes;
} tu_guarded;

/* Returns g->ptr (NULL on failure). bytes may be 0. */
unsigned char *tu_guard_alloc(tu_guarded *g, size_t bytes, tu_guard_side side);
/* Makes the data pages read-only: a write into an input buffer then faults. */
int tu_guard_readonly(tu_guarded *g);
void tu_guard_free(tu_guarded *g);

/* Canaries: a seeded byte pattern for bytes that must stay untouched; check returns n when intact, else the index
 * of the first changed byte. */
void tu_canary_fill(void *p, size_t n, uint64_t seed);
size_t tu_canary_check(const void *p, size_t n, uint64_t seed);

/* Records a failed check without stopping the test (printing "FAIL: " and the message), so that one run lists every
 * bad case; tests assert tu_failures == 0 at their end and reset it at their start. */
extern int tu_failures;
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void tu_check(int ok, const char *fmt, ...);

/* The rotary_dims a sweep tries for head_dim hd, written to out (room for hd / 2 values); returns the count.
 * Every even value up to 64 (quick mode: a handful); above, 2, head_dim/4, head_dim/2 and head_dim. */
size_t tu_rotary_dims(size_t hd, size_t *out);

#endif /* TU_TEST_UTIL_H */
