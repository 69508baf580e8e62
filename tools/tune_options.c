/* tune_options.c: the command line of `rotary tune`: parsing, the model (a bench preset or a config.json), checks
 * with messages that name the option. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_args.h"
#include "tune.h"

#define MAX_THREADS 1024
#define MAX_ROUNDS 1000
#define DECODE_TABLE 4096 /* decode positions lie below this (or the prefill's tokens, when more) */

void rotary_cli_tune_usage(FILE *f, int full) {
  fprintf(f,
          "usage: rotary tune [--model NAME | --config config.json] [--tokens N] [--batch N] [--decode N]\n"
          "                   [--heads N] [--kv-heads N] [--head-dim N] [--rotary-dim N] [--base X]\n"
          "                   [--pairing half|interleaved] [--layout bshd|bhsd] [--dtype f32|f16|bf16]\n"
          "                   [--threads N] [--seconds S] [--min-gain X] [--rounds N] [--settings LIST]\n"
          "                   [--in-place] [--out FILE | --no-save] [--help]\n");
  if (!full) {
    fprintf(f, "Try 'rotary tune --help' for more information.\n");
    return;
  }
  fprintf(f,
          "Measures the library's settings (rotary info lists them) on this machine for a model's calls, keeps a\n"
          "value only when it beats the current one by more than the noise, and saves the winners in a tuning\n"
          "file keyed by CPU model and library version. Processes load it with ROTARY_TUNING_FILE=FILE (or =auto\n"
          "for the default path); a context loads it with rotary_context_load_tuning. The search starts from the\n"
          "values a new context gets (a ROTARY_TUNING_FILE's, a setting's variable). Options take their value as\n"
          "--tokens 512 or --tokens=512.\n"
          "  --model NAME  a bench preset (default llama-7b, rotary bench's default model); --config F: a Hugging\n"
          "                Face config.json instead (its head_dim, rotary_dim, base, pairing and scaling)\n"
          "  --tokens N    the prefill: --batch (default 1) x N tokens at positions 0..N-1 (default 4096; 0: no\n"
          "                prefill)\n"
          "  --decode N    the decode step: N sequences of one token at random positions below 4096 (or below\n"
          "                --tokens when more) (default 64; 0: none)\n"
          "  --heads, --kv-heads, --head-dim, --rotary-dim, --base, --pairing, --layout: override the model's\n"
          "                shape as in rotary bench (--config gives head_dim, rotary_dim, base and pairing)\n"
          "  --dtype       q and k's dtype (default bf16); q and k are rotated out of place into scratch buffers\n"
          "  --in-place    rotate q and k in place instead (as vLLM and the bench's default do; the scratch\n"
          "                tensors are rotated again call after call)\n"
          "  --threads N   the context's threads (default 0: the online CPUs)\n"
          "  --seconds S   the time budget of the search (default 20); untimed candidates keep their value\n"
          "  --min-gain X  a value wins when the total median falls by more than X and no shape's rises by more\n"
          "                (default 0.03)\n"
          "  --rounds N    timed rounds per side of each comparison (default 7, at least 3)\n"
          "  --settings L  the settings to search, comma-separated names (default: all)\n"
          "  --out FILE    where to save (default: rotary_tuning_default_path, its folder made when missing)\n"
          "  --no-save     print the table only\n"
          "models:\n");
  bench_list_presets(f);
}

/* Prints "rotary tune: <message>" and returns 0 (a bad option). */
#define bad(...) cli_bad("tune", __VA_ARGS__)

/* getopt_long's values; the whole-number options first. */
enum { OPT_TOKENS = 256, OPT_BATCH, OPT_DECODE, OPT_HEADS, OPT_KV, OPT_DIM, OPT_ROT, OPT_THREADS, OPT_ROUNDS,
       OPT_BASE, OPT_PAIRING, OPT_LAYOUT, OPT_DTYPE, OPT_MODEL, OPT_CONFIG, OPT_SECONDS, OPT_MIN_GAIN,
       OPT_SETTINGS, OPT_OUT, OPT_NO_SAVE, OPT_IN_PLACE };

