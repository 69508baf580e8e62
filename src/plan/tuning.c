/* tuning.c: the process default settings (per-CPU defaults, then ROTARY_TUNING_FILE, then each setting's
 * environment variable), built once per process, and the outcome of loading that file. */
#include "tuning.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "env_knob.h"
#include "nontemporal.h"
#include "prefetch.h"

/* Bytes of traffic per woken thread and tasks per woken thread, before settings existed task_split.h's constants;
 * heads walked together in heads-major tensors: rotate_plan.c's 8 until issue 13, now 4 (BHSD at 1 thread on the
 * AVX2 EPYC, 6 alternating runs, % of the streaming pass: group 2 86%, 4 105%, 8 67% (58-115: good or bad per
 * process), 16 60%; the AVX-512 EPYC ran 4 and 8 at the streaming pass's speed). */
#define DEFAULT_THREAD_BYTES 65536
#define DEFAULT_TASKS_PER_THREAD 4
#define DEFAULT_HEAD_GROUP 4

/* Written once under pthread_once, read-only after: the process defaults and how ROTARY_TUNING_FILE went. */
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static rotary_tuning defaults;
static rotary_status env_file_status;
static char env_file_message[ROTARY_TUNING_MESSAGE_MAX];

void rotary_tuning_cpu_defaults(rotary_tuning *t) {
  memset(t, 0, sizeof *t);
  rotary_tuning_put(t, ROTARY_SETTING_PREFETCH_BYTES, rotary_prefetch_default(), ROTARY_SOURCE_DEFAULT);
  rotary_tuning_put(t, ROTARY_SETTING_STREAM_STORE_BYTES, (int64_t)rotary_nt_default(), ROTARY_SOURCE_DEFAULT);
  rotary_tuning_put(t, ROTARY_SETTING_THREAD_BYTES, DEFAULT_THREAD_BYTES, ROTARY_SOURCE_DEFAULT);
  rotary_tuning_put(t, ROTARY_SETTING_TASKS_PER_THREAD, DEFAULT_TASKS_PER_THREAD, ROTARY_SOURCE_DEFAULT);
  rotary_tuning_put(t, ROTARY_SETTING_HEAD_GROUP, DEFAULT_HEAD_GROUP, ROTARY_SOURCE_DEFAULT);
}

/* Step 2: ROTARY_TUNING_FILE, a path or "auto" (the default path; no file there, or no cache directory to look
 * in, is no error). A file that fails leaves the defaults as they were and its status and message are kept. */
static void load_env_file(void) {
  const char *env = getenv("ROTARY_TUNING_FILE");
  if (!env || !*env) return;
  char auto_path[ROTARY_TUNING_MESSAGE_MAX / 2];
  const char *path = env;
  if (!strcmp(env, "auto")) {
    if (rotary_tuning_file_default_path(auto_path, sizeof auto_path) != ROTARY_OK) return;
    struct stat st;
    if (stat(auto_path, &st) != 0 && errno == ENOENT) return;
    path = auto_path;
  }
  rotary_tuning t = defaults;
  env_file_status = rotary_tuning_file_read(path, &t, env_file_message, sizeof env_file_message);
  if (env_file_status == ROTARY_OK) defaults = t;
}

/* Step 3: each setting's variable, "off" (where the setting has an off value) or a decimal number in range. */
static void load_env_vars(void) {
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
    const rotary_setting_info *info = rotary_setting_info_of((rotary_setting)s);
    unsigned long long v = 0;
    switch (rotary_env_knob(info->env, (unsigned long long)info->max, &v)) {
      case ROTARY_KNOB_OFF:
        if (info->has_off) rotary_tuning_put(&defaults, (rotary_setting)s, -1, ROTARY_SOURCE_ENV);
        break;
      case ROTARY_KNOB_VALUE:
        if ((int64_t)v >= info->min) rotary_tuning_put(&defaults, (rotary_setting)s, (int64_t)v, ROTARY_SOURCE_ENV);
        break;
      default: break;
    }
  }
}

static void build_defaults(void) {
  rotary_tuning_cpu_defaults(&defaults);
  env_file_status = ROTARY_OK;
  env_file_message[0] = '\0';
  load_env_file();
  load_env_vars();
}

const rotary_tuning *rotary_tuning_defaults(void) {
  pthread_once(&defaults_once, build_defaults);
  return &defaults;
}

rotary_status rotary_tuning_env_file_status(const char **message) {
  pthread_once(&defaults_once, build_defaults);
  if (message) *message = env_file_message;
  return env_file_status;
}
