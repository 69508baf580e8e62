/* test_hf_config.c: librotary_hf: real model configs in both layouts become the right rotary_config, and every
 * malformed, missing or contradictory field gets a status and a message naming it. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_llama2_default(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok("{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_attention_heads\":32,"
                                 "\"num_key_value_heads\":32,\"max_position_embeddings\":4096,"
                                 "\"rope_theta\":10000.0,\"rope_scaling\":null}");
  const rotary_config *c = rotary_hf_config_rope(h);
  assert_int_equal(c->head_dim, 128);
  assert_int_equal(c->rotary_dim, 128);
  assert_int_equal(c->pairing, ROTARY_PAIRING_HALF);
  assert_true(c->base == 10000.0);
  assert_int_equal(c->scaling.type, ROTARY_SCALING_NONE);
  assert_int_equal(rotary_hf_config_heads(h), 32);
  assert_int_equal(rotary_hf_config_kv_heads(h), 32);
  assert_int_equal(rotary_hf_config_max_positions(h), 4096);
  assert_string_equal(rotary_hf_config_rope_type(h), "default");
  assert_string_equal(rotary_hf_config_model_type(h), "llama");
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(c, 16, &r), ROTARY_OK);
  rotary_rope_destroy(r);
  rotary_hf_config_destroy(h);
}

static const char *llama31 =
    "{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
    "\"max_position_embeddings\":131072,\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":8.0,"
    "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,"
    "\"rope_type\":\"llama3\"}}";

/* Llama 3.1 in the transformers 4 layout and the transformers 5 layout give the same config. */
static void test_llama31_both_layouts(void **state) {
  (void)state;
  rotary_hf_config *a = parse_ok(llama31);
  rotary_hf_config *b = parse_ok(
      "{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
      "\"max_position_embeddings\":131072,\"rope_parameters\":{\"rope_theta\":500000.0,\"factor\":8.0,"
      "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,"
      "\"rope_type\":\"llama3\"}}");
  const rotary_config *ca = rotary_hf_config_rope(a), *cb = rotary_hf_config_rope(b);
  assert_int_equal(ca->scaling.type, ROTARY_SCALING_LLAMA3);
  assert_true(ca->base == 500000.0 && cb->base == 500000.0);
  assert_true(ca->scaling.factor == 8.0 && ca->scaling.low_freq_factor == 1.0 && ca->scaling.high_freq_factor == 4.0);
  assert_int_equal(ca->scaling.original_max_position_embeddings, 8192);
  assert_int_equal(rotary_hf_config_kv_heads(a), 8);
  assert_memory_equal(ca, cb, sizeof *ca);
  assert_string_equal(rotary_hf_config_rope_type(b), "llama3");
  rotary_hf_config_destroy(a);
  rotary_hf_config_destroy(b);
}

static void test_qwen_yarn_and_deepseek(void **state) {
  (void)state;
  rotary_hf_config *q = parse_ok(
      "{\"model_type\":\"qwen2\",\"hidden_size\":3584,\"num_attention_heads\":28,\"num_key_value_heads\":4,"
      "\"max_position_embeddings\":32768,\"rope_theta\":1000000.0,\"rope_scaling\":{\"factor\":4.0,"
      "\"original_max_position_embeddings\":32768,\"type\":\"yarn\"}}");
  const rotary_config *c = rotary_hf_config_rope(q);
  assert_int_equal(c->head_dim, 128);
  assert_int_equal(c->scaling.type, ROTARY_SCALING_YARN);
  assert_true(c->scaling.factor == 4.0);
  assert_int_equal(c->scaling.truncate, 1);
  assert_true(c->scaling.attention_factor == 0.0); /* derived by the rope */
  rotary_hf_config_destroy(q);
  rotary_hf_config *d = parse_ok(
      "{\"model_type\":\"deepseek_v2\",\"hidden_size\":2048,\"num_attention_heads\":16,\"qk_rope_head_dim\":64,"
      "\"qk_nope_head_dim\":128,\"max_position_embeddings\":163840,\"rope_theta\":10000,\"rope_scaling\":{"
      "\"beta_fast\":32,\"beta_slow\":1,\"factor\":40,\"mscale\":0.707,\"mscale_all_dim\":0.707,"
      "\"original_max_position_embeddings\":4096,\"type\":\"yarn\",\"truncate\":false}}");
  c = rotary_hf_config_rope(d);
  assert_int_equal(c->head_dim, 64);
  assert_int_equal(c->rotary_dim, 64);
  assert_int_equal(c->pairing, ROTARY_PAIRING_INTERLEAVED);
  assert_true(c->scaling.mscale == 0.707 && c->scaling.mscale_all_dim == 0.707 && c->scaling.beta_fast == 32);
  assert_int_equal(c->scaling.truncate, 0);
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(c, 0, &r), ROTARY_OK);
  assert_true(rotary_rope_attention_scaling(r) == 1.0);
  rotary_rope_destroy(r);
  rotary_hf_config_destroy(d);
}