static const struct option long_options[] = {
    {"tokens", required_argument, NULL, OPT_TOKENS},   {"batch", required_argument, NULL, OPT_BATCH},
    {"decode", required_argument, NULL, OPT_DECODE},   {"heads", required_argument, NULL, OPT_HEADS},
    {"kv-heads", required_argument, NULL, OPT_KV},     {"head-dim", required_argument, NULL, OPT_DIM},
    {"rotary-dim", required_argument, NULL, OPT_ROT},  {"threads", required_argument, NULL, OPT_THREADS},
    {"rounds", required_argument, NULL, OPT_ROUNDS},   {"base", required_argument, NULL, OPT_BASE},
    {"pairing", required_argument, NULL, OPT_PAIRING}, {"layout", required_argument, NULL, OPT_LAYOUT},
    {"dtype", required_argument, NULL, OPT_DTYPE},     {"model", required_argument, NULL, OPT_MODEL},
    {"config", required_argument, NULL, OPT_CONFIG},   {"seconds", required_argument, NULL, OPT_SECONDS},
    {"min-gain", required_argument, NULL, OPT_MIN_GAIN}, {"settings", required_argument, NULL, OPT_SETTINGS},
    {"out", required_argument, NULL, OPT_OUT},         {"no-save", no_argument, NULL, OPT_NO_SAVE},
    {"in-place", no_argument, NULL, OPT_IN_PLACE},
    {"help", no_argument, NULL, 'h'},                  {NULL, 0, NULL, 0},
};

/* What the command line said, before the model fills the rest. */
typedef struct raw_options {
  size_t num[OPT_BASE - OPT_TOKENS]; /* the whole numbers, in the order of the enum */
  unsigned set;                      /* bit i: num[i] given */
  int base_set, pairing_set, layout_set;
  double base;
  rotary_pairing pairing;
  rotary_layout layout;
  rotary_dtype dtype;
  const char *config;
} raw_options;

#define NUM(r, opt) ((r)->num[(opt) - OPT_TOKENS])
#define SET(r, opt) (((r)->set >> ((opt) - OPT_TOKENS)) & 1u)

static const struct option *option_with(int val) { return cli_option_with(long_options, val); }

static int parse_double(const char *s, double *v) {
  char *end;
  errno = 0;
  const double x = strtod(s, &end);
  if (!*s || *end || errno || !isfinite(x)) return 0;
  *v = x;
  return 1;
}

/* --settings: comma-separated setting names into a mask. */
static int parse_settings(const char *v, unsigned *mask) {
  *mask = 0;
  for (const char *p = v;;) {
    const size_t len = strcspn(p, ",");
    int found = -1;
    for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
      const char *name = rotary_setting_name((rotary_setting)s);
      if (strlen(name) == len && !strncmp(name, p, len)) found = s;
    }
    if (found < 0) {
      bad("--settings: unknown setting '%.*s'; the settings are:", (int)len, p);
      for (int s = 0; s < ROTARY_SETTING_COUNT; s++) fprintf(stderr, "  %s\n", rotary_setting_name((rotary_setting)s));
      return 0;
    }
    *mask |= 1u << found;
    if (!p[len]) return 1;
    p += len + 1;
  }
}

