"""test_cuda.py: torch CUDA tensors through rotary's Python API (rotary_cuda_apply / rotary_cuda_kv_write), bit for
bit against the CPU path on the same RoPE and the same values: RoPE.apply over dtypes, pairings, layouts, positions,
GQA, in and out of place; the custom op under torch.compile(fullgraph=True); a torch.cuda.CUDAGraph replayed with new
positions; device flags; errors before any launch; the Hugging Face patch on a tiny Llama; kv_write into
per-sequence, slot-mapped and paged caches. Skipped as a whole without torch, without a CUDA device torch can use,
or with a librotary that has no CUDA device (a build without CUDA)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device available to torch", allow_module_level=True)
import rotary  # noqa: E402
import rotary.kv  # noqa: E402
from rotary import _cuda  # noqa: E402

if _cuda.device_count() == 0:
    pytest.skip("librotary sees no CUDA device (built without CUDA, or no driver)", allow_module_level=True)

DEV = torch.device("cuda", torch.cuda.current_device())
D = 64
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Patched logits against HF's own: as test_hf.py (fp32 models: only the cos/sin rounding differs).
LOGITS_ATOL = 1e-4


@pytest.fixture(scope="module")
def ropes():
    return {p: rotary.RoPE(D, pairing=p, max_positions=4096) for p in ("half", "interleaved")}


def inputs(dtype, layout, batch=2, seq=7, qh=4, kh=2, seed=0):
    """q, k as CPU tensors in layout; bhsd ones are transposed views of bshd memory (HF's q_proj(...).transpose)."""
    g = torch.Generator().manual_seed(seed)
    q = (torch.randn(batch, seq, qh, D, generator=g) * 3).to(dtype)
    k = (torch.randn(batch, seq, kh, D, generator=g) * 3).to(dtype)
    if layout == "bhsd":
        q, k = q.transpose(1, 2), k.transpose(1, 2)
    return q, k


def to_dev(x):
    """x on DEV with x's strides (a transposed view stays one)."""
    if x is None:
        return None
    out = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=DEV)
    out.copy_(x)
    return out


def positions_for(kind, batch, seq, seed=1):
    if kind == "offset":
        return 1000
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 4096, (batch, seq), generator=g)
    return ids.to(torch.int32) if kind == "ids32" else ids


def same(got, want, what):
    got = got.cpu()
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if not torch.equal(got.contiguous().view(torch.uint8), want.contiguous().view(torch.uint8)):
        diff = (got.double() - want.double()).abs()
        pytest.fail(f"{what}: {int((diff > 0).sum())} elements differ from the CPU, max |diff| {diff.max().item():.3g}")


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("pos", ["offset", "ids32", "ids64"])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_apply_matches_cpu(ropes, dtype, pairing, layout, pos, inplace):
    r = ropes[pairing]
    q, k = inputs(DTYPES[dtype], layout)
    batch, seq = (q.shape[0], q.shape[1]) if layout == "bshd" else (q.shape[0], q.shape[2])
    p = positions_for(pos, batch, seq)
    want_q, want_k = r.apply(q.clone(), k.clone(), positions=p, layout=layout)
    qd, kd = to_dev(q), to_dev(k)
    pd = p.to(DEV) if isinstance(p, torch.Tensor) else p
    got_q, got_k = r.apply(qd, kd, positions=pd, layout=layout, inplace=inplace)
    if inplace:
        assert got_q is qd and got_k is kd
    else:
        assert got_q.device == DEV and got_q.stride() == qd.stride()
        same(qd, q, "q input unchanged out of place")
    torch.cuda.synchronize()
    same(got_q, want_q, "q")
    same(got_k, want_k, "k")


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_apply_q_alone_partial_inverse_thd(dtype):
    """k absent, partial rotary_dim, the inverse rotation, "thd" tokens and broadcast (1, seq) ids."""
    r = rotary.RoPE(D, rotary_dim=48, max_positions=512, base=500000.0)
    q, _ = inputs(DTYPES[dtype], "bshd", batch=1, seq=33, qh=8)
    ids = torch.randint(0, 512, (1, 33))
    for kwargs in (dict(positions=ids), dict(positions=ids, inverse=True), dict(positions=ids[0], layout="thd")):
        x = q[0] if kwargs.get("layout") == "thd" else q
        want = r.apply(x.clone(), **kwargs)
        pd = kwargs["positions"].to(DEV)
        got = r.apply(to_dev(x), **{**kwargs, "positions": pd})
        torch.cuda.synchronize()
        same(got, want, f"q alone {sorted(kwargs)}")


