/* kv_validate.h: the complete checks of rotary_kv_write and rotary_kv_rerotate calls, before anything is written. */
#ifndef ROTARY_KV_VALIDATE_H
#define ROTARY_KV_VALIDATE_H

#include "cache_view.h"
#include "rotary.h"

/* Checks every argument, position, slot and buffer relation of a KV write; on OK *geom is the caches' geometry.
 * ROTARY_OK or the first problem (the statuses of rotary_kv_write). on_device: everything lives in GPU memory;
 * nothing is dereferenced, positions and cache indices are left to the kernel. */
rotary_status rotary_validate_kv_write(const rotary_rope *rope, const rotary_kv_write_desc *desc,
                                       rotary_cache_geom *geom, int on_device);

/* Checks a re-rotation; on OK *geom is the key cache's geometry. */
rotary_status rotary_validate_kv_rerotate(const rotary_rope *rope, const rotary_kv_rerotate_desc *desc,
                                          rotary_cache_geom *geom);

#endif /* ROTARY_KV_VALIDATE_H */
