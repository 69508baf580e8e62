/* replay.c: the corpus walk and PRNG shared by the tests that replay a fuzz target's corpus (test_fuzz_*replay.c). */
#define _POSIX_C_SOURCE 200809L
#include "replay.h"
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file in one malloc'ed block (at least one byte, so that an empty file is not an error). */
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

int replay_corpus(const char *env, const char *subdir, replay_fn fn, void *arg, char *dir_out, size_t dir_size) {
  char dir[4096];
  const char *value = env ? getenv(env) : NULL;
  if (value && *value) {
    snprintf(dir, sizeof dir, "%s", value);
  } else { /* this file is tests/util/replay.c: the corpora are in tests/fuzz/ */
    const char *file = __FILE__, *slash = strrchr(file, '/');
    const int util_len = slash ? (int)(slash - file) : 0;
    snprintf(dir, sizeof dir, "%.*s/../fuzz/%s", util_len, slash ? file : ".", subdir);
  }
  if (dir_out && dir_size) snprintf(dir_out, dir_size, "%s", dir);
  DIR *d = opendir(dir);
  if (!d) return -1;
  /* Quick mode (valgrind, qemu, ISA caps, TSan): a corpus of more than REPLAY_QUICK_ALL files is replayed one file
   * in REPLAY_QUICK_EVERY, chosen by a hash of its name (the same files every run); the release and ASan stages
   * replay every file. */
  int total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) total += e->d_name[0] != '.';
  rewinddir(d);
  const int sample = tu_quick() && total > REPLAY_QUICK_ALL;
  int files = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (sample) {
      uint32_t h = 2166136261u; /* FNV-1a */
      for (const char *c = e->d_name; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
      if (h % REPLAY_QUICK_EVERY) continue;
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t size = 0;
    uint8_t *data = read_file(path, &size);
    if (!data) continue;
    fn(e->d_name, data, size, arg);
    free(data);
    files++;
  }
  closedir(d);
  return files;
}

void replay_variants(const uint8_t *data, size_t size, int variants, uint64_t salt, const char *swaps,
                     int (*fn)(const uint8_t *data, size_t size)) {
  fn(data, size);
  uint64_t seed = size * 0x9e3779b97f4a7c15ull + salt;
  const size_t n_swaps = strlen(swaps);
  uint8_t *copy = malloc(size ? size : 1);
  for (int v = 0; copy && size && n_swaps && v < variants; v++) {
    memcpy(copy, data, size);
    const size_t cut = v % 2 ? size : (size_t)(replay_splitmix(&seed) % size);
    for (int k = 0; v % 2 && k < 1 + v % 3; k++)
      copy[replay_splitmix(&seed) % size] = (uint8_t)swaps[replay_splitmix(&seed) % n_swaps];
    fn(copy, cut);
  }
  free(copy);
}

uint64_t replay_splitmix(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
