/* test_attn_kernels.c: every decode-attention kernel this CPU runs (scores, values, exp) against fp64 references. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_kernels.h"

/*
 * References. Cache elements are decoded here from the formats' definitions (not with the library's helpers): f16
 * and bf16 from their bit fields, fp8 E4M3 from the OCP spec (bias 7, subnormals m * 2^-9, S.1111.111 NaN) times
 * the scale in fp32 (the contract's one rounding). Sums are then taken in double.
 *
 * Error bounds checked (u = 2^-24; every term and partial sum is fp32, products and sums each round once):
 *   scores: |s - exact| <= (head_dim + 8) u sum_d |q_d k_d|      (fma chains of length <= head_dim, then a tree of 3)
 *   values: |o - exact| <= (n + 1) u (|o_0| + sum_j |p_j v_j|)    (one fma chain over the n keys)
 *   exp:    <= 2 ulp of the correctly rounded exp on [-87, 0] (the contract); below, 0 or within 2^-126;
 *           sum: |sum - exact sum of the returned values| <= n u sum.
 */

static int quick(void) { return getenv("ROTARY_TEST_QUICK") != NULL; }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
/* Uniform in [-1, 1). */
static float rndf(void) { return (float)((double)(rnd() >> 11) * 0x1p-52 - 1.0); }

static const rotary_dtype dtypes[4] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16, ROTARY_FP8_E4M3};
static const char *dtype_tag[4] = {"f32", "f16", "bf16", "fp8"};
static const size_t dtype_size[4] = {4, 2, 2, 1};
static const rotary_isa isas[] = {ROTARY_ISA_SCALAR, ROTARY_ISA_AVX2, ROTARY_ISA_AVX512, ROTARY_ISA_AVX512BF16,
                                  ROTARY_ISA_NEON};
#define N_ISAS (sizeof isas / sizeof isas[0])

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ---- element formats, from their definitions ---- */

static double ref_f16(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31) return m ? NAN : sign * INFINITY;
  return sign * (e ? ldexp(1024.0 + m, e - 25) : ldexp((double)m, -24));
}
static double ref_bf16(uint16_t h) { return (double)bits_f32((uint32_t)h << 16); }
static double ref_fp8_mag(unsigned c) {
  const unsigned e = (c >> 3) & 15u, m = c & 7u;
  return e == 0 ? ldexp((double)m, -9) : ldexp(1.0 + m / 8.0, (int)e - 7);
}
static float ref_fp8(uint8_t c, float scale) {
  if ((c & 0x7f) == 0x7f) return NAN;
  const float v = (float)ref_fp8_mag(c & 0x7fu);
  return (c & 0x80) ? -(v * scale) : v * scale;
}

/* Nearest encodable element to x (for making inputs only: any rounding will do, the reference decodes the result). */
static void encode(int dt, float x, float scale, unsigned char *p) {
  if (dt == 0) {
    memcpy(p, &x, 4);
  } else if (dt == 2) {
    const uint16_t h = (uint16_t)(f32_bits(x) >> 16);
    memcpy(p, &h, 2);
  } else if (dt == 1) {
    /* via double: exact halves of the f16 grid, truncated toward zero (the tests need no particular rounding) */
    const double a = fabs((double)x);
    int e;
    frexp(a, &e); /* a = f 2^e, f in [0.5, 1) */
    uint16_t h;
    if (a < 0x1p-14) h = (uint16_t)(a * 0x1p24);
    else h = (uint16_t)(((e + 14) << 10) | ((uint16_t)(ldexp(a, 11 - e) - 1024.0) & 1023));
    if (x < 0) h |= 0x8000;
    memcpy(p, &h, 2);
  } else {
    /* a random finite code (x and scale unused: any code is an input) */
    (void)scale;
    unsigned c = (unsigned)(rnd() >> 56);
    if ((c & 0x7f) == 0x7f) c ^= 1;
    *p = (uint8_t)c;
  }
}

static double decode(int dt, const unsigned char *p, float scale) {
  uint16_t h;
  switch (dt) {
    case 0: {
      float f;
      memcpy(&f, p, 4);
      return f;
    }
    case 1: memcpy(&h, p, 2); return ref_f16(h);
    case 2: memcpy(&h, p, 2); return ref_bf16(h);
    default: return ref_fp8(*p, scale);
  }
}

/* ---- the kernels under test ---- */

typedef struct kset {
  rotary_attn_kernels k;
  int dt;
} kset;

/* Every (dtype, ISA) set of kernels compiled and supported here; returns the count. */
static size_t kernel_sets(kset *out, size_t cap) {
  size_t m = 0;
  for (size_t i = 0; i < N_ISAS; i++)
    for (int dt = 0; dt < 4; dt++) {
      rotary_attn_kernels k;
      if (rotary_attn_select_isa(dtypes[dt], isas[i], &k) != ROTARY_OK) continue;
      if (!rotary_isa_supported(isas[i])) {
        printf("  %s: not supported here, skipped\n", k.scores_name);
        continue;
      }
      assert_true(m < cap);
      out[m].k = k;
      out[m].dt = dt;
      m++;
    }
  return m;
}

/* A cache of n rows of hd elements, row stride `stride` elements, starting `off` bytes into its allocation. */
typedef struct cache {
  unsigned char *base, *rows;
  size_t n, hd, stride, bytes;
  int dt;
  float scale;
} cache;

