/* kernels.c: rotary_kernel_bench: each compiled rotation kernel's time per element with its data in L1 or L2, and
 * each cos/sin rows kernel's time per row. */
/*
 * Usage: rotary_kernel_bench [heads, default 32] [reps, default 20000]
 * Rotates heads x 128 elements in place with one cos/sin row (a unit rotation, so values keep their size) `reps`
 * times, five times over, and prints the best ns per element of every kernel this CPU can run. 32 heads are 16 KiB
 * of f32 (L1); 256 heads 128 KiB (L2). This is the arithmetic side of a call: memory-bound calls are held to the
 * streaming pass by `rotary bench`, and a kernel slower than that pass per element cannot reach it.
 * Then the rows kernels (what a table-free rope computes per token): the best of five passes over positions
 * 0 .. 2047 of a head_dim 128 rope (64 frequencies, base 10000), in ns per row.
 * On AVX-512 x86 also the floor of any f16 kernel there without AVX512-FP16: a loop that only converts each 16
 * elements to f32 and back (VCVTPH2PS, VCVTPS2PH), loading and storing them (docs/performance.md).
 * Then the rotate-to-fp8 kernels (the KV-cache write's k rows into an fp8 cache): the same heads rotated from their
 * buffer into fp8 rows of their own (scale 1/128), with the three passes they replace (widen to f32, rotate the f32
 * rows, encode: the best kernels of each) timed alongside.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "convert_kernels.h"
#include "kernels.h"
#include "rotate_fp8_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_F16_FLOOR 1
/* The f16 elements at p converted to f32 and back in place, 16 at a time, nothing else. */
__attribute__((target("avx512f"))) static void f16_convert_only(uint16_t *p, size_t n) {
  for (size_t i = 0; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p + i)));
    _mm256_storeu_si256((__m256i *)(void *)(p + i), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}
#endif

#define DIM 128

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* 1.0 in the kernel's dtype, everywhere. */
static void fill_ones(void *buf, rotary_dtype dt, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (dt == ROTARY_F32) ((float *)buf)[i] = 1.0f;
    else ((uint16_t *)buf)[i] = dt == ROTARY_F16 ? 0x3c00 : 0x3f80;
  }
}

/* The cos/sin rows kernels this CPU can run: best ns per row of 64 values over positions 0 .. 2047. */
static void bench_rows(void) {
  enum { HALF = DIM / 2, POSITIONS = 2048 };
  double w[HALF];
  float c[HALF], s[HALF], sink = 0.0f;
  for (int i = 0; i < HALF; i++) w[i] = pow(10000.0, -(double)i / HALF);
  printf("cos/sin rows of %d values (a table-free rope's per-token work), best of 5 x %d positions\n", HALF, POSITIONS);
  for (size_t k = 0; k < rotary_kernel_registry_count; k++) {
    const rotary_kernel_info *K = &rotary_kernel_registry[k];
    if (K->op != ROTARY_OP_SINCOS_ROWS || !rotary_isa_supported(K->isa)) continue;
    double best = INFINITY;
    for (int t = 0; t < 5; t++) {
      const double t0 = now_ns();
      for (int64_t pos = 0; pos < POSITIONS; pos++) {
        K->fn.sincos_rows(w, HALF, 1.0, pos, c, s);
        sink += c[pos % HALF]; /* keeps every call */
      }
      const double per = (now_ns() - t0) / POSITIONS;
      if (per < best) best = per;
    }
    printf("  %-44s %.1f ns/row\n", K->name, best);
  }
  if (sink == 12345.0f) printf("\n");
}

/* The rotate-to-fp8 kernels this CPU can run on heads x 128 elements of their dtype (values of size 1, a unit
 * rotation) into fp8 rows, and the three passes they replace; best ns per element of five passes of reps calls. */
