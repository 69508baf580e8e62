/* kv_validate.c: checks of the KV-cache operations (strided_view.c and cache_view.c do the work). */
#include "kv_validate.h"

#include "check.h"
#include "rope.h"
#include "strided_view.h"

/* Arguments that need no memory walk: counts, enums, pointers, dtypes, scales. */
static rotary_status check_write_args(const rotary_kv_write_desc *d) {
  ROTARY_RETURN_IF(d->batch == 0 || d->seq_len == 0, ROTARY_ERR_INVALID_ARGUMENT);
  const rotary_kv_cache *c = &d->cache;
  ROTARY_RETURN_IF(c->index != ROTARY_CACHE_SEQUENCES && c->index != ROTARY_CACHE_SLOTS &&
                       c->index != ROTARY_CACHE_PAGES,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->k.n_heads == 0 || d->k.n_heads != d->v.n_heads, ROTARY_ERR_INVALID_ARGUMENT);
  rotary_status st;
  if (d->q.n_heads && (st = rotary_check_tensor_args(&d->q, 1)) != ROTARY_OK) return st;
  if ((st = rotary_check_tensor_args(&d->k, 0)) != ROTARY_OK) return st;
  if ((st = rotary_check_tensor_args(&d->v, 0)) != ROTARY_OK) return st;
  ROTARY_RETURN_IF(!c->k || !c->v, ROTARY_ERR_NULL_POINTER);
  if ((st = rotary_check_position_args(&d->positions)) != ROTARY_OK) return st;
  if (c->dtype == ROTARY_FP8_E4M3) {
    if ((st = rotary_check_scale(c->k_scale)) != ROTARY_OK) return st;
    if ((st = rotary_check_scale(c->v_scale)) != ROTARY_OK) return st;
  }
  return ROTARY_OK;
}

/* Nothing the call writes (q's output when has_q, the two caches) shares a byte with anything else it reads or
 * writes (reads[0 .. n_read)), except q's output with its own input when exactly in place (reads[q_in]). The two
 * caches were compared with each other by rotary_cache_kv_disjoint (interleaved blocks of one buffer are fine). */
static rotary_status check_aliasing(const rotary_view *q_out, int has_q, const rotary_view *caches,
                                    const rotary_view *reads, int n_read, int q_in) {
  for (int j = 0; j < n_read; j++) {
    ROTARY_RETURN_IF(has_q && j != q_in && !rotary_views_disjoint(q_out, &reads[j]), ROTARY_ERR_OVERLAP);
    for (int i = 0; i < 2; i++) ROTARY_RETURN_IF(!rotary_views_disjoint(&caches[i], &reads[j]), ROTARY_ERR_OVERLAP);
  }
  for (int i = 0; i < 2; i++) ROTARY_RETURN_IF(has_q && !rotary_views_disjoint(q_out, &caches[i]), ROTARY_ERR_OVERLAP);
  return ROTARY_OK;
}

