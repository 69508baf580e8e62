/* replay.h: what the corpus-replay tests share: finding a fuzz target's corpus, reading its files, a seeded PRNG. */
#ifndef ROTARY_TEST_REPLAY_H
#define ROTARY_TEST_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* Called once per corpus file with its name (no folder) and contents. */
typedef void (*replay_fn)(const char *name, const uint8_t *data, size_t size, void *arg);

/* In quick mode (ROTARY_TEST_QUICK) a corpus of more than REPLAY_QUICK_ALL files is sampled: one file in
 * REPLAY_QUICK_EVERY, by a hash of its name. */
#define REPLAY_QUICK_ALL 100
#define REPLAY_QUICK_EVERY 4

/* Calls fn for every file (names not starting with '.') of the corpus folder: $env when set and not empty, else
 * tests/fuzz/<subdir> of this source tree (in quick mode, the sample above). Returns the number of files replayed,
 * or -1 when the folder cannot be opened; *dir_out (when not NULL) receives the folder's path. */
int replay_corpus(const char *env, const char *subdir, replay_fn fn, void *arg, char *dir_out, size_t dir_size);

/* splitmix64: the next value of a seeded sequence (the same on every machine). */
uint64_t replay_splitmix(uint64_t *state);

/* Runs fn on data as it is, then on `variants` changed copies (a copy, so that nothing reads past a cut): even ones
 * cut at a seeded point, odd ones whole with 1 to 3 bytes replaced by characters of `swaps` (JSON-significant ones,
 * say). The seed is size * golden ratio + salt: the same variants on every machine. */
void replay_variants(const uint8_t *data, size_t size, int variants, uint64_t salt, const char *swaps,
                     int (*fn)(const uint8_t *data, size_t size));

#endif
