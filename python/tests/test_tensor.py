"""The Tensor class: creation, metadata, conversions, indexing and views,
repr, and the Python protocols (len, iter, bool, pickle, ...)."""

import pickle

import numpy as np
import pytest

import modaltensor as mt
from oracle import DTYPES, FLOATS, check, host, make, numpy_dtype, random_array

# ------------------------------------------------------------------ creation


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_ones_full_empty(dtype, device):
    for shape in [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 1, 1, 1, 1, 1, 2)]:
        carrier = numpy_dtype(dtype)
        check(mt.zeros(shape, dtype=dtype, device=device), np.zeros(shape, carrier), dtype)
        check(mt.ones(*shape, dtype=dtype, device=device), np.ones(shape, carrier), dtype)
        check(mt.full(shape, 3, dtype=dtype, device=device),
              np.full(shape, 3 if dtype != "bool" else True, carrier), dtype)
        e = mt.empty(shape, dtype=dtype, device=device)
        assert e.shape == shape and e.dtype == dtype and e.device == device


def test_creation_defaults(device):
    assert mt.zeros(2, device=device).dtype == mt.float32
    assert mt.full((2,), 7).dtype == mt.int64
    assert mt.full((2,), 7.5).dtype == mt.float32
    assert mt.full((2,), True).dtype == mt.bool
    assert mt.zeros([2, 3]).shape == (2, 3)
    assert mt.zeros(()).shape == ()
    assert mt.zeros(np.int64(4)).shape == (4,)
    like = mt.ones((2, 3), dtype="int16", device=device)
    for made in (mt.zeros_like(like), mt.ones_like(like), mt.empty_like(like),
                 mt.full_like(like, 2)):
        assert made.shape == (2, 3) and made.dtype == mt.int16 and made.device == device
    check(mt.full_like(like, 2), np.full((2, 3), 2), "int16")


@pytest.mark.parametrize("args,kwargs", [((5,), {}), ((2, 9, 3), {}), ((0, 1, 0.25), {}),
                                         ((5, 0, -1), {}), ((1, 5), {"dtype": "float64"}),
                                         ((3, 3), {}), ((-2.5, 2.5, 0.5), {"dtype": "int32"})])
def test_arange(args, kwargs, device):
    t = mt.arange(*args, device=device, **kwargs)
    whole = all(isinstance(a, int) for a in args)
    dtype = kwargs.get("dtype", "int64" if whole else "float32")
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args + (1,))[:3]
    expected = np.arange(start, end, step, dtype=np.float64)
    check(t, expected.astype(np.float64).astype(numpy_dtype(dtype)) if dtype != "int32"
          else np.trunc(expected).astype(np.int32), dtype)


def test_rand_randn(device):
    u = mt.rand(1000, seed=7, device=device)
    n = mt.randn(1000, seed=7, dtype="float64", device=device)
    values = host(u)
    assert values.min() >= 0.0 and values.max() < 1.0 and 0.4 < values.mean() < 0.6
    normal = host(n)
    assert abs(normal.mean()) < 0.15 and 0.85 < normal.std() < 1.15
    np.testing.assert_array_equal(host(mt.rand(1000, seed=7, device=device)), values)
    np.testing.assert_array_equal(host(mt.rand(1000, seed=7, device="cpu")), values)
    assert not np.array_equal(host(mt.rand(1000, seed=8, device=device)), values)
    mt.manual_seed(3)
    first = host(mt.rand(4, device=device))
    mt.manual_seed(3)
    np.testing.assert_array_equal(host(mt.rand(4, device=device)), first)
    for dtype in FLOATS:
        assert mt.randn(2, 3, dtype=dtype, device=device).dtype == dtype
    with pytest.raises(mt.DTypeError, match="mt_rand"):
        mt.rand(3, dtype="int32")


@pytest.mark.parametrize("data,dtype", [
    ([1.5, 2.0], "float32"), ([[1, 2], [3, 4]], "int64"), ([True, False], "bool"),
    (2.5, "float32"), (7, "int64"), (True, "bool"), ([], "float32"), ([[], []], "float32"),
    (np.array([1, 2], dtype=np.int8), "int8"), (np.float64(2.0), "float64"),
    (np.array([1.0, 2.0]), "float64"), (np.array([1, 2], dtype=np.uint32), "int64"),
    ((1, 2.5), "float32"), (np.array([1.0, 2.0], dtype=">f4"), "float32")])
