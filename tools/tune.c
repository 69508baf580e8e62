/* tune.c: `rotary tune`: times the library's settings on this machine for a model's prefill and decode calls
 * (rotary_context_tune), prints what changed, and saves the winners as a tuning file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "tune.h"

static const char *shape_names[TUNE_SHAPES] = {"prefill", "decode"};

/* A setting's value as people read it: "off" for -1 where the setting has an off value. */
static void format_value(rotary_setting s, int64_t v, char *buf, size_t size) {
  int64_t min = 0, max = 0;
  if (v == -1 && rotary_setting_range(s, &min, &max) == ROTARY_OK && min == -1) snprintf(buf, size, "off");
  else snprintf(buf, size, "%lld", (long long)v);
}

/* Seconds as ms, or us below a millisecond. */
static void format_time(double seconds, char *buf, size_t size) {
  if (seconds < 1e-3) snprintf(buf, size, "%.2f us", seconds * 1e6);
  else snprintf(buf, size, "%.3f ms", seconds * 1e3);
}

static void print_header(const tune_cli_options *o) {
  const bench_options *s = &o->shape[o->has[TUNE_PREFILL] ? TUNE_PREFILL : TUNE_DECODE];
  printf("rotary tune: %s, %s, %zu q / %zu k heads, head_dim %zu (rotary %zu), %s, %s pairing, %zu thread%s\n",
         o->model, bench_dtype_name(s->dtype), s->heads, s->kv_heads, s->head_dim, s->rotary_dim,
         s->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd",
         s->pairing == ROTARY_PAIRING_INTERLEAVED ? "interleaved" : "half", s->threads, s->threads == 1 ? "" : "s");
  if (o->has[TUNE_PREFILL])
    printf("  prefill: batch %zu x %zu tokens (positions 0..%zu), %s\n", o->shape[TUNE_PREFILL].batch,
           o->shape[TUNE_PREFILL].tokens, o->shape[TUNE_PREFILL].tokens - 1,
           o->in_place ? "in place" : "out of place");
  if (o->has[TUNE_DECODE])
    printf("  decode:  %zu sequences x 1 token (random positions below %zu), %s\n",
           o->shape[TUNE_DECODE].batch, o->shape[TUNE_DECODE].table, o->in_place ? "in place" : "out of place");
  printf("  budget %g s, a value kept when it saves more than %g%% in total and costs no shape more, %zu rounds "
         "per side\n",
         o->tune.seconds, o->tune.min_gain * 100.0, o->tune.rounds);
  fflush(stdout); /* the search takes the budget: say what runs first */
}

static void print_report(rotary_context *ctx, const rotary_tune_report *r) {
  printf("\n%-20s %-12s %-12s %-12s %s\n", "setting", "before", "after", "source", "variable");
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    const rotary_setting s = (rotary_setting)i;
    char before[32], after[32];
    int64_t v = 0;
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    rotary_context_get_setting(ctx, s, &v, &src);
    format_value(s, r->before[i], before, sizeof before);
    format_value(s, r->after[i], after, sizeof after);
    printf("%-20s %-12s %-12s %-12s %s\n", rotary_setting_name(s), before, after, rotary_setting_source_name(src),
           rotary_setting_env(s));
  }
  char tb[32], ta[32];
  format_time(r->before_seconds, tb, sizeof tb);
  format_time(r->after_seconds, ta, sizeof ta);
  const double change = r->before_seconds > 0 ? (r->after_seconds / r->before_seconds - 1.0) * 100.0 : 0.0;
  printf("\ntotal of the calls (median of the final alternating rounds): before %s, after %s (%+.1f%%)\n", tb, ta,
         change);
  int changed = 0;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) changed += r->after[i] != r->before[i];
  if (!changed) printf("(no value beat the starting one by more than --min-gain: every setting kept its value)\n");
  else if (r->after_seconds > r->before_seconds)
    printf("(in the final rounds the values found ran slower than the starting ones: the search's gain did not "
           "hold; a longer --seconds steadies the medians)\n");
  printf("%zu candidate value%s timed%s\n", r->candidates, r->candidates == 1 ? "" : "s",
         r->out_of_time ? "; the budget ran out first: the untimed ones kept their value (more --seconds times them)"
                        : "");
}

