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
#include <sys/stat.h>
#include <unistd.h>

#include "hf_parse.h"
#include "rotary.h"

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
  parse_bad("{" HEAD ",\"rope_parameters\":{\"rope_theta\":1e4,\"full_attention\":{\"rope_type\":\"default\"}}}",
            ROTARY_ERR_CONFIG, "rope_parameters.rope_theta: a flat parameter next to per-layer-type ones");
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
  assert_non_null(strstr(err, "No such file or directory"));
  assert_int_equal(rotary_hf_config_load(NULL, &h, err, sizeof err), ROTARY_ERR_NULL_POINTER);
}

/* Defect 6: which scaling keys transformers 5.24 requires, and what a JSON null means for each (it derives YaRN's
 * and LongRoPE's factor from null, never from an absent key). */
#define HEAD_D "\"hidden_size\":4096,\"num_attention_heads\":32,\"max_position_embeddings\":4096"
#define QWEN "\"hidden_size\":3584,\"num_attention_heads\":28,\"max_position_embeddings\":131072"
static void test_required_keys_and_nulls(void **state) {
  (void)state;
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"original_max_position_embeddings\":32768}}",
            ROTARY_ERR_CONFIG, "rope_scaling.factor: missing (required by \"yarn\"");
  parse_bad("{" QWEN ",\"rope_parameters\":{\"rope_type\":\"yarn\"}}", ROTARY_ERR_CONFIG,
            "rope_parameters.factor: missing (required by \"yarn\"");
  rotary_hf_config *h = parse_ok("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":null,"
                                 "\"original_max_position_embeddings\":32768}}");
  const rotary_config *c = rotary_hf_config_rope(h);
  assert_true(c->scaling.factor == 0.0); /* derived by the rope: 131072 / 32768 */
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(c, 0, &r), ROTARY_OK);
  assert_true(fabs(rotary_rope_attention_scaling(r) - (0.1 * log(4.0) + 1.0)) < 1e-15);
  rotary_rope_destroy(r);
  rotary_hf_config_destroy(h);
  parse_bad("{\"hidden_size\":3584,\"num_attention_heads\":28,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":null,"
            "\"original_max_position_embeddings\":32768}}", ROTARY_ERR_CONFIG, "no max_position_embeddings");
  /* an explicit 0 is not null: transformers would divide by it (factor) or zero every cos/sin (attention_factor) */
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":0}}", ROTARY_ERR_CONFIG,
            "rope_scaling.factor: 0");
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"attention_factor\":0}}", ROTARY_ERR_CONFIG,
            "rope_scaling.attention_factor: 0");
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":null}}",
            ROTARY_ERR_CONFIG, "rope_scaling.original_max_position_embeddings: null");
  parse_bad("{" QWEN ",\"original_max_position_embeddings\":null,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}",
            ROTARY_ERR_CONFIG, "original_max_position_embeddings: null");
  /* a top-level 0 is used (and refused), not skipped in favour of the scaling's value */
  parse_bad("{" QWEN ",\"original_max_position_embeddings\":0,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,"
            "\"original_max_position_embeddings\":32768}}", ROTARY_ERR_SCALING, "original_max_position_embeddings");
  /* YaRN's truncate: null is falsy in transformers (rope_parameters.get("truncate", True)) */
  h = parse_ok("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"truncate\":null}}");
  assert_int_equal(rotary_hf_config_rope(h)->scaling.truncate, 0);
  rotary_hf_config_destroy(h);
  h = parse_ok("{" QWEN ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4,\"beta_fast\":null,\"mscale\":null,"
               "\"attention_factor\":null}}");
  assert_int_equal(rotary_hf_config_rope(h)->scaling.truncate, 1);
  rotary_hf_config_destroy(h);
  /* linear, dynamic, llama3: the factors must be numbers */
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":null}}", ROTARY_ERR_CONFIG,
            "rope_scaling.factor: null (a number is required by \"linear\")");
  parse_bad("{" QWEN ",\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,\"low_freq_factor\":null,"
            "\"high_freq_factor\":4}}", ROTARY_ERR_CONFIG, "rope_scaling.low_freq_factor: null");
  parse_bad("{" QWEN ",\"rope_theta\":null}", ROTARY_ERR_CONFIG, "rope_theta: null");
  parse_bad("{" QWEN ",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":null}}", ROTARY_ERR_CONFIG,
            "rope_parameters.rope_theta: null");
  parse_bad("{" QWEN ",\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":null}}",
            ROTARY_ERR_CONFIG, "rope_parameters.partial_rotary_factor: null");
  h = parse_ok("{" QWEN ",\"partial_rotary_factor\":null}"); /* top level: as absent */
  assert_int_equal(rotary_hf_config_rope(h)->rotary_dim, 128);
  rotary_hf_config_destroy(h);
}

