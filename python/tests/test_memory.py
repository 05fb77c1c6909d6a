"""No handle leaks: loops of creating and dropping tensors keep the
process's resident memory flat, and every deleter the binding hands the
library runs."""

import gc
import os

import numpy as np

import modaltensor as mt
from modaltensor import _interop

# Growth allowed over a loop, for allocator noise. One leaked handle per
# iteration (a struct of ~170 bytes, plus storage) is some 6 MiB per 20000.
TOLERANCE = 1 << 20


def _rss():
    """Resident set size in bytes; 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


# Under AddressSanitizer (CTest sets this with MT_SANITIZE) freed memory sits
# in quarantine, so resident memory grows anyway: the loops run shorter and
# only the deleter checks apply (ASan reports leaks of its own accord).
SANITIZED = bool(os.environ.get("MODALTENSOR_SANITIZED"))


def _growth(body, iterations):
    """Bytes of resident memory gained over iterations of body, after a
    warm-up that fills caches, pools and arenas."""
    for _ in range(iterations // 10):
        body()
    gc.collect()
    before = _rss()
    for _ in range(iterations):
        body()
    gc.collect()
    return _rss() - before


def assert_flat(body, iterations):
    if SANITIZED or not _rss():
        for _ in range(iterations // 100):
            body()
        return
    growth = _growth(body, iterations)
    assert growth < TOLERANCE, f"{growth} bytes more after {iterations} iterations"


def test_create_free_loop_keeps_memory_flat(device):
    shape = (4, 4)

    def body():
        t = mt.zeros(shape, device=device)  # a tensor, a view of it, and an op's result
        u = t[1:] + 1.0
        del t, u

    iterations = 100_000 if device == "cpu" else 20_000
    assert_flat(body, iterations)


def test_views_errors_and_numpy_loop():
    base = mt.ones((8, 8))

    def body():
        view = base.T[::2]
        array = view.numpy()
        del view, array
        try:
            base.reshape(3, 3)
        except mt.ShapeError:
            pass

    assert_flat(body, 20_000)


def test_from_numpy_releases_arrays():
    def body():
        t = mt.from_numpy(np.ones(64))
        u = t * 2
        del t, u

    assert_flat(body, 20_000)
    gc.collect()
    assert not _interop._pinned  # every mt_from_blob deleter ran


def test_dlpack_loops_release_exports():
    t = mt.arange(256, dtype="float32")

    def exchange():
        array = np.from_dlpack(t)
        back = mt.from_dlpack(np.ones(16))
        unused = t.__dlpack__()  # never consumed: its export is settled later
        del array, back, unused

    assert_flat(exchange, 20_000)
    _interop.settle_exports()
    assert not _interop._exports


def test_unconsumed_and_refused_capsules_release_their_export():
    pinned = len(_interop._pinned)
    flags = mt.from_numpy(np.array([True, False]))
    capsule = flags.__dlpack__()
    try:
        np.from_dlpack(flags)  # refused by NumPy < 1.25 (kDLBool), consumed by newer ones
    except Exception:
        pass
    del flags, capsule
    gc.collect()
    _interop.settle_exports()
    assert len(_interop._pinned) == pinned  # the storage went: nothing holds it
