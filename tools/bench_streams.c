/* bench_streams.c: `rotary bench --streams text|image`: the fused call with 1-D ids against the same call with
 * multi-stream ids, every call once per round in alternating order, checked before timing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_dtype.h"
#include "bench_streams.h"

size_t bench_stream_count(const rotary_streams *st) {
  if (st->layout == ROTARY_STREAMS_NONE) return 1;
  if (st->layout == ROTARY_STREAMS_VISION_2D || st->layout == ROTARY_STREAMS_VISION_2D_PIXTRAL) return 2;
  return st->n_streams;
}

/* stream_of(i) as include/rotary.h defines each layout (written from the header, not from the library). */
void bench_stream_of(const bench_options *o, uint8_t *map) {
  const rotary_streams *st = &o->stream_layout;
  const size_t n = o->rotary_dim / 2, ns = bench_stream_count(st);
  size_t j = 0, bound = st->sections[0];
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    switch (st->layout) {
      case ROTARY_STREAMS_SECTIONS:
        while (i >= bound && j + 1 < ns) bound += st->sections[++j];
        k = j;
        break;
      case ROTARY_STREAMS_INTERLEAVED:
        k = i % ns;
        if (k == 0 || i >= ns * st->sections[k]) k = 0;
        break;
      case ROTARY_STREAMS_VISION_2D:
      case ROTARY_STREAMS_VISION_2D_PIXTRAL: k = i >= n / 2; break;
      case ROTARY_STREAMS_MAP: k = st->map ? st->map[i] : 0; break;
      case ROTARY_STREAMS_NONE: break;
    }
    map[i] = (uint8_t)k;
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Image ids of one sequence's token s: (t, h, w) of a grid of 32 x 32 patches per frame (a fourth stream repeats
 * t); (row, column) of a square grid for the 2-stream layouts. Every id is at most s: below the table. */
static void image_ids(const streams_run *b, size_t s, int64_t *id) {
  if (b->n_streams == 2) {
    id[0] = (int64_t)(s / b->grid_w), id[1] = (int64_t)(s % b->grid_w);
    return;
  }
  id[0] = (int64_t)(s / (b->grid_w * b->grid_h)), id[1] = (int64_t)(s / b->grid_w % b->grid_h);
  id[2] = (int64_t)(s % b->grid_w);
  if (b->n_streams == 4) id[3] = id[0];
}

static void fill_ids(streams_run *b) {
  const bench_options *o = b->s.o;
  const size_t rows = b->s.rows, ns = b->n_streams;
  uint64_t x = 0x2545f4914f6cdd1du;
  b->grid_w = 32, b->grid_h = 32;
  if (ns == 2) {
    b->grid_w = 1;
    while (b->grid_w * b->grid_w < o->tokens) b->grid_w++;
  }
  for (size_t t = 0; t < rows; t++) {
    int64_t id[ROTARY_MAX_STREAMS] = {0};
    if (o->streams == BENCH_STREAMS_TEXT) {
      for (size_t j = 0; j < ns; j++) id[j] = b->s.pos[t];
    } else if (o->decode) { /* one token per sequence: independent random ids below the table */
      for (size_t j = 0; j < ns; j++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        id[j] = (int64_t)((x >> 33) % o->table);
      }
    } else {
      image_ids(b, t % o->tokens, id);
    }
    for (size_t j = 0; j < ns; j++) b->ids[j * rows + t] = id[j];
  }
}

/* The 1-D call (int64 ids: the bench's positions) and the multi-stream one ([n_streams, rows], stride 0). */
static void make_descs(streams_run *b) {
  b->one = b->s.desc;
  b->one.positions = (rotary_positions){0};
  b->one.positions.mode = ROTARY_POSITIONS_IDS_I64;
  b->one.positions.ids = b->s.pos;
  b->multi = b->one;
  b->multi.positions.mode = ROTARY_POSITIONS_STREAMS_I64;
  b->multi.positions.ids = b->ids;
  b->multi.positions.n_streams = b->n_streams;
  b->multi.positions.stream_stride = 0;
}