def test_tensor_from_data(data, dtype, device):
    t = mt.tensor(data, device=device)
    expected = np.asarray(data)
    assert t.dtype == dtype and t.device == device and t.shape == expected.shape
    check(t, expected.astype(numpy_dtype(dtype)), dtype)


def test_tensor_with_dtype(device):
    check(mt.tensor([1.7, -2.7, 300.0], dtype="uint8", device=device), np.array([1, 0, 255]),
          "uint8")
    check(mt.tensor([1.0, 2.0], dtype="bfloat16", device=device), np.array([1.0, 2.0]),
          "bfloat16")
    check(mt.tensor([1, 0, 3], dtype=bool, device=device), np.array([True, False, True]), "bool")
    check(mt.tensor(np.arange(6).reshape(2, 3)[:, ::2], dtype=np.float16, device=device),
          np.array([[0, 2], [3, 5]]), "float16")
    source = mt.tensor([1, 2], device=device)
    copy = mt.tensor(source, dtype="float64")
    assert copy.dtype == mt.float64 and copy.device == device
    with pytest.raises(mt.DTypeError):
        mt.tensor(["a", "b"])
    with pytest.raises(mt.DTypeError):
        mt.tensor([1 + 2j])


def test_as_tensor_shares_when_it_can():
    array = np.arange(4, dtype=np.float32)
    shared = mt.as_tensor(array)
    array[0] = 42
    assert shared[0].item() == 42
    t = mt.ones(3)
    assert mt.as_tensor(t) is t
    assert mt.as_tensor(t, dtype="float64").dtype == mt.float64
    assert mt.as_tensor([1, 2]).dtype == mt.int64


# ------------------------------------------------------------------ metadata

def test_metadata(device):
    t = mt.zeros((2, 3, 4), dtype="float16", device=device)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3
    assert t.ndim == 3 and t.dim() == 3 and len(t) == 2
    assert t.strides == (12, 4, 1) and t.stride(0) == 12
    assert t.numel() == 24 and t.itemsize == 2 and t.element_size() == 2 and t.nbytes == 48
    assert t.dtype == mt.float16 and t.dtype == "float16" and t.dtype == np.float16
    assert t.dtype != "float32"
    assert t.is_contiguous() and not t.transpose(0, 2).is_contiguous()
    assert t.transpose(0, 2).strides == (1, 4, 12)
    assert t.device == device and t.device == mt.device(device)
    assert str(t.device) == ("cpu" if device == "cpu" else "modal:0")
    assert repr(t.device) == f"device('{t.device}')"
    assert t.T.shape == (4, 3, 2)


def test_dtypes_and_devices():
    assert mt.float32.itemsize == 4 and mt.bfloat16.itemsize == 2
    assert repr(mt.bfloat16) == "modaltensor.bfloat16" and str(mt.int8) == "int8"
    assert mt.bool is mt.bool_ and mt.half is mt.float16 and mt.double is mt.float64
    assert mt.float32.is_floating_point and not mt.int32.is_floating_point
    assert mt.int32.is_integer and not mt.bool.is_integer
    assert mt.bfloat16.numpy_dtype is None and mt.int16.numpy_dtype == np.int16
    assert {mt.float32: 1}["float32" == mt.float32 and mt.float32] == 1
    assert pickle.loads(pickle.dumps(mt.int8)) is mt.int8
    for spelling in ("float64", "double", "float", np.float64, float, 9):
        assert mt.zeros(1, dtype=spelling).dtype == mt.float64
    assert mt.device("modal") == "modal:0" and mt.device("cpu") == mt.device(None)
    assert mt.device("modal:3").index == 3
    assert pickle.loads(pickle.dumps(mt.device("modal:2"))) == "modal:2"
    with pytest.raises(mt.DTypeError):
        mt.zeros(1, dtype="float8")
    with pytest.raises(mt.DTypeError):
        mt.zeros(1, dtype=42)


# --------------------------------------------------------------- conversions

