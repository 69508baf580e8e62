/* arm/cpu_features.c: HWCAP detection on Linux aarch64 (NEON is architectural there). */
#include "cpu_features.h"

#if defined(__aarch64__)
#if defined(__linux__)
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
#endif
