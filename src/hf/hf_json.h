/* hf_json.h: typed, error-reporting reads of config.json fields for librotary_hf (on top of cJSON). */
#ifndef ROTARY_HF_JSON_H
#define ROTARY_HF_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "rotary.h"

/* Where messages go and the status a failure returns. */
typedef struct hf_parse {
  char *error;
  size_t error_size;
  rotary_status status;
} hf_parse;

/* Writes the message (printf format) and returns p->status, or st. */
rotary_status hf_fail(hf_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
rotary_status hf_fail_status(hf_parse *p, rotary_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The "rope_type" (else "type") string of a scaling object, or NULL. */
const char *hf_type_name(const cJSON *obj);

/* Reads obj[name] (else obj[alias] when alias is not NULL) as an integer >= 0 into *out; absent or null leaves
 * *out unchanged. Fails on any other JSON type or a fraction. */
rotary_status hf_size(hf_parse *p, const cJSON *obj, const char *name, const char *alias, size_t *out);
/* The same for a field of the scaling object named prefix in messages; *have tells whether it was there. */
rotary_status hf_size_in(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t *out,
                         int *have);
/* Reads a number; absent or null leaves *out unchanged and *have untouched (else set to 1). */
rotary_status hf_number(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, double *out,
                        int *have);
/* Reads a boolean into *out (0 or 1); absent or null leaves it unchanged. */
rotary_status hf_bool(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, int *out);
/* Reads a required array of exactly n numbers. */
rotary_status hf_array(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t n, double *out);

/* A number that may sit at the top level or inside the scaling object (transformers 5 moves rope_theta and
 * partial_rotary_factor there); both present with different values is a contradiction. */
typedef struct scaling_src {
  const cJSON *obj;  /* the scaling object, or NULL */
  const char *name;  /* "rope_scaling" or "rope_parameters" */
  char type[32];     /* the family's Hugging Face name */
} scaling_src;
rotary_status hf_number_in(hf_parse *p, const cJSON *root, const scaling_src *src, const char *name, double *out,
                           int *have);

/* A name from rotary_config_check ("scaling.factor") spelled as the config spells it ("rope_scaling.factor");
 * static storage is not used: the result points into field or is a static string. */
const char *hf_field_name(const char *field, const char *scaling_name, char *buf, size_t size);

/* Byte offset of a JSON syntax error, for the message. */
size_t hf_error_offset(const char *json, size_t length);

/* Reads a whole file (at most 64 MiB) into a malloc'd buffer. */
rotary_status hf_read_file(hf_parse *p, const char *path, char **text, size_t *n);

#endif /* ROTARY_HF_JSON_H */
