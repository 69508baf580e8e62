/* bench_attn.h: `rotary bench --op attention`: the workload (a filled KV cache, one query token per sequence) and
 * its rows (ours with keys rotated, ours rotating keys on the fly, the composed passes, the streaming limit). */
#ifndef ROTARY_BENCH_ATTN_H
#define ROTARY_BENCH_ATTN_H

#include "bench.h"
#include "bench_attn_composed.h"

/* The limit's loops (bench_attn_pick_limit). */
enum { BENCH_ATTN_SUM_AVX2 = 0, /* 32-byte loads added into four vector accumulators */
       BENCH_ATTN_SUM_C = 1     /* 8-byte words added in plain C, four accumulators */ };

/* A piece of the cache the limit reads: bytes from byte offset `at`, in k and in v. */
typedef struct bench_attn_span {
  size_t at, bytes;
} bench_attn_span;

/* Everything the attention rows work on (bench_setup.attn); filled by bench_attn_setup_create. */
typedef struct bench_attn {
  rotary_attention_desc desc;   /* ours: rope_mode set by each row (Q or QK) */
  rotary_apply_desc rope_q;     /* the composed row's first step: q rotated into q_rot */
  bench_attn_composed comp;     /* the composed row's passes */
  size_t len;                   /* cached rows per sequence (every sequence the same) */
  size_t cache_esize, kv_row;   /* bytes per cache element; kv_heads * head_dim */
  size_t block_size, num_blocks, blocks_per_seq, cache_bytes; /* cache_bytes: each of k and v */
  void *kc, *vc;
  float *q, *q_rot, *out, *logits;
  int64_t *lengths, *pos;       /* per sequence: L; the query's position L - 1 */
  int32_t *block_table;         /* paged only: [batch][blocks_per_seq], physical blocks in random order */
  bench_attn_span *spans;       /* the limit's reading order */
  size_t n_spans;
  int limit_kind;               /* BENCH_ATTN_SUM_*: the faster at this thread count */
  double max_diff[3];           /* check: ours (Q, QK, Q with BF16) against the composed reference, max |difference| */
} bench_attn;

/* bench_attn_setup.c */
rotary_status bench_attn_setup_create(const bench_options *o, bench_setup *s);
rotary_status bench_attn_set_threads(bench_setup *s, size_t threads); /* a new context of that many threads */
void bench_attn_setup_destroy(bench_setup *s);
double bench_attn_cache_bytes(const bench_setup *s); /* the K and V rows attended, read once */
rotary_status bench_attn_check(bench_setup *s);      /* ours (Q and QK) against the composed passes */

/* bench_attn_impls.c */
extern const bench_impl bench_attn_ours_q, bench_attn_ours_qk, bench_attn_ours_q_bf16, bench_attn_composed_row,
    bench_attn_limit;
void bench_attn_pick_limit(bench_setup *s); /* times both loops of the limit, keeps the faster */
const char *bench_attn_limit_name(const bench_attn *a);

/* bench_attn_report.c */
void bench_attn_print_header(const bench_setup *s);
void bench_attn_print_row(const bench_setup *s, const bench_result *r, const bench_result *first);
void bench_attn_print_notes(const bench_setup *s, const bench_result *r, size_t n);
void bench_attn_print_sweep_header(const bench_options *o);
void bench_attn_print_sweep_row(const bench_setup *s, const bench_result *r, size_t n);
void bench_attn_print_sweep_footer(void);

#endif /* ROTARY_BENCH_ATTN_H */
