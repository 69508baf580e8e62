/* fuzz_hf_config.c: libFuzzer target: raw bytes as a config.json for rotary_hf_config_parse; an accepted config
 * must make a working rope, a refused one must leave *out alone and say why. */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus_hf_config && cp tests/fuzz/corpus_hf_config/* build-fuzz/corpus_hf_config/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -DCJSON_HIDE_SYMBOLS -Iinclude $(find src -type d -printf "-I%p ") -Ithird_party/cjson -Ithird_party/cjson/cjson tests/fuzz/fuzz_hf_config.c third_party/cjson/cJSON.c $(find src -name "*.c") -lm -lpthread -o build-fuzz/fuzz_hf_config
//   build-fuzz/fuzz_hf_config -max_total_time=60 -max_len=4096 -dict=tests/fuzz/fuzz_hf_config.dict -artifact_prefix=build-fuzz/hf- build-fuzz/corpus_hf_config
// tests/test_fuzz_hf_replay.c includes this file and replays tests/fuzz/corpus_hf_config/ (and cut and flipped
// variants of each file) in ctest.
/*
 * The checks. On error: the status is one the header lists for the parser (CONFIG, SCALING, ROTARY_DIM, HEAD_DIM,
 * FREQUENCY, OUT_OF_MEMORY), the message is non-empty and NUL-terminated inside the buffer, the bytes after it
 * are untouched, *out is untouched; a 1-byte buffer gets just the NUL and a NULL buffer is allowed, with the same
 * status. On success: an empty message; the config passes rotary_config_check; the counts and names are sane
 * (kv_heads divides heads, rope_type is a known family); a second parse gives the same config; a rope with a
 * 16-position table is created, its cos/sin rows are finite, and deriving it to a longer sequence succeeds or
 * fails exactly as rotary_config_check says for that seq_len; and the same text with every top-level key given once
 * more in front, with a decoy value, parses to the same config (a key given twice counts with its last value, as in
 * Python's json). Every rope of a per-layer config (rotary_hf_config_rope_at) passes the same checks, its name is
 * non-empty and unique, and rotary_hf_config_layer_rope gives OK with an index below the rope count, or LAYER, for
 * the first layers, and LAYER at the layer count.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rotary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long fuzz_failures, fuzz_ok, fuzz_errors, fuzz_status[32];

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_hf_config: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

#define ERR_SIZE 200
#define CANARY 0x5a

static int parser_status(rotary_status st) {
  return st == ROTARY_ERR_CONFIG || st == ROTARY_ERR_SCALING || st == ROTARY_ERR_ROTARY_DIM ||
         st == ROTARY_ERR_HEAD_DIM || st == ROTARY_ERR_FREQUENCY || st == ROTARY_ERR_OUT_OF_MEMORY ||
         st == ROTARY_ERR_STREAMS;
}

static void check_refusal(const char *json, size_t size, rotary_status st, const char *err) {
  const char *nul = memchr(err, '\0', ERR_SIZE);
  if (!parser_status(st)) fuzz_fail("undocumented status %d", (int)st);
  if (!nul) fuzz_fail("status %d: message not terminated", (int)st);
  if (nul == err) fuzz_fail("status %d: empty message", (int)st);
  for (const char *c = nul ? nul + 1 : err + ERR_SIZE; c < err + ERR_SIZE; c++)
    if (*c != CANARY) fuzz_fail("status %d: byte %zu past the message written", (int)st, (size_t)(c - err));
  char one[2] = {CANARY, CANARY};
  rotary_hf_config *h = NULL;
  const rotary_status again = rotary_hf_config_parse(json, size, &h, one, 1);
  if (again != st || one[0] != '\0' || one[1] != CANARY || h)
    fuzz_fail("status %d, then %d with a 1-byte buffer (%02x %02x)", (int)st, (int)again, one[0], one[1]);
  if (rotary_hf_config_parse(json, size, &h, NULL, 0) != st || h) fuzz_fail("status %d: not so without a buffer", (int)st);
}

static int same_config(const rotary_config *a, const rotary_config *b) {
  const rotary_scaling *x = &a->scaling, *y = &b->scaling;
  if (a->head_dim != b->head_dim || a->rotary_dim != b->rotary_dim || a->pairing != b->pairing ||
      memcmp(&a->base, &b->base, sizeof a->base) || x->type != y->type || memcmp(&x->factor, &y->factor, sizeof x->factor) ||
      x->original_max_position_embeddings != y->original_max_position_embeddings || x->truncate != y->truncate ||
      a->streams.layout != b->streams.layout || a->streams.n_streams != b->streams.n_streams ||
      memcmp(a->streams.sections, b->streams.sections, sizeof a->streams.sections))
    return 0;
  if (x->type != ROTARY_SCALING_LONGROPE) return 1;
  const size_t half = a->rotary_dim / 2;
  return !memcmp(x->short_factor, y->short_factor, half * sizeof(double)) &&
         !memcmp(x->long_factor, y->long_factor, half * sizeof(double));
}

static void check_rope(const rotary_config *c) {
  rotary_rope *r = NULL;
  rotary_status st = rotary_rope_create(c, 16, &r);
  if (st == ROTARY_ERR_OUT_OF_MEMORY) return;
  if (st != ROTARY_OK) {
    fuzz_fail("rotary_rope_create refused a parsed config: %s", rotary_status_string(st));
    return;
  }
  const size_t half = c->rotary_dim / 2;
  float *cs = malloc(2 * 16 * half * sizeof(float));
  const int64_t pos[4] = {0, 1, 7, 15};
  if (cs && rotary_rope_cos_sin(r, pos, 4, cs, cs + 4 * half) == ROTARY_OK) {
    for (size_t i = 0; i < 8 * half; i++)
      if (!isfinite(cs[i])) {
        fuzz_fail("cos/sin value %zu is %g", i, (double)cs[i]);
        break;
      }
  }
  free(cs);
  /* a longer sequence: derive agrees with rotary_config_check at that seq_len */
  rotary_config longer = *c;
  longer.seq_len = 2 * (c->scaling.original_max_position_embeddings + c->scaling.max_position_embeddings) + 1;
  const rotary_status want = rotary_config_check(&longer, NULL);
  rotary_rope *d = NULL;
  st = rotary_rope_derive(r, longer.seq_len, 0, &d);
  if (st != want && st != ROTARY_ERR_OUT_OF_MEMORY)
    fuzz_fail("derive to seq_len %zu gives %d, rotary_config_check %d", longer.seq_len, (int)st, (int)want);
  rotary_rope_destroy(d);
  rotary_rope_destroy(r);
}

