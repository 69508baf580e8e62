/* fuzz_apply.c: libFuzzer target: a rope, tensors, strides and positions carved from the input; rotary_apply must
 * write exactly what the contract says, or refuse with a documented status and write nothing. */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus && cp tests/fuzz/corpus/* build-fuzz/corpus/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -Iinclude $(find src -type d -printf "-I%p ") tests/fuzz/fuzz_apply.c $(find src -name "*.c" -not -path "src/hf/*") -lm -lpthread -o build-fuzz/fuzz_apply
//   build-fuzz/fuzz_apply -max_total_time=60 -max_len=1024 -artifact_prefix=build-fuzz/ build-fuzz/corpus
// tests/test_fuzz_replay.c includes this file and replays tests/fuzz/corpus/ and a few thousand pseudo-random
// inputs; tests/fuzz/make_corpus.py writes the corpus.
/*
 * The model. Every call gets a verdict before it runs: `must`, the statuses of the errors the input certainly has
 * (a NULL pointer, a bad enum, a position out of range, an element offset beyond ptrdiff_t, an output element
 * written twice, an output byte shared with another output or with an input other than its own in-place row),
 * and `may`, statuses the contract leaves to the library (overlapping extents of disjoint rows, strides that
 * write nothing twice yet do not nest, in == out with strides that differ only where they do not matter).
 * With a certain error the status must be one of must | may; without, ROTARY_OK or one of may. On success the
 * whole arena (guard bytes included) must equal a byte-exact model: out[a] = fmaf(x[a], c, -(x[b] * s)),
 * out[b] = fmaf(x[a], s, x[b] * c) in fp32 with c and s from rotary_rope_cos_sin (the caller's rows in COS_SIN
 * mode), sin negated for the inverse, one rounding to the dtype, pass-through copied bit for bit; a NaN result
 * is x[a] quieted if x[a] is NaN, else x[b] quieted if x[b] is NaN, else +0x7fc00000 (the header's rule, the same
 * bits on every ISA). On failure not one byte may change. Memory: every view the library may touch lies inside
 * one allocation; views whose offsets overflow are not backed by memory and must be refused before any access.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"
#include "fuzz_util.h"
#include "fuzz_views.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- outcome bookkeeping (read by the replay test) ---- */

static unsigned long fuzz_failures, fuzz_rope_errors, fuzz_apply_ok, fuzz_apply_errors, fuzz_skipped;
static unsigned long fuzz_apply_status[16]; /* calls per returned status */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_apply: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

/* ---- the rope ---- */

typedef struct rope_case {
  rotary_config cfg;
  double *inv;
  size_t max_positions;
  verdict v;
} rope_case;

static size_t pick_head_dim(uint8_t b) {
  static const size_t special[8] = {0, 1, 3, 66, ROTARY_MAX_HEAD_DIM, ROTARY_MAX_HEAD_DIM + 2,
                                    ROTARY_MAX_HEAD_DIM + 1, SIZE_MAX - 1};
  return b < 248 ? 2 * (1 + (size_t)b % 32) : special[b - 248];
}

static size_t pick_rotary_dim(uint8_t b, size_t hd) {
  if (hd < 2 || hd > ROTARY_MAX_HEAD_DIM + 2) return b % 2 ? 2 : 4;
  if (b < 224) return 2 * (1 + (size_t)b % (hd / 2));
  const size_t special[8] = {0, 1, 3, hd, hd + 2, hd - 1, 2, hd + 1};
  return special[b % 8];
}

static double pick_base(uint8_t b) {
  static const double good[6] = {10000.0, 500000.0, 1e6, 10.0, 1.0, 0.5};
  static const double bad[6] = {0.0, -1.0, NAN, INFINITY, -INFINITY, -0.0};
  return b < 200 ? good[b % 6] : bad[b % 6];
}

static double pick_scaling(uint8_t b) {
  static const double good[5] = {1.0, 0.5, 2.0, 1.25, 1e-3};
  static const double bad[5] = {0.0, -1.0, NAN, INFINITY, -0.0};
  return b < 220 ? good[b % 5] : bad[b % 5];
}

static int finite_positive(double x) { return isfinite(x) && x > 0.0; }

/* Fills the inverse frequencies (one bad value when asked) and returns nonzero when one is bad. */
static int carve_inv_freq(reader *r, rope_case *rc, size_t n, int bad) {
  static const double bad_values[6] = {NAN, INFINITY, 0.0, -1.0, -0.0, -INFINITY};
  for (size_t i = 0; i < n; i++) rc->inv[i] = (double)(1 + rd_u8(r)) / (double)(1u << (i % 20));
  if (!bad || n == 0) return 0;
  uint8_t b = rd_u8(r);
  rc->inv[b % n] = bad_values[b % 6];
  return 1;
}

static size_t pick_max_positions(uint8_t b, size_t rd) {
  static const size_t special[4] = {1, 2, 1000, 4096};
  size_t mp = b < 64 ? 0 : b < 252 ? 1 + (size_t)b % 64 : special[b - 252];
  size_t cap = rd && rd <= ROTARY_MAX_HEAD_DIM ? ((size_t)4 << 20) / (rd * 4) : 1;
  return mp > cap ? cap : mp;
}

/* What rotary_rope_create must say about rc. */
static verdict rope_verdict(const rope_case *rc, int inv_bad, int base_bad) {
  const rotary_config *c = &rc->cfg;
  verdict v = {0, 0};
  int hd_bad = c->head_dim == 0 || c->head_dim % 2 || c->head_dim > ROTARY_MAX_HEAD_DIM;
  int rd_bad = c->rotary_dim == 0 || c->rotary_dim % 2 || c->rotary_dim > c->head_dim;
  if (c->struct_size != sizeof(rotary_config)) v.must |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if (hd_bad) v.must |= BIT(ROTARY_ERR_HEAD_DIM), v.may |= BIT(ROTARY_ERR_ROTARY_DIM);
  else if (rd_bad) v.must |= BIT(ROTARY_ERR_ROTARY_DIM);
  if (c->rotary_dim == 0) v.may |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if ((unsigned)c->pairing > 1) v.must |= BIT(ROTARY_ERR_PAIRING);
  if (!finite_positive(c->attention_scaling)) v.must |= BIT(ROTARY_ERR_FREQUENCY);
  if (inv_bad) v.must |= (hd_bad || rd_bad) ? 0 : BIT(ROTARY_ERR_FREQUENCY), v.may |= BIT(ROTARY_ERR_FREQUENCY);
  if (base_bad) {
    if (c->inv_freq) v.may |= BIT(ROTARY_ERR_FREQUENCY); /* replaced by inv_freq: ignoring it is fine */
    else v.must |= BIT(ROTARY_ERR_FREQUENCY);
  }
  return v;
}

