/* rotate_fp8_select.c: the list of compiled rotate-to-fp8 kernels and the choice of the best one for this CPU. */
#include "rotate_fp8_kernels.h"

#include <pthread.h>

const rotary_rotate_fp8_kernel rotary_rotate_fp8_list[] = {
#define ROTARY_ROTATE_FP8(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                 \
  {"rotary_" #dtype "_rotate_" #pairing "_to_fp8__" #isa, ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, \
   ROTARY_ISA_##ISA, rotary_##dtype##_rotate_##pairing##_to_fp8__##isa, 0},
#define ROTARY_ROTATE_FP8_NT(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                 \
  {"rotary_" #dtype "_rotate_" #pairing "_to_fp8__" #isa "_nt", ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, \
   ROTARY_ISA_##ISA, rotary_##dtype##_rotate_##pairing##_to_fp8__##isa##_nt, 1},
#include "rotate_fp8_list.h"
#undef ROTARY_ROTATE_FP8
#undef ROTARY_ROTATE_FP8_NT
};
const size_t rotary_rotate_fp8_count = sizeof rotary_rotate_fp8_list / sizeof rotary_rotate_fp8_list[0];

static pthread_once_t rotate_fp8_once = PTHREAD_ONCE_INIT;
/* [F32, F16, BF16][HALF, INTERLEAVED] */
static const rotary_rotate_fp8_kernel *rotate_fp8_chosen[3][2], *rotate_fp8_chosen_nt[3][2];

static void rotate_fp8_choose(void) {
  for (size_t i = 0; i < rotary_rotate_fp8_count; i++) {
    const rotary_rotate_fp8_kernel *k = &rotary_rotate_fp8_list[i];
    if (!k->nt && rotary_isa_enabled(k->isa)) rotate_fp8_chosen[k->dtype][k->pairing] = k;
  }
  for (size_t i = 0; i < rotary_rotate_fp8_count; i++) {
    const rotary_rotate_fp8_kernel *k = &rotary_rotate_fp8_list[i], *best = rotate_fp8_chosen[k->dtype][k->pairing];
    if (k->nt && best && best->isa == k->isa) rotate_fp8_chosen_nt[k->dtype][k->pairing] = k;
  }
}

const rotary_rotate_fp8_kernel *rotary_rotate_fp8_select(rotary_dtype dtype, rotary_pairing pairing) {
  if ((unsigned)dtype >= 3 || (unsigned)pairing >= 2) return NULL;
  pthread_once(&rotate_fp8_once, rotate_fp8_choose);
  return rotate_fp8_chosen[dtype][pairing];
}

const rotary_rotate_fp8_kernel *rotary_rotate_fp8_select_nt(rotary_dtype dtype, rotary_pairing pairing) {
  if ((unsigned)dtype >= 3 || (unsigned)pairing >= 2) return NULL;
  pthread_once(&rotate_fp8_once, rotate_fp8_choose);
  return rotate_fp8_chosen_nt[dtype][pairing];
}
