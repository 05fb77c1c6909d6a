"""The reductions, scans and sorting ops against NumPy and, where NumPy has
no twin (stable descending sort, topk, NaN ordering), PyTorch (skipped
without it), on the cpu and the modal device, with non-contiguous views,
negative dims, empty and 0-d tensors, NaN/Inf and ties."""

import numpy as np
import pytest

import modaltensor as mt
from oracle import DTYPES, FLOATS, check, host, make, noncontiguous, numpy_dtype, random_array

try:
    import torch
except ImportError:  # the tests that need it skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
RNG_SEED = 1234
SHAPES = [(5, 7), (3, 4, 6), (0, 5), (9,), ()]


def values_for(shape, dtype, special=False, small=False):
    rng = np.random.default_rng(RNG_SEED + len(shape))
    if small and dtype not in FLOATS and dtype != "bool":
        return random_array(rng, shape, dtype, low=0, high=3)
    if small:
        return np.round(random_array(rng, shape, dtype, special=special)).astype(
            numpy_dtype(dtype) if dtype != "bfloat16" else np.float32)
    return random_array(rng, shape, dtype, special=special)


def as_torch(values, dtype):
    t = torch.from_numpy(np.ascontiguousarray(values).astype(
        np.float32 if dtype == "bfloat16" else numpy_dtype(dtype)))
    return t.to(torch.bfloat16) if dtype == "bfloat16" else t


def dims_of(shape):
    """None (all), each dim, the last as a negative dim, and a pair."""
    out = [None] + list(range(len(shape)))
    if shape:
        out.append(-1)
    if len(shape) >= 2:
        out.append((0, -1))
    return out


# ----------------------------------------------------------------- reductions

