"""The Tensor class and the functions that make and combine tensors.

A Tensor owns one mt_tensor handle and frees it when it is collected. Views
(indexing, reshape, permute, ...) are new handles on the same storage, which
the library keeps alive while any handle remains.
"""

import ctypes
import operator
import random
from ctypes import byref, c_double

import numpy as np

from . import _autograd, _interop, dtypes  # noqa: F401 (_autograd declares the prototypes)
from ._format import tensor_repr
from ._lib import dims_array, lib, shape_array
from .device import Device, as_device, from_c as _device_from_c
from .dtypes import as_dtype, bfloat16, bool_, float32, int64
from .errors import DeviceError, DTypeError, ShapeError, check, last_error

_CTYPES = {dtypes.bool_: ctypes.c_bool, dtypes.uint8: ctypes.c_uint8,
           dtypes.int8: ctypes.c_int8, dtypes.int16: ctypes.c_int16,
           dtypes.int32: ctypes.c_int32, dtypes.int64: ctypes.c_int64}
_INT_RANGE = {d: (np.iinfo(d.name).min, np.iinfo(d.name).max) for d in _CTYPES if d is not bool_}
_EXACT_DOUBLE = 2 ** 53
_SCALAR_TYPES = (bool, int, float, np.bool_, np.integer, np.floating)


def _wrap(handle, fallback):
    """A Tensor owning handle; raises the library's error for NULL."""
    if not handle:
        raise last_error(fallback)
    tensor = object.__new__(Tensor)
    tensor._h = handle
    tensor._shape = tensor._dtype = tensor._device = None
    tensor._leaf = False
    return tensor


def _call(name, *args):
    """Calls mt_<name>, which makes a tensor, and wraps its result."""
    return _wrap(getattr(lib, "mt_" + name)(*args), "mt_" + name)


def _size_arg(size):
    """A shape from f(2, 3), f((2, 3)), f([2, 3]) or f(())."""
    if len(size) == 1:
        try:
            return (operator.index(size[0]),)
        except TypeError:
            size = size[0]
    return tuple(operator.index(s) for s in size)


def _dims_arg(dims):
    """A tuple of dims from permute(1, 0), permute((1, 0)) or permute([1, 0])."""
    if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)):
        dims = dims[0]
    return tuple(operator.index(d) for d in dims)


def _python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _scalar_dtype(tensor_dtype, value):
    """The dtype a Python scalar takes next to a tensor (PyTorch's rules:
    the tensor's dtype wins within a category; an int scalar with a bool tensor
    is int64, a float scalar with an integer tensor float32)."""
    if isinstance(value, bool):
        return tensor_dtype
    if isinstance(value, int):
        if tensor_dtype is bool_:
            return int64
        low_high = _INT_RANGE.get(tensor_dtype)
        if low_high and not low_high[0] <= value <= low_high[1]:
            return int64  # a value the tensor's dtype cannot hold
        return tensor_dtype
    return tensor_dtype if tensor_dtype.is_floating_point else dtypes.DEFAULT_FLOAT


def scalar_tensor(value, dtype, device):
    """A 0-d tensor holding value (exact for integers)."""
    value = _python_scalar(value)
    ctype = _CTYPES.get(dtype)
    if ctype is not None and isinstance(value, int) and dtype is not bool_:
        cell = ctype(value)  # wraps to the dtype's width like the integer ops do
        return _call("from_data", byref(cell), 0, None, dtype.value, device.c)
    return _call("full", 0, None, float(value), dtype.value, device.c)


def _default_dtype_of(value):
    """The dtype of a Python scalar on its own (as torch.tensor(value))."""
    value = _python_scalar(value)
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    return dtypes.DEFAULT_FLOAT


def _coerce(other, like):
    """other as a Tensor on like's device, or None when it cannot be one."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, _SCALAR_TYPES):
        value = _python_scalar(other)
        return scalar_tensor(value, _scalar_dtype(like.dtype, value), like.device)
    if isinstance(other, (np.ndarray, list, tuple)):
        return tensor(other, device=like.device)
    return None


def _scalar_op(name, a, value):
    """a <name> value through mt_add_scalar / mt_mul_scalar / mt_pow_scalar
    where those give PyTorch's result dtype; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not a.dtype.is_floating_point:
        return None  # int tensor and float scalar: float32, not the int dtype
    if isinstance(value, int) and abs(value) > _EXACT_DOUBLE:
        return None  # a double would round it
    if name == "sub":
        name, value = "add", -value
    return _call(name + "_scalar", a._h, float(value))


_SCALAR_FAST = ("add", "sub", "mul", "pow")
_COMMUTATIVE = ("add", "mul")


def _binary(name, a, b, reflected=False):
    """a <name> b (b <name> a when reflected); NotImplemented when b is not
    something a tensor combines with."""
    if not isinstance(b, Tensor):
        if isinstance(b, _SCALAR_TYPES) and name in _SCALAR_FAST and \
                (not reflected or name in _COMMUTATIVE):
            result = _scalar_op(name, a, _python_scalar(b))
            if result is not None:
                return result
        b = _coerce(b, a)
        if b is None:
            return NotImplemented
    if reflected:
        a, b = b, a
    return _call(name, a._h, b._h)


