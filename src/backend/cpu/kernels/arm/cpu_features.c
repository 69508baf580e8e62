/* arm/cpu_features.c: HWCAP detection on Linux aarch64 (NEON is architectural there); the main ID register's
 * implementer and part (from /proc/cpuinfo) as the CPU model. */
#include "cpu_features.h"

#if defined(__aarch64__)
#if defined(__linux__)
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#endif

unsigned rotary_cpu_detect(void) {
  unsigned bits = ROTARY_CPU_ARM_NEON;
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  unsigned long hw2 = getauxval(AT_HWCAP2);
  if (hw & (1ul << 10)) bits |= ROTARY_CPU_ARM_FP16;  /* HWCAP_ASIMDHP */
  if (hw2 & (1ul << 14)) bits |= ROTARY_CPU_ARM_BF16; /* HWCAP2_BF16 */
#endif
  return bits;
}

#if defined(__linux__)
/* The value of the first "key : value" line of /proc/cpuinfo (the first CPU's), into out; 0 if none. */
static int cpuinfo_field(FILE *f, const char *key, char *out, size_t size) {
  char line[256];
  const size_t klen = strlen(key);
  rewind(f);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) != 0) continue;
    const char *colon = strchr(line + klen, ':');
    if (!colon) continue;
    colon++;
    while (*colon == ' ' || *colon == '\t') colon++;
    size_t n = strcspn(colon, " \t\r\n");
    if (!n || n >= size) return 0;
    memcpy(out, colon, n);
    out[n] = '\0';
    return 1;
  }
  return 0;
}

/* "arm64 implementer 0x41 part 0xd0c" from "CPU implementer" and "CPU part"; "" when /proc/cpuinfo lacks them. */
void rotary_cpu_model_detect(char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen("/proc/cpuinfo", "re");
  if (!f) return;
  char implementer[32], part[32];
  if (cpuinfo_field(f, "CPU implementer", implementer, sizeof implementer) &&
      cpuinfo_field(f, "CPU part", part, sizeof part))
    snprintf(buf, size, "arm64 implementer %s part %s", implementer, part);
  fclose(f);
}
#endif
#endif
