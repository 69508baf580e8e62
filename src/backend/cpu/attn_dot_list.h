/* attn_dot_list.h: X-macro list of the decode-attention kernels for precision BF16 (bf16 products, fp32 sums). */
/* ROTARY_ATTN_DOT_KERNEL(dtype, DTYPE, isa, ISA) names rotary_attn_<dtype>_scores_dot__<isa> and
 * rotary_attn_<dtype>_values_dot__<isa> for a cache of ROTARY_<DTYPE> (attn_kernels.h: their contract). A dtype
 * without one here runs precision BF16 on its scores and values kernels, which compute the same products exactly.
 * Within one dtype later rows are better: dispatch takes the last enabled one. */
#if defined(__x86_64__) || defined(__i386__)
ROTARY_ATTN_DOT_KERNEL(bf16, BF16, avx512bf16, AVX512BF16)
#endif
