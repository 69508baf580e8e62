/* test_kv_rerotate.c: rotary_kv_rerotate bit for bit against its formula, and d1 then d2 against the fp64 d1 + d2. */
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

#include "kv_oracle.h"
#include "oracle.h"
#include "rotary.h"
#include "test_util.h"

/*
 * The contract (include/rotary.h): each chosen key's pair turns by delta * inv_freq[i] with cos/sin of that exact
 * angle rounded once to fp32 and WITHOUT the rope's attention scaling, math in fp32 (the formula of rotary_apply),
 * one rounding to the cache dtype (fp8: decoded as code * k_scale in fp32, encoded as RNE(y / k_scale)).
 * So the expected bits come from a "plain" rope: the same fp64 inverse frequencies, attention scaling 1,
 * table-free; a negative delta uses cos(|delta| w) and -sin(|delta| w) (the rounding is symmetric).
 * Delta 0 is cos 1, sin 0: every finite nonzero element keeps its bits (a -0 may come out +0, as rotary_apply at
 * position 0); the test checks both the formula and that unchanged-bits property.
 *
 * Composition bound (u = 2^-24, r = the pair's norm before rotating, x the pair):
 *   one fp32 step: cos/sin within 1 ulp (2u relative) of the truth, and the formula's two roundings, cost at most
 *   2u(|x0| + |x1|) + 2u(|x0| + |x1|) <= 4 sqrt(2) u r per element; rotations keep norms, so two steps cost at
 *   most 8 sqrt(2) u r = 11.3 u r. Allowed: 16 u r.
 *   f16/bf16/fp8 caches also round each step to the dtype: step 1's error vector has norm <= sqrt(2)/2 ulp(r) and
 *   the second rotation may put all of it into one element; step 2 adds 1/2 ulp: 1.21 ulp. Allowed:
 *   1.25 ulp_dtype(1.01 r) + 16 u r (fp8: ulp of r / k_scale, times k_scale, plus 4 u r for decode and encode).
 *   The truth rotates the original cache values by (d1 + d2) * inv_freq in long double (angle error 2^-63 relative,
 *   allowed as |angle| 2^-60 r).
 */

static rotary_context *g_ctx[3];

typedef struct rcase {
  size_t head_dim, rotary_dim, kv_heads, block_size, num_blocks, block_pad;
  rotary_pairing pairing;
  rotary_cache_layout layout;
  rotary_dtype dt;
  float k_scale;
  uint64_t seed;
} rcase;

typedef struct rcache {
  rcase rc;
  kvo_geom g;
  size_t n; /* elements of the key cache */
  tu_guarded buf, vbuf;
  unsigned char *init;
  rotary_kv_rerotate_desc d;
} rcache;

static float load(const rcase *rc, const void *base, size_t i) {
  if (rc->dt == ROTARY_FP8_E4M3) return kvo_fp8_decode(((const uint8_t *)base)[i], rc->k_scale);
  return tu_load(rc->dt, base, (ptrdiff_t)i);
}

static uint32_t bits_at(const rcase *rc, const void *base, size_t i) {
  return rc->dt == ROTARY_FP8_E4M3 ? ((const uint8_t *)base)[i] : tu_load_bits(rc->dt, base, (ptrdiff_t)i);
}

static uint32_t round_to(const rcase *rc, float y) {
  return rc->dt == ROTARY_FP8_E4M3 ? kvo_fp8_encode(y, rc->k_scale) : tu_round_bits(rc->dt, y);
}

static int is_nan(const rcase *rc, uint32_t b) {
  return rc->dt == ROTARY_FP8_E4M3 ? kvo_fp8_isnan((uint8_t)b) : tu_bits_isnan(rc->dt, b);
}

static void put(const rcase *rc, void *base, size_t i, uint32_t bits) {
  size_t es = kvo_dtype_size(rc->dt);
  if (es == 1) ((uint8_t *)base)[i] = (uint8_t)bits;
  else if (es == 2) { uint16_t h = (uint16_t)bits; memcpy((unsigned char *)base + 2 * i, &h, 2); }
  else memcpy((unsigned char *)base + 4 * i, &bits, 4);
}

