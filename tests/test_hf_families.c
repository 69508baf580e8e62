/* test_hf_families.c: librotary_hf on the issue-12 families, shaped like their published config.json files: mRoPE
 * sections (Qwen2-VL, Qwen2.5-VL, Qwen3-VL), per-layer ropes (Gemma 3, transformers 5 rope_parameters by layer
 * type), partial and interleaved ropes (GLM, Phi-3/4, GPT-NeoX, StableLM), and every error naming its field. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_parse.h"
#include "rotary.h"

static void expect_streams(const rotary_config *c, rotary_stream_layout layout, size_t n, const size_t *sections) {
  assert_int_equal(c->streams.layout, layout);
  assert_int_equal(c->streams.n_streams, n);
  for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) assert_int_equal(c->streams.sections[j], j < n ? sections[j] : 0);
  assert_null(c->streams.map);
}

static void expect_rope(const rotary_config *c, size_t head_dim, size_t rotary_dim, rotary_pairing pairing, double base,
                        rotary_scaling_type type) {
  assert_non_null(c);
  assert_int_equal(c->head_dim, head_dim);
  assert_int_equal(c->rotary_dim, rotary_dim);
  assert_int_equal(c->pairing, pairing);
  if (c->base != base) fail_msg("base %.17g, expected %.17g", c->base, base);
  assert_int_equal(c->scaling.type, type);
}

static const size_t qwen2_sections[3] = {16, 24, 24}, qwen3_sections[3] = {24, 20, 20};

/* librotary accepts the rope (its own streams check included) with the config's stream count. */
static void expect_creates(const rotary_config *c, size_t n_streams) {
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(c, 16, &r), ROTARY_OK);
  assert_int_equal(rotary_rope_streams(r), n_streams);
  rotary_rope_destroy(r);
}

/* Qwen2-VL-7B-Instruct as published (text fields at the top level, rope_scaling type "mrope"), Qwen2-VL-2B in the
 * transformers 5 layout (text_config, rope_parameters with both "type": "mrope" and "rope_type": "default", as a
 * config object's to_dict() gives), Qwen2.5-VL-7B (type "default" and the family's default sections). */
static void test_qwen2_vl(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok(
      "{\"architectures\":[\"Qwen2VLForConditionalGeneration\"],\"model_type\":\"qwen2_vl\",\"hidden_size\":3584,"
      "\"num_attention_heads\":28,\"num_key_value_heads\":4,\"num_hidden_layers\":28,\"max_position_embeddings\":32768,"
      "\"rope_theta\":1000000.0,\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,24]},"
      "\"vision_config\":{\"depth\":32,\"embed_dim\":1280,\"num_heads\":16,\"hidden_size\":3584},"
      "\"vision_start_token_id\":151652}");
  const rotary_config *c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_NONE);
  expect_streams(c, ROTARY_STREAMS_SECTIONS, 3, qwen2_sections);
  expect_creates(c, 3);
  assert_string_equal(rotary_hf_config_rope_type(h), "default");
  assert_string_equal(rotary_hf_config_model_type(h), "qwen2_vl");
  assert_int_equal(rotary_hf_config_heads(h), 28);
  assert_int_equal(rotary_hf_config_kv_heads(h), 4);
  assert_int_equal(rotary_hf_config_layers(h), 28);
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  rotary_hf_config_destroy(h);

  h = parse_ok("{\"model_type\":\"qwen2_vl\",\"hidden_size\":9,\"text_config\":{\"model_type\":\"qwen2_vl_text\","
               "\"hidden_size\":1536,\"num_attention_heads\":12,\"num_key_value_heads\":2,\"num_hidden_layers\":28,"
               "\"rope_parameters\":{\"type\":\"mrope\",\"mrope_section\":[16,24,24],\"rope_theta\":1000000.0,"
               "\"rope_type\":\"default\"}}}");
  c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_NONE);
  expect_streams(c, ROTARY_STREAMS_SECTIONS, 3, qwen2_sections);
  assert_int_equal(rotary_hf_config_heads(h), 12);
  assert_string_equal(rotary_hf_config_model_type(h), "qwen2_vl");
  rotary_hf_config_destroy(h);

  /* Qwen2.5-VL-7B; no rope_theta and no mrope_section: the Qwen2.5-VL defaults (1e6, [16, 24, 24]) */
  h = parse_ok("{\"model_type\":\"qwen2_5_vl\",\"hidden_size\":3584,\"num_attention_heads\":28,"
               "\"num_key_value_heads\":4,\"max_position_embeddings\":128000,"
               "\"rope_scaling\":{\"type\":\"default\",\"rope_type\":\"default\"}}");
  c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_NONE);
  expect_streams(c, ROTARY_STREAMS_SECTIONS, 3, qwen2_sections);
  rotary_hf_config_destroy(h);

  /* sections with another scaling family (YaRN), and a 4-section split on a model without mRoPE defaults */
  h = parse_ok("{\"model_type\":\"qwen2_5_vl\",\"hidden_size\":2048,\"num_attention_heads\":16,"
               "\"max_position_embeddings\":128000,\"rope_theta\":1000000.0,\"rope_scaling\":{\"type\":\"yarn\","
               "\"factor\":4.0,\"original_max_position_embeddings\":32768,\"mrope_section\":[16,24,24]}}");
  c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_YARN);
  assert_true(c->scaling.factor == 4.0);
  expect_streams(c, ROTARY_STREAMS_SECTIONS, 3, qwen2_sections);
  assert_string_equal(rotary_hf_config_rope_type(h), "yarn");
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"hidden_size\":2048,\"num_attention_heads\":32,\"rope_parameters\":{\"rope_type\":\"mrope\","
               "\"mrope_section\":[8,8,8,8]}}");
  const size_t four[4] = {8, 8, 8, 8};
  expect_streams(rotary_hf_config_rope(h), ROTARY_STREAMS_SECTIONS, 4, four);
  expect_creates(rotary_hf_config_rope(h), 4);
  assert_true(rotary_hf_config_rope(h)->base == 10000.0);
  rotary_hf_config_destroy(h);
}

