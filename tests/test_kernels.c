/* test_kernels.c: every compiled rotation kernel, called directly, against the long-double oracle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_kernels.h"
#include "convert_kernels.h"
#include "copy_kernels.h"
#include "kernels.h"
#include "rotate_fp8_kernels.h"
#include "sincos.h"
#include "oracle.h"
#include "test_util.h"

#define MAX_HALF 128 /* rotary_dim <= 256 in these tests */

/* Where the cos/sin rows of a case come from. */
typedef enum row_kind {
  ROWS_ROPE,     /* correctly rounded fp32 cos/sin of a real position: the kernel is tested apart from the table */
  ROWS_ARBITRARY /* any fp32 values (caller-supplied rows need not lie on the unit circle) */
} row_kind;

typedef struct kcase {
  const rotary_kernel *k;
  size_t head_dim, rotary_dim, n_heads;
  ptrdiff_t in_stride, out_stride; /* signed, |stride| >= head_dim */
  int inplace, inverse, misalign, special;
  tu_guard_side side;
  row_kind rows;
  int64_t pos;
  uint64_t seed;
  int prefetch; /* the kernel's prefetch_bytes: speed only, so every distance must give the same bits */
} kcase;

/* Head rows of one case in a guarded buffer; init keeps the bytes before the call. */
typedef struct kbuf {
  tu_guarded g;
  size_t n;       /* elements */
  ptrdiff_t base; /* element index of head 0 */
  unsigned char *init;
} kbuf;

/* Everything a sweep counts besides the per-pair figures. */
typedef struct kstats {
  oracle_stats pair;
  size_t fail_passthrough, fail_canary, fail_input, fail_class, cases;
} kstats;

/* ---- inputs ---- */

static const uint32_t special_f32[] = {0x7FC00000u, 0xFFC00001u, 0x7FA00000u, 0x7F800000u, 0xFF800000u, 0x00000001u,
                                       0x807FFFFFu, 0x00400000u, 0x00000000u, 0x80000000u, 0x7F7FFFFFu, 0x00800000u};
static const uint32_t special_16[] = {0x7E00u, 0xFE01u, 0x7D00u, 0x7C00u, 0xFC00u, 0x0001u,
                                      0x83FFu, 0x0200u, 0x0000u, 0x8000u, 0x7BFFu, 0x0400u};
static const uint32_t special_bf16[] = {0x7FC0u, 0xFFC1u, 0x7FA0u, 0x7F80u, 0xFF80u, 0x0001u,
                                        0x807Fu, 0x0040u, 0x0000u, 0x8000u, 0x7F7Fu, 0x0080u};
#define N_SPECIAL 12

static void store_bits(rotary_dtype dt, void *base, ptrdiff_t idx, uint32_t bits) {
  if (dt == ROTARY_F32) {
    memcpy((unsigned char *)base + idx * 4, &bits, 4);
  } else {
    uint16_t h = (uint16_t)bits;
    memcpy((unsigned char *)base + idx * 2, &h, 2);
  }
}

/* Mostly moderate values, a quarter spread over many binades; f16 stays far below its overflow. */
static float random_value(tu_rng *r, rotary_dtype dt) {
  if (tu_rng_below(r, 4) != 0) return tu_rng_f32(r, -2.0f, 2.0f);
  return dt == ROTARY_F16 ? tu_rng_f32_wide(r, -20, 3) : tu_rng_f32_wide(r, -30, 30);
}

static void fill_value(const kcase *kc, tu_rng *r, void *base, ptrdiff_t idx) {
  rotary_dtype dt = kc->k->dtype;
  if (kc->special && tu_rng_below(r, 3) == 0) {
    const uint32_t *list = dt == ROTARY_F32 ? special_f32 : dt == ROTARY_F16 ? special_16 : special_bf16;
    store_bits(dt, base, idx, list[tu_rng_below(r, N_SPECIAL)]);
    return;
  }
  tu_store(dt, base, idx, random_value(r, dt));
}

/* ---- buffers ---- */

static size_t row_span(const kcase *kc, ptrdiff_t stride) {
  size_t abs_stride = (size_t)(stride < 0 ? -stride : stride);
  return (kc->n_heads - 1) * abs_stride + kc->head_dim;
}

/* Allocates the rows of one buffer, canaries everywhere, then random head rows (for the input side). */
static int kbuf_make(kbuf *b, const kcase *kc, ptrdiff_t stride, int fill_rows, tu_rng *r) {
  size_t es = tu_dtype_size(kc->k->dtype);
  size_t abs_stride = (size_t)(stride < 0 ? -stride : stride);
  b->n = row_span(kc, stride) + (size_t)kc->misalign;
  b->base = kc->misalign + (stride < 0 ? (ptrdiff_t)((kc->n_heads - 1) * abs_stride) : 0);
  if (tu_guard_alloc(&b->g, b->n * es, kc->side) == NULL) return -1;
  tu_canary_fill(b->g.ptr, b->n * es, kc->seed ^ 0xC0FFEEu);
  for (size_t h = 0; fill_rows && h < kc->n_heads; h++)
    for (size_t d = 0; d < kc->head_dim; d++)
      fill_value(kc, r, b->g.ptr, b->base + (ptrdiff_t)h * stride + (ptrdiff_t)d);
  b->init = malloc(b->n * es);
  if (b->init == NULL) return -1;
  memcpy(b->init, b->g.ptr, b->n * es);
  return 0;
}

static void kbuf_free(kbuf *b) {
  tu_guard_free(&b->g);
  free(b->init);
  b->init = NULL;
}

/* ---- cos/sin rows ---- */

