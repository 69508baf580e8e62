/* bench_torch.c: `rotary bench --torch`: real PyTorch eager running Hugging Face's RoPE recipe, timed call by call
 * in a Python child process that the bench drives over a pipe, so that it takes its turn in the rounds. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* The child: builds q, k and the cos/sin caches like the C rows (same shape, dtype, layout, positions, threads),
 * prints "ready", then answers each "run" line with the milliseconds of one call, timed around the call alone.
 * The call is what Hugging Face's eager attention does per layer: gather cos/sin rows by position ids, then
 * apply_rotary_pos_emb's q * cos + rotate_half(q) * sin for q and k (new tensors, as HF returns; partial rotary
 * splits and concatenates as HF's Phi does; interleaved pairing uses GPT-J's rotate_every_two). bshd q and k are
 * HF's view(b, s, h, d).transpose(1, 2). The frequencies are plain base^(-2i/d): the values do not change the time. */
static const char script[] =
    "import sys, time\n"
    "try:\n"
    "    import torch\n"
    "except Exception as e:\n"
    "    print('error: cannot import torch: %s' % e, flush=True)\n"
    "    sys.exit(1)\n"
    "b, s, h, kh, d, r, table, threads, decode = map(int, sys.argv[1:10])\n"
    "dtype, pairing, layout, base = sys.argv[10], sys.argv[11], sys.argv[12], float(sys.argv[13])\n"
    "torch.set_num_threads(threads)\n"
    "dt = {'f32': torch.float32, 'f16': torch.float16, 'bf16': torch.bfloat16}[dtype]\n"
    "def heads(n):\n"
    "    if layout == 'bshd':\n"
    "        return torch.rand(b, s, n, d).to(dt).transpose(1, 2)\n"
    "    return torch.rand(b, n, s, d).to(dt)\n"
    "q, k = heads(h), heads(kh)\n"
    "inv = 1.0 / base ** (torch.arange(0, r, 2, dtype=torch.float64) / r)\n"
    "freqs = torch.outer(torch.arange(table, dtype=torch.float64), inv)\n"
    "emb = torch.cat((freqs, freqs), -1) if pairing == 'half' else freqs.repeat_interleave(2, -1)\n"
    "cos_cached, sin_cached = emb.cos().to(dt), emb.sin().to(dt)\n"
    "if decode:\n"
    "    pos = torch.randint(0, table, (b, s), generator=torch.Generator().manual_seed(1))\n"
    "else:\n"
    "    pos = torch.arange(s).expand(b, s)\n"
    "def rotate_half(x):\n"
    "    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]\n"
    "    return torch.cat((-x2, x1), dim=-1)\n"
    "def rotate_every_two(x):\n"
    "    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)\n"
    "rot = rotate_half if pairing == 'half' else rotate_every_two\n"
    "def apply(x, cos, sin):\n"
    "    if r == d:\n"
    "        return (x * cos) + (rot(x) * sin)\n"
    "    x_rot, x_pass = x[..., :r], x[..., r:]\n"
    "    return torch.cat(((x_rot * cos) + (rot(x_rot) * sin), x_pass), dim=-1)\n"
    "def step():\n"
    "    cos, sin = cos_cached[pos].unsqueeze(1), sin_cached[pos].unsqueeze(1)\n"
    "    return apply(q, cos, sin), apply(k, cos, sin)\n"
    "with torch.inference_mode():\n"
    "    step()\n"
    "    print('ready', flush=True)\n"
    "    for line in sys.stdin:\n"
    "        if line.strip() != 'run':\n"
    "            break\n"
    "        t0 = time.perf_counter()\n"
    "        out = step()\n"
    "        t1 = time.perf_counter()\n"
    "        del out\n"
    "        print(repr((t1 - t0) * 1e3), flush=True)\n";

struct bench_torch {
  pid_t pid;
  int to_child;    /* its stdin */
  FILE *from_child; /* its stdout */
};

/* Reads one line from the child; 0 at end of file. */
static int read_line(bench_torch *t, char *line, size_t size) {
  if (!fgets(line, (int)size, t->from_child)) return 0;
  line[strcspn(line, "\n")] = '\0';
  return 1;
}

