/* fuzz_rope.c: libFuzzer target: rotary_config_check, rotary_rope_create, rotary_rope_derive and rotary_rope_cos_sin
 * on configs carved from the input (every family, hostile doubles and sizes), then the same config with multi-stream
 * positions (fuzz_rope_streams.h); statuses and values checked. */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus_rope && cp tests/fuzz/corpus_rope/* build-fuzz/corpus_rope/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -Iinclude $(find src -type d -printf "-I%p ") tests/fuzz/fuzz_rope.c $(find src -name "*.c" -not -path "src/hf/*") -lm -lpthread -o build-fuzz/fuzz_rope
//   build-fuzz/fuzz_rope -max_total_time=60 -dict=tests/fuzz/fuzz_rope.dict -artifact_prefix=build-fuzz/ build-fuzz/corpus_rope
// tests/test_fuzz_rope_replay.c includes this file and replays tests/fuzz/corpus_rope/ and pseudo-random inputs.
/*
 * The checks. Errors the config certainly has (a bad dim, pairing, struct_size, a base, attention_scaling or
 * inv_freq that is not finite and positive, a base below DBL_MIN, attention_scaling above FLT_MAX) must give their
 * status; rotary_rope_create must return rotary_config_check's status, then POSITION for max_positions - 1 above
 * ROTARY_MAX_POSITION and OVERFLOW for a table whose bytes overflow, without allocating (libFuzzer's malloc limit
 * turns an attempt into a crash); rotary_rope_derive must return what rotary_rope_create returns for the same
 * config at the new seq_len, and on success hold the same bits. On success every inverse frequency is finite and
 * positive, the attention scaling at most FLT_MAX, and every cos/sin value finite with |value| <= the attention
 * scaling rounded to fp32; table and table-free ropes give the same bits. On error no output byte changes.
 * The rest of the input gives the same config a streams field (fuzz_rope_streams.h: its checks are described
 * there): layouts, sections, maps, rotary_rope_cos_sin_streams and rotary_apply with STREAMS positions.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long rope_fuzz_failures, rope_fuzz_ok, rope_fuzz_refused, rope_fuzz_derived;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void rope_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_rope: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  rope_fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

/* ---- carving: bytes run out into zeros ---- */

typedef struct carver {
  const uint8_t *p;
  size_t n;
} carver;

static uint8_t take(carver *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

static uint64_t take64(carver *r) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | take(r);
  return v;
}

