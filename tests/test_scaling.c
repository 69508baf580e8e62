/* test_scaling.c: every frequency-scaling family against an independent long-double transcription of Hugging
 * Face's formulas, their attention factors, parameter validation naming the field, and rotary_rope_derive. */
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

#include "rotary.h"
#include "scaling.h" /* rotary_scaling_pow */
#include "test_util.h" /* tu_quick */

#ifdef ORACLE_HAVE_MPFR
#include <mpfr.h>
#endif

#define PI_L 3.141592653589793238462643383279502884L

/* ---- the reference: Hugging Face's formulas, written again in long double ---- */

static long double ref_default(long double base, size_t i, size_t d) {
  return 1.0L / powl(base, (long double)(2 * i) / (long double)d);
}

static long double ref_yarn(const rotary_config *c, size_t i, long double *attention) {
  const rotary_scaling *s = &c->scaling;
  const long double d = (long double)c->rotary_dim, base = c->base;
  const long double factor = s->factor != 0.0 ? s->factor
                                              : (long double)s->max_position_embeddings /
                                                    (long double)s->original_max_position_embeddings;
  const long double fast = s->beta_fast != 0.0 ? s->beta_fast : 32.0L, slow = s->beta_slow != 0.0 ? s->beta_slow : 1.0L;
  const long double orig = (long double)s->original_max_position_embeddings;
  long double low = d * logl(orig / (fast * 2 * PI_L)) / (2 * logl(base));
  long double high = d * logl(orig / (slow * 2 * PI_L)) / (2 * logl(base));
  if (s->truncate) low = floorl(low), high = ceill(high);
  low = fmaxl(low, 0.0L);
  high = fminl(high, d - 1);
  if (low == high) high += 0.001L;
  const long double ramp = fminl(fmaxl(((long double)i - low) / (high - low), 0.0L), 1.0L);
  const long double f = ref_default(base, i, c->rotary_dim);
  long double mscale = 1.0L;
  if (s->attention_factor != 0.0) {
    mscale = s->attention_factor;
  } else {
#define GET_MSCALE(sc, m) ((sc) <= 1 ? 1.0L : 0.1L * (m) * logl(sc) + 1.0L)
    if (s->mscale != 0.0 && s->mscale_all_dim != 0.0)
      mscale = GET_MSCALE(factor, s->mscale) / GET_MSCALE(factor, s->mscale_all_dim);
    else
      mscale = GET_MSCALE(factor, 1.0L);
  }
  *attention = mscale;
  return f / factor * ramp + f * (1 - ramp);
}

static long double ref_llama3(const rotary_config *c, size_t i) {
  const rotary_scaling *s = &c->scaling;
  const long double f = ref_default(c->base, i, c->rotary_dim), wavelen = 2 * PI_L / f;
  const long double old = (long double)s->original_max_position_embeddings;
  if (wavelen < old / s->high_freq_factor) return f;
  if (wavelen > old / s->low_freq_factor) return f / s->factor;
  const long double smooth = (old / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
  return (1 - smooth) * f / s->factor + smooth * f;
}

/* inv_freq_i and the attention factor of config c at sequence length c->seq_len. */
static long double ref_freq(const rotary_config *c, size_t i, long double *attention) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim;
  const long double expo = (long double)d / (long double)(d - 2);
  *attention = 1.0L;
  switch (s->type) {
    case ROTARY_SCALING_LINEAR: return ref_default(c->base, i, d) / s->factor;
    case ROTARY_SCALING_NTK: return ref_default(c->base * powl(s->factor, expo), i, d);
    case ROTARY_SCALING_DYNAMIC: {
      const long double mpe = (long double)s->max_position_embeddings;
      const long double len = fmaxl((long double)c->seq_len, mpe);
      return ref_default(c->base * powl(s->factor * len / mpe - (s->factor - 1), expo), i, d);
    }
    case ROTARY_SCALING_YARN: return ref_yarn(c, i, attention);
    case ROTARY_SCALING_LLAMA3: return ref_llama3(c, i);
    case ROTARY_SCALING_LONGROPE: {
      const int longer = c->seq_len > s->original_max_position_embeddings;
      const long double factor = s->factor != 0.0 ? s->factor
                                                  : (long double)s->max_position_embeddings /
                                                        (long double)s->original_max_position_embeddings;
      *attention = s->attention_factor != 0.0 ? s->attention_factor
                   : factor <= 1              ? 1.0L
                        : sqrtl(1 + logl(factor) / logl((long double)s->original_max_position_embeddings));
      return ref_default(c->base, i, d) / (longer ? s->long_factor[i] : s->short_factor[i]);
    }
    case ROTARY_SCALING_NONE: break;
  }
  return ref_default(c->base, i, d);
}