/* Phi-3's LongRoPE: the top-level original_max_position_embeddings wins; "su" is the old name. */
static void test_phi3_longrope(void **state) {
  (void)state;
  char json[4096], list[1024];
  size_t n = 0;
  for (int i = 0; i < 48; i++) n += (size_t)snprintf(list + n, sizeof list - n, "%s%.2f", i ? "," : "", 1.0 + i * 0.5);
  for (int su = 0; su < 2; su++) {
    snprintf(json, sizeof json,
             "{\"model_type\":\"phi3\",\"hidden_size\":3072,\"num_attention_heads\":32,"
             "\"max_position_embeddings\":131072,\"original_max_position_embeddings\":4096,\"rope_theta\":10000.0,"
             "\"rope_scaling\":{\"type\":\"%s\",\"short_factor\":[%s],\"long_factor\":[%s],"
             "\"original_max_position_embeddings\":8192}}",
             su ? "su" : "longrope", list, list);
    rotary_hf_config *h = parse_ok(json);
    const rotary_config *c = rotary_hf_config_rope(h);
    assert_int_equal(c->head_dim, 96);
    assert_int_equal(c->scaling.type, ROTARY_SCALING_LONGROPE);
    assert_int_equal(c->scaling.original_max_position_embeddings, 4096);
    assert_int_equal(c->scaling.max_position_embeddings, 131072);
    assert_true(c->scaling.short_factor[47] == 1.0 + 47 * 0.5);
    assert_string_equal(rotary_hf_config_rope_type(h), "longrope");
    rotary_rope *r = NULL;
    assert_int_equal(rotary_rope_create(c, 0, &r), ROTARY_OK);
    assert_true(fabs(rotary_rope_attention_scaling(r) - sqrt(1 + log(32.0) / log(4096.0))) < 1e-15);
    rotary_rope_destroy(r);
    rotary_hf_config_destroy(h);
  }
}

/* Partial rotary: GPT-NeoX (rotary_pct, rotary_emb_base), Phi-2 (partial_rotary_factor), GPT-J (rotary_dim). */
static void test_partial_rotary(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok("{\"model_type\":\"gpt_neox\",\"hidden_size\":6144,\"num_attention_heads\":64,"
                                 "\"rotary_pct\":0.25,\"rotary_emb_base\":10000,\"max_position_embeddings\":2048}");
  assert_int_equal(rotary_hf_config_rope(h)->head_dim, 96);
  assert_int_equal(rotary_hf_config_rope(h)->rotary_dim, 24);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"model_type\":\"phi\",\"hidden_size\":2560,\"num_attention_heads\":32,"
               "\"partial_rotary_factor\":0.4,\"rope_theta\":10000.0}");
  assert_int_equal(rotary_hf_config_rope(h)->head_dim, 80);
  assert_int_equal(rotary_hf_config_rope(h)->rotary_dim, 32);
  rotary_hf_config_destroy(h);
  h = parse_ok("{\"model_type\":\"gptj\",\"n_embd\":4096,\"n_head\":16,\"rotary_dim\":64,\"n_positions\":2048}");
  assert_int_equal(rotary_hf_config_rope(h)->head_dim, 256);
  assert_int_equal(rotary_hf_config_rope(h)->rotary_dim, 64);
  assert_int_equal(rotary_hf_config_rope(h)->pairing, ROTARY_PAIRING_INTERLEAVED);
  assert_int_equal(rotary_hf_config_max_positions(h), 2048);
  rotary_hf_config_destroy(h);
  /* explicit head_dim wins over hidden_size / heads (Gemma-style) */
  h = parse_ok("{\"hidden_size\":3072,\"num_attention_heads\":16,\"head_dim\":256}");
  assert_int_equal(rotary_hf_config_rope(h)->head_dim, 256);
  rotary_hf_config_destroy(h);
}

