"""Every op of the C API checked against NumPy, on random shapes and dtypes,
with broadcasting, non-contiguous views, empty and 0-d tensors, on the cpu
and the modal device."""

import numpy as np
import pytest

import modaltensor as mt
from oracle import (DTYPES, FLOATS, INTS, NUMERIC, check, convert, erf, float_result, host,
                    make, nan_safe_sign, noncontiguous, numpy_dtype, promote, random_array,
                    round_to)

# (shape of a, shape of b): broadcasting in every direction, 0-d and empty.
BROADCAST_SHAPES = [((), ()), ((5,), ()), ((), (4,)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)),
                    ((0, 3), (3,)), ((2, 3), (2, 3)), ((4, 1), (1, 0))]

DTYPE_PAIRS = [(d, d) for d in DTYPES] + [
    ("int32", "float32"), ("uint8", "int8"), ("bool", "int64"), ("float16", "bfloat16"),
    ("int64", "float64"), ("float16", "float32"), ("bool", "float16"), ("int16", "uint8"),
    ("bfloat16", "int8"), ("float64", "float32")]


def _ids(pairs):
    return [f"{a}-{b}" for a, b in pairs]


# ------------------------------------------------------------------- binary

def _binary_expected(op, a, b, result):
    """Expected values of a <op> b in dtype result; a and b hold values
    already converted to the promoted dtype."""
    with np.errstate(all="ignore"):
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            return getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less",
                                "le": "less_equal", "gt": "greater",
                                "ge": "greater_equal"}[op])(a, b)
        if op in ("logical_and", "logical_or"):
            return getattr(np, op)(a != 0, b != 0)
        if op == "div":
            return round_to(a.astype(np.float64) / b.astype(np.float64), result)
        if result in FLOATS:
            x, y = a.astype(np.float64), b.astype(np.float64)
            value = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power,
                     "maximum": np.maximum, "minimum": np.minimum}[op](x, y)
            return round_to(value, result)
        x, y = a.astype(numpy_dtype(result)), b.astype(numpy_dtype(result))
        return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power,
                "maximum": np.maximum, "minimum": np.minimum}[op](x, y)


def _binary_operands(rng, op, da, db, sa, sb):
    a = random_array(rng, sa, da, special=True)
    if op == "pow":
        # Integer exponents stay small and >= 0 (negative ones have their own test).
        b = random_array(rng, sb, db, low=0, high=4) if db in INTS + ["bool"] else \
            random_array(rng, sb, db, low=-2.0, high=2.0)
        if da in INTS:
            a = random_array(rng, sa, da, low=-5 if da != "uint8" else 0, high=5)
    elif op == "div" and db in INTS:
        b = random_array(rng, sb, db)
        b[b == 0] = 1
    else:
        b = random_array(rng, sb, db, special=True)
    return a, b


BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le",
              "gt", "ge", "logical_and", "logical_or"]


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=_ids(DTYPE_PAIRS))
def test_binary(op, da, db, device, rng):
    promoted = promote(da, db)
    result = {"div": float_result(promoted)}.get(op, promoted)
    if op in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"):
        result = "bool"
    for sa, sb in BROADCAST_SHAPES:
        a, b = _binary_operands(rng, op, da, db, sa, sb)
        ta, tb = make(a, da, device), make(b, db, device)
        if op in ("sub", "pow") and promoted == "bool":
            with pytest.raises(mt.DTypeError, match=f"mt_{op}"):
                getattr(mt, op)(ta, tb)
            continue
        # Ops (comparisons too) run in the promoted dtype, as the library's do.
        expected = _binary_expected(op, convert(a, promoted), convert(b, promoted), result)
        check(getattr(mt, op)(ta, tb), expected, result)
        if len(sa) >= 1 and len(sb) >= 1:
            nca, ncb = noncontiguous(a, da, device), noncontiguous(b, db, device)
            check(getattr(nca, op)(ncb), expected, result)


