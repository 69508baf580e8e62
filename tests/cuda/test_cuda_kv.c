/* test_cuda_kv.c: rotary_cuda_kv_write against the CPU rotary_kv_write, every byte of q and both caches. */
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
#include "kv_oracle.h"
#include "rotary.h"
#include "test_util.h"

/* The buffers of one call. Tensors and caches start `misalign` bytes into theirs; index and position arrays at
 * their start (rotary.h asks them aligned). */
enum { R_Q, R_K, R_V, R_QOUT, R_KC, R_VC, R_I0, R_I1, R_I2, R_P0, R_P1, NR };

enum { Q_IN_PLACE, Q_OUT, Q_NONE };

typedef struct kv_case {
  rotary_cache_index index;
  rotary_cache_layout layout;
  rotary_dtype cache_dt, q_dt, k_dt, v_dt; /* packed: q_dt for all three */
  int packed;                              /* one QKV buffer (rotary_kv_write_desc_set_qkv) */
  int q_mode;                              /* Q_IN_PLACE, Q_OUT, Q_NONE */
  size_t head_dim, rotary_dim;
  rotary_pairing pairing;
  size_t hq, hkv, batch, seq_len;
  rotary_position_mode mode;
  size_t max_positions; /* 0: table-free */
  size_t n_streams;     /* > 1: mRoPE sections */
  int combined;         /* k and v blocks interleaved in one buffer */
  size_t pad;           /* elements after each block (block_stride = block + pad) */
  size_t misalign;      /* bytes */
  size_t row_pad;       /* packed: elements after each QKV row */
  uint64_t seed;
} kv_case;

/* One case's buffers on both sides, its ropes and its two descriptors. */
typedef struct kv_run {
  kv_case c;
  size_t tokens, num_blocks, block_size, block_elems, stride; /* stride: resolved block stride, elements */
  size_t bytes[NR];
  unsigned char *init[NR], *h[NR], *d[NR];
  rotary_rope *rope;
  rotary_cuda_rope *crope;
  rotary_kv_write_desc dh, dd; /* host buffers (CPU), device buffers (GPU) */
  int32_t *dflags;
} kv_run;

static cudaStream_t g_stream;

static const char *index_name(rotary_cache_index i) {
  return i == ROTARY_CACHE_SEQUENCES ? "sequences" : i == ROTARY_CACHE_SLOTS ? "slots" : "pages";
}

static const char *dt_name(rotary_dtype dt) {
  return dt == ROTARY_F32 ? "f32" : dt == ROTARY_F16 ? "f16" : dt == ROTARY_BF16 ? "bf16" : "fp8";
}

static void describe(const kv_case *c, char *buf, size_t n) {
  snprintf(buf, n, "%s %s cache %s q %s k %s v %s %s q%d D%zu rd%zu %s %zuq/%zukv B%zu S%zu mode %d maxpos %zu "
           "streams %zu combined %d pad %zu misalign %zu row_pad %zu seed %llu",
           index_name(c->index), c->layout == ROTARY_CACHE_NHD ? "NHD" : "HND", dt_name(c->cache_dt),
           dt_name(c->q_dt), dt_name(c->k_dt), dt_name(c->v_dt), c->packed ? "packed" : "separate",
           c->q_mode, c->head_dim, c->rotary_dim, c->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved", c->hq,
           c->hkv, c->batch, c->seq_len, (int)c->mode, c->max_positions, c->n_streams, c->combined, c->pad,
           c->misalign, c->row_pad, (unsigned long long)c->seed);
}

/* n random elements of dt (NaN, Inf, zeros and subnormals among them) at p, which may be misaligned. */
static void fill_elems(rotary_dtype dt, unsigned char *p, size_t n, tu_rng *r) {
  const size_t es = kvo_dtype_size(dt);
  unsigned char *tmp = malloc(n * es + 1);
  assert_non_null(tmp);
  cu_fill_random(dt, tmp, n, r, 1);
  memcpy(p, tmp, n * es);
  free(tmp);
}

/* The cache geometry and buffer sizes of a case; every initial byte (inputs random, outputs poison, the index and
 * position arrays valid). */
