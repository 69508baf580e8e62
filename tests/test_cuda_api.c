/* test_cuda_api.c: the rotary_cuda_* entry points where no device runs them: UNSUPPORTED without the CUDA backend,
 * DEVICE with it but no GPU, NULL_POINTER either way; nothing is written. With a GPU, tests/cuda has the real tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rotary.h"

#ifdef ROTARY_TEST_CUDA_BUILT
static const rotary_status no_backend = ROTARY_ERR_DEVICE; /* built with CUDA: the device is what is missing */
#else
static const rotary_status no_backend = ROTARY_ERR_UNSUPPORTED;
#endif

static rotary_rope *make_rope(void) {
  rotary_config c;
  rotary_config_init(&c, 64);
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&c, 16, &rope), ROTARY_OK);
  return rope;
}

static void test_create(void **state) {
  (void)state;
  rotary_rope *rope = make_rope();
  rotary_cuda_rope *sentinel = (rotary_cuda_rope *)(uintptr_t)0x1234, *out = sentinel;
  assert_int_equal(rotary_cuda_rope_create(NULL, 0, &out), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_rope_create(rope, 0, NULL), ROTARY_ERR_NULL_POINTER);
  assert_ptr_equal(out, sentinel);
  if (rotary_cuda_device_count() == 0) {
    assert_int_equal(rotary_cuda_rope_create(rope, 0, &out), no_backend);
    assert_ptr_equal(out, sentinel); /* *out set only on success */
  }
  assert_int_equal(rotary_cuda_rope_create(rope, -1, &out), no_backend == ROTARY_ERR_UNSUPPORTED
                                                               ? ROTARY_ERR_UNSUPPORTED : ROTARY_ERR_DEVICE);
  assert_ptr_equal(out, sentinel);
  rotary_rope_destroy(rope);
}

static void test_queries(void **state) {
  (void)state;
#ifndef ROTARY_TEST_CUDA_BUILT
  assert_int_equal(rotary_cuda_device_count(), 0);
#endif
  assert_true(rotary_cuda_device_count() >= 0);
  assert_int_equal(rotary_cuda_rope_memory_bytes(NULL), 0);
  assert_int_equal(rotary_cuda_rope_device(NULL), -1);
  rotary_cuda_rope_destroy(NULL);
  const char *text = rotary_status_string(ROTARY_ERR_DEVICE);
  assert_non_null(text);
  assert_string_not_equal(text, rotary_status_string((rotary_status)999));
}

static void test_calls_need_a_rope(void **state) {
  (void)state;
  rotary_apply_desc a;
  rotary_apply_desc_init(&a);
  rotary_kv_write_desc w;
  rotary_kv_write_desc_init(&w);
  assert_int_equal(rotary_cuda_apply(NULL, &a, NULL, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_cuda_kv_write(NULL, &w, NULL, NULL), ROTARY_ERR_NULL_POINTER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create),
      cmocka_unit_test(test_queries),
      cmocka_unit_test(test_calls_need_a_rope),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
