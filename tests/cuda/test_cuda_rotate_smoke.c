/* test_cuda_rotate_smoke.c: a few rotary_cuda_apply calls compared bit for bit with rotary_apply on the CPU. */
#include <cuda_runtime_api.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rotary.h"
#include "test_util.h"

#define CK(call) assert_int_equal((int)(call), 0)

/* One tensor of a case: heads, dtype, strides (elements, non-negative) and a byte misalignment of its buffers. */
typedef struct smoke_tensor {
  size_t heads;
  rotary_dtype dtype;
  size_t sb, ss, sh;       /* input strides: batch, seq, head */
  size_t osb, oss, osh;    /* output strides (out of place) */
  size_t misalign;         /* bytes added to the buffers' start */
  int in_place;
} smoke_tensor;

typedef struct smoke_case {
  const char *name;
  size_t head_dim, rotary_dim, max_positions; /* max_positions 0: table-free */
  rotary_pairing pairing;
  size_t n_streams;                           /* 0/1: one stream; else SECTIONS over rotary_dim/2 */
  size_t batch, seq_len;
  rotary_position_mode mode;
  rotary_direction direction;
  smoke_tensor q, k;
} smoke_case;

static size_t extent(const smoke_tensor *t, size_t batch, size_t seq, size_t head_dim, int out) {
  const size_t sb = out ? t->osb : t->sb, ss = out ? t->oss : t->ss, sh = out ? t->osh : t->sh;
  return (batch - 1) * sb + (seq - 1) * ss + (t->heads - 1) * sh + head_dim;
}

/* Host and device copies of one tensor's buffers, and its descriptor on each side. */
typedef struct smoke_buf {
  size_t in_bytes, out_bytes;
  unsigned char *h_in, *h_out, *d_in_base, *d_out_base;
} smoke_buf;

static void tensor_setup(const smoke_case *c, const smoke_tensor *t, smoke_buf *b, rotary_tensor *cpu,
                         rotary_tensor *gpu, tu_rng *rng) {
  memset(cpu, 0, sizeof *cpu);
  memset(gpu, 0, sizeof *gpu);
  memset(b, 0, sizeof *b);
  if (!t->heads) return;
  const size_t es = tu_dtype_size(t->dtype);
  const size_t n_in = extent(t, c->batch, c->seq_len, c->head_dim, 0);
  const size_t n_out = t->in_place ? n_in : extent(t, c->batch, c->seq_len, c->head_dim, 1);
  b->in_bytes = n_in * es + t->misalign;
  b->out_bytes = n_out * es + t->misalign;
  b->h_in = malloc(b->in_bytes);
  b->h_out = malloc(b->out_bytes);
  assert_non_null(b->h_in);
  assert_non_null(b->h_out);
  for (size_t i = 0; i < b->in_bytes; i++) b->h_in[i] = (unsigned char)tu_rng_below(rng, 256);
  /* mostly ordinary values, with the occasional NaN / Inf pattern the random bytes give */
  for (size_t i = 0; i < n_in; i++) {
    if (tu_rng_below(rng, 32) == 0) continue;
    const float v = tu_rng_f32_wide(rng, -8, 8);
    const uint32_t bits = tu_round_bits(t->dtype, v);
    memcpy(b->h_in + t->misalign + i * es, &bits, es); /* little-endian: the low es bytes */
  }
  for (size_t i = 0; i < b->out_bytes; i++) b->h_out[i] = (unsigned char)(2 * tu_rng_below(rng, 128) + 1);
  CK(cudaMalloc((void **)&b->d_in_base, b->in_bytes));
  CK(cudaMemcpy(b->d_in_base, b->h_in, b->in_bytes, cudaMemcpyHostToDevice));
  if (!t->in_place) {
    CK(cudaMalloc((void **)&b->d_out_base, b->out_bytes));
    CK(cudaMemcpy(b->d_out_base, b->h_out, b->out_bytes, cudaMemcpyHostToDevice));
  }
  rotary_tensor r = {0};
  r.dtype = t->dtype;
  r.n_heads = t->heads;
  r.stride_batch = (ptrdiff_t)t->sb;
  r.stride_seq = (ptrdiff_t)t->ss;
  r.stride_head = (ptrdiff_t)t->sh;
  r.out_stride_batch = (ptrdiff_t)(t->in_place ? t->sb : t->osb);
  r.out_stride_seq = (ptrdiff_t)(t->in_place ? t->ss : t->oss);
  r.out_stride_head = (ptrdiff_t)(t->in_place ? t->sh : t->osh);
  *cpu = r;
  *gpu = r;
  cpu->in = b->h_in + t->misalign;
  cpu->out = t->in_place ? (void *)(b->h_in + t->misalign) : (void *)(b->h_out + t->misalign);
  gpu->in = b->d_in_base + t->misalign;
  gpu->out = t->in_place ? (void *)(b->d_in_base + t->misalign) : (void *)(b->d_out_base + t->misalign);
}