/* "{" + "key":decoy, for each top-level key of the accepted text + the text after its "{". */
static void check_duplicates(const char *json, size_t size, const rotary_config *c) {
  static const char *decoys[] = {"null", "-1", "\"decoy\"", "{\"type\":\"quantum\"}", "[1]", "1e999"};
  size_t start = 0;
  while (start < size && (json[start] == ' ' || json[start] == '\t' || json[start] == '\n' || json[start] == '\r'))
    start++;
  cJSON *root = cJSON_ParseWithLength(json, size);
  if (!root || start >= size || json[start] != '{') {
    cJSON_Delete(root);
    return;
  }
  const char *decoy = decoys[size % (sizeof decoys / sizeof decoys[0])];
  size_t cap = size + 16, len = 1;
  for (const cJSON *m = root->child; m; m = m->next) cap += 2 * strlen(m->string) + 16 + strlen(decoy);
  char *text = malloc(cap);
  for (const cJSON *m = root->child; text && m; m = m->next) {
    cJSON *key = cJSON_CreateString(m->string);
    char *quoted = key ? cJSON_PrintUnformatted(key) : NULL;
    if (quoted) len += (size_t)snprintf(text + len, cap - len, "%s:%s,", quoted, decoy);
    cJSON_free(quoted);
    cJSON_Delete(key);
  }
  if (text && root->child) {
    text[0] = '{';
    memcpy(text + len, json + start + 1, size - start - 1);
    len += size - start - 1;
    rotary_hf_config *h = NULL;
    char err[ERR_SIZE];
    const rotary_status st = rotary_hf_config_parse(text, len, &h, err, sizeof err);
    if (st != ROTARY_OK && st != ROTARY_ERR_OUT_OF_MEMORY)
      fuzz_fail("with earlier duplicate keys (decoy %s): status %d, %s", decoy, (int)st, err);
    else if (st == ROTARY_OK && !same_config(c, rotary_hf_config_rope(h)))
      fuzz_fail("with earlier duplicate keys (decoy %s): a different config", decoy);
    rotary_hf_config_destroy(h);
  }
  free(text);
  cJSON_Delete(root);
}

