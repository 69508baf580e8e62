/* generic/cpu_features.c: no run-time features on architectures without a folder of their own. */
#include "cpu_features.h"

#if !defined(__x86_64__) && !defined(__i386__) && !defined(__aarch64__)
unsigned rotary_cpu_detect(void) { return 0; }
#endif

#if !defined(__x86_64__) && !defined(__i386__) && !(defined(__aarch64__) && defined(__linux__))
void rotary_cpu_model_detect(char *buf, size_t size) {
  if (size) buf[0] = '\0'; /* "unknown" */
}
#endif
