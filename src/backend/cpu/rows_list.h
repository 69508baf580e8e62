/* rows_list.h: X-macro list of every compiled cos/sin rows kernel; included by the registry and the tests. */
/* ROTARY_ROWS(isa, ISA) names rotary_sincos_rows__<isa>; later rows are better: dispatch takes the last enabled. */
ROTARY_ROWS(scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_ROWS(avx2, AVX2)
ROTARY_ROWS(avx512, AVX512)
#endif
#if defined(__aarch64__)
ROTARY_ROWS(neon, NEON)
#endif