@pytest.mark.parametrize("symbol,op", [("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "div"),
                                       ("**", "pow"), ("==", "eq"), ("!=", "ne"), ("<", "lt"),
                                       ("<=", "le"), (">", "gt"), (">=", "ge")])
def test_operators_match_named_ops(symbol, op, device, rng):
    a = make(random_array(rng, (3, 4), "float32", low=0.5, high=2.0), "float32", device)
    b = make(random_array(rng, (4,), "float32", low=0.5, high=2.0), "float32", device)
    by_operator = eval(f"a {symbol} b")
    np.testing.assert_array_equal(host(by_operator), host(getattr(mt, op)(a, b)))
    reflected = eval(f"b.numpy() {symbol} a") if device == "cpu" else eval(f"b {symbol} a")
    np.testing.assert_array_equal(host(reflected), host(getattr(mt, op)(b, a)))


def test_integer_arithmetic_wraps(device):
    big = np.array([2**62, -2**63, 2**63 - 1], dtype=np.int64)
    t = make(big, "int64", device)
    check(t + t, big + big, "int64")
    check(t * 3, big * 3, "int64")
    small = np.array([100, -128, 127], dtype=np.int8)
    s = make(small, "int8", device)
    check(s * s, small * small, "int8")
    check(-s, -small, "int8")
    check(abs(s), np.abs(small), "int8")


def test_integer_pow_negative_exponent(device):
    base = make(np.array([0, 1, -1, 2, -2, 3]), "int32", device)
    exponent = make(np.array([-1, -3, -3, -1, -2, 0]), "int32", device)
    check(base ** exponent, np.array([0, 1, -1, 0, 0, 1]), "int32")
    check(make(np.array([0]), "int64", device) ** 0, np.array([1]), "int64")


def test_division_by_zero(device):
    a = make(np.array([1, -1, 0]), "int32", device)
    check(a / 0, np.array([np.inf, -np.inf, np.nan]), "float32")
    f = make(np.array([1.0, -1.0, 0.0]), "float64", device)
    check(f / 0.0, np.array([np.inf, -np.inf, np.nan]), "float64")


def test_nan_propagation(device):
    a = make(np.array([np.nan, 1.0, np.nan, -np.inf]), "float32", device)
    b = make(np.array([0.0, np.nan, np.nan, 2.0]), "float32", device)
    check(mt.maximum(a, b), np.array([np.nan, np.nan, np.nan, 2.0]), "float32")
    check(mt.minimum(a, b), np.array([np.nan, np.nan, np.nan, -np.inf]), "float32")
    check(a == a, np.array([False, True, False, True]), "bool")
    check(a != a, np.array([True, False, True, False]), "bool")


def test_bool_arithmetic(device):
    a = make(np.array([True, True, False, False]), "bool", device)
    b = make(np.array([True, False, True, False]), "bool", device)
    check(a + b, np.array([True, True, True, False]), "bool")
    check(a * b, np.array([True, False, False, False]), "bool")
    check(mt.maximum(a, b), np.array([True, True, True, False]), "bool")
    check(mt.minimum(a, b), np.array([True, False, False, False]), "bool")
    check(a & b, np.array([True, False, False, False]), "bool")
    check(a | b, np.array([True, True, True, False]), "bool")
    check(~a, np.array([False, False, True, True]), "bool")


# ------------------------------------------------------------------ scalars

SCALAR_CASES = [
    # (tensor dtype, scalar, expected result dtype) - PyTorch's scalar typing
    ("int32", 3, "int32"), ("int32", 2.5, "float32"), ("int32", 2.0, "float32"),
    ("uint8", 7, "uint8"), ("bool", 2, "int64"), ("bool", True, "bool"),
    ("float16", 3, "float16"), ("float16", 0.5, "float16"), ("bfloat16", 1.5, "bfloat16"),
    ("float64", 0.25, "float64"), ("int64", True, "int64"), ("int8", -2, "int8"),
]


@pytest.mark.parametrize("dtype,scalar,result", SCALAR_CASES,
                         ids=[f"{d}-{s!r}" for d, s, _ in SCALAR_CASES])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "lt", "eq"])