/* Qwen3-VL-8B-Instruct as published: text_config with rope_scaling {mrope_interleaved, mrope_section [24, 20, 20]}. */
static void test_qwen3_vl(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok(
      "{\"model_type\":\"qwen3_vl\",\"text_config\":{\"model_type\":\"qwen3_vl_text\",\"hidden_size\":4096,"
      "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"head_dim\":128,\"num_hidden_layers\":36,"
      "\"max_position_embeddings\":262144,\"rope_scaling\":{\"mrope_interleaved\":true,\"mrope_section\":[24,20,20],"
      "\"rope_type\":\"default\"},\"rope_theta\":5000000},\"vision_config\":{\"depth\":27,\"hidden_size\":1152}}");
  const rotary_config *c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 5e6, ROTARY_SCALING_NONE);
  expect_streams(c, ROTARY_STREAMS_INTERLEAVED, 3, qwen3_sections);
  expect_creates(c, 3);
  assert_int_equal(rotary_hf_config_layers(h), 36);
  assert_int_equal(rotary_hf_config_kv_heads(h), 8);
  assert_string_equal(rotary_hf_config_model_type(h), "qwen3_vl");
  rotary_hf_config_destroy(h);
  /* the Qwen3-VL code always interleaves: no flag and no sections give [24, 20, 20]; rope_theta defaults to 5e5 */
  h = parse_ok("{\"model_type\":\"qwen3_vl_text\",\"hidden_size\":2560,\"num_attention_heads\":32}");
  c = rotary_hf_config_rope(h);
  expect_rope(c, 128, 128, ROTARY_PAIRING_HALF, 5e5, ROTARY_SCALING_NONE);
  expect_streams(c, ROTARY_STREAMS_INTERLEAVED, 3, qwen3_sections);
  rotary_hf_config_destroy(h);
  /* any model: mrope_interleaved true with sections */
  h = parse_ok("{\"hidden_size\":4096,\"num_attention_heads\":32,\"rope_parameters\":{\"rope_type\":\"default\","
               "\"rope_theta\":1e6,\"mrope_interleaved\":true,\"mrope_section\":[24,20,20]}}");
  expect_streams(rotary_hf_config_rope(h), ROTARY_STREAMS_INTERLEAVED, 3, qwen3_sections);
  rotary_hf_config_destroy(h);
  /* mrope_interleaved false or null with sections: contiguous */
  h = parse_ok("{\"hidden_size\":4096,\"num_attention_heads\":32,\"rope_scaling\":{\"mrope_interleaved\":null,"
               "\"mrope_section\":[16,24,24]}}");
  expect_streams(rotary_hf_config_rope(h), ROTARY_STREAMS_SECTIONS, 3, qwen2_sections);
  rotary_hf_config_destroy(h);
}

