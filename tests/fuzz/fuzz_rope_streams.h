/* fuzz_rope_streams.h: the multi-stream stage of fuzz_rope.c (included by it, after its carving and checks). */
/*
 * After fuzz_rope.c's checks of a config, the rest of the input carves its `streams` field (every layout, invalid
 * ones, sections that do not cover the frequencies, interleaved sections too long, maps with entries beyond
 * n_streams or none) onto the same config. rotary_config_check and rotary_rope_create must refuse what the header
 * calls inconsistent (STREAMS with a streams.* field; SCALING for a vision layout with scaling; NULL_POINTER or
 * STREAMS for a MAP without map) and accept what it calls consistent. A rope made so must report its stream count
 * and the header's stream of every frequency, keep the one-stream rope's frequencies (vision layouts: the 2-D
 * split), and give rotary_rope_cos_sin_streams rows equal, bit for bit, to the 1-D rows of each frequency's stream
 * (table and table-free alike). rotary_apply with STREAMS_I32/I64 positions (n_streams, stream_stride, ids, all
 * carved) must return a status from the certain errors' set, write nothing on error, and on success equal a
 * COS_SIN call with those rows, and the 1-D call with IDS_I64 when every stream holds the same id.
 */
#ifndef ROTARY_FUZZ_ROPE_STREAMS_H
#define ROTARY_FUZZ_ROPE_STREAMS_H

static unsigned long rope_fuzz_streams_ok, rope_fuzz_streams_refused, rope_fuzz_streams_applied;

#define SBIT(s) (1u << (unsigned)(s))

typedef struct streams_carve {
  rotary_streams st;
  uint8_t *map; /* owned: rotary_dim/2 entries (MAP), or NULL */
} streams_carve;

static int is_vision(rotary_stream_layout l) {
  return l == ROTARY_STREAMS_VISION_2D || l == ROTARY_STREAMS_VISION_2D_PIXTRAL;
}

/* n sections summing to half: random cut points (interleaved: stream j > 0 at most its share of the period). */
static void carve_split(carver *r, size_t half, size_t n, int interleaved, size_t *sec) {
  size_t left = half;
  for (size_t j = n; j-- > 1;) {
    size_t cap = interleaved ? (half > j ? (half - 1 - j) / n + 1 : 0) : left > j ? left - j : 0;
    if (cap > left) cap = left;
    sec[j] = cap ? 1 + take(r) % cap : 0;
    left -= sec[j];
  }
  sec[0] = left;
}

static void carve_sections(carver *r, size_t half, streams_carve *sc) {
  rotary_streams *st = &sc->st;
  const size_t n = st->n_streams >= 2 && st->n_streams <= ROTARY_MAX_STREAMS ? st->n_streams : 3;
  const uint8_t m = take(r);
  if (m < 200 && (st->layout == ROTARY_STREAMS_SECTIONS || st->layout == ROTARY_STREAMS_INTERLEAVED))
    carve_split(r, half, n, st->layout == ROTARY_STREAMS_INTERLEAVED, st->sections);
  if (m >= 160 && m < 200) { /* one entry one off (perhaps beyond n_streams) */
    size_t *e = &st->sections[take(r) % ROTARY_MAX_STREAMS];
    *e = take(r) & 1 ? *e + 1 : *e - (*e > 0);
  } else if (m >= 200 && m < 240) {
    for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) st->sections[j] = take(r) % (half + 2);
  } else if (m >= 240) {
    st->sections[take(r) % ROTARY_MAX_STREAMS] = take_size(r, half);
  }
}

static void carve_map(carver *r, size_t half, streams_carve *sc) {
  const uint8_t m = take(r);
  if (sc->st.layout != ROTARY_STREAMS_MAP || half == 0 || half > ROTARY_MAX_HEAD_DIM / 2 || m >= 250) return;
  sc->map = malloc(half);
  if (!sc->map) return;
  const size_t n = sc->st.n_streams ? sc->st.n_streams : 1;
  const uint8_t seed = take(r);
  for (size_t i = 0; i < half; i++) sc->map[i] = (uint8_t)((i * (seed | 1u) + seed / 7u) % (n < 256 ? n : 255));
  if (m >= 200) sc->map[take(r) % half] = (uint8_t)(n + take(r) % 3); /* one entry beyond the streams */
  else if (m >= 100)
    for (size_t i = 0; i < half && r->n; i++) sc->map[i] = (uint8_t)(take(r) % (n < 256 ? n : 255));
  sc->st.map = sc->map;
}