/* A random finite value of the cache dtype; |value| <= 240 * k_scale for fp8 so that no rotation saturates. */
static uint32_t random_bits(const rcase *rc, tu_rng *r, int allow_nan) {
  if (allow_nan && tu_rng_below(r, 50) == 0) return round_to(rc, NAN);
  if (rc->dt == ROTARY_FP8_E4M3) {
    uint32_t code = (uint32_t)tu_rng_below(r, 0x78); /* 0x77 = 240 */
    return code | (tu_rng_below(r, 2) ? 0x80u : 0u);
  }
  float v = tu_rng_below(r, 4) ? tu_rng_f32(r, -2.0f, 2.0f) : tu_rng_f32_wide(r, -10, 3);
  return tu_round_bits(rc->dt, v);
}

static int cache_alloc(rcache *c, const rcase *rc, tu_rng *r, int allow_nan) {
  memset(c, 0, sizeof *c);
  c->rc = *rc;
  const size_t dense = rc->block_size * rc->kv_heads * rc->head_dim, stride = dense + rc->block_pad;
  c->g = (kvo_geom){rc->layout, rc->block_size, rc->kv_heads, rc->head_dim, stride};
  c->n = (rc->num_blocks - 1) * stride + dense;
  const size_t bytes = c->n * kvo_dtype_size(rc->dt);
  if (!tu_guard_alloc(&c->buf, bytes, TU_GUARD_END) || !tu_guard_alloc(&c->vbuf, bytes, TU_GUARD_START)) return -1;
  c->init = malloc(bytes);
  if (!c->init) return -1;
  for (size_t i = 0; i < c->n; i++) put(rc, c->buf.ptr, i, random_bits(rc, r, allow_nan));
  tu_canary_fill(c->vbuf.ptr, bytes, 77);
  memcpy(c->init, c->buf.ptr, bytes);
  rotary_kv_rerotate_desc_init(&c->d);
  rotary_kv_cache *k = &c->d.cache;
  k->index = ROTARY_CACHE_SLOTS, k->layout = rc->layout, k->dtype = rc->dt, k->k = c->buf.ptr, k->v = c->vbuf.ptr;
  k->num_blocks = rc->num_blocks, k->block_size = rc->block_size, k->block_stride = rc->block_pad ? stride : 0;
  k->k_scale = rc->k_scale, k->v_scale = -1.0f; /* v_scale is not read */
  c->d.kv_heads = rc->kv_heads;
  return 0;
}

static void cache_free(rcache *c) {
  tu_guard_free(&c->buf);
  tu_guard_free(&c->vbuf);
  free(c->init);
}

/* The rope's fp64 inverse frequencies with attention scaling 1, table-free: the cos/sin rerotate must use. */
static rotary_rope *plain_rope(const rotary_rope *rope) {
  double inv[512];
  rotary_config cfg;
  rotary_config_init(&cfg, rotary_rope_head_dim(rope));
  cfg.rotary_dim = rotary_rope_rotary_dim(rope), cfg.pairing = rotary_rope_pairing(rope);
  if (rotary_rope_inv_freq(rope, inv) != ROTARY_OK) return NULL;
  cfg.inv_freq = inv;
  rotary_rope *p = NULL;
  return rotary_rope_create(&cfg, 0, &p) == ROTARY_OK ? p : NULL;
}

/* cos and sin of delta * inv_freq, unscaled, as fp32 rows of rotary_dim / 2. */
static void delta_rows(const rotary_rope *plain, int64_t delta, float *c, float *s) {
  const int64_t a = delta < 0 ? -delta : delta;
  assert_int_equal(rotary_rope_cos_sin(plain, &a, 1, c, s), ROTARY_OK);
  if (delta < 0)
    for (size_t i = 0; i < rotary_rope_rotary_dim(plain) / 2; i++) s[i] = -s[i];
}

/* The slots a descriptor chooses, in order (negative list entries dropped). */
static size_t chosen(const rotary_kv_rerotate_desc *d, int64_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_slots; i++) {
    int64_t s = d->slots ? d->slots[i] : (int64_t)(d->first_slot + i);
    if (s >= 0) out[n++] = s;
  }
  return n;
}

