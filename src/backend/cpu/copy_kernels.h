/* copy_kernels.h: the streaming copy (non-temporal stores) that the KV-cache write uses for large v rows. */
#ifndef ROTARY_COPY_KERNELS_H
#define ROTARY_COPY_KERNELS_H

#include <stddef.h>

#include "kernels.h"

/*
 * Copies `bytes` bytes from src to dst, as memcpy does (the same bytes; dst and src may start at any byte address
 * and do not overlap), storing the whole aligned vectors of dst non-temporally where the ISA can: the lines skip
 * the read that an ordinary store of a line not in cache costs, and do not displace what the caches hold. Those
 * stores are left unfenced: the task that calls it runs rotary_stream_fence (kernels.h) once at its end, and the
 * bytes are then visible to other threads as after memcpy. The scalar kernel is memcpy itself.
 */
typedef void (*rotary_copy_fn)(void *dst, const void *src, size_t bytes);

typedef struct rotary_copy_kernel {
  const char *name; /* rotary_copy_nt__<isa> */
  rotary_isa isa;
  rotary_copy_fn fn;
} rotary_copy_kernel;

/* One declaration per kernel of the list. */
#define ROTARY_COPY_NT(isa, ISA) void rotary_copy_nt__##isa(void *dst, const void *src, size_t bytes);
#include "copy_list.h"
#undef ROTARY_COPY_NT

/* Every compiled copy kernel, usable on this CPU or not (tests run each one that is). */
extern const rotary_copy_kernel rotary_copy_list[];
extern const size_t rotary_copy_count;

/* The best enabled (rotary_isa_enabled) streaming copy; never NULL (the scalar one is always there). */
const rotary_copy_kernel *rotary_copy_nt_select(void);

#endif /* ROTARY_COPY_KERNELS_H */