static void make_rows(const kcase *kc, tu_rng *r, float *c, float *s, long double *ct, long double *st) {
  size_t half = kc->rotary_dim / 2;
  long double inv[MAX_HALF];
  oracle_inv_freqs(10000.0, kc->rotary_dim, inv);
  oracle_cos_sin_true(kc->pos, inv, half, 1.0L, ct, st);
  for (size_t i = 0; i < half; i++) {
    if (kc->rows == ROWS_ARBITRARY) {
      ct[i] = c[i] = tu_rng_f32(r, -1.5f, 1.5f);
      st[i] = s[i] = tu_rng_f32(r, -1.5f, 1.5f);
    } else {
      c[i] = oracle_round_f32(ct[i]);
      s[i] = oracle_round_f32(st[i]);
    }
    if (kc->inverse) { /* the inverse rotation is the same kernel with the sin row negated */
      s[i] = -s[i];
      st[i] = -st[i];
    }
  }
}

/* ---- checks ---- */

/* Class a NaN/Inf input pair must give, decided from IEEE rules rather than from the formula: 0 any, 1 NaN,
 * 2 +Inf, 3 -Inf. Only pairs with exactly one non-finite input and c, s finite and nonzero are decided. */
static void expected_classes(float x0, float x1, float c, float s, int cls[2]) {
  cls[0] = cls[1] = 0;
  if (isnan(x0) || isnan(x1)) {
    cls[0] = cls[1] = 1;
    return;
  }
  if (c == 0.0f || s == 0.0f || (isinf(x0) && isinf(x1))) return;
  if (isinf(x0)) {
    cls[0] = (signbit(x0) != signbit(c)) ? 3 : 2;
    cls[1] = (signbit(x0) != signbit(s)) ? 3 : 2;
  } else if (isinf(x1)) {
    cls[0] = (signbit(x1) != signbit(s)) ? 2 : 3; /* -x1 s */
    cls[1] = (signbit(x1) != signbit(c)) ? 3 : 2;
  }
}

static int class_of(float v) { return isnan(v) ? 1 : isinf(v) ? (v > 0 ? 2 : 3) : 0; }

static void check_pair_at(const kcase *kc, const kbuf *in, const kbuf *out, ptrdiff_t irow, ptrdiff_t orow,
                          size_t i, const float *c, const float *s, const long double *ct, const long double *st,
                          kstats *ks) {
  rotary_dtype dt = kc->k->dtype;
  size_t a, b;
  oracle_pair_index(kc->k->pairing, kc->rotary_dim, i, &a, &b);
  oracle_pair p = {dt, tu_load(dt, in->init, irow + (ptrdiff_t)a), tu_load(dt, in->init, irow + (ptrdiff_t)b),
                   c[i], s[i], ct[i], st[i], 2.0, 0.0L};
  uint32_t o0 = tu_load_bits(dt, out->g.ptr, orow + (ptrdiff_t)a);
  uint32_t o1 = tu_load_bits(dt, out->g.ptr, orow + (ptrdiff_t)b);
  oracle_check_pair(&p, o0, o1, &ks->pair);
  int cls[2];
  expected_classes(p.x0, p.x1, p.c, p.s, cls);
  if ((cls[0] && class_of(tu_bits_value(dt, o0)) != cls[0]) || (cls[1] && class_of(tu_bits_value(dt, o1)) != cls[1]))
    ks->fail_class++;
}

/* Every output element: rotated pairs against the oracle, pass-through bit-exact, all else untouched. */
static void check_case(const kcase *kc, const kbuf *in, const kbuf *out, const float *c, const float *s,
                       const long double *ct, const long double *st, kstats *ks) {
  rotary_dtype dt = kc->k->dtype;
  size_t es = tu_dtype_size(dt);
  unsigned char *mask = calloc(out->n, 1);
  assert_non_null(mask);
  for (size_t h = 0; h < kc->n_heads; h++) {
    ptrdiff_t irow = in->base + (ptrdiff_t)h * kc->in_stride, orow = out->base + (ptrdiff_t)h * kc->out_stride;
    for (size_t i = 0; i < kc->rotary_dim / 2; i++) check_pair_at(kc, in, out, irow, orow, i, c, s, ct, st, ks);
    for (size_t d = 0; d < kc->head_dim; d++) mask[orow + (ptrdiff_t)d] = 1;
    for (size_t d = kc->rotary_dim; d < kc->head_dim; d++)
      if (tu_load_bits(dt, out->g.ptr, orow + (ptrdiff_t)d) != tu_load_bits(dt, in->init, irow + (ptrdiff_t)d))
        ks->fail_passthrough++;
  }
  for (size_t e = 0; e < out->n; e++)
    if (!mask[e] && memcmp(out->g.ptr + e * es, out->init + e * es, es) != 0) ks->fail_canary++;
  if (!kc->inplace && memcmp(in->g.ptr, in->init, in->n * es) != 0) ks->fail_input++;
  free(mask);
  ks->cases++;
}

/* Builds the buffers and rows of one case, calls the kernel, checks every byte it could have touched. */
static void run_case(const kcase *kc, kstats *ks) {
  tu_rng r;
  tu_rng_seed(&r, kc->seed);
  size_t half = kc->rotary_dim / 2;
  tu_guarded gc, gs;
  float *c = (float *)tu_guard_alloc(&gc, half * sizeof(float), kc->side);
  tu_guard_side other = kc->side == TU_GUARD_END ? TU_GUARD_START : TU_GUARD_END;
  float *s = (float *)tu_guard_alloc(&gs, half * sizeof(float), other);
  assert_true(c != NULL && s != NULL);
  long double ct[MAX_HALF], st[MAX_HALF];
  make_rows(kc, &r, c, s, ct, st);
  kbuf in = {0}, out = {0};
  assert_int_equal(kbuf_make(&in, kc, kc->in_stride, 1, &r), 0);
  if (!kc->inplace) {
    assert_int_equal(kbuf_make(&out, kc, kc->out_stride, 0, &r), 0);
    assert_int_equal(tu_guard_readonly(&in.g), 0); /* a write into the input would fault */
  }
  const kbuf *o = kc->inplace ? &in : &out;
  size_t es = tu_dtype_size(kc->k->dtype);
  kc->k->fn(in.g.ptr + in.base * (ptrdiff_t)es, kc->in_stride, o->g.ptr + o->base * (ptrdiff_t)es, kc->out_stride,
            kc->n_heads, kc->head_dim, kc->rotary_dim, c, s, kc->prefetch);
  check_case(kc, &in, o, c, s, ct, st, ks);
  kbuf_free(&in);
  if (!kc->inplace) kbuf_free(&out);
  tu_guard_free(&gc);
  tu_guard_free(&gs);
}

