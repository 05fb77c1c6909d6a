"""F.linear against PyTorch's (float64 reference, rounded to the dtype) on the
cpu and the modal device: batched inputs, non-contiguous operands, with and
without a bias, NaN/Inf, empty sizes and refusals."""

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from oracle import FLOATS, check, make, noncontiguous, random_array, round_to

torch = pytest.importorskip("torch")


def reference(x, w, b, dtype):
    """torch's F.linear in float64, rounded to dtype once (our products
    accumulate in float32 or better)."""
    t = lambda a: None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64))
    return round_to(torch.nn.functional.linear(t(x), t(w), t(b)).numpy(), dtype)


def tolerance(dtype, k):
    """Sums of k products: float16/bfloat16 round their inputs only, but
    their float32 accumulation still differs from float64 by ~k ulps."""
    return {"float16": 4e-3, "bfloat16": 2e-2, "float32": 2e-5 * max(1, k / 64),
            "float64": 1e-11}[dtype]


SHAPES = [((7,), 3), ((4, 7), 5), ((2, 3, 16), 9), ((1, 65), 33), ((3, 2, 2, 8), 4),
          ((0, 7), 3), ((4, 0), 3), ((4, 7), 0)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,out", SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_torch(dtype, shape, out, bias, device, rng):
    x = random_array(rng, shape, dtype)
    w = random_array(rng, (out, shape[-1]), dtype)
    b = random_array(rng, (out,), dtype) if bias else None
    tol = tolerance(dtype, shape[-1])
    got = F.linear(make(x, dtype, device), make(w, dtype, device),
                   make(b, dtype, device) if bias else None)
    check(got, reference(x, w, b, dtype), dtype, rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_linear_reads_views_in_place(dtype, device, rng):
    """Transposed and strided operands: the weight's transpose and a sliced
    batch give the same values as their contiguous copies."""
    x = random_array(rng, (6, 12), dtype)
    w = random_array(rng, (10, 12), dtype)
    b = random_array(rng, (20,), dtype)
    xt, wt = noncontiguous(x, dtype, device), noncontiguous(w, dtype, device)
    b_strided = make(b, dtype, device)[::2]
    got = F.linear(xt, wt, b_strided)
    tol = tolerance(dtype, 12)
    check(got, reference(x, w, b[::2], dtype), dtype, rtol=tol, atol=tol * 4)
    big = make(random_array(rng, (4, 5, 24), dtype), dtype, device)[:, 1:4, ::2]
    expected = reference(big.float().cpu().numpy(), w, None, dtype)
    check(F.linear(big, make(w, dtype, device)), expected, dtype, rtol=tol, atol=tol * 4)


def test_linear_nan_inf_and_promotion(device):
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0]])
    w = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    got = F.linear(make(x, "float16", device), make(w, "float32", device),
                   make(np.array([0.5, -1.0]), "float64", device))
    expected = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w),
                                          torch.tensor([0.5, -1.0], dtype=torch.float64)).numpy()
    check(got, expected, "float64")


def test_linear_large_matches_matmul(device, rng):
    """A product big enough for threaded BLAS, against x @ w.T + b in NumPy."""
    x = rng.standard_normal((64, 256)).astype(np.float32)
    w = rng.standard_normal((300, 256)).astype(np.float32)
    b = rng.standard_normal(300).astype(np.float32)
    got = F.linear(mt.tensor(x, device=device), mt.tensor(w, device=device),
                   mt.tensor(b, device=device))
    expected = x.astype(np.float64) @ w.T.astype(np.float64) + b
    check(got, expected, "float32", rtol=1e-4, atol=1e-4)


def test_linear_refusals(device):
    x = mt.ones((3, 4), device=device)
    with pytest.raises(mt.ShapeError, match=r"mt_linear: weight: must be \[out, 4\]"):
        F.linear(x, mt.ones((4, 5), device=device))
    with pytest.raises(mt.ShapeError, match="mt_linear: bias"):
        F.linear(x, mt.ones((5, 4), device=device), mt.ones(4, device=device))
    with pytest.raises(mt.DTypeError, match="mt_linear: x"):
        F.linear(mt.ones((3, 4), dtype="int32", device=device), mt.ones((5, 4), device=device))
    with pytest.raises(mt.ShapeError, match="mt_linear: x: needs at least 1 dim"):
        F.linear(mt.ones((), device=device), mt.ones((5, 4), device=device))
    other = "modal" if device == "cpu" else "cpu"
    with pytest.raises(mt.DeviceError, match="mt_linear"):
        F.linear(x, mt.ones((5, 4), device=other))
