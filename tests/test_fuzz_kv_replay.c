/* test_fuzz_kv_replay.c: replays tests/fuzz/corpus_kv_write/ and pseudo-random inputs through the fuzz_kv_write target. */
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
#include "fuzz/fuzz_kv_write.c"
#include "replay.h"

static void replay_file(const char *name, const uint8_t *data, size_t size, void *arg) {
  (void)arg;
  const unsigned long before = kv_fuzz_failures;
  LLVMFuzzerTestOneInput(data, size);
  if (kv_fuzz_failures != before) printf("corpus file %s failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  const int files = replay_corpus("ROTARY_FUZZ_KV_CORPUS", "corpus_kv_write", replay_file, NULL, dir, sizeof dir);
  if (files < 0) fail_msg("cannot open the corpus directory %s", dir);
  printf("corpus: %d files from %s; written %lu, refused %lu; re-rotations %lu (%lu refused)\n", files, dir,
         kv_fuzz_ok, kv_fuzz_refused, kv_fuzz_rerotated, kv_fuzz_rerotate_refused);
  assert_true(files >= 8);
  assert_int_equal(kv_fuzz_failures, 0);
}

/* Random bytes, each input 8..127 long; half of them with the hostile bytes calmed so that many calls succeed. */
static void test_replay_random(void **state) {
  (void)state;
  const int n = getenv("ROTARY_TEST_QUICK") ? 400 : 4000;
  uint64_t seed = 20261127;
  uint8_t buf[128];
  const unsigned long ok_before = kv_fuzz_ok, refused_before = kv_fuzz_refused, rr_before = kv_fuzz_rerotated;
  const unsigned long rr_refused_before = kv_fuzz_rerotate_refused;
  for (int i = 0; i < n; i++) {
    const size_t size = 8 + replay_splitmix(&seed) % (sizeof(buf) - 8);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)replay_splitmix(&seed);
    if (i % 2) /* calm: valid enums, in-range slots and pages, plain scales, no hostile change */
      for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)(buf[j] & (j < 5 ? 0x77 : 0x3f));
    const unsigned long before = kv_fuzz_failures;
    LLVMFuzzerTestOneInput(buf, size);
    if (kv_fuzz_failures != before) {
      printf("random input %d failed:", i);
      for (size_t j = 0; j < size; j++) printf(" %02x", buf[j]);
      printf("\n");
    }
  }
  printf("random: %d inputs; written %lu, refused %lu; re-rotations %lu (%lu refused)\n", n, kv_fuzz_ok - ok_before,
         kv_fuzz_refused - refused_before, kv_fuzz_rerotated - rr_before, kv_fuzz_rerotate_refused - rr_refused_before);
  assert_int_equal(kv_fuzz_failures, 0);
  assert_true(kv_fuzz_ok - ok_before > (unsigned long)n / 20);
  assert_true(kv_fuzz_refused - refused_before > (unsigned long)n / 20);
  assert_true(kv_fuzz_rerotated - rr_before > (unsigned long)n / 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay_corpus),
      cmocka_unit_test(test_replay_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