def _dims_tuple(dim):
    if dim is None:
        return ()
    if isinstance(dim, (tuple, list)):
        return tuple(operator.index(d) for d in dim)
    return (operator.index(dim),)


def _same_kind(src, dst):
    """NumPy's same_kind casting: bool -> integer -> floating."""
    order = {"b": 0, "u": 1, "i": 1, "f": 2}
    return order[src.kind] <= order[dst.kind]


class _Exposed:
    """Lends a cpu tensor's memory to NumPy; the array's base keeps the
    tensor (hence its storage) alive."""
    __slots__ = ("__array_interface__", "tensor")

    def __init__(self, interface, tensor):
        self.__array_interface__ = interface
        self.tensor = tensor


class Tensor:
    """An n-dimensional array on a device ("cpu" or "modal:N").

    Make one with modaltensor.tensor(), zeros(), ones(), arange(), rand(),
    from_numpy(), from_dlpack(), ... Operators and methods follow NumPy and
    PyTorch; every operation returns a new tensor (views share memory).
    """
    __slots__ = ("_h", "_shape", "_dtype", "_device", "_leaf", "__weakref__")
    __array_priority__ = 1000  # NumPy defers `ndarray + tensor` to Tensor.__radd__
    __hash__ = object.__hash__

    def __new__(cls, data, dtype=None, device=None):
        return tensor(data, dtype=dtype, device=device)

    def __del__(self, _free=lib.mt_tensor_free):
        handle = getattr(self, "_h", None)
        if handle:
            self._h = None
            _free(handle)

    # ------------------------------------------------------------ metadata

    @property
    def shape(self):
        """The dims, a tuple of ints."""
        if self._shape is None:
            handle = self._h
            self._shape = tuple(lib.mt_shape(handle, i) for i in range(lib.mt_ndim(handle)))
        return self._shape

    @property
    def dtype(self):
        if self._dtype is None:
            self._dtype = dtypes.BY_VALUE[lib.mt_tensor_dtype(self._h)]
        return self._dtype

    @property
    def device(self):
        if self._device is None:
            self._device = _device_from_c(lib.mt_tensor_device(self._h))
        return self._device

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def strides(self):
        """Strides in elements (as PyTorch's stride(); NumPy's are in bytes)."""
        return tuple(lib.mt_stride(self._h, i) for i in range(self.ndim))

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.numel() * self.dtype.itemsize

    @property
    def T(self):
        """The dims reversed (a view), as NumPy's .T."""
        return self.permute(tuple(range(self.ndim - 1, -1, -1)))

    def size(self, dim=None):
        """The shape, or the size of one dim."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return lib.mt_numel(self._h)

    def stride(self, dim=None):
        return self.strides if dim is None else self.strides[dim]

    def element_size(self):
        return self.dtype.itemsize

    def is_contiguous(self):
        return bool(lib.mt_is_contiguous(self._h))

    def data_ptr(self):
        """Address of element [0, ..., 0] of a cpu tensor (0 when empty)."""
        pointer = lib.mt_data_ptr(self._h)
        if not pointer and self.device.type != "cpu":
            raise last_error("mt_data_ptr")
        return pointer or 0

    # ------------------------------------------------------------ autograd

    @property
    def requires_grad(self):
        """True when a backward computes a gradient for this tensor: a leaf
        marked with requires_grad, or the result of a recorded op."""
        return lib.mt_requires_grad(self._h) != 0

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not self.requires_grad:
            check(lib.mt_set_requires_grad(self._h, 1), "mt_set_requires_grad")
            self._leaf = True  # marked here, so a leaf (see is_leaf)
        elif not value:
            check(lib.mt_set_requires_grad(self._h, 0), "mt_set_requires_grad")

    def requires_grad_(self, requires_grad=True):
        """Marks this leaf as requiring a gradient (or not); returns self.
        Integer and bool tensors raise DTypeError; a tensor made by a
        recorded op raises InvalidArgumentError (detach() it first)."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        """True unless this tensor was made by a recorded op (torch's
        is_leaf: every tensor that does not require grad is a leaf)."""
        if not self.requires_grad:
            return True
        # The C API has no query for it. A second handle from mt_to (nothing
        # changed) stands for this tensor in autograd; un-marking it is
        # refused exactly for a recorded result, and for a leaf only drops
        # that handle's mark, so this tensor is left as it was.
        probe = lib.mt_to(self._h, lib.mt_tensor_device(self._h), lib.mt_tensor_dtype(self._h),
                          0)
        if not probe:
            raise last_error("mt_to")
        try:
            if not lib.mt_requires_grad(probe):
                return self._leaf  # a library whose mt_to does not share: what we marked
            if lib.mt_set_requires_grad(probe, 0) == 0:
                return True
            lib.mt_clear_error()
            return False
        finally:
            lib.mt_tensor_free(probe)

    @property
    def grad(self):
        """The gradient accumulated by the backwards so far (a tensor of
        this leaf's shape and dtype), or None when there is none."""
        out = ctypes.c_void_p()
        check(lib.mt_grad(self._h, byref(out)), "mt_grad")
        return _wrap(out.value, "mt_grad") if out.value else None

    @grad.setter
    def grad(self, value):
        if value is not None:
            raise TypeError("modaltensor: Tensor.grad can only be set to None (which drops the "
                            "gradient); the library accumulates gradients itself")
        check(lib.mt_zero_grad(self._h), "mt_zero_grad")

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulates d(self)/d(leaf) * gradient into the .grad of every
        leaf that requires grad (torch.Tensor.backward). gradient None
        needs a one-element tensor; otherwise it has this tensor's shape.
        The graph is freed afterwards: a second backward through it raises.
        retain_graph, create_graph and inputs are not supported."""
        if retain_graph or create_graph or inputs is not None:
            raise ValueError("modaltensor: backward: retain_graph, create_graph and inputs are "
                             "not supported (the graph is freed by the backward)")
        if gradient is not None and not isinstance(gradient, Tensor):
            gradient = _coerce(gradient, self)
            if gradient is None:
                raise TypeError("modaltensor: backward: gradient must be a tensor")
        check(lib.mt_backward(self._h, None if gradient is None else gradient._h),
              "mt_backward")

    @property
    def data(self):
        """This tensor's values without its history (torch's .data: a
        detached tensor sharing the storage)."""
        return self.detach()

    def detach(self):
        """A new tensor on the same values that requires no grad and has no
        history (torch.Tensor.detach)."""
        return _call("detach", self._h)

    # -------------------------------------------------------- conversions

    def to(self, *args, device=None, dtype=None, copy=False):
        """This tensor on another device and/or with another dtype:
        t.to("modal"), t.to("float16"), t.to("cpu", "float64", True),
        t.to(other) (other's device and dtype). Returns a new handle on the
        same storage when nothing changes, unless copy=True."""
        for arg in args:
            if isinstance(arg, bool):
                copy = arg
            elif isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, Device) or (isinstance(arg, str) and arg.startswith(("cpu",
                                                                                    "modal"))):
                device = arg
            else:
                dtype = arg
        target_device = self.device if device is None else as_device(device)
        target_dtype = self.dtype if dtype is None else as_dtype(dtype)
        return _call("to", self._h, target_device.c, target_dtype.value, int(bool(copy)))

    def cpu(self):
        return self.to("cpu")

    def modal(self, index=0):
        return self.to(f"modal:{index}")

    def astype(self, dtype):
        """A copy converted to dtype (NumPy's spelling of .to(dtype=...))."""
        return self.to(dtype=dtype, copy=True)

    def cast(self, dtype):
        """a converted to dtype (mt_cast: float to int truncates and
        saturates, NaN becomes 0, non-zero becomes True)."""
        return _call("cast", self._h, as_dtype(dtype).value)

    def numpy(self, force=False):
        """The values as a NumPy array. For a cpu tensor the array shares its
        memory (writes show in both) unless force=True; a modal tensor is
        downloaded (a sync point). bfloat16 has no NumPy dtype: use
        .float().numpy()."""
        if self.dtype is bfloat16:
            raise DTypeError("modaltensor: numpy: NumPy has no bfloat16; convert first, e.g. "
                             "t.float().numpy()")
        if force or self.device.type != "cpu" or self.numel() == 0:
            return self._download()
        itemsize = self.dtype.itemsize
        interface = {"data": (self.data_ptr(), False), "shape": self.shape,
                     "strides": tuple(s * itemsize for s in self.strides),
                     "typestr": self.dtype.numpy_dtype.str, "version": 3}
        return np.asarray(_Exposed(interface, self))

    def _download(self):
        """A fresh row-major NumPy copy of the values."""
        array = np.empty(self.shape, dtype=self.dtype.numpy_dtype)
        check(lib.mt_to_host(self._h, array.ctypes.data if array.size else None, array.nbytes),
              "mt_to_host")
        return array

    def _host_values(self):
        """The values as NumPy (bfloat16 as float32), for printing."""
        if self.dtype is bfloat16:
            return self.cast(float32)._host_values()
        return self.numpy()

    def __array__(self, dtype=None, copy=None):
        array = self.numpy(force=bool(copy))
        return array if dtype is None else array.astype(dtype, copy=False)

    def tolist(self):
        """The values as nested Python lists (a scalar for a 0-d tensor)."""
        return self._host_values().tolist()

    def item(self):
        """The value of a one-element tensor as a Python bool, int or float."""
        dtype = self.dtype
        if dtype.is_integer and self.numel() == 1:
            cell = _CTYPES[dtype]()
            check(lib.mt_to_host(self._h, byref(cell), dtype.itemsize), "mt_to_host")
            return cell.value
        out = c_double()
        check(lib.mt_item(self._h, byref(out)), "mt_item")
        return bool(out.value) if dtype is bool_ else out.value

    def __bool__(self):
        if self.numel() != 1:
            raise ValueError(f"the truth value of a tensor with {self.numel()} elements is "
                             "ambiguous")
        return bool(self.item())

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __index__(self):
        if not (self.dtype.is_integer or self.dtype is bool_) or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __contains__(self, value):
        return bool((self == value).any())

    def __repr__(self):
        return tensor_repr(self)

    def __format__(self, spec):
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce__(self):
        values = self.contiguous()
        data = ctypes.create_string_buffer(max(self.nbytes, 1))
        check(lib.mt_to_host(values._h, data, self.nbytes), "mt_to_host")
        return (_rebuild, (data.raw[:self.nbytes], self.shape, self.dtype.name, str(self.device)))

    # ----------------------------------------------------- DLPack, NumPy

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Exports this cpu tensor as a DLPack 0.6 capsule sharing its memory
        (bool travels as kDLBool, DLPack code 6). copy=True exports a copy."""
        if dl_device is not None and tuple(dl_device) != (_interop.KDL_CPU, 0):
            raise BufferError(f"modaltensor: __dlpack__: dl_device {dl_device} is not the cpu")
        source = self.clone() if copy else self
        return _interop.to_capsule(source._h)

    def __dlpack_device__(self):
        if self.device.type != "cpu":
            raise DeviceError(f"modaltensor: __dlpack_device__: the tensor is on {self.device}; "
                              "DLPack exchange is for cpu tensors (use .cpu() first)")
        return (_interop.KDL_CPU, 0)

    # ------------------------------------------------------------- copies

    def clone(self):
        """A contiguous copy with its own storage."""
        return _call("clone", self._h)

    def contiguous(self):
        """This tensor when already contiguous (a new handle), else a copy."""
        return _call("contiguous", self._h)

    def copy_(self, src):
        """Writes src (a tensor, array or scalar, broadcast and converted to
        this tensor's dtype) into this tensor, which may be a view."""
        if isinstance(src, Tensor):
            if src.device != self.device:
                src = src.to(self.device)
        elif isinstance(src, _SCALAR_TYPES):
            src = scalar_tensor(src, self.dtype, self.device)
        else:
            src = tensor(src, device=self.device)
        check(lib.mt_copy_(self._h, src._h), "mt_copy_")
        return self

    def fill_(self, value):
        return self.copy_(value)

    def zero_(self):
        """Writes zeros into this tensor (torch's zero_); returns it."""
        return self.copy_(0)

    # --------------------------------------------------------------- views

    def reshape(self, *shape):
        """Same values in a new shape (one dim may be -1); a view when the
        strides allow, else a copy."""
        shape = _size_arg(shape)
        return _call("reshape", self._h, len(shape), shape_array(shape))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        shape = self.shape
        start, end = start_dim % self.ndim, end_dim % self.ndim
        merged = 1
        for size in shape[start:end + 1]:
            merged *= size
        return self.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def permute(self, *dims):
        dims = _dims_arg(dims)
        if len(dims) != self.ndim:
            raise ShapeError(f"mt_permute: dims: {len(dims)} dims for a tensor of {self.ndim}")
        return _call("permute", self._h, dims_array(dims))

    def transpose(self, dim0, dim1):
        return _call("transpose", self._h, dim0, dim1)

    def expand(self, *shape):
        """A view broadcast to shape with stride 0 (-1 keeps a dim)."""
        shape = _size_arg(shape)
        return _call("expand", self._h, len(shape), shape_array(shape))

    def expand_as(self, other):
        return self.expand(other.shape)

    def squeeze(self, dim=None):
        """Removes dim (of size 1), or every dim of size 1 when dim is None."""
        if dim is not None:
            return _call("squeeze", self._h, dim)
        result = _alias(self)
        for d in reversed(range(self.ndim)):
            if self.shape[d] == 1:
                result = _call("squeeze", result._h, d)
        return result

    def unsqueeze(self, dim):
        return _call("unsqueeze", self._h, dim)

    def slice(self, dim, start=None, end=None, step=1):
        """t[start:end:step] along dim (a view)."""
        return _slice(self, dim, slice(start, end, step))

    def __getitem__(self, key):
        return _index(self, key)[0]

    def __setitem__(self, key, value):
        view, is_view = _index(self, key)
        if not is_view:
            raise IndexError("assignment through integer-array or mask indices is not supported "
                             "(index with ints, slices and None)")
        view.copy_(value)

    # ----------------------------------------------------------- operators

    def __add__(self, other):
        return _binary("add", self, other)

    def __radd__(self, other):
        return _binary("add", self, other, reflected=True)

    def __sub__(self, other):
        return _binary("sub", self, other)

    def __rsub__(self, other):
        return _binary("sub", self, other, reflected=True)

    def __mul__(self, other):
        return _binary("mul", self, other)

    def __rmul__(self, other):
        return _binary("mul", self, other, reflected=True)

    def __truediv__(self, other):
        return _binary("div", self, other)

    def __rtruediv__(self, other):
        return _binary("div", self, other, reflected=True)

    def __pow__(self, other, modulo=None):
        if modulo is not None:
            return NotImplemented
        return _binary("pow", self, other)

    def __rpow__(self, other):
        return _binary("pow", self, other, reflected=True)

    def __matmul__(self, other):
        return _binary("matmul", self, other)

    def __rmatmul__(self, other):
        return _binary("matmul", self, other, reflected=True)

    def __eq__(self, other):
        return _binary("eq", self, other)

    def __ne__(self, other):
        return _binary("ne", self, other)

    def __lt__(self, other):
        return _binary("lt", self, other)

    def __le__(self, other):
        return _binary("le", self, other)

    def __gt__(self, other):
        return _binary("gt", self, other)

    def __ge__(self, other):
        return _binary("ge", self, other)

    def __and__(self, other):
        return self._logical("bitwise_and", other)

    def __rand__(self, other):
        return self._logical("bitwise_and", other, reflected=True)

    def __or__(self, other):
        return self._logical("bitwise_or", other)

    def __ror__(self, other):
        return self._logical("bitwise_or", other, reflected=True)

    def __xor__(self, other):
        return self._logical("bitwise_xor", other)

    def __rxor__(self, other):
        return self._logical("bitwise_xor", other, reflected=True)

    def __invert__(self):
        return _call("bitwise_not", self._h)

    def _logical(self, name, other, reflected=False):
        """&, |, ^ as PyTorch: bitwise for integer and bool tensors (for bool
        the logical ops); floating operands are refused by the library."""
        return _binary(name, self, other, reflected)

    def __mod__(self, other):
        return _binary("remainder", self, other)

    def __rmod__(self, other):
        return _binary("remainder", self, other, reflected=True)

    def __floordiv__(self, other):
        return _binary("floor_divide", self, other)

    def __rfloordiv__(self, other):
        return _binary("floor_divide", self, other, reflected=True)

    def __neg__(self):
        return _call("neg", self._h)

    def __pos__(self):
        return self

    def __abs__(self):
        return _call("abs", self._h)

    def _inplace(self, name, other):
        """self <name>= other: computed, then written back into self (which
        may be a view) when the result's dtype casts to self's."""
        result = _binary(name, self, other)
        if result is NotImplemented:
            return NotImplemented
        if not _same_kind(result.dtype, self.dtype):
            raise DTypeError(f"modaltensor: {name}: result dtype {result.dtype} cannot be "
                             f"written in place into {self.dtype}")
        check(lib.mt_copy_(self._h, result._h), "mt_copy_")
        return self

    def __iadd__(self, other):
        return self._inplace("add", other)

    def __isub__(self, other):
        return self._inplace("sub", other)

    def __imul__(self, other):
        return self._inplace("mul", other)

    def __itruediv__(self, other):
        return self._inplace("div", other)

    def __ipow__(self, other):
        return self._inplace("pow", other)

    # --------------------------------------------------------- named ops

    def clamp(self, min=None, max=None):
        """min(max(t, min), max) in t's dtype; None means no bound."""
        low = float("-inf") if min is None else float(min)
        high = float("inf") if max is None else float(max)
        return _call("clamp", self._h, low, high)

    clip = clamp

    def where(self, condition, other):
        """condition ? self : other (PyTorch's Tensor.where)."""
        return where(condition, self, other)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
        """Index (int64) of the first maximum along dim (of the flattened
        tensor when dim is None)."""
        dim, keepdim = _numpy_style(dim, keepdim, axis, keepdims, out)
        if dim is None:
            return self.reshape(-1).argmax(0)
        return _call("argmax", self._h, dim, int(keepdim))

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
        """Index (int64) of the first minimum along dim (of the flattened
        tensor when dim is None)."""
        dim, keepdim = _numpy_style(dim, keepdim, axis, keepdims, out)
        if dim is None:
            return self.reshape(-1).argmin(0)
        return _call("argmin", self._h, dim, int(keepdim))

    def softmax(self, dim=-1):
        return _call("softmax", self._h, dim)

    def log_softmax(self, dim=-1):
        return _call("log_softmax", self._h, dim)

    def layer_norm(self, weight=None, bias=None, eps=1e-5):
        """Normalises over the last dim, then scales by weight and shifts by
        bias (each 1-D of the last dim's size, or None)."""
        return layer_norm(self, weight, bias, eps)

    def matmul(self, other):
        return _binary("matmul", self, other)

    def index_select(self, dim, index):
        """Entries along dim picked by a 0-d or 1-D integer index."""
        index = _index_tensor(index, self.device)  # a local keeps the handle alive
        return _call("index_select", self._h, dim, index._h)


def _alias(t):
    """A new handle viewing all of t."""
    return _call("reshape", t._h, t.ndim, shape_array(t.shape))


def _rebuild(data, shape, dtype, device):
    """Unpickles a Tensor."""
    return _call("from_data", data, len(shape), shape_array(shape), as_dtype(dtype).value,
                 as_device(device).c)


# Ops with a plain signature become both methods and module functions.
def _make_binary(name):
    def op(self, other):
        result = _binary(name, self, other)
        if result is NotImplemented:
            raise TypeError(f"modaltensor.{name}: cannot combine a tensor with "
                            f"{type(other).__name__}")
        return result
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} with broadcasting (mt_{name})."
    return op


def _make_unary(name):
    def op(self):
        return _call(name, self._h)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (mt_{name})."
    return op


def _numpy_style(dim, keepdim, axis, keepdims, out):
    """dim and keepdim, also from NumPy's spellings (numpy.sum(t) calls
    t.sum(axis=..., dtype=..., out=...))."""
    if out is not None:
        raise TypeError("modaltensor: out= is not supported; results are new tensors")
    return (dim if axis is None else axis), (keepdim if keepdims is None else keepdims)


def _make_reduction(name):
    def op(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None, out=None):
        dim, keepdim = _numpy_style(dim, keepdim, axis, keepdims, out)
        source = self if dtype is None else self.to(dtype=dtype)
        dims = _dims_tuple(dim)
        return _call(name, source._h, len(dims), dims_array(dims), int(keepdim))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"{name} over dim (an int or a tuple; all dims when None), keeping "
                  f"reduced dims as size 1 when keepdim (mt_{name}). NumPy's axis, keepdims "
                  "and dtype (converts the input first) are accepted too.")
    return op


for _name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le",
              "gt", "ge", "logical_and", "logical_or"):
    setattr(Tensor, _name, _make_binary(_name))
