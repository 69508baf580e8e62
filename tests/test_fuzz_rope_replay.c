/* test_fuzz_rope_replay.c: replays tests/fuzz/corpus_rope/ and pseudo-random inputs through the fuzz_rope target. */
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
#include "fuzz/fuzz_rope.c"
#include "replay.h"

static void replay_file(const char *name, const uint8_t *data, size_t size, void *arg) {
  (void)arg;
  const unsigned long before = rope_fuzz_failures;
  LLVMFuzzerTestOneInput(data, size);
  if (rope_fuzz_failures != before) printf("corpus file %s failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  const int files = replay_corpus("ROTARY_FUZZ_ROPE_CORPUS", "corpus_rope", replay_file, NULL, dir, sizeof dir);
  if (files < 0) fail_msg("cannot open the corpus directory %s", dir);
  printf("corpus: %d files from %s; ropes made %lu, refused %lu, derive checks %lu\n", files, dir, rope_fuzz_ok,
         rope_fuzz_refused, rope_fuzz_derived);
  assert_true(files >= 10);
  assert_int_equal(rope_fuzz_failures, 0);
}

/* Random bytes, each input 4..255 long; half of them nudged towards plain values so that many ropes are made. */
static void test_replay_random(void **state) {
  (void)state;
  const int n = getenv("ROTARY_TEST_QUICK") ? 300 : 3000;
  uint64_t seed = 20261127;
  uint8_t buf[256];
  const unsigned long ok_before = rope_fuzz_ok, refused_before = rope_fuzz_refused;
  for (int i = 0; i < n; i++) {
    const size_t size = 4 + replay_splitmix(&seed) % (sizeof(buf) - 4);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)replay_splitmix(&seed);
    if (i % 2) /* plain carving: most doubles and sizes take their plain values */
      for (size_t j = 2; j < size; j++) buf[j] = j % 3 ? (uint8_t)(buf[j] & 0x7f) : buf[j];
    const unsigned long before = rope_fuzz_failures;
    LLVMFuzzerTestOneInput(buf, size);
    if (rope_fuzz_failures != before) {
      printf("random input %d failed:", i);
      for (size_t j = 0; j < size; j++) printf(" %02x", buf[j]);
      printf("\n");
    }
  }
  printf("random: %d inputs; ropes made %lu, refused %lu\n", n, rope_fuzz_ok - ok_before,
         rope_fuzz_refused - refused_before);
  assert_int_equal(rope_fuzz_failures, 0);
  assert_true(rope_fuzz_ok - ok_before > (unsigned long)n / 20);
  assert_true(rope_fuzz_refused - refused_before > (unsigned long)n / 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay_corpus),
      cmocka_unit_test(test_replay_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
