/* hf_rope.c: one rope of a Hugging Face config from one scaling object (rope_scaling, rope_parameters or one
 * layer type's entry): its family, rotary_dim, base, the family's parameters and its mRoPE streams. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "rotary.h"

/* The rope_type (or type) of one source. "su" is the early name of longrope, Phi-3 reads "yarn" as longrope too;
 * "mrope" (transformers 4) means default frequencies with mrope_section, and transformers' Qwen2-VL config object
 * keeps "type": "mrope" next to the "rope_type": "default" it derives from it. */
static rotary_status rope_type_of(hf_parse *p, const hf_model *m, scaling_src *src) {
  strcpy(src->type, "default");
  src->mrope = 0;
  if (!src->obj) return ROTARY_OK;
  const cJSON *t1 = hf_get(src->obj, "rope_type");
  const cJSON *t2 = hf_get(src->obj, "type");
  if ((t1 && !cJSON_IsString(t1)) || (t2 && !cJSON_IsString(t2)))
    return hf_fail(p, "%s.%s: expected a string", src->name, t1 && !cJSON_IsString(t1) ? "rope_type" : "type");
  const char *t = t1 ? t1->valuestring : t2 ? t2->valuestring : NULL;
  if (t1 && t2 && strcmp(t1->valuestring, t2->valuestring)) {
    const int mrope_pair = (!strcmp(t1->valuestring, "mrope") && !strcmp(t2->valuestring, "default")) ||
                           (!strcmp(t2->valuestring, "mrope") && !strcmp(t1->valuestring, "default"));
    if (!mrope_pair)
      return hf_fail(p, "%s.type: \"%s\" contradicts rope_type \"%s\"", src->name, t2->valuestring, t1->valuestring);
    t = "mrope";
  }
  if (!t) return ROTARY_OK;
  if (strlen(t) >= sizeof src->type) return hf_fail(p, "%s.rope_type: unknown \"%.40s\"", src->name, t);
  if (!strcmp(t, "mrope")) {
    src->mrope = 1;
    return ROTARY_OK;
  }
  strcpy(src->type, t);
  if (!strcmp(t, "su") || (!strcmp(t, "yarn") && !strcmp(m->family, "phi3"))) strcpy(src->type, "longrope");
  return ROTARY_OK;
}

/* rotary_dim of one rope: fixed (GPT-J, DeepSeek), else head_dim * partial_rotary_factor (GPT-NeoX: rotary_pct),
 * truncated as Python's int(). */
static rotary_status rope_dims(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c) {
  double partial = m->default_partial, pct = 0.0;
  int have_partial = 0, have_pct = 0;
  size_t rope_dim = m->fixed_rotary_dim;
  rotary_status st;
  /* transformers' GPT-NeoX reads rotary_pct (default 0.25) and rotary_emb_base, never their top-level names */
  const cJSON *top = strcmp(m->family, "gpt_neox") ? m->root : NULL;
  if ((st = hf_number_in(p, top, src, "partial_rotary_factor", 1, &partial, &have_partial)) != ROTARY_OK) return st;
  if ((st = hf_number(p, m->root, "", "rotary_pct", &pct, &have_pct)) != ROTARY_OK) return st;
  if (have_pct && have_partial && pct != partial && !src->nested)
    return hf_fail(p, "rotary_pct: %g contradicts partial_rotary_factor %g", pct, partial);
  if (have_pct && !have_partial) partial = pct, have_partial = 1;
  if (have_partial && rope_dim) return hf_fail(p, "partial_rotary_factor: given together with rotary_dim");
  if (!(partial > 0.0 && partial <= 1.0)) return hf_fail(p, "partial_rotary_factor: %g is not in (0, 1]", partial);
  if (!rope_dim) rope_dim = (size_t)((double)m->head_dim * partial); /* Python's int(): truncation */
  if (rope_dim < 2 || rope_dim % 2 || rope_dim > m->head_dim)
    return hf_fail(p, "%s: gives rotary_dim %zu for head_dim %zu (must be even, 2..head_dim)",
                   m->fixed_rotary_dim ? "rotary_dim" : "partial_rotary_factor", rope_dim, m->head_dim);
  c->head_dim = m->head_dim;
  c->rotary_dim = rope_dim;
  c->pairing = m->pairing;
  return ROTARY_OK;
}