static void run_init(kv_run *k, const kv_case *c) {
  memset(k, 0, sizeof *k);
  k->c = *c;
  tu_rng r;
  tu_rng_seed(&r, c->seed);
  const size_t D = c->head_dim, T = c->batch * c->seq_len, mis = c->misalign;
  k->tokens = T;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES:
      k->block_size = 16;
      k->num_blocks = c->batch + 1;
      break;
    case ROTARY_CACHE_SLOTS:
      k->block_size = 8;
      k->num_blocks = (T + 7) / 8 + 2;
      break;
    default:
      k->block_size = 4;
      k->num_blocks = c->batch * ((c->seq_len + 6 + 3) / 4 + 1) + 2;
      break;
  }
  k->block_elems = k->block_size * c->hkv * D;
  k->stride = (k->block_elems + c->pad) * (c->combined ? 2 : 1);
  const size_t ces = kvo_dtype_size(c->cache_dt);
  const size_t extent = (k->num_blocks - 1) * k->stride + k->block_elems;
  const rotary_dtype kdt = c->packed ? c->q_dt : c->k_dt, vdt = c->packed ? c->q_dt : c->v_dt;
  if (c->packed) {
    k->bytes[R_Q] = T * ((c->hq + 2 * c->hkv) * D + c->row_pad) * kvo_dtype_size(c->q_dt) + mis;
  } else {
    k->bytes[R_Q] = T * c->hq * D * kvo_dtype_size(c->q_dt) + mis;
    k->bytes[R_K] = T * c->hkv * D * kvo_dtype_size(kdt) + mis;
    k->bytes[R_V] = T * c->hkv * D * kvo_dtype_size(vdt) + mis;
  }
  if (c->q_mode == Q_OUT) k->bytes[R_QOUT] = T * c->hq * D * kvo_dtype_size(c->q_dt) + mis;
  k->bytes[R_KC] = (c->combined ? k->num_blocks * k->stride : extent) * ces + mis;
  if (!c->combined) k->bytes[R_VC] = extent * ces + mis;
  const size_t streams = c->n_streams > 1 ? c->n_streams : 1, half = c->rotary_dim / 2;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: k->bytes[R_I0] = c->batch * 8; break;
    case ROTARY_CACHE_SLOTS: k->bytes[R_I0] = T * 8; break;
    default:
      k->bytes[R_I0] = (c->batch + 1) * 4;
      k->bytes[R_I1] = k->num_blocks * 4;
      k->bytes[R_I2] = c->batch * 4;
      break;
  }
  switch (c->mode) {
    case ROTARY_POSITIONS_OFFSET: break;
    case ROTARY_POSITIONS_OFFSETS: k->bytes[R_P0] = c->batch * 8; break;
    case ROTARY_POSITIONS_IDS_I32: k->bytes[R_P0] = T * 4; break;
    case ROTARY_POSITIONS_COS_SIN: k->bytes[R_P0] = k->bytes[R_P1] = T * half * 4; break;
    default: k->bytes[R_P0] = T * streams * 8; break; /* IDS_I64, STREAMS_I64 */
  }
  for (int i = 0; i < NR; i++) {
    if (!k->bytes[i]) continue;
    k->init[i] = malloc(k->bytes[i]);
    k->h[i] = malloc(k->bytes[i]);
    assert_non_null(k->init[i]);
    assert_non_null(k->h[i]);
    cu_poison(k->init[i], k->bytes[i], c->seed * 31 + (uint64_t)i);
  }
  /* inputs */
  if (c->packed) {
    fill_elems(c->q_dt, k->init[R_Q] + mis, (k->bytes[R_Q] - mis) / kvo_dtype_size(c->q_dt), &r);
  } else {
    fill_elems(c->q_dt, k->init[R_Q] + mis, T * c->hq * D, &r);
    fill_elems(kdt, k->init[R_K] + mis, T * c->hkv * D, &r);
    fill_elems(vdt, k->init[R_V] + mis, T * c->hkv * D, &r);
  }
  /* the cache index */
  if (c->index == ROTARY_CACHE_SEQUENCES) {
    int64_t *len = (int64_t *)k->init[R_I0];
    for (size_t b = 0; b < c->batch; b++) len[b] = (int64_t)tu_rng_below(&r, k->block_size - c->seq_len + 1);
  } else if (c->index == ROTARY_CACHE_SLOTS) {
    const size_t slots = k->num_blocks * k->block_size;
    int64_t *perm = malloc(slots * sizeof *perm), *map = (int64_t *)k->init[R_I0];
    assert_non_null(perm);
    for (size_t i = 0; i < slots; i++) perm[i] = (int64_t)i;
    for (size_t i = slots - 1; i > 0; i--) {
      const size_t j = (size_t)tu_rng_below(&r, i + 1);
      const int64_t x = perm[i];
      perm[i] = perm[j];
      perm[j] = x;
    }
    for (size_t t = 0; t < T; t++) map[t] = tu_rng_below(&r, 6) == 0 ? -1 : perm[t]; /* some padding tokens */
    free(perm);
  } else {
    int32_t *indptr = (int32_t *)k->init[R_I0], *indices = (int32_t *)k->init[R_I1];
    int32_t *last = (int32_t *)k->init[R_I2];
    const size_t nb = k->num_blocks;
    for (size_t i = 0; i < nb; i++) indices[i] = (int32_t)i;
    for (size_t i = nb - 1; i > 0; i--) { /* pages in random order, each used once */
      const size_t j = (size_t)tu_rng_below(&r, i + 1);
      const int32_t x = indices[i];
      indices[i] = indices[j];
      indices[j] = x;
    }
    indptr[0] = 0;
    for (size_t b = 0; b < c->batch; b++) {
      const size_t len = c->seq_len + (size_t)tu_rng_below(&r, 7), pages = (len + k->block_size - 1) / k->block_size;
      indptr[b + 1] = indptr[b] + (int32_t)pages;
      last[b] = (int32_t)(len - (pages - 1) * k->block_size);
    }
    assert_true((size_t)indptr[c->batch] <= nb);
  }
  /* positions */
  const int64_t limit = c->max_positions ? (int64_t)c->max_positions : (int64_t)1 << 40;
  switch (c->mode) {
    case ROTARY_POSITIONS_OFFSET: break;
    case ROTARY_POSITIONS_OFFSETS: {
      int64_t *o = (int64_t *)k->init[R_P0];
      for (size_t b = 0; b < c->batch; b++) o[b] = (int64_t)tu_rng_below(&r, (uint64_t)(limit - (int64_t)c->seq_len + 1));
      break;
    }
    case ROTARY_POSITIONS_IDS_I32: {
      int32_t *ids = (int32_t *)k->init[R_P0];
      const int64_t lim = limit < INT32_MAX ? limit : INT32_MAX;
      for (size_t t = 0; t < T; t++) ids[t] = (int32_t)tu_rng_below(&r, (uint64_t)lim);
      break;
    }
    case ROTARY_POSITIONS_COS_SIN: {
      float *cs = (float *)k->init[R_P0], *sn = (float *)k->init[R_P1];
      for (size_t i = 0; i < T * half; i++) {
        cs[i] = tu_rng_f32(&r, -1.0f, 1.0f);
        sn[i] = tu_rng_f32(&r, -1.0f, 1.0f);
      }
      break;
    }
    default: { /* IDS_I64, STREAMS_I64: some tokens with every stream equal (text), others not */
      int64_t *ids = (int64_t *)k->init[R_P0];
      for (size_t i = 0; i < T * streams; i++)
        ids[i] = i >= T && (i % T) % 3 == 0 ? ids[i % T] : (int64_t)tu_rng_below(&r, (uint64_t)limit);
      break;
    }
  }
}

