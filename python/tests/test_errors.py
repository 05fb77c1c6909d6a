"""Every failure surfaces as the exception class of its mt_status, carrying
the C library's message ("function: argument: reason")."""

import numpy as np
import pytest

import modaltensor as mt
from modaltensor import errors

CLASSES = {
    mt.Status.INVALID_ARGUMENT: (mt.InvalidArgumentError, ValueError),
    mt.Status.SHAPE: (mt.ShapeError, ValueError),
    mt.Status.DTYPE: (mt.DTypeError, TypeError),
    mt.Status.DEVICE: (mt.DeviceError, ValueError),
    mt.Status.OUT_OF_MEMORY: (mt.OutOfMemoryError, MemoryError),
    mt.Status.UNSUPPORTED: (mt.UnsupportedError, NotImplementedError),
    mt.Status.REMOTE: (mt.RemoteError, RuntimeError),
    mt.Status.UNAVAILABLE: (mt.UnavailableError, ConnectionError),
    mt.Status.TIMEOUT: (mt.ModalTimeoutError, TimeoutError),
    mt.Status.UNAUTHENTICATED: (mt.UnauthenticatedError, PermissionError),
    mt.Status.INTERNAL: (mt.InternalError, RuntimeError),
}


@pytest.mark.parametrize("status", list(CLASSES), ids=[s.name for s in CLASSES])
def test_one_class_per_status(status):
    cls, builtin = CLASSES[status]
    error = errors.error_for(int(status), "mt_x: a: reason")
    assert type(error) is cls and isinstance(error, mt.ModalTensorError)
    assert isinstance(error, builtin)
    assert error.status == status and error.status_name == f"MT_ERR_{status.name}"
    assert str(error) == "mt_x: a: reason"
    with pytest.raises(builtin):
        raise error


def test_unknown_status():
    error = errors.error_for(99, "mt_x: from a newer library")
    assert type(error) is mt.ModalTensorError and error.status == 99
    assert error.status_name == "MT_ERR_UNKNOWN"


def test_timeout_error_does_not_shadow_the_builtin():
    assert not hasattr(mt, "TimeoutError") and issubclass(mt.ModalTimeoutError, TimeoutError)


# Each case: (expected class, message prefix, a call that fails).
CASES = [
    (mt.InvalidArgumentError, "mt_arange", lambda d: mt.arange(0, 1, 0, device=d)),
    (mt.InvalidArgumentError, "mt_arange", lambda d: mt.arange(0, float("inf"), device=d)),
    (mt.InvalidArgumentError, "mt_clamp", lambda d: mt.zeros(2, device=d).clamp(float("nan"))),
    (mt.InvalidArgumentError, "mt_copy_",
     lambda d: mt.zeros(1, device=d).expand(3).copy_(mt.ones(3, device=d))),
    (mt.InvalidArgumentError, "mt_index_select",
     lambda d: mt.zeros(3, device=d).index_select(0, mt.tensor([3], device=d))),
    (mt.InvalidArgumentError, "mt_device_parse", lambda d: mt.zeros(1, device="gpu")),
    (mt.InvalidArgumentError, "mt_layer_norm",
     lambda d: mt.zeros((2, 3), device=d).layer_norm(eps=-1.0)),
    (mt.ShapeError, "mt_add", lambda d: mt.zeros((2, 3), device=d) + mt.zeros(4, device=d)),
    (mt.ShapeError, "mt_zeros", lambda d: mt.zeros((2, -1), device=d)),
    (mt.ShapeError, "mt_zeros", lambda d: mt.zeros((1,) * 9, device=d)),
    (mt.ShapeError, "mt_reshape", lambda d: mt.zeros(6, device=d).reshape(4, -1)),
    (mt.ShapeError, "mt_matmul", lambda d: mt.zeros((), device=d) @ mt.zeros(2, device=d)),
    (mt.ShapeError, "mt_matmul", lambda d: mt.zeros((2, 3), device=d) @ mt.zeros((2, 3),
                                                                                device=d)),
    (mt.ShapeError, "mt_sum", lambda d: mt.zeros((2, 3), device=d).sum(2)),
    (mt.ShapeError, "mt_sum", lambda d: mt.zeros((2, 3), device=d).sum((0, 0))),
    (mt.ShapeError, "mt_cat", lambda d: mt.cat([mt.zeros((2, 3), device=d),
                                                 mt.zeros((3, 2), device=d)])),
    (mt.ShapeError, "mt_transpose", lambda d: mt.zeros((2, 3), device=d).transpose(0, 5)),
    (mt.ShapeError, "mt_softmax", lambda d: mt.zeros((2, 3), device=d).softmax(3)),
    (mt.ShapeError, "mt_layer_norm",
     lambda d: mt.zeros((2, 3), device=d).layer_norm(mt.ones(4, device=d))),
    (mt.DTypeError, "mt_sub", lambda d: mt.ones(2, dtype=bool, device=d) - mt.ones(
        2, dtype=bool, device=d)),
    (mt.DTypeError, "mt_neg", lambda d: -mt.ones(2, dtype=bool, device=d)),
    (mt.DTypeError, "mt_randn", lambda d: mt.randn(2, dtype="int64", device=d)),
    (mt.DTypeError, "mt_index_select",
     lambda d: mt.zeros(3, device=d).index_select(0, mt.zeros(1, dtype="int16", device=d)
                                                  .to(device=d, dtype="float32"))),
    (mt.DeviceError, "mt_add", lambda d: mt.zeros(2) + mt.zeros(2, device="modal")),
    (mt.DeviceError, "mt_zeros", lambda d: mt.zeros(2, device="modal:7")),
    (mt.DeviceError, "mt_to_dlpack", lambda d: mt.zeros(2, device="modal").__dlpack__()),
    (mt.DeviceError, "mt_data_ptr", lambda d: mt.zeros(2, device="modal").data_ptr()),
    (mt.OutOfMemoryError, "mt_empty", lambda d: mt.empty(1 << 60, dtype="uint8", device=d)),
    (mt.InvalidArgumentError, "mt_empty", lambda d: mt.empty((1 << 40, 1 << 40), device=d)),
]