@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_var_std(dtype, shape, device):
    x = values_for(shape, dtype).astype(np.float64)
    for view in (make, noncontiguous):
        t = view(x, dtype, device)
        for dim in dims_of(shape):
            axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
            for correction in (0, 1):
                with np.errstate(all="ignore"):
                    want = np.var(x, axis=axis, ddof=correction)
                check(t.var(dim, correction=correction), want, dtype)
                check(t.std(dim, unbiased=bool(correction), keepdim=True),
                      np.sqrt(np.var(x, axis=axis, ddof=correction, keepdims=True)), dtype)
    assert t.var().dtype == dtype
    with pytest.raises(mt.DTypeError, match="mt_var"):
        make(np.arange(3), "int32", device).var()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_logsumexp(dtype, device):
    x = values_for((4, 6), dtype, small=True)
    t = noncontiguous(x, dtype, device)
    ref = np.log(np.sum(np.exp(x.astype(np.float64)), axis=1))
    check(mt.logsumexp(t, 1), ref, "float32" if dtype != "float64" else "float64")
    check(t.logsumexp(-1, keepdim=True), ref[:, None],
          "float32" if dtype != "float64" else "float64")
    if dtype == "float32":
        edge = np.array([[0, -np.inf], [-np.inf, -np.inf], [np.inf, 1], [np.nan, 1], [1e4, 1e4]],
                        np.float32)
        check(make(edge, dtype, device).logsumexp(1),
              [0, -np.inf, np.inf, np.nan, 1e4 + np.log(2)], dtype)
        check(make(np.zeros((2, 0), np.float32), dtype, device).logsumexp(1), [-np.inf] * 2,
              dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("p", [2, 1, np.inf, -np.inf, 0, 3, 0.5, "fro"])
def test_norm(dtype, p, device):
    x = values_for((5, 7), dtype, special=False)
    x[0, :3] = 0
    t = noncontiguous(x, dtype, device)
    order = 2 if p == "fro" else p
    for dim in (None, 0, 1, -1):
        flat = x.astype(np.float64).reshape(-1) if dim is None else x.astype(np.float64)
        want = np.linalg.norm(flat, ord=order, axis=None if dim is None else dim)
        check(t.norm(p, dim), want, dtype, rtol=2e-2 if dtype == "float16" else None)
    with pytest.raises(mt.DTypeError, match="mt_norm"):
        make(np.arange(3), "int64", device).norm()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_all_any(dtype, shape, device):
    x = values_for(shape, dtype, special=dtype in FLOATS, small=True)
    t = make(x, dtype, device)
    for dim in dims_of(shape):
        axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
        check(t.all(dim), np.all(x, axis=axis), "bool")
        check(t.any(dim, keepdim=True), np.any(x, axis=axis, keepdims=True), "bool")
    check(mt.all(t), np.all(x), "bool")
    assert bool(mt.tensor([1, 2]).all()) and not bool(mt.tensor([0, 0]).any())


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_dim(dtype, device):
    x = values_for((5, 6), dtype, special=dtype in FLOATS, small=True)
    for view in (make, noncontiguous):
        t = view(x, dtype, device)
        for dim in (0, 1, -1):
            for name, pick, arg in (("max", np.max, np.argmax), ("min", np.min, np.argmin)):
                r = getattr(t, name)(dim=dim)
                assert r._fields == ("values", "indices")
                want_i = arg(np.where(np.isnan(x), -np.inf if name == "min" else np.inf, x)
                             if dtype in FLOATS and np.isnan(x).any() else x, axis=dim)
                nan_rows = np.isnan(x.astype(np.float64)).any(axis=dim)
                if nan_rows.any():  # NaN is the max and the min: the first NaN's index
                    first_nan = np.argmax(np.isnan(x.astype(np.float64)), axis=dim)
                    want_i = np.where(nan_rows, first_nan, want_i)
                check(r.indices, want_i, "int64")
                with np.errstate(invalid="ignore"):
                    check(r.values, pick(x, axis=dim), dtype)
                values, indices = getattr(mt, name)(t, dim, keepdim=True)
                assert values.shape == indices.shape == tuple(
                    1 if d == dim % 2 else s for d, s in enumerate(x.shape))
    check(t.max(), np.max(x), dtype)  # no dim: the amax scalar
    check(t.min(), np.min(x), dtype)
    check(t.max(t), x, dtype)
    with pytest.raises(mt.ShapeError, match="mt_max_dim"):
        make(np.zeros((2, 0)), "float32", device).max(1)


@needs_torch
def test_max_ties_and_nan_like_torch(device):
    x = np.array([[1, 3, 3, 0], [np.nan, 2, np.nan, -1], [2, 2, 2, 2]], np.float32)
    for name in ("max", "min"):
        got = getattr(make(x, "float32", device), name)(1)
        want = getattr(torch.from_numpy(x), name)(1)
        np.testing.assert_array_equal(host(got.indices), want.indices.numpy())
        np.testing.assert_array_equal(host(got.values), want.values.numpy())


# ----------------------------------------------------------------- scans

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_cumsum_cumprod(dtype, shape, device):
    x = values_for(shape, dtype, small=True)
    out = dtype if dtype in FLOATS else "int64"
    for view in (make, noncontiguous):
        t = view(x, dtype, device)
        for dim in range(-len(shape), max(len(shape), 1)):
            axis = dim if shape else None
            wide = x.astype(np.float64 if dtype in FLOATS else np.int64)
            check(t.cumsum(dim), np.cumsum(wide, axis=axis).reshape(x.shape), out)
            check(mt.cumprod(t, dim), np.cumprod(wide, axis=axis).reshape(x.shape), out)
    check(make(x, dtype, device).cumsum(0, dtype="float64"),
          np.cumsum(x.astype(np.float64), axis=0 if shape else None).reshape(x.shape), "float64")
    with pytest.raises(mt.ShapeError, match="mt_cumsum"):
        make(x, dtype, device).cumsum(len(shape) + 1)


# ----------------------------------------------------------------- sorting

def torch_sort(x, dtype, dim, descending):
    r = torch.sort(as_torch(x, dtype), dim=dim, descending=descending, stable=True)
    return r.values.float().numpy() if dtype == "bfloat16" else r.values.numpy(), r.indices.numpy()


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 40), (3, 4, 6), (0, 5), (9,), (), (2, 300)])
def test_sort_argsort_like_torch(dtype, shape, device):
    x = values_for(shape, dtype, special=dtype in FLOATS, small=True)  # ties, NaN, -0
    for view in (make, noncontiguous):
        t = view(x, dtype, device)
        for dim in range(-len(shape), max(len(shape), 1)):
            for descending in (False, True):
                values, indices = t.sort(dim, descending=descending)
                want_v, want_i = torch_sort(x, dtype, dim, descending)
                np.testing.assert_array_equal(host(indices), want_i)
                np.testing.assert_array_equal(host(values), want_v)
                np.testing.assert_array_equal(host(mt.argsort(t, dim, descending)), want_i)
    if dtype in FLOATS and x.size:
        np.testing.assert_array_equal(host(make(x, dtype, device).argsort(-1)),
                                      np.argsort(x, axis=-1, kind="stable") if dtype != "bfloat16"
                                      else host(make(x, dtype, device).argsort(-1)))


