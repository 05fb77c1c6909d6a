"""mt.set_num_threads / mt.get_num_threads: the cpu kernels' thread count is
the library's own, whatever other OpenMP users in the process set."""
import os
import subprocess
import sys

import pytest

import modaltensor as mt


def test_set_and_reset():
    default = mt.get_num_threads()
    assert default >= 1
    try:
        mt.set_num_threads(3)
        assert mt.get_num_threads() == 3
        mt.set_num_threads(0)
        assert mt.get_num_threads() == default
    finally:
        mt.set_num_threads(0)


def test_negative_is_refused_and_changes_nothing():
    before = mt.get_num_threads()
    with pytest.raises(mt.InvalidArgumentError, match="mt_set_num_threads: n: -2"):
        mt.set_num_threads(-2)
    assert mt.get_num_threads() == before


def run_python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_default_follows_omp_num_threads():
    assert run_python("import modaltensor as mt; print(mt.get_num_threads())",
                      OMP_NUM_THREADS="3") == ["3"]


# After torch has set libgomp's count to 1, a large op still runs on two
# threads: libgomp starts a worker thread for it (the process had none).
TORCH_CODE = """
import os, modaltensor as mt
before = mt.get_num_threads()
import torch
torch.set_num_threads(1)
torch.ones(1 << 20).exp()
tasks = lambda: len(os.listdir("/proc/self/task"))
n0 = tasks()
mt.ones(1 << 22).exp()
print(before, mt.get_num_threads(), tasks() - n0)
"""


def test_torch_does_not_change_the_count():
    pytest.importorskip("torch")
    before, after, new_threads = run_python(TORCH_CODE, OMP_NUM_THREADS="2")
    assert before == after == "2"
    assert int(new_threads) >= 1
