/* rotary.c: entry point of the rotary tool; dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rotary.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: rotary <command> [options]\n"
          "  info    version, CPU features, chosen kernels and thread count\n"
          "  bench   time the fused RoPE call against a streaming pass (rotary bench --help)\n"
          "  version print the version\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "info")) return rotary_cli_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return rotary_cli_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("rotary %s\n", rotary_version_string());
    return 0;
  }
  if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "rotary: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
