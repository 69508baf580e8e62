/* test_apply.c: rotary_apply swept over shapes, heads, dtypes, layouts and position modes against the oracle. */
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

#include "apply_case.h"
#include "oracle.h"
#include "rotary.h"
#include "test_util.h"

static rotary_context *g_ctx; /* 3 threads: every case is repeated on it and must give the same bits */
static tu_astats g_total;

static float random_value(tu_rng *r, rotary_dtype dt) {
  if (tu_rng_below(r, 4) != 0) return tu_rng_f32(r, -2.0f, 2.0f);
  return dt == ROTARY_F16 ? tu_rng_f32_wide(r, -20, 3) : tu_rng_f32_wide(r, -30, 30);
}

static rotary_rope *make_rope(size_t head_dim, size_t rotary_dim, rotary_pairing pairing, size_t max_positions) {
  rotary_config cfg;
  rotary_config_init(&cfg, head_dim);
  cfg.rotary_dim = rotary_dim;
  cfg.pairing = pairing;
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&cfg, max_positions, &rope), ROTARY_OK);
  return rope;
}

/* Prints, folds into the program total and fails the test on any failure. */
static void finish(const char *what, const tu_astats *as) {
  tu_astats_print(what, as);
  tu_astats_merge(&g_total, as);
  assert_true(as->cases > 0);
  assert_true(tu_astats_ok(as));
}

/* ---- case builders ---- */

static const rotary_dtype dtype_pairs[9][2] = {
    {ROTARY_F32, ROTARY_F32},  {ROTARY_F16, ROTARY_F16}, {ROTARY_BF16, ROTARY_BF16},
    {ROTARY_F32, ROTARY_F16},  {ROTARY_F16, ROTARY_BF16}, {ROTARY_BF16, ROTARY_F32},
    {ROTARY_F32, ROTARY_BF16}, {ROTARY_F16, ROTARY_F32},  {ROTARY_BF16, ROTARY_F16}};

/* The table length of the cases that need no particular one: 4096 positions (quick mode: 256). Building a rope's
 * table (fp64 angles, rounded once) costs about 0.15 ms a position under valgrind, which runs the quick mode: 4096
 * made this program 80 s there. The table path is the same for any length; the release run keeps 4096. */
static size_t table_len(void) { return tu_quick() ? 256 : 4096; }

static tu_acase base_case(size_t hd, size_t rd, size_t qh, size_t kh, size_t batch, size_t seq) {
  tu_acase ac;
  memset(&ac, 0, sizeof ac);
  ac.head_dim = hd;
  ac.rotary_dim = rd;
  ac.base = 10000.0;
  ac.scaling = 1.0;
  ac.max_positions = table_len();
  ac.batch = batch;
  ac.seq = seq;
  ac.q.n_heads = qh;
  ac.k.n_heads = kh;
  ac.q.dt = ac.k.dt = ROTARY_F32;
  ac.k.side = TU_GUARD_START;
  ac.seed = 1;
  return ac;
}

/* Spreads dtypes, modes, layouts, in/out of place, alignment, guard side, direction, positions and rope kind over
 * a running counter so that each shows up with many shapes. */