/* ---- sweep ---- */

static int supported(const rotary_kernel *k) { return rotary_isa_supported(k->isa); }

static size_t head_dims(size_t *out) {
  size_t n = 0;
  for (size_t hd = 2; hd <= 64; hd += 2) out[n++] = hd;
  out[n++] = 80;
  out[n++] = 96;
  out[n++] = 128;
  out[n++] = 256;
  return n;
}


/* Derives the memory variant (misalignment, guard side, strides, rows, position) from a running counter so that
 * every combination comes up many times over the sweep without a full cartesian product. */
static void vary(kcase *kc, unsigned v, tu_rng *r) {
  static const ptrdiff_t extra[4] = {0, 1, 3, 8};
  ptrdiff_t hd = (ptrdiff_t)kc->head_dim;
  kc->misalign = (int)(v & 1u);
  kc->side = (v >> 1) & 1u ? TU_GUARD_START : TU_GUARD_END;
  kc->in_stride = (hd + extra[(v >> 2) & 3u]) * ((v >> 4) % 3u == 2u ? -1 : 1);
  kc->out_stride = kc->inplace ? kc->in_stride : (hd + extra[(v >> 5) & 3u]) * ((v >> 7) % 3u == 1u ? -1 : 1);
  kc->rows = (v % 5u == 4u) ? ROWS_ARBITRARY : ROWS_ROPE;
  kc->pos = (v % 13u == 0u) ? 0 : (v % 13u == 1u) ? (1 << 20) - 1 : (int64_t)tu_rng_below(r, 100000);
  kc->seed = tu_rng_u64(r);
  static const int prefetch[4] = {-1, 0, 64, 2048};
  kc->prefetch = prefetch[(v / 7u) & 3u];
}

static void sweep_kernel(const rotary_kernel *k, kstats *ks) {
  static const size_t heads[3] = {1, 7, 32};
  size_t hds[40], rds[64];
  size_t nhd = head_dims(hds), n_heads_sets = tu_quick() ? 2 : 3;
  unsigned v = 0;
  tu_rng r;
  tu_rng_seed(&r, 0x5EED0000u + (uint64_t)k->dtype * 16 + (uint64_t)k->pairing);
  for (size_t x = 0; x < nhd; x++) {
    size_t nrd = tu_rotary_dims(hds[x], rds);
    for (size_t y = 0; y < nrd; y++)
      for (size_t z = 0; z < n_heads_sets; z++) {
        /* out of place forward and in place inverse always; the other two on the smaller head counts */
        for (int variant = 0; variant < (heads[z] <= 7 ? 4 : 2); variant++) {
          kcase kc = {k, hds[x], rds[y], heads[z], 0, 0, variant == 1 || variant == 2, variant == 1 || variant == 3,
                      0, 0, TU_GUARD_END, ROWS_ROPE, 0, 0, 0};
          vary(&kc, v++, &r);
          run_case(&kc, ks);
        }
      }
  }
}

static int failures(const kstats *ks) {
  return !oracle_stats_ok(&ks->pair) || ks->fail_passthrough || ks->fail_canary || ks->fail_input ||
         ks->fail_class;
}

static void print_stats(const char *what, const rotary_kernel *k, const kstats *ks) {
  const char *unit = k->dtype == ROTARY_F32 ? "eps*(|x0c|+|x1s|)" : "ulp";
  printf("[%s] %-38s cases %5zu pairs %8zu  max err %.4f %s (vs true cos/sin %.4f)  bound use %.3f  fails: "
         "bound %zu true %zu bits %zu pass %zu canary %zu input %zu class %zu\n",
         what, k->name, ks->cases, ks->pair.pairs, ks->pair.max_err, unit, ks->pair.max_err_true,
         ks->pair.max_bound_use, ks->pair.fail_bound,
         ks->pair.fail_true, ks->pair.fail_bits, ks->fail_passthrough, ks->fail_canary, ks->fail_input,
         ks->fail_class);
}

static void test_sweep(void **state) {
  (void)state;
  size_t tested = 0;
  int bad = 0;
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i];
    if (!supported(k)) {
      printf("[sweep] %-38s skipped: ISA not supported here\n", k->name);
      continue;
    }
    kstats ks = {0};
    sweep_kernel(k, &ks);
    print_stats("sweep", k, &ks);
    bad |= failures(&ks);
    tested++;
  }
  assert_true(tested > 0);
  assert_false(bad);
}

/* ---- special values ---- */

/* NaN, Inf, subnormals, signed zeros and the largest finite values, at a generic position and at position 0. */
static void test_special_values(void **state) {
  (void)state;
  int bad = 0;
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i];
    if (!supported(k)) continue;
    kstats ks = {0};
    static const size_t shapes[][3] = {{64, 64, 7}, {128, 96, 3}, {6, 4, 32}, {2, 2, 5}};
    for (size_t sh = 0; sh < 4; sh++)
      for (int64_t pos = 0; pos <= 12345; pos += 12345)
        for (int inplace = 0; inplace < 2; inplace++) {
          kcase kc = {k, shapes[sh][0], shapes[sh][1], shapes[sh][2], (ptrdiff_t)shapes[sh][0],
                      (ptrdiff_t)shapes[sh][0], inplace, inplace, 1, 1, TU_GUARD_END, ROWS_ROPE, pos,
                      0xABCDu + sh * 7 + (uint64_t)pos + (uint64_t)inplace, 2048};
          run_case(&kc, &ks);
        }
    print_stats("special", k, &ks);
    bad |= failures(&ks);
  }
  assert_false(bad);
}

/* ---- NaN bits ---- */

/* The NaN every kernel must give for a NaN output, stated here independently of the library: x0's NaN quieted when
 * x0 is NaN, else x1's quieted when x1 is NaN, else the positive default NaN (inf * 0, inf - inf, NaN cos/sin). */