/* --dtype, --pairing, --layout, --model. */
static int parse_enum(tune_cli_options *o, raw_options *r, int c, const char *v) {
  if (c == OPT_DTYPE) {
    if (!strcmp(v, "f32")) r->dtype = ROTARY_F32;
    else if (!strcmp(v, "f16")) r->dtype = ROTARY_F16;
    else if (!strcmp(v, "bf16")) r->dtype = ROTARY_BF16;
    else return bad("--dtype wants f32, f16 or bf16, got '%s'", v);
  } else if (c == OPT_PAIRING) {
    r->pairing_set = 1;
    if (!strcmp(v, "half")) r->pairing = ROTARY_PAIRING_HALF;
    else if (!strcmp(v, "interleaved")) r->pairing = ROTARY_PAIRING_INTERLEAVED;
    else return bad("--pairing wants half or interleaved, got '%s'", v);
  } else if (c == OPT_LAYOUT) {
    r->layout_set = 1;
    if (!strcmp(v, "bshd")) r->layout = ROTARY_LAYOUT_BSHD;
    else if (!strcmp(v, "bhsd")) r->layout = ROTARY_LAYOUT_BHSD;
    else return bad("--layout wants bshd or bhsd, got '%s'", v);
  } else {
    if (!bench_find_preset(v)) {
      bad("unknown model '%s'; known models:", v);
      bench_list_presets(stderr);
      return 0;
    }
    o->model = v;
  }
  return 1;
}

/* One option and its value (NULL for flags). */
static int take(tune_cli_options *o, raw_options *r, int c, const char *v) {
  if (c >= OPT_TOKENS && c < OPT_BASE) {
    r->set |= 1u << (c - OPT_TOKENS);
    if (!cli_parse_size(v, &NUM(r, c))) return bad("--%s wants a whole number, got '%s'", option_with(c)->name, v);
    return 1;
  }
  switch (c) {
    case OPT_BASE:
      r->base_set = 1;
      if (!parse_double(v, &r->base) || r->base <= 0) return bad("--base wants a positive number, got '%s'", v);
      return 1;
    case OPT_SECONDS:
      if (!parse_double(v, &o->tune.seconds) || o->tune.seconds <= 0)
        return bad("--seconds wants a positive number, got '%s'", v);
      return 1;
    case OPT_MIN_GAIN:
      if (!parse_double(v, &o->tune.min_gain) || o->tune.min_gain < 0 || o->tune.min_gain >= 1)
        return bad("--min-gain wants a number from 0 up to (not including) 1, got '%s'", v);
      return 1;
    case OPT_SETTINGS: return parse_settings(v, &o->tune.settings_mask);
    case OPT_CONFIG: r->config = v; return 1;
    case OPT_OUT:
      if (!*v) return bad("--out wants a file name");
      o->out = v;
      return 1;
    case OPT_NO_SAVE: o->no_save = 1; return 1;
    case OPT_IN_PLACE: o->in_place = 1; return 1;
    default: return parse_enum(o, r, c, v);
  }
}

/* What getopt_long refused, said in our words, with the synopsis. */
static int refused(int c, char **argv) {
  cli_refused("tune", long_options, c, argv);
  rotary_cli_tune_usage(stderr, 0);
  return 0;
}

/* 1 parsed, 0 refused, -1 --help (which wins over a bad value before it). */
static int parse_args(int argc, char **argv, tune_cli_options *o, raw_options *r) {
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
    if (c == 'h') return -1;
    if (c == '?' || c == ':') return refused(c, argv);
    if (!take(o, r, c, optarg)) return 0;
  }
  if (optind < argc) {
    bad("unexpected argument '%s'", argv[optind]);
    rotary_cli_tune_usage(stderr, 0);
    return 0;
  }
  return 1;
}

/* The model's shape into shape[0]: a preset (explicit options override it) or a config.json (which the options
 * that would contradict it may not). */
