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

/* Parses the text into *root. Errors: OUT_OF_MEMORY (an allocation inside cJSON failed), p->status for bad syntax
 * (with the byte), for anything but whitespace after the value (Python: "Extra data"), and for what cJSON would
 * read differently from Python's json (control characters, an escaped NUL inside a string). */
rotary_status hf_json_parse(hf_parse *p, const char *json, size_t length, cJSON **root);

/* obj[name]: the LAST member of that name (duplicate keys count with their last value, as in Python's json), or
 * NULL when absent or obj is not an object. A JSON null is returned as such. Every lookup goes through it. */
const cJSON *hf_get(const cJSON *obj, const char *name);
/* Whether obj[name] is there and JSON null. */
int hf_is_null(const cJSON *obj, const char *name);

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
/* Checks a required array of exactly n finite numbers (absent, null, another type, another length or a bad element
 * fail); hf_array_read then copies it. Nothing is allocated before the check. */
rotary_status hf_array_check(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t n);
void hf_array_read(const cJSON *obj, const char *name, double *out);

/* Where one rope's parameters come from. A number may sit at the top level or inside the scaling object
 * (transformers 5 moves rope_theta and partial_rotary_factor there); in a single flat rope both present with
 * different values is a contradiction (hf_number_in). In a per-layer-type rope (nested) the top-level value is only
 * the default of the nested one, as transformers' setdefault. A null inside the scaling object fails (transformers
 * would compute with None), and at the top level unless top_null_ok. */
typedef struct scaling_src {
  const cJSON *obj;        /* the scaling object, or NULL (default parameters) */
  char name[80];           /* "rope_scaling", "rope_parameters" or "rope_parameters.<layer type>", for messages */
  char type[32];           /* the family's Hugging Face name */
  int nested;              /* per-layer-type parameters: top-level values are defaults only */
  int mrope;               /* rope_type (or type) "mrope": default frequencies with mrope_section */
  const char *theta_key;   /* the top-level key of the base: "rope_theta" (Gemma 3 sliding: "rope_local_base_freq") */
  double theta_default;    /* the base when neither the object nor the top level gives one */
} scaling_src;
rotary_status hf_number_in(hf_parse *p, const cJSON *root, const scaling_src *src, const char *name, int top_null_ok,
                           double *out, int *have);

/* A name from rotary_config_check ("scaling.factor") spelled as the config spells it ("rope_scaling.factor");
 * static storage is not used: the result points into field or is a static string. */
const char *hf_field_name(const char *field, const char *scaling_name, char *buf, size_t size);

/* Reads a whole regular file of at most HF_MAX_FILE bytes into a malloc'd buffer (hf_file.c). Errors: IO with the
 * system's text ("No such file or directory", "Is a directory"), "not a regular file" for a FIFO, device or
 * socket (refused before it is opened, so nothing blocks), "larger than 64 MiB"; OUT_OF_MEMORY. */
#define HF_MAX_FILE ((size_t)64 << 20)
rotary_status hf_read_file(hf_parse *p, const char *path, char **text, size_t *n);

#endif /* ROTARY_HF_JSON_H */