static uint32_t expected_nan(float x0, float x1) {
  uint32_t a = tu_f32_bits(x0), b = tu_f32_bits(x1);
  if (isnan(x0)) return a | 0x00400000u;
  if (isnan(x1)) return b | 0x00400000u;
  return 0x7FC00000u;
}

/* One pair's expected output bits in the kernel's dtype. */
static void expected_pair(rotary_dtype dt, float x0, float x1, float c, float s, uint32_t out[2]) {
  float y[2] = {fmaf(x0, c, -(x1 * s)), fmaf(x0, s, x1 * c)};
  for (int k = 0; k < 2; k++) {
    if (isnan(y[k])) y[k] = tu_bits_f32(expected_nan(x0, x1));
    out[k] = tu_round_bits(dt, y[k]);
  }
}

/* Quiet NaNs with payloads and signalling NaNs of both signs, Inf, zeros, and plain values, as dtype bits. */
static uint32_t nan_input(rotary_dtype dt, tu_rng *r) {
  static const uint32_t f32[] = {0x7FC00000u, 0xFFC00000u, 0x7FC12345u, 0xFFD0BEEFu, 0x7F800001u, 0xFFA5A5A5u,
                                 0x7FBFFFFFu, 0x7F800000u, 0xFF800000u, 0x00000000u, 0x80000000u};
  static const uint32_t f16[] = {0x7E00u, 0xFE00u, 0x7E2Bu, 0xFF55u, 0x7C01u, 0xFD3Cu,
                                 0x7DFFu, 0x7C00u, 0xFC00u, 0x0000u, 0x8000u};
  static const uint32_t bf16[] = {0x7FC0u, 0xFFC0u, 0x7FC5u, 0xFFEEu, 0x7F81u, 0xFFA5u,
                                  0x7FBFu, 0x7F80u, 0xFF80u, 0x0000u, 0x8000u};
  const uint32_t *list = dt == ROTARY_F32 ? f32 : dt == ROTARY_F16 ? f16 : bf16;
  if (tu_rng_below(r, 2)) return list[tu_rng_below(r, 11)];
  return tu_round_bits(dt, tu_rng_f32(r, -4.0f, 4.0f));
}

/* cos/sin values: plain ones, exact 0 and +-1 (so that Inf * 0 makes NaNs), and rarely Inf or NaN. */
static float nan_row_value(tu_rng *r) {
  static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x3F800000u, 0xBF800000u, 0x7F800000u, 0x7FC00001u,
                                     0xFFC00002u};
  if (tu_rng_below(r, 3)) return tu_rng_f32(r, -1.0f, 1.0f);
  return tu_bits_f32(special[tu_rng_below(r, 7)]);
}

/* Every kernel gives exactly the bits above for NaN and Inf inputs: payloads and signs included, in x0, x1 or both,
 * in vector bodies, single vectors and tails, in place and out of place. */
static void test_nan_bits(void **state) {
  (void)state;
  static const size_t shapes[][2] = {{2, 2}, {6, 6}, {34, 34}, {64, 64}, {80, 64}, {128, 128}, {200, 194}, {256, 256}};
  enum { HEADS = 3 };
  int bad = 0;
  for (size_t ki = 0; ki < rotary_kernel_count; ki++) {
    const rotary_kernel *k = &rotary_kernel_list[ki];
    if (!supported(k)) continue;
    const rotary_dtype dt = k->dtype;
    const size_t es = tu_dtype_size(dt);
    size_t wrong = 0, nan_out = 0;
    tu_rng r;
    tu_rng_seed(&r, 0x4E614E00u + ki);
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
      for (int inplace = 0; inplace < 2; inplace++) {
        const size_t hd = shapes[sh][0], rd = shapes[sh][1], half = rd / 2, n = HEADS * hd;
        unsigned char *in = malloc(n * es), *out = malloc(n * es);
        float c[128], sn[128];
        assert_true(in && out);
        for (size_t e = 0; e < n; e++) store_bits(dt, in, (ptrdiff_t)e, nan_input(dt, &r));
        for (size_t i = 0; i < half; i++) c[i] = nan_row_value(&r), sn[i] = nan_row_value(&r);
        unsigned char *init = malloc(n * es);
        assert_non_null(init);
        memcpy(init, in, n * es);
        unsigned char *dst = inplace ? in : out;
        k->fn(in, (ptrdiff_t)hd, dst, (ptrdiff_t)hd, HEADS, hd, rd, c, sn, 512);
        for (size_t h = 0; h < HEADS; h++)
          for (size_t i = 0; i < half; i++) {
            size_t a, b;
            oracle_pair_index(k->pairing, rd, i, &a, &b);
            const ptrdiff_t ia = (ptrdiff_t)(h * hd + a), ib = (ptrdiff_t)(h * hd + b);
            uint32_t want[2];
            expected_pair(dt, tu_load(dt, init, ia), tu_load(dt, init, ib), c[i], sn[i], want);
            const uint32_t got[2] = {tu_load_bits(dt, dst, ia), tu_load_bits(dt, dst, ib)};
            for (int q = 0; q < 2; q++) {
              nan_out += tu_bits_isnan(dt, got[q]) != 0;
              if (got[q] == want[q]) continue;
              if (wrong++ < 4)
                printf("  %s hd %zu rd %zu head %zu pair %zu out %d: got 0x%08x want 0x%08x (x0 0x%08x x1 0x%08x "
                       "c 0x%08x s 0x%08x)\n", k->name, hd, rd, h, i, q, (unsigned)got[q], (unsigned)want[q],
                       (unsigned)tu_load_bits(dt, init, ia), (unsigned)tu_load_bits(dt, init, ib),
                       (unsigned)tu_f32_bits(c[i]), (unsigned)tu_f32_bits(sn[i]));
            }
          }
        free(in), free(out), free(init);
      }
    printf("[nan] %-38s NaN outputs %6zu  wrong bits %zu\n", k->name, nan_out, wrong);
    bad |= wrong != 0;
  }
  assert_false(bad);
}

