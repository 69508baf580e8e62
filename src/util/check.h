/* check.h: overflow-checked size arithmetic and the early-return helper used by validation. */
#ifndef ROTARY_CHECK_H
#define ROTARY_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Returns `status` from the enclosing function when `cond` holds. */
#define ROTARY_RETURN_IF(cond, status) \
  do {                                 \
    if (cond) return (status);         \
  } while (0)

/* In a config check with a `const char **field` parameter: names the offending field (when field is not NULL) and
 * returns `status` when `cond` holds. */
#define ROTARY_FAIL_FIELD_IF(cond, name, status) \
  do {                                           \
    if (cond) {                                  \
      if (field) *field = (name);                \
      return (status);                           \
    }                                            \
  } while (0)

/* Nonzero on overflow; *r is then unspecified. */
static inline int rotary_mul_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int rotary_add_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_add_overflow(a, b, r); }
static inline int rotary_mul_overflow_i64(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int rotary_add_overflow_i64(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }

/* Nonzero when the byte ranges [a, a + an) and [b, b + bn) share a byte (neither range may wrap). */
static inline int rotary_bytes_overlap(const void *a, size_t an, const void *b, size_t bn) {
  uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
  return an && bn && pa < pb + bn && pb < pa + an;
}

#endif /* ROTARY_CHECK_H */
