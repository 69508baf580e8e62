/* prefetch.h: how far ahead of the current head row the SIMD kernels prefetch: the CPU default of prefetch_bytes. */
#ifndef ROTARY_PREFETCH_H
#define ROTARY_PREFETCH_H

/* The default of rotary_tuning.prefetch_bytes for this CPU (bytes ahead of each head row that the SIMD kernels ask
 * for, input and output when it is elsewhere; -1: no software prefetch), before ROTARY_TUNING_FILE and
 * ROTARY_PREFETCH (tuning.c). Measured on the development machines: an AMD EPYC with AVX2 only ran the article's
 * shape at about 95% of a streaming pass without software prefetch and above it with 2 KiB; an AMD EPYC with
 * AVX-512 ran 15-20 points slower with 2 KiB than with a prefetch of the row itself (0). */
int rotary_prefetch_default(void);

#endif /* ROTARY_PREFETCH_H */
