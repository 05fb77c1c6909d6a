"""Autograd (reverse mode): the ctypes prototypes of include/modaltensor.h's
"autograd" section, and torch.autograd's grad-mode switches (mt.no_grad,
mt.enable_grad, mt.set_grad_enabled, mt.is_grad_enabled).

The graph lives in the library: an op run on a tensor that requires grad,
while grad mode is on, keeps what its backward needs; Tensor.backward()
emits the backward as ordinary ops on the tensors' device. Grad mode is per
thread in the library, so these switches are per thread too, as torch's.
"""

import functools
from ctypes import POINTER, c_int, c_void_p

from . import _lib
from ._lib import _TENSOR

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_set_requires_grad": (c_int, [_TENSOR, c_int]),
    "mt_requires_grad": (c_int, [_TENSOR]),
    "mt_backward": (c_int, [_TENSOR, _TENSOR]),
    "mt_grad": (c_int, [_TENSOR, POINTER(c_void_p)]),
    "mt_zero_grad": (c_int, [_TENSOR]),
    "mt_detach": (_TENSOR, [_TENSOR]),
    "mt_set_grad_enabled": (None, [c_int]),
    "mt_grad_enabled": (c_int, []),
}
_lib.declare(PROTOTYPES)


def is_grad_enabled():
    """True when ops run now by this thread are recorded for a backward
    (torch.is_grad_enabled)."""
    return _lib.lib.mt_grad_enabled() != 0


def _set(mode):
    _lib.lib.mt_set_grad_enabled(1 if mode else 0)


class _GradMode:
    """A grad-mode switch usable as a context manager and as a decorator:
    the mode of the entering thread is restored on exit, also when the body
    raises."""
    _mode = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set(self._mode)
        return self

    def __exit__(self, *exc):
        _set(self._previous)
        return False

    def __call__(self, function):
        # A fresh switch per call, so that recursion and threads each keep
        # their own saved mode.
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)
        return wrapped


class no_grad(_GradMode):  # noqa: N801 (torch's name)
    """Ops run in this block (or decorated function) record nothing: no
    graph is kept and results do not require grad (torch.no_grad). Use it
    for inference and for updating parameters by hand."""
    _mode = False


class enable_grad(_GradMode):  # noqa: N801 (torch's name)
    """Turns recording back on inside a no_grad block (torch.enable_grad)."""
    _mode = True


class set_grad_enabled(_GradMode):  # noqa: N801 (torch's name)
    """set_grad_enabled(mode): sets this thread's grad mode now; used with
    `with`, the previous mode comes back at the end of the block
    (torch.set_grad_enabled)."""

    def __init__(self, mode):
        self._previous = is_grad_enabled()
        self._mode = bool(mode)
        _set(self._mode)

    def __enter__(self):
        return self

    def __call__(self, function):
        # Decorating restores the mode set by the constructor call first
        # (torch does the same), then switches around each call.
        mode = self._mode
        _set(self._previous)

        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with set_grad_enabled(mode):
                return function(*args, **kwargs)
        return wrapped