/* Expected image: init with every chosen key rotated by the formula and rounded to the dtype. */
static void expected_image(const rcache *c, const rotary_rope *plain, unsigned char *exp, unsigned char *wrote) {
  const rcase *rc = &c->rc;
  const size_t half = rc->rotary_dim / 2;
  float cs[256], sn[256];
  int64_t slots[4096];
  delta_rows(plain, c->d.delta, cs, sn);
  memcpy(exp, c->init, c->n * kvo_dtype_size(rc->dt));
  memset(wrote, 0, c->n);
  const size_t ns = chosen(&c->d, slots);
  for (size_t j = 0; j < ns; j++)
    for (size_t h = 0; h < rc->kv_heads; h++) {
      const size_t row = kvo_row_offset(&c->g, (uint64_t)slots[j], h);
      for (size_t i = 0; i < half; i++) {
        size_t a, b;
        float y0, y1;
        oracle_pair_index(rc->pairing, rc->rotary_dim, i, &a, &b);
        oracle_formula_f32(load(rc, c->init, row + a), load(rc, c->init, row + b), cs[i], sn[i], &y0, &y1);
        put(rc, exp, row + a, round_to(rc, y0)), put(rc, exp, row + b, round_to(rc, y1));
        wrote[row + a] = wrote[row + b] = 1;
      }
    }
}

/* Elements that differ from the image (written NaNs: any NaN), plus any change of the value cache. */
static size_t compare(const rcache *c, const unsigned char *exp, const unsigned char *wrote) {
  size_t bad = 0;
  for (size_t e = 0; e < c->n; e++) {
    uint32_t got = bits_at(&c->rc, c->buf.ptr, e), want = bits_at(&c->rc, exp, e);
    if (got == want || (wrote[e] && is_nan(&c->rc, got) && is_nan(&c->rc, want))) continue;
    if (bad++ < 5)
      printf("  FAIL element %zu (%s): got 0x%x want 0x%x, delta %lld\n", e, wrote[e] ? "rotated" : "untouched",
             (unsigned)got, (unsigned)want, (long long)c->d.delta);
  }
  const size_t vb = c->n * kvo_dtype_size(c->rc.dt);
  if (tu_canary_check(c->vbuf.ptr, vb, 77) != vb) bad++, printf("  FAIL the value cache changed\n");
  return bad;
}

/* A rope; layout (not NONE) makes it multi-stream: 2 streams, sections or interleaved [half - half/2, half/2],
 * or a vision layout when rotary_dim allows (else sections). */
static rotary_rope *make_rope(size_t hd, size_t rd, rotary_pairing pairing, int yarn, double scaling,
                              rotary_stream_layout layout) {
  rotary_config cfg;
  rotary_config_init(&cfg, hd);
  cfg.rotary_dim = rd, cfg.pairing = pairing, cfg.attention_scaling = scaling;
  const int vision = layout == ROTARY_STREAMS_VISION_2D || layout == ROTARY_STREAMS_VISION_2D_PIXTRAL;
  cfg.streams.layout = vision && (rd % 4 || yarn) ? ROTARY_STREAMS_SECTIONS : layout;
  if (cfg.streams.layout == ROTARY_STREAMS_SECTIONS || cfg.streams.layout == ROTARY_STREAMS_INTERLEAVED) {
    cfg.streams.n_streams = 2;
    cfg.streams.sections[0] = rd / 2 - rd / 4, cfg.streams.sections[1] = rd / 4;
  }
  if (yarn) {
    cfg.scaling.type = ROTARY_SCALING_YARN, cfg.scaling.factor = 4.0;
    cfg.scaling.original_max_position_embeddings = 2048;
  }
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(&cfg, 64, &r), ROTARY_OK);
  return r;
}

static rcase random_case(tu_rng *r, unsigned v) {
  static const size_t hds[5] = {8, 16, 64, 128, 6};
  static const size_t bss[4] = {1, 16, 5, 128};
  rcase rc;
  memset(&rc, 0, sizeof rc);
  rc.dt = (rotary_dtype)(v % 4);
  rc.layout = (rotary_cache_layout)((v / 4) % 2);
  rc.block_size = bss[(v / 8) % 4];
  rc.head_dim = hds[tu_rng_below(r, 5)];
  rc.rotary_dim = tu_rng_below(r, 3) ? rc.head_dim : 2 + 2 * (size_t)tu_rng_below(r, rc.head_dim / 2);
  rc.kv_heads = 1 + (size_t)tu_rng_below(r, 4);
  rc.num_blocks = 1 + (size_t)tu_rng_below(r, rc.block_size >= 16 ? 3 : 12);
  rc.block_pad = tu_rng_below(r, 3) == 0 ? 3 : 0;
  rc.pairing = (rotary_pairing)tu_rng_below(r, 2);
  rc.k_scale = ldexpf(1.0f + (float)tu_rng_below(r, 256) / 256.0f, (int)tu_rng_below(r, 8) - 4);
  return rc;
}