static cache cache_make(int dt, size_t n, size_t hd, size_t stride, size_t off, float scale, float amp) {
  cache c = {0};
  c.n = n, c.hd = hd, c.stride = stride, c.dt = dt, c.scale = scale;
  c.bytes = (n * stride) * dtype_size[dt] + off + 64;
  c.base = malloc(c.bytes);
  assert_non_null(c.base);
  for (size_t i = 0; i < c.bytes; i++) c.base[i] = (unsigned char)rnd();
  c.rows = c.base + off;
  for (size_t j = 0; j < n; j++)
    for (size_t d = 0; d < hd; d++) encode(dt, amp * rndf(), scale, c.rows + (j * stride + d) * dtype_size[dt]);
  if (dt == 3) /* no NaN codes in the padding-free part unless a test puts one there */
    for (size_t j = 0; j < n; j++)
      for (size_t d = 0; d < hd; d++) assert_true((c.rows[j * stride + d] & 0x7f) != 0x7f);
  return c;
}

static const unsigned char *elem(const cache *c, size_t j, size_t d) {
  return c->rows + (j * c->stride + d) * dtype_size[c->dt];
}

/* Every element of the cache decoded (decode), n x hd, row j at j * hd: the references read each element once per
 * row of q / column of o, so it is decoded once. */
static double *decoded(const cache *c) {
  double *x = malloc((c->n * c->hd + 1) * sizeof(double));
  assert_non_null(x);
  for (size_t j = 0; j < c->n; j++)
    for (size_t d = 0; d < c->hd; d++) x[j * c->hd + d] = decode(c->dt, elem(c, j, d), c->scale);
  return x;
}

static float *floats(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  assert_non_null(p);
  return p;
}

/* ---- prefetch cursors (attn_kernels.h): never read, so no bit may depend on them; asked for within bounds ---- */

static unsigned char pf_area[4096];

/* A cursor over pf_area with 1-4 lines per key and an end that is not a line boundary. */
static rotary_attn_prefetch pf_make(void) {
  rotary_attn_prefetch pf = {(uintptr_t)pf_area, (uintptr_t)pf_area + sizeof pf_area - 5, 1 + (size_t)(rnd() % 4)};
  return pf;
}

/* Lines were asked for (a call uses at least one key), one line at a time from the start, none at or past end. */
static void pf_check(const char *name, const rotary_attn_prefetch *pf) {
  const uintptr_t start = (uintptr_t)pf_area;
  if (pf->at <= start || (pf->at - start) % 64 || pf->at >= pf->end + 64)
    fail_msg("%s: prefetch cursor at %+td of [0, %td)", name, (ptrdiff_t)(pf->at - start),
             (ptrdiff_t)(pf->end - start));
}

/* ---- scores ---- */

#define CANARY 0x7fbadbadu

/* Set while the `_dot` kernels (precision BF16) are checked: q and p hold bf16 values (their contract), and the
 * values kernels sum in their own order (no bit comparison with the scalar kernel). */
static int g_dot;

static float bf16_value(float x) { return bits_f32(f32_bits(x) & 0xffff0000u); }

/* One scores call against the reference; returns the largest error in units of its bound. */
static double check_scores(const kset *K, size_t rows, size_t n, size_t hd, size_t stride, size_t off, float scale) {
  cache c = cache_make(K->dt, n, hd, stride, off, scale, 2.0f);
  float *q = floats(rows * hd + 16); /* NaN after the last row: a kernel reading past it gets NaN logits */
  for (size_t i = 0; i < rows * hd; i++) q[i] = g_dot ? bf16_value(rndf()) : rndf();
  for (size_t i = rows * hd; i < rows * hd + 16; i++) q[i] = NAN;
  const size_t ss = n + (rnd() & 3);
  float *s = floats(rows * ss), *s2 = floats(rows * ss);
  for (size_t i = 0; i < rows * ss; i++) s[i] = s2[i] = bits_f32(CANARY);
  /* half the calls walk the rows backwards: key j is row n-1-j, reached with a negative row stride */
  const int back = (int)(rnd() & 1);
  const unsigned char *k0 = back ? elem(&c, n - 1, 0) : c.rows;
  const ptrdiff_t kst = back ? -(ptrdiff_t)stride : (ptrdiff_t)stride;
  rotary_attn_prefetch pf = pf_make();
  K->k.scores(q, rows, hd, k0, kst, n, scale, s, ss, NULL);
  K->k.scores(q, rows, hd, k0, kst, n, scale, s2, ss, &pf); /* a prefetch cursor changes no bit */
  if (memcmp(s, s2, rows * ss * sizeof(float)))
    fail_msg("%s: two calls differ (rows %zu n %zu hd %zu)", K->k.scores_name, rows, n, hd);
  pf_check(K->k.scores_name, &pf);
  double worst = 0.0;
  double *kd = decoded(&c);
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < ss; j++) {
      const float got = s[r * ss + j];
      if (j >= n) {
        if (f32_bits(got) != CANARY) fail_msg("%s: wrote s[%zu][%zu] beyond n", K->k.scores_name, r, j);
        continue;
      }
      double exact = 0.0, mag = 0.0;
      for (size_t d = 0; d < hd; d++) {
        const double t = (double)q[r * hd + d] * kd[(back ? n - 1 - j : j) * hd + d];
        exact += t;
        mag += fabs(t);
      }
      const double bound = (double)(hd + 8) * 0x1p-24 * mag;
      const double err = fabs((double)got - exact);
      if (!(err <= bound))
        fail_msg("%s: rows %zu n %zu hd %zu stride %zu off %zu: s[%zu][%zu] = %.9g, exact %.17g, bound %.3g",
                 K->k.scores_name, rows, n, hd, stride, off, r, j, (double)got, exact, bound);
      if (bound > 0 && err / bound > worst) worst = err / bound;
    }
  free(kd);
  free(c.base);
  free(q);
  free(s);
  free(s2);
  return worst;
}

static const size_t dims[] = {2, 4, 6, 8, 14, 16, 18, 30, 32, 34, 62, 64, 66, 96, 126, 128, 130, 192, 254, 256};
static const size_t row_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 64, 70};
static const size_t key_counts[] = {1, 2, 3, 5, 8, 17, 64, 130};
#define N_ROWS (sizeof row_counts / sizeof row_counts[0])
#define N_KEYS (sizeof key_counts / sizeof key_counts[0])