/* The case's offset of OFFSET positions: the last token at the table's last row (or near 2^40 table-free). */
static int64_t case_offset(const kv_case *c) {
  const int64_t limit = c->max_positions ? (int64_t)c->max_positions : (int64_t)1 << 40;
  return limit - (int64_t)c->seq_len - (int64_t)(c->seed % 3);
}

/* The descriptor of a case over one side's buffers (base: k->h or k->d). */
static void build_desc(const kv_run *k, unsigned char *const *base, rotary_kv_write_desc *d) {
  const kv_case *c = &k->c;
  const size_t D = c->head_dim, mis = c->misalign;
  rotary_kv_write_desc_init(d);
  d->batch = c->batch;
  d->seq_len = c->seq_len;
  if (c->packed) {
    void *q_out = c->q_mode == Q_OUT ? base[R_QOUT] + mis : NULL;
    const size_t row = c->row_pad ? (c->hq + 2 * c->hkv) * D + c->row_pad : 0;
    assert_int_equal(rotary_kv_write_desc_set_qkv(d, base[R_Q] + mis, q_out, c->q_dt, c->hq, c->hkv, D, row),
                     ROTARY_OK);
  } else {
    void *q_out = c->q_mode == Q_OUT ? base[R_QOUT] + mis : base[R_Q] + mis;
    assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, base[R_Q] + mis, q_out, c->q_dt, c->seq_len, c->hq,
                                        D),
                     ROTARY_OK);
    assert_int_equal(rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, base[R_K] + mis, base[R_K] + mis, c->k_dt,
                                        c->seq_len, c->hkv, D),
                     ROTARY_OK);
    assert_int_equal(rotary_tensor_init(&d->v, ROTARY_LAYOUT_BSHD, base[R_V] + mis, base[R_V] + mis, c->v_dt,
                                        c->seq_len, c->hkv, D),
                     ROTARY_OK);
    d->k.out = d->v.out = NULL;
  }
  if (c->q_mode == Q_NONE) d->q.n_heads = 0;
  rotary_positions *p = &d->positions;
  p->mode = c->mode;
  switch (c->mode) {
    case ROTARY_POSITIONS_OFFSET: p->offset = case_offset(c); break;
    case ROTARY_POSITIONS_OFFSETS: p->offsets = (const int64_t *)base[R_P0]; break;
    case ROTARY_POSITIONS_COS_SIN:
      p->cos = (const float *)base[R_P0];
      p->sin = (const float *)base[R_P1];
      break;
    case ROTARY_POSITIONS_STREAMS_I64:
      p->ids = base[R_P0];
      p->n_streams = c->n_streams;
      break;
    default: p->ids = base[R_P0]; break;
  }
  rotary_kv_cache *kc = &d->cache;
  kc->index = c->index;
  kc->layout = c->layout;
  kc->dtype = c->cache_dt;
  kc->k = base[R_KC] + mis;
  kc->v = c->combined ? base[R_KC] + mis + (k->block_elems + c->pad) * kvo_dtype_size(c->cache_dt) : base[R_VC] + mis;
  kc->num_blocks = k->num_blocks;
  kc->block_size = k->block_size;
  kc->block_stride = c->combined || c->pad ? k->stride : 0; /* 0: dense */
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: kc->lengths = (const int64_t *)base[R_I0]; break;
    case ROTARY_CACHE_SLOTS: kc->slot_mapping = (const int64_t *)base[R_I0]; break;
    default:
      kc->page_indptr = (const int32_t *)base[R_I0];
      kc->page_indices = (const int32_t *)base[R_I1];
      kc->last_page_len = (const int32_t *)base[R_I2];
      break;
  }
  kc->k_scale = 0.75f;
  kc->v_scale = 1.0f / 64;
}

