/* hf_json.c: typed, error-reporting reads of config.json fields for librotary_hf. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"

#define HF_MAX_FILE (64u << 20)

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

const char *hf_type_name(const cJSON *obj) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "rope_type");
  if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(obj, "type");
  return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* obj[name], or NULL when absent or JSON null. */
static const cJSON *item(const cJSON *obj, const char *name) {
  const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
  return v && !cJSON_IsNull(v) ? v : NULL;
}

/* "prefix.name", or "name" for an empty prefix, for messages. */
#define PFX(prefix) (prefix)[0] ? (prefix) : "", (prefix)[0] ? "." : ""

static rotary_status read_size(hf_parse *p, const cJSON *v, const char *prefix, const char *name, size_t *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0) || v->valuedouble > 9007199254740992.0 ||
      v->valuedouble != floor(v->valuedouble))
    return hf_fail(p, "%s%s%s: expected an integer >= 0", PFX(prefix), name);
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

rotary_status hf_array(hf_parse *p, const cJSON *obj, const char *prefix, const char *name, size_t n, double *out) {
  const cJSON *v = item(obj, name);
  if (!v) return hf_fail(p, "%s%s%s: missing (required by \"longrope\")", PFX(prefix), name);
  if (!cJSON_IsArray(v)) return hf_fail(p, "%s%s%s: expected an array of numbers", PFX(prefix), name);
  const size_t size = (size_t)cJSON_GetArraySize(v);
  if (size != n)
    return hf_fail(p, "%s%s%s: has %zu values, rotary_dim / 2 is %zu", PFX(prefix), name, size, n);
  size_t i = 0;
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
      return hf_fail(p, "%s%s%s[%zu]: expected a finite number", PFX(prefix), name, i);
    out[i] = e->valuedouble;
  }
  return ROTARY_OK;
}

rotary_status hf_number_in(hf_parse *p, const cJSON *root, const scaling_src *src, const char *name, double *out,
                           int *have) {
  double top = 0.0, inner = 0.0;
  int have_top = 0, have_inner = 0;
  rotary_status st = hf_number(p, root, "", name, &top, &have_top);
  if (st == ROTARY_OK && src->obj) st = hf_number(p, src->obj, src->name, name, &inner, &have_inner);
  if (st != ROTARY_OK) return st;
  if (have_top && have_inner && top != inner)
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
  if (!strcmp(field, "base")) return "rope_theta";
  if (!strcmp(field, "rotary_dim")) return "partial_rotary_factor";
  return field;
}

size_t hf_error_offset(const char *json, size_t length) {
  const char *end = NULL;
  cJSON *again = cJSON_ParseWithLengthOpts(json, length, &end, 0);
  cJSON_Delete(again);
  return end && end >= json ? (size_t)(end - json) : 0;
}

rotary_status hf_read_file(hf_parse *p, const char *path, char **text, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return hf_fail(p, "%s: cannot open", path);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 65536;
      char *grown = cap <= HF_MAX_FILE ? realloc(buf, cap) : NULL;
      if (!grown) {
        free(buf);
        fclose(f);
        return cap > HF_MAX_FILE ? hf_fail(p, "%s: larger than 64 MiB", path)
                                 : hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "out of memory");
      }
      buf = grown;
    }
    const size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  const int failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return hf_fail(p, "%s: read error", path);
  }
  *text = buf;
  *n = len;
  return ROTARY_OK;
}
