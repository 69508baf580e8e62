/* settings.c: the table of settings (tuning-file key, environment variable, range, off value, tuner candidates) and
 * the conversions between a rotary_tuning field and the public int64 value. */
#include <stdint.h>

#include "tuning.h"

/* Candidates rotary_context_tune times, around today's defaults, each list ending in INT64_MIN. */
static const int64_t prefetch_candidates[] = {-1, 0, 512, 1024, 2048, 4096, INT64_MIN};
static const int64_t stream_candidates[] = {-1,          (int64_t)4 << 20,  (int64_t)8 << 20, (int64_t)16 << 20,
                                            (int64_t)32 << 20, (int64_t)64 << 20, INT64_MIN};
static const int64_t thread_bytes_candidates[] = {16384, 65536, 262144, 1048576, INT64_MIN};
static const int64_t tasks_candidates[] = {1, 2, 4, 8, INT64_MIN};
static const int64_t head_group_candidates[] = {2, 4, 8, 16, INT64_MIN};

static const rotary_setting_info infos[ROTARY_SETTING_COUNT] = {
    [ROTARY_SETTING_PREFETCH_BYTES] = {"prefetch_bytes", "ROTARY_PREFETCH", -1, 65536, 1, prefetch_candidates},
    [ROTARY_SETTING_STREAM_STORE_BYTES] = {"stream_store_bytes", "ROTARY_STREAM_STORES", -1, ROTARY_STREAM_STORE_MAX,
                                           1, stream_candidates},
    [ROTARY_SETTING_THREAD_BYTES] = {"thread_bytes", "ROTARY_THREAD_BYTES", 4096, (int64_t)1 << 30, 0,
                                     thread_bytes_candidates},
    [ROTARY_SETTING_TASKS_PER_THREAD] = {"tasks_per_thread", "ROTARY_TASKS_PER_THREAD", 1, 64, 0, tasks_candidates},
    [ROTARY_SETTING_HEAD_GROUP] = {"head_group", "ROTARY_HEAD_GROUP", 1, 64, 0, head_group_candidates},
};

const rotary_setting_info *rotary_setting_info_of(rotary_setting s) {
  return (unsigned)s < ROTARY_SETTING_COUNT ? &infos[s] : NULL;
}

int64_t rotary_tuning_get(const rotary_tuning *t, rotary_setting s) {
  switch (s) {
    case ROTARY_SETTING_PREFETCH_BYTES: return t->prefetch_bytes;
    case ROTARY_SETTING_STREAM_STORE_BYTES: return t->nt_min_bytes == SIZE_MAX ? -1 : (int64_t)t->nt_min_bytes;
    case ROTARY_SETTING_THREAD_BYTES: return (int64_t)t->thread_bytes;
    case ROTARY_SETTING_TASKS_PER_THREAD: return (int64_t)t->tasks_per_thread;
    case ROTARY_SETTING_HEAD_GROUP: return (int64_t)t->head_group;
  }
  return 0;
}

void rotary_tuning_put(rotary_tuning *t, rotary_setting s, int64_t value, rotary_setting_source source) {
  switch (s) {
    case ROTARY_SETTING_PREFETCH_BYTES: t->prefetch_bytes = (int)value; break;
    case ROTARY_SETTING_STREAM_STORE_BYTES: t->nt_min_bytes = value < 0 ? SIZE_MAX : (size_t)value; break;
    case ROTARY_SETTING_THREAD_BYTES: t->thread_bytes = (size_t)value; break;
    case ROTARY_SETTING_TASKS_PER_THREAD: t->tasks_per_thread = (size_t)value; break;
    case ROTARY_SETTING_HEAD_GROUP: t->head_group = (size_t)value; break;
    default: return;
  }
  t->source[s] = (unsigned char)source;
}
