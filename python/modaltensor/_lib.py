"""Finding and loading libmodaltensor, and the ctypes prototype of every
public function of include/modaltensor.h.

The library is searched, in this order:
  1. the file named by the environment variable MODALTENSOR_LIBRARY (when it
     is set, nothing else is tried, so a wrong path is noticed);
  2. next to this package (a wheel or a copy that ships the library);
  3. the build trees of a source checkout: <repo>/build*/src/ (newest first);
  4. the system's library path (libmodaltensor.so.0 installed by CMake).
"""

import ctypes
import ctypes.util
import glob
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_int,
                    c_int32, c_int64, c_size_t, c_uint64, c_void_p)

ENV_VAR = "MODALTENSOR_LIBRARY"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SOURCE_ROOT = os.path.dirname(os.path.dirname(_PACKAGE_DIR))
_SONAME = "libmodaltensor.so.0"

MAX_DIMS = 8


class MtDevice(Structure):
    """struct mt_device, passed by value."""
    _fields_ = [("type", c_int32), ("index", c_int32)]


class MtDeviceProperties(Structure):
    """struct mt_device_properties."""
    _fields_ = [("name", c_char * 128), ("total_memory", c_int64), ("free_memory", c_int64),
                ("major", c_int32), ("minor", c_int32), ("multiprocessors", c_int32)]


class MtModalStats(Structure):
    """struct mt_modal_stats."""
    _fields_ = [(name, c_uint64) for name in (
        "round_trips", "syncs", "graphs", "nodes", "bytes_up", "bytes_down", "messages",
        "bytes_skipped", "uploads_skipped", "graph_bytes", "graphs_reused")]


class MtModalConfig(Structure):
    """struct mt_modal_config."""
    _fields_ = [("worker", c_char_p), ("token", c_char_p), ("tls_ca", c_char_p),
                ("tls", c_int32), ("timeout_s", c_double), ("connect_timeout_s", c_double)]


MtDeleter = CFUNCTYPE(None, c_void_p)
# mt_modal_progress_fn: (ctx, kind, device, done, total)
MtModalProgressFn = CFUNCTYPE(None, c_void_p, c_int, c_int, c_uint64, c_uint64)

_TENSOR = c_void_p  # mt_tensor *: a Python int, or None for NULL
_SHAPE = POINTER(c_int64)
_DIMS = POINTER(c_int)

# name: (restype, argtypes), in the order of include/modaltensor.h.
_PROTOTYPES = {
    "mt_last_status": (c_int, []),
    "mt_last_error": (c_char_p, []),
    "mt_status_name": (c_char_p, [c_int]),
    "mt_clear_error": (None, []),
    "mt_version": (c_char_p, []),
    "mt_dtype_size": (c_size_t, [c_int]),
    "mt_dtype_name": (c_char_p, [c_int]),
    "mt_device_parse": (c_int, [c_char_p, POINTER(MtDevice)]),
    "mt_modal_is_available": (c_int, []),
    "mt_modal_device_count": (c_int, []),
    "mt_modal_get_device_properties": (c_int, [c_int, POINTER(MtDeviceProperties)]),
    "mt_modal_memory_allocated": (c_int, [c_int, POINTER(c_int64)]),
    "mt_modal_memory_reserved": (c_int, [c_int, POINTER(c_int64)]),
    "mt_synchronize": (c_int, [MtDevice]),
    "mt_modal_synchronize_all": (c_int, []),
    "mt_modal_get_stats": (c_int, [c_void_p]),
    "mt_modal_configure": (c_int, [c_void_p]),
    "mt_modal_stats_reset": (None, []),
    "mt_modal_set_progress": (c_int, [MtModalProgressFn, c_void_p, c_uint64]),
    "mt_set_remote_execution": (None, [c_int]),
    "mt_remote_execution_enabled": (c_int, []),
    "mt_shutdown": (None, []),
    "mt_tensor_free": (None, [_TENSOR]),
    "mt_empty": (_TENSOR, [c_int, _SHAPE, c_int, MtDevice]),
    "mt_zeros": (_TENSOR, [c_int, _SHAPE, c_int, MtDevice]),
    "mt_ones": (_TENSOR, [c_int, _SHAPE, c_int, MtDevice]),
    "mt_full": (_TENSOR, [c_int, _SHAPE, c_double, c_int, MtDevice]),
    "mt_arange": (_TENSOR, [c_double, c_double, c_double, c_int, MtDevice]),
    "mt_from_data": (_TENSOR, [c_void_p, c_int, _SHAPE, c_int, MtDevice]),
    "mt_rand": (_TENSOR, [c_int, _SHAPE, c_int, MtDevice, c_uint64]),
    "mt_randn": (_TENSOR, [c_int, _SHAPE, c_int, MtDevice, c_uint64]),
    "mt_ndim": (c_int, [_TENSOR]),
    "mt_shape": (c_int64, [_TENSOR, c_int]),
    "mt_stride": (c_int64, [_TENSOR, c_int]),
    "mt_numel": (c_int64, [_TENSOR]),
    "mt_tensor_dtype": (c_int, [_TENSOR]),
    "mt_tensor_device": (MtDevice, [_TENSOR]),
    "mt_is_contiguous": (c_int, [_TENSOR]),
    "mt_to_host": (c_int, [_TENSOR, c_void_p, c_size_t]),
    "mt_item": (c_int, [_TENSOR, POINTER(c_double)]),
    "mt_to": (_TENSOR, [_TENSOR, MtDevice, c_int, c_int]),
    "mt_contiguous": (_TENSOR, [_TENSOR]),
    "mt_clone": (_TENSOR, [_TENSOR]),
    "mt_copy_": (c_int, [_TENSOR, _TENSOR]),
    "mt_reshape": (_TENSOR, [_TENSOR, c_int, _SHAPE]),
    "mt_permute": (_TENSOR, [_TENSOR, _DIMS]),
    "mt_transpose": (_TENSOR, [_TENSOR, c_int, c_int]),
    "mt_slice": (_TENSOR, [_TENSOR, c_int, c_int64, c_int64, c_int64]),
    "mt_expand": (_TENSOR, [_TENSOR, c_int, _SHAPE]),
    "mt_squeeze": (_TENSOR, [_TENSOR, c_int]),
    "mt_unsqueeze": (_TENSOR, [_TENSOR, c_int]),
    "mt_where": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR]),
    "mt_clamp": (_TENSOR, [_TENSOR, c_double, c_double]),
    "mt_cast": (_TENSOR, [_TENSOR, c_int]),
    "mt_argmax": (_TENSOR, [_TENSOR, c_int, c_int]),
    "mt_argmin": (_TENSOR, [_TENSOR, c_int, c_int]),
    "mt_softmax": (_TENSOR, [_TENSOR, c_int]),
    "mt_log_softmax": (_TENSOR, [_TENSOR, c_int]),
    "mt_layer_norm": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR, c_double]),
    "mt_matmul": (_TENSOR, [_TENSOR, _TENSOR]),
    "mt_set_matmul_tf32": (None, [c_int]),
    "mt_matmul_tf32_enabled": (c_int, []),
    "mt_set_num_threads": (None, [c_int]),
    "mt_get_num_threads": (c_int, []),
    "mt_cat": (_TENSOR, [c_int, POINTER(c_void_p), c_int]),
    "mt_stack": (_TENSOR, [c_int, POINTER(c_void_p), c_int]),
    "mt_index_select": (_TENSOR, [_TENSOR, c_int, _TENSOR]),
    "mt_from_blob": (_TENSOR, [c_void_p, c_int, _SHAPE, _SHAPE, c_int, MtDeleter, c_void_p]),
    "mt_data_ptr": (c_void_p, [_TENSOR]),
    "mt_to_dlpack": (c_void_p, [_TENSOR]),
    "mt_from_dlpack": (_TENSOR, [c_void_p]),
}

BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le",
              "gt", "ge", "logical_and", "logical_or")
SCALAR_OPS = ("add_scalar", "mul_scalar", "pow_scalar")
UNARY_OPS = ("neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
             "relu", "gelu", "silu", "floor", "ceil", "round", "sign", "reciprocal",
             "logical_not")
REDUCE_OPS = ("sum", "mean", "prod", "amax", "amin")

_PROTOTYPES.update({"mt_" + n: (_TENSOR, [_TENSOR, _TENSOR]) for n in BINARY_OPS})
_PROTOTYPES.update({"mt_" + n: (_TENSOR, [_TENSOR, c_double]) for n in SCALAR_OPS})
_PROTOTYPES.update({"mt_" + n: (_TENSOR, [_TENSOR]) for n in UNARY_OPS})
_PROTOTYPES.update({"mt_" + n: (_TENSOR, [_TENSOR, c_int, _DIMS, c_int]) for n in REDUCE_OPS})


def _candidates():
    """Paths to try, best first."""
    found = sorted(glob.glob(os.path.join(_PACKAGE_DIR, "libmodaltensor.so*")), key=len)
    trees = glob.glob(os.path.join(_SOURCE_ROOT, "build*", "src", "libmodaltensor.so"))
    found += sorted(trees, key=os.path.getmtime, reverse=True)
    system = ctypes.util.find_library("modaltensor")
    found += [system] if system else []
    return found + [_SONAME]


def _open():
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        try:
            return ctypes.CDLL(explicit), explicit
        except OSError as error:
            raise ImportError(f"modaltensor: {ENV_VAR}={explicit!r} cannot be loaded: {error}") \
                from None
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as error:
            tried.append(f"{path} ({error})")
    raise ImportError("modaltensor: libmodaltensor not found; build it (cmake) or set "
                      f"{ENV_VAR} to its path. Tried: " + "; ".join(tried))


def _declare(lib, prototypes):
    for name, (restype, argtypes) in prototypes.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"modaltensor: {lib._name} has no {name}: "
                              "the library is older than this binding") from None
        function.restype = restype
        function.argtypes = argtypes


lib, path = _open()
_declare(lib, _PROTOTYPES)


def declare(prototypes):
    """Declares more functions (name: (restype, argtypes)) on the library:
    each op family's module (_ops_*.py) holds its own prototypes."""
    _declare(lib, prototypes)
    _PROTOTYPES.update(prototypes)


def shape_array(shape):
    """A ctypes int64 array holding shape (never NULL, also for 0-d)."""
    return (c_int64 * max(len(shape), 1))(*shape)


def dims_array(dims):
    """A ctypes int array holding dims (never NULL, also when empty)."""
    return (c_int * max(len(dims), 1))(*dims)