/* LongRoPE: short_factor and long_factor required; factor optional (absent or null derive it), 0 refused. */
static void test_longrope_keys(void **state) {
  (void)state;
  char json[2048], list[512];
  size_t n = 0;
  for (int i = 0; i < 8; i++) n += (size_t)snprintf(list + n, sizeof list - n, "%s%d", i ? "," : "", i + 1);
  static const char *extra[] = {"", ",\"factor\":null", ",\"factor\":32"};
  for (int k = 0; k < 3; k++) {
    snprintf(json, sizeof json,
             "{\"head_dim\":16,\"max_position_embeddings\":131072,\"original_max_position_embeddings\":4096,"
             "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[%s],\"long_factor\":[%s]%s}}",
             list, list, extra[k]);
    rotary_hf_config *h = parse_ok(json);
    rotary_rope *r = NULL;
    assert_int_equal(rotary_rope_create(rotary_hf_config_rope(h), 0, &r), ROTARY_OK);
    assert_true(fabs(rotary_rope_attention_scaling(r) - sqrt(1 + log(32.0) / log(4096.0))) < 1e-15);
    rotary_rope_destroy(r);
    rotary_hf_config_destroy(h);
  }
  snprintf(json, sizeof json, "{\"head_dim\":16,\"max_position_embeddings\":131072,\"rope_scaling\":{\"type\":"
           "\"longrope\",\"short_factor\":[%s],\"long_factor\":[%s],\"factor\":0}}", list, list);
  parse_bad(json, ROTARY_ERR_CONFIG, "rope_scaling.factor: 0");
  snprintf(json, sizeof json, "{\"head_dim\":16,\"max_position_embeddings\":131072,\"rope_scaling\":{\"type\":"
           "\"longrope\",\"short_factor\":[%s],\"long_factor\":null}}", list);
  parse_bad(json, ROTARY_ERR_CONFIG, "rope_scaling.long_factor: null");
}

/* Defect 7: a key given twice counts with its last value, as Python's json (and so transformers) reads it. */
static void test_duplicate_keys_last_wins(void **state) {
  (void)state;
  rotary_hf_config *h = parse_ok("{" HEAD_D ",\"rope_theta\":10000,\"head_dim\":64,\"rope_theta\":500000,"
                                 "\"head_dim\":128}");
  assert_true(rotary_hf_config_rope(h)->base == 500000.0);
  assert_int_equal(rotary_hf_config_rope(h)->head_dim, 128);
  rotary_hf_config_destroy(h);
  h = parse_ok("{" HEAD_D ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2,\"factor\":8}}");
  assert_true(rotary_hf_config_rope(h)->scaling.factor == 8.0);
  rotary_hf_config_destroy(h);
  h = parse_ok("{" HEAD_D ",\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":8,\"rope_theta\":1,"
               "\"rope_type\":\"llama3\",\"low_freq_factor\":1,\"high_freq_factor\":4,\"rope_theta\":500000}}");
  assert_int_equal(rotary_hf_config_rope(h)->scaling.type, ROTARY_SCALING_LLAMA3);
  assert_true(rotary_hf_config_rope(h)->base == 500000.0);
  rotary_hf_config_destroy(h);
  h = parse_ok("{" HEAD_D ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2},\"rope_scaling\":null}");
  assert_int_equal(rotary_hf_config_rope(h)->scaling.type, ROTARY_SCALING_NONE);
  rotary_hf_config_destroy(h);
  /* strings cJSON would cut short (an escaped or raw NUL, raw control characters: Python refuses the latter),
   * and text after the object (Python: "Extra data") are refused rather than read differently */
  parse_bad("{" HEAD_D ",\"rope_theta\\u0000x\":5}", ROTARY_ERR_CONFIG, "\\u0000");
  parse_bad("{" HEAD_D ",\"model_type\":\"a\tb\"}", ROTARY_ERR_CONFIG, "control character");
  parse_bad("{" HEAD_D "} {}", ROTARY_ERR_CONFIG, "after the JSON object");
  h = parse_ok("{" HEAD_D ",\"model_type\":\"a\\\\u0000\\\"\"} \r\n\t");
  assert_string_equal(rotary_hf_config_model_type(h), "a\\u0000\"");
  rotary_hf_config_destroy(h);
}