/* ---- the configs under test ---- */

static double short_f[64], long_f[64];

static void init_factors(void) {
  for (int i = 0; i < 64; i++) {
    short_f[i] = 1.0 + 0.01 * i;
    long_f[i] = 1.0 + 1.5 * i; /* Phi-3-like: grows toward the low frequencies */
  }
}

/* Configs named by family; n is the count. head_dim 128 unless the model says otherwise. */
static size_t make_configs(rotary_config *cfg) {
  size_t n = 0;
  rotary_config c;
  rotary_config_init(&c, 128);
  cfg[n++] = c; /* default */
  c.scaling.type = ROTARY_SCALING_LINEAR, c.scaling.factor = 4.0;
  cfg[n++] = c;
  rotary_config_init(&c, 128);
  c.scaling.type = ROTARY_SCALING_NTK, c.scaling.factor = 8.0;
  cfg[n++] = c;
  rotary_config_init(&c, 128);
  c.scaling.type = ROTARY_SCALING_DYNAMIC, c.scaling.factor = 2.0, c.scaling.max_position_embeddings = 4096;
  cfg[n++] = c;
  c.seq_len = 10000; /* above max_position_embeddings: the base grows */
  cfg[n++] = c;
  rotary_config_init(&c, 128); /* Qwen2.5 with YaRN */
  c.base = 1e6, c.scaling.type = ROTARY_SCALING_YARN, c.scaling.factor = 4.0;
  c.scaling.original_max_position_embeddings = 32768;
  cfg[n++] = c;
  rotary_config_init(&c, 64); /* DeepSeek-V2-Lite: mscale, interleaved rope part */
  c.pairing = ROTARY_PAIRING_INTERLEAVED, c.scaling.type = ROTARY_SCALING_YARN, c.scaling.factor = 40.0;
  c.scaling.original_max_position_embeddings = 4096, c.scaling.beta_fast = 32, c.scaling.beta_slow = 1;
  c.scaling.mscale = 0.707, c.scaling.mscale_all_dim = 0.707;
  cfg[n++] = c;
  c.scaling.mscale_all_dim = 1.0, c.scaling.truncate = 0; /* the ratio is not 1; an untruncated ramp */
  cfg[n++] = c;
  rotary_config_init(&c, 128); /* YaRN with the factor derived from the lengths */
  c.scaling.type = ROTARY_SCALING_YARN, c.scaling.max_position_embeddings = 163840;
  c.scaling.original_max_position_embeddings = 4096;
  cfg[n++] = c;
  rotary_config_init(&c, 128); /* Llama 3.1 */
  c.base = 500000, c.scaling.type = ROTARY_SCALING_LLAMA3, c.scaling.factor = 8, c.scaling.low_freq_factor = 1;
  c.scaling.high_freq_factor = 4, c.scaling.original_max_position_embeddings = 8192;
  cfg[n++] = c;
  rotary_config_init(&c, 96); /* Phi-3-mini-128k: LongRoPE, short then long */
  c.scaling.type = ROTARY_SCALING_LONGROPE, c.scaling.original_max_position_embeddings = 4096;
  c.scaling.max_position_embeddings = 131072, c.scaling.short_factor = short_f, c.scaling.long_factor = long_f;
  cfg[n++] = c;
  c.seq_len = 4097;
  cfg[n++] = c;
  rotary_config_init(&c, 80); /* partial rotary (Phi-2) with linear scaling */
  c.rotary_dim = 32, c.scaling.type = ROTARY_SCALING_LINEAR, c.scaling.factor = 2.0;
  cfg[n++] = c;
  return n;
}

