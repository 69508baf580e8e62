/* hf_file.c: reads a config.json for librotary_hf: regular files only, at most 64 MiB, system errors in words. */
/* The XSI strerror_r (returns int, always fills the buffer), even where the build defines _GNU_SOURCE. */
#undef _GNU_SOURCE
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_json.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* "path: No such file or directory": strerror_r, since strerror may share a buffer between threads. */
static rotary_status sys_fail(hf_parse *p, const char *path, int err) {
  char text[128];
  if (strerror_r(err, text, sizeof text) != 0) snprintf(text, sizeof text, "system error %d", err);
  return hf_fail(p, "%s: %s", path, text);
}

/* A FIFO would block the open or the read, a device (/dev/zero) could be read forever: only regular files. */
static rotary_status check_kind(hf_parse *p, const char *path, const struct stat *st) {
  if (S_ISDIR(st->st_mode)) return sys_fail(p, path, EISDIR);
  if (!S_ISREG(st->st_mode)) return hf_fail(p, "%s: not a regular file", path);
  if (st->st_size < 0 || (uintmax_t)st->st_size > HF_MAX_FILE) return hf_fail(p, "%s: larger than 64 MiB", path);
  return ROTARY_OK;
}

/* Reads to the end; size is what fstat said (a file may still grow, or say 0 as /proc files do). */
static rotary_status read_all(hf_parse *p, const char *path, int fd, size_t size, char **text, size_t *n) {
  size_t cap = size < 4096 ? 4096 : size + 1, len = 0; /* one byte more than expected shows growth */
  char *buf = malloc(cap);
  if (!buf) return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, cap);
  for (;;) {
    if (len == cap) {
      if (cap > HF_MAX_FILE) {
        free(buf);
        return hf_fail(p, "%s: larger than 64 MiB", path);
      }
      const size_t bigger = cap > HF_MAX_FILE / 2 ? HF_MAX_FILE + 1 : 2 * cap;
      char *grown = realloc(buf, bigger);
      if (!grown) {
        free(buf);
        return hf_fail_status(p, ROTARY_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, bigger);
      }
      buf = grown;
      cap = bigger;
    }
    const ssize_t got = read(fd, buf + len, cap - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int err = errno;
      free(buf);
      return sys_fail(p, path, err);
    }
    if (got == 0) break;
    len += (size_t)got;
  }
  *text = buf;
  *n = len;
  return ROTARY_OK;
}

rotary_status hf_read_file(hf_parse *p, const char *path, char **text, size_t *n) {
  struct stat st;
  if (stat(path, &st) != 0) return sys_fail(p, path, errno);
  rotary_status status = check_kind(p, path, &st);
  if (status != ROTARY_OK) return status;
  /* O_NONBLOCK: should the path become a FIFO after the stat, the open returns at once and fstat refuses it */
  int fd;
  do fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return sys_fail(p, path, errno);
  if (fstat(fd, &st) != 0) status = sys_fail(p, path, errno);
  if (status == ROTARY_OK) status = check_kind(p, path, &st);
  if (status == ROTARY_OK) status = read_all(p, path, fd, (size_t)st.st_size, text, n);
  close(fd);
  return status;
}
