#!/usr/bin/env python3
"""gpu_table.py: issue 15's GPU table in one run: `rotary bench --cuda` (ours, its streaming pass, a copy, the
accuracy row), then, in this process, the peers on the same shapes with the same method (Hugging Face eager, torch.compile
of it, Liger's Triton kernel when importable, and a streaming pass in Triton), then one combined markdown table.

Timing (as bench_cuda.c): torch.cuda.Event around each call, L2 flushed before every rep by writing a 2 x L2 buffer
(not timed), the columns alternating in one loop, median of --reps; decode 64 x 1: per call in a CUDA graph of 100
calls. Any peer that fails prints n/a and the script goes on.

Usage: python3 bench/gpu_table.py --rotary build/tools/rotary [--rows quick|all] [--reps N] [--out table.md]
       [--json all.json] [--rotary-json FILE (reuse a bench --cuda --json result instead of running it)]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HEAD_DIM = 128
BASE = 10000.0
GRAPH_CALLS = 100
GRAPH_REPLAYS = 10  # replays of the 100-call graph between two events
GRAPH_ROUNDS = 21
DECODE_POSITIONS = 32768
# id, label, dtype, batch, seq_len, q heads, k heads, decode (as tools/bench_cuda.c)
SHAPES = [
    ("bf16", "B1 S2048 32q/32k D128 bf16", "bfloat16", 1, 2048, 32, 32, False),
    ("f16", "same, f16", "float16", 1, 2048, 32, 32, False),
    ("f32", "same, f32", "float32", 1, 2048, 32, 32, False),
    ("b8", "B8 S2048 32q/8k bf16", "bfloat16", 8, 2048, 32, 8, False),
    ("s32k", "B1 S32768 32q/8k bf16", "bfloat16", 1, 32768, 32, 8, False),
    ("decode", "decode 64 x 1, 32q/8k bf16, CUDA graph", "bfloat16", 64, 1, 32, 8, True),
]
QUICK = ("bf16", "decode")
PEERS = [("limit_torch", "limit (Triton pass)"), ("liger", "Liger (Triton)"),
         ("compile", "torch.compile(HF)"), ("eager", "HF eager")]
ACC_OFFSETS = (0, 32768, 131072, 1000000)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_rotary(args):
    """The C bench's JSON document (None when it did not run), its exit status and its stdout."""
    if args.rotary_json:
        with open(args.rotary_json) as f:
            return json.load(f), 0, ""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [args.rotary, "bench", "--cuda", "--json", path, "--reps", str(args.reps), "--rows", args.rows]
    log("running: " + " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        log(p.stdout + p.stderr)
        doc = None
        if os.path.getsize(path) > 0:
            with open(path) as f:
                doc = json.load(f)
        return doc, p.returncode, p.stdout
    except Exception as e:  # a missing binary, a timeout, bad JSON: ours is n/a
        log(f"rotary bench --cuda failed: {e!r}")
        return None, -1, ""
    finally:
        os.unlink(path)


# ---- the peers (torch is imported only here, so that the table code runs without it) -------------------------

def hf_pieces(torch, dev):
    """(rotary_emb(x, position_ids) -> cos, sin in x's dtype; apply(q, k, cos, sin) -> (q, k); where they came from)."""
    try:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
        cfg = LlamaConfig(hidden_size=32 * HEAD_DIM, num_attention_heads=32, num_key_value_heads=8,
                          head_dim=HEAD_DIM, max_position_embeddings=1 << 20)
        try:
            emb = LlamaRotaryEmbedding(cfg, device=dev)
        except TypeError:  # transformers 5.2x: no device argument
            emb = LlamaRotaryEmbedding(cfg).to(dev)
        want = 1.0 / (BASE ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64, device=dev) / HEAD_DIM))
        if not torch.allclose(emb.inv_freq.double(), want, rtol=1e-6, atol=0):
            raise RuntimeError("LlamaRotaryEmbedding's inv_freq is not base 10000's")
        return emb, apply_rotary_pos_emb, "transformers " + __import__("transformers").__version__
    except Exception as e:
        log(f"transformers' Llama rope unusable ({e!r}): using a copy of its recipe")
        FALLBACKS.add("HF eager and compile ran a copy of HF's recipe (transformers' Llama rope did not load)")

    inv_freq = 1.0 / (BASE ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.int64).to(dev, torch.float) / HEAD_DIM))

    def emb(x, position_ids):
        freqs = (inv_freq[None, :, None].float() @ position_ids[:, None, :].float()).transpose(1, 2)
        e = torch.cat((freqs, freqs), dim=-1)
        return e.cos().to(x.dtype), e.sin().to(x.dtype)

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def apply(q, k, cos, sin):
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    return emb, apply, "a copy of the HF recipe"


