/* test_fuzz_replay.c: replays tests/fuzz/corpus/ and pseudo-random inputs through the fuzz_apply target. */
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
#include "fuzz/fuzz_apply.c"
#include "replay.h"

static void replay_file(const char *name, const uint8_t *data, size_t size, void *arg) {
  (void)arg;
  const unsigned long before = fuzz_failures;
  LLVMFuzzerTestOneInput(data, size);
  if (fuzz_failures != before) printf("corpus file %s failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  const int files = replay_corpus("ROTARY_FUZZ_CORPUS", "corpus", replay_file, NULL, dir, sizeof dir);
  if (files < 0) fail_msg("cannot open the corpus directory %s", dir);
  printf("corpus: %d files from %s\n", files, dir);
  assert_true(files >= 10);
  assert_int_equal(fuzz_failures, 0);
}

/* Random bytes, each input 8..511 long; a few bytes nudged towards the common, valid choices. */
static void test_replay_random(void **state) {
  (void)state;
  int n = getenv("ROTARY_TEST_QUICK") ? 300 : 4000;
  uint64_t seed = 20240601;
  uint8_t buf[512];
  for (int i = 0; i < n; i++) {
    size_t size = 8 + replay_splitmix(&seed) % (sizeof(buf) - 8);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)replay_splitmix(&seed);
    if (i % 2) { /* half the inputs: a valid rope, so that many calls succeed */
      buf[0] %= 32, buf[1] %= 200, buf[2] &= 0x21, buf[3] %= 200, buf[4] %= 200;
    }
    if (i % 8 == 1) { /* no inv_freq bytes, so byte 7 is seq_len: 100 tokens, 4 threads, desc bytes plain */
      buf[2] &= 0x01, buf[7] = 252, buf[12] = 7, buf[14] = 0, buf[15] %= 2, buf[16] = 0;
    }
    unsigned long before = fuzz_failures;
    LLVMFuzzerTestOneInput(buf, size);
    if (fuzz_failures != before) {
      printf("random input %d failed:", i);
      for (size_t j = 0; j < size; j++) printf(" %02x", buf[j]);
      printf("\n");
    }
  }
  printf("rope errors %lu, apply ok %lu, apply errors %lu, skipped %lu; apply calls by status:", fuzz_rope_errors,
         fuzz_apply_ok, fuzz_apply_errors, fuzz_skipped);
  for (int s = 0; s < 16; s++) printf(" %lu", fuzz_apply_status[s]);
  printf("\n");
  assert_int_equal(fuzz_failures, 0);
  assert_true(fuzz_apply_ok > (unsigned long)n / 20);
  assert_true(fuzz_apply_errors > (unsigned long)n / 20);
  assert_true(fuzz_rope_errors > 0);
}

static int teardown(void **state) {
  (void)state;
  fuzz_apply_cleanup();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay_corpus),
      cmocka_unit_test(test_replay_random),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}