/* Every family: inverse frequencies within a few fp64 ulps of the long-double reference, attention factor too. */
static void test_families_match_reference(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[16];
  const size_t n = make_configs(cfg);
  double worst = 0;
  for (size_t k = 0; k < n; k++) {
    rotary_rope *rope = NULL;
    assert_int_equal(rotary_rope_create(&cfg[k], 0, &rope), ROTARY_OK);
    double f[64];
    const size_t half = cfg[k].rotary_dim / 2;
    assert_int_equal(rotary_rope_inv_freq(rope, f), ROTARY_OK);
    long double att = 1;
    for (size_t i = 0; i < half; i++) {
      const long double r = ref_freq(&cfg[k], i, &att);
      const double rel = (double)(fabsl((long double)f[i] - r) / r / 0x1p-52L);
      if (rel > worst) worst = rel;
      if (rel > 16) fail_msg("config %zu (type %d) inv_freq[%zu] = %.17g, reference %.20Lg (%.1f ulp)", k,
                             (int)cfg[k].scaling.type, i, f[i], r, rel);
    }
    const double got = rotary_rope_attention_scaling(rope);
    if (fabsl((long double)got - att) > 4e-16L * att)
      fail_msg("config %zu attention %.17g, reference %.20Lg", k, got, att);
    assert_int_equal(rotary_rope_seq_len(rope), cfg[k].seq_len);
    rotary_rope_destroy(rope);
  }
  printf("[scaling] %zu configs, worst inv_freq error %.2f fp64 ulp\n", n, worst);
}

/* Spot values that do not depend on the reference above. */
static void test_known_values(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[16];
  make_configs(cfg);
  rotary_rope *r = NULL;
  double f[64];
  /* Llama 3.1: the highest frequency is untouched (1.0), the lowest divided by 8 */
  assert_int_equal(rotary_rope_create(&cfg[9], 0, &r), ROTARY_OK);
  rotary_rope_inv_freq(r, f);
  assert_true(f[0] == 1.0);
  assert_true(fabs(f[63] - pow(500000.0, -126.0 / 128.0) / 8.0) <= 1e-15 * f[63]);
  rotary_rope_destroy(r);
  /* Qwen YaRN factor 4: attention 0.1 ln 4 + 1 */
  assert_int_equal(rotary_rope_create(&cfg[5], 0, &r), ROTARY_OK);
  assert_true(fabs(rotary_rope_attention_scaling(r) - (0.1 * log(4.0) + 1.0)) < 1e-15);
  rotary_rope_destroy(r);
  /* DeepSeek with mscale == mscale_all_dim: attention exactly 1 */
  assert_int_equal(rotary_rope_create(&cfg[6], 0, &r), ROTARY_OK);
  assert_true(rotary_rope_attention_scaling(r) == 1.0);
  rotary_rope_destroy(r);
  /* Phi-3: sqrt(1 + ln(32) / ln(4096)) */
  assert_int_equal(rotary_rope_create(&cfg[10], 0, &r), ROTARY_OK);
  assert_true(fabs(rotary_rope_attention_scaling(r) - sqrt(1.0 + log(32.0) / log(4096.0))) < 1e-15);
  rotary_rope_inv_freq(r, f);
  assert_true(f[0] == 1.0 / short_f[0]);
  rotary_rope_destroy(r);
  /* attention_scaling of the config multiplies the family's factor */
  rotary_config c = cfg[5];
  c.attention_scaling = 0.5;
  assert_int_equal(rotary_rope_create(&c, 0, &r), ROTARY_OK);
  assert_true(fabs(rotary_rope_attention_scaling(r) - 0.5 * (0.1 * log(4.0) + 1.0)) < 1e-15);
  rotary_rope_destroy(r);
}

/* The table holds cos/sin of the scaled frequencies times the attention factor: rows 1, 777 and the last of a
 * 5000-row table (quick mode: 1000 rows; a table costs ~0.15 ms a row to build under valgrind, which runs it). */