/* The GPU's result buffer (the input for in place) equals the CPU's, byte for byte. */
static void tensor_compare(const smoke_case *c, const smoke_tensor *t, smoke_buf *b, const char *which) {
  if (!t->heads) return;
  const size_t bytes = t->in_place ? b->in_bytes : b->out_bytes;
  unsigned char *got = malloc(bytes);
  assert_non_null(got);
  CK(cudaMemcpy(got, t->in_place ? b->d_in_base : b->d_out_base, bytes, cudaMemcpyDeviceToHost));
  const unsigned char *want = t->in_place ? b->h_in : b->h_out;
  size_t first = bytes;
  for (size_t i = 0; i < bytes && first == bytes; i++) first = got[i] != want[i] ? i : bytes;
  if (first != bytes) fail_msg("%s: %s differs from the CPU first at byte %zu of %zu", c->name, which, first, bytes);
  free(got);
  free(b->h_in);
  free(b->h_out);
  CK(cudaFree(b->d_in_base));
  CK(cudaFree(b->d_out_base));
}

static void run_case(const smoke_case *c) {
  tu_rng rng;
  tu_rng_seed(&rng, 0x5eed + c->head_dim * 131 + c->rotary_dim);
  rotary_config cfg;
  rotary_config_init(&cfg, c->head_dim);
  cfg.rotary_dim = c->rotary_dim;
  cfg.pairing = c->pairing;
  const size_t half = c->rotary_dim / 2;
  if (c->n_streams > 1) {
    cfg.streams.layout = ROTARY_STREAMS_SECTIONS;
    cfg.streams.n_streams = c->n_streams;
    for (size_t j = 0; j < c->n_streams; j++) cfg.streams.sections[j] = half / c->n_streams;
    cfg.streams.sections[0] += half % c->n_streams;
  }
  rotary_rope *rope = NULL;
  CK(rotary_rope_create(&cfg, c->max_positions, &rope));
  rotary_cuda_rope *crope = NULL;
  CK(rotary_cuda_rope_create(rope, 0, &crope));

  rotary_apply_desc cpu, gpu;
  rotary_apply_desc_init(&cpu);
  cpu.batch = c->batch;
  cpu.seq_len = c->seq_len;
  cpu.direction = c->direction;
  smoke_buf qb, kb;
  tensor_setup(c, &c->q, &qb, &cpu.q, &gpu.q, &rng);
  tensor_setup(c, &c->k, &kb, &cpu.k, &gpu.k, &rng);
  const rotary_tensor gq = gpu.q, gk = gpu.k;
  gpu = cpu;
  gpu.q = gq;
  gpu.k = gk;

  /* positions: host arrays for the CPU, device copies for the GPU */
  const size_t tokens = c->batch * c->seq_len, streams = c->n_streams > 1 ? c->n_streams : 1;
  const int64_t limit = c->max_positions ? (int64_t)c->max_positions : 100000;
  int64_t offsets[64];
  int64_t ids64[4 * 256];
  int32_t ids32[4 * 256];
  float rows[2 * 256 * 80];
  assert_true(c->batch <= 64 && tokens * streams <= 4 * 256 && tokens * (half + 3) <= 256 * 80);
  void *d_pos = NULL, *d_pos2 = NULL;
  rotary_positions *pc = &cpu.positions, *pg = &gpu.positions;
  pc->mode = pg->mode = c->mode;
  switch (c->mode) {
    case ROTARY_POSITIONS_OFFSET: pc->offset = pg->offset = limit - (int64_t)c->seq_len; break;
    case ROTARY_POSITIONS_OFFSETS:
      for (size_t b = 0; b < c->batch; b++) offsets[b] = (int64_t)tu_rng_below(&rng, (uint64_t)(limit - (int64_t)c->seq_len + 1));
      pc->offsets = offsets;
      CK(cudaMalloc(&d_pos, c->batch * 8));
      CK(cudaMemcpy(d_pos, offsets, c->batch * 8, cudaMemcpyHostToDevice));
      pg->offsets = d_pos;
      break;
    case ROTARY_POSITIONS_IDS_I32:
    case ROTARY_POSITIONS_IDS_I64:
    case ROTARY_POSITIONS_STREAMS_I32:
    case ROTARY_POSITIONS_STREAMS_I64: {
      const int wide = c->mode == ROTARY_POSITIONS_IDS_I64 || c->mode == ROTARY_POSITIONS_STREAMS_I64;
      const int multi = c->mode == ROTARY_POSITIONS_STREAMS_I32 || c->mode == ROTARY_POSITIONS_STREAMS_I64;
      const size_t n = tokens * (multi ? streams : 1);
      for (size_t i = 0; i < n; i++) {
        /* multi-stream: some tokens with all streams equal (text), others not */
        const int64_t v = (int64_t)tu_rng_below(&rng, (uint64_t)limit);
        ids64[i] = (multi && i >= tokens && (i % tokens) % 3 == 0) ? ids64[i % tokens] : v;
        ids32[i] = (int32_t)ids64[i];
      }
      if (multi) pc->n_streams = pg->n_streams = streams;
      pc->ids = wide ? (const void *)ids64 : (const void *)ids32;
      CK(cudaMalloc(&d_pos, n * (wide ? 8 : 4)));
      CK(cudaMemcpy(d_pos, pc->ids, n * (wide ? 8 : 4), cudaMemcpyHostToDevice));
      pg->ids = d_pos;
      break;
    }
    case ROTARY_POSITIONS_COS_SIN: {
      /* row_stride half + 3 and the rows one float off 16-byte alignment: the GPU's per-frequency path */
      const size_t stride = half + 3, n = tokens * stride;
      for (size_t i = 0; i < 2 * n; i++) rows[i] = tu_rng_f32(&rng, -1.0f, 1.0f);
      pc->cos = rows;
      pc->sin = rows + n;
      pc->row_stride = pg->row_stride = stride;
      CK(cudaMalloc(&d_pos, (n + 1) * 4));
      CK(cudaMalloc(&d_pos2, (n + 1) * 4));
      CK(cudaMemcpy((float *)d_pos + 1, rows, n * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy((float *)d_pos2 + 1, rows + n, n * 4, cudaMemcpyHostToDevice));
      pg->cos = (const float *)d_pos + 1;
      pg->sin = (const float *)d_pos2 + 1;
      break;
    }
  }

  CK(rotary_apply(NULL, rope, &cpu));
  int32_t *d_flags = NULL, flags = -1;
  CK(cudaMalloc((void **)&d_flags, 4));
  CK(cudaMemset(d_flags, 0, 4));
  CK(rotary_cuda_apply(crope, &gpu, NULL, d_flags));
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(&flags, d_flags, 4, cudaMemcpyDeviceToHost));
  assert_int_equal(flags, 0);
  tensor_compare(c, &c->q, &qb, "q");
  tensor_compare(c, &c->k, &kb, "k");
  CK(cudaFree(d_flags));
  CK(cudaFree(d_pos));
  CK(cudaFree(d_pos2));
  rotary_cuda_rope_destroy(crope);
  rotary_rope_destroy(rope);
}

