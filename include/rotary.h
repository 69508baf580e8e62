/* rotary.h: the one public header of librotary, Rotary Position Embedding (RoPE) for q and k tensors. */
#ifndef ROTARY_H
#define ROTARY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROTARY_VERSION_MAJOR 0
#define ROTARY_VERSION_MINOR 2
#define ROTARY_VERSION_PATCH 0
#define ROTARY_VERSION_STRING "0.2.0"
/* One integer that grows with every release: major * 10000 + minor * 100 + patch. */
#define ROTARY_VERSION_NUMBER \
  (ROTARY_VERSION_MAJOR * 10000 + ROTARY_VERSION_MINOR * 100 + ROTARY_VERSION_PATCH)

#if defined(_WIN32) && defined(ROTARY_BUILDING_SHARED)
#define ROTARY_API __declspec(dllexport)
#elif defined(__GNUC__)
#define ROTARY_API __attribute__((visibility("default")))
#else
#define ROTARY_API
#endif

/*
 * Conventions used by every function below
 * ----------------------------------------
 * - Every function that can fail returns a rotary_status. The library never aborts, never prints, and when a
 *   call returns anything but ROTARY_OK it has written no byte of any output buffer.
 * - Sizes and counts are element counts unless a name ends in _bytes. Strides are signed element counts
 *   (ptrdiff_t) of the tensor's own dtype: moving one token forward moves the pointer by stride elements.
 * - The last dimension of every tensor (head_dim elements of one head of one token) is contiguous.
 * - Alignment: rotary_apply takes every pointer it reads or writes (tensors, position arrays, cos/sin rows) at any
 *   byte address, aligned to its element type or not (NumPy and torch views need not be), with the same results;
 *   cos/sin rows off float alignment are copied per token. Arrays passed to other functions must be aligned for
 *   their element type, as C arrays are.
 * - Thread safety: a rotary_rope is immutable once created and may be used by any number of threads at once.
 *   A rotary_context runs one call at a time; concurrent calls on the same context are serialized by it.
 *   Functions without an object argument are thread-safe.
 * - fork(): a child may use every rope and context it inherited, and destroy them, even when another thread of the
 *   parent was inside a call at the moment of fork() (that call does not continue in the child: its outputs there
 *   are unspecified). In the child, the first rotary_apply, rotary_context_threads or rotary_context_set_threads
 *   on an inherited context gives it a fresh lock and fresh worker threads (if they cannot be started, its calls
 *   run on the calling thread alone, with the same results); rotary_context_destroy frees it without signalling or
 *   joining the parent's workers, whose thread stacks stay mapped in the child. The parent is not affected. The
 *   library tells a child by a pthread_atfork handler registered by the first rotary_context_create. Not
 *   supported: a fork() racing rotary_context_set_threads or rotary_context_destroy in another thread. This
 *   relies on the C library allowing malloc and new threads in the child of a multi-threaded process, as glibc
 *   does (POSIX alone promises only async-signal-safe functions there).
 */

/* Status codes. The values are pinned: they never change between releases. */
typedef enum rotary_status {
  ROTARY_OK = 0,
  ROTARY_ERR_NULL_POINTER = 1,     /* a required pointer argument is NULL */
  ROTARY_ERR_HEAD_DIM = 2,         /* head_dim is zero, odd or above ROTARY_MAX_HEAD_DIM */
  ROTARY_ERR_ROTARY_DIM = 3,       /* rotary_dim is odd, zero or greater than head_dim */
  ROTARY_ERR_DTYPE = 4,            /* unknown rotary_dtype value */
  ROTARY_ERR_PAIRING = 5,          /* unknown rotary_pairing value */
  ROTARY_ERR_FREQUENCY = 6,        /* base, inverse frequency or attention scaling not finite and positive */
  ROTARY_ERR_POSITION = 7,         /* a position is negative or outside the table (or above ROTARY_MAX_POSITION) */
  ROTARY_ERR_OVERFLOW = 8,         /* a size, an element offset or a position computation overflows */
  ROTARY_ERR_STRIDE = 9,           /* strides make an output write some element twice, or a layout is unknown */
  ROTARY_ERR_OVERLAP = 10,         /* two buffers overlap partially (an output with an input it is not, say) */
  ROTARY_ERR_OUT_OF_MEMORY = 11,   /* an allocation failed */
  ROTARY_ERR_THREAD = 12,          /* a thread could not be created */
  ROTARY_ERR_INVALID_ARGUMENT = 13, /* any other bad value: unknown enum, zero count, wrong struct_size */
  ROTARY_ERR_SCALING = 14,         /* a frequency-scaling parameter is missing, out of range or contradictory */
  ROTARY_ERR_CONFIG = 15,          /* a model config (config.json) is malformed or asks for something unsupported */
  ROTARY_ERR_IO = 16,              /* a file could not be read */
  ROTARY_ERR_UNSUPPORTED = 17,     /* the library was built without this feature (config.json without cJSON) */
  ROTARY_ERR_CACHE_INDEX = 18,     /* a KV-cache slot, block or page is outside the cache, two tokens write one
                                      slot, a page table disagrees with its indptr, or a sequence would overflow */
  ROTARY_ERR_SCALE = 19,           /* an fp8 quantization scale is zero, negative, NaN or infinite; an attention
                                      softmax scale or soft-cap negative, NaN or infinite */
  ROTARY_ERR_STREAMS = 20,         /* a multi-stream layout is inconsistent (sections that do not cover
                                      rotary_dim/2 frequencies, a map entry beyond n_streams, a vision layout with
                                      rotary_dim not a multiple of 4), or a call's stream count is not the rope's */
  ROTARY_ERR_LAYER = 21,           /* a layer index beyond the model's layers, or a layer type with no rope */
  ROTARY_ERR_TUNING = 22,          /* a setting value out of its range, or a tuning file that is malformed, holds
                                      an unknown or out-of-range setting, or was written for another CPU model or
                                      library version */
  ROTARY_ERR_DEVICE = 23           /* CUDA: no usable device, a pointer the device cannot address, a call on
                                      another device than the rope's, or a CUDA runtime call or launch failed */
} rotary_status;

/* The text of a status, e.g. "rotary_dim is odd or greater than head_dim". Never NULL; unknown codes give
 * "unknown status". The string is static. */
ROTARY_API const char *rotary_status_string(rotary_status status);

/* "0.2.0": the version of the library that is linked, which may differ from ROTARY_VERSION_STRING. */
ROTARY_API const char *rotary_version_string(void);

/* Largest head_dim accepted. */
#define ROTARY_MAX_HEAD_DIM 65536
/* Largest position accepted (2^53 - 1): above it a double no longer holds every integer. */
#define ROTARY_MAX_POSITION 9007199254740991LL

/* Element types of q, k and their outputs. Math is always fp32 (cos/sin are fp32, computed from exact angles). */
typedef enum rotary_dtype {
  ROTARY_F32 = 0,  /* IEEE binary32 */
  ROTARY_F16 = 1,  /* IEEE binary16, results rounded to nearest even */
  ROTARY_BF16 = 2, /* bfloat16 (upper half of a binary32), results rounded to nearest even */
  ROTARY_FP8_E4M3 = 3 /* OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities, 0x7F/0xFF NaN), KV caches only:
                         stored = value / scale rounded to nearest even, saturated to +-448, NaN kept as NaN,
                         read back as value * scale. rotary_apply and the input tensors refuse it (DTYPE). */
} rotary_dtype;

/* Which two dimensions of a head share one angle. Only the first rotary_dim dimensions rotate. */
typedef enum rotary_pairing {
  ROTARY_PAIRING_HALF = 0,        /* dims i and i + rotary_dim/2: GPT-NeoX, Hugging Face LLaMA, Qwen, Mistral */
  ROTARY_PAIRING_INTERLEAVED = 1  /* dims 2i and 2i + 1: Meta's reference LLaMA, GPT-J, the article */
} rotary_pairing;

/*
 * Frequency-scaling families, with the semantics of Hugging Face transformers' rope utilities (rope_type), all
 * evaluated in fp64. d is rotary_dim, base the config's base, default_i = base^(-2i/d).
 */
typedef enum rotary_scaling_type {
  ROTARY_SCALING_NONE = 0,     /* "default": inv_freq_i = default_i */
  ROTARY_SCALING_LINEAR = 1,   /* "linear": default_i / factor */
  ROTARY_SCALING_DYNAMIC = 2,  /* "dynamic" NTK: with L = max(seq_len, max_position_embeddings) the base becomes
                                  base * (factor * L / max_position_embeddings - (factor - 1))^(d / (d - 2)) */
  ROTARY_SCALING_NTK = 3,      /* static NTK-aware (the article): base * factor^(d / (d - 2)); factor is alpha */
  ROTARY_SCALING_YARN = 4,     /* "yarn": NTK-by-parts ramp between default_i and default_i / factor, and an
                                  attention factor (DeepSeek's mscale / mscale_all_dim, Qwen's plain YaRN) */
  ROTARY_SCALING_LLAMA3 = 5,   /* "llama3": low frequencies / factor, high kept, a smooth ramp between */
  ROTARY_SCALING_LONGROPE = 6  /* "longrope": default_i / short_factor[i], or / long_factor[i] once seq_len exceeds
                                  original_max_position_embeddings; an attention factor */
} rotary_scaling_type;

/* Parameters of a scaling family; only those the family uses are read. Names follow Hugging Face's. */
typedef struct rotary_scaling {
  rotary_scaling_type type;
  double factor;            /* LINEAR, DYNAMIC, NTK, LLAMA3: required, >= 1 (LINEAR, DYNAMIC: > 0). YARN,
                               LONGROPE: 0 derives it as max_position_embeddings / original_max_position_embeddings */
  size_t original_max_position_embeddings; /* YARN, LLAMA3, LONGROPE: the pretraining length; required */
  size_t max_position_embeddings;          /* DYNAMIC: required; YARN, LONGROPE: used when factor is 0 */
  double attention_factor;  /* YARN, LONGROPE: multiplies cos and sin; 0 derives it as Hugging Face does */
  double beta_fast;         /* YARN: 0 means 32 */
  double beta_slow;         /* YARN: 0 means 1 */
  double mscale;            /* YARN: 0 means unset; with mscale_all_dim both set, attention factor is
                               (0.1 mscale ln(factor) + 1) / (0.1 mscale_all_dim ln(factor) + 1) */
  double mscale_all_dim;    /* YARN */
  int truncate;             /* YARN: nonzero rounds the correction range outward (Hugging Face's default, 1) */
  double low_freq_factor;   /* LLAMA3: required */
  double high_freq_factor;  /* LLAMA3: required, > low_freq_factor */
  const double *short_factor; /* LONGROPE: rotary_dim/2 values, required; copied by rotary_rope_create */
  const double *long_factor;  /* LONGROPE: rotary_dim/2 values, required; copied by rotary_rope_create */
} rotary_scaling;

