"""float16 and bfloat16 on the cpu: conversions to and from float32 bit for
bit (NumPy's float16 rounding; bfloat16 by the nearest-even rule PyTorch
uses, and against PyTorch itself where it is installed), elementwise ops
exactly as float32 arithmetic rounded once, and reductions and matmul
against float64, on lengths that end in every vector tail and cross the
staging blocks, on non-contiguous views, with NaN, Inf and subnormals."""

import numpy as np
import pytest

import modaltensor as mt
from oracle import check, host, make, noncontiguous, round_bf16, round_to

try:
    import torch
except ImportError:  # the tests that need it skip
    torch = None

HALVES = ["float16", "bfloat16"]
# Vector rows are 16 wide and the elementwise staging blocks 1024 long.
LENGTHS = [1, 7, 15, 16, 17, 33, 1023, 1025, 4099]


def rounding_cases():
    """float32 bit patterns at every rounding case of both 16-bit formats:
    each exponent (float32 subnormals, the float16 subnormal range, the
    float16 overflow edge, Inf and NaN included), both signs, and low bits
    just below, at and just above the halfway point of the 13 (float16) and
    16 (bfloat16) dropped bits, with the kept lowest bit odd and even."""
    lows = []
    for shift in (13, 16):
        half = 1 << (shift - 1)
        for kept in (0, 1 << shift):
            lows += [kept + d for d in (0, 1, half - 1, half, half + 1, (1 << shift) - 1)]
    exps = np.arange(256, dtype=np.uint32) << 23
    mants = np.array([0, 0x155555 & ~0x1ffff, 0x7e0000], dtype=np.uint32)
    bits = (exps[:, None, None] | mants[None, :, None] |
            np.array(lows, dtype=np.uint32)[None, None, :]).reshape(-1)
    bits = np.concatenate([bits, bits | np.uint32(0x80000000)])
    rng = np.random.default_rng(15)
    bits = np.concatenate([bits, rng.integers(0, 1 << 32, size=20000, dtype=np.uint64)
                           .astype(np.uint32)])
    return bits.view(np.float32)


def bits_of(t):
    """A 16-bit float tensor's bits (uint16)."""
    if t.dtype == "bfloat16":
        return (host(t).view(np.uint32) >> 16).astype(np.uint16)
    return host(t).view(np.uint16)


def expected_bits(values, dtype):
    """float32 values rounded to dtype (nearest even), as bits."""
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return values.astype(np.float16).view(np.uint16)
    return (round_bf16(values).view(np.uint32) >> 16).astype(np.uint16)


@pytest.mark.parametrize("dtype", HALVES)
def test_cast_from_float32_rounds_to_nearest_even(dtype, device):
    values = rounding_cases()
    want = expected_bits(values, dtype)
    t = mt.tensor(values, device=device)
    got = bits_of(t.cast(dtype))
    nan = np.isnan(values)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(host(t.cast(dtype))[nan].astype(np.float32)).all()
    for n in LENGTHS:  # every tail of the vector loop
        np.testing.assert_array_equal(bits_of(t[:n].cast(dtype))[~nan[:n]], want[:n][~nan[:n]])
    strided = t[1::3].cast(dtype)
    np.testing.assert_array_equal(bits_of(strided)[~nan[1::3]], want[1::3][~nan[1::3]])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("dtype", HALVES)
def test_cast_from_float32_matches_torch(dtype):
    values = rounding_cases()
    keep = ~np.isnan(values)  # torch writes one canonical NaN
    want = torch.from_numpy(values).to(getattr(torch, dtype)).view(torch.int16).numpy()
    got = bits_of(mt.tensor(values).cast(dtype))
    np.testing.assert_array_equal(got[keep], want.view(np.uint16)[keep])


def all_patterns(dtype, device):
    """A tensor of dtype holding all 65536 bit patterns, and their float32
    values (NaN where the pattern is a NaN)."""
    bits = np.arange(1 << 16, dtype=np.uint32)
    if dtype == "float16":
        halves = bits.astype(np.uint16).view(np.float16)
        return mt.tensor(halves, device=device), halves.astype(np.float32)
    wide = (bits << 16).view(np.float32)
    return make(wide, dtype, device), wide


@pytest.mark.parametrize("dtype", HALVES)
def test_cast_to_float32_is_exact(dtype, device):
    t, want = all_patterns(dtype, device)
    nan = np.isnan(want)
    for view, expect, isnan in ((t, want, nan), (t[3::5], want[3::5], nan[3::5])):
        got = host(view.float())
        np.testing.assert_array_equal(got.view(np.uint32)[~isnan],
                                      expect.view(np.uint32)[~isnan])
        assert np.isnan(got[isnan]).all()