static void test_mrope_errors(void **state) {
  (void)state;
#define H128 "\"hidden_size\":4096,\"num_attention_heads\":32"
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,20]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: sums to 60, rotary_dim/2 is 64");
  parse_bad("{" H128 ",\"rope_parameters\":{\"rope_type\":\"mrope\",\"mrope_section\":[16,16,16,8,8]}}",
            ROTARY_ERR_CONFIG, "rope_parameters.mrope_section: has 5 sections (2 to 4 allowed)");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[64]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: has 1 section (2 to 4 allowed)");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: has 0 sections");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24.5,23.5]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section[1]: expected an integer >= 0");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,\"24\",24]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section[1]: expected an integer >= 0");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[-16,40,40]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section[0]: expected an integer >= 0");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":\"16,24,24\"}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: expected an array of integers");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\"}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: missing (required by rope_type \"mrope\")");
  parse_bad("{" H128 ",\"rope_scaling\":{\"mrope_interleaved\":true}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: missing (required by mrope_interleaved)");
  parse_bad("{" H128 ",\"rope_scaling\":{\"mrope_interleaved\":\"yes\",\"mrope_section\":[24,20,20]}}",
            ROTARY_ERR_CONFIG, "rope_scaling.mrope_interleaved: expected true or false");
  parse_bad("{" H128 ",\"rope_scaling\":{\"mrope_interleaved\":1,\"mrope_section\":[24,20,20]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_interleaved: expected true or false");
  parse_bad("{" H128 ",\"rope_scaling\":{\"mrope_interleaved\":true,\"mrope_section\":[21,21,22]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section[2]: 22 frequencies every 3rd from 2 do not fit in rotary_dim/2 = 64");
  parse_bad("{" H128 ",\"rope_scaling\":{\"mrope_interleaved\":true,\"mrope_section\":[16,16,16,16]}}",
            ROTARY_ERR_CONFIG, "rope_scaling.mrope_section: interleaved takes 3 sections (temporal, height, width), got 4");
  parse_bad("{\"model_type\":\"qwen2_vl\"," H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_interleaved\":true,"
            "\"mrope_section\":[24,20,20]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_interleaved: true, but model_type \"qwen2_vl\" uses contiguous sections");
  parse_bad("{\"model_type\":\"qwen3_vl\",\"text_config\":{\"model_type\":\"qwen3_vl_text\"," H128 ","
            "\"rope_scaling\":{\"mrope_interleaved\":false,\"mrope_section\":[24,20,20]}}}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_interleaved: false, but model_type \"qwen3_vl_text\" interleaves the sections");
  /* the family's default sections must fit too */
  parse_bad("{\"model_type\":\"qwen2_vl\",\"hidden_size\":2048,\"num_attention_heads\":32}", ROTARY_ERR_CONFIG,
            "rope_scaling.mrope_section: sums to 64 (the Qwen2-VL default [16, 24, 24]), rotary_dim/2 is 32");
  parse_bad("{" H128 ",\"rope_scaling\":{\"type\":\"mrope\",\"rope_type\":\"linear\",\"factor\":2,"
            "\"mrope_section\":[16,24,24]}}", ROTARY_ERR_CONFIG, "rope_scaling.type: \"mrope\" contradicts rope_type \"linear\"");
  parse_bad("{\"model_type\":\"qwen2_vl\",\"text_config\":[1]}", ROTARY_ERR_CONFIG, "text_config: expected an object");
#undef H128
}

static size_t layer_rope(const rotary_hf_config *h, size_t layer) {
  size_t index = 99;
  const rotary_status st = rotary_hf_config_layer_rope(h, layer, &index);
  if (st != ROTARY_OK) fail_msg("layer %zu: status %d", layer, (int)st);
  return index;
}

/* Gemma 3: 1B text config (rope_theta, rope_local_base_freq, sliding_window_pattern 6, 26 layers) and the 4B
 * composite config as published (text_config with rope_scaling linear 8 and nothing else about the rope: the
 * Gemma3TextConfig defaults, head_dim 256, rope_theta 1e6, local base 1e4, pattern 6). */
