/* hf_file.c: reads a config.json for librotary_hf: regular files only, at most 64 MiB, system errors in words. */
#include "file_read.h"
#include "hf_json.h"

rotary_status hf_read_file(hf_parse *p, const char *path, char **text, size_t *n) {
  size_t detail = 0;
  char why[128];
  switch (rotary_file_read(path, HF_MAX_FILE, text, n, &detail)) {
    case ROTARY_FILE_OK: return ROTARY_OK;
    case ROTARY_FILE_SYSTEM:
      rotary_file_strerror((int)detail, why, sizeof why);
      return hf_fail(p, "%s: %s", path, why);
    case ROTARY_FILE_NOT_REGULAR: return hf_fail(p, "%s: not a regular file", path);
    case ROTARY_FILE_TOO_LARGE: return hf_fail(p, "%s: larger than 64 MiB", path);
    case ROTARY_FILE_NO_MEMORY: break;
  }
  return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, detail);
}
