"""The general elementwise (0.2) ops: their ctypes prototypes, Tensor methods and module
functions, with PyTorch's names, argument names and defaults."""

from ctypes import c_double, c_void_p

from . import _lib
from .dtypes import finfo
from .tensor import Tensor, _call, _make_binary, _make_unary, _module_function, tensor

_T = c_void_p  # mt_tensor *

_UNARY = ("erf", "erfc", "log1p", "expm1", "log2", "log10", "tan", "asin", "acos", "atan",
          "sinh", "cosh", "asinh", "acosh", "atanh", "softplus", "gelu_tanh", "mish", "trunc",
          "square", "bitwise_not", "isnan", "isinf", "isfinite")
_BINARY = ("atan2", "remainder", "fmod", "floor_divide", "logical_xor", "bitwise_and",
           "bitwise_or", "bitwise_xor")

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {f"mt_{name}": (_T, [_T]) for name in _UNARY}
PROTOTYPES.update({f"mt_{name}": (_T, [_T, _T]) for name in _BINARY})
PROTOTYPES.update({
    "mt_leaky_relu": (_T, [_T, c_double]),
    "mt_elu": (_T, [_T, c_double]),
    "mt_nan_to_num": (_T, [_T, c_double, c_double, c_double]),
    "mt_masked_fill": (_T, [_T, _T, c_double]),
})
_lib.declare(PROTOTYPES)

for _name in _UNARY:
    setattr(Tensor, _name, _make_unary(_name))
for _name in _BINARY:
    setattr(Tensor, _name, _make_binary(_name))
Tensor.arctan2 = Tensor.atan2  # PyTorch's alias


def _leaky_relu(self, negative_slope=0.01, inplace=False):
    """self where > 0, else self * negative_slope (torch.nn.functional.leaky_relu);
    floating tensors only. inplace=True is not supported (results are new tensors)."""
    _no_inplace("leaky_relu", inplace)
    return _call("leaky_relu", self._h, float(negative_slope))


def _elu(self, alpha=1.0, inplace=False):
    """self where > 0, else alpha * (exp(self) - 1) (torch.nn.functional.elu); floating
    tensors only."""
    _no_inplace("elu", inplace)
    return _call("elu", self._h, float(alpha))


def _no_inplace(name, inplace):
    if inplace:
        raise TypeError(f"modaltensor.{name}: inplace=True is not supported; results are "
                        "new tensors")


def _nan_to_num(self, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced by nan, posinf and neginf (torch.nan_to_num); None
    means the dtype's largest / lowest finite value. Integer and bool tensors come
    back unchanged."""
    if self.dtype.is_floating_point:
        info = finfo(self.dtype)
        posinf = info.max if posinf is None else posinf
        neginf = info.min if neginf is None else neginf
    return _call("nan_to_num", self._h, float(nan), float(0 if posinf is None else posinf),
                 float(0 if neginf is None else neginf))


def _masked_fill(self, mask, value):
    """self with value where the bool mask (broadcasting to self) is true
    (Tensor.masked_fill); value is a number or a 0-d tensor."""
    if not isinstance(mask, Tensor):
        mask = tensor(mask, device=self.device)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError("modaltensor.masked_fill: value: only a 0-d tensor can be a "
                             f"fill value, got {value.ndim} dims")
        value = value.item()
    return _call("masked_fill", self._h, mask._h, float(value))


Tensor.leaky_relu = _leaky_relu
Tensor.elu = _elu
Tensor.nan_to_num = _nan_to_num
Tensor.masked_fill = _masked_fill
for _name in ("leaky_relu", "elu", "nan_to_num", "masked_fill"):
    getattr(Tensor, _name).__name__ = getattr(Tensor, _name).__qualname__ = _name

# Module functions (mt.<name>) this family adds.
__all__ = list(_UNARY) + list(_BINARY) + ["arctan2", "leaky_relu", "elu", "nan_to_num",
                                          "masked_fill"]
for _name in __all__:
    globals()[_name] = _module_function(_name)