def operands(dtype, n, seed):
    """n values exact in dtype, NaN, +-Inf, +-0 and subnormals among them."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    tiny = 2.0 ** -20 if dtype == "float16" else 2.0 ** -130  # subnormal in dtype
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -3 * tiny], np.float32)
    k = min(n, len(specials))
    x[rng.choice(n, size=k, replace=False)] = specials[:k]
    return round_to(x, dtype).astype(np.float32)


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("op", ["add", "mul", "sub"])
def test_binary_is_float32_rounded_once(dtype, op, device):
    fn = {"add": np.add, "mul": np.multiply, "sub": np.subtract}[op]
    for n in LENGTHS:
        a, b = operands(dtype, n, n), operands(dtype, n, n + 1)
        ta, tb = make(a, dtype, device), make(b, dtype, device)
        cases = ((ta, tb, b), (noncontiguous(a, dtype, device), tb, b),
                 (ta, make(b[:1], dtype, device), b[:1]))  # contiguous, strided, broadcast
        for x, y, bv in cases:
            with np.errstate(all="ignore"):
                exact = fn(a, bv)
            nan = np.isnan(exact)
            got = getattr(mt, op)(x, y)
            np.testing.assert_array_equal(bits_of(got)[~nan], expected_bits(exact, dtype)[~nan])
            assert np.isnan(host(got)[nan].astype(np.float32)).all()


@pytest.mark.parametrize("dtype", HALVES)
def test_exp(dtype, device):
    for n in LENGTHS:
        a = np.clip(operands(dtype, n, 7 * n), -20, 20)
        want = round_to(np.exp(a.astype(np.float64)), dtype)
        check(mt.exp(make(a, dtype, device)), want, dtype)
        check(mt.exp(noncontiguous(a, dtype, device)), want, dtype)


# Rows shorter than the widened piece (many rows a piece), rows longer than
# a row chunk (cut and joined), and column reductions over tiles of 2048 and
# narrower ones (several pieces of rows joined).
REDUCE_SHAPES = [((37, 7), 1), ((3, 40000), 1), ((300, 2100), 0), ((700, 70), 0),
                 ((5, 130, 9), 1), ((4099,), 0)]


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "prod"])
def test_reductions(dtype, op, device):
    rng = np.random.default_rng(len(op))
    for shape, dim in REDUCE_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        if op == "prod":
            x = 1 + x / 64  # products that stay finite
        x = round_to(x, dtype).astype(np.float64)
        npop = {"amax": np.max, "amin": np.min}.get(op, getattr(np, op))
        want = npop(x, axis=dim)
        scale = np.max(np.sum(np.abs(x), axis=dim)) if op in ("sum", "mean") else 0
        atol = 8 * (1e-3 if dtype == "float16" else 8e-3) * scale / (
            x.shape[dim] if op == "mean" else 1) + 1e-3
        for view in (make, noncontiguous):
            t = view(x, dtype, device)
            check(getattr(t, op)(dim), round_to(want, dtype), dtype, atol=atol)
        check(getattr(make(x, dtype, device), op)(), round_to(npop(x), dtype), dtype,
              atol=atol * (x.size / x.shape[dim] if op == "sum" else 1))


@pytest.mark.parametrize("dtype", HALVES)
def test_reductions_propagate_nan_and_inf(dtype, device):
    x = np.ones((4, 3000), np.float32)
    x[1, 2999] = np.nan
    x[2, 17] = np.inf
    x[3, 5] = -np.inf
    t = make(x, dtype, device)
    check(t.sum(1), np.array([3000, np.nan, np.inf, -np.inf]), dtype)
    check(t.amax(1), np.array([1, np.nan, np.inf, 1]), dtype)
    check(t.amin(1), np.array([1, np.nan, 1, -np.inf]), dtype)
    check(t.T.sum(0), np.array([3000, np.nan, np.inf, -np.inf]), dtype)
    check(t.amax(0)[2995:], np.array([1, 1, 1, 1, np.nan]), dtype)


@pytest.mark.parametrize("dtype", HALVES)
def test_matmul_is_float32_rounded(dtype, device):
    rng = np.random.default_rng(3)
    a = round_to(rng.standard_normal((67, 130)), dtype).astype(np.float32)
    b = round_to(rng.standard_normal((130, 45)), dtype).astype(np.float32)
    want = round_to(a.astype(np.float64) @ b.astype(np.float64), dtype)
    atol = 2e-2 * float(np.max(np.abs(a) @ np.abs(b)))
    check(make(a, dtype, device) @ make(b, dtype, device), want, dtype, atol=atol)
    check(noncontiguous(a, dtype, device) @ noncontiguous(b, dtype, device), want, dtype,
          atol=atol)
