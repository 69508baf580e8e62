/* generic/sincos_scalar.c: the portable cos/sin rows kernel (one lane), and the polynomial stage of the exact path. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_sincos_rows__scalar */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sincos.h"

#define SD_W 1
#define SD_TARGET
#define SD_NAME(x) x##__scalar

typedef double sd_v;
typedef int sd_m;

static inline uint64_t sd_bits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}
static inline double sd_from_bits(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

#define sd_set1(x) ((double)(x))
#define sd_loadu(p) (*(p))
#define sd_add(a, b) ((a) + (b))
#define sd_sub(a, b) ((a) - (b))
#define sd_mul(a, b) ((a) * (b))
#define sd_neg(a) (-(a))
#define sd_abs(a) fabs(a)
#define sd_fma(a, b, c) fma((a), (b), (c))
#define sd_lt(a, b) ((a) < (b))
#define sd_gt(a, b) ((a) > (b))
#define sd_mand(a, b) ((a) && (b))
#define sd_mor(a, b) ((a) || (b))
#define sd_mbits(m) ((unsigned)(m))
#define sd_select_odd(t, a, b) ((sd_bits(t) & 1u) ? (b) : (a))
#define sd_sign_bit1(t) sd_from_bits((sd_bits(t) & 2u) << 62)
#define sd_xor(v, sign) sd_from_bits(sd_bits(v) ^ sd_bits(sign))
#define sd_store_f32(p, v) (*(p) = (float)(v))

#include "sincos_template.h"

void rotary_sincos_finish(double r_hi, double r_lo, unsigned q, double scaling, float *cos, float *sin) {
  sd_core__scalar(r_hi, r_lo, SD_MAGIC + (double)(q & 3u), scaling, cos, sin);
}
