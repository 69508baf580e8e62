/* validate.h: the complete check of a rotary_apply call, done once before anything is written. */
#ifndef ROTARY_VALIDATE_H
#define ROTARY_VALIDATE_H

#include "rotary.h"
#include "strided_view.h"

/* Checks every argument, every position and every buffer relation of a call; ROTARY_OK or the first problem.
 * on_device: the tensors and arrays live in GPU memory; nothing is dereferenced, position values are left to the
 * kernel (rotary_check_positions). */
rotary_status rotary_validate_apply(const rotary_rope *rope, const rotary_apply_desc *desc, int on_device);

#endif /* ROTARY_VALIDATE_H */