for _name in ("neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
              "relu", "gelu", "silu", "floor", "ceil", "round", "sign", "reciprocal",
              "logical_not"):
    setattr(Tensor, _name, _make_unary(_name))
for _name in ("sum", "mean", "prod", "amax", "amin"):
    setattr(Tensor, _name, _make_reduction(_name))


def _make_conversion(name, dtype):
    def convert(self):
        return self.to(dtype=dtype)
    convert.__name__ = convert.__qualname__ = name
    convert.__doc__ = f"This tensor as {dtype.name} (PyTorch's shorthand)."
    return convert


# PyTorch's shorthands (Tensor.float() is float32, Tensor.int() int32).
for _method, _dtype in (("float", dtypes.float32), ("double", dtypes.float64),
                        ("half", dtypes.float16), ("bfloat16", dtypes.bfloat16),
                        ("int", dtypes.int32), ("long", dtypes.int64), ("short", dtypes.int16),
                        ("char", dtypes.int8), ("byte", dtypes.uint8), ("bool", dtypes.bool_)):
    setattr(Tensor, _method, _make_conversion(_method, _dtype))


# ----------------------------------------------------------------- indexing

def _slice(t, dim, key):
    if key.step is not None and operator.index(key.step) <= 0:
        raise ValueError("modaltensor: slice step must be positive")
    if key == slice(None):
        return t
    start = 0 if key.start is None else operator.index(key.start)
    end = (1 << 62) if key.stop is None else operator.index(key.stop)
    step = 1 if key.step is None else operator.index(key.step)
    return _call("slice", t._h, dim, start, end, step)


