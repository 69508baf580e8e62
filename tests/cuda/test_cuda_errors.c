/* test_cuda_errors.c: rotary_cuda_apply's host checks (CPU statuses, nothing launched or written), DEVICE, the
 * device-side position flag, and rotary_cuda_rope_create/memory_bytes/device/destroy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "rotary.h"
#include "test_util.h"

enum { B = 2, S = 4, T = B * S, HQ = 2, HK = 1, D = 64, MAXPOS = 64 };
#define QN ((size_t)T * HQ * D) /* elements of q */
#define KN ((size_t)T * HK * D)
#define SLACK 2 /* buffers are twice their tensor, so that a shifted view stays inside the allocation */

/* Buffers of one side (host or device) and their initial bytes. */
typedef struct bufs {
  float *q_in, *q_out, *k_in, *k_out;
  int64_t *ids;
} bufs;

typedef struct fixture {
  rotary_rope *host_rope;
  rotary_cuda_rope *rope;
  cudaStream_t stream;
  bufs h, d;             /* host buffers (CPU calls) and device buffers */
  unsigned char *init[4]; /* initial bytes of q_in, q_out, k_in, k_out */
  int devices;
} fixture;

static const size_t buf_bytes[4] = {QN * 4 * SLACK, QN * 4 * SLACK, KN * 4 * SLACK, KN * 4 * SLACK};

static void **buf_slot(bufs *b, int i) {
  return i == 0 ? (void **)&b->q_in : i == 1 ? (void **)&b->q_out : i == 2 ? (void **)&b->k_in : (void **)&b->k_out;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->devices = rotary_cuda_device_count();
  rotary_config c;
  rotary_config_init(&c, D);
  if (rotary_rope_create(&c, MAXPOS, &f->host_rope) != ROTARY_OK) return -1;
  if (rotary_cuda_rope_create(f->host_rope, 0, &f->rope) != ROTARY_OK) return -1;
  if (cudaSetDevice(0) != cudaSuccess || cudaStreamCreateWithFlags(&f->stream, cudaStreamNonBlocking) != cudaSuccess)
    return -1;
  tu_rng r;
  tu_rng_seed(&r, 0xE4404);
  for (int i = 0; i < 4; i++) {
    f->init[i] = malloc(buf_bytes[i]);
    void *hp = malloc(buf_bytes[i]), *dp = NULL;
    if (!f->init[i] || !hp || cudaMalloc(&dp, buf_bytes[i]) != cudaSuccess) return -1;
    if (i % 2 == 0) cu_fill_random(ROTARY_F32, f->init[i], buf_bytes[i] / 4, &r, 0);
    else cu_poison(f->init[i], buf_bytes[i], (uint64_t)i);
    *buf_slot(&f->h, i) = hp;
    *buf_slot(&f->d, i) = dp;
  }
  f->h.ids = malloc(T * sizeof(int64_t));
  if (!f->h.ids || cudaMalloc((void **)&f->d.ids, T * sizeof(int64_t)) != cudaSuccess) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 4; i++) {
    free(*buf_slot(&f->h, i));
    cudaFree(*buf_slot(&f->d, i));
    free(f->init[i]);
  }
  free(f->h.ids);
  cudaFree(f->d.ids);
  rotary_cuda_rope_destroy(f->rope);
  rotary_rope_destroy(f->host_rope);
  cudaStreamDestroy(f->stream);
  free(f);
  return 0;
}

/* Puts the initial bytes back into both sides' buffers and valid ids (0 .. T-1). */
static void reset(fixture *f) {
  int64_t ids[T];
  for (int t = 0; t < T; t++) ids[t] = t * 7 % MAXPOS;
  for (int i = 0; i < 4; i++) {
    memcpy(*buf_slot(&f->h, i), f->init[i], buf_bytes[i]);
    cu_to_device(*buf_slot(&f->d, i), f->init[i], buf_bytes[i]);
  }
  memcpy(f->h.ids, ids, sizeof ids);
  cu_to_device(f->d.ids, ids, sizeof ids);
}

/* A valid out-of-place BSHD call on one side's buffers: IDS_I64 positions, q 2 heads, k 1 head, f32. */
static void make_desc(const bufs *b, rotary_apply_desc *d) {
  rotary_apply_desc_init(d);
  d->batch = B;
  d->seq_len = S;
  d->positions.mode = ROTARY_POSITIONS_IDS_I64;
  d->positions.ids = b->ids;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, b->q_in, b->q_out, ROTARY_F32, S, HQ, D), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, b->k_in, b->k_out, ROTARY_F32, S, HK, D), ROTARY_OK);
}

