/* test_settings_bits.c: no setting changes an output bit: every setting at its bounds, default and values between,
 * over f32/f16/bf16, both pairings, BSHD and BHSD (heads 10 KiB apart: the head group acts), in place and out of
 * place (stream_store_bytes 0 sends small calls through the non-temporal kernels), table, table-free and caller
 * cos/sin rows, 1..3 threads, and rotary_kv_write into a contiguous cache; each output compared with memcmp to the
 * same call under the context's default settings. Public API only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"
#include "test_util.h"

enum { HD = 128, RD = 100, BATCH = 2, SEQ = 40, HQ = 5, HK = 2, OFFSET = 3, MAXPOS = 64, MAX_VALUES = 16 };
enum { NQ = BATCH * SEQ * HQ * HD, NK = BATCH * SEQ * HK * HD };
enum { ROWS_TABLE, ROWS_FREE, ROWS_GIVEN }; /* where the cos/sin rows come from */

static rotary_rope *g_rope[2][2];     /* [pairing][0 table, 1 table-free] */
static rotary_context *g_ctx[3];      /* 1, 2 and 3 threads */
static float g_cos[2][BATCH * SEQ * (RD / 2)], g_sin[2][BATCH * SEQ * (RD / 2)]; /* per pairing, ROWS_GIVEN */
static unsigned char *g_in[2], *g_out[2], *g_ref[2]; /* q, k: inputs, outputs, reference outputs (f32-sized) */

/* ---- the values each setting is tried at: min, min + 1, max - 1, max, default, powers of two between ---- */

static size_t setting_values(rotary_setting s, int64_t *v) {
  int64_t lo, hi, def;
  assert_int_equal(rotary_setting_range(s, &lo, &hi), ROTARY_OK);
  assert_int_equal(rotary_setting_default(s, &def), ROTARY_OK);
  int64_t cand[MAX_VALUES + 8];
  size_t n = 0;
  cand[n++] = lo;
  cand[n++] = lo + 1;
  cand[n++] = hi - 1;
  cand[n++] = hi;
  cand[n++] = def;
  cand[n++] = lo + 2;
  /* powers of two strictly inside the range, at most 8 of them, spread out */
  int k0 = 0, k1 = 0;
  while (k1 < 62 && ((int64_t)1 << (k1 + 1)) < hi) k1++;
  while (k0 < k1 && ((int64_t)1 << k0) <= lo) k0++;
  const int step = (k1 - k0) / 8 + 1;
  for (int k = k0; k <= k1 && n < MAX_VALUES + 8; k += step) cand[n++] = (int64_t)1 << k;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    int dup = cand[i] < lo || cand[i] > hi;
    for (size_t j = 0; j < m && !dup; j++) dup = v[j] == cand[i];
    if (!dup && m < MAX_VALUES) v[m++] = cand[i];
  }
  return m;
}

/* ---- one apply call ---- */

typedef struct variant {
  rotary_dtype dtype;
  rotary_pairing pairing;
  rotary_layout layout;
  int in_place, rows, threads;
} variant;

static void fill(rotary_dtype dt, void *p, size_t n, uint64_t seed) {
  tu_rng r;
  tu_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) tu_store(dt, p, (ptrdiff_t)i, tu_rng_f32(&r, -4.0f, 4.0f));
}

