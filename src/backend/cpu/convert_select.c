/* convert_select.c: the list of compiled conversion kernels and the choice of the best one for this CPU. */
#include "convert_kernels.h"

#include <pthread.h>

const rotary_convert_kernel rotary_convert_list[] = {
#define ROTARY_CONVERT(from, FROM, to, TO, isa, ISA)                                            \
  {"rotary_" #from "_to_" #to "_convert__" #isa, ROTARY_##FROM, ROTARY_##TO, ROTARY_ISA_##ISA, \
   rotary_##from##_to_##to##_convert__##isa, 0},
#define ROTARY_CONVERT_NT(from, FROM, to, TO, isa, ISA)                                                \
  {"rotary_" #from "_to_" #to "_convert__" #isa "_nt", ROTARY_##FROM, ROTARY_##TO, ROTARY_ISA_##ISA, \
   rotary_##from##_to_##to##_convert__##isa##_nt, 1},
#include "convert_list.h"
#undef ROTARY_CONVERT
#undef ROTARY_CONVERT_NT
};
const size_t rotary_convert_count = sizeof rotary_convert_list / sizeof rotary_convert_list[0];

#define N_DTYPES 4 /* F32, F16, BF16, FP8_E4M3 */

static pthread_once_t convert_once = PTHREAD_ONCE_INIT;
static const rotary_convert_kernel *convert_chosen[N_DTYPES][N_DTYPES], *convert_chosen_nt[N_DTYPES][N_DTYPES];

static void convert_choose(void) {
  for (size_t i = 0; i < rotary_convert_count; i++) {
    const rotary_convert_kernel *k = &rotary_convert_list[i];
    if (!k->nt && rotary_isa_enabled(k->isa)) convert_chosen[k->from][k->to] = k;
  }
  for (size_t i = 0; i < rotary_convert_count; i++) {
    const rotary_convert_kernel *k = &rotary_convert_list[i], *best = convert_chosen[k->from][k->to];
    if (k->nt && best && best->isa == k->isa) convert_chosen_nt[k->from][k->to] = k;
  }
}

const rotary_convert_kernel *rotary_convert_select(rotary_dtype from, rotary_dtype to) {
  if ((unsigned)from >= N_DTYPES || (unsigned)to >= N_DTYPES) return NULL;
  pthread_once(&convert_once, convert_choose);
  return convert_chosen[from][to];
}

const rotary_convert_kernel *rotary_convert_select_nt(rotary_dtype from, rotary_dtype to) {
  if ((unsigned)from >= N_DTYPES || (unsigned)to >= N_DTYPES) return NULL;
  pthread_once(&convert_once, convert_choose);
  return convert_chosen_nt[from][to];
}
