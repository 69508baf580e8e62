/* bench_options.c: the command line of `rotary bench`: parsing, model presets, checks with clear messages. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "cli_args.h"

#define MAX_THREADS 1024
#define MAX_REPS 1000000

/* Options given explicitly (they override a --model preset, whatever the order). */
enum { SET_HEADS = 1, SET_KV = 2, SET_DIM = 4, SET_ROT = 8, SET_BASE = 16, SET_BATCH = 32, SET_TOKENS = 64,
       SET_TABLE = 128, SET_DECODE = 256, SET_PAIRING = 512, SET_DTYPE = 1024, SET_KV_ONLY = 2048,
       SET_STREAM_LAYOUT = 4096 };

void bench_usage(FILE *f, int full) {
  fprintf(f,
          "usage: rotary bench [--model NAME | --config config.json] [--tokens N] [--batch N] [--decode N]\n"
          "                    [--heads N] [--kv-heads N] [--head-dim N] [--rotary-dim N] [--base X] [--table N]\n"
          "                    [--dtype f32|f16|bf16] [--pairing half|interleaved] [--layout bshd|bhsd] [--qkv]\n"
          "                    [--threads N] [--reps N] [--out-of-place] [--table-free] [--tune]\n"
          "                    [--stream-candidates] [--fused-only] [--torch[=PYTHON]]\n"
          "                    [--streams text|image [--stream-layout L]] [--tuning FILE] [--set NAME=VALUE]...\n"
          "                    [--json] [--help]\n"
          "       rotary bench --op kv-write [--cache contiguous|paged] [--cache-dtype f32|f16|bf16|fp8]\n"
          "                    [--block-size N] [--sweep] [shape, --dtype, --threads, --reps, --json as above]\n"
          "       rotary bench --op attention [--batch N] [--table N] [--cache contiguous|paged]\n"
          "                    [--cache-dtype f32|f16|bf16|fp8] [--cache-layout nhd|hnd] [--block-size N] [--sweep]\n"
          "                    [--threads N] [--reps N]\n"
          "       rotary bench --cuda [--rows quick|all] [--reps N] [--json FILE]   (CUDA builds: the GPU table)\n");
  if (!full) {
    fprintf(f, "Try 'rotary bench --help' for more information.\n");
    return;
  }
  fprintf(f,
          "Times (a) a C model of the composed ops PyTorch eager runs for Hugging Face's RoPE, (b) the article's\n"
          "naive per-element loop, (c) the fused rotary_apply and, out of place, a memcpy, each in its own block of\n"
          "rounds against a streaming pass (the limit); each row is printed when its block is done. Options take\n"
          "their value as --tokens 512 or --tokens=512.\n"
          "Defaults: the article's LLaMA-7B shape: batch 1, 2048 tokens, 32 q and 32 k heads, head_dim 128, f32,\n"
          "half pairing, q and k in place, all online CPUs (--threads 0), 30 timed repetitions per row after\n"
          "warm-up calls (%d for the first row, %d for the others).\n"
          "  --decode N   N sequences of one token each (batch N, seq_len 1) at random positions below the table\n"
          "               size, passed as int64 ids; --table defaults to 4096 then (else to --tokens)\n"
          "  --table-free adds a row: the fused call with a table-free rope (cos/sin rows computed per token)\n"
          "  --layout     bhsd: q and k heads-major, [batch, heads, seq, head_dim]; the composed and naive rows\n"
          "               (written for bshd) are left out\n"
          "  --qkv        q and k as views into one packed QKV buffer, [batch, seq, heads + 2 kv heads, head_dim]\n"
          "               (the output of one GEMM, as vLLM's rotary_embedding gets them), rotated in place; the\n"
          "               streaming pass reads and writes the q and k heads of each row and skips v; the composed\n"
          "               and naive rows (written for separate tensors) are left out\n"
          "  --model      sets heads, kv heads, head_dim, rotary_dim and base; explicit options override it\n"
          "  --tune       adds a row per candidate value of each setting (the values `rotary tune` searches),\n"
          "               the fused call with that one setting changed, and names each setting's fastest value on\n"
          "               this run; `rotary tune` is the search that keeps only what wins beyond the noise\n"
          "  --stream-candidates  adds a row per candidate of the streaming pass (the limit is the fastest of\n"
          "               them in start-up rounds: unrolled AVX-512, AVX2 or C loops, non-temporal stores out of\n"
          "               place, all threads or one; the former pass, a compiler-vectorized loop, among them)\n"
          "  --fused-only leaves out the composed, naive and copy rows: the fused call's rows (with --table-free,\n"
          "               --tune, --torch) and the streaming pass only (scripts/tune-compare.sh)\n"
          "  --tuning F   loads the tuning file F (written by `rotary tune`) into the bench's context; a file that\n"
          "               does not load is an error (exit 2) with the library's message\n"
          "  --set NAME=VALUE  sets one setting of the context (after --tuning; repeatable, the last wins): a\n"
          "               tuning-file key (prefetch_bytes, stream_store_bytes, thread_bytes, tasks_per_thread,\n"
          "               head_group) and a whole number in its range, or off. The header and --json show every\n"
          "               setting's value and where it came from\n"
          "  --torch      adds a row: real PyTorch eager running Hugging Face's recipe (gather cos/sin, then\n"
          "               apply_rotary_pos_emb) on the same shape, dtype and threads, timed in a child process of\n"
          "               PYTHON (default python3), which must import torch\n"
          "  --config F   a Hugging Face config.json: heads, kv heads, head_dim, rotary_dim, pairing, base and the\n"
          "               frequency scaling of the model (for dynamic NTK and LongRoPE at seq_len = table size);\n"
          "               --heads, --kv-heads, --tokens, --table and --dtype may still be given\n"
          "  --streams    text|image: the fused call with 1-D int64 ids against the same call with multi-stream\n"
          "               int64 ids ([n_streams, tokens]), in the same rounds, alternating; prints both medians and\n"
          "               the streams call's speed as a share of the 1-D call's. text: every stream holds the 1-D id\n"
          "               (text tokens of an mRoPE model); image: a (t, h, w) grid of patches, (row, column) for a\n"
          "               vision layout; with --decode random ids. Needs a multi-stream rope (--model qwen2-vl-7b,\n"
          "               qwen3-vl-8b or qwen2-vl-vit, a --config with mrope_section, or --stream-layout)\n"
          "  --stream-layout sections=A,B[,C[,D]] | interleaved=A,B[,C[,D]] | vision | pixtral: the rope's\n"
          "               frequency-to-stream map (Hugging Face's mrope_section; rotary_streams in rotary.h)\n"
          "  --json       one JSON object instead of the table (schema: docs/bench.md)\n"
          "  --op         rope (default): the table above. kv-write: rotary_kv_write from one packed QKV buffer\n"
          "               (q rotated in place, rotated k and v into a KV cache) against the unfused pair (rotary_apply\n"
          "               in place, then a copy of k and v into the cache) and its own streaming pass; defaults\n"
          "               then: --model llama3-8b, --dtype bf16, bf16 cache\n"
          "  --cache      kv-write: contiguous (one [capacity, kv_heads, head_dim] block per sequence, capacity the\n"
          "               table size, written at its length) or paged (vLLM slots, blocks in random order); NHD\n"
          "  --cache-dtype kv-write: the cache's dtype (fp8: e4m3 with per-tensor scales)\n"
          "  --cache-layout attention: nhd (a block is [rows, kv_heads, head_dim], the default) or hnd ([kv_heads,\n"
          "               rows, head_dim]: each head's rows contiguous); both are read in place, and the limit\n"
          "               reads the same blocks either way\n"
          "  --block-size kv-write: rows per block of the paged cache (default 16)\n"
          "  --sweep      kv-write: the issue's table, one line per case: prefill (--batch x --tokens) and decode\n"
          "               (--decode N, default 64, at random cache lengths), contiguous and paged, bf16 and fp8\n"
          "               caches, 1 and 2 threads (--threads is ignored); with --json an object per case\n"
          "  --op attention  rotary_attention, one f32 query token per sequence over --batch (default 64)\n"
          "               sequences of --table (default 4096) cached rows, keys stored rotated (rope_mode Q) and\n"
          "               rotated on the fly (QK), against the composed passes (rotary_apply, QK^T into a logits\n"
          "               buffer, softmax, x V) and one streaming read of the same K and V bytes (the limit);\n"
          "               --model llama3-8b, bf16 cache by default. --sweep: the issue's table (64 x 4096 and\n"
          "               1 x 32768, contiguous and paged, bf16 and fp8, 1 and 2 threads). docs/bench_attention.md\n"
          "models:\n",
          BENCH_WARMUPS, BENCH_WARMUPS_NEXT);
  bench_list_presets(f);
}

