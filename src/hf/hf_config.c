/* hf_config.c: librotary_hf: a Hugging Face config.json, parsed with cJSON, turned into one rotary_config per layer
 * type (mRoPE sections included). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "rotary.h"

static int is_one_of(const char *s, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return 1;
  return 0;
}
#define IS_ONE_OF(s, ...) \
  is_one_of((s), (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static int is_gemma3(const char *f) { return IS_ONE_OF(f, "gemma3", "gemma3_text"); }

/* transformers 5.24's mRoPE families: the Qwen2-VL code splits the frequencies into contiguous sections (default
 * [16, 24, 24]), the Qwen3-VL code interleaves them (default [24, 20, 20]), whatever mrope_interleaved says. */
static int mrope_family(const char *f) {
  if (IS_ONE_OF(f, "qwen2_vl", "qwen2_vl_text", "qwen2_5_vl", "qwen2_5_vl_text")) return 1;
  if (IS_ONE_OF(f, "qwen3_vl", "qwen3_vl_text", "qwen3_vl_moe", "qwen3_vl_moe_text")) return 2;
  return 0;
}

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

/* The facts every rope shares: head counts, head_dim (a family default when the key is absent, as the
 * configuration classes' field defaults; a null derives it from hidden_size / num_attention_heads, as the
 * modeling code's `head_dim or hidden_size // num_attention_heads`), pairing and fixed rotary dims. */
static rotary_status model_dims(hf_parse *p, hf_model *m, rotary_hf_config *out) {
  const cJSON *root = m->root;
  const char *f = m->family;
  size_t hidden = 0, head_dim = 0, rope_dim = 0;
  int hidden_head = 0; /* head_dim derived from hidden_size / num_attention_heads */
  rotary_status st;
  if ((st = hf_size(p, root, "num_attention_heads", "n_head", &out->heads)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "num_key_value_heads", NULL, &out->kv_heads)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "hidden_size", "n_embd", &hidden)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "head_dim", NULL, &head_dim)) != ROTARY_OK) return st;
  if ((st = hf_size(p, root, "max_position_embeddings", "n_positions", &out->max_positions)) != ROTARY_OK) return st;
  if (!hf_get(root, "head_dim")) {
    if (IS_ONE_OF(f, "gemma", "gemma2", "gemma3", "gemma3_text")) head_dim = 256;
    if (IS_ONE_OF(f, "qwen3", "qwen3_vl", "qwen3_vl_text", "glm", "glm4")) head_dim = 128;
  }
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
  m->pairing = ROTARY_PAIRING_HALF;
  if (!strncmp(f, "deepseek_v", 10)) {
    /* DeepSeek-V2/V3 rotate only the qk_rope_head_dim part, with interleaved pairs */
    if ((st = hf_size(p, root, "qk_rope_head_dim", NULL, &rope_dim)) != ROTARY_OK) return st;
    if (!rope_dim) return hf_fail(p, "qk_rope_head_dim: missing (required by model_type \"%s\")", f);
    if (rope_dim > ROTARY_MAX_HEAD_DIM)
      return hf_fail_status(p, ROTARY_ERR_HEAD_DIM, "qk_rope_head_dim: %zu is above ROTARY_MAX_HEAD_DIM (%d)",
                            rope_dim, ROTARY_MAX_HEAD_DIM);
    head_dim = rope_dim;
    m->pairing = ROTARY_PAIRING_INTERLEAVED;
  } else if (!strcmp(f, "gptj")) {
    if ((st = hf_size(p, root, "rotary_dim", NULL, &rope_dim)) != ROTARY_OK) return st;
    m->pairing = ROTARY_PAIRING_INTERLEAVED;
  } else if (IS_ONE_OF(f, "glm", "glm4")) {
    /* modeling_glm4.py: cos[..., :rd/2].repeat_interleave(2) with rotate_half on x[0::2], x[1::2] */
    m->pairing = ROTARY_PAIRING_INTERLEAVED;
  }
  m->head_dim = head_dim;
  m->fixed_rotary_dim = rope_dim;
  m->max_positions = out->max_positions;
  m->default_partial = IS_ONE_OF(f, "glm", "glm4") ? 0.5 : IS_ONE_OF(f, "stablelm", "gpt_neox") ? 0.25 : 1.0;
  m->default_theta = mrope_family(f) == 1 ? 1e6 : mrope_family(f) == 2 ? 5e5 : is_gemma3(f) ? 1e6 : 1e4;
  return ROTARY_OK;
}

