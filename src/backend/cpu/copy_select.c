/* copy_select.c: the list of compiled streaming-copy kernels and the choice of the best one for this CPU. */
#include "copy_kernels.h"

#include <pthread.h>

const rotary_copy_kernel rotary_copy_list[] = {
#define ROTARY_COPY_NT(isa, ISA) {"rotary_copy_nt__" #isa, ROTARY_ISA_##ISA, rotary_copy_nt__##isa},
#include "copy_list.h"
#undef ROTARY_COPY_NT
};
const size_t rotary_copy_count = sizeof rotary_copy_list / sizeof rotary_copy_list[0];

static pthread_once_t copy_once = PTHREAD_ONCE_INIT;
static const rotary_copy_kernel *copy_chosen;

static void copy_choose(void) {
  for (size_t i = 0; i < rotary_copy_count; i++)
    if (rotary_isa_enabled(rotary_copy_list[i].isa)) copy_chosen = &rotary_copy_list[i];
}

const rotary_copy_kernel *rotary_copy_nt_select(void) {
  pthread_once(&copy_once, copy_choose);
  return copy_chosen;
}