/* The base: rope_theta (inside the object or at the top level; GPT-NeoX: rotary_emb_base), else the family's
 * default. field receives the name a bad value is reported under. */
static rotary_status rope_base(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c, char *field,
                               size_t size) {
  int have_theta = 0, have_base = 0;
  double base = 0.0;
  rotary_status st;
  snprintf(field, size, "%s", src->theta_key);
  if (src->nested) {
    if (hf_is_null(src->obj, "rope_theta")) return hf_fail(p, "%s.rope_theta: null (a number is required)", src->name);
    if ((st = hf_number(p, src->obj, src->name, "rope_theta", &c->base, &have_theta)) != ROTARY_OK) return st;
    if (have_theta) {
      snprintf(field, size, "%s.rope_theta", src->name);
      return ROTARY_OK;
    }
    if (hf_is_null(m->root, src->theta_key)) return hf_fail(p, "%s: null (a number is required)", src->theta_key);
    if ((st = hf_number(p, m->root, "", src->theta_key, &c->base, &have_theta)) != ROTARY_OK) return st;
    if (!have_theta) c->base = src->theta_default;
    return ROTARY_OK;
  }
  const cJSON *top = strcmp(m->family, "gpt_neox") ? m->root : NULL; /* GPT-NeoX: rotary_emb_base only */
  if ((st = hf_number_in(p, top, src, "rope_theta", 0, &c->base, &have_theta)) != ROTARY_OK) return st;
  if ((st = hf_number(p, m->root, "", "rotary_emb_base", &base, &have_base)) != ROTARY_OK) return st; /* GPT-NeoX */
  if (have_base && have_theta && base != c->base)
    return hf_fail(p, "rotary_emb_base: %g contradicts rope_theta %g", base, c->base);
  if (have_base) c->base = base;
  if (!have_theta && !have_base) c->base = src->theta_default;
  return ROTARY_OK;
}

#define DERIVES "null derives it from max_position_embeddings / original_max_position_embeddings"

/* The factor: required by every family but LongRoPE. transformers derives YaRN's (a required key) and LongRoPE's
 * from a JSON null (LongRoPE's also when absent); an explicit 0, which means "derive" in rotary_scaling, would be a
 * division by zero there, so it is refused. */
static rotary_status read_factor(hf_parse *p, const scaling_src *src, rotary_scaling *s, int *have) {
  const char *t = src->type, *n = src->name;
  const int derivable = s->type == ROTARY_SCALING_YARN || s->type == ROTARY_SCALING_LONGROPE;
  const cJSON *v = hf_get(src->obj, "factor");
  const rotary_status st = hf_number(p, src->obj, n, "factor", &s->factor, have);
  if (st != ROTARY_OK) return st;
  if (!v && s->type != ROTARY_SCALING_LONGROPE)
    return hf_fail(p, "%s.factor: missing (required by \"%s\"%s)", n, t, derivable ? "; " DERIVES : "");
  if (cJSON_IsNull(v) && !derivable) return hf_fail(p, "%s.factor: null (a number is required by \"%s\")", n, t);
  if (*have && s->factor == 0.0 && derivable) return hf_fail(p, "%s.factor: 0 (%s)", n, DERIVES);
  return ROTARY_OK;
}

/* YaRN, Llama 3, LongRoPE: original_max_position_embeddings. transformers 5 lets a top-level value win (Phi-3),
 * whatever it is (0 then fails the check), else the scaling's, else max_position_embeddings; a null is an error. */
