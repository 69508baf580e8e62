"""test_export.py: programs exported with rotary's torch ops (torch.export, strict and non-strict), saved, loaded and
run in a fresh Python process that imports only torch and rotary: the same bits as eager, two ropes never mixed;
the rope tensor that carries the op's state (cached librotary ropes by identity and content)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import rotary  # noqa: E402
import rotary.ops  # noqa: E402

TIMEOUT = 600  # a fresh process imports torch: seconds on a busy machine


class OutOfPlace(torch.nn.Module):
    """q and k rotated out of place by position ids (bhsd), then used."""

    def __init__(self, rope):
        super().__init__()
        self.rope = rope

    def forward(self, q, k, ids):
        q2, k2 = self.rope.apply(q, k, positions=ids, layout="bhsd")
        return q2 * 2, k2


class InPlace(torch.nn.Module):
    """Fresh q and k (as a projection makes them) rotated in place from an offset (bshd)."""

    def __init__(self, rope):
        super().__init__()
        self.rope = rope

    def forward(self, q, k):
        q, k = q * 1, k + 0
        self.rope.apply(q, k, positions=5, layout="bshd", inplace=True)
        return q, k


def ropes():
    """Two ropes that differ in every parameter the op carries."""
    a = rotary.RoPE(64, max_positions=128,
                    scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32})
    b = rotary.RoPE(64, rotary_dim=48, base=500000.0, pairing="interleaved", max_positions=0,
                    attention_scaling=0.75)
    return a, b


def programs():
    """name -> (module, inputs) for every exported program."""
    torch.manual_seed(0)
    a, b = ropes()
    q, k = torch.randn(2, 4, 7, 64), torch.randn(2, 2, 7, 64)
    ids = torch.randint(0, 128, (2, 7))
    qb, kb = torch.randn(2, 7, 4, 64).bfloat16(), torch.randn(2, 7, 2, 64).bfloat16()
    return {"a_out": (OutOfPlace(a), (q, k, ids)), "b_in": (InPlace(b), (qb, kb)),
            "b_out": (OutOfPlace(b), (q, k, ids)), "a_in": (InPlace(a), (qb, kb))}


LOADER = textwrap.dedent("""
    import sys
    import torch, rotary
    folder = sys.argv[1]
    # ropes that exist only here first: an op naming ropes by a process-local number would pick one of them
    others = [rotary.RoPE(64, base=3.0 + i, max_positions=256) for i in range(4)]
    inputs = torch.load(folder + "/inputs.pt")
    loaded = {name: torch.export.load(folder + "/" + name + ".pt2").module() for name in inputs}
    outs = {}
    for rnd in range(2):  # every program twice, interleaved with the others
        for name in (sorted(inputs) if rnd == 0 else sorted(inputs, reverse=True)):
            with torch.no_grad():
                outs[(name, rnd)] = loaded[name](*[x.clone() for x in inputs[name]])
    # a rope made here with a program's parameters agrees with it
    a = rotary.RoPE(64, max_positions=128,
                    scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32})
    q, k, ids = inputs["a_out_nonstrict"]
    outs["eager_here"] = a.apply(q, k, positions=ids, layout="bhsd")
    torch.save(outs, folder + "/outputs.pt")
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports every program both ways, runs them in a fresh process; returns (eager, loaded outputs, inputs)."""
    folder = tmp_path_factory.mktemp("export")
    eager, inputs = {}, {}
    for name, (module, args) in programs().items():
        with torch.no_grad():
            want = module(*[x.clone() for x in args])
        for strict in (False, True):
            key = f"{name}_{'strict' if strict else 'nonstrict'}"
            with torch.no_grad():
                ep = torch.export.export(module, tuple(x.clone() for x in args), strict=strict)
                got = ep.module()(*[x.clone() for x in args])
            for w, g in zip(want, got):
                assert torch.equal(w, g), f"{key}: the exported program differs from eager in its own process"
            torch.export.save(ep, folder / f"{key}.pt2")
            eager[key], inputs[key] = want, args
    torch.save(inputs, folder / "inputs.pt")
    (folder / "loader.py").write_text(LOADER)
    run = subprocess.run([sys.executable, str(folder / "loader.py"), str(folder)], capture_output=True, text=True,
                         timeout=TIMEOUT, env=dict(os.environ))
    assert run.returncode == 0, f"loading process failed:\n{run.stdout}\n{run.stderr[-4000:]}"
    return eager, torch.load(folder / "outputs.pt"), inputs


def test_export_save_load_fresh_process_same_bits(exported):
    eager, loaded, _ = exported
    for key, want in eager.items():
        for rnd in range(2):
            got = loaded[(key, rnd)]
            assert len(got) == len(want)
            for w, g in zip(want, got):
                assert g.dtype == w.dtype and g.shape == w.shape
                assert torch.equal(g, w), f"{key} (pass {rnd}): max |diff| {(g.float() - w.float()).abs().max()}"


def test_two_ropes_in_one_loading_process_do_not_mix(exported):
    eager, loaded, inputs = exported
    # the two ropes give different results on the same input, and each program kept its own
    a, b = loaded[("a_out_nonstrict", 0)], loaded[("b_out_nonstrict", 0)]
    assert not torch.equal(a[0], b[0])
    assert torch.equal(loaded[("a_in_strict", 1)][0], eager["a_in_strict"][0])
    assert torch.equal(loaded[("b_in_strict", 1)][0], eager["b_in_strict"][0])
    # and a rope made in the loading process with a's parameters gives a's bits
    here_q, here_k = loaded["eager_here"]
    want_q2, want_k = eager["a_out_nonstrict"]
    assert torch.equal(here_q * 2, want_q2) and torch.equal(here_k, want_k)


def test_import_rotary_registers_the_ops():
    """torch.export.load needs torch.ops.rotary.*: `import rotary` registers them when torch is imported, in either
    order, and does not import torch itself."""
    code = textwrap.dedent("""
        import sys
        import rotary
        assert "torch" not in sys.modules, "import rotary imported torch"
        import torch
        assert hasattr(torch.ops.rotary, "rope") and hasattr(torch.ops.rotary, "rope_"), "ops not registered"
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
                         env=dict(os.environ))
    assert run.returncode == 0, run.stderr[-4000:]