/* Fails unless every device buffer still holds its initial bytes. */
static void check_untouched(fixture *f, const char *what) {
  for (int i = 0; i < 4; i++) {
    unsigned char *got = malloc(buf_bytes[i]);
    assert_non_null(got);
    cu_to_host(got, *buf_slot(&f->d, i), buf_bytes[i]);
    const int same = memcmp(got, f->init[i], buf_bytes[i]) == 0;
    free(got);
    if (!same) fail_msg("%s: device buffer %d was written", what, i);
  }
}

typedef void (*mutate_fn)(rotary_apply_desc *d);

static void m_stride(rotary_apply_desc *d) { d->q.out_stride_head = D / 2; }
static void m_overlap(rotary_apply_desc *d) { d->k.out = (float *)d->q.out + 1; }
static void m_batch0(rotary_apply_desc *d) { d->batch = 0; }
static void m_struct_size(rotary_apply_desc *d) { d->struct_size = 0; }
static void m_mode(rotary_apply_desc *d) { d->positions.mode = (rotary_position_mode)99; }
static void m_dtype_fp8(rotary_apply_desc *d) { d->q.dtype = ROTARY_FP8_E4M3; }
static void m_dtype_unknown(rotary_apply_desc *d) { d->k.dtype = (rotary_dtype)77; }
static void m_offset_past(rotary_apply_desc *d) {
  d->positions.mode = ROTARY_POSITIONS_OFFSET;
  d->positions.offset = MAXPOS - S + 1; /* the last token at MAXPOS */
}
static void m_offset_negative(rotary_apply_desc *d) {
  d->positions.mode = ROTARY_POSITIONS_OFFSET;
  d->positions.offset = -1;
}
static void m_streams(rotary_apply_desc *d) {
  d->positions.mode = ROTARY_POSITIONS_STREAMS_I64;
  d->positions.n_streams = 2; /* the rope has one stream */
}
static void m_null_q(rotary_apply_desc *d) { d->q.in = NULL; }
static void m_null_ids(rotary_apply_desc *d) { d->positions.ids = NULL; }

/* Each bad descriptor: the CPU's status (the named one) on host buffers, the same from rotary_cuda_apply on device
 * buffers of the same geometry, nothing enqueued (checked by capturing the call into a graph: no node) and no byte
 * of any device buffer changed. */
