/* scaling.c: inverse frequencies and attention factors of every scaling family, in fp64, as Hugging Face defines
 * them (transformers' modeling_rope_utils), and the validation of their parameters. */
#include <math.h>
#include <stddef.h>

#include "check.h"
#include "scaling.h"

#define FAIL(name, status) \
  do {                     \
    if (field) *field = (name); \
    return (status);       \
  } while (0)

static int finite_positive(double v) { return isfinite(v) && v > 0.0; }

/* base^(-2i/d), the unscaled frequency. */
static double default_freq(double base, size_t i, size_t d) { return pow(base, -(double)(2 * i) / (double)d); }

/* YaRN's and LongRoPE's factor: given, or max_position_embeddings / original_max_position_embeddings. */
static double derived_factor(const rotary_scaling *s) {
  return s->factor != 0.0 ? s->factor
                          : (double)s->max_position_embeddings / (double)s->original_max_position_embeddings;
}

static rotary_status check_factors(const double *f, size_t half, const char *name, const char **field) {
  if (!f) FAIL(name, ROTARY_ERR_SCALING);
  for (size_t i = 0; i < half; i++)
    if (!finite_positive(f[i])) FAIL(name, ROTARY_ERR_SCALING);
  return ROTARY_OK;
}

rotary_status rotary_scaling_check(const rotary_config *c, const char **field) {
  const rotary_scaling *s = &c->scaling;
  const size_t half = c->rotary_dim / 2;
  switch (s->type) {
    case ROTARY_SCALING_NONE: return ROTARY_OK;
    case ROTARY_SCALING_LINEAR:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_DYNAMIC:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!s->max_position_embeddings) FAIL("scaling.max_position_embeddings", ROTARY_ERR_SCALING);
      if (c->rotary_dim < 4) FAIL("rotary_dim", ROTARY_ERR_SCALING); /* the exponent d / (d - 2) */
      return ROTARY_OK;
    case ROTARY_SCALING_NTK:
      if (!finite_positive(s->factor) || s->factor < 1.0) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (c->rotary_dim < 4) FAIL("rotary_dim", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_YARN:
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (s->factor == 0.0 && !s->max_position_embeddings) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!finite_positive(derived_factor(s))) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (s->attention_factor != 0.0 && !finite_positive(s->attention_factor))
        FAIL("scaling.attention_factor", ROTARY_ERR_SCALING);
      if (s->beta_fast != 0.0 && !finite_positive(s->beta_fast)) FAIL("scaling.beta_fast", ROTARY_ERR_SCALING);
      if (s->beta_slow != 0.0 && !finite_positive(s->beta_slow)) FAIL("scaling.beta_slow", ROTARY_ERR_SCALING);
      if (!isfinite(s->mscale)) FAIL("scaling.mscale", ROTARY_ERR_SCALING);
      if (!isfinite(s->mscale_all_dim)) FAIL("scaling.mscale_all_dim", ROTARY_ERR_SCALING);
      if (c->base == 1.0) FAIL("base", ROTARY_ERR_SCALING); /* the correction range divides by ln(base) */
      return ROTARY_OK;
    case ROTARY_SCALING_LLAMA3:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (!finite_positive(s->low_freq_factor)) FAIL("scaling.low_freq_factor", ROTARY_ERR_SCALING);
      if (!finite_positive(s->high_freq_factor) || s->high_freq_factor <= s->low_freq_factor)
        FAIL("scaling.high_freq_factor", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_LONGROPE: {
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (s->factor == 0.0 && !s->max_position_embeddings) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!finite_positive(derived_factor(s))) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (s->attention_factor != 0.0 && !finite_positive(s->attention_factor))
        FAIL("scaling.attention_factor", ROTARY_ERR_SCALING);
      rotary_status st = check_factors(s->short_factor, half, "scaling.short_factor", field);
      return st != ROTARY_OK ? st : check_factors(s->long_factor, half, "scaling.long_factor", field);
    }
  }
  FAIL("scaling.type", ROTARY_ERR_SCALING);
}

/* YaRN's mscale: 0.1 m ln(scale) + 1 for scale > 1, else 1. */
static double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

/* Dimension (in units of rotary_dim) where the wavelength makes num_rotations turns over the original length. */
static double yarn_correction_dim(double num_rotations, size_t d, double base, size_t original) {
  return ((double)d * log((double)original / (num_rotations * 2.0 * M_PI))) / (2.0 * log(base));
}