/* Defect 10: dimensions are validated, and named, before anything is allocated from them. */
static void test_dims_before_allocation(void **state) {
  (void)state;
  parse_bad("{\"head_dim\":9007199254740992,\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1],"
            "\"long_factor\":[1]}}", ROTARY_ERR_CONFIG, "head_dim: expected an integer >= 0 below 2^53");
  parse_bad("{\"head_dim\":4503599627370496,\"max_position_embeddings\":8,\"rope_scaling\":{\"type\":\"longrope\","
            "\"short_factor\":[1],\"long_factor\":[1]}}", ROTARY_ERR_HEAD_DIM,
            "head_dim: 4503599627370496 is above ROTARY_MAX_HEAD_DIM (65536)");
  parse_bad("{\"head_dim\":134217728,\"max_position_embeddings\":8,\"rope_scaling\":{\"type\":\"longrope\","
            "\"short_factor\":[1],\"long_factor\":[1]}}", ROTARY_ERR_HEAD_DIM, "head_dim: 134217728 is above");
  parse_bad("{\"hidden_size\":1099511627776,\"num_attention_heads\":2}", ROTARY_ERR_HEAD_DIM,
            "hidden_size / num_attention_heads: gives head_dim 549755813888, above ROTARY_MAX_HEAD_DIM (65536)");
  parse_bad("{\"model_type\":\"deepseek_v3\",\"head_dim\":192,\"qk_rope_head_dim\":131072}", ROTARY_ERR_HEAD_DIM,
            "qk_rope_head_dim: 131072 is above ROTARY_MAX_HEAD_DIM (65536)");
  parse_bad("{\"head_dim\":128,\"max_position_embeddings\":8,\"rope_scaling\":{\"type\":\"longrope\","
            "\"short_factor\":[1],\"long_factor\":[1]}}", ROTARY_ERR_CONFIG,
            "rope_scaling.short_factor: has 1 values, rotary_dim / 2 is 64");
}

/* The loader reads regular files only: a FIFO or a device is refused at once (it would block or never end), a
 * file above 64 MiB too; system errors come with their text. */
static void test_load_refuses_non_files(void **state) {
  (void)state;
  char dir[] = "/tmp/rotary_hf_dir_XXXXXX", path[256], err[256];
  assert_non_null(mkdtemp(dir));
  rotary_hf_config *h = (rotary_hf_config *)(void *)&h;
  alarm(20); /* a blocking open or an endless read would hang here: let SIGALRM end the test instead */
  snprintf(path, sizeof path, "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  assert_int_equal(rotary_hf_config_load(path, &h, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, "fifo: not a regular file"));
  unlink(path);
  assert_int_equal(rotary_hf_config_load("/dev/zero", &h, err, sizeof err), ROTARY_ERR_IO);
  assert_string_equal(err, "/dev/zero: not a regular file");
  alarm(0);
  assert_int_equal(rotary_hf_config_load(dir, &h, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, ": Is a directory"));
  snprintf(path, sizeof path, "%s/missing.json", dir);
  assert_int_equal(rotary_hf_config_load(path, &h, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, "missing.json: No such file or directory"));
  snprintf(path, sizeof path, "%s/big.json", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), (off_t)(64 << 20) + 1), 0); /* sparse: costs no disk */
  fclose(f);
  assert_int_equal(rotary_hf_config_load(path, &h, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, "big.json: larger than 64 MiB"));
  unlink(path);
  assert_ptr_equal(h, (rotary_hf_config *)(void *)&h);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama2_default),        cmocka_unit_test(test_llama31_both_layouts),
      cmocka_unit_test(test_qwen_yarn_and_deepseek), cmocka_unit_test(test_phi3_longrope),
      cmocka_unit_test(test_partial_rotary),        cmocka_unit_test(test_other_families),
      cmocka_unit_test(test_errors_name_the_field), cmocka_unit_test(test_length_and_files),
      cmocka_unit_test(test_required_keys_and_nulls), cmocka_unit_test(test_longrope_keys),
      cmocka_unit_test(test_duplicate_keys_last_wins), cmocka_unit_test(test_dims_before_allocation),
      cmocka_unit_test(test_load_refuses_non_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
