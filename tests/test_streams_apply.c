/* test_streams_apply.c: rotary_apply and rotary_kv_write with multi-stream positions (sections, interleaved, 2-D
 * vision, maps) against the fp64 oracle, bit for bit against the documented formula with the gathered rows. */
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

#include "oracle.h"
#include "rotary.h"
#include "streams_oracle.h"
#include "test_util.h"

/*
 * Every case: a random layout of one kind; ids of every stream (int32 or int64, streams a stride apart with
 * unread gaps, a third of the tokens with all streams equal); q and k of one dtype, BSHD or BHSD, in place or not,
 * partial rotary_dim, either pairing, forward or inverse. Each rotated pair must be the fp32 formula with the rows
 * the header promises (each stream's 1-D row from rotary_rope_cos_sin, gathered by an independent model of the
 * map) rounded once to the dtype, and within the oracle's bound of the true rotation (cos/sin of id * inv_freq in
 * long double); the pass-through dims are copied. A table-free rope and a context of 3 threads give the same bytes.
 */

static const rotary_stream_layout kinds[5] = {ROTARY_STREAMS_SECTIONS, ROTARY_STREAMS_INTERLEAVED,
                                              ROTARY_STREAMS_VISION_2D, ROTARY_STREAMS_VISION_2D_PIXTRAL,
                                              ROTARY_STREAMS_MAP};
static rotary_context *g_ctx3;

typedef struct acase {
  rotary_stream_layout kind;
  size_t hd, rd, batch, seq, heads[2], table, gap;
  rotary_pairing pairing;
  rotary_dtype dt;
  rotary_layout layout;
  rotary_direction dir;
  int wide, inplace, scaling;
} acase;

typedef struct arun {
  const acase *ac;
  size_t T, half, n_el[2];
  so_ids ids;
  uint8_t map[SO_MAX_HALF];
  double w[SO_MAX_HALF];
  float *c, *s;          /* T x half: the promised rows */
  unsigned char *in[2];  /* initial inputs */
  unsigned char *out[2]; /* outputs of the table rope, no context */
  unsigned char *work[2];
  oracle_stats st;
} arun;

static size_t elem_index(const acase *ac, size_t h_count, size_t b, size_t s, size_t h, size_t d) {
  if (ac->layout == ROTARY_LAYOUT_BSHD) return ((b * ac->seq + s) * h_count + h) * ac->hd + d;
  return ((b * h_count + h) * ac->seq + s) * ac->hd + d;
}

/* Runs the call on copies of the inputs into r->work (in place: the work buffer is the input). */
static rotary_status call(arun *r, rotary_context *ctx, const rotary_rope *rope) {
  const acase *ac = r->ac;
  const size_t es = tu_dtype_size(ac->dt);
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = ac->batch;
  d.seq_len = ac->seq;
  d.direction = ac->dir;
  d.positions.mode = ac->wide ? ROTARY_POSITIONS_STREAMS_I64 : ROTARY_POSITIONS_STREAMS_I32;
  d.positions.ids = ac->wide ? (const void *)r->ids.ids : (const void *)r->ids.ids32;
  d.positions.n_streams = r->ids.ns;
  d.positions.stream_stride = ac->gap || (r->T & 1) ? r->ids.stride : 0;
  rotary_tensor *t[2] = {&d.q, &d.k};
  for (int i = 0; i < 2; i++) {
    if (!ac->heads[i]) continue;
    memset(r->work[i], 0x5a, r->n_el[i] * es);
    const void *src = r->in[i];
    if (ac->inplace) {
      memcpy(r->work[i], r->in[i], r->n_el[i] * es);
      src = r->work[i];
    }
    assert_int_equal(rotary_tensor_init(t[i], ac->layout, src, r->work[i], ac->dt, ac->seq, ac->heads[i], ac->hd),
                     ROTARY_OK);
  }
  return rotary_apply(ctx, rope, &d);
}