static void vary(tu_acase *ac, unsigned v) {
  static const tu_layout kinds[4] = {TU_L_BSHD, TU_L_BHSD, TU_L_GAPS, TU_L_NEG};
  ac->q.dt = dtype_pairs[v % 9][0];
  ac->k.dt = dtype_pairs[v % 9][1];
  ac->mode = (rotary_position_mode)(v % 5);
  ac->row_extra = (v / 5) % 2 ? 5 : 0;
  ac->q.in_kind = kinds[(v / 5) % 4];
  ac->q.out_kind = kinds[(v / 7) % 4];
  ac->k.in_kind = kinds[(v / 3) % 4];
  ac->k.out_kind = kinds[(v / 11) % 4];
  ac->q.inplace = (int)((v >> 1) & 1u);
  ac->k.inplace = (int)((v >> 2) & 1u);
  ac->q.misalign = (int)((v >> 3) & 1u);
  ac->k.misalign = (int)((v / 6) & 1u);
  ac->q.side = (v / 13) % 2 ? TU_GUARD_START : TU_GUARD_END;
  ac->k.side = (v / 17) % 2 ? TU_GUARD_START : TU_GUARD_END;
  ac->dir = (v / 3) % 2 ? ROTARY_INVERSE : ROTARY_FORWARD;
  ac->pos = v % 6 == 0 ? TU_POS_ZERO : v % 6 == 1 ? TU_POS_MAX : TU_POS_RANDOM;
  ac->max_positions = v % 4 == 3 ? 0 : 64;
  ac->scaling = v % 7 == 6 ? 1.3465735902799727 : 1.0;
  ac->packed = v % 11 == 10;
  ac->v_heads = 2;
  ac->seed = 0x1234567u + v * 7919u;
}

/* ---- tests ---- */


/* Every even head_dim up to 64 with every even rotary_dim, then 80, 96, 128, 256; both pairings. */
static void test_dims_sweep(void **state) {
  (void)state;
  static const size_t big[4] = {80, 96, 128, 256};
  tu_astats as = {0};
  unsigned v = 0;
  for (size_t x = 0; x < 36; x++) {
    size_t hd = x < 32 ? 2 * (x + 1) : big[x - 32], rds[64];
    size_t nrd = tu_rotary_dims(hd, rds);
    for (size_t y = 0; y < nrd; y++)
      for (int pairing = 0; pairing < 2; pairing++) {
        tu_acase ac = base_case(hd, rds[y], 3, 2, 2, 3);
        vary(&ac, v++);
        ac.pairing = (rotary_pairing)pairing;
        tu_apply_case(&ac, g_ctx, &as);
      }
  }
  finish("dims", &as);
}

/* q and k head counts of real models, GQA and MQA, k left out; 1 and 11 tokens. */
static void test_heads(void **state) {
  (void)state;
  static const size_t qk[8][2] = {{1, 1}, {7, 0}, {32, 8}, {71, 1}, {32, 32}, {7, 71}, {71, 8}, {1, 0}};
  static const size_t dims[3][2] = {{128, 128}, {64, 64}, {80, 32}};
  tu_astats as = {0};
  unsigned v = 3;
  for (size_t h = 0; h < 8; h++)
    for (size_t d = 0; d < 3; d++)
      for (size_t tok = 0; tok < 2; tok++) {
        /* quick mode: one token count per (heads, dims), alternating: each head count still meets both */
        if (tu_quick() && (h + d + tok) % 2) {
          v++;
          continue;
        }
        tu_acase ac = base_case(dims[d][0], dims[d][1], qk[h][0], qk[h][1], 1, tok ? 11 : 1);
        vary(&ac, v++);
        ac.packed = 0;
        ac.pairing = (rotary_pairing)((h + d) % 2);
        ac.max_positions = table_len();
        tu_apply_case(&ac, g_ctx, &as);
      }
  finish("heads", &as);
}

/* A few long sequences (2048 and 8192 tokens, tables of 8192 positions; quick mode: 64 tokens, 512 positions) of
 * real shapes. */
static void test_many_tokens(void **state) {
  (void)state;
  size_t seq = tu_quick() ? 64 : 2048, long_table = tu_quick() ? 512 : 8192;
  tu_astats as = {0};
  tu_acase a = base_case(128, 128, 32, 8, 1, seq);
  a.max_positions = long_table;
  a.mode = ROTARY_POSITIONS_OFFSET;
  a.q.inplace = a.k.inplace = 1;
  tu_apply_case(&a, g_ctx, &as);
  tu_acase b = base_case(128, 64, 16, 4, 2, seq / 2);
  b.q.dt = ROTARY_BF16;
  b.k.dt = ROTARY_F16;
  b.pairing = ROTARY_PAIRING_INTERLEAVED;
  b.mode = ROTARY_POSITIONS_OFFSETS;
  b.q.in_kind = b.q.out_kind = b.k.in_kind = b.k.out_kind = TU_L_BHSD;
  b.dir = ROTARY_INVERSE;
  b.max_positions = 0;
  tu_apply_case(&b, g_ctx, &as);
  tu_acase c = base_case(64, 64, 2, 1, 1, tu_quick() ? 64 : 8192);
  c.max_positions = long_table;
  c.pos = TU_POS_MAX;
  c.mode = ROTARY_POSITIONS_IDS_I64;
  c.q.dt = ROTARY_F16;
  tu_apply_case(&c, g_ctx, &as);
  finish("tokens", &as);
}

