/* hf_parse.h: config.json parse checks shared by the librotary_hf tests (include after cmocka.h). */
#ifndef TU_HF_PARSE_H
#define TU_HF_PARSE_H

#include <string.h>

#include "rotary.h"

/* Parses json, failing the test unless it is accepted with an empty message. */
static inline rotary_hf_config *parse_ok(const char *json) {
  rotary_hf_config *h = NULL;
  char err[256];
  const rotary_status st = rotary_hf_config_parse(json, strlen(json), &h, err, sizeof err);
  if (st != ROTARY_OK) fail_msg("parse failed (%d): %s\n%s", (int)st, err, json);
  assert_string_equal(err, "");
  return h;
}

/* Parses json expecting status st and a message containing `needle`; *out must stay untouched. */
static inline void parse_bad(const char *json, rotary_status st, const char *needle) {
  rotary_hf_config *h = (rotary_hf_config *)(void *)&h;
  char err[256];
  memset(err, 'x', sizeof err);
  const rotary_status got = rotary_hf_config_parse(json, strlen(json), &h, err, sizeof err);
  if (got != st || !strstr(err, needle))
    fail_msg("expected status %d with \"%s\", got %d: \"%s\"\n%s", (int)st, needle, (int)got, err, json);
  assert_ptr_equal(h, (rotary_hf_config *)(void *)&h);
}

#endif /* TU_HF_PARSE_H */
