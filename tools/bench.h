/* bench.h: the pieces of `rotary bench` (options, workload, implementations, report) and how they connect. */
#ifndef ROTARY_BENCH_H
#define ROTARY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rotary.h"

#define BENCH_WARMUPS 3      /* calls before the first row's timed ones */
#define BENCH_WARMUPS_NEXT 1 /* before each later row's: the machine is warm and the check ran every row once */
#define BENCH_NAIVE_MAX_DIM 1024 /* the naive loop's local head buffers (bench_naive.c) */

/* --op: which operation the run times. */
typedef enum bench_op {
  BENCH_OP_ROPE = 0,    /* rotary_apply on q and k (the article's table) */
  BENCH_OP_KV_WRITE = 1, /* rotary_kv_write from packed QKV into a KV cache (bench_kv.c) */
  BENCH_OP_ATTENTION = 2 /* rotary_attention over a filled KV cache (bench_attn.c) */
} bench_op;

/* --streams: which multi-stream ids the comparison with 1-D ids uses. */
typedef enum bench_streams_pattern {
  BENCH_STREAMS_OFF = 0,
  BENCH_STREAMS_TEXT = 1, /* every stream holds the token's 1-D id: text tokens of an mRoPE model (the fast path) */
  BENCH_STREAMS_IMAGE = 2 /* image patches: (t, h, w) of a grid (vision layouts: (row, col)); decode: random ids */
} bench_streams_pattern;

#define BENCH_MAX_SETS 32 /* --set given at most this many times */

typedef struct bench_options {
  bench_op op;
  const char *tuning;                    /* --tuning FILE: loaded into the context (checked while parsing) */
  size_t n_sets;                         /* --set NAME=VALUE, in the order given (after --tuning) */
  rotary_setting set_which[BENCH_MAX_SETS];
  int64_t set_value[BENCH_MAX_SETS];
  const char *model;  /* preset name, the --config file's model_type or path, or NULL */
  const char *config; /* --config: a Hugging Face config.json, or NULL */
  rotary_config rope; /* with --config: the model's rope (family, scaling, dims, pairing) */
  rotary_hf_config *hf; /* with --config: owns rope's arrays; freed by bench_options_free */
  char model_name[96];  /* with --config: "model_type (rope_type)", what model points to */
  size_t batch, tokens, heads, kv_heads, head_dim, rotary_dim, threads, reps;
  size_t decode;      /* 0: prefill (positions 0..tokens-1 per row); N: N sequences of one token at random ids */
  size_t table;       /* positions in the cos/sin table */
  double base;
  rotary_dtype dtype;
  rotary_pairing pairing;
  int out_of_place, json;
  int tune;           /* --tune: the fused call once per candidate value of each setting (bench_tune.c) */
  int fused_only;     /* --fused-only: no composed, naive or copy rows */
  int stream_candidates; /* --stream-candidates: a row per candidate of the streaming pass (bench_impls.c) */
  const char *torch;  /* --torch[=PYTHON]: the Python that times real torch (bench_torch.c), or NULL */
  int table_free;     /* also time rotary_apply with a table-free rope (cos/sin computed per token) */
  rotary_layout layout; /* --layout: q and k as [batch, seq, heads, dim] (default) or [batch, heads, seq, dim] */
  int qkv;            /* --qkv: q and k as views into one packed QKV buffer [batch, seq, heads + 2 kv_heads, dim] */
  /* --op kv-write only */
  rotary_cache_index cache; /* --cache contiguous (SEQUENCES) or paged (SLOTS) */
  rotary_cache_layout cache_layout; /* --cache-layout nhd (default) or hnd: --op attention only */
  rotary_dtype cache_dtype; /* --cache-dtype */
  size_t block_size;        /* --block-size: rows per block of the paged cache */
  int sweep;                /* --sweep: the whole table (prefill and decode, both caches, bf16 and fp8,
                               1 and 2 threads) */
  int table_set;            /* --table was given (the sweep picks each mode's default otherwise) */
  /* --streams: the fused call with 1-D ids against the same call with multi-stream ids (bench_streams.c) */
  bench_streams_pattern streams;    /* BENCH_STREAMS_OFF, TEXT (streams agree) or IMAGE (a t,h,w or row,col grid) */
  rotary_streams stream_layout;     /* the rope's frequency-to-stream map: --stream-layout, the --model preset or
                                       the --config's; layout NONE when none */
} bench_options;