static void carve_streams(carver *r, size_t rotary_dim, streams_carve *sc) {
  memset(sc, 0, sizeof *sc);
  rotary_streams *st = &sc->st;
  const size_t half = rotary_dim >= 2 && rotary_dim <= ROTARY_MAX_HEAD_DIM ? rotary_dim / 2 : 0;
  const uint8_t b = take(r), k = take(r);
  st->layout = b < 246 ? (rotary_stream_layout)(b % 6) : b == 255 ? (rotary_stream_layout)-1
                                                                   : (rotary_stream_layout)(6 + b - 246);
  static const size_t odd_n[8] = {0, 1, 2, 3, 4, 5, 255, SIZE_MAX};
  if (k >= 192) st->n_streams = odd_n[k % 8];
  else if (st->layout == ROTARY_STREAMS_NONE) st->n_streams = k % 2;
  else if (is_vision(st->layout)) st->n_streams = k % 2 ? 2 : 0;
  else st->n_streams = 2 + k % 3;
  carve_sections(r, half, sc);
  carve_map(r, half, sc);
}

/* ---- the verdict on a streams field (the rest of the config valid) ---- */

typedef struct streams_verdict {
  int bad;        /* certainly refused */
  int clear;      /* certainly accepted (when not bad) */
  unsigned may;   /* the statuses a refusal may have */
} streams_verdict;

static streams_verdict judge_sections(const rotary_config *c, const rotary_streams *st, size_t half) {
  streams_verdict v = {0, 1, SBIT(ROTARY_ERR_STREAMS)};
  const size_t n = st->n_streams;
  size_t sum = 0;
  for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) {
    if (j >= n) {
      v.clear &= st->sections[j] == 0; /* "entries from n_streams on are 0": a refusal or not, not said */
      continue;
    }
    if (st->sections[j] > half) v.bad = 1;
    else sum += st->sections[j];
    v.clear &= st->sections[j] > 0;
    if (st->layout == ROTARY_STREAMS_INTERLEAVED && j > 0 && st->sections[j] > 0 && st->sections[j] <= half &&
        n * (st->sections[j] - 1) + j >= half)
      v.bad = 1;
  }
  if (sum != half) v.bad = 1;
  (void)c;
  return v;
}

static streams_verdict judge_streams(const rotary_config *c) {
  const rotary_streams *st = &c->streams;
  const size_t half = c->rotary_dim / 2, n = st->n_streams;
  streams_verdict v = {0, 1, SBIT(ROTARY_ERR_STREAMS)};
  int zero_sections = 1;
  for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) zero_sections &= st->sections[j] == 0;
  switch (st->layout) {
    case ROTARY_STREAMS_NONE:
      v.bad = n > 1;
      v.clear = zero_sections && !st->map;
      return v;
    case ROTARY_STREAMS_SECTIONS:
    case ROTARY_STREAMS_INTERLEAVED:
      if (n < 2 || n > ROTARY_MAX_STREAMS) return (streams_verdict){1, 0, SBIT(ROTARY_ERR_STREAMS)};
      v = judge_sections(c, st, half);
      v.clear &= !st->map;
      return v;
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL:
      v.may |= SBIT(ROTARY_ERR_SCALING);
      v.bad = c->rotary_dim % 4 != 0 || (n != 0 && n != 2) || c->scaling.type != ROTARY_SCALING_NONE;
      v.clear = zero_sections && !st->map;
      return v;
    case ROTARY_STREAMS_MAP:
      v.may |= SBIT(ROTARY_ERR_NULL_POINTER);
      v.bad = n < 2 || n > ROTARY_MAX_STREAMS || !st->map;
      for (size_t i = 0; !v.bad && i < half; i++) v.bad = st->map[i] >= n;
      v.clear = zero_sections;
      return v;
  }
  return (streams_verdict){1, 0, SBIT(ROTARY_ERR_STREAMS)};
}

static size_t streams_count(const rotary_streams *st) {
  return st->layout == ROTARY_STREAMS_NONE ? 1 : is_vision(st->layout) ? 2 : st->n_streams;
}