static void test_table_uses_scaled_values(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[16];
  const size_t n = make_configs(cfg), rows = tu_quick() ? 1000 : 5000;
  for (size_t k = 0; k < n; k++) {
    rotary_rope *rope = NULL;
    assert_int_equal(rotary_rope_create(&cfg[k], rows, &rope), ROTARY_OK);
    const size_t half = cfg[k].rotary_dim / 2;
    const int64_t pos[3] = {1, 777, (int64_t)rows - 1};
    float c[3 * 64], s[3 * 64];
    assert_int_equal(rotary_rope_cos_sin(rope, pos, 3, c, s), ROTARY_OK);
    for (size_t j = 0; j < 3; j++)
      for (size_t i = 0; i < half; i++) {
        long double att;
        const long double w = ref_freq(&cfg[k], i, &att), a = (long double)pos[j] * w;
        const long double ec = cosl(a) * att, es = sinl(a) * att;
        /* the reference frequency differs from the fp64 one by a few ulps: allow that angle error */
        const long double tol = 2e-7L * att + fabsl(a) * 64 * 0x1p-52L * att;
        if (fabsl(c[j * half + i] - ec) > tol || fabsl(s[j * half + i] - es) > tol)
          fail_msg("config %zu pos %lld i %zu: cos %.9g sin %.9g, reference %.9Lg %.9Lg", k, (long long)pos[j], i,
                   (double)c[j * half + i], (double)s[j * half + i], ec, es);
      }
    rotary_rope_destroy(rope);
  }
}

/* Bad parameters: the exact status and the field's name. */
static void test_validation_names_field(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[16];
  make_configs(cfg);
  const char *field = NULL;
  rotary_config c;
  rotary_rope *r = NULL;
  double freqs_ok[64];
  for (int i = 0; i < 64; i++) freqs_ok[i] = 1.0 / (i + 1);
#define EXPECT(cfgexpr, st, name)                                                   \
  do {                                                                              \
    c = cfgexpr;                                                                    \
    field = NULL;                                                                   \
    assert_int_equal(rotary_config_check(&c, &field), st);                          \
    assert_non_null(field);                                                         \
    assert_string_equal(field, name);                                               \
    r = (rotary_rope *)&c;                                                          \
    assert_int_equal(rotary_rope_create(&c, 16, &r), st);                           \
    assert_ptr_equal(r, (rotary_rope *)&c); /* untouched on error */                \
  } while (0)
  c = cfg[1], c.scaling.factor = 0;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.factor");
  c = cfg[1], c.scaling.factor = NAN;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.factor");
  c = cfg[2], c.scaling.factor = 0.5; /* NTK alpha below 1 */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.factor");
  c = cfg[3], c.scaling.max_position_embeddings = 0;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.max_position_embeddings");
  c = cfg[5], c.scaling.original_max_position_embeddings = 0;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.original_max_position_embeddings");
  c = cfg[8], c.scaling.max_position_embeddings = 0; /* factor 0 cannot be derived */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.factor");
  c = cfg[5], c.scaling.beta_fast = -1;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.beta_fast");
  c = cfg[5], c.scaling.attention_factor = INFINITY;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.attention_factor");
  c = cfg[9], c.scaling.high_freq_factor = 1.0; /* not above low_freq_factor */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.high_freq_factor");
  c = cfg[9], c.scaling.low_freq_factor = 0;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.low_freq_factor");
  c = cfg[10], c.scaling.long_factor = NULL;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.long_factor");
  double bad[48];
  for (int i = 0; i < 48; i++) bad[i] = 1.0;
  bad[47] = -2.0;
  c = cfg[10], c.scaling.short_factor = bad;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.short_factor");
  c = cfg[0], c.scaling.type = (rotary_scaling_type)99;
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.type");
  c = cfg[1], c.scaling.factor = 1e-320; /* valid alone, but the frequencies overflow to infinity */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling");
  c = cfg[1], c.scaling.factor = 1e300, c.base = 1e300; /* frequencies underflow to zero */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling");
  c = cfg[3], c.rotary_dim = 2, c.head_dim = 2; /* d / (d - 2) */
  EXPECT(c, ROTARY_ERR_SCALING, "rotary_dim");
  c = cfg[0], c.base = -1;
  EXPECT(c, ROTARY_ERR_FREQUENCY, "base");
  c = cfg[0], c.rotary_dim = 3;
  EXPECT(c, ROTARY_ERR_ROTARY_DIM, "rotary_dim");
  /* Nothing that would put an infinity in the fp32 rows (issue 10, defect 8). */
  c = cfg[0], c.attention_scaling = 1e39; /* finite in fp64, not in fp32 */
  EXPECT(c, ROTARY_ERR_FREQUENCY, "attention_scaling");
  c = cfg[0], c.attention_scaling = (double)FLT_MAX * (1 + 0x1p-40);
  EXPECT(c, ROTARY_ERR_FREQUENCY, "attention_scaling");
  c = cfg[0], c.inv_freq = freqs_ok, c.attention_scaling = 1e39; /* with caller frequencies too */
  EXPECT(c, ROTARY_ERR_FREQUENCY, "attention_scaling");
  c = cfg[5], c.attention_scaling = 1e30, c.scaling.attention_factor = 1e10; /* the product overflows fp32 */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.attention_factor");
  c = cfg[10], c.attention_scaling = (double)FLT_MAX; /* LongRoPE's derived factor 1.19 on top */
  EXPECT(c, ROTARY_ERR_SCALING, "scaling.attention_factor");
  c = cfg[0], c.base = 1e-310;
  EXPECT(c, ROTARY_ERR_FREQUENCY, "base");
  c = cfg[0], c.base = 0x1p-1022 * 0.5;
  EXPECT(c, ROTARY_ERR_FREQUENCY, "base");
  c = cfg[0], c.attention_scaling = (double)FLT_MAX, c.base = 0x1p-1022; /* the limits themselves are valid */
  assert_int_equal(rotary_config_check(&c, NULL), ROTARY_OK);
  assert_int_equal(rotary_rope_create(&c, 4, &r), ROTARY_OK);
  float co[64 * 4], si[64 * 4];
  const int64_t ps[4] = {0, 1, 2, 3};
  assert_int_equal(rotary_rope_cos_sin(r, ps, 4, co, si), ROTARY_OK);
  for (int k = 0; k < 64 * 4; k++) assert_true(isfinite(co[k]) && isfinite(si[k]));
  rotary_rope_destroy(r);
  /* explicit frequencies win over the scaling, whose (bad) parameters are then ignored */
  double freqs[64];
  for (int i = 0; i < 64; i++) freqs[i] = 1.0 / (i + 1);
  c = cfg[1], c.scaling.factor = -1, c.inv_freq = freqs;
  assert_int_equal(rotary_config_check(&c, NULL), ROTARY_OK);
  assert_int_equal(rotary_config_check(NULL, &field), ROTARY_ERR_NULL_POINTER);
}