static void carve_rope(reader *r, rope_case *rc) {
  size_t hd = pick_head_dim(rd_u8(r));
  size_t rd = pick_rotary_dim(rd_u8(r), hd);
  uint8_t flags = rd_u8(r);
  rotary_config_init(&rc->cfg, hd);
  rc->cfg.rotary_dim = rd;
  rc->cfg.pairing = (rotary_pairing)(flags % 16 < 15 ? flags % 2 : 2 + flags % 3);
  rc->cfg.base = pick_base(rd_u8(r));
  rc->cfg.attention_scaling = pick_scaling(rd_u8(r));
  if (flags >= 248) rc->cfg.struct_size = flags % 2 ? 0 : sizeof(rotary_config) - 8;
  size_t n = rd / 2;
  rc->inv = malloc((n + 1) * sizeof(double));
  int inv_bad = 0;
  if (flags & 0x20) {
    inv_bad = carve_inv_freq(r, rc, n, (flags & 0xc0) == 0xc0);
    rc->cfg.inv_freq = rc->inv;
  }
  rc->max_positions = pick_max_positions(rd_u8(r), rd);
  rc->v = rope_verdict(rc, inv_bad, !finite_positive(rc->cfg.base));
}

/* Creates the rope and checks the verdict, *out and the getters; NULL when the call (rightly) failed. */
static rotary_rope *make_rope(const rope_case *rc) {
  static char sentinel;
  rotary_rope *rope = (rotary_rope *)(void *)&sentinel;
  rotary_status st = rotary_rope_create(&rc->cfg, rc->max_positions, &rope);
  if (!status_allowed(rc->v, st))
    fuzz_fail("rope_create(head_dim %zu, rotary_dim %zu, pairing %d): status %d, must %#x may %#x", rc->cfg.head_dim,
              rc->cfg.rotary_dim, (int)rc->cfg.pairing, (int)st, rc->v.must, rc->v.may);
  if (st != ROTARY_OK) {
    if (rope != (rotary_rope *)(void *)&sentinel) fuzz_fail("rope_create: *out set on failure");
    fuzz_rope_errors++;
    return NULL;
  }
  if (rc->v.must) return rotary_rope_destroy(rope), NULL; /* reported above */
  if (rotary_rope_head_dim(rope) != rc->cfg.head_dim || rotary_rope_rotary_dim(rope) != rc->cfg.rotary_dim ||
      rotary_rope_max_positions(rope) != rc->max_positions || rotary_rope_pairing(rope) != rc->cfg.pairing)
    fuzz_fail("rope getters disagree with the config");
  if (rc->cfg.inv_freq) {
    size_t n = rc->cfg.rotary_dim / 2;
    double *got = malloc(n * sizeof(double));
    if (rotary_rope_inv_freq(rope, got) != ROTARY_OK || memcmp(got, rc->cfg.inv_freq, n * sizeof(double)))
      fuzz_fail("rope_inv_freq is not the config's copy");
    free(got);
  }
  return rope;
}

/* ---- tensors and their placement ---- */

/* Strides whose extents overflow, and (from index 6) strides that land the extent exactly on the edges of int64:
 * -2^62 f16 or -2^61 f32 elements are INT64_MIN bytes, PTRDIFF_MAX - (hd - 1) makes the last index INT64_MAX with
 * two indices in one dim (validation once overflowed its own arithmetic there; UBSan found it). */
static ptrdiff_t huge_stride(uint8_t b, size_t hd) {
  const ptrdiff_t p62 = (ptrdiff_t)1 << 62, p61 = (ptrdiff_t)1 << 61;
  const ptrdiff_t huge[12] = {PTRDIFF_MAX,  PTRDIFF_MIN, PTRDIFF_MAX / 2 + 1, PTRDIFF_MIN / 2 - 1,
                              PTRDIFF_MAX / 3 + 1, -(PTRDIFF_MAX / 3) - 2, -p62, -p61, PTRDIFF_MAX - 1,
                              PTRDIFF_MAX - ((ptrdiff_t)hd - 1), p62, -p62 - 1};
  return huge[b % 12];
}

/* Contiguous strides of a layout: BSHD (layout 0) or BHSD. */
static void contiguous(ptrdiff_t *s, int layout, size_t seq, size_t heads, size_t hd) {
  s[2] = layout ? (ptrdiff_t)(seq * hd) : (ptrdiff_t)hd;
  s[1] = layout ? (ptrdiff_t)hd : (ptrdiff_t)(heads * hd);
  s[0] = (ptrdiff_t)(seq * heads * hd);
}

static void random_strides(reader *r, ptrdiff_t *s, size_t hd) {
  for (int d = 0; d < 3; d++) {
    int8_t m = (int8_t)rd_u8(r);
    uint8_t g = rd_u8(r) % 4;
    ptrdiff_t unit = g == 0 ? 1 : g == 1 ? 2 : g == 2 ? (ptrdiff_t)(hd / 2 ? hd / 2 : 1) : (ptrdiff_t)hd;
    s[d] = (ptrdiff_t)m * unit;
  }
}

/* A canonical layout with one output stride made to collide. */
static void colliding_stride(reader *r, ptrdiff_t *s, size_t hd) {
  uint8_t b = rd_u8(r);
  const ptrdiff_t bad[4] = {0, (ptrdiff_t)hd - 1, -(ptrdiff_t)(hd / 2), (ptrdiff_t)hd / 2};
  s[b % 3] = bad[(b / 3) % 4];
}