def _index_tensor(index, device):
    """An index (tensor, array, list or int) as a tensor on device; its dtype
    is for mt_index_select to judge."""
    if not isinstance(index, Tensor):
        array = np.asarray(index)
        return tensor(array if array.size else array.astype(np.int64), device=device)
    return index if index.device == device else index.to(device)


def _classify(item):
    """("new" | "ellipsis" | "int" | "slice" | "array", value) for one index."""
    if item is None:
        return "new", None
    if item is Ellipsis:
        return "ellipsis", None
    if isinstance(item, slice):
        return "slice", item
    if isinstance(item, (bool, np.bool_)):
        raise IndexError("modaltensor: a bool scalar is not a supported index")
    if isinstance(item, (int, np.integer)) or (isinstance(item, Tensor) and item.ndim == 0 and
                                                item.dtype.is_integer):
        return "int", operator.index(item)
    if isinstance(item, (Tensor, np.ndarray, list, tuple)):
        return "array", item
    raise IndexError(f"modaltensor: {type(item).__name__} is not a valid index (ints, slices, "
                     "None, ..., and integer or bool arrays are)")


def _index(t, key):
    """t[key] and whether it is a view of t (basic indexing) or a copy."""
    items = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    arrays = [value for kind, value in items if kind == "array"]
    if len(arrays) > 1:
        raise IndexError("modaltensor: at most one integer-array or mask index is supported")
    masks = {}
    consumed = 0
    for kind, value in items:
        if kind in ("int", "slice"):
            consumed += 1
        elif kind == "array":
            mask = _as_mask(value)
            if mask is not None:
                masks[id(value)] = mask
            consumed += mask.ndim if mask is not None else 1
    if sum(kind == "ellipsis" for kind, _ in items) > 1:
        raise IndexError("modaltensor: an index can only have a single ellipsis ('...')")
    if consumed > t.ndim:
        raise IndexError(f"modaltensor: too many indices for a tensor of dimension {t.ndim}")
    result, dim = t, 0
    for kind, value in items:
        if kind == "new":
            result = result.unsqueeze(dim)
            dim += 1
        elif kind == "ellipsis":
            dim += t.ndim - consumed
        elif kind == "slice":
            result = _slice(result, dim, value)
            dim += 1
        elif kind == "int":
            size = result.shape[dim]
            if not -size <= value < size:
                raise IndexError(f"modaltensor: index {value} is out of bounds for dimension "
                                 f"{dim} with size {size}")
            value %= size
            row = _call("slice", result._h, dim, value, value + 1, 1)
            result = _call("squeeze", row._h, dim)
        elif id(value) in masks:
            result, dim = _select_mask(result, dim, masks[id(value)])
        else:
            result, dim = _select_indices(result, dim, value)
    return (_alias(t) if result is t else result), not arrays