static void test_other_families(void **state) {
  (void)state;
  static const struct { const char *json; rotary_scaling_type type; double factor; } cases[] = {
      {"{\"hidden_size\":4096,\"num_attention_heads\":32,\"max_position_embeddings\":4096,"
       "\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0}}", ROTARY_SCALING_LINEAR, 4.0},
      {"{\"hidden_size\":4096,\"num_attention_heads\":32,\"max_position_embeddings\":4096,"
       "\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2.0}}", ROTARY_SCALING_DYNAMIC, 2.0},
      {"{\"hidden_size\":4096,\"num_attention_heads\":32,\"rope_scaling\":{\"type\":\"ntk\",\"factor\":8}}",
       ROTARY_SCALING_NTK, 8.0},
      {"{\"hidden_size\":4096,\"num_attention_heads\":32,\"rope_parameters\":{\"rope_type\":\"default\","
       "\"rope_theta\":10000.0}}", ROTARY_SCALING_NONE, 0.0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rotary_hf_config *h = parse_ok(cases[i].json);
    assert_int_equal(rotary_hf_config_rope(h)->scaling.type, cases[i].type);
    assert_true(rotary_hf_config_rope(h)->scaling.factor == cases[i].factor);
    rotary_hf_config_destroy(h);
  }
  rotary_hf_config *h = parse_ok(cases[1].json);
  assert_int_equal(rotary_hf_config_rope(h)->scaling.max_position_embeddings, 4096);
  rotary_hf_config_destroy(h);
}

/* Every kind of bad config: the status and the field in the message. */
static void test_errors_name_the_field(void **state) {
  (void)state;
#define HEAD "\"hidden_size\":4096,\"num_attention_heads\":32,\"max_position_embeddings\":4096"
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"quantum\",\"factor\":2}}", ROTARY_ERR_CONFIG,
            "rope_scaling.rope_type: unknown \"quantum\"");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"linear\"}}", ROTARY_ERR_CONFIG, "rope_scaling.factor: missing");
  parse_bad("{" HEAD ",\"rope_parameters\":{\"rope_type\":\"linear\"}}", ROTARY_ERR_CONFIG,
            "rope_parameters.factor: missing");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":\"4\"}}", ROTARY_ERR_CONFIG,
            "rope_scaling.factor: expected a finite number");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"linear\",\"rope_type\":\"yarn\",\"factor\":4}}",
            ROTARY_ERR_CONFIG, "rope_scaling.type: \"linear\" contradicts rope_type \"yarn\"");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":4},"
            "\"rope_parameters\":{\"rope_type\":\"yarn\",\"factor\":4}}", ROTARY_ERR_CONFIG, "rope_scaling: names");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":-4}}", ROTARY_ERR_SCALING,
            "rope_scaling.factor: a frequency-scaling parameter");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1}}",
            ROTARY_ERR_CONFIG, "rope_scaling.high_freq_factor: missing");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,"
            "\"high_freq_factor\":1}}", ROTARY_ERR_SCALING, "rope_scaling.high_freq_factor");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,2],\"long_factor\":[1,2]}}",
            ROTARY_ERR_CONFIG, "rope_scaling.short_factor: has 2 values, rotary_dim / 2 is 64");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"longrope\"}}", ROTARY_ERR_CONFIG,
            "rope_scaling.short_factor: missing");
  parse_bad("{" HEAD ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"truncate\":1}}", ROTARY_ERR_CONFIG,
            "rope_scaling.truncate: expected true or false");
  parse_bad("{\"hidden_size\":4096,\"num_attention_heads\":32,\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2}}",
            ROTARY_ERR_CONFIG, "max_position_embeddings: missing");
  parse_bad("{" HEAD ",\"rope_theta\":10000,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000}}",
            ROTARY_ERR_CONFIG, "rope_parameters.rope_theta: 500000 contradicts the top-level rope_theta 10000");
  parse_bad("{" HEAD ",\"rope_theta\":-1}", ROTARY_ERR_FREQUENCY, "rope_theta");
  parse_bad("{" HEAD ",\"partial_rotary_factor\":0.01}", ROTARY_ERR_CONFIG, "partial_rotary_factor: gives rotary_dim 1");
  parse_bad("{" HEAD ",\"partial_rotary_factor\":1.5}", ROTARY_ERR_CONFIG, "partial_rotary_factor: 1.5 is not in");
  parse_bad("{" HEAD ",\"partial_rotary_factor\":0.5,\"rotary_pct\":0.25}", ROTARY_ERR_CONFIG,
            "rotary_pct: 0.25 contradicts partial_rotary_factor 0.5");
  parse_bad("{\"hidden_size\":4096}", ROTARY_ERR_CONFIG, "head_dim: missing");
  parse_bad("{\"hidden_size\":4097,\"num_attention_heads\":32}", ROTARY_ERR_CONFIG,
            "hidden_size: 4097 is not a multiple of num_attention_heads 32");
  parse_bad("{\"hidden_size\":4096,\"num_attention_heads\":32.5}", ROTARY_ERR_CONFIG,
            "num_attention_heads: expected an integer >= 0");
  parse_bad("{\"hidden_size\":4096,\"num_attention_heads\":32,\"num_key_value_heads\":5}", ROTARY_ERR_CONFIG,
            "num_key_value_heads: 5 does not divide");
  parse_bad("{\"head_dim\":7}", ROTARY_ERR_CONFIG, "rotary_dim 7");
  parse_bad("{\"model_type\":\"deepseek_v3\",\"head_dim\":192}", ROTARY_ERR_CONFIG, "qk_rope_head_dim: missing");
  parse_bad("{" HEAD ",\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"default\"}}}", ROTARY_ERR_CONFIG,
            "rope_parameters.full_attention: per-layer rope parameters are not supported");
  parse_bad("{" HEAD ",\"rope_scaling\":[1,2]}", ROTARY_ERR_CONFIG, "rope_scaling: expected an object");
  parse_bad("[1,2,3]", ROTARY_ERR_CONFIG, "config: expected a JSON object");
  parse_bad("{\"hidden_size\":4096,", ROTARY_ERR_CONFIG, "not valid JSON");
  parse_bad("", ROTARY_ERR_CONFIG, "not valid JSON");
  /* NULL arguments; a NULL or empty error buffer is allowed */
  rotary_hf_config *h = NULL;
  assert_int_equal(rotary_hf_config_parse(NULL, 0, &h, NULL, 0), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_hf_config_parse("{}", 2, NULL, NULL, 0), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_hf_config_parse("{\"rope_theta\":1}", 16, &h, NULL, 0), ROTARY_ERR_CONFIG);
  /* a message is cut to the buffer, always terminated */
  char small[8];
  assert_int_equal(rotary_hf_config_parse("[]", 2, &h, small, sizeof small), ROTARY_ERR_CONFIG);
  assert_int_equal(strlen(small), 7);
  assert_null(h);
  rotary_hf_config_destroy(NULL);
  assert_null(rotary_hf_config_rope(NULL));
  assert_int_equal(rotary_hf_config_heads(NULL), 0);
}