typedef struct tensor_plan {
  size_t heads;
  rotary_dtype dtype;
  int in_place;
  ptrdiff_t in_s[3], out_s[3];
} tensor_plan;

static void carve_strides(reader *r, tensor_plan *t, size_t seq, size_t hd) {
  uint8_t layout = rd_u8(r);
  t->in_place = rd_u8(r) % 8 < 3;
  contiguous(t->in_s, layout % 2, seq, t->heads, hd);
  memcpy(t->out_s, t->in_s, sizeof(t->in_s));
  if (layout >= 160 && layout < 224) random_strides(r, t->in_s, hd), random_strides(r, t->out_s, hd);
  else if (layout >= 224 && layout < 240) colliding_stride(r, t->out_s, hd);
  else if (layout >= 240) {
    uint8_t b = rd_u8(r);
    (b & 8 ? t->out_s : t->in_s)[b % 3] = huge_stride(b >> 4, hd);
  }
  if (t->in_place) memcpy(t->out_s, t->in_s, sizeof(t->in_s));
}

/* ---- the whole case ---- */

typedef struct fuzz_case {
  rope_case rc;
  rotary_rope *rope;
  size_t hd, rd;
  rotary_pairing pairing;
  size_t batch, seq, tokens;
  tensor_plan tp[2];
  int packed;
  rotary_apply_desc d;
  view v[N_VIEWS];
  int null_which; /* -1, or which pointer is NULL: 0..3 views, 4 first position array, 5 sin */
  /* positions */
  int64_t *pos;        /* tokens positions (OFFSET, OFFSETS, IDS modes) */
  int64_t *offsets;    /* batch values (OFFSETS) */
  size_t row_stride;   /* COS_SIN */
  size_t arr_bytes;    /* bytes of each position array */
  int n_arrays;        /* 0, 1 (ids, offsets) or 2 (cos, sin) */
  int arr_in_arena;    /* the arrays alias a view */
  int arr_alias;       /* which view */
  int64_t arr_base[2]; /* arena coordinates when in the arena */
  unsigned char *arr_mem[2], *arr_snap[2];
  /* memory */
  unsigned char *arena, *snap, *expect;
  size_t arena_size;
  int64_t org;         /* arena byte of coordinate 0 is org */
  verdict v_apply;
  uint64_t seed;
} fuzz_case;

static size_t pick_count(uint8_t b, size_t range, size_t special, size_t big) {
  return b < 240 ? 1 + (size_t)b % range : b < 248 ? 0 : b < 252 ? special : big;
}

static rotary_dtype pick_dtype(uint8_t b) { return (rotary_dtype)(b < 243 ? b % 3 : 3 + b % 5); }

static void carve_shape(reader *r, fuzz_case *fc) {
  fc->batch = pick_count(rd_u8(r), 4, 6, 7);
  fc->seq = pick_count(rd_u8(r), 8, 12, 100); /* 100: enough work for the pool to split it between threads */
  fc->tp[0].heads = pick_count(rd_u8(r), 4, 6, 8);
  uint8_t hk = rd_u8(r);
  fc->tp[1].heads = hk < 250 ? hk % 5 : 6;
  if (fc->hd > 64) { /* wide heads: few rows */
    fc->batch = fc->batch > 1 ? 1 : fc->batch, fc->seq = fc->seq > 2 ? 2 : fc->seq;
    for (int i = 0; i < 2; i++) fc->tp[i].heads = fc->tp[i].heads > 2 ? 2 : fc->tp[i].heads;
  }
  fc->tokens = fc->batch * fc->seq;
  fc->tp[0].dtype = pick_dtype(rd_u8(r));
  fc->tp[1].dtype = pick_dtype(rd_u8(r));
}

static void init_view(view *v, const fuzz_case *fc, const tensor_plan *t, const ptrdiff_t *s, int used) {
  v->used = used;
  v->dtype = t->dtype;
  v->esize = dtype_size(t->dtype) ? dtype_size(t->dtype) : 4;
  v->count[0] = fc->batch, v->count[1] = fc->seq, v->count[2] = t->heads;
  memcpy(v->stride, s, 3 * sizeof(ptrdiff_t));
  view_extent(v, fc->hd);
}

/* Puts v at the next free bytes and moves the cursor past it. */
static void place_fresh(view *v, int64_t *cursor, uint8_t gap) {
  if (v->nomem) {
    v->base = *cursor;
    return;
  }
  v->base = *cursor - v->lo * (int64_t)v->esize;
  *cursor = align_down(v->base + v->hi * (int64_t)v->esize + 7, 8) + 8 * (int64_t)(gap % 4);
}

static void place_alias(view *v, const view *other, uint8_t b) {
  int64_t shift = (int64_t)(b % 9) - 4;
  v->base = align_down(other->base + shift * (int64_t)v->esize, (int64_t)v->esize);
}

/* q in, q out, k in, k out: fresh memory, or aliases of each other from the input's choice. */
static void place_views(reader *r, fuzz_case *fc) {
  view *v = fc->v;
  int64_t cursor = 0;
  place_fresh(&v[Q_IN], &cursor, rd_u8(r));
  uint8_t b = rd_u8(r);
  if (fc->tp[0].in_place) v[Q_OUT].base = v[Q_IN].base;
  else if (b < 200) place_fresh(&v[Q_OUT], &cursor, b);
  else place_alias(&v[Q_OUT], &v[Q_IN], b);
  b = rd_u8(r);
  if (b < 190) place_fresh(&v[K_IN], &cursor, b);
  else place_alias(&v[K_IN], &v[b % 2 ? Q_IN : Q_OUT], b / 2);
  b = rd_u8(r);
  if (fc->tp[1].in_place) v[K_OUT].base = v[K_IN].base;
  else if (b < 190) place_fresh(&v[K_OUT], &cursor, b);
  else place_alias(&v[K_OUT], &v[b % 3 == 0 ? Q_OUT : b % 3 == 1 ? Q_IN : K_IN], b / 3);
}

