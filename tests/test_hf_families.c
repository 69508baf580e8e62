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

#include "rotary.h"

static rotary_hf_config *parse_ok(const char *json) {
  rotary_hf_config *h = NULL;
  char err[256];
  const rotary_status st = rotary_hf_config_parse(json, strlen(json), &h, err, sizeof err);
  if (st != ROTARY_OK) fail_msg("parse failed (%d): %s\n%s", (int)st, err, json);
  assert_string_equal(err, "");
  return h;
}

/* Parses json expecting status st and a message containing `needle`; *out must stay untouched. */
static void parse_bad(const char *json, rotary_status st, const char *needle) {
  rotary_hf_config *h = (rotary_hf_config *)(void *)&h;
  char err[256];
  memset(err, 'x', sizeof err);
  const rotary_status got = rotary_hf_config_parse(json, strlen(json), &h, err, sizeof err);
  if (got != st || !strstr(err, needle))
    fail_msg("expected status %d with \"%s\", got %d: \"%s\"\n%s", (int)st, needle, (int)got, err, json);
  assert_ptr_equal(h, (rotary_hf_config *)(void *)&h);
}

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qwen2_vl),
      cmocka_unit_test(test_qwen3_vl),
      cmocka_unit_test(test_mrope_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