def test_autograd_backward_matches_cpu(ropes):
    r = ropes["half"]
    q, k = inputs(torch.float32, "bshd")
    g = torch.Generator().manual_seed(7)
    seeds = (torch.randn(q.shape, generator=g), torch.randn(k.shape, generator=g))
    grads = []
    for dev in ("cpu", DEV):
        qq = q.clone().to(dev).requires_grad_()
        kk = k.clone().to(dev).requires_grad_()
        oq, ok = r.apply(qq, kk, positions=5)
        torch.autograd.backward([oq, ok], [seeds[0].to(dev), seeds[1].to(dev)])
        grads.append((qq.grad.cpu(), kk.grad.cpu()))
    same(grads[1][0], grads[0][0], "grad q")
    same(grads[1][1], grads[0][1], "grad k")


def test_compile_fullgraph_matches_eager():
    """A rope never called eagerly (its tensor made in the graph; Inductor) and one called before (aot_eager), in and
    out of place. The compiled functions hold nothing but the op, so that little besides it is compiled."""
    torch._dynamo.reset()
    for warm in (False, True):
        r = rotary.RoPE(D, max_positions=2048)
        q, k = inputs(torch.bfloat16, "bhsd", seq=9)
        ids = torch.randint(0, 2048, (2, 9))
        want_q, want_k = r.apply(q.clone(), k.clone(), positions=ids, layout="bhsd")
        if warm:
            r.apply(to_dev(q), to_dev(k), positions=ids.to(DEV), layout="bhsd")

        def f(q, k, ids):
            return r.apply(q, k, positions=ids, layout="bhsd")

        def g(q, k, ids):
            r.apply(q, k, positions=ids, layout="bhsd", inplace=True)

        backend = "aot_eager" if warm else "inductor"
        for fn in (f, g):
            qd, kd = to_dev(q), to_dev(k)
            out = torch.compile(fn, fullgraph=True, backend=backend)(qd, kd, ids.to(DEV))
            got_q, got_k = out if fn is f else (qd, kd)
            torch.cuda.synchronize()
            same(got_q, want_q, f"compiled {fn.__name__} q (warm={warm})")
            same(got_k, want_k, f"compiled {fn.__name__} k (warm={warm})")


def test_cuda_graph_capture_and_replay(ropes):
    r = ropes["half"]
    q, k = inputs(torch.float16, "bshd", batch=4, seq=1)
    sq, sk = to_dev(q), to_dev(k)
    ids = torch.zeros(4, 1, dtype=torch.int64, device=DEV)
    flags = torch.zeros(1, dtype=torch.int32, device=DEV)
    r.prepare_cuda(DEV)
    assert r.cuda_memory_bytes.get(DEV.index, 0) > 0
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up on the capture stream, as torch recommends
        r.apply(sq, sk, positions=ids, flags=flags)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out_q, out_k = r.apply(sq, sk, positions=ids, flags=flags)
    for step in range(3):
        q, k = inputs(torch.float16, "bshd", batch=4, seq=1, seed=10 + step)
        new_ids = torch.tensor([[7 + step], [100 * step], [4095], [step]])
        sq.copy_(q)
        sk.copy_(k)
        ids.copy_(new_ids)
        graph.replay()
        torch.cuda.synchronize()
        want_q, want_k = r.apply(q, k, positions=new_ids)
        same(out_q, want_q, f"replay {step} q")
        same(out_k, want_k, f"replay {step} k")
    assert flags.item() == 0


def test_flags_out_of_range_positions_skip_tokens(ropes):
    r = ropes["interleaved"]
    q, k = inputs(torch.float32, "bshd", batch=1, seq=4)
    ids = torch.tensor([[0, 5000, 3, -1]])
    qd, kd = to_dev(q), to_dev(k)
    flags = torch.zeros(1, dtype=torch.int32, device=DEV)
    r.apply(qd, kd, positions=ids.to(DEV), inplace=True, flags=flags)
    torch.cuda.synchronize()
    assert flags.item() & 1  # ROTARY_CUDA_FLAG_POSITION
    want_q, want_k = r.apply(q.clone(), k.clone(), positions=torch.tensor([[0, 0, 3, 0]]))
    for t in (1, 3):  # skipped tokens: left as they were
        same(qd[:, t], q[:, t], f"skipped q token {t}")
        same(kd[:, t], k[:, t], f"skipped k token {t}")
    for t in (0, 2):
        same(qd[:, t], want_q[:, t], f"q token {t}")
        same(kd[:, t], want_k[:, t], f"k token {t}")


