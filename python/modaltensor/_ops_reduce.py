"""The reductions, scans, sorting (0.2) ops: their ctypes prototypes, Tensor methods and module
functions, with PyTorch's names, argument names and defaults."""

import collections
from ctypes import POINTER, byref, c_double, c_int, c_int64, c_void_p

from . import _lib
from ._lib import _DIMS, _TENSOR, dims_array, lib
from .dtypes import as_dtype
from .errors import check
from .tensor import Tensor, _call, _dims_tuple, _module_function, _numpy_style, _wrap

_OUT = POINTER(c_void_p)  # mt_tensor **

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_var": (_TENSOR, [_TENSOR, c_int, _DIMS, c_double, c_int]),
    "mt_std": (_TENSOR, [_TENSOR, c_int, _DIMS, c_double, c_int]),
    "mt_logsumexp": (_TENSOR, [_TENSOR, c_int, _DIMS, c_int]),
    "mt_norm": (_TENSOR, [_TENSOR, c_double, c_int, _DIMS, c_int]),
    "mt_all": (_TENSOR, [_TENSOR, c_int, _DIMS, c_int]),
    "mt_any": (_TENSOR, [_TENSOR, c_int, _DIMS, c_int]),
    "mt_max_dim": (c_int, [_TENSOR, c_int, c_int, _OUT, _OUT]),
    "mt_min_dim": (c_int, [_TENSOR, c_int, c_int, _OUT, _OUT]),
    "mt_cumsum": (_TENSOR, [_TENSOR, c_int]),
    "mt_cumprod": (_TENSOR, [_TENSOR, c_int]),
    "mt_sort": (c_int, [_TENSOR, c_int, c_int, _OUT, _OUT]),
    "mt_argsort": (_TENSOR, [_TENSOR, c_int, c_int]),
    "mt_topk": (c_int, [_TENSOR, c_int64, c_int, c_int, _OUT, _OUT]),
}
_lib.declare(PROTOTYPES)

# torch.return_types' (values, indices) named tuples.
_RETURN_TYPES = {name: collections.namedtuple(name, ["values", "indices"])
                 for name in ("max", "min", "sort", "topk")}


def _pair(name, c_name, *args):
    """Calls mt_<c_name>, which writes two tensors, as a (values, indices) named tuple."""
    values, indices = c_void_p(), c_void_p()
    check(getattr(lib, "mt_" + c_name)(*args, byref(values), byref(indices)), "mt_" + c_name)
    return _RETURN_TYPES[name](_wrap(values.value, "mt_" + c_name),
                               _wrap(indices.value, "mt_" + c_name))


def _over(name, self, dim, *scalar, keepdim=False):
    """mt_<name>(self, ndims, dims, [scalar], keepdim) for dim None (all), an int or a tuple."""
    dims = _dims_tuple(dim)
    return _call(name, self._h, len(dims), dims_array(dims), *scalar, int(keepdim))


# ----------------------------------------------------------------- reductions