rotary_status rotary_validate_kv_write(const rotary_rope *rope, const rotary_kv_write_desc *d,
                                       rotary_cache_geom *geom, int on_device) {
  ROTARY_RETURN_IF(!rope || !d, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(d->struct_size != sizeof *d, ROTARY_ERR_INVALID_ARGUMENT);
  rotary_status st = check_write_args(d);
  if (st != ROTARY_OK) return st;
  const rotary_kv_cache *c = &d->cache;
  rotary_cache_geom g;
  if ((st = rotary_cache_geom_init(&g, c, d->k.n_heads, rope->head_dim)) != ROTARY_OK) return st;
  size_t units; /* the plan's work units: tokens x (q heads + kv heads) */
  ROTARY_RETURN_IF(rotary_mul_overflow_size(d->batch, d->seq_len, &units) ||
                       rotary_mul_overflow_size(units, d->q.n_heads + d->k.n_heads, &units) ||
                       d->q.n_heads > SIZE_MAX - d->k.n_heads,
                   ROTARY_ERR_OVERFLOW);

  /* reads: q, k, v inputs, then the position and index arrays (at most 2 + 3) */
  rotary_view q_out = {0}, caches[2], reads[8];
  int n_read = 0, q_in = -1;
  const size_t hd = rope->head_dim;
  const int has_q = d->q.n_heads != 0;
  if (has_q) {
    rotary_view_of_tensor(&q_out, d->q.out, d->batch, d->seq_len, &d->q, hd, 1);
    if ((st = rotary_view_extent(&q_out)) != ROTARY_OK) return st;
    rotary_view_of_tensor(&reads[n_read], d->q.in, d->batch, d->seq_len, &d->q, hd, 0);
    if ((st = rotary_view_extent(&reads[n_read])) != ROTARY_OK) return st;
    if (rotary_tensor_in_place(d->batch, d->seq_len, &d->q)) q_in = n_read;
    n_read++;
  }
  const rotary_tensor *kv[2] = {&d->k, &d->v};
  for (int i = 0; i < 2; i++) {
    rotary_view_of_tensor(&reads[n_read], kv[i]->in, d->batch, d->seq_len, kv[i], hd, 0);
    if ((st = rotary_view_extent(&reads[n_read++])) != ROTARY_OK) return st;
  }
  if ((st = rotary_cache_view(&g, c->k, &caches[0])) != ROTARY_OK) return st;
  if ((st = rotary_cache_view(&g, c->v, &caches[1])) != ROTARY_OK) return st;
  int n;
  if ((st = rotary_check_positions(rope, &d->positions, d->batch, d->seq_len, &reads[n_read], &n, on_device)) !=
      ROTARY_OK)
    return st;
  n_read += n;
  if ((st = rotary_check_cache_index(c, &g, d->batch, d->seq_len, &reads[n_read], &n, on_device)) != ROTARY_OK)
    return st;
  n_read += n;
  ROTARY_RETURN_IF(has_q && !rotary_view_writes_once(&q_out), ROTARY_ERR_STRIDE);
  ROTARY_RETURN_IF(!rotary_cache_kv_disjoint(&g, &caches[0], &caches[1]), ROTARY_ERR_OVERLAP);
  if ((st = check_aliasing(&q_out, has_q, caches, reads, n_read, q_in)) != ROTARY_OK) return st;
  *geom = g;
  return ROTARY_OK;
}

/* Slot i of a re-rotation: the listed one, or first_slot + i. */
static int64_t rerotate_slot(size_t i, const void *arg) {
  const rotary_kv_rerotate_desc *d = arg;
  return d->slots ? d->slots[i] : (int64_t)(d->first_slot + i);
}

rotary_status rotary_validate_kv_rerotate(const rotary_rope *rope, const rotary_kv_rerotate_desc *d,
                                          rotary_cache_geom *geom) {
  ROTARY_RETURN_IF(!rope || !d, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(d->struct_size != sizeof *d, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->kv_heads == 0 || d->n_slots == 0, ROTARY_ERR_INVALID_ARGUMENT);
  const rotary_kv_cache *c = &d->cache;
  ROTARY_RETURN_IF(!c->k, ROTARY_ERR_NULL_POINTER);
  rotary_cache_geom g;
  rotary_status st = rotary_cache_geom_init(&g, c, d->kv_heads, rope->head_dim);
  if (st != ROTARY_OK) return st;
  if (c->dtype == ROTARY_FP8_E4M3 && (st = rotary_check_scale(c->k_scale)) != ROTARY_OK) return st;
  ROTARY_RETURN_IF(d->delta < -ROTARY_MAX_POSITION || d->delta > ROTARY_MAX_POSITION, ROTARY_ERR_POSITION);
  rotary_view cache;
  if ((st = rotary_cache_view(&g, c->k, &cache)) != ROTARY_OK) return st;
  if (d->slots) {
    rotary_view list;
    ROTARY_RETURN_IF(d->n_slots > PTRDIFF_MAX / sizeof(int64_t), ROTARY_ERR_OVERFLOW);
    if ((st = rotary_view_flat(&list, d->slots, d->n_slots * sizeof(int64_t))) != ROTARY_OK) return st;
    ROTARY_RETURN_IF(!rotary_views_disjoint(&cache, &list), ROTARY_ERR_OVERLAP);
    for (size_t i = 0; i < d->n_slots; i++)
      ROTARY_RETURN_IF(d->slots[i] >= 0 && (uint64_t)d->slots[i] >= g.slots, ROTARY_ERR_CACHE_INDEX);
    if ((st = rotary_check_slots_unique(rerotate_slot, d, d->n_slots)) != ROTARY_OK) return st;
  } else {
    ROTARY_RETURN_IF(d->first_slot >= g.slots || d->n_slots > g.slots - d->first_slot, ROTARY_ERR_CACHE_INDEX);
  }
  *geom = g;
  return ROTARY_OK;
}
