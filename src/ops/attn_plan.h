/* attn_plan.h: the plan of one decode-attention call: kernels, chunks of cache rows, tasks, key blocks, scratch. */
#ifndef ROTARY_ATTN_PLAN_H
#define ROTARY_ATTN_PLAN_H

#include <stdatomic.h>
#include <stddef.h>

#include "attn_kernels.h"
#include "attn_validate.h"
#include "convert_kernels.h"
#include "kernels.h"
#include "rope.h"
#include "rotary.h"
#include "tuning.h"

/* Cache rows per chunk (one item: one sequence, one chunk, every kv head) unless the call would have more items
 * or more partial results than the bounds below (the chunk then doubles until it fits) or fewer than
 * ROTARY_ATTN_MIN_ITEMS items (it halves, not below ROTARY_ATTN_MIN_CHUNK). A function of the shape alone (lengths,
 * heads, tokens, window), never of the thread count: results are bit-identical for every thread count. An item
 * takes every kv head of its rows: in an NHD cache a row's heads are contiguous, so the item reads one contiguous
 * range of k and one of v (a head alone would read head_dim elements every kv_heads * head_dim, a stride the
 * hardware prefetchers do not follow). */
#define ROTARY_ATTN_CHUNK 512
#define ROTARY_ATTN_MIN_CHUNK 128
#define ROTARY_ATTN_MIN_ITEMS 16
/* The most tasks of one phase (the pool's bound): when a call has more work items (sequence x kv head x chunk),
 * each task takes a fixed run of consecutive items. */
#define ROTARY_ATTN_MAX_TASKS 65535u
/* The most bytes of partial results (head_dim accumulators, m and l per query row, kv head and item). */
#define ROTARY_ATTN_MAX_PARTIAL_BYTES ((size_t)64 << 20)
/* Key rows per key block: at most this many, never across a cache block. The kernels read a block's rows in place
 * (NHD and HND) and, meanwhile, ask for the next block's (attn_kernels.h's rotary_attn_prefetch). A call with few
 * query rows per kv head (a decode token's GQA group) reads more than it computes: its blocks are half as long, so
 * that the rows in use and the next block's rows asked for fit in L2 together (a Zen 4, 64 x 4096 bf16 NHD, one
 * token: 9% faster at 1 thread and 15-20% at 2 than with 64; 1-4% with fp8). With more rows each key serves more
 * arithmetic, and fewer, longer kernel calls win (16 tokens, precision BF16: 7% slower with 32). */
#define ROTARY_ATTN_KEY_BLOCK 64
#define ROTARY_ATTN_KEY_BLOCK_FEW 32
#define ROTARY_ATTN_FEW_ROWS 8

/* The key block length of a call with `rows` query rows per kv head. */
static inline size_t rotary_attn_key_block_len(size_t rows) {
  return rows <= ROTARY_ATTN_FEW_ROWS ? ROTARY_ATTN_KEY_BLOCK_FEW : ROTARY_ATTN_KEY_BLOCK;
}

/* Query rows per kernel call (the logits buffer is rows x key block floats). */
#define ROTARY_ATTN_ROW_BLOCK 64

/* Query rows of one (sequence, kv head) are its group x tokens q heads, row r = t * group + g (token-major: the
 * rows of a token are contiguous, so the tokens a key block is visible to form one contiguous run of rows). */
typedef struct rotary_attn_plan {
  const rotary_attn_view *v;        /* validated */
  const rotary_attention_desc *d;
  const rotary_rope *rope;
  const rotary_tuning *tuning;
  rotary_attn_kernels kv;           /* scores (rotating ones for QK), values of the cache dtype, exp (precision
                                       BF16: scores and values are the `_dot` ones where the CPU has them) */
  int bf16;                         /* precision BF16: q rows and probabilities rounded to bf16 (attn_execute.c) */
  rotary_convert_fn q_to_f32;       /* NULL for an f32 q (copied) */
  const rotary_kernel *rotate_f32;  /* rope modes Q and QK: the f32 rotation kernel of q, the rope's pairing */
  rotary_convert_fn out_from_f32;   /* NULL for an f32 output (copied) */
  size_t rows;                      /* query rows per (sequence, kv head): group * tokens */
  size_t chunk;                     /* cache rows per chunk */
  size_t key_block;                 /* key rows per key block */
  size_t items;                     /* work items (sequence, chunk): sum over b of chunks_b */
  size_t per_task;                  /* consecutive items per attention task */
  size_t tasks;                     /* attention tasks: ceil(items / per_task) */
  size_t threads;                   /* threads worth running (<= the caller's) */
  /* scratch: sized by rotary_attn_plan_scratch_bytes, carved by rotary_attn_plan_bind */
  size_t q_floats;                  /* prepared q: batch * kv_heads * rows * head_dim */
  size_t partial_floats;            /* per item and kv head (slot item * kv_heads + h): rows * head_dim
                                       accumulators, rows m, rows l, padded to a line */
  size_t lane_floats;               /* per running thread: logits (ROW_BLOCK x key_block), a key block's rows for
                                       the rotating kernel (cs_at), from row_at a cos/sin row buffer (Q, QK) */
  size_t row_at;
  int rotate_in_scores;             /* rope mode QK: keys rotated in the scores kernel (kv.scores_rot of the rope's
                                       pairing) as they are read */
  size_t cs_at;                     /* rotate_in_scores: a key block's rows of cos/sin (a table-free rope, half
                                       pairs) or of B/D (interleaved pairs, attn_kernels.h), cs_floats apart */
  size_t cs_floats, cs_second;      /* floats per key row there, and from a row's first part to its second */
  size_t lanes;
  size_t *item_start;               /* batch + 1 entries (in the scratch): sequence b's first item */
  float *q;
  float *partial;
  float *lane;
  atomic_int *lane_busy;            /* per lane: 1 while a task uses it */
} rotary_attn_plan;