def test_scalar_operand(op, dtype, scalar, result, device, rng):
    symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}.get(op)
    values = random_array(rng, (2, 3), dtype, low=0 if dtype in INTS else 0.5,
                          high=4 if dtype in INTS else 2.0)
    t = make(values, dtype, device)
    expected_dtype = {"div": float_result(result)}.get(op, result)
    if op in ("lt", "eq"):
        expected_dtype = "bool"
    if result == "bool" and op in ("sub", "pow"):
        with pytest.raises(mt.DTypeError):
            eval(f"t {symbol} scalar")
        return
    carrier = convert(values, result).astype(np.float64)
    with np.errstate(all="ignore"):
        expected = {"add": carrier + scalar, "sub": carrier - scalar,
                    "mul": carrier * scalar, "div": carrier / scalar,
                    "pow": carrier ** scalar, "maximum": np.maximum(carrier, scalar),
                    "lt": carrier < scalar, "eq": carrier == scalar}[op]
    if expected_dtype in FLOATS:
        expected = round_to(expected, expected_dtype)
    elif expected_dtype == "bool":
        expected = expected != 0  # bool add/mul/maximum are or/and/or
    elif op == "pow" and scalar < 0:
        expected = np.where(carrier == 1, 1, np.where(carrier == -1, (-1) ** scalar, 0))
    else:
        expected = expected.astype(np.int64).astype(expected_dtype)  # integers wrap
    got = eval(f"t {symbol} scalar") if symbol else getattr(mt, op)(t, scalar)
    check(got, expected, expected_dtype)
    if op in ("add", "mul"):
        check(eval(f"scalar {symbol} t"), expected, expected_dtype)


def test_reflected_scalar_ops(device):
    t = make(np.array([1.0, 2.0, 4.0]), "float32", device)
    check(1 - t, np.array([0.0, -1.0, -3.0]), "float32")
    check(1 / t, np.array([1.0, 0.5, 0.25]), "float32")
    check(2 ** t, np.array([2.0, 4.0, 16.0]), "float32")
    i = make(np.array([1, 2, 3]), "int64", device)
    check(10 - i, np.array([9, 8, 7]), "int64")
    check(2 ** i, np.array([2, 4, 8]), "int64")
    check(0.5 * i, np.array([0.5, 1.0, 1.5]), "float32")


def test_scalar_outside_the_dtype_range(device):
    t = make(np.array([1, 200, 255]), "uint8", device)
    check(t < 300, np.array([True, True, True]), "bool")
    check(t > -1, np.array([True, True, True]), "bool")


def test_numpy_array_operands(device):
    t = make(np.array([1.0, 2.0]), "float32", device)
    check(t + np.array([1.0, 1.0], dtype=np.float32), np.array([2.0, 3.0]), "float32")
    check(t * [2.0, 3.0], np.array([2.0, 6.0]), "float32")


def test_inplace_operators(device):
    base = mt.zeros((2, 3), device=device)
    view = base[1]
    view += 2
    view *= mt.tensor([1.0, 2.0, 3.0], device=device)
    view -= 1
    view /= 2
    view **= 2
    check(base, np.array([[0, 0, 0], [0.25, 2.25, 6.25]]), "float32")
    ints = mt.zeros(3, dtype="int32", device=device)
    ints += 5
    check(ints, np.array([5, 5, 5]), "int32")
    with pytest.raises(mt.DTypeError):
        ints /= 2
    with pytest.raises(mt.ShapeError):
        view += mt.ones((2, 3), device=device)


# -------------------------------------------------------------------- unary

def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


UNARY_FLOAT = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sigmoid": _sigmoid,
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
    "silu": lambda x: x * _sigmoid(x), "reciprocal": lambda x: 1.0 / x,
}
UNARY_SAME = {
    "neg": np.negative, "abs": np.abs, "relu": lambda x: np.where(x > 0, x, np.where(
        np.isnan(x.astype(np.float64)), x, np.zeros_like(x))),
    "floor": np.floor, "ceil": np.ceil, "round": np.rint, "sign": nan_safe_sign,
}


