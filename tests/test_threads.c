/* test_threads.c: results are bit-identical for every thread count, and ropes and contexts are safe to share. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context.h"
#include "kv_validate.h"
#include "kv_write_plan.h"
#include "rotary.h"
#include "rotate_plan.h"
#include "tuning.h"

/* One call's shape. seq is shrunk under ROTARY_TEST_QUICK. */
typedef struct shape {
  const char *name;
  rotary_dtype dtype;
  rotary_pairing pairing;
  size_t batch, seq, hq, hk, head_dim, rotary_dim;
  rotary_position_mode mode;
  size_t max_positions; /* 0: table-free */
  rotary_layout layout;
  rotary_direction direction;
  int in_place;
} shape;

static const shape shapes[] = {
    {"prefill f32 B1 S2048 H32/8 D128", ROTARY_F32, ROTARY_PAIRING_HALF, 1, 2048, 32, 8, 128, 128,
     ROTARY_POSITIONS_OFFSET, 4096, ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 0},
    {"decode f32 64x1 ids H32/8 D128", ROTARY_F32, ROTARY_PAIRING_INTERLEAVED, 64, 1, 32, 8, 128, 128,
     ROTARY_POSITIONS_IDS_I64, 4096, ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 0},
    {"bf16 half in place offsets rot 32/64", ROTARY_BF16, ROTARY_PAIRING_HALF, 4, 64, 8, 2, 64, 32,
     ROTARY_POSITIONS_OFFSETS, 1024, ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 1},
    {"bf16 interleaved out of place H71", ROTARY_BF16, ROTARY_PAIRING_INTERLEAVED, 3, 17, 71, 71, 64, 64,
     ROTARY_POSITIONS_IDS_I32, 1024, ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 0},
    {"f16 interleaved table-free BHSD inverse D80", ROTARY_F16, ROTARY_PAIRING_INTERLEAVED, 2, 100, 12, 4, 80, 80,
     ROTARY_POSITIONS_OFFSET, 0, ROTARY_LAYOUT_BHSD, ROTARY_INVERSE, 0},
    {"f16 half in place int32 ids H7/1", ROTARY_F16, ROTARY_PAIRING_HALF, 1, 333, 7, 1, 128, 96,
     ROTARY_POSITIONS_IDS_I32, 2048, ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 1},
    {"f32 interleaved in place table-free", ROTARY_F32, ROTARY_PAIRING_INTERLEAVED, 2, 256, 16, 16, 128, 128,
     ROTARY_POSITIONS_OFFSET, 0, ROTARY_LAYOUT_BHSD, ROTARY_FORWARD, 1},
};
enum { N_SHAPES = sizeof(shapes) / sizeof(shapes[0]) };

static int quick;

/* xorshift64*: deterministic test data. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static size_t dtype_size(rotary_dtype t) { return t == ROTARY_F32 ? 4 : 2; }

/* Finite values of moderate size in any dtype; never the all-ones "not written" pattern. */
static void fill_finite(void *buf, size_t n, rotary_dtype t, uint64_t *seed) {
  for (size_t i = 0; i < n; i++) {
    uint64_t r = rng_next(seed);
    if (t == ROTARY_F32) {
      float v = (float)((int64_t)(r >> 40) - (1 << 23)) / (float)(1 << 20);
      memcpy((char *)buf + 4 * i, &v, 4);
    } else {
      uint16_t u = (uint16_t)(r >> 48);
      if (t == ROTARY_F16) u = (uint16_t)((u & 0x83ffu) | ((r % 30) << 10));
      else u = (uint16_t)((u & 0x807fu) | ((112 + r % 24) << 7));
      memcpy((char *)buf + 2 * i, &u, 2);
    }
  }
}

