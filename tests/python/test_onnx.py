"""test_onnx.py: rotary.onnx.rotary_embedding on every RotaryEmbedding-23 case that the onnx package's own node-test
generator produces (its export functions run with `expect` intercepted), in float32 and float16, against the
generator's expected outputs (ONNX's reference implementation), a float64 evaluation and ONNX Runtime.

Tolerances, with mag = |cos x1| + |sin x2| per element: float32 within 2^-22 mag + 2^-126 of the float64 value
(rotary uses fmaf, the reference two roundings; both sit within that), and within twice that of ONNX's reference and
of ONNX Runtime; float16 within half an fp16 ulp of the float64 value of the fp16 inputs plus the float32 term (one
rounding after fp32 math), and within 2 fp16 ulps of mag from ONNX's float16 reference (which rounds after every
NumPy operation) and from ONNX Runtime.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
rot_case = pytest.importorskip("onnx.backend.test.case.node.rotaryembedding")
from onnx.reference.ops.op_rotary_embedding import rotary_embedding as onnx_reference  # noqa: E402

import rotary.onnx  # noqa: E402

CASE_NAMES = ["test_rotary_embedding", "test_rotary_embedding_3d_input", "test_rotary_embedding_interleaved",
              "test_rotary_embedding_with_rotary_dim", "test_rotary_embedding_with_interleaved_rotary_dim",
              "test_rotary_embedding_no_position_ids", "test_rotary_embedding_no_position_ids_interleaved",
              "test_rotary_embedding_no_position_ids_rotary_dim"]


def capture_cases():
    cases = {}

    def expect(node, inputs, outputs, name, **kwargs):
        cases[name] = (node, [np.asarray(i) for i in inputs], [np.asarray(o) for o in outputs])

    saved = rot_case.expect
    rot_case.expect = expect
    try:
        np.random.seed(0)
        for name in sorted(dir(rot_case.RotaryEmbedding)):
            if name.startswith("export"):
                getattr(rot_case.RotaryEmbedding, name)()
    finally:
        rot_case.expect = saved
    return cases


CASES = capture_cases()


def run(node, inputs, fn):
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    named = dict(zip(node.input, inputs))
    return fn(named["input"], named["cos_cache"], named["sin_cache"], named.get("position_ids"), **attrs), attrs


def f64_and_bound(node, inputs):
    """ONNX's reference evaluated in float64, and the fp32 error bound (same formula on absolute values)."""
    f64 = [i.astype(np.float64) if i.dtype.kind == "f" else i for i in inputs]
    ref, attrs = run(node, f64, onnx_reference)
    absd = [np.abs(i) if i.dtype.kind == "f" else i for i in f64]
    # |c x1| + |s x2| (first slot of a pair) and |s x1| + |c x2| (second slot): the reference on |x|, |cos| and
    # -|sin| gives the first exactly, on +|sin| the second; the other slot of each is smaller in magnitude
    named = dict(zip(node.input, absd))
    mag = np.maximum(*(np.abs(onnx_reference(named["input"], named["cos_cache"], sign * named["sin_cache"],
                                             named.get("position_ids"), **attrs)) for sign in (-1, 1)))
    return ref, 2.0 ** -22 * mag + 2.0 ** -126, mag


def ulp16(mag):
    """fp16 spacing at each magnitude (subnormal spacing at least)."""
    return np.spacing(mag.astype(np.float16)).astype(np.float64)


def test_all_eight_cases_captured():
    assert sorted(CASES) == sorted(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_float32(name):
    node, inputs, outputs = CASES[name]
    got, _ = run(node, inputs, rotary.onnx.rotary_embedding)
    assert got.dtype == np.float32 and got.shape == outputs[0].shape
    ref64, tol, _ = f64_and_bound(node, inputs)
    assert (np.abs(got - ref64) <= tol).all(), np.abs(got - ref64).max()
    assert (np.abs(got - outputs[0]) <= 2 * tol).all()  # the generator's own expected output


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_float16(name):
    node, inputs, _ = CASES[name]
    inputs16 = [i.astype(np.float16) if i.dtype.kind == "f" else i for i in inputs]
    got, _ = run(node, inputs16, rotary.onnx.rotary_embedding)
    assert got.dtype == np.float16
    ref64, tol32, mag = f64_and_bound(node, inputs16)
    half_ulp = np.spacing(np.abs(ref64).astype(np.float16)).astype(np.float64) / 2
    assert (np.abs(got - ref64) <= half_ulp + tol32 + 2.0 ** -25).all()
    # ONNX's float16 reference rounds each product and the sum to fp16: within 1.5 fp16 ulps of |c x1| + |s x2|
    onnx16, _ = run(node, inputs16, onnx_reference)
    assert onnx16.dtype == np.float16
    assert (np.abs(got.astype(np.float64) - onnx16) <= 2 * ulp16(mag)).all()


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_case_against_onnxruntime(name, dtype):
    ort = pytest.importorskip("onnxruntime")
    node, inputs, _ = CASES[name]
    inputs = [i.astype(dtype) if i.dtype.kind == "f" else i for i in inputs]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    vis = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(i.dtype), i.shape)
           for n, i in zip(node.input, inputs)]
    graph = onnx.helper.make_graph([node], name, vis, [onnx.helper.make_tensor_value_info("output", elem, None)])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 23)])
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # pragma: no cover - an older onnxruntime
        pytest.skip(f"onnxruntime cannot run RotaryEmbedding-23: {e}")
    want = sess.run(None, dict(zip(node.input, inputs)))[0]
    got, _ = run(node, inputs, rotary.onnx.rotary_embedding)
    _, tol32, mag = f64_and_bound(node, inputs)
    tol = 2 * tol32 if dtype == np.float32 else 2 * ulp16(mag)
    assert (np.abs(got.astype(np.float64) - want) <= tol).all(), np.abs(got.astype(np.float64) - want).max()


def test_layouts_and_errors():
    rng = np.random.default_rng(0)
    x4 = rng.standard_normal((2, 4, 3, 8)).astype(np.float32)
    cos, sin = rng.random((10, 4)).astype(np.float32), rng.random((10, 4)).astype(np.float32)
    ids = np.array([[0, 1, 2], [7, 8, 9]])
    x3 = np.ascontiguousarray(x4.transpose(0, 2, 1, 3)).reshape(2, 3, 32)
    a = rotary.onnx.rotary_embedding(x4, cos, sin, ids)
    b = rotary.onnx.rotary_embedding(x3, cos, sin, ids, num_heads=4)
    assert np.array_equal(a.transpose(0, 2, 1, 3).reshape(2, 3, 32), b)
    with pytest.raises(ValueError, match="num_heads"):
        rotary.onnx.rotary_embedding(x3, cos, sin, ids)
    with pytest.raises(ValueError, match="position_ids"):
        rotary.onnx.rotary_embedding(x4, cos, sin, ids + 1)
    with pytest.raises(ValueError, match="rotary_dim/2"):
        rotary.onnx.rotary_embedding(x4, cos, sin, ids, rotary_embedding_dim=4)
    with pytest.raises(ValueError, match="rotary_embedding_dim"):
        rotary.onnx.rotary_embedding(x4, cos, sin, ids, rotary_embedding_dim=10)
    with pytest.raises(ValueError, match="without position_ids"):
        rotary.onnx.rotary_embedding(x4, cos, sin)
    with pytest.raises(TypeError, match="float64"):
        rotary.onnx.rotary_embedding(x4.astype(np.float64), cos, sin, ids)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        rotary.onnx.rotary_embedding(x4[0, 0], cos, sin, ids)