/* Prints "rotary bench: <message>" and returns 0 (a bad option). */
#define bad(...) cli_bad("bench", __VA_ARGS__)

/* getopt_long's values for the long options; the whole-number ones first, in the order of size_fields. */
enum { OPT_TOKENS = 256, OPT_BATCH, OPT_HEADS, OPT_KV, OPT_DIM, OPT_ROT, OPT_THREADS, OPT_REPS, OPT_DECODE, OPT_TABLE,
       OPT_BLOCK, OPT_BASE, OPT_DTYPE, OPT_PAIRING, OPT_LAYOUT, OPT_MODEL, OPT_CONFIG, OPT_OOP, OPT_JSON, OPT_TUNE,
       OPT_FREE, OPT_TORCH, OPT_OP, OPT_CACHE, OPT_CACHE_DTYPE, OPT_SWEEP, OPT_STREAMS, OPT_STREAM_LAYOUT,
       OPT_STREAM_CANDIDATES, OPT_TUNING, OPT_SET, OPT_FUSED_ONLY, OPT_CACHE_LAYOUT, OPT_QKV };

static const struct option long_options[] = {
    {"tokens", required_argument, NULL, OPT_TOKENS},     {"batch", required_argument, NULL, OPT_BATCH},
    {"heads", required_argument, NULL, OPT_HEADS},       {"kv-heads", required_argument, NULL, OPT_KV},
    {"head-dim", required_argument, NULL, OPT_DIM},      {"rotary-dim", required_argument, NULL, OPT_ROT},
    {"threads", required_argument, NULL, OPT_THREADS},   {"reps", required_argument, NULL, OPT_REPS},
    {"decode", required_argument, NULL, OPT_DECODE},     {"table", required_argument, NULL, OPT_TABLE},
    {"base", required_argument, NULL, OPT_BASE},         {"dtype", required_argument, NULL, OPT_DTYPE},
    {"pairing", required_argument, NULL, OPT_PAIRING},   {"layout", required_argument, NULL, OPT_LAYOUT},
    {"model", required_argument, NULL, OPT_MODEL},       {"config", required_argument, NULL, OPT_CONFIG},
    {"out-of-place", no_argument, NULL, OPT_OOP},        {"json", no_argument, NULL, OPT_JSON},
    {"tune", no_argument, NULL, OPT_TUNE},               {"table-free", no_argument, NULL, OPT_FREE},
    {"torch", optional_argument, NULL, OPT_TORCH},       {"help", no_argument, NULL, 'h'},
    {"op", required_argument, NULL, OPT_OP},             {"cache", required_argument, NULL, OPT_CACHE},
    {"cache-dtype", required_argument, NULL, OPT_CACHE_DTYPE}, {"block-size", required_argument, NULL, OPT_BLOCK},
    {"sweep", no_argument, NULL, OPT_SWEEP},             {"streams", required_argument, NULL, OPT_STREAMS},
    {"stream-layout", required_argument, NULL, OPT_STREAM_LAYOUT},
    {"stream-candidates", no_argument, NULL, OPT_STREAM_CANDIDATES},
    {"tuning", required_argument, NULL, OPT_TUNING},     {"set", required_argument, NULL, OPT_SET},
    {"fused-only", no_argument, NULL, OPT_FUSED_ONLY},
    {"cache-layout", required_argument, NULL, OPT_CACHE_LAYOUT},
    {"qkv", no_argument, NULL, OPT_QKV},
    {NULL, 0, NULL, 0},
};

