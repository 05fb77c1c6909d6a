"""The general elementwise (0.2) ops from Python: methods, module functions and the
operators % // ^ & | ~, against NumPy and (where NumPy has no twin: softplus, gelu_tanh,
mish, elu, nan_to_num's defaults, masked_fill, float // and % at infinities) PyTorch, on
the cpu and the modal device, with every dtype, views, 0-d and empty tensors."""

import math

import numpy as np
import pytest

import modaltensor as mt
from oracle import DTYPES, FLOATS, INTS, check, convert, float_result, host, make, \
    noncontiguous, promote, random_array, round_to

torch = pytest.importorskip("torch")

SHAPES = [(), (0, 3), (7,), (3, 5)]


def _vec(f):
    return lambda x: np.vectorize(f, otypes=[np.float64])(x) if x.size else x


def _softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


# name: (reference on float64 values, input range)
FLOAT_UNARY = {
    "erf": (_vec(math.erf), (-4, 4)), "erfc": (_vec(math.erfc), (-4, 4)),
    "log1p": (np.log1p, (-0.9, 8)), "expm1": (np.expm1, (-4, 4)),
    "log2": (np.log2, (0.1, 16)), "log10": (np.log10, (0.1, 16)),
    "tan": (np.tan, (-1.4, 1.4)), "asin": (np.arcsin, (-1, 1)), "acos": (np.arccos, (-1, 1)),
    "atan": (np.arctan, (-8, 8)), "sinh": (np.sinh, (-4, 4)), "cosh": (np.cosh, (-4, 4)),
    "asinh": (np.arcsinh, (-8, 8)), "acosh": (np.arccosh, (1, 9)),
    "atanh": (np.arctanh, (-0.9, 0.9)), "softplus": (_softplus, (-30, 30)),
    "gelu_tanh": (lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                   (x + 0.044715 * x ** 3))), (-6, 6)),
    "mish": (lambda x: x * np.tanh(_softplus(x)), (-6, 6)),
}


@pytest.mark.parametrize("name", sorted(FLOAT_UNARY))
@pytest.mark.parametrize("dtype", DTYPES)
def test_float_unary(device, name, dtype):
    rng = np.random.default_rng(len(name) * 31 + DTYPES.index(dtype))
    ref, (lo, hi) = FLOAT_UNARY[name]
    out = float_result(dtype)
    for shape in SHAPES:
        values = random_array(rng, shape, dtype, low=lo, high=hi)
        a = noncontiguous(values, dtype, device)
        stored = convert(values, dtype).astype(np.float64)
        with np.errstate(all="ignore"):
            want = round_to(ref(stored), out)
        check(getattr(a, name)(), want, out, rtol=4e-5 if out == "float32" else None)
        check(getattr(mt, name)(a), want, out, rtol=4e-5 if out == "float32" else None)


