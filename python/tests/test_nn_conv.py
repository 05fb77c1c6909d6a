"""mt.nn.functional's conv1d, conv2d, max_pool2d, avg_pool2d and
adaptive_avg_pool2d against torch.nn.functional on the cpu and the modal
device: every floating dtype, strides, paddings, dilations, groups
(depthwise included), 1x1 kernels, non-contiguous and unbatched inputs,
NaN/inf, empty batches and bad arguments."""

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from oracle import FLOATS, host, make, round_to

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {"float16": (2e-3, 2e-2), "bfloat16": (1.6e-2, 1.2e-1), "float32": (1e-5, 1e-4),
       "float64": (1e-12, 1e-11)}


def values(rng, shape, dtype, special=False):
    """Values exact in dtype (quantised to 1/8 in [-2, 2)); special adds NaN and +-inf."""
    v = np.round(rng.uniform(-2, 2, size=shape) * 8) / 8
    if special and v.size:
        flat = v.reshape(-1)
        picks = rng.choice(flat.size, size=max(1, flat.size // 10), replace=False)
        flat[picks] = rng.choice([np.nan, np.inf, -np.inf], size=picks.size)
    return round_to(v, dtype).astype(np.float64)


def reference(fn, *arrays, **kwargs):
    """fn of torch float64 tensors of the NumPy arrays (other arguments as they are)."""
    ts = [torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
          for a in arrays]
    out = fn(*ts, **kwargs)
    return (out[0] if isinstance(out, tuple) else out).numpy()


def check_close(t, expected, dtype, terms=1):
    assert str(t.dtype) == dtype
    got = host(t).astype(np.float64)
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol * max(1, terms ** 0.5) * 2,
                               equal_nan=True)


CONV2D = [  # x shape, weight shape, kwargs
    ((2, 3, 8, 7), (4, 3, 3, 3), dict(padding=1)),
    ((1, 4, 9, 10), (6, 2, 3, 2), dict(stride=(2, 3), padding=(1, 0), dilation=(2, 1), groups=2)),
    ((2, 4, 6, 5), (4, 1, 3, 3), dict(padding=1, groups=4)),                  # depthwise
    ((2, 3, 7, 7), (6, 1, 5, 3), dict(stride=2, padding=(2, 1), dilation=(1, 2), groups=3)),
    ((2, 5, 4, 6), (7, 5, 1, 1), {}),                                         # 1x1
    ((2, 6, 4, 6), (4, 3, 1, 1), dict(groups=2)),
    ((1, 2, 5, 5), (3, 2, 1, 1), dict(stride=2, padding=1)),
    ((1, 2, 3, 3), (2, 2, 3, 3), {}),                                         # one pixel
    ((1, 1, 2, 2), (1, 1, 3, 3), dict(padding=1)),
    ((1, 2, 4, 9), (2, 2, 2, 3), dict(stride=(3, 4), padding=(1, 2), dilation=(1, 3))),
    ((0, 2, 5, 5), (3, 2, 3, 3), dict(padding=1)),                            # empty batch
    ((3, 4, 6, 6), (8, 4, 3, 3), dict(padding="same")),
    ((3, 4, 6, 6), (8, 4, 3, 3), dict(padding="valid", stride=[2])),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", range(len(CONV2D)))
def test_conv2d(case, dtype, device, rng):
    xs, ws, kwargs = CONV2D[case]
    x, w, b = values(rng, xs, dtype), values(rng, ws, dtype), values(rng, ws[:1], dtype)
    expected = reference(TF.conv2d, x, w, b, **kwargs)
    terms = ws[1] * ws[2] * ws[3]
    got = F.conv2d(make(x, dtype, device), make(w, dtype, device), make(b, dtype, device),
                   **kwargs)
    check_close(got, expected, dtype, terms)
    no_bias = F.conv2d(make(x, dtype, device), make(w, dtype, device), None, **kwargs)
    check_close(no_bias, reference(TF.conv2d, x, w, None, **kwargs), dtype, terms)


@pytest.mark.parametrize("dtype", FLOATS)
def test_conv2d_noncontiguous_and_unbatched(dtype, device, rng):
    x, w = values(rng, (3, 6, 5), dtype), values(rng, (4, 3, 3, 3), dtype)
    # [C, H, W] unbatched, stored transposed (a non-contiguous view)
    xt = make(np.ascontiguousarray(x.transpose(0, 2, 1)), dtype, device).transpose(1, 2)
    assert not xt.is_contiguous()
    got = F.conv2d(xt, make(w, dtype, device), stride=1, padding=(1, 2))
    check_close(got, reference(TF.conv2d, x, w, None, padding=(1, 2)), dtype, 27)
    wt = make(np.ascontiguousarray(w.transpose(1, 0, 2, 3)), dtype, device).transpose(0, 1)
    got = F.conv2d(make(x[None], dtype, device), wt, None, padding=1)
    check_close(got, reference(TF.conv2d, x[None], w, None, padding=1), dtype, 27)


@pytest.mark.parametrize("dtype", FLOATS)
def test_conv1d(dtype, device, rng):
    for xs, ws, kwargs in (((2, 6, 11), (4, 3, 3), dict(stride=2, padding=2, dilation=3, groups=2)),
                           ((1, 3, 7), (5, 3, 1), {}),
                           ((2, 4, 9), (4, 1, 3), dict(padding=(1,), groups=4)),
                           ((4, 10), (2, 4, 3), dict(padding="same"))):        # unbatched
        x, w, b = values(rng, xs, dtype), values(rng, ws, dtype), values(rng, ws[:1], dtype)
        got = F.conv1d(make(x, dtype, device), make(w, dtype, device), make(b, dtype, device),
                       **kwargs)
        check_close(got, reference(TF.conv1d, x, w, b, **kwargs), dtype, ws[1] * ws[2])


def test_conv_special_values(device, rng):
    x, w = values(rng, (2, 3, 6, 6), "float32", special=True), values(rng, (4, 3, 3, 3), "float32")
    got = F.conv2d(make(x, "float32", device), make(w, "float32", device), padding=1)
    check_close(got, reference(TF.conv2d, x, w, None, padding=1), "float32", 27)


def test_conv_errors(device):
    x = mt.zeros((1, 4, 5, 5), device=device)
    w = mt.zeros((2, 4, 3, 3), device=device)
    with pytest.raises(mt.ShapeError, match="mt_conv2d"):
        F.conv2d(x, mt.zeros((2, 4, 7, 7), device=device))  # kernel larger than the input
    with pytest.raises(mt.ShapeError, match="mt_conv2d.*groups"):
        F.conv2d(x, w, groups=3)
    with pytest.raises(mt.ShapeError, match="mt_conv2d: weight"):
        F.conv2d(x, w, groups=2)
    with pytest.raises(mt.InvalidArgumentError, match="mt_conv2d: stride"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(mt.InvalidArgumentError, match="mt_conv2d: padding"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(mt.DTypeError, match="mt_conv2d: weight"):
        F.conv2d(x, w.double())
    with pytest.raises(mt.DTypeError, match="mt_conv2d: x"):
        F.conv2d(x.long(), w.long())
    with pytest.raises(mt.ShapeError, match="mt_conv2d: bias"):
        F.conv2d(x, w, mt.zeros((3,), device=device))
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(mt.zeros((5,), device=device), w)
    with pytest.raises(ValueError, match="stride must have 2"):
        F.conv2d(x, w, stride=(1, 1, 1))
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, mt.zeros((2, 4, 2, 2), device=device), padding="same")
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, w, stride=2, padding="same")


POOLS = [  # x shape, kernel_size, kwargs
    ((2, 3, 6, 7), 2, {}),
    ((1, 2, 7, 5), 3, dict(stride=2, padding=1)),
    ((1, 1, 5, 8), (3, 2), dict(stride=(1, 3), padding=(1, 0))),
    ((2, 2, 4, 4), 4, {}),
    ((1, 1, 3, 3), 3, dict(stride=1, padding=1)),
    ((3, 5, 6), (2, 3), dict(stride=[1, 2])),                                 # unbatched
    ((0, 2, 4, 4), 2, {}),                                                    # empty batch
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_pools(case, dtype, device, rng):
    xs, kernel, kwargs = POOLS[case]
    x = values(rng, xs, dtype, special=case in (0, 2))
    got = F.max_pool2d(make(x, dtype, device), kernel, **kwargs)
    expected = reference(TF.max_pool2d, x, kernel, **kwargs)
    check_close(got, expected, dtype)
    got = F.avg_pool2d(make(x, dtype, device), kernel, **kwargs)
    check_close(got, reference(TF.avg_pool2d, x, kernel, **kwargs), dtype, 9)


@pytest.mark.parametrize("dtype", FLOATS)
def test_pools_noncontiguous(dtype, device, rng):
    x = values(rng, (2, 3, 9, 8), dtype)
    xt = make(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), dtype, device).transpose(2, 3)
    assert not xt.is_contiguous()
    check_close(F.max_pool2d(xt, 3, 2, 1), reference(TF.max_pool2d, x, 3, 2, 1), dtype)
    check_close(F.avg_pool2d(xt, (2, 3)), reference(TF.avg_pool2d, x, (2, 3)), dtype, 6)
    check_close(F.adaptive_avg_pool2d(xt, (4, 3)), reference(TF.adaptive_avg_pool2d, x, (4, 3)),
                dtype, 12)


def test_max_pool_nan_and_inf(device):
    x = np.array([[[[1, np.nan, 3, 4], [-np.inf, -np.inf, np.nan, 2],
                    [-np.inf, -np.inf, 0, 1], [-np.inf, -np.inf, 5, np.inf]]]])
    got = F.max_pool2d(make(x, "float32", device), 2)
    check_close(got, reference(TF.max_pool2d, x, 2), "float32")


@pytest.mark.parametrize("dtype", FLOATS)
def test_adaptive_avg_pool2d(dtype, device, rng):
    x = values(rng, (2, 3, 7, 9), dtype)
    for size in (1, (1, 1), (2, 3), (5, 7), (7, 4), (3, None), (10, 9), [4, 4]):
        got = F.adaptive_avg_pool2d(make(x, dtype, device), size)
        check_close(got, reference(TF.adaptive_avg_pool2d, x, size), dtype, 63)
    unbatched = values(rng, (3, 5, 6), dtype)
    check_close(F.adaptive_avg_pool2d(make(unbatched, dtype, device), 2),
                reference(TF.adaptive_avg_pool2d, unbatched, 2), dtype, 9)


def test_pool_errors(device):
    x = mt.zeros((1, 2, 4, 4), device=device)
    with pytest.raises(mt.ShapeError, match="mt_max_pool2d"):
        F.max_pool2d(x, 5)
    with pytest.raises(mt.InvalidArgumentError, match="mt_max_pool2d: padding"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(mt.InvalidArgumentError, match="mt_avg_pool2d: kernel_size"):
        F.avg_pool2d(x, 0)
    with pytest.raises(mt.DTypeError, match="mt_max_pool2d"):
        F.max_pool2d(x.long(), 2)
    with pytest.raises(mt.ShapeError, match="mt_avg_pool2d"):
        F.avg_pool2d(mt.zeros((4, 4), device=device), 2)
    with pytest.raises(mt.ShapeError, match="mt_adaptive_avg_pool2d"):
        F.adaptive_avg_pool2d(mt.zeros((1, 0, 4, 4), device=device), 2)
    with pytest.raises(mt.InvalidArgumentError, match="mt_adaptive_avg_pool2d"):
        F.adaptive_avg_pool2d(x, (-1, 2))
    with pytest.raises(ValueError, match="ceil_mode"):
        F.max_pool2d(x, 2, ceil_mode=True)
    with pytest.raises(ValueError, match="count_include_pad"):
        F.avg_pool2d(x, 2, count_include_pad=False)