/* The header's stream of each frequency, for a consistent field. */
static void header_map(const rotary_config *c, uint8_t *map) {
  const rotary_streams *st = &c->streams;
  const size_t half = c->rotary_dim / 2, n = streams_count(st);
  size_t j = 0, bound = st->sections[0];
  for (size_t i = 0; i < half; i++) {
    size_t k = 0;
    if (st->layout == ROTARY_STREAMS_SECTIONS) {
      while (i >= bound && j + 1 < n) bound += st->sections[++j];
      k = j;
    } else if (st->layout == ROTARY_STREAMS_INTERLEAVED) {
      k = i % n;
      if (k && i >= n * st->sections[k]) k = 0;
    } else if (is_vision(st->layout)) {
      k = i >= half / 2;
    } else if (st->layout == ROTARY_STREAMS_MAP) {
      k = st->map[i];
    }
    map[i] = (uint8_t)k;
  }
}

/* ---- a rope with streams ---- */

/* Rows of n tokens from the rope's own 1-D rows: frequency i of token t from stream map[i]'s id. 0: no memory. */
static int oracle_rows(const rotary_rope *rope, const uint8_t *map, size_t ns, const int64_t *ids, size_t stride,
                       size_t n, float *c, float *s) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2;
  float *c1 = malloc(half * sizeof *c1), *s1 = malloc(half * sizeof *s1);
  int ok = c1 && s1;
  for (size_t t = 0; ok && t < n; t++)
    for (size_t j = 0; ok && j < ns; j++) {
      if (rotary_rope_cos_sin(rope, &ids[j * stride + t], 1, c1, s1) != ROTARY_OK) {
        rope_fail("streams: the 1-D row of id %lld refused", (long long)ids[j * stride + t]);
        ok = 0;
      }
      for (size_t i = 0; ok && i < half; i++)
        if (map[i] == j) c[t * half + i] = c1[i], s[t * half + i] = s1[i];
    }
  free(c1), free(s1);
  return ok;
}

/* Stream count, map and frequencies of a rope made with streams. */
static void check_stream_rope(const rotary_rope *rope, const rotary_config *c, const uint8_t *map) {
  const size_t half = c->rotary_dim / 2;
  if (rotary_rope_streams(rope) != streams_count(&c->streams))
    rope_fail("streams: rotary_rope_streams %zu, expected %zu", rotary_rope_streams(rope), streams_count(&c->streams));
  uint8_t *got = malloc(half);
  double *w = malloc(half * sizeof *w), *flat = malloc(half * sizeof *flat);
  if (!got || !w || !flat) goto done;
  if (rotary_rope_stream_map(rope, got) != ROTARY_OK || memcmp(got, map, half))
    rope_fail("streams: the stream map differs from the header's");
  rotary_rope_inv_freq(rope, w);
  if (c->inv_freq) { /* a given inv_freq replaces the derived frequencies for every layout */
    if (c->scaling.type == ROTARY_SCALING_NONE && memcmp(w, c->inv_freq, half * sizeof *w))
      rope_fail("streams: inv_freq differs from the given one");
  } else if (!is_vision(c->streams.layout)) { /* the one-stream rope's frequencies */
    rotary_config one = *c;
    memset(&one.streams, 0, sizeof one.streams);
    rotary_rope *r1 = NULL;
    if (rotary_rope_create(&one, 0, &r1) != ROTARY_OK) rope_fail("streams: the one-stream rope refused");
    else if (rotary_rope_inv_freq(r1, flat), memcmp(w, flat, half * sizeof *w))
      rope_fail("streams: frequencies differ from the one-stream rope's");
    rotary_rope_destroy(r1);
  } else if (c->scaling.type == ROTARY_SCALING_NONE) { /* the 2-D split of rotary_dim/2 frequencies */
    const int pixtral = c->streams.layout == ROTARY_STREAMS_VISION_2D_PIXTRAL;
    for (size_t i = 0; i < half / 2; i++) {
      const double e0 = pow(c->base, -4.0 * (double)i / (double)c->rotary_dim);
      const double e1 = pow(c->base, -(4.0 * (double)i + (pixtral ? 2.0 : 0.0)) / (double)c->rotary_dim);
      const double w1 = w[half / 2 + i];
      if ((e0 >= DBL_MIN && fabs(w[i] - e0) > 1e-12 * e0) || (e1 >= DBL_MIN && fabs(w1 - e1) > 1e-12 * e1) ||
          (!pixtral && memcmp(&w[i], &w[half / 2 + i], sizeof *w))) {
        rope_fail("streams: vision frequency %zu = (%.17g, %.17g), expected (%.17g, %.17g)", i, w[i], w[half / 2 + i],
                  e0, e1);
        break;
      }
    }
  }
done:
  free(got), free(w), free(flat);
}

