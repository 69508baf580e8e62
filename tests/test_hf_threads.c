/* test_hf_threads.c: config.json texts parsed from several threads at once (ThreadSanitizer runs it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rotary.h"

enum { THREADS = 4, ROUNDS = 200 };

/* Good and bad texts alternate: the bundled cJSON writes its error record on every parse, failed or not. */
static const char *const texts[] = {
    "{\"head_dim\": 128, \"rope_theta\": 500000.0, \"max_position_embeddings\": 8192}",
    "{\"head_dim\": 128, \"rope_theta\": ",
    "{\"hidden_size\": 4096, \"num_attention_heads\": 32, \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 4}}",
    "[1, 2",
    "{\"model_type\": \"gemma3\", \"text_config\": {\"model_type\": \"gemma3_text\", \"num_hidden_layers\": 34, "
    "\"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"linear\"}}}",
    "{\"hidden_size\": 4096, \"num_attention_heads\": 32, \"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [16, 24]}}",
};
static const rotary_status expected[] = {ROTARY_OK, ROTARY_ERR_CONFIG, ROTARY_OK,
                                         ROTARY_ERR_CONFIG, ROTARY_OK, ROTARY_ERR_CONFIG};
enum { TEXTS = sizeof texts / sizeof texts[0] };

static void *parse_many(void *arg) {
  const size_t first = (size_t)(uintptr_t)arg;
  size_t wrong = 0;
  for (size_t r = 0; r < ROUNDS; r++) {
    const size_t i = (first + r) % TEXTS;
    rotary_hf_config *h = NULL;
    char err[256];
    const rotary_status st = rotary_hf_config_parse(texts[i], strlen(texts[i]), &h, err, sizeof err);
    if (st != expected[i] || (st == ROTARY_OK) != (h != NULL)) wrong++;
    rotary_hf_config_destroy(h);
  }
  return (void *)(uintptr_t)wrong;
}

static void test_parallel_parses(void **state) {
  (void)state;
  pthread_t t[THREADS];
  for (size_t i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, parse_many, (void *)(uintptr_t)i), 0);
  size_t wrong = 0;
  for (size_t i = 0; i < THREADS; i++) {
    void *ret;
    assert_int_equal(pthread_join(t[i], &ret), 0);
    wrong += (size_t)(uintptr_t)ret;
  }
  assert_int_equal(wrong, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parallel_parses)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
