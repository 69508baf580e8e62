/* kv_write_plan.h: the plan of one KV-cache call (write or re-rotation): kernels per tensor, walk, task split. */
#ifndef ROTARY_KV_WRITE_PLAN_H
#define ROTARY_KV_WRITE_PLAN_H

#include <stddef.h>

#include "cache_view.h"
#include "convert_kernels.h"
#include "copy_kernels.h"
#include "kernels.h"
#include "rope.h"
#include "rotary.h"
#include "rotate_fp8_kernels.h"
#include "tuning.h"

/* f32 head rows up to this many floats live on the executing task's stack; longer ones in the task's scratch. */
#define ROTARY_KV_STACK_ROW 1024
/* A task's row buffer (rotary_rope_task_floats: a cos/sin row, and the scratch of a table-free multi-stream
 * gather; or a block of computed rows, rows_block) up to this many floats (16 KiB) lives on the stack too: every
 * rope with rotary_dim <= 2048 fits. */
#define ROTARY_KV_STACK_ROWS 4096

/* How one of k and v reaches its cache:
 * - direct (input dtype == cache dtype): k rotated by the dtype's kernel straight from the input head row into the
 *   cache row; v copied with memcpy (or the streaming copy, v_copy);
 * - through f32: the head rows converted to an f32 row buffer (to_f32; NULL when the input is f32: read in place),
 *   k rotated there by the f32 kernel (from the input rows when they are f32), then converted to the cache dtype
 *   (from_f32 with the tensor's scale; NULL when the cache is f32: the f32 result goes straight into the cache);
 *   as many heads per pass as ROTARY_KV_STACK_ROW floats hold, one conversion call for all of them where the rows
 *   are packed (NHD caches, packed QKV rows);
 * - k into an fp8 cache, rotated and encoded in one pass (to_fp8) where a rotate-to-fp8 kernel has the ISA of the
 *   f32 path's rotation (AVX2, AVX-512, scalar-only builds): no f32 row in between, the same bits
 *   (rotate_fp8_kernels.h).
 * Same bits as a direct kernel would give: f16/bf16 -> f32 is exact, the f32 kernel does the same fp32 operations
 * as every other kernel (kernels.h; NaN outputs rotary_pair_nan of the same fp32 inputs: quieting a NaN twice is
 * quieting it once), and the one rounding to the destination is the last conversion. */
typedef struct rotary_kv_path {
  int direct;
  const rotary_kernel *kernel;        /* k: the rotation kernel (cache dtype when direct, else f32) */
  rotary_convert_fn to_f32, from_f32; /* NULL as described above */
  rotary_convert_fn to_cache;         /* v through f32: input -> cache dtype in one pass where a kernel does it
                                         (bf16 -> fp8: the same bits, no f32 row in between), else NULL */
  rotary_rotate_fp8_fn to_fp8;        /* k into an fp8 cache in one pass (see above), else NULL */
  float scale;                        /* fp8 cache: k_scale or v_scale; 1 otherwise */
  size_t in_elem;
} rotary_kv_path;

/* Work units are token-major: per token, q's heads, then the kv heads (one unit: k and v of that head). Tasks take
 * contiguous ranges of units, so a token's cos/sin row is looked up once per task and token. */
typedef struct rotary_kv_write_plan {
  const rotary_rope *rope;
  const rotary_kv_write_desc *d;  /* validated */
  rotary_positions positions;     /* d->positions with stream_stride resolved (0 -> tokens) */
  const rotary_tuning *tuning;
  rotary_cache_geom geom;
  const rotary_kernel *q_kernel;  /* NULL when q is left out */
  size_t q_elem;
  rotary_kv_path k, v;
  int streams;                    /* the cache writes stream (k's _nt kernel, the streaming v_copy, the fp8
                                     kernels' _nt variants): each task fences at its end */
  rotary_copy_fn v_copy;          /* direct v rows: the streaming copy for a call that streams its cache writes
                                     (kv_write_plan.c), else NULL (memcpy); one call for a token's v rows where
                                     they are one run on both sides (NHD caches), one per head row otherwise */
  size_t tokens, per_token, units;
  int rows_in_table;              /* the next token's table row can be prefetched (ids) */
  size_t rows_block;              /* tokens whose computed cos/sin rows come at once (rotary_rows_block_size) */
  size_t threads, tasks;
  size_t scratch_floats;          /* per task: a long row buffer and/or a head row in f32; 0: none */
  float *scratch;
} rotary_kv_write_plan;

/* Plans a validated write (geom from rotary_validate_kv_write) for at most `available` threads (>= 1). */
void rotary_kv_write_plan_build(rotary_kv_write_plan *plan, const rotary_rope *rope, const rotary_kv_write_desc *d,
                                const rotary_cache_geom *geom, const rotary_tuning *tuning, size_t available);

/* A re-rotation: the delta's cos/sin row (computed once), and slot ranges per task. */
typedef struct rotary_kv_rerotate_plan {
  const rotary_rope *rope;
  const rotary_kv_rerotate_desc *d; /* validated */
  const rotary_tuning *tuning;
  rotary_cache_geom geom;
  rotary_kv_path k;                 /* fp8: through f32, else direct (in place) */
  const float *cos, *sin;           /* the delta row */
  size_t threads, tasks, scratch_floats;
  float *scratch;
} rotary_kv_rerotate_plan;

void rotary_kv_rerotate_plan_build(rotary_kv_rerotate_plan *plan, const rotary_rope *rope,
                                   const rotary_kv_rerotate_desc *d, const rotary_cache_geom *geom,
                                   const rotary_tuning *tuning, size_t available);

#endif /* ROTARY_KV_WRITE_PLAN_H */
