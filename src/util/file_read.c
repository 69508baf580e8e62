/* file_read.c: reads a whole regular file of bounded size, and system errors in words (see file_read.h). */
/* The XSI strerror_r (returns int, always fills the buffer), even where the build defines _GNU_SOURCE. */
#undef _GNU_SOURCE
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

void rotary_file_strerror(int err, char *buf, size_t size) {
  if (strerror_r(err, buf, size) != 0) snprintf(buf, size, "system error %d", err);
}

/* A FIFO would block the open or the read, a device (/dev/zero) could be read forever: only regular files. */
static rotary_file_status check_kind(const struct stat *st, size_t max, size_t *detail) {
  if (S_ISDIR(st->st_mode)) return *detail = EISDIR, ROTARY_FILE_SYSTEM;
  if (!S_ISREG(st->st_mode)) return ROTARY_FILE_NOT_REGULAR;
  if (st->st_size < 0 || (uintmax_t)st->st_size > max) return ROTARY_FILE_TOO_LARGE;
  return ROTARY_FILE_OK;
}

/* Reads fd to the end; size is what fstat said. One byte more than expected is room to see growth. */
static rotary_file_status read_all(int fd, size_t size, size_t max, char **text, size_t *len, size_t *detail) {
  size_t cap = size < 4096 ? 4096 : size + 1, n = 0;
  if (cap > max + 1) cap = max + 1;
  char *buf = malloc(cap);
  if (!buf) return *detail = cap, ROTARY_FILE_NO_MEMORY;
  for (;;) {
    if (n == cap) {
      if (cap > max) {
        free(buf);
        return ROTARY_FILE_TOO_LARGE;
      }
      const size_t bigger = cap > max / 2 ? max + 1 : 2 * cap;
      char *grown = realloc(buf, bigger);
      if (!grown) {
        free(buf);
        return *detail = bigger, ROTARY_FILE_NO_MEMORY;
      }
      buf = grown;
      cap = bigger;
    }
    const ssize_t got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      *detail = (size_t)errno;
      free(buf);
      return ROTARY_FILE_SYSTEM;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  if (n > max) {
    free(buf);
    return ROTARY_FILE_TOO_LARGE;
  }
  *text = buf;
  *len = n;
  return ROTARY_FILE_OK;
}

rotary_file_status rotary_file_read(const char *path, size_t max, char **text, size_t *len, size_t *detail) {
  struct stat st;
  if (stat(path, &st) != 0) return *detail = (size_t)errno, ROTARY_FILE_SYSTEM;
  rotary_file_status status = check_kind(&st, max, detail);
  if (status != ROTARY_FILE_OK) return status;
  /* O_NONBLOCK: should the path become a FIFO after the stat, the open returns at once and fstat refuses it */
  int fd;
  do fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return *detail = (size_t)errno, ROTARY_FILE_SYSTEM;
  if (fstat(fd, &st) != 0) *detail = (size_t)errno, status = ROTARY_FILE_SYSTEM;
  if (status == ROTARY_FILE_OK) status = check_kind(&st, max, detail);
  if (status == ROTARY_FILE_OK) status = read_all(fd, (size_t)st.st_size, max, text, len, detail);
  close(fd);
  return status;
}
