// bench_attention_ggml.c: times ggml's CPU flash_attn_ext on decode shapes (issue 14's side-by-side; built by
// scripts/bench_attention_ggml.sh against a ggml or llama.cpp source tree, never part of the rotary build).
//
// Layout as llama.cpp builds it (ggml.h, ggml_flash_attn_ext):
//   q    [head_dim, n_tokens, n_q_heads,  n_seqs] f32
//   k, v [head_dim, kv_len,   n_kv_heads, n_seqs] cache type (f16 / bf16 / q8_0), v not transposed
//   mask [kv_len,   n_tokens, 1,          n_seqs] f16, all 0 (every cached token visible)
//   out  [head_dim, n_q_heads, n_tokens,  n_seqs] f32
// GQA by broadcast: n_q_heads is a multiple of n_kv_heads. The graph holds the one op; ggml_graph_plan with a
// ggml threadpool of n_threads (as llama.cpp does), one warm-up, then the median of RUNS timed computes.
// Two outputs of the last run are checked against an fp64 reference over the stored (dequantized) cache.
//
// Usage: bench_attention_ggml SEQS KV_LEN TYPE THREADS [RUNS]   (TYPE: f16, bf16, q8_0)
// Prints one markdown row: | shape | type | threads | median ms | min ms | cache GB/s | max err | other cpu |
// where "other cpu" is the cores' worth of CPU time other processes used during the timed runs (/proc/stat's busy
// time less this process's own), "n/a" where /proc/stat cannot be read: the machine may be shared.
#include "ggml.h"
#include "ggml-cpu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { HEAD_DIM = 128, Q_HEADS = 32, KV_HEADS = 8, N_TOKENS = 1, MAX_RUNS = 101 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

// Busy (non-idle, non-iowait) seconds of all CPUs from /proc/stat's first line; negative when unreadable.
static double busy_cpu_s(void) {
    FILE * f = fopen("/proc/stat", "r");
    unsigned long long v[8] = { 0 };
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7]) : 0;
    if (f) fclose(f);
    const long hz = sysconf(_SC_CLK_TCK);
    if (n != 8 || hz <= 0) return -1.0;
    return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double) hz; // user nice system irq softirq steal
}

// CPU seconds (user + system) this process used so far.
static double self_cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double) ru.ru_utime.tv_sec + 1e-6 * (double) ru.ru_utime.tv_usec + (double) ru.ru_stime.tv_sec +
           1e-6 * (double) ru.ru_stime.tv_usec;
}

