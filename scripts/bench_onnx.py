#!/usr/bin/env python3
"""bench_onnx.py: rotary against ONNX Runtime's RotaryEmbedding on the CPU, at the article's shape (B=1, S=2048,
H=32, D=128, fp32; one tensor, as an ONNX node rotates one input).

    python scripts/bench_onnx.py [--seq 2048] [--heads 32] [--head-dim 128] [--reps 20] [--threads N]

Rows: ONNX Runtime opset-23 RotaryEmbedding (4-D input, position_ids), ONNX Runtime's com.microsoft
RotaryEmbedding contrib op (3-D input, position_ids), rotary.onnx.rotary_embedding (same inputs and semantics:
cos/sin rows gathered in NumPy, then ROTARY_POSITIONS_COS_SIN), and RoPE.apply with its own table (offset
positions) out of place and in place. Each row's output is checked against the opset-23 reference first.
"""
import argparse
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import rotary
import rotary.onnx


def session(model, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def opset23_model(b, h, s, d, max_pos):
    node = helper.make_node("RotaryEmbedding", ["X", "cos", "sin", "pos"], ["Y"])
    g = helper.make_graph([node], "rope23", [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [b, h, s, d]),
        helper.make_tensor_value_info("cos", TensorProto.FLOAT, [max_pos, d // 2]),
        helper.make_tensor_value_info("sin", TensorProto.FLOAT, [max_pos, d // 2]),
        helper.make_tensor_value_info("pos", TensorProto.INT64, [b, s])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [b, h, s, d])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


def contrib_model(b, h, s, d, max_pos):
    node = helper.make_node("RotaryEmbedding", ["X", "pos", "cos", "sin"], ["Y"], domain="com.microsoft",
                            num_heads=h)
    g = helper.make_graph([node], "rope_ms", [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [b, s, h * d]),
        helper.make_tensor_value_info("pos", TensorProto.INT64, [b, s]),
        helper.make_tensor_value_info("cos", TensorProto.FLOAT, [max_pos, d // 2]),
        helper.make_tensor_value_info("sin", TensorProto.FLOAT, [max_pos, d // 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [b, s, h * d])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20, help="rounds; each round runs every row once")
    ap.add_argument("--threads", type=int, default=0, help="threads for both (0: rotary's default = online CPUs)")
    args = ap.parse_args()
    b, h, s, d = args.batch, args.heads, args.seq, args.head_dim
    threads = args.threads or rotary.get_num_threads()
    rotary.set_num_threads(threads)
    max_pos = max(4096, s)

    rope = rotary.RoPE(d, max_positions=max_pos)
    cos, sin = rope.cos_sin(np.arange(max_pos))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, h, s, d), dtype=np.float32)  # ONNX 4-D: (batch, heads, seq, head_dim)
    x_bshd = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    x3 = x_bshd.reshape(b, s, h * d)
    pos = np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)).copy()

    s23 = session(opset23_model(b, h, s, d, max_pos), threads)
    feeds23 = {"X": x, "cos": cos, "sin": sin, "pos": pos}
    ref = s23.run(None, feeds23)[0]
    rows = {"onnxruntime RotaryEmbedding-23 (4-D)": lambda: s23.run(None, feeds23)[0]}
    try:
        sms = session(contrib_model(b, h, s, d, max_pos), threads)
        feeds_ms = {"X": x3, "pos": pos, "cos": cos, "sin": sin}
        rows["onnxruntime com.microsoft RotaryEmbedding (3-D)"] = \
            lambda: sms.run(None, feeds_ms)[0].reshape(b, s, h, d).transpose(0, 2, 1, 3)
    except Exception as e:  # pragma: no cover - an ORT build without contrib ops
        print(f"com.microsoft RotaryEmbedding unavailable: {e}")
    rows["rotary.onnx.rotary_embedding (4-D, same inputs)"] = \
        lambda: rotary.onnx.rotary_embedding(x, cos, sin, pos)
    rows["rotary RoPE.apply, table, out of place"] = lambda: rope.apply(x, positions=0, layout="bhsd")
    # ORT reuses its arena's memory for every run's output; NumPy maps fresh pages for each 32 MB result.
    out = np.empty_like(x)
    rows["rotary RoPE.apply, table, out= reused buffer"] = \
        lambda: rope.apply(x, positions=0, layout="bhsd", out=out)
    # The contrib op's 3-D input is (batch, seq, heads * dim) memory: the same rows on bshd data, token-major.
    out_bshd = np.empty_like(x_bshd)
    rows["rotary RoPE.apply bshd (3-D data), out= reused"] = \
        lambda: rope.apply(x_bshd, positions=0, out=out_bshd).transpose(0, 2, 1, 3)
    work = x.copy()
    rows["rotary RoPE.apply, table, in place"] = None  # checked separately: it rotates its buffer every run

    for name, fn in rows.items():
        if fn is not None:
            err = float(np.abs(fn() - ref).max())
            print(f"check {name}: max |diff| vs ORT opset 23 = {err:.3g}")
    check = rope.apply(x.copy(), positions=0, layout="bhsd", inplace=True)
    print(f"check rotary in place: max |diff| = {float(np.abs(check - ref).max()):.3g}")
    rows["rotary RoPE.apply, table, in place"] = lambda: rope.apply(work, positions=0, layout="bhsd", inplace=True)

    times = {k: [] for k in rows}
    for _ in range(3):
        for fn in rows.values():
            fn()
    for _ in range(args.reps):
        for name, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    base = statistics.median(times["onnxruntime RotaryEmbedding-23 (4-D)"])
    print(f"\nB={b} S={s} H={h} D={d} fp32, one tensor, {threads} threads (ORT intra-op and rotary), "
          f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, rotary {rotary.version()}")
    print(f"{'implementation':52s} {'median ms':>10s} {'min ms':>8s} {'vs ORT-23':>10s}")
    for name, v in times.items():
        m = statistics.median(v)
        print(f"{name:52s} {m:10.3f} {min(v):8.3f} {base / m:9.2f}x")


if __name__ == "__main__":
    main()
