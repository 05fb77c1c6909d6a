"""Exceptions: one class per mt_status, all under ModalTensorError.

Each class also derives from the builtin exception a Python caller would
expect for that kind of failure (a bad shape is a ValueError, an unsupported
dtype a TypeError, ...), so `except ValueError` keeps working. The message is
the C library's own: "function: argument: reason".
"""

import enum

from ._lib import lib


class Status(enum.IntEnum):
    """mt_status values."""
    OK = 0
    INVALID_ARGUMENT = 1
    SHAPE = 2
    DTYPE = 3
    DEVICE = 4
    OUT_OF_MEMORY = 5
    UNSUPPORTED = 6
    REMOTE = 7
    UNAVAILABLE = 8
    TIMEOUT = 9
    UNAUTHENTICATED = 10
    INTERNAL = 11


class ModalTensorError(Exception):
    """Base of every error the library reports. `status` is the mt_status
    code (a Status, or a plain int the binding does not know)."""
    status = None

    @property
    def status_name(self):
        if self.status is None:
            return "MT_ERR_UNKNOWN"
        return lib.mt_status_name(int(self.status)).decode()


class InvalidArgumentError(ModalTensorError, ValueError):
    """MT_ERR_INVALID_ARGUMENT: NULL pointer, value out of range, bad size."""
    status = Status.INVALID_ARGUMENT


class ShapeError(ModalTensorError, ValueError):
    """MT_ERR_SHAPE: shapes that do not fit together, bad dim."""
    status = Status.SHAPE


class DTypeError(ModalTensorError, TypeError):
    """MT_ERR_DTYPE: dtype not supported by the operation."""
    status = Status.DTYPE


class DeviceError(ModalTensorError, ValueError):
    """MT_ERR_DEVICE: mixed devices, unknown device."""
    status = Status.DEVICE


class OutOfMemoryError(ModalTensorError, MemoryError):
    """MT_ERR_OUT_OF_MEMORY."""
    status = Status.OUT_OF_MEMORY


class UnsupportedError(ModalTensorError, NotImplementedError):
    """MT_ERR_UNSUPPORTED: a valid request this build cannot serve."""
    status = Status.UNSUPPORTED


class RemoteError(ModalTensorError, RuntimeError):
    """MT_ERR_REMOTE: the worker reported a failure."""
    status = Status.REMOTE


class UnavailableError(ModalTensorError, ConnectionError):
    """MT_ERR_UNAVAILABLE: no worker reachable, or it went away."""
    status = Status.UNAVAILABLE


class ModalTimeoutError(ModalTensorError, TimeoutError):
    """MT_ERR_TIMEOUT (also a builtin TimeoutError)."""
    status = Status.TIMEOUT


class UnauthenticatedError(ModalTensorError, PermissionError):
    """MT_ERR_UNAUTHENTICATED: the worker refused the credentials."""
    status = Status.UNAUTHENTICATED


class InternalError(ModalTensorError, RuntimeError):
    """MT_ERR_INTERNAL: a bug in the library."""
    status = Status.INTERNAL


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, ShapeError, DTypeError, DeviceError, OutOfMemoryError,
    UnsupportedError, RemoteError, UnavailableError, ModalTimeoutError, UnauthenticatedError,
    InternalError)}


def error_for(status, message):
    """The exception instance for an mt_status code and its message."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message)
    error = ModalTensorError(message)
    error.status = status
    return error


def last_error(fallback):
    """The exception for this thread's last failed call. `fallback` names the
    call in case the library reported a failure without setting an error."""
    status = lib.mt_last_status()
    message = lib.mt_last_error().decode(errors="replace")
    if status == Status.OK:
        return InternalError(f"{fallback}: failed without reporting an error")
    return error_for(status, message)


def check(status, fallback):
    """Raises for a non-zero mt_status returned by a call named fallback."""
    if status:
        message = lib.mt_last_error().decode(errors="replace")
        raise error_for(status, message or f"{fallback}: failed")
