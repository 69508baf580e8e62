/* hf_config.c: librotary_hf: a Hugging Face config.json, parsed with cJSON, turned into a rotary_config. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "rotary.h"

struct rotary_hf_config {
  rotary_config rope;
  double *factors;   /* LongRoPE: short then long factors, rotary_dim/2 each; else NULL */
  size_t heads, kv_heads, max_positions;
  char rope_type[32];
  char model_type[64];
};

static rotary_status scaling_type(hf_parse *p, const cJSON *root, scaling_src *src) {
  const cJSON *params = hf_get(root, "rope_parameters");
  const cJSON *legacy = hf_get(root, "rope_scaling");
  src->obj = NULL;
  src->name = "rope_scaling";
  strcpy(src->type, "default");
  if (params && !cJSON_IsNull(params)) {
    if (!cJSON_IsObject(params)) return hf_fail(p, "rope_parameters: expected an object");
    src->obj = params;
    src->name = "rope_parameters";
    if (legacy && cJSON_IsObject(legacy)) {
      /* both layouts: allowed only when they name the same family */
      const char *a = hf_type_name(params), *b = hf_type_name(legacy);
      if (a && b && strcmp(a, b)) return hf_fail(p, "rope_scaling: names \"%s\" but rope_parameters \"%s\"", b, a);
    }
  } else if (legacy && !cJSON_IsNull(legacy)) {
    if (!cJSON_IsObject(legacy)) return hf_fail(p, "rope_scaling: expected an object or null");
    src->obj = legacy;
  }
  if (!src->obj) return ROTARY_OK;
  const cJSON *t1 = hf_get(src->obj, "rope_type");
  const cJSON *t2 = hf_get(src->obj, "type");
  if ((t1 && !cJSON_IsString(t1)) || (t2 && !cJSON_IsString(t2)))
    return hf_fail(p, "%s.%s: expected a string", src->name, t1 && !cJSON_IsString(t1) ? "rope_type" : "type");
  if (t1 && t2 && strcmp(t1->valuestring, t2->valuestring))
    return hf_fail(p, "%s.type: \"%s\" contradicts rope_type \"%s\"", src->name, t2->valuestring, t1->valuestring);
  const char *t = t1 ? t1->valuestring : t2 ? t2->valuestring : NULL;
  if (!t) {
    /* transformers 5 nests per-layer parameters ("full_attention": {...}); those are not one rope (any object
     * member counts, even one a later duplicate key replaces: refused, never read differently) */
    for (const cJSON *c = src->obj->child; c; c = c->next)
      if (cJSON_IsObject(c)) return hf_fail(p, "%s.%s: per-layer rope parameters are not supported", src->name, c->string);
    return ROTARY_OK; /* rope_parameters with rope_theta only */
  }
  if (strlen(t) >= sizeof src->type) return hf_fail(p, "%s.rope_type: unknown \"%.40s\"", src->name, t);
  strcpy(src->type, strcmp(t, "su") ? t : "longrope"); /* "su" is the early name of longrope (Phi-3) */
  return ROTARY_OK;
}