/*
 * Multi-stream positions (multimodal mRoPE, 2-D vision RoPE): each token carries n_streams position ids (temporal,
 * height, width for Qwen2-VL; row, column for a vision encoder), and frequency i of the rope turns by the id of one
 * stream, stream_of(i). Every row a call uses is still the exact one: cos(id * inv_freq[i]) * attention_scaling of
 * the stream's id, the very value the table (or the table-free path) holds for that id; a call gathers it from one
 * table row per stream, with no new trigonometry. A token whose streams agree gets the plain 1-D row.
 */
#define ROTARY_MAX_STREAMS 4

/* Which stream each frequency i < n = rotary_dim/2 turns by. */
typedef enum rotary_stream_layout {
  ROTARY_STREAMS_NONE = 0,        /* one position per token (the default) */
  ROTARY_STREAMS_SECTIONS = 1,    /* contiguous sections (Qwen2-VL, Qwen2.5-VL "mrope_section"): frequencies
                                     [0, sections[0]) by stream 0, the next sections[1] by stream 1, ... */
  ROTARY_STREAMS_INTERLEAVED = 2, /* Qwen3-VL ("mrope_interleaved"): frequency i by stream j = i mod n_streams when
                                     j > 0 and i < n_streams * sections[j], else by stream 0 */
  ROTARY_STREAMS_VISION_2D = 3,   /* Qwen2-VL / Qwen2.5-VL vision encoder, 2 streams (row, column): frequency i < n/2
                                     turns by the row at base^(-4i/rotary_dim), frequency n/2 + i by the column at
                                     the same frequency; with half pairing this is their cat(row, col) cos/sin */
  ROTARY_STREAMS_VISION_2D_PIXTRAL = 4, /* Pixtral, 2 streams: frequency i < n/2 by the row at base^(-4i/rotary_dim),
                                     frequency n/2 + i by the column at base^(-(4i+2)/rotary_dim) */
  ROTARY_STREAMS_MAP = 5          /* any other split: map[i] is the stream of frequency i */
} rotary_stream_layout;

/* The frequency-to-stream map of a rope. Zeroed (rotary_config_init) it is one stream. */
typedef struct rotary_streams {
  rotary_stream_layout layout;
  size_t n_streams;                    /* SECTIONS, INTERLEAVED, MAP: 2..ROTARY_MAX_STREAMS; VISION_*: 2 (0 means 2);
                                          NONE: 0 or 1 */
  size_t sections[ROTARY_MAX_STREAMS]; /* SECTIONS, INTERLEAVED: frequencies per stream, summing to rotary_dim/2
                                          (INTERLEAVED: stream j > 0 takes exactly sections[j] frequencies, so
                                          n_streams * (sections[j] - 1) + j < rotary_dim/2); entries from n_streams
                                          on are 0. Hugging Face's mrope_section. */
  const uint8_t *map;                  /* MAP: rotary_dim/2 entries, each < n_streams; copied at creation */
} rotary_streams;

/* Frequencies of one rotary embedding. Fill it with rotary_config_init, then change what differs. */
typedef struct rotary_config {
  size_t struct_size;        /* sizeof(rotary_config), set by rotary_config_init; lets the struct grow */
  size_t head_dim;           /* elements per head; even, 2..ROTARY_MAX_HEAD_DIM */
  size_t rotary_dim;         /* leading dims that rotate; even, 2..head_dim; the rest pass through bit-exact */
  rotary_pairing pairing;    /* default ROTARY_PAIRING_HALF */
  double base;               /* theta; inv_freq[i] = base^(-2i/rotary_dim), i < rotary_dim/2, correctly
                                rounded to fp64. Finite, at least DBL_MIN (no subnormal). Default 10000 */
  const double *inv_freq;    /* optional: rotary_dim/2 inverse frequencies (radians per position) that replace
                                base and scaling, so that any other family can be expressed. Copied. */
  double attention_scaling;  /* multiplies every cos and sin, on top of the family's attention factor; > 0 and at
                                most FLT_MAX (the product with the family's factor too); default 1 */
  rotary_scaling scaling;    /* default: type NONE */
  size_t seq_len;            /* the current sequence length, for the families that depend on it (DYNAMIC,
                                LONGROPE); 0 means "within the original length". See rotary_rope_derive. */
  rotary_streams streams;    /* multi-stream positions (mRoPE, 2-D vision); default one stream. Every scaling
                                family applies to the SECTIONS, INTERLEAVED and MAP layouts (frequency i is the
                                family's i-th); the VISION layouts take scaling type NONE (else SCALING). A given
                                inv_freq replaces the derived frequencies for every layout. */
} rotary_config;

/* Sets every field to its default: rotary_dim = head_dim, half pairing, base 10000, no inv_freq, scaling 1,
 * scaling type NONE with truncate = 1, seq_len 0. */
ROTARY_API void rotary_config_init(rotary_config *config, size_t head_dim);

/*
 * Checks a config as rotary_rope_create does. On error, when field is not NULL, *field names the first offending
 * field as spelled in this header ("scaling.factor", "rotary_dim", ...); a static string.
 * Errors: NULL_POINTER (config), INVALID_ARGUMENT (struct_size), HEAD_DIM, ROTARY_DIM, PAIRING, FREQUENCY,
 * SCALING (including scaled frequencies that come out not finite and positive, and an attention factor whose
 * product with attention_scaling exceeds FLT_MAX: every cos/sin row must be finite in fp32), STREAMS (field
 * "streams.layout", "streams.n_streams", "streams.sections" or "streams.map").
 */
ROTARY_API rotary_status rotary_config_check(const rotary_config *config, const char **field);

/* An immutable rotary embedding: inverse frequencies in fp64 and, optionally, a cos/sin table. */
typedef struct rotary_rope rotary_rope;

/*
 * Creates a rotary embedding. With max_positions > 0 a table holds fp32 cos and sin for positions
 * [0, max_positions). Each value approximates cos(pos * inv_freq[i]) * attention_scaling (likewise sin) where the
 * angle is the EXACT product of pos and the fp64 inv_freq[i] (never a running product, never a rounded fp64
 * angle): the product is kept exactly, reduced modulo pi/2 in extended precision (exactly, Payne-Hanek, for huge
 * angles and angles very near a multiple of pi/2), cos and sin are evaluated in fp64, multiplied by
 * attention_scaling and rounded once to fp32. Every value is within 1 fp32 ulp of the true value for every
 * position up to ROTARY_MAX_POSITION, and is the correctly rounded true value except in rare cases (fp64 error
 * next to a rounding boundary): the tests found none over every position below 2^20 (docs/accuracy.md). With
 * max_positions == 0 no table is made (table-free): the same code computes the same values per token during each
 * call, for any position up to ROTARY_MAX_POSITION. Results are bit-identical between the two modes and across
 * CPUs' instruction sets.
 * The inverse frequencies come from config->inv_freq when given, else from base and config->scaling at
 * config->seq_len (base^(-2i/d) correctly rounded to fp64, then the family's fp64 operations as Hugging Face
 * orders them; the VISION layouts' base^(-4i/d) and base^(-(4i+2)/d) correctly rounded the same way); the
 * attention factor of the family multiplies attention_scaling. The table holds 1-D rows (every frequency at the
 * same position) whatever the streams: a multi-stream token's row is gathered from the rows of its streams' ids.
 * Errors: NULL_POINTER, INVALID_ARGUMENT (struct_size), HEAD_DIM, ROTARY_DIM, PAIRING, FREQUENCY, SCALING,
 * STREAMS, OVERFLOW (table size), POSITION (max_positions - 1 above ROTARY_MAX_POSITION), OUT_OF_MEMORY. *out is
 * set only on success.
 */
ROTARY_API rotary_status rotary_rope_create(const rotary_config *config, size_t max_positions, rotary_rope **out);

/* Frees a rotary embedding. NULL is allowed. */
ROTARY_API void rotary_rope_destroy(rotary_rope *rope);

/* Bytes of heap the rope holds: the object itself, the inverse frequencies (rotary_dim/2 doubles), its copy of the
 * caller's inverse frequencies or LongRoPE factors (rotary_dim/2 doubles each) and of a MAP layout's map, a
 * multi-stream rope's stream map (rotary_dim/2 bytes) and, for maps of more than 8 runs of one stream (interleaved,
 * scattered), the frequencies' order by stream (rotary_dim/2 16-bit indices; table-free also the frequencies in
 * that order, rotary_dim/2 doubles), and the table
 * (max_positions * rotary_dim * 4 bytes; from rotary_dim 32 up, the cos and sin halves of each row are padded to
 * whole 64-byte cache lines). 0 for NULL. */
ROTARY_API size_t rotary_rope_memory_bytes(const rotary_rope *rope);

/*
 * A rope with the same configuration for another current sequence length and/or table size: what a dynamic-NTK or
 * LongRoPE model needs as its sequence grows, or any rope whose table must hold more positions. Table rows whose
 * values do not change (same frequencies and attention factor: every family but DYNAMIC past
 * max_position_embeddings and LONGROPE switching to long factors) are copied from `from`, not recomputed; the
 * result is bit-identical to a rope created afresh with that seq_len and max_positions. `from` is unchanged.
 * The derived config (from's config with this seq_len) passes rotary_config_check first, so derive refuses exactly
 * what rotary_rope_create refuses for that config and seq_len (e.g. SCALING when a dynamic-NTK base overflows).
 * Errors: NULL_POINTER, SCALING, OVERFLOW, POSITION, OUT_OF_MEMORY, as rotary_rope_create. *out is set only on
 * success.
 */
ROTARY_API rotary_status rotary_rope_derive(const rotary_rope *from, size_t seq_len, size_t max_positions,
                                            rotary_rope **out);

/* Read-only properties; 0 for NULL. max_positions is 0 for a table-free rope. */
ROTARY_API size_t rotary_rope_head_dim(const rotary_rope *rope);
ROTARY_API size_t rotary_rope_rotary_dim(const rotary_rope *rope);
ROTARY_API size_t rotary_rope_max_positions(const rotary_rope *rope);
ROTARY_API rotary_pairing rotary_rope_pairing(const rotary_rope *rope);
ROTARY_API size_t rotary_rope_seq_len(const rotary_rope *rope);
/* The factor every cos and sin is multiplied by: the config's attention_scaling times the family's attention
 * factor (YaRN, LongRoPE). 0 for NULL. */
