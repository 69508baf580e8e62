/* test_fork.c: a child of fork() can use and destroy the contexts it inherited, even mid-call in another thread. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rotary.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROTARY_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ROTARY_TSAN 1
#endif
#ifdef ROTARY_TSAN
/* ThreadSanitizer cannot follow threads started in the child of a multi-threaded fork (it aborts with "dup thread
 * with used id" when glibc hands a new thread a dead one's stack); die_after_fork=0 lets such children run at all. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "die_after_fork=0"; }
#endif

/* Whether this environment can start a thread in the child of a multi-threaded fork, probed without the library:
 * ThreadSanitizer cannot, nor can qemu-user 7.2 (it fails an assertion of its own). Where it cannot, the children
 * here only destroy the context (no worker is started in a child) and the tests that need more are skipped. */
static int child_threads_ok;

#ifndef ROTARY_TSAN
static atomic_int idle_running;

static void *idle_main(void *p) {
  int fd = *(int *)p;
  atomic_store(&idle_running, 1);
  char c;
  ssize_t r = read(fd, &c, 1); /* blocks until the probe closes the pipe */
  (void)r;
  return NULL;
}

static void *nothing_main(void *p) { return p; }
#endif

static int probe_child_threads(void) {
#ifdef ROTARY_TSAN
  return 0;
#else
  int fds[2];
  pthread_t idle;
  if (pipe(fds) != 0 || pthread_create(&idle, NULL, idle_main, &fds[0]) != 0) return 0;
  /* fork only once the thread runs its own code: under ASan a thread still starting holds the sanitizer's allocator
   * locks, and a child forked then hangs on them (a sanitizer limit, not this environment's) */
  while (!atomic_load(&idle_running)) sched_yield();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    pthread_t t;
    _exit(pthread_create(&t, NULL, nothing_main, NULL) == 0 && pthread_join(t, NULL) == 0 ? 0 : 1);
  }
  int status = 0, ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  close(fds[1]);
  pthread_join(idle, NULL);
  close(fds[0]);
  if (!ok) printf("this environment cannot start threads in a child of a multi-threaded fork: those tests skip\n");
  return ok;
#endif
}

/* The shape: enough work (2 MiB) for every worker of a 4-thread context. */
enum { SEQ = 256, HEADS = 16, HEAD_DIM = 128, THREADS = 4, CHILD_SECONDS = 20, TRIALS = 20, QUICK_TRIALS = 3 };
#define N_ELEMS ((size_t)SEQ * HEADS * HEAD_DIM)

static rotary_rope *rope;
static float *input, *reference; /* the rotation of input with ctx NULL */

static void describe(rotary_apply_desc *d, const float *in, float *out) {
  rotary_apply_desc_init(d);
  d->seq_len = SEQ;
  d->positions.offset = 3;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, in, out, ROTARY_F32, SEQ, HEADS, HEAD_DIM),
                   ROTARY_OK);
}

static int group_setup(void **state) {
  (void)state;
  rotary_config c;
  rotary_config_init(&c, HEAD_DIM);
  if (rotary_rope_create(&c, 1024, &rope) != ROTARY_OK) return -1;
  input = malloc(N_ELEMS * sizeof(float));
  reference = malloc(N_ELEMS * sizeof(float));
  if (!input || !reference) return -1;
  for (size_t i = 0; i < N_ELEMS; i++) input[i] = (float)((int)(i * 2654435761u % 2001u) - 1000) / 250.0f;
  rotary_apply_desc d;
  describe(&d, input, reference);
  child_threads_ok = probe_child_threads();
  return rotary_apply(NULL, rope, &d) == ROTARY_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  rotary_rope_destroy(rope);
  free(input);
  free(reference);
  return 0;
}

/* In the child: one call with ctx, compared bit for bit with the reference. 0 on success. */
static int child_apply(rotary_context *ctx) {
  float *out = malloc(N_ELEMS * sizeof(float));
  if (!out) return 10;
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.seq_len = SEQ;
  d.positions.offset = 3;
  if (rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, input, out, ROTARY_F32, SEQ, HEADS, HEAD_DIM) != ROTARY_OK)
    return 11;
  int rc = 0;
  for (int rep = 0; rep < 3 && !rc; rep++) {
    memset(out, 0, N_ELEMS * sizeof(float));
    if (rotary_apply(ctx, rope, &d) != ROTARY_OK) rc = 12;
    else if (memcmp(out, reference, N_ELEMS * sizeof(float)) != 0) rc = 13;
  }
  free(out);
  return rc;
}

/* Forks; the child runs body(ctx) under an alarm and exits with its result; the parent waits and checks exit 0. */
static void run_child(rotary_context *ctx, int (*body)(rotary_context *), const char *what) {
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(CHILD_SECONDS); /* a deadlocked child dies of SIGALRM instead of hanging the test */
    _exit(body(ctx));
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status))
    fail_msg("%s: child killed by signal %d%s", what, WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (deadlocked: alarm)" : "");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("%s: child exited with %d", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static int body_destroy(rotary_context *ctx) {
  rotary_context_destroy(ctx);
  return 0;
}

