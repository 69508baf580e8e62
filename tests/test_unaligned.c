/* test_unaligned.c: every kernel and rotary_apply accept data at any byte address and give the aligned bits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "test_util.h"

/* Random elements of a dtype (finite, moderate) as bytes. */
static void fill_bytes(unsigned char *p, size_t n, rotary_dtype dt, tu_rng *r) {
  for (size_t e = 0; e < n; e++) tu_store(dt, p, (ptrdiff_t)e, tu_rng_f32(r, -3.0f, 3.0f));
}

/* A copy of `bytes` bytes of src at byte offset `off` of a fresh buffer (freed by the caller via *base). */
static unsigned char *at_offset(const void *src, size_t bytes, size_t off, unsigned char **base) {
  *base = malloc(bytes + 16);
  assert_non_null(*base);
  memset(*base, 0xA5, bytes + 16);
  unsigned char *p = *base + off;
  if (src) memcpy(p, src, bytes);
  return p;
}

/* One kernel, one shape: input and output at byte offsets oi and oo give the bytes of the aligned call. */
static int kernel_case(const rotary_kernel *k, size_t hd, size_t rd, size_t oi, size_t oo, int inplace, tu_rng *r) {
  enum { HEADS = 3 };
  const size_t es = tu_dtype_size(k->dtype), half = rd / 2;
  const ptrdiff_t in_stride = (ptrdiff_t)hd + 1, out_stride = inplace ? in_stride : (ptrdiff_t)hd;
  const size_t in_bytes = ((HEADS - 1) * (size_t)in_stride + hd) * es;
  const size_t out_bytes = ((HEADS - 1) * (size_t)out_stride + hd) * es;
  float c[128], s[128];
  for (size_t i = 0; i < half; i++) c[i] = tu_rng_f32(r, -1.0f, 1.0f), s[i] = tu_rng_f32(r, -1.0f, 1.0f);
  unsigned char *src = malloc(in_bytes), *ref = malloc(inplace ? in_bytes : out_bytes);
  assert_true(src && ref);
  fill_bytes(src, in_bytes / es, k->dtype, r);
  unsigned char *b_in, *b_out = NULL;
  /* the aligned reference (malloc: 16-byte aligned) */
  unsigned char *in = at_offset(src, in_bytes, 0, &b_in), *out = inplace ? in : at_offset(NULL, out_bytes, 0, &b_out);
  k->fn(in, in_stride, out, out_stride, HEADS, hd, rd, c, s, rotary_tuning_defaults()->prefetch_bytes);
  memcpy(ref, out, inplace ? in_bytes : out_bytes);
  free(b_in), free(b_out), b_out = NULL;
  in = at_offset(src, in_bytes, oi, &b_in);
  out = inplace ? in : at_offset(NULL, out_bytes, oo, &b_out);
  k->fn(in, in_stride, out, out_stride, HEADS, hd, rd, c, s, rotary_tuning_defaults()->prefetch_bytes);
  int bad = memcmp(ref, out, inplace ? in_bytes : out_bytes) != 0;
  /* bytes around the output stay untouched */
  const unsigned char *ob = inplace ? b_in : b_out;
  const size_t off = inplace ? oi : oo, bytes = inplace ? in_bytes : out_bytes;
  for (size_t i = 0; i < off; i++) bad |= ob[i] != 0xA5;
  for (size_t i = off + bytes; i < bytes + 16; i++) bad |= ob[i] != 0xA5;
  if (bad)
    printf("  %s hd %zu rd %zu in +%zu out +%zu %s: bytes differ from the aligned call\n", k->name, hd, rd, oi, oo,
           inplace ? "in place" : "out of place");
  free(b_in), free(b_out), free(src), free(ref);
  return bad;
}

/* Every kernel at byte offsets 0-3 of input and output (1 and 3 leave 2-byte elements unaligned, 1-3 4-byte
 * ones), over shapes whose vector bodies, single vectors and scalar tails all run. */
static void test_kernels_any_offset(void **state) {
  (void)state;
  static const size_t shapes[][2] = {{2, 2}, {6, 6}, {10, 8}, {34, 34}, {64, 64}, {80, 32}, {130, 130}, {256, 256}};
  int bad = 0;
  tu_rng r;
  tu_rng_seed(&r, 0xA11A11u);
  for (size_t ki = 0; ki < rotary_kernel_count; ki++) {
    const rotary_kernel *k = &rotary_kernel_list[ki];
    if (!rotary_isa_supported(k->isa)) continue;
    int kbad = 0;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
      for (size_t oi = 0; oi < 4; oi++)
        for (size_t oo = 0; oo < 4; oo++) {
          kbad |= kernel_case(k, shapes[sh][0], shapes[sh][1], oi, oo, 0, &r);
          if (oo == 0) kbad |= kernel_case(k, shapes[sh][0], shapes[sh][1], oi, oi, 1, &r);
        }
    printf("[unaligned] %-38s %s\n", k->name, kbad ? "FAILED" : "same bits at every byte offset");
    bad |= kbad;
  }
  assert_false(bad);
}

/* ---- rotary_apply ---- */

enum { B = 2, S = 5, HQ = 3, HK = 2, HD = 40, RD = 32, MAXPOS = 64 };

typedef struct apply_bufs {
  unsigned char *q_in, *q_out, *k_in, *k_out, *ids, *offs, *cos, *sin; /* the pointers passed */
  unsigned char *mem[8];                                               /* what to free */
} apply_bufs;

