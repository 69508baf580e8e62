/* file_read.h: reads a whole regular file of bounded size, and system errors in words: for the JSON readers of
 * librotary (tuning files) and librotary_hf (config.json), each of which compiles it in. */
#ifndef ROTARY_FILE_READ_H
#define ROTARY_FILE_READ_H

#include <stddef.h>

typedef enum rotary_file_status {
  ROTARY_FILE_OK = 0,
  ROTARY_FILE_SYSTEM,      /* a system call failed: *detail holds errno (EISDIR for a directory) */
  ROTARY_FILE_NOT_REGULAR, /* a FIFO, device or socket: refused before it is read, so nothing blocks */
  ROTARY_FILE_TOO_LARGE,   /* more than max bytes (by its size, or by what a read found) */
  ROTARY_FILE_NO_MEMORY    /* *detail holds the bytes the failed allocation asked for */
} rotary_file_status;

/* Reads the regular file at path whole into a malloc'd buffer (*text, *len bytes; the caller frees it). The buffer
 * starts at the size fstat gives and grows while reads find more (a file that grows, /proc files that say 0), up
 * to max + 1 bytes. On failure nothing is allocated and *text, *len are untouched. max < SIZE_MAX / 2. */
rotary_file_status rotary_file_read(const char *path, size_t max, char **text, size_t *len, size_t *detail);

/* The system's text for errno err ("No such file or directory"), thread-safely (strerror_r), into buf. */
void rotary_file_strerror(int err, char *buf, size_t size);

#endif /* ROTARY_FILE_READ_H */
