"""Property-based checks with hypothesis (skipped where it is not
installed): broadcasting binary ops, reductions and views against NumPy on
arbitrary shapes, dtypes and values."""

import numpy as np
import pytest

import modaltensor as mt
from oracle import FLOATS, check, convert, make, promote, round_to

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, database=None, derandomize=True)
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
DEVICES = ["cpu", "modal"] if mt.modal.is_available() else ["cpu"]  # (conftest chose where)


def arrays(dtype, shape):
    if dtype == "bool":
        elements = st.booleans()
    elif dtype in FLOATS:
        elements = st.one_of(st.floats(-1e3, 1e3, width=16 if dtype == "float16" else 32),
                             st.sampled_from([float("nan"), float("inf"), -float("inf")]))
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def binary_cases(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    min_side=0, max_side=4))
    da, db = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(DTYPES))
    a = draw(arrays(da, shapes.input_shapes[0]))
    b = draw(arrays(db, shapes.input_shapes[1]))
    op = draw(st.sampled_from(["add", "mul", "maximum", "minimum", "lt", "eq", "ne"]))
    device = draw(st.sampled_from(DEVICES))
    return op, a, da, b, db, device


@SETTINGS
@given(binary_cases())
def test_binary_ops_broadcast_like_numpy(case):
    op, a, da, b, db, device = case
    result_dtype = promote(da, db)
    x, y = convert(a, result_dtype), convert(b, result_dtype)
    with np.errstate(all="ignore"):
        if op in ("lt", "eq", "ne"):
            expected, out = getattr(np, {"lt": "less", "eq": "equal",
                                         "ne": "not_equal"}[op])(x, y), "bool"
        elif result_dtype in FLOATS:
            ufunc = {"add": np.add, "mul": np.multiply, "maximum": np.maximum,
                     "minimum": np.minimum}[op]
            expected = round_to(ufunc(x.astype(np.float64), y.astype(np.float64)),
                                result_dtype)
            out = result_dtype
        else:
            expected = getattr(np, {"add": "add", "mul": "multiply"}.get(op, op))(x, y)
            out = result_dtype
    got = getattr(mt, op)(make(a, da, device), make(b, db, device))
    check(got, expected, out)


@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
       st.sampled_from(["int32", "float64"]), st.data())
def test_sum_and_amax_over_any_dims(shape, dtype, data):
    values = data.draw(arrays(dtype, shape).filter(lambda v: not np.isnan(v).any())
                       if dtype in FLOATS else arrays(dtype, shape))
    if dtype in FLOATS:
        values = np.clip(values, -1e3, 1e3)
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    keepdim = data.draw(st.booleans())
    t = make(values, dtype, "cpu")
    axis = tuple(dims) if dims else None
    expected_sum = np.sum(values.astype(np.int64) if dtype != "float64" else values, axis=axis,
                          keepdims=keepdim)
    check(t.sum(axis, keepdim), expected_sum, "int64" if dtype == "int32" else dtype,
          atol=1e-9 * float(np.abs(values).sum() + 1))
    check(t.amax(axis, keepdim), np.amax(values, axis=axis, keepdims=keepdim), dtype)


@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5), st.data())
def test_basic_indexing_matches_numpy(shape, data):
    values = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    key = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True)
                    .filter(lambda k: all(s.step is None or s.step > 0 for s in
                                          (k if isinstance(k, tuple) else (k,))
                                          if isinstance(s, slice))))
    check(make(values, "int32", "cpu")[key], values[key], "int32")
