/* tune.h: `rotary tune`'s options (tune_options.c) and run (tune.c). */
#ifndef ROTARY_TUNE_CLI_H
#define ROTARY_TUNE_CLI_H

#include "bench.h"
#include "rotary.h"

/* The shapes a tuning run times: a prefill and a decode step (either may be left out, not both). */
enum { TUNE_PREFILL = 0, TUNE_DECODE = 1, TUNE_SHAPES = 2 };

typedef struct tune_cli_options {
  bench_options shape[TUNE_SHAPES]; /* each shape as bench_setup_create takes it (out of place, same rope) */
  int has[TUNE_SHAPES];             /* --tokens 0 / --decode 0 leave that shape out */
  const char *model;                /* the preset's name or shape[0].model_name (--config) */
  rotary_hf_config *hf;             /* --config: owns the rope's arrays; freed by tune_options_free */
  char model_name[96];              /* --config: "model_type (rope_type)" */
  rotary_tune_options tune;         /* --seconds, --min-gain, --rounds, --settings */
  const char *out;                  /* --out FILE, or NULL for rotary_tuning_default_path */
  int no_save;                      /* --no-save */
  int in_place;                     /* --in-place: q and k rotated in place (default out of place) */
} tune_cli_options;

/* Parses argv: 1 ok, 0 refused (message on stderr), -1 --help asked. */
int tune_parse_options(int argc, char **argv, tune_cli_options *o);
/* Frees what tune_parse_options allocated (the parsed --config). */
void tune_options_free(tune_cli_options *o);

#endif /* ROTARY_TUNE_CLI_H */
