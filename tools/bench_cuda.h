/* bench_cuda.h: `rotary bench --cuda` (bench_cuda.c) and its bench-only kernels (bench_cuda_stream.cu). */
#ifndef ROTARY_BENCH_CUDA_H
#define ROTARY_BENCH_CUDA_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `rotary bench --cuda [--rows quick|all] [--reps N] [--json FILE]`: the issue-15 table on device 0; argv[0] is
 * "bench", "--cuda" is skipped wherever it is. Returns the exit status (2: bad option, 1: no device or a failure). */
int bench_cuda_main(int argc, char **argv);
void bench_cuda_usage(FILE *f);

/* Enqueue one kernel on stream (a cudaStream_t) and return its launch's cudaError_t (0: launched). Buffers are
 * device memory, 16-byte aligned; any byte count (a tail under 16 bytes is done byte by byte). */
int bench_cuda_launch_rmw(void *buf, size_t bytes, unsigned key, void *stream); /* in place: b ^= key (key 0) */
int bench_cuda_launch_copy(void *dst, const void *src, size_t bytes, void *stream);
int bench_cuda_launch_fill(void *buf, size_t bytes, unsigned value, void *stream); /* the L2 flush */

#ifdef __cplusplus
}
#endif

#endif /* ROTARY_BENCH_CUDA_H */
