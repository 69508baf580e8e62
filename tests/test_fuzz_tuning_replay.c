/* test_fuzz_tuning_replay.c: replays tests/fuzz/corpus_tuning_file/ through the fuzz_tuning_file target, each file
 * also cut short and with bytes flipped, so that the tuning-file reader's error paths run in every build. */
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
#include "fuzz/fuzz_tuning_file.c"
#include "replay.h"

/* The file as it is, then (in a copy, so that nothing reads past the cut) cut at a few points and with a few
 * bytes replaced by JSON-significant ones. */
static void replay_one(const char *name, const uint8_t *data, size_t size, void *arg) {
  const int variants = *(const int *)arg;
  unsigned long before = fuzz_failures;
  replay_variants(data, size, variants, 7, "{}[]\":,0123456789.-e\\ntfu ", LLVMFuzzerTestOneInput);
  if (fuzz_failures != before) printf("corpus file %s (or a variant) failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  int variants = getenv("ROTARY_TEST_QUICK") ? 8 : 64;
  const int files =
      replay_corpus("ROTARY_FUZZ_TUNING_CORPUS", "corpus_tuning_file", replay_one, &variants, dir, sizeof dir);
  if (files < 0) fail_msg("cannot open the corpus directory %s", dir);
  printf("corpus: %d files from %s; loaded %lu, refused %lu; count by status code:", files, dir, fuzz_ok,
         fuzz_errors);
  for (int s = 0; s < 32; s++)
    if (fuzz_status[s]) printf(" %d:%lu", s, fuzz_status[s]);
  printf("\n");
  fz_cleanup();
  assert_true(files >= 20);
  assert_true(fuzz_ok >= 10 && fuzz_errors >= 10);
  assert_int_equal(fuzz_failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_replay_corpus)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
