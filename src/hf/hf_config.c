/* hf_config.c: librotary_hf's entry points: a Hugging Face config.json, parsed with cJSON, read as a text model
 * (text_config of a composite config) whose ropes come from hf_layers.c, and the accessors of the result. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "rotary.h"

int hf_is_one_of(const char *s, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return 1;
  return 0;
}

int hf_is_gemma3(const char *family) { return HF_IS_ONE_OF(family, "gemma3", "gemma3_text"); }

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
    if (HF_IS_ONE_OF(f, "gemma", "gemma2", "gemma3", "gemma3_text")) head_dim = 256;
    if (HF_IS_ONE_OF(f, "qwen3", "qwen3_vl", "qwen3_vl_text", "glm", "glm4")) head_dim = 128;
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
  } else if (HF_IS_ONE_OF(f, "glm", "glm4")) {
    /* modeling_glm4.py: cos[..., :rd/2].repeat_interleave(2) with rotate_half on x[0::2], x[1::2] */
    m->pairing = ROTARY_PAIRING_INTERLEAVED;
  }
  m->head_dim = head_dim;
  m->fixed_rotary_dim = rope_dim;
  m->max_positions = out->max_positions;
  m->default_partial = HF_IS_ONE_OF(f, "glm", "glm4") ? 0.5 : HF_IS_ONE_OF(f, "stablelm", "gpt_neox") ? 0.25 : 1.0;
  m->default_theta = hf_mrope_family(f) == 1 ? 1e6 : hf_mrope_family(f) == 2 ? 5e5 : hf_is_gemma3(f) ? 1e6 : 1e4;
  return ROTARY_OK;
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
  if (st == ROTARY_OK) st = hf_read_layers(p, &m, out, &types);
  if (st == ROTARY_OK) st = hf_parse_ropes(p, &m, types, out);
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