/* Ropes 1.. of a per-layer config, their names, and the layer map. */
static void check_layers(const rotary_hf_config *h) {
  const size_t n = rotary_hf_config_rope_count(h), layers = rotary_hf_config_layers(h);
  if (n < 1) fuzz_fail("an accepted config with %zu ropes", n);
  if (rotary_hf_config_rope_at(h, 0) != rotary_hf_config_rope(h)) fuzz_fail("rope 0 is not rotary_hf_config_rope");
  if (rotary_hf_config_rope_at(h, n) || rotary_hf_config_rope_name(h, n)[0]) fuzz_fail("a rope past the count");
  for (size_t i = 0; i < n; i++) {
    const char *name = rotary_hf_config_rope_name(h, i);
    if (!name[0]) fuzz_fail("rope %zu has no name", i);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(name, rotary_hf_config_rope_name(h, j))) fuzz_fail("ropes %zu and %zu are both \"%.40s\"", j, i, name);
    const rotary_config *c = rotary_hf_config_rope_at(h, i);
    if (!c) {
      fuzz_fail("rope %zu is NULL", i);
      continue;
    }
    const rotary_status st = rotary_config_check(c, NULL);
    if (st != ROTARY_OK) fuzz_fail("rope %zu fails rotary_config_check: %d", i, (int)st);
    else if (i > 0) check_rope(c);
  }
  const size_t probe = layers < 64 ? layers : 64;
  for (size_t layer = 0; layer < probe; layer++) {
    size_t idx = n;
    const rotary_status st = rotary_hf_config_layer_rope(h, layer, &idx);
    if (!(st == ROTARY_OK && idx < n) && st != ROTARY_ERR_LAYER)
      fuzz_fail("layer %zu: status %d, rope %zu of %zu", layer, (int)st, idx, n);
  }
  size_t idx = 0;
  const rotary_status past = rotary_hf_config_layer_rope(h, layers, &idx);
  if (layers && past != ROTARY_ERR_LAYER) fuzz_fail("layer %zu of %zu: status %d, not LAYER", layers, layers, (int)past);
  if (!layers && n > 1 && past != ROTARY_ERR_LAYER) fuzz_fail("unknown layers, %zu ropes: status %d", n, (int)past);
}

static void check_accepted(const char *json, size_t size, rotary_hf_config *h, const char *err) {
  static const char *families[] = {"default", "linear", "dynamic", "ntk", "yarn", "llama3", "longrope"};
  if (err[0] != '\0') fuzz_fail("success with a message: %.100s", err);
  const rotary_config *c = rotary_hf_config_rope(h);
  const char *field = NULL;
  const rotary_status st = rotary_config_check(c, &field);
  if (st != ROTARY_OK) fuzz_fail("parsed config fails rotary_config_check: %d at %s", (int)st, field ? field : "?");
  const size_t heads = rotary_hf_config_heads(h), kv = rotary_hf_config_kv_heads(h);
  if (heads && (!kv || heads % kv)) fuzz_fail("kv_heads %zu does not divide heads %zu", kv, heads);
  const char *type = rotary_hf_config_rope_type(h);
  size_t k = 0;
  while (k < sizeof families / sizeof families[0] && strcmp(families[k], type)) k++;
  if (k == sizeof families / sizeof families[0]) fuzz_fail("unknown rope_type \"%.40s\" accepted", type);
  if (strlen(rotary_hf_config_model_type(h)) >= 64) fuzz_fail("model_type too long");
  rotary_hf_config *again = NULL;
  if (rotary_hf_config_parse(json, size, &again, NULL, 0) != ROTARY_OK ||
      !same_config(c, rotary_hf_config_rope(again)))
    fuzz_fail("a second parse differs");
  rotary_hf_config_destroy(again);
  check_duplicates(json, size, c);
  if (st == ROTARY_OK) check_rope(c);
  check_layers(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *json = (const char *)data;
  char err[ERR_SIZE];
  memset(err, CANARY, sizeof err);
  rotary_hf_config *sentinel = (rotary_hf_config *)(void *)&sentinel, *h = sentinel;
  const rotary_status st = rotary_hf_config_parse(json, size, &h, err, sizeof err);
  if ((unsigned)st < 32) fuzz_status[st]++;
  if (st != ROTARY_OK) {
    fuzz_errors++;
    if (h != sentinel) fuzz_fail("status %d: *out changed", (int)st);
    check_refusal(json, size, st, err);
    return 0;
  }
  fuzz_ok++;
  if (!h || h == sentinel) {
    fuzz_fail("ROTARY_OK without a config");
    return 0;
  }
  check_accepted(json, size, h, err);
  rotary_hf_config_destroy(h);
  return 0;
}
