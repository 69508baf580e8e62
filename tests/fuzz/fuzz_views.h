/* fuzz_views.h: strided views in arena byte coordinates, their rows and extents, for fuzz_apply.c. */
#ifndef ROTARY_FUZZ_VIEWS_H
#define ROTARY_FUZZ_VIEWS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"

enum { Q_IN, Q_OUT, K_IN, K_OUT, N_VIEWS };
enum { GUARD = 64, ARENA_LIMIT = 4 << 20 };

typedef struct view {
  int used;          /* the call may touch it: tensor present and pointer not NULL */
  rotary_dtype dtype;
  size_t esize;      /* dtype size, 4 for an unknown dtype */
  size_t count[3];   /* batch, seq, heads */
  ptrdiff_t stride[3];
  int64_t lo, hi;    /* element offsets of the first and past the last element */
  int overflow;      /* some element offset does not fit ptrdiff_t: no memory behind it */
  int nomem;         /* overflow, or too big to allocate: no memory behind it */
  int64_t base;      /* byte address of element (0, 0, 0, 0) in arena coordinates */
} view;

/* Element extent [lo, hi) of a view; sets overflow when an offset does not fit ptrdiff_t. */
static void view_extent(view *v, size_t row) {
  int64_t lo = 0, hi = (int64_t)row;
  v->overflow = 0;
  for (int d = 0; d < 3; d++) {
    int64_t span;
    if (v->count[d] == 0) continue;
    if (__builtin_mul_overflow((int64_t)v->stride[d], (int64_t)(v->count[d] - 1), &span) ||
        __builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi))
      v->overflow = 1;
  }
  /* Byte offsets count too: beyond int64, or reaching 2^62 bytes below the base (below address 0 for any pointer a
   * process holds), no call can be valid: the library must say OVERFLOW without touching memory. */
  int64_t lo_b, hi_b;
  if (!v->overflow && (__builtin_mul_overflow(lo, (int64_t)v->esize, &lo_b) ||
                       __builtin_mul_overflow(hi, (int64_t)v->esize, &hi_b) || lo_b <= -((int64_t)1 << 62)))
    v->overflow = 1;
  v->nomem = v->overflow || lo < -(int64_t)ARENA_LIMIT || hi > (int64_t)ARENA_LIMIT;
  v->lo = v->nomem ? 0 : lo, v->hi = v->nomem ? 0 : hi;
}

static int64_t align_down(int64_t x, int64_t a) { return x - (((x % a) + a) % a); }

/* ---- rows of head_dim elements ---- */

typedef struct rowset {
  int64_t *start; /* byte address of each row, index (b * seq + s) * heads + h */
  size_t n;
  int64_t len;    /* bytes per row */
} rowset;

/* Byte address of row (b, s, h). */
static int64_t row_addr(const view *v, size_t b, size_t s, size_t h) {
  int64_t e = (int64_t)b * v->stride[0] + (int64_t)s * v->stride[1] + (int64_t)h * v->stride[2];
  return v->base + (int64_t)v->esize * e;
}

static void rows_of(const view *v, size_t hd, rowset *rs) {
  rs->n = v->used && !v->nomem ? v->count[0] * v->count[1] * v->count[2] : 0;
  rs->len = (int64_t)(hd * v->esize);
  rs->start = malloc((rs->n ? rs->n : 1) * sizeof(int64_t));
  size_t i = 0;
  for (size_t b = 0; b < v->count[0] && rs->n; b++)
    for (size_t s = 0; s < v->count[1]; s++)
      for (size_t h = 0; h < v->count[2]; h++)
        rs->start[i++] = row_addr(v, b, s, h);
}

static int ranges_meet(int64_t a, int64_t alen, int64_t b, int64_t blen) { return a < b + blen && b < a + alen; }

/* Nonzero when the dims of count > 1, sorted by |stride|, each step over everything inside it. */
static int strides_nest(const view *v, int64_t row) {
  int64_t mag[3], cnt[3];
  int m = 0;
  for (int d = 0; d < 3; d++) {
    if (v->count[d] <= 1) continue;
    int64_t a = v->stride[d] < 0 ? -(int64_t)v->stride[d] : (int64_t)v->stride[d];
    int j = m++;
    while (j > 0 && mag[j - 1] > a) mag[j] = mag[j - 1], cnt[j] = cnt[j - 1], j--;
    mag[j] = a, cnt[j] = (int64_t)v->count[d];
  }
  int64_t extent = row;
  for (int j = 0; j < m; j++) {
    if (mag[j] < extent) return 0;
    extent += mag[j] * (cnt[j] - 1);
  }
  return 1;
}

static void view_bytes(const view *v, int64_t *lo, int64_t *hi) {
  *lo = v->base + v->lo * (int64_t)v->esize;
  *hi = v->base + v->hi * (int64_t)v->esize;
}

static int extents_meet(const view *a, const view *b) {
  int64_t alo, ahi, blo, bhi;
  view_bytes(a, &alo, &ahi), view_bytes(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

/* in == out with equal strides: what the header calls in place. */
static int strict_in_place(const view *vi, const view *vo) {
  return vi->base == vo->base && memcmp(vi->stride, vo->stride, sizeof(vi->stride)) == 0;
}

/* Rows sorted by start, with their index, for the searches below. */
typedef struct irow {
  int64_t start;
  size_t index;
} irow;

static int irow_cmp(const void *x, const void *y) {
  const irow *a = x, *b = y;
  return a->start < b->start ? -1 : a->start > b->start;
}

static irow *sorted_rows(const rowset *rs) {
  irow *r = malloc((rs->n ? rs->n : 1) * sizeof(irow));
  for (size_t i = 0; i < rs->n; i++) r[i].start = rs->start[i], r[i].index = i;
  qsort(r, rs->n, sizeof(irow), irow_cmp);
  return r;
}

/* The first row of r (sorted) that starts at or after x. */
static size_t lower_bound(const irow *r, size_t n, int64_t x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].start < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

#endif /* ROTARY_FUZZ_VIEWS_H */
