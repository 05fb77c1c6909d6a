"""Element types: DType objects (modaltensor.float32, ...) and the ways users
name them (strings like NumPy's, NumPy dtypes, Python types, enum values)."""

import numpy as np

from ._lib import lib
from .errors import DTypeError


class DType:
    """One mt_dtype. Compares equal to its name and to the NumPy dtype of
    the same name: `t.dtype == "float32"`, `t.dtype == np.float32`."""
    __slots__ = ("name", "value", "itemsize", "kind")

    def __init__(self, name, value, kind):
        self.name = name
        self.value = value
        self.itemsize = int(lib.mt_dtype_size(value))
        self.kind = kind  # "b" bool, "u"/"i" integers, "f" floating (as NumPy's dtype.kind)

    @property
    def is_floating_point(self):
        return self.kind == "f"

    @property
    def is_integer(self):
        """Integer dtypes (bool excluded)."""
        return self.kind in "ui"

    @property
    def numpy_dtype(self):
        """The NumPy dtype holding these values; None for bfloat16."""
        return None if self is bfloat16 else np.dtype(self.name)

    def __repr__(self):
        return f"modaltensor.{self.name}"

    def __str__(self):
        return self.name

    def __eq__(self, other):
        if isinstance(other, DType):
            return self is other
        try:
            return as_dtype(other) is self
        except (DTypeError, TypeError):
            return NotImplemented

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        return (as_dtype, (self.name,))


bool_ = DType("bool", 0, "b")
uint8 = DType("uint8", 1, "u")
int8 = DType("int8", 2, "i")
int16 = DType("int16", 3, "i")
int32 = DType("int32", 4, "i")
int64 = DType("int64", 5, "i")
float16 = DType("float16", 6, "f")
bfloat16 = DType("bfloat16", 7, "f")
float32 = DType("float32", 8, "f")
float64 = DType("float64", 9, "f")

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
BY_VALUE = {d.value: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
# Other strings are read as NumPy reads them ("float" and "double" are float64,
# "half" float16, "long" int64), through np.dtype below.
_BY_TYPE = {bool: bool_, int: int64, float: float64}

DEFAULT_FLOAT = float32


def as_dtype(spec):
    """The DType named by spec: a DType, a name ("float32", "half"), a NumPy
    dtype or scalar type, a Python type (bool, int, float) or an mt_dtype
    value. Raises DTypeError for anything else."""
    if isinstance(spec, DType):
        return spec
    if isinstance(spec, str) and spec in _BY_NAME:
        return _BY_NAME[spec]
    if isinstance(spec, type) and spec in _BY_TYPE:
        return _BY_TYPE[spec]
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec in BY_VALUE:
            return BY_VALUE[spec]
        raise DTypeError(f"modaltensor: dtype: {spec} is not an mt_dtype value")
    found = None
    if spec is not None:
        try:
            found = from_numpy_dtype(np.dtype(spec))
        except TypeError:
            pass
    if found is None:
        raise DTypeError(f"modaltensor: dtype: {spec!r} is not a dtype (one of "
                         f"{', '.join(d.name for d in ALL)})")
    return found


def from_numpy_dtype(numpy_dtype):
    """The DType of a NumPy dtype, or None when modaltensor has none."""
    numpy_dtype = np.dtype(numpy_dtype)
    if numpy_dtype.kind not in "buif" or not numpy_dtype.isnative:
        return None
    return _BY_NAME.get(numpy_dtype.name)


def promote(a, b):
    """The dtype of a binary op on a and b (the library's promotion rules)."""
    if a is b:
        return a
    if a is bool_:
        return b
    if b is bool_:
        return a
    if a.kind == "f" and b.kind == "f":
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.value > b.value else b
    if a.kind == "f":
        return a
    if b.kind == "f":
        return b
    if uint8 in (a, b):
        other = b if a is uint8 else a
        return {1: int16, 2: int16, 4: int32, 8: int64}[other.itemsize]
    return a if a.value > b.value else b


class finfo:
    """Limits of a floating dtype, as torch.finfo: bits, eps, max, min, tiny
    (smallest normal), smallest_normal, resolution and dtype (its name)."""

    # bfloat16 has float32's exponent and 8 significand bits (NumPy has no twin).
    _BFLOAT16 = {"bits": 16, "eps": 2.0 ** -7, "max": 3.3895313892515355e38,
                 "tiny": 2.0 ** -126, "resolution": 0.01}

    def __init__(self, dtype=None):
        dt = float32 if dtype is None else as_dtype(dtype)
        if not dt.is_floating_point:
            raise DTypeError(f"modaltensor.finfo: {dt.name} is not a floating dtype "
                             "(use iinfo)")
        if dt is bfloat16:
            facts = self._BFLOAT16
        else:
            info = np.finfo(dt.numpy_dtype)
            facts = {"bits": info.bits, "eps": float(info.eps), "max": float(info.max),
                     "tiny": float(info.tiny), "resolution": float(info.resolution)}
        self.dtype = dt.name
        self.bits = facts["bits"]
        self.eps = facts["eps"]
        self.max = facts["max"]
        self.min = -facts["max"]
        self.tiny = self.smallest_normal = facts["tiny"]
        self.resolution = facts["resolution"]

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, "
                f"eps={self.eps}, tiny={self.tiny}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype (or bool), as torch.iinfo: bits, min, max
    and dtype (its name)."""

    def __init__(self, dtype):
        dt = as_dtype(dtype)
        if dt.is_floating_point:
            raise DTypeError(f"modaltensor.iinfo: {dt.name} is a floating dtype (use finfo)")
        if dt is bool_:
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = np.iinfo(dt.numpy_dtype)
            self.bits, self.min, self.max = info.bits, int(info.min), int(info.max)
        self.dtype = dt.name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
