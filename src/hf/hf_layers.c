/* hf_layers.c: the ropes of a Hugging Face config per layer type (transformers 5 rope_parameters keyed by layer
 * type, Gemma 3's full and sliding ropes) and the map from layer index to rope (layer_types, sliding_window_pattern). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "rotary.h"

/* The ropes' sources: one flat rope, or one per layer type (rope 0 the full-attention one). A null entry is a
 * layer type without rope. */
typedef struct hf_sources {
  scaling_src src[HF_MAX_ROPES];
  const char *type[HF_MAX_ROPES]; /* the layer type (NULL for a flat rope) */
  int none[HF_MAX_ROPES];
  size_t n;
  int nested;
} hf_sources;

/* One flat rope: rope_parameters (transformers 5) or rope_scaling (transformers 4); both are allowed when they name
 * the same family. */
static rotary_status flat_source(hf_parse *p, const hf_model *m, const cJSON *params, const cJSON *legacy,
                                 hf_sources *s) {
  scaling_src *src = &s->src[0];
  src->obj = NULL;
  snprintf(src->name, sizeof src->name, "rope_scaling");
  if (cJSON_IsObject(params)) {
    src->obj = params;
    snprintf(src->name, sizeof src->name, "rope_parameters");
    if (cJSON_IsObject(legacy)) {
      const char *a = hf_type_name(params), *b = hf_type_name(legacy);
      if (a && b && strcmp(a, b)) return hf_fail(p, "rope_scaling: names \"%s\" but rope_parameters \"%s\"", b, a);
    }
  } else if (cJSON_IsObject(legacy)) {
    src->obj = legacy;
  }
  src->theta_key = "rope_theta";
  src->theta_default = m->default_theta;
  s->type[0] = NULL;
  s->n = 1;
  return ROTARY_OK;
}

/* Whether some layer has type `name`: it is in layer_types; Gemma 3 without layer_types: its pattern over its layers
 * makes full_attention layers when there are at least `pattern` of them, sliding_attention ones when pattern > 1;
 * otherwise (layers unknown) any type may be used. transformers reads only the entries of types that occur. */
static int used_type(const rotary_hf_config *out, const cJSON *types, const char *name, int gemma3) {
  if (types) {
    for (const cJSON *e = types->child; e; e = e->next)
      if (!strcmp(e->valuestring, name)) return 1;
    return 0;
  }
  if (!gemma3) return 1;
  if (!strcmp(name, "full_attention")) return out->n_layers >= out->pattern;
  if (!strcmp(name, "sliding_attention")) return out->n_layers > 0 && out->pattern > 1;
  return 0;
}

static rotary_status add_source(hf_parse *p, const hf_model *m, hf_sources *s, const char *type, const cJSON *obj) {
  for (size_t k = 0; k < s->n; k++)
    if (!strcmp(s->type[k], type)) return ROTARY_OK; /* Gemma 3's sliding_attention, added already */
  if (strlen(type) >= HF_NAME_MAX)
    return hf_fail(p, "rope_parameters.%.40s: layer type name longer than %d bytes", type, HF_NAME_MAX - 1);
  if (s->n == HF_MAX_ROPES) return hf_fail(p, "rope_parameters: more than %d layer types", HF_MAX_ROPES);
  const int gemma3 = hf_is_gemma3(m->family), sliding = !strcmp(type, "sliding_attention");
  scaling_src *src = &s->src[s->n];
  src->obj = cJSON_IsObject(obj) ? obj : NULL;
  snprintf(src->name, sizeof src->name, "rope_parameters.%s", type);
  src->nested = 1;
  src->theta_key = gemma3 && sliding ? "rope_local_base_freq" : "rope_theta";
  src->theta_default = gemma3 && sliding ? 1e4 : m->default_theta;
  s->type[s->n] = type;
  s->none[s->n] = cJSON_IsNull(obj) && !gemma3; /* Gemma 3 reads a null as the default parameters */
  s->n++;
  return ROTARY_OK;
}

/* rope_parameters keyed by layer type (transformers 5: the keys that are types of some layer; entries of types no
 * layer has are ignored, as transformers does), and Gemma 3, whose config class always makes full_attention
 * (rope_theta, default 1e6, and rope_scaling) and sliding_attention (rope_local_base_freq, default 1e4) ropes. */