static const struct { size_t offset; unsigned flag; } size_fields[OPT_BASE - OPT_TOKENS] = {
    {offsetof(bench_options, tokens), SET_TOKENS},   {offsetof(bench_options, batch), SET_BATCH},
    {offsetof(bench_options, heads), SET_HEADS},     {offsetof(bench_options, kv_heads), SET_KV},
    {offsetof(bench_options, head_dim), SET_DIM},    {offsetof(bench_options, rotary_dim), SET_ROT},
    {offsetof(bench_options, threads), 0},           {offsetof(bench_options, reps), 0},
    {offsetof(bench_options, decode), SET_DECODE},   {offsetof(bench_options, table), SET_TABLE},
    {offsetof(bench_options, block_size), SET_KV_ONLY},
};

static const struct option *option_with(int val) { return cli_option_with(long_options, val); }

/* --op, --cache and --cache-dtype. */
static int parse_kv_enum(bench_options *o, int opt, const char *v) {
  if (opt == OPT_OP) {
    if (!strcmp(v, "rope")) o->op = BENCH_OP_ROPE;
    else if (!strcmp(v, "kv-write")) o->op = BENCH_OP_KV_WRITE;
    else if (!strcmp(v, "attention")) o->op = BENCH_OP_ATTENTION;
    else return bad("--op wants rope, kv-write or attention, got '%s'", v);
  } else if (opt == OPT_CACHE_LAYOUT) {
    if (!strcmp(v, "nhd")) o->cache_layout = ROTARY_CACHE_NHD;
    else if (!strcmp(v, "hnd")) o->cache_layout = ROTARY_CACHE_HND;
    else return bad("--cache-layout wants nhd or hnd, got '%s'", v);
  } else if (opt == OPT_CACHE) {
    if (!strcmp(v, "contiguous")) o->cache = ROTARY_CACHE_SEQUENCES;
    else if (!strcmp(v, "paged")) o->cache = ROTARY_CACHE_SLOTS;
    else return bad("--cache wants contiguous or paged, got '%s'", v);
  } else {
    if (!strcmp(v, "f32")) o->cache_dtype = ROTARY_F32;
    else if (!strcmp(v, "f16")) o->cache_dtype = ROTARY_F16;
    else if (!strcmp(v, "bf16")) o->cache_dtype = ROTARY_BF16;
    else if (!strcmp(v, "fp8")) o->cache_dtype = ROTARY_FP8_E4M3;
    else return bad("--cache-dtype wants f32, f16, bf16 or fp8, got '%s'", v);
  }
  return 1;
}