/* BSHD strides for `heads` heads of head_dim */
#define BSHD(h, hd, seq) (seq) * (h) * (hd), (h) * (hd), (hd)

static void test_vector_paths(void **state) {
  (void)state;
  const rotary_dtype dts[3] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  for (int d = 0; d < 3; d++) {
    for (int pairing = 0; pairing < 2; pairing++) {
      /* the fast path: BSHD in place, GQA 4q/2k, ids positions, forward */
      smoke_case c = {"vector in place", 128, 128, 4096, (rotary_pairing)pairing, 0, 2, 7,
                      ROTARY_POSITIONS_IDS_I64, ROTARY_FORWARD,
                      {4, dts[d], BSHD(4, 128, 7), 0, 0, 0, 0, 1}, {2, dts[d], BSHD(2, 128, 7), 0, 0, 0, 0, 1}};
      run_case(&c);
      /* partial rotary out of place (the tail copied), offsets, inverse */
      smoke_case o = {"vector partial out of place", 96, 32, 4096, (rotary_pairing)pairing, 0, 3, 5,
                      ROTARY_POSITIONS_OFFSETS, ROTARY_INVERSE,
                      {3, dts[d], BSHD(3, 96, 5), BSHD(3, 96, 5), 0, 0}, {1, dts[d], BSHD(1, 96, 5), BSHD(1, 96, 5), 0, 0}};
      run_case(&o);
    }
  }
}