static rotary_status read_original(hf_parse *p, const hf_model *m, const scaling_src *src, hf_rope *out) {
  static const char key[] = "original_max_position_embeddings";
  size_t top = 0, inner = 0;
  int have_top = 0, have_inner = 0;
  /* per-layer-type parameters take only their own value (transformers' setdefault from max_position_embeddings) */
  const cJSON *root = src->nested ? NULL : m->root;
  if (hf_is_null(root, key)) return hf_fail(p, "%s: null (an integer is required)", key);
  if (hf_is_null(src->obj, key)) return hf_fail(p, "%s.%s: null (an integer is required)", src->name, key);
  rotary_status st = hf_size_in(p, root, "", key, &top, &have_top);
  if (st == ROTARY_OK) st = hf_size_in(p, src->obj, src->name, key, &inner, &have_inner);
  if (st != ROTARY_OK) return st;
  if (!have_top && !have_inner && !m->max_positions)
    return hf_fail(p, "%s.%s: missing, and no max_position_embeddings", src->name, key);
  out->rope.scaling.original_max_position_embeddings = have_top ? top : have_inner ? inner : m->max_positions;
  return ROTARY_OK;
}

/* A number the family requires: absent and null fail. */
static rotary_status required_number(hf_parse *p, const scaling_src *src, const char *name, double *out) {
  int have = 0;
  if (hf_is_null(src->obj, name))
    return hf_fail(p, "%s.%s: null (a number is required by \"%s\")", src->name, name, src->type);
  const rotary_status st = hf_number(p, src->obj, src->name, name, out, &have);
  if (st == ROTARY_OK && !have) return hf_fail(p, "%s.%s: missing (required by \"%s\")", src->name, name, src->type);
  return st;
}

/* YaRN and LongRoPE: attention_factor; null derives it, an explicit 0 would zero every cos and sin there. */
static rotary_status read_attention(hf_parse *p, const scaling_src *src, rotary_scaling *s) {
  int have = 0;
  const rotary_status st = hf_number(p, src->obj, src->name, "attention_factor", &s->attention_factor, &have);
  if (st == ROTARY_OK && have && s->attention_factor == 0.0)
    return hf_fail(p, "%s.attention_factor: 0 would zero every cos and sin (null derives it)", src->name);
  return st;
}

static rotary_status family_yarn(hf_parse *p, const scaling_src *src, rotary_scaling *s) {
  const cJSON *o = src->obj;
  const char *n = src->name;
  int have = 0;
  rotary_status st;
  /* null or 0 means the default for these, in transformers (`or 32`, `if mscale and ...`) as here */
  if ((st = read_attention(p, src, s)) != ROTARY_OK) return st;
  if ((st = hf_number(p, o, n, "beta_fast", &s->beta_fast, &have)) != ROTARY_OK) return st;
  if ((st = hf_number(p, o, n, "beta_slow", &s->beta_slow, &have)) != ROTARY_OK) return st;
  if ((st = hf_number(p, o, n, "mscale", &s->mscale, &have)) != ROTARY_OK) return st;
  if ((st = hf_number(p, o, n, "mscale_all_dim", &s->mscale_all_dim, &have)) != ROTARY_OK) return st;
  if (hf_is_null(o, "truncate")) {
    s->truncate = 0; /* transformers: rope_parameters.get("truncate", True) gives None, which is falsy */
    return ROTARY_OK;
  }
  return hf_bool(p, o, n, "truncate", &s->truncate);
}

/* LongRoPE: both factor arrays are checked (length rotary_dim / 2, bounded by dims()) before they are copied. */
static rotary_status family_longrope(hf_parse *p, const scaling_src *src, hf_rope *out) {
  rotary_scaling *s = &out->rope.scaling;
  const size_t half = out->rope.rotary_dim / 2;
  rotary_status st;
  if ((st = read_attention(p, src, s)) != ROTARY_OK) return st;
  if ((st = hf_array_check(p, src->obj, src->name, "short_factor", half)) != ROTARY_OK) return st;
  if ((st = hf_array_check(p, src->obj, src->name, "long_factor", half)) != ROTARY_OK) return st;
  out->factors = malloc(2 * half * sizeof(double));
  if (!out->factors)
    return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "%s.short_factor: out of memory for %zu factors", src->name,
                          2 * half);
  hf_array_read(src->obj, "short_factor", out->factors);
  hf_array_read(src->obj, "long_factor", out->factors + half);
  s->short_factor = out->factors;
  s->long_factor = out->factors + half;
  return ROTARY_OK;
}

