/* cli.h: the subcommands of the rotary tool. */
#ifndef ROTARY_CLI_H
#define ROTARY_CLI_H

int rotary_cli_info(int argc, char **argv);
int rotary_cli_bench(int argc, char **argv);

#endif