static int load_model(tune_cli_options *o, const raw_options *r) {
  bench_options *s = &o->shape[0];
  if (!r->config) {
    const bench_preset *p = bench_find_preset(o->model ? o->model : (o->model = "llama-7b"));
    s->heads = SET(r, OPT_HEADS) ? NUM(r, OPT_HEADS) : p->heads;
    s->kv_heads = SET(r, OPT_KV) ? NUM(r, OPT_KV) : p->kv_heads; /* as rotary bench --model */
    s->head_dim = SET(r, OPT_DIM) ? NUM(r, OPT_DIM) : p->head_dim;
    s->rotary_dim = SET(r, OPT_ROT) ? NUM(r, OPT_ROT) : p->rotary_dim ? p->rotary_dim : s->head_dim;
    s->base = r->base_set ? r->base : p->base;
    s->pairing = r->pairing_set ? r->pairing : ROTARY_PAIRING_HALF;
    s->stream_layout.layout = p->stream_layout;
    for (size_t j = 0; j < ROTARY_MAX_STREAMS; j++) {
      s->stream_layout.sections[j] = p->sections[j];
      s->stream_layout.n_streams += p->sections[j] > 0;
    }
    if (p->stream_layout != ROTARY_STREAMS_NONE && !s->stream_layout.n_streams) s->stream_layout.n_streams = 2;
    return 1;
  }
  if (o->model) return bad("--model and --config both describe the model: give one");
  const char *from_config = SET(r, OPT_DIM) ? "--head-dim" : SET(r, OPT_ROT) ? "--rotary-dim" : r->base_set ? "--base"
                            : r->pairing_set ? "--pairing" : NULL;
  if (from_config) return bad("%s comes from --config: drop it", from_config);
  char err[512];
  if (rotary_hf_config_load(r->config, &o->hf, err, sizeof err) != ROTARY_OK)
    return bad("--config %s: %s", r->config, err);
  s->config = r->config;
  s->hf = NULL; /* o->hf owns it */
  s->rope = *rotary_hf_config_rope(o->hf);
  const char *type = rotary_hf_config_model_type(o->hf);
  snprintf(o->model_name, sizeof o->model_name, "%s (%s)", type[0] ? type : r->config,
           rotary_hf_config_rope_type(o->hf));
  o->model = o->model_name;
  s->heads = SET(r, OPT_HEADS) ? NUM(r, OPT_HEADS) : rotary_hf_config_heads(o->hf) ? rotary_hf_config_heads(o->hf) : 32;
  s->kv_heads = SET(r, OPT_KV) ? NUM(r, OPT_KV) : rotary_hf_config_kv_heads(o->hf) ? rotary_hf_config_kv_heads(o->hf)
                                                                                    : s->heads;
  s->head_dim = s->rope.head_dim;
  s->rotary_dim = s->rope.rotary_dim;
  s->base = s->rope.base;
  s->pairing = s->rope.pairing;
  s->stream_layout = s->rope.streams;
  return 1;
}

static int check_shape(const tune_cli_options *o, const raw_options *r) {
  const bench_options *s = &o->shape[0];
  if (SET(r, OPT_BATCH) && !NUM(r, OPT_BATCH)) return bad("--batch must be at least 1");
  if (!o->has[TUNE_PREFILL] && !o->has[TUNE_DECODE]) return bad("--tokens 0 and --decode 0 leave nothing to time");
  if (!o->has[TUNE_PREFILL] && SET(r, OPT_BATCH)) return bad("--batch goes with the prefill: drop it or --tokens 0");
  if (!s->heads) return bad("--heads must be at least 1");
  if (!s->kv_heads) return bad("--kv-heads must be at least 1");
  if (!s->head_dim || s->head_dim % 2 || s->head_dim > ROTARY_MAX_HEAD_DIM)
    return bad("--head-dim must be even, 2 to 65536");
  if (SET(r, OPT_ROT) && (!s->rotary_dim || s->rotary_dim % 2 || s->rotary_dim > s->head_dim))
    return bad("--rotary-dim must be even, 2 to head_dim");
  if (s->rotary_dim > s->head_dim)
    return bad("--head-dim %zu is below the rotary_dim of --model %s (%zu)", s->head_dim, o->model, s->rotary_dim);
  if (NUM(r, OPT_THREADS) > MAX_THREADS) return bad("--threads must be 0 (online CPUs) to 1024");
  if (SET(r, OPT_ROUNDS) && (NUM(r, OPT_ROUNDS) < 3 || NUM(r, OPT_ROUNDS) > MAX_ROUNDS))
    return bad("--rounds must be 3 to %d", MAX_ROUNDS);
  return 1;
}