static void test_scores_sweep(void **state) {
  (void)state;
  kset ks[32];
  const size_t m = kernel_sets(ks, 32);
  for (size_t i = 0; i < m; i++) {
    const kset *K = &ks[i];
    const float scale = K->dt == 3 ? 0.37f : 1.0f;
    double worst = 0.0;
    size_t cases = 0;
    const size_t nd = sizeof dims / sizeof dims[0];
    for (size_t di = 0; di < nd; di += quick() ? 3 : 1) {
      const size_t hd = dims[di];
      for (size_t ri = 0; ri < N_ROWS; ri += quick() ? 4 : 1)
        for (size_t ni = 0; ni < N_KEYS; ni += quick() ? 3 : 1) {
          const size_t rows = row_counts[ri], n = key_counts[ni];
          const size_t stride = hd + (rnd() % 3) * 2 * (rnd() & 1), off = (size_t)(rnd() % 4);
          const double w = check_scores(K, rows, n, hd, stride, off, scale);
          if (w > worst) worst = w;
          cases++;
        }
    }
    printf("  %-32s %zu cases, worst error %.3f of the bound\n", K->k.scores_name, cases, worst);
  }
}

/* ---- scores with keys rotated on the way (both pairings) ----
 * Reference: the decoded key rotated in double with the kernel's fp32 cos/sin, then dotted in double. Bound: each
 * rotated element is two fp32 roundings off (|err| <= 2u (|x0| + |x1|), cos and sin in [-1, 1]), then the sum's
 * (head_dim + 8) u:
 *     |s - exact| <= (head_dim + 11) u sum_d |q_d| m_d,   m_d = |x0| + |x1| (rotated pairs), |x_d| (the rest)
 * Also checked: one call and the same rows one at a time give the same bits (the blocking does not change a logit);
 * the scalar kernels give the bits of the f32 scores kernel on keys rotated by the rotation formula. */

static void put_nan(int dt, unsigned char *p, int sign);

/* The rows a rotating kernel reads for n keys with random angles (cos and sin in [-1, 1], as a rope's), css floats
 * apart, the second part `so` floats into a row: half pairs, cos_i then sin_i; interleaved, B = (c0, s0, ...) then
 * D = (-s0, c0, ...) (attn_kernels.h). The angles' cos and sin also go to cv and sv (n x half). */
static float *cs_make(int interleaved, size_t n, size_t half, size_t css, size_t so, float *cv, float *sv) {
  float *cs = floats(n * css);
  for (size_t i = 0; i < n * css; i++) cs[i] = bits_f32(CANARY);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < half; i++) {
      const double a = 6.283185307179586 * (double)(rnd() >> 11) * 0x1p-53;
      const float c = (float)cos(a), sn = (float)sin(a);
      cv[j * half + i] = c, sv[j * half + i] = sn;
      float *row = cs + j * css;
      if (interleaved) {
        row[2 * i] = c, row[2 * i + 1] = sn;
        row[so + 2 * i] = -sn, row[so + 2 * i + 1] = c;
      } else {
        row[i] = c, row[so + i] = sn;
      }
    }
  return cs;
}

/* Element d < rd of a rotated key: its pair (a, b), and whether d is the pair's second element. */
static void pair_of(int interleaved, size_t rd, size_t d, size_t *a, size_t *b, size_t *i, int *second) {
  const size_t half = rd / 2;
  *i = interleaved ? d / 2 : d % half;
  *a = interleaved ? 2 * *i : *i;
  *b = interleaved ? 2 * *i + 1 : *i + half;
  *second = interleaved ? (int)(d & 1) : d >= half;
}