/* Checks tensor i of r->work against the promised rows and the truth. */
static void check_tensor(arun *r, int i) {
  const acase *ac = r->ac;
  const size_t half = r->half;
  const long double sign = ac->dir == ROTARY_INVERSE ? -1.0L : 1.0L;
  long double ct[SO_MAX_HALF], st[SO_MAX_HALF];
  for (size_t t = 0; t < r->T; t++) {
    int64_t id[ROTARY_MAX_STREAMS], top = 0;
    for (size_t j = 0; j < r->ids.ns; j++) {
      id[j] = r->ids.ids[j * r->ids.stride + t];
      top = id[j] > top ? id[j] : top;
    }
    const long double att = 1.0L; /* the rope's attention scaling is 1 in these cases */
    so_true_row(id, r->map, r->w, half, att, ct, st);
    const size_t b = t / ac->seq, s = t % ac->seq;
    for (size_t h = 0; h < ac->heads[i]; h++) {
      const size_t base = elem_index(ac, ac->heads[i], b, s, h, 0);
      for (size_t k = 0; k < half; k++) {
        size_t a, bb;
        oracle_pair_index(ac->pairing, ac->rd, k, &a, &bb);
        const oracle_pair p = {ac->dt, tu_load(ac->dt, r->in[i], (ptrdiff_t)(base + a)),
                               tu_load(ac->dt, r->in[i], (ptrdiff_t)(base + bb)), r->c[t * half + k],
                               (float)sign * r->s[t * half + k], ct[k], sign * st[k], 3.0,
                               (long double)top * 16.0L * DBL_EPSILON};
        oracle_check_pair(&p, tu_load_bits(ac->dt, r->work[i], (ptrdiff_t)(base + a)),
                          tu_load_bits(ac->dt, r->work[i], (ptrdiff_t)(base + bb)), &r->st);
      }
      for (size_t d = ac->rd; d < ac->hd; d++)
        assert_int_equal(tu_load_bits(ac->dt, r->work[i], (ptrdiff_t)(base + d)),
                         tu_load_bits(ac->dt, r->in[i], (ptrdiff_t)(base + d)));
    }
  }
}

static void arun_alloc(arun *r, tu_rng *rng) {
  const acase *ac = r->ac;
  const size_t es = tu_dtype_size(ac->dt);
  r->c = malloc(2 * r->T * r->half * sizeof(float));
  assert_non_null(r->c);
  r->s = r->c + r->T * r->half;
  for (int i = 0; i < 2; i++) {
    r->n_el[i] = r->T * ac->heads[i] * ac->hd;
    r->in[i] = malloc(r->n_el[i] * es + 1);
    r->out[i] = malloc(r->n_el[i] * es + 1);
    r->work[i] = malloc(r->n_el[i] * es + 1);
    assert_true(r->in[i] && r->out[i] && r->work[i]);
    for (size_t e = 0; e < r->n_el[i]; e++) tu_store(ac->dt, r->in[i], (ptrdiff_t)e, tu_rng_f32(rng, -8.0f, 8.0f));
  }
}

static void arun_free(arun *r) {
  for (int i = 0; i < 2; i++) {
    free(r->in[i]);
    free(r->out[i]);
    free(r->work[i]);
  }
  free(r->c);
  so_ids_free(&r->ids);
}

static void run_case(const acase *ac, tu_rng *rng, oracle_stats *all) {
  arun r;
  memset(&r, 0, sizeof r);
  r.ac = ac;
  r.T = ac->batch * ac->seq;
  r.half = ac->rd / 2;
  so_layout l;
  so_random_layout(rng, ac->kind, r.half, &l);
  so_map(&l.streams, r.half, r.map);
  rotary_rope *rt = so_rope(&l, ac->hd, ac->rd, ac->pairing, 1e4, ac->scaling, 1.0, ac->table);
  rotary_rope *rf = so_rope(&l, ac->hd, ac->rd, ac->pairing, 1e4, ac->scaling, 1.0, 0);
  assert_true(rt && rf);
  assert_true(rotary_rope_attention_scaling(rt) == 1.0);
  rotary_rope_inv_freq(rt, r.w);
  assert_int_equal(so_ids_make(&r.ids, rng, rotary_rope_streams(rt), r.T, ac->gap, (int64_t)ac->table), 0);
  arun_alloc(&r, rng);
  assert_int_equal(so_expected_rows(rt, &r.ids, r.map, r.half, r.c, r.s), 0);
  assert_int_equal(call(&r, NULL, rt), ROTARY_OK);
  const size_t es = tu_dtype_size(ac->dt);
  for (int i = 0; i < 2; i++) {
    if (!ac->heads[i]) continue;
    check_tensor(&r, i);
    memcpy(r.out[i], r.work[i], r.n_el[i] * es);
  }
  const rotary_rope *ropes[2] = {rf, rt};
  for (int v = 0; v < 2; v++) { /* table-free without a context, then the table rope on 3 threads */
    assert_int_equal(call(&r, v ? g_ctx3 : NULL, ropes[v]), ROTARY_OK);
    for (int i = 0; i < 2; i++)
      if (ac->heads[i]) assert_memory_equal(r.work[i], r.out[i], r.n_el[i] * es);
  }
  oracle_stats_merge(all, &r.st);
  arun_free(&r);
  rotary_rope_destroy(rt);
  rotary_rope_destroy(rf);
}