@pytest.mark.parametrize("op", sorted(UNARY_FLOAT) + sorted(UNARY_SAME) + ["logical_not"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary(op, dtype, device, rng):
    for shape in [(), (7,), (3, 5), (0, 2), (2, 3, 4)]:
        values = random_array(rng, shape, dtype, special=True)
        if op in ("gelu", "silu") and dtype in FLOATS:
            values[np.isinf(values)] = 0  # x * (a factor that tends to 0): NaN or 0 at -inf
        t = make(values, dtype, device)
        views = [t] + ([noncontiguous(values, dtype, device)] if values.ndim else [])
        if op == "neg" and dtype == "bool":
            with pytest.raises(mt.DTypeError, match="mt_neg"):
                t.neg()
            continue
        with np.errstate(all="ignore"):
            if op == "logical_not":
                result, expected = "bool", values == 0
            elif op in UNARY_FLOAT:
                result = float_result(dtype)
                expected = round_to(UNARY_FLOAT[op](values.astype(np.float64)), result)
            else:
                result = dtype
                if dtype == "bool":
                    expected = values  # identity for the sign-free ops on bool
                elif dtype in INTS:
                    expected = UNARY_SAME[op](values).astype(dtype) if op not in (
                        "floor", "ceil", "round") else values
                else:
                    expected = round_to(UNARY_SAME[op](values.astype(np.float64)), dtype)
        for view in views:
            check(getattr(view, op)(), expected, result)
            check(getattr(mt, op)(view), expected, result)


def test_round_half_to_even(device):
    t = make(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999]), "float64", device)
    check(t.round(), np.array([0.0, 2.0, 2.0, -0.0, -2.0, 2.0]), "float64")


def test_special_values(device):
    t = make(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]), "float32", device)
    check(t.rsqrt(), np.array([np.inf, -np.inf, 0.0, np.nan, np.nan]), "float32")
    check(t.sign(), np.array([0.0, 0.0, 1.0, -1.0, np.nan]), "float32")
    check(t.relu(), np.array([0.0, 0.0, np.inf, 0.0, np.nan]), "float32")
    check(t.sigmoid(), np.array([0.5, 0.5, 1.0, 0.0, np.nan]), "float32")
    big = make(np.array([-1000.0, 1000.0]), "float32", device)
    check(big.sigmoid(), np.array([0.0, 1.0]), "float32")
    check(big.silu(), np.array([-0.0, 1000.0]), "float32")


# ------------------------------------------------------- where, clamp, cast

@pytest.mark.parametrize("dc,da,db", [("bool", "float32", "float32"), ("int32", "int64", "int8"),
                                      ("float32", "float16", "bfloat16"),
                                      ("uint8", "bool", "float64"), ("bool", "int16", "uint8")])
def test_where(dc, da, db, device, rng):
    for sc, sa, sb in [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((), (2, 2), (1, 2)),
                       ((0, 2), (2,), (1, 1))]:
        c, a, b = (random_array(rng, s, d) for s, d in ((sc, dc), (sa, da), (sb, db)))
        result = promote(da, db)
        expected = np.where(c != 0, convert(a, result), convert(b, result))
        tc, ta, tb = make(c, dc, device), make(a, da, device), make(b, db, device)
        check(mt.where(tc, ta, tb), expected, result)
        check(ta.where(tc, tb), expected, result)


def test_where_with_scalars(device):
    cond = make(np.array([True, False, True]), "bool", device)
    check(mt.where(cond, 1.0, 0.0), np.array([1.0, 0.0, 1.0]), "float32")
    check(mt.where(cond, mt.arange(3, device=device), -1), np.array([0, -1, 2]), "int64")


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("low,high", [(-1, 2), (None, 0), (0, None), (None, None), (3, 1)])
def test_clamp(dtype, low, high, device, rng):
    values = random_array(rng, (4, 5), dtype, special=True)
    t = make(values, dtype, device)
    with np.errstate(invalid="ignore"):
        x = values.astype(np.float64)
        expected = x if low is None else np.maximum(x, low)
        expected = expected if high is None else np.minimum(expected, high)
    expected = round_to(expected, dtype) if dtype in FLOATS else expected.astype(dtype)
    check(t.clamp(low, high), expected, dtype)
    check(mt.clamp(t.T, low, high), expected.T, dtype)