static rotary_rope *make_rope(const kv_case *c) {
  rotary_config cfg;
  rotary_config_init(&cfg, c->head_dim);
  cfg.rotary_dim = c->rotary_dim;
  cfg.pairing = c->pairing;
  if (c->n_streams > 1) {
    const size_t half = c->rotary_dim / 2;
    cfg.streams.layout = ROTARY_STREAMS_SECTIONS;
    cfg.streams.n_streams = c->n_streams;
    for (size_t j = 0; j < c->n_streams; j++) cfg.streams.sections[j] = half / c->n_streams;
    cfg.streams.sections[0] += half % c->n_streams;
  }
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&cfg, c->max_positions, &rope), ROTARY_OK);
  return rope;
}

/* Allocates the device side, copies the initial bytes to both sides, makes the ropes and descriptors. */
static void run_setup(kv_run *k, const kv_case *c) {
  run_init(k, c);
  for (int i = 0; i < NR; i++) {
    if (!k->bytes[i]) continue;
    memcpy(k->h[i], k->init[i], k->bytes[i]);
    k->d[i] = cu_malloc(k->bytes[i]);
    cu_to_device(k->d[i], k->init[i], k->bytes[i]);
  }
  k->rope = make_rope(c);
  assert_int_equal(rotary_cuda_rope_create(k->rope, 0, &k->crope), ROTARY_OK);
  build_desc(k, k->h, &k->dh);
  build_desc(k, k->d, &k->dd);
  k->dflags = cu_malloc(sizeof(int32_t));
  cu_memset(k->dflags, 0, sizeof(int32_t));
}

static void run_free(kv_run *k) {
  for (int i = 0; i < NR; i++) {
    free(k->init[i]);
    free(k->h[i]);
    cu_free(k->d[i]);
  }
  cu_free(k->dflags);
  rotary_cuda_rope_destroy(k->crope);
  rotary_rope_destroy(k->rope);
}

/* The device flags after the stream's work. */
static int32_t run_flags(kv_run *k) {
  cu_sync(g_stream);
  int32_t f = -1;
  cu_to_host(&f, k->dflags, sizeof f);
  return f;
}

/* Every device buffer equals its host counterpart (want: k->h, or the given expected bytes), byte for byte. */
static void compare_all(kv_run *k, unsigned char *const *want, const char *what) {
  static const char *names[NR] = {"q/qkv", "k in", "v in", "q out", "key cache", "value cache", "index 0",
                                  "index 1", "index 2", "positions 0", "positions 1"};
  for (int i = 0; i < NR; i++) {
    if (!k->bytes[i]) continue;
    unsigned char *got = malloc(k->bytes[i]);
    assert_non_null(got);
    cu_to_host(got, k->d[i], k->bytes[i]);
    size_t first = k->bytes[i];
    for (size_t j = 0; j < k->bytes[i] && first == k->bytes[i]; j++) first = got[j] != want[i][j] ? j : first;
    if (first != k->bytes[i]) {
      char buf[512];
      describe(&k->c, buf, sizeof buf);
      fail_msg("%s [%s]: %s differs from the expected bytes first at byte %zu of %zu (got 0x%02x, want 0x%02x)", what,
               buf, names[i], first, k->bytes[i], got[first], want[i][first]);
    }
    free(got);
  }
}

/* Bytes of the caches that differ from their initial poison on the host side (the CPU wrote them). */
static size_t cache_bytes_written(const kv_run *k) {
  size_t n = 0;
  for (int i = R_KC; i <= R_VC; i++)
    for (size_t j = 0; j < k->bytes[i]; j++) n += k->h[i][j] != k->init[i][j];
  return n;
}

/* One case: the CPU on host copies, the GPU on device copies, every byte compared; no flag. */
static void run_case(const kv_case *c) {
  kv_run k;
  run_setup(&k, c);
  char buf[512];
  describe(c, buf, sizeof buf);
  const rotary_status cpu = rotary_kv_write(NULL, k.rope, &k.dh);
  if (cpu != ROTARY_OK) fail_msg("[%s]: CPU rotary_kv_write: %s", buf, rotary_status_string(cpu));
  const rotary_status gpu = rotary_cuda_kv_write(k.crope, &k.dd, g_stream, k.dflags);
  if (gpu != ROTARY_OK) fail_msg("[%s]: rotary_cuda_kv_write: %s", buf, rotary_status_string(gpu));
  const int32_t flags = run_flags(&k);
  if (flags != 0) fail_msg("[%s]: device flags %d on a valid call", buf, flags);
  /* the test compares something: the CPU wrote into the caches (unless every SLOTS token was padding) */
  if (cache_bytes_written(&k) == 0 && c->index != ROTARY_CACHE_SLOTS) fail_msg("[%s]: the CPU wrote no cache byte", buf);
  compare_all(&k, k.h, "valid call");
  run_free(&k);
}

