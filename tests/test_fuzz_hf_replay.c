/* test_fuzz_hf_replay.c: replays tests/fuzz/corpus_hf_config/ through the fuzz_hf_config target, each file also cut
 * short and with bytes flipped, so that the loader's error paths run in every build. */
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
#include "fuzz/fuzz_hf_config.c"

/* The corpus directory: $ROTARY_FUZZ_HF_CORPUS, else fuzz/corpus_hf_config beside this source file. */
static void corpus_dir(char *buf, size_t size) {
  const char *env = getenv("ROTARY_FUZZ_HF_CORPUS");
  if (env && *env) {
    snprintf(buf, size, "%s", env);
    return;
  }
  const char *file = __FILE__, *slash = strrchr(file, '/');
  int dir_len = slash ? (int)(slash - file) : 1;
  snprintf(buf, size, "%.*s/fuzz/corpus_hf_config", dir_len, slash ? file : ".");
}

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
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
  *size = n;
  return buf;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The file as it is, then (in a copy, so that nothing reads past the cut) cut at a few points and with a few
 * bytes replaced by JSON-significant ones. */
static void replay_one(const char *name, const uint8_t *data, size_t size, int variants) {
  unsigned long before = fuzz_failures;
  LLVMFuzzerTestOneInput(data, size);
  uint64_t seed = size * 0x9e3779b97f4a7c15ull + 1;
  static const char swaps[] = "{}[]\":,0-9.e\\ntfu";
  uint8_t *copy = malloc(size ? size : 1);
  for (int v = 0; copy && size && v < variants; v++) {
    memcpy(copy, data, size);
    const size_t cut = v % 2 ? size : (size_t)(splitmix(&seed) % size);
    for (int k = 0; v % 2 && k < 1 + v % 3; k++)
      copy[splitmix(&seed) % size] = (uint8_t)swaps[splitmix(&seed) % (sizeof swaps - 1)];
    LLVMFuzzerTestOneInput(copy, cut);
  }
  free(copy);
  if (fuzz_failures != before) printf("corpus file %s (or a variant) failed\n", name);
}

static void test_replay_corpus(void **state) {
  (void)state;
  char dir[4096];
  corpus_dir(dir, sizeof dir);
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open the corpus directory %s", dir);
  const int variants = getenv("ROTARY_TEST_QUICK") ? 8 : 64;
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t size = 0;
    uint8_t *data = read_file(path, &size);
    if (!data) continue;
    replay_one(e->d_name, data, size, variants);
    free(data);
    files++;
  }
  closedir(d);
  printf("corpus: %d files from %s; parses ok %lu, refused %lu; count by status code:", files, dir, fuzz_ok, fuzz_errors);
  for (int s = 0; s < 32; s++)
    if (fuzz_status[s]) printf(" %d:%lu", s, fuzz_status[s]);
  printf("\n");
  assert_true(files >= 20);
  assert_true(fuzz_ok >= 10 && fuzz_errors >= 10);
  assert_int_equal(fuzz_failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_replay_corpus)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