static double check_rot(const kset *K, int pr, size_t rows, size_t n, size_t hd, size_t rd, size_t stride,
                        float scale, int nan_key) {
  rotary_attn_scores_rot_fn fn = K->k.scores_rot[pr];
  const char *name = K->k.scores_rot_name[pr];
  cache c = cache_make(K->dt, n, hd, stride, (size_t)(rnd() % 4), scale, 2.0f);
  const size_t half = rd / 2, so = (pr ? rd : half) + (rnd() % 3) * 8, css = 2 * so + (rnd() & 1) * 4;
  float *cv = floats(n * half), *sv = floats(n * half);
  float *cs = cs_make(pr, n, half, css, so, cv, sv);
  if (nan_key >= 0) put_nan(K->dt, (unsigned char *)(uintptr_t)elem(&c, (size_t)nan_key, rnd() % hd), 0);
  float *q = floats(rows * hd + 16);
  for (size_t i = 0; i < rows * hd; i++) q[i] = g_dot ? bf16_value(rndf()) : rndf();
  for (size_t i = rows * hd; i < rows * hd + 16; i++) q[i] = NAN;
  const size_t ss = n + (rnd() & 3);
  float *s = floats(rows * ss), *s1 = floats(ss);
  for (size_t i = 0; i < rows * ss; i++) s[i] = bits_f32(CANARY);
  rotary_attn_prefetch pf = pf_make();
  fn(q, rows, hd, c.rows, (ptrdiff_t)stride, n, scale, cs, css, so, rd, s, ss, &pf);
  pf_check(name, &pf);
  for (size_t r = 0; r < rows; r++) { /* the rows one at a time (no cursor): the same bits */
    fn(q + r * hd, 1, hd, c.rows, (ptrdiff_t)stride, n, scale, cs, css, so, rd, s1, ss, NULL);
    if (memcmp(s1, s + r * ss, n * sizeof(float)))
      fail_msg("%s: row %zu alone differs from the %zu-row call (n %zu hd %zu rd %zu)", name, r, rows, n, hd, rd);
  }
  double worst = 0.0;
  double *kd = decoded(&c); /* after put_nan */
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < ss; j++) {
      const float got = s[r * ss + j];
      if (j >= n) {
        if (f32_bits(got) != CANARY) fail_msg("%s: wrote s[%zu][%zu] beyond n", name, r, j);
        continue;
      }
      double exact = 0.0, mag = 0.0;
      for (size_t d = 0; d < hd; d++) {
        double y, m;
        if (d < rd) {
          size_t a, b, i;
          int second;
          pair_of(pr, rd, d, &a, &b, &i, &second);
          const double x0 = kd[j * hd + a], x1 = kd[j * hd + b];
          const double cc = cv[j * half + i], sn = sv[j * half + i];
          y = second ? x0 * sn + x1 * cc : x0 * cc - x1 * sn;
          m = fabs(x0) + fabs(x1); /* >= |y|, |x0 c|, |x1 s|: cos and sin are in [-1, 1] */
        } else {
          y = kd[j * hd + d];
          m = fabs(y);
        }
        exact += (double)q[r * hd + d] * y;
        mag += fabs((double)q[r * hd + d]) * m;
      }
      if (nan_key >= 0 && j == (size_t)nan_key) {
        if (!isnan(got)) fail_msg("%s: a NaN in key %zu, s[%zu][%zu] = %g", name, j, r, j, (double)got);
        continue;
      }
      const double bound = (double)(hd + 11) * 0x1p-24 * mag, err = fabs((double)got - exact);
      if (!(err <= bound))
        fail_msg("%s: rows %zu n %zu hd %zu rd %zu stride %zu: s[%zu][%zu] = %.9g, exact %.17g, bound %.3g", name,
                 rows, n, hd, rd, stride, r, j, (double)got, exact, bound);
      if (bound > 0 && err / bound > worst) worst = err / bound;
    }
  { /* the scalar kernel: the f32 scores kernel's bits on the rotated keys */
    rotary_attn_kernels sc;
    assert_int_equal(rotary_attn_select_isa(dtypes[K->dt], ROTARY_ISA_SCALAR, &sc), ROTARY_OK);
    if (fn == sc.scores_rot[pr]) {
      float *y = floats(n * hd), *s2 = floats(rows * n);
      for (size_t j = 0; j < n; j++)
        for (size_t d = 0; d < hd; d++) {
          if (d >= rd) {
            y[j * hd + d] = (float)kd[j * hd + d];
            continue;
          }
          size_t a, b, i;
          int second;
          pair_of(pr, rd, d, &a, &b, &i, &second);
          const float x0 = (float)kd[j * hd + a], x1 = (float)kd[j * hd + b];
          const float cc = cv[j * half + i], sn = sv[j * half + i];
          y[j * hd + d] = second ? fmaf(x0, sn, x1 * cc) : fmaf(x0, cc, -(x1 * sn));
        }
      rotary_attn_f32_scores__scalar(q, rows, hd, y, (ptrdiff_t)hd, n, 1.0f, s2, n, NULL);
      for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++)
          if (f32_bits(s2[r * n + j]) != f32_bits(s[r * ss + j]) && !(isnan(s2[r * n + j]) && isnan(s[r * ss + j])))
            fail_msg("%s: s[%zu][%zu] = %a, the f32 kernel on rotated keys %a", name, r, j, (double)s[r * ss + j],
                     (double)s2[r * n + j]);
      free(y);
      free(s2);
    }
  }
  free(kd);
  free(c.base);
  free(cs);
  free(cv);
  free(sv);
  free(q);
  free(s);
  free(s1);
  return worst;
}

static void test_scores_rot_sweep(void **state) {
  (void)state;
  kset ks[32];
  const size_t m = kernel_sets(ks, 32);
  size_t tested = 0;
  for (size_t i = 0; i < m; i++)
    for (int pr = 0; pr < 2; pr++) {
      const kset *K = &ks[i];
      if (!K->k.scores_rot[pr]) fail_msg("%s: no rotating scores kernel for pairing %d", K->k.scores_name, pr);
      const float scale = K->dt == 3 ? 0.37f : 1.0f;
      double worst = 0.0;
      size_t cases = 0;
      const size_t nd = sizeof dims / sizeof dims[0];
      for (size_t di = quick() ? 0 : 1; di < nd; di += quick() ? 3 : 2) { /* full: every other dim, 64 and 128 among them */
        const size_t hd = dims[di];
        /* the whole head, a half, the smallest, and one with a tail of pairs (not a multiple of 8) */
        const size_t rds[4] = {hd, hd / 2 & ~(size_t)1, 2, hd >= 36 ? 36 : hd};
        for (size_t ri = di % 2; ri < N_ROWS; ri += quick() ? 4 : 2) /* every row and key count over the dims */
          for (size_t ni = ri % 2; ni < N_KEYS; ni += quick() ? 3 : 2)
            for (size_t k = 0; k < 4; k++) {
              if (!rds[k] || (quick() ? (k + ni + di) % 4 : (k + ni + di) % 2)) continue; /* 2 of the 4 (quick: 1) */
              const size_t rows = row_counts[ri];
              /* quick: 17 keys instead of 130 (the odd dims' key counts were 2, 8 and 130: now an odd count too, and
               * no 33 x 130 blocks, most of this program's time under valgrind and qemu) */
              const size_t n = quick() && key_counts[ni] > 64 ? 17 : key_counts[ni];
              const size_t stride = hd + (rnd() % 3) * 2 * (rnd() & 1);
              const int nan_key = (rnd() % 8 == 0) ? (int)(rnd() % n) : -1;
              const double w = check_rot(K, pr, rows, n, hd, rds[k], stride, scale, nan_key);
              if (w > worst) worst = w;
              cases++;
            }
      }
      tested++;
      printf("  %-42s %zu cases, worst error %.3f of the bound\n", K->k.scores_rot_name[pr], cases, worst);
    }
  assert_true(tested >= 8); /* the scalar set at least */
}

