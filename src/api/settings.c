/* settings.c: the public settings API: names and ranges, a context's values and sources, tuning files. */
#include <string.h>

#include "check.h"
#include "context.h"
#include "tuning.h"

const char *rotary_setting_name(rotary_setting setting) {
  const rotary_setting_info *info = rotary_setting_info_of(setting);
  return info ? info->name : "";
}

const char *rotary_setting_env(rotary_setting setting) {
  const rotary_setting_info *info = rotary_setting_info_of(setting);
  return info ? info->env : "";
}

const char *rotary_setting_source_name(rotary_setting_source source) {
  switch (source) {
    case ROTARY_SOURCE_DEFAULT: return "default";
    case ROTARY_SOURCE_FILE: return "file";
    case ROTARY_SOURCE_ENV: return "environment";
    case ROTARY_SOURCE_SET: return "set";
    case ROTARY_SOURCE_TUNED: return "tuned";
  }
  return "";
}

rotary_status rotary_setting_range(rotary_setting setting, int64_t *min, int64_t *max) {
  ROTARY_RETURN_IF(!min || !max, ROTARY_ERR_NULL_POINTER);
  const rotary_setting_info *info = rotary_setting_info_of(setting);
  ROTARY_RETURN_IF(!info, ROTARY_ERR_INVALID_ARGUMENT);
  *min = info->min;
  *max = info->max;
  return ROTARY_OK;
}

rotary_status rotary_setting_default(rotary_setting setting, int64_t *value) {
  ROTARY_RETURN_IF(!value, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(!rotary_setting_info_of(setting), ROTARY_ERR_INVALID_ARGUMENT);
  rotary_tuning t;
  rotary_tuning_cpu_defaults(&t);
  *value = rotary_tuning_get(&t, setting);
  return ROTARY_OK;
}

rotary_status rotary_context_get_setting(rotary_context *ctx, rotary_setting setting, int64_t *value,
                                         rotary_setting_source *source) {
  ROTARY_RETURN_IF(!value, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(!rotary_setting_info_of(setting), ROTARY_ERR_INVALID_ARGUMENT);
  if (ctx) rotary_context_lock(ctx);
  const rotary_tuning *t = rotary_context_tuning(ctx);
  const int64_t v = rotary_tuning_get(t, setting);
  const rotary_setting_source src = (rotary_setting_source)t->source[setting];
  if (ctx) rotary_context_unlock(ctx);
  *value = v;
  if (source) *source = src;
  return ROTARY_OK;
}

rotary_status rotary_context_set_setting(rotary_context *ctx, rotary_setting setting, int64_t value) {
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_NULL_POINTER);
  const rotary_setting_info *info = rotary_setting_info_of(setting);
  ROTARY_RETURN_IF(!info, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(value < info->min || value > info->max, ROTARY_ERR_TUNING);
  rotary_context_lock(ctx);
  rotary_tuning_put(&ctx->tuning, setting, value, ROTARY_SOURCE_SET);
  rotary_context_unlock(ctx);
  return ROTARY_OK;
}

rotary_status rotary_context_reset_settings(rotary_context *ctx) {
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_NULL_POINTER);
  const rotary_tuning *defaults = rotary_tuning_defaults();
  rotary_context_lock(ctx);
  ctx->tuning = *defaults;
  rotary_context_unlock(ctx);
  return ROTARY_OK;
}

/* Writes "" into a caller's message buffer on success, so that it never holds stale text. */
static void clear_message(char *error, size_t error_size) {
  if (error && error_size) error[0] = '\0';
}

rotary_status rotary_context_load_tuning(rotary_context *ctx, const char *path, char *error, size_t error_size) {
  ROTARY_RETURN_IF(!ctx || !path, ROTARY_ERR_NULL_POINTER);
  /* read into a scratch copy whose sources are all DEFAULT: afterwards, source FILE marks what the file named */
  rotary_tuning file;
  rotary_tuning_cpu_defaults(&file);
  const rotary_status st = rotary_tuning_file_read(path, &file, error, error_size);
  if (st != ROTARY_OK) return st;
  rotary_context_lock(ctx);
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++)
    if (file.source[s] == ROTARY_SOURCE_FILE)
      rotary_tuning_put(&ctx->tuning, (rotary_setting)s, rotary_tuning_get(&file, (rotary_setting)s),
                        ROTARY_SOURCE_FILE);
  rotary_context_unlock(ctx);
  clear_message(error, error_size);
  return ROTARY_OK;
}

rotary_status rotary_context_save_tuning(rotary_context *ctx, const char *path, const char *notes, char *error,
                                         size_t error_size) {
  ROTARY_RETURN_IF(!ctx || !path, ROTARY_ERR_NULL_POINTER);
  rotary_context_lock(ctx);
  const rotary_tuning t = ctx->tuning;
  rotary_context_unlock(ctx);
  const rotary_status st = rotary_tuning_file_write(path, &t, notes, error, error_size);
  if (st == ROTARY_OK) clear_message(error, error_size);
  return st;
}

rotary_status rotary_tuning_env_status(char *error, size_t error_size) {
  const char *message = "";
  const rotary_status st = rotary_tuning_env_file_status(&message);
  if (error && error_size) {
    const size_t n = strnlen(message, error_size - 1);
    memcpy(error, message, n);
    error[n] = '\0';
  }
  return st;
}

rotary_status rotary_tuning_default_path(char *path, size_t path_size) {
  ROTARY_RETURN_IF(!path, ROTARY_ERR_NULL_POINTER);
  return rotary_tuning_file_default_path(path, path_size);
}