ROTARY_API double rotary_rope_attention_scaling(const rotary_rope *rope);

/* Copies the rotary_dim/2 inverse frequencies (fp64) into inv_freq. Errors: NULL_POINTER. */
ROTARY_API rotary_status rotary_rope_inv_freq(const rotary_rope *rope, double *inv_freq);

/* Position streams per token: 1 for a one-stream rope, else the config's n_streams (2 for VISION layouts);
 * 0 for NULL. */
ROTARY_API size_t rotary_rope_streams(const rotary_rope *rope);

/* Writes the stream of each of the rotary_dim/2 frequencies (all 0 for a one-stream rope). Errors: NULL_POINTER. */
ROTARY_API rotary_status rotary_rope_stream_map(const rotary_rope *rope, uint8_t *map);

/*
 * Writes the cos and sin rows of n positions: cos[j * rotary_dim/2 + i] for positions[j], the exact values a call
 * uses (attention_scaling included). Works with and without a table. Errors: NULL_POINTER (n > 0 and a pointer is
 * NULL), POSITION (any position negative or out of range; nothing is written), OVERFLOW, OVERLAP (cos and sin
 * overlap).
 */
ROTARY_API rotary_status rotary_rope_cos_sin(const rotary_rope *rope, const int64_t *positions, size_t n,
                                             float *cos, float *sin);

/*
 * The multi-stream rows of n tokens: stream j of token t has id ids[j * stream_stride + t] (stream_stride 0 means
 * n), j < rotary_rope_streams(rope); cos[t * rotary_dim/2 + i] is the row of stream_of(i)'s id at frequency i,
 * exactly what a call with ROTARY_POSITIONS_STREAMS_I64 uses. For a one-stream rope this is rotary_rope_cos_sin.
 * Errors: as rotary_rope_cos_sin (POSITION for any id of any stream; OVERLAP when the ids' extent meets cos or
 * sin), INVALID_ARGUMENT (stream_stride nonzero and below n), OVERFLOW (the ids' extent), OUT_OF_MEMORY (a
 * table-free rope with more than 8 runs of one stream, for a scratch row); nothing written.
 */
ROTARY_API rotary_status rotary_rope_cos_sin_streams(const rotary_rope *rope, const int64_t *ids,
                                                     size_t stream_stride, size_t n, float *cos, float *sin);

/* A persistent pool of worker threads that a call splits its work over. */
typedef struct rotary_context rotary_context;

/* Creates a context that uses n_threads threads (the caller's included); 0 means the number of online CPUs.
 * Errors: NULL_POINTER, INVALID_ARGUMENT (n_threads above 1024), OUT_OF_MEMORY, THREAD. */
ROTARY_API rotary_status rotary_context_create(size_t n_threads, rotary_context **out);
/* Stops the workers and frees the context. NULL is allowed. Must not run while a call uses the context. */
ROTARY_API void rotary_context_destroy(rotary_context *ctx);
/* Changes the thread count (0: online CPUs). Errors as rotary_context_create; on error the count is unchanged. */
ROTARY_API rotary_status rotary_context_set_threads(rotary_context *ctx, size_t n_threads);
/* Threads a call may use; 0 for NULL. */
ROTARY_API size_t rotary_context_threads(const rotary_context *ctx);

/* Number of online CPUs (at least 1). */
ROTARY_API size_t rotary_cpu_count(void);

/*
 * Settings: the knobs that change how fast a call runs and never what it computes (every output bit is the same
 * under every value in range). A context owns one value of each, with the source it came from. A new context
 * starts with the process defaults, built once per process, in this order (each step overrides the one before):
 *   1. the library's default for this CPU (rotary_setting_default; chosen by CPU features, measured);
 *   2. the tuning file named by the environment variable ROTARY_TUNING_FILE (a path, or "auto" for
 *      rotary_tuning_default_path; "auto" with no file there is no error), when it loads: a file that fails is
 *      ignored as a whole and rotary_tuning_env_status says why (the library never prints);
 *   3. each setting's own environment variable (rotary_setting_env): "off" (where the setting has an off value)
 *      or a decimal number in range; anything else is ignored.
 * On a context, rotary_context_set_setting, rotary_context_load_tuning and rotary_context_tune then override
 * whatever the environment said: an explicit call wins, as omp_set_num_threads wins over OMP_NUM_THREADS.
 * Calls with a NULL context run with the process defaults.
 */
typedef enum rotary_setting {
  ROTARY_SETTING_PREFETCH_BYTES = 0, /* "prefetch_bytes", ROTARY_PREFETCH: bytes ahead of each head row the SIMD
                                        kernels prefetch; -1 ("off"): no software prefetch; 0 .. 65536. Heads-major
                                        walks (head_group) run without software prefetch whatever it says. In
                                        rotary_apply, q and k whose token rows lie apart (views into packed QKV
                                        rows) and span 8 MiB or more prefetch the same heads one token ahead
                                        instead, unless it is off (out of place: when the output takes the same
                                        steps or is stored non-temporally) */
  ROTARY_SETTING_STREAM_STORE_BYTES = 1, /* "stream_store_bytes", ROTARY_STREAM_STORES: out-of-place calls writing
                                            at least this many bytes use non-temporal stores; -1 ("off"): never;
                                            0 .. 2^50 (1 PiB: JSON numbers are exact integers up to 2^53) */
  ROTARY_SETTING_THREAD_BYTES = 2,   /* "thread_bytes", ROTARY_THREAD_BYTES: a call wakes one thread per this many
                                        bytes of traffic (at most the context's threads); 4096 .. 2^30 */
  ROTARY_SETTING_TASKS_PER_THREAD = 3, /* "tasks_per_thread", ROTARY_TASKS_PER_THREAD: pieces each woken thread's
                                          share is cut into, claimed as threads come free; 1 .. 64 */
  ROTARY_SETTING_HEAD_GROUP = 4      /* "head_group", ROTARY_HEAD_GROUP: heads-major tensors (heads 4 KiB or more
                                        apart, BHSD) are walked this many heads at a time, token by token; 1 .. 64 */
} rotary_setting;
#define ROTARY_SETTING_COUNT 5

/* Where a context's value of a setting came from. */
typedef enum rotary_setting_source {
  ROTARY_SOURCE_DEFAULT = 0, /* the library's default for this CPU */
  ROTARY_SOURCE_FILE = 1,    /* a tuning file: ROTARY_TUNING_FILE or rotary_context_load_tuning */
  ROTARY_SOURCE_ENV = 2,     /* the setting's environment variable */
  ROTARY_SOURCE_SET = 3,     /* rotary_context_set_setting */
  ROTARY_SOURCE_TUNED = 4    /* measured by rotary_context_tune */
} rotary_setting_source;

/* The setting's key in tuning files ("prefetch_bytes", ...), its environment variable ("ROTARY_PREFETCH", ...),
 * a source's name ("default", "file", "environment", "set", "tuned"). Static strings; "" for an unknown value. */
ROTARY_API const char *rotary_setting_name(rotary_setting setting);
ROTARY_API const char *rotary_setting_env(rotary_setting setting);
ROTARY_API const char *rotary_setting_source_name(rotary_setting_source source);
/* The setting's range: *min and *max inclusive (min is -1 where the setting has an off value). Errors:
 * NULL_POINTER, INVALID_ARGUMENT (unknown setting); nothing written on error. */
ROTARY_API rotary_status rotary_setting_range(rotary_setting setting, int64_t *min, int64_t *max);
/* The library's default for this CPU (step 1 above, before any file or environment). Errors as
 * rotary_setting_range. */
ROTARY_API rotary_status rotary_setting_default(rotary_setting setting, int64_t *value);

/* A context's value of a setting and its source (source may be NULL); ctx NULL: the process defaults. Errors:
 * NULL_POINTER (value), INVALID_ARGUMENT (unknown setting); nothing written on error. */
ROTARY_API rotary_status rotary_context_get_setting(rotary_context *ctx, rotary_setting setting, int64_t *value,
                                                    rotary_setting_source *source);
/* Sets one setting of ctx (source SET). Waits for a call in progress on ctx. Errors: NULL_POINTER (ctx),
 * INVALID_ARGUMENT (unknown setting), TUNING (value outside rotary_setting_range); unchanged on error. */
ROTARY_API rotary_status rotary_context_set_setting(rotary_context *ctx, rotary_setting setting, int64_t value);
/* Puts every setting of ctx back to the process defaults (values and sources). Errors: NULL_POINTER. */
ROTARY_API rotary_status rotary_context_reset_settings(rotary_context *ctx);

/*
 * Tuning files (what rotary_context_tune measured, kept, like FFTW's wisdom). JSON, one object:
 *   {"format": "rotary-tuning", "format_version": 1, "library_version": "0.2.0", "cpu_model": "<rotary_cpu_model()>",
 *    "settings": {"prefetch_bytes": 0, "head_group": 4, ...}, ...}
 * Other top-level members (what was measured, when, on which shapes) are kept for people and ignored. A file is
 * taken whole or not at all: it must be a regular file of at most 1 MiB holding valid JSON (as Python's json reads
 * it), with format "rotary-tuning", format_version 1, library_version equal to rotary_version_string() and cpu_model
 * equal to rotary_cpu_model() (a file from another CPU or version is stale: tune again), and settings an object
 * whose keys are setting names with integer values in range (a key given twice counts with its last value). Settings
 * it does not name keep their values. Errors name the file and the field, e.g.
 *   "/home/u/.cache/rotary/tuning-AMD-EPYC-0.2.0.json: settings.head_group: 0 is outside 1 .. 64".
 * Where this reader and Python's json differ: a number with a zero fraction or an exponent that makes it whole
 * (4.0, 4e0) counts as the integer; a leading UTF-8 byte-order mark is skipped; NaN and Infinity are refused. A
 * file over 1 MiB is TUNING (IO is kept for files that cannot be opened or read, and for what is not a regular
 * file).
 */

/* Loads a tuning file into ctx (the settings it names get source FILE; the others are unchanged). Errors:
 * NULL_POINTER (ctx, path), IO (cannot read it; not a regular file), TUNING (anything else wrong with it, the
 * message says what), OUT_OF_MEMORY; on error ctx is unchanged and error (when not NULL and error_size > 0) receives
 * a NUL-terminated message naming the file and the field. */
