/* env_knob.h: reads a per-process tuning knob from the environment: "off", a whole number in range, or neither. */
#ifndef ROTARY_ENV_KNOB_H
#define ROTARY_ENV_KNOB_H

#include <stdlib.h>
#include <string.h>

typedef enum rotary_knob { ROTARY_KNOB_DEFAULT, ROTARY_KNOB_OFF, ROTARY_KNOB_VALUE } rotary_knob;

/* The variable `name`: OFF for "off", VALUE (and *value) for a decimal number in [0, max], else DEFAULT (unset,
 * empty, signed or malformed: the caller keeps its default). */
static inline rotary_knob rotary_env_knob(const char *name, unsigned long long max, unsigned long long *value) {
  const char *env = getenv(name);
  if (!env || !*env) return ROTARY_KNOB_DEFAULT;
  if (!strcmp(env, "off")) return ROTARY_KNOB_OFF;
  if (*env < '0' || *env > '9') return ROTARY_KNOB_DEFAULT;
  char *end;
  const unsigned long long v = strtoull(env, &end, 10);
  if (*end || v > max) return ROTARY_KNOB_DEFAULT;
  *value = v;
  return ROTARY_KNOB_VALUE;
}

#endif /* ROTARY_ENV_KNOB_H */