static int body_apply_destroy(rotary_context *ctx) {
  int rc = child_apply(ctx);
  if (!rc && rotary_context_threads(ctx) != THREADS) rc = 20;
  if (!rc && rotary_context_set_threads(ctx, 2) != ROTARY_OK) rc = 21;
  if (!rc) rc = child_apply(ctx);
  rotary_context_destroy(ctx);
  return rc;
}

static int body_threads_then_destroy(rotary_context *ctx) {
  int rc = rotary_context_threads(ctx) == THREADS ? 0 : 30;
  rotary_context_destroy(ctx);
  return rc;
}

/* A context whose workers ran in the parent: the child destroys it without using it. */
static void test_destroy_in_child(void **state) {
  (void)state;
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(THREADS, &ctx), ROTARY_OK);
  assert_int_equal(child_apply(ctx), 0);
  run_child(ctx, body_destroy, "destroy in child");
  if (child_threads_ok) run_child(ctx, body_threads_then_destroy, "threads, then destroy in child");
  assert_int_equal(child_apply(ctx), 0); /* the parent's context is untouched */
  rotary_context_destroy(ctx);
}

/* The child calls with the inherited context (its workers are re-created), changes its threads, destroys it. */
static void test_apply_in_child(void **state) {
  (void)state;
  if (!child_threads_ok) skip();
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(THREADS, &ctx), ROTARY_OK);
  assert_int_equal(child_apply(ctx), 0);
  run_child(ctx, body_apply_destroy, "apply in child");
  assert_int_equal(child_apply(ctx), 0);
  rotary_context_destroy(ctx);
}

/* A grandchild: a child that adopted the context forks again. */
static int body_fork_again(rotary_context *ctx) {
  int rc = child_apply(ctx);
  if (rc) return rc;
  pid_t pid = fork();
  if (pid < 0) return 40;
  if (pid == 0) {
    alarm(CHILD_SECONDS);
    int r = child_apply(ctx);
    rotary_context_destroy(ctx);
    _exit(r);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 41;
  if (WEXITSTATUS(status)) return WEXITSTATUS(status);
  rc = child_apply(ctx);
  rotary_context_destroy(ctx);
  return rc;
}

static void test_grandchild(void **state) {
  (void)state;
  if (!child_threads_ok) skip();
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(THREADS, &ctx), ROTARY_OK);
  assert_int_equal(child_apply(ctx), 0);
  run_child(ctx, body_fork_again, "grandchild");
  rotary_context_destroy(ctx);
}

typedef struct busy {
  rotary_context *ctx;
  float *out;
  atomic_int stop, calls;
} busy;

/* Calls rotary_apply on the shared context back to back until told to stop. */
static void *busy_main(void *p) {
  busy *b = p;
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.seq_len = SEQ;
  d.positions.offset = 3;
  rotary_tensor_init(&d.q, ROTARY_LAYOUT_BSHD, input, b->out, ROTARY_F32, SEQ, HEADS, HEAD_DIM);
  while (!atomic_load(&b->stop)) {
    if (rotary_apply(b->ctx, rope, &d) != ROTARY_OK) return (void *)1;
    atomic_fetch_add(&b->calls, 1);
    sched_yield(); /* under a scheduler that runs one thread at a time (valgrind), let the forking thread in */
  }
  return NULL;
}

/* fork() while another thread is inside rotary_apply on the same context (its lock held, its workers mid-job):
 * the child calls with that context, gets the right bits, and destroys it, within the alarm (where a child cannot
 * start threads, it only destroys it). */
static void test_fork_during_apply(void **state) {
  (void)state;
  busy b = {0};
  assert_int_equal(rotary_context_create(THREADS, &b.ctx), ROTARY_OK);
  b.out = malloc(N_ELEMS * sizeof(float));
  assert_non_null(b.out);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, busy_main, &b), 0);
  while (atomic_load(&b.calls) < 2) sched_yield();
  /* ROTARY_TEST_QUICK (valgrind, qemu): a few forks; each call there is 20-50 times slower */
  const int trials = getenv("ROTARY_TEST_QUICK") ? QUICK_TRIALS : TRIALS;
  for (int trial = 0; trial < trials; trial++) {
    struct timespec pause = {0, (long)(trial % 5) * 100000L};
    nanosleep(&pause, NULL); /* fork at different points of the other thread's calls */
    char what[64];
    snprintf(what, sizeof what, "fork during apply, trial %d", trial);
    run_child(b.ctx, child_threads_ok ? body_apply_destroy : body_destroy, what);
  }
  atomic_store(&b.stop, 1);
  void *ret;
  assert_int_equal(pthread_join(t, &ret), 0);
  assert_null(ret);
  assert_int_equal(memcmp(b.out, reference, N_ELEMS * sizeof(float)), 0);
  printf("%d forks while another thread made %d calls\n", trials, atomic_load(&b.calls));
  rotary_context_destroy(b.ctx);
  free(b.out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_destroy_in_child),
      cmocka_unit_test(test_apply_in_child),
      cmocka_unit_test(test_grandchild),
      cmocka_unit_test(test_fork_during_apply),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
