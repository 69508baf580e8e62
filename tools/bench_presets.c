/* bench_presets.c: the attention shapes of `rotary bench --model` (heads, kv heads, head_dim, rotary_dim, base). */
#include <string.h>

#include "bench.h"

/* From each model's Hugging Face config.json (num_attention_heads, num_key_value_heads, head_dim, rope_theta,
 * partial_rotary_factor; the VL models' text_config and rope_scaling.mrope_section, mrope_interleaved; Qwen2-VL's
 * vision_config: embed_dim 1280 over 16 heads, 2-D rope). rotary_dim 0: every dim rotates (it follows
 * --head-dim). */
#define ONE_STREAM ROTARY_STREAMS_NONE, {0, 0, 0, 0}
static const bench_preset presets[] = {
    {"llama-7b", 32, 32, 128, 0, 10000.0, "LLaMA 1/2 7B, the article's shape", ONE_STREAM},
    {"llama3-8b", 32, 8, 128, 0, 500000.0, "Llama 3 8B, GQA", ONE_STREAM},
    {"qwen2.5-7b", 28, 4, 128, 0, 1000000.0, "Qwen2.5 7B, GQA", ONE_STREAM},
    {"mistral-7b", 32, 8, 128, 0, 10000.0, "Mistral 7B v0.1, GQA (v0.2+ use base 1e6; same speed)", ONE_STREAM},
    {"phi-2", 32, 32, 80, 32, 10000.0, "Phi-2, partial rotary: 32 of 80 dims rotate", ONE_STREAM},
    {"qwen2-vl-7b", 28, 4, 128, 0, 1000000.0, "Qwen2-VL 7B text, mRoPE sections 16,24,24",
     ROTARY_STREAMS_SECTIONS, {16, 24, 24, 0}},
    {"qwen3-vl-8b", 32, 8, 128, 0, 5000000.0, "Qwen3-VL 8B text, mRoPE interleaved 24,20,20",
     ROTARY_STREAMS_INTERLEAVED, {24, 20, 20, 0}},
    {"qwen2-vl-vit", 16, 16, 80, 0, 10000.0, "Qwen2-VL vision encoder, 2-D (row, column) rope",
     ROTARY_STREAMS_VISION_2D, {0, 0, 0, 0}},
};

const bench_preset *bench_find_preset(const char *name) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(presets[i].name, name)) return &presets[i];
  return NULL;
}

void bench_list_presets(FILE *f) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
    const bench_preset *p = &presets[i];
    fprintf(f, "  %-12s %2zu q / %2zu k heads, head_dim %3zu, rotary_dim %3zu, base %-8g %s\n", p->name,
            p->heads, p->kv_heads, p->head_dim, p->rotary_dim ? p->rotary_dim : p->head_dim, p->base, p->note);
  }
}