@pytest.mark.parametrize("cls,prefix,call", CASES,
                         ids=[f"{c.__name__}-{p}-{i}" for i, (c, p, _) in enumerate(CASES)])
def test_error_paths(cls, prefix, call, device):
    with pytest.raises(cls) as caught:
        call(device)
        if device == "modal":
            mt.modal.synchronize()  # a modal device may report errors only at a sync point
    assert type(caught.value) is cls
    message = str(caught.value)
    # A deferred error is reported by the sync point's function, naming the op
    # that failed ("mt_to: ... mt_op (node 0 of graph 3): ...").
    assert message.startswith(prefix + ": ") or \
        (device == "modal" and " (node " in message), message


def test_errors_leave_state_usable(device):
    with pytest.raises(mt.ShapeError):
        mt.zeros((2, 3), device=device) + mt.zeros(4, device=device)
    t = mt.ones(3, device=device) * 2
    assert t.sum().item() == 6.0


def test_binding_side_errors(device):
    t = mt.zeros(3, device=device)
    with pytest.raises(TypeError):
        t + "text"
    with pytest.raises(TypeError):
        mt.add(t, object())
    with pytest.raises(mt.DTypeError):
        t.to(dtype="complex64")
    with pytest.raises(mt.InvalidArgumentError):
        mt.from_numpy(np.arange(4.0)[::-1])
    with pytest.raises(mt.DTypeError):
        mt.from_numpy(np.zeros(2, dtype=np.complex64))
    with pytest.raises(TypeError):
        mt.from_numpy([1, 2])
    with pytest.raises(mt.DTypeError):
        t & t  # bitwise on floats (integers and bool have it, as in PyTorch)
    with pytest.raises(ValueError):
        mt.cat([])


def test_unavailable_without_a_worker():
    with mt.modal.remote_execution(True):
        if mt.modal.is_available():
            pytest.skip("a worker answers: remote execution works here")
        assert mt.modal.device_count() == 0
        with pytest.raises(mt.UnavailableError) as caught:
            mt.zeros(2, device="modal")
        assert isinstance(caught.value, ConnectionError)
        assert str(caught.value).startswith("mt_zeros: ")
        with pytest.raises(mt.UnavailableError, match="mt_modal_get_device_properties"):
            mt.modal.get_device_properties(0)
