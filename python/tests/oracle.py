"""NumPy as the reference: random inputs per dtype, the library's promotion
and conversion rules written out independently, expected values computed in
float64 and rounded to the result dtype, and comparison with tolerances that
follow each dtype's precision.

bfloat16 has no NumPy dtype: its values travel as float32 arrays holding
bfloat16-exact numbers, and round_to() emulates round-to-nearest-even.
"""

import math

import numpy as np

import modaltensor as mt

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]
NUMERIC = INTS + FLOATS

# Relative precision for comparisons of values computed in each dtype.
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "float64": 1e-11}
ATOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-12}

_INT_INFO = {name: np.iinfo(name) for name in INTS}


def kind(dtype):
    return "b" if dtype == "bool" else "f" if dtype in FLOATS else "i"


def promote(a, b):
    """Result dtype of a binary op (header: bool < integers < floating; uint8
    with a signed int needs a wider signed int; f16 with bf16 gives f32)."""
    if a == b:
        return a
    if "bool" in (a, b):
        return b if a == "bool" else a
    ka, kb = kind(a), kind(b)
    if ka == "f" and kb == "f":
        if {a, b} == {"float16", "bfloat16"}:
            return "float32"
        return max(a, b, key=FLOATS.index)
    if ka == "f" or kb == "f":
        return a if ka == "f" else b
    if "uint8" in (a, b):
        other = b if a == "uint8" else a
        return {"int8": "int16"}.get(other, other)
    return max(a, b, key=INTS.index)


def float_result(dtype):
    """Result dtype of ops that give floats (float32 for integers and bool)."""
    return dtype if dtype in FLOATS else "float32"


def numpy_dtype(dtype):
    """The NumPy dtype that carries values of dtype (float32 for bfloat16)."""
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


def round_bf16(values):
    """float32 values rounded to bfloat16 (nearest even), still as float32."""
    shape = np.shape(values)
    values = np.array(values, dtype=np.float32).reshape(-1)
    bits = values.view(np.uint32).astype(np.int64)
    nan = np.isnan(values)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16) & 0xFFFFFFFF
    out = rounded.astype(np.uint32).view(np.float32)
    out[nan] = np.nan
    return out.reshape(shape)


def round_to(values, dtype):
    """Float values (float64) stored in a floating dtype, as its NumPy
    carrier (float32 for bfloat16)."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == "bfloat16":
        with np.errstate(over="ignore"):
            return round_bf16(values.astype(np.float32))
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def convert(values, dtype):
    """values (any NumPy array) converted with mt_cast's rules: float to int
    truncates toward zero and saturates, NaN -> 0; int to int wraps; anything
    to bool is != 0; into floats rounds to nearest even."""
    values = np.asarray(values)
    if dtype == "bool":
        return values != 0
    if dtype in FLOATS:
        if values.dtype.kind in "iub" and dtype != "bfloat16":
            with np.errstate(over="ignore"):
                return values.astype(dtype)  # one rounding, from the integer itself
        return round_to(values, dtype)
    if values.dtype.kind == "f":
        info = _INT_INFO[dtype]
        x = np.nan_to_num(np.trunc(values.astype(np.float64)), nan=0.0, posinf=np.inf,
                          neginf=-np.inf)
        out = np.empty(x.shape, dtype=dtype)
        high = x >= float(info.max)
        low = x <= float(info.min)
        middle = ~(high | low)
        out[high], out[low] = info.max, info.min
        out[middle] = x[middle].astype(np.int64).astype(dtype)
        return out
    return values.astype(np.int64).astype(dtype) if values.dtype != np.uint64 else \
        values.astype(dtype)


def random_array(rng, shape, dtype, special=False, low=None, high=None):
    """Random values of dtype (as its NumPy carrier). special: floats include
    NaN, +-inf and -0.0 at random positions."""
    shape = tuple(shape)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        info = _INT_INFO[dtype]
        lo = max(info.min, -1000) if low is None else low
        hi = min(info.max, 1000) if high is None else high
        return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(dtype)
    if low is not None:
        values = rng.uniform(low, high, size=shape)
    else:
        values = rng.standard_normal(shape) * 3.0
    values = round_to(values, dtype)
    if special and values.size:
        flat = values.reshape(-1)
        picks = rng.choice(flat.size, size=min(flat.size, 4), replace=False)
        flat[picks] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=picks.size)
    return values


def make(values, dtype, device):
    """A tensor of dtype on device holding NumPy values (exact)."""
    values = np.asarray(values)
    if dtype == "bfloat16":
        return mt.tensor(values.astype(np.float32), device=device).cast("bfloat16")
    return mt.tensor(values.astype(numpy_dtype(dtype)), device=device)


def noncontiguous(values, dtype, device):
    """A non-contiguous view holding `values`: the transpose of a tensor
    that holds values' transpose, or a strided slice for 1-D."""
    values = np.asarray(values)
    if values.ndim >= 2:
        return make(np.ascontiguousarray(np.swapaxes(values, 0, 1)), dtype, device).transpose(0, 1)
    if values.ndim == 1:
        wide = np.repeat(values, 2)
        return make(wide, dtype, device)[::2]
    return make(values, dtype, device)


def host(t):
    """A tensor's values as NumPy (bfloat16 as float32)."""
    if t.dtype == "bfloat16":
        t = t.float()
    return t.cpu().numpy().copy()


def check(t, expected, dtype, rtol=None, atol=None, shape=None):
    """Asserts that tensor t has dtype and holds expected (a NumPy array,
    compared with dtype's tolerance for floating dtypes, exactly otherwise)."""
    assert str(t.dtype) == dtype, f"dtype {t.dtype}, expected {dtype}"
    expected = np.asarray(expected)
    want_shape = expected.shape if shape is None else shape
    assert t.shape == tuple(want_shape), f"shape {t.shape}, expected {want_shape}"
    got = host(t)
    if dtype in FLOATS:
        rtol = RTOL[dtype] if rtol is None else rtol
        atol = ATOL[dtype] if atol is None else atol
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected.astype(got.dtype))


def nan_safe_sign(x):
    return np.where(np.isnan(x), np.nan, np.sign(x))


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.astype(np.float64)
