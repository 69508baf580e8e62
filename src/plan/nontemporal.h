/* nontemporal.h: from what output size out-of-place calls store non-temporally: the default of stream_store_bytes. */
#ifndef ROTARY_NONTEMPORAL_H
#define ROTARY_NONTEMPORAL_H

#include <stddef.h>

/* The default of rotary_tuning.nt_min_bytes (out-of-place calls that write at least this many bytes, q and k
 * outputs together, use the _nt kernels where the chosen kernel has one), before ROTARY_TUNING_FILE and
 * ROTARY_STREAM_STORES (tuning.c): 16 MiB, measured. Non-temporal stores bypass the caches, so they pay only for
 * outputs that would not stay there anyway. On the development machine (32 MiB L3) an out-of-place call writing
 * 8 MiB ran faster with ordinary stores, one writing 16 MiB 25-35% faster with non-temporal ones, and the
 * article's shape (64 MiB) went from 0.87x a memcpy's speed to 1.4x (docs/performance.md). The cache size the OS
 * reports is no guide: this VM's glibc said 320 MiB. */
size_t rotary_nt_default(void);

#endif /* ROTARY_NONTEMPORAL_H */
