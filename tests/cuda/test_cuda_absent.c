/* test_cuda_absent.c: the CUDA entry points without a device (ROTARY_ERR_DEVICE, *out unchanged) and with NULLs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rotary.h"

static rotary_rope *host_rope(void) {
  rotary_config c;
  rotary_config_init(&c, 64);
  rotary_rope *r = NULL;
  assert_int_equal(rotary_rope_create(&c, 16, &r), ROTARY_OK);
  return r;
}

/* NULL arguments give NULL_POINTER (or the NULL answers) whether or not a device exists. */
static void test_null_arguments(void **state) {
  (void)state;
  rotary_rope *r = host_rope();
  rotary_cuda_rope *sentinel = (rotary_cuda_rope *)(void *)&sentinel, *out = sentinel;
  assert_int_equal(rotary_cuda_rope_create(NULL, 0, &out), ROTARY_ERR_NULL_POINTER);
  assert_ptr_equal(out, sentinel);
  assert_int_equal(rotary_cuda_rope_create(r, 0, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_rope_memory_bytes(NULL), 0);
  assert_int_equal(rotary_cuda_rope_device(NULL), -1);
  rotary_cuda_rope_destroy(NULL);
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  assert_int_equal(rotary_cuda_apply(NULL, &d, NULL, NULL), ROTARY_ERR_NULL_POINTER);
  rotary_kv_write_desc kd;
  rotary_kv_write_desc_init(&kd);
  assert_int_equal(rotary_cuda_kv_write(NULL, &kd, NULL, NULL), ROTARY_ERR_NULL_POINTER);
  const char *text = rotary_status_string(ROTARY_ERR_DEVICE);
  assert_non_null(text);
  assert_true(strlen(text) > 0);
  assert_string_not_equal(text, "unknown status");
  rotary_rope_destroy(r);
}

/* Without a device (count 0) creation fails with DEVICE for any ordinal and leaves *out alone. With a device this
 * checks the out-of-range ordinals only. */
static void test_no_device(void **state) {
  (void)state;
  const int n = rotary_cuda_device_count();
  assert_true(n >= 0);
  rotary_rope *r = host_rope();
  rotary_cuda_rope *sentinel = (rotary_cuda_rope *)(void *)&sentinel, *out = sentinel;
  if (n == 0) {
    assert_int_equal(rotary_cuda_rope_create(r, 0, &out), ROTARY_ERR_DEVICE);
    assert_ptr_equal(out, sentinel);
  }
  assert_int_equal(rotary_cuda_rope_create(r, -1, &out), ROTARY_ERR_DEVICE);
  assert_ptr_equal(out, sentinel);
  assert_int_equal(rotary_cuda_rope_create(r, n, &out), ROTARY_ERR_DEVICE);
  assert_ptr_equal(out, sentinel);
  rotary_rope_destroy(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_no_device)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