/* A double: mostly plausible, else a hostile special, else raw bits. */
static double take_double(carver *r, double plain) {
  static const double special[] = {0.0, -0.0, -1.0, NAN, INFINITY, -INFINITY, 1e-310, 5e-324, DBL_MIN,
                                   DBL_MAX, (double)FLT_MAX, (double)FLT_MAX * (1 + 0x1p-30), 1e39, 1e300,
                                   1e-300, 1.0, 0.5, 2.0, 10000.0, 500000.0, 1e6, 1e7, 4.0, 32.0, 1e-45};
  const uint8_t k = take(r);
  if (k < 128) return plain;
  if (k < 128 + sizeof special / sizeof special[0]) return special[k - 128];
  if (k < 240) return ldexp(1.0 + take(r) / 256.0, (int)take(r) - 128);
  const uint64_t bits = take64(r);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static size_t take_size(carver *r, size_t plain) {
  static const size_t special[] = {0, 1, 2, 4095, 4096, 4097, 8192, 32768, 131072, (size_t)1 << 32,
                                   ((size_t)1 << 53) - 1, (size_t)1 << 53, ((size_t)1 << 53) + 1, SIZE_MAX / 2,
                                   SIZE_MAX - 1, SIZE_MAX, (size_t)ROTARY_MAX_POSITION + 1, PTRDIFF_MAX};
  const uint8_t k = take(r);
  if (k < 128) return plain;
  if (k < 128 + sizeof special / sizeof special[0]) return special[k - 128];
  if (k < 240) return (size_t)take(r) << (take(r) % 60);
  return (size_t)take64(r);
}

static size_t take_head_dim(carver *r) {
  static const size_t special[8] = {0, 1, 3, 130, ROTARY_MAX_HEAD_DIM, ROTARY_MAX_HEAD_DIM + 2, SIZE_MAX - 1,
                                    SIZE_MAX};
  const uint8_t b = take(r);
  return b < 248 ? 2 * (1 + (size_t)b % 64) : special[b - 248];
}

static size_t take_rotary_dim(carver *r, size_t hd) {
  const uint8_t b = take(r);
  if (hd < 2 || hd > ROTARY_MAX_HEAD_DIM) return 2 + 2 * (size_t)(b % 4);
  if (b < 224) return b < 112 ? hd : 2 * (1 + (size_t)b % (hd / 2));
  const size_t special[8] = {0, 1, 3, hd, hd + 2, hd - 1, 2, SIZE_MAX};
  return special[b % 8];
}

/* ---- the config ---- */

typedef struct rope_input {
  rotary_config c;
  double *inv, *shortf, *longf; /* owned arrays (rotary_dim / 2 values each), or NULL */
} rope_input;

static double *take_array(carver *r, size_t half, double plain) {
  if (half == 0 || half > ROTARY_MAX_HEAD_DIM / 2) return NULL;
  double *a = malloc(half * sizeof *a);
  if (!a) return NULL;
  const uint8_t mode = take(r); /* most arrays: a plain ramp with one carved value */
  for (size_t i = 0; i < half; i++) a[i] = plain * (1.0 + (double)i / (double)half);
  const size_t at = (size_t)take(r) % half;
  a[at] = take_double(r, a[at]);
  if (mode >= 200)
    for (size_t i = 0; i < half && r->n; i++) a[i] = take_double(r, a[i]);
  return a;
}

static void carve_config(carver *r, rope_input *in) {
  memset(in, 0, sizeof *in);
  rotary_config *c = &in->c;
  const size_t hd = take_head_dim(r);
  rotary_config_init(c, hd);
  c->rotary_dim = take_rotary_dim(r, hd);
  const uint8_t flags = take(r);
  if (flags & 0x01) c->pairing = ROTARY_PAIRING_INTERLEAVED;
  if ((flags & 0x06) == 0x06) c->pairing = (rotary_pairing)take(r);
  if (flags == 0xff) c->struct_size = take_size(r, c->struct_size);
  c->base = take_double(r, 10000.0);
  c->attention_scaling = take_double(r, 1.0);
  c->seq_len = take_size(r, 0);
  const size_t half = c->rotary_dim <= ROTARY_MAX_HEAD_DIM ? c->rotary_dim / 2 : 0;
  if (flags & 0x08) c->inv_freq = in->inv = take_array(r, half, 0.5);
  rotary_scaling *s = &c->scaling;
  const uint8_t fam = take(r);
  s->type = fam < 252 ? (rotary_scaling_type)(fam % 7) : (rotary_scaling_type)(fam - 245);
  s->factor = take_double(r, 4.0);
  s->original_max_position_embeddings = take_size(r, 4096);
  s->max_position_embeddings = take_size(r, 32768);
  s->attention_factor = take_double(r, 0.0);
  s->beta_fast = take_double(r, 0.0);
  s->beta_slow = take_double(r, 0.0);
  s->mscale = take_double(r, 0.0);
  s->mscale_all_dim = take_double(r, 0.0);
  s->truncate = take(r) & 1;
  s->low_freq_factor = take_double(r, 1.0);
  s->high_freq_factor = take_double(r, 4.0);
  if (s->type == ROTARY_SCALING_LONGROPE) {
    const uint8_t which = take(r);
    if (which % 8) s->short_factor = in->shortf = take_array(r, half, 1.0);
    if (which % 8 != 1) s->long_factor = in->longf = take_array(r, half, 4.0);
  }
}

static void free_input(rope_input *in) {
  free(in->inv), free(in->shortf), free(in->longf);
}

/* Statuses the config certainly earns, in rotary_config_check's order; ROTARY_OK when none is certain. */
static rotary_status certain_error(const rotary_config *c) {
  if (c->struct_size != sizeof *c) return ROTARY_ERR_INVALID_ARGUMENT;
  if (c->head_dim == 0 || c->head_dim % 2 || c->head_dim > ROTARY_MAX_HEAD_DIM) return ROTARY_ERR_HEAD_DIM;
  if (c->rotary_dim == 0 || c->rotary_dim % 2 || c->rotary_dim > c->head_dim) return ROTARY_ERR_ROTARY_DIM;
  if (c->pairing != ROTARY_PAIRING_HALF && c->pairing != ROTARY_PAIRING_INTERLEAVED) return ROTARY_ERR_PAIRING;
  if (!(c->attention_scaling > 0.0 && c->attention_scaling <= (double)FLT_MAX)) return ROTARY_ERR_FREQUENCY;
  if (c->inv_freq) {
    for (size_t i = 0; i < c->rotary_dim / 2; i++)
      if (!(c->inv_freq[i] > 0.0 && c->inv_freq[i] <= DBL_MAX)) return ROTARY_ERR_FREQUENCY;
  } else if (!(c->base >= DBL_MIN && c->base <= DBL_MAX)) {
    return ROTARY_ERR_FREQUENCY;
  }
  return ROTARY_OK;
}

/* What creating a table of max_positions rows costs: the status it must get once the config is valid (POSITION,
 * OVERFLOW or OK), and the table bytes when OK. */
static rotary_status table_verdict(size_t rotary_dim, size_t max_positions, size_t *bytes) {
  *bytes = 0;
  if (max_positions > (size_t)ROTARY_MAX_POSITION + 1) return ROTARY_ERR_POSITION;
  const size_t half = rotary_dim / 2, line = 16;
  const size_t row = 2 * (half < line ? half : (half + line - 1) / line * line);
  if (max_positions && row > SIZE_MAX / sizeof(float) / max_positions) return ROTARY_ERR_OVERFLOW;
  *bytes = max_positions * row * sizeof(float);
  return *bytes > PTRDIFF_MAX ? ROTARY_ERR_OVERFLOW : ROTARY_OK;
}

/* A table size to ask for: small (a few thousand values), or hostile but refused before any allocation. */
static size_t take_positions(carver *r, size_t rotary_dim) {
  const size_t half = rotary_dim >= 2 && rotary_dim <= ROTARY_MAX_HEAD_DIM ? rotary_dim / 2 : 1;
  const size_t cap = 1 + (4096 / half < 2048 ? 4096 / half : 2048); /* at most 4096 values per table half */
  const uint8_t k = take(r);
  if (k < 224) return ((size_t)take(r) << 4 | k) % cap;
  size_t bytes, mp = take_size(r, 0);
  if (table_verdict(rotary_dim, mp, &bytes) == ROTARY_OK && mp >= cap) mp %= cap; /* a table it would really build */
  return mp;
}

/* ---- the checks ---- */

static char rope_sentinel; /* what *out holds before a call: it must still be there after an error */
#define SENTINEL ((rotary_rope *)(void *)&rope_sentinel)

static int64_t take_position(carver *r, int64_t max) {
  const int64_t special[] = {0, 1, max, max + 1, -1, INT64_MIN, INT64_MAX, ROTARY_MAX_POSITION,
                             ROTARY_MAX_POSITION + 1, max / 2};
  const uint8_t k = take(r);
  if (k < 160) return (int64_t)(take64(r) % ((uint64_t)max + 1));
  if (k < 160 + sizeof special / sizeof special[0]) return special[k - 160];
  return (int64_t)take64(r);
}

/* rotary_rope_cos_sin at carved positions: a refused call writes nothing; every value is finite and bounded by
 * the attention scaling; `twin` (the same config, table-free) gives the same bits. */
static void check_rows(const rotary_rope *rope, const rotary_rope *twin, carver *r) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2, n = take(r) % 9, guard = 16;
  const size_t mp = rotary_rope_max_positions(rope);
  const int64_t max = mp ? (int64_t)mp - 1 : ROTARY_MAX_POSITION;
  int64_t pos[8];
  int bad = 0;
  for (size_t j = 0; j < n; j++) {
    pos[j] = take_position(r, max);
    bad |= pos[j] < 0 || pos[j] > max;
  }
  const size_t count = n * half + guard;
  float *cs = malloc(count * sizeof(float)), *sn = malloc(count * sizeof(float)), *init = malloc(count * sizeof(float));
  if (!cs || !sn || !init) goto done;
  memset(init, 0x5a, count * sizeof(float));
  memcpy(cs, init, count * sizeof(float));
  memcpy(sn, init, count * sizeof(float));
  const int null_out = take(r) == 255;
  const rotary_status st = rotary_rope_cos_sin(rope, pos, n, null_out ? NULL : cs, sn);
  const rotary_status want = n == 0 ? ROTARY_OK : null_out ? ROTARY_ERR_NULL_POINTER : bad ? ROTARY_ERR_POSITION
                                                                                           : ROTARY_OK;
  if (st != want) rope_fail("cos_sin: status %d, expected %d (n %zu)", (int)st, (int)want, n);
  if (st != ROTARY_OK || n == 0) {
    if (memcmp(cs, init, count * sizeof(float)) || memcmp(sn, init, count * sizeof(float)))
      rope_fail("cos_sin: refused (%d) but wrote", (int)st);
    goto done;
  }
  if (memcmp(cs + n * half, init, guard * sizeof(float)) || memcmp(sn + n * half, init, guard * sizeof(float)))
    rope_fail("cos_sin: wrote past n * rotary_dim / 2 values");
  /* |C att| <= att for |C| <= 1, and rounding to fp32 is monotonic: |value| <= att rounded to fp32 (above att
   * itself when att is not a float, e.g. 1e-45 rounds to 2^-149). */
  const double att = rotary_rope_attention_scaling(rope), bound = (double)(float)att;
  for (size_t k = 0; k < n * half; k++)
    if (!isfinite(cs[k]) || !isfinite(sn[k]) || fabs((double)cs[k]) > bound || fabs((double)sn[k]) > bound) {
      rope_fail("cos_sin: value %zu = (%g, %g) not finite or above the attention scaling %g (position %lld)", k,
                (double)cs[k], (double)sn[k], att, (long long)pos[k / half]);
      break;
    }
  if (twin) {
    float *c2 = malloc(n * half * sizeof(float)), *s2 = malloc(n * half * sizeof(float));
    if (c2 && s2) {
      if (rotary_rope_cos_sin(twin, pos, n, c2, s2) != ROTARY_OK) rope_fail("cos_sin: the table-free twin refused");
      else if (memcmp(c2, cs, n * half * sizeof(float)) || memcmp(s2, sn, n * half * sizeof(float)))
        rope_fail("cos_sin: table and table-free rows differ");
    }
    free(c2), free(s2);
  }
done:
  free(cs), free(sn), free(init);
}