/* Table-free ropes compute cos/sin rows a block of tokens at a time (as many as a 16 KiB buffer holds, at most 64:
 * 16 rows at head_dim 256, 32 at 128, 64 below): token counts around one and several blocks, a block that crosses
 * sequences (OFFSETS), ids, forward and inverse, GQA head counts whose units split tasks mid-token on the 3-thread
 * run. Each is checked against the oracle and across thread counts. */
static void test_rows_blocks(void **state) {
  (void)state;
  static const size_t dims[4] = {16, 64, 128, 256}, blocks[4] = {64, 64, 32, 16};
  static const rotary_position_mode modes[3] = {ROTARY_POSITIONS_OFFSET, ROTARY_POSITIONS_OFFSETS,
                                                ROTARY_POSITIONS_IDS_I32};
  tu_astats as = {0};
  unsigned v = 0;
  for (int d = 0; d < 4; d++)
    for (int n = 0; n < 4; n++) {
      if (tu_quick() && (n == 1 || n == 3)) continue; /* quick: one short of a block, one past it */
      const size_t seq = n < 3 ? blocks[d] - 1 + (size_t)n : 3 * blocks[d] + 5;
      tu_acase ac = base_case(dims[d], dims[d] - (v % 3 == 2 ? 8 : 0), 5, 1 + v % 2, 1 + v % 2, seq);
      ac.max_positions = 0;
      ac.mode = modes[v % 3];
      ac.pos = TU_POS_RANDOM;
      ac.dir = (rotary_direction)((v / 3) % 2);
      ac.pairing = (rotary_pairing)(v % 2);
      ac.q.dt = dtype_pairs[v % 9][0];
      ac.k.dt = dtype_pairs[v % 9][1];
      ac.q.inplace = ac.k.inplace = (int)((v / 2) % 2);
      ac.seed = 9500 + v++;
      tu_apply_case(&ac, g_ctx, &as);
    }
  finish("rows blocks", &as);
}

/* Heads far apart (heads-major tensors: at least 4 KiB between a token's heads) are walked in groups of 8 heads,
 * token by token, when rows come from a table or the caller: head counts around and below the group size, q and k
 * of different layouts, GQA, k left out, both pairings, forward and inverse, every dtype pairing. The case runner
 * checks each against the oracle and the 3-thread run against the calling thread's bits. */