def stream_pass(torch, buf):
    """One in-place read-modify-write of every byte of buf (x ^ 0 on int32 words) in Triton; torch's xor if not."""
    words = buf.view(torch.int32)
    try:
        import triton
        kernel = _triton_rmw(triton)
        n, block = words.numel(), 4096
        grid = (triton.cdiv(n, block),)

        def launch():
            kernel[grid](words, n, 0, BLOCK=block, num_warps=8)

        launch()  # compiles now: a failure falls back below
        return launch
    except Exception as e:
        log(f"Triton streaming pass unusable ({e!r}): torch's bitwise_xor_ instead")
        FALLBACKS.add("the peers' limit is torch's bitwise_xor_, not the Triton pass")
        return lambda: words.bitwise_xor_(0)


_RMW = None
FALLBACKS = set()  # notes for the table: what ran in place of what was meant


def _triton_rmw(triton):
    global _RMW
    if _RMW is None:
        import triton.language as tl

        @triton.jit(do_not_specialize=["key"])
        def rmw(p, n, key, BLOCK: tl.constexpr):
            offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
            m = offs < n
            tl.store(p + offs, tl.load(p + offs, mask=m) ^ key, mask=m)

        _RMW = rmw
    return _RMW


class Flush:
    """Writes 2 x L2 bytes: what the next timed call reads comes from device memory."""

    def __init__(self, torch):
        props = torch.cuda.get_device_properties(0)
        l2 = getattr(props, "L2_cache_size", 0) or (64 << 20)
        self.buf = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
        self.n = 0

    def __call__(self):
        self.n = (self.n + 1) % 251
        self.buf.fill_(self.n)