/* Picks a range or a list (with skipped negatives) of slots, and a delta. */
static void choose(rcache *c, tu_rng *r, int64_t *list, int64_t delta) {
  const size_t total = c->rc.num_blocks * c->rc.block_size;
  c->d.delta = delta;
  if (tu_rng_below(r, 2)) {
    c->d.first_slot = (size_t)tu_rng_below(r, total);
    c->d.n_slots = 1 + (size_t)tu_rng_below(r, total - c->d.first_slot); /* n_slots 0: INVALID_ARGUMENT */
    c->d.slots = NULL;
  } else {
    size_t n = 0;
    for (size_t s = 0; s < total; s++) /* a random subset in a random-ish order, with skipped entries */
      if (tu_rng_below(r, 2)) list[n++] = tu_rng_below(r, 6) ? (int64_t)s : -1 - (int64_t)tu_rng_below(r, 3);
    if (n == 0) list[n++] = (int64_t)(total - 1);
    for (size_t i = n; i > 1; i--) {
      size_t j = (size_t)tu_rng_below(r, i);
      int64_t t = list[i - 1];
      list[i - 1] = list[j], list[j] = t;
    }
    c->d.slots = list, c->d.n_slots = n, c->d.first_slot = 12345; /* ignored with a list */
  }
}

static int64_t random_delta(tu_rng *r) {
  switch (tu_rng_below(r, 5)) {
    case 0: return 0;
    case 1: return -(int64_t)tu_rng_below(r, 100000);
    case 2: return (int64_t)tu_rng_below(r, 100000);
    case 3: return tu_rng_below(r, 2) ? ROTARY_MAX_POSITION : -ROTARY_MAX_POSITION;
    default: return (int64_t)tu_rng_below(r, 17) - 8;
  }
}

/* Bits against the formula, untouched elements, thread counts; ropes with and without attention scaling. */
static void run_bits(int yarn, double scaling, unsigned cases, uint64_t seed, rotary_stream_layout layout) {
  tu_rng r;
  tu_rng_seed(&r, seed);
  size_t bad = 0, rotated = 0;
  int64_t *list = malloc(4096 * sizeof *list);
  for (unsigned v = 0; v < cases; v++) {
    rcase rc = random_case(&r, v);
    rotary_rope *rope = make_rope(rc.head_dim, rc.rotary_dim, rc.pairing, yarn, scaling, layout);
    rotary_rope *plain = plain_rope(rope);
    assert_non_null(plain);
    if (yarn || scaling != 1.0) assert_true(rotary_rope_attention_scaling(rope) != 1.0);
    rcache c;
    assert_int_equal(cache_alloc(&c, &rc, &r, 1), 0);
    choose(&c, &r, list, random_delta(&r));
    unsigned char *exp = malloc(c.n * 4 + 1), *wrote = malloc(c.n + 1), *first = malloc(c.n * 4 + 1);
    const size_t bytes = c.n * kvo_dtype_size(rc.dt);
    expected_image(&c, plain, exp, wrote);
    assert_int_equal(rotary_kv_rerotate(NULL, rope, &c.d), ROTARY_OK);
    bad += compare(&c, exp, wrote);
    memcpy(first, c.buf.ptr, bytes);
    for (int t = 0; t < 3; t++) {
      memcpy(c.buf.ptr, c.init, bytes);
      assert_int_equal(rotary_kv_rerotate(g_ctx[t], rope, &c.d), ROTARY_OK);
      if (memcmp(first, c.buf.ptr, bytes) != 0) bad++, printf("  FAIL %d threads gave other bits\n", t + 1);
    }
    for (size_t e = 0; e < c.n; e++) rotated += wrote[e];
    free(exp), free(wrote), free(first);
    cache_free(&c);
    rotary_rope_destroy(rope), rotary_rope_destroy(plain);
  }
  free(list);
  printf("rerotate bits (%s, attention scaling %g, stream layout %d): %u caches, %zu elements rotated, %zu "
         "failures\n", yarn ? "yarn" : "default", scaling, (int)layout, cases, rotated, bad);
  assert_int_equal(bad, 0);
  assert_true(rotated > 0);
}

static void test_bits(void **state) {
  (void)state;
  run_bits(0, 1.0, tu_quick() ? 64 : 400, 0xb175ull, ROTARY_STREAMS_NONE);
}

/* YaRN's attention factor (1.139 here) and a plain attention_scaling of 1.5 are not applied again. */
static void test_scaled_ropes(void **state) {
  (void)state;
  run_bits(1, 1.0, 64, 0x7a4aull, ROTARY_STREAMS_NONE);
  run_bits(0, 1.5, 64, 0x15ull, ROTARY_STREAMS_NONE);
}