ROTARY_API rotary_status rotary_context_load_tuning(rotary_context *ctx, const char *path, char *error,
                                                    size_t error_size);
/* Writes ctx's settings whose source is FILE, SET or TUNED (not the defaults, not the environment's) to path as a
 * tuning file for this CPU and library version, replacing the file atomically (written beside it, then renamed);
 * the directory must exist. `notes` (may be NULL) is a JSON object text stored as the member "notes" (what was
 * measured); it must parse. Errors: NULL_POINTER (ctx, path), TUNING (notes not a JSON object, or so long that the
 * file would pass 1 MiB), IO, OUT_OF_MEMORY; error as rotary_context_load_tuning. */
ROTARY_API rotary_status rotary_context_save_tuning(rotary_context *ctx, const char *path, const char *notes,
                                                    char *error, size_t error_size);
/* The status of step 2 above for this process (OK when ROTARY_TUNING_FILE is unset, or "auto" found no file), and
 * its message in error as rotary_context_load_tuning. */
ROTARY_API rotary_status rotary_tuning_env_status(char *error, size_t error_size);
/* The default path of this CPU's and version's tuning file: $XDG_CACHE_HOME/rotary (else $HOME/.cache/rotary)
 * /tuning-MODEL-VERSION.json, MODEL being rotary_cpu_model() with letters and digits kept and every other run as
 * one '-', VERSION rotary_version_string(). Errors: NULL_POINTER, IO (neither
 * variable set), OVERFLOW (path does not fit path_size bytes with its NUL); nothing written on error. */
ROTARY_API rotary_status rotary_tuning_default_path(char *path, size_t path_size);
/* The CPU model that keys tuning files: the x86 brand string (trimmed, runs of spaces as one), on Arm
 * "arm64 implementer 0x41 part 0xd0c"-style text from the main ID register, else "unknown". Static string. */
ROTARY_API const char *rotary_cpu_model(void);


/* How positions reach a call. The token of batch row b and sequence index s is token (b, s). */
typedef enum rotary_position_mode {
  ROTARY_POSITIONS_OFFSET = 0,  /* position of (b, s) = offset + s; prefill with offset 0, decode with offset = cache length */
  ROTARY_POSITIONS_OFFSETS = 1, /* position of (b, s) = offsets[b] + s; a batch whose sequences have different lengths */
  ROTARY_POSITIONS_IDS_I32 = 2, /* position of (b, s) = ids[b * seq_len + s], int32 */
  ROTARY_POSITIONS_IDS_I64 = 3, /* position of (b, s) = ids[b * seq_len + s], int64 (Hugging Face position_ids) */
  ROTARY_POSITIONS_COS_SIN = 4,  /* the caller supplies fp32 rows: cos of (b, s) at cos + (b * seq_len + s) *
                                   row_stride, rotary_dim/2 values, sin likewise; attention_scaling is not applied
                                   (as ONNX RotaryEmbedding without position_ids) */
  ROTARY_POSITIONS_STREAMS_I32 = 5, /* multi-stream (see rotary_streams): id of stream j of (b, s) =
                                   ids[j * stream_stride + b * seq_len + s], int32; n_streams must equal
                                   rotary_rope_streams(rope) (else STREAMS). vLLM's [n_streams, tokens] positions,
                                   Hugging Face's [n_streams, batch, seq] position_ids */
  ROTARY_POSITIONS_STREAMS_I64 = 6  /* as STREAMS_I32 with int64 ids */
} rotary_position_mode;
/* With a multi-stream rope, the one-id modes (OFFSET, OFFSETS, IDS_*) give every stream the token's one position:
 * the text tokens of an mRoPE model, whose rows equal a one-stream rope's with the same frequencies. */

typedef struct rotary_positions {
  rotary_position_mode mode;
  int64_t offset;          /* OFFSET */
  const int64_t *offsets;  /* OFFSETS: batch values */
  const void *ids;         /* IDS_I32 / IDS_I64: batch * seq_len values */
  const float *cos;        /* COS_SIN */
  const float *sin;        /* COS_SIN */
  size_t row_stride;       /* COS_SIN: elements between the rows of consecutive tokens; 0 means rotary_dim/2 */
  size_t n_streams;        /* STREAMS_*: ids per token, equal to rotary_rope_streams(rope) (else STREAMS; 1 with
                              a one-stream rope: as IDS_*) */
  size_t stream_stride;    /* STREAMS_*: elements between streams in ids; 0 means batch * seq_len. At least
                              batch * seq_len (streams may not interleave; else INVALID_ARGUMENT). The ids span
                              (n_streams - 1) * stream_stride + batch * seq_len elements: every stream's ids are
                              range-checked, the span takes part in the overlap checks */
} rotary_positions;

/*
 * One tensor to rotate: batch x seq_len tokens (shared by q and k) of n_heads heads of head_dim elements.
 * Element (b, s, h, d) of the input is in[b * stride_batch + s * stride_seq + h * stride_head + d], of the output
 * out[b * out_stride_batch + s * out_stride_seq + h * out_stride_head + d]. in == out with equal strides rotates in
 * place. An output whose strides would write an element twice is rejected (STRIDE); an output that overlaps another
 * output, or an input other than its own in-place input, is rejected (OVERLAP), except for disjoint interleaved
 * views of one buffer (q and k of packed QKV rows).
 */
typedef struct rotary_tensor {
  const void *in;
  void *out;
  rotary_dtype dtype;      /* the same for in and out */
  size_t n_heads;          /* 0 leaves this tensor out (k only: q is required) */
  ptrdiff_t stride_batch, stride_seq, stride_head;
  ptrdiff_t out_stride_batch, out_stride_seq, out_stride_head;
} rotary_tensor;

/* Named contiguous layouts, to fill a rotary_tensor's strides with rotary_tensor_init. */
typedef enum rotary_layout {
  ROTARY_LAYOUT_BSHD = 0, /* [batch, seq, heads, head_dim]: Hugging Face before transpose, vLLM, the article */
  ROTARY_LAYOUT_BHSD = 1  /* [batch, heads, seq, head_dim]: Hugging Face attention, ONNX 4-D */
} rotary_layout;

/* Fills t for a contiguous tensor of that layout, rotated from in to out (pass in == out for in place), with
 * the same strides for input and output. Errors: NULL_POINTER (t), STRIDE (unknown layout), OVERFLOW. */
ROTARY_API rotary_status rotary_tensor_init(rotary_tensor *t, rotary_layout layout, const void *in, void *out,
                                            rotary_dtype dtype, size_t seq_len, size_t n_heads, size_t head_dim);

typedef enum rotary_direction {
  ROTARY_FORWARD = 0, /* x0' = x0 cos - x1 sin, x1' = x0 sin + x1 cos */
  ROTARY_INVERSE = 1  /* rotation by the opposite angle: the backward pass of training */
} rotary_direction;

/* Everything one call rotates. Zero it (or use rotary_apply_desc_init), then fill it. */
typedef struct rotary_apply_desc {
  size_t struct_size;      /* sizeof(rotary_apply_desc) */
  size_t batch;            /* >= 1 */
  size_t seq_len;          /* >= 1 */
  rotary_positions positions;
  rotary_direction direction;
  rotary_tensor q;         /* required */
  rotary_tensor k;         /* optional: k.n_heads == 0 skips it; may have other head count, dtype and strides */
} rotary_apply_desc;

/* Zeroes desc and sets struct_size, batch = seq_len = 1, offset positions at 0, forward.
 * Position 0 (cos 1, sin 0 with attention_scaling 1) leaves every element of a finite pair bit for bit unchanged,
 * except that a negative zero may come out as +0 (IEEE addition of -0 and +0). A pair holding a NaN comes out as
 * two NaNs, and the partner of an Inf as NaN (NaN * 0 and Inf * 0 are NaN; see rotary_apply). */
ROTARY_API void rotary_apply_desc_init(rotary_apply_desc *desc);

/*
 * Rotates q and (optionally) k in one pass: the cos/sin row of a token is read once and used for every head of
 * both. ctx may be NULL (the calling thread does all the work). Everything is validated, every position included,
 * before the first byte is written; on error no output byte changes.
 * Errors: NULL_POINTER, INVALID_ARGUMENT (struct_size, zero batch/seq_len/q heads, unknown mode or direction,
 * stream_stride below batch * seq_len), DTYPE, POSITION, OVERFLOW (an element offset, a byte size above
 * PTRDIFF_MAX, offset + seq_len - 1 or the stream ids' extent overflows), STREAMS (n_streams is not
 * rotary_rope_streams(rope)), STRIDE, OVERLAP, OUT_OF_MEMORY (only when rotary_dim > 1024, for a per-call row
 * buffer).
 * Multi-stream positions: a token whose streams hold one id uses the 1-D row (the table's, as IDS_*); any other
 * token's row is gathered per frequency from its streams' rows (copied from the table, or computed per stream
 * table-free: the same bits), so results equal rotating with rotary_rope_cos_sin_streams's rows.
 * Each pair (x0, x1) becomes fmaf(x0, c, -(x1 * s)) and fmaf(x0, s, x1 * c) in fp32, rounded once to the dtype.
 * Results are bit-identical for every thread count and every kernel (scalar, AVX2, AVX-512, NEON), NaNs included:
 * an output that is NaN is x0 quieted when x0 is NaN (its sign and payload kept), else x1 quieted when x1 is NaN,
 * else the positive default NaN (f32 0x7FC00000, f16 0x7E00, bf16 0x7FC0: Inf * 0, Inf - Inf, NaN cos/sin rows),
 * whatever NaN the hardware would propagate.
 */
ROTARY_API rotary_status rotary_apply(rotary_context *ctx, const rotary_rope *rope, const rotary_apply_desc *desc);

/* What rotary_context_tune searches and how long it may take. Fill with rotary_tune_options_init. */
typedef struct rotary_tune_options {
  size_t struct_size;     /* sizeof(rotary_tune_options) */
  double seconds;         /* time budget of the whole search (default 10); candidates not measured when it runs
                             out keep the current value. Finite, > 0. */
  double min_gain;        /* a candidate replaces the current value only when the calls' total median time falls by
                             more than this fraction, no call's median rises by more than it and it wins 3 of 4
                             alternating pairs (default 0.03);
                             finite, in [0, 1) */
  unsigned settings_mask; /* bit s set: search setting s; 0: every setting */
  size_t rounds;          /* timed rounds per candidate, alternating with the current value (default 7); >= 3 */
} rotary_tune_options;