/* Everything one shape needs: rope, inputs, positions, and the ctx NULL out-of-place reference. */
typedef struct problem {
  const shape *sh;
  size_t seq, nq, nk, esize;
  rotary_rope *rope;
  void *q_in, *k_in, *q_ref, *k_ref;
  int64_t *offsets, *ids64;
  int32_t *ids32;
} problem;

/* A descriptor rotating p's inputs into q_out/k_out (pass the inputs themselves for in place). Asserts nothing,
 * so that application threads may call it: returns a nonzero status when a tensor_init failed. */
static rotary_status problem_desc(const problem *p, rotary_apply_desc *d, const void *q_in, void *q_out,
                                  const void *k_in, void *k_out) {
  const shape *sh = p->sh;
  rotary_apply_desc_init(d);
  d->batch = sh->batch;
  d->seq_len = p->seq;
  d->direction = sh->direction;
  d->positions.mode = sh->mode;
  d->positions.offset = sh->max_positions ? 0 : 123456789;
  d->positions.offsets = p->offsets;
  d->positions.ids = sh->mode == ROTARY_POSITIONS_IDS_I32 ? (const void *)p->ids32 : (const void *)p->ids64;
  rotary_status a = rotary_tensor_init(&d->q, sh->layout, q_in, q_out, sh->dtype, p->seq, sh->hq, sh->head_dim);
  rotary_status b = rotary_tensor_init(&d->k, sh->layout, k_in, k_out, sh->dtype, p->seq, sh->hk, sh->head_dim);
  return a != ROTARY_OK ? a : b;
}

static void make_positions(problem *p, uint64_t *seed) {
  size_t tokens = p->sh->batch * p->seq, lim = p->sh->max_positions ? p->sh->max_positions : ((size_t)1 << 40);
  p->offsets = malloc(p->sh->batch * sizeof(int64_t));
  p->ids64 = malloc(tokens * sizeof(int64_t));
  p->ids32 = malloc(tokens * sizeof(int32_t));
  assert_true(p->offsets && p->ids64 && p->ids32);
  for (size_t b = 0; b < p->sh->batch; b++) p->offsets[b] = (int64_t)(rng_next(seed) % (lim - p->seq + 1));
  for (size_t t = 0; t < tokens; t++) {
    p->ids64[t] = (int64_t)(rng_next(seed) % lim);
    p->ids32[t] = (int32_t)(rng_next(seed) % (lim < INT32_MAX ? lim : INT32_MAX));
  }
}

/* Every element written (no all-ones pattern left) and some rotated element changed. */
static void check_reference(const problem *p, const void *out, const void *in, size_t n) {
  const unsigned char *o = out;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < p->esize && o[i * p->esize + j] == 0xff) j++;
    if (j == p->esize) fail_msg("%s: element %zu of the reference was not written", p->sh->name, i);
  }
  assert_memory_not_equal(out, in, n * p->esize);
}

static void problem_init(problem *p, const shape *sh, uint64_t seed) {
  memset(p, 0, sizeof(*p));
  p->sh = sh;
  p->seq = quick && sh->seq > 64 ? sh->seq / 16 : sh->seq;
  p->esize = dtype_size(sh->dtype);
  size_t tokens = sh->batch * p->seq;
  p->nq = tokens * sh->hq * sh->head_dim, p->nk = tokens * sh->hk * sh->head_dim;
  rotary_config c;
  rotary_config_init(&c, sh->head_dim);
  c.rotary_dim = sh->rotary_dim, c.pairing = sh->pairing;
  assert_int_equal(rotary_rope_create(&c, sh->max_positions, &p->rope), ROTARY_OK);
  p->q_in = malloc(p->nq * p->esize), p->k_in = malloc(p->nk * p->esize);
  p->q_ref = malloc(p->nq * p->esize), p->k_ref = malloc(p->nk * p->esize);
  assert_true(p->q_in && p->k_in && p->q_ref && p->k_ref);
  fill_finite(p->q_in, p->nq, sh->dtype, &seed);
  fill_finite(p->k_in, p->nk, sh->dtype, &seed);
  make_positions(p, &seed);
  memset(p->q_ref, 0xff, p->nq * p->esize), memset(p->k_ref, 0xff, p->nk * p->esize);
  rotary_apply_desc d;
  assert_int_equal(problem_desc(p, &d, p->q_in, p->q_ref, p->k_in, p->k_ref), ROTARY_OK);
  assert_int_equal(rotary_apply(NULL, p->rope, &d), ROTARY_OK);
  check_reference(p, p->q_ref, p->q_in, p->nq);
  check_reference(p, p->k_ref, p->k_in, p->nk);
}