static void test_general_paths(void **state) {
  (void)state;
  const rotary_dtype dts[3] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  for (int d = 0; d < 3; d++) {
    for (int pairing = 0; pairing < 2; pairing++) {
      /* misaligned buffers, padded strides, partial rotary, caller cos/sin rows off alignment, k another dtype */
      smoke_case g = {"general misaligned", 40, 24, 0, (rotary_pairing)pairing, 0, 2, 3, ROTARY_POSITIONS_COS_SIN,
                      ROTARY_FORWARD, {3, dts[d], 3 * 3 * 44, 3 * 44, 44, 3 * 3 * 41, 3 * 41, 41, 2, 0},
                      {2, dts[(d + 1) % 3], 500, 130, 43, 0, 0, 0, 1, 1}};
      run_case(&g);
      /* multi-stream rope (3 sections) with per-stream ids, int32, heads-major layout, in place */
      smoke_case s = {"general streams", 64, 64, 2048, (rotary_pairing)pairing, 3, 2, 6, ROTARY_POSITIONS_STREAMS_I32,
                      ROTARY_INVERSE, {2, dts[d], 2 * 6 * 64, 64, 6 * 64, 0, 0, 0, 0, 1},
                      {1, dts[d], 6 * 64, 64, 0, 0, 0, 0, 0, 1}};
      run_case(&s);
      /* table-free rope, offset positions near the top of the small range, out of place */
      smoke_case f = {"vector table-free", 64, 64, 0, (rotary_pairing)pairing, 0, 1, 9, ROTARY_POSITIONS_OFFSET,
                      ROTARY_FORWARD, {2, dts[d], BSHD(2, 64, 9), BSHD(2, 64, 9), 0, 0},
                      {0, dts[d], 0, 0, 0, 0, 0, 0, 0, 0}};
      run_case(&f);
    }
  }
}

/* A token whose id is out of range is skipped whole and flagged; the others are written. */
static void test_invalid_position(void **state) {
  (void)state;
  rotary_config cfg;
  rotary_config_init(&cfg, 64);
  rotary_rope *rope = NULL;
  CK(rotary_rope_create(&cfg, 16, &rope));
  rotary_cuda_rope *crope = NULL;
  CK(rotary_cuda_rope_create(rope, 0, &crope));
  const size_t tokens = 4, n = tokens * 2 * 64;
  uint16_t host[4 * 2 * 64], want[4 * 2 * 64], got[4 * 2 * 64];
  for (size_t i = 0; i < n; i++) host[i] = want[i] = tu_f32_to_bf16((float)(i % 97) - 48.0f);
  const int64_t ids[4] = {3, 16, 15, -1}; /* tokens 1 and 3 out of range */
  const int64_t ok_ids[4] = {3, 0, 15, 0};
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.seq_len = tokens;
  d.positions.mode = ROTARY_POSITIONS_IDS_I64;
  d.positions.ids = ok_ids;
  CK(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, want, want, ROTARY_BF16, tokens, 2, 64));
  CK(rotary_apply(NULL, rope, &d));
  memcpy(want + 1 * 128, host + 1 * 128, 128 * 2); /* skipped tokens keep their input */
  memcpy(want + 3 * 128, host + 3 * 128, 128 * 2);
  void *dq = NULL, *dids = NULL;
  int32_t *dflags = NULL, flags = 0;
  CK(cudaMalloc(&dq, sizeof host));
  CK(cudaMalloc(&dids, sizeof ids));
  CK(cudaMalloc((void **)&dflags, 4));
  CK(cudaMemcpy(dq, host, sizeof host, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dids, ids, sizeof ids, cudaMemcpyHostToDevice));
  CK(cudaMemset(dflags, 0, 4));
  d.positions.ids = dids;
  CK(rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, dq, dq, ROTARY_BF16, tokens, 2, 64));
  CK(rotary_cuda_apply(crope, &d, NULL, dflags));
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(got, dq, sizeof got, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(&flags, dflags, 4, cudaMemcpyDeviceToHost));
  assert_int_equal(flags, ROTARY_CUDA_FLAG_POSITION);
  assert_memory_equal(got, want, sizeof got);
  CK(cudaFree(dq));
  CK(cudaFree(dids));
  CK(cudaFree(dflags));
  rotary_cuda_rope_destroy(crope);
  rotary_rope_destroy(rope);
}

int main(void) {
  if (rotary_cuda_device_count() == 0) {
    fprintf(stderr, "test_cuda_rotate_smoke: skipped: no CUDA device\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vector_paths),
      cmocka_unit_test(test_general_paths),
      cmocka_unit_test(test_invalid_position),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