/* rotary_rope_derive equals a fresh rope bit for bit, with and without reusable rows, and leaves `from` alone. */
static void test_derive(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[16];
  const size_t n = make_configs(cfg);
  const size_t sizes[][2] = {{0, 300}, {5000, 200}, {4097, 600}, {10000, 0}, {0, 0}};
  for (size_t k = 0; k < n; k++)
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
      rotary_rope *from = NULL, *got = NULL, *fresh = NULL;
      assert_int_equal(rotary_rope_create(&cfg[k], 400, &from), ROTARY_OK);
      const size_t seq = sizes[z][0], maxp = sizes[z][1];
      assert_int_equal(rotary_rope_derive(from, seq, maxp, &got), ROTARY_OK);
      rotary_config c = cfg[k];
      c.seq_len = seq;
      assert_int_equal(rotary_rope_create(&c, maxp, &fresh), ROTARY_OK);
      assert_int_equal(rotary_rope_max_positions(got), maxp);
      assert_int_equal(rotary_rope_seq_len(got), seq);
      assert_true(rotary_rope_attention_scaling(got) == rotary_rope_attention_scaling(fresh));
      const size_t half = c.rotary_dim / 2, np = 600;
      int64_t pos[600];
      for (size_t j = 0; j < np; j++) pos[j] = (int64_t)j;
      const size_t m = maxp ? maxp : np;
      float *c1 = malloc(m * half * 4), *s1 = malloc(m * half * 4), *c2 = malloc(m * half * 4),
            *s2 = malloc(m * half * 4);
      assert_int_equal(rotary_rope_cos_sin(got, pos, m, c1, s1), ROTARY_OK);
      assert_int_equal(rotary_rope_cos_sin(fresh, pos, m, c2, s2), ROTARY_OK);
      assert_memory_equal(c1, c2, m * half * 4);
      assert_memory_equal(s1, s2, m * half * 4);
      free(c1), free(s1), free(c2), free(s2);
      assert_int_equal(rotary_rope_max_positions(from), 400);
      assert_int_equal(rotary_rope_seq_len(from), cfg[k].seq_len);
      rotary_rope_destroy(got);
      rotary_rope_destroy(fresh);
      rotary_rope_destroy(from);
    }
  /* The frequencies really move where Hugging Face moves them. */
  rotary_rope *a = NULL, *b = NULL;
  double fa[64], fb[64];
  assert_int_equal(rotary_rope_create(&cfg[3], 0, &a), ROTARY_OK);
  assert_int_equal(rotary_rope_derive(a, 4096, 0, &b), ROTARY_OK); /* at max_position_embeddings: unchanged */
  rotary_rope_inv_freq(a, fa), rotary_rope_inv_freq(b, fb);
  assert_memory_equal(fa, fb, sizeof fa);
  rotary_rope_destroy(b);
  assert_int_equal(rotary_rope_derive(a, 4097, 0, &b), ROTARY_OK); /* past it: every frequency but the first drops */
  rotary_rope_inv_freq(b, fb);
  assert_true(fb[0] == fa[0]);
  for (int i = 1; i < 64; i++) assert_true(fb[i] < fa[i]);
  rotary_rope_destroy(b);
  rotary_rope_destroy(a);
  assert_int_equal(rotary_rope_derive(NULL, 1, 1, &b), ROTARY_ERR_NULL_POINTER);
}

