/* wake.c: what waking rotary's worker pool costs (empty job) next to OpenMP's fork/join, and a decode-size call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rotary.h"
#include "threadpool.h"

/*
 * Each fork/join is timed on its own with CLOCK_MONOTONIC (the clock's own cost is printed, not subtracted).
 * The pool and OpenMP run in alternating blocks with a pause between blocks, so that the idle threads of one
 * (spinning, then asleep) are parked while the other is measured: on a 2-core machine a spinning neighbour
 * would take the core the other's worker needs. Rows with an idle gap sleep that long before each call: past
 * the spin window a worker sleeps in the kernel and the wake-up becomes a futex round trip.
 */

#define BLOCKS 8
#define SETTLE_NS 100000000L /* between blocks: longer than libgomp's default spin and the pool's */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sleep_ns(long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, size_t n) {
  qsort(t, n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef void (*call_fn)(void *arg);

static void empty_task(void *arg, size_t index, size_t count) {
  (void)arg;
  (void)index;
  (void)count;
}

static void pool_call(void *pool) { rotary_pool_run(pool, empty_task, NULL, 2, 1); }

#ifdef ROTARY_HAVE_OPENMP
/* The region's body calls the same empty task through a volatile pointer: GCC deletes a parallel region whose
 * body is empty (no GOMP_parallel call at all), which would time nothing. */
static void (*volatile omp_body)(void *, size_t, size_t) = empty_task;

static void omp_call(void *arg) {
  (void)arg;
#pragma omp parallel num_threads(2)
  omp_body(NULL, 1, 2);
}
#endif

static void clock_call(void *arg) { (void)arg; }

/* n timed calls of each function, in BLOCKS alternating blocks, gap_ns of sleep before every call. */
static void measure(call_fn *fns, void **args, size_t nf, size_t n, long gap_ns, double *medians) {
  double *t = malloc(nf * n * sizeof *t);
  if (!t) exit(1);
  for (size_t f = 0; f < nf; f++) fns[f](args[f]); /* first calls start threads */
  for (size_t b = 0; b < BLOCKS; b++)
    for (size_t f = 0; f < nf; f++) {
      sleep_ns(SETTLE_NS);
      for (size_t i = b * n / BLOCKS; i < (b + 1) * n / BLOCKS; i++) {
        if (gap_ns) sleep_ns(gap_ns);
        const double t0 = now_ns();
        fns[f](args[f]);
        t[f * n + i] = now_ns() - t0;
      }
    }
  for (size_t f = 0; f < nf; f++) medians[f] = median(t + f * n, n);
  free(t);
}

static void wake_table(rotary_pool *pool) {
  call_fn fns[3] = {clock_call, pool_call};
  void *args[3] = {NULL, pool};
  size_t nf = 2;
#ifdef ROTARY_HAVE_OPENMP
  fns[nf++] = omp_call;
#endif
  static const struct { const char *name; long gap_ns; size_t n; } rows[] = {
      {"back to back", 0, 20000}, {"after 100 us idle", 100000, 1000}, {"after 2 ms idle", 2000000, 200},
      {"after 50 ms idle", 50000000, 40}};
  printf("empty job on 2 threads (the caller + 1 worker), median ns per fork/join, %d alternating blocks\n", BLOCKS);
  printf("%-20s %7s %16s %16s\n", "", "calls", "rotary_pool_run", nf > 2 ? "omp parallel" : "(no OpenMP)");
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    double m[3] = {0, 0, 0};
    const size_t skip = r ? 1 : 0; /* the timer alone: back to back only */
    measure(fns + skip, args + skip, nf - skip, rows[r].n, rows[r].gap_ns, m + skip);
    printf("%-20s %7zu %16.0f ", rows[r].name, rows[r].n, m[1]);
    if (nf > 2) printf("%16.0f\n", m[2]);
    else printf("%16s\n", "-");
    if (r == 0) printf("%-20s %7s %16.0f   (clock_gettime pair, included above)\n", "timer cost", "", m[0]);
  }
}

/* A decode step's RoPE: 64 sequences of one token at random positions (int64 ids), Llama 3 8B's 32 q and 8 k
 * heads of 128 dims, f32, in place. */
enum { DEC_TOKENS = 64, DEC_Q = 32, DEC_K = 8, DEC_DIM = 128, DEC_TABLE = 4096 };

typedef struct decode_call {
  rotary_context *ctx;
  const rotary_rope *rope;
  const rotary_apply_desc *desc;
} decode_call;

static void apply_call(void *arg) {
  const decode_call *c = arg;
  if (rotary_apply(c->ctx, c->rope, c->desc) != ROTARY_OK) exit(1);
}

static int decode_table(void) {
  static float q[DEC_TOKENS * DEC_Q * DEC_DIM], k[DEC_TOKENS * DEC_K * DEC_DIM];
  static int64_t ids[DEC_TOKENS];
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) q[i] = (float)(i % 97) / 97.0f;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) k[i] = (float)(i % 89) / 89.0f;
  for (size_t i = 0; i < DEC_TOKENS; i++) ids[i] = (int64_t)((i * 2654435761u) % DEC_TABLE);
  rotary_config cfg;
  rotary_config_init(&cfg, DEC_DIM);
  cfg.base = 500000.0;
  rotary_rope *rope = NULL;
  rotary_context *ctx[2] = {NULL, NULL};
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.batch = DEC_TOKENS;
  d.positions.mode = ROTARY_POSITIONS_IDS_I64;
  d.positions.ids = ids;
  if (rotary_rope_create(&cfg, DEC_TABLE, &rope) != ROTARY_OK || rotary_context_create(1, &ctx[0]) != ROTARY_OK ||
      rotary_context_create(2, &ctx[1]) != ROTARY_OK ||
      rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, q, q, ROTARY_F32, 1, DEC_Q, DEC_DIM) != ROTARY_OK ||
      rotary_tensor_init(&d.k, ROTARY_LAYOUT_BSHD, k, k, ROTARY_F32, 1, DEC_K, DEC_DIM) != ROTARY_OK)
    return 1;
  decode_call calls[2] = {{ctx[0], rope, &d}, {ctx[1], rope, &d}};
  call_fn fns[2] = {apply_call, apply_call};
  void *args[2] = {&calls[0], &calls[1]};
  printf("\ndecode-size rotary_apply: %d tokens x (%d q + %d k heads) x %d, f32, int64 ids, in place, kernel %s\n",
         DEC_TOKENS, DEC_Q, DEC_K, DEC_DIM, rotary_kernel_name(ROTARY_F32, ROTARY_PAIRING_HALF));
  printf("%-20s %7s %12s %12s   (median us)\n", "", "calls", "1 thread", "2 threads");
  static const struct { const char *name; long gap_ns; size_t n; } rows[] = {
      {"back to back", 0, 4000}, {"after 2 ms idle", 2000000, 200}};
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    double m[2];
    measure(fns, args, 2, rows[r].n, rows[r].gap_ns, m);
    printf("%-20s %7zu %12.2f %12.2f\n", rows[r].name, rows[r].n, m[0] / 1e3, m[1] / 1e3);
  }
  rotary_context_destroy(ctx[0]);
  rotary_context_destroy(ctx[1]);
  rotary_rope_destroy(rope);
  return 0;
}

int main(void) {
  rotary_pool *pool;
  if (rotary_pool_create(1, &pool) != ROTARY_OK) return 1;
  printf("rotary_wake_bench: rotary %s, %zu online CPUs\n", rotary_version_string(), rotary_cpu_count());
  wake_table(pool);
  rotary_pool_destroy(pool);
  return decode_table();
}