/* Packed QKV rows [q heads | k heads | v heads]: q and k as interleaved views of one buffer (two when out of place). */
static void place_packed(fuzz_case *fc) {
  size_t hd = fc->hd, hq = fc->tp[0].heads, hk = fc->tp[1].heads;
  ptrdiff_t row = (ptrdiff_t)((hq + 2 * hk) * hd);
  ptrdiff_t s[3] = {(ptrdiff_t)fc->seq * row, row, (ptrdiff_t)hd};
  int in_place = fc->tp[0].in_place;
  fc->tp[1].dtype = fc->tp[0].dtype;
  for (int t = 0; t < 2; t++) {
    fc->tp[t].in_place = in_place;
    memcpy(fc->tp[t].in_s, s, sizeof(s)), memcpy(fc->tp[t].out_s, s, sizeof(s));
  }
  int64_t esize = (int64_t)(dtype_size(fc->tp[0].dtype) ? dtype_size(fc->tp[0].dtype) : 4);
  int64_t buffer = (int64_t)fc->tokens * row * esize + 64;
  fc->v[Q_IN].base = 0, fc->v[K_IN].base = (int64_t)(hq * hd) * esize;
  fc->v[Q_OUT].base = in_place ? 0 : buffer, fc->v[K_OUT].base = fc->v[Q_OUT].base + (int64_t)(hq * hd) * esize;
}

/* ---- positions ---- */

static int64_t max_position(const fuzz_case *fc) {
  return fc->rc.max_positions ? (int64_t)fc->rc.max_positions - 1 : ROTARY_MAX_POSITION;
}

static int64_t pick_position(uint8_t b, int64_t max_pos, int table) {
  if (b < 232) return table ? (int64_t)b % (max_pos + 1) : (int64_t)b * b * b * (1 + b % 7);
  const int64_t special[12] = {-1, max_pos + 1, INT64_MIN, max_pos, INT64_MAX, INT32_MIN,
                               0,  max_pos - 1, INT32_MAX, -2,      (int64_t)1 << 40, max_pos / 2};
  return special[(b - 232) % 12];
}

static int64_t pick_offset(uint8_t b, int64_t max_pos, int table, size_t seq) {
  int64_t last_ok = max_pos - (int64_t)seq + 1;
  if (b < 232) return table ? (int64_t)b % (max_pos + 1) : (int64_t)b * b * b;
  const int64_t special[8] = {-1, last_ok + 1, INT64_MAX - 1, INT64_MAX, last_ok, INT64_MIN, 0, last_ok / 2};
  return special[(b - 232) % 8];
}

/* offset + s without undefined behaviour: positions of refused calls are never used. */
static int64_t wrap_add(int64_t offset, size_t s) { return (int64_t)((uint64_t)offset + (uint64_t)s); }

/* The run first .. first + seq - 1 against the rope's range. */
static void judge_run(verdict *v, int64_t first, size_t seq, int64_t max_pos) {
  int64_t last;
  if (first < 0) v->must |= BIT(ROTARY_ERR_POSITION);
  else if (__builtin_add_overflow(first, (int64_t)seq - 1, &last))
    v->must |= BIT(ROTARY_ERR_OVERFLOW), v->may |= BIT(ROTARY_ERR_POSITION);
  else if (last > max_pos) v->must |= BIT(ROTARY_ERR_POSITION);
}

static void carve_ids(reader *r, fuzz_case *fc, int wide, int64_t max_pos, verdict *v) {
  int table = fc->rc.max_positions != 0;
  fc->arr_bytes = fc->tokens * (wide ? 8 : 4);
  for (size_t t = 0; t < fc->tokens; t++) {
    int64_t p = pick_position(rd_u8(r), max_pos, table);
    if (!wide && (p < INT32_MIN || p > INT32_MAX)) p = p < 0 ? INT32_MIN : INT32_MAX;
    fc->pos[t] = p;
    if (p < 0 || p > max_pos) v->must |= BIT(ROTARY_ERR_POSITION);
  }
}

static void carve_cos_sin(reader *r, fuzz_case *fc, verdict *v) {
  uint8_t b = rd_u8(r);
  size_t half = fc->rd / 2;
  const size_t huge[3] = {SIZE_MAX / 2, (size_t)1 << 62, SIZE_MAX};
  fc->row_stride = b < 200 ? 0 : b < 245 ? half + b % 5 : huge[b % 3];
  fc->d.positions.row_stride = fc->row_stride;
  size_t rs = fc->row_stride ? fc->row_stride : half, count, bytes;
  if (fc->tokens && (__builtin_mul_overflow(fc->tokens - 1, rs, &count) ||
                     __builtin_add_overflow(count, half, &count) || __builtin_mul_overflow(count, 4, &bytes) ||
                     bytes > PTRDIFF_MAX)) {
    v->must |= BIT(ROTARY_ERR_OVERFLOW);
    fc->arr_bytes = 4 * half;
  } else {
    fc->arr_bytes = fc->tokens ? bytes : 4;
  }
}

