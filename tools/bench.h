/* bench.h: the pieces of `rotary bench` (options, workload, implementations, report) and how they connect. */
#ifndef ROTARY_BENCH_H
#define ROTARY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rotary.h"

#define BENCH_WARMUPS 3
#define BENCH_NAIVE_MAX_DIM 1024 /* the naive loop's local head buffers (bench_naive.c) */

typedef struct bench_options {
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
  int tune;           /* --tune: the fused call once per software-prefetch distance (bench_tune.c) */
  int table_free;     /* also time rotary_apply with a table-free rope (cos/sin computed per token) */
  rotary_layout layout; /* --layout: q and k as [batch, seq, heads, dim] (default) or [batch, heads, seq, dim] */
} bench_options;

/* A model's attention shape. */
typedef struct bench_preset {
  const char *name;
  size_t heads, kv_heads, head_dim, rotary_dim;
  double base;
  const char *note;
} bench_preset;

/* Everything the implementations work on; filled by bench_setup_create, every buffer written once. */
typedef struct bench_setup {
  const bench_options *o;
  rotary_context *ctx;
  rotary_rope *rope;
  rotary_rope *rope_free;   /* the same config without a table, for --table-free (else NULL) */
  rotary_apply_desc desc;  /* the fused call */
  size_t rows;             /* tokens of the call: batch * seq_len */
  size_t esize;            /* bytes per element */
  size_t heads[2];         /* q, k */
  size_t bytes[2];         /* whole q and k tensors */
  void *in[2], *out[2];    /* out == in when in place */
  int64_t *pos;            /* rows positions (what the baselines use; the fused call gets offset 0 or these ids) */
  float *cos_tab, *sin_tab;/* [table][rotary_dim / 2] fp32, the rope's own values */
  /* the composed baseline's intermediates, in the model dtype, reused for q then k (like a caching allocator) */
  void *cos_full, *sin_full; /* [rows][rotary_dim] */
  void *rot, *tmp1, *tmp2, *sum; /* [rows][max heads][rotary_dim] */
} bench_setup;

/* One row of the table. run() does one call; bytes() counts what its loops read and write, per call. */
typedef struct bench_impl {
  const char *id;    /* JSON name */
  const char *label; /* table name */
  rotary_status (*run)(bench_setup *s);
  double (*bytes)(const bench_setup *s);
  int checked;       /* its output is compared with the fused call's */
} bench_impl;

typedef struct bench_result {
  const bench_impl *impl;
  double median, min, max; /* ms */
  double max_rel_err;      /* vs the fused call; < 0 when not checked */
} bench_result;

/* bench_options.c */
int bench_parse_options(int argc, char **argv, bench_options *o); /* 1 ok, 0 bad (message printed), -1 help shown */
void bench_usage(FILE *f);

/* bench_presets.c */
const bench_preset *bench_find_preset(const char *name);
void bench_list_presets(FILE *f);

/* bench_setup.c */
rotary_status bench_setup_create(const bench_options *o, bench_setup *s);
void bench_setup_destroy(bench_setup *s);
double bench_qk_bytes(const bench_setup *s);     /* q + k tensors */
double bench_ideal_bytes(const bench_setup *s);  /* one read and one write of what must be rotated or copied */
size_t bench_split(size_t n, size_t index, size_t count); /* first item of task index among count */

/* bench_impls.c: stream, copy, fused; bench_naive.c; bench_composed.c */
extern const bench_impl bench_impl_stream, bench_impl_copy, bench_impl_fused, bench_impl_fused_free,
    bench_impl_naive, bench_impl_composed;

/* bench_check.c: runs each checked implementation once from the same input, compares with the fused call. */
rotary_status bench_check(bench_setup *s, bench_result *results, size_t n);

/* bench_report.c */
void bench_print_table(const bench_setup *s, const bench_result *r, size_t n);
void bench_print_json(const bench_setup *s, const bench_result *r, size_t n);

static inline const char *bench_dtype_name(rotary_dtype d) {
  return d == ROTARY_F32 ? "f32" : d == ROTARY_F16 ? "f16" : "bf16";
}

/* --tune: the fused call with each candidate prefetch distance (src/prefetch.h), as rows of the table. */
#define BENCH_TUNE_COUNT 6
extern const bench_impl bench_impl_tune[BENCH_TUNE_COUNT];
/* Prints which candidate ran fastest (after the table). */
void bench_print_tune(const bench_result *r, size_t n);

/* Frees what bench_parse_options allocated (the parsed --config). */
void bench_options_free(bench_options *o);

#endif /* ROTARY_BENCH_H */
