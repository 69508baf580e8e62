#!/usr/bin/env python3
"""bench_hf_attention.py: forward time of one Hugging Face LlamaAttention layer on the CPU, with HF's own RoPE and
with rotary.hf.patch, at the article's LLaMA-7B shape (hidden 4096, 32 heads, seq 2048, batch 1, fp32, random
weights). Also times the RoPE step alone (HF's apply_rotary_pos_emb against one rotary call for q and k).

    python scripts/bench_hf_attention.py [--seq 2048] [--hidden 4096] [--heads 32] [--reps 7] [--threads N]

Rounds alternate between the two variants so that machine noise hits both; the medians are compared.
"""
import argparse
import statistics
import time

import torch
from transformers import LlamaConfig
from transformers.models.llama import modeling_llama

import rotary
import rotary.hf


def timed(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7, help="rounds (each runs both variants once)")
    ap.add_argument("--threads", type=int, default=0, help="torch and rotary threads (0: library defaults)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        rotary.set_num_threads(args.threads)

    cfg = LlamaConfig(hidden_size=args.hidden, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads or args.heads, intermediate_size=16,  # the MLP is not timed
                      num_hidden_layers=1, vocab_size=128, max_position_embeddings=max(4096, args.seq))
    cfg._attn_implementation = args.attn
    torch.manual_seed(0)
    model = modeling_llama.LlamaModel(cfg).eval()
    attn = model.layers[0].self_attn
    x = torch.randn(args.batch, args.seq, args.hidden)
    pos = torch.arange(args.seq).unsqueeze(0).expand(args.batch, -1)

    with torch.no_grad():
        hf_pe = model.rotary_emb(x, pos)
        ref = attn(x, position_embeddings=hf_pe, attention_mask=None)[0]
        rotary.hf.patch(model)
        rot_pe = model.rotary_emb(x, pos)
        got = attn(x, position_embeddings=rot_pe, attention_mask=None)[0]
        diff = (got - ref).abs().max().item()

        runs = {"hf": [], "rotary": []}
        for _ in range(args.reps):
            for name, pe in (("hf", hf_pe), ("rotary", rot_pe)):
                t0 = time.perf_counter()
                attn(x, position_embeddings=pe, attention_mask=None)
                runs[name].append((time.perf_counter() - t0) * 1e3)

        # The RoPE step alone, on q and k as the attention layer holds them (transposed views of the projections).
        hd = args.hidden // args.heads
        kvh = args.kv_heads or args.heads
        q0 = torch.randn(args.batch, args.seq, args.heads, hd).transpose(1, 2)
        k0 = torch.randn(args.batch, args.seq, kvh, hd).transpose(1, 2)
        cos, sin = hf_pe
        original = getattr(modeling_llama.apply_rotary_pos_emb, "_rotary_original",
                           modeling_llama.apply_rotary_pos_emb)
        rope_runs = {"hf": [], "rotary": []}
        for _ in range(args.reps):
            rope_runs["hf"].append(timed(lambda: original(q0, k0, cos, sin), 5))
            rope_runs["rotary"].append(timed(lambda: rot_pe[0].apply(q0, k0), 5))

    med = {k: statistics.median(v) for k, v in runs.items()}
    rmed = {k: statistics.median(v) for k, v in rope_runs.items()}
    print(f"LlamaAttention forward, batch {args.batch}, seq {args.seq}, hidden {args.hidden}, heads {args.heads}, "
          f"kv heads {kvh}, fp32, attention {args.attn}, torch threads {torch.get_num_threads()}, "
          f"rotary threads {rotary.get_num_threads()}")
    print(f"max |patched - HF| of the layer output: {diff:.3g}")
    for name in ("hf", "rotary"):
        v = runs[name]
        print(f"  attention layer, {name:6s}: median {med[name]:9.2f} ms  (min {min(v):.2f}, max {max(v):.2f}, "
              f"{len(v)} runs)")
    saved = (med["hf"] - med["rotary"]) / med["hf"] * 100
    print(f"  attention layer time saved by the patch: {saved:.1f}% (the article claims 28% on Ascend)")
    for name in ("hf", "rotary"):
        print(f"  RoPE step alone (q and k), {name:6s}: median {rmed[name]:8.2f} ms")
    print(f"  RoPE step share of HF's attention layer: {rmed['hf'] / med['hf'] * 100:.1f}%")


if __name__ == "__main__":
    main()