/* Positions of every token, the position arrays' sizes, and what they make the verdict. */
static void carve_positions(reader *r, fuzz_case *fc, verdict *v) {
  rotary_positions *p = &fc->d.positions;
  int64_t max_pos = max_position(fc);
  int table = fc->rc.max_positions != 0;
  uint8_t b = rd_u8(r);
  /* modes 5 and 6 (multi-stream ids) are fuzzed by fuzz_rope.c; here 7..9 stay unknown: INVALID_ARGUMENT */
  p->mode = (rotary_position_mode)(b < 245 ? b % 5 : 7 + b % 3);
  fc->n_arrays = 0;
  if (fc->tokens == 0) { /* refused anyway (zero count): arrays only where the mode reads one */
    fc->arr_bytes = 8;
    fc->n_arrays = p->mode == ROTARY_POSITIONS_COS_SIN ? 2 : p->mode >= 1 && p->mode <= 3 ? 1 : 0;
  } else if (p->mode == ROTARY_POSITIONS_OFFSET) {
    p->offset = pick_offset(rd_u8(r), max_pos, table, fc->seq);
    judge_run(v, p->offset, fc->seq, max_pos);
    for (size_t t = 0; t < fc->tokens; t++) fc->pos[t] = wrap_add(p->offset, t % fc->seq);
  } else if (p->mode == ROTARY_POSITIONS_OFFSETS) {
    fc->n_arrays = 1, fc->arr_bytes = fc->batch * 8;
    for (size_t i = 0; i < fc->batch; i++) {
      fc->offsets[i] = pick_offset(rd_u8(r), max_pos, table, fc->seq);
      judge_run(v, fc->offsets[i], fc->seq, max_pos);
      for (size_t s = 0; s < fc->seq; s++) fc->pos[i * fc->seq + s] = wrap_add(fc->offsets[i], s);
    }
  } else if (p->mode == ROTARY_POSITIONS_IDS_I32 || p->mode == ROTARY_POSITIONS_IDS_I64) {
    fc->n_arrays = 1;
    carve_ids(r, fc, p->mode == ROTARY_POSITIONS_IDS_I64, max_pos, v);
  } else if (p->mode == ROTARY_POSITIONS_COS_SIN) {
    fc->n_arrays = 2;
    carve_cos_sin(r, fc, v);
  } else {
    v->must |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  }
  b = rd_u8(r);
  fc->arr_in_arena = fc->n_arrays && b >= 224;
  fc->arr_alias = b % 3 == 0 ? Q_OUT : b % 3 == 1 ? K_OUT : Q_IN;
}

/* ---- the verdict on aliasing ---- */

/* One output against its own input: only exact in-place rows may meet. */
static void judge_own_input(const fuzz_case *fc, int t, const rowset *out, const rowset *in, verdict *v) {
  const view *vo = &fc->v[t ? K_OUT : Q_OUT], *vi = &fc->v[t ? K_IN : Q_IN];
  if (!out->n || !in->n || !extents_meet(vo, vi)) return;
  if (!strict_in_place(vi, vo)) v->may |= BIT(ROTARY_ERR_OVERLAP); /* a library may refuse any shared extent */
  else if (strides_nest(vo, (int64_t)fc->hd)) return;                /* rows meet only themselves */
  irow *si = sorted_rows(in);
  for (size_t i = 0; i < out->n && !(v->must & BIT(ROTARY_ERR_OVERLAP)); i++)
    for (size_t k = lower_bound(si, in->n, out->start[i] - in->len + 1);
         k < in->n && si[k].start < out->start[i] + out->len; k++)
      if (si[k].index != i || si[k].start != out->start[i]) {
        v->must |= BIT(ROTARY_ERR_OVERLAP);
        break;
      }
  free(si);
}

static void judge_rows_disjoint(const view *va, const rowset *a, const view *vb, const rowset *b, verdict *v) {
  if (!a->n || !b->n || !extents_meet(va, vb)) return;
  irow *sb = sorted_rows(b);
  for (size_t i = 0; i < a->n; i++) {
    size_t k = lower_bound(sb, b->n, a->start[i] - b->len + 1);
    if (k < b->n && sb[k].start < a->start[i] + a->len) {
      v->must |= BIT(ROTARY_ERR_OVERLAP);
      break;
    }
  }
  free(sb);
}

static void judge_stride(const view *vo, const rowset *out, verdict *v) {
  if (!out->n || strides_nest(vo, out->len / (int64_t)vo->esize)) return; /* nesting strides write nothing twice */
  v->may |= BIT(ROTARY_ERR_STRIDE);
  irow *so = sorted_rows(out);
  for (size_t i = 0; i + 1 < out->n; i++)
    if (so[i + 1].start < so[i].start + out->len) {
      v->must |= BIT(ROTARY_ERR_STRIDE);
      break;
    }
  free(so);
}

/* Output t against the other tensor's input and output and the position arrays. */
static void judge_cross(const fuzz_case *fc, int t, rowset rs[N_VIEWS], verdict *v) {
  int out = t ? K_OUT : Q_OUT, o_in = t ? Q_IN : K_IN, o_out = t ? Q_OUT : K_OUT;
  judge_rows_disjoint(&fc->v[out], &rs[out], &fc->v[o_in], &rs[o_in], v);
  if (t == 0) judge_rows_disjoint(&fc->v[out], &rs[out], &fc->v[o_out], &rs[o_out], v);
  if (!fc->packed && rs[out].n && ((rs[o_in].n && extents_meet(&fc->v[out], &fc->v[o_in])) ||
                                   (rs[o_out].n && extents_meet(&fc->v[out], &fc->v[o_out]))))
    v->may |= BIT(ROTARY_ERR_OVERLAP);
  for (int a = 0; a < fc->n_arrays && fc->arr_in_arena; a++) {
    int64_t lo = fc->arr_base[a], hi = lo + (int64_t)fc->arr_bytes;
    int64_t vlo, vhi;
    view_bytes(&fc->v[out], &vlo, &vhi);
    if (rs[out].n && vlo < hi && lo < vhi) v->may |= BIT(ROTARY_ERR_OVERLAP);
    for (size_t i = 0; i < rs[out].n; i++)
      if (ranges_meet(rs[out].start[i], rs[out].len, lo, hi - lo)) v->must |= BIT(ROTARY_ERR_OVERLAP);
  }
}

static void judge_aliasing(fuzz_case *fc, verdict *v) {
  rowset rs[N_VIEWS];
  for (int i = 0; i < N_VIEWS; i++) rows_of(&fc->v[i], fc->hd, &rs[i]);
  for (int t = 0; t < 2; t++) {
    int in = t ? K_IN : Q_IN, out = t ? K_OUT : Q_OUT;
    judge_stride(&fc->v[out], &rs[out], v);
    judge_own_input(fc, t, &rs[out], &rs[in], v);
    judge_cross(fc, t, rs, v);
  }
  for (int i = 0; i < N_VIEWS; i++) free(rs[i].start);
}

