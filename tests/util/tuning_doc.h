/* tuning_doc.h: tuning-file test documents (the five members of a valid file, one replaced), snapshots of a
 * context's settings and the fixtures (scratch folder, context), shared by test_tuning_file.c and
 * test_tuning_save.c. */
#ifndef ROTARY_TEST_TUNING_DOC_H
#define ROTARY_TEST_TUNING_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

/* s as a JSON string (quotes, backslashes and control characters escaped). */
void tuning_json_string(char *out, size_t size, const char *s);

/* The five members of a valid file; a case replaces one (NULL text: left out). */
enum { M_FORMAT, M_FVERSION, M_LIBRARY, M_CPU, M_SETTINGS, M_COUNT };

/* The valid members for this CPU and library version (settings: head_group 3). */
void tuning_member_defaults(char members[M_COUNT][512]);

/* A document of the default members with member `which` replaced by `text` (NULL: left out; which < 0: none),
 * followed by `extra` members (may be NULL). */
void tuning_make_doc(char *out, size_t size, int which, const char *text, const char *extra);

/* Every setting's value and source on a context. */
typedef struct tuning_snapshot {
  int64_t value[ROTARY_SETTING_COUNT];
  rotary_setting_source source[ROTARY_SETTING_COUNT];
} tuning_snapshot;

tuning_snapshot tuning_snap(rotary_context *ctx);
/* Fails the test naming the first setting whose value or source differs. */
void tuning_assert_same(const tuning_snapshot *a, const tuning_snapshot *b);

/* The text of a small file (up to 64 KiB) in a static buffer, overwritten by the next call; NULL when it cannot be
 * opened. */
const char *tuning_read_text(const char *path);
/* Writes len bytes to path (fails the test when it cannot). */
void tuning_write_bytes(const char *path, const char *data, size_t len);
/* A fresh folder $TMPDIR/rotary-tuning-test-XXXXXX (else under /tmp) into dir: 0, or -1. */
int tuning_tmpdir(char *dir, size_t size);
/* Removes dir and what is in it (files, empty folders): rmdir's result. */
int tuning_rmdir(const char *dir);
/* A one-thread context whose thread_bytes (8192) and tasks_per_thread (3) were SET, so that "unchanged" covers SET
 * sources too: 0, or -1. */
int tuning_ctx_create(rotary_context **ctx);

#endif /* ROTARY_TEST_TUNING_DOC_H */