def test_to_and_copies(device):
    t = mt.tensor([[1.5, -2.5], [3.0, 4.0]])
    moved = t.to(device)
    assert moved.device == device
    check(moved, host(t), "float32")
    check(t.to(device, "int32"), np.array([[1, -2], [3, 4]]), "int32")
    check(t.to(dtype=mt.float16, device=device), host(t), "float16")
    check(t.to(mt.zeros(1, dtype="float64", device=device)), host(t), "float64")
    assert t.to("float64").device == "cpu"
    assert t.cpu().device == "cpu" and t.modal().device == "modal:0"
    assert t.double().dtype == mt.float64 and t.half().dtype == mt.float16
    assert t.int().dtype == mt.int32 and t.long().dtype == mt.int64
    assert t.bool().dtype == mt.bool and t.float().dtype == mt.float32
    assert t.bfloat16().dtype == mt.bfloat16 and t.astype("int8").dtype == mt.int8
    assert t.short().dtype == mt.int16 and t.byte().dtype == mt.uint8 and \
        t.char().dtype == mt.int8
    same = moved.to(device)
    copied = moved.to(device, copy=True)
    moved[0, 0] = 9.0
    assert same[0, 0].item() == 9.0 and copied[0, 0].item() == 1.5
    clone = moved.clone()
    moved[0, 0] = 8.0
    assert clone[0, 0].item() == 9.0
    view = moved.T
    assert not view.is_contiguous() and view.contiguous().is_contiguous()
    check(view.contiguous(), host(moved).T, "float32")


def test_numpy_conversions(device):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = mt.tensor(values, device=device)
    array = t.numpy()
    np.testing.assert_array_equal(array, values)
    np.testing.assert_array_equal(np.asarray(t), values)
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), values)
    np.testing.assert_array_equal(t.T.numpy(), values.T)
    np.testing.assert_array_equal(t[:, 1::2].numpy(), values[:, 1::2])
    assert t.tolist() == values.tolist()
    assert mt.tensor(2.5).tolist() == 2.5
    assert mt.tensor([1.5], dtype="bfloat16").tolist() == [1.5]
    with pytest.raises(mt.DTypeError, match="bfloat16"):
        t.bfloat16().numpy()
    if device == "cpu":
        t[0, 0] = 100.0
        assert array[0, 0] == 100.0  # a cpu tensor's numpy() shares its memory
        array[0, 1] = -1.0
        assert t[0, 1].item() == -1.0
        forced = t.numpy(force=True)
        forced[0, 0] = 0.0
        assert t[0, 0].item() == 100.0
    assert t.numpy().flags.writeable
    assert mt.zeros((0, 3), device=device).numpy().shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_item_and_scalars(dtype, device):
    value = {"bool": True, "uint8": 200, "int8": -5}.get(dtype, 3)
    t = mt.full((), value, dtype=dtype, device=device)
    item = t.item()
    assert item == value and type(item) is (bool if dtype == "bool" else
                                            float if dtype in FLOATS else int)
    assert mt.full((1, 1), value, dtype=dtype, device=device).item() == value
    assert bool(t) and int(t) == int(value) and float(t) == float(value)
    with pytest.raises(mt.ShapeError, match="mt_item"):
        mt.zeros(2, dtype=dtype, device=device).item()


def test_int64_item_is_exact(device):
    big = 2**62 + 1
    assert mt.tensor([big], device=device).item() == big
    assert mt.tensor([big], device=device)[0] + 0 == mt.tensor(big, device=device)


def test_python_protocols(device):
    t = mt.arange(6, device=device).reshape(2, 3)
    assert len(t) == 2
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4, 5]
    assert 4 in t and 9 not in t
    assert [1, 2, 3][mt.tensor(1)] == 2
    assert f"{mt.tensor(3.14159, device=device):.2f}" == "3.14"
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    with pytest.raises(TypeError):
        len(mt.tensor(1.0))
    with pytest.raises(TypeError):
        iter(mt.tensor(1.0))
    with pytest.raises(TypeError):
        [1, 2][mt.tensor(1.0)]
    assert hash(t) == hash(t) and {t: 1}[t] == 1
    restored = pickle.loads(pickle.dumps(t.T))
    assert restored.device == t.device and restored.tolist() == host(t).T.tolist()
    assert mt.is_tensor(t) and not mt.is_tensor(host(t))
    assert isinstance(mt.Tensor([1, 2]), mt.Tensor)