/* One rule for create and derive (issue 10, defect 9): for every config and sequence length, derive's status is
 * create's status with that seq_len (and rotary_config_check's), and on success the two ropes hold the same bits. */
static void test_derive_same_rule(void **state) {
  (void)state;
  init_factors();
  rotary_config cfg[24];
  size_t n = make_configs(cfg);
  rotary_config c = cfg[3]; /* dynamic NTK from base 1e300 (the issue's): the base overflows past some length */
  c.base = 1e300, c.head_dim = c.rotary_dim = 4;
  cfg[n++] = c;
  c.base = 1e290, c.scaling.factor = 1e10;
  cfg[n++] = c;
  c = cfg[10]; /* LongRoPE whose long factors overflow the frequencies, short ones fine */
  static double tiny[48];
  for (int i = 0; i < 48; i++) tiny[i] = 1e-310;
  c.scaling.long_factor = tiny, c.seq_len = 0;
  cfg[n++] = c;
  const size_t seqs[] = {0, 1, 4096, 4097, 10000, 131072, (size_t)1 << 32, (size_t)1 << 52, SIZE_MAX};
  size_t refused = 0;
  for (size_t k = 0; k < n; k++) {
    rotary_rope *from = NULL;
    assert_int_equal(rotary_rope_create(&cfg[k], 8, &from), ROTARY_OK);
    for (size_t z = 0; z < sizeof seqs / sizeof seqs[0]; z++) {
      rotary_config want = cfg[k];
      want.seq_len = seqs[z];
      rotary_rope *got = (rotary_rope *)&want, *fresh = (rotary_rope *)&want;
      const rotary_status sd = rotary_rope_derive(from, seqs[z], 8, &got);
      const rotary_status sc = rotary_rope_create(&want, 8, &fresh);
      assert_int_equal(sd, sc);
      assert_int_equal(rotary_config_check(&want, NULL), sc);
      if (sd != ROTARY_OK) {
        refused++;
        assert_ptr_equal(got, (rotary_rope *)&want); /* untouched */
        continue;
      }
      double f1[64], f2[64];
      rotary_rope_inv_freq(got, f1), rotary_rope_inv_freq(fresh, f2);
      assert_memory_equal(f1, f2, want.rotary_dim / 2 * sizeof(double));
      assert_true(rotary_rope_attention_scaling(got) == rotary_rope_attention_scaling(fresh));
      rotary_rope_destroy(got);
      rotary_rope_destroy(fresh);
    }
    rotary_rope_destroy(from);
  }
  assert_true(refused >= 3); /* the case among them: base 1e300 at seq_len 2^32 */
  rotary_rope *a = NULL, *b = (rotary_rope *)&c;
  assert_int_equal(rotary_rope_create(&cfg[n - 3], 0, &a), ROTARY_OK);
  assert_int_equal(rotary_rope_derive(a, (size_t)1 << 32, 0, &b), ROTARY_ERR_SCALING);
  assert_ptr_equal(b, (rotary_rope *)&c);
  rotary_rope_destroy(a);
}

