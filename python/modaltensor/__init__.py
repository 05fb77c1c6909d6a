"""modaltensor: NumPy- and PyTorch-flavoured tensors on the cpu and on the
modal device, over libmodaltensor's C API (ctypes; no compile step).

    import modaltensor as mt
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], device="modal")
    y = (x @ x.T).relu().sum(dim=1)
    print(y.cpu().numpy())

See docs/python.md for the whole story.
"""

import importlib
import operator

from . import _lib
from . import errors as _errors
from .device import Device, as_device as device
from .dtypes import (DType, bfloat16, bool_, finfo, float16, float32, float64, iinfo, int8,
                     int16, int32, int64, uint8)
from .errors import (DeviceError, DTypeError, InternalError, InvalidArgumentError,
                     ModalTensorError, ModalTimeoutError, OutOfMemoryError, RemoteError,
                     ShapeError, Status, UnauthenticatedError, UnavailableError,
                     UnsupportedError)
from .tensor import (FUNCTION_TABLE, Tensor, arange, as_tensor, cat, concatenate, empty,
                     empty_like, from_dlpack, from_numpy, full, full_like, is_tensor, layer_norm,
                     manual_seed, ones, ones_like, rand, randn, stack, tensor, where, zeros,
                     zeros_like)

from . import _ops_elementwise, _ops_index, _ops_reduce, _safetensors  # noqa: E402
from ._autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from ._ops_elementwise import *  # noqa: F401,F403
from ._ops_index import *  # noqa: F401,F403
from ._safetensors import load_file, save_file  # noqa: F401
from ._ops_reduce import *  # noqa: F401,F403

__version__ = "0.1.0"

globals().update(FUNCTION_TABLE)

# PyTorch's dtype spellings (mt.bool shadows the builtin only as an attribute).
bool = bool_  # noqa: A001
half = float16
double = float64
long = int64
short = int16

library_path = _lib.path


def __getattr__(name):
    """Imports mt.modal on first use, so that `python -m modaltensor.modal`
    (the Modal deployment command) runs that module only once."""
    if name == "modal":
        return importlib.import_module(".modal", __name__)
    raise AttributeError(f"module 'modaltensor' has no attribute {name!r}")


def library_version():
    """Version of the libmodaltensor actually loaded ("MAJOR.MINOR.PATCH")."""
    return _lib.lib.mt_version().decode()


def set_matmul_tf32(enabled):
    """Lets float32 matmuls recorded from now on use TF32 on a GPU worker
    (PyTorch's allow_tf32; off by default, or MODALTENSOR_ALLOW_TF32=1)."""
    _lib.lib.mt_set_matmul_tf32(1 if enabled else 0)


def matmul_tf32_enabled():
    """True when float32 matmuls recorded now may use TF32."""
    return _lib.lib.mt_matmul_tf32_enabled() != 0


def set_num_threads(n):
    """Sets how many threads the cpu kernels (and BLAS) of this process use;
    0 returns to the default (OMP_NUM_THREADS, else the CPUs available).
    Importing torch does not change it. A negative n raises
    InvalidArgumentError and changes nothing."""
    n = operator.index(n)
    _lib.lib.mt_set_num_threads(n)
    if n < 0:
        raise _errors.last_error("mt_set_num_threads")


def get_num_threads():
    """The thread count the cpu kernels use now (at least 1)."""
    return _lib.lib.mt_get_num_threads()


__all__ = [
    "Device", "DType", "Tensor", "modal", "device", "library_path", "library_version",
    "finfo", "iinfo",
    "set_matmul_tf32", "matmul_tf32_enabled", "set_num_threads", "get_num_threads",
    "bool_", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
    "float64", "half", "double", "long", "short",
    "ModalTensorError", "InvalidArgumentError", "ShapeError", "DTypeError", "DeviceError",
    "OutOfMemoryError", "UnsupportedError", "RemoteError", "UnavailableError",
    "ModalTimeoutError", "UnauthenticatedError", "InternalError", "Status",
    "tensor", "as_tensor", "from_numpy", "from_dlpack", "is_tensor", "empty", "zeros", "ones",
    "full", "arange", "rand", "randn", "manual_seed", "empty_like", "zeros_like", "ones_like",
    "full_like", "where", "layer_norm", "cat", "concatenate", "stack",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
] + sorted(FUNCTION_TABLE) + _ops_elementwise.__all__ + _ops_reduce.__all__ + _ops_index.__all__ + _safetensors.__all__
from . import optim  # noqa: E402,F401  (mt.optim.SGD, AdamW; mt.nn.utils.clip_grad_norm_)