/* ---- memory ---- */

/* Lays out the arena around every view with memory behind it, plus the in-arena position arrays. */
static int build_arena(fuzz_case *fc) {
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (int i = 0; i < N_VIEWS; i++) {
    const view *v = &fc->v[i];
    if (v->used && v->nomem && !v->overflow) return 0; /* valid offsets, but too much memory to back */
    if (!v->used || v->nomem) continue;
    int64_t a, b;
    view_bytes(v, &a, &b);
    lo = a < lo ? a : lo, hi = b > hi ? b : hi;
  }
  if (fc->arr_in_arena) {
    for (int a = 0; a < fc->n_arrays; a++) {
      fc->arr_base[a] = align_down(fc->v[fc->arr_alias].base, 8) + 8 * a;
      lo = fc->arr_base[a] < lo ? fc->arr_base[a] : lo;
      hi = fc->arr_base[a] + (int64_t)fc->arr_bytes > hi ? fc->arr_base[a] + (int64_t)fc->arr_bytes : hi;
    }
  }
  if (lo > hi) lo = hi = 0;
  fc->org = align_down(lo, 64) - GUARD;
  if (hi - fc->org > ARENA_LIMIT) return 0;
  fc->arena_size = (size_t)(hi - fc->org) + GUARD;
  fc->arena = malloc(fc->arena_size), fc->snap = malloc(fc->arena_size), fc->expect = malloc(fc->arena_size);
  return fc->arena && fc->snap && fc->expect;
}

static unsigned char *at(const fuzz_case *fc, int64_t coord) { return fc->arena + (coord - fc->org); }

/* Random bytes everywhere; in "tame" mode every input row then holds small values of its dtype. */
static void fill_arena(fuzz_case *fc, int tame) {
  uint64_t s = fc->seed;
  for (size_t i = 0; i < fc->arena_size; i += 8) {
    uint64_t x = rng_next(&s);
    memcpy(fc->arena + i, &x, fc->arena_size - i < 8 ? fc->arena_size - i : 8);
  }
  for (int t = 0; t < 2 && tame; t++) {
    rowset rs;
    const view *v = &fc->v[t ? K_IN : Q_IN];
    if (!dtype_size(v->dtype)) continue;
    rows_of(v, fc->hd, &rs);
    for (size_t i = 0; i < rs.n; i++)
      for (size_t e = 0; e < fc->hd; e++)
        store_elem(at(fc, rs.start[i]) + e * v->esize, v->dtype, (float)((int)(rng_next(&s) % 255) - 127) / 16.0f);
    free(rs.start);
  }
}

/* Writes ids/offsets (or keeps random cos/sin bytes) and points the descriptor at the arrays. */
static void fill_position_arrays(fuzz_case *fc) {
  rotary_positions *p = &fc->d.positions;
  uint64_t s = fc->seed ^ 0x5bd1e995u;
  for (int a = 0; a < fc->n_arrays; a++) {
    unsigned char *m = fc->arr_in_arena ? at(fc, fc->arr_base[a]) : (fc->arr_mem[a] = malloc(fc->arr_bytes));
    for (size_t i = 0; i < fc->arr_bytes; i++) m[i] = (unsigned char)rng_next(&s);
    if (p->mode == ROTARY_POSITIONS_OFFSETS && fc->tokens) memcpy(m, fc->offsets, fc->arr_bytes);
    if (p->mode == ROTARY_POSITIONS_IDS_I64 && fc->tokens) memcpy(m, fc->pos, fc->arr_bytes);
    if (p->mode == ROTARY_POSITIONS_IDS_I32)
      for (size_t t = 0; t < fc->tokens; t++) {
        int32_t id = (int32_t)fc->pos[t];
        memcpy(m + 4 * t, &id, 4);
      }
    if (p->mode == ROTARY_POSITIONS_OFFSETS) p->offsets = (const int64_t *)(void *)m;
    else if (p->mode == ROTARY_POSITIONS_COS_SIN) *(a ? &p->sin : &p->cos) = (const float *)(void *)m;
    else p->ids = m;
    if (!fc->arr_in_arena) fc->arr_snap[a] = malloc(fc->arr_bytes), memcpy(fc->arr_snap[a], m, fc->arr_bytes);
  }
}

/* ---- the model of a successful call ---- */

/* cos and sin of token t (sin negated for the inverse): from the rope, or the caller's rows. */
static int token_cos_sin(const fuzz_case *fc, size_t t, float *c, float *s) {
  size_t half = fc->rd / 2;
  if (fc->d.positions.mode == ROTARY_POSITIONS_COS_SIN) {
    size_t rs = fc->row_stride ? fc->row_stride : half;
    const unsigned char *cm = (const unsigned char *)fc->d.positions.cos;
    const unsigned char *sm = (const unsigned char *)fc->d.positions.sin;
    if (fc->arr_in_arena) cm = fc->snap + (cm - fc->arena), sm = fc->snap + (sm - fc->arena);
    memcpy(c, cm + 4 * t * rs, 4 * half), memcpy(s, sm + 4 * t * rs, 4 * half);
  } else if (rotary_rope_cos_sin(fc->rope, &fc->pos[t], 1, c, s) != ROTARY_OK) {
    fuzz_fail("rope_cos_sin refused position %lld that apply accepted", (long long)fc->pos[t]);
    return 0;
  }
  if (fc->d.direction == ROTARY_INVERSE)
    for (size_t i = 0; i < half; i++) s[i] = -s[i];
  return 1;
}

/* The header's NaN rule for a NaN output of the pair (xa, xb). */
static float rule_nan(float xa, float xb) {
  uint32_t a, b, q = 0x7fc00000u;
  memcpy(&a, &xa, 4), memcpy(&b, &xb, 4);
  if ((a & 0x7fffffffu) > 0x7f800000u) q = a | 0x00400000u;
  else if ((b & 0x7fffffffu) > 0x7f800000u) q = b | 0x00400000u;
  float f;
  memcpy(&f, &q, 4);
  return f;
}