/* ---- registry ---- */

static const char *dtype_tag(rotary_dtype dt) {
  return dt == ROTARY_F32 ? "f32" : dt == ROTARY_F16 ? "f16" : "bf16";
}

/* Every dtype and pairing has a runnable kernel, names follow rotary_<dtype>_rotate_<pairing>__<isa>, and the
 * dispatcher picks a supported kernel of the right kind. */
static void test_registry(void **state) {
  (void)state;
  printf("cpu features: %s\n", rotary_cpu_features());
  for (int dt = 0; dt < 3; dt++)
    for (int pr = 0; pr < 2; pr++) {
      const rotary_kernel *sel = rotary_kernel_select((rotary_dtype)dt, (rotary_pairing)pr);
      assert_non_null(sel);
      assert_int_equal(sel->dtype, dt);
      assert_int_equal(sel->pairing, pr);
      assert_true(supported(sel));
      assert_string_equal(rotary_kernel_name((rotary_dtype)dt, (rotary_pairing)pr), sel->name);
      assert_false(sel->nt);
      /* the non-temporal variant, where there is one, is the chosen kernel's own */
      const rotary_kernel *nt = rotary_kernel_select_nt((rotary_dtype)dt, (rotary_pairing)pr);
      if (nt) {
        assert_true(nt->nt && nt->isa == sel->isa && (int)nt->dtype == dt && (int)nt->pairing == pr);
        assert_true(strncmp(nt->name, sel->name, strlen(sel->name)) == 0);
        assert_string_equal(nt->name + strlen(sel->name), "_nt");
      }
      printf("dispatch %-4s %-11s -> %s\n", dtype_tag((rotary_dtype)dt), pr ? "interleaved" : "half", sel->name);
    }
  assert_null(rotary_kernel_select((rotary_dtype)3, ROTARY_PAIRING_HALF));
  assert_null(rotary_kernel_select(ROTARY_F32, (rotary_pairing)2));
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i];
    char prefix[64];
    snprintf(prefix, sizeof prefix, "rotary_%s_rotate_%s__", dtype_tag(k->dtype),
             k->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved");
    assert_non_null(k->fn);
    assert_true(strncmp(k->name, prefix, strlen(prefix)) == 0);
    const size_t len = strlen(k->name);
    assert_int_equal(k->nt, len > 3 && strcmp(k->name + len - 3, "_nt") == 0);
    assert_true(strlen(k->name) > strlen(prefix));
  }
}

/* The name part of every dtype, fp8 included (the conversion kernels'). */
static const char *any_dtype_tag(rotary_dtype dt) {
  switch (dt) {
    case ROTARY_F32: return "f32";
    case ROTARY_F16: return "f16";
    case ROTARY_BF16: return "bf16";
    case ROTARY_FP8_E4M3: return "fp8";
  }
  return "?";
}

/* The one registry (kernels.h): every name unique, found again by rotary_kernel_find, named by the rule of its
 * operation and ISA, and the same function as its typed list's entry; every typed list entry and every kernel
 * dispatch picks is in it. */