static int parse_enum(bench_options *o, int opt, const char *v) {
  if (opt == OPT_OP || opt == OPT_CACHE || opt == OPT_CACHE_DTYPE || opt == OPT_CACHE_LAYOUT)
    return parse_kv_enum(o, opt, v);
  if (opt == OPT_DTYPE) {
    if (!strcmp(v, "f32")) o->dtype = ROTARY_F32;
    else if (!strcmp(v, "f16")) o->dtype = ROTARY_F16;
    else if (!strcmp(v, "bf16")) o->dtype = ROTARY_BF16;
    else return bad("--dtype wants f32, f16 or bf16, got '%s'", v);
  } else if (opt == OPT_PAIRING) {
    if (!strcmp(v, "half")) o->pairing = ROTARY_PAIRING_HALF;
    else if (!strcmp(v, "interleaved")) o->pairing = ROTARY_PAIRING_INTERLEAVED;
    else return bad("--pairing wants half or interleaved, got '%s'", v);
  } else if (opt == OPT_LAYOUT) {
    if (!strcmp(v, "bshd")) o->layout = ROTARY_LAYOUT_BSHD;
    else if (!strcmp(v, "bhsd")) o->layout = ROTARY_LAYOUT_BHSD;
    else return bad("--layout wants bshd or bhsd, got '%s'", v);
  } else if (opt == OPT_MODEL) {
    if (!bench_find_preset(v)) {
      bad("unknown model '%s'; known models:", v);
      bench_list_presets(stderr);
      return 0;
    }
    o->model = v;
  }
  return 1;
}

