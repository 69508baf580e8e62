/* test_fuzz_attention_replay.c: replays tests/fuzz/corpus_attention/ and pseudo-random inputs through fuzz_attention. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NO_ABORT /* a failed check is counted, not abort()ed */
#include "fuzz/fuzz_attention.c"
#include "replay.h"

static void replay_file(const char *name, const uint8_t *data, size_t size, void *arg) {
  (void)arg;
  const unsigned long before = at_fuzz_failures;
  LLVMFuzzerTestOneInput(data, size);
  if (at_fuzz_failures != before) printf("corpus file %s failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  const int files = replay_corpus("ROTARY_FUZZ_ATTENTION_CORPUS", "corpus_attention", replay_file, NULL, dir, sizeof dir);
  if (files < 0) fail_msg("cannot open the corpus directory %s", dir);
  printf("corpus: %d files from %s; ran %lu, refused %lu\n", files, dir, at_fuzz_ok, at_fuzz_refused);
  assert_true(files >= 8);
  assert_int_equal(at_fuzz_failures, 0);
}

/* Random bytes, each input 16..159 long; half of them calmed (valid enums, in-range tables, plain scales, no hostile
 * change) so that many calls succeed. */
static void test_replay_random(void **state) {
  (void)state;
  const int n = getenv("ROTARY_TEST_QUICK") ? 400 : 4000;
  uint64_t seed = 20261128;
  uint8_t buf[160];
  const unsigned long ok_before = at_fuzz_ok, refused_before = at_fuzz_refused;
  for (int i = 0; i < n; i++) {
    const size_t size = 16 + replay_splitmix(&seed) % (sizeof(buf) - 16);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)replay_splitmix(&seed);
    if (i % 2)
      for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)(buf[j] & (j < 6 ? 0x73 : 0x3f));
    const unsigned long before = at_fuzz_failures;
    LLVMFuzzerTestOneInput(buf, size);
    if (at_fuzz_failures != before) {
      printf("random input %d failed:", i);
      for (size_t j = 0; j < size; j++) printf(" %02x", buf[j]);
      printf("\n");
    }
  }
  printf("random: %d inputs; ran %lu, refused %lu\n", n, at_fuzz_ok - ok_before, at_fuzz_refused - refused_before);
  assert_int_equal(at_fuzz_failures, 0);
  assert_true(at_fuzz_ok - ok_before > (unsigned long)n / 20);
  assert_true(at_fuzz_refused - refused_before > (unsigned long)n / 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay_corpus),
      cmocka_unit_test(test_replay_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
