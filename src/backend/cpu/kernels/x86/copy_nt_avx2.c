/* x86/copy_nt_avx2.c: the streaming copy built for AVX2: 32-byte non-temporal stores on the aligned part of dst. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>
#include <string.h>

#include "copy_kernels.h"
#include "isa_avx2.h"

/* The bytes before dst's first 32-byte boundary and after its last one go through memcpy; in between, unaligned
 * loads and aligned streaming stores, four vectors (two lines) a step. */
ROTARY_TARGET void rotary_copy_nt__avx2(void *dst, const void *src, size_t bytes) {
  char *d = dst;
  const char *s = src;
  const size_t head = (size_t)(-(uintptr_t)d & 31);
  if (bytes < head + 32) {
    memcpy(d, s, bytes);
    return;
  }
  memcpy(d, s, head);
  size_t i = head;
  for (; i + 128 <= bytes; i += 128) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
    const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 32));
    const __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 64));
    const __m256i e = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 96));
    _mm256_stream_si256((__m256i *)(void *)(d + i), a);
    _mm256_stream_si256((__m256i *)(void *)(d + i + 32), b);
    _mm256_stream_si256((__m256i *)(void *)(d + i + 64), c);
    _mm256_stream_si256((__m256i *)(void *)(d + i + 96), e);
  }
  for (; i + 32 <= bytes; i += 32)
    _mm256_stream_si256((__m256i *)(void *)(d + i), _mm256_loadu_si256((const __m256i *)(const void *)(s + i)));
  memcpy(d + i, s + i, bytes - i); /* the streamed stores stay unfenced: the caller's task fences once */
}
#endif
