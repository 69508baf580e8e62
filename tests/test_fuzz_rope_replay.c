/* test_fuzz_rope_replay.c: replays tests/fuzz/corpus_rope/ and pseudo-random inputs through the fuzz_rope target. */
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
#include "fuzz/fuzz_rope.c"

/* The corpus directory: $ROTARY_FUZZ_ROPE_CORPUS, else fuzz/corpus_rope beside this source file. */
static void corpus_dir(char *buf, size_t size) {
  const char *env = getenv("ROTARY_FUZZ_ROPE_CORPUS");
  if (env && *env) {
    snprintf(buf, size, "%s", env);
    return;
  }
  const char *file = __FILE__, *slash = strrchr(file, '/');
  int dir_len = slash ? (int)(slash - file) : 1;
  snprintf(buf, size, "%.*s/fuzz/corpus_rope", dir_len, slash ? file : ".");
}

static int read_all(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t cap = 4096, n = 0, got;
  uint8_t *buf = malloc(cap);
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
    if (!read_all(path, &data, &size)) continue;
    const unsigned long before = rope_fuzz_failures;
    LLVMFuzzerTestOneInput(data, size);
    if (rope_fuzz_failures != before) printf("corpus file %s failed\n", e->d_name);
    free(data);
    files++;
  }
  closedir(d);
  printf("corpus: %d files from %s; ropes made %lu, refused %lu, derive checks %lu\n", files, dir, rope_fuzz_ok,
         rope_fuzz_refused, rope_fuzz_derived);
  assert_true(files >= 10);
  assert_int_equal(rope_fuzz_failures, 0);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Random bytes, each input 4..255 long; half of them nudged towards plain values so that many ropes are made. */
static void test_replay_random(void **state) {
  (void)state;
  const int n = getenv("ROTARY_TEST_QUICK") ? 300 : 3000;
  uint64_t seed = 20261127;
  uint8_t buf[256];
  const unsigned long ok_before = rope_fuzz_ok, refused_before = rope_fuzz_refused;
  for (int i = 0; i < n; i++) {
    const size_t size = 4 + splitmix(&seed) % (sizeof(buf) - 4);
    for (size_t j = 0; j < size; j++) buf[j] = (uint8_t)splitmix(&seed);
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
