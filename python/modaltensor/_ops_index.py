"""The indexing, shape, creation, sampling (0.2) ops: their ctypes prototypes, Tensor methods and module
functions, with PyTorch's names, argument names and defaults."""

import operator
from ctypes import c_double, c_int, c_int64, c_uint64

from . import _lib, dtypes
from ._lib import _DIMS, _SHAPE, _TENSOR, MtDevice, dims_array, shape_array
from .device import as_device
from .dtypes import as_dtype
from .errors import ShapeError
from .tensor import (Tensor, _call, _creation_args, _dims_arg, _index_tensor, _marked, _seeds,
                     _size_arg, full)

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_eye": (_TENSOR, [c_int64, c_int64, c_int, MtDevice]),
    "mt_linspace": (_TENSOR, [c_double, c_double, c_int64, c_int, MtDevice]),
    "mt_randint": (_TENSOR, [c_int64, c_int64, c_int, _SHAPE, c_int, MtDevice, c_uint64]),
    "mt_gather": (_TENSOR, [_TENSOR, c_int, _TENSOR]),
    "mt_scatter": (_TENSOR, [_TENSOR, c_int, _TENSOR, _TENSOR]),
    "mt_scatter_add": (_TENSOR, [_TENSOR, c_int, _TENSOR, _TENSOR]),
    "mt_index_add": (_TENSOR, [_TENSOR, c_int, _TENSOR, _TENSOR]),
    "mt_embedding": (_TENSOR, [_TENSOR, _TENSOR]),
    "mt_one_hot": (_TENSOR, [_TENSOR, c_int64]),
    "mt_flip": (_TENSOR, [_TENSOR, c_int, _DIMS]),
    "mt_roll": (_TENSOR, [_TENSOR, c_int, _SHAPE, _DIMS]),
    "mt_repeat": (_TENSOR, [_TENSOR, c_int, _SHAPE]),
    "mt_pad": (_TENSOR, [_TENSOR, c_int, _SHAPE, c_int, c_double]),
    "mt_tril": (_TENSOR, [_TENSOR, c_int64]),
    "mt_triu": (_TENSOR, [_TENSOR, c_int64]),
    "mt_multinomial": (_TENSOR, [_TENSOR, c_int64, c_int, c_uint64]),
    "mt_dropout": (_TENSOR, [_TENSOR, c_double, c_uint64]),
}
_lib.declare(PROTOTYPES)

PAD_MODES = {"constant": 0, "reflect": 1, "replicate": 2}


def _seed(seed):
    """seed, or one drawn from the sequence mt.manual_seed seeds (as mt.rand)."""
    return _seeds.getrandbits(64) if seed is None else operator.index(seed) & (2 ** 64 - 1)


# ----------------------------------------------------------------- creation