/* Writes the model of one output row into expect. */
static void model_row(fuzz_case *fc, const view *vi, const view *vo, int64_t in, int64_t out, const float *c,
                      const float *s) {
  size_t e = vi->esize, half = fc->rd / 2;
  const unsigned char *x = fc->snap + (in - fc->org);
  unsigned char *y = fc->expect + (out - fc->org);
  memcpy(y + fc->rd * e, x + fc->rd * e, (fc->hd - fc->rd) * e);
  for (size_t i = 0; i < half; i++) {
    const int halves = fc->pairing == ROTARY_PAIRING_HALF;
    size_t a = halves ? i : 2 * i, b = halves ? i + half : 2 * i + 1;
    float xa = load_elem(x + a * e, vi->dtype), xb = load_elem(x + b * e, vi->dtype);
    float ya = fmaf(xa, c[i], -(xb * s[i])), yb = fmaf(xa, s[i], xb * c[i]);
    store_elem(y + a * e, vo->dtype, isnan(ya) ? rule_nan(xa, xb) : ya);
    store_elem(y + b * e, vo->dtype, isnan(yb) ? rule_nan(xa, xb) : yb);
  }
}

static void check_success(fuzz_case *fc) {
  size_t half = fc->rd / 2;
  float *c = malloc((half + 1) * 4), *s = malloc((half + 1) * 4);
  memcpy(fc->expect, fc->snap, fc->arena_size);
  for (size_t b = 0; b < fc->batch; b++)
    for (size_t q = 0; q < fc->seq; q++) {
      if (!token_cos_sin(fc, b * fc->seq + q, c, s)) goto done;
      for (int t = 0; t < 2; t++) {
        const view *vi = &fc->v[t ? K_IN : Q_IN], *vo = &fc->v[t ? K_OUT : Q_OUT];
        for (size_t h = 0; h < fc->tp[t].heads; h++)
          model_row(fc, vi, vo, row_addr(vi, b, q, h), row_addr(vo, b, q, h), c, s);
      }
    }
  if (memcmp(fc->arena, fc->expect, fc->arena_size) != 0) {
    size_t i = 0;
    while (fc->arena[i] == fc->expect[i]) i++;
    fuzz_fail("success but arena byte %lld is %#x, the model says %#x (mode %d, dtypes %d/%d, hd %zu rd %zu)",
              (long long)((int64_t)i + fc->org), fc->arena[i], fc->expect[i], (int)fc->d.positions.mode,
              (int)fc->tp[0].dtype, (int)fc->tp[1].dtype, fc->hd, fc->rd);
  }
done:
  free(c), free(s);
}

/* ---- one call ---- */

/* Contexts kept between inputs: [n] has n threads; [0] changes its count with set_threads when asked. */
static rotary_context *fuzz_ctx[5];

static rotary_context *pick_context(uint8_t b) {
  if (b % 8 < 3) return NULL;
  size_t want = 1 + b % 4, slot = b >= 248 ? 0 : want;
  if (!fuzz_ctx[slot] && rotary_context_create(want, &fuzz_ctx[slot]) != ROTARY_OK) {
    fuzz_fail("context_create(%zu) failed", want);
    return NULL;
  }
  if (rotary_context_threads(fuzz_ctx[slot]) != want &&
      (rotary_context_set_threads(fuzz_ctx[slot], want) != ROTARY_OK || rotary_context_threads(fuzz_ctx[slot]) != want))
    fuzz_fail("set_threads(%zu) failed", want);
  return fuzz_ctx[slot];
}

/* Frees the contexts the target keeps between inputs (the replay test calls it at the end). */
static void fuzz_apply_cleanup(void) {
  for (int i = 0; i < 5; i++) {
    rotary_context_destroy(fuzz_ctx[i]);
    fuzz_ctx[i] = NULL;
  }
}

static void fill_tensor(const fuzz_case *fc, rotary_tensor *t, int i) {
  const view *vi = &fc->v[i ? K_IN : Q_IN], *vo = &fc->v[i ? K_OUT : Q_OUT];
  t->dtype = fc->tp[i].dtype;
  t->n_heads = fc->tp[i].heads;
  t->stride_batch = vi->stride[0], t->stride_seq = vi->stride[1], t->stride_head = vi->stride[2];
  t->out_stride_batch = vo->stride[0], t->out_stride_seq = vo->stride[1], t->out_stride_head = vo->stride[2];
  int64_t safe = fc->org + GUARD; /* a pointer into the arena for views with no memory behind them */
  unsigned char *in = at(fc, vi->nomem ? safe : vi->base), *out = at(fc, vo->nomem ? safe : vo->base);
  if (fc->tp[i].in_place) out = in;
  t->in = fc->null_which == (i ? K_IN : Q_IN) ? NULL : in;
  t->out = fc->null_which == (i ? K_OUT : Q_OUT) ? NULL : out;
  if (i == 1 && t->n_heads == 0) t->in = t->out = NULL;
}

/* The verdict parts that do not depend on memory. */
static void judge_plain(fuzz_case *fc, verdict *v) {
  if (fc->d.struct_size != sizeof(rotary_apply_desc)) v->must |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if (!fc->batch || !fc->seq || !fc->tp[0].heads) v->must |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  if ((unsigned)fc->d.direction > 1) v->must |= BIT(ROTARY_ERR_INVALID_ARGUMENT);
  for (int t = 0; t < 2; t++) {
    if (!fc->tp[t].heads) continue;
    if (!dtype_size(fc->tp[t].dtype)) v->must |= BIT(ROTARY_ERR_DTYPE);
    if (fc->v[t ? K_IN : Q_IN].overflow || fc->v[t ? K_OUT : Q_OUT].overflow) v->must |= BIT(ROTARY_ERR_OVERFLOW);
  }
  if (fc->null_which >= 0 && fc->null_which < 4 && fc->v[fc->null_which].used == 0 && fc->tp[fc->null_which / 2].heads)
    v->must |= BIT(ROTARY_ERR_NULL_POINTER);
  if (fc->null_which >= 4 && fc->n_arrays > fc->null_which - 4) v->must |= BIT(ROTARY_ERR_NULL_POINTER);
}

