/* hf_config.c: a rope from a Hugging Face config.json, table and table-free, and a config error that names its field. */
#include <stdio.h>
#include <string.h>

#include <rotary.h>

int main(int argc, char **argv) {
  if (argc < 2) return fprintf(stderr, "usage: %s config.json\n", argv[0]), 2;
  char error[256];
  rotary_hf_config *hf;
  rotary_status st = rotary_hf_config_load(argv[1], &hf, error, sizeof error);
  if (st != ROTARY_OK) return fprintf(stderr, "%s: %s\n", argv[1], error), 1;
  const rotary_config *config = rotary_hf_config_rope(hf);
  printf("%s: rope_type %s, head_dim %zu, %zu q heads, %zu kv heads, base %g\n", rotary_hf_config_model_type(hf),
         rotary_hf_config_rope_type(hf), config->head_dim, rotary_hf_config_heads(hf),
         rotary_hf_config_kv_heads(hf), config->base);

  /* A table for the first 4096 positions, and a table-free rope that computes rows per token for any position. */
  rotary_rope *table, *free_rows;
  if ((st = rotary_rope_create(config, 4096, &table)) != ROTARY_OK ||
      (st = rotary_rope_create(config, 0, &free_rows)) != ROTARY_OK)
    return fprintf(stderr, "rotary_rope_create: %s\n", rotary_status_string(st)), 1;
  printf("table: %zu bytes, table-free: %zu bytes\n", rotary_rope_memory_bytes(table),
         rotary_rope_memory_bytes(free_rows));
  float c1[512], s1[512], c2[512], s2[512];
  const int64_t pos = 4000;
  if (config->rotary_dim > 1024 || rotary_rope_cos_sin(table, &pos, 1, c1, s1) != ROTARY_OK ||
      rotary_rope_cos_sin(free_rows, &pos, 1, c2, s2) != ROTARY_OK)
    return 1;
  const size_t bytes = config->rotary_dim / 2 * sizeof(float);
  const int same = memcmp(c1, c2, bytes) == 0 && memcmp(s1, s2, bytes) == 0;
  printf("position %lld, same bits with and without a table: %s\n", (long long)pos, same ? "yes" : "no");

  /* A bad value is refused, and rotary_config_check names the field. */
  rotary_config bad = *config;
  bad.scaling.low_freq_factor = 8.0; /* llama3 needs high_freq_factor > low_freq_factor */
  const char *field = NULL;
  st = rotary_config_check(&bad, &field);
  printf("low_freq_factor 8: %s (%s)\n", rotary_status_string(st), field ? field : "-");

  rotary_rope_destroy(free_rows);
  rotary_rope_destroy(table);
  rotary_hf_config_destroy(hf);
  return same && st == ROTARY_ERR_SCALING ? 0 : 1;
}