static void test_host_checks(void **state) {
  fixture *f = *state;
  static const struct {
    const char *name;
    mutate_fn fn;
    rotary_status st;
  } cases[] = {
      {"out_stride_head below head_dim", m_stride, ROTARY_ERR_STRIDE},
      {"k out one element into q out", m_overlap, ROTARY_ERR_OVERLAP},
      {"batch 0", m_batch0, ROTARY_ERR_INVALID_ARGUMENT},
      {"struct_size 0", m_struct_size, ROTARY_ERR_INVALID_ARGUMENT},
      {"unknown position mode", m_mode, ROTARY_ERR_INVALID_ARGUMENT},
      {"q fp8", m_dtype_fp8, ROTARY_ERR_DTYPE},
      {"k dtype 77", m_dtype_unknown, ROTARY_ERR_DTYPE},
      {"offset run past the table", m_offset_past, ROTARY_ERR_POSITION},
      {"offset -1", m_offset_negative, ROTARY_ERR_POSITION},
      {"2 streams on a one-stream rope", m_streams, ROTARY_ERR_STREAMS},
      {"q.in NULL", m_null_q, ROTARY_ERR_NULL_POINTER},
      {"ids NULL", m_null_ids, ROTARY_ERR_NULL_POINTER},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    reset(f);
    rotary_apply_desc hd, dd;
    make_desc(&f->h, &hd);
    make_desc(&f->d, &dd);
    cases[i].fn(&hd);
    cases[i].fn(&dd);
    const rotary_status cpu = rotary_apply(NULL, f->host_rope, &hd);
    if (cpu != cases[i].st)
      fail_msg("%s: CPU gave %s, expected %s", cases[i].name, rotary_status_string(cpu),
               rotary_status_string(cases[i].st));
    cu_check((int)cudaStreamBeginCapture(f->stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    int32_t *flags = NULL;
    const rotary_status gpu = rotary_cuda_apply(f->rope, &dd, f->stream, flags);
    cudaGraph_t g = NULL;
    cu_check((int)cudaStreamEndCapture(f->stream, &g), "cudaStreamEndCapture");
    size_t nodes = 0;
    cu_check((int)cudaGraphGetNodes(g, NULL, &nodes), "cudaGraphGetNodes");
    cu_check((int)cudaGraphDestroy(g), "cudaGraphDestroy");
    if (gpu != cpu) fail_msg("%s: rotary_cuda_apply gave %s, the CPU %s", cases[i].name, rotary_status_string(gpu),
                             rotary_status_string(cpu));
    if (nodes != 0) fail_msg("%s: the failed call enqueued %zu operations", cases[i].name, nodes);
    cu_sync(f->stream);
    check_untouched(f, cases[i].name);
  }
  rotary_apply_desc dd;
  make_desc(&f->d, &dd);
  assert_int_equal(rotary_cuda_apply(NULL, &dd, f->stream, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_apply(f->rope, NULL, f->stream, NULL), ROTARY_ERR_NULL_POINTER);
  cu_sync(f->stream);
  check_untouched(f, "NULL rope or desc");
}

/* A host malloc pointer is DEVICE (where the device cannot read pageable memory: without HMM/ATS); a call while
 * another device is current is DEVICE (two devices only). */
static void test_device_status(void **state) {
  fixture *f = *state;
  reset(f);
  rotary_apply_desc dd;
  make_desc(&f->d, &dd);
  dd.q.in = f->h.q_in; /* host malloc memory */
  int pageable = 0;
  cu_check((int)cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, 0), "cudaDeviceGetAttribute");
  const rotary_status st = rotary_cuda_apply(f->rope, &dd, f->stream, NULL);
  cu_sync(f->stream);
  if (!pageable) {
    assert_int_equal(st, ROTARY_ERR_DEVICE);
    check_untouched(f, "host malloc q.in");
  } else {
    printf("note: the device reads pageable host memory (HMM/ATS): host malloc q.in gave %s\n",
           rotary_status_string(st));
    assert_true(st == ROTARY_ERR_DEVICE || st == ROTARY_OK);
  }
  if (f->devices < 2) {
    printf("note: one device: the other-device case is not run\n");
    return;
  }
  reset(f);
  make_desc(&f->d, &dd);
  cu_check((int)cudaSetDevice(1), "cudaSetDevice(1)");
  const rotary_status other = rotary_cuda_apply(f->rope, &dd, NULL, NULL);
  cu_check((int)cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cu_check((int)cudaSetDevice(0), "cudaSetDevice(0)");
  assert_int_equal(other, ROTARY_ERR_DEVICE);
  cu_sync(f->stream);
  check_untouched(f, "call on device 1");
}

/* Positions of every token for one of the device-checked modes; mode 0: IDS_I64, 1: IDS_I32, 2: OFFSETS. */
static void flag_positions(int mode, int64_t pos[T], int64_t offsets[B]) {
  if (mode == 2) {
    offsets[0] = 5, offsets[1] = MAXPOS - 2; /* batch 1: positions 62, 63 good, 64, 65 out of the table */
    for (int t = 0; t < T; t++) pos[t] = offsets[t / S] + t % S;
    return;
  }
  for (int t = 0; t < T; t++) pos[t] = t * 5 % MAXPOS;
  pos[2] = -1;
  pos[5] = MAXPOS;
  if (mode == 1) pos[7] = INT32_MIN;
}

/* Out-of-range positions on the device: those tokens' q and k rows keep their bytes (poison out of place, input in
 * place), every other token is the CPU's, and *flags gets ROTARY_CUDA_FLAG_POSITION; flags NULL works too. */
static void test_device_position_flag(void **state) {
  fixture *f = *state;
  for (int mode = 0; mode < 3; mode++)
    for (int inplace = 0; inplace < 2; inplace++)
      for (int with_flags = 0; with_flags < 2; with_flags++) {
        reset(f);
        int64_t pos[T], offsets[B];
        flag_positions(mode, pos, offsets);
        /* expected: the CPU with ids where every bad position is replaced by 0, then the bad rows put back */
        rotary_apply_desc hd, dd;
        make_desc(&f->h, &hd);
        make_desc(&f->d, &dd);
        if (inplace) {
          hd.q.out = f->h.q_in, hd.k.out = f->h.k_in;
          dd.q.out = f->d.q_in, dd.k.out = f->d.k_in;
        }
        for (int t = 0; t < T; t++) f->h.ids[t] = pos[t] < 0 || pos[t] >= MAXPOS ? 0 : pos[t];
        assert_int_equal(rotary_apply(NULL, f->host_rope, &hd), ROTARY_OK);
        for (int t = 0; t < T; t++) {
          if (pos[t] >= 0 && pos[t] < MAXPOS) continue;
          const int qi = inplace ? 0 : 1, ki = inplace ? 2 : 3;
          memcpy((float *)*buf_slot(&f->h, qi) + (size_t)t * HQ * D, f->init[qi] + (size_t)t * HQ * D * 4, HQ * D * 4);
          memcpy((float *)*buf_slot(&f->h, ki) + (size_t)t * HK * D, f->init[ki] + (size_t)t * HK * D * 4, HK * D * 4);
        }
        /* the device call with the bad positions */
        void *dpos = NULL;
        if (mode == 0) {
          dpos = cu_malloc(sizeof pos);
          cu_to_device(dpos, pos, sizeof pos);
        } else if (mode == 1) {
          int32_t p32[T];
          for (int t = 0; t < T; t++) p32[t] = (int32_t)pos[t];
          dpos = cu_malloc(sizeof p32);
          cu_to_device(dpos, p32, sizeof p32);
          dd.positions.mode = ROTARY_POSITIONS_IDS_I32;
        } else {
          dpos = cu_malloc(sizeof offsets);
          cu_to_device(dpos, offsets, sizeof offsets);
          dd.positions.mode = ROTARY_POSITIONS_OFFSETS;
          dd.positions.ids = NULL;
          dd.positions.offsets = dpos;
        }
        if (mode != 2) dd.positions.ids = dpos;
        int32_t *flags = with_flags ? cu_malloc(sizeof(int32_t)) : NULL, hflags = 0;
        if (flags) cu_memset(flags, 0, sizeof(int32_t));
        assert_int_equal(rotary_cuda_apply(f->rope, &dd, f->stream, flags), ROTARY_OK);
        cu_sync(f->stream);
        if (flags) {
          cu_to_host(&hflags, flags, sizeof hflags);
          cu_free(flags);
          if (hflags != ROTARY_CUDA_FLAG_POSITION) fail_msg("mode %d in place %d: flags %d", mode, inplace, (int)hflags);
        }
        cu_free(dpos);
        for (int i = 0; i < 4; i++) {
          unsigned char *got = malloc(buf_bytes[i]);
          assert_non_null(got);
          cu_to_host(got, *buf_slot(&f->d, i), buf_bytes[i]);
          const int same = memcmp(got, *buf_slot(&f->h, i), buf_bytes[i]) == 0;
          free(got);
          if (!same) fail_msg("mode %d in place %d flags %d: buffer %d differs from the expected bytes", mode, inplace,
                              with_flags, i);
        }
      }
}

/* rotary_cuda_rope_create's errors, memory_bytes, device and destroy(NULL). */
static void test_rope_object(void **state) {
  fixture *f = *state;
  rotary_cuda_rope *sentinel = (rotary_cuda_rope *)(void *)&sentinel, *out = sentinel;
  assert_int_equal(rotary_cuda_rope_create(NULL, 0, &out), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_rope_create(f->host_rope, 0, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_rope_create(f->host_rope, -1, &out), ROTARY_ERR_DEVICE);
  assert_int_equal(rotary_cuda_rope_create(f->host_rope, f->devices, &out), ROTARY_ERR_DEVICE);
  assert_ptr_equal(out, sentinel);
  rotary_cuda_rope_destroy(NULL);
  assert_int_equal(rotary_cuda_rope_memory_bytes(NULL), 0);
  assert_int_equal(rotary_cuda_rope_device(NULL), -1);
  assert_int_equal(rotary_cuda_rope_device(f->rope), 0);
  /* rotary_dim 16 (rows unpadded below 32): the table's 64 x 16 floats and 8 fp64 inverse frequencies */
  rotary_config c;
  rotary_config_init(&c, 16);
  for (int table_free = 0; table_free < 2; table_free++) {
    rotary_rope *h = NULL;
    assert_int_equal(rotary_rope_create(&c, table_free ? 0 : 64, &h), ROTARY_OK);
    rotary_cuda_rope *r = NULL;
    assert_int_equal(rotary_cuda_rope_create(h, 0, &r), ROTARY_OK);
    assert_non_null(r);
    assert_int_equal(rotary_cuda_rope_memory_bytes(r), (table_free ? 0 : 64 * 16 * 4) + 8 * 8);
    assert_int_equal(rotary_cuda_rope_device(r), 0);
    rotary_cuda_rope_destroy(r);
    rotary_rope_destroy(h);
  }
}

int main(void) {
  cu_require_device("test_cuda_errors");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_checks),
      cmocka_unit_test(test_device_status),
      cmocka_unit_test(test_device_position_flag),
      cmocka_unit_test(test_rope_object),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
