"""test_tuning.py: settings and tuning files from Python (issue 13): rotary.settings() and its sources, set/reset,
bad names and values refused with nothing changed, tuning files saved and loaded (bad ones refused naming the file
and the field), ROTARY_TUNING_FILE warned about once (subprocesses: the defaults are built once per process),
rotary.tune on a tiny budget (a smoke test, no timing), and RoPE(tuning=...): its own context, outputs that are the
same bits as the process context's (numpy, torch, KV cache) and correct against the float64 reference, kept across
fork. Every test puts the process settings back."""
import json
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import rotary
from rotary import _lib
from conftest import assert_close, positions_2d, ref_rope, tolerance

pytestmark = pytest.mark.skipif(not _lib.HAS_TUNING, reason="librotary predates settings (issue 13)")

NAMES = ["prefetch_bytes", "stream_store_bytes", "thread_bytes", "tasks_per_thread", "head_group"]
ENVS = ["ROTARY_PREFETCH", "ROTARY_STREAM_STORES", "ROTARY_THREAD_BYTES", "ROTARY_TASKS_PER_THREAD",
        "ROTARY_HEAD_GROUP"]
# Far from every default: prefetch off, non-temporal stores for every out-of-place call, a thread per 4 KiB, the
# most tasks, heads one at a time. Settings change speed only: outputs must be the same bits.
FAR = {"prefetch_bytes": "off", "stream_store_bytes": 0, "thread_bytes": 4096, "tasks_per_thread": 64,
       "head_group": 1}
TIMEOUT = 60


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch, tmp_path):
    """Each test starts and ends with the process defaults, and a cache folder of its own (tuning_path())."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rotary.reset_settings()
    yield
    rotary.reset_settings()


def values(s=None):
    return {n: e["value"] for n, e in (s or rotary.settings()).items()}


def run_python(code, **env):
    """Runs code in a fresh interpreter (the process defaults are built once per process) with env set and every
    setting's variable removed; returns its stdout (it must exit 0)."""
    e = {k: v for k, v in os.environ.items() if k not in ENVS and k != "ROTARY_TUNING_FILE"}
    e.update(env)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, env=e)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p.stdout


# --- settings() -------------------------------------------------------------------------------------------
def test_settings_shape():
    s = rotary.settings()
    assert list(s) == NAMES
    for name, env in zip(NAMES, ENVS):
        e = s[name]
        assert set(e) == {"value", "source", "env", "default", "range"}
        assert e["env"] == env
        lo, hi = e["range"]
        assert lo <= e["default"] <= hi and lo <= e["value"] <= hi
        assert e["source"] in ("default", "file", "environment")
    assert s["head_group"]["range"] == (1, 64) and s["tasks_per_thread"]["range"] == (1, 64)
    assert s["prefetch_bytes"]["range"][0] == -1 and s["thread_bytes"]["range"][0] == 4096
    assert rotary.info()["settings"] == s


def test_settings_sources_in_a_fresh_process():
    """No environment: every value is the CPU default; a setting's variable gives source "environment"; a bad
    value in it is ignored (the default stays)."""
    code = "import json, rotary\nprint(json.dumps(rotary.settings()))"
    s = json.loads(run_python(code))
    assert all(e["source"] == "default" and e["value"] == e["default"] for e in s.values())
    s = json.loads(run_python(code, ROTARY_HEAD_GROUP="3", ROTARY_PREFETCH="off", ROTARY_TASKS_PER_THREAD="0"))
    assert (s["head_group"]["value"], s["head_group"]["source"]) == (3, "environment")
    assert (s["prefetch_bytes"]["value"], s["prefetch_bytes"]["source"]) == (-1, "environment")
    assert s["tasks_per_thread"]["source"] == "default" and s["tasks_per_thread"]["value"] == \
        s["tasks_per_thread"]["default"]


def test_set_and_reset():
    before = rotary.settings()
    rotary.set_setting("head_group", 3)
    rotary.set_setting("prefetch_bytes", "off")
    rotary.set_setting("thread_bytes", np.int64(8192))
    s = rotary.settings()
    assert (s["head_group"]["value"], s["head_group"]["source"]) == (3, "set")
    assert (s["prefetch_bytes"]["value"], s["prefetch_bytes"]["source"]) == (-1, "set")
    assert (s["thread_bytes"]["value"], s["thread_bytes"]["source"]) == (8192, "set")
    assert s["tasks_per_thread"] == before["tasks_per_thread"]
    rotary.reset_settings()
    assert rotary.settings() == before


