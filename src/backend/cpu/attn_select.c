/* attn_select.c: the decode-attention kernels of one cache dtype: the best enabled ISA's, or one ISA's. */
#include "attn_kernels.h"

#include <pthread.h>
#include <stddef.h>

#define N_DTYPES 4 /* F32, F16, BF16, FP8_E4M3 */

typedef struct attn_row {
  rotary_dtype dtype;
  rotary_isa isa;
  rotary_attn_kernels k;
} attn_row;

typedef struct exp_row {
  rotary_isa isa;
  rotary_attn_exp_fn fn;
  const char *name;
} exp_row;

typedef struct rot_row {
  rotary_dtype dtype;
  rotary_pairing pairing;
  rotary_isa isa;
  rotary_attn_scores_rot_fn fn;
  const char *name;
} rot_row;

static const attn_row attn_rows[] = {
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)                                                   \
  {ROTARY_##DTYPE, ROTARY_ISA_##ISA,                                                                 \
   {.scores = rotary_attn_##dtype##_scores__##isa, .values = rotary_attn_##dtype##_values__##isa,    \
    .scores_name = "rotary_attn_" #dtype "_scores__" #isa,                                           \
    .values_name = "rotary_attn_" #dtype "_values__" #isa}},
#define ROTARY_ATTN_EXP(isa, ISA)
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
};

static const rot_row rot_rows[] = {
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)
#define ROTARY_ATTN_EXP(isa, ISA)
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                    \
  {ROTARY_##DTYPE, ROTARY_PAIRING_##PAIRING, ROTARY_ISA_##ISA, rotary_attn_##dtype##_scores_##pairing##__##isa, \
   "rotary_attn_" #dtype "_scores_" #pairing "__" #isa},
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
};

typedef struct dot_row {
  rotary_dtype dtype;
  rotary_isa isa;
  rotary_attn_scores_fn scores;
  rotary_attn_values_fn values;
  const char *scores_name, *values_name;
} dot_row;

static const dot_row dot_rows[] = {
#define ROTARY_ATTN_DOT_KERNEL(dtype, DTYPE, isa, ISA)                                                         \
  {ROTARY_##DTYPE, ROTARY_ISA_##ISA, rotary_attn_##dtype##_scores_dot__##isa, rotary_attn_##dtype##_values_dot__##isa, \
   "rotary_attn_" #dtype "_scores_dot__" #isa, "rotary_attn_" #dtype "_values_dot__" #isa},
#include "attn_dot_list.h"
#undef ROTARY_ATTN_DOT_KERNEL
    {ROTARY_F32, ROTARY_ISA_SCALAR, NULL, NULL, NULL, NULL} /* an end row: the list may be empty */
};

static const exp_row exp_rows[] = {
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA)
#define ROTARY_ATTN_EXP(isa, ISA) {ROTARY_ISA_##ISA, rotary_attn_exp__##isa, "rotary_attn_exp__" #isa},
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL
};

/* The exp kernel of an ISA, or NULL when it has none. */
static const exp_row *exp_of(rotary_isa isa) {
  for (size_t i = 0; i < sizeof exp_rows / sizeof exp_rows[0]; i++)
    if (exp_rows[i].isa == isa) return &exp_rows[i];
  return NULL;
}

/* Scores and values of the row, with the exp kernel of the same ISA (each ISA's list has one) and its rotating
 * scores kernels where it has them; 0 when the ISA has no exp kernel. */
static int fill(const attn_row *row, rotary_attn_kernels *out) {
  const exp_row *e = exp_of(row->isa);
  if (!e) return 0;
  *out = row->k;
  out->scores_dot = out->scores, out->values_dot = out->values;
  out->scores_dot_name = out->scores_name, out->values_dot_name = out->values_name;
  out->exp = e->fn;
  out->exp_name = e->name;
  for (size_t i = 0; i < sizeof rot_rows / sizeof rot_rows[0]; i++)
    if (rot_rows[i].dtype == row->dtype && rot_rows[i].isa == row->isa) {
      out->scores_rot[rot_rows[i].pairing] = rot_rows[i].fn;
      out->scores_rot_name[rot_rows[i].pairing] = rot_rows[i].name;
    }
  return 1;
}

static pthread_once_t attn_once = PTHREAD_ONCE_INIT;
static rotary_attn_kernels attn_chosen[N_DTYPES];

static void attn_choose(void) {
  for (size_t i = 0; i < sizeof attn_rows / sizeof attn_rows[0]; i++) {
    const attn_row *row = &attn_rows[i];
    if (rotary_isa_enabled(row->isa)) fill(row, &attn_chosen[row->dtype]);
  }
  for (size_t i = 0; dot_rows[i].scores; i++) {
    const dot_row *row = &dot_rows[i];
    if (!rotary_isa_enabled(row->isa)) continue;
    rotary_attn_kernels *k = &attn_chosen[row->dtype];
    k->scores_dot = row->scores, k->values_dot = row->values;
    k->scores_dot_name = row->scores_name, k->values_dot_name = row->values_name;
  }
}

rotary_status rotary_attn_select(rotary_dtype cache_dtype, rotary_attn_kernels *out) {
  if ((unsigned)cache_dtype >= N_DTYPES) return ROTARY_ERR_INVALID_ARGUMENT;
  pthread_once(&attn_once, attn_choose);
  if (!attn_chosen[cache_dtype].scores) return ROTARY_ERR_INVALID_ARGUMENT; /* not reached: scalar always */
  *out = attn_chosen[cache_dtype];
  return ROTARY_OK;
}

rotary_status rotary_attn_select_isa(rotary_dtype cache_dtype, rotary_isa isa, rotary_attn_kernels *out) {
  for (size_t i = 0; i < sizeof attn_rows / sizeof attn_rows[0]; i++)
    if (attn_rows[i].dtype == cache_dtype && attn_rows[i].isa == isa) {
      rotary_attn_kernels k;
      if (!fill(&attn_rows[i], &k)) return ROTARY_ERR_INVALID_ARGUMENT;
      *out = k;
      return ROTARY_OK;
    }
  return ROTARY_ERR_INVALID_ARGUMENT;
}
