/* kernels.c: the registry of compiled kernels and the choice of the best one for this CPU. */
#include "kernels.h"

#include "cpu_features.h"

const rotary_kernel rotary_kernel_list[] = {
#define ROTARY_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                              \
  {"rotary_" #dtype "_rotate_" #pairing "__" #isa, ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, \
   ROTARY_ISA_##ISA, rotary_##dtype##_rotate_##pairing##__##isa},
#include "kernel_list.h"
#undef ROTARY_KERNEL
};
const size_t rotary_kernel_count = sizeof rotary_kernel_list / sizeof rotary_kernel_list[0];

int rotary_isa_supported(rotary_isa isa) {
  switch (isa) {
    case ROTARY_ISA_SCALAR: return 1;
  }
  return 0;
}

/* The list is ordered best last within each dtype and pairing, so the last supported entry wins. */
const rotary_kernel *rotary_kernel_select(rotary_dtype dtype, rotary_pairing pairing) {
  const rotary_kernel *best = 0;
  for (size_t i = 0; i < rotary_kernel_count; i++) {
    const rotary_kernel *k = &rotary_kernel_list[i];
    if (k->dtype == dtype && k->pairing == pairing && rotary_isa_supported(k->isa)) best = k;
  }
  return best;
}

const char *rotary_kernel_name(rotary_dtype dtype, rotary_pairing pairing) {
  const rotary_kernel *k = rotary_kernel_select(dtype, pairing);
  return k ? k->name : "unknown";
}
