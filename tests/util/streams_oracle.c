/* streams_oracle.c: an independent model of multi-stream layouts and an fp64 oracle for their cos/sin rows. */
#include "streams_oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_exact.h"

size_t so_n_streams(const rotary_streams *s) {
  switch (s->layout) {
    case ROTARY_STREAMS_NONE: return 1;
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL: return 2;
    default: return s->n_streams;
  }
}

void so_map(const rotary_streams *s, size_t half, uint8_t *map) {
  memset(map, 0, half);
  switch (s->layout) {
    case ROTARY_STREAMS_SECTIONS: {
      size_t i = 0;
      for (size_t j = 0; j < s->n_streams; j++)
        for (size_t k = 0; k < s->sections[j]; k++) map[i++] = (uint8_t)j;
      break;
    }
    case ROTARY_STREAMS_INTERLEAVED: /* Qwen3-VL's apply_interleaved_mrope: freqs[..., j:n*sec[j]:n] = stream j */
      for (size_t j = 1; j < s->n_streams; j++)
        for (size_t i = j; i < s->n_streams * s->sections[j] && i < half; i += s->n_streams) map[i] = (uint8_t)j;
      break;
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL: memset(map + half / 2, 1, half - half / 2); break;
    case ROTARY_STREAMS_MAP: memcpy(map, s->map, half); break;
    default: break;
  }
}

/* Sections of n streams summing to half, each >= 0 (interleaved: each j > 0 fits its n-strided slots). */
static void random_sections(tu_rng *rng, size_t n, size_t half, int interleaved, size_t *sec) {
  for (;;) {
    size_t left = half;
    for (size_t j = n; j-- > 1;) {
      size_t most = !interleaved ? left : half > j ? (half - j + n - 1) / n : 0; /* n (sec - 1) + j < half */
      if (most > left) most = left;
      sec[j] = (size_t)tu_rng_below(rng, most + 1);
      left -= sec[j];
    }
    sec[0] = left;
    if (half < 2 * n || sec[0] < half) return; /* not every frequency on stream 0, when there is room */
  }
}

void so_random_layout(tu_rng *rng, rotary_stream_layout kind, size_t half, so_layout *out) {
  memset(out, 0, sizeof *out);
  rotary_streams *s = &out->streams;
  s->layout = kind;
  const size_t n = 2 + (size_t)tu_rng_below(rng, ROTARY_MAX_STREAMS - 1);
  switch (kind) {
    case ROTARY_STREAMS_SECTIONS:
    case ROTARY_STREAMS_INTERLEAVED:
      s->n_streams = n;
      random_sections(rng, n, half, kind == ROTARY_STREAMS_INTERLEAVED, s->sections);
      break;
    case ROTARY_STREAMS_MAP:
      s->n_streams = n;
      for (size_t i = 0; i < half; i++) out->map_buf[i] = (uint8_t)tu_rng_below(rng, n);
      s->map = out->map_buf;
      break;
    case ROTARY_STREAMS_VISION_2D:
    case ROTARY_STREAMS_VISION_2D_PIXTRAL: s->n_streams = tu_rng_below(rng, 2) ? 2 : 0; break;
    default: break;
  }
}

void so_gather(const float *rows1, const uint8_t *map, size_t half, float *c, float *s) {
  for (size_t i = 0; i < half; i++) {
    c[i] = rows1[map[i] * 2 * half + i];
    s[i] = rows1[map[i] * 2 * half + half + i];
  }
}

void so_true_row(const int64_t *ids, const uint8_t *map, const double *inv_freq, size_t half, long double scaling,
                 long double *c, long double *s) {
  for (size_t i = 0; i < half; i++) {
    const long double angle = (long double)ids[map[i]] * (long double)inv_freq[i];
    c[i] = cosl(angle) * scaling;
    s[i] = sinl(angle) * scaling;
  }
}

size_t so_exact_row(const int64_t *ids, const uint8_t *map, const double *inv_freq, size_t half, double scaling,
                    float *c, float *s) {
  size_t undecided = 0;
  for (size_t i = 0; i < half; i++)
    undecided += oracle_exact_cos_sin(ids[map[i]], inv_freq[i], scaling, &c[i], &s[i]) == ORACLE_UNDECIDED;
  return undecided;
}

rotary_rope *so_rope(const so_layout *l, size_t hd, size_t rd, rotary_pairing pairing, double base, int scaling,
                     double att, size_t max_positions) {
  rotary_config c;
  rotary_config_init(&c, hd);
  c.rotary_dim = rd;
  c.pairing = pairing;
  c.base = base;
  c.attention_scaling = att;
  c.streams = l->streams;
  if (scaling == 1) {
    c.scaling.type = ROTARY_SCALING_LINEAR;
    c.scaling.factor = 2.5;
  } else if (scaling == 2) {
    c.scaling.type = ROTARY_SCALING_YARN;
    c.scaling.factor = 4.0;
    c.scaling.original_max_position_embeddings = 2048;
  } else if (scaling == 3) {
    c.scaling.type = ROTARY_SCALING_LLAMA3;
    c.scaling.factor = 8.0;
    c.scaling.low_freq_factor = 1.0;
    c.scaling.high_freq_factor = 4.0;
    c.scaling.original_max_position_embeddings = 1024;
  }
  rotary_rope *rope = NULL;
  return rotary_rope_create(&c, max_positions, &rope) == ROTARY_OK ? rope : NULL;
}

int so_ids_make(so_ids *s, tu_rng *rng, size_t ns, size_t n, size_t gap, int64_t limit) {
  s->ns = ns, s->n = n, s->stride = n + gap;
  s->ids = malloc(ns * s->stride * sizeof *s->ids);
  s->ids32 = malloc(ns * s->stride * sizeof *s->ids32);
  if (!s->ids || !s->ids32) return -1;
  for (size_t k = 0; k < ns * s->stride; k++) s->ids[k] = -1;
  for (size_t t = 0; t < n; t++)
    for (size_t j = 0; j < ns; j++)
      s->ids[j * s->stride + t] = t % 3 == 0 && j ? s->ids[t] : (int64_t)tu_rng_below(rng, (uint64_t)limit);
  for (size_t k = 0; k < ns * s->stride; k++) s->ids32[k] = (int32_t)s->ids[k];
  return 0;
}

void so_ids_free(so_ids *s) {
  free(s->ids);
  free(s->ids32);
  s->ids = NULL;
  s->ids32 = NULL;
}

int so_expected_rows(const rotary_rope *rope, const so_ids *s, const uint8_t *map, size_t half, float *c, float *sn) {
  float *rows1 = malloc(s->ns * 2 * half * sizeof(float));
  if (!rows1) return -1;
  int bad = 0;
  for (size_t t = 0; t < s->n; t++) {
    for (size_t j = 0; j < s->ns; j++)
      bad |= rotary_rope_cos_sin(rope, &s->ids[j * s->stride + t], 1, rows1 + j * 2 * half,
                                 rows1 + j * 2 * half + half) != ROTARY_OK;
    so_gather(rows1, map, half, c + t * half, sn + t * half);
  }
  free(rows1);
  return bad ? -1 : 0;
}
