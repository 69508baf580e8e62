/* stream.h: from what output size out-of-place calls use the kernels' non-temporal stores: a per-process knob. */
#ifndef ROTARY_STREAM_H
#define ROTARY_STREAM_H

#include <stddef.h>

/* Out-of-place calls that write at least this many bytes (q and k outputs together) use the _nt kernels where the
 * chosen kernel has one; SIZE_MAX: never. Set once per process by the kernel dispatcher (rotary_stream_init): the
 * environment variable ROTARY_STREAM_STORES ("off" or a byte count), else rotary_stream_default(). */
extern size_t rotary_stream_min_bytes;

/* Reads ROTARY_STREAM_STORES or takes the default; called once by the dispatcher. */
void rotary_stream_init(void);

/* 16 MiB, measured: non-temporal stores bypass the caches, so they pay only for outputs that would not stay there
 * anyway. On the development machine (32 MiB L3) an out-of-place call writing 8 MiB ran faster with ordinary
 * stores, one writing 16 MiB 25-35% faster with non-temporal ones, and the article's shape (64 MiB) went from
 * 0.87x a memcpy's speed to 1.4x (docs/performance.md). The cache size the OS reports is no guide: this VM's glibc
 * said 320 MiB. */
size_t rotary_stream_default(void);

#endif /* ROTARY_STREAM_H */
