"""bench_torch_overhead.py: what the torch op adds over the bare librotary call, at Llama decode size.

Times, in one run and interleaved round by round, (1) rotary_apply through ctypes with a descriptor built once
(the bare C call), (2) RoPE.apply on NumPy arrays, (3) RoPE.apply on torch tensors (the custom op, eager) and
(4) torch.ops.rotary.rope called directly, out of place and in place, at 1 and 2 librotary threads
(rotary.set_num_threads; torch itself at 1 thread). Prints the median microseconds per call of each and the
minimum over rounds (closer to a quiet machine) and the overhead of each path over the C call of the same kind
(out of place or in place), as the median of the differences between back-to-back timings.

    ROTARY_LIBRARY_DIR=build/src PYTHONPATH=python python scripts/bench_torch_overhead.py [--dtype bf16,f32]
        [--batch 64] [--tokens 1] [--heads 32] [--kv-heads 8] [--head-dim 128] [--rounds 100] [--block 10]
"""
import argparse
import ctypes
import statistics
import time

import numpy as np
import torch

import rotary
from rotary import _core, _lib

DTYPES = {"f32": (torch.float32, _lib.F32), "bf16": (torch.bfloat16, _lib.BF16), "f16": (torch.float16, _lib.F16)}


def c_call(rope, q, q_out, k, k_out, ids):
    """A closure that makes the bare rotary_apply call with a descriptor filled once (bshd tensors)."""
    d = _lib.ApplyDesc()
    _lib.lib.rotary_apply_desc_init(ctypes.byref(d))
    b, s = q.shape[0], q.shape[1]
    d.batch, d.seq_len = b, s
    d.positions.mode = _lib.POS_IDS_I64
    d.positions.ids = ids.data_ptr()
    code = {torch.float32: _lib.F32, torch.bfloat16: _lib.BF16, torch.float16: _lib.F16}[q.dtype]
    for t, x, o in ((d.q, q, q_out), (d.k, k, k_out)):
        t.in_, t.out, t.dtype, t.n_heads = x.data_ptr(), o.data_ptr(), code, x.shape[2]
        t.stride_batch, t.stride_seq, t.stride_head = x.stride()[:3]
        t.out_stride_batch, t.out_stride_seq, t.out_stride_head = o.stride()[:3]
    fn, ctx, handle, ref = _lib.lib.rotary_apply, _core._context(), rope._handle, ctypes.byref(d)

    def call():
        st = fn(ctx, handle, ref)
        if st:
            raise RuntimeError(_lib.status_string(st))

    def call_fresh():
        """The same call into outputs allocated for it, as an out-of-place op must (pointers set in place)."""
        qo, ko = torch.empty_like(q_out), torch.empty_like(k_out)
        d.q.out, d.k.out = qo.data_ptr(), ko.data_ptr()
        call()
        return qo, ko
    return call, call_fresh


def variants(rope, dtype, args):
    torch.manual_seed(0)
    q = torch.randn(args.batch, args.tokens, args.heads, args.head_dim).to(dtype)
    k = torch.randn(args.batch, args.tokens, args.kv_heads, args.head_dim).to(dtype)
    ids = torch.randint(0, rope.max_positions, (args.batch, args.tokens))
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    qn, kn, idn = q.float().numpy(), k.float().numpy(), ids.numpy()  # NumPy has no bf16: f32 arrays
    oop = c_call(rope, q, q_out, k, k_out, ids)[0]
    fresh = c_call(rope, q, q_out, k, k_out, ids)[1]  # its own descriptor: it points at outputs that it frees
    v = {
        "C call (out of place)": oop,
        "C call (in place)": c_call(rope, q_out, q_out, k_out, k_out, ids)[0],
        "new outputs + C call": fresh,
        "numpy apply (f32)": lambda: rope.apply(qn, kn, positions=idn),
        "torch apply": lambda: rope.apply(q, k, positions=ids),
        "torch apply in place": lambda: rope.apply(q_out, k_out, positions=ids, inplace=True),
    }
    import rotary.ops
    if hasattr(rotary.ops, "rope_tensor"):
        rt = rotary.ops.rope_tensor(rope)
        op, op_ = torch.ops.rotary.rope.default, torch.ops.rotary.rope_.default
        v["torch.ops.rotary.rope"] = lambda: op(q, k, ids, 0, rt, "bshd", False)
        v["torch.ops.rotary.rope_"] = lambda: op_(q_out, k_out, ids, 0, rt, "bshd", False)
    return v


def measure(fns, rounds, block):
    """Per function: the median microseconds per call over `rounds` blocks of `block` calls, and the median over
    rounds of its difference from the C call of the same kind timed just before it (less sensitive to a busy
    machine than the difference of two medians)."""
    times = {name: [] for name in fns}
    diffs = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(block):
            fn()  # warm up
    names = [n for n in fns if not n.startswith("C call")]
    for _ in range(rounds):
        for name in names:
            ref = _reference(name)
            for n in (ref, name):
                fn = fns[n]
                t = time.perf_counter_ns()
                for _ in range(block):
                    fn()
                times[n].append((time.perf_counter_ns() - t) / block / 1e3)
            diffs[name].append(times[name][-1] - times[ref][-1])
    return {n: (statistics.median(times[n]), min(times[n]), statistics.median(diffs[n]) if diffs[n] else None)
            for n in fns}


def _reference(name):
    return "C call (in place)" if "in place" in name or name.endswith("rope_") else "C call (out of place)"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="bf16,f32")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", type=int, default=1)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--block", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    rope = rotary.RoPE(args.head_dim, max_positions=8192)
    print(f"rotary {rotary.version()}, torch {torch.__version__}, numpy {np.__version__}; q ({args.batch}, "
          f"{args.tokens}, {args.heads}, {args.head_dim}), k {args.kv_heads} heads, int64 position ids; median us "
          f"per call over {args.rounds} rounds of {args.block}")
    for dname in args.dtype.split(","):
        dtype = DTYPES[dname][0]
        for n in (int(t) for t in args.threads.split(",")):
            rotary.set_num_threads(n)
            res = measure(variants(rope, dtype, args), args.rounds, args.block)
            print(f"\n{dname}, {n} thread(s)                median    minimum   overhead over the C call (paired median)")
            for name, (us, low, over) in res.items():
                extra = "" if over is None else f"   {over:+7.1f} us  (against {_reference(name)})"
                print(f"  {name:28s} {us:8.1f} us {low:7.1f} us{extra}")


if __name__ == "__main__":
    main()