rotary_status bench_streams_setup(const bench_options *o, streams_run *b) {
  memset(b, 0, sizeof *b);
  rotary_status st = bench_setup_create(o, &b->s);
  if (st != ROTARY_OK) return st;
  b->n_streams = bench_stream_count(&o->stream_layout);
  b->ids = malloc(b->n_streams * b->s.rows * sizeof *b->ids);
  b->map = malloc(o->rotary_dim / 2);
  if (!b->ids || !b->map) {
    bench_streams_destroy(b);
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  bench_stream_of(o, b->map);
  fill_ids(b);
  make_descs(b);
  b->calls = o->table_free ? 4 : 2;
  return ROTARY_OK;
}

void bench_streams_destroy(streams_run *b) {
  free(b->ids);
  free(b->map);
  bench_setup_destroy(&b->s);
  b->ids = NULL;
  b->map = NULL;
}

/* Call k: 0 table with 1-D ids, 1 table with streams, 2 and 3 the same with the table-free rope. */
static rotary_status run_call(streams_run *b, size_t k) {
  const rotary_rope *rope = k < 2 ? b->s.rope : b->s.rope_free;
  return rotary_apply(b->s.ctx, rope, k % 2 ? &b->multi : &b->one);
}

/* ---- the check: every call against a reference, from the same input ---- */

static float element(rotary_dtype d, const void *p, size_t i) {
  if (d == ROTARY_F32) return ((const float *)p)[i];
  const uint16_t h = ((const uint16_t *)p)[i];
  return d == ROTARY_F16 ? bench_f16_to_f32(h) : bench_bf16_to_f32(h);
}

/* max |out - ref| / max |ref| over q and k (infinite for a NaN); *same: the bytes are equal. */
static double compare(const bench_setup *s, void *const ref[2], int *same) {
  double worst = 0, scale = 0;
  *same = !memcmp(ref[0], s->out[0], s->bytes[0]) && !memcmp(ref[1], s->out[1], s->bytes[1]);
  if (*same) return 0;
  for (int t = 0; t < 2; t++) {
    for (size_t i = 0; i < s->bytes[t] / s->esize; i++) {
      const double r = element(s->o->dtype, ref[t], i), x = element(s->o->dtype, s->out[t], i);
      if (isnan(x - r)) return INFINITY;
      worst = fmax(worst, fabs(x - r));
      scale = fmax(scale, fabs(r));
    }
  }
  return scale > 0 ? worst / scale : worst;
}

static void restore(bench_setup *s, void *const saved[2]) {
  for (int t = 0; t < 2; t++) {
    if (s->in[t] == s->out[t]) memcpy(s->in[t], saved[t], s->bytes[t]);
    else memset(s->out[t], 0xff, s->bytes[t]);
  }
}

/* The reference of the streams calls: a COS_SIN call with rows gathered here from the table rows of each
 * frequency's stream (s->cos_tab: the rope's rows of every id, attention scaling included, which COS_SIN does not
 * apply again). Text: the 1-D call itself, which the header says a token whose streams agree gets. */
static rotary_status reference(streams_run *b, void *const ref[2]) {
  bench_setup *s = &b->s;
  rotary_status st = ROTARY_OK;
  if (s->o->streams == BENCH_STREAMS_TEXT) {
    st = run_call(b, 0);
  } else {
    const size_t half = s->o->rotary_dim / 2, rows = s->rows;
    float *c = malloc(rows * half * sizeof *c), *sn = malloc(rows * half * sizeof *sn);
    if (!c || !sn) st = ROTARY_ERR_OUT_OF_MEMORY;
    for (size_t t = 0; st == ROTARY_OK && t < rows; t++)
      for (size_t i = 0; i < half; i++) {
        const size_t id = (size_t)b->ids[b->map[i] * rows + t];
        c[t * half + i] = s->cos_tab[id * half + i];
        sn[t * half + i] = s->sin_tab[id * half + i];
      }
    rotary_apply_desc d = b->one;
    d.positions = (rotary_positions){0};
    d.positions.mode = ROTARY_POSITIONS_COS_SIN;
    d.positions.cos = c, d.positions.sin = sn;
    if (st == ROTARY_OK) st = rotary_apply(s->ctx, s->rope, &d);
    free(c);
    free(sn);
  }
  for (int t = 0; st == ROTARY_OK && t < 2; t++) memcpy(ref[t], s->out[t], s->bytes[t]);
  return st;
}

/* Each call once from the saved input: the 1-D calls against the table 1-D call, the streams calls against the
 * reference; an error above the bench's tolerance fails the run (said on stderr). */
static rotary_status check_calls(streams_run *b, void *saved[2], void *ref[2], void *one[2]) {
  bench_setup *s = &b->s;
  const double tol = s->o->dtype == ROTARY_F32 ? 1e-6 : s->o->dtype == ROTARY_F16 ? 2e-3 : 1.6e-2;
  rotary_status st = run_call(b, 0);
  for (int t = 0; st == ROTARY_OK && t < 2; t++) memcpy(one[t], s->out[t], s->bytes[t]);
  restore(s, saved);
  if (st == ROTARY_OK) st = reference(b, ref);
  for (size_t k = 0; k < b->calls && st == ROTARY_OK; k++) {
    restore(s, saved);
    st = run_call(b, k);
    if (st != ROTARY_OK) {
      fprintf(stderr, "rotary bench: the %s call with %s ids: %s\n", k < 2 ? "table" : "table-free",
              k % 2 ? "multi-stream" : "1-D", rotary_status_string(st));
      return ROTARY_ERR_INVALID_ARGUMENT;
    }
    b->err[k] = compare(s, k % 2 ? ref : one, &b->same[k]);
    if (b->err[k] > tol) {
      fprintf(stderr, "rotary bench: the %s call with %s ids differs from its reference: max relative error "
              "%.3g (limit %.3g)\n", k < 2 ? "table" : "table-free", k % 2 ? "multi-stream" : "1-D", b->err[k], tol);
      st = ROTARY_ERR_INVALID_ARGUMENT;
    }
  }
  restore(s, saved);
  return st;
}

rotary_status bench_streams_check(streams_run *b) {
  bench_setup *s = &b->s;
  void *bufs[6] = {NULL};
  rotary_status st = ROTARY_OK;
  for (int i = 0; i < 6; i++)
    if (!(bufs[i] = malloc(s->bytes[i % 2] ? s->bytes[i % 2] : 1))) st = ROTARY_ERR_OUT_OF_MEMORY;
  for (int t = 0; st == ROTARY_OK && t < 2; t++) memcpy(bufs[t], s->in[t], s->bytes[t]);
  if (st == ROTARY_OK) st = check_calls(b, bufs, bufs + 2, bufs + 4);
  for (int i = 0; i < 6; i++) free(bufs[i]);
  return st;
}

/* ---- timing ---- */

static int cmp_double(const void *x, const void *y) {
  const double a = *(const double *)x, c = *(const double *)y;
  return (a > c) - (a < c);
}

static void summarize(double *t, size_t n, streams_stat *r) {
  qsort(t, n, sizeof *t, cmp_double);
  r->median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  r->min = t[0];
  r->max = t[n - 1];
}

/* Warm-up rounds, then reps rounds in which every call runs once: forwards in even rounds, backwards in odd ones,
 * so neither call of a pair always follows the other. Per pair: each call's times and the per-round ratio. */
rotary_status bench_streams_time(streams_run *b) {
  const size_t reps = b->s.o->reps, calls = b->calls;
  double *t = malloc(calls * reps * sizeof *t), *ratio = malloc(reps * sizeof *ratio);
  rotary_status st = t && ratio ? ROTARY_OK : ROTARY_ERR_OUT_OF_MEMORY;
  for (size_t w = 0; w < BENCH_WARMUPS * calls && st == ROTARY_OK; w++) st = run_call(b, w % calls);
  for (size_t round = 0; round < reps && st == ROTARY_OK; round++)
    for (size_t i = 0; i < calls && st == ROTARY_OK; i++) {
      const size_t k = round % 2 ? calls - 1 - i : i;
      const double t0 = now_ms();
      st = run_call(b, k);
      t[k * reps + round] = now_ms() - t0;
    }
  for (size_t p = 0; st == ROTARY_OK && p < calls / 2; p++) {
    double *one = t + 2 * p * reps, *multi = one + reps;
    for (size_t r = 0; r < reps; r++) ratio[r] = multi[r] > 0 ? one[r] / multi[r] : 0;
    summarize(ratio, reps, &b->round_ratio[p]);
    summarize(one, reps, &b->stat[2 * p]);
    summarize(multi, reps, &b->stat[2 * p + 1]);
  }
  free(t);
  free(ratio);
  return st;
}

int bench_streams_main(const bench_options *o) {
  streams_run b;
  rotary_status st = bench_streams_setup(o, &b);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
    return 1;
  }
  if (!o->json) bench_streams_print_header(&b);
  st = bench_streams_check(&b);
  if (st == ROTARY_OK) st = bench_streams_time(&b);
  if (st == ROTARY_OK) {
    if (o->json && !bench_streams_print_json(&b)) st = ROTARY_ERR_OUT_OF_MEMORY;
    if (!o->json) bench_streams_print_table(&b);
  }
  if (st != ROTARY_OK && st != ROTARY_ERR_INVALID_ARGUMENT) /* a failed check has said why */
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
  bench_streams_destroy(&b);
  return st == ROTARY_OK ? 0 : 1;
}