/* The "notes" member of the file: what was measured, on what, when. NULL when memory runs out. */
static char *make_notes(const tune_cli_options *o, const rotary_tune_report *r) {
  cJSON *n = cJSON_CreateObject(), *shapes = cJSON_CreateArray(), *rep = cJSON_CreateObject();
  cJSON *before = cJSON_CreateObject(), *after = cJSON_CreateObject();
  int ok = n && shapes && rep && before && after;
  const bench_options *first = &o->shape[o->has[TUNE_PREFILL] ? TUNE_PREFILL : TUNE_DECODE];
  char date[32] = "";
  const time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm)) strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  ok = ok && cJSON_AddStringToObject(n, "tool", "rotary tune") && cJSON_AddStringToObject(n, "model", o->model) &&
       cJSON_AddStringToObject(n, "dtype", bench_dtype_name(first->dtype)) &&
       cJSON_AddNumberToObject(n, "threads", (double)first->threads) &&
       cJSON_AddNumberToObject(n, "seconds", o->tune.seconds) &&
       cJSON_AddNumberToObject(n, "min_gain", o->tune.min_gain) &&
       cJSON_AddNumberToObject(n, "rounds", (double)o->tune.rounds) &&
       cJSON_AddStringToObject(n, "cpu_features", rotary_cpu_features()) && cJSON_AddStringToObject(n, "date", date);
  for (int i = 0; ok && i < TUNE_SHAPES; i++) {
    if (!o->has[i]) continue;
    const bench_options *s = &o->shape[i];
    cJSON *sh = cJSON_CreateObject();
    ok = sh && cJSON_AddItemToArray(shapes, sh) && cJSON_AddStringToObject(sh, "name", shape_names[i]) &&
         cJSON_AddNumberToObject(sh, "batch", (double)s->batch) &&
         cJSON_AddNumberToObject(sh, "tokens", (double)s->tokens) &&
         cJSON_AddNumberToObject(sh, "heads", (double)s->heads) &&
         cJSON_AddNumberToObject(sh, "kv_heads", (double)s->kv_heads) &&
         cJSON_AddNumberToObject(sh, "head_dim", (double)s->head_dim) &&
         cJSON_AddNumberToObject(sh, "rotary_dim", (double)s->rotary_dim) &&
         cJSON_AddStringToObject(sh, "layout", s->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd") &&
         cJSON_AddStringToObject(sh, "pairing", s->pairing == ROTARY_PAIRING_INTERLEAVED ? "interleaved" : "half") &&
         cJSON_AddStringToObject(sh, "positions", s->decode ? "random ids" : "offset 0") &&
         cJSON_AddNumberToObject(sh, "table", (double)s->table) &&
         cJSON_AddBoolToObject(sh, "out_of_place", s->out_of_place);
  }
  for (int i = 0; ok && i < ROTARY_SETTING_COUNT; i++) {
    const char *name = rotary_setting_name((rotary_setting)i);
    ok = cJSON_AddNumberToObject(before, name, (double)r->before[i]) &&
         cJSON_AddNumberToObject(after, name, (double)r->after[i]);
  }
  if (ok) { /* from here on each item belongs to its parent */
    cJSON_AddItemToObject(n, "shapes", shapes);
    cJSON_AddItemToObject(rep, "before", before);
    cJSON_AddItemToObject(rep, "after", after);
    cJSON_AddItemToObject(n, "report", rep);
    shapes = rep = before = after = NULL;
    ok = cJSON_AddNumberToObject(cJSON_GetObjectItem(n, "report"), "before_seconds", r->before_seconds) &&
         cJSON_AddNumberToObject(cJSON_GetObjectItem(n, "report"), "after_seconds", r->after_seconds) &&
         cJSON_AddNumberToObject(cJSON_GetObjectItem(n, "report"), "candidates", (double)r->candidates) &&
         cJSON_AddBoolToObject(cJSON_GetObjectItem(n, "report"), "out_of_time", r->out_of_time != 0);
  }
  char *text = ok ? cJSON_PrintUnformatted(n) : NULL;
  cJSON *left[] = {n, shapes, rep, before, after};
  for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) cJSON_Delete(left[i]);
  return text;
}

/* Makes every missing folder above the file at path (mode 0755). 0: failed, said why. */
static int make_folders(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 1;
  if ((size_t)(slash - path) >= sizeof dir) {
    fprintf(stderr, "rotary tune: the folder of %s is too long a path\n", path);
    return 0;
  }
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = '\0';
  for (char *p = dir + 1;; p++) {
    const char c = *p;
    if (c != '/' && c != '\0') continue;
    *p = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
      fprintf(stderr, "rotary tune: cannot create the folder %s: %s\n", dir, strerror(errno));
      return 0;
    }
    *p = c;
    if (!c) return 1;
  }
}

/* Where the file goes: --out, or the default path with its folders made. 0: failed, said why. */
static int target_path(const tune_cli_options *o, char *path, size_t size, int *is_default) {
  *is_default = !o->out;
  if (o->out) {
    if (strlen(o->out) >= size) {
      fprintf(stderr, "rotary tune: --out: the path is too long\n");
      return 0;
    }
    strcpy(path, o->out);
    return 1;
  }
  const rotary_status st = rotary_tuning_default_path(path, size);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary tune: no default path for the tuning file: %s; give --out FILE\n",
            st == ROTARY_ERR_IO ? "neither XDG_CACHE_HOME nor HOME is set" : rotary_status_string(st));
    return 0;
  }
  return make_folders(path);
}