@pytest.mark.parametrize("source", DTYPES)
@pytest.mark.parametrize("target", DTYPES)
def test_cast(source, target, device, rng):
    values = random_array(rng, (3, 7), source, special=True)
    if source in FLOATS:
        with np.errstate(over="ignore"):
            values.reshape(-1)[:6] = [1e30, -1e30, 2.9, -2.9, 300.0, -129.0]
        values = round_to(values, source)
    elif source in INTS:
        values = random_array(rng, (3, 7), source, low=np.iinfo(source).min,
                              high=np.iinfo(source).max)
    t = make(values, source, device)
    expected = convert(values, target)
    check(t.cast(target), expected, target)
    check(t.T.to(dtype=target), expected.T, target)
    check(make(values[:0], source, device).cast(target), expected[:0], target)


# --------------------------------------------------------------- reductions

REDUCE_DIMS = [None, 0, -1, (0, 2), (2, 0, 1)]


def _reduce_expected(op, values, dtype, dims, keepdim):
    axis = None if dims is None else dims
    x = values.astype(np.float64) if dtype in FLOATS else values
    with np.errstate(all="ignore"):
        if op == "sum":
            if dtype in FLOATS:
                return np.sum(x, axis=axis, keepdims=keepdim)
            return np.sum(values.astype(np.int64), axis=axis, keepdims=keepdim)
        if op == "prod":
            if dtype in FLOATS:
                return np.prod(x, axis=axis, keepdims=keepdim)
            return np.prod(values.astype(np.int64), axis=axis, keepdims=keepdim)
        if op == "mean":
            return np.mean(values.astype(np.float64), axis=axis, keepdims=keepdim)
        return getattr(np, op)(values, axis=axis, keepdims=keepdim)


_EPS = {"float16": 1e-3, "bfloat16": 8e-3, "float32": 1.2e-7, "float64": 2.3e-16}


def _check_reduction(got, op, values, dtype, dims, keepdim, result):
    expected = _reduce_expected(op, values, dtype, dims, keepdim)
    if result not in FLOATS:
        check(got, expected, result)
        return
    # Rounding error: a few units of the result dtype's precision, relative to
    # the sum (mean) of |x| over what was reduced.
    atol = 1e-6
    if op in ("sum", "mean"):
        scale = _reduce_expected(op, np.abs(values.astype(np.float64)), "float64", dims,
                                 keepdim)
        atol += 4 * _EPS[result] * float(np.max(scale, initial=0.0))
    check(got, round_to(expected, result), result, atol=atol)


@pytest.mark.parametrize("op", ["sum", "mean", "prod", "amax", "amin"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions(op, dtype, device, rng):
    if op in ("amax", "amin") or dtype in FLOATS:
        result = dtype
    else:
        result = {"sum": "int64", "prod": "int64", "mean": "float32"}[op]
    for shape in [(3, 4, 5), (2, 1, 6)]:
        if op == "prod":
            values = random_array(rng, shape, dtype, low=0.5 if dtype in FLOATS else -2,
                                  high=1.5 if dtype in FLOATS else 2)
        else:
            values = random_array(rng, shape, dtype)
        t = make(values, dtype, device)
        for dims in REDUCE_DIMS:
            for keepdim in (False, True):
                _check_reduction(getattr(t, op)(dims, keepdim), op, values, dtype, dims,
                                 keepdim, result)
        # A non-contiguous input: reduce dim 1 of the (0, 2)-transpose.
        swapped = np.ascontiguousarray(np.swapaxes(values, 0, 2))
        _check_reduction(getattr(t.transpose(0, 2), op)(1), op, swapped, dtype, 1, False,
                         result)


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_reductions_of_empty_and_0d(dtype, device):
    empty = make(np.zeros((0, 3), dtype=numpy_dtype(dtype)), dtype, device)
    whole = "int64" if dtype != "float32" else dtype
    check(empty.sum(), np.array(0), whole)
    check(empty.sum(0), np.zeros(3), whole)
    check(empty.prod(0), np.ones(3), whole)
    check(empty.mean(0), np.full(3, np.nan), "float32")
    check(empty.amax(1), np.zeros((0,)), dtype)
    with pytest.raises(mt.ShapeError, match="mt_amax"):
        empty.amax(0)
    with pytest.raises(mt.ShapeError, match="mt_amin"):
        empty.amin()
    scalar = make(np.array(3, dtype=numpy_dtype(dtype)), dtype, device)
    check(scalar.sum(), np.array(3 if dtype != "bool" else 1), whole)
    check(scalar.amax(0), np.array(3).astype(numpy_dtype(dtype)), dtype)


def test_reductions_propagate_nan(device):
    t = make(np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]]), "float32", device)
    check(t.amax(1), np.array([np.nan, 6.0]), "float32")
    check(t.amin(1), np.array([np.nan, 4.0]), "float32")
    check(t.sum(1), np.array([np.nan, 15.0]), "float32")


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax_argmin(op, dtype, device, rng):
    values = random_array(rng, (4, 5, 3), dtype, low=-3 if dtype in INTS else None,
                          high=3 if dtype in INTS else None)
    t = make(values, dtype, device)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            expected = getattr(np, op)(values, axis=dim, keepdims=keepdim)
            check(getattr(t, op)(dim, keepdim), expected, "int64")
    check(getattr(t, op)(), np.array(getattr(np, op)(values)), "int64")
    check(getattr(t.transpose(0, 2), op)(1), getattr(np, op)(np.swapaxes(values, 0, 2), 1),
          "int64")