static rotary_status select_sources(hf_parse *p, const hf_model *m, const cJSON *types, const rotary_hf_config *out,
                                    hf_sources *s) {
  const cJSON *params = hf_get(m->root, "rope_parameters"), *legacy = hf_get(m->root, "rope_scaling");
  const int gemma3 = hf_is_gemma3(m->family), known = types || gemma3;
  const cJSON *flat = NULL, *full = NULL;
  size_t nested = 0;
  if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
    return hf_fail(p, "rope_parameters: expected an object");
  if (legacy && !cJSON_IsNull(legacy) && !cJSON_IsObject(legacy))
    return hf_fail(p, "rope_scaling: expected an object or null");
  s->n = 0;
  for (const cJSON *c = cJSON_IsObject(params) ? params->child : NULL; c; c = c->next) {
    if (hf_get(params, c->string) != c) continue; /* a duplicate key counts with its last value */
    const int used = used_type(out, types, c->string, gemma3);
    if (cJSON_IsObject(c) || (cJSON_IsNull(c) && used && known)) {
      if (known && !used) continue;
      nested++;
      if (!strcmp(c->string, "full_attention")) full = c;
    } else if (!flat && !cJSON_IsNull(c)) {
      flat = c; /* a null that is no layer type's entry counts only in a flat rope */
    }
  }
  if (nested && flat)
    return hf_fail(p, "rope_parameters.%.40s: a flat parameter next to per-layer-type ones", flat->string);
  if (gemma3 && flat)
    return hf_fail(p, "rope_parameters: Gemma 3 takes per-layer-type parameters (full_attention, sliding_attention)");
  if (!nested && !gemma3) return flat_source(p, m, params, legacy, s);
  if (cJSON_IsObject(legacy) && (!gemma3 || cJSON_IsObject(full)))
    return hf_fail(p, "rope_scaling: given next to per-layer-type rope_parameters%s", gemma3 ? ".full_attention" : "");
  s->nested = 1;
  rotary_status st = ROTARY_OK;
  if (full || (gemma3 && used_type(out, types, "full_attention", 1))) {
    st = add_source(p, m, s, "full_attention", full);
    if (st == ROTARY_OK && gemma3 && !cJSON_IsObject(full) && cJSON_IsObject(legacy)) {
      s->src[0].obj = legacy; /* Gemma 3: rope_scaling is the full-attention rope's */
      snprintf(s->src[0].name, sizeof s->src[0].name, "rope_scaling");
    }
  }
  if (st == ROTARY_OK && gemma3 && used_type(out, types, "sliding_attention", 1) &&
      !cJSON_IsObject(hf_get(params, "sliding_attention")))
    st = add_source(p, m, s, "sliding_attention", NULL);
  for (const cJSON *c = cJSON_IsObject(params) ? params->child : NULL; c && st == ROTARY_OK; c = c->next)
    if (hf_get(params, c->string) == c && c != full && (cJSON_IsObject(c) || (cJSON_IsNull(c) && known)) &&
        used_type(out, types, c->string, gemma3))
      st = add_source(p, m, s, c->string, c);
  return st;
}

/* layer_types (strings, as many as num_hidden_layers), or Gemma 3's sliding_window_pattern (default 6: layer i is
 * full attention when (i + 1) % pattern == 0) over num_hidden_layers (default 26). */
rotary_status hf_read_layers(hf_parse *p, const hf_model *m, rotary_hf_config *out, const cJSON **types) {
  const cJSON *t = hf_get(m->root, "layer_types");
  size_t n = 0;
  rotary_status st = hf_size(p, m->root, "num_hidden_layers", "n_layer", &out->n_layers);
  if (st != ROTARY_OK) return st;
  *types = NULL;
  if (t && !cJSON_IsNull(t)) {
    if (!cJSON_IsArray(t)) return hf_fail(p, "layer_types: expected an array of strings");
    for (const cJSON *e = t->child; e; e = e->next, n++)
      if (!cJSON_IsString(e)) return hf_fail(p, "layer_types[%zu]: expected a string", n);
    if (!n) return hf_fail(p, "layer_types: empty");
    if (out->n_layers && out->n_layers != n)
      return hf_fail(p, "layer_types: has %zu entries, num_hidden_layers is %zu", n, out->n_layers);
    out->n_layers = n;
    *types = t;
    return ROTARY_OK;
  }
  if (!hf_is_gemma3(m->family)) return ROTARY_OK;
  if (!hf_get(m->root, "num_hidden_layers")) out->n_layers = 26;
  out->pattern = 6;
  if ((st = hf_size(p, m->root, "sliding_window_pattern", NULL, &out->pattern)) != ROTARY_OK) return st;
  if (!out->pattern) return hf_fail(p, "sliding_window_pattern: 0 (must be at least 1)");
  return ROTARY_OK;
}

/* The rope of each layer of layer_types (by its type's name); with per-layer-type parameters every type needs an
 * entry (null for a type without rope). */
static rotary_status map_layers(hf_parse *p, const cJSON *types, const hf_sources *s, const size_t *rope_of,
                                rotary_hf_config *out) {
  if (!types) return ROTARY_OK;
  out->layer_rope = malloc(out->n_layers);
  if (!out->layer_rope)
    return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "layer_types: out of memory for %zu layers", out->n_layers);
  size_t i = 0;
  for (const cJSON *e = types->child; e; e = e->next, i++) {
    size_t k = 0;
    while (k < s->n && (!s->type[k] || strcmp(s->type[k], e->valuestring))) k++;
    if (k == s->n && s->nested)
      return hf_fail(p, "rope_parameters.%.40s: missing (layer_types[%zu] is \"%.40s\"; null marks a layer type "
                     "without rope)", e->valuestring, i, e->valuestring);
    out->layer_rope[i] = k == s->n ? 0 : (uint8_t)rope_of[k];
  }
  return ROTARY_OK;
}

/* Every rope of the config, then the layers' map. */
rotary_status hf_parse_ropes(hf_parse *p, const hf_model *m, const cJSON *types, rotary_hf_config *out) {
  hf_sources s;
  memset(&s, 0, sizeof s);
  size_t rope_of[HF_MAX_ROPES];
  rotary_status st = select_sources(p, m, types, out, &s);
  for (size_t k = 0; k < s.n && st == ROTARY_OK; k++) {
    rope_of[k] = HF_NO_ROPE;
    if (s.none[k]) continue;
    hf_rope *r = &out->ropes[out->n_ropes];
    snprintf(r->name, sizeof r->name, "%s", s.type[k] ? s.type[k] : "default");
    rope_of[k] = out->n_ropes++;
    st = hf_parse_rope(p, m, &s.src[k], r);
  }
  if (st != ROTARY_OK) return st;
  if (!out->n_ropes) return hf_fail(p, "rope_parameters: no layer type has a rope");
  if (out->pattern) {
    for (size_t k = 0; k < out->n_ropes; k++) {
      if (!strcmp(out->ropes[k].name, "full_attention")) out->full_rope = k;
      if (!strcmp(out->ropes[k].name, "sliding_attention")) out->sliding_rope = k;
    }
  }
  return map_layers(p, types, &s, rope_of, out);
}
