/* cpu_features.c: runs the architecture's feature detection once and names the features for `rotary info`; the
 * CPU model that keys tuning files. */
#include <pthread.h>
#include <string.h>

#include "cpu_features.h"
#include "rotary.h"

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static unsigned detected_bits;
static char detected_text[160];

static const struct {
  unsigned bit;
  const char *name;
} feature_names[] = {
    {ROTARY_CPU_X86_AVX, "avx"},
    {ROTARY_CPU_X86_AVX2, "avx2"},
    {ROTARY_CPU_X86_FMA, "fma"},
    {ROTARY_CPU_X86_F16C, "f16c"},
    {ROTARY_CPU_X86_AVX512F, "avx512f"},
    {ROTARY_CPU_X86_AVX512DQ, "avx512dq"},
    {ROTARY_CPU_X86_AVX512BW, "avx512bw"},
    {ROTARY_CPU_X86_AVX512VL, "avx512vl"},
    {ROTARY_CPU_X86_AVX512BF16, "avx512bf16"},
    {ROTARY_CPU_X86_AVX512FP16, "avx512fp16"},
    {ROTARY_CPU_ARM_NEON, "neon"},
    {ROTARY_CPU_ARM_FP16, "fp16"},
    {ROTARY_CPU_ARM_BF16, "bf16"},
};

static void detect(void) {
  detected_bits = rotary_cpu_detect();
  size_t len = 0;
  for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
    if (!(detected_bits & feature_names[i].bit)) continue;
    size_t n = strlen(feature_names[i].name);
    if (len + n + 2 > sizeof detected_text) break;
    if (len) detected_text[len++] = ' ';
    memcpy(detected_text + len, feature_names[i].name, n + 1);
    len += n;
  }
  if (!len) memcpy(detected_text, "none", 5);
}

unsigned rotary_cpu_feature_bits(void) {
  pthread_once(&detect_once, detect);
  return detected_bits;
}

const char *rotary_cpu_features(void) {
  pthread_once(&detect_once, detect);
  return detected_text;
}

static pthread_once_t model_once = PTHREAD_ONCE_INIT;
static char model_text[128];

/* The architecture's text with spaces trimmed and runs of white space collapsed to one space; "unknown" if empty. */
static void detect_model(void) {
  char raw[sizeof model_text];
  raw[0] = '\0';
  rotary_cpu_model_detect(raw, sizeof raw);
  size_t n = 0;
  for (const char *c = raw; *c; c++) {
    const int space = *c == ' ' || *c == '\t' || *c == '\n' || *c == '\r';
    if (space && (n == 0 || model_text[n - 1] == ' ')) continue;
    if (n + 1 < sizeof model_text) model_text[n++] = space ? ' ' : *c;
  }
  while (n && model_text[n - 1] == ' ') n--;
  model_text[n] = '\0';
  if (!n) memcpy(model_text, "unknown", 8);
}

const char *rotary_cpu_model(void) {
  pthread_once(&model_once, detect_model);
  return model_text;
}
