/* rotate_plan.h: the plan of one rotary_apply call: kernels, walk order, task split, store kind, prefetch, scratch. */
#ifndef ROTARY_ROTATE_PLAN_H
#define ROTARY_ROTATE_PLAN_H

#include <stddef.h>

#include "kernels.h"
#include "rope.h"
#include "rotary.h"
#include "tuning.h"

/* A task's row buffer (rotary_rope_task_floats: a cos/sin row, and the scratch of a table-free multi-stream
 * gather; or a block of computed rows, rows_block) up to this many floats (16 KiB) lives on the executing task's
 * stack; a longer one in a per-call scratch buffer. Every rope with rotary_dim <= 2048 fits. */
#define ROTARY_STACK_ROW 4096

/* The work of rotating q and k (tensor 0 and 1): tokens x heads units, split into `tasks` contiguous ranges. Two
 * walk orders:
 * - together (group[0] == 0): token by token, q's heads then k's, so a token's cos/sin row serves both;
 * - grouped (some tensor's heads are far apart): q's units, then k's; each tensor's heads in groups of group[i]
 *   (the last one smaller), and each group token by token. A row is looked up per group and token, so this order
 *   is used only when rows are read from a table or the caller (never computed). */
typedef struct rotary_rotate_plan {
  const rotary_rope *rope;
  const rotary_apply_desc *d;     /* validated */
  rotary_positions positions;     /* d->positions with stream_stride resolved (0 -> tokens) */
  const rotary_tuning *tuning;    /* the settings the kernels run with */
  const rotary_kernel *kernel[2]; /* q, k; NULL for a tensor without heads */
  int nontemporal[2];             /* store kind: kernel[i] is the non-temporal-store variant */
  size_t elem[2];                 /* element bytes */
  size_t heads[2];                /* k's is 0 when k is left out */
  size_t tokens;                  /* batch * seq_len */
  size_t units;                   /* tokens * (q heads + k heads): the work split between tasks */
  size_t group[2];                /* heads walked together per token; 0 when q and k walk together */
  int prefetch[2];                /* bytes ahead of each head row its kernel asks for (-1: none): the setting
                                     prefetch_bytes, one token's step for rows apart, none in the grouped order
                                     (rotate_plan.c, choose_prefetch) */
  int rows_in_table;              /* positions come from the table: the next token's row can be prefetched */
  size_t threads;                 /* threads that run the tasks, the caller included (rotary_rotate_plan_split) */
  size_t tasks;                   /* 1 .. units (rotary_rotate_plan_split) */
  size_t scratch_floats;          /* floats of scratch per task; 0 when the buffer fits the stack (ROTARY_STACK_ROW) */
  size_t rows_block;              /* tokens whose cos/sin rows are computed at once (1: token by token). Computed
                                     rows (a table-free rope, positions not COS_SIN) in the together order come
                                     as many at a time as the stack buffer holds, up to ROTARY_ROWS_BLOCK, and
                                     while they are computed the walk's next input lines are asked for: one
                                     computed between head rows now and then stalls the memory stream for more
                                     than its own time (see rotary_rotate_plan_split) */
  float *scratch;                 /* tasks * scratch_floats floats, owned by the executor; NULL until it runs */
} rotary_rotate_plan;

/* Plans the rotation of a validated call with the given settings: kernels, store kind, walk order.
 * Errors: OVERFLOW (the unit count). Writes nothing but *plan. */
rotary_status rotary_rotate_plan_build(rotary_rotate_plan *plan, const rotary_rope *rope,
                                       const rotary_apply_desc *desc, const rotary_tuning *tuning);

/* Splits the planned work for at most `available` threads (the caller included; >= 1): threads, tasks, scratch. */
void rotary_rotate_plan_split(rotary_rotate_plan *plan, size_t available);

#endif /* ROTARY_ROTATE_PLAN_H */