static kv_case base_case(void) {
  kv_case c;
  memset(&c, 0, sizeof c);
  c.index = ROTARY_CACHE_SLOTS;
  c.layout = ROTARY_CACHE_NHD;
  c.cache_dt = c.q_dt = c.k_dt = c.v_dt = ROTARY_BF16;
  c.q_mode = Q_IN_PLACE;
  c.head_dim = c.rotary_dim = 128;
  c.pairing = ROTARY_PAIRING_HALF;
  c.hq = 8;
  c.hkv = 2;
  c.batch = 3;
  c.seq_len = 5;
  c.mode = ROTARY_POSITIONS_IDS_I64;
  c.max_positions = 4096;
  c.seed = 1;
  return c;
}

/* Index x layout x cache dtype x input dtype x packed/separate x (D128 full, D64 rotary 32) x (IDS_I64, OFFSET). */
static void test_sweep(void **state) {
  (void)state;
  static const rotary_cache_index idx[] = {ROTARY_CACHE_SEQUENCES, ROTARY_CACHE_SLOTS, ROTARY_CACHE_PAGES};
  static const rotary_dtype cdt[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16, ROTARY_FP8_E4M3};
  static const rotary_dtype idt[] = {ROTARY_F32, ROTARY_BF16};
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    for (int l = 0; l < 2; l++)
      for (int cd = 0; cd < 4; cd++)
        for (int id = 0; id < 2; id++)
          for (int pk = 0; pk < 2; pk++)
            for (int hd = 0; hd < 2; hd++)
              for (int m = 0; m < 2; m++) {
                kv_case c = base_case();
                c.index = idx[i];
                c.layout = l ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
                c.cache_dt = cdt[cd];
                c.q_dt = c.k_dt = c.v_dt = idt[id];
                c.packed = pk;
                c.q_mode = (int)(n % 3 == 2 ? Q_OUT : Q_IN_PLACE);
                c.head_dim = hd ? 64 : 128;
                c.rotary_dim = hd ? 32 : 128;
                c.mode = m ? ROTARY_POSITIONS_OFFSET : ROTARY_POSITIONS_IDS_I64;
                c.seed = 1000 + n++;
                run_case(&c);
              }
  printf("sweep: %zu cases equal to the CPU\n", n);
}

/* Position modes, ropes (interleaved, table-free, mRoPE), dtypes mixed and f16, q left out or out of place, odd
 * geometry (combined k/v buffer, padded blocks, misaligned buffers: the element path), prefill and decode. */
static void test_variants(void **state) {
  (void)state;
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    const rotary_cache_index index = i == 0 ? ROTARY_CACHE_SEQUENCES : i == 1 ? ROTARY_CACHE_SLOTS : ROTARY_CACHE_PAGES;
    for (int v = 0; v < 19; v++) {
      kv_case c = base_case();
      c.index = index;
      c.layout = v % 2 ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
      c.cache_dt = (rotary_dtype)(v % 4 == 3 ? ROTARY_FP8_E4M3 : v % 4);
      c.seed = 5000 + n;
      switch (v) {
        case 0: c.mode = ROTARY_POSITIONS_OFFSETS; break;
        case 1: c.mode = ROTARY_POSITIONS_IDS_I32; break;
        case 2: c.mode = ROTARY_POSITIONS_COS_SIN; break;
        case 3: /* mRoPE: 3 streams, sections */
          c.mode = ROTARY_POSITIONS_STREAMS_I64;
          c.n_streams = 3;
          break;
        case 4: c.max_positions = 0; break; /* table-free, ids up to 2^40 */
        case 5:
          c.max_positions = 0;
          c.mode = ROTARY_POSITIONS_OFFSET;
          break;
        case 6: /* interleaved pairing, partial */
          c.pairing = ROTARY_PAIRING_INTERLEAVED;
          c.head_dim = 64;
          c.rotary_dim = 48;
          break;
        case 7: /* mixed input dtypes */
          c.q_dt = ROTARY_F16;
          c.k_dt = ROTARY_BF16;
          c.v_dt = ROTARY_F32;
          c.q_mode = Q_OUT;
          break;
        case 8: /* f16 inputs, packed, q out of place */
          c.q_dt = c.k_dt = c.v_dt = ROTARY_F16;
          c.packed = 1;
          c.q_mode = Q_OUT;
          break;
        case 9: c.q_mode = Q_NONE; break;
        case 10: /* combined k/v buffer, padded blocks */
          c.combined = 1;
          c.pad = 8;
          break;
        case 11: /* padded blocks by an odd count, rotary_dim 24: the element path */
          c.pad = 3;
          c.head_dim = 64;
          c.rotary_dim = 24;
          break;
        case 12: /* misaligned by one element */
          c.misalign = 2;
          c.q_dt = c.k_dt = c.v_dt = ROTARY_F16;
          break;
        case 13: /* misaligned by an odd byte, f32 */
          c.misalign = 1;
          c.q_dt = c.k_dt = c.v_dt = ROTARY_F32;
          c.packed = 1;
          break;
        case 14: /* decode: 8 sequences of 1 token, MQA */
          c.batch = 8;
          c.seq_len = 1;
          c.hkv = 1;
          c.mode = ROTARY_POSITIONS_OFFSETS;
          break;
        case 15: /* half pairing, rotary_dim 40: halves not whole vectors (the element path) */
          c.head_dim = 64;
          c.rotary_dim = 40;
          break;
        case 16: /* interleaved, rotary_dim 20: not whole vectors */
          c.pairing = ROTARY_PAIRING_INTERLEAVED;
          c.head_dim = 64;
          c.rotary_dim = 20;
          break;
        case 17: /* packed rows 4 elements apart from a whole vector: strides not whole vectors */
          c.packed = 1;
          c.row_pad = 4;
          c.q_dt = c.k_dt = c.v_dt = ROTARY_F16;
          break;
        default: /* prefill: 2 x 37 tokens, interleaved, packed in place */
          c.batch = 2;
          c.seq_len = 37;
          c.pairing = ROTARY_PAIRING_INTERLEAVED;
          c.packed = 1;
          break;
      }
      if (index == ROTARY_CACHE_SEQUENCES && c.seq_len > 16) c.seq_len = 16; /* a sequence's capacity */
      run_case(&c);
      n++;
    }
  }
  printf("variants: %zu cases equal to the CPU\n", n);
}