def _correction(name, unbiased, correction):
    if unbiased is not None and correction is not None:
        raise TypeError(f"modaltensor.{name}: give unbiased or correction, not both")
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The variance over dim (an int, a tuple, or None for all dims) with
    Bessel's correction: sum((x - mean)^2) / (N - correction), correction 1
    by default, 0 when unbiased=False (torch.var)."""
    if isinstance(dim, bool):  # torch.var(input, unbiased)
        dim, unbiased = None, dim
    return _over("var", self, dim, _correction("var", unbiased, correction), keepdim=keepdim)


def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The standard deviation, sqrt of var with the same arguments (torch.std)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return _over("std", self, dim, _correction("std", unbiased, correction), keepdim=keepdim)


def logsumexp(self, dim=None, keepdim=False):
    """log(sum(exp(self))) over dim, computed without overflow (torch.logsumexp);
    integer inputs give float32."""
    return _over("logsumexp", self, dim, keepdim=keepdim)


def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    """The vector p-norm over dim (torch.norm): p 2 ('fro', the default), 1,
    inf, -inf, 0 (the number of non-zeros) or any other number; floating
    tensors only. dtype converts the input first."""
    if p is None or p == "fro":
        p = 2.0
    elif isinstance(p, str):
        raise ValueError(f"modaltensor.norm: p={p!r} is not supported (numbers and 'fro')")
    source = self if dtype is None else self.to(dtype=dtype)
    dims = _dims_tuple(dim)
    return _call("norm", source._h, float(p), len(dims), dims_array(dims), int(keepdim))


def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):  # noqa: A001
    """True where every element over dim (all dims when None) is non-zero (bool)."""
    dim, keepdim = _numpy_style(dim, keepdim, axis, keepdims, out)
    return _over("all", self, dim, keepdim=keepdim)


def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):  # noqa: A001
    """True where some element over dim (all dims when None) is non-zero (bool)."""
    dim, keepdim = _numpy_style(dim, keepdim, axis, keepdims, out)
    return _over("any", self, dim, keepdim=keepdim)


def _extreme(name, self, dim, keepdim, other):
    if isinstance(dim, Tensor) and other is None:
        dim, other = None, dim
    if other is not None:
        return getattr(self, "maximum" if name == "max" else "minimum")(other)
    if dim is None:
        return getattr(self, "amax" if name == "max" else "amin")()
    return _pair(name, name + "_dim", self._h, dim, int(keepdim))


def max(self, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """Without dim, the largest element (0-d, NaN if there is one); with dim,
    the (values, indices) named tuple of the max along dim, ties giving the
    first index (torch.max); with a tensor, the elementwise maximum."""
    return _extreme("max", self, dim, keepdim, other)


def min(self, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """As max, for the smallest."""
    return _extreme("min", self, dim, keepdim, other)


# ----------------------------------------------------------------- scans

def cumsum(self, dim, *, dtype=None):
    """Running sum along dim (torch.cumsum): integers and bool give int64;
    dtype converts the input first and the result to dtype."""
    return _scan("cumsum", self, dim, dtype)


def cumprod(self, dim, *, dtype=None):
    """Running product along dim (torch.cumprod), dtypes as cumsum's."""
    return _scan("cumprod", self, dim, dtype)


def _scan(name, self, dim, dtype):
    if dtype is None:
        return _call(name, self._h, dim)
    dtype = as_dtype(dtype)
    source = self.to(dtype=dtype)  # a local keeps the handle alive through the call
    result = _call(name, source._h, dim)
    return result if result.dtype == dtype else result.to(dtype=dtype)


# ----------------------------------------------------------------- sorting

def sort(self, dim=-1, descending=False, stable=False):
    """The (values, indices) named tuple of self sorted along dim (torch.sort);
    always stable (equal elements keep their order), NaN sorts as the
    largest value."""
    return _pair("sort", "sort", self._h, dim, int(bool(descending)))


def argsort(self, dim=-1, descending=False, stable=False):
    """The int64 indices that sort self along dim (torch.argsort, stable)."""
    return _call("argsort", self._h, dim, int(bool(descending)))


def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """The (values, indices) named tuple of the k largest (or smallest)
    elements along dim, largest (smallest) first; ties give the lower index
    first (torch.topk). The results are always sorted."""
    return _pair("topk", "topk", self._h, k, dim, int(bool(largest)))


_METHODS = {"var": var, "std": std, "logsumexp": logsumexp, "norm": norm, "all": all, "any": any,
            "max": max, "min": min, "cumsum": cumsum, "cumprod": cumprod, "sort": sort,
            "argsort": argsort, "topk": topk}
for _name, _method in _METHODS.items():
    setattr(Tensor, _name, _method)

# Module functions: torch.<name>(input, ...), input converted as other module functions do.
for _name in _METHODS:
    globals()[_name] = _module_function(_name)

# Module functions (mt.<name>) this family adds.
__all__ = sorted(_METHODS)