static int cmp_double(const void * a, const void * b) {
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

// xorshift64*: uniform in [-1, 1), deterministic per seed.
static float rand_pm1(uint64_t * s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return (float) ((double) ((*s * 2685821657736338717ull) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

// Fills a cache tensor row by row (rows of HEAD_DIM) through ggml's own conversion / quantization.
static void fill_rows(struct ggml_tensor * t, uint64_t seed) {
    const int64_t nrows = ggml_nrows(t);
    const size_t  rs    = ggml_row_size(t->type, HEAD_DIM);
    enum { CHUNK = 4096 };
    float * buf = malloc(sizeof(float) * (size_t) CHUNK * HEAD_DIM);
    if (!buf) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t r0 = 0; r0 < nrows; r0 += CHUNK) {
        const int64_t n = nrows - r0 < CHUNK ? nrows - r0 : CHUNK;
        for (int64_t i = 0; i < n * HEAD_DIM; i++) buf[i] = rand_pm1(&seed);
        ggml_quantize_chunk(t->type, buf, (char *) t->data + (size_t) r0 * rs, 0, n, HEAD_DIM, NULL);
    }
    free(buf);
}

// fp64 attention for one (seq, q head) over the dequantized cache; returns the max |out - ref|.
static double check_one(const struct ggml_tensor * q, const struct ggml_tensor * k, const struct ggml_tensor * v,
                        const struct ggml_tensor * out, int64_t seq, int64_t h, float scale) {
    const int64_t kv_len = k->ne[1];
    const int64_t kh     = h / (Q_HEADS / KV_HEADS);
    const ggml_to_float_t k_to_f = ggml_get_type_traits(k->type)->to_float;
    const ggml_to_float_t v_to_f = ggml_get_type_traits(v->type)->to_float;
    const float * qp = (const float *) ((const char *) q->data + h * q->nb[2] + seq * q->nb[3]);
    double * s = malloc(sizeof(double) * (size_t) kv_len);
    double acc[HEAD_DIM] = { 0 };
    float  row[HEAD_DIM];
    if (!s) { fprintf(stderr, "out of memory\n"); exit(1); }
    double m = -INFINITY;
    for (int64_t j = 0; j < kv_len; j++) {
        k_to_f((const char *) k->data + j * k->nb[1] + kh * k->nb[2] + seq * k->nb[3], row, HEAD_DIM);
        double d = 0;
        for (int i = 0; i < HEAD_DIM; i++) d += (double) qp[i] * row[i];
        s[j] = d * scale;
        if (s[j] > m) m = s[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < kv_len; j++) {
        const double p = exp(s[j] - m);
        sum += p;
        v_to_f((const char *) v->data + j * v->nb[1] + kh * v->nb[2] + seq * v->nb[3], row, HEAD_DIM);
        for (int i = 0; i < HEAD_DIM; i++) acc[i] += p * row[i];
    }
    const float * op = (const float *) ((const char *) out->data + h * out->nb[1] + seq * out->nb[3]);
    double err = 0;
    for (int i = 0; i < HEAD_DIM; i++) {
        const double e = fabs(op[i] - acc[i] / sum);
        if (!(e <= err)) err = e; // NaN propagates
    }
    free(s);
    return err;
}

int main(int argc, char ** argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s SEQS KV_LEN TYPE(f16|bf16|q8_0) THREADS [RUNS]\n", argv[0]);
        return 2;
    }
    const int64_t seqs    = atoll(argv[1]);
    const int64_t kv_len  = atoll(argv[2]);
    const int     threads = atoi(argv[4]);
    const int     runs    = argc > 5 ? atoi(argv[5]) : 5;
    enum ggml_type type;
    if      (!strcmp(argv[3], "f16"))  type = GGML_TYPE_F16;
    else if (!strcmp(argv[3], "bf16")) type = GGML_TYPE_BF16;
    else if (!strcmp(argv[3], "q8_0")) type = GGML_TYPE_Q8_0;
    else { fprintf(stderr, "unknown type %s\n", argv[3]); return 2; }
    if (seqs < 1 || kv_len < 1 || threads < 1 || runs < 1 || runs > MAX_RUNS || seqs > (1 << 20) ||
        kv_len > (1 << 24)) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }

    const size_t cache_bytes = 2 * ggml_row_size(type, HEAD_DIM) * (size_t) kv_len * KV_HEADS * (size_t) seqs;
    const size_t mem = cache_bytes
                     + sizeof(float) * (size_t) HEAD_DIM * Q_HEADS * N_TOKENS * (size_t) seqs * 2 // q, out
                     + sizeof(ggml_fp16_t) * (size_t) kv_len * N_TOKENS * (size_t) seqs            // mask
                     + 16 * ggml_tensor_overhead() + ggml_graph_overhead() + (1u << 20);
    struct ggml_init_params ip = { .mem_size = mem, .mem_buffer = NULL, .no_alloc = false };
    ggml_cpu_init();
    struct ggml_context * ctx = ggml_init(ip);
    if (!ctx) { fprintf(stderr, "ggml_init failed for %zu bytes\n", mem); return 1; }

    struct ggml_tensor * q    = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, HEAD_DIM, N_TOKENS, Q_HEADS, seqs);
    struct ggml_tensor * k    = ggml_new_tensor_4d(ctx, type, HEAD_DIM, kv_len, KV_HEADS, seqs);
    struct ggml_tensor * v    = ggml_new_tensor_4d(ctx, type, HEAD_DIM, kv_len, KV_HEADS, seqs);
    struct ggml_tensor * mask = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, kv_len, N_TOKENS, 1, seqs);

    uint64_t seed = 0x9e3779b97f4a7c15ull;
    float * qd = (float *) q->data;
    for (int64_t i = 0; i < ggml_nelements(q); i++) qd[i] = rand_pm1(&seed);
    fill_rows(k, 1);
    fill_rows(v, 2);
    memset(mask->data, 0, ggml_nbytes(mask)); // f16 +0.0: no position masked

    const float scale = 1.0f / sqrtf((float) HEAD_DIM);
    struct ggml_tensor * out = ggml_flash_attn_ext(ctx, q, k, v, mask, scale, 0.0f, 0.0f);
    ggml_flash_attn_ext_set_prec(out, GGML_PREC_F32); // what llama.cpp sets
    struct ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);

    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    struct ggml_threadpool * tp = ggml_threadpool_new(&tpp);
    if (!tp) { fprintf(stderr, "ggml_threadpool_new failed\n"); return 1; }
    struct ggml_cplan plan = ggml_graph_plan(gf, threads, tp);
    void * work = plan.work_size ? malloc(plan.work_size) : NULL;
    if (plan.work_size && !work) { fprintf(stderr, "out of memory (work %zu)\n", plan.work_size); return 1; }
    plan.work_data = work;

    double t[MAX_RUNS];
    if (ggml_graph_compute(gf, &plan) != GGML_STATUS_SUCCESS) { fprintf(stderr, "compute failed\n"); return 1; }
    const double busy0 = busy_cpu_s(), self0 = self_cpu_s(), wall0 = now_s();
    for (int r = 0; r < runs; r++) {
        const double t0 = now_s();
        if (ggml_graph_compute(gf, &plan) != GGML_STATUS_SUCCESS) { fprintf(stderr, "compute failed\n"); return 1; }
        t[r] = now_s() - t0;
    }
    const double busy1 = busy_cpu_s(), self1 = self_cpu_s(), wall1 = now_s();
    char other[32] = "n/a";
    if (busy0 >= 0 && busy1 >= 0) {
        const double o = ((busy1 - busy0) - (self1 - self0)) / (wall1 - wall0);
        snprintf(other, sizeof other, "%.2f", o > 0 ? o : 0.0);
    }
    qsort(t, (size_t) runs, sizeof(double), cmp_double);
    const double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);

    double err = check_one(q, k, v, out, 0, 0, scale);
    const double e2 = check_one(q, k, v, out, seqs - 1, Q_HEADS - 1, scale);
    if (!(e2 <= err)) err = e2;

    printf("| %lld x %lld | %s | %d | %.3f | %.3f | %.2f | %.1e | %s |\n", (long long) seqs, (long long) kv_len,
           argv[3], threads, med * 1e3, t[0] * 1e3, (double) cache_bytes / med * 1e-9, err, other);

    ggml_threadpool_free(tp);
    free(work);
    ggml_free(ctx);
    return 0;
}