/* Index x layout x cache dtype on the element path (blocks padded by 3 elements: not whole vectors), input dtypes
 * in turn, packed and separate. */
static void test_general_path(void **state) {
  (void)state;
  static const rotary_dtype idt[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    for (int l = 0; l < 2; l++)
      for (int cd = 0; cd < 4; cd++) {
        kv_case c = base_case();
        c.index = (rotary_cache_index)i;
        c.layout = l ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
        c.cache_dt = (rotary_dtype)cd;
        c.q_dt = c.k_dt = c.v_dt = idt[n % 3];
        c.packed = (int)(n % 2);
        c.q_mode = (int)(n % 4 == 1 ? Q_OUT : Q_IN_PLACE);
        c.head_dim = 64;
        c.rotary_dim = n % 2 ? 64 : 40;
        c.pad = 3;
        c.mode = n % 2 ? ROTARY_POSITIONS_OFFSET : ROTARY_POSITIONS_IDS_I64;
        c.seed = 3000 + n++;
        run_case(&c);
      }
  printf("element path: %zu cases equal to the CPU\n", n);
}

/* Every SLOTS token padding: nothing in either cache changes; q is still rotated (as the CPU's). */
static void test_negative_slots(void **state) {
  (void)state;
  kv_case c = base_case();
  c.q_mode = Q_OUT;
  kv_run k;
  run_setup(&k, &c);
  int64_t *map = (int64_t *)k.init[R_I0];
  for (size_t t = 0; t < k.tokens; t++) map[t] = -1 - (int64_t)t;
  memcpy(k.h[R_I0], map, k.bytes[R_I0]);
  cu_to_device(k.d[R_I0], map, k.bytes[R_I0]);
  assert_int_equal(rotary_kv_write(NULL, k.rope, &k.dh), ROTARY_OK);
  assert_int_equal(rotary_cuda_kv_write(k.crope, &k.dd, g_stream, k.dflags), ROTARY_OK);
  assert_int_equal(run_flags(&k), 0);
  assert_int_equal(cache_bytes_written(&k), 0);
  assert_true(memcmp(k.h[R_QOUT], k.init[R_QOUT], k.bytes[R_QOUT]) != 0); /* q was written */
  compare_all(&k, k.h, "every slot negative");
  run_free(&k);
}

/* A corruption of a valid case's device arrays: tokens it takes out (bad[t] = 1) and the flags it must raise. */
typedef void (*corrupt_fn)(kv_run *k, unsigned char *const *arrays, unsigned char *bad);

static void c_slot_past_end(kv_run *k, unsigned char *const *a, unsigned char *bad) {
  int64_t *map = (int64_t *)a[R_I0];
  map[1] = (int64_t)(k->num_blocks * k->block_size); /* one past the last slot */
  map[k->tokens - 1] = INT64_MAX;
  bad[1] = bad[k->tokens - 1] = 1;
}

static void c_position(kv_run *k, unsigned char *const *a, unsigned char *bad) {
  int64_t *ids = (int64_t *)a[R_P0];
  ids[2] = (int64_t)k->c.max_positions; /* one past the table */
  ids[4] = -3;
  bad[2] = bad[4] = 1;
}

static void c_length(kv_run *k, unsigned char *const *a, unsigned char *bad) {
  int64_t *len = (int64_t *)a[R_I0];
  len[0] = (int64_t)(k->block_size - k->c.seq_len + 1); /* the last token one row past the block */
  len[2] = -1;
  for (size_t s = 0; s < k->c.seq_len; s++) bad[s] = bad[2 * k->c.seq_len + s] = 1;
}

static void c_pages(kv_run *k, unsigned char *const *a, unsigned char *bad) {
  int32_t *indptr = (int32_t *)a[R_I0], *indices = (int32_t *)a[R_I1], *last = (int32_t *)a[R_I2];
  const size_t S = k->c.seq_len, bs = k->block_size;
  /* sequence 0: its last page index past the cache; only the tokens on that page are skipped */
  indices[indptr[1] - 1] = (int32_t)k->num_blocks;
  for (size_t s = 0; s < S; s++) {
    const size_t len = (size_t)(indptr[1] - indptr[0] - 1) * bs + (size_t)last[0], p = len - S + s;
    if (p / bs == (size_t)(indptr[1] - indptr[0] - 1)) bad[s] = 1;
  }
  /* sequence 1: last_page_len past the block size; sequence 2 (when there is one) stays valid */
  last[1] = (int32_t)bs + 1;
  for (size_t s = 0; s < S; s++) bad[S + s] = 1;
}

/* Device values out of range: the named tokens are skipped whole (q too) and flagged, every other token written.
 * The expected bytes: the CPU on the same call with the skipped tokens' slots -1 (through SLOTS, from the valid
 * index's slots), then the skipped tokens' q rows put back. */
static void run_corrupt(kv_case c, corrupt_fn fn, int32_t want_flags, const char *what) {
  c.q_mode = Q_OUT;
  c.packed = 0;
  kv_run k;
  run_setup(&k, &c);
  const size_t T = k.tokens;
  int64_t *slots = malloc(T * sizeof *slots);
  unsigned char *bad = calloc(T, 1);
  assert_non_null(slots);
  assert_non_null(bad);
  assert_int_equal(kvo_token_slots(&k.dh.cache, c.batch, c.seq_len, slots), 0);
  /* corrupt copies of the index and position arrays go to the device */
  unsigned char *arrays[NR] = {0};
  for (int i = R_I0; i < NR; i++) {
    if (!k.bytes[i]) continue;
    arrays[i] = malloc(k.bytes[i]);
    assert_non_null(arrays[i]);
    memcpy(arrays[i], k.init[i], k.bytes[i]);
  }
  fn(&k, arrays, bad);
  for (int i = R_I0; i < NR; i++)
    if (arrays[i]) cu_to_device(k.d[i], arrays[i], k.bytes[i]);
  size_t n_bad = 0;
  for (size_t t = 0; t < T; t++) {
    if (bad[t]) slots[t] = -1;
    n_bad += bad[t];
  }
  assert_true(n_bad > 0 && n_bad < T);
  /* the reference call on the host */
  rotary_kv_write_desc ref = k.dh;
  ref.cache.index = ROTARY_CACHE_SLOTS;
  ref.cache.slot_mapping = slots;
  assert_int_equal(rotary_kv_write(NULL, k.rope, &ref), ROTARY_OK);
  const size_t qrow = c.hq * c.head_dim * kvo_dtype_size(c.q_dt);
  for (size_t t = 0; t < T; t++)
    if (bad[t]) memcpy(k.h[R_QOUT] + c.misalign + t * qrow, k.init[R_QOUT] + c.misalign + t * qrow, qrow);
  /* the device arrays are the corrupted ones: compare them with those */
  for (int i = R_I0; i < NR; i++)
    if (arrays[i]) memcpy(k.h[i], arrays[i], k.bytes[i]);
  assert_int_equal(rotary_cuda_kv_write(k.crope, &k.dd, g_stream, k.dflags), ROTARY_OK);
  const int32_t flags = run_flags(&k);
  if (flags != want_flags) fail_msg("%s: device flags %d, expected %d", what, flags, want_flags);
  compare_all(&k, k.h, what);
  /* flags NULL: the same writes, nothing reported */
  for (int i = R_KC; i <= R_VC; i++)
    if (k.bytes[i]) cu_to_device(k.d[i], k.init[i], k.bytes[i]);
  if (k.bytes[R_QOUT]) cu_to_device(k.d[R_QOUT], k.init[R_QOUT], k.bytes[R_QOUT]);
  assert_int_equal(rotary_cuda_kv_write(k.crope, &k.dd, g_stream, NULL), ROTARY_OK);
  cu_sync(g_stream);
  compare_all(&k, k.h, what);
  for (int i = 0; i < NR; i++) free(arrays[i]);
  free(slots);
  free(bad);
  run_free(&k);
}

static void test_device_flags(void **state) {
  (void)state;
  for (int cd = 0; cd < 4; cd++) {
    kv_case c = base_case();
    c.cache_dt = (rotary_dtype)(cd == 3 ? ROTARY_FP8_E4M3 : cd);
    c.layout = cd % 2 ? ROTARY_CACHE_HND : ROTARY_CACHE_NHD;
    c.seed = 7000 + (uint64_t)cd;
    c.index = ROTARY_CACHE_SLOTS;
    run_corrupt(c, c_slot_past_end, ROTARY_CUDA_FLAG_CACHE_INDEX, "slot past the cache");
    run_corrupt(c, c_position, ROTARY_CUDA_FLAG_POSITION, "position past the table, negative position");
    c.index = ROTARY_CACHE_SEQUENCES;
    run_corrupt(c, c_length, ROTARY_CUDA_FLAG_CACHE_INDEX, "length past the block, negative length");
    c.index = ROTARY_CACHE_PAGES;
    run_corrupt(c, c_pages, ROTARY_CUDA_FLAG_CACHE_INDEX, "page past the cache, last_page_len past the block");
  }
}

/* A failed call: the status, nothing enqueued (captured into a graph: no node), no device byte changed. */
static void expect_refused(kv_run *k, const rotary_kv_write_desc *d, int32_t *flags, rotary_status want,
                           const char *what) {
  cu_check((int)cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  const rotary_status st = rotary_cuda_kv_write(k->crope, d, g_stream, flags);
  cudaGraph_t g = NULL;
  cu_check((int)cudaStreamEndCapture(g_stream, &g), "cudaStreamEndCapture");
  size_t nodes = 0;
  cu_check((int)cudaGraphGetNodes(g, NULL, &nodes), "cudaGraphGetNodes");
  cu_check((int)cudaGraphDestroy(g), "cudaGraphDestroy");
  if (st != want) fail_msg("%s: %s, expected %s", what, rotary_status_string(st), rotary_status_string(want));
  if (nodes) fail_msg("%s: the refused call enqueued %zu operations", what, nodes);
  cu_sync(g_stream);
  compare_all(k, k->init, what);
}

/* Host pointers (not mapped into the device), OVERLAP found on the host as on the CPU, NULL, misaligned flags. */
static void test_host_checks(void **state) {
  (void)state;
  kv_case c = base_case();
  c.q_mode = Q_OUT;
  kv_run k;
  run_setup(&k, &c);
  rotary_kv_write_desc d = k.dd;
  d.cache.k = k.h[R_KC];
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_DEVICE, "key cache in host memory");
  d = k.dd;
  d.q.in = k.h[R_Q];
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_DEVICE, "q input in host memory");
  d = k.dd;
  d.cache.slot_mapping = (const int64_t *)k.h[R_I0];
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_DEVICE, "slot_mapping in host memory");
  d = k.dd;
  d.positions.ids = k.h[R_P0];
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_DEVICE, "ids in host memory");
  int32_t host_flags = 0;
  expect_refused(&k, &k.dd, &host_flags, ROTARY_ERR_DEVICE, "flags in host memory");
  expect_refused(&k, &k.dd, (int32_t *)((char *)k.dflags + 1), ROTARY_ERR_DEVICE, "flags misaligned");
  /* the value cache over the k input: OVERLAP on the CPU and on the GPU */
  rotary_kv_write_desc hd = k.dh;
  hd.cache.v = k.h[R_K];
  assert_int_equal(rotary_kv_write(NULL, k.rope, &hd), ROTARY_ERR_OVERLAP);
  d = k.dd;
  d.cache.v = k.d[R_K];
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_OVERLAP, "value cache over the k input");
  d = k.dd;
  d.q.out = k.d[R_KC] + 16; /* q's output inside the key cache */
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_OVERLAP, "q output inside the key cache");
  d = k.dd;
  d.cache.k_scale = 0.0f;
  d.cache.dtype = ROTARY_FP8_E4M3;
  expect_refused(&k, &d, k.dflags, ROTARY_ERR_SCALE, "fp8 scale 0");
  assert_int_equal(rotary_cuda_kv_write(NULL, &k.dd, g_stream, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_kv_write(k.crope, NULL, g_stream, NULL), ROTARY_ERR_NULL_POINTER);
  cu_sync(g_stream);
  compare_all(&k, k.init, "NULL rope or desc");
  /* and the valid call still works on the same buffers */
  assert_int_equal(rotary_kv_write(NULL, k.rope, &k.dh), ROTARY_OK);
  assert_int_equal(rotary_cuda_kv_write(k.crope, &k.dd, g_stream, k.dflags), ROTARY_OK);
  assert_int_equal(run_flags(&k), 0);
  compare_all(&k, k.h, "valid call after the refused ones");
  run_free(&k);
}

static int group_setup(void **state) {
  (void)state;
  return cudaSetDevice(0) == cudaSuccess && cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) == cudaSuccess
             ? 0
             : -1;
}

static int group_teardown(void **state) {
  (void)state;
  return cudaStreamDestroy(g_stream) == cudaSuccess ? 0 : -1;
}

int main(void) {
  cu_require_device("test_cuda_kv");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep),          cmocka_unit_test(test_general_path), cmocka_unit_test(test_variants),
      cmocka_unit_test(test_negative_slots), cmocka_unit_test(test_device_flags),
      cmocka_unit_test(test_host_checks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
