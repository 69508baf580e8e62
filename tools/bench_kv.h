/* bench_kv.h: `rotary bench --op kv-write`: the workload (packed QKV, a KV cache) and its three rows. */
#ifndef ROTARY_BENCH_KV_H
#define ROTARY_BENCH_KV_H

#include "bench.h"
#include "convert_kernels.h"

/* How the limit writes k and v rows into the cache (bench_kv_pick_limit_stores). */
enum { BENCH_KV_MEMCPY = 0, /* the C library's memcpy (equal element sizes) */
       BENCH_KV_AVX2 = 1,   /* AVX2 loads and ordinary stores */
       BENCH_KV_NT = 2      /* AVX2 loads and non-temporal stores */ };

/* Everything the kv-write rows work on (bench_setup.kv); filled by bench_kv_setup_create. */
typedef struct bench_kv {
  rotary_kv_write_desc desc; /* the fused call: q in place in qkv, k and v into the caches */
  rotary_apply_desc rope;    /* the unfused pair's first step: q and k rotated in place in qkv */
  void *qkv;                 /* rows x [q heads, k heads, v heads] x head_dim, the input dtype */
  size_t row_elems;          /* elements of one token's row */
  size_t qkv_bytes;
  size_t kv_row;             /* kv_heads * head_dim: a token's k (or v) row, contiguous in the NHD cache */
  size_t esize, cache_esize; /* bytes per element of the input and of the cache */
  void *kc, *vc;             /* the key and value caches (rows no token writes are never touched) */
  size_t num_blocks, block_size, cache_bytes; /* cache_bytes: each of kc and vc */
  size_t *dst;               /* per token: element offset of its row in each cache */
  int64_t *lengths, *slots, *pos; /* per sequence; per token; per token (its position) */
  int limit_stores;          /* how the limit writes the cache rows: the kind that ran fastest at setup */
  const rotary_convert_kernel *to_f32, *from_f32; /* the unfused copy when the dtypes differ (NULL: f32 itself) */
  const rotary_convert_kernel *direct;             /* the unfused copy in one pass where a kernel does it (bf16 ->
                                                      fp8, as vLLM's quantizing cache copy), else NULL */
} bench_kv;

/* bench_kv_setup.c */
rotary_status bench_kv_setup_create(const bench_options *o, bench_setup *s);
void bench_kv_setup_destroy(bench_setup *s);
double bench_kv_input_bytes(const bench_setup *s); /* the packed QKV rows */
double bench_kv_ideal_bytes(const bench_setup *s); /* input read once; rotated q, k rows and v rows written once */
rotary_status bench_kv_check(bench_setup *s, bench_result *r, size_t n); /* each checked row against the fused */

/* bench_kv_impls.c */
extern const bench_impl bench_kv_fused, bench_kv_unfused, bench_kv_unfused_convert, bench_kv_limit;
void bench_kv_pick_limit_stores(bench_setup *s); /* times each store kind of the limit, keeps the fastest */
const char *bench_kv_limit_stores_name(const bench_kv *kv); /* "memcpy", "AVX2", "AVX2 non-temporal", ... */

/* bench_kv_report.c */
void bench_kv_print_header(const bench_setup *s);
void bench_kv_print_row(const bench_setup *s, const bench_result *r, const bench_result *first);
void bench_kv_print_notes(const bench_setup *s, const bench_result *r, size_t n);
int bench_kv_print_json(const bench_setup *s, const bench_result *r, size_t n); /* 0: out of memory */
void bench_kv_print_sweep_header(const bench_options *o);
void bench_kv_print_sweep_row(const bench_setup *s, const bench_result *r, size_t n);
void bench_kv_print_sweep_footer(void); /* the load average after the run */

#endif /* ROTARY_BENCH_KV_H */