/* Dimensions: head_dim, rotary_dim and the pairing. */
static rotary_status dims(hf_parse *p, const cJSON *root, const scaling_src *src, rotary_hf_config *out) {
  rotary_config *c = &out->rope;
  const char *model = out->model_type;
  size_t hidden = 0, head_dim = 0, rope_dim = 0;
  int hidden_head = 0; /* head_dim derived from hidden_size / num_attention_heads */
  rotary_status st;
  if ((st = hf_size(p, root, "num_attention_heads", "n_head", &out->heads)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "num_key_value_heads", NULL, &out->kv_heads)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "hidden_size", "n_embd", &hidden)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "head_dim", NULL, &head_dim)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "max_position_embeddings", "n_positions", &out->max_positions)) != ROTARY_OK) return st;
  if (!out->kv_heads) out->kv_heads = out->heads;
  if (out->heads && out->kv_heads && out->heads % out->kv_heads)
    return hf_fail(p, "num_key_value_heads: %zu does not divide num_attention_heads %zu", out->kv_heads, out->heads);
  if (!head_dim) {
    if (!hidden || !out->heads) return hf_fail(p, "head_dim: missing, and hidden_size / num_attention_heads unknown");
    if (hidden % out->heads) return hf_fail(p, "hidden_size: %zu is not a multiple of num_attention_heads %zu", hidden, out->heads);
    head_dim = hidden / out->heads;
    hidden_head = 1;
  }
  /* bounded here, before anything (LongRoPE's factor arrays) is sized from it */
  if (head_dim > ROTARY_MAX_HEAD_DIM)
    return hf_fail_status(p, ROTARY_ERR_HEAD_DIM, "%s%zu%s above ROTARY_MAX_HEAD_DIM (%d)",
                          hidden_head ? "hidden_size / num_attention_heads: gives head_dim " : "head_dim: ", head_dim,
                          hidden_head ? "," : " is", ROTARY_MAX_HEAD_DIM);
  c->pairing = ROTARY_PAIRING_HALF;
  if (!strncmp(model, "deepseek_v", 10)) {
    /* DeepSeek-V2/V3 rotate only the qk_rope_head_dim part, with interleaved pairs */
    if ((st = hf_size(p, root, "qk_rope_head_dim", NULL, &rope_dim)) != ROTARY_OK) return st;
    if (!rope_dim) return hf_fail(p, "qk_rope_head_dim: missing (required by model_type \"%s\")", model);
    if (rope_dim > ROTARY_MAX_HEAD_DIM)
      return hf_fail_status(p, ROTARY_ERR_HEAD_DIM, "qk_rope_head_dim: %zu is above ROTARY_MAX_HEAD_DIM (%d)",
                            rope_dim, ROTARY_MAX_HEAD_DIM);
    head_dim = rope_dim;
    c->pairing = ROTARY_PAIRING_INTERLEAVED;
  } else if (!strcmp(model, "gptj")) {
    if ((st = hf_size(p, root, "rotary_dim", NULL, &rope_dim)) != ROTARY_OK) return st;
    c->pairing = ROTARY_PAIRING_INTERLEAVED;
  }
  double partial = 1.0, pct = 0.0;
  int have_partial = 0, have_pct = 0;
  if ((st = hf_number_in(p, root, src, "partial_rotary_factor", 1, &partial, &have_partial)) != ROTARY_OK) return st;
  if ((st = hf_number(p, root, "", "rotary_pct", &pct, &have_pct)) != ROTARY_OK) return st;
  if (have_pct && have_partial && pct != partial)
    return hf_fail(p, "rotary_pct: %g contradicts partial_rotary_factor %g", pct, partial);
  if (have_pct) partial = pct, have_partial = 1;
  if (have_partial && rope_dim) return hf_fail(p, "partial_rotary_factor: given together with rotary_dim");
  if (!(partial > 0.0 && partial <= 1.0)) return hf_fail(p, "partial_rotary_factor: %g is not in (0, 1]", partial);
  if (!rope_dim) rope_dim = (size_t)((double)head_dim * partial); /* Python's int(): truncation */
  if (rope_dim < 2 || rope_dim % 2 || rope_dim > head_dim)
    return hf_fail(p, "%s: gives rotary_dim %zu for head_dim %zu (must be even, 2..head_dim)",
                   have_partial ? "partial_rotary_factor" : "rotary_dim", rope_dim, head_dim);
  c->head_dim = head_dim;
  c->rotary_dim = rope_dim;
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
static rotary_status read_original(hf_parse *p, const cJSON *root, const scaling_src *src, rotary_hf_config *out) {
  static const char key[] = "original_max_position_embeddings";
  size_t top = 0, inner = 0;
  int have_top = 0, have_inner = 0;
  if (hf_is_null(root, key)) return hf_fail(p, "%s: null (an integer is required)", key);
  if (hf_is_null(src->obj, key)) return hf_fail(p, "%s.%s: null (an integer is required)", src->name, key);
  rotary_status st = hf_size_in(p, root, "", key, &top, &have_top);
  if (st == ROTARY_OK) st = hf_size_in(p, src->obj, src->name, key, &inner, &have_inner);
  if (st != ROTARY_OK) return st;
  if (!have_top && !have_inner && !out->max_positions)
    return hf_fail(p, "%s.%s: missing, and no max_position_embeddings", src->name, key);
  out->rope.scaling.original_max_position_embeddings = have_top ? top : have_inner ? inner : out->max_positions;
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
static rotary_status family_longrope(hf_parse *p, const scaling_src *src, rotary_hf_config *out) {
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
static rotary_status family(hf_parse *p, const cJSON *root, const scaling_src *src, rotary_hf_config *out) {
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
  s->max_position_embeddings = out->max_positions;
  if (s->type == ROTARY_SCALING_DYNAMIC && !out->max_positions)
    return hf_fail(p, "max_position_embeddings: missing (required by \"dynamic\")");
  if (s->type == ROTARY_SCALING_YARN || s->type == ROTARY_SCALING_LLAMA3 || s->type == ROTARY_SCALING_LONGROPE) {
    if ((st = read_original(p, root, src, out)) != ROTARY_OK) return st;
    if (!have_factor && !out->max_positions)
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

static rotary_status parse_root(hf_parse *p, const cJSON *root, rotary_hf_config *out) {
  if (!cJSON_IsObject(root)) return hf_fail(p, "config: expected a JSON object");
  const cJSON *mt = hf_get(root, "model_type");
  if (mt && cJSON_IsString(mt)) snprintf(out->model_type, sizeof out->model_type, "%s", mt->valuestring);
  scaling_src src;
  rotary_status st = scaling_type(p, root, &src);
  if (st == ROTARY_OK) st = dims(p, root, &src, out);
  if (st != ROTARY_OK) return st;
  int have_theta = 0, have_base = 0;
  double base = 0.0;
  rotary_config *c = &out->rope;
  if ((st = hf_number_in(p, root, &src, "rope_theta", 0, &c->base, &have_theta)) != ROTARY_OK) return st;
  if ((st = hf_number(p, root, "", "rotary_emb_base", &base, &have_base)) != ROTARY_OK) return st; /* GPT-NeoX */
  if (have_base && have_theta && base != c->base)
    return hf_fail(p, "rotary_emb_base: %g contradicts rope_theta %g", base, c->base);
  if (have_base) c->base = base;
  if (!have_theta && !have_base) c->base = 10000.0;
  if ((st = family(p, root, &src, out)) != ROTARY_OK) return st;
  snprintf(out->rope_type, sizeof out->rope_type, "%s", src.type);
  const char *field = NULL;
  char name[64];
  st = rotary_config_check(c, &field);
  if (st != ROTARY_OK)
    return hf_fail_status(p, st, "%s: %s", hf_field_name(field, src.name, name, sizeof name),
                          rotary_status_string(st));
  return ROTARY_OK;
}

rotary_status rotary_hf_config_parse(const char *json, size_t length, rotary_hf_config **out, char *error,
                                     size_t error_size) {
  hf_parse p = {error, error_size, ROTARY_ERR_CONFIG};
  if (error && error_size) error[0] = '\0';
  if (!json || !out) return hf_fail_status(&p, ROTARY_ERR_NULL_POINTER, "json and out must not be NULL");
  cJSON *root = NULL;
  rotary_status st = hf_json_parse(&p, json, length, &root);
  if (st != ROTARY_OK) return st;
  rotary_hf_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg) {
    cJSON_Delete(root);
    return hf_fail_status(&p, ROTARY_ERR_OUT_OF_MEMORY, "config: out of memory");
  }
  rotary_config_init(&cfg->rope, 2);
  st = parse_root(&p, root, cfg);
  cJSON_Delete(root);
  if (st != ROTARY_OK) {
    rotary_hf_config_destroy(cfg);
    return st;
  }
  *out = cfg;
  return ROTARY_OK;
}

rotary_status rotary_hf_config_load(const char *path, rotary_hf_config **out, char *error, size_t error_size) {
  hf_parse p = {error, error_size, ROTARY_ERR_IO};
  if (error && error_size) error[0] = '\0';
  if (!path || !out) return hf_fail_status(&p, ROTARY_ERR_NULL_POINTER, "path and out must not be NULL");
  size_t n = 0;
  char *text = NULL;
  rotary_status st = hf_read_file(&p, path, &text, &n);
  if (st != ROTARY_OK) return st;
  st = rotary_hf_config_parse(text, n, out, error, error_size);
  free(text);
  return st;
}

void rotary_hf_config_destroy(rotary_hf_config *config) {
  if (!config) return;
  free(config->factors);
  free(config);
}

const rotary_config *rotary_hf_config_rope(const rotary_hf_config *c) { return c ? &c->rope : NULL; }
size_t rotary_hf_config_heads(const rotary_hf_config *c) { return c ? c->heads : 0; }
size_t rotary_hf_config_kv_heads(const rotary_hf_config *c) { return c ? c->kv_heads : 0; }
size_t rotary_hf_config_max_positions(const rotary_hf_config *c) { return c ? c->max_positions : 0; }
const char *rotary_hf_config_rope_type(const rotary_hf_config *c) { return c ? c->rope_type : ""; }
const char *rotary_hf_config_model_type(const rotary_hf_config *c) { return c ? c->model_type : ""; }