/* A stream stride for n tokens: 0 (dense), n and above, below n (streams overlapping: not said), or so large that
 * the ids' extent overflows. *kind: 0 plain, 1 below n, 2 huge. */
static size_t take_stride(carver *r, size_t n, size_t ns, int *kind) {
  const uint8_t b = take(r);
  *kind = 0;
  if (b < 150) return 0;
  if (b < 220) return n + take(r) % 4;
  if (b < 240 && n > 1) {
    *kind = 1;
    return 1 + take(r) % (n - 1);
  }
  if (ns < 2) return 0;
  *kind = 2;
  return b & 1 ? SIZE_MAX : SIZE_MAX / 8 / (ns - 1) + 1;
}

/* ids read at [j * stride + t], j < ns, t < n: every stream the same id (a text token) or carved. Returns whether
 * an id read is outside 0..max; *agree: whether every token's streams hold one id (after overlapping writes). */
static int scan_ids(const int64_t *ids, size_t n, size_t ns, size_t stride, int64_t max, int *agree) {
  int bad = 0;
  *agree = 1;
  for (size_t t = 0; t < n; t++)
    for (size_t j = 0; j < ns; j++) {
      const int64_t id = ids[j * stride + t];
      bad |= id < 0 || id > max;
      *agree &= id == ids[t];
    }
  return bad;
}

static int carve_stream_ids(carver *r, int64_t *ids, size_t n, size_t ns, size_t stride, int64_t max, int *agree) {
  const int same = take(r) < 96;
  for (size_t t = 0; t < n; t++)
    for (size_t j = 0; j < ns; j++) ids[j * stride + t] = same && j ? ids[t] : take_position(r, max);
  return scan_ids(ids, n, ns, stride, max, agree);
}

static int64_t max_id(const rotary_rope *rope) {
  const size_t mp = rotary_rope_max_positions(rope);
  return mp ? (int64_t)mp - 1 : ROTARY_MAX_POSITION;
}

/* rotary_rope_cos_sin_streams: status, nothing written on error, rows equal the oracle and the table-free twin. */
static void check_stream_rows(const rotary_rope *rope, const rotary_rope *twin, const uint8_t *map, carver *r) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2, ns = rotary_rope_streams(rope), n = take(r) % 9, guard = 16;
  int kind, agree;
  const size_t stride = take_stride(r, n, ns, &kind), eff = stride ? stride : n;
  const size_t extent = kind == 2 ? n : eff * (ns - 1) + n, count = n * half + guard;
  int64_t *ids = calloc(extent ? extent : 1, sizeof *ids);
  float *buf[5] = {NULL};
  for (int i = 0; i < 5; i++) buf[i] = malloc(count * sizeof(float));
  if (!ids || !buf[0] || !buf[1] || !buf[2] || !buf[3] || !buf[4]) goto done;
  const int bad = kind == 2 ? 0 : carve_stream_ids(r, ids, n, ns, eff, max_id(rope), &agree);
  const int null_out = take(r) == 255;
  memset(buf[4], 0x5a, count * sizeof(float));
  memcpy(buf[0], buf[4], count * sizeof(float));
  memcpy(buf[1], buf[4], count * sizeof(float));
  const rotary_status st = rotary_rope_cos_sin_streams(rope, ids, stride, n, null_out ? NULL : buf[0], buf[1]);
  unsigned must = 0, may = 0;
  if (n && null_out) must |= SBIT(ROTARY_ERR_NULL_POINTER);
  if (n && bad) must |= SBIT(ROTARY_ERR_POSITION);
  if (kind == 2 && n) must |= SBIT(ROTARY_ERR_OVERFLOW);
  if (kind == 2 && !n) may |= SBIT(ROTARY_ERR_OVERFLOW);
  if (kind == 1 && n) must |= SBIT(ROTARY_ERR_INVALID_ARGUMENT); /* stride nonzero and below n */
  if (twin == NULL) may |= SBIT(ROTARY_ERR_OUT_OF_MEMORY); /* rope is table-free: a scratch row for many runs */
  if ((unsigned)st > 31 || (must ? !((must | may) & SBIT(st)) : st != ROTARY_OK && !(may & SBIT(st))))
    rope_fail("cos_sin_streams: status %d, must %#x may %#x (n %zu, streams %zu, stride %zu)", (int)st, must, may, n,
              ns, stride);
  if (st != ROTARY_OK || n == 0) {
    if (memcmp(buf[0], buf[4], count * sizeof(float)) || memcmp(buf[1], buf[4], count * sizeof(float)))
      rope_fail("cos_sin_streams: refused (%d) but wrote", (int)st);
    goto done;
  }
  if (memcmp(buf[0] + n * half, buf[4], guard * sizeof(float)) ||
      memcmp(buf[1] + n * half, buf[4], guard * sizeof(float)))
    rope_fail("cos_sin_streams: wrote past n * rotary_dim / 2 values");
  if (oracle_rows(rope, map, ns, ids, eff, n, buf[2], buf[3]) &&
      (memcmp(buf[0], buf[2], n * half * sizeof(float)) || memcmp(buf[1], buf[3], n * half * sizeof(float))))
    rope_fail("cos_sin_streams: rows differ from the 1-D rows of each frequency's stream");
  if (twin && (rotary_rope_cos_sin_streams(twin, ids, stride, n, buf[2], buf[3]) != ROTARY_OK ||
               memcmp(buf[0], buf[2], n * half * sizeof(float)) || memcmp(buf[1], buf[3], n * half * sizeof(float))))
    rope_fail("cos_sin_streams: the table-free twin differs");
