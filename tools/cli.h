/* cli.h: the subcommands of the rotary tool and their usage texts. */
#ifndef ROTARY_CLI_H
#define ROTARY_CLI_H

#include <stdio.h>

int rotary_cli_info(int argc, char **argv);
int rotary_cli_bench(int argc, char **argv);
int rotary_cli_tune(int argc, char **argv);
void rotary_cli_info_usage(FILE *f);
void rotary_cli_tune_usage(FILE *f, int full); /* full: every option explained; else the synopsis */
void bench_usage(FILE *f, int full); /* full: every option explained; else the synopsis (bench_options.c) */

#endif