static void test_gemma3(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok(
      "{\"architectures\":[\"Gemma3ForCausalLM\"],\"model_type\":\"gemma3_text\",\"hidden_size\":1152,"
      "\"num_attention_heads\":4,\"num_key_value_heads\":1,\"head_dim\":256,\"num_hidden_layers\":26,"
      "\"max_position_embeddings\":32768,\"query_pre_attn_scalar\":256,\"rope_theta\":1000000,"
      "\"rope_local_base_freq\":10000,\"rope_scaling\":null,\"sliding_window\":512,\"sliding_window_pattern\":6}");
  assert_int_equal(rotary_hf_config_rope_count(h), 2);
  assert_int_equal(rotary_hf_config_layers(h), 26);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "full_attention");
  assert_string_equal(rotary_hf_config_rope_name(h, 1), "sliding_attention");
  assert_string_equal(rotary_hf_config_rope_name(h, 2), "");
  assert_ptr_equal(rotary_hf_config_rope_at(h, 0), rotary_hf_config_rope(h));
  assert_null(rotary_hf_config_rope_at(h, 2));
  expect_rope(rotary_hf_config_rope_at(h, 0), 256, 256, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_NONE);
  expect_rope(rotary_hf_config_rope_at(h, 1), 256, 256, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  for (size_t i = 0; i < 26; i++) assert_int_equal(layer_rope(h, i), i % 6 == 5 ? 0 : 1);
  size_t index = 77;
  assert_int_equal(rotary_hf_config_layer_rope(h, 26, &index), ROTARY_ERR_LAYER);
  assert_int_equal(rotary_hf_config_layer_rope(h, SIZE_MAX, &index), ROTARY_ERR_LAYER);
  assert_int_equal(index, 77);
  assert_int_equal(rotary_hf_config_layer_rope(h, 0, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_hf_config_layer_rope(NULL, 0, &index), ROTARY_ERR_NULL_POINTER);
  for (size_t k = 0; k < 2; k++) {
    rotary_rope *r = NULL;
    assert_int_equal(rotary_rope_create(rotary_hf_config_rope_at(h, k), 64, &r), ROTARY_OK);
    rotary_rope_destroy(r);
  }
  rotary_hf_config_destroy(h);

  h = parse_ok("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\","
               "\"text_config\":{\"hidden_size\":2560,\"intermediate_size\":10240,\"model_type\":\"gemma3_text\","
               "\"num_hidden_layers\":34,\"rope_scaling\":{\"factor\":8.0,\"rope_type\":\"linear\"},"
               "\"sliding_window\":1024},\"vision_config\":{\"hidden_size\":1152,\"model_type\":\"siglip_vision_model\"}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 2);
  assert_int_equal(rotary_hf_config_layers(h), 34);
  const rotary_config *full = rotary_hf_config_rope_at(h, 0), *local = rotary_hf_config_rope_at(h, 1);
  expect_rope(full, 256, 256, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_LINEAR);
  assert_true(full->scaling.factor == 8.0);
  expect_rope(local, 256, 256, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  assert_string_equal(rotary_hf_config_rope_type(h), "linear");
  assert_string_equal(rotary_hf_config_model_type(h), "gemma3");
  for (size_t i = 0; i < 34; i++) assert_int_equal(layer_rope(h, i), i % 6 == 5 ? 0 : 1);
  rotary_hf_config_destroy(h);

  /* no num_hidden_layers: 26; another pattern; pattern 1: every layer full */
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"sliding_window_pattern\":2}");
  assert_int_equal(rotary_hf_config_layers(h), 26);
  for (size_t i = 0; i < 26; i++) assert_int_equal(layer_rope(h, i), i % 2 == 1 ? 0 : 1);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":3,\"sliding_window_pattern\":1}");
  for (size_t i = 0; i < 3; i++) assert_int_equal(layer_rope(h, i), 0);
  rotary_hf_config_destroy(h);

  /* the transformers 5 layout: layer_types and rope_parameters by layer type */
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"head_dim\":256,\"num_hidden_layers\":4,\"layer_types\":"
               "[\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_attention\"],"
               "\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0},"
               "\"full_attention\":{\"rope_type\":\"linear\",\"factor\":8.0,\"rope_theta\":1000000.0}}}");
  expect_rope(rotary_hf_config_rope_at(h, 0), 256, 256, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_LINEAR);
  expect_rope(rotary_hf_config_rope_at(h, 1), 256, 256, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  assert_int_equal(layer_rope(h, 0), 1);
  assert_int_equal(layer_rope(h, 1), 0);
  assert_int_equal(layer_rope(h, 3), 1);
  rotary_hf_config_destroy(h);
  /* nested rope_parameters without rope_theta: the top-level rope_theta and rope_local_base_freq are defaults */
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"rope_theta\":2e6,\"rope_local_base_freq\":5e4,"
               "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"default\"},\"sliding_attention\":null}}");
  assert_true(rotary_hf_config_rope_at(h, 0)->base == 2e6);
  assert_true(rotary_hf_config_rope_at(h, 1)->base == 5e4);
  rotary_hf_config_destroy(h);
}