static void problem_free(problem *p) {
  rotary_rope_destroy(p->rope);
  free(p->q_in), free(p->k_in), free(p->q_ref), free(p->k_ref);
  free(p->offsets), free(p->ids64), free(p->ids32);
}

/* One run of p on ctx into fresh buffers (copies of the input when in place); 0 when bit-identical to the
 * reference. Uses no cmocka assertion, so that application threads may call it. */
static int problem_run(const problem *p, rotary_context *ctx, int in_place) {
  size_t qb = p->nq * p->esize, kb = p->nk * p->esize;
  unsigned char *q = malloc(qb), *k = malloc(kb);
  if (!q || !k) return free(q), free(k), -1;
  rotary_apply_desc d;
  rotary_status st;
  if (in_place) {
    memcpy(q, p->q_in, qb), memcpy(k, p->k_in, kb);
    st = problem_desc(p, &d, q, q, k, k);
  } else {
    memset(q, 0xff, qb), memset(k, 0xff, kb);
    st = problem_desc(p, &d, p->q_in, q, p->k_in, k);
  }
  if (st == ROTARY_OK) st = rotary_apply(ctx, p->rope, &d);
  int bad = st != ROTARY_OK ? -2 : (memcmp(q, p->q_ref, qb) != 0) + 2 * (memcmp(k, p->k_ref, kb) != 0);
  free(q), free(k);
  return bad;
}

static rotary_context *ctxs[5]; /* NULL, then 1, 2, 3 and 8 threads */
static const size_t ctx_threads[5] = {0, 1, 2, 3, 8};

static int group_setup(void **state) {
  (void)state;
  quick = getenv("ROTARY_TEST_QUICK") != NULL;
  for (int i = 1; i < 5; i++)
    if (rotary_context_create(ctx_threads[i], &ctxs[i]) != ROTARY_OK) return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 1; i < 5; i++) rotary_context_destroy(ctxs[i]);
  return 0;
}

static void test_bit_identical_across_thread_counts(void **state) {
  (void)state;
  for (int s = 0; s < N_SHAPES; s++) {
    problem p;
    problem_init(&p, &shapes[s], 0x9e3779b97f4a7c15ull + (uint64_t)s);
    for (int c = 0; c < 5; c++) {
      int bad = problem_run(&p, ctxs[c], shapes[s].in_place);
      if (bad) fail_msg("%s, %zu threads (0: ctx NULL): result %d", shapes[s].name, ctx_threads[c], bad);
      if (c == 4 && (bad = problem_run(&p, ctxs[c], !shapes[s].in_place)) != 0)
        fail_msg("%s, %s, 8 threads: result %d", shapes[s].name, shapes[s].in_place ? "out of place" : "in place",
                 bad);
    }
    problem_free(&p);
  }
}