/* A model's attention shape. */
typedef struct bench_preset {
  const char *name;
  size_t heads, kv_heads, head_dim, rotary_dim;
  double base;
  const char *note;
  rotary_stream_layout stream_layout; /* NONE for one-stream models */
  size_t sections[ROTARY_MAX_STREAMS]; /* SECTIONS and INTERLEAVED: mrope_section; n_streams = entries above 0 */
} bench_preset;

typedef struct bench_setup bench_setup;

/* One row of the table. run(s, arg) does one call; bytes() counts what its loops read and write, per call. */
typedef struct bench_impl {
  const char *id;    /* JSON name */
  const char *label; /* table name */
  rotary_status (*run)(bench_setup *s, size_t arg);
  double (*bytes)(const bench_setup *s);
  int checked;       /* its output is compared with the fused call's */
  rotary_status (*timed)(bench_setup *s, double *ms); /* if set, one call timed by itself (--torch), not run() */
  size_t arg;        /* run's arg: which candidate a row of many alike runs (--tune, --stream-candidates) */
} bench_impl;

/* The streaming pass's candidates (bench_impls.c): a loop kind with a thread count, and its start-up timing. */
#define BENCH_STREAM_MAX 32
typedef struct bench_stream_cand {
  unsigned kind;            /* bench_impls.c's list of loops */
  size_t threads;           /* threads that run it */
  double median_ms, min_ms; /* of its start-up rounds */
} bench_stream_cand;

typedef struct bench_stream_pick {
  size_t n;      /* candidates */
  size_t best;   /* the one the limit runs: the lowest start-up median */
  size_t former; /* the pass rotary bench used before issue 13 (a compiler-vectorized loop, all threads) */
  size_t rounds; /* start-up rounds each candidate ran */
  bench_stream_cand c[BENCH_STREAM_MAX];
  bench_impl rows[BENCH_STREAM_MAX]; /* --stream-candidates: a row per candidate (bench_stream_rows) */
  char ids[BENCH_STREAM_MAX][32], labels[BENCH_STREAM_MAX][56];
} bench_stream_pick;

/* --tune's rows (bench_tune.c): row i runs the fused call with setting[i] at value[i]. */
#define BENCH_TUNE_MAX 48
typedef struct bench_tune_set {
  size_t n;
  rotary_setting setting[BENCH_TUNE_MAX];
  int64_t value[BENCH_TUNE_MAX];
  bench_impl rows[BENCH_TUNE_MAX];
  char ids[BENCH_TUNE_MAX][48], labels[BENCH_TUNE_MAX][48];
} bench_tune_set;

/* Two calls timed in pairs, one after the other in alternating order, reps pairs (bench.c, bench_time_pairs):
 * medians of each, and of the per-pair ratio b / a with its quartiles. n == 0: not measured. */
typedef struct bench_pairs {
  size_t n;
  double a_ms, b_ms;            /* medians */
  double ratio, ratio_q1, ratio_q3; /* of b / a per pair */
} bench_pairs;

/* Everything the implementations work on; filled by bench_setup_create, every buffer written once. */
struct bench_setup {
  const bench_options *o;
  rotary_context *ctx;
  rotary_rope *rope;
  rotary_rope *rope_free;   /* the same config without a table, for --table-free (else NULL) */
  rotary_apply_desc desc;  /* the fused call */
  size_t rows;             /* tokens of the call: batch * seq_len */
  size_t esize;            /* bytes per element */
  size_t heads[2];         /* q, k */
  size_t bytes[2];         /* whole q and k tensors */
  void *in[2], *out[2];    /* out == in when in place (--qkv: q and k heads of the packed buffer) */
  void *qkv;               /* --qkv: the packed buffer (in[0] and in[1] point into it), else NULL */
  size_t qkv_bytes;        /* its bytes */
  int64_t *pos;            /* rows positions (what the baselines use; the fused call gets offset 0 or these ids) */
  float *cos_tab, *sin_tab;/* [table][rotary_dim / 2] fp32, the rope's own values */
  /* the composed baseline's intermediates, in the model dtype, reused for q then k (like a caching allocator) */
  void *cos_full, *sin_full; /* [rows][rotary_dim] */
  void *rot, *tmp1, *tmp2, *sum; /* [rows][max heads][rotary_dim] */
  struct bench_torch *torch;     /* --torch: the child process (owned by rotary_cli_bench), else NULL */
  struct bench_kv *kv;           /* --op kv-write: its buffers and calls (bench_kv_setup.c), else NULL */
  struct bench_attn *attn;       /* --op attention: its cache, buffers and calls (bench_attn_setup.c), else NULL */
  bench_stream_pick stream;      /* the streaming pass: its candidates and the one picked (bench_impls.c) */
  bench_tune_set tune;           /* --tune: a row per candidate value of each setting */
  bench_pairs free_pairs;        /* --table-free: the table call against the table-free call, in pairs */
};


