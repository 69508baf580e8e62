/* test_fuzz_replay.c: replays tests/fuzz/corpus/ and pseudo-random inputs through the fuzz_apply target. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NO_ABORT /* a failed check is counted, not abort()ed */
#include "fuzz/fuzz_apply.c"

/* The corpus directory: $ROTARY_FUZZ_CORPUS, else fuzz/corpus beside this source file. */
static void corpus_dir(char *buf, size_t size) {
  const char *env = getenv("ROTARY_FUZZ_CORPUS");
  if (env && *env) {
    snprintf(buf, size, "%s", env);
    return;
  }
  const char *file = __FILE__, *slash = strrchr(file, '/');
  int dir_len = slash ? (int)(slash - file) : 1;
  snprintf(buf, size, "%.*s/fuzz/corpus", dir_len, slash ? file : ".");
}

static int read_file(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *bigger = realloc(buf, cap *= 2);
      if (!bigger) free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  *data = buf, *size = n;
  return buf != NULL;
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  corpus_dir(dir, sizeof(dir));
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open the corpus directory %s", dir);
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    uint8_t *data;
    size_t size;
    if (!read_file(path, &data, &size)) continue;
    unsigned long before = fuzz_failures;
    LLVMFuzzerTestOneInput(data, size);
    if (fuzz_failures != before) printf("corpus file %s failed\n", e->d_name);
    free(data);
    files++;
  }
  closedir(d);
  printf("corpus: %d files from %s\n", files, dir);
  assert_true(files >= 10);
  assert_int_equal(fuzz_failures, 0);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Random bytes, each input 8..511 long; a few bytes nudged towards the common, valid choices. */
static void test_replay_random(void **state) {
  (void)state;
  int n = getenv("ROTARY_TEST_QUICK") ? 300 : 4000;
  uint64_t seed = 20240601;
  uint8_t buf[512];
  for (int i = 0; i < n; i++) {
    size_t size = 8 + splitmix(&seed) % (sizeof(buf) - 8);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)splitmix(&seed);
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