def test_argmax_first_nan_wins(device):
    t = make(np.array([1.0, np.nan, 5.0, np.nan]), "float32", device)
    assert t.argmax().item() == 1 and t.argmin().item() == 1
    with pytest.raises(mt.ShapeError, match="mt_argmax"):
        mt.zeros((0, 2), device=device).argmax(0)


# ------------------------------------------------ softmax, layer_norm, matmul

def _softmax(x, dim):
    shifted = x - np.max(x, axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=dim, keepdims=True)


def _log_softmax(x, dim):
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int32"])
@pytest.mark.parametrize("dim", [0, -1, 1])
def test_softmax(dtype, dim, device, rng):
    values = random_array(rng, (3, 4, 5), dtype, low=-5 if dtype == "int32" else None,
                          high=5 if dtype == "int32" else None)
    t = make(values, dtype, device)
    result = float_result(dtype)
    x = values.astype(np.float64)
    check(t.softmax(dim), round_to(_softmax(x, dim), result), result)
    check(mt.log_softmax(t, dim), round_to(_log_softmax(x, dim), result), result,
          atol=1e-2 if dtype in ("float16", "bfloat16") else None)
    large = make(np.array([[1000.0, 1000.0, -1000.0]]), "float32", device)
    check(large.softmax(-1), np.array([[0.5, 0.5, 0.0]]), "float32")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm(dtype, affine, device, rng):
    values = random_array(rng, (2, 3, 8), dtype)
    t = make(values, dtype, device)
    result = float_result(dtype)
    x = values.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5)
    weight = bias = None
    if affine:
        w, b = random_array(rng, (8,), result), random_array(rng, (8,), result)
        weight, bias = make(w, result, device), make(b, result, device)
        expected = expected * w.astype(np.float64) + b.astype(np.float64)
    check(mt.layer_norm(t, weight, bias, eps=1e-5), round_to(expected, result), result,
          atol=2e-2 if dtype == "float16" else 1e-4)
    check(t.layer_norm(weight, bias), round_to(expected, result), result,
          atol=2e-2 if dtype == "float16" else 1e-4)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((0, 4), (4, 5)),
                 ((3, 0), (0, 5)), ((1, 1), (1, 1)), ((2, 17, 33), (2, 33, 9))]


@pytest.mark.parametrize("da,db", [(d, d) for d in DTYPES] + [("int32", "float32"),
                                                              ("float16", "bfloat16"),
                                                              ("uint8", "int8")])
