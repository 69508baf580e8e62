/* streams_oracle.h: an independent model of multi-stream layouts (rotary_streams) and an fp64 oracle for their
 * cos/sin rows; shares no code with the library. */
#ifndef STREAMS_ORACLE_H
#define STREAMS_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h" /* struct and enum definitions only */
#include "test_util.h"

#define SO_MAX_HALF 1024

/* A layout to create a rope with: streams.map points into map_buf for MAP. */
typedef struct so_layout {
  rotary_streams streams;
  uint8_t map_buf[SO_MAX_HALF];
} so_layout;

/* Streams per token the header promises: 1 for NONE, 2 for the vision layouts, else n_streams. */
size_t so_n_streams(const rotary_streams *s);

/* The stream of every frequency, written from the header's definitions the way Hugging Face builds them (sections
 * cumulated; interleaved: stream 0 everywhere, then stream j over j, j + n, ... sections[j] times). */
void so_map(const rotary_streams *s, size_t half, uint8_t *map);

/* A random valid layout of the given kind for half frequencies (vision: half even). n_streams 2..4 where free. */
void so_random_layout(tu_rng *rng, rotary_stream_layout kind, size_t half, so_layout *out);

/* Row of one token from the library's own 1-D rows: c[i] = c1[map[i]][i] where c1[j] is the 1-D row of ids[j]
 * (what the header promises the gather equals); rows1 holds n_streams rows of half cos then half sin. */
void so_gather(const float *rows1, const uint8_t *map, size_t half, float *c, float *s);

/* True cos/sin of id[map[i]] * inv_freq[i] (inv_freq taken as exact doubles) in long double, times scaling. */
void so_true_row(const int64_t *ids, const uint8_t *map, const double *inv_freq, size_t half, long double scaling,
                 long double *c, long double *s);

/* Correctly rounded fp32 row (oracle_exact_cos_sin per frequency); returns the values undecided (no MPFR). */
size_t so_exact_row(const int64_t *ids, const uint8_t *map, const double *inv_freq, size_t half, double scaling,
                    float *c, float *s);

/* ---- helpers of the stream tests (they return NULL or -1 on failure; the tests assert) ---- */

/* A rope of the layout with rotary_dim rd of head_dim hd; scaling 0 none, 1 linear 2.5, 2 yarn 4 (original 2048),
 * 3 llama3 8 (original 1024); attention scaling att. NULL when creation fails. */
rotary_rope *so_rope(const so_layout *l, size_t hd, size_t rd, rotary_pairing pairing, double base, int scaling,
                     double att, size_t max_positions);

/* Stream ids of n tokens: ns streams, stride n + gap apart; the gaps hold -1 (never a valid id, so a read of one
 * shows); random below limit, every third token with all streams equal (a text token). */
typedef struct so_ids {
  int64_t *ids;
  int32_t *ids32; /* the same values as int32 (limit <= 2^31) */
  size_t n, stride, ns;
} so_ids;

int so_ids_make(so_ids *s, tu_rng *rng, size_t ns, size_t n, size_t gap, int64_t limit);
void so_ids_free(so_ids *s);

/* The rows the header promises for every token: the 1-D rows (rotary_rope_cos_sin) of each stream's id gathered by
 * the model's map; c and s hold n x half. 0 or -1. */
int so_expected_rows(const rotary_rope *rope, const so_ids *s, const uint8_t *map, size_t half, float *c, float *sn);

#endif /* STREAMS_ORACLE_H */