@pytest.mark.parametrize("name, value, error, text", [
    ("head_group", 0, rotary.RotaryTuningError, "head_group: 0 is outside 1 .. 64"),
    ("head_group", 65, rotary.RotaryTuningError, "head_group: 65 is outside 1 .. 64"),
    ("thread_bytes", 4095, rotary.RotaryTuningError, "thread_bytes: 4095 is outside 4096 .."),
    ("prefetch_bytes", -2, rotary.RotaryTuningError, "prefetch_bytes: -2 is outside -1 .. 65536"),
    ("prefetch_bytes", 2 ** 63, ValueError, "prefetch_bytes"),
    ("head_group", "off", TypeError, "head_group"),
    ("head_group", 4.0, TypeError, "head_group"),
    ("head_group", True, TypeError, "bool"),
    ("heads_group", 4, ValueError, "unknown setting 'heads_group'"),
    (None, 4, ValueError, "unknown setting"),
])
def test_set_refused(name, value, error, text):
    rotary.set_setting("tasks_per_thread", 2)
    before = rotary.settings()
    with pytest.raises(error, match=text) as e:
        rotary.set_setting(name, value)
    if error is rotary.RotaryTuningError:
        assert e.value.status == _lib.ERR_TUNING
    assert rotary.settings() == before