/* ---- values ---- */

static double check_values(const kset *K, size_t rows, size_t n, size_t hd, size_t stride, size_t off, float scale) {
  cache c = cache_make(K->dt, n, hd, stride, off, scale, 2.0f);
  const size_t ps = n + (rnd() & 3);
  float *p = floats(rows * ps), *o = floats(rows * hd + 16), *o0 = floats(rows * hd), *o2 = floats(rows * hd + 16);
  for (size_t i = 0; i < rows * ps; i++) p[i] = (float)((rnd() >> 40) * 0x1p-24); /* [0, 1) like probabilities */
  if (g_dot)
    for (size_t i = 0; i < rows * ps; i++) p[i] = bf16_value(p[i]);
  for (size_t i = 0; i < rows * hd; i++) o[i] = o0[i] = o2[i] = rndf();
  for (size_t i = rows * hd; i < rows * hd + 16; i++) o[i] = o2[i] = bits_f32(CANARY); /* never written */
  const int back = (int)(rnd() & 1); /* as in check_scores: value j is row n-1-j */
  const unsigned char *v0 = back ? elem(&c, n - 1, 0) : c.rows;
  const ptrdiff_t vst = back ? -(ptrdiff_t)stride : (ptrdiff_t)stride;
  rotary_attn_prefetch pf = pf_make();
  K->k.values(p, ps, rows, hd, v0, vst, n, scale, o, NULL);
  K->k.values(p, ps, rows, hd, v0, vst, n, scale, o2, &pf); /* a prefetch cursor changes no bit */
  if (memcmp(o, o2, (rows * hd + 16) * sizeof(float)))
    fail_msg("%s: two calls differ (rows %zu n %zu hd %zu)", K->k.values_name, rows, n, hd);
  pf_check(K->k.values_name, &pf);
  if (!g_dot) { /* every ISA's values kernel sums in the scalar kernel's order: its bits */
    rotary_attn_kernels sc;
    assert_int_equal(rotary_attn_select_isa(dtypes[K->dt], ROTARY_ISA_SCALAR, &sc), ROTARY_OK);
    memcpy(o2, o0, rows * hd * sizeof(float));
    sc.values(p, ps, rows, hd, v0, vst, n, scale, o2, NULL);
    for (size_t i = 0; i < rows * hd; i++)
      if (f32_bits(o[i]) != f32_bits(o2[i]) && !(isnan(o[i]) && isnan(o2[i])))
        fail_msg("%s: o[%zu] = %a, the scalar kernel's %a (rows %zu n %zu hd %zu)", K->k.values_name, i, (double)o[i],
                 (double)o2[i], rows, n, hd);
  }
  for (size_t i = rows * hd; i < rows * hd + 16; i++)
    if (f32_bits(o[i]) != CANARY) fail_msg("%s: wrote past o (rows %zu hd %zu)", K->k.values_name, rows, hd);
  double worst = 0.0;
  double *vd = decoded(&c);
  for (size_t r = 0; r < rows; r++)
    for (size_t d = 0; d < hd; d++) {
      double exact = o0[r * hd + d], mag = fabs(exact);
      for (size_t j = 0; j < n; j++) {
        const double t = (double)p[r * ps + j] * vd[(back ? n - 1 - j : j) * hd + d];
        exact += t;
        mag += fabs(t);
      }
      const double bound = (double)(n + 1) * 0x1p-24 * mag, err = fabs((double)o[r * hd + d] - exact);
      if (!(err <= bound))
        fail_msg("%s: rows %zu n %zu hd %zu stride %zu off %zu: o[%zu][%zu] = %.9g, exact %.17g, bound %.3g",
                 K->k.values_name, rows, n, hd, stride, off, r, d, (double)o[r * hd + d], exact, bound);
      if (bound > 0 && err / bound > worst) worst = err / bound;
    }
  free(vd);
  free(c.base);
  free(p);
  free(o);
  free(o0);
  free(o2);
  return worst;
}

static void test_values_sweep(void **state) {
  (void)state;
  kset ks[32];
  const size_t m = kernel_sets(ks, 32);
  for (size_t i = 0; i < m; i++) {
    const kset *K = &ks[i];
    const float scale = K->dt == 3 ? 1.9f : 1.0f;
    double worst = 0.0;
    size_t cases = 0;
    const size_t nd = sizeof dims / sizeof dims[0];
    for (size_t di = 0; di < nd; di += quick() ? 3 : 1) {
      const size_t hd = dims[di];
      for (size_t ri = 0; ri < N_ROWS; ri += quick() ? 4 : 1)
        for (size_t ni = 0; ni < N_KEYS; ni += quick() ? 3 : 1) {
          const size_t rows = row_counts[ri], n = key_counts[ni];
          const size_t stride = hd + (rnd() % 3) * 2 * (rnd() & 1), off = (size_t)(rnd() % 4);
          const double w = check_values(K, rows, n, hd, stride, off, scale);
          if (w > worst) worst = w;
          cases++;
        }
    }
    printf("  %-32s %zu cases, worst error %.3f of the bound\n", K->k.values_name, cases, worst);
  }
}

/* ---- the `_dot` kernels (attn_dot_list.h, precision BF16): the sweeps above with bf16-valued q and p, against the
 * same exact sums and bounds (each product is exact; a pair per step rounds twice at most) ---- */