/* What the search did, per setting and in total. */
typedef struct rotary_tune_report {
  int64_t before[ROTARY_SETTING_COUNT];  /* the values the search started from */
  int64_t after[ROTARY_SETTING_COUNT];   /* the values it left (source TUNED where they changed) */
  double before_seconds;                 /* total median time of the calls under `before`, in seconds */
  double after_seconds;                  /* the same under `after`, measured in the same final alternating rounds */
  size_t candidates;                     /* candidate values timed */
  int out_of_time;                       /* the budget ran out before every candidate was timed */
} rotary_tune_report;

/* Sets defaults (seconds 10, min_gain 0.03, every setting, 7 rounds) and struct_size. Nothing for NULL. */
ROTARY_API void rotary_tune_options_init(rotary_tune_options *options);

/*
 * Measures the settings on this machine for these calls (FFTW_MEASURE-like) and leaves the winners in ctx: one
 * setting at a time, each candidate value timed against the current value in alternating rounds (the median of
 * `rounds` round times, each round running every call once), a candidate kept only by the rule of min_gain and
 * only when its round is the faster one in at least 3 of every 4 alternating pairs (a sign test against noise).
 * Calls run many times with ctx's threads: in-place calls rotate their tensors again each time (give it scratch
 * copies), out-of-place ones rewrite their outputs. Every desc is checked (as rotary_apply) before anything runs.
 * Values that change no call's plan (kernels, store kinds, head groups, threads, tasks) are not timed; `candidates`
 * counts the values timed. Three warm-up rounds run first and the final alternating comparison of the starting
 * values against the values found runs last, both even past `seconds`; the values found stay only when they also
 * pass the rule of min_gain in that comparison, otherwise the starting values stay (after = before, after_seconds
 * = before_seconds). A rotary_context_set_setting or rotary_context_load_tuning on ctx from another thread during
 * the search is overwritten when it ends.
 * options NULL: the defaults. report may be NULL. Errors: NULL_POINTER (ctx, rope, descs), INVALID_ARGUMENT
 * (n_descs 0 or above 64, options out of range or with a wrong struct_size, settings_mask bits at or above
 * ROTARY_SETTING_COUNT), OUT_OF_MEMORY (the timing buffers: 2 x rounds x (n_descs + 1) doubles), a desc's
 * rotary_apply error; ctx's settings are unchanged on error.
 */
ROTARY_API rotary_status rotary_context_tune(rotary_context *ctx, const rotary_rope *rope,
                                             const rotary_apply_desc *descs, size_t n_descs,
                                             const rotary_tune_options *options, rotary_tune_report *report);

/*
 * KV cache: the step after the QKV projection in one pass. q is rotated (in place or into a q buffer), k is
 * rotated and written into the key cache, v is written unrotated into the value cache; nothing of k or v is
 * written anywhere else. A cache is a set of blocks; a block holds block_size token rows of kv_heads heads of
 * head_dim elements (head_dim of the rope; k and v heads have that length), arranged NHD or HND. A "slot" is
 * block * block_size + row. Tensors and caches may start at any byte address; the index arrays (lengths,
 * slot_mapping, page tables, slots) must be aligned for their type. docs/kv_cache.md has the vLLM and FlashInfer
 * mapping, the error table and the accuracy of re-rotation.
 */
typedef enum rotary_cache_index {
  ROTARY_CACHE_SEQUENCES = 0, /* contiguous: block b is sequence b (num_blocks >= batch, block_size = capacity);
                                 token (b, s) goes to row lengths[b] + s of block b */
  ROTARY_CACHE_SLOTS = 1,     /* vLLM (reshape_and_cache_flash): token (b, s) goes to slot slot_mapping[b * seq_len
                                 + s]; a negative slot skips the token (padding: its k and v are not written, its q
                                 is still rotated) */
  ROTARY_CACHE_PAGES = 2      /* FlashInfer (append_paged_kv_cache): sequence b owns pages page_indices[
                                 page_indptr[b] .. page_indptr[b + 1]), its last page holding last_page_len[b] rows
                                 once this call has written; its length after the call is L = (pages - 1) *
                                 block_size + last_page_len[b], and its seq_len new tokens are its last rows: token
                                 (b, s) goes to row p = L - seq_len + s, i.e. row p % block_size of page
                                 page_indices[page_indptr[b] + p / block_size] */
} rotary_cache_index;

typedef enum rotary_cache_layout {
  ROTARY_CACHE_NHD = 0, /* a block is [block_size, kv_heads, head_dim]: vLLM's flash layout, FlashInfer NHD, and a
                           per-sequence cache [batch, capacity, kv_heads, head_dim] */
  ROTARY_CACHE_HND = 1  /* a block is [kv_heads, block_size, head_dim]: FlashInfer HND, and a per-sequence cache
                           [batch, kv_heads, capacity, head_dim] */
} rotary_cache_layout;

/* A key cache and a value cache of one layer. Separate caches, or one combined [num_blocks, 2, ...] buffer (k at its
 * start, v one half-block later, block_stride two half-blocks). The whole extent of each cache (num_blocks blocks)
 * counts for overlap, written rows or not. k and v may share a buffer only with interleaved blocks: they are taken
 * as disjoint when their extents are, or when (v - k) mod (block_stride bytes) lies in [block bytes, block_stride
 * bytes - block bytes], block bytes being block_size * kv_heads * head_dim elements. */
typedef struct rotary_kv_cache {
  rotary_cache_index index;
  rotary_cache_layout layout;
  rotary_dtype dtype;           /* F32, F16, BF16 or FP8_E4M3, for k and v; any input dtype can be written to any */
  void *k;                      /* block 0 of the key cache */
  void *v;                      /* block 0 of the value cache */
  size_t num_blocks;            /* blocks in each cache (SEQUENCES: at least batch) */
  size_t block_size;            /* token rows per block (SEQUENCES: a sequence's capacity) */
  size_t block_stride;          /* elements from one block to the next, in k and in v; 0 means block_size * kv_heads
                                   * head_dim (dense) */
  const int64_t *lengths;       /* SEQUENCES: batch values, the rows each sequence already holds */
  const int64_t *slot_mapping;  /* SLOTS: batch * seq_len values */
  const int32_t *page_indptr;   /* PAGES: batch + 1 values, page_indptr[0] = 0, non-decreasing */
  const int32_t *page_indices;  /* PAGES: page_indptr[batch] values, each below num_blocks */
  const int32_t *last_page_len; /* PAGES: batch values, 1 .. block_size */
  float k_scale, v_scale;       /* FP8_E4M3 only: finite and > 0 (ignored for other dtypes) */
} rotary_kv_cache;

/* One call: rotate q, rotate k into the key cache, copy v into the value cache. Zero it (or use
 * rotary_kv_write_desc_init), then fill it. */
typedef struct rotary_kv_write_desc {
  size_t struct_size;         /* sizeof(rotary_kv_write_desc) */
  size_t batch;               /* >= 1 */
  size_t seq_len;             /* >= 1: new tokens per sequence */
  rotary_positions positions; /* as rotary_apply, every mode; the rotation is always forward */
  rotary_tensor q;            /* rotated from q.in to q.out (equal: in place); n_heads 0 leaves q out; any head
                                 count (GQA, MQA) */
  rotary_tensor k;            /* k.in is read (k.out and the out strides are ignored); n_heads = kv_heads >= 1 */
  rotary_tensor v;            /* v.in is read (v.out ignored); n_heads equal to k's; written unrotated. q, k and v
                                 dtypes (F32, F16, BF16) are independent of each other and of the cache's */
  rotary_kv_cache cache;
} rotary_kv_write_desc;

/* Zeroes desc and sets struct_size, batch = seq_len = 1, offset positions at 0. Does nothing for NULL. */
ROTARY_API void rotary_kv_write_desc_init(rotary_kv_write_desc *desc);

/*
 * Points desc->q, k and v at one packed QKV buffer, the output of one GEMM: batch * seq_len rows (token (b, s) is
 * row b * seq_len + s), row_stride elements apart (0: (q_heads + 2 * kv_heads) * head_dim), each row q_heads heads,
 * then kv_heads heads of k, then kv_heads heads of v, head_dim elements each. q_out NULL rotates q in place in the
 * buffer; otherwise q goes to q_out, a contiguous [batch, seq_len, q_heads, head_dim] tensor of the same dtype.
 * Set desc->batch and desc->seq_len first. k.out and v.out are set to NULL. Only desc->q, k and v change.
 * Errors: NULL_POINTER (desc, qkv), INVALID_ARGUMENT (kv_heads or head_dim 0, row_stride smaller than a row), DTYPE
 * (fp8 or unknown), OVERFLOW (the buffer's byte size above PTRDIFF_MAX). On error desc is unchanged.
 */
ROTARY_API rotary_status rotary_kv_write_desc_set_qkv(rotary_kv_write_desc *desc, const void *qkv, void *q_out,
                                                      rotary_dtype dtype, size_t q_heads, size_t kv_heads,
                                                      size_t head_dim, size_t row_stride);

/*
 * Rotates q, writes rotated k and unrotated v into the cache. Every element is computed as rotary_apply computes it
 * (fp32 math, the same bits for every kernel and thread count) and rounded once to its destination's dtype (fp8:
 * value / scale rounded to nearest even, saturated to +-448, NaN kept). Rows of the cache that no token writes are
 * never touched. Elements past rotary_dim are copied (converted once when the dtypes differ). Results are
 * bit-identical for every thread count; ctx may be NULL.
 * Everything is checked before anything is written; on error nothing is written (q, the caches). Errors:
 * NULL_POINTER (rope, desc, an input, q.out when q has heads, a cache, the index's or positions' arrays),
 * INVALID_ARGUMENT (struct_size, batch or seq_len 0, unknown index, layout or position mode, k.n_heads 0 or != v's,
 * block_size or num_blocks 0, stream_stride below batch * seq_len), STREAMS (n_streams is not
 * rotary_rope_streams(rope)), DTYPE (an input fp8 or unknown, an unknown cache dtype), POSITION, OVERFLOW (sizes,
 * offsets, a cache's extent in bytes above PTRDIFF_MAX), STRIDE (q's output writes an element twice, block_stride
 * smaller than a block), OVERLAP (a cache overlaps an input, q's output, the other cache or an index or position
 * array; q's output overlaps an input it is not),
 * CACHE_INDEX (a slot, block or page outside the cache; two tokens that write one slot; a page table whose indptr
 * is not non-decreasing from 0, whose sequence has no page or whose last_page_len is outside 1 .. block_size, or
 * whose sequence holds fewer than seq_len rows; a page index negative or >= num_blocks; lengths[b] negative or
 * lengths[b] + seq_len above block_size; SEQUENCES with num_blocks < batch; pages may be shared between sequences
 * as long as no two tokens write one slot),
 * SCALE (fp8 cache with a scale that is zero, negative, NaN or infinite), OUT_OF_MEMORY.
 */
