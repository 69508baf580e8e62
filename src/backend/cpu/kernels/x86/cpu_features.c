/* x86/cpu_features.c: CPUID + XGETBV detection (a feature counts only if the OS saves its registers); the CPUID
 * brand string as the CPU model. */
#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdint.h>
#include <string.h>

static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

unsigned rotary_cpu_detect(void) {
  unsigned a, b, c, d, bits = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int osxsave = (c >> 27) & 1;
  if (!osxsave) return 0;
  uint64_t xcr0 = read_xcr0();
  int ymm_saved = (xcr0 & 0x6) == 0x6;         /* SSE and AVX state */
  int zmm_saved = (xcr0 & 0xe6) == 0xe6;       /* plus opmask, ZMM_Hi256, Hi16_ZMM */
  if (!ymm_saved) return 0;
  if ((c >> 28) & 1) bits |= ROTARY_CPU_X86_AVX;
  if ((c >> 12) & 1) bits |= ROTARY_CPU_X86_FMA;
  if ((c >> 29) & 1) bits |= ROTARY_CPU_X86_F16C;
  if (__get_cpuid_max(0, 0) < 7) return bits;
  __cpuid_count(7, 0, a, b, c, d);
  if ((b >> 5) & 1) bits |= ROTARY_CPU_X86_AVX2;
  if (zmm_saved) {
    if ((b >> 16) & 1) bits |= ROTARY_CPU_X86_AVX512F;
    if ((b >> 17) & 1) bits |= ROTARY_CPU_X86_AVX512DQ;
    if ((b >> 30) & 1) bits |= ROTARY_CPU_X86_AVX512BW;
    if ((b >> 31) & 1) bits |= ROTARY_CPU_X86_AVX512VL;
    if ((d >> 23) & 1) bits |= ROTARY_CPU_X86_AVX512FP16;
    unsigned max_sub = a;
    if (max_sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      if ((a >> 5) & 1) bits |= ROTARY_CPU_X86_AVX512BF16;
    }
  }
  return bits;
}

/* Leaves 0x80000002 .. 0x80000004: 48 bytes of text, NUL-padded ("AMD EPYC 7B13 64-Core Processor"). */
void rotary_cpu_model_detect(char *buf, size_t size) {
  unsigned regs[12];
  buf[0] = '\0';
  if ((unsigned)__get_cpuid_max(0x80000000u, 0) < 0x80000004u) return;
  for (unsigned leaf = 0; leaf < 3; leaf++)
    __cpuid(0x80000002u + leaf, regs[4 * leaf], regs[4 * leaf + 1], regs[4 * leaf + 2], regs[4 * leaf + 3]);
  char text[sizeof regs + 1];
  memcpy(text, regs, sizeof regs);
  text[sizeof regs] = '\0';
  size_t n = strlen(text);
  if (n >= size) n = size - 1;
  memcpy(buf, text, n);
  buf[n] = '\0';
}
#endif