/* The settings a variable sets: the search started from the variable's value, and a process that loads a file
 * through ROTARY_TUNING_FILE takes the variable over the file (rotary.h's order). */
static void print_env_notes(void) {
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    const char *env = rotary_setting_env((rotary_setting)i), *v = getenv(env);
    if (v)
      printf("note: %s=%s is set: the search started from it, and a process with it set takes it over any tuning "
             "file's %s\n", env, v, rotary_setting_name((rotary_setting)i));
  }
}

/* Saves ctx's tuned (and loaded) settings with the notes; prints where and how to use the file. 0: failed. */
static int save(const tune_cli_options *o, rotary_context *ctx, const rotary_tune_report *r, const char *path,
                int is_default) {
  char *notes = make_notes(o, r), err[1024] = "";
  if (!notes) {
    fprintf(stderr, "rotary tune: out of memory writing the notes\n");
    return 0;
  }
  const rotary_status st = rotary_context_save_tuning(ctx, path, notes, err, sizeof err);
  cJSON_free(notes);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary tune: cannot save the tuning file: %s\n", err[0] ? err : rotary_status_string(st));
    return 0;
  }
  size_t kept = 0;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    int64_t v = 0;
    rotary_context_get_setting(ctx, (rotary_setting)i, &v, &src);
    kept += src == ROTARY_SOURCE_FILE || src == ROTARY_SOURCE_SET || src == ROTARY_SOURCE_TUNED;
  }
  printf("\nsaved %s (%zu setting%s; the others stay at their defaults)\n", path, kept, kept == 1 ? "" : "s");
  const char *name = is_default ? "auto" : path; /* auto: this CPU's and version's default path */
  printf("use it: ROTARY_TUNING_FILE=%s rotary info   shows the settings it gives\n"
         "        export ROTARY_TUNING_FILE=%s        every new context of a process starts from it\n"
         "        rotary_context_load_tuning(ctx, \"%s\", ...) loads it into one context\n",
         name, name, path);
  return 1;
}

/* The shapes' buffers and calls, the search, the report, the file. The exit status. */
static int run(const tune_cli_options *o, const char *path, int is_default) {
  bench_setup setup[TUNE_SHAPES];
  rotary_apply_desc descs[TUNE_SHAPES];
  size_t n = 0, first = TUNE_SHAPES;
  memset(setup, 0, sizeof setup);
  rotary_status st = ROTARY_OK;
  for (int i = 0; i < TUNE_SHAPES && st == ROTARY_OK; i++) {
    if (!o->has[i]) continue;
    if ((st = bench_setup_create(&o->shape[i], &setup[i])) != ROTARY_OK) {
      fprintf(stderr, "rotary tune: cannot set up the %s: %s\n", shape_names[i], rotary_status_string(st));
      break;
    }
    descs[n++] = setup[i].desc;
    if (first == TUNE_SHAPES) first = (size_t)i;
  }
  rotary_tune_report report;
  memset(&report, 0, sizeof report);
  int rc = st == ROTARY_OK ? 0 : 1;
  if (!rc) { /* one rope serves every call: the shapes share its config and table size */
    st = rotary_context_tune(setup[first].ctx, setup[first].rope, descs, n, &o->tune, &report);
    if (st != ROTARY_OK) fprintf(stderr, "rotary tune: rotary_context_tune: %s\n", rotary_status_string(st));
    rc = st == ROTARY_OK ? 0 : 1;
  }
  if (!rc) {
    print_report(setup[first].ctx, &report);
    print_env_notes();
    if (o->no_save) printf("\nnot saved (--no-save)\n");
    else if (!save(o, setup[first].ctx, &report, path, is_default)) rc = 1;
  }
  for (int i = 0; i < TUNE_SHAPES; i++) bench_setup_destroy(&setup[i]); /* a zeroed one holds nothing */
  return rc;
}

int rotary_cli_tune(int argc, char **argv) {
  tune_cli_options o;
  const int parsed = tune_parse_options(argc, argv, &o);
  if (parsed < 0) {
    rotary_cli_tune_usage(stdout, 1);
    return 0;
  }
  if (!parsed) return 2;
  char path[4096] = "";
  int is_default = 0, rc = 1;
  if (o.no_save || target_path(&o, path, sizeof path, &is_default)) { /* a file that cannot go anywhere: say so first */
    print_header(&o);
    rc = run(&o, path, is_default);
  }
  tune_options_free(&o);
  return rc;
}