/* Runs v on its context as it stands; the outputs land in g_out. */
static void run_apply(const variant *v) {
  const size_t es = tu_dtype_size(v->dtype);
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = BATCH;
  d.seq_len = SEQ;
  d.positions.offset = OFFSET;
  if (v->rows == ROWS_GIVEN) {
    d.positions.mode = ROTARY_POSITIONS_COS_SIN;
    d.positions.cos = g_cos[v->pairing];
    d.positions.sin = g_sin[v->pairing];
  }
  memset(g_out[0], 0xa5, NQ * es);
  memset(g_out[1], 0xa5, NK * es);
  if (v->in_place) {
    memcpy(g_out[0], g_in[0], NQ * es);
    memcpy(g_out[1], g_in[1], NK * es);
  }
  const void *qi = v->in_place ? g_out[0] : g_in[0], *ki = v->in_place ? g_out[1] : g_in[1];
  assert_int_equal(rotary_tensor_init(&d.q, v->layout, qi, g_out[0], v->dtype, SEQ, HQ, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.k, v->layout, ki, g_out[1], v->dtype, SEQ, HK, HD), ROTARY_OK);
  const rotary_rope *rope = g_rope[v->pairing][v->rows != ROWS_TABLE];
  const rotary_status st = rotary_apply(g_ctx[v->threads - 1], rope, &d);
  if (st != ROTARY_OK) fail_msg("rotary_apply: %s", rotary_status_string(st));
}

static void describe(char *out, size_t size, const variant *v) {
  static const char *rows[] = {"table", "table-free", "cos/sin given"};
  snprintf(out, size, "%s %s %s %s %s, %d threads", tu_dtype_name(v->dtype),
           v->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved", v->layout == ROTARY_LAYOUT_BSHD ? "BSHD" : "BHSD",
           v->in_place ? "in place" : "out of place", rows[v->rows], v->threads);
}

static void compare(const char *what, const unsigned char *ref, const unsigned char *got, size_t bytes) {
  if (!memcmp(ref, got, bytes)) return;
  size_t i = 0;
  while (ref[i] == got[i]) i++;
  fail_msg("%s: byte %zu of %zu differs (%02x, default settings %02x)", what, i, bytes, got[i], ref[i]);
}

/* A call to check: run() writes its outputs into out[0..n); ctx is the context it runs on. */
typedef struct target {
  rotary_context *ctx;
  void (*run)(const void *arg);
  const void *arg;
  int n;
  unsigned char *out[3], *ref[3];
  size_t bytes[3];
  const char *names[3];
} target;

/* t under each value of each setting (then every setting at its minimum, then at its maximum) against t under the
 * context's defaults. Returns the calls made. */
static size_t check_settings(const target *t, const char *label) {
  assert_int_equal(rotary_context_reset_settings(t->ctx), ROTARY_OK);
  t->run(t->arg);
  for (int i = 0; i < t->n; i++) memcpy(t->ref[i], t->out[i], t->bytes[i]);
  size_t calls = 1;
  for (int s = 0; s < ROTARY_SETTING_COUNT + 2; s++) {
    int64_t values[MAX_VALUES];
    const size_t n = s < ROTARY_SETTING_COUNT ? setting_values((rotary_setting)s, values) : 1;
    for (size_t k = 0; k < n; k++) {
      char what[320];
      assert_int_equal(rotary_context_reset_settings(t->ctx), ROTARY_OK);
      if (s < ROTARY_SETTING_COUNT) {
        assert_int_equal(rotary_context_set_setting(t->ctx, (rotary_setting)s, values[k]), ROTARY_OK);
        snprintf(what, sizeof what, "%s, %s %lld", label, rotary_setting_name((rotary_setting)s), (long long)values[k]);
      } else {
        for (int u = 0; u < ROTARY_SETTING_COUNT; u++) {
          int64_t lo, hi;
          assert_int_equal(rotary_setting_range((rotary_setting)u, &lo, &hi), ROTARY_OK);
          assert_int_equal(rotary_context_set_setting(t->ctx, (rotary_setting)u, s == ROTARY_SETTING_COUNT ? lo : hi),
                           ROTARY_OK);
        }
        snprintf(what, sizeof what, "%s, every setting at its %s", label, s == ROTARY_SETTING_COUNT ? "min" : "max");
      }
      t->run(t->arg);
      calls++;
      for (int i = 0; i < t->n; i++) {
        char part[360];
        snprintf(part, sizeof part, "%s: %s", what, t->names[i]);
        compare(part, t->ref[i], t->out[i], t->bytes[i]);
      }
    }
  }
  assert_int_equal(rotary_context_reset_settings(t->ctx), ROTARY_OK);
  return calls;
}