def test_rope_tensor_values_and_cache():
    from rotary import _torchop
    a, b = ropes()
    t = rotary.ops.rope_tensor(a)
    assert t is rotary.ops.rope_tensor(a) and t.dtype == torch.float64
    assert t[:4].tolist() == [64.0, 128.0, 0.0, a.attention_scaling]
    assert np.array_equal(t[4:].numpy(), a.inv_freq)
    assert _torchop.rope_for(t) is a  # the rope itself: no second table
    # the same values in another tensor (a loaded program's constant): a rope with the same bits
    copy = t.clone()
    r = _torchop.rope_for(copy)
    assert _torchop.rope_for(copy) is r
    q = torch.randn(1, 5, 2, 64)
    assert torch.equal(torch.ops.rotary.rope(q, None, None, 3, copy, "bshd", False)[0], a.apply(q, positions=3))
    # a tensor changed in place stands for its new values
    copy[3] = 0.5
    half = rotary.RoPE(64, max_positions=128, inv_freq=a.inv_freq, attention_scaling=0.5)
    assert torch.equal(torch.ops.rotary.rope(q, None, None, 3, copy, "bshd", False)[0], half.apply(q, positions=3))
    assert _torchop.cached_count() <= _torchop._RECENT


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(8), "float64"),
    (torch.zeros(4, dtype=torch.float64), "float64"),
    (torch.tensor([64.5, 128, 0, 1, 0.1], dtype=torch.float64), "head_dim"),
    (torch.tensor([64, 128, 2, 1, 0.1], dtype=torch.float64), "pairing"),
    (torch.tensor([64, -1, 0, 1, 0.1], dtype=torch.float64), "max_positions"),
    (torch.tensor([4, 128, 0, 1, 0.1, 0.2, 0.3], dtype=torch.float64), "rotary_dim"),
    (torch.tensor([64, 128, 0, float("inf"), 0.1], dtype=torch.float64), "attention_scaling"),
])
def test_rope_tensor_rejected(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        torch.ops.rotary.rope(torch.randn(1, 1, 1, 64), None, None, 0, bad, "bshd", False)
