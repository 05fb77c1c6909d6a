"""`pip install ./python` works: the package builds from pyproject.toml
(offline, with the interpreter's own setuptools) and imports from where pip
put it. The source tree is copied first, so the build leaves nothing in it."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

import modaltensor as mt

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("pip", "setuptools")),
                    reason="needs pip and setuptools")
def test_pip_install(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns(
        "tests", "__pycache__", "*.so*", "build", "*.egg-info"))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
         "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
         str(source)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    probe = ("import modaltensor as mt; print(mt.__file__); "
             "print((mt.arange(4) * 2).sum().item())")
    env = dict(os.environ, PYTHONPATH=str(target), MODALTENSOR_LIBRARY=mt.library_path)
    run = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    location, value = run.stdout.split()
    assert location.startswith(str(target)) and value == "12"