/* Builds the call's buffers from the same contents at byte offset `off`, fills the desc, runs it. */
static rotary_status run_apply(rotary_context *ctx, const rotary_rope *rope, rotary_dtype dt,
                               rotary_position_mode mode, int inverse, size_t off, const unsigned char *q_src,
                               const unsigned char *k_src, apply_bufs *o) {
  const size_t es = tu_dtype_size(dt), nq = (size_t)B * S * HQ * HD * es, nk = (size_t)B * S * HK * HD * es;
  int64_t ids64[B * S], offs[B] = {3, 17};
  int32_t ids32[B * S];
  float cs[B * S * RD / 2], sn[B * S * RD / 2];
  for (int t = 0; t < B * S; t++) ids64[t] = (t * 13) % MAXPOS, ids32[t] = (int32_t)((t * 7) % MAXPOS);
  for (int i = 0; i < B * S * RD / 2; i++) cs[i] = 0.001f * (float)i - 0.3f, sn[i] = 0.7f - 0.002f * (float)i;
  o->q_in = at_offset(q_src, nq, off, &o->mem[0]);
  o->q_out = at_offset(NULL, nq, (off + 1) % 4, &o->mem[1]);
  o->k_in = at_offset(k_src, nk, (off + 2) % 4, &o->mem[2]);
  o->k_out = o->k_in; /* k in place */
  o->mem[3] = NULL;
  const int narrow = mode == ROTARY_POSITIONS_IDS_I32;
  o->ids = at_offset(narrow ? (void *)ids32 : (void *)ids64, narrow ? sizeof ids32 : sizeof ids64, off, &o->mem[4]);
  o->offs = at_offset(offs, sizeof offs, (off + 3) % 8, &o->mem[5]);
  o->cos = at_offset(cs, sizeof cs, off, &o->mem[6]);
  o->sin = at_offset(sn, sizeof sn, (off + 2) % 4, &o->mem[7]);
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = B, d.seq_len = S, d.direction = inverse ? ROTARY_INVERSE : ROTARY_FORWARD;
  d.positions.mode = mode;
  d.positions.offset = 5;
  d.positions.offsets = (const int64_t *)(const void *)o->offs;
  d.positions.ids = o->ids;
  d.positions.cos = (const float *)(const void *)o->cos;
  d.positions.sin = (const float *)(const void *)o->sin;
  assert_int_equal(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, o->q_in, o->q_out, dt, S, HQ, HD), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d.k, ROTARY_LAYOUT_BHSD, o->k_in, o->k_out, dt, S, HK, HD), ROTARY_OK);
  return rotary_apply(ctx, rope, &d);
}

static void free_bufs(apply_bufs *o) {
  for (int i = 0; i < 8; i++) free(o->mem[i]);
}

/* Tensors, position arrays and caller cos/sin rows at byte offsets 1-7 give the bits of the aligned call, with
 * and without a context, in every position mode, both pairings and directions, every dtype. */
static void test_apply_any_offset(void **state) {
  (void)state;
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(2, &ctx), ROTARY_OK);
  tu_rng r;
  tu_rng_seed(&r, 0xA11A12u);
  int bad = 0, cases = 0;
  for (int pairing = 0; pairing < 2; pairing++) {
    rotary_config c;
    rotary_config_init(&c, HD);
    c.rotary_dim = RD;
    c.pairing = (rotary_pairing)pairing;
    rotary_rope *rope;
    assert_int_equal(rotary_rope_create(&c, MAXPOS, &rope), ROTARY_OK);
    for (int dt = 0; dt < 3; dt++)
      for (int mode = 0; mode <= ROTARY_POSITIONS_COS_SIN; mode++)
        for (int inverse = 0; inverse < 2; inverse++) {
          const size_t es = tu_dtype_size((rotary_dtype)dt);
          const size_t nq = (size_t)B * S * HQ * HD * es, nk = (size_t)B * S * HK * HD * es;
          unsigned char *q_src = malloc(nq), *k_src = malloc(nk);
          assert_true(q_src && k_src);
          fill_bytes(q_src, nq / es, (rotary_dtype)dt, &r);
          fill_bytes(k_src, nk / es, (rotary_dtype)dt, &r);
          apply_bufs ref;
          assert_int_equal(run_apply(NULL, rope, (rotary_dtype)dt, (rotary_position_mode)mode, inverse, 0, q_src,
                                     k_src, &ref), ROTARY_OK);
          for (size_t off = 1; off < 8; off++)
            for (int with_ctx = 0; with_ctx < 2; with_ctx++) {
              apply_bufs got;
              rotary_status st = run_apply(with_ctx ? ctx : NULL, rope, (rotary_dtype)dt,
                                           (rotary_position_mode)mode, inverse, off, q_src, k_src, &got);
              const int differ =
                  st != ROTARY_OK || memcmp(ref.q_out, got.q_out, nq) || memcmp(ref.k_out, got.k_out, nk);
              if (differ)
                printf("  apply %s %s mode %d %s offset %zu ctx %d: status %d or bits differ\n",
                       tu_dtype_name((rotary_dtype)dt), pairing ? "interleaved" : "half", mode,
                       inverse ? "inverse" : "forward", off, with_ctx, (int)st);
              bad |= differ;
              cases++;
              free_bufs(&got);
            }
          free_bufs(&ref);
          free(q_src), free(k_src);
        }
    rotary_rope_destroy(rope);
  }
  rotary_context_destroy(ctx);
  printf("[unaligned] rotary_apply: %d unaligned calls, %s\n", cases, bad ? "FAILED" : "all the aligned bits");
  assert_false(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernels_any_offset),
      cmocka_unit_test(test_apply_any_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