static void test_thread_counts(void **state) {
  (void)state;
  size_t cpus = rotary_cpu_count();
  long online = sysconf(_SC_NPROCESSORS_ONLN), conf = sysconf(_SC_NPROCESSORS_CONF);
  assert_true(cpus >= 1);
  assert_true(cpus <= (size_t)(online > conf ? online : conf) || online < 1);
  for (int i = 1; i < 5; i++) assert_int_equal(rotary_context_threads(ctxs[i]), ctx_threads[i]);
  rotary_context *c = NULL;
  assert_int_equal(rotary_context_create(0, &c), ROTARY_OK);
  assert_int_equal(rotary_context_threads(c), cpus);
  assert_int_equal(rotary_context_set_threads(c, 5), ROTARY_OK);
  assert_int_equal(rotary_context_threads(c), 5);
  assert_int_equal(rotary_context_set_threads(c, 1), ROTARY_OK);
  assert_int_equal(rotary_context_threads(c), 1);
  if (!quick) { /* valgrind, which runs the quick mode, allows 500 threads */
    assert_int_equal(rotary_context_set_threads(c, 1024), ROTARY_OK);
    assert_int_equal(rotary_context_threads(c), 1024);
  }
  assert_int_equal(rotary_context_set_threads(c, 0), ROTARY_OK);
  assert_int_equal(rotary_context_threads(c), cpus);
  rotary_context_destroy(c);
}

/* The small shape used by the loops and the concurrency tests. */
static const shape small_shapes[] = {
    {"small f32 half", ROTARY_F32, ROTARY_PAIRING_HALF, 2, 32, 8, 2, 64, 64, ROTARY_POSITIONS_OFFSET, 256,
     ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 0},
    {"small bf16 interleaved ids", ROTARY_BF16, ROTARY_PAIRING_INTERLEAVED, 3, 16, 4, 4, 64, 48,
     ROTARY_POSITIONS_IDS_I64, 256, ROTARY_LAYOUT_BHSD, ROTARY_INVERSE, 1},
    {"small f16 half table-free", ROTARY_F16, ROTARY_PAIRING_HALF, 2, 24, 6, 3, 32, 32, ROTARY_POSITIONS_OFFSETS, 0,
     ROTARY_LAYOUT_BSHD, ROTARY_FORWARD, 0},
};
enum { N_SMALL = sizeof(small_shapes) / sizeof(small_shapes[0]) };

/* Create and destroy many contexts of every size; every tenth one runs a call first. */
static void test_create_destroy_loop(void **state) {
  (void)state;
  problem p;
  problem_init(&p, &small_shapes[0], 42);
  int rounds = quick ? 20 : 200;
  for (int i = 0; i < rounds; i++) {
    rotary_context *c = NULL;
    assert_int_equal(rotary_context_create((size_t)(1 + i % 8), &c), ROTARY_OK);
    if (i % 10 == 0) assert_int_equal(problem_run(&p, c, 0), 0);
    rotary_context_destroy(c);
  }
  problem_free(&p);
}

/* One context whose thread count goes up and down between calls. */
static void test_set_threads_loop(void **state) {
  (void)state;
  problem p;
  problem_init(&p, &small_shapes[1], 43);
  rotary_context *c = NULL;
  assert_int_equal(rotary_context_create(2, &c), ROTARY_OK);
  static const size_t counts[] = {1, 8, 3, 0, 2, 7, 1, 4, 16, 5};
  int rounds = quick ? 10 : 50;
  for (int i = 0; i < rounds; i++) {
    assert_int_equal(rotary_context_set_threads(c, counts[i % 10]), ROTARY_OK);
    assert_int_equal(problem_run(&p, c, i % 2), 0);
  }
  rotary_context_destroy(c);
  problem_free(&p);
}

/* ---- application threads ---- */

enum { N_APP = 4 };

typedef struct app_job {
  const problem *problems; /* N_SMALL shared problems: ropes and inputs are only read */
  rotary_context *shared;  /* the context to use, or NULL to use its own (or none) */
  int own_context;         /* 1: create its own context of 2 threads in the thread */
  int index, rounds;
  pthread_barrier_t *start;
  int failures; /* written by this thread only, read after join */
} app_job;

