/* hf_model.h: librotary_hf internals shared by its sources: the parsed config (one rope per layer type) and the
 * facts of the text model that all its ropes share. */
#ifndef ROTARY_HF_MODEL_H
#define ROTARY_HF_MODEL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "hf_json.h"
#include "rotary.h"

#define HF_MAX_ROPES 8   /* layer types with parameters of their own */
#define HF_NAME_MAX 32   /* a layer type's name, NUL included */
#define HF_NO_ROPE 0xFF  /* layer_rope of a layer whose type has no rope (rope_parameters.<type>: null) */

typedef struct hf_rope {
  rotary_config rope;
  double *factors;         /* LongRoPE: short then long factors, rotary_dim/2 each; else NULL */
  char name[HF_NAME_MAX];  /* the layer type; "default" for a config with one rope */
  char rope_type[32];      /* the family's Hugging Face name */
} hf_rope;

struct rotary_hf_config {
  hf_rope ropes[HF_MAX_ROPES];
  size_t n_ropes;
  uint8_t *layer_rope;   /* from layer_types: the rope of each layer (or HF_NO_ROPE); NULL otherwise */
  size_t n_layers;       /* num_hidden_layers, or the length of layer_types; 0 when unknown */
  size_t pattern;        /* Gemma 3 without layer_types: sliding_window_pattern; 0 otherwise */
  size_t full_rope, sliding_rope; /* with pattern: the ropes of full and sliding layers */
  size_t heads, kv_heads, max_positions;
  char model_type[64];
};

/* What every rope of one config shares. */
typedef struct hf_model {
  const cJSON *root;       /* the text config: config.json itself, or its "text_config" object */
  char family[64];         /* the text config's model_type (else the top level's): selects the family rules */
  size_t head_dim;
  size_t fixed_rotary_dim; /* GPT-J rotary_dim, DeepSeek qk_rope_head_dim; 0: from partial_rotary_factor */
  rotary_pairing pairing;
  double default_partial;  /* partial_rotary_factor when no key gives one (GLM 0.5, StableLM, GPT-NeoX 0.25) */
  double default_theta;    /* rope_theta when absent (Qwen2-VL 1e6, Qwen3-VL 5e5, Gemma 3 1e6, else 1e4) */
  size_t max_positions;
} hf_model;

/* Whether s is one of names (model_type lists). */
int hf_is_one_of(const char *s, const char *const *names, size_t n);
#define HF_IS_ONE_OF(s, ...) \
  hf_is_one_of((s), (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))
int hf_is_gemma3(const char *family);
/* 1: model types whose transformers code splits the frequencies into contiguous mRoPE sections (Qwen2-VL,
 * Qwen2.5-VL); 2: those that interleave them (Qwen3-VL); 0: others (hf_mrope.c). */
int hf_mrope_family(const char *family);

/* The streams of one rope from its scaling object (hf_mrope.c); c->rotary_dim is set. */
rotary_status hf_rope_streams(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c);
/* One rope from one source, checked with rotary_config_check (hf_rope.c). */
rotary_status hf_parse_rope(hf_parse *p, const hf_model *m, scaling_src *src, hf_rope *out);
/* num_hidden_layers and layer_types (or Gemma 3's pattern) into out; *types is the layer_types array or NULL. */
rotary_status hf_read_layers(hf_parse *p, const hf_model *m, rotary_hf_config *out, const cJSON **types);
/* Every rope of the config and the layers' map (hf_layers.c). */
rotary_status hf_parse_ropes(hf_parse *p, const hf_model *m, const cJSON *types, rotary_hf_config *out);

#endif /* ROTARY_HF_MODEL_H */