static void bench_rotate_fp8(size_t heads, long reps, const float *row, void *in, unsigned char *out, float *f32,
                             int prefetch) {
  const size_t n = heads * DIM;
  const float scale = 1.0f / 128.0f;
  printf("rotate to fp8 (scale 1/128), the same heads into fp8 rows of their own\n");
  for (size_t k = 0; k < rotary_kernel_registry_count + 1; k++) {
    const rotary_kernel_info *K = k < rotary_kernel_registry_count ? &rotary_kernel_registry[k] : NULL;
    if (K && (K->op != ROTARY_OP_ROTATE_FP8 || !rotary_isa_supported(K->isa))) continue;
    /* after the list: bf16, half pairing, through f32 with the chosen kernels (kv_execute.c's k_through_f32) */
    const rotary_dtype dt = K ? K->dtype : ROTARY_BF16;
    fill_ones(in, dt, n);
    const rotary_convert_kernel *widen = rotary_convert_select(ROTARY_BF16, ROTARY_F32);
    const rotary_convert_kernel *encode = rotary_convert_select(ROTARY_F32, ROTARY_FP8_E4M3);
    const rotary_kernel *rot = rotary_kernel_select(ROTARY_F32, ROTARY_PAIRING_HALF);
    double best = INFINITY;
    for (int t = 0; t < 5; t++) {
      const double t0 = now_ns();
      for (long r = 0; r < reps; r++) {
        if (K) {
          K->fn.rotate_fp8(in, DIM, out, DIM, heads, DIM, DIM, row, row + DIM / 2, scale);
        } else {
          widen->fn(in, f32, n, 1.0f);
          rot->fn(f32, DIM, f32, DIM, heads, DIM, DIM, row, row + DIM / 2, prefetch);
          encode->fn(f32, out, n, scale);
        }
      }
      const double per = (now_ns() - t0) / (double)reps / (double)n;
      if (per < best) best = per;
    }
    printf("  %-44s %.4f ns/element\n", K ? K->name : "bf16 half through f32 (three passes)", best);
  }
}

int main(int argc, char **argv) {
  const long heads = argc > 1 ? atol(argv[1]) : 32, reps = argc > 2 ? atol(argv[2]) : 20000;
  if (argc > 3 || heads < 1 || heads > 65536 || reps < 1) {
    fprintf(stderr, "usage: rotary_kernel_bench [heads 1..65536] [reps >= 1]\n");
    return 2;
  }
  const size_t n = (size_t)heads * DIM;
  void *buf = NULL;
  float *row = NULL;
  if (posix_memalign(&buf, 64, n * sizeof(float)) || posix_memalign((void **)&row, 64, DIM * sizeof(float))) {
    fprintf(stderr, "rotary_kernel_bench: out of memory\n");
    return 1;
  }
  for (int i = 0; i < DIM / 2; i++) {
    row[i] = cosf(0.1f * (float)i);
    row[DIM / 2 + i] = sinf(0.1f * (float)i);
  }
  const int prefetch = rotary_tuning_defaults()->prefetch_bytes; /* what calls run with (ROTARY_PREFETCH) */
  printf("%ld heads x %d elements in place, one cos/sin row, best of 5 x %ld calls, prefetch %d\n", heads, DIM, reps,
         prefetch);
  for (size_t k = 0; k < rotary_kernel_registry_count; k++) {
    const rotary_kernel_info *K = &rotary_kernel_registry[k];
    if ((K->op != ROTARY_OP_ROTATE && K->op != ROTARY_OP_ROTATE_NT) || !rotary_isa_supported(K->isa)) continue;
    fill_ones(buf, K->dtype, n);
    double best = INFINITY;
    for (int t = 0; t < 5; t++) {
      const double t0 = now_ns();
      for (long r = 0; r < reps; r++) {
        K->fn.rotate(buf, DIM, buf, DIM, (size_t)heads, DIM, DIM, row, row + DIM / 2, prefetch);
        if (K->op == ROTARY_OP_ROTATE_NT) rotary_stream_fence(); /* as an executor's task ends (kernels.h) */
      }
      const double per = (now_ns() - t0) / (double)reps / (double)n;
      if (per < best) best = per;
    }
    printf("  %-44s %.4f ns/element\n", K->name, best);
  }
#ifdef HAVE_F16_FLOOR
  if (rotary_isa_supported(ROTARY_ISA_AVX512)) {
    fill_ones(buf, ROTARY_F16, n);
    double best = INFINITY;
    for (int t = 0; t < 5; t++) {
      const double t0 = now_ns();
      for (long r = 0; r < reps; r++) f16_convert_only(buf, n);
      const double per = (now_ns() - t0) / (double)reps / (double)n;
      if (per < best) best = per;
    }
    printf("  %-44s %.4f ns/element\n", "f16 conversions only (the avx512 floor)", best);
  }
#endif
  bench_rows();
  unsigned char *out = malloc(n);
  float *f32 = malloc(n * sizeof(float));
  if (!out || !f32) {
    fprintf(stderr, "rotary_kernel_bench: out of memory\n");
    return 1;
  }
  bench_rotate_fp8((size_t)heads, reps, row, buf, out, f32, prefetch);
  free(out);
  free(f32);
  free(buf);
  free(row);
  return 0;
}