static void *app_main(void *arg) {
  app_job *job = arg;
  rotary_context *ctx = job->shared;
  if (job->own_context && rotary_context_create(2, &ctx) != ROTARY_OK) {
    job->failures++;
    ctx = NULL;
  }
  pthread_barrier_wait(job->start);
  for (int r = 0; r < job->rounds; r++) {
    const problem *p = &job->problems[(job->index + r) % N_SMALL];
    if (problem_run(p, ctx, (job->index + r) % 2) != 0) job->failures++;
  }
  if (job->own_context) rotary_context_destroy(ctx);
  return NULL;
}

static void run_app_threads(rotary_context *shared, int own_context) {
  problem ps[N_SMALL];
  for (int i = 0; i < N_SMALL; i++) problem_init(&ps[i], &small_shapes[i], 100 + (uint64_t)i);
  pthread_barrier_t start;
  assert_int_equal(pthread_barrier_init(&start, NULL, N_APP), 0);
  pthread_t tid[N_APP];
  app_job jobs[N_APP];
  for (int i = 0; i < N_APP; i++) {
    jobs[i] = (app_job){ps, shared, own_context, i, quick ? 4 : 30, &start, 0};
    assert_int_equal(pthread_create(&tid[i], NULL, app_main, &jobs[i]), 0);
  }
  for (int i = 0; i < N_APP; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);
  pthread_barrier_destroy(&start);
  for (int i = 0; i < N_APP; i++)
    if (jobs[i].failures) fail_msg("application thread %d: %d mismatching calls", i, jobs[i].failures);
  for (int i = 0; i < N_SMALL; i++) problem_free(&ps[i]);
}

static void test_app_threads_own_contexts(void **state) {
  (void)state;
  run_app_threads(NULL, 1);
}

static void test_app_threads_shared_context(void **state) {
  (void)state;
  rotary_context *c = NULL;
  assert_int_equal(rotary_context_create(4, &c), ROTARY_OK);
  run_app_threads(c, 0);
  rotary_context_destroy(c);
}

static void test_app_threads_no_context(void **state) {
  (void)state;
  run_app_threads(NULL, 0);
}

/* A context's settings (tuning.h) start as the process defaults and change speed only: every prefetch distance,
 * non-temporal threshold, thread split and head group gives the reference's bits, and a threshold of 0 makes the
 * plan store non-temporally wherever the chosen kernel has that variant. */
static void test_context_settings(void **state) {
  (void)state;
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(3, &ctx), ROTARY_OK);
  const rotary_tuning *def = rotary_tuning_defaults();
  assert_ptr_equal(rotary_context_tuning(NULL), def);
  assert_int_equal(rotary_context_tuning(ctx)->prefetch_bytes, def->prefetch_bytes);
  assert_true(rotary_context_tuning(ctx)->nt_min_bytes == def->nt_min_bytes);
  /* prefetch, stream stores, thread bytes, tasks per thread, head group; the rest as the defaults */
  static const int64_t values[][ROTARY_SETTING_COUNT] = {
      {-1, 0, 4096, 1, 1}, {0, 0, 65536, 4, 8}, {4096, 0, 1 << 30, 64, 64}, {512, -1, 16384, 3, 5}};
  rotary_tuning variants[sizeof values / sizeof values[0]];
  for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
    variants[v] = *def;
    for (int i = 0; i < ROTARY_SETTING_COUNT; i++)
      rotary_tuning_put(&variants[v], (rotary_setting)i, values[v][i], ROTARY_SOURCE_SET);
  }
  for (int s = 0; s < N_SHAPES; s++) {
    problem p;
    problem_init(&p, &shapes[s], 0x5eedull + (uint64_t)s);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
      rotary_context_set_tuning(ctx, &variants[v]);
      assert_int_equal(rotary_context_tuning(ctx)->prefetch_bytes, variants[v].prefetch_bytes);
      for (int in_place = 0; in_place < 2; in_place++) {
        int bad = problem_run(&p, ctx, in_place);
        if (bad) fail_msg("%s, settings %zu, in place %d: result %d", shapes[s].name, v, in_place, bad);
      }
    }
    /* the plan of an out-of-place call under a zero threshold */
    unsigned char *q = malloc(p.nq * p.esize), *k = malloc(p.nk * p.esize);
    assert_true(q && k);
    rotary_apply_desc d;
    assert_int_equal(problem_desc(&p, &d, p.q_in, q, p.k_in, k), ROTARY_OK);
    rotary_rotate_plan plan;
    assert_int_equal(rotary_rotate_plan_build(&plan, p.rope, &d, &variants[0]), ROTARY_OK);
    const rotary_kernel *nt = rotary_kernel_select_nt(shapes[s].dtype, shapes[s].pairing);
    assert_int_equal(plan.nontemporal[0], nt != NULL);
    assert_ptr_equal(plan.kernel[0], nt ? nt : rotary_kernel_select(shapes[s].dtype, shapes[s].pairing));
    assert_int_equal(rotary_rotate_plan_build(&plan, p.rope, &d, &variants[3]), ROTARY_OK);
    assert_int_equal(plan.nontemporal[0] | plan.nontemporal[1], 0);
    free(q), free(k);
    problem_free(&p);
  }
  rotary_context_set_tuning(ctx, def);
  rotary_context_destroy(ctx);
}

