/* bench_streams.h: the run of `rotary bench --streams` (bench_streams.c) and its report (bench_streams_report.c). */
#ifndef ROTARY_BENCH_STREAMS_H
#define ROTARY_BENCH_STREAMS_H

#include "bench.h"

typedef struct streams_stat {
  double median, min, max;
} streams_stat;

/* Calls, in order: table with 1-D ids, table with stream ids, then (--table-free) the same two table-free. */
typedef struct streams_run {
  bench_setup s;             /* the rope (made with the stream layout), context, q and k, 1-D positions */
  size_t n_streams;          /* ids per token */
  size_t grid_w, grid_h;     /* the image pattern's grid (prefill) */
  int64_t *ids;              /* [n_streams][rows] */
  uint8_t *map;              /* the stream of each frequency, from the header's rules */
  rotary_apply_desc one, multi; /* the 1-D call (IDS_I64) and the multi-stream one (STREAMS_I64) */
  size_t calls;              /* 2, or 4 with --table-free */
  double err[4];             /* max relative error of each call against its reference (the check) */
  int same[4];               /* ... and whether its bytes equal the reference's */
  streams_stat stat[4];      /* each call's times, ms */
  streams_stat round_ratio[2]; /* per pair: 1-D time / streams time within each round */
} streams_run;

rotary_status bench_streams_setup(const bench_options *o, streams_run *b);
void bench_streams_destroy(streams_run *b);
rotary_status bench_streams_check(streams_run *b);
rotary_status bench_streams_time(streams_run *b);

void bench_streams_print_header(const streams_run *b);
void bench_streams_print_table(const streams_run *b);
int bench_streams_print_json(const streams_run *b); /* 0: out of memory */

#endif /* ROTARY_BENCH_STREAMS_H */