/* Bytes both shapes allocate at once (bench_setup_create: q and k in and out, the composed baseline's
 * intermediates, the tables), against the machine's memory. */
static int check_memory(const tune_cli_options *o) {
  double need = 0;
  for (int i = 0; i < TUNE_SHAPES; i++) {
    const bench_options *s = &o->shape[i];
    if (!o->has[i]) continue;
    const double e = s->dtype == ROTARY_F32 ? 4.0 : 2.0, rows = (double)s->batch * (double)s->tokens;
    const double maxh = (double)(s->heads > s->kv_heads ? s->heads : s->kv_heads);
    need += 2.0 * rows * ((double)s->heads + (double)s->kv_heads) * (double)s->head_dim * e +
            (4.0 * maxh + 2.0) * rows * (double)s->rotary_dim * e + 3.0 * (double)s->table * (double)s->rotary_dim * 4.0;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const double have = pages > 0 && page > 0 ? (double)pages * (double)page : 0x1p40;
  if (need > have)
    return bad("these shapes need %.3g GiB of memory, more than the machine's %.3g GiB", need / 0x1p30, have / 0x1p30);
  return 1;
}

/* shape[0]'s model into both shapes, then each one's batch, tokens and positions. */
static void make_shapes(tune_cli_options *o, const raw_options *r) {
  bench_options *p = &o->shape[TUNE_PREFILL], *d = &o->shape[TUNE_DECODE];
  const size_t tokens = SET(r, OPT_TOKENS) ? NUM(r, OPT_TOKENS) : 4096;
  const size_t decode = SET(r, OPT_DECODE) ? NUM(r, OPT_DECODE) : 64;
  p->op = BENCH_OP_ROPE;
  p->model = o->model;
  p->dtype = r->dtype;
  p->layout = r->layout;
  p->out_of_place = !o->in_place;
  p->reps = 1;
  p->threads = NUM(r, OPT_THREADS) ? NUM(r, OPT_THREADS) : rotary_cpu_count();
  if (p->threads > MAX_THREADS) p->threads = MAX_THREADS;
  p->table = tokens > DECODE_TABLE ? tokens : DECODE_TABLE; /* one rope serves both shapes */
  *d = *p;
  p->batch = SET(r, OPT_BATCH) ? NUM(r, OPT_BATCH) : 1;
  p->tokens = tokens;
  d->batch = d->decode = decode;
  d->tokens = 1;
  o->has[TUNE_PREFILL] = tokens > 0;
  o->has[TUNE_DECODE] = decode > 0;
}

int tune_parse_options(int argc, char **argv, tune_cli_options *o) {
  memset(o, 0, sizeof *o);
  rotary_tune_options_init(&o->tune);
  o->tune.seconds = 20.0;
  raw_options r = {.dtype = ROTARY_BF16, .layout = ROTARY_LAYOUT_BSHD};
  const int parsed = parse_args(argc, argv, o, &r);
  if (parsed <= 0) return parsed;
  if (o->out && o->no_save) return bad("--out and --no-save contradict each other: give one");
  if (SET(&r, OPT_ROUNDS)) o->tune.rounds = NUM(&r, OPT_ROUNDS);
  if (!load_model(o, &r)) return 0;
  make_shapes(o, &r);
  if (!check_shape(o, &r) || !check_memory(o)) {
    tune_options_free(o);
    return 0;
  }
  return 1;
}

void tune_options_free(tune_cli_options *o) {
  rotary_hf_config_destroy(o->hf);
  o->hf = NULL;
}