static void test_dot_sweep(void **state) {
  (void)state;
  size_t tested = 0;
  for (size_t i = 0; i < rotary_kernel_registry_count; i++) {
    const rotary_kernel_info *e = &rotary_kernel_registry[i];
    if (e->op != ROTARY_OP_ATTN_SCORES_DOT && e->op != ROTARY_OP_ATTN_VALUES_DOT) continue;
    if (!rotary_isa_supported(e->isa)) {
      printf("  %s: not supported here, skipped\n", e->name);
      continue;
    }
    kset K;
    memset(&K, 0, sizeof K);
    for (int dt = 0; dt < 4; dt++)
      if (dtypes[dt] == e->dtype) K.dt = dt;
    K.k.scores = e->fn.attn_scores, K.k.values = e->fn.attn_values;
    K.k.scores_name = K.k.values_name = e->name;
    const float scale = K.dt == 3 ? 0.37f : 1.0f;
    double worst = 0.0;
    size_t cases = 0;
    g_dot = 1;
    const size_t nd = sizeof dims / sizeof dims[0];
    for (size_t di = 0; di < nd; di += quick() ? 3 : 1)
      for (size_t ri = 0; ri < N_ROWS; ri += quick() ? 4 : 1)
        for (size_t ni = 0; ni < N_KEYS; ni += quick() ? 3 : 1) {
          const size_t hd = dims[di], rows = row_counts[ri], n = key_counts[ni];
          const size_t stride = hd + (rnd() % 3) * 2 * (rnd() & 1), off = (size_t)(rnd() % 4);
          const double w = e->op == ROTARY_OP_ATTN_SCORES_DOT ? check_scores(&K, rows, n, hd, stride, off, scale)
                                                              : check_values(&K, rows, n, hd, stride, off, scale);
          if (w > worst) worst = w;
          cases++;
        }
    /* past one pass's dims (512: q words on the stack) and keys (1024: weight words), with tails */
    const double w = e->op == ROTARY_OP_ATTN_SCORES_DOT ? check_scores(&K, 5, 9, 1030, 1030, 1, scale)
                                                        : check_values(&K, 5, 1100, 70, 72, 3, scale);
    if (w > worst) worst = w;
    cases++;
    g_dot = 0;
    tested++;
    printf("  %-40s %zu cases, worst error %.3f of the bound\n", e->name, cases, worst);
  }
  printf("dot kernels: %zu tested\n", tested);
}

/* ---- exact decoding: fp8 every finite code at several scales, f16 and bf16 sampled ---- */

/* Scores with q the identity (row r = e_r) give each key element alone: s[r][0] = 0 + ... + 1 * k[r] + 0 ..., exact.
 * Values with one key and p = 1 give o = 0 + 1 * v: exact too. So both read back the decoded elements. */
static void check_decoded(const kset *K, const unsigned char *row, size_t hd, float scale, const float *want) {
  float *q = floats(hd * hd), *s = floats(hd), *o = floats(hd);
  memset(q, 0, hd * hd * sizeof(float));
  for (size_t r = 0; r < hd; r++) q[r * hd + r] = 1.0f;
  K->k.scores(q, hd, hd, row, (ptrdiff_t)hd, 1, scale, s, 1, NULL);
  const float one = 1.0f;
  memset(o, 0, hd * sizeof(float));
  K->k.values(&one, 1, 1, hd, row, (ptrdiff_t)hd, 1, scale, o, NULL);
  for (size_t d = 0; d < hd; d++) {
    if (s[d] != want[d] && !(isnan(s[d]) && isnan(want[d])))
      fail_msg("%s scale %g: element %zu decoded %.9g, want %.9g", K->k.scores_name, (double)scale, d, (double)s[d],
               (double)want[d]);
    if (o[d] != want[d] && !(isnan(o[d]) && isnan(want[d])))
      fail_msg("%s scale %g: element %zu decoded %.9g, want %.9g", K->k.values_name, (double)scale, d, (double)o[d],
               (double)want[d]);
  }
  free(q);
  free(s);
  free(o);
}

static void test_exact_decode(void **state) {
  (void)state;
  kset ks[32];
  const size_t m = kernel_sets(ks, 32);
  /* scales: ordinary, powers of two, tiny (subnormal products), huge (scale * 2^8 overflows fp32) */
  const float scales[] = {1.0f, 0.37f, 3.1e-3f, 1.7e5f, 0x1p-20f, 0x1p-140f, 1e-38f, 3e36f, 0x1p125f, FLT_MAX};
  for (size_t i = 0; i < m; i++) {
    const kset *K = &ks[i];
    if (K->dt == 3) {
      /* the 254 finite codes (NaN codes apart: a key holding one gives NaN logits in every row) */
      unsigned char row[254];
      float want[254];
      size_t h = 0;
      for (unsigned cde = 0; cde < 256; cde++)
        if ((cde & 0x7f) != 0x7f) row[h++] = (unsigned char)cde;
      for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        /* codes whose product overflows are read back by values only (0 * Inf in the identity's scores is NaN) */
        unsigned char finite[254];
        float want_finite[254];
        for (size_t d = 0; d < 254; d++) {
          want[d] = ref_fp8(row[d], scales[si]);
          finite[d] = isinf(want[d]) ? 0 : row[d];
          want_finite[d] = isinf(want[d]) ? 0.0f : want[d];
        }
        check_decoded(K, finite, 254, scales[si], want_finite);
        float o[254];
        const float one = 1.0f;
        memset(o, 0, sizeof o);
        K->k.values(&one, 1, 1, 254, row, 254, 1, scales[si], o, NULL);
        for (size_t d = 0; d < 254; d++)
          if (o[d] != want[d]) fail_msg("%s scale %g: code 0x%02x decoded %.9g, want %.9g", K->k.values_name,
                                        (double)scales[si], row[d], (double)o[d], (double)want[d]);
      }
    } else {
      enum { HD = 256 };
      unsigned char row[HD * 4];
      float want[HD];
      for (int rep = 0; rep < (quick() ? 4 : 64); rep++) {
        for (size_t d = 0; d < HD; d++) {
          uint32_t u = (uint32_t)rnd();
          if (K->dt == 0) u &= 0xfeffffffu; /* finite: no exponent 255 */
          else if (K->dt == 1) u = (u & 0xffff) == 0x7c00 ? 0 : u & 0xbfffu; /* below exponent 16: finite */
          else u = u & 0xbfffu;
          memcpy(row + d * dtype_size[K->dt], &u, dtype_size[K->dt]);
          want[d] = (float)decode(K->dt, row + d * dtype_size[K->dt], 1.0f);
        }
        check_decoded(K, row, HD, 1.0f, want);
      }
    }
    printf("  %-32s exact decode ok\n", K->k.scores_name);
  }
}