/* Plans a validated call for at most `available` threads (>= 1): kernels, chunk, tasks (their per-sequence index
 * needs the scratch: see rotary_attn_plan_bind), lanes and scratch sizes. */
void rotary_attn_plan_build(rotary_attn_plan *plan, const rotary_rope *rope, const rotary_attn_view *v,
                            const rotary_tuning *tuning, size_t available);

/* Bytes of scratch the plan needs (64-byte aligned block); 0 never. SIZE_MAX when it cannot be counted (OOM). */
size_t rotary_attn_plan_scratch_bytes(const rotary_attn_plan *plan);

/* Carves the scratch (rotary_attn_plan_scratch_bytes, 64-byte aligned) and fills the per-sequence task index. */
void rotary_attn_plan_bind(rotary_attn_plan *plan, void *scratch);

/* The chunks of sequence b: the first chunk index and the count (chunks wholly outside every query's window are
 * left out). */
void rotary_attn_plan_chunks(const rotary_attn_plan *plan, size_t b, size_t *first, size_t *count);

/* The cache rows [*lo, *hi) that chunk c of sequence b covers: the chunk's rows inside [first attended row, L_b). */
void rotary_attn_plan_chunk_rows(const rotary_attn_plan *plan, size_t b, size_t c, size_t *lo, size_t *hi);

/* The end of the key block that starts at row pb of a chunk ending at `end`: at most key_block rows, never past the
 * cache block (page) that holds row pb. */
static inline size_t rotary_attn_plan_block_end(const rotary_attn_plan *plan, size_t pb, size_t end) {
  const size_t bs = plan->v->geom.block_size, block_end = (pb / bs + 1) * bs;
  size_t pe = end - pb > plan->key_block ? pb + plan->key_block : end;
  return pe < block_end ? pe : block_end;
}

/* Item i's sequence and chunk index (i < plan->items; the plan bound). Items run sequence by sequence, chunk by
 * chunk: a sequence's chunks are consecutive items, merged in that order. */
void rotary_attn_plan_item(const rotary_attn_plan *plan, size_t i, size_t *b, size_t *c);

/* A key block: rows [pb, pe) of sequence b (pe == pb: none). */
typedef struct rotary_attn_key_block {
  size_t b, pb, pe;
} rotary_attn_key_block;

/* The key block after [.., pe) of item `item` (sequence b, its rows ending at end): the item's next block, else the
 * first block of item + 1 when the same task runs it (item + 1 < items_end), else none. */
rotary_attn_key_block rotary_attn_plan_block_after(const rotary_attn_plan *plan, size_t item, size_t b, size_t pe,
                                                   size_t end, size_t items_end);

/* The prefetch cursors of kv head h while it uses a block of `keys` keys (>= 1): its share of block nb's k and v
 * rows (HND: the head's own rows of the block; NHD: the h-th of kv_heads equal slices of the block's rows, whose
 * heads lie together, so the heads' shares cover the rows once), per_key set so that the block's keys ask for all
 * of it. Empty cursors when nb is none. Not a setting: prefetch_bytes is the rope kernels' distance, and a tuner
 * that turned it off for ropes would have taken this away from attention too. */
void rotary_attn_plan_prefetch(const rotary_attn_plan *plan, rotary_attn_key_block nb, size_t h, size_t keys,
                               rotary_attn_prefetch *k, rotary_attn_prefetch *v);

#endif /* ROTARY_ATTN_PLAN_H */