static void run_apply_arg(const void *arg) { run_apply((const variant *)arg); }

static size_t check_variant(const variant *v) {
  const size_t es = tu_dtype_size(v->dtype);
  const target t = {g_ctx[v->threads - 1], run_apply_arg, v, 2, {g_out[0], g_out[1], NULL},
                    {g_ref[0], g_ref[1], NULL}, {NQ * es, NK * es, 0}, {"q", "k", NULL}};
  char name[160];
  describe(name, sizeof name, v);
  return check_settings(&t, name);
}

static void test_apply_bits(void **state) {
  (void)state;
  static const rotary_dtype dtypes[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  size_t index = 0, variants = 0, calls = 0;
  for (int dt = 0; dt < 3; dt++) {
    fill(dtypes[dt], g_in[0], NQ, 0x51 + (uint64_t)dt);
    fill(dtypes[dt], g_in[1], NK, 0x71 + (uint64_t)dt);
    for (int p = 0; p < 2; p++)
      for (int l = 0; l < 2; l++)
        for (int ip = 0; ip < 2; ip++)
          for (int rows = 0; rows < 3; rows++)
            for (int th = 1; th <= 3; th++, index++) {
              if (tu_quick() && index % 11 != 0) continue; /* quick mode (valgrind, TSan): one variant in 11 */
              const variant v = {dtypes[dt], (rotary_pairing)p, (rotary_layout)l, ip, rows, th};
              calls += check_variant(&v);
              variants++;
            }
  }
  printf("%zu variants, %zu calls, every output bit equal to the default settings'\n", variants, calls);
  assert_true(variants >= (tu_quick() ? 19u : 216u));
}

/* ---- rotary_kv_write: q rotated out of place, k rotated into a contiguous cache, v copied ---- */

enum { KB = 2, KS = 24, KQ = 4, KH = 2, BLOCK = 40 };
enum { KNQ = KB * KS * KQ * HD, KNK = KB * KS * KH * HD, KNC = KB * BLOCK * KH * HD };

typedef struct kv_case {
  rotary_dtype in, cache;
  rotary_cache_layout layout;
  int threads;
  unsigned char *q_in, *k_in, *v_in, *q_out, *kc, *vc;
} kv_case;

static void run_kv(const void *arg) {
  const kv_case *c = arg;
  static const int64_t lengths[KB] = {3, 10};
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = KB;
  d.seq_len = KS;
  d.positions.mode = ROTARY_POSITIONS_OFFSETS;
  d.positions.offsets = lengths; /* positions continue each sequence */
  memset(c->q_out, 0x3c, KNQ * sizeof(float));
  memset(c->kc, 0x3c, KNC * sizeof(float));
  memset(c->vc, 0x3c, KNC * sizeof(float));
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, c->q_in, c->q_out, c->in, KS, KQ, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, c->k_in, NULL, c->in, KS, KH, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.v, ROTARY_LAYOUT_BSHD, c->v_in, NULL, c->in, KS, KH, HD), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_SEQUENCES;
  d.cache.layout = c->layout;
  d.cache.dtype = c->cache;
  d.cache.k = c->kc;
  d.cache.v = c->vc;
  d.cache.num_blocks = KB;
  d.cache.block_size = BLOCK;
  d.cache.lengths = lengths;
  const rotary_status st = rotary_kv_write(g_ctx[c->threads - 1], g_rope[0][0], &d);
  if (st != ROTARY_OK) fail_msg("rotary_kv_write: %s", rotary_status_string(st));
}