static void null_position_array(fuzz_case *fc) {
  rotary_positions *p = &fc->d.positions;
  if (fc->null_which == 4) p->offsets = NULL, p->ids = NULL, p->cos = NULL;
  if (fc->null_which == 5) p->sin = NULL;
}

static void carve_desc(reader *r, fuzz_case *fc) {
  rotary_apply_desc_init(&fc->d);
  uint8_t b = rd_u8(r);
  if (b >= 250) fc->d.struct_size = b % 2 ? 0 : sizeof(rotary_apply_desc) - 8;
  b = rd_u8(r);
  fc->d.direction = (rotary_direction)(b < 250 ? b % 2 : 2 + b % 3);
  fc->d.batch = fc->batch, fc->d.seq_len = fc->seq;
  b = rd_u8(r);
  fc->null_which = b >= 250 ? b - 250 : -1;
  fc->packed = fc->tp[1].heads && rd_u8(r) >= 224;
  for (int t = 0; t < 2; t++) carve_strides(r, &fc->tp[t], fc->seq, fc->hd);
  if (fc->packed) place_packed(fc);
  for (int t = 0; t < 2; t++) {
    int null_in = fc->null_which == (t ? K_IN : Q_IN), null_out = fc->null_which == (t ? K_OUT : Q_OUT);
    int used = fc->tp[t].heads != 0;
    init_view(&fc->v[t ? K_IN : Q_IN], fc, &fc->tp[t], fc->tp[t].in_s, used && !null_in);
    init_view(&fc->v[t ? K_OUT : Q_OUT], fc, &fc->tp[t], fc->tp[t].out_s, used && !null_out);
  }
  if (!fc->packed) place_views(r, fc);
  else
    for (int t = 0; t < 2; t++) rd_u8(r); /* keep the byte positions of what follows */
}

static void free_case(fuzz_case *fc) {
  rotary_rope_destroy(fc->rope);
  free(fc->rc.inv), free(fc->pos), free(fc->offsets);
  for (int a = 0; a < 2; a++) free(fc->arr_mem[a]), free(fc->arr_snap[a]);
  free(fc->arena), free(fc->snap), free(fc->expect);
}

static void run_apply(fuzz_case *fc, rotary_context *ctx) {
  memcpy(fc->snap, fc->arena, fc->arena_size);
  rotary_status st = rotary_apply(ctx, fc->rope, &fc->d);
  fuzz_apply_status[(unsigned)st < 16 ? (unsigned)st : 15]++;
  verdict v = fc->v_apply;
#ifdef FUZZ_VERBOSE /* one line per call, to check what a corpus file exercises */
  fprintf(stderr, "apply: status %d, must %#x may %#x; batch %zu seq %zu heads %zu/%zu dtypes %d/%d hd %zu rd %zu "
          "mode %d packed %d in_place %d/%d threads %zu\n", (int)st, v.must, v.may, fc->batch, fc->seq, fc->tp[0].heads,
          fc->tp[1].heads, (int)fc->tp[0].dtype, (int)fc->tp[1].dtype, fc->hd, fc->rd, (int)fc->d.positions.mode,
          fc->packed, fc->tp[0].in_place, fc->tp[1].in_place, rotary_context_threads(ctx));
#endif
  if (!status_allowed(v, st))
    fuzz_fail("apply: status %d (%s), must %#x may %#x; batch %zu seq %zu heads %zu/%zu hd %zu rd %zu mode %d "
              "packed %d in_place %d/%d", (int)st, rotary_status_string(st), v.must, v.may, fc->batch, fc->seq,
              fc->tp[0].heads, fc->tp[1].heads, fc->hd, fc->rd, (int)fc->d.positions.mode, fc->packed,
              fc->tp[0].in_place, fc->tp[1].in_place);
  if (st == ROTARY_OK) {
    fuzz_apply_ok++;
    if (!v.must) check_success(fc);
    return;
  }
  fuzz_apply_errors++;
  if (memcmp(fc->snap, fc->arena, fc->arena_size)) fuzz_fail("apply failed with %d but wrote the arena", (int)st);
  for (int a = 0; a < fc->n_arrays && !fc->arr_in_arena; a++)
    if (fc->arr_mem[a] && memcmp(fc->arr_mem[a], fc->arr_snap[a], fc->arr_bytes))
      fuzz_fail("apply failed with %d but wrote a position array", (int)st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, size};
  fuzz_case fc;
  memset(&fc, 0, sizeof(fc));
  fc.seed = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < size; i++) fc.seed = (fc.seed ^ data[i]) * 0x100000001b3ull;
  carve_rope(&r, &fc.rc);
  if (!(fc.rope = make_rope(&fc.rc))) return free_case(&fc), 0;
  fc.hd = fc.rc.cfg.head_dim, fc.rd = fc.rc.cfg.rotary_dim, fc.pairing = fc.rc.cfg.pairing;
  carve_shape(&r, &fc);
  rotary_context *ctx = pick_context(rd_u8(&r));
  int tame = rd_u8(&r) % 2;
  carve_desc(&r, &fc);
  fc.pos = malloc((fc.tokens + 1) * sizeof(int64_t)), fc.offsets = malloc((fc.batch + 1) * sizeof(int64_t));
  verdict v = {0, 0};
  carve_positions(&r, &fc, &v);
  judge_plain(&fc, &v);
  if (!build_arena(&fc)) return fuzz_skipped++, free_case(&fc), 0;
  judge_aliasing(&fc, &v);
  fc.v_apply = v;
  fill_arena(&fc, tame);
  fill_position_arrays(&fc);
  fill_tensor(&fc, &fc.d.q, 0);
  fill_tensor(&fc, &fc.d.k, 1);
  null_position_array(&fc);
  run_apply(&fc, ctx);
  free_case(&fc);
  return 0;
}