@pytest.mark.parametrize("name,torch_fn", [
    ("softplus", lambda t: torch.nn.functional.softplus(t)),
    ("gelu_tanh", lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
    ("mish", lambda t: torch.nn.functional.mish(t))])
def test_activations_match_torch(device, name, torch_fn):
    values = np.array([-40, -20.5, -3, -0.5, 0, 0.25, 2, 19.9, 20.1, 50, np.nan, np.inf,
                       -np.inf], dtype=np.float32)
    want = torch_fn(torch.from_numpy(values)).numpy()
    check(getattr(mt, name)(make(values, "float32", device)), want, "float32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_keeping_and_bool_unary(device, dtype):
    rng = np.random.default_rng(DTYPES.index(dtype))
    for shape in SHAPES:
        values = convert(random_array(rng, shape, dtype, special=True), dtype)
        a = noncontiguous(values, dtype, device)
        carrier = values.astype(np.float64) if dtype in FLOATS else values
        with np.errstate(all="ignore"):
            check(a.trunc(), np.trunc(carrier) if dtype in FLOATS else values, dtype)
            square = carrier * carrier if dtype != "bool" else values
            check(mt.square(a), round_to(square, dtype) if dtype in FLOATS else
                  square.astype(values.dtype), dtype)
        for name in ("isnan", "isinf", "isfinite"):
            check(getattr(a, name)(), getattr(np, name)(carrier), "bool")
        if dtype in FLOATS:
            with pytest.raises(mt.DTypeError, match="mt_bitwise_not"):
                a.bitwise_not()
            with pytest.raises(mt.DTypeError):
                ~a
        else:
            check(~a, np.invert(values), dtype)
            check(mt.bitwise_not(a), np.invert(values), dtype)


def _torch_of(values, dtype):
    return torch.from_numpy(np.ascontiguousarray(values)).to(getattr(torch, dtype))


@pytest.mark.parametrize("da,db", [("float32", "float32"), ("float64", "int32"),
                                   ("float16", "float16"), ("int32", "float32")])
def test_float_division_matches_torch(device, da, db):
    rng = np.random.default_rng(7)
    a_values = random_array(rng, (4, 6), da, special=True)
    b_values = random_array(rng, (6,), db, special=True)
    if db in INTS:
        b_values[b_values == 0] = 3
    a, b = noncontiguous(a_values, da, device), make(b_values, db, device)
    ta, tb = _torch_of(a_values, da), _torch_of(b_values, db)
    result = promote(da, db)
    for name, op in (("remainder", lambda x, y: x % y), ("floor_divide", lambda x, y: x // y),
                     ("fmod", torch.fmod)):
        want = op(ta, tb).to(torch.float64).numpy()
        if name == "fmod":
            got = mt.fmod(a, b)
        else:
            got = op(a, b)
        check(got, want, result)
        check(getattr(mt, name)(a, b), want, result)


@pytest.mark.parametrize("dtype", INTS)
def test_integer_division_and_operators(device, dtype):
    rng = np.random.default_rng(INTS.index(dtype))
    x = random_array(rng, (3, 5), dtype)
    y = random_array(rng, (5,), dtype, low=1 if dtype == "uint8" else -9, high=9)
    y[y == 0] = 1 if dtype == "uint8" else -1
    a, b = noncontiguous(x, dtype, device), make(y, dtype, device)
    check(a % b, np.remainder(x, y), dtype)
    check(a // b, np.floor_divide(x, y), dtype)
    check(mt.fmod(a, b), np.fmod(x, y), dtype)
    check(a % 4, np.remainder(x, np.array(4, dtype=dtype)), dtype)
    check(100 // b, np.floor_divide(np.array(100, dtype=dtype), y), dtype)
    check(a & b, np.bitwise_and(x, y), dtype)
    check(a | b, np.bitwise_or(x, y), dtype)
    check(a ^ b, np.bitwise_xor(x, y), dtype)
    check(3 ^ a, np.bitwise_xor(np.array(3, dtype=dtype), x), dtype)
    check(mt.logical_xor(a, b), np.logical_xor(x, y), "bool")


def test_integer_division_by_zero_is_an_error(device):
    a = mt.tensor(np.array([7, -7, 3], dtype=np.int32), device=device)
    zero = mt.tensor(np.array([1, 0, 2], dtype=np.int32), device=device)
    for op in (lambda: a % zero, lambda: a // zero, lambda: mt.fmod(a, zero)):
        with pytest.raises(mt.ModalTensorError, match="division by zero"):
            host(op())  # modal reports it at the read
    assert host(a // 2).tolist() == [3, -4, 1]  # still usable afterwards
    big = mt.tensor(np.array([np.iinfo(np.int64).min], dtype=np.int64), device=device)
    assert host(big // -1).tolist() == [np.iinfo(np.int64).min]  # wraps, no SIGFPE


def test_bool_operators(device):
    x = np.array([True, True, False, False])
    y = np.array([True, False, True, False])
    a, b = make(x, "bool", device), make(y, "bool", device)
    check(a & b, x & y, "bool")
    check(a | b, x | y, "bool")
    check(a ^ b, x ^ y, "bool")
    check(~a, ~x, "bool")
    check(a & True, x & True, "bool")
    with pytest.raises(mt.DTypeError, match="mt_remainder"):
        a % b
    f = make(np.ones(4), "float32", device)
    with pytest.raises(mt.DTypeError, match="mt_bitwise_and"):
        f & a


@pytest.mark.parametrize("da,db", [("float32", "float32"), ("int32", "int32"),
                                   ("bool", "float16"), ("float64", "int8")])
def test_atan2(device, da, db):
    rng = np.random.default_rng(3)
    x = random_array(rng, (2, 1, 4), da, special=True)
    y = random_array(rng, (3, 1), db, special=True)
    result = float_result(promote(da, db))
    want = round_to(np.arctan2(convert(x, da).astype(np.float64),
                               convert(y, db).astype(np.float64)), result)
    check(mt.atan2(make(x, da, device), make(y, db, device)), want, result)
    check(make(x, da, device).arctan2(make(y, db, device)), want, result)


@pytest.mark.parametrize("dtype", FLOATS)
def test_leaky_relu_elu_nan_to_num_match_torch(device, dtype):
    values = np.array([-3, -0.5, -0.0, 0, 2, np.nan, np.inf, -np.inf, 1e30])
    stored = convert(values, dtype)
    t = _torch_of(stored.astype(np.float64), "float64")  # torch lacks some float16 kernels
    a = make(stored, dtype, device)
    limits = mt.finfo(dtype)

    def want(x):
        return round_to(x.numpy(), dtype)
    check(mt.leaky_relu(a), want(torch.nn.functional.leaky_relu(t)), dtype)
    check(a.leaky_relu(negative_slope=0.2), want(torch.nn.functional.leaky_relu(t, 0.2)), dtype)
    check(mt.elu(a), want(torch.nn.functional.elu(t)), dtype)
    check(a.elu(alpha=0.5), want(torch.nn.functional.elu(t, alpha=0.5)), dtype)
    check(mt.nan_to_num(a), want(torch.nan_to_num(t, posinf=limits.max, neginf=limits.min)),
          dtype)
    check(a.nan_to_num(nan=1.5, posinf=2.0, neginf=-2.0),
          want(torch.nan_to_num(t, nan=1.5, posinf=2.0, neginf=-2.0)), dtype)


def test_leaky_relu_refuses_integers(device):
    a = mt.tensor(np.array([1, -2], dtype=np.int64), device=device)
    with pytest.raises(mt.DTypeError, match="mt_leaky_relu"):
        mt.leaky_relu(a)
    check(mt.nan_to_num(a), np.array([1, -2]), "int64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill_matches_torch(device, dtype):
    rng = np.random.default_rng(11 + DTYPES.index(dtype))
    values = convert(random_array(rng, (4, 6), dtype), dtype)
    a = noncontiguous(values, dtype, device)
    ta = _torch_of(values.astype(np.float32) if dtype == "bfloat16" else values,
                   "float32" if dtype == "bfloat16" else dtype)
    if dtype == "bfloat16":
        ta = ta.to(torch.bfloat16)
    for mask_shape in [(4, 6), (6,), (4, 1), ()]:
        mask = rng.random(mask_shape) < 0.5
        value = 5 if dtype in INTS + ["bool"] else -2.5
        want = ta.masked_fill(torch.from_numpy(np.asarray(mask)), value)
        got = a.masked_fill(make(mask, "bool", device), value)
        check(got, want.to(torch.float64).numpy() if dtype in FLOATS else want.numpy(), dtype)
        check(mt.masked_fill(a, make(mask, "bool", device), mt.tensor(value)),
              want.to(torch.float64).numpy() if dtype in FLOATS else want.numpy(), dtype)


def test_masked_fill_errors(device):
    a = mt.tensor(np.array([1, 2, 3], dtype=np.int8), device=device)
    mask = mt.tensor(np.array([True, False, True]), device=device)
    with pytest.raises(mt.ModalTensorError, match="overflow"):
        a.masked_fill(mask, 300)
    with pytest.raises(mt.DTypeError, match="mask"):
        a.masked_fill(mt.tensor(np.array([1, 0, 1]), device=device), 0)
    with pytest.raises(mt.ShapeError):
        a.masked_fill(mt.tensor(np.ones((2, 3), dtype=bool), device=device), 0)