static void test_far_heads(void **state) {
  (void)state;
  static const size_t qk[7][2] = {{13, 3}, {32, 8}, {8, 8}, {9, 0}, {1, 17}, {71, 1}, {2, 2}};
  static const rotary_position_mode modes[3] = {ROTARY_POSITIONS_OFFSET, ROTARY_POSITIONS_IDS_I64,
                                                ROTARY_POSITIONS_COS_SIN};
  tu_astats as = {0};
  unsigned v = 0;
  for (size_t h = 0; h < 7; h++)
    for (int m = 0; m < 3; m++)
      for (int mixed = 0; mixed < 2; mixed++) {
        /* quick mode (valgrind: 21 s of this program's 40): one k layout per (heads, mode), alternating: every head
         * count and mode, both k layouts, and still every dtype pairing (v % 9 over 21 cases) */
        if (tu_quick() && (h + (size_t)m + (size_t)mixed) % 2) continue;
        /* 40 tokens x 64 dims: heads 10 KiB apart in f32, 5 KiB in f16/bf16 */
        tu_acase ac = base_case(64, v % 3 ? 64 : 48, qk[h][0], qk[h][1], v % 2 ? 2 : 1, v % 2 ? 20 : 40);
        ac.q.in_kind = ac.q.out_kind = TU_L_BHSD;
        ac.k.in_kind = ac.k.out_kind = mixed ? TU_L_BSHD : TU_L_BHSD;
        ac.q.inplace = (int)(v & 1);
        ac.k.inplace = (int)((v >> 1) & 1);
        ac.q.dt = dtype_pairs[v % 9][0];
        ac.k.dt = dtype_pairs[v % 9][1];
        ac.pairing = (rotary_pairing)((v >> 2) & 1);
        ac.dir = (v / 5) % 2 ? ROTARY_INVERSE : ROTARY_FORWARD;
        ac.mode = modes[m];
        ac.pos = TU_POS_RANDOM;
        ac.max_positions = table_len();
        ac.seed = 9000 + v++;
        tu_apply_case(&ac, g_ctx, &as);
      }
  finish("far heads", &as);
}

/* Every position mode with zero, maximal and random positions, table and table-free; COS_SIN with row_stride 0
 * and larger, on a rope with attention_scaling that COS_SIN must not apply. */
static void test_position_modes(void **state) {
  (void)state;
  tu_astats as = {0};
  unsigned v = 0;
  for (int mode = 0; mode < 5; mode++)
    for (int pk = 0; pk < 4; pk++)
      for (int table = 0; table < 2; table++) {
        tu_acase ac = base_case(64, 48, 4, 2, 3, 5);
        ac.mode = (rotary_position_mode)mode;
        ac.pos = (tu_pos_kind)pk;
        ac.max_positions = table ? 1000 : 0;
        if (pk == TU_POS_HUGE && table) ac.pos = TU_POS_MAX;
        ac.q.dt = ROTARY_F32;
        ac.k.dt = (v & 1) ? ROTARY_F16 : ROTARY_BF16;
        ac.row_extra = (v & 2) ? 7 : 0;
        ac.scaling = mode == ROTARY_POSITIONS_COS_SIN ? 1.5 : (v % 3 == 0 ? 0.75 : 1.0);
        ac.pairing = (rotary_pairing)(v % 2);
        ac.dir = (rotary_direction)((v / 2) % 2);
        ac.seed = 4000 + v++;
        tu_apply_case(&ac, g_ctx, &as);
      }
  finish("modes", &as);
}

/* Layouts: named ones through rotary_tensor_init, hand-made gaps and negative strides, mixed in/out layouts,
 * packed QKV rows with v heads that must stay untouched. */
static void test_layouts(void **state) {
  (void)state;
  tu_astats as = {0};
  unsigned v = 0;
  for (int qi = 0; qi < 4; qi++)
    for (int qo = 0; qo < 4; qo++)
      for (int inplace = 0; inplace < 2; inplace++) {
        tu_acase ac = base_case(96, 64, 5, 3, 2, 4);
        ac.q.in_kind = (tu_layout)qi;
        ac.q.out_kind = (tu_layout)qo;
        ac.k.in_kind = (tu_layout)qo;
        ac.k.out_kind = (tu_layout)qi;
        ac.q.inplace = inplace;
        ac.k.inplace = !inplace;
        ac.q.misalign = (int)(v & 1);
        ac.k.misalign = (int)((v >> 1) & 1);
        ac.q.dt = dtype_pairs[v % 9][0];
        ac.k.dt = dtype_pairs[v % 9][1];
        ac.mode = (rotary_position_mode)(v % 4);
        ac.seed = 5000 + v++;
        tu_apply_case(&ac, g_ctx, &as);
      }
  for (int k = 0; k < 6; k++) {
    tu_acase ac = base_case(k < 3 ? 128 : 64, k < 3 ? 128 : 32, k == 0 ? 32 : 7, k == 5 ? 0 : (k == 0 ? 8 : 1), 2, 5);
    ac.packed = 1;
    ac.v_heads = k == 0 ? 8 : 1;
    ac.q.dt = (rotary_dtype)(k % 3);
    ac.q.misalign = k & 1;
    ac.pairing = (rotary_pairing)(k % 2);
    ac.mode = (rotary_position_mode)(k % 5);
    ac.seed = 6000 + (uint64_t)k;
    tu_apply_case(&ac, g_ctx, &as);
  }
  finish("layouts", &as);
}