def _as_mask(value):
    """value as a NumPy bool array when it is a mask, else None."""
    if isinstance(value, Tensor):
        return value.numpy() if value.dtype is bool_ else None
    array = np.asarray(value)
    return array if array.dtype == np.bool_ else None


def _select_indices(t, dim, index):
    """t indexed along dim by an integer array of any shape (NumPy's rules
    for a single advanced index)."""
    index = _index_tensor(index, t.device)
    if not index.dtype.is_integer:
        raise IndexError(f"modaltensor: an index of dtype {index.dtype} is neither integer nor "
                         "bool")
    if index.dtype not in (dtypes.int32, dtypes.int64):
        index = index.to(dtype=int64)
    flat = index.reshape(-1) if index.ndim != 1 else index
    picked = t.index_select(dim, flat)
    if index.ndim != 1:
        picked = picked.reshape(t.shape[:dim] + index.shape + t.shape[dim + 1:])
    return picked, dim + index.ndim


def _select_mask(t, dim, mask):
    """t indexed along dims dim.. by a bool mask covering them."""
    covered = t.shape[dim:dim + mask.ndim]
    if covered != mask.shape:
        raise IndexError(f"modaltensor: mask of shape {mask.shape} does not match the indexed "
                         f"dims {covered}")
    count = 1
    for size in covered:
        count *= size
    merged = t.reshape(t.shape[:dim] + (count,) + t.shape[dim + mask.ndim:])
    picks = np.flatnonzero(mask).astype(np.int64)
    return merged.index_select(dim, picks), dim + 1


