/* stream.h: from what output size out-of-place calls use the kernels' non-temporal stores: the default of rotary_tuning. */
#ifndef ROTARY_STREAM_H
#define ROTARY_STREAM_H

#include <stddef.h>

#include "tuning.h" /* for the transition macro below */

/* The process default of rotary_tuning.nt_min_bytes (out-of-place calls that write at least this many bytes, q and
 * k outputs together, use the _nt kernels where the chosen kernel has one; SIZE_MAX: never): the environment
 * variable ROTARY_STREAM_STORES ("off" or a byte count), else rotary_stream_default(). Reads the environment on
 * every call: tuning.c calls it once per process. */
size_t rotary_stream_from_env(void);

/* 16 MiB, measured: non-temporal stores bypass the caches, so they pay only for outputs that would not stay there
 * anyway. On the development machine (32 MiB L3) an out-of-place call writing 8 MiB ran faster with ordinary
 * stores, one writing 16 MiB 25-35% faster with non-temporal ones, and the article's shape (64 MiB) went from
 * 0.87x a memcpy's speed to 1.4x (docs/performance.md). The cache size the OS reports is no guide: this VM's glibc
 * said 320 MiB. */
size_t rotary_stream_default(void);

/* Transition for tools/bench_impls.c (not this file's owner's): the process default, read-only. To be replaced
 * there by rotary_context_tuning(NULL)->nt_min_bytes (tuning.h), then removed. */
#define rotary_stream_min_bytes (rotary_context_tuning(NULL)->nt_min_bytes)

#endif /* ROTARY_STREAM_H */
