/* apply_case.h: runs one rotary_apply case in guarded buffers and checks every byte against the oracle. */
#ifndef TU_APPLY_CASE_H
#define TU_APPLY_CASE_H

#include <stddef.h>
#include <stdint.h>
#include "oracle.h"
#include "rotary.h"
#include "test_util.h"

typedef enum tu_layout {
  TU_L_BSHD, /* contiguous [batch, seq, heads, head_dim], strides from rotary_tensor_init */
  TU_L_BHSD, /* contiguous [batch, heads, seq, head_dim], strides from rotary_tensor_init */
  TU_L_GAPS, /* hand-made: head stride > head_dim, gaps between tokens and batches */
  TU_L_NEG   /* hand-made: negative seq and head strides (tokens and heads stored backwards) */
} tu_layout;

typedef enum tu_pos_kind {
  TU_POS_RANDOM, /* random in range, with 0 and the maximum at the ends where there are enough tokens */
  TU_POS_ZERO,
  TU_POS_MAX,    /* the top of the range (max_positions - 1), one 0 for contrast */
  TU_POS_HUGE    /* table-free only: up to ROTARY_MAX_POSITION */
} tu_pos_kind;

/* q or k. */
typedef struct tu_tspec {
  rotary_dtype dt;
  size_t n_heads; /* 0: k left out */
  tu_layout in_kind, out_kind;
  int inplace, misalign; /* misalign: pointers one element past an aligned start */
  tu_guard_side side;
} tu_tspec;

typedef struct tu_acase {
  size_t head_dim, rotary_dim;
  rotary_pairing pairing;
  double base, scaling;
  size_t max_positions; /* 0: table-free rope only; otherwise also compared with a table-free rope */
  size_t batch, seq;
  rotary_position_mode mode;
  size_t row_extra; /* COS_SIN: row_stride = rotary_dim/2 + row_extra; 0 passes row_stride 0 */
  tu_pos_kind pos;
  rotary_direction dir;
  tu_tspec q, k;
  int packed;     /* q and k rotated in place inside packed QKV rows of q.dt */
  size_t v_heads; /* packed: v heads after k in every row, never touched */
  uint64_t seed;
} tu_acase;

/* Per dtype pair figures, and the failures that are not about one pair. */
typedef struct tu_astats {
  oracle_stats dt[3];
  size_t fail_passthrough; /* dims [rotary_dim, head_dim) not bit-exact */
  size_t fail_canary;      /* a byte no output covers changed (gaps, pads, v heads, inputs) */
  size_t fail_repeat;      /* table-free rope or thread pool gave other bits */
  size_t fail_status;      /* a library call failed or rotary_tensor_init gave unexpected strides */
  size_t fail_setup;       /* the harness could not allocate */
  size_t cases;
} tu_astats;

/* Runs the case with the table rope (ctx NULL), checks every output and every untouched byte, then repeats it with
 * a table-free rope and on pool (if not NULL), requiring identical bits. Results go into as. */
void tu_apply_case(const tu_acase *ac, rotary_context *pool, tu_astats *as);

void tu_astats_merge(tu_astats *into, const tu_astats *from);
void tu_astats_print(const char *what, const tu_astats *as);
int tu_astats_ok(const tu_astats *as);

#endif /* TU_APPLY_CASE_H */