/* The status rotary_rope_create must return for a config and table size (the library's check decides the config:
 * certain_error is tested against it separately). */
static rotary_status create_verdict(const rotary_config *c, size_t max_positions) {
  const rotary_status st = rotary_config_check(c, NULL);
  size_t bytes;
  return st != ROTARY_OK ? st : table_verdict(c->rotary_dim, max_positions, &bytes);
}

/* Properties of a rope that was just created or derived. */
static void check_rope(const rotary_rope *rope, const rotary_config *c, size_t max_positions) {
  if (rotary_rope_head_dim(rope) != c->head_dim || rotary_rope_rotary_dim(rope) != c->rotary_dim ||
      rotary_rope_max_positions(rope) != max_positions || rotary_rope_seq_len(rope) != c->seq_len ||
      rotary_rope_pairing(rope) != c->pairing)
    rope_fail("rope: a property differs from its config");
  const double att = rotary_rope_attention_scaling(rope);
  if (!(att > 0.0 && att <= (double)FLT_MAX)) rope_fail("rope: attention scaling %g", att);
  const size_t half = c->rotary_dim / 2;
  double *w = malloc(half * sizeof *w);
  if (!w) return;
  if (rotary_rope_inv_freq(rope, w) != ROTARY_OK) rope_fail("rope: inv_freq refused");
  for (size_t i = 0; i < half; i++)
    if (!(w[i] > 0.0 && w[i] <= DBL_MAX)) {
      rope_fail("rope: inv_freq[%zu] = %g", i, w[i]);
      break;
    }
  free(w);
}

