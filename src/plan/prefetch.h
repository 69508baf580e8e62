/* prefetch.h: how far ahead of the current head row the SIMD kernels prefetch: a per-process tuning knob. */
#ifndef ROTARY_PREFETCH_H
#define ROTARY_PREFETCH_H

/* Bytes ahead of each head row that the SIMD kernels ask for (input, and output when it is elsewhere), or -1 for no
 * software prefetch. Set once per process by the kernel dispatcher (rotary_prefetch_init): the environment variable
 * ROTARY_PREFETCH ("off" or a byte count, 0 to 65536), else the default for the CPU. `rotary bench --tune` changes
 * it between calls to measure each candidate. */
extern int rotary_prefetch_bytes;

/* Reads ROTARY_PREFETCH or picks the CPU's default; called once by the dispatcher. */
void rotary_prefetch_init(void);

/* The default for this CPU, measured on the development machines: an AMD EPYC with AVX2 only ran the article's
 * shape at about 95% of a streaming pass without software prefetch and above it with 2 KiB; an AMD EPYC with
 * AVX-512 ran 15-20 points slower with 2 KiB than with a prefetch of the row itself (0). */
int rotary_prefetch_default(void);

#endif /* ROTARY_PREFETCH_H */
