/* cpu_features.h: the CPU features found at run time, as bits, for dispatch and for `rotary info`. */
#ifndef ROTARY_CPU_FEATURES_H
#define ROTARY_CPU_FEATURES_H

#include <stddef.h>

enum {
  ROTARY_CPU_X86_AVX = 1u << 0,
  ROTARY_CPU_X86_AVX2 = 1u << 1,
  ROTARY_CPU_X86_FMA = 1u << 2,
  ROTARY_CPU_X86_F16C = 1u << 3,
  ROTARY_CPU_X86_AVX512F = 1u << 4,
  ROTARY_CPU_X86_AVX512BW = 1u << 5,
  ROTARY_CPU_X86_AVX512VL = 1u << 6,
  ROTARY_CPU_X86_AVX512BF16 = 1u << 7,
  ROTARY_CPU_X86_AVX512FP16 = 1u << 8,
  ROTARY_CPU_X86_AVX512DQ = 1u << 9,
  ROTARY_CPU_ARM_NEON = 1u << 16,
  ROTARY_CPU_ARM_FP16 = 1u << 17,
  ROTARY_CPU_ARM_BF16 = 1u << 18
};

/* Detects the features once (usable by this CPU AND saved by the OS) and caches them; thread-safe. */
unsigned rotary_cpu_feature_bits(void);

/* Detection proper, one per architecture (src/x86, src/arm); 0 elsewhere. */
unsigned rotary_cpu_detect(void);

/* Writes the CPU model that keys tuning files (rotary_cpu_model) into buf (size >= 16), NUL-terminated: the x86
 * brand string, the Arm main ID register's implementer and part, "" when unknown. One per architecture. */
void rotary_cpu_model_detect(char *buf, size_t size);

#endif /* ROTARY_CPU_FEATURES_H */