# --- tuning files -----------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    defaults = values()
    rotary.set_setting("head_group", 4)
    rotary.set_setting("tasks_per_thread", 2)
    rotary.set_setting("stream_store_bytes", "off")
    path = tmp_path / "t.json"
    assert rotary.save_tuning(path, notes={"model": "test", "n": 1}) == str(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "rotary-tuning" and doc["library_version"] == rotary.version()
    assert doc["cpu_model"] == rotary.info()["cpu_model"]
    assert doc["settings"] == {"head_group": 4, "tasks_per_thread": 2, "stream_store_bytes": -1}
    assert doc["notes"] == {"model": "test", "n": 1}
    rotary.reset_settings()
    assert values() == defaults
    assert rotary.load_tuning(str(path)) == str(path)
    s = rotary.settings()
    for name, v in doc["settings"].items():
        assert (s[name]["value"], s[name]["source"]) == (v, "file")
    assert all(s[n]["source"] == "default" for n in ("prefetch_bytes", "thread_bytes"))


def test_default_path(tmp_path):
    path = rotary.tuning_path()
    assert path.startswith(str(tmp_path / "cache" / "rotary" / "tuning-")) and path.endswith(
        f"-{rotary.version()}.json")
    assert rotary.load_tuning("auto") is None  # no file there: nothing happens
    rotary.set_setting("head_group", 2)
    assert rotary.save_tuning() == path and os.path.isfile(path)  # the folder is created
    rotary.reset_settings()
    assert rotary.load_tuning("auto") == path
    assert rotary.settings()["head_group"] == dict(rotary.settings()["head_group"], value=2, source="file")


def good_file(tmp_path, settings, **top):
    doc = {"format": "rotary-tuning", "format_version": 1, "library_version": rotary.version(),
           "cpu_model": rotary.info()["cpu_model"], "settings": settings}
    doc.update(top)
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("settings, top, field", [
    ({"head_group": 0}, {}, "settings.head_group"),
    ({"head_group": 4, "prefetch": 64}, {}, "settings.prefetch"),
    ({"tasks_per_thread": 2.5}, {}, "settings.tasks_per_thread"),
    ({"head_group": 4}, {"cpu_model": "Some Other CPU"}, "cpu_model"),
    ({"head_group": 4}, {"library_version": "0.0.1"}, "library_version"),
    ({"head_group": 4}, {"format_version": 2}, "format_version"),
])
def test_bad_file_refused(tmp_path, settings, top, field):
    path = good_file(tmp_path, settings, **top)
    rotary.set_setting("tasks_per_thread", 3)
    before = rotary.settings()
    with pytest.raises(rotary.RotaryTuningError) as e:
        rotary.load_tuning(path)
    assert str(path) in str(e.value) and field in str(e.value), str(e.value)
    assert e.value.status == _lib.ERR_TUNING
    assert rotary.settings() == before


def test_unreadable_files_refused(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "rotary-tuning", "settings": {')
    with pytest.raises(rotary.RotaryTuningError, match="broken.json") as e:
        rotary.load_tuning(bad)
    assert e.value.status == _lib.ERR_TUNING
    with pytest.raises(rotary.RotaryTuningError, match="missing.json") as e:
        rotary.load_tuning(tmp_path / "missing.json")
    assert e.value.status == _lib.ERR_IO
    with pytest.raises(rotary.RotaryTuningError):
        rotary.load_tuning(tmp_path)  # a folder
    with pytest.raises(TypeError):
        rotary.load_tuning(3)
    rotary.set_setting("head_group", 2)
    with pytest.raises(rotary.RotaryTuningError, match="notes"):
        rotary.save_tuning(tmp_path / "n.json", notes="[1, 2]")  # notes must be a JSON object
    with pytest.raises(rotary.RotaryTuningError):
        rotary.save_tuning(tmp_path / "no" / "such" / "dir" / "t.json")
    assert all(e["source"] == "default" for n, e in rotary.settings().items() if n != "head_group")


ENV_CODE = """
import json, warnings
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    import numpy as np, rotary
    rope = rotary.RoPE(64, max_positions=16)
    rope.apply(np.ones((1, 4, 2, 64), np.float32))
    rotary.RoPE(64, max_positions=16, tuning={"head_group": 2}).apply(np.ones((1, 4, 2, 64), np.float32))
    s = rotary.settings()
print(json.dumps({"warnings": [str(x.message) for x in w if "rotary" in str(x.message)],
                  "categories": [x.category.__name__ for x in w if "rotary" in str(x.message)], "settings": s}))
"""


def test_env_file_bad_warns_once(tmp_path):
    path = good_file(tmp_path, {"head_group": 0})
    out = json.loads(run_python(ENV_CODE, ROTARY_TUNING_FILE=str(path)))
    assert len(out["warnings"]) == 1, out["warnings"]
    assert str(path) in out["warnings"][0] and "settings.head_group" in out["warnings"][0]
    assert out["categories"] == ["RuntimeWarning"]
    assert all(e["source"] == "default" for e in out["settings"].values())  # ignored as a whole
    missing = tmp_path / "none.json"
    out = json.loads(run_python(ENV_CODE, ROTARY_TUNING_FILE=str(missing)))
    assert len(out["warnings"]) == 1 and str(missing) in out["warnings"][0]


def test_env_file_good_and_auto(tmp_path):
    path = good_file(tmp_path, {"head_group": 5, "prefetch_bytes": 512})
    out = json.loads(run_python(ENV_CODE, ROTARY_TUNING_FILE=str(path), ROTARY_HEAD_GROUP="7"))
    assert out["warnings"] == []
    s = out["settings"]
    assert (s["prefetch_bytes"]["value"], s["prefetch_bytes"]["source"]) == (512, "file")
    assert (s["head_group"]["value"], s["head_group"]["source"]) == (7, "environment")  # its variable wins
    out = json.loads(run_python(ENV_CODE, ROTARY_TUNING_FILE="auto", XDG_CACHE_HOME=str(tmp_path / "empty")))
    assert out["warnings"] == []  # "auto" with no file there is no error


# --- rotary.tune ------------------------------------------------------------------------------------------
def check_report(r, searched=NAMES):
    assert list(r["before"]) == NAMES and list(r["after"]) == NAMES
    s = rotary.settings()
    for name in NAMES:
        lo, hi = s[name]["range"]
        assert lo <= r["after"][name] <= hi
        if name not in searched:
            assert r["after"][name] == r["before"][name]
        assert s[name]["value"] == r["after"][name]  # the winners stay in force
        if r["after"][name] != r["before"][name]:
            assert s[name]["source"] == "tuned"
    assert r["before_seconds"] > 0 and r["after_seconds"] > 0 and r["seconds"] > 0
    assert isinstance(r["candidates"], int) and r["candidates"] >= 0 and isinstance(r["out_of_time"], bool)


def test_tune_tiny(tmp_path):
    rope = rotary.RoPE(64, max_positions=256)
    path = tmp_path / "tuned.json"
    r = rotary.tune(rope, heads=2, kv_heads=1, tokens=64, decode=4, seconds=0.2, rounds=3, save=path)
    check_report(r)
    assert r["path"] == str(path) and r["dtype"] == "bf16" and r["threads"] == rotary.get_num_threads()
    assert [(x["name"], x["batch"], x["seq_len"]) for x in r["shapes"]] == [("prefill", 1, 64), ("decode", 4, 1)]
    doc = json.loads(path.read_text())
    tuned = {n: v for n, v in r["after"].items() if v != r["before"][n]}
    assert doc["settings"] == tuned and doc["notes"]["heads"] == 2 and doc["notes"]["dtype"] == "bf16"
    after = values()
    rotary.reset_settings()
    assert rotary.load_tuning(path) == str(path)
    assert values() == after


def test_tune_some_settings_and_dtypes():
    rope = rotary.RoPE(32, max_positions=64, pairing="interleaved")
    for dtype in ("f32", "f16"):
        r = rotary.tune(rope, heads=2, kv_heads=0, tokens=16, decode=0, dtype=dtype, seconds=0.2, rounds=3,
                        settings=["head_group", "tasks_per_thread"], threads=1)
        check_report(r, ["head_group", "tasks_per_thread"])
        assert r["threads"] == 1 and r["path"] is None and len(r["shapes"]) == 1
    assert rotary.get_num_threads() >= 1


def test_tune_config_and_default_save():
    config = {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 32, "rope_theta": 10000.0}
    r = rotary.tune(config, tokens=64, decode=2, seconds=0.2, rounds=3, save=True)  # table widened to 64
    check_report(r)
    assert r["path"] == rotary.tuning_path() and os.path.isfile(r["path"])
    notes = json.loads(open(r["path"]).read())["notes"]
    assert (notes["heads"], notes["kv_heads"], notes["head_dim"], notes["model"]) == (4, 2, 64, "llama")


@pytest.mark.parametrize("kwargs, error", [
    ({"dtype": "f64"}, ValueError), ({"tokens": 0, "decode": 0}, ValueError), ({"tokens": 100}, ValueError),
    ({"rounds": 2}, ValueError), ({"seconds": 0}, ValueError), ({"seconds": float("nan")}, ValueError),
    ({"min_gain": 1.0}, ValueError), ({"settings": ["bogus"]}, ValueError), ({"settings": []}, ValueError),
    ({"heads": 0}, ValueError), ({"tokens": -1}, ValueError),
])
def test_tune_refused(kwargs, error):
    rope = rotary.RoPE(32, max_positions=64)
    before = rotary.settings()
    with pytest.raises(error):
        rotary.tune(rope, **dict({"tokens": 8, "decode": 2, "seconds": 0.2}, **kwargs))
    assert rotary.settings() == before


# --- RoPE(tuning=...) -------------------------------------------------------------------------------------
def check_ref(rope, x, out, pos, dtype_name="float32"):
    batch, seq = x.shape[:2]
    ref, b32 = ref_rope(x, positions_2d(pos, batch, seq), rope.inv_freq, rope.pairing)
    assert_close(out, ref, tolerance(dtype_name, ref, b32), "tuned rope")


def test_rope_tuning_dict_same_bits_numpy(rng):
    plain = rotary.RoPE(128, max_positions=512)
    tuned = rotary.RoPE(128, max_positions=512, tuning=FAR)
    s = tuned.settings()
    assert s["prefetch_bytes"]["value"] == -1 and s["head_group"]["value"] == 1
    assert all(s[n]["source"] == "set" for n in NAMES)
    assert all(e["source"] == "default" for e in rotary.settings().values())  # the process context is untouched
    assert plain.settings() == rotary.settings()
    for layout, shape in (("bshd", (2, 96, 8, 128)), ("bhsd", (2, 8, 96, 128)), ("thd", (96, 8, 128))):
        q = rng.standard_normal(shape).astype(np.float32)
        k = rng.standard_normal(shape[:-2] + (2, 128) if layout != "bhsd" else (2, 2, 96, 128)).astype(np.float32)
        a = plain.apply(q, k, positions=5, layout=layout)
        b = tuned.apply(q, k, positions=5, layout=layout)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), layout
        qi = q.copy()
        tuned.apply(qi, positions=5, layout=layout, inplace=True)
        assert np.array_equal(qi, a[0])
    q = rng.standard_normal((2, 64, 8, 128)).astype(np.float32)
    out = tuned.apply(q, positions=7)
    check_ref(tuned, q, out, 7)
    big = rng.standard_normal((1, 512, 32, 128)).astype(np.float32)  # 8 MiB each way: threads and stores
    assert np.array_equal(plain.apply(big), tuned.apply(big))


def test_rope_tuning_dict_same_bits_torch_and_kv(rng):
    torch = pytest.importorskip("torch")
    plain = rotary.RoPE(64, max_positions=256)
    tuned = rotary.RoPE(64, max_positions=256, tuning=FAR)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        q = torch.randn(2, 40, 6, 64).to(dtype)
        k = torch.randn(2, 40, 2, 64).to(dtype)
        ids = torch.randint(0, 256, (2, 40))
        a = plain.apply(q, k, positions=ids)
        b = tuned.apply(q, k, positions=ids)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), dtype
    # KV cache: q rotated, k rotated into the cache, v copied; then the keys re-rotated
    caches = []
    q = rng.standard_normal((2, 5, 4, 64)).astype(np.float32)
    k = rng.standard_normal((2, 5, 2, 64)).astype(np.float32)
    v = rng.standard_normal((2, 5, 2, 64)).astype(np.float32)
    for rope in (plain, tuned):
        kc, vc = np.zeros((2, 16, 2, 64), np.float32), np.zeros((2, 16, 2, 64), np.float32)
        cache = rotary.KVCache(kc, vc)
        qq = q.copy()
        rotary.kv_write(rope, qq, k, v, cache, positions=3, lengths=np.array([3, 0], np.int64))
        rotary.kv_rerotate(rope, cache, 2)
        caches.append((qq, kc, vc))
    for x, y in zip(*caches):
        assert np.array_equal(x, y)
    assert caches[0][1].any()


def test_rope_tuning_file_auto_and_errors(tmp_path):
    path = good_file(tmp_path, {"head_group": 6})
    r = rotary.RoPE(64, max_positions=16, tuning=path)
    assert (r.settings()["head_group"]["value"], r.settings()["head_group"]["source"]) == (6, "file")
    assert r.derive(0).settings() == r.settings()  # a derived rope shares its tuning
    assert rotary.settings()["head_group"]["source"] == "default"
    r = rotary.RoPE(64, max_positions=16, tuning="auto")  # no file at tuning_path(): the defaults
    assert r.settings() == rotary.settings()
    with pytest.raises(rotary.RotaryTuningError, match="nonexistent/path"):
        rotary.RoPE(64, tuning="nonexistent/path")
    bad = good_file(tmp_path, {"tasks_per_thread": 99})
    with pytest.raises(rotary.RotaryTuningError, match="settings.tasks_per_thread") as e:
        rotary.RoPE(64, tuning=str(bad))
    assert str(bad) in str(e.value)
    with pytest.raises(rotary.RotaryTuningError, match="head_group: 0 is outside"):
        rotary.RoPE(64, tuning={"head_group": 0})
    with pytest.raises(ValueError, match="unknown setting"):
        rotary.RoPE(64, tuning={"bogus": 1})
    with pytest.raises(TypeError, match="tuning"):
        rotary.RoPE(64, tuning=5)
    config = {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "max_position_embeddings": 32}
    r = rotary.RoPE.from_hf_config(config, tuning={"head_group": 2})
    assert r.settings()["head_group"]["value"] == 2
    ropes, _ = rotary.hf_ropes(config, tuning={"head_group": 3})
    assert all(x.settings()["head_group"]["value"] == 3 for x in ropes.values())


def test_rope_tuning_threads_follow_process():
    threads = rotary.get_num_threads()
    r = rotary.RoPE(64, max_positions=16, tuning={"head_group": 2})
    try:
        assert _lib.lib.rotary_context_threads(r._tuning.handle()) == threads
        rotary.set_num_threads(1)
        assert _lib.lib.rotary_context_threads(r._tuning.handle()) == 1
    finally:
        rotary.set_num_threads(threads)


def test_rope_tuning_freed_with_rope():
    import gc
    import weakref
    r = rotary.RoPE(64, max_positions=16, tuning={"head_group": 2})
    ref = weakref.ref(r._tuning)
    d = r.derive(0)
    del r
    gc.collect()
    assert ref() is not None  # the derived rope still uses it
    del d
    gc.collect()
    assert ref() is None


# --- fork -------------------------------------------------------------------------------------------------
def _fork_child(conn, tuned, x, ref):
    try:
        out = {"same": bool(np.array_equal(tuned.apply(x, positions=3), ref)),
               "handle": tuned._tuning.handle().value,
               "rope": {n: (e["value"], e["source"]) for n, e in tuned.settings().items()},
               "process": {n: (e["value"], e["source"]) for n, e in rotary.settings().items()}}
        conn.send(out)
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fork_keeps_settings(tmp_path, rng):
    """A forked child drops the parent's contexts and makes its own with the same settings: the rope's own (from
    its spec) and the process context's (set, loaded or tuned in the parent, with those sources)."""
    path = good_file(tmp_path, {"tasks_per_thread": 2})
    rotary.load_tuning(path)
    rotary.set_setting("head_group", 3)
    tuned = rotary.RoPE(64, max_positions=64, tuning=dict(FAR, head_group=2))
    x = rng.standard_normal((2, 32, 4, 64)).astype(np.float32)
    ref = rotary.RoPE(64, max_positions=64).apply(x, positions=3)
    assert np.array_equal(tuned.apply(x, positions=3), ref)  # the parent's contexts exist before the fork
    want_rope = {n: (e["value"], e["source"]) for n, e in tuned.settings().items()}
    want_process = {n: (e["value"], e["source"]) for n, e in rotary.settings().items()}
    assert want_process["tasks_per_thread"] == (2, "file") and want_process["head_group"] == (3, "set")
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_fork_child, args=(child, tuned, x, ref))
    p.start()
    child.close()
    deadline = time.monotonic() + TIMEOUT
    got = parent.recv() if parent.poll(TIMEOUT) else None
    p.join(max(0.0, deadline - time.monotonic()))
    if p.is_alive():
        p.kill()
        p.join()
    assert got is not None, "the child hung or died"
    assert got["same"] and got["rope"] == want_rope and got["process"] == want_process
    assert got["handle"] != tuned._tuning.handle().value  # the child made its own context
    assert p.exitcode == 0


