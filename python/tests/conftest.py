"""Shared fixtures.

Tests with the `device` fixture run on "cpu" and on "modal". Where modal
tensors run is chosen by MODALTENSOR_TEST_MODAL:
  in-process (default)  remote execution disabled: modal tensors live in this
                        process, so the suite needs no worker;
  worker                remote execution on: modal tensors live in a worker
                        (the library starts a local one when none is
                        configured); modal tests skip when none answers.
"""

import os
import zlib

import numpy as np
import pytest

import modaltensor as mt

MODAL_MODE = os.environ.get("MODALTENSOR_TEST_MODAL", "in-process")
if MODAL_MODE not in ("in-process", "worker"):
    raise pytest.UsageError(f"MODALTENSOR_TEST_MODAL={MODAL_MODE!r}: expected in-process or "
                            "worker")

if MODAL_MODE == "in-process":
    mt.modal.disable_remote_execution()
MODAL_AVAILABLE = mt.modal.is_available()


@pytest.fixture(params=["cpu", "modal"])
def device(request):
    if request.param == "modal" and not MODAL_AVAILABLE:
        pytest.skip("no worker answers for the modal device")
    return request.param


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, and different
    for each test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