done:
  free(ids);
  for (int i = 0; i < 5; i++) free(buf[i]);
}

/* ---- rotary_apply with STREAMS positions ---- */

typedef struct stream_call {
  size_t batch, seq, rows, heads[2], dim, bytes[2];
  float *x[2], *saved[2], *ref[2];
  rotary_apply_desc d;
} stream_call;

static void free_call(stream_call *k) {
  for (int t = 0; t < 2; t++) free(k->x[t]), free(k->saved[t]), free(k->ref[t]);
}

/* q and k in place, f32, bshd, small finite values; 0: no memory. */
static int make_call(carver *r, const rotary_rope *rope, stream_call *k) {
  memset(k, 0, sizeof *k);
  k->batch = 1 + take(r) % 3, k->seq = 1 + take(r) % 4, k->rows = k->batch * k->seq;
  k->heads[0] = 1 + take(r) % 2, k->heads[1] = 1, k->dim = rotary_rope_head_dim(rope);
  rotary_apply_desc_init(&k->d);
  k->d.batch = k->batch, k->d.seq_len = k->seq;
  k->d.direction = take(r) & 1 ? ROTARY_INVERSE : ROTARY_FORWARD;
  for (int t = 0; t < 2; t++) {
    k->bytes[t] = k->rows * k->heads[t] * k->dim * sizeof(float);
    k->x[t] = malloc(k->bytes[t]), k->saved[t] = malloc(k->bytes[t]), k->ref[t] = malloc(k->bytes[t]);
    if (!k->x[t] || !k->saved[t] || !k->ref[t]) return 0;
    for (size_t i = 0; i < k->bytes[t] / sizeof(float); i++)
      k->x[t][i] = (float)((i * 37 + 11 * (size_t)t) % 19) * 0.125f - 1.0f;
    memcpy(k->saved[t], k->x[t], k->bytes[t]);
    if (rotary_tensor_init(t ? &k->d.k : &k->d.q, ROTARY_LAYOUT_BSHD, k->x[t], k->x[t], ROTARY_F32, k->seq,
                           k->heads[t], k->dim) != ROTARY_OK)
      return 0;
  }
  return 1;
}

/* The same call from the saved input with other positions (ref holds the output under test). */
static rotary_status call_ref(const rotary_rope *rope, stream_call *k, const rotary_positions *p) {
  for (int t = 0; t < 2; t++) memcpy(k->x[t], k->saved[t], k->bytes[t]);
  rotary_apply_desc d = k->d;
  d.positions = *p;
  return rotary_apply(NULL, rope, &d);
}