/* rotary_dim of one rope: fixed (GPT-J, DeepSeek), else head_dim * partial_rotary_factor (GPT-NeoX: rotary_pct),
 * truncated as Python's int(). */
static rotary_status rope_dims(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c) {
  double partial = m->default_partial, pct = 0.0;
  int have_partial = 0, have_pct = 0;
  size_t rope_dim = m->fixed_rotary_dim;
  rotary_status st;
  if ((st = hf_number_in(p, m->root, src, "partial_rotary_factor", 1, &partial, &have_partial)) != ROTARY_OK) return st;
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
  if ((st = hf_number_in(p, m->root, src, "rope_theta", 0, &c->base, &have_theta)) != ROTARY_OK) return st;
  if ((st = hf_number(p, m->root, "", "rotary_emb_base", &base, &have_base)) != ROTARY_OK) return st; /* GPT-NeoX */
  if (have_base && have_theta && base != c->base)
    return hf_fail(p, "rotary_emb_base: %g contradicts rope_theta %g", base, c->base);
  if (have_base) c->base = base;
  if (!have_theta && !have_base) c->base = src->theta_default;
  return ROTARY_OK;
}

/* mrope_section: 2..4 integer sections, in frequencies (transformers splits the rotary_dim/2 frequencies by them),
 * summing to rotary_dim/2. The Qwen2-VL and Qwen3-VL families have defaults; elsewhere rope_type "mrope" or
 * mrope_interleaved true requires the key. */
static rotary_status read_sections(hf_parse *p, const hf_model *m, const scaling_src *src, int interleaved,
                                   rotary_streams *out) {
  static const size_t qwen2[3] = {16, 24, 24}, qwen3[3] = {24, 20, 20};
  const cJSON *v = src->obj ? hf_get(src->obj, "mrope_section") : NULL;
  const int fam = mrope_family(m->family);
  size_t n = 0;
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsArray(v)) return hf_fail(p, "%s.mrope_section: expected an array of integers", src->name);
    for (const cJSON *e = v->child; e; e = e->next, n++) {
      if (n == ROTARY_MAX_STREAMS) {
        size_t all = n;
        while (e) all++, e = e->next;
        return hf_fail(p, "%s.mrope_section: has %zu sections (2 to %d allowed)", src->name, all, ROTARY_MAX_STREAMS);
      }
      if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0.0) || e->valuedouble >= 9007199254740992.0 ||
          e->valuedouble != floor(e->valuedouble))
        return hf_fail(p, "%s.mrope_section[%zu]: expected an integer >= 0", src->name, n);
      out->sections[n] = (size_t)e->valuedouble;
    }
    if (n < 2) return hf_fail(p, "%s.mrope_section: has %zu section%s (2 to %d allowed)", src->name, n,
                              n == 1 ? "" : "s", ROTARY_MAX_STREAMS);
  } else if (fam) {
    n = 3;
    memcpy(out->sections, fam == 1 ? qwen2 : qwen3, sizeof qwen2);
  } else {
    return hf_fail(p, "%s.mrope_section: missing (required by %s)", src->name,
                   interleaved ? "mrope_interleaved" : "rope_type \"mrope\"");
  }
  out->n_streams = n;
  return ROTARY_OK;
}

