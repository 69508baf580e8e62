/* cli_args.c: the option parsing that the rotary tool's subcommands share (numbers, getopt_long's refusals). */
#include "cli_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_bad(const char *command, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rotary %s: ", command);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 0;
}

int cli_parse_size(const char *s, size_t *v) {
  char *end;
  errno = 0;
  const unsigned long long x = strtoull(s, &end, 10);
  if (!*s || *end || s[0] == '-' || s[0] == '+' || errno || x > SIZE_MAX) return 0;
  *v = (size_t)x;
  return 1;
}

const struct option *cli_option_with(const struct option *options, int val) {
  for (const struct option *p = options; p->name; p++)
    if (p->val == val) return p;
  return NULL;
}

/* "--t": several options begin so; names them and returns 1. */
static int ambiguous(const char *command, const struct option *options, const char *arg) {
  if (strncmp(arg, "--", 2)) return 0;
  const size_t len = strcspn(arg + 2, "=");
  int count = 0;
  for (const struct option *p = options; p->name; p++) count += !strncmp(p->name, arg + 2, len);
  if (count < 2) return 0;
  fprintf(stderr, "rotary %s: ambiguous option '%.*s': it begins", command, (int)len + 2, arg);
  for (const struct option *p = options; p->name; p++)
    if (!strncmp(p->name, arg + 2, len)) fprintf(stderr, " --%s", p->name);
  fputc('\n', stderr);
  return 1;
}

int cli_refused(const char *command, const struct option *options, int c, char **argv) {
  const char *arg = argv[optind - 1];
  const struct option *p = cli_option_with(options, optopt);
  if (c == ':' && p) fprintf(stderr, "rotary %s: --%s needs a value\n", command, p->name);
  else if (p && p->has_arg == no_argument && optopt != 'h')
    fprintf(stderr, "rotary %s: --%s takes no value\n", command, p->name);
  else if (optopt && optopt < 256) fprintf(stderr, "rotary %s: unknown option '-%c'\n", command, optopt);
  else if (!ambiguous(command, options, arg)) fprintf(stderr, "rotary %s: unknown option '%s'\n", command, arg);
  return 0;
}