static void test_kernel_registry(void **state) {
  (void)state;
  const size_t n = rotary_kernel_registry_count;
  /* attn_list.h: two registry entries (scores, values) per ROTARY_ATTN_KERNEL row, one per ROTARY_ATTN_EXP row and
   * one per ROTARY_ATTN_ROT_KERNEL row */
  const size_t n_attn_kernels = 0
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA) +1
#define ROTARY_ATTN_EXP(isa, ISA)
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
      ;
  const size_t n_attn_exp = 0
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)
#define ROTARY_ATTN_EXP(isa, ISA) +1
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
      ;
  const size_t n_attn_rot = 0
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)
#define ROTARY_ATTN_EXP(isa, ISA)
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA) +1
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
      ;
  /* attn_dot_list.h: two entries (scores_dot, values_dot) per row, each the function its row names */
  static const struct {
    const char *name;
    const void *fn;
  } dots[] = {
#define ROTARY_ATTN_DOT_KERNEL(dtype, DTYPE, isa, ISA)                                                     \
  {"rotary_attn_" #dtype "_scores_dot__" #isa, (const void *)(uintptr_t)rotary_attn_##dtype##_scores_dot__##isa}, \
      {"rotary_attn_" #dtype "_values_dot__" #isa, (const void *)(uintptr_t)rotary_attn_##dtype##_values_dot__##isa},
#include "attn_dot_list.h"
#undef ROTARY_ATTN_DOT_KERNEL
      {NULL, NULL}};
  const size_t n_attn_dot = sizeof dots / sizeof dots[0] - 1;
  assert_int_equal(n, rotary_kernel_count + rotary_rows_count + rotary_convert_count + 2 * n_attn_kernels + n_attn_exp +
                          n_attn_rot + n_attn_dot + rotary_copy_count + rotary_rotate_fp8_count);
  size_t per_op[14] = {0};
  for (size_t i = 0; i < n; i++) {
    const rotary_kernel_info *e = &rotary_kernel_registry[i];
    assert_non_null(e->name);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(e->name, rotary_kernel_registry[j].name)) fail_msg("duplicate kernel name %s", e->name);
    assert_ptr_equal(rotary_kernel_find(e->name), e);
    char want[96];
    const char *isa = rotary_isa_name(e->isa), *op = rotary_kernel_op_name(e->op);
    switch (e->op) {
      case ROTARY_OP_ROTATE:
      case ROTARY_OP_ROTATE_NT:
        assert_true(e->dtype == e->out_dtype);
        snprintf(want, sizeof want, "rotary_%s_rotate_%s__%s%s", any_dtype_tag(e->dtype), e->variant, isa,
                 e->op == ROTARY_OP_ROTATE_NT ? "_nt" : "");
        break;
      case ROTARY_OP_SINCOS_ROWS: snprintf(want, sizeof want, "rotary_sincos_rows__%s", isa); break;
      case ROTARY_OP_CONVERT:
      case ROTARY_OP_CONVERT_NT:
        snprintf(want, sizeof want, "rotary_%s_to_%s_convert__%s%s", any_dtype_tag(e->dtype),
                 any_dtype_tag(e->out_dtype), isa, e->op == ROTARY_OP_CONVERT_NT ? "_nt" : "");
        assert_string_equal(e->variant + 3, any_dtype_tag(e->out_dtype)); /* "to_<dtype>" */
        break;
      case ROTARY_OP_ATTN_SCORES:
      case ROTARY_OP_ATTN_VALUES:
      case ROTARY_OP_ATTN_SCORES_DOT: /* the same names with _dot (variant "dot") */
      case ROTARY_OP_ATTN_VALUES_DOT: {
        const int dot = e->op == ROTARY_OP_ATTN_SCORES_DOT || e->op == ROTARY_OP_ATTN_VALUES_DOT;
        assert_true(e->out_dtype == ROTARY_F32);
        snprintf(want, sizeof want, "rotary_attn_%s_%s%s__%s", any_dtype_tag(e->dtype),
                 e->op == ROTARY_OP_ATTN_SCORES || e->op == ROTARY_OP_ATTN_SCORES_DOT ? "scores" : "values",
                 dot ? "_dot" : "", isa);
        assert_string_equal(e->variant, dot ? "dot" : "");
        break;
      }
      case ROTARY_OP_ATTN_EXP:
        assert_true(e->dtype == ROTARY_F32 && e->out_dtype == ROTARY_F32);
        snprintf(want, sizeof want, "rotary_attn_exp__%s", isa);
        assert_string_equal(e->variant, "");
        break;
      case ROTARY_OP_ATTN_SCORES_ROT:
        assert_true(e->out_dtype == ROTARY_F32);
        snprintf(want, sizeof want, "rotary_attn_%s_scores_%s__%s", any_dtype_tag(e->dtype), e->variant, isa);
        assert_true(!strcmp(e->variant, "half") || !strcmp(e->variant, "interleaved"));
        break;
      case ROTARY_OP_COPY_NT:
        assert_true(e->dtype == ROTARY_F32 && e->out_dtype == ROTARY_F32);
        snprintf(want, sizeof want, "rotary_copy_nt__%s", isa);
        assert_string_equal(e->variant, "");
        break;
      case ROTARY_OP_ROTATE_FP8:
      case ROTARY_OP_ROTATE_FP8_NT:
        assert_true(e->dtype <= ROTARY_BF16 && e->out_dtype == ROTARY_FP8_E4M3);
        snprintf(want, sizeof want, "rotary_%s_rotate_%s_to_fp8__%s%s", any_dtype_tag(e->dtype), e->variant, isa,
                 e->op == ROTARY_OP_ROTATE_FP8_NT ? "_nt" : "");
        assert_true(!strcmp(e->variant, "half") || !strcmp(e->variant, "interleaved"));
        break;
      default: fail_msg("%s: unknown operation %d", e->name, (int)e->op);
    }
    assert_string_equal(e->name, want);
    assert_string_not_equal(op, "unknown");
    per_op[e->op]++;
    const void *fn = NULL, *typed = NULL;
    if (e->op == ROTARY_OP_ROTATE || e->op == ROTARY_OP_ROTATE_NT) {
      fn = (const void *)(uintptr_t)e->fn.rotate;
      for (size_t k = 0; k < rotary_kernel_count; k++)
        if (!strcmp(rotary_kernel_list[k].name, e->name)) {
          const rotary_kernel *t = &rotary_kernel_list[k];
          assert_true(t->dtype == e->dtype && t->isa == e->isa && t->nt == (e->op == ROTARY_OP_ROTATE_NT));
          assert_string_equal(t->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved", e->variant);
          typed = (const void *)(uintptr_t)t->fn;
        }
    } else if (e->op == ROTARY_OP_SINCOS_ROWS) {
      fn = (const void *)(uintptr_t)e->fn.sincos_rows;
      for (size_t k = 0; k < rotary_rows_count; k++)
        if (!strcmp(rotary_rows_list[k].name, e->name) && rotary_rows_list[k].isa == e->isa)
          typed = (const void *)(uintptr_t)rotary_rows_list[k].fn;
    } else if (e->op == ROTARY_OP_ATTN_SCORES_DOT || e->op == ROTARY_OP_ATTN_VALUES_DOT) {
      fn = e->op == ROTARY_OP_ATTN_SCORES_DOT ? (const void *)(uintptr_t)e->fn.attn_scores
                                              : (const void *)(uintptr_t)e->fn.attn_values;
      for (size_t k = 0; k < n_attn_dot; k++)
        if (!strcmp(dots[k].name, e->name)) typed = dots[k].fn;
    } else if (e->op == ROTARY_OP_ATTN_SCORES_ROT) { /* the one rotary_attn_select_isa hands out with the set */
      fn = (const void *)(uintptr_t)e->fn.attn_scores_rot;
      const int pr = strcmp(e->variant, "half") ? ROTARY_PAIRING_INTERLEAVED : ROTARY_PAIRING_HALF;
      rotary_attn_kernels k;
      if (rotary_attn_select_isa(e->dtype, e->isa, &k) == ROTARY_OK) {
        typed = (const void *)(uintptr_t)k.scores_rot[pr];
        assert_string_equal(k.scores_rot_name[pr], e->name);
      }
    } else if (e->op == ROTARY_OP_ATTN_SCORES || e->op == ROTARY_OP_ATTN_VALUES || e->op == ROTARY_OP_ATTN_EXP) {
      /* the function rotary_attn_select_isa hands out for that dtype and ISA (exp: any cache dtype with that ISA) */
      fn = e->op == ROTARY_OP_ATTN_SCORES   ? (const void *)(uintptr_t)e->fn.attn_scores
           : e->op == ROTARY_OP_ATTN_VALUES ? (const void *)(uintptr_t)e->fn.attn_values
                                            : (const void *)(uintptr_t)e->fn.attn_exp;
      for (int dt = ROTARY_F32; dt <= ROTARY_FP8_E4M3 && !typed; dt++) {
        rotary_attn_kernels k;
        if ((e->op != ROTARY_OP_ATTN_EXP && dt != (int)e->dtype) ||
            rotary_attn_select_isa((rotary_dtype)dt, e->isa, &k) != ROTARY_OK)
          continue;
        typed = e->op == ROTARY_OP_ATTN_SCORES   ? (const void *)(uintptr_t)k.scores
                : e->op == ROTARY_OP_ATTN_VALUES ? (const void *)(uintptr_t)k.values
                                                 : (const void *)(uintptr_t)k.exp;
        assert_string_equal(e->op == ROTARY_OP_ATTN_SCORES   ? k.scores_name
                            : e->op == ROTARY_OP_ATTN_VALUES ? k.values_name
                                                             : k.exp_name,
                            e->name);
      }
    } else if (e->op == ROTARY_OP_ROTATE_FP8 || e->op == ROTARY_OP_ROTATE_FP8_NT) {
      fn = (const void *)(uintptr_t)e->fn.rotate_fp8;
      for (size_t k = 0; k < rotary_rotate_fp8_count; k++) {
        const rotary_rotate_fp8_kernel *t = &rotary_rotate_fp8_list[k];
        if (!strcmp(t->name, e->name) && t->dtype == e->dtype && t->isa == e->isa &&
            t->nt == (e->op == ROTARY_OP_ROTATE_FP8_NT) &&
            !strcmp(t->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved", e->variant))
          typed = (const void *)(uintptr_t)t->fn;
      }
    } else if (e->op == ROTARY_OP_COPY_NT) {
      fn = (const void *)(uintptr_t)e->fn.copy;
      for (size_t k = 0; k < rotary_copy_count; k++)
        if (!strcmp(rotary_copy_list[k].name, e->name) && rotary_copy_list[k].isa == e->isa)
          typed = (const void *)(uintptr_t)rotary_copy_list[k].fn;
    } else {
      fn = (const void *)(uintptr_t)e->fn.convert;
      for (size_t k = 0; k < rotary_convert_count; k++)
        if (!strcmp(rotary_convert_list[k].name, e->name) && rotary_convert_list[k].from == e->dtype &&
            rotary_convert_list[k].to == e->out_dtype && rotary_convert_list[k].isa == e->isa &&
            rotary_convert_list[k].nt == (e->op == ROTARY_OP_CONVERT_NT))
          typed = (const void *)(uintptr_t)rotary_convert_list[k].fn;
    }
    if (!fn || fn != typed) fail_msg("%s: not the function of its typed list", e->name);
  }
  assert_int_equal(per_op[ROTARY_OP_ROTATE] + per_op[ROTARY_OP_ROTATE_NT], rotary_kernel_count);
  assert_int_equal(per_op[ROTARY_OP_SINCOS_ROWS], rotary_rows_count);
  assert_int_equal(per_op[ROTARY_OP_CONVERT] + per_op[ROTARY_OP_CONVERT_NT], rotary_convert_count);
  assert_int_equal(per_op[ROTARY_OP_ATTN_SCORES], n_attn_kernels);
  assert_int_equal(per_op[ROTARY_OP_ATTN_VALUES], n_attn_kernels);
  assert_int_equal(per_op[ROTARY_OP_ATTN_EXP], n_attn_exp);
  assert_int_equal(per_op[ROTARY_OP_ATTN_SCORES_ROT], n_attn_rot);
  assert_int_equal(per_op[ROTARY_OP_ATTN_SCORES_DOT] + per_op[ROTARY_OP_ATTN_VALUES_DOT], n_attn_dot);
  assert_int_equal(per_op[ROTARY_OP_COPY_NT], rotary_copy_count);
  assert_int_equal(per_op[ROTARY_OP_ROTATE_FP8] + per_op[ROTARY_OP_ROTATE_FP8_NT], rotary_rotate_fp8_count);
  assert_non_null(rotary_kernel_find(rotary_copy_nt_select()->name));
  for (int dt = ROTARY_F32; dt <= ROTARY_FP8_E4M3; dt++) {
    rotary_attn_kernels k;
    assert_int_equal(rotary_attn_select((rotary_dtype)dt, &k), ROTARY_OK);
    assert_non_null(rotary_kernel_find(k.scores_name));
    assert_non_null(rotary_kernel_find(k.values_name));
    assert_non_null(rotary_kernel_find(k.exp_name));
    assert_non_null(rotary_kernel_find(k.scores_dot_name));
    assert_non_null(rotary_kernel_find(k.values_dot_name));
  }
  for (int dt = ROTARY_F32; dt <= ROTARY_BF16; dt++)
    for (int pr = 0; pr < 2; pr++) {
      const rotary_kernel *k = rotary_kernel_select((rotary_dtype)dt, (rotary_pairing)pr);
      const rotary_kernel *nt = rotary_kernel_select_nt((rotary_dtype)dt, (rotary_pairing)pr);
      assert_non_null(rotary_kernel_find(k->name));
      if (nt) assert_non_null(rotary_kernel_find(nt->name));
      assert_non_null(rotary_kernel_find(rotary_rotate_fp8_select((rotary_dtype)dt, (rotary_pairing)pr)->name));
      const rotary_rotate_fp8_kernel *f8nt = rotary_rotate_fp8_select_nt((rotary_dtype)dt, (rotary_pairing)pr);
      if (f8nt) assert_non_null(rotary_kernel_find(f8nt->name));
    }
  assert_non_null(rotary_kernel_find(rotary_rows_select()->name));
  assert_null(rotary_kernel_find("rotary_f32_rotate_half__nosuchisa"));
  printf("registry: %zu kernels (%zu rotate, %zu rotate_nt, %zu sincos_rows, %zu convert, %zu attn_scores, "
         "%zu attn_values, %zu attn_exp, %zu attn_scores_rot, %zu attn_dot, %zu copy_nt, %zu rotate_fp8, "
         "%zu convert_nt, %zu rotate_fp8_nt)\n",
         n, per_op[ROTARY_OP_ROTATE], per_op[ROTARY_OP_ROTATE_NT], per_op[ROTARY_OP_SINCOS_ROWS],
         per_op[ROTARY_OP_CONVERT], per_op[ROTARY_OP_ATTN_SCORES], per_op[ROTARY_OP_ATTN_VALUES],
         per_op[ROTARY_OP_ATTN_EXP], per_op[ROTARY_OP_ATTN_SCORES_ROT],
         per_op[ROTARY_OP_ATTN_SCORES_DOT] + per_op[ROTARY_OP_ATTN_VALUES_DOT], per_op[ROTARY_OP_COPY_NT],
         per_op[ROTARY_OP_ROTATE_FP8], per_op[ROTARY_OP_CONVERT_NT], per_op[ROTARY_OP_ROTATE_FP8_NT]);
}

/* Every streaming copy this CPU runs leaves exactly memcpy's bytes, for every length up to a few lines and every
 * alignment of both sides, and nothing outside dst (guard bytes on both sides); it reads nothing past src (which
 * ends against a guard page: src offset 0 copies its last byte) and writes nothing there (read-only); the chosen
 * one is the best enabled. */
static void test_copy_nt(void **state) {
  (void)state;
  enum { GUARD = 64, MAX = 700, SRC = MAX + 128 };
  tu_guarded g;
  unsigned char *const src_buf = tu_guard_alloc(&g, SRC, TU_GUARD_END);
  unsigned char *dst = malloc(MAX + 128 + 2 * GUARD), *want = malloc(MAX + 128 + 2 * GUARD);
  assert_true(src_buf && dst && want);
  const unsigned char *const src_end = src_buf + SRC;
  tu_rng r;
  tu_rng_seed(&r, 0x243f6a8885a308d3u);
  for (size_t i = 0; i < SRC; i++) src_buf[i] = (unsigned char)(tu_rng_u64(&r) >> 56);
  assert_int_equal(tu_guard_readonly(&g), 0);
  size_t ran = 0;
  for (size_t k = 0; k < rotary_copy_count; k++) {
    const rotary_copy_kernel *c = &rotary_copy_list[k];
    if (!rotary_isa_supported(c->isa)) continue;
    ran++;
    for (size_t bytes = 0; bytes <= MAX; bytes += bytes < 160 ? 1 : 37)
      for (size_t so = 0; so < 64; so += 7)
        for (size_t doff = 0; doff < 64; doff += bytes < 160 ? 5 : 1) {
          memset(dst, 0xa5, MAX + 128 + 2 * GUARD);
          memset(want, 0xa5, MAX + 128 + 2 * GUARD);
          const unsigned char *src = src_end - bytes - so;
          memcpy(want + GUARD + doff, src, bytes);
          c->fn(dst + GUARD + doff, src, bytes);
          if (memcmp(dst, want, MAX + 128 + 2 * GUARD))
            fail_msg("%s: %zu bytes, src offset %zu, dst offset %zu differ from memcpy", c->name, bytes, so, doff);
        }
  }
  assert_true(ran >= 1);
  const rotary_copy_kernel *best = rotary_copy_nt_select();
  assert_true(rotary_isa_enabled(best->isa));
  for (size_t k = 0; k < rotary_copy_count; k++)
    if (rotary_isa_enabled(rotary_copy_list[k].isa)) assert_true(rotary_copy_list[k].isa <= best->isa);
  tu_guard_free(&g);
  free(dst), free(want);
}

static int is_word_char(char c) { return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

/* Nonzero when `name` occurs in text as a whole identifier. */
static int has_identifier(const char *text, const char *name) {
  const size_t n = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    const char before = p == text ? ' ' : p[-1], after = p[n];
    if (!is_word_char(before) && !is_word_char(after)) return 1;
  }
  return 0;
}

/* Every kernel's definition is found by grepping its full name: each registry name occurs literally in a .c file
 * of src/backend/cpu/kernels/ (the files whose templates build names by macros list them in a comment). The
 * source tree is found from this file's path; a test binary moved away from it has nothing to check. */
static void test_kernel_names_in_source(void **state) {
  (void)state;
  char root[4096];
  snprintf(root, sizeof root, "%s", __FILE__);
  char *cut = strstr(root, "tests/test_kernels.c");
  if (!cut || root[0] != '/') {
    printf("source tree not found from %s: names not checked\n", __FILE__);
    return;
  }
  *cut = 0;
  static const char *folders[] = {"generic", "x86", "arm"};
  size_t cap = 1 << 16, len = 0;
  char *all = malloc(cap);
  assert_non_null(all);
  for (size_t f = 0; f < sizeof folders / sizeof folders[0]; f++) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%ssrc/backend/cpu/kernels/%s", root, folders[f]);
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      const size_t nl = strlen(e->d_name);
      if (nl < 3 || strcmp(e->d_name + nl - 2, ".c") != 0) continue;
      char path[4500];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      FILE *fp = fopen(path, "rb");
      assert_non_null(fp);
      for (size_t got; (got = fread(all + len, 1, cap - len - 1, fp)) > 0;) {
        len += got;
        if (cap - len < 4096) {
          cap *= 2;
          all = realloc(all, cap);
          assert_non_null(all);
        }
      }
      fclose(fp);
      all[len++] = '\n';
    }
    closedir(d);
  }
  all[len] = 0;
  int missing = 0;
  for (size_t i = 0; i < rotary_kernel_registry_count; i++)
    if (!has_identifier(all, rotary_kernel_registry[i].name)) {
      printf("not found literally in src/backend/cpu/kernels/*/*.c: %s\n", rotary_kernel_registry[i].name);
      missing++;
    }
  free(all);
  assert_int_equal(missing, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_kernel_registry),
      cmocka_unit_test(test_kernel_names_in_source),
      cmocka_unit_test(test_copy_nt),
      cmocka_unit_test(test_special_values),
      cmocka_unit_test(test_nan_bits),
      cmocka_unit_test(test_sweep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