/* q and k of every dtype pairing in one call, in place and out of place. */
static void test_dtype_mix(void **state) {
  (void)state;
  tu_astats as = {0};
  for (unsigned p = 0; p < 9; p++)
    for (int inplace = 0; inplace < 2; inplace++) {
      tu_acase ac = base_case(64, 64, 4, 4, 2, 6);
      ac.q.dt = dtype_pairs[p][0];
      ac.k.dt = dtype_pairs[p][1];
      ac.q.inplace = ac.k.inplace = inplace;
      ac.mode = ROTARY_POSITIONS_IDS_I64;
      ac.seed = 7000 + p * 2 + (unsigned)inplace;
      tu_apply_case(&ac, g_ctx, &as);
    }
  finish("dtype mix", &as);
}

/* Position 0 with attention_scaling 1 is the identity bit for bit (nonzero inputs: the formula's -(x1 * 0) can turn
 * a -0 into +0). */
static void test_identity_at_zero(void **state) {
  (void)state;
  size_t B = 2, S = 4, H = 3, hd = 64, n = B * S * H * hd;
  int64_t ids[8] = {0};
  for (int dt = 0; dt < 3; dt++)
    for (int pairing = 0; pairing < 2; pairing++)
      for (size_t mp = 0; mp <= 16; mp += 16) {
        rotary_rope *rope = make_rope(hd, 48, (rotary_pairing)pairing, mp);
        size_t es = tu_dtype_size((rotary_dtype)dt);
        tu_guarded gi, go;
        unsigned char *in = tu_guard_alloc(&gi, n * es, TU_GUARD_END), *out = tu_guard_alloc(&go, n * es, TU_GUARD_END);
        tu_rng rng;
        tu_rng_seed(&rng, 8000 + (uint64_t)dt);
        for (size_t e = 0; e < n; e++)
          tu_store((rotary_dtype)dt, in, (ptrdiff_t)e, random_value(&rng, (rotary_dtype)dt));
        rotary_apply_desc d;
        rotary_apply_desc_init(&d);
        d.batch = B;
        d.seq_len = S;
        d.positions.mode = ROTARY_POSITIONS_IDS_I64;
        d.positions.ids = ids;
        assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, in, out, (rotary_dtype)dt, S, H, hd), ROTARY_OK);
        assert_int_equal(rotary_apply(NULL, rope, &d), ROTARY_OK);
        assert_memory_equal(in, out, n * es);
        assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BHSD, out, out, (rotary_dtype)dt, S, H, hd), ROTARY_OK);
        assert_int_equal(rotary_apply(g_ctx, rope, &d), ROTARY_OK); /* in place */
        assert_memory_equal(in, out, n * es);
        tu_guard_free(&gi);
        tu_guard_free(&go);
        rotary_rope_destroy(rope);
      }
}

/* f32 BSHD tensor, in a guarded buffer, with random positions below max_positions. */
static rotary_apply_desc f32_desc(float *x, size_t B, size_t S, size_t H, size_t hd, int64_t *ids, tu_rng *rng,
                                  int64_t max_pos) {
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = B;
  d.seq_len = S;
  d.positions.mode = ROTARY_POSITIONS_IDS_I64;
  d.positions.ids = ids;
  for (size_t t = 0; t < B * S; t++) ids[t] = (int64_t)tu_rng_below(rng, (uint64_t)max_pos);
  ids[0] = max_pos - 1;
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, x, x, ROTARY_F32, S, H, hd), ROTARY_OK);
  return d;
}

