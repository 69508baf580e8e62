/* test_rotary_ms_aot.c: calls the AOT entry points as MindSpore would (fake params) and checks the marshalling. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int RotaryRope(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
               void *extra);
int RotaryRopeInverse(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra);

static int failures = 0;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

enum { B = 2, S = 5, HQ = 4, HK = 2, D = 64 };
#define NQ (B * S * HQ * D)
#define NK (B * S * HK * D)

static float half_to_float(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m | 1024), e - 25);
  return (h & 0x8000) ? -v : v;
}

/* x' = x cos + rotate_half(x) sin in double, position offset + s, base 10000. */
static double reference(const float *x, size_t heads, int64_t offset, size_t b, size_t s, size_t h, size_t d) {
  size_t i = d % (D / 2), row = ((b * S + s) * heads + h) * D;
  double angle = (double)(offset + (int64_t)s) * pow(10000.0, -2.0 * (double)i / D);
  double x0 = x[row + i], x1 = x[row + i + D / 2];
  return d < D / 2 ? x0 * cos(angle) - x1 * sin(angle) : x1 * cos(angle) + x0 * sin(angle);
}

struct call {
  void *params[6];
  int ndims[6];
  int64_t shape_q[4], shape_k[4], shape_one[1];
  int64_t *shapes[6];
  const char *dtypes[6];
  int64_t offset, base_bits;
};

static void set_base(struct call *c, double base) { memcpy(&c->base_bits, &base, sizeof base); }

static void setup(struct call *c, const char *dtype, const void *q, const void *k, void *qo, void *ko) {
  int64_t sq[4] = {B, S, HQ, D}, sk[4] = {B, S, HK, D};
  memcpy(c->shape_q, sq, sizeof sq);
  memcpy(c->shape_k, sk, sizeof sk);
  c->shape_one[0] = 1;
  c->offset = 37;
  set_base(c, 10000.0);
  void *p[6] = {(void *)q, (void *)k, &c->offset, &c->base_bits, qo, ko};
  int nd[6] = {4, 4, 1, 1, 4, 4};
  int64_t *sh[6] = {c->shape_q, c->shape_k, c->shape_one, c->shape_one, c->shape_q, c->shape_k};
  const char *dt[6] = {dtype, dtype, "int64", "int64", dtype, dtype};
  memcpy(c->params, p, sizeof p);
  memcpy(c->ndims, nd, sizeof nd);
  memcpy(c->shapes, sh, sizeof sh);
  memcpy(c->dtypes, dt, sizeof dt);
}

static int run(int (*f)(int, void **, int *, int64_t **, const char **, void *, void *), struct call *c) {
  return f(6, c->params, c->ndims, c->shapes, c->dtypes, NULL, NULL);
}

static void test_f32(void) {
  static float q[NQ], k[NK], qo[NQ], ko[NK], qb[NQ], kb[NK];
  for (size_t i = 0; i < NQ; i++) q[i] = (float)((double)rand() / RAND_MAX - 0.5);
  for (size_t i = 0; i < NK; i++) k[i] = (float)((double)rand() / RAND_MAX - 0.5);
  struct call c;
  setup(&c, "float32", q, k, qo, ko);
  CHECK(run(RotaryRope, &c) == 0);
  double err = 0;
  for (size_t b = 0; b < B; b++)
    for (size_t s = 0; s < S; s++)
      for (size_t d = 0; d < D; d++) {
        for (size_t h = 0; h < HQ; h++)
          err = fmax(err, fabs(qo[((b * S + s) * HQ + h) * D + d] - reference(q, HQ, c.offset, b, s, h, d)));
        for (size_t h = 0; h < HK; h++)
          err = fmax(err, fabs(ko[((b * S + s) * HK + h) * D + d] - reference(k, HK, c.offset, b, s, h, d)));
      }
  printf("float32: max abs error vs double reference %.3g\n", err);
  CHECK(err < 1e-6);
  setup(&c, "float32", qo, ko, qb, kb); /* the inverse undoes the rotation */
  CHECK(run(RotaryRopeInverse, &c) == 0);
  err = 0;
  for (size_t i = 0; i < NQ; i++) err = fmax(err, fabs(qb[i] - q[i]));
  for (size_t i = 0; i < NK; i++) err = fmax(err, fabs(kb[i] - k[i]));
  CHECK(err < 1e-6);
}