/* --stream-layout: "vision", "pixtral", or "sections=" / "interleaved=" and 2 to 4 whole numbers. */
static int parse_stream_layout(const char *v, rotary_streams *st) {
  memset(st, 0, sizeof *st);
  if (!strcmp(v, "vision") || !strcmp(v, "pixtral")) {
    st->layout = v[0] == 'v' ? ROTARY_STREAMS_VISION_2D : ROTARY_STREAMS_VISION_2D_PIXTRAL;
    st->n_streams = 2;
    return 1;
  }
  const char *list = !strncmp(v, "sections=", 9) ? v + 9 : !strncmp(v, "interleaved=", 12) ? v + 12 : NULL;
  st->layout = v[0] == 's' ? ROTARY_STREAMS_SECTIONS : ROTARY_STREAMS_INTERLEAVED;
  while (list && *list && st->n_streams < ROTARY_MAX_STREAMS) {
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(list, &end, 10);
    if (end == list || *list == '-' || *list == '+' || errno || x > 65536 || (*end && *end != ',')) break;
    st->sections[st->n_streams++] = (size_t)x;
    list = *end ? end + 1 : end;
  }
  if (!list || *list || st->n_streams < 2)
    return bad("--stream-layout wants vision, pixtral, sections=A,B[,C[,D]] or interleaved=A,B[,C[,D]], got '%s'", v);
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

/* --set NAME=VALUE: a setting by its tuning-file key; "off" (where the setting has an off value) or a decimal
 * integer inside rotary_setting_range. */
static int parse_set(bench_options *o, const char *v) {
  const char *eq = strchr(v, '=');
  if (!eq || eq == v) return bad("--set wants NAME=VALUE (e.g. head_group=8), got '%s'", v);
  const size_t len = (size_t)(eq - v);
  int k = 0;
  while (k < ROTARY_SETTING_COUNT && !(strlen(rotary_setting_name((rotary_setting)k)) == len &&
                                       !strncmp(rotary_setting_name((rotary_setting)k), v, len)))
    k++;
  if (k == ROTARY_SETTING_COUNT) {
    bad("--set: unknown setting '%.*s'; the settings:", (int)len, v);
    for (int j = 0; j < ROTARY_SETTING_COUNT; j++) fprintf(stderr, "  %s\n", rotary_setting_name((rotary_setting)j));
    return 0;
  }
  int64_t min = 0, max = 0, x;
  rotary_setting_range((rotary_setting)k, &min, &max);
  const char *text = eq + 1;
  char *end;
  errno = 0;
  if (!strcmp(text, "off") && min == -1) {
    x = -1;
  } else {
    const long long y = strtoll(text, &end, 10);
    if (!*text || *end || errno || *text == '+' || (*text == '-' && strcmp(text, "-1")))
      return bad("--set %.*s wants %sa whole number, got '%s'", (int)len, v, min == -1 ? "off or " : "", text);
    x = (int64_t)y;
  }
  if (x < min || x > max)
    return bad("--set %.*s=%s: %lld is outside %lld .. %lld%s", (int)len, v, text, (long long)x, (long long)min,
               (long long)max, min == -1 ? " (-1: off)" : "");
  if (o->n_sets == BENCH_MAX_SETS) return bad("--set given more than %d times", BENCH_MAX_SETS);
  o->set_which[o->n_sets] = (rotary_setting)k;
  o->set_value[o->n_sets++] = x;
  return 1;
}

/* --tuning FILE: loaded here into a one-thread context to check it (the run's context loads it again), so that a
 * bad file is a usage error with the library's message. */
static int check_tuning(const bench_options *o) {
  if (!o->tuning) return 1;
  rotary_context *ctx = NULL;
  char err[1024] = "";
  rotary_status st = rotary_context_create(1, &ctx);
  if (st == ROTARY_OK) st = rotary_context_load_tuning(ctx, o->tuning, err, sizeof err);
  rotary_context_destroy(ctx);
  if (st == ROTARY_OK) return 1;
  return bad("--tuning: %s", err[0] ? err : rotary_status_string(st));
}

/* What getopt_long refused, said in our words, with the synopsis. */
static int refused(int c, char **argv) {
  cli_refused("bench", long_options, c, argv);
  bench_usage(stderr, 0);
  return 0;
}

/* One option and its value (NULL for flags). */
static int take(bench_options *o, int c, const char *v, unsigned *set) {
  if (c >= OPT_TOKENS && c < OPT_BASE) {
    const size_t i = (size_t)(c - OPT_TOKENS);
    *set |= size_fields[i].flag;
    if (!cli_parse_size(v, (size_t *)((char *)o + size_fields[i].offset)))
      return bad("--%s wants a whole number, got '%s'", option_with(c)->name, v);
    return 1;
  }
  switch (c) {
    case OPT_OOP: o->out_of_place = 1; return 1;
    case OPT_JSON: o->json = 1; return 1;
    case OPT_TUNE: o->tune = 1; return 1;
    case OPT_STREAM_CANDIDATES: o->stream_candidates = 1; return 1;
    case OPT_TUNING: o->tuning = v; return 1;
    case OPT_FUSED_ONLY: o->fused_only = 1; return 1;
    case OPT_QKV: o->qkv = 1; return 1;
    case OPT_SET: return parse_set(o, v);
    case OPT_FREE: o->table_free = 1; return 1;
    case OPT_TORCH: o->torch = v ? v : "python3"; return 1;
    case OPT_CONFIG: o->config = v; return 1;
    case OPT_BASE: *set |= SET_BASE; return parse_base(v, &o->base);
    case OPT_PAIRING: *set |= SET_PAIRING; return parse_enum(o, c, v);
    case OPT_DTYPE: *set |= SET_DTYPE; return parse_enum(o, c, v);
    case OPT_SWEEP: *set |= SET_KV_ONLY; o->sweep = 1; return 1;
    case OPT_STREAMS:
      if (!strcmp(v, "text")) o->streams = BENCH_STREAMS_TEXT;
      else if (!strcmp(v, "image")) o->streams = BENCH_STREAMS_IMAGE;
      else return bad("--streams wants text or image, got '%s'", v);
      return 1;
    case OPT_STREAM_LAYOUT: *set |= SET_STREAM_LAYOUT; return parse_stream_layout(v, &o->stream_layout);
    case OPT_CACHE:
    case OPT_CACHE_LAYOUT:
    case OPT_CACHE_DTYPE: *set |= SET_KV_ONLY; return parse_enum(o, c, v);
    default: return parse_enum(o, c, v);
  }
}

/* 1 parsed, 0 refused (said why), -1 --help. A value is checked when its option is read; --help wins over
 * what the option checks after parsing would refuse. */
static int parse_args(int argc, char **argv, bench_options *o, unsigned *set) {
  optind = 1;
  opterr = 0; /* the messages are ours */
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
    if (c == 'h') return -1;
    if (c == '?' || c == ':') return refused(c, argv);
    if (!take(o, c, optarg, set)) return 0;
  }
  if (optind < argc) {
    bad("unexpected argument '%s'", argv[optind]);
    bench_usage(stderr, 0);
    return 0;
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
  if (!(set & SET_STREAM_LAYOUT) && p->stream_layout != ROTARY_STREAMS_NONE) {
    o->stream_layout.layout = p->stream_layout;
    for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) {
      o->stream_layout.sections[j] = p->sections[j];
      o->stream_layout.n_streams += p->sections[j] > 0;
    }
    if (!o->stream_layout.n_streams) o->stream_layout.n_streams = 2; /* the vision layouts */
  }
}

