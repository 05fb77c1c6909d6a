"""The examples of examples/python run to completion (as subprocesses, with
this interpreter and this library)."""

import os
import subprocess
import sys

import pytest

import modaltensor as mt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples", "python")

# Modal tensors run where the suite runs them (see conftest.py).
IN_PROCESS = [] if os.environ.get("MODALTENSOR_TEST_MODAL") == "worker" else ["--in-process"]
CASES = {
    "tour.py": (IN_PROCESS, ["== the modal device", "ShapeError | mt_add: "]),
    "mlp_modal.py": (["--steps", "400"] + IN_PROCESS, ["training accuracy", "ok: loss below 0.3"]),
    "numpy_interop.py": (IN_PROCESS, ["from_numpy shares memory: True",
                                      "modal softmax(a @ b) matches NumPy: True"]),
    "cffi_abi.py": ([], ["softmax(a @ a.T)[0] =", "expected failure: mt_add: "]),
    # gpt.c's tokens (its CTest pins the same checksum): the same weights and sampling
    "gpt.py": (IN_PROCESS, ["checksum: 7148\n", "tokens/s, KV cache, cpu)"]),
    "gpt.py --no-cache": (["--no-cache", "--device", "modal"] + IN_PROCESS,
                          ["checksum: 7148\n", "tokens/s, no cache, modal)"]),
    # trained on README.md as gpt.c's CTest is: the loss falls, the checkpoint reloads
    "gpt.py --train": (["--train", "--steps", "40", "--tokens", "8", "--checkpoint",
                        "{tmp}/gpt.safetensors"] + IN_PROCESS,
                       ["step 40 loss ", "loss fell: ", " (same)\n", "checksum: "]),
    "gpt.py --train --clip": (["--train", "--steps", "40", "--clip", "1.0", "--tokens", "8",
                               "--device", "modal", "--checkpoint", "{tmp}/gpt.safetensors"]
                              + IN_PROCESS, ["loss fell: ", " (same)\n", "checksum: "]),
    # exits 1 below 95% test accuracy
    "train_digits.py": (["--epochs", "6"] + IN_PROCESS, ["test accuracy 0.9"]),
}


def run_example(script, args):
    """The finished subprocess of examples/python/script with args."""
    env = dict(os.environ, MODALTENSOR_LIBRARY=mt.library_path, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "python"),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script)] + args, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    """The case's script (its name's first word) with its arguments ({tmp}
    is a fresh directory) prints every expected text and exits 0."""
    script = name.split()[0]
    if script == "cffi_abi.py":
        pytest.importorskip("cffi")
    if script == "train_digits.py":
        pytest.importorskip("sklearn")  # scripts/setup.sh installs it; the data ships with it
    args, expected = CASES[name]
    run = run_example(script, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert run.returncode == 0, run.stdout + run.stderr
    for text in expected:
        assert text in run.stdout, run.stdout


@pytest.mark.parametrize("size, status", [(144, 1), (145, 0)])
def test_gpt_train_needs_a_window_and_a_place_to_start_it(tmp_path, size, status):
    """gpt.py --train takes its windows from the text's first nine tenths: 144
    bytes leave no room for one of 129 (an error, not an offset past the end);
    145 train."""
    text = tmp_path / "short.txt"
    text.write_bytes(bytes(range(size)))
    run = run_example("gpt.py", ["--train", str(text), "--steps", "2", "--tokens", "2",
                                 "--checkpoint", str(tmp_path / "gpt.safetensors")])
    assert run.returncode == status, run.stdout + run.stderr
    if status:
        assert "needs 145 bytes or more, it has 144" in run.stderr
    else:
        assert " (same)\n" in run.stdout