static void test_f16(void) {
  static uint16_t q[NQ], k[NK], qo[NQ], ko[NK];
  static float qf[NQ], kf[NK];
  for (size_t i = 0; i < NQ; i++) { /* |x| in [0.25, 4): exponent 13..16, random mantissa and sign */
    q[i] = (uint16_t)((rand() & 0x8000) | ((13 + rand() % 4) << 10) | (rand() & 1023));
    qf[i] = half_to_float(q[i]);
  }
  for (size_t i = 0; i < NK; i++) {
    k[i] = (uint16_t)((rand() & 0x8000) | ((13 + rand() % 4) << 10) | (rand() & 1023));
    kf[i] = half_to_float(k[i]);
  }
  struct call c;
  setup(&c, "float16", q, k, qo, ko);
  CHECK(run(RotaryRope, &c) == 0);
  double err = 0;
  for (size_t b = 0; b < B; b++)
    for (size_t s = 0; s < S; s++)
      for (size_t d = 0; d < D; d++)
        for (size_t h = 0; h < HQ + HK; h++) { /* q's heads, then k's */
          int is_q = h < HQ;
          size_t hh = is_q ? h : h - HQ, heads = is_q ? HQ : HK, at = ((b * S + s) * heads + hh) * D + d;
          double ref = reference(is_q ? qf : kf, heads, c.offset, b, s, hh, d);
          err = fmax(err, fabs(half_to_float(is_q ? qo[at] : ko[at]) - ref) / fmax(fabs(ref), 0.25));
        }
  printf("float16: max error vs double reference %.3g (relative, floor 0.25)\n", err);
  CHECK(err < 1.0 / 1024);
}

static void test_errors(void) {
  static float q[NQ], k[NK], qo[NQ], ko[NK];
  struct call c;
  setup(&c, "float32", q, k, qo, ko);
  memset(qo, 0x7f, sizeof qo);
  CHECK(RotaryRope(5, c.params, c.ndims, c.shapes, c.dtypes, NULL, NULL) == 101);
  c.ndims[0] = 3;
  CHECK(run(RotaryRope, &c) == 102);
  setup(&c, "float32", q, k, qo, ko);
  c.shape_k[1] = S + 1; /* k's seq differs from q's (outputs share the shape array) */
  CHECK(run(RotaryRope, &c) == 103);
  setup(&c, "float64", q, k, qo, ko);
  CHECK(run(RotaryRope, &c) == 104);
  setup(&c, "float32", q, k, qo, ko);
  c.dtypes[2] = "int32";
  CHECK(run(RotaryRope, &c) == 104);
  setup(&c, "float32", q, k, qo, ko);
  c.dtypes[3] = "float16"; /* base cast by mixed precision */
  CHECK(run(RotaryRope, &c) == 104);
  setup(&c, "float32", q, k, qo, ko);
  c.offset = -1;
  CHECK(run(RotaryRope, &c) == 7); /* ROTARY_ERR_POSITION from the library */
  setup(&c, "float32", q, k, qo, ko);
  set_base(&c, 0.0);
  CHECK(run(RotaryRope, &c) == 6); /* ROTARY_ERR_FREQUENCY */
  static unsigned char untouched[sizeof qo];
  memset(untouched, 0x7f, sizeof untouched);
  CHECK(memcmp(qo, untouched, sizeof qo) == 0); /* no output byte written on any error */
}

int main(void) {
  srand(5);
  test_f32();
  test_f16();
  test_errors();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("all checks passed\n");
  return failures ? 1 : 0;
}