/* A multi-stream rope (mRoPE sections, interleaved, 2-D vision) turns every frequency by the same delta: the row
 * of a one-stream rope with the same frequencies (rotary.h, rotary_kv_rerotate). */
static void test_multi_stream_ropes(void **state) {
  (void)state;
  const rotary_stream_layout layouts[4] = {ROTARY_STREAMS_SECTIONS, ROTARY_STREAMS_INTERLEAVED,
                                           ROTARY_STREAMS_VISION_2D, ROTARY_STREAMS_VISION_2D_PIXTRAL};
  for (int k = 0; k < 4; k++) {
    run_bits(0, 1.0, tu_quick() ? 16 : 48, 0x5e0ull + (uint64_t)k, layouts[k]);
    run_bits(k < 2, k < 2 ? 1.0 : 1.5, 16, 0x5f0ull + (uint64_t)k, layouts[k]);
  }
}

/* ---- composition against the fp64 oracle ---- */

static long double ulp_of(const rcase *rc, long double x) {
  if (rc->dt != ROTARY_FP8_E4M3) return tu_ulp(rc->dt, x);
  long double v = fabsl(x) / rc->k_scale; /* fp8 spacing of the stored value, in value units */
  if (v < 0x1p-6L) return 0x1p-9L * rc->k_scale;
  int e;
  (void)frexpl(v, &e);
  return ldexpl(1.0L, e - 1 - 3) * rc->k_scale;
}

/* Largest error / bound over every rotated pair of cache c (now rotated by `total` in some steps) against the
 * original values rotated by total in long double; steps: how many roundings happened (1 or 2). */
static double worst_use(const rcache *c, const double *inv, int64_t total, int steps) {
  const rcase *rc = &c->rc;
  const long double u = 0x1p-24L;
  int64_t slots[4096];
  const size_t ns = chosen(&c->d, slots);
  double worst = 0;
  for (size_t j = 0; j < ns; j++)
    for (size_t h = 0; h < rc->kv_heads; h++) {
      const size_t row = kvo_row_offset(&c->g, (uint64_t)slots[j], h);
      for (size_t i = 0; i < rc->rotary_dim / 2; i++) {
        size_t a, b;
        oracle_pair_index(rc->pairing, rc->rotary_dim, i, &a, &b);
        const long double x0 = load(rc, c->init, row + a), x1 = load(rc, c->init, row + b);
        const long double ang = (long double)total * (long double)inv[i], cs = cosl(ang), sn = sinl(ang);
        const long double t0 = x0 * cs - x1 * sn, t1 = x0 * sn + x1 * cs, r = sqrtl(x0 * x0 + x1 * x1);
        long double bound = 8.0L * steps * u * r + fabsl(ang) * 0x1p-60L * r;
        if (rc->dt != ROTARY_F32) bound += (steps == 1 ? 0.5L : 1.25L) * ulp_of(rc, 1.01L * r);
        if (rc->dt == ROTARY_FP8_E4M3) bound += 4.0L * u * r;
        if (rc->dt == ROTARY_F16 || rc->dt == ROTARY_FP8_E4M3) bound += ulp_of(rc, 0.0L) * 0.5L * steps;
        const long double e0 = fabsl(load(rc, c->buf.ptr, row + a) - t0);
        const long double e1 = fabsl(load(rc, c->buf.ptr, row + b) - t1);
        const double use = (double)(fmaxl(e0, e1) / bound);
        if (use > worst) worst = use;
        if (use > 1.0 && worst == use)
          printf("  over the bound: %s x (%.9Lg, %.9Lg) total %lld: got (%.9g, %.9g) truth (%.12Lg, %.12Lg) bound "
                 "%.3Lg\n", rc->dt == ROTARY_FP8_E4M3 ? "fp8" : tu_dtype_name(rc->dt), x0, x1, (long long)total,
                 (double)load(rc, c->buf.ptr, row + a), (double)load(rc, c->buf.ptr, row + b), t0, t1, bound);
      }
    }
  return worst;
}

/* d1 then d2 against the oracle of d1 + d2 (and the single call by d1 + d2 against its one-step bound), for random
 * deltas of both signs, k then -k, and every dtype and layout. */
