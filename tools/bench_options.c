/* bench_options.c: the command line of `rotary bench`: parsing, model presets, checks with clear messages. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_THREADS 1024
#define MAX_REPS 1000000

/* Options given explicitly (they override a --model preset, whatever the order). */
enum { SET_HEADS = 1, SET_KV = 2, SET_DIM = 4, SET_ROT = 8, SET_BASE = 16, SET_BATCH = 32, SET_TOKENS = 64,
       SET_TABLE = 128, SET_DECODE = 256, SET_PAIRING = 512 };

void bench_usage(FILE *f) {
  fprintf(f,
          "usage: rotary bench [--model NAME | --config config.json] [--tokens N] [--batch N] [--decode N] [--heads N] [--kv-heads N]\n"
          "                    [--head-dim N] [--rotary-dim N] [--base X] [--table N] [--dtype f32|f16|bf16]\n"
          "                    [--pairing half|interleaved] [--threads N] [--reps N] [--out-of-place] [--table-free] [--json] [--tune]\n"
          "                    [--layout bshd|bhsd]\n"
          "Times (a) composed ops as a framework runs them, (b) the article's naive per-element loop, (c) the fused\n"
          "rotary_apply, a streaming pass (the limit) and, out of place, a memcpy, round-robin in the same run.\n"
          "Defaults: the article's LLaMA-7B shape: batch 1, 2048 tokens, 32 q and 32 k heads, head_dim 128, f32,\n"
          "half pairing, q and k in place, all online CPUs (--threads 0), 30 timed repetitions after %d warm-ups.\n"
          "  --decode N   N sequences of one token each (batch N, seq_len 1) at random positions below the table\n"
          "               size, passed as int64 ids; --table defaults to 4096 then (else to --tokens)\n"
          "  --table-free adds a row: the fused call with a table-free rope (cos/sin rows computed per token)\n"
          "  --layout     bhsd: q and k heads-major, [batch, heads, seq, head_dim]; the composed and naive rows\n"
          "               (written for bshd) are left out\n"
          "  --model      sets heads, kv heads, head_dim, rotary_dim and base; explicit options override it\n"
          "  --tune       also times the fused call with each software-prefetch distance (off, 0, 512, 1024,\n"
          "               2048, 4096 bytes ahead) and names the fastest: set it with ROTARY_PREFETCH\n"
          "  --config F   a Hugging Face config.json: heads, kv heads, head_dim, rotary_dim, pairing, base and the\n"
          "               frequency scaling of the model (for dynamic NTK and LongRoPE at seq_len = table size);\n"
          "               --heads, --kv-heads, --tokens, --table and --dtype may still be given\n"
          "models:\n",
          BENCH_WARMUPS);
  bench_list_presets(f);
}

/* Prints "rotary bench: <message>" and returns 0 (a bad option). */
static int bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rotary bench: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 0;
}

static int parse_size(const char *s, size_t *v) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (!*s || *end || s[0] == '-' || s[0] == '+' || errno || x > SIZE_MAX) return 0;
  *v = (size_t)x;
  return 1;
}

