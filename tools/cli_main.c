/* cli_main.c: entry point of the rotary tool; dispatches to its subcommands. Help goes to stdout with status 0;
 * usage errors go to stderr with status 2; a failed run exits 1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rotary.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: rotary <command> [options]\n"
          "  info    version, CPU features, chosen kernels, threads, settings and where each came from\n"
          "  bench   time the fused RoPE call against a streaming pass\n"
          "  tune    measure the library's settings on this machine and save them in a tuning file\n"
          "  version print the version\n"
          "  help    this text, or `rotary help <command>` (the same as `rotary <command> --help`)\n");
}

static int is_help(const char *a) { return !strcmp(a, "help") || !strcmp(a, "--help") || !strcmp(a, "-h"); }

static int is_version(const char *a) { return !strcmp(a, "version") || !strcmp(a, "--version"); }

static int unknown_command(const char *name) {
  fprintf(stderr, "rotary: unknown command '%s'\n", name);
  usage(stderr);
  return 2;
}

/* `rotary help [command]` */
static int help(int argc, char **argv) {
  if (argc > 3) {
    fprintf(stderr, "rotary: help takes one command at most\n");
    usage(stderr);
    return 2;
  }
  if (argc < 3) usage(stdout);
  else if (!strcmp(argv[2], "info")) rotary_cli_info_usage(stdout);
  else if (!strcmp(argv[2], "bench")) bench_usage(stdout, 1);
  else if (!strcmp(argv[2], "tune")) rotary_cli_tune_usage(stdout, 1);
  else if (is_version(argv[2])) printf("usage: rotary version\n");
  else return unknown_command(argv[2]);
  return 0;
}

/* A report that could not be written (a full disk, a closed pipe) is a failure, said with the system's reason. */
static int finish(int rc) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "rotary: cannot write the output: %s\n", strerror(errno));
    return rc ? rc : 1;
  }
  return rc;
}

static int run(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "info")) return rotary_cli_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return rotary_cli_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "tune")) return rotary_cli_tune(argc - 1, argv + 1);
  if (is_version(argv[1])) {
    if (argc > 2 && is_help(argv[2])) {
      printf("usage: rotary version\n");
      return 0;
    }
    if (argc > 2) {
      fprintf(stderr, "rotary: version takes no arguments, got '%s'\n", argv[2]);
      return 2;
    }
    printf("rotary %s\n", rotary_version_string());
    return 0;
  }
  if (is_help(argv[1])) return help(argc, argv);
  return unknown_command(argv[1]);
}

int main(int argc, char **argv) { return finish(run(argc, argv)); }
