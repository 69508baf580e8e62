/* info.c: `rotary info`: version, CPU model and features, the kernel chosen for each dtype and pairing, thread
 * count, every setting with its value and source, the tuning file and ROTARY_TUNING_FILE's outcome. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kernels.h"
#include "sincos.h"
#include "rotary.h"

void rotary_cli_info_usage(FILE *f) {
  fprintf(f, "usage: rotary info [--help]\n"
             "Prints the version, the CPU model and features, the kernel chosen for each dtype and pairing, the\n"
             "cos/sin rows kernel, every setting new contexts start with (its value, where it came from: default,\n"
             "file or environment, its variable, the CPU's default and its range), this CPU's default tuning file\n"
             "and whether ROTARY_TUNING_FILE loaded, the non-temporal store kernels and the compiled kernels.\n");
}

/* 1: print the report; 0: --help shown; -1: refused (said why). */
static int parse(int argc, char **argv) {
  static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  optind = 1;
  opterr = 0;
  int c = getopt_long(argc, argv, "h", options, NULL);
  if (c == 'h') {
    rotary_cli_info_usage(stdout);
    return 0;
  }
  if (c == '?') {
    if (optopt == 'h') fprintf(stderr, "rotary info: --help takes no value\n");
    else if (optopt) fprintf(stderr, "rotary info: unknown option '-%c'\n", optopt);
    else fprintf(stderr, "rotary info: unknown option '%s'\n", argv[optind - 1]);
  } else if (optind < argc) {
    fprintf(stderr, "rotary info: unexpected argument '%s'\n", argv[optind]);
  } else {
    return 1;
  }
  rotary_cli_info_usage(stderr);
  return -1;
}

/* A setting's value as people read it: "off" for -1 where the setting has an off value. */
static void format_value(rotary_setting s, int64_t v, char *buf, size_t size) {
  int64_t min = 0, max = 0;
  if (v == -1 && rotary_setting_range(s, &min, &max) == ROTARY_OK && min == -1) snprintf(buf, size, "off");
  else snprintf(buf, size, "%lld", (long long)v);
}

/* A range bound: powers of two from 2^20 up as "2^k" (2^50 reads better than its 16 digits). */
static void format_bound(int64_t v, char *buf, size_t size) {
  int k = 0;
  while (k < 62 && ((int64_t)1 << k) < v) k++;
  if (v >= ((int64_t)1 << 20) && v == ((int64_t)1 << k)) snprintf(buf, size, "2^%d", k);
  else snprintf(buf, size, "%lld", (long long)v);
}

/* Every setting of the process defaults (what a new context starts with), its source, variable, CPU default and
 * range. */
static void print_settings(void) {
  printf("settings (what every new context starts with; ROTARY_TUNING_FILE, then each variable, override the CPU "
         "default):\n");
  printf("  %-20s %-12s %-12s %-24s %-12s %s\n", "setting", "value", "source", "variable", "cpu default", "range");
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    const rotary_setting s = (rotary_setting)i;
    int64_t v = 0, d = 0, min = 0, max = 0;
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    if (rotary_context_get_setting(NULL, s, &v, &src) != ROTARY_OK || rotary_setting_default(s, &d) != ROTARY_OK ||
        rotary_setting_range(s, &min, &max) != ROTARY_OK)
      continue;
    char value[32], def[32], lo[32], hi[32], range[80];
    format_value(s, v, value, sizeof value);
    format_value(s, d, def, sizeof def);
    format_bound(min, lo, sizeof lo);
    format_bound(max, hi, sizeof hi);
    if (min == -1) snprintf(range, sizeof range, "off, 0 .. %s", hi);
    else snprintf(range, sizeof range, "%s .. %s", lo, hi);
    printf("  %-20s %-12s %-12s %-24s %-12s %s\n", rotary_setting_name(s), value, rotary_setting_source_name(src),
           rotary_setting_env(s), def, range);
  }
}

/* This CPU's default tuning file and whether it is there; what ROTARY_TUNING_FILE did. A file that failed is
 * reported here, not as an error: the process runs with the defaults, as the library does. */