ROTARY_API rotary_status rotary_kv_write(rotary_context *ctx, const rotary_rope *rope,
                                         const rotary_kv_write_desc *desc);

/* Cache re-rotation: keys already in a cache turned by a position delta (StreamingLLM eviction with attention
 * sinks, llama.cpp's context shift). Zero it (or use rotary_kv_rerotate_desc_init), then fill it. */
typedef struct rotary_kv_rerotate_desc {
  size_t struct_size;     /* sizeof(rotary_kv_rerotate_desc) */
  rotary_kv_cache cache;  /* layout, dtype, k, num_blocks, block_size, block_stride, k_scale are read; v, the index
                             and its arrays are not */
  size_t kv_heads;        /* >= 1 */
  size_t first_slot;      /* the rows rotated: slots first_slot .. first_slot + n_slots - 1 ... */
  size_t n_slots;         /* >= 1 */
  const int64_t *slots;   /* ... or, when not NULL, these n_slots slots (negative ones skipped; first_slot is
                             then not read) */
  int64_t delta;          /* every key's angle grows by delta * inv_freq: |delta| <= ROTARY_MAX_POSITION */
} rotary_kv_rerotate_desc;

/* Zeroes desc and sets struct_size. Does nothing for NULL. */
ROTARY_API void rotary_kv_rerotate_desc_init(rotary_kv_rerotate_desc *desc);

/*
 * Rotates the keys of the chosen slots in place by delta positions, with the rope's frequencies and without its
 * attention scaling (the keys carry it already): each pair turns by delta * inv_freq[i], cos/sin from the exact
 * angle rounded once to fp32, math in fp32, one rounding to the cache dtype (fp8: decoded with k_scale, encoded
 * again). The cos/sin row is the table's row of |delta| when the rope's attention scaling is 1 and |delta| is in
 * the table, else computed the same way (the same bits); sin negated for delta < 0. Elements past rotary_dim are
 * not touched (fp8 included: only the rotated elements are decoded and encoded). Every head of a row is turned.
 * Rotating by d1 then d2 agrees with d1 + d2 within 3 (u + 5 * 2^-24) r + 3 a per element, r the pair's norm, u the
 * cache dtype's unit roundoff, a half its smallest subnormal step (times k_scale for fp8) (docs/kv_cache.md).
 * A multi-stream rope (mRoPE, vision) turns every frequency by the same delta: every stream's position shifted by
 * delta, which is what shifting text tokens (StreamingLLM, a context shift) means; the row is the 1-D row of
 * delta, as for a one-stream rope with the same frequencies.
 * Bit-identical for every thread count; ctx may be NULL. Checked before anything is written. Errors: NULL_POINTER
 * (rope, desc, cache.k), INVALID_ARGUMENT (struct_size, kv_heads or n_slots 0, unknown layout, block_size or
 * num_blocks 0), DTYPE, OVERFLOW, STRIDE (block_stride smaller than a block), POSITION (|delta| above
 * ROTARY_MAX_POSITION), CACHE_INDEX (a slot outside the cache, a slot listed twice), OVERLAP (slots inside the
 * key cache), SCALE (fp8 k_scale), OUT_OF_MEMORY.
 */
ROTARY_API rotary_status rotary_kv_rerotate(rotary_context *ctx, const rotary_rope *rope,
                                            const rotary_kv_rerotate_desc *desc);

/*
 * Decode attention over a KV cache, with RoPE fused in: softmax(q K^T * scale) V for 1 to
 * ROTARY_ATTENTION_MAX_TOKENS new query tokens per sequence (decode, speculative and chunked steps), reading the
 * cache written by rotary_kv_write. docs/attention.md has the semantics next to PyTorch SDPA, FlashInfer and vLLM,
 * and the error bounds.
 *
 * Sequences and masks. Sequence b holds L_b cached rows (its keys and values at rows 0 .. L_b - 1), its `tokens`
 * query tokens being its LAST tokens: query token t sits at row i = L_b - tokens + t (its own key and value are
 * in the cache already, as after rotary_kv_write). Query token t attends to the rows p with p <= i (causal) and,
 * when window > 0, i - p < window (Hugging Face / Mistral sliding_window: the last `window` rows, its own
 * included; FlashInfer's window_left is window - 1). Every query attends to at least its own row.
 * How rows are found, by cache.index:
 *   SEQUENCES: block b is sequence b (num_blocks >= batch), L_b = cache.lengths[b] (the rows it holds AFTER this
 *              step's keys were written: 1 .. block_size);
 *   SLOTS:     vLLM's paged attention: row p of sequence b is row p % block_size of block
 *              block_table[b * block_table_stride + p / block_size], L_b = cache.lengths[b] (vLLM's seq_lens);
 *   PAGES:     FlashInfer: pages page_indices[page_indptr[b] .. page_indptr[b + 1]), L_b = (pages - 1) *
 *              block_size + last_page_len[b], row p on page page_indices[page_indptr[b] + p / block_size].
 * cache.slot_mapping is not read. Pages and blocks may be shared between sequences (prefix sharing).
 *
 * Math. Logit of query row r and key row p: s = scale * (q_r . k_p), then, with softcap > 0, s = softcap *
 * tanh(s / softcap) (Gemma 2). out_r = sum_p softmax(s)_p v_p over the attended rows; fp8 elements are decoded as
 * e4m3 value * k_scale (keys) or * v_scale (values). Everything is accumulated in fp32 (online softmax per chunk
 * of rows, chunks merged in a fixed order) and rounded once to out_dtype. lse, when not NULL, receives the natural
 * log of sum_p exp(s_p) (flash-attention's softmax_lse; FlashInfer's is base 2), so partial results over disjoint
 * row sets can be merged. The chunking depends on the shape alone: results are bit-identical for every thread
 * count; kernels of different ISAs sum in different orders (not bit-identical; the bound is in docs/attention.md).
 * Non-finite values are not masked: they go through IEEE arithmetic. A NaN in q or in an attended key makes that
 * query row's output and lse NaN; a NaN in element d of an attended value makes element d of the row's output NaN
 * (whatever its weight); an Inf gives what the arithmetic gives (a +Inf logit: NaN; a -Inf logit: weight 0;
 * softcap maps +-Inf logits to +-softcap). Rows outside a query's mask are not read for it and cannot affect it.
 *
 * RoPE. rope gives head_dim (q, k and v heads have that length). rope_mode:
 *   NONE: q and the cached keys are used as they are (q already rotated, keys rotated when written);
 *   Q:    q is rotated by the call at its position i (forward, rotary_apply's fp32 result, kept in fp32: not
 *         rounded to q_dtype), keys as cached;
 *   QK:   the cache holds UNROTATED keys: q is rotated at i and every key at its row p (FlashInfer's ROPE_LLAMA,
 *         vLLM-free caches that survive a scaling change). The rotated key is rotary_apply's fp32 result on the
 *         decoded key (not rounded to the cache dtype).
 * Positions are row indices: i for query token t, p for key row p; they must lie in the rope's table (POSITION),
 * for a table-free rope below ROTARY_MAX_POSITION. Multi-stream ropes (mRoPE) use the 1-D row of the position.
 */
#define ROTARY_ATTENTION_MAX_TOKENS 16

typedef enum rotary_attention_rope {
  ROTARY_ATTENTION_ROPE_NONE = 0, /* q and keys used as given */
  ROTARY_ATTENTION_ROPE_Q = 1,    /* q rotated by the call; keys stored rotated */
  ROTARY_ATTENTION_ROPE_QK = 2    /* q and keys rotated by the call; keys stored unrotated */
} rotary_attention_rope;

/*
 * Arithmetic of the two products (QK^T and P V):
 *   F32:  q (rotated and scaled) and the probabilities stay fp32; each product q_d * k_d and p * v_d is rounded
 *         in fp32 arithmetic (the bound in docs/attention.md). The default.
 *   BF16: q after rotation and scaling, and each probability after exp, are rounded to bf16 (to nearest even)
 *         before their products, as a bf16 model's attention on a GPU does; the products with bf16 and f16 cache
 *         elements (fp8 ones at power-of-two scales) are then exact and are summed in fp32. Where the CPU has
 *         AVX512-BF16, bf16 caches use VDPBF16PS (two products per lane and step: twice the FMA's products per
 *         instruction, no decoding) for the scores of rope modes NONE and Q and for the values; it flushes
 *         subnormal operands and partial sums to zero. Error: each logit moves by at most 2^-8 of
 *         scale * sum_d |q_d k_d| more than in F32, each weight by 2^-8 of itself (docs/attention.md).
 */
typedef enum rotary_attention_precision {
  ROTARY_ATTENTION_F32 = 0, /* fp32 q and probabilities (the default) */
  ROTARY_ATTENTION_BF16 = 1 /* q and probabilities rounded to bf16, exact products, fp32 sums */
} rotary_attention_precision;

/* One attention call. Zero it (or use rotary_attention_desc_init), then fill it. */
typedef struct rotary_attention_desc {
  size_t struct_size;          /* sizeof(rotary_attention_desc) */
  size_t batch;                /* >= 1 sequences */
  size_t tokens;               /* query tokens per sequence, 1 .. ROTARY_ATTENTION_MAX_TOKENS */
  size_t q_heads;              /* a multiple of kv_heads (GQA; MQA with kv_heads 1) */
  size_t kv_heads;             /* >= 1 */
  const void *q;               /* element (b, t, h, d) at q[b * q_stride_batch + t * q_stride_token + h *
                                  q_stride_head + d] */
  rotary_dtype q_dtype;        /* F32, F16, BF16 */
  ptrdiff_t q_stride_batch, q_stride_token, q_stride_head; /* elements, signed; all three 0: contiguous [batch,
                                                               tokens, q_heads, head_dim] */
  void *out;                   /* element (b, t, h, d) at out[b * out_stride_batch + ...], never read */
  rotary_dtype out_dtype;      /* F32, F16, BF16 */
  ptrdiff_t out_stride_batch, out_stride_token, out_stride_head; /* all three 0: contiguous */
  float *lse;                  /* NULL, or [batch, tokens, q_heads] contiguous fp32 */
  rotary_kv_cache cache;       /* index (above), layout, dtype, k, v, num_blocks, block_size, block_stride, lengths
                                  (SEQUENCES, SLOTS), page arrays (PAGES), k_scale and v_scale (FP8_E4M3) */
  const int32_t *block_table;  /* SLOTS: batch rows of block_table_stride block numbers */
  size_t block_table_stride;   /* SLOTS: >= ceil(L_b / block_size) for every b */
  rotary_attention_rope rope_mode;
  float scale;                 /* softmax scale; 0 means 1 / sqrt(head_dim); else finite and > 0 */
  float softcap;               /* 0: none; else finite and > 0 */
  size_t window;               /* 0: none; else the sliding window in rows */
  rotary_attention_precision precision; /* F32 (0, the default) or BF16 (above) */
} rotary_attention_desc;

