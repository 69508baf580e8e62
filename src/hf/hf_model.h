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

#endif /* ROTARY_HF_MODEL_H */