@needs_torch
@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != "bool"])
def test_topk_like_torch(dtype, device):
    x = values_for((6, 50), dtype, special=dtype in FLOATS and dtype != "float16", small=True)
    t = noncontiguous(x, dtype, device)
    # torch's cpu topk has no float16; its values are exact in float32
    ref = as_torch(x, dtype) if dtype not in ("float16", "bfloat16") else \
        torch.from_numpy(x.astype(np.float32))
    for k in (0, 1, 3, 50):
        for largest in (True, False):
            for dim in (-1, 0):
                if k > x.shape[dim]:
                    continue
                got = t.topk(k, dim, largest=largest)
                want = torch.topk(ref, k, dim, largest=largest, sorted=True)
                # torch's ties are not ordered; ours give the lower index first
                want_i = torch.sort(ref, dim=dim, descending=largest, stable=True).indices.narrow(
                    dim, 0, k).numpy()
                np.testing.assert_array_equal(host(got.indices), want_i)
                np.testing.assert_array_equal(host(got.values).astype(np.float64),
                                              want.values.numpy().astype(np.float64))
    with pytest.raises(mt.InvalidArgumentError, match="mt_topk"):
        t.topk(51)
    with pytest.raises(mt.ShapeError, match="mt_topk"):
        t.topk(1, dim=2)


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "int64", "bfloat16"])
@pytest.mark.parametrize("shape", [(3, 1000), (1, 40000)])
def test_topk_long_rows_like_a_stable_sort(dtype, shape, device):
    # Rows past the kernel's first part (16384 keys) take its streaming path;
    # few distinct values make many ties at the k-th place, and NaN ranks
    # largest.
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(0, 40, size=shape).astype(np.float32)
    if dtype != "int64":
        x[rng.random(shape) < 0.01] = np.nan
    x = x.astype(np.int64) if dtype == "int64" else x
    t = make(x, dtype, device)
    ref = as_torch(x, dtype)
    for k in (1, 10, 60):
        for largest in (True, False):
            got = t.topk(k, -1, largest=largest)
            order = torch.sort(ref, dim=-1, descending=largest, stable=True).indices
            want_i = order.narrow(-1, 0, k).numpy()
            np.testing.assert_array_equal(host(got.indices), want_i)
            np.testing.assert_array_equal(host(got.values).astype(np.float64),
                                          np.take_along_axis(x, want_i, -1).astype(np.float64))


def test_topk_sort_errors_and_edges(device):
    b = make(np.array([True, False]), "bool", device)
    with pytest.raises(mt.DTypeError, match="mt_topk"):
        b.topk(1)
    s = make(np.array(2.5), "float32", device)
    assert s.sort().values.shape == () and int(s.argsort()) == 0
    assert float(s.topk(1).values) == 2.5
    e = make(np.zeros((0, 4)), "float32", device)
    assert e.sort(0).indices.shape == (0, 4) and e.topk(0, 0).values.shape == (0, 4)
    r = mt.topk(make(np.array([1.0, 5.0, 5.0, 2.0]), "float64", device), 2)
    assert r._fields == ("values", "indices")
    assert host(r.indices).tolist() == [1, 2]
