"""The indexing, shape, creation and sampling ops against NumPy and, where
NumPy has no twin, PyTorch (skipped without it), on the cpu and the modal
device, with non-contiguous views, empty and 0-d tensors."""

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from oracle import DTYPES, FLOATS, check, host, make, noncontiguous, numpy_dtype, random_array

try:
    import torch
except ImportError:  # the tests that need it skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def as_torch(values):
    return torch.from_numpy(np.ascontiguousarray(values))


def gather_reference(values, dim, index):
    """torch.gather in NumPy: index may be smaller than values in every dim."""
    where = list(np.indices(index.shape))
    where[dim] = index
    return values[tuple(where)]


# ----------------------------------------------------------------- creation

@pytest.mark.parametrize("dtype", DTYPES)
def test_eye(dtype, device):
    for n, m in ((3, None), (2, 4), (4, 1), (0, 3)):
        check(mt.eye(n, m, dtype=dtype, device=device), np.eye(n, m, dtype=numpy_dtype(dtype)),
              dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int16", "float16"])
def test_linspace(dtype, device):
    for start, end, steps in ((0, 1, 5), (-3, 7, 11), (5, -5, 4), (2, 2, 3), (1, 9, 1), (0, 1, 0)):
        expected = np.linspace(start, end, steps)
        if dtype not in FLOATS:
            expected = np.trunc(expected)
        check(mt.linspace(start, end, steps, dtype=dtype, device=device), expected, dtype)
    assert mt.linspace(0, 1, 5).dtype == "float32"


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint8", "int32", "float32", "bool"])
def test_randint(dtype, device):
    low, high = (0, 2) if dtype == "bool" else (-5, 6) if dtype != "uint8" else (3, 9)
    t = mt.randint(low, high, (50, 40), dtype=dtype, device=device, seed=11)
    values = host(t).astype(np.int64)
    assert t.dtype == dtype and t.shape == (50, 40)
    assert values.min() == low and values.max() == high - 1
    assert set(np.unique(values)) == set(range(low, high))
    same = mt.randint(low, high, (50, 40), dtype=dtype, device="cpu", seed=11)
    np.testing.assert_array_equal(host(same).astype(np.int64), values)  # every device alike
    assert mt.randint(10, (3,)).dtype == "int64"  # torch.randint(high, size)
    with pytest.raises(mt.InvalidArgumentError, match="mt_randint"):
        mt.randint(4, 4, (2,), device=device)


# ----------------------------------------------------------------- indexing

@pytest.mark.parametrize("dtype", DTYPES)
def test_gather(dtype, device, rng):
    values = random_array(rng, (5, 7), dtype, special=True)
    for dim in (0, 1, -1):
        size = values.shape[dim]
        index = rng.integers(0, size, size=(4, 6) if dim == 0 else (5, 9))
        for a in (make(values, dtype, device), noncontiguous(values, dtype, device)):
            check(a.gather(dim, mt.tensor(index, device=device)),
                  gather_reference(values, dim % 2, index), dtype)
    with pytest.raises(mt.InvalidArgumentError, match=r"mt_gather.*index: 7 is out of range for dim 1 of size 7"):
        host(make(values, dtype, device).gather(1, mt.tensor([[7]], device=device)))


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "int16"])
def test_scatter_and_scatter_add(dtype, device, rng):
    values = random_array(rng, (4, 6), dtype, low=-10, high=10)
    src = random_array(rng, (4, 6), dtype, low=-10, high=10)
    for dim in (0, 1):
        index = rng.integers(0, values.shape[dim], size=(3, 5))  # duplicates certain
        a, s = noncontiguous(values, dtype, device), make(src, dtype, device)
        i = mt.tensor(index, device=device)
        ref_add = as_torch(values).scatter_add(dim, as_torch(index), as_torch(src))
        check(a.scatter_add(dim, i, s), ref_add.numpy(), dtype)
        check(mt.scatter_add(a, dim, i, s), ref_add.numpy(), dtype)
        ref = as_torch(values).scatter(dim, as_torch(index), as_torch(src))  # last write wins
        check(a.scatter(dim, i, s), ref.numpy(), dtype)
        check(a.scatter(dim, i, 2.0), as_torch(values).scatter(dim, as_torch(index), 2.0).numpy(),
              dtype)


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bfloat16"])
def test_index_add(dtype, device, rng):
    values = random_array(rng, (5, 4), dtype, low=0, high=10)
    for dim, n in ((0, 7), (1, 3)):
        index = rng.integers(0, values.shape[dim], size=n)
        shape = (n, 4) if dim == 0 else (5, n)
        src = random_array(rng, shape, dtype, low=0, high=5)
        got = make(values, dtype, device).index_add(dim, mt.tensor(index, device=device),
                                                    make(src, dtype, device), alpha=2)
        t_values = as_torch(values.astype(np.float64))
        ref = t_values.index_add(dim, as_torch(index), as_torch(src.astype(np.float64)), alpha=2)
        check(got, ref.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding(dtype, device, rng):
    weight = random_array(rng, (6, 5), dtype, special=True)
    index = rng.integers(0, 6, size=(2, 3, 4))
    for w in (make(weight, dtype, device), noncontiguous(weight, dtype, device)):
        check(F.embedding(mt.tensor(index, device=device), w), weight[index], dtype)
        check(F.embedding(mt.tensor(3, device=device), w), weight[3], dtype)
    with pytest.raises(mt.InvalidArgumentError, match="mt_embedding"):
        host(F.embedding(mt.tensor([6], device=device), make(weight, dtype, device)))


def test_one_hot(device, rng):
    index = rng.integers(0, 5, size=(3, 4))
    check(F.one_hot(mt.tensor(index, device=device), 5), np.eye(5, dtype=np.int64)[index],
          "int64")
    check(F.one_hot(mt.tensor(index, device=device)), np.eye(index.max() + 1,
                                                            dtype=np.int64)[index], "int64")
    with pytest.raises(mt.InvalidArgumentError, match="mt_one_hot"):
        F.one_hot(mt.tensor([5], device=device), 5).numpy()


# ----------------------------------------------------------------- shape

@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_roll_repeat(dtype, device, rng):
    values = random_array(rng, (3, 4, 5), dtype, special=True)
    for a in (make(values, dtype, device), noncontiguous(values, dtype, device)):
        check(a.flip(0, 2), np.flip(values, (0, 2)), dtype)
        check(mt.flip(a, (-1,)), np.flip(values, -1), dtype)
        check(a.roll(3), np.roll(values, 3), dtype)
        check(a.roll((1, -7), (0, 2)), np.roll(values, (1, -7), (0, 2)), dtype)
        check(a.repeat(2, 1, 3), np.tile(values, (2, 1, 3)), dtype)
        check(a.repeat(2, 1, 1, 2), np.tile(values, (2, 1, 1, 2)), dtype)
    scalar = make(values[0, 0, 0], dtype, device)
    check(scalar.flip(()), values[0, 0, 0], dtype)
    check(scalar.repeat(3), np.tile(values[0, 0, 0], 3), dtype)
    empty = make(values[:0], dtype, device)
    check(empty.roll(2, 1), values[:0], dtype)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad(mode, device, rng):
    values = random_array(rng, (2, 3, 4, 5), "float32")
    np_mode = {"replicate": "edge"}.get(mode, mode)
    for pads in ((1, 2), (2, 1, 0, 3), (1, 1, 2, 2, 1, 0)):
        widths = [(0, 0)] * (4 - len(pads) // 2) + [(pads[2 * k], pads[2 * k + 1])
                                                   for k in reversed(range(len(pads) // 2))]
        kwargs = {"value": 1.5} if mode == "constant" else {}
        np_kwargs = {"constant_values": 1.5} if mode == "constant" else {}
        expected = np.pad(values, widths, mode=np_mode, **np_kwargs)
        for a in (make(values, "float32", device), noncontiguous(values, "float32", device)):
            check(F.pad(a, pads, mode=mode, **kwargs), expected, "float32")
    if mode == "constant":  # negative pads crop
        expected = np.pad(values[:, :, :-2, 1:], [(0, 0), (0, 0), (0, 0), (0, 2)])
        check(F.pad(make(values, "float32", device), (-1, 2, 0, -2)), expected, "float32")
    with pytest.raises(mt.InvalidArgumentError, match="mt_pad"):
        F.pad(make(values, "float32", device), (5, 0), mode="reflect")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tril_triu(dtype, device, rng):
    values = random_array(rng, (2, 4, 6), dtype, special=True)
    for a in (make(values, dtype, device), noncontiguous(values, dtype, device)):
        for k in (-2, 0, 1, 7):
            check(a.tril(k), np.tril(values, k), dtype)
            check(mt.triu(a, diagonal=k), np.triu(values, k), dtype)


def test_views(device):
    a = mt.arange(24, device=device).reshape(2, 3, 4)
    values = np.arange(24).reshape(2, 3, 4)
    check(a.view(6, 4), values.reshape(6, 4), "int64")
    check(a.view(-1), values.reshape(-1), "int64")
    check(a.permute(1, 0, 2)[:, :, 1:3].view(3, 2, 2),
          values.transpose(1, 0, 2)[:, :, 1:3].reshape(3, 2, 2), "int64")
    with pytest.raises(mt.ShapeError, match="mt_view"):
        a.transpose(0, 2).view(24)
    chunks = a.chunk(2, dim=2)
    assert [c.shape for c in chunks] == [(2, 3, 2), (2, 3, 2)]
    check(chunks[1], values[:, :, 2:], "int64")
    pieces = mt.split(a, [1, 2], dim=1)
    check(pieces[1], values[:, 1:], "int64")
    assert [p.shape[1] for p in a.split(2, 1)] == [2, 1]
    check(a.narrow(2, 1, 2), values[:, :, 1:3], "int64")
    check(mt.narrow(a, -1, -2, 2), values[:, :, 2:], "int64")


# ----------------------------------------------------------------- sampling

def test_multinomial(device):
    probs = mt.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 0.0]], device=device)
    draws = host(probs.multinomial(4000, replacement=True, seed=3))
    assert draws.dtype == np.int64 and draws.shape == (2, 4000)
    assert set(np.unique(draws[0])) == {1, 2} and (draws[1] == 0).all()
    assert abs((draws[0] == 2).mean() - 0.75) < 0.03
    order = host(mt.multinomial(mt.tensor([1.0, 2.0, 3.0, 4.0], device=device), 4, seed=5))
    assert sorted(order) == [0, 1, 2, 3]
    same = host(mt.multinomial(mt.tensor([1.0, 2.0, 3.0, 4.0]), 4, seed=5))
    np.testing.assert_array_equal(order, same)  # the same draws on every device
    with pytest.raises(mt.InvalidArgumentError, match="mt_multinomial"):
        mt.multinomial(mt.tensor([1.0, -1.0], device=device), 1, True).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_dropout(dtype, device, rng):
    values = random_array(rng, (64, 50), dtype, low=1, high=2)
    a = noncontiguous(values, dtype, device)
    out = host(F.dropout(a, p=0.4, seed=8))
    kept = out != 0
    assert abs(kept.mean() - 0.6) < 0.03
    np.testing.assert_allclose(out[kept], (values[kept].astype(np.float64) / 0.6),
                               rtol={"float16": 2e-3, "bfloat16": 1e-2}.get(dtype, 1e-6))
    cpu_mask = host(F.dropout(make(values, "float32", "cpu"), p=0.4, seed=8)) != 0
    np.testing.assert_array_equal(kept, cpu_mask)  # same mask on every device and dtype
    assert F.dropout(a, p=0.4, training=False) is a
    check(F.dropout(a, p=0.0, seed=1), values, dtype)
    with pytest.raises(mt.InvalidArgumentError, match="mt_dropout"):
        F.dropout(a, p=1.5)