/* transformers 5 per-layer-type rope_parameters for any model, a layer type without rope (null), one rope for all. */
static void test_layer_types(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok(
      "{\"model_type\":\"llama\",\"hidden_size\":2048,\"num_attention_heads\":16,\"max_position_embeddings\":131072,"
      "\"num_hidden_layers\":4,\"rope_theta\":123,\"layer_types\":[\"sliding_attention\",\"full_attention\","
      "\"sliding_attention\",\"full_attention\"],\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\","
      "\"rope_theta\":10000.0},\"full_attention\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"rope_theta\":1000000.0,"
      "\"original_max_position_embeddings\":32768}}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 2);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "full_attention");
  assert_string_equal(rotary_hf_config_rope_name(h, 1), "sliding_attention");
  expect_rope(rotary_hf_config_rope_at(h, 0), 128, 128, ROTARY_PAIRING_HALF, 1e6, ROTARY_SCALING_YARN);
  assert_int_equal(rotary_hf_config_rope_at(h, 0)->scaling.original_max_position_embeddings, 32768);
  expect_rope(rotary_hf_config_rope_at(h, 1), 128, 128, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  assert_string_equal(rotary_hf_config_rope_type(h), "yarn");
  for (size_t i = 0; i < 4; i++) assert_int_equal(layer_rope(h, i), i % 2 ? 0 : 1);
  rotary_hf_config_destroy(h);

  /* a layer type whose parameters are null has no rope; the top-level rope_theta is the nested default */
  h = parse_ok("{\"hidden_size\":2048,\"num_attention_heads\":16,\"rope_theta\":5e5,\"layer_types\":"
               "[\"linear_attention\",\"full_attention\",\"linear_attention\"],\"rope_parameters\":{"
               "\"linear_attention\":null,\"full_attention\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  assert_int_equal(rotary_hf_config_layers(h), 3);
  expect_rope(rotary_hf_config_rope(h), 128, 64, ROTARY_PAIRING_HALF, 5e5, ROTARY_SCALING_NONE);
  size_t index = 5;
  assert_int_equal(rotary_hf_config_layer_rope(h, 0, &index), ROTARY_ERR_LAYER);
  assert_int_equal(index, 5);
  assert_int_equal(layer_rope(h, 1), 0);
  assert_int_equal(rotary_hf_config_layer_rope(h, 2, &index), ROTARY_ERR_LAYER);
  rotary_hf_config_destroy(h);

  /* one flat rope with layer_types (Gemma 2, Qwen2 sliding windows): every layer rope 0, "default" */
  h = parse_ok("{\"model_type\":\"gemma2\",\"hidden_size\":3584,\"num_attention_heads\":16,\"num_key_value_heads\":8,"
               "\"head_dim\":256,\"query_pre_attn_scalar\":256,\"num_hidden_layers\":42,\"rope_theta\":10000.0,"
               "\"sliding_window\":4096,\"max_position_embeddings\":8192}");
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "default");
  expect_rope(rotary_hf_config_rope(h), 256, 256, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  assert_int_equal(layer_rope(h, 41), 0);
  assert_int_equal(rotary_hf_config_layer_rope(h, 42, &index), ROTARY_ERR_LAYER);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"hidden_size\":64,\"num_attention_heads\":1,\"layer_types\":[\"full_attention\",\"sliding_attention\"]}");
  assert_int_equal(rotary_hf_config_layers(h), 2);
  assert_int_equal(layer_rope(h, 1), 0);
  rotary_hf_config_destroy(h);
  /* layers unknown: a single rope serves any layer; several ropes cannot be told apart */
  h = parse_ok("{\"hidden_size\":64,\"num_attention_heads\":1}");
  assert_int_equal(rotary_hf_config_layers(h), 0);
  assert_int_equal(layer_rope(h, 1000000), 0);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"hidden_size\":64,\"num_attention_heads\":1,\"rope_parameters\":{\"full_attention\":"
               "{\"rope_theta\":1e6},\"sliding_attention\":{\"rope_theta\":1e4}}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 2);
  assert_int_equal(rotary_hf_config_layer_rope(h, 0, &index), ROTARY_ERR_LAYER);
  rotary_hf_config_destroy(h);
  /* entries of layer types that no layer has are ignored, as transformers reads only the types that occur */
  h = parse_ok("{\"hidden_size\":64,\"num_attention_heads\":1,\"layer_types\":[\"full_attention\"],"
               "\"rope_parameters\":{\"full_attention\":{\"rope_theta\":1e6},\"sliding_attention\":{\"rope_type\":\"bogus\"},"
               "\"chunked_attention\":null}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "full_attention");
  assert_true(rotary_hf_config_rope(h)->base == 1e6);
  rotary_hf_config_destroy(h);
  /* Gemma 3 with fewer layers than the pattern (all sliding, as Gemma3TextConfig(num_hidden_layers=2) writes):
   * only the sliding rope, which is rope 0; the same with layer_types all sliding and both entries given */
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":2,\"head_dim\":16,\"rope_scaling\":{\"rope_type\":"
               "\"linear\"}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "sliding_attention");
  expect_rope(rotary_hf_config_rope(h), 16, 16, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_NONE);
  assert_int_equal(layer_rope(h, 0), 0);
  assert_int_equal(layer_rope(h, 1), 0);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"model_type\":\"gemma3_text\",\"head_dim\":16,\"layer_types\":[\"sliding_attention\","
               "\"sliding_attention\"],\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\","
               "\"rope_theta\":10000.0},\"full_attention\":{\"rope_type\":\"linear\",\"factor\":8.0}}}");
  assert_int_equal(rotary_hf_config_rope_count(h), 1);
  assert_string_equal(rotary_hf_config_rope_name(h, 0), "sliding_attention");
  assert_int_equal(layer_rope(h, 1), 0);
  rotary_hf_config_destroy(h);
  /* NULL */
  assert_int_equal(rotary_hf_config_layers(NULL), 0);
  assert_int_equal(rotary_hf_config_rope_count(NULL), 0);
  assert_null(rotary_hf_config_rope_at(NULL, 0));
  assert_string_equal(rotary_hf_config_rope_name(NULL, 0), "");
  assert_string_equal(rotary_hf_config_rope_type(NULL), "");
}

static void test_layer_errors(void **state) {
  (void)state;
#define H64 "\"hidden_size\":64,\"num_attention_heads\":1"
  parse_bad("{" H64 ",\"layer_types\":[\"full_attention\",\"sliding_attention\"],\"rope_parameters\":{"
            "\"full_attention\":{\"rope_type\":\"default\"}}}", ROTARY_ERR_CONFIG,
            "rope_parameters.sliding_attention: missing (layer_types[1] is \"sliding_attention\"");
  parse_bad("{\"model_type\":\"gemma3_text\",\"layer_types\":[\"full_attention\",\"chunked_attention\"]}",
            ROTARY_ERR_CONFIG, "rope_parameters.chunked_attention: missing (layer_types[1] is \"chunked_attention\"");
  parse_bad("{" H64 ",\"num_hidden_layers\":3,\"layer_types\":[\"full_attention\",\"full_attention\"]}",
            ROTARY_ERR_CONFIG, "layer_types: has 2 entries, num_hidden_layers is 3");
  parse_bad("{" H64 ",\"layer_types\":[\"full_attention\",7]}", ROTARY_ERR_CONFIG, "layer_types[1]: expected a string");
  parse_bad("{" H64 ",\"layer_types\":\"full_attention\"}", ROTARY_ERR_CONFIG, "layer_types: expected an array");
  parse_bad("{" H64 ",\"layer_types\":[]}", ROTARY_ERR_CONFIG, "layer_types: empty");
  parse_bad("{\"model_type\":\"gemma3_text\",\"sliding_window_pattern\":0}", ROTARY_ERR_CONFIG,
            "sliding_window_pattern: 0 (must be at least 1)");
  parse_bad("{\"model_type\":\"gemma3_text\",\"sliding_window_pattern\":2.5}", ROTARY_ERR_CONFIG,
            "sliding_window_pattern: expected an integer");
  parse_bad("{" H64 ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2},\"rope_parameters\":{\"full_attention\":{}}}",
            ROTARY_ERR_CONFIG, "rope_scaling: given next to per-layer-type rope_parameters");
  parse_bad("{\"model_type\":\"gemma3_text\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2},"
            "\"rope_parameters\":{\"full_attention\":{}}}", ROTARY_ERR_CONFIG,
            "rope_scaling: given next to per-layer-type rope_parameters.full_attention");
  parse_bad("{\"model_type\":\"gemma3_text\",\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2}}",
            ROTARY_ERR_CONFIG, "rope_parameters: Gemma 3 takes per-layer-type parameters");
  parse_bad("{" H64 ",\"layer_types\":[\"full_attention\"],\"rope_parameters\":{\"full_attention\":null}}",
            ROTARY_ERR_CONFIG, "rope_parameters: no layer type has a rope");
  parse_bad("{" H64 ",\"rope_parameters\":{\"a_rather_long_layer_type_name_of_40_b\":{}}}", ROTARY_ERR_CONFIG,
            "layer type name longer than 31 bytes");
  parse_bad("{" H64 ",\"rope_parameters\":{\"a\":{},\"b\":{},\"c\":{},\"d\":{},\"e\":{},\"f\":{},\"g\":{},\"h\":{},"
            "\"i\":{}}}", ROTARY_ERR_CONFIG, "rope_parameters: more than 8 layer types");
  /* errors inside one layer type's parameters name it */
  parse_bad("{" H64 ",\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"linear\"}}}", ROTARY_ERR_CONFIG,
            "rope_parameters.full_attention.factor: missing (required by \"linear\")");
  parse_bad("{" H64 ",\"rope_parameters\":{\"full_attention\":{\"rope_theta\":-5}}}", ROTARY_ERR_FREQUENCY,
            "rope_parameters.full_attention.rope_theta:");
  parse_bad("{\"model_type\":\"gemma3_text\",\"rope_local_base_freq\":-5}", ROTARY_ERR_FREQUENCY,
            "rope_local_base_freq:");
  parse_bad("{\"model_type\":\"gemma3_text\",\"rope_local_base_freq\":null}", ROTARY_ERR_CONFIG,
            "rope_local_base_freq: null");
#undef H64
}

static char *phi4_mini_json(const char *type) {
  static char buf[4096];
  int n = snprintf(buf, sizeof buf,
                   "{\"model_type\":\"phi3\",\"hidden_size\":3072,\"num_attention_heads\":24,\"num_key_value_heads\":8,"
                   "\"partial_rotary_factor\":0.75,\"rope_theta\":10000.0,\"max_position_embeddings\":131072,"
                   "\"original_max_position_embeddings\":4096,\"rope_scaling\":{\"type\":\"%s\",\"short_factor\":[",
                   type);
  for (int i = 0; i < 48; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s1.0%d", i ? "," : "", i % 10);
  n += snprintf(buf + n, sizeof buf - (size_t)n, "],\"long_factor\":[");
  for (int i = 0; i < 48; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d.5", i ? "," : "", 1 + i / 8);
  snprintf(buf + n, sizeof buf - (size_t)n, "]}}");
  return buf;
}

/* The text families of issue 12, shaped like their published configs; the expected values were checked against
 * transformers 5.24's configuration classes (head_dim and partial_rotary_factor defaults) and modeling code
 * (GLM's interleaved pairs). */
static void test_text_families(void **state) {
  (void)state;
  static const struct {
    const char *json;
    size_t head_dim, rotary_dim;
    rotary_pairing pairing;
    double base;
  } cases[] = {
      /* Gemma 7B; without head_dim the GemmaConfig default 256, not hidden_size / heads = 192 */
      {"{\"model_type\":\"gemma\",\"hidden_size\":3072,\"num_attention_heads\":16,\"num_key_value_heads\":16,"
       "\"head_dim\":256,\"rope_theta\":10000.0,\"max_position_embeddings\":8192}", 256, 256, ROTARY_PAIRING_HALF, 1e4},
      {"{\"model_type\":\"gemma\",\"hidden_size\":3072,\"num_attention_heads\":16}", 256, 256, ROTARY_PAIRING_HALF, 1e4},
      /* Gemma 2 2B: head_dim 256 (query_pre_attn_scalar does not touch the rope) */
      {"{\"model_type\":\"gemma2\",\"hidden_size\":2304,\"num_attention_heads\":8,\"num_key_value_heads\":4,"
       "\"head_dim\":256,\"query_pre_attn_scalar\":256,\"rope_theta\":10000.0}", 256, 256, ROTARY_PAIRING_HALF, 1e4},
      /* Qwen3-0.6B: head_dim 128 where hidden_size / heads is 64; absent, the Qwen3Config default 128 */
      {"{\"model_type\":\"qwen3\",\"hidden_size\":1024,\"num_attention_heads\":16,\"num_key_value_heads\":8,"
       "\"head_dim\":128,\"rope_theta\":1000000,\"rope_scaling\":null,\"max_position_embeddings\":40960}", 128, 128,
       ROTARY_PAIRING_HALF, 1e6},
      {"{\"model_type\":\"qwen3\",\"hidden_size\":1024,\"num_attention_heads\":16}", 128, 128, ROTARY_PAIRING_HALF, 1e4},
      /* GLM-4-9B-chat-hf (glm) and GLM-4-0414 (glm4): interleaved pairs over head_dim * 0.5 (the default factor) */
      {"{\"model_type\":\"glm\",\"hidden_size\":4096,\"num_attention_heads\":32,\"num_key_value_heads\":2,"
       "\"head_dim\":128,\"partial_rotary_factor\":0.5,\"rope_theta\":10000.0,\"max_position_embeddings\":131072}",
       128, 64, ROTARY_PAIRING_INTERLEAVED, 1e4},
      {"{\"model_type\":\"glm4\",\"hidden_size\":6144,\"num_attention_heads\":48,\"num_key_value_heads\":2,"
       "\"head_dim\":128,\"rope_theta\":10000.0}", 128, 64, ROTARY_PAIRING_INTERLEAVED, 1e4},
      {"{\"model_type\":\"glm4\",\"hidden_size\":4096,\"num_attention_heads\":32,\"partial_rotary_factor\":1.0}", 128, 128,
       ROTARY_PAIRING_INTERLEAVED, 1e4},
      /* Pythia-410m (rotary_pct 0.25); without it the GPTNeoXConfig default 0.25 */
      {"{\"model_type\":\"gpt_neox\",\"hidden_size\":1024,\"num_attention_heads\":16,\"rotary_pct\":0.25,"
       "\"rotary_emb_base\":10000,\"max_position_embeddings\":2048}", 64, 16, ROTARY_PAIRING_HALF, 1e4},
      {"{\"model_type\":\"gpt_neox\",\"hidden_size\":512,\"num_attention_heads\":8}", 64, 16, ROTARY_PAIRING_HALF, 1e4},
      /* GPTNeoXConfig ignores top-level rope_theta and partial_rotary_factor (checked: 1e4 and 0.25 stay) */
      {"{\"model_type\":\"gpt_neox\",\"hidden_size\":512,\"num_attention_heads\":8,\"rope_theta\":5e5,"
       "\"partial_rotary_factor\":0.5}", 64, 16, ROTARY_PAIRING_HALF, 1e4},
      {"{\"model_type\":\"gpt_neox\",\"hidden_size\":512,\"num_attention_heads\":8,\"rope_parameters\":{"
       "\"rope_type\":\"default\",\"rope_theta\":3e4,\"partial_rotary_factor\":0.5}}", 64, 32, ROTARY_PAIRING_HALF, 3e4},
      /* StableLM-2-1.6B (partial_rotary_factor 0.25), and its default */
      {"{\"model_type\":\"stablelm\",\"hidden_size\":2048,\"num_attention_heads\":32,\"num_key_value_heads\":32,"
       "\"partial_rotary_factor\":0.25,\"rope_theta\":10000}", 64, 16, ROTARY_PAIRING_HALF, 1e4},
      {"{\"model_type\":\"stablelm\",\"hidden_size\":2560,\"num_attention_heads\":32}", 80, 20, ROTARY_PAIRING_HALF, 1e4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rotary_hf_config *h = parse_ok(cases[i].json);
    expect_rope(rotary_hf_config_rope(h), cases[i].head_dim, cases[i].rotary_dim, cases[i].pairing, cases[i].base,
                ROTARY_SCALING_NONE);
    expect_streams(rotary_hf_config_rope(h), ROTARY_STREAMS_NONE, 0, NULL);
    assert_int_equal(rotary_hf_config_rope_count(h), 1);
    rotary_rope *r = NULL;
    assert_int_equal(rotary_rope_create(rotary_hf_config_rope(h), 8, &r), ROTARY_OK);
    rotary_rope_destroy(r);
    rotary_hf_config_destroy(h);
  }
  /* Phi-4-mini: partial_rotary_factor 0.75 of head_dim 128, LongRoPE factors of rotary_dim/2 = 48; Phi-3 reads
   * "yarn" (and "su") as longrope */
  static const char *const types[] = {"longrope", "su", "yarn"};
  for (size_t t = 0; t < 3; t++) {
    rotary_hf_config *h = parse_ok(phi4_mini_json(types[t]));
    const rotary_config *c = rotary_hf_config_rope(h);
    expect_rope(c, 128, 96, ROTARY_PAIRING_HALF, 1e4, ROTARY_SCALING_LONGROPE);
    assert_int_equal(c->scaling.original_max_position_embeddings, 4096);
    assert_true(c->scaling.short_factor[0] == 1.0 && c->scaling.short_factor[47] == 1.07);
    assert_true(c->scaling.long_factor[0] == 1.5 && c->scaling.long_factor[47] == 6.5);
    assert_string_equal(rotary_hf_config_rope_type(h), "longrope");
    rotary_hf_config_destroy(h);
  }
  parse_bad("{\"model_type\":\"phi3\",\"hidden_size\":3072,\"num_attention_heads\":24,\"partial_rotary_factor\":0.75,"
            "\"max_position_embeddings\":4096,"
            "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,2],\"long_factor\":[1,2]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.short_factor: has 2 values, rotary_dim / 2 is 48");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qwen2_vl),
      cmocka_unit_test(test_qwen3_vl),
      cmocka_unit_test(test_mrope_errors),
      cmocka_unit_test(test_gemma3),
      cmocka_unit_test(test_layer_types),
      cmocka_unit_test(test_layer_errors),
      cmocka_unit_test(test_text_families),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
