#!/usr/bin/env python3
"""bench_attention_sdpa.py: decode attention (one query token per sequence) timed on the CPU: PyTorch's
torch.nn.functional.scaled_dot_product_attention against librotary's rotary.attention on the same cache memory,
issue 14's shapes (llama3-8b heads: 32 q heads, 8 kv heads, head_dim 128; 64 sequences x 4096 cached tokens and
1 x 32768), at 1 and 2 threads. Prints a markdown table: median ms per call and the cache's K+V bytes over that
time (GB/s).

    PYTHONPATH=python ROTARY_LIBRARY_DIR=build/src python scripts/bench_attention_sdpa.py [--threads 1,2]
        [--shapes 64x4096,1x32768] [--reps 5] [--dtypes bf16,fp32] [--quick]

Rows:
  sdpa gqa      F.scaled_dot_product_attention(q [B, 32, 1, D], K, V [B, 8, L, D], enable_gqa=True)
  sdpa grouped  the same attention with q viewed as [B, 8, 4, D] (the 4 query heads of a kv head as 4 query rows;
                exact for one token with no mask): SDPA's fastest form for GQA decode, no copy
  ours          rotary.attention over the same memory as an HND cache ([B, kv_heads, L, D], lengths L), rope_mode
                "none"; "ours qk" rotates q and every key on the fly (rope_mode "qk"); fp8 (e4m3 bytes, ours only:
                SDPA takes no fp8)
The bf16 cache of 64 x 4096 is 1 GiB (K and V), fp32 2 GiB: one dtype's buffers exist at a time. SDPA runs on torch's
threads (torch.set_num_threads), ours on librotary's (rotary.set_num_threads). The rows alternate within each
timing round (median per row). Every row is checked against the grouped SDPA result first (max |diff| printed
under the table).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import rotary

HQ, HKV, D = 32, 8, 128


def fill_(t, gen, fp8=False):
    """Random N(0, 1) values (fp8: e4m3 bytes of them) written in slices, so that no full-size float32 temporary
    is made."""
    flat = t.view(t.shape[0], -1)
    for i in range(flat.shape[0]):
        x = torch.randn(flat.shape[1], generator=gen)
        flat[i] = x.to(torch.float8_e4m3fn).view(torch.uint8) if fp8 else x.to(t.dtype)


def run_shape(batch, length, dtypes, threads, reps, rope, results, diffs):
    gen = torch.Generator().manual_seed(0)
    q32 = torch.randn(batch, 1, HQ, D, generator=gen)
    lengths = torch.full((batch,), length, dtype=torch.int64)
    for dname in dtypes:
        dt = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp8": torch.uint8}[dname]
        k = torch.empty(batch, HKV, length, D, dtype=dt)
        v = torch.empty_like(k)
        fill_(k, gen, dname == "fp8")
        fill_(v, gen, dname == "fp8")
        gbytes = 2 * k.numel() * k.element_size() / 1e9
        qd = q32.to(torch.bfloat16 if dname == "fp8" else dt)
        cache = rotary.KVCache(k, v, layout="HND", dtype="fp8_e4m3" if dname == "fp8" else "auto")
        rows = []
        if dname != "fp8":
            qs = qd.transpose(1, 2)  # [B, HQ, 1, D] view
            qg = qd.view(batch, HKV, HQ // HKV, D)  # [B, HKV, 4, D]: q heads of a kv head as query rows
            rows.append(("sdpa gqa", "torch",
                         lambda: F.scaled_dot_product_attention(qs, k, v, enable_gqa=True)))
            rows.append(("sdpa grouped", "torch", lambda: F.scaled_dot_product_attention(qg, k, v)))
            want = F.scaled_dot_product_attention(qg, k, v).float().view(batch, 1, HQ, D)
        else:
            kd = (k.view(torch.float8_e4m3fn).to(torch.bfloat16))
            vd = (v.view(torch.float8_e4m3fn).to(torch.bfloat16))
            want = F.scaled_dot_product_attention(qd.view(batch, HKV, HQ // HKV, D), kd, vd).float().view(
                batch, 1, HQ, D)
            del kd, vd
        rows.append(("ours", "rotary", lambda: rotary.attention(rope, qd, cache, lengths=lengths)))
        rows.append(("ours qk", "rotary", lambda: rotary.attention(rope, qd, cache, lengths=lengths,
                                                                   rope_mode="qk")))
        for name, _, fn in rows:
            if name != "ours qk":
                got = fn()
                got = got.float().reshape(batch, 1, HQ, D) if name != "sdpa gqa" else \
                    got.float().transpose(1, 2).reshape(batch, 1, HQ, D)
                diffs.append((f"{batch}x{length} {dname} {name}", float((got - want).abs().max())))
        for n in threads:
            torch.set_num_threads(n)
            rotary.set_num_threads(n)
            for _, _, fn in rows:
                fn()  # warm up (first touch of the output, plans, thread pools)
            times = {name: [] for name, _, _ in rows}
            for rep in range(reps):  # the rows alternate within each round, so that load from elsewhere hits all
                for name, _, fn in rows:
                    if name == "sdpa gqa" and rep >= max(2, reps // 2):
                        continue  # the slow path: fewer repetitions
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            for name, _, _ in rows:
                ms = statistics.median(times[name]) * 1e3
                results.append((f"{batch} x {length}", dname, n, name, ms, gbytes / (ms / 1e3)))
                print(f"  {batch}x{length} {dname} threads {n} {name}: {ms:.2f} ms", file=sys.stderr, flush=True)
        del k, v, cache, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--shapes", default="64x4096,1x32768")
    ap.add_argument("--dtypes", default="bf16,fp32,fp8")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small shapes (8x1024, 1x4096), 3 reps: a smoke run")
    a = ap.parse_args()
    if a.quick:
        a.shapes, a.reps = "8x1024,1x4096", 3
    threads = [int(x) for x in a.threads.split(",")]
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    dtypes = a.dtypes.split(",")
    rope = rotary.RoPE(D, base=500000.0, max_positions=max(L for _, L in shapes))
    print(f"torch {torch.__version__}, rotary {rotary.version()}, {rotary.info()}", file=sys.stderr)
    results, diffs = [], []
    for batch, length in shapes:
        run_shape(batch, length, dtypes, threads, a.reps, rope, results, diffs)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nDecode attention, one query token, {HQ} q heads / {HKV} kv heads, head_dim {D}; median of {a.reps} "
          f"calls (sdpa gqa: {max(2, a.reps // 2)}), the rows alternating in each round; GB/s = K+V cache bytes / "
          f"time; load average at the end {load} ({os.cpu_count()} CPUs)\n")
    print("| shape | cache | threads | implementation | ms | cache GB/s |")
    print("|---|---|---:|---|---:|---:|")
    for shape, dname, n, name, ms, gbs in results:
        print(f"| {shape} | {dname} | {n} | {name} | {ms:.2f} | {gbs:.2f} |")
    print("\nmax |result - sdpa grouped| (fp8: against SDPA over the decoded bf16 cache):")
    for what, d in diffs:
        print(f"  {what}: {d:.3g}")


if __name__ == "__main__":
    main()
