"""Zero-copy exchange of cpu memory: NumPy arrays (mt_from_blob) and DLPack
capsules (mt_to_dlpack / mt_from_dlpack). These helpers deal in raw
mt_tensor handles; tensor.py wraps them.
"""

import atexit
import ctypes
import itertools
import sys
import threading
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int32, c_int64, c_uint8
from ctypes import c_uint16, c_uint64, c_void_p

from ._lib import MtDeleter, lib, shape_array
from .dtypes import from_numpy_dtype
from .errors import DTypeError, InvalidArgumentError, last_error

# ---------------------------------------------------------- NumPy buffers

# Objects whose memory backs a tensor made by mt_from_blob, by deleter context.
# The library calls _release_pinned(key) when the last view of that memory goes.
_pinned = {}
_pin_keys = itertools.count(1)


def _release(key, _pinned=_pinned):
    _pinned.pop(key, None)


_release_pinned = MtDeleter(_release)


def _immortal(obj):
    """Keeps obj alive to the very end: the library may call these callbacks
    while the interpreter tears modules down."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


_immortal(_release_pinned)


def from_numpy(array):
    """A cpu mt_tensor handle over the memory of a NumPy array, without
    copying; the array stays alive until the last view of it goes."""
    dtype = from_numpy_dtype(array.dtype)
    if dtype is None:
        raise DTypeError(f"modaltensor.from_numpy: array: NumPy dtype {array.dtype} has no "
                         "modaltensor dtype")
    itemsize = array.dtype.itemsize
    if any(s < 0 or s % itemsize for s in array.strides):
        raise InvalidArgumentError(
            f"modaltensor.from_numpy: array: strides {array.strides} are not non-negative "
            f"multiples of the item size {itemsize} (copy it: numpy.ascontiguousarray)")
    strides = [s // itemsize for s in array.strides]
    key = next(_pin_keys)
    _pinned[key] = array
    handle = lib.mt_from_blob(array.ctypes.data if array.size else None, array.ndim,
                              shape_array(array.shape), shape_array(strides), dtype.value,
                              _release_pinned, key)
    if not handle:
        del _pinned[key]  # on failure the deleter does not run
        raise last_error("mt_from_blob")
    return handle


# ------------------------------------------------------------------- DLPack

KDL_CPU = 1
KDL_CUDA_HOST = 3


class DLDevice(Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(Structure):
    _fields_ = [("data", c_void_p), ("device", DLDevice), ("ndim", c_int32),
                ("dtype", DLDataType), ("shape", POINTER(c_int64)),
                ("strides", POINTER(c_int64)), ("byte_offset", c_uint64)]


class DLManagedTensor(Structure):
    pass


DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p),
                            ("deleter", CFUNCTYPE(None, c_void_p))]

# Capsule names must outlive the capsules: constants that never go.
_DLTENSOR = c_char_p(b"dltensor")
_USED_DLTENSOR = c_char_p(b"used_dltensor")
_immortal(_DLTENSOR)
_immortal(_USED_DLTENSOR)

_NO_DESTRUCTOR = CFUNCTYPE(None, c_void_p)()
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [c_void_p, c_char_p, CFUNCTYPE(None, c_void_p)]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = c_char_p
_capsule_name.argtypes = [ctypes.py_object]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, c_char_p]
_capsule_set_name = ctypes.pythonapi.PyCapsule_SetName
_capsule_set_name.restype = c_int
_capsule_set_name.argtypes = [ctypes.py_object, c_char_p]

# Exported capsules carry no destructor: CPython may destroy a capsule while
# its consumer has an exception pending (NumPy refusing a dtype), and a
# Python-level destructor can neither run then nor keep that exception. The
# binding instead keeps each capsule it hands out, with its export, until it
# is settled: consumed (renamed "used_dltensor": the consumer owns the export)
# or unreachable but by this list (nobody can consume it: its export is
# released here). Settling happens at every export and at exit.
_exports = []  # [(capsule, DLManagedTensor address)]
_exports_lock = threading.Lock()


def _capsule_refs(entry):
    """References to the capsule of entry; _ALONE when only entry holds it."""
    capsule = entry[0]
    return sys.getrefcount(capsule)


_ALONE = _capsule_refs((_capsule_new(1, _DLTENSOR, _NO_DESTRUCTOR), 0))


def settle_exports():
    """Forgets consumed capsules and releases the exports of unconsumed ones
    that nothing references any more."""
    with _exports_lock:
        pending = []
        for entry in _exports:
            if _capsule_name(entry[0]) != b"dltensor":
                continue
            if _capsule_refs(entry) > _ALONE:
                pending.append(entry)
                continue
            DLManagedTensor.from_address(entry[1]).deleter(entry[1])
        _exports[:] = pending


atexit.register(settle_exports)


def to_capsule(handle):
    """A "dltensor" PyCapsule exporting the cpu tensor `handle` (DLPack 0.6)."""
    settle_exports()
    managed = lib.mt_to_dlpack(handle)
    if not managed:
        raise last_error("mt_to_dlpack")
    try:
        capsule = _capsule_new(managed, _DLTENSOR, _NO_DESTRUCTOR)
    except BaseException:
        DLManagedTensor.from_address(managed).deleter(managed)
        raise
    with _exports_lock:
        _exports.append((capsule, managed))
    return capsule


def from_capsule(capsule):
    """The mt_tensor handle of a "dltensor" capsule, which it consumes."""
    managed = _capsule_pointer(capsule, _DLTENSOR)  # raises for a used or foreign capsule
    _capsule_set_name(capsule, _USED_DLTENSOR)       # mt_from_dlpack owns it from here on
    handle = lib.mt_from_dlpack(managed)
    if not handle:
        raise last_error("mt_from_dlpack")
    return handle
