/* test_cuda_graph.c: rotary_cuda_apply captured in a CUDA graph and replayed with new device offsets, vs the CPU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "rotary.h"
#include "test_util.h"

/* Decode: 64 sequences of 1 token, 32 q heads, 8 k heads, head_dim 128, bf16, in place, OFFSETS on the device. */
enum { B = 64, HQ = 32, HK = 8, D = 128, MAXPOS = 4096, REPLAYS = 100 };
#define QN ((size_t)B * HQ * D)
#define KN ((size_t)B * HK * D)

typedef struct graph_run {
  rotary_rope *host;
  rotary_cuda_rope *rope;
  cudaStream_t stream;
  uint16_t *hq, *hk;   /* the CPU's q and k */
  int64_t *hoff;       /* the CPU's offsets */
  void *dq, *dk;       /* device q, k */
  int64_t *doff;       /* device offsets: the captured call reads them at replay */
  int32_t *dflags;
} graph_run;

static void make_desc(void *q, void *k, const int64_t *offsets, rotary_direction dir, rotary_apply_desc *d) {
  rotary_apply_desc_init(d);
  d->batch = B;
  d->seq_len = 1;
  d->direction = dir;
  d->positions.mode = ROTARY_POSITIONS_OFFSETS;
  d->positions.offsets = offsets;
  assert_int_equal(rotary_tensor_init(&d->q, ROTARY_LAYOUT_BSHD, q, q, ROTARY_BF16, 1, HQ, D), ROTARY_OK);
  assert_int_equal(rotary_tensor_init(&d->k, ROTARY_LAYOUT_BSHD, k, k, ROTARY_BF16, 1, HK, D), ROTARY_OK);
}

/* Captures one in-place call on the device buffers into an executable graph. */
static cudaGraphExec_t capture(graph_run *g, rotary_direction dir) {
  rotary_apply_desc d;
  make_desc(g->dq, g->dk, g->doff, dir, &d);
  cu_check((int)cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  const rotary_status st = rotary_cuda_apply(g->rope, &d, g->stream, g->dflags);
  cudaGraph_t graph = NULL;
  cu_check((int)cudaStreamEndCapture(g->stream, &graph), "cudaStreamEndCapture");
  if (st != ROTARY_OK) fail_msg("rotary_cuda_apply under capture: %s", rotary_status_string(st));
  size_t nodes = 0;
  cu_check((int)cudaGraphGetNodes(graph, NULL, &nodes), "cudaGraphGetNodes");
  assert_true(nodes >= 1);
  cudaGraphExec_t exec = NULL;
  cu_check((int)cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  cu_check((int)cudaGraphDestroy(graph), "cudaGraphDestroy");
  return exec;
}

static void new_offsets(graph_run *g, tu_rng *r) {
  for (size_t b = 0; b < B; b++) g->hoff[b] = (int64_t)tu_rng_below(r, MAXPOS);
  g->hoff[0] = 0, g->hoff[1] = MAXPOS - 1;
  cu_to_device(g->doff, g->hoff, B * sizeof(int64_t));
}

/* Replays the graph once and checks q and k against the CPU call with the offsets now in g->hoff. */
static void replay_and_check(graph_run *g, cudaGraphExec_t exec, rotary_direction dir, int step) {
  cu_check((int)cudaGraphLaunch(exec, g->stream), "cudaGraphLaunch");
  rotary_apply_desc d;
  make_desc(g->hq, g->hk, g->hoff, dir, &d);
  assert_int_equal(rotary_apply(NULL, g->host, &d), ROTARY_OK);
  cu_sync(g->stream);
  uint16_t *q = malloc(QN * 2), *k = malloc(KN * 2);
  assert_true(q && k);
  cu_to_host(q, g->dq, QN * 2);
  cu_to_host(k, g->dk, KN * 2);
  const int q_ok = memcmp(q, g->hq, QN * 2) == 0, k_ok = memcmp(k, g->hk, KN * 2) == 0;
  free(q), free(k);
  if (!q_ok || !k_ok) fail_msg("replay %d (%s): %s differs from the CPU", step, dir ? "inverse" : "forward",
                               q_ok ? "k" : "q");
}

static void test_graph_decode(void **state) {
  (void)state;
  graph_run g;
  memset(&g, 0, sizeof g);
  rotary_config c;
  rotary_config_init(&c, D);
  assert_int_equal(rotary_rope_create(&c, MAXPOS, &g.host), ROTARY_OK);
  assert_int_equal(rotary_cuda_rope_create(g.host, 0, &g.rope), ROTARY_OK);
  cu_check((int)cudaSetDevice(0), "cudaSetDevice");
  cu_check((int)cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  g.hq = malloc(QN * 2), g.hk = malloc(KN * 2), g.hoff = malloc(B * sizeof(int64_t));
  assert_true(g.hq && g.hk && g.hoff);
  g.dq = cu_malloc(QN * 2), g.dk = cu_malloc(KN * 2), g.doff = cu_malloc(B * sizeof(int64_t));
  g.dflags = cu_malloc(sizeof(int32_t));
  cu_memset(g.dflags, 0, sizeof(int32_t));
  tu_rng r;
  tu_rng_seed(&r, 0x64D);
  cu_fill_random(ROTARY_BF16, g.hq, QN, &r, 1);
  cu_fill_random(ROTARY_BF16, g.hk, KN, &r, 1);
  cu_to_device(g.dq, g.hq, QN * 2);
  cu_to_device(g.dk, g.hk, KN * 2);
  new_offsets(&g, &r); /* the offsets at capture time: the replays must read the array, not these values */

  const cudaGraphExec_t fwd = capture(&g, ROTARY_FORWARD), inv = capture(&g, ROTARY_INVERSE);
  for (int step = 0; step < REPLAYS; step++) {
    new_offsets(&g, &r);
    const rotary_direction dir = step % 2 ? ROTARY_INVERSE : ROTARY_FORWARD;
    replay_and_check(&g, dir == ROTARY_FORWARD ? fwd : inv, dir, step);
  }
  int32_t flags = -1;
  cu_to_host(&flags, g.dflags, sizeof flags);
  assert_int_equal(flags, 0);
  printf("test_cuda_graph: %d replays (64 x 1, 32q/8k D128 bf16) equal to the CPU\n", REPLAYS);

  cu_check((int)cudaGraphExecDestroy(fwd), "cudaGraphExecDestroy");
  cu_check((int)cudaGraphExecDestroy(inv), "cudaGraphExecDestroy");
  cu_free(g.dq), cu_free(g.dk), cu_free(g.doff), cu_free(g.dflags);
  free(g.hq), free(g.hk), free(g.hoff);
  cu_check((int)cudaStreamDestroy(g.stream), "cudaStreamDestroy");
  rotary_cuda_rope_destroy(g.rope);
  rotary_rope_destroy(g.host);
}

int main(void) {
  cu_require_device("test_cuda_graph");
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_graph_decode)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