static double yarn(const rotary_config *c, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double factor = derived_factor(s);
  const double beta_fast = s->beta_fast != 0.0 ? s->beta_fast : 32.0;
  const double beta_slow = s->beta_slow != 0.0 ? s->beta_slow : 1.0;
  double low = yarn_correction_dim(beta_fast, d, c->base, s->original_max_position_embeddings);
  double high = yarn_correction_dim(beta_slow, d, c->base, s->original_max_position_embeddings);
  if (s->truncate) {
    low = floor(low);
    high = ceil(high);
  }
  if (low < 0.0) low = 0.0;
  if (high > (double)(d - 1)) high = (double)(d - 1);
  if (low == high) high += 0.001; /* Hugging Face's guard against a zero-width ramp */
  for (size_t i = 0; i < half; i++) {
    const double extrapolation = default_freq(c->base, i, d);
    const double interpolation = extrapolation / factor;
    double ramp = ((double)i - low) / (high - low);
    ramp = ramp < 0.0 ? 0.0 : ramp > 1.0 ? 1.0 : ramp;
    const double keep = 1.0 - ramp; /* share of the extrapolated (unscaled) frequency */
    inv_freq[i] = interpolation * (1.0 - keep) + extrapolation * keep;
  }
  if (s->attention_factor != 0.0) return s->attention_factor;
  if (s->mscale != 0.0 && s->mscale_all_dim != 0.0)
    return yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim);
  return yarn_mscale(factor, 1.0);
}

static void llama3(const rotary_config *c, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double old_len = (double)s->original_max_position_embeddings;
  const double low_wavelen = old_len / s->low_freq_factor, high_wavelen = old_len / s->high_freq_factor;
  for (size_t i = 0; i < half; i++) {
    const double f = default_freq(c->base, i, d), wavelen = 2.0 * M_PI / f;
    if (wavelen < high_wavelen) {
      inv_freq[i] = f;
    } else if (wavelen > low_wavelen) {
      inv_freq[i] = f / s->factor;
    } else {
      const double smooth = (old_len / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
      inv_freq[i] = (1.0 - smooth) * f / s->factor + smooth * f;
    }
  }
}

static double longrope(const rotary_config *c, size_t seq_len, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double *ext = seq_len > s->original_max_position_embeddings ? s->long_factor : s->short_factor;
  for (size_t i = 0; i < half; i++) inv_freq[i] = default_freq(c->base, i, d) / ext[i];
  if (s->attention_factor != 0.0) return s->attention_factor;
  const double factor = derived_factor(s);
  if (factor <= 1.0) return 1.0;
  return sqrt(1.0 + log(factor) / log((double)s->original_max_position_embeddings));
}

/* Frequencies from a different base, the rest as the default family. */
static void rebased(const rotary_config *c, double base, double *inv_freq) {
  for (size_t i = 0; i < c->rotary_dim / 2; i++) inv_freq[i] = default_freq(base, i, c->rotary_dim);
}

double rotary_scaling_frequencies(const rotary_config *c, size_t seq_len, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double exponent = (double)d / ((double)d - 2.0);
  if (c->inv_freq) {
    for (size_t i = 0; i < half; i++) inv_freq[i] = c->inv_freq[i];
    return 1.0;
  }
  switch (s->type) {
    case ROTARY_SCALING_LINEAR:
      for (size_t i = 0; i < half; i++) inv_freq[i] = default_freq(c->base, i, d) / s->factor;
      return 1.0;
    case ROTARY_SCALING_DYNAMIC: {
      const double mpe = (double)s->max_position_embeddings;
      const double len = seq_len > s->max_position_embeddings ? (double)seq_len : mpe;
      rebased(c, c->base * pow(s->factor * len / mpe - (s->factor - 1.0), exponent), inv_freq);
      return 1.0;
    }
    case ROTARY_SCALING_NTK: rebased(c, c->base * pow(s->factor, exponent), inv_freq); return 1.0;
    case ROTARY_SCALING_YARN: return yarn(c, inv_freq);
    case ROTARY_SCALING_LLAMA3: llama3(c, inv_freq); return 1.0;
    case ROTARY_SCALING_LONGROPE: return longrope(c, seq_len, inv_freq);
    case ROTARY_SCALING_NONE: break;
  }
  rebased(c, c->base, inv_freq);
  return 1.0;
}