/* --config: the model's shape and rope; the options that would contradict it are refused. */
static int load_config(bench_options *o, unsigned set) {
  if (!o->config) return 1;
  if (o->model) return bad("--model and --config both describe the model: give one");
  static const struct { unsigned flag; const char *name; } from_config[] = {
      {SET_DIM, "--head-dim"}, {SET_ROT, "--rotary-dim"}, {SET_BASE, "--base"}, {SET_PAIRING, "--pairing"}};
  for (size_t i = 0; i < sizeof from_config / sizeof from_config[0]; i++)
    if (set & from_config[i].flag) return bad("%s comes from --config: drop it", from_config[i].name);
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
  if (!(set & SET_STREAM_LAYOUT)) o->stream_layout = o->rope.streams;
  return 1;
}

void bench_options_free(bench_options *o) {
  rotary_hf_config_destroy(o->hf);
  o->hf = NULL;
}

/* The options of one operation given to the other are refused. */
static int check_op(const bench_options *o, unsigned set) {
  if (o->op == BENCH_OP_ROPE) {
    if (set & SET_KV_ONLY)
      return bad("--cache, --cache-dtype, --cache-layout, --block-size and --sweep go with --op kv-write or "
                 "attention");
    const char *rows = o->tune                ? "--tune"
                       : o->torch             ? "--torch"
                       : o->stream_candidates ? "--stream-candidates"
                       : o->fused_only        ? "--fused-only"
                                              : NULL;
    if (o->streams && rows) return bad("%s does not go with --streams: it times the fused call only", rows);
    const char *not_qkv = o->out_of_place                   ? "--out-of-place"
                          : o->layout != ROTARY_LAYOUT_BSHD ? "--layout"
                          : o->torch                        ? "--torch"
                          : o->streams                      ? "--streams"
                                                            : NULL;
    if (o->qkv && not_qkv)
      return bad("%s does not go with --qkv: q and k are rotated in place in the packed rows", not_qkv);
    return 1;
  }
  if (o->streams || (set & SET_STREAM_LAYOUT)) return bad("--streams and --stream-layout go with --op rope");
  const char *not_attn = o->op != BENCH_OP_ATTENTION ? NULL
                         : (set & SET_DECODE)       ? "--decode"
                         : (set & SET_TOKENS)       ? "--tokens"
                         : (set & SET_DTYPE)        ? "--dtype"
                         : o->json                  ? "--json"
                                                    : NULL;
  if (not_attn)
    return bad("%s does not go with --op attention: one f32 query token per sequence (--batch sequences of --table "
               "cached rows), a table", not_attn);
  const char *rope_only = o->out_of_place                   ? "--out-of-place"
                          : o->tune                         ? "--tune"
                          : o->stream_candidates            ? "--stream-candidates"
                          : o->fused_only                   ? "--fused-only"
                          : o->torch                        ? "--torch"
                          : o->table_free                   ? "--table-free"
                          : o->layout != ROTARY_LAYOUT_BSHD ? "--layout"
                          : o->qkv                          ? "--qkv"
                                                            : NULL;
  if (rope_only) return bad("%s goes with --op rope: kv-write rotates q in place in the packed QKV rows", rope_only);
  if (o->op != BENCH_OP_ATTENTION && o->cache_layout != ROTARY_CACHE_NHD)
    return bad("--cache-layout goes with --op attention (kv-write writes NHD caches)");
  if (!o->block_size) return bad("--block-size must be at least 1");
  return 1;
}

