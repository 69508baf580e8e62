"""test_py_fork.py: multiprocessing workers started with the "fork" method use the package safely (issue 10,
defect 5): the parent's process-wide context (its workers absent in the child, its lock possibly held by a thread
that was inside rotary_apply at the fork) is dropped in the child, which creates its own. Every child runs under a
timeout, so a deadlock fails the test instead of hanging it."""
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

import rotary

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # 3.12+: fork() of a threaded process

TIMEOUT = 30  # seconds per child; a healthy child needs well under one
SHAPE = (4, 256, 8, 128)  # 4 MiB of float32: enough work for rotary to use both threads


@pytest.fixture(scope="module")
def case():
    rope = rotary.RoPE(128, max_positions=2048)
    x = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
    threads = rotary.get_num_threads()
    rotary.set_num_threads(1)
    ref = rope.apply(x, positions=7)  # the result does not depend on the thread count
    rotary.set_num_threads(2)
    assert np.array_equal(rope.apply(x, positions=7), ref)  # the parent's context now has a worker
    yield rope, x, ref
    rotary.set_num_threads(threads)


def run_children(target, n):
    """Starts n forked processes running target() and returns their exit codes; a child still running after
    TIMEOUT is killed and reported as 'deadlock'."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target) for _ in range(n)]
    for p in procs:
        p.start()
    codes = []
    deadline = time.monotonic() + TIMEOUT
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
            codes.append("deadlock")
        else:
            codes.append(p.exitcode)
    return codes


def test_children_apply(case):
    rope, x, ref = case

    def child():
        ok = rotary.get_num_threads() == 2 and np.array_equal(rope.apply(x, positions=7), ref)
        rotary.set_num_threads(3)  # replaces the child's pool (before the fix: joined the parent's absent workers)
        ok = ok and np.array_equal(rope.apply(x, positions=7), ref)
        os._exit(0 if ok else 1)

    assert run_children(child, 2) == [0, 0]


def test_pool_map(case):
    """The usual pattern: a fork Pool mapping over work items."""
    rope, x, ref = case
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        res = pool.map_async(_pool_item, range(4))
        out = res.get(timeout=TIMEOUT)  # multiprocessing.TimeoutError on a deadlock
    assert out == [True] * 4


def _pool_item(i):
    rope = rotary.RoPE(128, max_positions=2048)
    x = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
    rotary.set_num_threads(1 + i % 2)
    a = rope.apply(x, positions=7)
    rotary.set_num_threads(1)
    return bool(np.array_equal(a, rope.apply(x, positions=7)))


def test_fork_while_another_thread_applies(case):
    """A thread loops on apply (the GIL is released inside the C call, which holds the context's lock most of
    the time) while the main thread forks: before the fix every child hung on that lock."""
    rope, x, ref = case
    stop = threading.Event()
    calls = [0]
    out = np.empty_like(x)

    def spin():
        while not stop.is_set():
            rope.apply(x, positions=7, out=out)
            calls[0] += 1

    def child():
        os._exit(0 if np.array_equal(rope.apply(x, positions=7), ref) else 1)

    t = threading.Thread(target=spin)
    t.start()
    try:
        while calls[0] < 3:
            time.sleep(0.001)
        codes = [run_children(child, 1)[0] for _ in range(4)]
    finally:
        stop.set()
        t.join()
    assert codes == [0] * 4
    assert np.array_equal(out, ref)  # the parent's context still works


def test_fork_while_the_context_is_being_created(case):
    """The package's own lock: a fork while some thread holds it (creating the context on first use) left the
    child's copy locked for good. White-box: the parent is put back to 'no context yet' and the lock is held, as
    that thread would hold it, across the fork; the child must still create its context and apply."""
    rope, x, ref = case
    from rotary import _core

    def child():
        os._exit(0 if np.array_equal(rope.apply(x, positions=7), ref) else 1)

    saved, lock = _core._ctx, _core._ctx_lock
    _core._ctx = None
    lock.acquire()
    try:
        codes = run_children(child, 1)
    finally:
        lock.release()
        _core._ctx = saved
    assert codes == [0]