static void print_tuning_files(void) {
  char path[4096];
  struct stat st;
  const rotary_status pst = rotary_tuning_default_path(path, sizeof path);
  const int present = pst == ROTARY_OK && stat(path, &st) == 0;
  if (pst == ROTARY_OK) printf("tuning file (default path): %s (%s)\n", path, present ? "present" : "none there");
  else printf("tuning file (default path): none (%s)\n",
              pst == ROTARY_ERR_IO ? "neither XDG_CACHE_HOME nor HOME is set" : rotary_status_string(pst));
  const char *env = getenv("ROTARY_TUNING_FILE");
  char message[1024] = "";
  const rotary_status est = rotary_tuning_env_status(message, sizeof message);
  size_t from_file = 0;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    int64_t v = 0;
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    from_file += rotary_context_get_setting(NULL, (rotary_setting)i, &v, &src) == ROTARY_OK && src == ROTARY_SOURCE_FILE;
  }
  if (!env || !*env)
    printf("ROTARY_TUNING_FILE: unset (=auto loads the default path's file, =PATH another; `rotary tune` writes one)\n");
  else if (est != ROTARY_OK)
    printf("ROTARY_TUNING_FILE=%s: not loaded, the defaults are in force: %s\n", env,
           message[0] ? message : rotary_status_string(est));
  else if (!strcmp(env, "auto") && !present)
    printf("ROTARY_TUNING_FILE=auto: no file at the default path, nothing loaded\n");
  else
    printf("ROTARY_TUNING_FILE=%s: loaded, %zu setting%s from it (source file)\n", env, from_file,
           from_file == 1 ? "" : "s");
}

/* The non-temporal variants of the chosen kernels, which out-of-place calls of stream_store_bytes or more run. */
static void print_nt_kernels(void) {
  static const rotary_dtype dtypes[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  static const char *dtype_names[] = {"f32", "f16", "bf16"};
  static const rotary_pairing pairings[] = {ROTARY_PAIRING_HALF, ROTARY_PAIRING_INTERLEAVED};
  static const char *pairing_names[] = {"half", "interleaved"};
  int64_t nt = -1;
  rotary_context_get_setting(NULL, ROTARY_SETTING_STREAM_STORE_BYTES, &nt, NULL);
  if (nt < 0) {
    printf("non-temporal stores: off (stream_store_bytes)\n");
    return;
  }
  printf("non-temporal stores: out-of-place calls writing %lld bytes or more (stream_store_bytes)\n", (long long)nt);
  int any = 0;
  for (int d = 0; d < 3; d++)
    for (int p = 0; p < 2; p++) {
      const rotary_kernel *k = rotary_kernel_select_nt(dtypes[d], pairings[p]);
      if (k) printf("  %-4s %-11s %s\n", dtype_names[d], pairing_names[p], k->name);
      any |= k != NULL;
    }
  if (!any) printf("  (none of the chosen kernels has a non-temporal variant)\n");
}

int rotary_cli_info(int argc, char **argv) {
  const int parsed = parse(argc, argv);
  if (parsed <= 0) return parsed ? 2 : 0;
  static const rotary_dtype dtypes[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  static const char *dtype_names[] = {"f32", "f16", "bf16"};
  static const rotary_pairing pairings[] = {ROTARY_PAIRING_HALF, ROTARY_PAIRING_INTERLEAVED};
  static const char *pairing_names[] = {"half", "interleaved"};
  printf("rotary %s (header %s)\n", rotary_version_string(), ROTARY_VERSION_STRING);
  printf("cpu model: %s\n", rotary_cpu_model());
  printf("cpu features: %s\n", rotary_cpu_features());
  printf("threads: %zu (online CPUs)\n", rotary_cpu_count());
  printf("chosen kernels:\n");
  for (int d = 0; d < 3; d++)
    for (int p = 0; p < 2; p++)
      printf("  %-4s %-11s %s\n", dtype_names[d], pairing_names[p], rotary_kernel_name(dtypes[d], pairings[p]));
  printf("  cos/sin rows     %s\n", rotary_rows_select()->name);
  print_settings();
  print_tuning_files();
  print_nt_kernels();
  printf("compiled kernels (operation, dtype, variant, isa):\n");
  for (size_t i = 0; i < rotary_kernel_registry_count; i++) {
    const rotary_kernel_info *k = &rotary_kernel_registry[i];
    printf("  %-40s %-16s %-11s %s\n", k->name, rotary_kernel_op_name(k->op), k->variant,
           rotary_isa_supported(k->isa) ? "usable" : "not usable on this CPU");
  }
  return 0;
}