static size_t *size_option(bench_options *o, const char *a, unsigned *set) {
  static const struct { const char *name; size_t offset; unsigned flag; } table[] = {
      {"--tokens", offsetof(bench_options, tokens), SET_TOKENS},
      {"--batch", offsetof(bench_options, batch), SET_BATCH},
      {"--heads", offsetof(bench_options, heads), SET_HEADS},
      {"--kv-heads", offsetof(bench_options, kv_heads), SET_KV},
      {"--head-dim", offsetof(bench_options, head_dim), SET_DIM},
      {"--rotary-dim", offsetof(bench_options, rotary_dim), SET_ROT},
      {"--threads", offsetof(bench_options, threads), 0},
      {"--reps", offsetof(bench_options, reps), 0},
      {"--decode", offsetof(bench_options, decode), SET_DECODE},
      {"--table", offsetof(bench_options, table), SET_TABLE},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (!strcmp(a, table[i].name)) {
      *set |= table[i].flag;
      return (size_t *)((char *)o + table[i].offset);
    }
  return NULL;
}

static int parse_enum(bench_options *o, const char *a, const char *v) {
  if (!strcmp(a, "--dtype")) {
    if (!strcmp(v, "f32")) o->dtype = ROTARY_F32;
    else if (!strcmp(v, "f16")) o->dtype = ROTARY_F16;
    else if (!strcmp(v, "bf16")) o->dtype = ROTARY_BF16;
    else return bad("--dtype wants f32, f16 or bf16, got '%s'", v);
  } else if (!strcmp(a, "--pairing")) {
    if (!strcmp(v, "half")) o->pairing = ROTARY_PAIRING_HALF;
    else if (!strcmp(v, "interleaved")) o->pairing = ROTARY_PAIRING_INTERLEAVED;
    else return bad("--pairing wants half or interleaved, got '%s'", v);
  } else if (!strcmp(a, "--layout")) {
    if (!strcmp(v, "bshd")) o->layout = ROTARY_LAYOUT_BSHD;
    else if (!strcmp(v, "bhsd")) o->layout = ROTARY_LAYOUT_BHSD;
    else return bad("--layout wants bshd or bhsd, got '%s'", v);
  } else if (!strcmp(a, "--model")) {
    if (!bench_find_preset(v)) {
      bad("unknown model '%s'; known models:", v);
      bench_list_presets(stderr);
      return 0;
    }
    o->model = v;
  }
  return 1;
}

static int parse_base(const char *v, double *base) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || x <= 0) return bad("--base wants a positive number, got '%s'", v);
  *base = x;
  return 1;
}

static int parse_args(int argc, char **argv, bench_options *o, unsigned *set) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--out-of-place")) { o->out_of_place = 1; continue; }
    if (!strcmp(a, "--json")) { o->json = 1; continue; }
    if (!strcmp(a, "--tune")) { o->tune = 1; continue; }
    if (!strcmp(a, "--table-free")) { o->table_free = 1; continue; }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return -1;
    size_t *target = size_option(o, a, set);
    if (!target && strcmp(a, "--base") && strcmp(a, "--dtype") && strcmp(a, "--pairing") && strcmp(a, "--model") &&
        strcmp(a, "--config") && strcmp(a, "--layout"))
      return bad("unknown option '%s'", a);
    if (!v) return bad("%s needs a value", a);
    i++;
    if (target) {
      if (!parse_size(v, target)) return bad("%s wants a whole number, got '%s'", a, v);
    } else if (!strcmp(a, "--base")) {
      if (!parse_base(v, &o->base)) return 0;
      *set |= SET_BASE;
    } else if (!strcmp(a, "--config")) {
      o->config = v;
    } else if (!parse_enum(o, a, v)) {
      return 0;
    } else if (!strcmp(a, "--pairing")) {
      *set |= SET_PAIRING;
    }
  }
  return 1;
}

static void apply_preset(bench_options *o, unsigned set) {
  const bench_preset *p = o->model ? bench_find_preset(o->model) : NULL;
  if (!p) return;
  if (!(set & SET_HEADS)) o->heads = p->heads;
  if (!(set & SET_KV)) o->kv_heads = p->kv_heads;
  if (!(set & SET_DIM)) o->head_dim = p->head_dim;
  if (!(set & SET_ROT)) o->rotary_dim = p->rotary_dim;
  if (!(set & SET_BASE)) o->base = p->base;
}

/* --config: the model's shape and rope; the options that would contradict it are refused. */
static int load_config(bench_options *o, unsigned set) {
  if (!o->config) return 1;
  if (o->model) return bad("--model and --config both describe the model: give one");
  if (set & (SET_DIM | SET_ROT | SET_BASE | SET_PAIRING))
    return bad("--head-dim, --rotary-dim, --base and --pairing come from --config: drop them");
  rotary_hf_config *h = NULL;
  char err[512];
  rotary_status st = rotary_hf_config_load(o->config, &h, err, sizeof err);
  if (st != ROTARY_OK) return bad("--config %s: %s", o->config, err);
  o->hf = h;
  o->rope = *rotary_hf_config_rope(h);
  const char *type = rotary_hf_config_model_type(h);
  snprintf(o->model_name, sizeof o->model_name, "%s (%s)", type[0] ? type : o->config, rotary_hf_config_rope_type(h));
  o->model = o->model_name;
  if (!(set & SET_HEADS)) o->heads = rotary_hf_config_heads(h) ? rotary_hf_config_heads(h) : o->heads;
  if (!(set & SET_KV)) o->kv_heads = rotary_hf_config_kv_heads(h);
  o->head_dim = o->rope.head_dim;
  o->rotary_dim = o->rope.rotary_dim;
  o->base = o->rope.base;
  o->pairing = o->rope.pairing;
  return 1;
}

