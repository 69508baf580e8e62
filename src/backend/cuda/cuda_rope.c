/* cuda_rope.c: rotary_cuda_rope_create and friends: a rope's frequencies, stream map and table copied to a device. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

#include "check.h"
#include "cuda_rope.h"
#include "rope.h"

int rotary_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* no driver or no device: not a sticky error, clear it */
    return 0;
  }
  return n;
}

/* Copies bytes from host to a new device allocation; *dst NULL when bytes is 0. */
static rotary_status upload(void **dst, const void *src, size_t bytes) {
  *dst = NULL;
  if (bytes == 0) return ROTARY_OK;
  cudaError_t e = cudaMalloc(dst, bytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    *dst = NULL;
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  if (e != cudaSuccess) {
    *dst = NULL;
    return ROTARY_ERR_DEVICE;
  }
  if (cudaMemcpy(*dst, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess) return ROTARY_ERR_DEVICE;
  return ROTARY_OK;
}

static void free_copies(rotary_cuda_rope *r) {
  cudaFree((void *)r->table);
  cudaFree((void *)r->inv_freq);
  cudaFree((void *)r->map);
}

rotary_status rotary_cuda_rope_create(const rotary_rope *rope, int device, rotary_cuda_rope **out) {
  ROTARY_RETURN_IF(!rope || !out, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(device < 0 || device >= rotary_cuda_device_count(), ROTARY_ERR_DEVICE);
  int previous = 0;
  ROTARY_RETURN_IF(cudaGetDevice(&previous) != cudaSuccess, ROTARY_ERR_DEVICE);
  ROTARY_RETURN_IF(cudaSetDevice(device) != cudaSuccess, ROTARY_ERR_DEVICE);
  int sm_count = 0;
  if (cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();
    cudaSetDevice(previous);
    return ROTARY_ERR_DEVICE;
  }
  rotary_cuda_rope *r = calloc(1, sizeof *r);
  if (!r) {
    cudaSetDevice(previous);
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  r->sm_count = sm_count;
  const size_t half = rope->rotary_dim / 2;
  r->host = rope;
  r->device = device;
  r->table_row_floats = rotary_rope_row_floats(rope);
  r->table_sin_offset = rope->sin_offset;
  r->max_position = rotary_rope_max_position(rope);
  r->n_streams = rope->streams.n;
  r->attention_scaling = rope->attention_scaling;
  /* the table's size was checked against overflow when the host rope was created */
  const size_t table_bytes = rope->table ? rope->max_positions * r->table_row_floats * sizeof(float) : 0;
  const size_t map_bytes = rope->streams.map ? half : 0;
  void *table = NULL, *inv_freq = NULL, *map = NULL;
  rotary_status st = upload(&table, rope->table, table_bytes);
  r->table = table;
  if (st == ROTARY_OK) st = upload(&inv_freq, rope->inv_freq, half * sizeof(double));
  r->inv_freq = inv_freq;
  if (st == ROTARY_OK) st = upload(&map, rope->streams.map, map_bytes);
  r->map = map;
  r->device_bytes = table_bytes + half * sizeof(double) + map_bytes;
  if (st != ROTARY_OK) {
    free_copies(r);
    free(r);
  } else {
    *out = r;
  }
  cudaSetDevice(previous);
  return st;
}

void rotary_cuda_rope_destroy(rotary_cuda_rope *rope) {
  if (!rope) return;
  int previous = 0;
  if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(rope->device) == cudaSuccess) {
    cudaDeviceSynchronize(); /* no queued call may still read the copies */
    free_copies(rope);
    cudaSetDevice(previous);
  }
  free(rope);
}

size_t rotary_cuda_rope_memory_bytes(const rotary_cuda_rope *rope) { return rope ? rope->device_bytes : 0; }

int rotary_cuda_rope_device(const rotary_cuda_rope *rope) { return rope ? rope->device : -1; }