static void test_kv_write_bits(void **state) {
  (void)state;
  /* the same dtype in and in the cache (the direct path, non-temporal stores from stream_store_bytes up), and bf16
   * into an f16 cache (converted) */
  static const rotary_dtype pairs[][2] = {
      {ROTARY_F32, ROTARY_F32}, {ROTARY_F16, ROTARY_F16}, {ROTARY_BF16, ROTARY_BF16}, {ROTARY_BF16, ROTARY_F16}};
  unsigned char *buf[6], *ref[3];
  const size_t sizes[6] = {KNQ, KNK, KNK, KNQ, KNC, KNC};
  for (int i = 0; i < 6; i++) assert_non_null(buf[i] = malloc(sizes[i] * sizeof(float)));
  for (int i = 0; i < 3; i++) assert_non_null(ref[i] = malloc(sizes[3 + i] * sizeof(float)));
  size_t calls = 0, cases = 0;
  for (int p = 0; p < 4; p++)
    for (int l = 0; l < 2; l++)
      for (int th = 1; th <= 3; th++) {
        if (tu_quick() && (p + l + th) % 3 != 0) continue;
        kv_case c = {pairs[p][0], pairs[p][1], (rotary_cache_layout)l, th, buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]};
        for (int i = 0; i < 3; i++) fill(c.in, buf[i], sizes[i], 0x900 + (uint64_t)(3 * p + i));
        const size_t qe = tu_dtype_size(c.in), ce = tu_dtype_size(c.cache);
        const target t = {g_ctx[th - 1], run_kv, &c, 3, {buf[3], buf[4], buf[5]}, {ref[0], ref[1], ref[2]},
                          {KNQ * qe, KNC * ce, KNC * ce}, {"q", "key cache", "value cache"}};
        char label[160];
        snprintf(label, sizeof label, "kv_write %s into %s %s, %d threads", tu_dtype_name(c.in), tu_dtype_name(c.cache),
                 l ? "HND" : "NHD", th);
        calls += check_settings(&t, label);
        cases++;
      }
  printf("kv_write: %zu cases, %zu calls, every output bit equal to the default settings'\n", cases, calls);
  for (int i = 0; i < 6; i++) free(buf[i]);
  for (int i = 0; i < 3; i++) free(ref[i]);
}

static int setup(void **state) {
  (void)state;
  for (int p = 0; p < 2; p++) {
    rotary_config c;
    rotary_config_init(&c, HD);
    c.rotary_dim = RD;
    c.pairing = (rotary_pairing)p;
    if (rotary_rope_create(&c, MAXPOS, &g_rope[p][0]) != ROTARY_OK) return -1;
    if (rotary_rope_create(&c, 0, &g_rope[p][1]) != ROTARY_OK) return -1;
    int64_t pos[BATCH * SEQ];
    for (size_t t = 0; t < BATCH * SEQ; t++) pos[t] = OFFSET + (int64_t)(t % SEQ);
    if (rotary_rope_cos_sin(g_rope[p][1], pos, BATCH * SEQ, g_cos[p], g_sin[p]) != ROTARY_OK) return -1;
  }
  for (int t = 0; t < 3; t++)
    if (rotary_context_create((size_t)t + 1, &g_ctx[t]) != ROTARY_OK) return -1;
  for (int i = 0; i < 2; i++) {
    const size_t bytes = (i ? NK : NQ) * sizeof(float);
    g_in[i] = malloc(bytes), g_out[i] = malloc(bytes), g_ref[i] = malloc(bytes);
    if (!g_in[i] || !g_out[i] || !g_ref[i]) return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int p = 0; p < 2; p++) rotary_rope_destroy(g_rope[p][0]), rotary_rope_destroy(g_rope[p][1]);
  for (int t = 0; t < 3; t++) rotary_context_destroy(g_ctx[t]);
  for (int i = 0; i < 2; i++) free(g_in[i]), free(g_out[i]), free(g_ref[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_apply_bits), cmocka_unit_test(test_kv_write_bits)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