static int spawn(const bench_options *o, bench_torch *t, int in[2], int out[2]) {
  char nums[9][24], base[40];
  const size_t v[9] = {o->batch, o->tokens, o->heads, o->kv_heads, o->head_dim, o->rotary_dim, o->table,
                       o->threads, o->decode};
  for (int i = 0; i < 9; i++) snprintf(nums[i], sizeof nums[i], "%zu", v[i]);
  snprintf(base, sizeof base, "%.17g", o->base);
  char *argv[] = {(char *)o->torch, "-c", (char *)script, nums[0], nums[1], nums[2], nums[3], nums[4], nums[5],
                  nums[6], nums[7], nums[8], (char *)bench_dtype_name(o->dtype),
                  o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved",
                  o->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd", base, NULL};
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa)) return ENOMEM;
  int err = posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  if (!err) err = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (!err) err = posix_spawnp(&t->pid, o->torch, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return err;
}

/* Pipes whose every end closes on exec (the child's ends are dup2'ed onto its stdin and stdout). */
static int make_pipes(int in[2], int out[2]) {
  if (pipe(in)) return errno;
  if (pipe(out)) {
    const int err = errno;
    close(in[0]);
    close(in[1]);
    return err;
  }
  const int fds[4] = {in[0], in[1], out[0], out[1]};
  for (int i = 0; i < 4; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
  return 0;
}

static int fail(const bench_options *o, const char *what, const char *why) {
  fprintf(stderr, "rotary bench: --torch: %s '%s': %s\n", what, o->torch, why);
  return 0;
}

int bench_torch_start(const bench_options *o, bench_torch **out_t) {
  *out_t = NULL;
  signal(SIGPIPE, SIG_IGN); /* a child that died is reported by write, not by a signal that kills the bench */
  bench_torch *t = calloc(1, sizeof *t);
  int in[2], out[2], err;
  if (!t) return fail(o, "cannot start", strerror(ENOMEM));
  if ((err = make_pipes(in, out)) != 0) {
    free(t);
    return fail(o, "cannot start", strerror(err));
  }
  err = spawn(o, t, in, out);
  close(in[0]);
  close(out[1]);
  t->to_child = in[1];
  t->from_child = fdopen(out[0], "r");
  if (err || !t->from_child) {
    if (t->from_child) fclose(t->from_child);
    else close(out[0]);
    close(in[1]);
    if (!err) waitpid(t->pid, NULL, 0);
    free(t);
    return fail(o, "cannot run", strerror(err ? err : ENOMEM));
  }
  char line[512] = "", why[512];
  const int got = read_line(t, line, sizeof line);
  if (!got || strcmp(line, "ready")) {
    snprintf(why, sizeof why, "%s", got ? line : "it stopped during setup");
    bench_torch_stop(t);
    return fail(o, "no torch row from", why);
  }
  *out_t = t;
  return 1;
}

rotary_status bench_torch_time(bench_torch *t, double *ms) {
  char line[128];
  if (write(t->to_child, "run\n", 4) != 4 || !read_line(t, line, sizeof line)) return ROTARY_ERR_INVALID_ARGUMENT;
  char *end;
  *ms = strtod(line, &end);
  return end != line && *end == '\0' && *ms >= 0 ? ROTARY_OK : ROTARY_ERR_INVALID_ARGUMENT;
}

void bench_torch_stop(bench_torch *t) {
  if (!t) return;
  close(t->to_child); /* end of its input: it leaves the loop */
  fclose(t->from_child);
  waitpid(t->pid, NULL, 0);
  free(t);
}

static rotary_status torch_run(bench_setup *s, size_t arg) {
  (void)arg;
  double ms;
  return bench_torch_time(s->torch, &ms);
}

static rotary_status torch_timed(bench_setup *s, double *ms) {
  const rotary_status st = bench_torch_time(s->torch, ms);
  if (st != ROTARY_OK) fprintf(stderr, "rotary bench: --torch: the Python child stopped answering\n");
  return st == ROTARY_OK ? ROTARY_OK : ROTARY_ERR_INVALID_ARGUMENT; /* said why */
}

/* What HF's recipe moves, as the C model (a) counts it, for the passes and MiB columns. */
static double torch_bytes(const bench_setup *s) { return bench_impl_composed.bytes(s); }

const bench_impl bench_impl_torch = {"torch_eager", "torch eager HF recipe (real)", torch_run, torch_bytes, 0,
                                     torch_timed, 0};