static void test_composition(void **state) {
  (void)state;
  tu_rng r;
  tu_rng_seed(&r, 0xc0e9ull);
  double worst2[4] = {0}, worst1[4] = {0};
  int64_t *list = malloc(4096 * sizeof *list);
  const unsigned cases = tu_quick() ? 64 : 320;
  for (unsigned v = 0; v < cases; v++) {
    rcase rc = random_case(&r, v);
    rotary_rope *rope = make_rope(rc.head_dim, rc.rotary_dim, rc.pairing, v % 5 == 0, 1.0, ROTARY_STREAMS_NONE);
    double inv[512];
    assert_int_equal(rotary_rope_inv_freq(rope, inv), ROTARY_OK);
    rcache c;
    assert_int_equal(cache_alloc(&c, &rc, &r, 0), 0);
    const int64_t d1 = (int64_t)tu_rng_below(&r, 200001) - 100000;
    const int64_t d2 = v % 7 == 3 ? -d1 : (int64_t)tu_rng_below(&r, 200001) - 100000;
    choose(&c, &r, list, d1);
    assert_int_equal(rotary_kv_rerotate(g_ctx[v % 3], rope, &c.d), ROTARY_OK);
    c.d.delta = d2;
    assert_int_equal(rotary_kv_rerotate(g_ctx[(v + 1) % 3], rope, &c.d), ROTARY_OK);
    const double w2 = worst_use(&c, inv, d1 + d2, 2);
    if (w2 > worst2[rc.dt]) worst2[rc.dt] = w2;
    memcpy(c.buf.ptr, c.init, c.n * kvo_dtype_size(rc.dt));
    c.d.delta = d1 + d2;
    assert_int_equal(rotary_kv_rerotate(NULL, rope, &c.d), ROTARY_OK);
    const double w1 = worst_use(&c, inv, d1 + d2, 1);
    if (w1 > worst1[rc.dt]) worst1[rc.dt] = w1;
    cache_free(&c);
    rotary_rope_destroy(rope);
  }
  free(list);
  static const char *names[4] = {"f32", "f16", "bf16", "fp8"};
  for (int i = 0; i < 4; i++)
    printf("composition %-4s: worst error / bound: two steps %.3f, one step %.3f\n", names[i], worst2[i], worst1[i]);
  for (int i = 0; i < 4; i++) assert_true(worst2[i] <= 1.0 && worst1[i] <= 1.0);
}

/* Delta 0: every finite nonzero key keeps its bits; zeros stay zeros; other slots are untouched. */
static void test_delta_zero(void **state) {
  (void)state;
  tu_rng r;
  tu_rng_seed(&r, 0xd0ull);
  size_t changed = 0, checked = 0;
  for (unsigned v = 0; v < 64; v++) {
    rcase rc = random_case(&r, v);
    rotary_rope *rope = make_rope(rc.head_dim, rc.rotary_dim, rc.pairing, v % 2, 1.0, ROTARY_STREAMS_NONE);
    rcache c;
    assert_int_equal(cache_alloc(&c, &rc, &r, 0), 0); /* no NaN: a NaN's partner becomes NaN (documented) */
    c.d.first_slot = 0, c.d.n_slots = rc.num_blocks * rc.block_size, c.d.delta = 0;
    assert_int_equal(rotary_kv_rerotate(g_ctx[2], rope, &c.d), ROTARY_OK);
    for (size_t e = 0; e < c.n; e++) {
      const uint32_t before = bits_at(&rc, c.init, e), after = bits_at(&rc, c.buf.ptr, e);
      const float x = load(&rc, c.init, e);
      checked++;
      if (x == 0.0f) changed += load(&rc, c.buf.ptr, e) != 0.0f;
      else if (isnan(x)) changed += !is_nan(&rc, after);
      else if (before != after && changed++ < 5)
        printf("  delta 0 changed %s element %zu: 0x%x -> 0x%x (scale %g)\n",
               rc.dt == ROTARY_FP8_E4M3 ? "fp8" : tu_dtype_name(rc.dt), e, (unsigned)before, (unsigned)after,
               (double)rc.k_scale);
    }
    cache_free(&c);
    rotary_rope_destroy(rope);
  }
  printf("delta 0: %zu elements, %zu changed\n", checked, changed);
  assert_int_equal(changed, 0);
}

static int setup(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    if (rotary_context_create((size_t)i + 1, &g_ctx[i]) != ROTARY_OK) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) rotary_context_destroy(g_ctx[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bits),
      cmocka_unit_test(test_scaled_ropes),
      cmocka_unit_test(test_multi_stream_ropes),
      cmocka_unit_test(test_composition),
      cmocka_unit_test(test_delta_zero),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