static int same_output(const stream_call *k) {
  return !memcmp(k->x[0], k->ref[0], k->bytes[0]) && !memcmp(k->x[1], k->ref[1], k->bytes[1]);
}

/* The successful call against a COS_SIN call with the oracle's rows, and the 1-D call when the streams agree. */
static void check_apply_result(const rotary_rope *rope, const uint8_t *map, stream_call *k, const int64_t *ids,
                               size_t eff, int agree) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2, ns = rotary_rope_streams(rope);
  for (int t = 0; t < 2; t++) memcpy(k->ref[t], k->x[t], k->bytes[t]);
  float *c = malloc(k->rows * half * sizeof *c), *s = malloc(k->rows * half * sizeof *s);
  if (c && s && oracle_rows(rope, map, ns, ids, eff, k->rows, c, s)) {
    rotary_positions p = {0};
    p.mode = ROTARY_POSITIONS_COS_SIN, p.cos = c, p.sin = s;
    if (call_ref(rope, k, &p) != ROTARY_OK) rope_fail("apply streams: the COS_SIN reference refused");
    else if (!same_output(k)) rope_fail("apply streams: differs from COS_SIN with the 1-D rows of each stream");
  }
  if (agree) {
    rotary_positions p = {0};
    p.mode = ROTARY_POSITIONS_IDS_I64, p.ids = ids;
    if (call_ref(rope, k, &p) != ROTARY_OK) rope_fail("apply streams: the 1-D reference refused");
    else if (!same_output(k)) rope_fail("apply streams: streams that agree differ from the 1-D call");
  }
  free(c), free(s);
}

static void check_stream_apply(const rotary_rope *rope, const uint8_t *map, carver *r) {
  stream_call k;
  memset(&k, 0, sizeof k);
  if (rotary_rope_head_dim(rope) > 256 || !make_call(r, rope, &k)) goto done;
  const size_t ns = rotary_rope_streams(rope), rows = k.rows;
  rotary_positions *p = &k.d.positions;
  const uint8_t b = take(r);
  p->mode = b & 1 ? ROTARY_POSITIONS_STREAMS_I32 : ROTARY_POSITIONS_STREAMS_I64;
  static const size_t odd_n[6] = {0, 1, 2, 3, 4, 5};
  p->n_streams = b >= 224 ? odd_n[b % 6] : ns;
  int kind, agree = 0, bad = 0;
  p->stream_stride = take_stride(r, rows, ns, &kind);
  const size_t eff = p->stream_stride ? p->stream_stride : rows, extent = kind == 2 ? rows : eff * (ns - 1) + rows;
  int64_t *ids = calloc(extent, sizeof *ids);
  int32_t *ids32 = calloc(extent, sizeof *ids32);
  if (!ids || !ids32) goto free_ids;
  if (kind != 2) {
    const int64_t max = max_id(rope);
    const int narrow = p->mode == ROTARY_POSITIONS_STREAMS_I32;
    bad = carve_stream_ids(r, ids, rows, ns, eff, narrow && max > INT32_MAX ? INT32_MAX : max, &agree);
    for (size_t i = 0; i < extent; i++)
      ids32[i] = (int32_t)(ids[i] < INT32_MIN ? INT32_MIN : ids[i] > INT32_MAX ? INT32_MAX : ids[i]);
    if (narrow) { /* what the call reads: the clamped values */
      for (size_t i = 0; i < extent; i++) ids[i] = ids32[i];
      bad = scan_ids(ids, rows, ns, eff, max, &agree);
    }
  }
  p->ids = take(r) == 255 ? NULL : p->mode == ROTARY_POSITIONS_STREAMS_I32 ? (const void *)ids32 : (const void *)ids;
  unsigned must = 0;
  if (p->n_streams != ns) must |= SBIT(ROTARY_ERR_STREAMS);
  if (!p->ids) must |= SBIT(ROTARY_ERR_NULL_POINTER);
  if (bad) must |= SBIT(ROTARY_ERR_POSITION);
  if (kind) must |= SBIT(kind == 2 ? ROTARY_ERR_OVERFLOW : ROTARY_ERR_INVALID_ARGUMENT);
  const rotary_status st = rotary_apply(NULL, rope, &k.d);
  rope_fuzz_streams_applied++;
  if ((unsigned)st > 31 || (must ? !(must & SBIT(st)) : st != ROTARY_OK))
    rope_fail("apply streams: status %d, must %#x (mode %d, n_streams %zu of %zu, stride %zu, rows %zu)", (int)st,
              must, (int)p->mode, p->n_streams, ns, p->stream_stride, rows);
  if (st != ROTARY_OK) {
    if (memcmp(k.x[0], k.saved[0], k.bytes[0]) || memcmp(k.x[1], k.saved[1], k.bytes[1]))
      rope_fail("apply streams: refused (%d) but wrote", (int)st);
  } else {
    check_apply_result(rope, map, &k, ids, eff, agree);
  }
free_ids:
  free(ids), free(ids32);
done:
  free_call(&k);
}