/* The kernels' prefetch distance per tensor (rotate_plan.h): the setting for rows that follow one another, one
 * token's step for q and k as views into packed QKV rows spanning 8 MiB or more (in place, out of place into the
 * same strides, or into other strides with non-temporal stores), the setting again for a shorter span or when an
 * ordinary store's output step differs, none when the setting is off or the walk is grouped. Plans only: the
 * buffer is never read. */
static void test_plan_prefetch(void **state) {
  (void)state;
  enum { B = 2, S = 4096, HQ = 4, HK = 2, D = 128, ROW = (HQ + 2 * HK) * D };
  rotary_config cfg;
  rotary_config_init(&cfg, D);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, S, &rope), ROTARY_OK);
  uint16_t *qkv = calloc(2 * (size_t)B * S * ROW, sizeof *qkv), *other = qkv + (size_t)B * S * ROW;
  assert_non_null(qkv);
  rotary_tuning tuning[3];
  const int64_t distance[3] = {0, 512, -1};
  for (int i = 0; i < 3; i++) { /* ordinary stores whatever ROTARY_STREAM_STORES says (CI sets it to 0) */
    tuning[i] = *rotary_tuning_defaults();
    rotary_tuning_put(&tuning[i], ROTARY_SETTING_PREFETCH_BYTES, distance[i], ROTARY_SOURCE_SET);
    rotary_tuning_put(&tuning[i], ROTARY_SETTING_STREAM_STORE_BYTES, -1, ROTARY_SOURCE_SET);
  }
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = B;
  d.seq_len = S; /* 8192 tokens of 2 KiB rows: 16 MiB */
  const ptrdiff_t sb = (ptrdiff_t)S * ROW;
  d.q = (rotary_tensor){qkv, qkv, ROTARY_BF16, HQ, sb, ROW, D, sb, ROW, D};
  d.k = (rotary_tensor){qkv + HQ * D, qkv + HQ * D, ROTARY_BF16, HK, sb, ROW, D, sb, ROW, D};
  rotary_rotate_plan plan;
  const int step = ROW * 2;
  const int packed_want[3] = {step, step, -1};
  for (int t = 0; t < 3; t++) {
    assert_int_equal(rotary_rotate_plan_build(&plan, rope, &d, &tuning[t]), ROTARY_OK);
    assert_int_equal(plan.group[0], 0);
    assert_int_equal(plan.prefetch[0], packed_want[t]);
    assert_int_equal(plan.prefetch[1], packed_want[t]);
  }
  /* the same rows over 4095 tokens (8 MiB less 2 KiB): short of the span, the setting; 4096 tokens: the step */
  rotary_apply_desc few = d;
  few.batch = 1;
  few.seq_len = 4095;
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &few, &tuning[1]), ROTARY_OK);
  assert_int_equal(plan.prefetch[0], 512);
  assert_int_equal(plan.prefetch[1], 512);
  few.seq_len = 4096;
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &few, &tuning[1]), ROTARY_OK);
  assert_int_equal(plan.prefetch[0], step);
  assert_int_equal(plan.prefetch[1], step);
  /* decode: one token per sequence, the next token is the next sequence's */
  rotary_apply_desc dec = d;
  dec.batch = B * S;
  dec.seq_len = 1;
  dec.q.stride_batch = dec.q.out_stride_batch = dec.k.stride_batch = dec.k.out_stride_batch = ROW;
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &dec, &tuning[0]), ROTARY_OK);
  assert_int_equal(plan.prefetch[0], step);
  assert_int_equal(plan.prefetch[1], step);
  /* out of place into the same strides of another buffer: the same; into packed q rows: the setting */
  rotary_apply_desc out = d;
  out.q.out = other;
  out.k.out = other + HQ * D;
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &out, &tuning[1]), ROTARY_OK);
  assert_int_equal(plan.prefetch[0], step);
  assert_int_equal(plan.prefetch[1], step);
  out.q.out_stride_seq = HQ * D;
  out.q.out_stride_batch = (ptrdiff_t)S * HQ * D;
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &out, &tuning[1]), ROTARY_OK);
  assert_int_equal(plan.prefetch[0], 512);
  assert_int_equal(plan.prefetch[1], step);
  /* ... unless its stores are non-temporal (they prefetch no output): stream_store_bytes 0 */
  rotary_tuning streaming = tuning[1];
  rotary_tuning_put(&streaming, ROTARY_SETTING_STREAM_STORE_BYTES, 0, ROTARY_SOURCE_SET);
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &out, &streaming), ROTARY_OK);
  assert_int_equal(plan.nontemporal[0], rotary_kernel_select_nt(ROTARY_BF16, ROTARY_PAIRING_HALF) != NULL);
  assert_int_equal(plan.prefetch[0], plan.nontemporal[0] ? step : 512);
  /* q and k contiguous tensors (BSHD): their rows follow one another */
  rotary_apply_desc dense = d;
  assert_int_equal(rotary_tensor_init(&dense.q, ROTARY_LAYOUT_BSHD, qkv, qkv, ROTARY_BF16, S, HQ, D), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&dense.k, ROTARY_LAYOUT_BSHD, other, other, ROTARY_BF16, S, HK, D),
                   ROTARY_OK);
  for (int t = 0; t < 3; t++) {
    assert_int_equal(rotary_rotate_plan_build(&plan, rope, &dense, &tuning[t]), ROTARY_OK);
    assert_int_equal(plan.prefetch[0], (int)distance[t]);
    assert_int_equal(plan.prefetch[1], (int)distance[t]);
  }
  /* heads-major (BHSD, heads far apart): the grouped walk, no software prefetch */
  assert_int_equal(rotary_tensor_init(&dense.q, ROTARY_LAYOUT_BHSD, qkv, qkv, ROTARY_BF16, S, HQ, D), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&dense.k, ROTARY_LAYOUT_BHSD, other, other, ROTARY_BF16, S, HK, D),
                   ROTARY_OK);
  assert_int_equal(rotary_rotate_plan_build(&plan, rope, &dense, &tuning[1]), ROTARY_OK);
  assert_true(plan.group[0] > 0);
  assert_int_equal(plan.prefetch[0], -1);
  assert_int_equal(plan.prefetch[1], -1);
  /* heads-major with a table-free rope: the together walk (rows are computed), but a token's rows interleave with
   * the next token's, so no token step: the setting */
  rotary_rope *free_rope;
  assert_int_equal(rotary_rope_create(&cfg, 0, &free_rope), ROTARY_OK);
  assert_int_equal(rotary_rotate_plan_build(&plan, free_rope, &dense, &tuning[1]), ROTARY_OK);
  assert_int_equal(plan.group[0], 0);
  assert_int_equal(plan.prefetch[0], 512);
  assert_int_equal(plan.prefetch[1], 512);
  rotary_rope_destroy(free_rope);
  free(qkv);
  rotary_rope_destroy(rope);
}