def time_flushed(torch, fns, reps, flush):
    """Median us of each callable, L2 flushed before each call, the callables alternating within every rep."""
    for f in fns.values():
        for _ in range(3):
            f()
    torch.cuda.synchronize()
    ev = {k: [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
          for k in fns}
    for r in range(reps):
        for k, f in fns.items():
            flush()
            ev[k][r][0].record()
            f()
            ev[k][r][1].record()
    torch.cuda.synchronize()
    return {k: statistics.median(s.elapsed_time(e) * 1e3 for s, e in ev[k]) for k in fns}


def time_graphs(torch, fns):
    """Per call, us: each callable captured GRAPH_CALLS times in one CUDA graph, GRAPH_REPLAYS replays per round."""
    graphs = {}
    for k, f in fns.items():
        try:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    f()
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(GRAPH_CALLS):
                    f()
            g.replay()
            graphs[k] = g
        except Exception as e:
            log(f"decode, {k}: graph capture failed: {e!r}")
    torch.cuda.synchronize()
    t = {k: [] for k in graphs}
    for _ in range(GRAPH_ROUNDS):
        for k, g in graphs.items():
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(GRAPH_REPLAYS):
                g.replay()
            e.record()
            e.synchronize()
            t[k].append(s.elapsed_time(e) * 1e3 / (GRAPH_REPLAYS * GRAPH_CALLS))
    return {k: statistics.median(v) for k, v in t.items()}


def peer_fns(torch, ctx, q, k, cos, sin, buf):
    """The callables of one shape's columns, each returning the rotated (q, k) as [batch, heads, seq, dim] views."""
    emb, apply, compiled, liger = ctx["emb"], ctx["apply"], ctx["compiled"], ctx["liger"]
    qh, kh = q.transpose(1, 2), k.transpose(1, 2)  # HF's attention layout, a view of BSHD rows as in the model
    fns = {"limit_torch": stream_pass(torch, buf), "eager": lambda: apply(qh, kh, cos, sin)}
    if liger is not None:
        fns["liger"] = lambda: liger.apply(qh, kh, cos, sin)[:2]
    if compiled is not None:
        fns["compile"] = lambda: compiled(qh, kh, cos, sin)
    return fns


def check_peers(torch, ctx, sid, make):
    """Each rope column once on a fresh copy, against eager HF: the largest abs difference (a layout slip shows)."""
    diffs = {}
    qk, q, k, cos, sin = make()
    ref = [t.float() for t in ctx["apply"](q.transpose(1, 2), k.transpose(1, 2), cos, sin)]
    for name in ("liger", "compile"):
        try:
            qk2, q2, k2, _, _ = make(qk)
            out = peer_fns(torch, ctx, q2, k2, cos, sin, qk2)[name]()
            diffs[name] = max(float((o.float() - r).abs().max()) for o, r in zip(out[:2], ref))
        except KeyError:
            pass
        except Exception as e:
            log(f"{sid}, {name}: check failed: {e!r}")
    return diffs


def run_peers(args, ids):
    """{shape id: {column: us}}, the peers' check differences, the torch accuracy row and a device line."""
    try:
        import torch
    except Exception as e:
        log(f"no torch ({e!r}): the peers are n/a")
        return {}, {}, {}, "no torch"
    if not torch.cuda.is_available():
        log("torch sees no CUDA device: the peers are n/a")
        return {}, {}, {}, "no CUDA device for torch"
    dev = torch.device("cuda")
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    device = f"{props.name}, torch {torch.__version__}"
    emb, apply, source = hf_pieces(torch, dev)
    device += f", HF rope: {source}"
    ctx = {"emb": emb, "apply": apply, "compiled": None, "liger": None}
    if not args.no_compile:
        try:
            for key in ("cache_size_limit", "recompile_limit"):
                if hasattr(torch._dynamo.config, key):
                    setattr(torch._dynamo.config, key, 64)
            ctx["compiled"] = torch.compile(apply, dynamic=False)
        except Exception as e:
            log(f"torch.compile unusable: {e!r}")
    try:
        from liger_kernel.ops.rope import LigerRopeFunction
        ctx["liger"] = LigerRopeFunction
        import liger_kernel
        device += f", Liger {getattr(liger_kernel, '__version__', '?')}"
    except Exception as e:
        log(f"Liger not importable ({e!r}): n/a")
    flush = Flush(torch)
    times, diffs = {}, {}
    for sid, label, dt, batch, seq, heads, kv, decode in SHAPES:
        if sid not in ids:
            continue
        t0 = time.time()
        dtype = getattr(torch, dt)

        def make(src=None, batch=batch, seq=seq, heads=heads, kv=kv, decode=decode, dtype=dtype):
            nq = batch * seq * heads * HEAD_DIM
            qk = src.clone() if src is not None else torch.randn(nq + batch * seq * kv * HEAD_DIM, dtype=dtype,
                                                                  device=dev)
            q = qk[:nq].view(batch, seq, heads, HEAD_DIM)
            k = qk[nq:].view(batch, seq, kv, HEAD_DIM)
            g = torch.Generator(device="cpu").manual_seed(1)
            pos = (torch.randint(0, DECODE_POSITIONS, (batch, 1), generator=g) if decode
                   else torch.arange(seq).unsqueeze(0)).to(dev)
            cos, sin = emb(q.transpose(1, 2), pos)
            return qk, q, k, cos, sin

        try:
            with torch.no_grad():
                diffs[sid] = check_peers(torch, ctx, sid, make)
                qk, q, k, cos, sin = make()
                fns = {}
                for name, f in peer_fns(torch, ctx, q, k, cos, sin, qk).items():
                    try:  # a peer that fails on this shape is left out (n/a)
                        f()
                        torch.cuda.synchronize()
                        fns[name] = f
                    except Exception as e:
                        log(f"{sid}, {name}: {e!r}")
                times[sid] = time_graphs(torch, fns) if decode else time_flushed(torch, fns, args.reps, flush)
        except Exception:
            log(f"{sid}: the peers failed:\n{traceback.format_exc()}")
        log(f"{sid}: peers timed in {time.time() - t0:.1f} s")
    return times, diffs, torch_accuracy(torch, dev, emb, apply), device


def torch_accuracy(torch, dev, emb, apply):
    """Max abs error of HF's recipe on the GPU (fp32 cos/sin from fp32 angles) against fp64 angles, f32 inputs."""
    out = {}
    try:
        inv64 = 1.0 / (BASE ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64, device=dev) / HEAD_DIM))
        for off in ACC_OFFSETS:
            x = torch.randn(1, 64, 2048, HEAD_DIM, device=dev)
            pos = (off + torch.arange(2048, device=dev)).unsqueeze(0)
            cos, sin = emb(x, pos)
            y = apply(x, x, cos, sin)[0].double()
            ang = pos[0].double()[:, None] * inv64[None, :]
            c64, s64 = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)
            x64 = x.double()
            rot = torch.cat((-x64[..., HEAD_DIM // 2:], x64[..., : HEAD_DIM // 2]), -1)
            out[off] = float((y - (x64 * c64 + rot * s64)).abs().max())
    except Exception as e:
        log(f"torch accuracy failed: {e!r}")
    return out


# ---- the combined table ---------------------------------------------------------------------------------------

def us(x, limit=None):
    if x is None:
        return "n/a"
    text = f"{x:.3g} us"
    return f"{text} ({100.0 * limit / x:.0f}%)" if limit else text


def table(doc, rc, times, diffs, torch_acc, device, ids):
    rows = {r["id"]: r for r in (doc or {}).get("rows", [])}
    lines = [f"GPU: {(doc or {}).get('device', 'n/a (rotary bench --cuda did not run)')}",
             f"torch: {device}",
             "In place (HF eager and compile return new tensors), half pairing; % = the limit's time over the row's "
             "(ours against rotary's pass, the peers against the Triton pass); L2 flushed before every rep; decode: "
             f"per call in a CUDA graph of {GRAPH_CALLS} calls.", ""]
    head = ["shape", "limit (rotary pass)", "ours (table)", "ours (table-free)"] + [p[1] for p in PEERS]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sid, label, *_rest in SHAPES:
        if sid not in ids:
            continue
        r, t = rows.get(sid, {}), times.get(sid, {})
        decode = sid == "decode"
        lim, tlim = r.get("limit_us"), t.get("limit_torch")
        cells = [label, us(lim), us(r.get("ours_us"), None if decode else lim),
                 us(r.get("table_free_us"), None if decode else lim), us(tlim)]
        cells += [us(t.get(k), None if decode else tlim) for k, _ in PEERS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    acc = {a["offset"]: a for a in (doc or {}).get("accuracy", [])}
    lines += ["", "Accuracy, f32 inputs, max abs error against fp64 angles, 2048 positions from the offset:",
              "| offset | ours (table) | ours (table-free) | HF recipe fp32 (host) | HF recipe on the GPU (torch) |",
              "|---|---|---|---|---|"]
    for off in ACC_OFFSETS:
        a = acc.get(off, {})
        cells = [a.get("table"), a.get("table_free"), a.get("hf_fp32"), torch_acc.get(off)]
        lines.append(f"| {off} | " + " | ".join("n/a" if c is None else f"{c:.2g}" for c in cells) + " |")
    notes = []
    for sid in ids:
        r = rows.get(sid)
        if r:
            notes.append(f"{sid}: ours {r.get('ours_status')}, table-free {r.get('table_free_status')}; elements "
                         f"unlike the CPU library: table {r.get('mismatches_table')}, table-free "
                         f"{r.get('mismatches_table_free')}")
        if diffs.get(sid):
            notes.append(f"{sid}: peers' largest abs difference from HF eager: " +
                         ", ".join(f"{k} {v:.3g}" for k, v in diffs[sid].items()))
    notes += sorted(FALLBACKS)
    notes.append(f"rotary bench --cuda exit status: {rc}")
    return "\n".join(lines + [""] + notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rotary", default="build/tools/rotary", help="the rotary binary (a CUDA build)")
    ap.add_argument("--rotary-json", help="a `rotary bench --cuda --json` result to use instead of running it")
    ap.add_argument("--rows", choices=("quick", "all"), default="all")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    ids = [s[0] for s in SHAPES if args.rows == "all" or s[0] in QUICK]
    t0 = time.time()
    doc, rc, _ = run_rotary(args)
    log(f"rotary bench --cuda: {time.time() - t0:.1f} s, exit status {rc}")
    times, diffs, torch_acc, device = run_peers(args, ids)
    text = table(doc, rc, times, diffs, torch_acc, device, ids)
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rotary": doc, "rotary_exit": rc, "peers_us": times, "peer_diffs": diffs,
                       "torch_accuracy": {str(k): v for k, v in torch_acc.items()}, "torch": device}, f, indent=1)
    log(f"gpu_table.py: {time.time() - t0:.1f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