/* Zeroes desc and sets struct_size, batch = tokens = 1. Does nothing for NULL. */
ROTARY_API void rotary_attention_desc_init(rotary_attention_desc *desc);

/*
 * Attention of desc's queries over desc's cache (above): out (and lse) written, nothing else. ctx may be NULL
 * (the calling thread does all the work); work is split over sequences x chunks of rows (each chunk with every kv
 * head), and the query heads that share a kv head are processed together, so each cached key and value row is read
 * once per call. A context keeps the working memory of its largest call (rotary_context_destroy frees it).
 * Everything is checked before anything is read from the cache or written; on error out and lse are unchanged.
 * Errors: NULL_POINTER (rope, desc, q, out, cache.k, cache.v, the index's arrays, block_table for SLOTS),
 * INVALID_ARGUMENT (struct_size, batch 0, tokens 0 or above ROTARY_ATTENTION_MAX_TOKENS, kv_heads 0, q_heads not
 * a positive multiple of kv_heads, unknown index, layout, rope_mode or precision, num_blocks or block_size 0),
 * DTYPE (q or out not F32/F16/BF16, unknown cache dtype), SCALE (scale or softcap negative, NaN or infinite; fp8 k_scale or
 * v_scale not finite and > 0), POSITION (rope_mode Q or QK and a position outside the rope's table), OVERFLOW,
 * STRIDE (out writes an element twice; block_stride smaller than a block), OVERLAP (out or lse overlaps q, a cache,
 * an index array, the block table or each other, out == q included; k and v may be one buffer: both are read only), CACHE_INDEX (L_b < tokens; SEQUENCES: L_b above block_size or
 * num_blocks < batch; SLOTS: a block number used by a sequence negative or >= num_blocks, or block_table_stride *
 * block_size < L_b; PAGES: the table rules of rotary_kv_write), OUT_OF_MEMORY.
 */
ROTARY_API rotary_status rotary_attention(rotary_context *ctx, const rotary_rope *rope,
                                          const rotary_attention_desc *desc);

/*
 * One decode step in one call: rotary_kv_write(write) (q rotated, k rotated and v written into the cache), then
 * rotary_attention(attn) of the rotated q over that cache. attn->q must be write's q output (write->q.out, its
 * heads, dtype and strides), attn->cache the cache write fills (same index kind, layout, dtype, k, v, geometry
 * and scales) with attn->rope_mode NONE, attn->batch and attn->tokens equal to write's batch and seq_len; attn's
 * lengths (SEQUENCES, SLOTS) give the lengths after the write. Both descriptors are checked before anything is
 * written (statuses as the two calls; INVALID_ARGUMENT when they disagree, including a token the write stores
 * anywhere but row L_b - tokens + s of its sequence as the attention finds it; OVERLAP when the write's outputs
 * overlap the attention's index arrays); then the write runs, then attention.
 */
ROTARY_API rotary_status rotary_decode_step(rotary_context *ctx, const rotary_rope *rope,
                                            const rotary_kv_write_desc *write, const rotary_attention_desc *attn);

/*
 * CUDA: the same operations on NVIDIA GPUs. Present when librotary was built with ROTARY_CUDA (CMake option: AUTO,
 * the default, builds it when nvcc is found; sm_80 and sm_90a); otherwise every function below returns
 * ROTARY_ERR_UNSUPPORTED (rotary_cuda_device_count: 0) and nothing else changes. The CUDA build needs the CUDA
 * runtime (libcudart) at run time.
 *
 * The descriptors are the CPU's (rotary_apply_desc, rotary_kv_write_desc), read on the host; every pointer in them
 * (tensors, offsets, ids, cos/sin rows, lengths, slot mappings, page tables) is a device address (cudaMalloc,
 * managed or mapped pinned memory). A call enqueues one kernel on `stream` (a cudaStream_t; NULL is the legacy
 * default stream) and returns: it never synchronizes, allocates or copies, so it can be captured in a CUDA graph.
 * Results are the CPU library's, bit for bit: the same table rows, fmaf(x0, c, -(x1 * s)) and fmaf(x0, s, x1 * c)
 * in fp32, one rounding to nearest even to the dtype, the same NaN rules (rotary_apply), fp8 as rotary_kv_write.
 *
 * Checks. Before the launch, everything that needs only host metadata is checked exactly as on the CPU, with the
 * same statuses: struct sizes, counts, dtypes, strides (STRIDE), the overlap of extents (OVERLAP), an OFFSET run
 * (POSITION), stream counts, fp8 scales, and that every pointer is one the device can address (DEVICE, through
 * cudaPointerGetAttributes); on error nothing is launched and nothing is written. Values that live on the device
 * are checked by the kernel, token by token: a token with a position (of any stream) that is negative or outside
 * the rope's table (or above ROTARY_MAX_POSITION), or whose cache slot, page or sequence row falls outside the
 * cache, is skipped whole (none of its outputs is written: q and k rows, cache rows) and the kernel ORs
 * ROTARY_CUDA_FLAG_POSITION or ROTARY_CUDA_FLAG_CACHE_INDEX into *flags when flags is not NULL (a device int32 the
 * caller zeroes, and reads when it likes). Every other token is written. Two tokens that write one cache slot are
 * the caller's contract (not detected; the slot holds one of them). A PAGES cache's page_indices array takes no
 * part in the overlap checks (its length lives on the device).
 */
#define ROTARY_CUDA_FLAG_POSITION 1    /* a token's position was out of range: the token was not written */
#define ROTARY_CUDA_FLAG_CACHE_INDEX 2 /* a token's cache slot, page or row was outside the cache: not written */

/* Number of CUDA devices usable by this build (0 without CUDA, without a driver or without a device). */
ROTARY_API int rotary_cuda_device_count(void);

/* A rope's read-only data on one device: its fp64 inverse frequencies, its stream map and, when the rope has one,
 * its cos/sin table (the host table's bytes). */
typedef struct rotary_cuda_rope rotary_cuda_rope;

/*
 * Uploads rope to device `device` (allocation and synchronous copies: once per rope and device, never inside a
 * captured region). The host rope must outlive the result (its host metadata is read by every call). A table-free
 * rope (max_positions 0) computes each token's row on the GPU from the exact angle with the CPU's own algorithm,
 * fp64 operation for fp64 operation (the product pos * inv_freq[i] kept exactly in two doubles, reduced modulo pi/2
 * in double-double, exactly for huge angles, the same polynomials, times the attention scaling, rounded once to
 * fp32): the same bits as the CPU's table and table-free rows for every position up to ROTARY_MAX_POSITION
 * (docs/cuda.md: what the GPU tests compared).
 * Errors: NULL_POINTER, UNSUPPORTED (no CUDA build), DEVICE (no such device, a CUDA call failed), OUT_OF_MEMORY
 * (host or device). *out is set only on success.
 */
ROTARY_API rotary_status rotary_cuda_rope_create(const rotary_rope *rope, int device, rotary_cuda_rope **out);

/* Frees the device copies (synchronizes the device first, so no queued call still reads them). NULL is allowed. */
ROTARY_API void rotary_cuda_rope_destroy(rotary_cuda_rope *rope);

/* Device bytes the rope holds; 0 for NULL. */
ROTARY_API size_t rotary_cuda_rope_memory_bytes(const rotary_cuda_rope *rope);

/* The device the rope lives on; -1 for NULL. */
ROTARY_API int rotary_cuda_rope_device(const rotary_cuda_rope *rope);

/*
 * rotary_apply on the GPU: every position mode, pairing, partial rotary_dim, strides, head counts (GQA), dtype
 * (f32, f16, bf16), direction, in and out of place. Launches on the current device, which must be the rope's
 * (else DEVICE). flags: NULL or a device int32 (see above).
 * Errors: those of rotary_apply found on the host, DEVICE, UNSUPPORTED. OUT_OF_MEMORY never (no allocation).
 */
ROTARY_API rotary_status rotary_cuda_apply(const rotary_cuda_rope *rope, const rotary_apply_desc *desc, void *stream,
                                           int32_t *flags);

/*
 * rotary_kv_write on the GPU: q rotated, k rotated into the key cache, v copied into the value cache, every cache
 * index (SEQUENCES, SLOTS, PAGES), layout (NHD, HND) and cache dtype (f32, f16, bf16, fp8 e4m3), every position
 * mode, table-free ropes: the same bytes as rotary_kv_write on the same call. Rows no token writes are never
 * touched; a negative slot (SLOTS) skips the token's k and v and still rotates its q, as on the CPU. A token whose
 * device-side position, slot, page or row is out of range is skipped whole and flagged. One kernel enqueued on
 * stream; no allocation, copy or synchronization. Launches on the current device, which must be the rope's.
 * flags: NULL or a device int32 (see above).
 * NOT YET RUN ON A GPU: verified only by a CPU emulation of the kernel (docs/cuda.md). A build without the CUDA
 * backend returns NULL_POINTER for a NULL rope or desc, else UNSUPPORTED, and launches nothing.
 * Errors: those of rotary_kv_write found on the host, DEVICE, UNSUPPORTED (no CUDA build).
 */
ROTARY_API rotary_status rotary_cuda_kv_write(const rotary_cuda_rope *rope, const rotary_kv_write_desc *desc,
                                              void *stream, int32_t *flags);