/* The default frequencies base^(-2i/d) are correctly rounded to fp64 (issue 10): against MPFR over bases x every even
 * d up to 256 x every i, through a rope, with libm's pow (the former method) measured beside them. Quick mode
 * (valgrind, qemu): every even d up to 64, then 80, 96, 128 and 256, every base and every i of those. */
static void test_inv_freq_correctly_rounded(void **state) {
  (void)state;
#ifdef ORACLE_HAVE_MPFR
  const double bases[] = {10000, 500000, 1e6, 1e7, 5e6, 1.5, 2, 100, 0.5, 1e300, DBL_MAX, 0x1p-1022};
  mpfr_t b, e, r, t;
  mpfr_inits2(320, b, e, r, t, (mpfr_ptr)0);
  long n = 0, wrong = 0, undecided = 0, libm_wrong = 0, exact_wrong = 0, by_integers = 0;
  double max_ulp = 0, libm_max_ulp = 0, libm_max_ulp5 = 0; /* libm5: the first five (model) bases */
  for (size_t k = 0; k < sizeof bases / sizeof bases[0]; k++)
    for (size_t d = 2; d <= 256; d += 2) {
      if (tu_quick() && d > 64 && d != 80 && d != 96 && d != 128 && d != 256) continue;
      rotary_config c;
      rotary_config_init(&c, d);
      c.base = bases[k];
      rotary_rope *rope = NULL;
      assert_int_equal(rotary_rope_create(&c, 0, &rope), ROTARY_OK);
      double w[128];
      rotary_rope_inv_freq(rope, w);
      rotary_rope_destroy(rope);
      for (size_t i = 0; i < d / 2; i++) {
        mpfr_set_d(b, bases[k], MPFR_RNDN);
        mpfr_set_si(e, -(long)(2 * i), MPFR_RNDN);
        mpfr_div_ui(e, e, (unsigned long)d, MPFR_RNDN);
        mpfr_pow(r, b, e, MPFR_RNDN);
        const double cr = mpfr_get_d(r, MPFR_RNDN), ulp = nextafter(cr, INFINITY) - cr;
        const double libm = pow(bases[k], -(double)(2 * i) / (double)d);
        mpfr_sub_d(t, r, w[i], MPFR_RNDN);
        max_ulp = fmax(max_ulp, fabs(mpfr_get_d(t, MPFR_RNDN)) / ulp);
        mpfr_sub_d(t, r, libm, MPFR_RNDN);
        libm_max_ulp = fmax(libm_max_ulp, fabs(mpfr_get_d(t, MPFR_RNDN)) / ulp);
        if (k < 5) libm_max_ulp5 = fmax(libm_max_ulp5, fabs(mpfr_get_d(t, MPFR_RNDN)) / ulp);
        int how = 0, how_exact = 0;
        assert_true(rotary_scaling_pow(bases[k], 2 * i, d, 0, &how) == w[i]);
        /* the exact integer decision, forced, must agree (it settles the rare values near a midpoint) */
        if (d <= 128 || i % 7 == 0) exact_wrong += rotary_scaling_pow(bases[k], 2 * i, d, 1, &how_exact) != cr;
        n++, wrong += w[i] != cr, libm_wrong += libm != cr, undecided += how == 0, by_integers += how == 2;
      }
    }
  mpfr_clears(b, e, r, t, (mpfr_ptr)0);
  printf("[inv_freq] integer decision forced: %ld wrong; settled by the integers in normal use: %ld\n", exact_wrong,
         by_integers);
  printf("[inv_freq] %ld values base^(-2i/d) vs MPFR: %ld not correctly rounded (max %.4f ulp), %ld undecided; "
         "libm pow: %ld not correctly rounded (max %.3f ulp; %.3f for bases 1e4 to 1e7)\n",
         n, wrong, max_ulp, undecided, libm_wrong, libm_max_ulp, libm_max_ulp5);
  assert_int_equal(wrong, 0);
  assert_int_equal(undecided, 0);
  assert_int_equal(exact_wrong, 0);
#else
  printf("[inv_freq] MPFR not found: correct rounding not checked\n");
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_families_match_reference), cmocka_unit_test(test_known_values),
      cmocka_unit_test(test_table_uses_scaled_values), cmocka_unit_test(test_validation_names_field),
      cmocka_unit_test(test_derive),   cmocka_unit_test(test_derive_same_rule),
      cmocka_unit_test(test_inv_freq_correctly_rounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