def test_matmul(da, db, device, rng):
    result = promote(da, db)
    for sa, sb in MATMUL_SHAPES:
        a = random_array(rng, sa, da, low=-3 if da in INTS else None,
                         high=3 if da in INTS else None)
        b = random_array(rng, sb, db, low=-3 if db in INTS else None,
                         high=3 if db in INTS else None)
        ta, tb = make(a, da, device), make(b, db, device)
        if result == "bool":
            expected = np.matmul(a.astype(np.int64), b.astype(np.int64)) > 0
        elif result in FLOATS:
            x, y = a.astype(np.float64), b.astype(np.float64)
            expected = np.matmul(x, y)
            scale = np.matmul(np.abs(x), np.abs(y))
            atol = (np.max(scale) if scale.size else 0) * (
                1e-2 if result in ("float16", "bfloat16") else 1e-6) + 1e-6
            check(ta @ tb, round_to(expected, result), result, atol=atol)
            if len(sa) >= 2 and len(sb) >= 2:
                check(noncontiguous(a, da, device) @ noncontiguous(b, db, device),
                      round_to(expected, result), result, atol=atol)
            continue
        else:
            expected = np.matmul(convert(a, result), convert(b, result))
        check(ta @ tb, expected, result)
        check(mt.matmul(ta, tb), expected, result)


def test_matmul_tf32_mode(device, rng):
    """The TF32 switch round-trips; with it on, float32 results are the same
    bits on the cpu (it has no TF32) and within TF32's precision anywhere."""
    a = rng.standard_normal((2, 17, 33)).astype(np.float32)
    b = rng.standard_normal((33, 9)).astype(np.float32)
    ta, tb = make(a, "float32", device), make(b, "float32", device)
    before = mt.matmul_tf32_enabled()
    try:
        mt.set_matmul_tf32(False)
        assert mt.matmul_tf32_enabled() is False
        exact = host(ta @ tb)
        mt.set_matmul_tf32(True)
        assert mt.matmul_tf32_enabled() is True
        relaxed = host(ta @ tb)
    finally:
        mt.set_matmul_tf32(before)
    if device == "cpu":
        np.testing.assert_array_equal(relaxed, exact)
    np.testing.assert_allclose(relaxed, exact, rtol=0, atol=0.05)


# ------------------------------------------------ cat, stack, index_select

@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("int8", "float16"),
                                    ("bool", "int32", "uint8")])
def test_cat_and_stack(dtypes, device, rng):
    result = dtypes[0]
    for d in dtypes[1:]:
        result = promote(result, d)
    arrays = [random_array(rng, (2, i + 1, 3), d) for i, d in enumerate(dtypes)]
    tensors = [make(a, d, device) for a, d in zip(arrays, dtypes)]
    converted = [convert(a, result) for a in arrays]
    check(mt.cat(tensors, dim=1), np.concatenate(converted, axis=1), result)
    check(mt.cat(tensors, dim=-2), np.concatenate(converted, axis=-2), result)
    same = [random_array(rng, (2, 3), d) for d in dtypes]
    same_t = [make(a, d, device) for a, d in zip(same, dtypes)]
    converted = [convert(a, result) for a in same]
    for dim in (0, 1, 2, -1):
        check(mt.stack(same_t, dim=dim), np.stack(converted, axis=dim), result)
    nothing = mt.zeros((2, 0, 3), dtype=dtypes[0], device=device)
    check(mt.cat([tensors[0], nothing], dim=1), arrays[0], dtypes[0])


@pytest.mark.parametrize("dtype", ["float32", "int16", "bool", "bfloat16"])
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_index_select(dtype, index_dtype, device, rng):
    values = random_array(rng, (4, 5, 3), dtype)
    t = make(values, dtype, device)
    swapped = np.swapaxes(values, 0, 1)
    for dim in (0, 1, -1):
        for base, tensor in ((values, t), (swapped, t.transpose(0, 1))):
            size = base.shape[dim]
            index = rng.integers(-size, size, size=6)
            idx = make(index, index_dtype, device)
            check(tensor.index_select(dim, idx), np.take(base, index, axis=dim), dtype)
    scalar_index = make(np.array(-1), index_dtype, device)
    check(t.index_select(1, scalar_index), np.take(values, -1, axis=1), dtype)
    check(t.index_select(0, make(np.zeros(0, dtype=np.int64), index_dtype, device)),
          values[:0], dtype)