/* What bench_print_row flags (bench.c decides, bench_report.c explains). */
enum { BENCH_BEATS_LIMIT = 1, /* median below BENCH_LIMIT_MARGIN x the fastest streaming pass of its rounds */
       BENCH_WIDE_RANGE = 2   /* max - min above the median */ };
/* A row more than 10% faster than the fastest streaming pass of its own rounds is beyond the pass's noise: the data
 * sat in cache (where the pass is no limit) or the run was disturbed. */
#define BENCH_LIMIT_MARGIN 0.9

/* The marks a printed row carries for its flags: " !", " ~", " !~" or "". */
const char *bench_flag_mark(unsigned flags);
/* "paged" (vLLM slots) or "contiguous": the --cache of a KV-write or attention run. */
const char *bench_cache_name(const bench_options *o);

typedef struct bench_result {
  const bench_impl *impl;
  double median, min, max; /* ms */
  double limit_median, limit_min, limit_max; /* the streaming pass timed in the same rounds, ms */
  double max_rel_err;      /* vs the fused call; < 0 when not checked */
  int warmups;             /* untimed calls before the timed ones */
  unsigned flags;          /* BENCH_BEATS_LIMIT | BENCH_WIDE_RANGE */
} bench_result;

/* bench_options.c */
int bench_parse_options(int argc, char **argv, bench_options *o); /* 1 ok, 0 bad (message printed), -1 help asked */

/* bench_presets.c */
const bench_preset *bench_find_preset(const char *name);
void bench_list_presets(FILE *f);

/* bench.c: each row but the last in its block against the last row (the limit), printed by print as it ends
 * (print NULL: nothing printed); the last row from the limit samples of every block. */
typedef void (*bench_row_printer)(const bench_setup *s, const bench_result *r, const bench_result *first);
rotary_status bench_time_all(bench_setup *s, bench_result *r, size_t n, bench_row_printer print);
/* a against b in s->o->reps pairs, one warm-up call of each first; fills *out. */
rotary_status bench_time_pairs(bench_setup *s, const bench_impl *a, const bench_impl *b, bench_pairs *out);

/* bench_streams.c: `rotary bench --streams text|image`; returns the exit status. */
int bench_streams_main(const bench_options *o);
/* The stream of each of the rope's rotary_dim/2 frequencies by the header's rules for o->stream_layout. */
void bench_stream_of(const bench_options *o, uint8_t *map);
size_t bench_stream_count(const rotary_streams *st); /* ids per token: 1 for NONE, 2 for VISION_* */

/* bench_kv.c: `rotary bench --op kv-write`; returns the exit status. */
int bench_kv_main(const bench_options *o);

/* bench_attn.c: `rotary bench --op attention`; returns the exit status. */
int bench_attn_main(const bench_options *o);

/* bench_setup.c */
rotary_status bench_setup_library(const bench_options *o, bench_setup *s); /* rope(s) and context */
rotary_status bench_setup_create(const bench_options *o, bench_setup *s);
void bench_setup_destroy(bench_setup *s);
double bench_qk_bytes(const bench_setup *s);     /* q + k tensors */
double bench_ideal_bytes(const bench_setup *s);  /* one read and one write of what must be rotated or copied */
size_t bench_qkv_row(const bench_setup *s);      /* --qkv: elements from one token's row to the next */
/* The bytes the check saves, restores and compares for tensor t: q's and k's own buffers, or with --qkv the whole
 * packed buffer as t = 0 (v included: neither call may change it) and zero bytes of it as t = 1. */
void bench_check_span(const bench_setup *s, int t, void **p, size_t *bytes);
size_t bench_split(size_t n, size_t index, size_t count); /* first item of task index among count */

/* bench_impls.c: stream, copy, fused; bench_naive.c; bench_composed.c */
extern const bench_impl bench_impl_stream, bench_impl_copy, bench_impl_fused, bench_impl_fused_free,
    bench_impl_naive, bench_impl_composed;

/* bench_impls.c: the streaming pass (the limit) is the fastest of its candidates on this run's tensors: times
 * each candidate in interleaved start-up rounds and keeps the lowest median in s->stream (OUT_OF_MEMORY or OK). */
