/* info.c: `rotary info`: version, CPU features, the kernel chosen for each dtype and pairing, thread count. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "kernels.h"
#include "prefetch.h"
#include "sincos.h"
#include "nontemporal.h"
#include "tuning.h"
#include "rotary.h"

void rotary_cli_info_usage(FILE *f) {
  fprintf(f, "usage: rotary info [--help]\n"
             "Prints the version, the CPU features, the kernel chosen for each dtype and pairing, the cos/sin rows\n"
             "kernel, the software prefetch distance, the non-temporal store threshold and the compiled kernels.\n");
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

int rotary_cli_info(int argc, char **argv) {
  const int parsed = parse(argc, argv);
  if (parsed <= 0) return parsed ? 2 : 0;
  static const rotary_dtype dtypes[] = {ROTARY_F32, ROTARY_F16, ROTARY_BF16};
  static const char *dtype_names[] = {"f32", "f16", "bf16"};
  static const rotary_pairing pairings[] = {ROTARY_PAIRING_HALF, ROTARY_PAIRING_INTERLEAVED};
  static const char *pairing_names[] = {"half", "interleaved"};
  printf("rotary %s (header %s)\n", rotary_version_string(), ROTARY_VERSION_STRING);
  printf("cpu features: %s\n", rotary_cpu_features());
  printf("threads: %zu (online CPUs)\n", rotary_cpu_count());
  printf("chosen kernels:\n");
  for (int d = 0; d < 3; d++)
    for (int p = 0; p < 2; p++)
      printf("  %-4s %-11s %s\n", dtype_names[d], pairing_names[p], rotary_kernel_name(dtypes[d], pairings[p]));
  printf("  cos/sin rows     %s\n", rotary_rows_select()->name);
  const rotary_tuning *tuning = rotary_tuning_defaults(); /* what contexts start with */
  if (tuning->prefetch_bytes < 0) printf("software prefetch: off (ROTARY_PREFETCH)\n");
  else printf("software prefetch: %d bytes ahead of each head row (default %d; ROTARY_PREFETCH, rotary bench --tune)\n",
              tuning->prefetch_bytes, rotary_prefetch_default());
  if (tuning->nt_min_bytes == SIZE_MAX) {
    printf("non-temporal stores: off (ROTARY_STREAM_STORES)\n");
  } else {
    printf("non-temporal stores: out-of-place calls writing %zu bytes or more (default %zu; ROTARY_STREAM_STORES)\n",
           tuning->nt_min_bytes, rotary_nt_default());
    int any = 0;
    for (int d = 0; d < 3; d++)
      for (int p = 0; p < 2; p++) {
        const rotary_kernel *nt = rotary_kernel_select_nt(dtypes[d], pairings[p]);
        if (nt) printf("  %-4s %-11s %s\n", dtype_names[d], pairing_names[p], nt->name);
        any |= nt != NULL;
      }
    if (!any) printf("  (none of the chosen kernels has a non-temporal variant)\n");
  }
  printf("compiled kernels (operation, dtype, variant, isa):\n");
  for (size_t i = 0; i < rotary_kernel_registry_count; i++) {
    const rotary_kernel_info *k = &rotary_kernel_registry[i];
    printf("  %-40s %-11s %-10s %s\n", k->name, rotary_kernel_op_name(k->op), k->variant,
           rotary_isa_supported(k->isa) ? "usable" : "not usable on this CPU");
  }
  return 0;
}