def test_any_all(device):
    t = mt.tensor([[0, 1, 0], [0, 0, 0]], device=device)
    assert bool(t.any()) and not bool(t.all())
    assert t.any(1).tolist() == [True, False]
    assert mt.ones(3, device=device).all().item() is True
    assert mt.zeros(0, device=device).all().item() is True


# ------------------------------------------------------------------ indexing

INDEX_KEYS = [
    0, -1, (1, 2), (slice(None), 1), (slice(1, None), slice(None, None, 2)),
    (Ellipsis, 0), (None, 1), (0, None, slice(None), None), (slice(-3, -1),), slice(5, 10),
    (Ellipsis,), (), (1, Ellipsis, None), (slice(None, None, 3), -2, 1),
    (Ellipsis, slice(1, 2), None), (slice(10, 1),)]


@pytest.mark.parametrize("key", INDEX_KEYS, ids=[repr(k) for k in INDEX_KEYS])
def test_basic_indexing_gives_views(key, device, rng):
    values = random_array(rng, (4, 5, 3), "float32")
    t = make(values, "float32", device)
    view = t[key]
    check(view, values[key], "float32")
    if view.numel():
        view.fill_(7.0)  # a view: writes land in t
        expected = values.copy()
        expected[key] = 7.0
        check(t, expected, "float32")


@pytest.mark.parametrize("key", [[2, 0, 2], (slice(None), [1, -1]), np.array([[0, 1], [3, 2]]),
                                 (Ellipsis, [0]), (0, [2, 1]), (None, [1, 3], 0)],
                         ids=["list", "dim1", "2d", "ellipsis", "after-int", "after-none"])
def test_integer_array_indexing(key, device, rng):
    values = random_array(rng, (4, 5, 3), "int32")
    t = make(values, "int32", device)
    check(t[key], values[key], "int32")
    check(t[mt.tensor(key[0] if isinstance(key, list) else [0, 1])],
          values[key[0] if isinstance(key, list) else [0, 1]], "int32")


def test_mask_indexing(device, rng):
    values = random_array(rng, (4, 5), "float32")
    t = make(values, "float32", device)
    check(t[t > 0], values[values > 0], "float32")
    rows = np.array([True, False, True, True])
    check(t[rows], values[rows], "float32")
    check(t[:, values[0] > 0], values[:, values[0] > 0], "float32")
    check(t[mt.tensor(rows, device=device)], values[rows], "float32")
    with pytest.raises(IndexError, match="mask"):
        t[np.array([True, False])]


def test_index_errors(device):
    t = mt.zeros((2, 3), device=device)
    for key in [2, -3, (0, 3), (0, 0, 0), (Ellipsis, Ellipsis), 1.5, "a", True,
                ([0], [1])]:
        with pytest.raises(IndexError):
            t[key]
    with pytest.raises(ValueError, match="step"):
        t[::-1]
    with pytest.raises(IndexError, match="assignment"):
        t[[0, 1]] = 1.0
    with pytest.raises(mt.InvalidArgumentError, match="mt_index_select"):
        t[[5]].cpu()  # (a sync point: a modal device may defer the check)


def test_setitem(device):
    t = mt.zeros((3, 4), dtype="int32", device=device)
    t[0] = 1
    t[1, 1:3] = mt.tensor([5, 6], device=device)
    t[2] = np.arange(4)
    t[:, -1] = [7, 8, 9]
    t[..., 0] = 2.9  # converted to int32 as mt_cast does: truncated
    check(t, np.array([[2, 1, 1, 7], [2, 5, 6, 8], [2, 1, 2, 9]]), "int32")
    t[None, 1] = mt.tensor([0, 0, 0, 0], device="cpu")  # copied across devices
    assert t[1].tolist() == [0, 0, 0, 0]
    with pytest.raises(mt.ShapeError, match="mt_copy_"):
        t[0] = mt.ones(3, dtype="int32", device=device)
    with pytest.raises(mt.InvalidArgumentError, match="mt_copy_"):
        t[0].expand(2, 4).copy_(mt.zeros((2, 4), dtype="int32", device=device))


# --------------------------------------------------------------------- views