/* rotary_rope_derive at a carved seq_len and size: the status and, on success, the bits of a fresh rope. */
static void check_derive(const rotary_config *base_cfg, const rotary_rope *from, carver *r) {
  rotary_config c = *base_cfg;
  c.seq_len = take_size(r, c.seq_len + take(r) * (size_t)64);
  const size_t mp = take_positions(r, c.rotary_dim);
  rotary_rope *got = SENTINEL, *fresh = SENTINEL;
  const rotary_status sd = rotary_rope_derive(from, c.seq_len, mp, &got);
  const rotary_status sc = rotary_rope_create(&c, mp, &fresh), want = create_verdict(&c, mp);
  rope_fuzz_derived++;
  if (sd != sc || sc != want)
    rope_fail("derive: status %d, create %d, expected %d (seq_len %zu, max_positions %zu)", (int)sd, (int)sc,
              (int)want, c.seq_len, mp);
  if ((sd != ROTARY_OK) != (got == SENTINEL) || (sc != ROTARY_OK) != (fresh == SENTINEL))
    rope_fail("derive/create: *out set on error or left on success");
  if (sd == ROTARY_OK && sc == ROTARY_OK) {
    check_rope(got, &c, mp);
    const size_t half = c.rotary_dim / 2;
    double *w1 = malloc(half * sizeof *w1), *w2 = malloc(half * sizeof *w2);
    if (w1 && w2) {
      rotary_rope_inv_freq(got, w1), rotary_rope_inv_freq(fresh, w2);
      const double a1 = rotary_rope_attention_scaling(got), a2 = rotary_rope_attention_scaling(fresh);
      if (memcmp(w1, w2, half * sizeof *w1) || memcmp(&a1, &a2, sizeof a1))
        rope_fail("derive: frequencies or attention differ from a fresh rope");
    }
    free(w1), free(w2);
    const int64_t last = mp ? (int64_t)mp - 1 : 0, pos[3] = {0, last / 2, last};
    float *c1 = malloc(3 * half * sizeof(float)), *s1 = malloc(3 * half * sizeof(float)),
          *c2 = malloc(3 * half * sizeof(float)), *s2 = malloc(3 * half * sizeof(float));
    if (c1 && s1 && c2 && s2 && rotary_rope_cos_sin(got, pos, 3, c1, s1) == ROTARY_OK &&
        rotary_rope_cos_sin(fresh, pos, 3, c2, s2) == ROTARY_OK &&
        (memcmp(c1, c2, 3 * half * sizeof(float)) || memcmp(s1, s2, 3 * half * sizeof(float))))
      rope_fail("derive: rows differ from a fresh rope");
    free(c1), free(s1), free(c2), free(s2);
  }
  if (sd == ROTARY_OK) rotary_rope_destroy(got);
  if (sc == ROTARY_OK) rotary_rope_destroy(fresh);
}

