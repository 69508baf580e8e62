/* hf_json.c: the JSON text parsed (out of memory told apart from bad syntax) and typed, error-reporting reads of
 * config.json fields for librotary_hf. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "json_strict.h"

static void vput(hf_parse *p, const char *fmt, va_list ap) {
  if (p->error && p->error_size) vsnprintf(p->error, p->error_size, fmt, ap);
}

rotary_status hf_fail(hf_parse *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vput(p, fmt, ap);
  va_end(ap);
  return p->status;
}

rotary_status hf_fail_status(hf_parse *p, rotary_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vput(p, fmt, ap);
  va_end(ap);
  return st;
}

/* The parse itself (cJSON's allocation hooks, Python's json's rules, one parse at a time) is json_strict.c's,
 * shared with librotary's tuning files. */
rotary_status hf_json_parse(hf_parse *p, const char *json, size_t length, cJSON **root) {
  size_t at = 0;
  const char *why = "";
  switch (rotary_json_parse(json, length, root, &at, &why)) {
    case ROTARY_JSON_OK: return ROTARY_OK;
    case ROTARY_JSON_NO_MEMORY:
      return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "config: out of memory while parsing the JSON text");
    case ROTARY_JSON_SYNTAX: return hf_fail(p, "config: not valid JSON (error near byte %zu)", at);
    case ROTARY_JSON_MISMATCH:
      return hf_fail(p, "config: %s at byte %zu (not read as Python's json reads it)", why, at);
    case ROTARY_JSON_EXTRA: break;
  }
  return hf_fail(p, "config: unexpected data after the JSON object (byte %zu)", at);
}

const cJSON *hf_get(const cJSON *obj, const char *name) { return rotary_json_get(obj, name); }

int hf_is_null(const cJSON *obj, const char *name) { return cJSON_IsNull(hf_get(obj, name)); }

const char *hf_type_name(const cJSON *obj) {
  const cJSON *t = hf_get(obj, "rope_type");
  if (!cJSON_IsString(t)) t = hf_get(obj, "type");
  return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* obj[name], or NULL when absent or JSON null. */
static const cJSON *item(const cJSON *obj, const char *name) {
  const cJSON *v = hf_get(obj, name);
  return v && !cJSON_IsNull(v) ? v : NULL;
}

/* "prefix.name", or "name" for an empty prefix, for messages. */
#define PFX(prefix) (prefix)[0] ? (prefix) : "", (prefix)[0] ? "." : ""

static rotary_status read_size(hf_parse *p, const cJSON *v, const char *prefix, const char *name, size_t *out) {
  /* below 2^53, where every integer the text can spell is read exactly */
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0) || v->valuedouble >= 9007199254740992.0 ||
      v->valuedouble != floor(v->valuedouble))
    return hf_fail(p, "%s%s%s: expected an integer >= 0 below 2^53", PFX(prefix), name);
  *out = (size_t)v->valuedouble;
  return ROTARY_OK;
}

rotary_status hf_size(hf_parse *p, const cJSON *obj, const char *name, const char *alias, size_t *out) {
  const cJSON *v = item(obj, name);
  if (!v && alias) {
    v = item(obj, alias);
    name = alias;
  }
  return v ? read_size(p, v, "", name, out) : ROTARY_OK;
}

rotary_status hf_size_in(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t *out,
                         int *have) {
  const cJSON *v = item(obj, name);
  if (!v) return ROTARY_OK;
  *have = 1;
  return read_size(p, v, prefix, name, out);
}

rotary_status hf_number(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, double *out,
                        int *have) {
  const cJSON *v = item(obj, name);
  if (!v) return ROTARY_OK;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return hf_fail(p, "%s%s%s: expected a finite number", PFX(prefix), name);
  *out = v->valuedouble;
  *have = 1;
  return ROTARY_OK;
}

rotary_status hf_bool(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, int *out) {
  const cJSON *v = item(obj, name);
  if (!v) return ROTARY_OK;
  if (!cJSON_IsBool(v)) return hf_fail(p, "%s%s%s: expected true or false", PFX(prefix), name);
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return ROTARY_OK;
}

rotary_status hf_array_check(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t n) {
  const cJSON *v = hf_get(obj, name);
  if (!v) return hf_fail(p, "%s%s%s: missing (required by \"longrope\")", PFX(prefix), name);
  if (cJSON_IsNull(v)) return hf_fail(p, "%s%s%s: null (an array is required by \"longrope\")", PFX(prefix), name);
  if (!cJSON_IsArray(v)) return hf_fail(p, "%s%s%s: expected an array of numbers", PFX(prefix), name);
  size_t size = 0, i = 0;
  for (const cJSON *e = v->child; e; e = e->next) size++;
  if (size != n)
    return hf_fail(p, "%s%s%s: has %zu values, rotary_dim / 2 is %zu", PFX(prefix), name, size, n);
  for (const cJSON *e = v->child; e; e = e->next, i++)
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
      return hf_fail(p, "%s%s%s[%zu]: expected a finite number", PFX(prefix), name, i);
  return ROTARY_OK;
}

void hf_array_read(const cJSON *obj, const char *name, double *out) {
  size_t i = 0;
  for (const cJSON *e = hf_get(obj, name)->child; e; e = e->next) out[i++] = e->valuedouble;
}

rotary_status hf_number_in(hf_parse *p, const cJSON *root, const scaling_src *src, const char *name, int top_null_ok,
                           double *out, int *have) {
  double top = 0.0, inner = 0.0;
  int have_top = 0, have_inner = 0;
  if (!top_null_ok && hf_is_null(root, name)) return hf_fail(p, "%s: null (a number is required)", name);
  if (hf_is_null(src->obj, name)) return hf_fail(p, "%s.%s: null (a number is required)", src->name, name);
  rotary_status st = hf_number(p, root, "", name, &top, &have_top);
  if (st == ROTARY_OK && src->obj) st = hf_number(p, src->obj, src->name, name, &inner, &have_inner);
  if (st != ROTARY_OK) return st;
  if (have_top && have_inner && top != inner && !src->nested)
    return hf_fail(p, "%s.%s: %.17g contradicts the top-level %s %.17g", src->name, name, inner, name, top);
  if (have_inner || have_top) {
    *out = have_inner ? inner : top;
    *have = 1;
  }
  return ROTARY_OK;
}

const char *hf_field_name(const char *field, const char *scaling_name, char *buf, size_t size) {
  if (!field) return "config";
  if (!strncmp(field, "scaling", 7)) {
    snprintf(buf, size, "%s%s", scaling_name, field + 7);
    return buf;
  }
  if (!strncmp(field, "streams", 7)) { /* the layout comes from mrope_section and mrope_interleaved */
    snprintf(buf, size, "%s.mrope_section", scaling_name);
    return buf;
  }
  if (!strcmp(field, "base")) return "rope_theta";
  if (!strcmp(field, "rotary_dim")) return "partial_rotary_factor";
  return field;
}