/* Multi-stream positions: contiguous sections (Qwen2-VL, Qwen2.5-VL: ROTARY_STREAMS_SECTIONS) or interleaved
 * (Qwen3-VL: ROTARY_STREAMS_INTERLEAVED, exactly 3 sections as transformers' code takes). */
static rotary_status rope_streams(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c) {
  const int fam = mrope_family(m->family);
  int flag = -1;
  rotary_status st;
  if (src->obj && (st = hf_bool(p, src->obj, src->name, "mrope_interleaved", &flag)) != ROTARY_OK) return st;
  const cJSON *sec = src->obj ? hf_get(src->obj, "mrope_section") : NULL;
  const int has_sec = sec && !cJSON_IsNull(sec);
  if (!fam && !src->mrope && flag != 1 && !has_sec) return ROTARY_OK;
  if (fam == 1 && flag == 1)
    return hf_fail(p, "%s.mrope_interleaved: true, but model_type \"%s\" uses contiguous sections", src->name,
                   m->family);
  if (fam == 2 && flag == 0)
    return hf_fail(p, "%s.mrope_interleaved: false, but model_type \"%s\" interleaves the sections", src->name,
                   m->family);
  const int interleaved = fam == 2 || (!fam && flag == 1);
  rotary_streams *s = &c->streams;
  if ((st = read_sections(p, m, src, interleaved, s)) != ROTARY_OK) return st;
  const size_t half = c->rotary_dim / 2;
  size_t sum = 0;
  for (size_t j = 0; j < s->n_streams; j++) sum += s->sections[j];
  if (sum != half)
    return hf_fail(p, "%s.mrope_section: sums to %zu%s, rotary_dim/2 is %zu", src->name, sum,
                   has_sec ? "" : fam == 1 ? " (the Qwen2-VL default [16, 24, 24])" : " (the Qwen3-VL default [24, 20, 20])",
                   half);
  s->layout = interleaved ? ROTARY_STREAMS_INTERLEAVED : ROTARY_STREAMS_SECTIONS;
  if (!interleaved) return ROTARY_OK;
  if (s->n_streams != 3)
    return hf_fail(p, "%s.mrope_section: interleaved takes 3 sections (temporal, height, width), got %zu", src->name,
                   s->n_streams);
  for (size_t j = 1; j < 3; j++)
    if (s->sections[j] && 3 * (s->sections[j] - 1) + j >= half)
      return hf_fail(p, "%s.mrope_section[%zu]: %zu frequencies every 3rd from %zu do not fit in rotary_dim/2 = %zu",
                     src->name, j, s->sections[j], j, half);
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
static rotary_status parse_rope(hf_parse *p, const hf_model *m, scaling_src *src, hf_rope *out) {
  rotary_config *c = &out->rope;
  char theta_field[96];
  rotary_config_init(c, 2);
  rotary_status st = rope_type_of(p, m, src);
  if (st == ROTARY_OK) st = rope_dims(p, m, src, c);
  if (st == ROTARY_OK) st = rope_base(p, m, src, c, theta_field, sizeof theta_field);
  if (st == ROTARY_OK) st = family(p, m, src, out);
  if (st == ROTARY_OK) st = rope_streams(p, m, src, c);
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

static int in_types(const cJSON *types, const char *name, int gemma3) {
  if (!types) return gemma3 && (!strcmp(name, "full_attention") || !strcmp(name, "sliding_attention"));
  for (const cJSON *e = types->child; e; e = e->next)
    if (cJSON_IsString(e) && !strcmp(e->valuestring, name)) return 1;
  return 0;
}

static rotary_status add_source(hf_parse *p, const hf_model *m, hf_sources *s, const char *type, const cJSON *obj) {
  for (size_t k = 0; k < s->n; k++)
    if (!strcmp(s->type[k], type)) return ROTARY_OK; /* Gemma 3's sliding_attention, added already */
  if (strlen(type) >= HF_NAME_MAX)
    return hf_fail(p, "rope_parameters.%.40s: layer type name longer than %d bytes", type, HF_NAME_MAX - 1);
  if (s->n == HF_MAX_ROPES) return hf_fail(p, "rope_parameters: more than %d layer types", HF_MAX_ROPES);
  const int gemma3 = is_gemma3(m->family), sliding = !strcmp(type, "sliding_attention");
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

/* rope_parameters keyed by layer type (transformers 5: the keys that are layer types in layer_types), and Gemma 3,
 * whose config class always makes full_attention (rope_theta, default 1e6, and rope_scaling) and
 * sliding_attention (rope_local_base_freq, default 1e4) ropes. */
static rotary_status select_sources(hf_parse *p, const hf_model *m, const cJSON *types, hf_sources *s) {
  const cJSON *params = hf_get(m->root, "rope_parameters"), *legacy = hf_get(m->root, "rope_scaling");
  const int gemma3 = is_gemma3(m->family);
  const cJSON *flat = NULL, *full = NULL;
  size_t nested = 0;
  if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
    return hf_fail(p, "rope_parameters: expected an object");
  if (legacy && !cJSON_IsNull(legacy) && !cJSON_IsObject(legacy))
    return hf_fail(p, "rope_scaling: expected an object or null");
  s->n = 0;
  for (const cJSON *c = cJSON_IsObject(params) ? params->child : NULL; c; c = c->next) {
    if (hf_get(params, c->string) != c) continue; /* a duplicate key counts with its last value */
    const int layer_type = in_types(types, c->string, gemma3);
    if (cJSON_IsObject(c) && !layer_type && (types || gemma3))
      return hf_fail(p, "rope_parameters.%.40s: not a layer type of layer_types", c->string);
    if (cJSON_IsObject(c) || (cJSON_IsNull(c) && layer_type)) {
      nested++;
      if (!strcmp(c->string, "full_attention")) full = c;
    } else if (!flat) {
      flat = c;
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
  if (full || gemma3) st = add_source(p, m, s, "full_attention", full);
  if (st == ROTARY_OK && gemma3 && !cJSON_IsObject(full) && cJSON_IsObject(legacy)) {
    s->src[0].obj = legacy; /* Gemma 3: rope_scaling is the full-attention rope's */
    snprintf(s->src[0].name, sizeof s->src[0].name, "rope_scaling");
  }
  if (st == ROTARY_OK && gemma3 && !cJSON_IsObject(hf_get(params, "sliding_attention")))
    st = add_source(p, m, s, "sliding_attention", NULL);
  for (const cJSON *c = cJSON_IsObject(params) ? params->child : NULL; c && st == ROTARY_OK; c = c->next)
    if (hf_get(params, c->string) == c && c != full && (cJSON_IsObject(c) || cJSON_IsNull(c)))
      st = add_source(p, m, s, c->string, c);
  return st;
}

/* layer_types (strings, as many as num_hidden_layers), or Gemma 3's sliding_window_pattern (default 6: layer i is
 * full attention when (i + 1) % pattern == 0) over num_hidden_layers (default 26). */
static rotary_status read_layers(hf_parse *p, const hf_model *m, rotary_hf_config *out, const cJSON **types) {
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
  if (!is_gemma3(m->family)) return ROTARY_OK;
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
static rotary_status parse_ropes(hf_parse *p, const hf_model *m, const cJSON *types, rotary_hf_config *out) {
  hf_sources s;
  memset(&s, 0, sizeof s);
  size_t rope_of[HF_MAX_ROPES];
  rotary_status st = select_sources(p, m, types, &s);
  for (size_t k = 0; k < s.n && st == ROTARY_OK; k++) {
    rope_of[k] = HF_NO_ROPE;
    if (s.none[k]) continue;
    hf_rope *r = &out->ropes[out->n_ropes];
    snprintf(r->name, sizeof r->name, "%s", s.type[k] ? s.type[k] : "default");
    rope_of[k] = out->n_ropes++;
    st = parse_rope(p, m, &s.src[k], r);
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

/* A composite config (Qwen2-VL in transformers 5, Qwen3-VL, Gemma 3) keeps the text model's fields in "text_config";
 * older Qwen2-VL files have them at the top level, as transformers reads them when text_config is absent. */
static rotary_status parse_root(hf_parse *p, const cJSON *root, rotary_hf_config *out) {
  if (!cJSON_IsObject(root)) return hf_fail(p, "config: expected a JSON object");
  hf_model m;
  memset(&m, 0, sizeof m);
  const cJSON *mt = hf_get(root, "model_type"), *text = hf_get(root, "text_config");
  if (text && !cJSON_IsNull(text) && !cJSON_IsObject(text)) return hf_fail(p, "text_config: expected an object");
  if (cJSON_IsString(mt)) snprintf(out->model_type, sizeof out->model_type, "%s", mt->valuestring);
  m.root = cJSON_IsObject(text) ? text : root;
  const cJSON *tmt = hf_get(m.root, "model_type");
  snprintf(m.family, sizeof m.family, "%s", cJSON_IsString(tmt) ? tmt->valuestring : out->model_type);
  const cJSON *types = NULL;
  rotary_status st = model_dims(p, &m, out);
  if (st == ROTARY_OK) st = read_layers(p, &m, out, &types);
  if (st == ROTARY_OK) st = parse_ropes(p, &m, types, out);
  return st;
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
  for (size_t k = 0; k < HF_MAX_ROPES; k++) free(config->ropes[k].factors);
  free(config->layer_rope);
  free(config);
}

const rotary_config *rotary_hf_config_rope(const rotary_hf_config *c) { return c ? &c->ropes[0].rope : NULL; }
size_t rotary_hf_config_heads(const rotary_hf_config *c) { return c ? c->heads : 0; }
size_t rotary_hf_config_kv_heads(const rotary_hf_config *c) { return c ? c->kv_heads : 0; }
size_t rotary_hf_config_max_positions(const rotary_hf_config *c) { return c ? c->max_positions : 0; }
size_t rotary_hf_config_layers(const rotary_hf_config *c) { return c ? c->n_layers : 0; }
size_t rotary_hf_config_rope_count(const rotary_hf_config *c) { return c ? c->n_ropes : 0; }
const char *rotary_hf_config_rope_type(const rotary_hf_config *c) { return c ? c->ropes[0].rope_type : ""; }
const char *rotary_hf_config_model_type(const rotary_hf_config *c) { return c ? c->model_type : ""; }

const rotary_config *rotary_hf_config_rope_at(const rotary_hf_config *c, size_t index) {
  return c && index < c->n_ropes ? &c->ropes[index].rope : NULL;
}

const char *rotary_hf_config_rope_name(const rotary_hf_config *c, size_t index) {
  return c && index < c->n_ropes ? c->ropes[index].name : "";
}

rotary_status rotary_hf_config_layer_rope(const rotary_hf_config *c, size_t layer, size_t *index) {
  if (!c || !index) return ROTARY_ERR_NULL_POINTER;
  if (c->n_layers && layer >= c->n_layers) return ROTARY_ERR_LAYER;
  if (c->layer_rope) {
    if (c->layer_rope[layer] == HF_NO_ROPE) return ROTARY_ERR_LAYER;
    *index = c->layer_rope[layer];
    return ROTARY_OK;
  }
  if (c->pattern) {
    *index = (layer + 1) % c->pattern ? c->sliding_rope : c->full_rope;
    return ROTARY_OK;
  }
  if (c->n_ropes > 1) return ROTARY_ERR_LAYER; /* several ropes, layers unknown */
  *index = 0;
  return ROTARY_OK;
}