def test_error_class_and_status():
    assert issubclass(rotary.RotaryTuningError, rotary.RotaryError)
    assert issubclass(rotary.RotaryTuningError, ValueError)
    assert _lib.ERR_TUNING == 22 and "tuning file" in _lib.status_string(_lib.ERR_TUNING)
    with pytest.raises(rotary.RotaryTuningError) as e:
        from rotary import _core
        _core._raise(_lib.ERR_TUNING, "x")
    assert e.value.status == _lib.ERR_TUNING


def test_rope_tuning_never_uses_the_process_context(rng):
    """Every call of a rope with tuning= (NumPy, torch op, KV write and re-rotation) runs on its own context."""
    from rotary import _core
    tuned = rotary.RoPE(64, max_positions=64, tuning={"head_group": 2})
    plain = rotary.RoPE(64, max_positions=64)
    x = rng.standard_normal((1, 8, 2, 64)).astype(np.float32)
    ref = plain.apply(x, positions=1)

    def kv(rope):
        kc, vc = np.zeros((1, 16, 2, 64), np.float32), np.zeros((1, 16, 2, 64), np.float32)
        cache = rotary.KVCache(kc, vc)
        rotary.kv_write(rope, None, x, x, cache, positions=0, lengths=np.array([0], np.int64))
        rotary.kv_rerotate(rope, cache, 1)
        return kc

    kv_ref = kv(plain)

    def refuse():
        raise AssertionError("the process context was used")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(_core, "_context", refuse)
        assert np.array_equal(tuned.apply(x, positions=1), ref)
        assert np.array_equal(kv(tuned), kv_ref)
        torch = sys.modules.get("torch")
        if torch is not None:
            assert torch.equal(tuned.apply(torch.from_numpy(x), positions=1), torch.from_numpy(ref))
        with pytest.raises(AssertionError, match="process context"):
            plain.apply(x)
