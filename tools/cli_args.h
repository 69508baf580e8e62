/* cli_args.h: the option parsing that the rotary tool's subcommands share (numbers, getopt_long's refusals). */
#ifndef ROTARY_CLI_ARGS_H
#define ROTARY_CLI_ARGS_H

#include <getopt.h>
#include <stddef.h>

/* Prints "rotary <command>: <message>" on stderr and returns 0 (a bad option). */
int cli_bad(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A whole number without sign into *v: 1, else 0 (empty, signed, trailing text, beyond SIZE_MAX). */
int cli_parse_size(const char *s, size_t *v);

/* The option of `options` (ended by a NULL name) whose val is val; NULL when none. */
const struct option *cli_option_with(const struct option *options, int val);

/* What getopt_long refused ('?' or ':' in c; argv and optind as it left them), said on stderr as
 * "rotary <command>: ..." (a missing value, a value given to a flag, an unknown or an ambiguous option naming the
 * options it begins). Returns 0; the caller prints its usage. */
int cli_refused(const char *command, const struct option *options, int c, char **argv);

#endif /* ROTARY_CLI_ARGS_H */