static int check_shape(const bench_options *o, unsigned set) {
  if (!o->batch) return bad("--batch must be at least 1");
  if (!o->tokens) return bad("--tokens must be at least 1");
  if (!o->heads) return bad("--heads must be at least 1");
  if ((set & SET_KV) && !o->kv_heads) return bad("--kv-heads must be at least 1");
  if (!o->head_dim || o->head_dim % 2 || o->head_dim > ROTARY_MAX_HEAD_DIM)
    return bad("--head-dim must be even, 2 to 65536");
  if ((set & SET_ROT) && (!o->rotary_dim || o->rotary_dim % 2 || o->rotary_dim > o->head_dim))
    return bad("--rotary-dim must be even, 2 to head_dim");
  if ((set & SET_DECODE) && !o->decode) return bad("--decode must be at least 1");
  if (o->decode && !o->sweep && (set & (SET_BATCH | SET_TOKENS)))
    return bad("--decode N sets batch N and one token per sequence: drop %s", set & SET_BATCH ? "--batch" : "--tokens");
  if (o->threads > MAX_THREADS) return bad("--threads must be 0 (online CPUs) to 1024");
  if ((set & SET_TABLE) && !o->table) return bad("--table must be at least 1");
  if ((!o->decode || o->sweep) && (set & SET_TABLE) && o->table < o->tokens)
    return bad("--table must hold every position of the prefill: at least --tokens");
  return 1;
}

/* Bytes the run allocates: q and k (twice out of place), the check's two copies, the composed intermediates, the
 * tables (the rope's and the baselines'). */