void bench_options_free(bench_options *o) {
  rotary_hf_config_destroy(o->hf);
  o->hf = NULL;
}

static int check_shape(const bench_options *o, unsigned set) {
  if (!o->batch || !o->tokens || !o->heads) return bad("--batch, --tokens and --heads must be at least 1");
  if ((set & SET_KV) && !o->kv_heads) return bad("--kv-heads must be at least 1");
  if (!o->head_dim || o->head_dim % 2 || o->head_dim > ROTARY_MAX_HEAD_DIM)
    return bad("--head-dim must be even, 2 to 65536");
  if ((set & SET_ROT) && (!o->rotary_dim || o->rotary_dim % 2 || o->rotary_dim > o->head_dim))
    return bad("--rotary-dim must be even, 2 to head_dim");
  if ((set & SET_DECODE) && !o->decode) return bad("--decode must be at least 1");
  if (o->decode && (set & (SET_BATCH | SET_TOKENS)))
    return bad("--decode N sets batch N and one token per sequence: drop --batch and --tokens");
  if (o->threads > MAX_THREADS) return bad("--threads must be 0 (online CPUs) to 1024");
  if ((set & SET_TABLE) && !o->table) return bad("--table must be at least 1");
  if (!o->decode && (set & SET_TABLE) && o->table < o->tokens)
    return bad("--table must hold every position of the prefill: at least --tokens");
  return 1;
}

/* Bytes the run allocates: q and k (twice out of place), the check's two copies, the composed intermediates, the
 * tables (the rope's and the baselines'). */
static double memory_needed(const bench_options *o) {
  const double e = o->dtype == ROTARY_F32 ? 4.0 : 2.0, rows = (double)o->batch * (double)o->tokens;
  const double maxh = (double)(o->heads > o->kv_heads ? o->heads : o->kv_heads);
  const double qk = rows * ((double)o->heads + (double)o->kv_heads) * (double)o->head_dim * e;
  const double tmp = 4.0 * rows * maxh * (double)o->rotary_dim * e + 2.0 * rows * (double)o->rotary_dim * e;
  return qk * (o->out_of_place ? 4.0 : 3.0) + tmp + 2.0 * (double)o->table * (double)o->rotary_dim * 4.0;
}

static int check_run(const bench_options *o) {
  if (!o->reps || o->reps > MAX_REPS) return bad("--reps must be 1 to 1000000");
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const double need = memory_needed(o), have = pages > 0 && page > 0 ? (double)pages * (double)page : 0x1p40;
  if (need > have)
    return bad("this shape needs %.3g GiB of memory, more than the machine's %.3g GiB", need / 0x1p30, have / 0x1p30);
  return 1;
}

int bench_parse_options(int argc, char **argv, bench_options *o) {
  *o = (bench_options){.batch = 1, .tokens = 2048, .heads = 32, .head_dim = 128, .reps = 30, .base = 10000.0,
                       .dtype = ROTARY_F32, .pairing = ROTARY_PAIRING_HALF,
                       .layout = ROTARY_LAYOUT_BSHD};
  unsigned set = 0;
  int r = parse_args(argc, argv, o, &set);
  if (r <= 0) return r;
  apply_preset(o, set);
  if (!load_config(o, set) || !check_shape(o, set)) {
    bench_options_free(o);
    return 0;
  }
  if (!o->kv_heads) o->kv_heads = o->heads;
  if (!o->rotary_dim) o->rotary_dim = o->head_dim;
  if (o->rotary_dim > o->head_dim) return bad("the model's rotary_dim exceeds --head-dim");
  if (o->decode) {
    o->batch = o->decode;
    o->tokens = 1;
  }
  if (!(set & SET_TABLE)) o->table = o->decode ? 4096 : o->tokens;
  if (!o->threads) o->threads = rotary_cpu_count();
  if (o->threads > MAX_THREADS) o->threads = MAX_THREADS;
  if (!check_run(o)) {
    bench_options_free(o);
    return 0;
  }
  return 1;
}