def test_errors_before_any_launch(ropes):
    r = ropes["half"]
    q, k = inputs(torch.float32, "bshd")
    qd = to_dev(q)
    with pytest.raises(ValueError, match="one device"):
        r.apply(qd, k)  # k on the CPU
    with pytest.raises(ValueError, match="one device"):
        r.apply(q, to_dev(k))  # q on the CPU
    with pytest.raises(ValueError, match="ids"):
        r.apply(qd, positions=torch.zeros(2, 7, dtype=torch.int64))  # CPU ids with CUDA q
    with pytest.raises(ValueError, match="flags"):
        r.apply(qd, flags=torch.zeros(1, dtype=torch.int64, device=DEV))
    with pytest.raises(ValueError, match="flags"):
        r.apply(q, flags=torch.zeros(1, dtype=torch.int32))
    with pytest.raises(rotary.RotaryError):
        r.apply(qd, positions=4095)  # an offset run past the table: checked on the host
    same(qd, q, "q untouched by refused calls")


def _llama(dtype):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   rope_theta=10000.0)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).to(device=DEV, dtype=dtype).eval()


def _patched_logits(model, ids):
    import rotary.hf
    with torch.no_grad():
        ref = model(ids).logits.float()
        rotary.hf.patch(model)
        try:
            got = model(ids).logits.float()
        finally:
            rotary.hf.unpatch(model)
    return ref, got


def test_hf_patch_llama_cuda():
    """fp32: the patched logits within test_hf.py's tolerance of HF's. bf16: HF rounds cos/sin to bf16 and rotates
    in bf16, rotary rotates in fp32 and rounds once, so the two differ by bf16 noise; the patched bf16 logits must be
    no further from the fp32 model's than HF's own bf16 logits are (plus a small margin)."""
    torch.manual_seed(1)
    ids = torch.randint(0, 512, (2, 48), device=DEV)
    model = _llama(torch.float32)
    ref32, got32 = _patched_logits(model, ids)
    diff = (got32 - ref32).abs().max().item()
    assert diff <= LOGITS_ATOL, f"fp32: max |logits diff| {diff:.3g} > {LOGITS_ATOL}"
    inv_freq = {m: m.inv_freq.clone() for m in model.modules() if hasattr(m, "inv_freq")}
    model = model.to(torch.bfloat16)
    for m, f in inv_freq.items():  # HF keeps inv_freq in fp32 (a model loaded in bf16 computes it so)
        m.inv_freq = f
    ref16, got16 = _patched_logits(model, ids)
    hf_err = (ref16 - ref32).abs().max().item()
    our_err = (got16 - ref32).abs().max().item()
    assert our_err <= 1.5 * hf_err + 1e-2, f"bf16: patched {our_err:.3g} from fp32, HF's own {hf_err:.3g}"
    assert torch.isfinite(got16).all()


# rotary_cuda_kv_write: the KV tests below compare the GPU's q and caches with the CPU's bytes (the C-level cases are
# tests/cuda/test_cuda_kv.c). Not yet run on a GPU: written against the CPU emulation of the kernel only.
def test_kv_write_sequences_matches_cpu():
    """A per-sequence cache (lengths and offsets on the device), f16 k/v into an f32 cache, GQA, flags zero."""
    r = rotary.RoPE(D, max_positions=64)
    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 3, 4, D, generator=g)
    k = (torch.randn(2, 3, 2, D, generator=g) * 4).to(torch.float16)
    v = torch.randn(2, 3, 2, D, generator=g).to(torch.float16)
    kc = torch.full((2, 8, 2, D), 0.5)
    vc = kc.clone()
    lengths, offsets = torch.tensor([0, 4]), torch.tensor([3, 40])
    cpu_cache = rotary.KVCache(kc.clone(), vc.clone())
    want_q = rotary.kv.kv_write(r, q.clone(), k, v, cpu_cache, offsets=offsets, lengths=lengths)
    dev_cache = rotary.KVCache(to_dev(kc), to_dev(vc))
    flags = torch.zeros(1, dtype=torch.int32, device=DEV)
    qd = to_dev(q)
    got_q = rotary.kv.kv_write(r, qd, to_dev(k), to_dev(v), dev_cache, offsets=offsets.to(DEV),
                               lengths=lengths.to(DEV), flags=flags)
    torch.cuda.synchronize()
    assert got_q is qd
    same(got_q, want_q, "q")
    same(dev_cache.k, cpu_cache.k, "k cache")
    same(dev_cache.v, cpu_cache.v, "v cache")
    assert flags.item() == 0


