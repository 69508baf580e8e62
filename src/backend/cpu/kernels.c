/* kernels.c: the registries of compiled kernels (typed lists and the one registry of every kernel) and dispatch. */
#include "kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attn_kernels.h"
#include "convert_kernels.h"
#include "copy_kernels.h"
#include "cpu_features.h"
#include "rotate_fp8_kernels.h"
#include "sincos.h"

const rotary_kernel rotary_kernel_list[] = {
#define ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                              \
  {"rotary_" #dtype "_rotate_" #pairing "__" #isa, ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, \
   ROTARY_ISA_##ISA, rotary_##dtype##_rotate_##pairing##__##isa, 0},
#define ROTARY_KERNEL_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                 \
  {"rotary_" #dtype "_rotate_" #pairing "__" #isa "_nt", ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, \
   ROTARY_ISA_##ISA, rotary_##dtype##_rotate_##pairing##__##isa##_nt, 1},
#include "kernel_list.h"
#undef ROTARY_KERNEL
#undef ROTARY_KERNEL_NT
};
const size_t rotary_kernel_count = sizeof rotary_kernel_list / sizeof rotary_kernel_list[0];

const rotary_rows_kernel rotary_rows_list[] = {
#define ROTARY_ROWS(isa, ISA) {"rotary_sincos_rows__" #isa, ROTARY_ISA_##ISA, rotary_sincos_rows__##isa},
#include "rows_list.h"
#undef ROTARY_ROWS
};
const size_t rotary_rows_count = sizeof rotary_rows_list / sizeof rotary_rows_list[0];

const rotary_kernel_info rotary_kernel_registry[] = {
#define ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                             \
  {"rotary_" #dtype "_rotate_" #pairing "__" #isa, ROTARY_OP_ROTATE, ROTARY_##DTYPE, ROTARY_##DTYPE, #pairing, \
   ROTARY_ISA_##ISA, {.rotate = rotary_##dtype##_rotate_##pairing##__##isa}},
#define ROTARY_KERNEL_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                   \
  {"rotary_" #dtype "_rotate_" #pairing "__" #isa "_nt", ROTARY_OP_ROTATE_NT, ROTARY_##DTYPE, ROTARY_##DTYPE, \
   #pairing, ROTARY_ISA_##ISA, {.rotate = rotary_##dtype##_rotate_##pairing##__##isa##_nt}},
#include "kernel_list.h"
#undef ROTARY_KERNEL
#undef ROTARY_KERNEL_NT
#define ROTARY_ROWS(isa, ISA)                                                                           \
  {"rotary_sincos_rows__" #isa, ROTARY_OP_SINCOS_ROWS, ROTARY_F32, ROTARY_F32, "", ROTARY_ISA_##ISA, \
   {.sincos_rows = rotary_sincos_rows__##isa}},
#include "rows_list.h"
#undef ROTARY_ROWS
#define ROTARY_CONVERT(from, FROM, to, TO, isa, ISA)                                                     \
  {"rotary_" #from "_to_" #to "_convert__" #isa, ROTARY_OP_CONVERT, ROTARY_##FROM, ROTARY_##TO, "to_" #to, \
   ROTARY_ISA_##ISA, {.convert = rotary_##from##_to_##to##_convert__##isa}},
#define ROTARY_CONVERT_NT(from, FROM, to, TO, isa, ISA)                                                          \
  {"rotary_" #from "_to_" #to "_convert__" #isa "_nt", ROTARY_OP_CONVERT_NT, ROTARY_##FROM, ROTARY_##TO, "to_" #to, \
   ROTARY_ISA_##ISA, {.convert = rotary_##from##_to_##to##_convert__##isa##_nt}},
#include "convert_list.h"
#undef ROTARY_CONVERT
#undef ROTARY_CONVERT_NT
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)                                                               \
  {"rotary_attn_" #dtype "_scores__" #isa, ROTARY_OP_ATTN_SCORES, ROTARY_##DTYPE, ROTARY_F32, "", ROTARY_ISA_##ISA, \
   {.attn_scores = rotary_attn_##dtype##_scores__##isa}},                                                         \
  {"rotary_attn_" #dtype "_values__" #isa, ROTARY_OP_ATTN_VALUES, ROTARY_##DTYPE, ROTARY_F32, "", ROTARY_ISA_##ISA, \
   {.attn_values = rotary_attn_##dtype##_values__##isa}},
#define ROTARY_ATTN_EXP(isa, ISA)                                                                   \
  {"rotary_attn_exp__" #isa, ROTARY_OP_ATTN_EXP, ROTARY_F32, ROTARY_F32, "", ROTARY_ISA_##ISA, \
   {.attn_exp = rotary_attn_exp__##isa}},
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                  \
  {"rotary_attn_" #dtype "_scores_" #pairing "__" #isa, ROTARY_OP_ATTN_SCORES_ROT, ROTARY_##DTYPE, ROTARY_F32, \
   #pairing, ROTARY_ISA_##ISA, {.attn_scores_rot = rotary_attn_##dtype##_scores_##pairing##__##isa}},
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
#define ROTARY_ATTN_DOT_KERNEL(dtype, DTYPE, isa, ISA)                                                            \
  {"rotary_attn_" #dtype "_scores_dot__" #isa, ROTARY_OP_ATTN_SCORES_DOT, ROTARY_##DTYPE, ROTARY_F32, "dot",     \
   ROTARY_ISA_##ISA, {.attn_scores = rotary_attn_##dtype##_scores_dot__##isa}},                                  \
  {"rotary_attn_" #dtype "_values_dot__" #isa, ROTARY_OP_ATTN_VALUES_DOT, ROTARY_##DTYPE, ROTARY_F32, "dot",     \
   ROTARY_ISA_##ISA, {.attn_values = rotary_attn_##dtype##_values_dot__##isa}},
#include "attn_dot_list.h"
#undef ROTARY_ATTN_DOT_KERNEL
#define ROTARY_COPY_NT(isa, ISA)                                                           \
  {"rotary_copy_nt__" #isa, ROTARY_OP_COPY_NT, ROTARY_F32, ROTARY_F32, "", ROTARY_ISA_##ISA, \
   {.copy = rotary_copy_nt__##isa}},
#include "copy_list.h"
#undef ROTARY_COPY_NT
#define ROTARY_ROTATE_FP8(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                             \
  {"rotary_" #dtype "_rotate_" #pairing "_to_fp8__" #isa, ROTARY_OP_ROTATE_FP8, ROTARY_##DTYPE, ROTARY_FP8_E4M3, \
   #pairing, ROTARY_ISA_##ISA, {.rotate_fp8 = rotary_##dtype##_rotate_##pairing##_to_fp8__##isa}},
#define ROTARY_ROTATE_FP8_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                          \
  {"rotary_" #dtype "_rotate_" #pairing "_to_fp8__" #isa "_nt", ROTARY_OP_ROTATE_FP8_NT, ROTARY_##DTYPE,        \
   ROTARY_FP8_E4M3, #pairing, ROTARY_ISA_##ISA, {.rotate_fp8 = rotary_##dtype##_rotate_##pairing##_to_fp8__##isa##_nt}},
#include "rotate_fp8_list.h"
#undef ROTARY_ROTATE_FP8
#undef ROTARY_ROTATE_FP8_NT
};
const size_t rotary_kernel_registry_count = sizeof rotary_kernel_registry / sizeof rotary_kernel_registry[0];

const rotary_kernel_info *rotary_kernel_find(const char *name) {
  for (size_t i = 0; name && i < rotary_kernel_registry_count; i++)
    if (!strcmp(rotary_kernel_registry[i].name, name)) return &rotary_kernel_registry[i];
  return NULL;
}

const char *rotary_kernel_op_name(rotary_kernel_op op) {
  switch (op) {
    case ROTARY_OP_ROTATE: return "rotate";
    case ROTARY_OP_ROTATE_NT: return "rotate_nt";
    case ROTARY_OP_SINCOS_ROWS: return "sincos_rows";
    case ROTARY_OP_CONVERT: return "convert";
    case ROTARY_OP_ATTN_SCORES: return "attn_scores";
    case ROTARY_OP_ATTN_VALUES: return "attn_values";
    case ROTARY_OP_ATTN_EXP: return "attn_exp";
    case ROTARY_OP_ATTN_SCORES_ROT: return "attn_scores_rot";
    case ROTARY_OP_ATTN_SCORES_DOT: return "attn_scores_dot";
    case ROTARY_OP_ATTN_VALUES_DOT: return "attn_values_dot";
    case ROTARY_OP_COPY_NT: return "copy_nt";
    case ROTARY_OP_ROTATE_FP8: return "rotate_fp8";
    case ROTARY_OP_CONVERT_NT: return "convert_nt";
    case ROTARY_OP_ROTATE_FP8_NT: return "rotate_fp8_nt";
  }
  return "unknown";
}

const char *rotary_isa_name(rotary_isa isa) {
  switch (isa) {
    case ROTARY_ISA_SCALAR: return "scalar";
    case ROTARY_ISA_AVX2: return "avx2";
    case ROTARY_ISA_AVX512: return "avx512";
    case ROTARY_ISA_AVX512BF16: return "avx512bf16";
    case ROTARY_ISA_NEON: return "neon";
  }
  return "unknown";
}

int rotary_isa_supported(rotary_isa isa) {
  const unsigned f = rotary_cpu_feature_bits();
  const unsigned avx2 = ROTARY_CPU_X86_AVX | ROTARY_CPU_X86_AVX2 | ROTARY_CPU_X86_FMA | ROTARY_CPU_X86_F16C;
  const unsigned avx512 = avx2 | ROTARY_CPU_X86_AVX512F | ROTARY_CPU_X86_AVX512BW | ROTARY_CPU_X86_AVX512VL;
  const unsigned avx512bf16 = avx512 | ROTARY_CPU_X86_AVX512DQ | ROTARY_CPU_X86_AVX512BF16;
  switch (isa) {
    case ROTARY_ISA_SCALAR: return 1;
    case ROTARY_ISA_AVX2: return (f & avx2) == avx2;
    case ROTARY_ISA_AVX512: return (f & avx512) == avx512;
    case ROTARY_ISA_AVX512BF16: return (f & avx512bf16) == avx512bf16;
    case ROTARY_ISA_NEON: return (f & ROTARY_CPU_ARM_NEON) != 0;
  }
  return 0;
}

static pthread_once_t cap_once = PTHREAD_ONCE_INIT, choose_once = PTHREAD_ONCE_INIT;
static int isa_cap = -1; /* the best ISA ROTARY_ISA allows; -1: no cap (unset or unknown value) */
static const rotary_kernel *chosen[3][2], *chosen_nt[3][2];
static const rotary_rows_kernel *chosen_rows;

static void read_cap(void) {
  const char *env = getenv("ROTARY_ISA");
  for (int i = ROTARY_ISA_SCALAR; env && i <= ROTARY_ISA_NEON; i++)
    if (!strcmp(env, rotary_isa_name((rotary_isa)i))) isa_cap = i;
}

static void choose(void) {
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i];
    if (!k->nt && rotary_isa_enabled(k->isa)) chosen[k->dtype][k->pairing] = k;
  }
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i], *best = chosen[k->dtype][k->pairing];
    if (k->nt && best && best->isa == k->isa) chosen_nt[k->dtype][k->pairing] = k;
  }
  for (size_t i = 0; i < rotary_rows_count; i++)
    if (rotary_isa_enabled(rotary_rows_list[i].isa)) chosen_rows = &rotary_rows_list[i];
}

int rotary_isa_enabled(rotary_isa isa) {
  /* scalar always; others when supported and, on the cap's architecture, not above the cap */
  if (isa == ROTARY_ISA_SCALAR) return 1;
  if (!rotary_isa_supported(isa)) return 0;
  pthread_once(&cap_once, read_cap);
  if (isa_cap < 0) return 1;
  if (isa_cap == ROTARY_ISA_NEON || isa == ROTARY_ISA_NEON) return isa_cap == (int)isa;
  return (int)isa <= isa_cap;
}

const rotary_kernel *rotary_kernel_select(rotary_dtype dtype, rotary_pairing pairing) {
  pthread_once(&choose_once, choose);
  if ((unsigned)dtype > ROTARY_BF16 || (unsigned)pairing > ROTARY_PAIRING_INTERLEAVED) return NULL;
  return chosen[dtype][pairing];
}

const rotary_kernel *rotary_kernel_select_nt(rotary_dtype dtype, rotary_pairing pairing) {
  pthread_once(&choose_once, choose);
  if ((unsigned)dtype > ROTARY_BF16 || (unsigned)pairing > ROTARY_PAIRING_INTERLEAVED) return NULL;
  return chosen_nt[dtype][pairing];
}

const rotary_rows_kernel *rotary_rows_select(void) {
  pthread_once(&choose_once, choose);
  return chosen_rows;
}

const char *rotary_kernel_name(rotary_dtype dtype, rotary_pairing pairing) {
  const rotary_kernel *k = rotary_kernel_select(dtype, pairing);
  return k ? k->name : "unknown";
}
