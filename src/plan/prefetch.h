/* prefetch.h: how far ahead of the current head row the SIMD kernels prefetch: the default of rotary_tuning. */
#ifndef ROTARY_PREFETCH_H
#define ROTARY_PREFETCH_H

/* The process default of rotary_tuning.prefetch_bytes (bytes ahead of each head row that the SIMD kernels ask for,
 * input and output when it is elsewhere; -1: no software prefetch): the environment variable ROTARY_PREFETCH ("off"
 * or a byte count, 0 to 65536), else rotary_prefetch_default(). Reads the environment on every call: tuning.c
 * calls it once per process. `rotary bench --tune` measures other distances through a context's settings. */
int rotary_prefetch_from_env(void);

/* The default for this CPU, measured on the development machines: an AMD EPYC with AVX2 only ran the article's
 * shape at about 95% of a streaming pass without software prefetch and above it with 2 KiB; an AMD EPYC with
 * AVX-512 ran 15-20 points slower with 2 KiB than with a prefetch of the row itself (0). */
int rotary_prefetch_default(void);

#endif /* ROTARY_PREFETCH_H */