def test_views(device, rng):
    values = random_array(rng, (2, 3, 4), "float64")
    t = make(values, "float64", device)
    check(t.reshape(4, 6), values.reshape(4, 6), "float64")
    check(t.reshape((-1, 2)), values.reshape(-1, 2), "float64")
    check(t.reshape(()) if t.numel() == 1 else t.reshape(24), values.reshape(24), "float64")
    check(t.permute(2, 0, 1), values.transpose(2, 0, 1), "float64")
    check(t.permute((-1, 0, 1)), values.transpose(2, 0, 1), "float64")
    check(t.transpose(0, -1), np.swapaxes(values, 0, -1), "float64")
    check(t.transpose(0, 2).reshape(-1), np.swapaxes(values, 0, 2).reshape(-1), "float64")
    check(t.flatten(), values.reshape(-1), "float64")
    check(t.flatten(1), values.reshape(2, 12), "float64")
    check(t.slice(2, 1, None, 2), values[:, :, 1::2], "float64")
    check(t[:, :1].expand(2, 5, 4), np.broadcast_to(values[:, :1], (2, 5, 4)), "float64")
    check(t[:, :1].expand(3, -1, -1, 4), np.broadcast_to(values[:, :1], (3, 2, 1, 4)),
          "float64")
    check(t[:1].expand_as(t), np.broadcast_to(values[:1], (2, 3, 4)), "float64")
    check(t[:, :1].squeeze(1), values[:, 0], "float64")
    check(t[:1, :, :1].squeeze(), values[0, :, 0], "float64")
    check(t.unsqueeze(-1), values[..., None], "float64")
    check(mt.unsqueeze(t, 0), values[None], "float64")
    check(mt.reshape(t, (3, 8)), values.reshape(3, 8), "float64")
    with pytest.raises(mt.ShapeError, match="mt_reshape"):
        t.reshape(5, 5)
    with pytest.raises(mt.ShapeError, match="mt_squeeze"):
        t.squeeze(0)
    with pytest.raises(mt.ShapeError):
        t.permute(0, 1)
    with pytest.raises(mt.ShapeError, match="mt_expand"):
        t.expand(3, 3, 4)


def test_views_share_storage(device):
    base = mt.zeros((3, 4), device=device)
    views = [base.reshape(4, 3), base.T, base[1:], base.unsqueeze(0), base[:, :1].expand(3, 5)]
    base.fill_(2.0)
    for view in views:
        assert bool((view == 2.0).all())
    del base
    assert views[1].sum().item() == 24.0  # views outlive their base


# ---------------------------------------------------------------------- repr

def test_repr_like_pytorch():
    assert repr(mt.tensor([1.0, 2.0, 3.0])) == "tensor([1., 2., 3.])"
    assert repr(mt.tensor([1.5, -2.25])) == "tensor([ 1.5000, -2.2500])"
    assert repr(mt.tensor([[1, 2], [30, 4]])) == "tensor([[ 1,  2],\n        [30,  4]])"
    assert repr(mt.tensor(2.5)) == "tensor(2.5000)"
    assert repr(mt.tensor([True, False])) == "tensor([ True, False])"
    assert repr(mt.tensor([1, 2], dtype="int32")) == "tensor([1, 2], dtype=modaltensor.int32)"
    assert repr(mt.zeros((0, 3))) == "tensor([], size=(0, 3))"
    assert repr(mt.tensor([], dtype="int16")) == "tensor([], dtype=modaltensor.int16)"
    assert repr(mt.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(mt.tensor([float("nan"), 1.0, float("-inf")])) == "tensor([nan, 1., -inf])"
    assert repr(mt.tensor([0.5], dtype="bfloat16")) == \
        "tensor([0.5000], dtype=modaltensor.bfloat16)"
    assert repr(mt.ones(2, device="modal")) == "tensor([1., 1.], device='modal:0')"
    assert repr(mt.ones(2, dtype="float16", device="modal")) == \
        "tensor([1., 1.], device='modal:0', dtype=modaltensor.float16)"
    assert repr(mt.arange(5000)) == "tensor([   0,    1,    2, ..., 4997, 4998, 4999])"
    assert str(mt.tensor([1.0])) == repr(mt.tensor([1.0]))
