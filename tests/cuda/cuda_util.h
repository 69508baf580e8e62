/* cuda_util.h: what the GPU tests share: the skip without a device, checked CUDA calls, poison and random fills. */
#ifndef CUDA_UTIL_H
#define CUDA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"
#include "test_util.h"

/* Exits with 77 (ctest: skipped) and a one-line reason on stderr when rotary_cuda_device_count() is 0. Returns the
 * device count otherwise. Call it first in main(), before cmocka runs anything. */
int cu_require_device(const char *program);

/* Checked CUDA runtime calls: any error fails the running test (cmocka fail_msg) with the call and CUDA's text. */
void *cu_malloc(size_t bytes); /* cudaMalloc; bytes 0 allocates 1 */
void cu_free(void *p);         /* cudaFree; NULL allowed */
void cu_to_device(void *dst, const void *src, size_t bytes); /* waits until the copy is on the device */
void cu_to_host(void *dst, const void *src, size_t bytes);
void cu_memset(void *dst, int value, size_t bytes);          /* waits until it is done */
void cu_sync(void *stream);    /* cudaStreamSynchronize, then cudaGetLastError */
void cu_check(int cuda_error, const char *what); /* fails the test when cuda_error (a cudaError_t) is not 0 */

/* A seeded byte pattern for outputs that a call must overwrite (or, on error, leave as they were). Every byte is
 * odd-valued: no dtype's zero, one or common value. */
void cu_poison(void *p, size_t bytes, uint64_t seed);

/* n random elements of dt at p: mostly moderate values over many binades; with specials, about one element in 64
 * is a NaN (quiet or signalling, either sign, random payload), an Inf, a zero of either sign or a subnormal of dt. */
void cu_fill_random(rotary_dtype dt, void *p, size_t n, tu_rng *r, int specials);

#endif /* CUDA_UTIL_H */
