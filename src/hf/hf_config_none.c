/* hf_config_none.c: librotary_hf built without cJSON: every entry point says so. */
#include <stdio.h>

#include "rotary.h"

static rotary_status unsupported(char *error, size_t error_size) {
  if (error && error_size) snprintf(error, error_size, "librotary_hf was built without cJSON (libcjson-dev)");
  return ROTARY_ERR_UNSUPPORTED;
}

rotary_status rotary_hf_config_parse(const char *json, size_t length, rotary_hf_config **out, char *error,
                                     size_t error_size) {
  (void)json, (void)length, (void)out;
  return unsupported(error, error_size);
}
rotary_status rotary_hf_config_load(const char *path, rotary_hf_config **out, char *error, size_t error_size) {
  (void)path, (void)out;
  return unsupported(error, error_size);
}
void rotary_hf_config_destroy(rotary_hf_config *config) { (void)config; }
const rotary_config *rotary_hf_config_rope(const rotary_hf_config *c) { return (void)c, NULL; }
size_t rotary_hf_config_heads(const rotary_hf_config *c) { return (void)c, 0; }
size_t rotary_hf_config_kv_heads(const rotary_hf_config *c) { return (void)c, 0; }
size_t rotary_hf_config_max_positions(const rotary_hf_config *c) { return (void)c, 0; }
const char *rotary_hf_config_rope_type(const rotary_hf_config *c) { return (void)c, ""; }
const char *rotary_hf_config_model_type(const rotary_hf_config *c) { return (void)c, ""; }