rotary_status bench_stream_pick_best(bench_setup *s);
void bench_stream_name(const bench_setup *s, size_t i, char *buf, size_t size); /* "AVX2 x4, 2 threads" */
int bench_stream_is_former(const bench_setup *s, size_t i); /* is candidate i the former pass? */
void bench_stream_rows(bench_setup *s); /* fills s->stream.rows (--stream-candidates) */

/* bench_check.c: runs each checked implementation once from the same input, compares with the fused call. */
rotary_status bench_check(bench_setup *s, bench_result *results, size_t n);

/* bench_report.c: the table is printed as it is measured: the header, then each row when its block is done (the
 * first row is the speedup's reference), then the notes; --json prints one object at the end. */
void bench_print_header(const bench_setup *s);
void bench_print_stream_pick(const bench_setup *s);
/* "settings: prefetch_bytes 1024 (default), ..." of s->ctx, and a ROTARY_TUNING_FILE that failed to load. */
void bench_print_settings(const bench_setup *s);
struct cJSON;
/* The same as --json members: "settings" ({name: {"value", "source"}}) and "tuning_env_error" (null or the
 * message); 0 when out of memory. */
int bench_json_settings(struct cJSON *doc, const bench_setup *s); /* the limit's loop, its rivals, the former pass's time */
void bench_print_row(const bench_setup *s, const bench_result *r, const bench_result *first);
void bench_print_notes(const bench_setup *s, const bench_result *r, size_t n);
void bench_print_flag_notes(unsigned flags); /* a blank line, then what the flags of the table's rows mean */
double bench_sig6(double x);                 /* x rounded to 6 significant digits (for JSON) */
int bench_print_json(const bench_setup *s, const bench_result *r, size_t n); /* 0: out of memory */
unsigned bench_all_flags(const bench_result *r, size_t n); /* the union of the rows' flags */
/* The end of a --json document shared by every operation: "stable" (no row flagged), then "rows" from row() of
 * each result (first: the reference row); ok is whether doc was filled so far. Returns doc, or NULL (doc and rows
 * freed) when ok is 0 or memory runs out. */
struct cJSON;
struct cJSON *bench_json_finish(struct cJSON *doc, struct cJSON *rows, int ok, const bench_setup *s,
                                const bench_result *r, size_t n,
                                struct cJSON *(*row)(const bench_setup *, const bench_result *, const bench_result *));
int bench_json_print(struct cJSON *doc); /* prints doc on one line and frees it; 0 when doc is NULL or on OOM */
/* The figures of a --json row that every operation has, under the names each operation gives its percentage (of
 * the streaming pass or of the limit) and its ratio (null when not above 0). */
typedef struct bench_json_figures {
  double gb_per_s, limit_gb_per_s;
  const char *pct_key;
  double pct, passes, bytes;
  const char *ratio_key;
  double ratio;
} bench_json_figures;
/* Adds the timings, f, max_rel_err_vs_fused and the flags to row (flags: an empty array for them); returns row, or
 * NULL (row and flags freed) when ok is 0 or memory runs out. */
struct cJSON *bench_json_row_finish(struct cJSON *row, struct cJSON *flags, int ok, const bench_result *r,
                                    const bench_json_figures *f);

static inline const char *bench_dtype_name(rotary_dtype d) {
  return d == ROTARY_F32 ? "f32" : d == ROTARY_F16 ? "f16" : d == ROTARY_FP8_E4M3 ? "fp8" : "bf16";
}

/* bench_tune.c: --tune, the fused call with each candidate value of every setting, a row each (s->tune). */
void bench_tune_rows(bench_setup *s);
int bench_is_tune_row(const bench_impl *impl);
/* Prints each setting's fastest value on this run against the current one (after the table). */
void bench_print_tune(const bench_setup *s, const bench_result *r, size_t n);

/* bench_torch.c: --torch, real torch timed in a Python child process that runs one call per request. */
typedef struct bench_torch bench_torch;
extern const bench_impl bench_impl_torch;
int bench_torch_start(const bench_options *o, bench_torch **t);   /* 0: failed, message printed */
rotary_status bench_torch_time(bench_torch *t, double *ms);       /* one call, timed by the child */
void bench_torch_stop(bench_torch *t);

/* Frees what bench_parse_options allocated (the parsed --config). */
void bench_options_free(bench_options *o);

#endif /* ROTARY_BENCH_H */