@pytest.mark.parametrize("cache_dtype", ["bfloat16", "fp8_e4m3"])
@pytest.mark.parametrize("index", ["pages", "slots"])
def test_kv_write_paged_matches_cpu(index, cache_dtype):
    r = rotary.RoPE(D, max_positions=1024)
    nb, bs, kh, qh, batch, seq = 6, 4, 2, 4, 2, 3
    g = torch.Generator().manual_seed(3)
    q = torch.randn(batch, seq, qh, D, generator=g).to(torch.bfloat16)
    k = (torch.randn(batch, seq, kh, D, generator=g) * 4).to(torch.bfloat16)
    v = torch.randn(batch, seq, kh, D, generator=g).to(torch.float16)
    fp8 = cache_dtype == "fp8_e4m3"
    shape = (nb, bs, kh, D)
    kc = torch.full(shape, 7, dtype=torch.uint8) if fp8 else torch.full(shape, 0.25, dtype=torch.bfloat16)
    vc = kc.clone()
    ix = {}
    if index == "pages":  # sequence 0: pages 3, 1 (2 + 3 rows after the write); sequence 1: page 5 (3 rows)
        ix = dict(page_indptr=torch.tensor([0, 2, 3], dtype=torch.int32),
                  page_indices=torch.tensor([3, 1, 5], dtype=torch.int32),
                  last_page_len=torch.tensor([1, 3], dtype=torch.int32))
    else:
        ix = dict(slot_mapping=torch.tensor([0, 9, -1, 23, 4, 13], dtype=torch.int64))
    offsets = torch.tensor([17, 900])
    kw = dict(layout="bshd", offsets=offsets)
    scales = dict(dtype="fp8_e4m3", k_scale=0.5, v_scale=0.25) if fp8 else {}
    cpu_cache = rotary.KVCache(kc.clone(), vc.clone(), **scales)
    want_q = rotary.kv.kv_write(r, q.clone(), k, v, cpu_cache, **ix, **kw)
    dev_cache = rotary.KVCache(to_dev(kc), to_dev(vc), **scales)
    ixd = {n: x.to(DEV) for n, x in ix.items()}
    flags = torch.zeros(1, dtype=torch.int32, device=DEV)
    qd = to_dev(q)
    got_q = rotary.kv.kv_write(r, qd, to_dev(k), to_dev(v), dev_cache, **ixd, layout="bshd",
                               offsets=offsets.to(DEV), flags=flags)
    torch.cuda.synchronize()
    assert got_q is qd
    same(got_q, want_q, "q")
    same(dev_cache.k, cpu_cache.k, "k cache")
    same(dev_cache.v, cpu_cache.v, "v cache")
    assert flags.item() == 0


def test_kv_write_compiled_matches_eager():
    r = rotary.RoPE(D, max_positions=256)
    g = torch.Generator().manual_seed(4)
    k = torch.randn(1, 5, 2, D, generator=g).to(torch.float16)
    v = torch.randn(1, 5, 2, D, generator=g).to(torch.float16)
    q = torch.randn(1, 5, 4, D, generator=g).to(torch.float16)
    slots = torch.tensor([3, 4, 5, 6, 7])
    ids = torch.tensor([[9, 10, 11, 12, 13]])
    cpu_cache = rotary.KVCache(torch.zeros(2, 8, 2, D, dtype=torch.float16), torch.zeros(2, 8, 2, D,
                                                                                       dtype=torch.float16))
    want_q = rotary.kv.kv_write(r, q.clone(), k, v, cpu_cache, ids, slot_mapping=slots)
    kc, vc = torch.zeros(2, 8, 2, D, dtype=torch.float16, device=DEV), torch.zeros(2, 8, 2, D, dtype=torch.float16,
                                                                                    device=DEV)

    def f(q, k, v, kc, vc, ids, slots):
        rotary.kv.kv_write(r, q, k, v, rotary.KVCache(kc, vc), ids, slot_mapping=slots)

    got_q = to_dev(q)
    torch.compile(f, fullgraph=True)(got_q, to_dev(k), to_dev(v), kc, vc, ids.to(DEV), slots.to(DEV))
    torch.cuda.synchronize()
    same(got_q, want_q, "q")
    same(kc, cpu_cache.k, "k cache")
    same(vc, cpu_cache.v, "v cache")