def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """An n x m (m defaults to n) matrix with ones on the diagonal (torch.eye)."""
    dtype = dtypes.DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _marked(_call("eye", n, n if m is None else m, dtype.value, as_device(device).c),
                   requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """steps values from start to end, both included (torch.linspace)."""
    dtype = dtypes.DEFAULT_FLOAT if dtype is None else as_dtype(dtype)
    return _marked(_call("linspace", float(start), float(end), operator.index(steps),
                         dtype.value, as_device(device).c), requires_grad)


def randint(*args, size=None, low=None, high=None, dtype=None, device=None, seed=None):
    """Integers uniform in [low, high) (torch.randint(high, size) or
    randint(low, high, size)); int64 unless dtype says otherwise. The same
    seed gives the same values on every device; without seed, one is drawn
    (see mt.manual_seed)."""
    if size is None and args and not isinstance(args[-1], (int, float)):
        *args, size = args
    if size is None:
        raise TypeError("modaltensor.randint: size is required")
    if len(args) == 2:
        low, high = args
    elif len(args) == 1:
        high = args[0]
    elif args:
        raise TypeError("modaltensor.randint: expected (high, size) or (low, high, size)")
    if high is None:
        raise TypeError("modaltensor.randint: high is required")
    ndim, shape, dtype, device = _creation_args((size,), dtype or dtypes.int64, device)
    return _call("randint", operator.index(low or 0), operator.index(high), ndim, shape, dtype,
                 device, _seed(seed))


# ----------------------------------------------------------------- indexing

def _as_src(self, index, src, value):
    """src as a tensor on self's device: a scalar value becomes a tensor of
    index's shape in self's dtype (torch's scatter(dim, index, value))."""
    if src is None and value is None:
        raise TypeError("modaltensor.scatter: needs src or value")
    if src is None or not isinstance(src, Tensor) and not hasattr(src, "__len__"):
        return full(index.shape, src if value is None else value, dtype=self.dtype,
                    device=self.device)
    return _index_tensor(src, self.device) if not isinstance(src, Tensor) else src


def gather(self, dim, index):
    """out[i][j] = self[index[i][j]][j] for dim 0 (torch.gather)."""
    index = _index_tensor(index, self.device)
    return _call("gather", self._h, dim, index._h)


def scatter(self, dim, index, src=None, *, value=None):
    """A copy of self with src's entries (or value) written at index along
    dim (out-of-place torch.Tensor.scatter; duplicates keep the last write
    in index order on cpu)."""
    index = _index_tensor(index, self.device)
    src = _as_src(self, index, src, value)
    return _call("scatter", self._h, dim, index._h, src._h)


def scatter_add(self, dim, index, src):
    """A copy of self with src's entries added at index along dim."""
    index = _index_tensor(index, self.device)
    src = _as_src(self, index, src, None)
    return _call("scatter_add", self._h, dim, index._h, src._h)


def index_add(self, dim, index, source, *, alpha=1):
    """A copy of self with alpha * source's slices added at index along dim
    (out-of-place torch.Tensor.index_add; duplicates accumulate)."""
    index = _index_tensor(index, self.device)
    if alpha != 1:
        source = source * alpha
    return _call("index_add", self._h, dim, index._h, source._h)


# ----------------------------------------------------------------- shape

def flip(self, *dims):
    """A copy with the order reversed along dims (torch.flip)."""
    dims = _dims_arg(dims)
    return _call("flip", self._h, len(dims), dims_array(dims))


def roll(self, shifts, dims=None):
    """A copy shifted by shifts along dims (torch.roll); dims None rolls the
    flattened tensor."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        return _call("roll", self._h, len(shifts), shape_array(shifts), None)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) != len(shifts):
        raise ShapeError(f"mt_roll: shifts: {len(shifts)} shifts for {len(dims)} dims")
    return _call("roll", self._h, len(shifts), shape_array(shifts), dims_array(dims))


def repeat(self, *sizes):
    """self tiled sizes[d] times along each dim (torch.Tensor.repeat)."""
    sizes = _size_arg(sizes)
    return _call("repeat", self._h, len(sizes), shape_array(sizes))


def tril(self, diagonal=0):
    """The lower triangle of the last two dims, zeros above (torch.tril)."""
    return _call("tril", self._h, diagonal)


def triu(self, diagonal=0):
    """The upper triangle of the last two dims, zeros below (torch.triu)."""
    return _call("triu", self._h, diagonal)


def _view_strides(shape, strides, new_shape):
    """Strides that give new_shape over the same elements without a copy, or
    None (PyTorch's computeStride: runs of dims that are contiguous in
    memory can be split and merged). shape is not empty and not 0-d."""
    new_strides = [0] * len(new_shape)
    view_d, base, tensor_numel, view_numel = len(new_shape) - 1, strides[-1], 1, 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(new_strides) if view_d == -1 else None


def view(self, *shape):
    """The same elements in a new shape (one dim may be -1), always a view:
    refused (ShapeError) where the strides would need a copy (torch.view)."""
    shape = _size_arg(shape)
    numel = self.numel()
    if shape.count(-1) == 1:
        known = 1
        for size in shape:
            known *= size if size != -1 else 1
        shape = tuple(numel // known if known and size == -1 else size for size in shape)
    old_shape, old_strides = (self.shape, self.stride()) if self.ndim else ((1,), (1,))
    if numel == 0 or _view_strides(old_shape, old_strides, shape) is not None:
        return self.reshape(shape)  # a view: the strides allow it
    raise ShapeError(f"mt_view: shape {list(shape)} cannot view a tensor of shape "
                     f"{list(self.shape)} with strides {list(self.stride())} without a copy "
                     "(use reshape)")


def narrow(self, dim, start, length):
    """The view self[..., start:start + length, ...] along dim (torch.narrow)."""
    size = self.shape[dim]
    start = start + size if start < 0 else start
    if start < 0 or length < 0 or start + length > size:
        raise ShapeError(f"mt_slice: narrow({dim}, {start}, {length}) is outside a dim of "
                         f"size {size}")
    return self.slice(dim, start, start + length)


def split(self, split_size_or_sections, dim=0):
    """Views of consecutive pieces along dim: each split_size long (the last
    may be shorter), or of the given section lengths (torch.split)."""
    size = self.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise ValueError(f"modaltensor.split: split_size {step} must be positive")
        sections = [min(step, size - s) for s in range(0, size, step)] if size else [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size or any(s < 0 for s in sections):
            raise ShapeError(f"mt_slice: sections {sections} do not add up to {size}")
    pieces, start = [], 0
    for length in sections:
        pieces.append(narrow(self, dim, start, length))
        start += length
    return tuple(pieces)


def chunk(self, chunks, dim=0):
    """At most chunks views along dim, each ceil(size / chunks) long (torch.chunk)."""
    if chunks <= 0:
        raise ValueError(f"modaltensor.chunk: chunks {chunks} must be positive")
    size = self.shape[dim]
    return split(self, max(-(-size // chunks), 1), dim)


# ----------------------------------------------------------------- sampling

def multinomial(self, num_samples, replacement=False, *, seed=None):
    """num_samples category indices (int64) per row of the 1-D or 2-D
    weights (torch.multinomial); the same seed gives the same draws on every
    device, without seed one is drawn (see mt.manual_seed)."""
    return _call("multinomial", self._h, num_samples, int(bool(replacement)), _seed(seed))


_METHODS = {"gather": gather, "scatter": scatter, "scatter_add": scatter_add,
            "index_add": index_add, "flip": flip, "roll": roll, "repeat": repeat, "tril": tril,
            "triu": triu, "view": view, "narrow": narrow, "split": split, "chunk": chunk,
            "multinomial": multinomial}
for _name, _method in _METHODS.items():
    setattr(Tensor, _name, _method)


def _function(method, name):
    def function(input, *args, **kwargs):
        return method(input, *args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = method.__doc__
    return function


# torch.<name>(input, ...) for the methods that PyTorch also has as functions.
for _name in ("gather", "scatter", "scatter_add", "index_add", "flip", "roll", "tril", "triu",
              "narrow", "split", "chunk", "multinomial"):
    globals()[_name] = _function(_METHODS[_name], _name)

from . import nn  # noqa: E402,F401  (mt.nn.functional: embedding, one_hot, pad, dropout)

# Module functions (mt.<name>) this family adds.
__all__ = ["eye", "linspace", "randint", "gather", "scatter", "scatter_add", "index_add", "flip",
           "roll", "tril", "triu", "narrow", "split", "chunk", "multinomial", "nn"]