static double memory_needed(const bench_options *o) {
  const double e = o->dtype == ROTARY_F32 ? 4.0 : 2.0, rows = (double)o->batch * (double)o->tokens;
  if (o->op == BENCH_OP_ATTENTION) /* K and V (the sweep's largest: 64 x 4096 bf16), the logits, the rows */
    return 2.0 * (o->sweep ? 0x1p29 : (double)o->batch * (double)o->table * (double)o->kv_heads *
                                          (double)o->head_dim * (o->cache_dtype == ROTARY_F32 ? 4.0 : 2.0)) +
           (o->sweep ? 64.0 * 4096.0 : (double)o->batch * (double)o->table) * (double)o->heads * 4.0 +
           3.0 * (o->sweep ? 32768.0 : (double)o->table) * (double)o->rotary_dim * 4.0;
  if (o->op == BENCH_OP_KV_WRITE) /* QKV three times (the check's copies), the written cache rows, the tables;
                                     the caches' unwritten rows are never touched */
    return rows * (double)(o->heads + 2 * o->kv_heads) * (double)o->head_dim * e * 3.0 +
           rows * (double)o->kv_heads * (double)o->head_dim * 4.0 * 4.0 +
           2.0 * (double)o->table * (double)o->rotary_dim * 4.0;
  const double maxh = (double)(o->heads > o->kv_heads ? o->heads : o->kv_heads);
  const double qk = rows * ((double)o->heads + (double)o->kv_heads * (o->qkv ? 2.0 : 1.0)) * (double)o->head_dim * e;
  const double tmp = 4.0 * rows * maxh * (double)o->rotary_dim * e + 2.0 * rows * (double)o->rotary_dim * e;
  return qk * (o->out_of_place ? 4.0 : 3.0) + tmp + 2.0 * (double)o->table * (double)o->rotary_dim * 4.0;
}

/* --streams needs a multi-stream rope whose sections cover the rotary_dim/2 frequencies (said here in the
 * options' words; the library checks the same when the rope is made). */
static int check_streams(const bench_options *o) {
  const rotary_streams *st = &o->stream_layout;
  if (!o->streams) return 1;
  if (st->layout == ROTARY_STREAMS_NONE)
    return bad("--streams needs a multi-stream rope: --model qwen2-vl-7b, qwen3-vl-8b or qwen2-vl-vit, "
               "--stream-layout, or a --config with mrope_section");
  if (st->layout == ROTARY_STREAMS_SECTIONS || st->layout == ROTARY_STREAMS_INTERLEAVED) {
    size_t sum = 0;
    for (size_t j = 0; j < st->n_streams; j++) sum += st->sections[j];
    if (sum != o->rotary_dim / 2)
      return bad("--stream-layout: the sections sum to %zu, rotary_dim/2 is %zu", sum, o->rotary_dim / 2);
  }
  if (o->table < 2) return bad("--streams needs a table of 2 positions at least");
  return 1;
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
                       .layout = ROTARY_LAYOUT_BSHD, .cache = ROTARY_CACHE_SEQUENCES,
                       .cache_dtype = ROTARY_BF16, .block_size = 16};
  unsigned set = 0;
  int r = parse_args(argc, argv, o, &set);
  if (r <= 0) return r;
  if (o->op == BENCH_OP_KV_WRITE) { /* the shape: Llama 3 8B heads, bf16 */
    if (!o->model && !o->config) o->model = "llama3-8b";
    if (!(set & SET_DTYPE)) o->dtype = ROTARY_BF16;
  }
  if (o->op == BENCH_OP_ATTENTION) { /* issue 14's shape: Llama 3 8B heads, 64 sequences x 4096 rows, f32 q */
    if (!o->model && !o->config) o->model = "llama3-8b";
    if (!(set & SET_BATCH)) o->batch = 64;
    o->tokens = 1;
    if (!(set & SET_TABLE)) o->table = 4096;
    set |= SET_TABLE;
  }
  apply_preset(o, set);
  if (!check_op(o, set) || !load_config(o, set) || !check_shape(o, set)) {
    bench_options_free(o);
    return 0;
  }
  if (!o->kv_heads) o->kv_heads = o->heads;
  if (!o->rotary_dim) o->rotary_dim = o->head_dim;
  if (o->rotary_dim > o->head_dim) {
    bench_options_free(o);
    return bad("--head-dim %zu is below the rotary_dim of --model %s (%zu)", o->head_dim, o->model, o->rotary_dim);
  }
  if (o->decode && !o->sweep) { /* the sweep keeps both: its prefill and its decode cases */
    o->batch = o->decode;
    o->tokens = 1;
  }
  o->table_set = (set & SET_TABLE) != 0;
  if (!(set & SET_TABLE)) o->table = o->decode && !o->sweep ? 4096 : o->tokens;
  if (!o->threads) o->threads = rotary_cpu_count();
  if (o->threads > MAX_THREADS) o->threads = MAX_THREADS;
  if (!check_run(o) || !check_streams(o) || !check_tuning(o)) {
    bench_options_free(o);
    return 0;
  }
  return 1;
}