/* A random case of the kind: dims 4..264 (vision: multiples of 4), partial rotary_dim half the time. */
static acase random_case(tu_rng *rng, rotary_stream_layout kind, rotary_dtype dt, int variant) {
  acase ac;
  memset(&ac, 0, sizeof ac);
  ac.kind = kind;
  ac.dt = dt;
  static const size_t rds[] = {4, 8, 16, 24, 40, 64, 80, 128, 256};
  ac.rd = rds[tu_rng_below(rng, sizeof rds / sizeof rds[0])];
  ac.hd = ac.rd + (tu_rng_below(rng, 2) ? 0 : 2 * (1 + tu_rng_below(rng, 4)));
  ac.pairing = variant & 1 ? ROTARY_PAIRING_INTERLEAVED : ROTARY_PAIRING_HALF;
  ac.layout = variant & 2 ? ROTARY_LAYOUT_BHSD : ROTARY_LAYOUT_BSHD;
  ac.dir = variant & 4 ? ROTARY_INVERSE : ROTARY_FORWARD;
  ac.batch = 1 + tu_rng_below(rng, 3);
  ac.seq = 1 + tu_rng_below(rng, 9);
  ac.heads[0] = 1 + tu_rng_below(rng, 4);
  ac.heads[1] = tu_rng_below(rng, 3);
  ac.table = 64 + tu_rng_below(rng, 4000);
  ac.gap = tu_rng_below(rng, 3) ? 0 : 1 + tu_rng_below(rng, 4);
  ac.wide = (int)tu_rng_below(rng, 2);
  ac.inplace = (int)tu_rng_below(rng, 2);
  ac.scaling = kind == ROTARY_STREAMS_VISION_2D || kind == ROTARY_STREAMS_VISION_2D_PIXTRAL
                   ? 0
                   : (int)tu_rng_below(rng, 2) * 3; /* none or llama3: attention scaling stays 1 */
  return ac;
}

static void test_apply_streams(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 41);
  static const rotary_dtype dts[3] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  oracle_stats all;
  memset(&all, 0, sizeof all);
  const int variants = tu_quick() ? 3 : 8, reps = tu_quick() ? 1 : 3;
  size_t cases = 0;
  for (int k = 0; k < 5; k++)
    for (int d = 0; d < 3; d++)
      for (int v = 0; v < variants; v++)
        for (int rep = 0; rep < reps; rep++, cases++) {
          const acase ac = random_case(&rng, kinds[k], dts[d], tu_quick() ? (int)tu_rng_below(&rng, 8) : v);
          run_case(&ac, &rng, &all);
        }
  printf("[apply] %zu cases, %zu pairs: %zu outside the bound, %zu against the truth, %zu not the formula's bits "
         "(max bound use %.3f)\n", cases, all.pairs, all.fail_bound, all.fail_true, all.fail_bits, all.max_bound_use);
  assert_true(oracle_stats_ok(&all));
  assert_true(all.pairs > 0);
}

/* A rope of rotary_dim 2048, table-free, interleaved: the row buffer and the gather scratch outgrow the stack. */
static void test_long_rows(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 43);
  for (int k = 0; k < 5; k += 1) {
    acase ac;
    memset(&ac, 0, sizeof ac);
    ac.kind = kinds[k];
    ac.dt = ROTARY_F32;
    ac.rd = ac.hd = 2048;
    ac.batch = 2, ac.seq = 3, ac.heads[0] = 2, ac.heads[1] = 1, ac.table = 100, ac.wide = 1;
    oracle_stats st;
    memset(&st, 0, sizeof st);
    run_case(&ac, &rng, &st);
    assert_true(oracle_stats_ok(&st));
  }
}

/* ---- rotary_kv_write with stream positions: rotary_apply, then a copy into the cache ---- */