/* ---- the stage ---- */

/* The config's status with a streams field, given its status without one (base). */
static void check_streams_status(const rotary_config *c, rotary_status base, rotary_status st, const char *field) {
  const streams_verdict v = judge_streams(c);
  const int unclear = !v.bad && !v.clear;
  int ok;
  if (base != ROTARY_OK) ok = st == base || ((v.bad || unclear) && (unsigned)st < 32 && (v.may & SBIT(st)));
  else if (v.bad) ok = st != ROTARY_OK && (unsigned)st < 32 && (v.may & SBIT(st));
  else if (v.clear) ok = st == ROTARY_OK;
  else ok = st == ROTARY_OK || ((unsigned)st < 32 && (v.may & SBIT(st)));
  if (!ok)
    rope_fail("streams check: status %d (base %d) for layout %d, n_streams %zu, sections %zu,%zu,%zu,%zu, map %s, "
              "rotary_dim %zu, scaling %d", (int)st, (int)base, (int)c->streams.layout, c->streams.n_streams,
              c->streams.sections[0], c->streams.sections[1], c->streams.sections[2], c->streams.sections[3],
              c->streams.map ? "set" : "NULL", c->rotary_dim, (int)c->scaling.type);
  static const char *const fields[] = {"streams.layout", "streams.n_streams", "streams.sections", "streams.map"};
  int named = 0;
  for (size_t i = 0; field && i < 4; i++) named |= !strcmp(field, fields[i]);
  if (st == ROTARY_ERR_STREAMS && !named) rope_fail("streams check: STREAMS with field %s", field ? field : "NULL");
}

/* The rest of the input: a streams field on the config of fuzz_rope.c's checks (base: its status). */
static void check_streams_stage(const rotary_config *base_cfg, rotary_status base, carver *r) {
  if (!r->n) return;
  rotary_config c = *base_cfg;
  streams_carve sc;
  carve_streams(r, c.rotary_dim, &sc);
  c.streams = sc.st;
  const char *field = NULL;
  const rotary_status st = rotary_config_check(&c, &field);
  check_streams_status(&c, base, st, field);
  const size_t mp = take_positions(r, c.rotary_dim);
  rotary_rope *rope = SENTINEL, *twin = NULL;
  size_t bytes;
  const rotary_status cst = rotary_rope_create(&c, mp, &rope);
  const rotary_status want = st != ROTARY_OK ? st : table_verdict(c.rotary_dim, mp, &bytes);
  if (cst != want) rope_fail("streams create: status %d, expected %d", (int)cst, (int)want);
  if ((cst != ROTARY_OK) != (rope == SENTINEL)) rope_fail("streams create: *out set on error or left on success");
  if (cst != ROTARY_OK) {
    rope_fuzz_streams_refused++;
    free(sc.map);
    return;
  }
  rope_fuzz_streams_ok++;
  uint8_t *map = malloc(c.rotary_dim / 2);
  if (map) {
    header_map(&c, map);
    check_stream_rope(rope, &c, map);
    if (mp && rotary_rope_create(&c, 0, &twin) != ROTARY_OK) rope_fail("streams create: the table-free twin refused");
    check_stream_rows(rope, twin, map, r);
    check_stream_apply(take(r) & 1 && twin ? twin : rope, map, r);
  }
  free(map);
  free(sc.map); /* the rope holds its own copy */
  rotary_rope_destroy(twin);
  rotary_rope_destroy(rope);
}

#endif /* ROTARY_FUZZ_ROPE_STREAMS_H */