# ------------------------------------------------------------- functions

def is_tensor(obj):
    return isinstance(obj, Tensor)


def _marked(t, requires_grad):
    """t, marked as requiring grad when asked (the creation functions'
    requires_grad=, which raises DTypeError for integer dtypes as torch)."""
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of data: nested lists, a scalar, a NumPy
    array, anything numpy.asarray takes, or a Tensor. Without dtype, Python
    floats give float32 and ints int64 (as PyTorch); NumPy arrays keep their
    dtype. requires_grad=True makes it a leaf that requires grad."""
    if requires_grad:
        return _marked(tensor(data, dtype, device), True)
    if isinstance(data, Tensor):
        return data.detach().to(device=device or data.device, dtype=dtype, copy=True)
    target = None if dtype is None else as_dtype(dtype)
    device = as_device(device)
    native = isinstance(data, (list, tuple, bool, int, float)) and \
        not isinstance(data, np.generic)  # (np.float64 is a float)
    array = np.asarray(data)
    source = dtypes.from_numpy_dtype(array.dtype)
    if source is None:
        array = _supported_array(array)
        source = dtypes.from_numpy_dtype(array.dtype)
    if native and target is None and source is dtypes.float64:
        target = dtypes.DEFAULT_FLOAT
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    result = _call("from_data", array.ctypes.data if array.size else None, array.ndim,
                   shape_array(array.shape), source.value, device.c)
    return result if target is None or target is source else result.cast(target)


def _supported_array(array):
    """array converted to a dtype modaltensor holds, if it is numeric: the
    native byte order of its dtype, or else int64 (uint16/32/64; uint64 wraps
    above 2**63) or float64 (longdouble)."""
    kind = array.dtype.kind
    if kind not in "uif":
        raise DTypeError(f"modaltensor: data of NumPy dtype {array.dtype} has no modaltensor "
                         "dtype")
    native = array.dtype.newbyteorder("=")
    if dtypes.from_numpy_dtype(native) is None:
        native = np.float64 if kind == "f" else np.int64
    return array.astype(native)


def as_tensor(data, dtype=None, device=None):
    """data as a tensor, sharing memory where it can: a Tensor already of
    that dtype and device is returned as is, a NumPy array for the cpu
    device is wrapped without copying (as from_numpy)."""
    if isinstance(data, Tensor):
        if (dtype is None or as_dtype(dtype) is data.dtype) and \
                (device is None or as_device(device) == data.device):
            return data
        return data.to(device=device or data.device, dtype=dtype)
    if isinstance(data, np.ndarray) and as_device(device).type == "cpu" and \
            dtypes.from_numpy_dtype(data.dtype) is not None and \
            (dtype is None or as_dtype(dtype) == data.dtype) and \
            all(s >= 0 and s % data.itemsize == 0 for s in data.strides):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A cpu tensor sharing the memory of a NumPy array (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"modaltensor.from_numpy: expected a numpy.ndarray, got "
                        f"{type(array).__name__}")
    return _wrap(_interop.from_numpy(array), "mt_from_blob")


def from_dlpack(obj):
    """A cpu tensor sharing the memory of obj, an object with __dlpack__
    (NumPy arrays, PyTorch tensors, ...) or a "dltensor" capsule."""
    if hasattr(obj, "__dlpack__"):
        if hasattr(obj, "__dlpack_device__"):
            device_type, _ = obj.__dlpack_device__()
            if device_type not in (_interop.KDL_CPU, _interop.KDL_CUDA_HOST):
                raise DeviceError(f"modaltensor.from_dlpack: obj: DLPack device type "
                                    f"{device_type} is not host memory")
        if isinstance(obj, np.ndarray) and obj.dtype == np.bool_:
            return from_numpy(obj)  # NumPy < 1.25 does not export bool through DLPack
        capsule = obj.__dlpack__()
    else:
        capsule = obj
    return _wrap(_interop.from_capsule(capsule), "mt_from_dlpack")


def _creation_args(size, dtype, device):
    """(ndim, shape, dtype, device) arguments of the creation calls."""
    shape = _size_arg(size)
    dtype = dtypes.DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return len(shape), shape_array(shape), dtype.value, as_device(device).c


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of the given shape with unspecified values (float32 unless
    dtype says otherwise)."""
    return _marked(_call("empty", *_creation_args(size, dtype, device)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _marked(_call("zeros", *_creation_args(size, dtype, device)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _marked(_call("ones", *_creation_args(size, dtype, device)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with fill_value; its dtype follows fill_value's
    Python type (bool, int64, float32) unless given."""
    if dtype is None:
        dtype = _default_dtype_of(fill_value)
    ndim, shape, dtype, device = _creation_args((size,), dtype, device)
    return _marked(_call("full", ndim, shape, float(fill_value), dtype, device), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """start, start+step, ... up to end (excluded); arange(n) counts 0..n-1.
    int64 when every argument is an integer, float32 otherwise."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    for v in (start, end, step))
        dtype = int64 if whole else dtypes.DEFAULT_FLOAT
    return _marked(_call("arange", float(start), float(end), float(step),
                         as_dtype(dtype).value, as_device(device).c), requires_grad)


_seeds = random.Random()


def manual_seed(seed):
    """Seeds the sequence that rand() and randn() draw seeds from."""
    _seeds.seed(seed)


def rand(*size, dtype=None, device=None, seed=None, requires_grad=False):
    """Uniform [0, 1) values. The same seed, shape and dtype give the same
    values on every device; without seed, one is drawn (see manual_seed)."""
    seed = _seeds.getrandbits(64) if seed is None else seed
    return _marked(_call("rand", *_creation_args(size, dtype, device), seed), requires_grad)


def randn(*size, dtype=None, device=None, seed=None, requires_grad=False):
    """Standard normal values (see rand for seeds)."""
    seed = _seeds.getrandbits(64) if seed is None else seed
    return _marked(_call("randn", *_creation_args(size, dtype, device), seed), requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    return empty(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def where(condition, a, b):
    """condition ? a : b elementwise; a and b may be scalars."""
    if not isinstance(condition, Tensor):
        condition = tensor(condition)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:
        like = scalar_tensor(a, _default_dtype_of(a), condition.device)
    a, b = _coerce(a, like), _coerce(b, like)
    if a is None or b is None:
        raise TypeError("modaltensor.where: a and b must be tensors, arrays or scalars")
    return _call("where", condition._h, a._h, b._h)


def layer_norm(a, weight=None, bias=None, eps=1e-5):
    """(a - mean) / sqrt(var + eps) * weight + bias over the last dim."""
    handles = [None if w is None else _coerce(w, a) for w in (weight, bias)]
    return _call("layer_norm", a._h, *[None if w is None else w._h for w in handles],
                 float(eps))


def _joined(name, tensors, dim):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"modaltensor.{name}: needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    if like is None:
        tensors = [tensor(t) for t in tensors]
    else:
        tensors = [t if isinstance(t, Tensor) else tensor(t, device=like.device) for t in tensors]
    handles = (ctypes.c_void_p * len(tensors))(*[t._h for t in tensors])
    return _call(name, len(tensors), handles, dim)


def cat(tensors, dim=0):
    """Joins tensors along an existing dim (dtypes promote)."""
    return _joined("cat", tensors, dim)


concatenate = cat


def stack(tensors, dim=0):
    """Joins tensors along a new dim."""
    return _joined("stack", tensors, dim)


def _module_function(name):
    method = getattr(Tensor, name)

    def function(a, *args, **kwargs):
        if not isinstance(a, Tensor):
            other = args[0] if args else None
            a = _coerce(a, other) if isinstance(other, Tensor) else tensor(a)
        return method(a, *args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = method.__doc__
    return function


FUNCTIONS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le",
             "gt", "ge", "logical_and", "logical_or", "neg", "abs", "exp", "log", "sqrt",
             "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "gelu", "silu", "floor", "ceil",
             "round", "sign", "reciprocal", "logical_not", "clamp", "clip", "cast", "sum", "mean",
             "prod", "amax", "amin", "argmax", "argmin", "softmax", "log_softmax", "matmul",
             "index_select", "reshape", "permute", "transpose", "expand", "squeeze", "unsqueeze",
             "flatten", "clone", "contiguous")
FUNCTION_TABLE = {name: _module_function(name) for name in FUNCTIONS}