/* ---- NaN in a key / value element ---- */

static void put_nan(int dt, unsigned char *p, int sign) {
  static const unsigned char fp8_nan[2] = {0x7f, 0xff};
  const uint16_t h16 = sign ? 0xfe00 : 0x7e00, hb = sign ? 0xffc0 : 0x7fc0;
  const float f = sign ? -NAN : NAN;
  switch (dt) {
    case 0: memcpy(p, &f, 4); break;
    case 1: memcpy(p, &h16, 2); break;
    case 2: memcpy(p, &hb, 2); break;
    default: *p = fp8_nan[sign]; break;
  }
}

static void test_nan(void **state) {
  (void)state;
  kset ks[32];
  const size_t m = kernel_sets(ks, 32);
  for (size_t i = 0; i < m; i++) {
    const kset *K = &ks[i];
    for (int rep = 0; rep < (quick() ? 8 : 40); rep++) {
      const size_t rows = 1 + rnd() % 9, n = 1 + rnd() % 40, hd = 2 * (1 + rnd() % 80);
      cache c = cache_make(K->dt, n, hd, hd, rnd() % 4, 0.5f, 1.0f);
      const size_t jn = rnd() % n, dn = rnd() % hd;
      put_nan(K->dt, c.rows + (jn * hd + dn) * dtype_size[K->dt], rep & 1);
      float *q = floats(rows * hd), *s = floats(rows * n), *p = floats(rows * n), *o = floats(rows * hd);
      for (size_t t = 0; t < rows * hd; t++) q[t] = rndf(), o[t] = 0.0f;
      for (size_t t = 0; t < rows * n; t++) p[t] = (float)((rnd() >> 41) * 0x1p-24) * (rep & 2 ? 0.0f : 1.0f);
      K->k.scores(q, rows, hd, c.rows, (ptrdiff_t)hd, n, 0.5f, s, n, NULL);
      K->k.values(p, n, rows, hd, c.rows, (ptrdiff_t)hd, n, 0.5f, o, NULL);
      for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < n; j++)
          if ((j == jn) != (isnan(s[r * n + j]) != 0))
            fail_msg("%s: NaN at key %zu dim %zu: s[%zu][%zu] = %g", K->k.scores_name, jn, dn, r, j,
                     (double)s[r * n + j]);
        for (size_t d = 0; d < hd; d++) /* p * NaN is NaN even for p = 0 */
          if ((d == dn) != (isnan(o[r * hd + d]) != 0))
            fail_msg("%s: NaN at key %zu dim %zu: o[%zu][%zu] = %g", K->k.values_name, jn, dn, r, d,
                     (double)o[r * hd + d]);
      }
      free(c.base);
      free(q);
      free(s);
      free(p);
      free(o);
    }
  }
}

/* ---- exp ---- */

/* Distance in units in the last place between two non-negative floats (as ordered integers). */
static double ulp_dist(float a, float b) { return fabs((double)f32_bits(a) - (double)f32_bits(b)); }

