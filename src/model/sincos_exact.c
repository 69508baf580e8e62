/* sincos_exact.c: the exact reduction (Payne-Hanek) of pos * inv_freq modulo pi/2 for angles the fast path leaves. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sincos.h"
#include "sincos_2opi.h"

typedef unsigned __int128 u128;

#define WINDOW_WORDS 5 /* 320 bits of 2/pi per reduction: 2 integer bits, 318 fraction bits */

static uint64_t table_word(int i) { return i >= 0 && i < ROTARY_2OPI_WORDS ? rotary_two_over_pi[i] : 0; }

/* Bits j .. j+63 of 2/pi as one word, bit j most significant (bits j < 1 of 2/pi are 0). */
static uint64_t two_over_pi_bits(int j) {
  const int i = j - 1; /* index of bit j in the table's bit stream */
  if (i <= -64) return 0;
  if (i < 0) return table_word(0) >> -i;
  const int w = i / 64, sh = i % 64;
  return sh ? table_word(w) << sh | table_word(w + 1) >> (64 - sh) : table_word(w);
}

/* x = n[1] * 2^64 + n[0] times 2^e times 2/pi, modulo 4, as a 320-bit fixed-point number f (f[4] most significant,
 * two integer bits on top). Bits of 2/pi weighing 2^-j with j < e - 1 give multiples of 4 and are skipped; those
 * past the window change x * 2/pi by less than 2^-212. */
static void reduce_fixed(const uint64_t n[2], int e, uint64_t f[WINDOW_WORDS]) {
  uint64_t v[WINDOW_WORDS]; /* the window, least significant word first */
  for (int k = 0; k < WINDOW_WORDS; k++) v[WINDOW_WORDS - 1 - k] = two_over_pi_bits(e - 1 + 64 * k);
  memset(f, 0, WINDOW_WORDS * sizeof *f);
  for (int a = 0; a < 2; a++) {
    u128 carry = 0;
    for (int b = 0; a + b < WINDOW_WORDS; b++) {
      const u128 t = (u128)n[a] * v[b] + f[a + b] + carry;
      f[a + b] = (uint64_t)t;
      carry = t >> 64;
    }
  }
}

/* The 318 fraction bits of f (its top two bits clear) as a double-double hi + lo, in quadrants; f is destroyed. */
static void fraction_to_dd(uint64_t f[WINDOW_WORDS], double *hi, double *lo) {
  int lz = 0;
  while (lz < 64 * WINDOW_WORDS && !f[WINDOW_WORDS - 1]) { /* whole words */
    memmove(f + 1, f, (WINDOW_WORDS - 1) * sizeof *f);
    f[0] = 0;
    lz += 64;
  }
  if (lz >= 64 * WINDOW_WORDS) {
    *hi = *lo = 0.0;
    return;
  }
  const int bits = __builtin_clzll(f[WINDOW_WORDS - 1]);
  if (bits) {
    for (int k = WINDOW_WORDS - 1; k > 0; k--) f[k] = f[k] << bits | f[k - 1] >> (64 - bits);
    f[0] <<= bits;
  }
  lz += bits;
  /* f was value * 2^318; shifted left by lz, its top word a weighs 2^(256 - 318 - lz), the next one 2^-64 less */
  const uint64_t a = f[WINDOW_WORDS - 1], b = f[WINDOW_WORDS - 2];
  *hi = ldexp((double)(a & ~(uint64_t)0x7ff), 2 - 64 - lz);
  *lo = ldexp((double)(a & 0x7ff) + ldexp((double)b, -64), 2 - 64 - lz);
}

void rotary_sincos_exact(int64_t pos, double w, double scaling, float *cos, float *sin) {
  uint64_t wb;
  memcpy(&wb, &w, sizeof wb);
  const int biased = (int)(wb >> 52 & 0x7ff);
  const uint64_t m = (wb & ((UINT64_C(1) << 52) - 1)) | (biased ? UINT64_C(1) << 52 : 0);
  const int e = (biased ? biased : 1) - 1075; /* w = m * 2^e */
  const u128 prod = (u128)(uint64_t)pos * m;  /* the exact angle is prod * 2^e */
  const uint64_t n[2] = {(uint64_t)prod, (uint64_t)(prod >> 64)};
  const int bits = n[1] ? 128 - __builtin_clzll(n[1]) : n[0] ? 64 - __builtin_clzll(n[0]) : 0;
  if (bits + e < 0) { /* below 1/2: no reduction, r = the product split into its top 53 bits and the rest */
    const int sh = bits > 53 ? bits - 53 : 0;
    const u128 top = prod >> sh;
    rotary_sincos_finish(ldexp((double)(uint64_t)top, e + sh), ldexp((double)(uint64_t)(prod - (top << sh)), e), 0,
                         scaling, cos, sin);
    return;
  }
  uint64_t f[WINDOW_WORDS];
  reduce_fixed(n, e, f);
  unsigned q = (unsigned)(f[WINDOW_WORDS - 1] >> 62);
  f[WINDOW_WORDS - 1] &= ~(UINT64_C(3) << 62);
  double sign = 1.0;
  if (f[WINDOW_WORDS - 1] >> 61) { /* fraction >= 1/2: the next quadrant, reduced angle negative */
    q++;
    sign = -1.0;
    unsigned borrow = 1; /* f = 2^318 - f: two's complement within the 318 fraction bits */
    for (int k = 0; k < WINDOW_WORDS; k++) {
      const uint64_t x = ~f[k] + borrow;
      borrow = borrow && x == 0;
      f[k] = x;
    }
    f[WINDOW_WORDS - 1] &= ~(UINT64_C(3) << 62);
  }
  double fh, fl;
  fraction_to_dd(f, &fh, &fl);
  /* r = fraction * pi/2 in double-double (pi/2 = PIO2_HI + PIO2_LO to 2^-107) */
  const double PIO2_HI = 0x1.921fb54442d18p+0, PIO2_LO = 0x1.1a62633145c07p-54;
  const double ph = fh * PIO2_HI;
  const double pl = fma(fh, PIO2_HI, -ph) + (fh * PIO2_LO + fl * PIO2_HI);
  const double r_hi = ph + pl, r_lo = pl - (r_hi - ph);
  rotary_sincos_finish(sign * r_hi, sign * r_lo, q, scaling, cos, sin);
}