/* One write: SEQUENCES cache (NHD, capacity seq + 3), q out of place; q, k, v inputs of dt, cache of cache_dt. */
static void kv_case(tu_rng *rng, rotary_stream_layout kind, rotary_dtype dt, rotary_dtype cache_dt,
                    rotary_context *ctx, size_t table) {
  const size_t B = 2, S = 5, T = B * S, qh = 3, kvh = 2, hd = 72, rd = 64, cap = S + 3;
  so_layout l;
  so_random_layout(rng, kind, rd / 2, &l);
  rotary_rope *rope = so_rope(&l, hd, rd, ROTARY_PAIRING_HALF, 1e4, 0, 1.0, table);
  assert_non_null(rope);
  so_ids ids;
  assert_int_equal(so_ids_make(&ids, rng, rotary_rope_streams(rope), T, 2, table ? (int64_t)table : 1 << 30), 0);
  const size_t ces = tu_dtype_size(cache_dt), nq = T * qh * hd, nk = T * kvh * hd;
  const size_t nc = B * cap * kvh * hd;
  unsigned char *mem = calloc(1, 3 * nq * 4 + 3 * nk * 4 + 4 * nc * 4 + 2 * nq * 4);
  assert_non_null(mem);
  unsigned char *qin = mem, *kin = qin + nq * 4, *vin = kin + nk * 4, *qout = vin + nk * 4, *kc = qout + nq * 4;
  unsigned char *vc = kc + nc * 4, *kexp = vc + nc * 4, *vexp = kexp + nc * 4;
  float *kf = (float *)(void *)(vexp + nc * 4), *kref = kf + nk, *qref = kref + nk;
  for (size_t e = 0; e < nq; e++) tu_store(dt, qin, (ptrdiff_t)e, tu_rng_f32(rng, -4.0f, 4.0f));
  for (size_t e = 0; e < nk; e++) {
    tu_store(dt, kin, (ptrdiff_t)e, tu_rng_f32(rng, -4.0f, 4.0f));
    tu_store(dt, vin, (ptrdiff_t)e, tu_rng_f32(rng, -4.0f, 4.0f));
    kf[e] = tu_load(dt, kin, (ptrdiff_t)e); /* exact */
  }
  tu_canary_fill(kc, nc * ces, 5);
  tu_canary_fill(vc, nc * ces, 6);
  memcpy(kexp, kc, nc * ces);
  memcpy(vexp, vc, nc * ces);
  int64_t lengths[2] = {(int64_t)tu_rng_below(rng, 4), (int64_t)tu_rng_below(rng, 4)};
  rotary_positions pos = {.mode = ROTARY_POSITIONS_STREAMS_I64, .ids = ids.ids, .n_streams = ids.ns,
                          .stream_stride = ids.stride};
  /* the reference: rotary_apply of q (dt) and k (f32, exact), then k rounded once and v converted once */
  rotary_apply_desc a;
  rotary_apply_desc_init(&a);
  a.batch = B, a.seq_len = S, a.positions = pos;
  assert_int_equal(rotary_tensor_init(&a.q, ROTARY_LAYOUT_BSHD, qin, qref, dt, S, qh, hd), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&a.k, ROTARY_LAYOUT_BSHD, kf, kref, ROTARY_F32, S, kvh, hd), ROTARY_OK);
  assert_int_equal(rotary_apply(NULL, rope, &a), ROTARY_OK);
  for (size_t t = 0; t < T; t++)
    for (size_t e = 0; e < kvh * hd; e++) {
      const size_t slot = (t / S) * cap + (size_t)lengths[t / S] + t % S, at = slot * kvh * hd + e;
      tu_store(cache_dt, kexp, (ptrdiff_t)at, kref[t * kvh * hd + e]);
      tu_store(cache_dt, vexp, (ptrdiff_t)at, tu_load(dt, vin, (ptrdiff_t)(t * kvh * hd + e)));
    }
  rotary_kv_write_desc d;
  rotary_kv_write_desc_init(&d);
  d.batch = B, d.seq_len = S, d.positions = pos;
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, qin, qout, dt, S, qh, hd), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, kin, NULL, dt, S, kvh, hd), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.v, ROTARY_LAYOUT_BSHD, vin, NULL, dt, S, kvh, hd), ROTARY_OK);
  d.cache.index = ROTARY_CACHE_SEQUENCES;
  d.cache.layout = ROTARY_CACHE_NHD;
  d.cache.dtype = cache_dt;
  d.cache.k = kc, d.cache.v = vc;
  d.cache.num_blocks = B, d.cache.block_size = cap;
  d.cache.lengths = lengths;
  assert_int_equal(rotary_kv_write(ctx, rope, &d), ROTARY_OK);
  for (size_t e = 0; e < nq; e++) /* q: rotary_apply's output in dt */
    assert_int_equal(tu_load_bits(dt, qout, (ptrdiff_t)e), tu_load_bits(dt, qref, (ptrdiff_t)e));
  assert_memory_equal(kc, kexp, nc * ces);
  assert_memory_equal(vc, vexp, nc * ces);
  free(mem);
  so_ids_free(&ids);
  rotary_rope_destroy(rope);
}

static void test_kv_write_streams(void **state) {
  (void)state;
  tu_rng rng;
  tu_rng_seed(&rng, 47);
  static const rotary_dtype dts[3] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  for (int k = 0; k < 5; k++)
    for (int d = 0; d < 3; d++)
      for (int c = 0; c < 3; c++) {
        kv_case(&rng, kinds[k], dts[d], dts[c], (d + c) % 2 ? g_ctx3 : NULL, 4096);
        if (!tu_quick()) kv_case(&rng, kinds[k], dts[d], dts[c], NULL, 0);
      }
}

static int setup(void **state) {
  (void)state;
  return rotary_context_create(3, &g_ctx3) == ROTARY_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rotary_context_destroy(g_ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_streams),
      cmocka_unit_test(test_long_rows),
      cmocka_unit_test(test_kv_write_streams),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