/* The family's parameters. */
static rotary_status family(hf_parse *p, const hf_model *m, const scaling_src *src, hf_rope *out) {
  rotary_scaling *s = &out->rope.scaling;
  const char *t = src->type, *n = src->name;
  rotary_status st;
  int have_factor = 0;
  if (!strcmp(t, "default")) return ROTARY_OK;
  static const struct { const char *name; rotary_scaling_type type; } names[] = {
      {"linear", ROTARY_SCALING_LINEAR}, {"dynamic", ROTARY_SCALING_DYNAMIC}, {"ntk", ROTARY_SCALING_NTK},
      {"yarn", ROTARY_SCALING_YARN},     {"llama3", ROTARY_SCALING_LLAMA3},   {"longrope", ROTARY_SCALING_LONGROPE}};
  size_t k = 0;
  while (k < sizeof names / sizeof names[0] && strcmp(names[k].name, t)) k++;
  if (k == sizeof names / sizeof names[0])
    return hf_fail(p, "%s.rope_type: unknown \"%s\" (known: default, linear, dynamic, ntk, yarn, llama3, longrope)", n, t);
  s->type = names[k].type;
  if ((st = read_factor(p, src, s, &have_factor)) != ROTARY_OK) return st;
  s->max_position_embeddings = m->max_positions;
  if (s->type == ROTARY_SCALING_DYNAMIC && !m->max_positions)
    return hf_fail(p, "max_position_embeddings: missing (required by \"dynamic\")");
  if (s->type == ROTARY_SCALING_YARN || s->type == ROTARY_SCALING_LLAMA3 || s->type == ROTARY_SCALING_LONGROPE) {
    if ((st = read_original(p, m, src, out)) != ROTARY_OK) return st;
    if (!have_factor && !m->max_positions)
      return hf_fail(p, "%s.factor: null or absent, and no max_position_embeddings to derive it", n);
  }
  if (s->type == ROTARY_SCALING_YARN) return family_yarn(p, src, s);
  if (s->type == ROTARY_SCALING_LONGROPE) return family_longrope(p, src, out);
  if (s->type == ROTARY_SCALING_LLAMA3) {
    if ((st = required_number(p, src, "low_freq_factor", &s->low_freq_factor)) != ROTARY_OK) return st;
    return required_number(p, src, "high_freq_factor", &s->high_freq_factor);
  }
  return ROTARY_OK;
}

/* One rope from one source, checked with rotary_config_check. */
rotary_status hf_parse_rope(hf_parse *p, const hf_model *m, scaling_src *src, hf_rope *out) {
  rotary_config *c = &out->rope;
  char theta_field[96];
  rotary_config_init(c, 2);
  rotary_status st = rope_type_of(p, m, src);
  if (st == ROTARY_OK) st = rope_dims(p, m, src, c);
  if (st == ROTARY_OK) st = rope_base(p, m, src, c, theta_field, sizeof theta_field);
  if (st == ROTARY_OK) st = family(p, m, src, out);
  if (st == ROTARY_OK) st = hf_rope_streams(p, m, src, c);
  if (st != ROTARY_OK) return st;
  snprintf(out->rope_type, sizeof out->rope_type, "%s", src->type);
  const char *field = NULL;
  char name[128];
  st = rotary_config_check(c, &field);
  if (st != ROTARY_OK)
    return hf_fail_status(p, st, "%s: %s",
                          field && !strcmp(field, "base") ? theta_field : hf_field_name(field, src->name, name, sizeof name),
                          rotary_status_string(st));
  return ROTARY_OK;
}