/* inverse(forward(x)) returns x within a few eps, and every pair keeps its norm; positions below 32768 (quick mode:
 * 2048, the table's cost under valgrind). */
static void test_roundtrip_and_norm(void **state) {
  (void)state;
  size_t B = 2, S = 33, H = 5, hd = 128, rd = 96, n = B * S * H * hd;
  const int64_t max_pos = tu_quick() ? 2048 : 32768;
  int64_t ids[66];
  double worst_rt = 0, worst_norm = 0;
  for (int pairing = 0; pairing < 2; pairing++) {
    rotary_rope *rope = make_rope(hd, rd, (rotary_pairing)pairing, (size_t)max_pos);
    tu_guarded g;
    float *x = (float *)tu_guard_alloc(&g, n * 4, TU_GUARD_END), *x0 = malloc(n * 4), *y = malloc(n * 4);
    assert_true(x && x0 && y);
    tu_rng rng;
    tu_rng_seed(&rng, 9000 + (uint64_t)pairing);
    for (size_t e = 0; e < n; e++) x0[e] = x[e] = random_value(&rng, ROTARY_F32);
    rotary_apply_desc d = f32_desc(x, B, S, H, hd, ids, &rng, max_pos);
    assert_int_equal(rotary_apply(NULL, rope, &d), ROTARY_OK);
    memcpy(y, x, n * 4);
    d.direction = ROTARY_INVERSE;
    assert_int_equal(rotary_apply(g_ctx, rope, &d), ROTARY_OK);
    for (size_t row = 0; row < B * S * H; row++)
      for (size_t i = 0; i < rd / 2; i++) {
        size_t a, b;
        oracle_pair_index((rotary_pairing)pairing, rd, i, &a, &b);
        long double u0 = x0[row * hd + a], u1 = x0[row * hd + b], l1 = fabsl(u0) + fabsl(u1);
        long double norm = sqrtl(u0 * u0 + u1 * u1), y0 = y[row * hd + a], y1 = y[row * hd + b];
        long double rt = fmaxl(fabsl(x[row * hd + a] - u0), fabsl(x[row * hd + b] - u1)) / (FLT_EPSILON * l1);
        long double dn = fabsl(sqrtl(y0 * y0 + y1 * y1) - norm) / (FLT_EPSILON * norm);
        if (rt > worst_rt) worst_rt = (double)rt;
        if (dn > worst_norm) worst_norm = (double)dn;
      }
    for (size_t row = 0; row < B * S * H; row++) /* pass-through dims never changed */
      assert_memory_equal(x + row * hd + rd, x0 + row * hd + rd, (hd - rd) * 4);
    tu_guard_free(&g);
    free(x0);
    free(y);
    rotary_rope_destroy(rope);
  }
  printf("[properties] inverse(forward(x)) max %.4f eps*(|x0|+|x1|); pair norm change max %.4f eps*|x|\n", worst_rt,
         worst_norm);
  /* each rotation is within ~2 eps * (|x0|+|x1|) and the rounded cos/sin are within 1.5 ulp of the unit circle */
  assert_true(worst_rt <= 6.0);
  assert_true(worst_norm <= 5.0);
}

static int group_setup(void **state) {
  (void)state;
  memset(&g_total, 0, sizeof g_total);
  return rotary_context_create(3, &g_ctx) == ROTARY_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  tu_astats_print("total", &g_total);
  rotary_context_destroy(g_ctx);
  g_ctx = NULL;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_at_zero), cmocka_unit_test(test_roundtrip_and_norm),
      cmocka_unit_test(test_dtype_mix),        cmocka_unit_test(test_position_modes),
      cmocka_unit_test(test_layouts),          cmocka_unit_test(test_heads),
      cmocka_unit_test(test_dims_sweep),       cmocka_unit_test(test_many_tokens),
      cmocka_unit_test(test_rows_blocks),
      cmocka_unit_test(test_far_heads),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
