/* copy_list.h: X-macro list of every compiled streaming-copy kernel; included by the registry and the tests. */
/* ROTARY_COPY_NT(isa, ISA) names rotary_copy_nt__<isa>. Later rows are better: dispatch takes the last enabled one. */
ROTARY_COPY_NT(scalar, SCALAR)
#if defined(__x86_64__) || defined(__i386__)
ROTARY_COPY_NT(avx2, AVX2)
#endif