/*
 * Hugging Face config.json. These live in librotary_hf, a companion library that carries its own private copy of
 * cJSON (librotary itself needs only libc, libm and pthreads).
 * Fields read: model_type, hidden_size, num_attention_heads, num_key_value_heads, head_dim, max_position_embeddings,
 * original_max_position_embeddings, num_hidden_layers, layer_types, rope_theta, partial_rotary_factor (GPT-NeoX:
 * rotary_pct, rotary_emb_base; GPT-J: rotary_dim, interleaved pairing; DeepSeek-V2/V3: qk_rope_head_dim,
 * interleaved pairing; GLM and GLM-4 ("glm", "glm4"): interleaved pairing over head_dim * partial_rotary_factor),
 * and the scaling in either layout: "rope_scaling" (transformers 4: "type" or "rope_type") or "rope_parameters"
 * (transformers 5, which also carries rope_theta). Families: default, linear, dynamic, yarn, llama3, longrope
 * (also "su" as longrope; Phi-3 also reads "yarn" as longrope), plus "ntk" (static NTK-aware, factor = alpha).
 * Defaults and precedence follow transformers 5: a top-level original_max_position_embeddings wins over the one
 * in the scaling (Phi-3), and YaRN, Llama 3 and LongRoPE fall back to max_position_embeddings when it is absent.
 * Family defaults of transformers 5.24's configuration classes apply when a key is absent: head_dim 256 (gemma,
 * gemma2, gemma3, gemma3_text) or 128 (qwen3, qwen3_vl, qwen3_vl_text, glm, glm4) instead of hidden_size /
 * num_attention_heads (a null head_dim derives it); partial_rotary_factor 0.5 (glm, glm4), 0.25 (stablelm,
 * gpt_neox); rope_theta 1e6 (qwen2_vl, qwen2_5_vl and their _text types, gemma3), 5e5 (qwen3_vl, qwen3_vl_moe),
 * else 10000. model_type gpt_neox reads rotary_pct and rotary_emb_base only: a top-level partial_rotary_factor or
 * rope_theta is not read (as GPTNeoXConfig; inside rope_parameters they are).
 * Composite configs: when "text_config" is an object (Qwen2-VL in transformers 5, Qwen3-VL, Gemma 3) every field
 * above is read from it, else from the top level (Qwen2-VL as first published); its model_type (else the top
 * level's) selects the family rules; rotary_hf_config_model_type gives the top level's.
 * mRoPE: "mrope_section" (2..4 integer sections, in frequencies, summing to rotary_dim/2) and "mrope_interleaved"
 * (true or false) inside the scaling object give streams.layout SECTIONS (n_streams = the number of sections;
 * a 4th section turns by stream 3, as vLLM and ggml, where transformers' Qwen2-VL code would use stream 0) or
 * INTERLEAVED (exactly 3 sections, stream j > 0 taking frequencies j, j+3, ... below 3 * sections[j], as
 * transformers' Qwen3-VL code). rope_type (or type) "mrope" (transformers 4) means default frequencies with
 * mrope_section ("type": "mrope" next to "rope_type": "default", as transformers' Qwen2-VL config object writes,
 * is the same); sections combine with any family (YaRN...). model_type qwen2_vl, qwen2_5_vl (and _text) always
 * use sections, default [16, 24, 24]; qwen3_vl, qwen3_vl_moe (and _text) always interleave, default [24, 20, 20];
 * a mrope_interleaved flag that contradicts the model type is an error.
 * Per-layer ropes: rope_parameters whose members are objects keyed by layer type ({"full_attention": {...},
 * "sliding_attention": {...}}) give one rope per layer type that some layer has (with layer_types, or Gemma 3's
 * pattern, known: entries of types no layer has are ignored, as transformers reads only the types that occur; layers
 * unknown: every object member): rope 0 is full_attention's (when it has one), then the others in the order
 * rope_parameters lists them. Each nested object is read as a scaling object of its own (errors name
 * "rope_parameters.<type>.<key>"); top-level rope_theta and partial_rotary_factor are only its defaults there. A
 * null member whose key is in layer_types is a layer type without rope (rotary_hf_config_layer_rope gives LAYER for
 * its layers). Gemma 3 (gemma3, gemma3_text) has full_attention (rope_theta, default 1e6, with rope_scaling or
 * rope_parameters.full_attention) and sliding_attention (rope_local_base_freq, default 1e4, default scaling, or
 * rope_parameters.sliding_attention), each when some layer has that type (a null entry: the defaults); without
 * layer_types its layers follow sliding_window_pattern (default 6: layer i is full attention when (i + 1) % pattern
 * == 0) over num_hidden_layers (default 26). Errors naming the field: a layer type in layer_types with no entry in
 * per-layer-type rope_parameters ("rope_parameters.<type>: missing (layer_types[i] is ...)"; null marks one without
 * rope), flat parameters (not objects, not null) next to per-layer-type ones (transformers would ignore them),
 * rope_scaling next to per-layer-type rope_parameters (Gemma 3: next to rope_parameters.full_attention), layer_types
 * not an array of strings or not as long as num_hidden_layers, sliding_window_pattern 0, more than 8 layer types, a
 * layer type name over 31 bytes.
 * Required keys and JSON null follow transformers 5.24: YaRN requires "factor" (null derives it as
 * max_position_embeddings / original_max_position_embeddings; an absent key is an error, as transformers' KeyError);
 * LongRoPE's factor is optional (absent or null derive it) and short_factor and long_factor are required; linear,
 * dynamic, ntk and llama3 require a numeric factor (llama3 also low_freq_factor and high_freq_factor); an explicit 0
 * factor or attention_factor is refused; YaRN's "truncate": null means false. A null where transformers would
 * compute with None (rope_theta, original_max_position_embeddings, the factors) is an error naming the field.
 * JSON as Python's json reads it: a key given twice counts with its LAST value, everywhere; text after the object,
 * control characters and an escaped NUL (backslash u0000: cJSON would end the string there) are refused.
 * Dimensions are bounded (head_dim, or hidden_size / num_attention_heads, or qk_rope_head_dim, at most
 * ROTARY_MAX_HEAD_DIM: HEAD_DIM) before anything is allocated from them; integers must be below 2^53.
 * On error, error (when not NULL and error_size > 0) receives a NUL-terminated message naming the field, e.g.
 * "rope_scaling.factor: missing (required by \"linear\")", and *out is untouched. Every error, OUT_OF_MEMORY
 * included, comes with a message.
 */
typedef struct rotary_hf_config rotary_hf_config;

/* Parses length bytes of JSON text (no NUL needed; only whitespace may follow the object). Errors: NULL_POINTER,
 * CONFIG (the message says what), SCALING, ROTARY_DIM, HEAD_DIM, FREQUENCY, STREAMS (a rope's values fail
 * rotary_config_check; a streams field is reported as "<scaling object>.mrope_section"), OUT_OF_MEMORY (also when an
 * allocation inside the JSON parser fails). */
ROTARY_API rotary_status rotary_hf_config_parse(const char *json, size_t length, rotary_hf_config **out,
                                                char *error, size_t error_size);
/* Reads and parses a file. Only a regular file of at most 64 MiB is read: a FIFO, device or socket is refused
 * with IO ("path: not a regular file") before it is opened, so nothing blocks; other IO errors carry the system's
 * text ("path: No such file or directory", "path: Is a directory"). Errors: those of rotary_hf_config_parse, and
 * IO. */
ROTARY_API rotary_status rotary_hf_config_load(const char *path, rotary_hf_config **out, char *error,
                                               size_t error_size);
/* Frees a parsed config. NULL is allowed. */
ROTARY_API void rotary_hf_config_destroy(rotary_hf_config *config);
/* The rope configuration, ready for rotary_rope_create (seq_len 0); its pointers stay valid while config lives.
 * NULL for NULL. */
ROTARY_API const rotary_config *rotary_hf_config_rope(const rotary_hf_config *config);
/* num_attention_heads and num_key_value_heads (which defaults to num_attention_heads); 0 when absent or NULL. */
ROTARY_API size_t rotary_hf_config_heads(const rotary_hf_config *config);
ROTARY_API size_t rotary_hf_config_kv_heads(const rotary_hf_config *config);
/* max_position_embeddings; 0 when absent or NULL. */
ROTARY_API size_t rotary_hf_config_max_positions(const rotary_hf_config *config);
/* num_hidden_layers (or the length of layer_types; Gemma 3: default 26); 0 when absent or NULL. */
ROTARY_API size_t rotary_hf_config_layers(const rotary_hf_config *config);
/* Ropes per layer type. 1 for a model whose layers share one rope; Gemma 3 (rope_local_base_freq) and configs with
 * per-layer-type rope_parameters (transformers 5) have one per layer type that has a rope, rope 0 being the
 * full-attention one (what rotary_hf_config_rope returns). 0 for NULL. */
ROTARY_API size_t rotary_hf_config_rope_count(const rotary_hf_config *config);
/* Rope `index` (< rotary_hf_config_rope_count), ready for rotary_rope_create; NULL for NULL or beyond. */
ROTARY_API const rotary_config *rotary_hf_config_rope_at(const rotary_hf_config *config, size_t index);
/* The layer type of rope `index` ("full_attention", "sliding_attention", ...; "default" for a single rope);
 * "" for NULL or beyond. */
ROTARY_API const char *rotary_hf_config_rope_name(const rotary_hf_config *config, size_t index);
/* The rope index of layer `layer` (from layer_types, or Gemma 3's sliding-window pattern). Errors: NULL_POINTER
 * (config or index), LAYER (layer >= rotary_hf_config_layers, the layer's type has no rope (its rope_parameters
 * entry is null), or the layers are unknown and there is more than one rope); *index is written only on success.
 * A single-rope config gives 0 for every layer below rotary_hf_config_layers, or for every layer when that is 0.
 * A layer type listed in layer_types without any entry in per-layer-type rope_parameters is refused when the
 * config is parsed (CONFIG, naming the field), not here. */
ROTARY_API rotary_status rotary_hf_config_layer_rope(const rotary_hf_config *config, size_t layer, size_t *index);
/* The scaling family's Hugging Face name of rope 0 ("default", "llama3", ...; "default" for rope_type "mrope") and
 * the top level's model_type ("" when absent). */
ROTARY_API const char *rotary_hf_config_rope_type(const rotary_hf_config *config);
ROTARY_API const char *rotary_hf_config_model_type(const rotary_hf_config *config);

/* CPU features found at run time, space-separated ("sse2 avx avx2 fma f16c ..."). Static string. */
ROTARY_API const char *rotary_cpu_features(void);

/* Name of the kernel a call of this dtype and pairing runs, e.g. "rotary_f32_rotate_half__scalar";
 * "unknown" for a bad dtype or pairing. Static string. */
ROTARY_API const char *rotary_kernel_name(rotary_dtype dtype, rotary_pairing pairing);

#ifdef __cplusplus
}
#endif

#endif /* ROTARY_H */