#include "fuzz_rope_streams.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  carver r = {data, size};
  rope_input in;
  carve_config(&r, &in);
  const char *field = NULL;
  const rotary_status st = rotary_config_check(&in.c, &field), certain = certain_error(&in.c);
  if (certain != ROTARY_OK && st != certain) rope_fail("check: status %d, expected %d", (int)st, (int)certain);
  if ((st != ROTARY_OK) != (field != NULL)) rope_fail("check: status %d with field %s", (int)st, field ? field : "-");
  const size_t mp = take_positions(&r, in.c.rotary_dim);
  rotary_rope *rope = SENTINEL;
  size_t bytes;
  const rotary_status cst = rotary_rope_create(&in.c, mp, &rope);
  const rotary_status want = st != ROTARY_OK ? st : table_verdict(in.c.rotary_dim, mp, &bytes);
  if (cst != want) rope_fail("create: status %d, expected %d (max_positions %zu)", (int)cst, (int)want, mp);
  if ((cst != ROTARY_OK) != (rope == SENTINEL)) rope_fail("create: *out set on error or left on success");
  if (cst != ROTARY_OK) {
    rope_fuzz_refused++;
    if (cst == st) check_streams_stage(&in.c, st, &r); /* the config refused; a streams field on it too */
    free_input(&in);
    return 0;
  }
  rope_fuzz_ok++;
  check_rope(rope, &in.c, mp);
  rotary_rope *twin = NULL;
  if (mp && rotary_rope_create(&in.c, 0, &twin) != ROTARY_OK) rope_fail("create: the table-free twin refused");
  check_rows(rope, twin, &r);
  check_derive(&in.c, rope, &r);
  if (in.c.rotary_dim <= 256) check_derive(&in.c, rope, &r); /* a second length: growing, then shrinking */
  rotary_rope_destroy(twin);
  rotary_rope_destroy(rope);
  check_streams_stage(&in.c, st, &r); /* the rest of the input: the same config with a streams field */
  free_input(&in);
  return 0;
}