/* rotary_kv_write's cache rows stream (v through the streaming copy, k through its dtype's _nt kernel) exactly when
 * the call moves stream_store_bytes or more, and never with the setting off. Plans only. */
static void test_kv_plan_streams(void **state) {
  (void)state;
  enum { S = 64, HQ = 4, HK = 2, D = 128 };
  rotary_config cfg;
  rotary_config_init(&cfg, D);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&cfg, S, &rope), ROTARY_OK);
  uint16_t *qkv = calloc((size_t)S * (HQ + 2 * HK) * D, sizeof *qkv), *kc = calloc(2 * (size_t)S * HK * D, 2);
  assert_true(qkv && kc);
  int64_t length = 0;
  rotary_kv_write_desc w;
  rotary_kv_write_desc_init(&w);
  w.batch = 1;
  w.seq_len = S;
  assert_int_equal(rotary_kv_write_desc_set_qkv(&w, qkv, NULL, ROTARY_BF16, HQ, HK, D, 0), ROTARY_OK);
  w.cache.dtype = ROTARY_BF16;
  w.cache.k = kc;
  w.cache.v = kc + (size_t)S * HK * D;
  w.cache.num_blocks = 1;
  w.cache.block_size = S;
  w.cache.lengths = &length;
  w.cache.k_scale = w.cache.v_scale = 1.0f;
  rotary_cache_geom geom;
  assert_int_equal(rotary_validate_kv_write(rope, &w, &geom, 0), ROTARY_OK);
  /* bytes moved: q read and written, k and v read and written to the cache, all bf16 */
  const int64_t moved = (int64_t)S * D * 2 * (2 * HQ + 4 * HK);
  const rotary_kernel *nt = rotary_kernel_select_nt(ROTARY_BF16, ROTARY_PAIRING_HALF);
  const int64_t thresholds[4] = {moved, moved + 1, 0, -1};
  for (int i = 0; i < 4; i++) {
    rotary_tuning t = *rotary_tuning_defaults();
    rotary_tuning_put(&t, ROTARY_SETTING_STREAM_STORE_BYTES, thresholds[i], ROTARY_SOURCE_SET);
    rotary_kv_write_plan p;
    rotary_kv_write_plan_build(&p, rope, &w, &geom, &t, 1);
    const int streams = thresholds[i] >= 0 && thresholds[i] <= moved;
    assert_int_equal(p.v_copy != NULL, streams);
    assert_int_equal(p.streams, streams); /* its tasks fence once at their end (kernels.h, rotary_stream_fence) */
    if (streams) assert_ptr_equal(p.v_copy, rotary_copy_nt_select()->fn);
    assert_ptr_equal(p.k.kernel, streams && nt ? nt : rotary_kernel_select(ROTARY_BF16, ROTARY_PAIRING_HALF));
  }
  free(qkv), free(kc);
  rotary_rope_destroy(rope);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thread_counts),
      cmocka_unit_test(test_bit_identical_across_thread_counts),
      cmocka_unit_test(test_context_settings),
      cmocka_unit_test(test_plan_prefetch),
      cmocka_unit_test(test_kv_plan_streams),
      cmocka_unit_test(test_create_destroy_loop),
      cmocka_unit_test(test_set_threads_loop),
      cmocka_unit_test(test_app_threads_own_contexts),
      cmocka_unit_test(test_app_threads_shared_context),
      cmocka_unit_test(test_app_threads_no_context),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
