/* bench_check.c: before timing, each implementation rotates the same input once and is compared with rotary_apply. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_dtype.h"

/* Largest |difference| / largest |value| accepted: the baselines round their intermediates (the composed one
 * twice in the model dtype, then adds) where the fused kernel rounds once after an fma. */
static double tolerance(rotary_dtype d) { return d == ROTARY_F32 ? 1e-5 : d == ROTARY_F16 ? 4e-3 : 3e-2; }

static float element(rotary_dtype d, const void *p, size_t i) {
  if (d == ROTARY_F32) return ((const float *)p)[i];
  const uint16_t h = ((const uint16_t *)p)[i];
  return d == ROTARY_F16 ? bench_f16_to_f32(h) : bench_bf16_to_f32(h);
}

void bench_check_span(const bench_setup *s, int t, void **p, size_t *bytes) {
  *p = s->qkv ? s->qkv : s->out[t]; /* never NULL: memcpy of zero bytes still wants valid pointers */
  *bytes = s->qkv ? (t ? 0 : s->qkv_bytes) : s->bytes[t];
}

/* max |out - ref| / max |ref| over q and k (--qkv: the packed buffer); NaN anywhere (an element left unwritten)
 * gives infinity. */
static double rel_error(const bench_setup *s, void *const ref[2]) {
  double worst = 0, scale = 0;
  for (int t = 0; t < 2; t++) {
    void *out;
    size_t bytes;
    bench_check_span(s, t, &out, &bytes);
    for (size_t i = 0; i < bytes / s->esize; i++) {
      const double r = element(s->o->dtype, ref[t], i), x = element(s->o->dtype, out, i);
      const double diff = fabs(x - r);
      if (isnan(diff)) return INFINITY;
      if (diff > worst) worst = diff;
      if (fabs(r) > scale) scale = fabs(r);
    }
  }
  return scale > 0 ? worst / scale : worst;
}

/* Puts the original input back (in place) or poisons the output with NaN (out of place). */
static void reset(bench_setup *s, void *const saved[2]) {
  for (int t = 0; t < 2; t++) {
    void *out;
    size_t bytes;
    bench_check_span(s, t, &out, &bytes);
    if (s->in[t] == s->out[t]) memcpy(out, saved[t], bytes);
    else memset(out, 0xff, bytes);
  }
}

static rotary_status check_all(bench_setup *s, bench_result *results, size_t n, void *saved[2], void *ref[2]) {
  rotary_status st = bench_impl_fused.run(s, 0);
  if (st != ROTARY_OK) return st;
  for (int t = 0; t < 2; t++) {
    void *out;
    size_t bytes;
    bench_check_span(s, t, &out, &bytes);
    memcpy(ref[t], out, bytes);
  }
  for (size_t i = 0; i < n && st == ROTARY_OK; i++) {
    results[i].max_rel_err = -1;
    if (!results[i].impl->checked) continue;
    reset(s, saved);
    st = results[i].impl->run(s, results[i].impl->arg);
    if (st != ROTARY_OK) break;
    results[i].max_rel_err = rel_error(s, ref);
    if (results[i].max_rel_err > tolerance(s->o->dtype)) {
      fprintf(stderr, "rotary bench: %s differs from rotary_apply: max relative error %.3g (limit %.3g)\n",
              results[i].impl->label, results[i].max_rel_err, tolerance(s->o->dtype));
      st = ROTARY_ERR_INVALID_ARGUMENT;
    }
  }
  reset(s, saved);
  return st;
}

rotary_status bench_check(bench_setup *s, bench_result *results, size_t n) {
  void *saved[2] = {NULL, NULL}, *ref[2] = {NULL, NULL};
  rotary_status st = ROTARY_OK;
  for (int t = 0; t < 2; t++) {
    void *in; /* in place, the input is the output's span; out of place, the input's bytes are bytes[t] */
    size_t bytes;
    bench_check_span(s, t, &in, &bytes);
    if (s->in[t] != s->out[t]) in = s->in[t];
    saved[t] = malloc(bytes ? bytes : 1);
    ref[t] = malloc(bytes ? bytes : 1);
    if (!saved[t] || !ref[t]) st = ROTARY_ERR_OUT_OF_MEMORY;
    else memcpy(saved[t], in, bytes);
  }
  if (st == ROTARY_OK) st = check_all(s, results, n, saved, ref);
  for (int t = 0; t < 2; t++) {
    free(saved[t]);
    free(ref[t]);
  }
  return st;
}