static void test_exp(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ISAS; i++) {
    rotary_attn_kernels k;
    if (rotary_attn_select_isa(ROTARY_F32, isas[i], &k) != ROTARY_OK || !rotary_isa_supported(isas[i])) continue;
    /* dense sweep of [-87, 0]: every float of [-1, 0] down to 2^-20 and a uniform grid of step 2^-13 below */
    enum { BLOCK = 4099 }; /* odd block size: every tail length of the vector loops is run */
    static float x[BLOCK], y[BLOCK];
    double worst = 0.0, worst_x = 0.0, sum_worst = 0.0;
    size_t count = 0;
    const double step = quick() ? 0x1p-9 : 0x1p-13;
    const uint32_t fine_step = quick() ? 1024 : 1; /* quick: 8192 floats a binade (every 64th: 6 s more under valgrind) */
    double v = -87.0;
    float fine = -1.0f;
    for (int done = 0; !done;) {
      size_t b = 0;
      while (b < BLOCK && !done) {
        if (v < -1.0) {
          x[b++] = (float)v;
          v += step;
        } else if (fine < -0x1p-20f) {
          x[b++] = fine;
          /* the next float toward 0 (every one; quick: every 64th): a negative float's magnitude bits count down */
          uint32_t bits;
          memcpy(&bits, &fine, sizeof bits);
          bits -= fine_step;
          memcpy(&fine, &bits, sizeof fine);
        } else {
          x[b++] = 0.0f;
          done = 1;
        }
      }
      const float max = (rnd() & 1) ? 0.0f : 0.5f;
      for (size_t t = 0; t < b; t++) y[t] = x[t] + max;
      for (size_t t = 0; t < b; t++) x[t] = y[t] - max; /* the argument the kernel takes: s - max in fp32 */
      const float sum = k.exp(y, b, max);
      double exact_sum = 0.0, abs_sum = 0.0;
      for (size_t t = 0; t < b; t++) {
        const float want = (float)exp((double)x[t]);
        const double d = ulp_dist(y[t], want);
        if (d > worst) worst = d, worst_x = x[t];
        exact_sum += y[t];
        abs_sum += fabs((double)y[t]);
        count++;
      }
      const double se = fabs((double)sum - exact_sum) / ((double)b * 0x1p-24 * abs_sum);
      if (!(se <= 1.0)) fail_msg("%s: sum %.9g, exact %.17g", k.exp_name, (double)sum, exact_sum);
      if (se > sum_worst) sum_worst = se;
    }
    if (worst > 2.0) fail_msg("%s: %.0f ulp at x = %.9g", k.exp_name, worst, worst_x);
    /* below -87: 0 or within 2^-126 of the true value; special values */
    float lo[64], lox[64];
    for (size_t t = 0; t < 64; t++) lox[t] = lo[t] = -87.0f - 0.5f * (float)t;
    k.exp(lo, 64, 0.0f);
    for (size_t t = 0; t < 64; t++)
      if (!(fabs((double)lo[t] - exp((double)lox[t])) <= 0x1p-126) || lo[t] < 0)
        fail_msg("%s: exp(%g) = %g", k.exp_name, (double)lox[t], (double)lo[t]);
    float sp[11] = {-INFINITY, NAN, 0.0f, -INFINITY, 1.0f, -NAN, -1e30f, 3.0f, -INFINITY, 2.0f, -0.0f};
    const float sum = k.exp(sp, 11, 3.0f);
    if (sp[0] != 0.0f || f32_bits(sp[0]) != 0 || !isnan(sp[1]) || !isnan(sp[5]) || sp[3] != 0.0f || sp[8] != 0.0f ||
        sp[6] != 0.0f || sp[7] != 1.0f || !isnan(sum))
      fail_msg("%s: special values wrong", k.exp_name);
    float inf_max[3] = {INFINITY, 1.0f, -INFINITY};
    k.exp(inf_max, 3, INFINITY); /* max +Inf: Inf - Inf is NaN, finite and -Inf give 0 */
    if (!isnan(inf_max[0]) || inf_max[1] != 0.0f || inf_max[2] != 0.0f) fail_msg("%s: max +Inf", k.exp_name);
    /* determinism and every length 0 .. 40 */
    for (size_t n = 0; n <= 40; n++) {
      float a[40], b2[40];
      for (size_t t = 0; t < n; t++) a[t] = b2[t] = -10.0f * (float)((rnd() >> 40) * 0x1p-24);
      const float s1 = k.exp(a, n, 0.0f), s2 = k.exp(b2, n, 0.0f);
      if (memcmp(a, b2, n * sizeof(float)) || f32_bits(s1) != f32_bits(s2)) fail_msg("%s: not deterministic", k.exp_name);
      double e = 0.0;
      for (size_t t = 0; t < n; t++) e += a[t];
      if (!(fabs(e - s1) <= (double)(n + 1) * 0x1p-24 * e)) fail_msg("%s: sum of %zu", k.exp_name, n);
    }
    printf("  %-32s %zu arguments in [-87, 0]: max %.0f ulp (at %.9g); sum error <= %.3f of n u sum\n", k.exp_name,
           count, worst, worst_x, sum_worst);
  }
}

/* ---- dispatch ---- */

static void test_select(void **state) {
  (void)state;
  for (int dt = 0; dt < 4; dt++) {
    rotary_attn_kernels k;
    assert_int_equal(rotary_attn_select(dtypes[dt], &k), ROTARY_OK);
    assert_non_null(k.scores);
    assert_non_null(k.values);
    assert_non_null(k.exp);
    assert_non_null(k.scores_rot[ROTARY_PAIRING_HALF]); /* rope mode QK relies on both (attn_list.h) */
    assert_non_null(k.scores_rot[ROTARY_PAIRING_INTERLEAVED]);
    const rotary_kernel_info *e = rotary_kernel_find(k.scores_name), *f = rotary_kernel_find(k.values_name);
    const rotary_kernel_info *x = rotary_kernel_find(k.exp_name);
    assert_non_null(e);
    assert_non_null(f);
    assert_non_null(x);
    assert_true(e->fn.attn_scores == k.scores && f->fn.attn_values == k.values && x->fn.attn_exp == k.exp);
    assert_true(e->op == ROTARY_OP_ATTN_SCORES && f->op == ROTARY_OP_ATTN_VALUES && x->op == ROTARY_OP_ATTN_EXP);
    assert_true(e->dtype == dtypes[dt] && f->dtype == dtypes[dt] && rotary_isa_enabled(e->isa));
    printf("  %-4s %s %s %s\n", dtype_tag[dt], k.scores_name, k.values_name, k.exp_name);
  }
  rotary_attn_kernels k;
  memset(&k, 0x5a, sizeof k);
  const rotary_attn_kernels before = k;
  assert_int_equal(rotary_attn_select((rotary_dtype)4, &k), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_attn_select_isa((rotary_dtype)4, ROTARY_ISA_SCALAR, &k), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_attn_select_isa(ROTARY_F32, (rotary_isa)99, &k), ROTARY_ERR_INVALID_ARGUMENT);
  assert_memory_equal(&k, &before, sizeof k);
  /* every registry name of the three operations is found by rotary_kernel_find */
  size_t seen = 0;
  for (size_t i = 0; i < rotary_kernel_registry_count; i++) {
    const rotary_kernel_info *e = &rotary_kernel_registry[i];
    if (e->op != ROTARY_OP_ATTN_SCORES && e->op != ROTARY_OP_ATTN_VALUES && e->op != ROTARY_OP_ATTN_EXP) continue;
    assert_ptr_equal(rotary_kernel_find(e->name), e);
    seen++;
  }
  assert_true(seen >= 9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_select),      cmocka_unit_test(test_exact_decode), cmocka_unit_test(test_nan),
      cmocka_unit_test(test_exp),         cmocka_unit_test(test_scores_sweep), cmocka_unit_test(test_values_sweep),
      cmocka_unit_test(test_scores_rot_sweep), cmocka_unit_test(test_dot_sweep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