/* Length is honoured: the text need not end with NUL, and bytes past length are not read. */
static void test_length_and_files(void **state) {
  (void)state;
  const size_t n = strlen(llama31);
  char *copy = malloc(n + 5);
  memcpy(copy, llama31, n);
  memcpy(copy + n, "}}}}}", 5); /* junk after the object that must not be seen */
  rotary_hf_config *h = NULL;
  assert_int_equal(rotary_hf_config_parse(copy, n, &h, NULL, 0), ROTARY_OK);
  rotary_hf_config_destroy(h);
  free(copy);
  char path[] = "/tmp/rotary_hf_XXXXXX";
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, llama31, n), (ssize_t)n);
  close(fd);
  char err[256];
  h = NULL;
  assert_int_equal(rotary_hf_config_load(path, &h, err, sizeof err), ROTARY_OK);
  assert_int_equal(rotary_hf_config_rope(h)->scaling.type, ROTARY_SCALING_LLAMA3);
  rotary_hf_config_destroy(h);
  unlink(path);
  assert_int_equal(rotary_hf_config_load(path, &h, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, "cannot open"));
  assert_int_equal(rotary_hf_config_load(NULL, &h, err, sizeof err), ROTARY_ERR_NULL_POINTER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama2_default),        cmocka_unit_test(test_llama31_both_layouts),
      cmocka_unit_test(test_qwen_yarn_and_deepseek), cmocka_unit_test(test_phi3_longrope),
      cmocka_unit_test(test_partial_rotary),        cmocka_unit_test(test_other_families),
      cmocka_unit_test(test_errors_name_the_field), cmocka_unit_test(test_length_and_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
