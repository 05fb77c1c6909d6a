"""Zero-copy interop: DLPack both ways, from_numpy, numpy() - each round
trip checks that memory is shared, not copied."""

import gc

import numpy as np
import pytest

import modaltensor as mt
from modaltensor import _interop

EXCHANGED = ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
NUMPY_HAS_DLPACK_BOOL = tuple(int(p) for p in np.__version__.split(".")[:2]) >= (1, 25)


def _torch_has_dlpack_bool(torch):
    """kDLBool arrived in PyTorch 2.0 (Debian 12 ships 1.13)."""
    return tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 0)


def _address(array):
    return array.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", EXCHANGED)
def test_numpy_from_dlpack_shares_memory(dtype):
    t = mt.arange(12, dtype=dtype).reshape(3, 4)
    array = np.from_dlpack(t)
    assert array.dtype == np.dtype(dtype) and array.shape == (3, 4)
    assert _address(array) == t.data_ptr()
    t[1, 2] = 99
    assert array[1, 2] == 99
    np.testing.assert_array_equal(array, t.numpy())


@pytest.mark.parametrize("make_view", [lambda t: t.T, lambda t: t[1:, ::2], lambda t: t[2],
                                       lambda t: t[:1].expand(4, 6), lambda t: t[0, 0]],
                         ids=["transpose", "slice", "row", "expand", "0-d"])
def test_views_keep_their_strides(make_view):
    base = mt.arange(24, dtype="float32").reshape(4, 6)
    view = make_view(base)
    array = np.from_dlpack(view)
    np.testing.assert_array_equal(array, view.numpy())
    assert array.strides == tuple(s * 4 for s in view.strides)
    if view.numel():
        assert _address(array) == view.data_ptr()


def test_export_outlives_the_tensor():
    t = mt.arange(5, dtype="int64")
    array = np.from_dlpack(t)
    del t
    gc.collect()
    assert array.tolist() == [0, 1, 2, 3, 4]


def test_bool_and_bfloat16_exports():
    flags = mt.tensor([True, False, True])
    if NUMPY_HAS_DLPACK_BOOL:
        array = np.from_dlpack(flags)
        assert array.dtype == np.bool_ and _address(array) == flags.data_ptr()
    else:
        # kDLBool is newer than this NumPy: it refuses the capsule, whose export
        # is released all the same (see test_memory), and numpy() shares instead.
        with pytest.raises(Exception):
            np.from_dlpack(flags)
    shared = flags.numpy()
    assert shared.dtype == np.bool_ and _address(shared) == flags.data_ptr()
    with pytest.raises(Exception):
        np.from_dlpack(mt.zeros(2, dtype="bfloat16"))  # NumPy has no bfloat16


@pytest.mark.parametrize("dtype", EXCHANGED + ["bool"])
def test_from_dlpack_of_numpy_shares_memory(dtype):
    array = np.arange(12).reshape(3, 4).astype(dtype)
    t = mt.from_dlpack(array)
    assert t.dtype == dtype and t.shape == (3, 4) and t.device == "cpu"
    assert t.data_ptr() == _address(array)
    array[0, 0] = 1
    array[2, 3] = 0
    assert t[0, 0].item() == 1 and t[2, 3].item() == 0
    check_view = mt.from_dlpack(array[:, 1::2])
    np.testing.assert_array_equal(check_view.numpy(), array[:, 1::2])


def test_from_dlpack_keeps_the_producer_alive():
    t = mt.from_dlpack(np.arange(1000, dtype=np.float64))
    gc.collect()
    assert t.sum().item() == 499500.0


def test_round_trip_keeps_one_buffer():
    original = mt.arange(6, dtype="float32")
    readonly = np.from_dlpack(original)  # NumPy marks imports read-only, and
    with pytest.raises(BufferError):     # refuses to export read-only arrays
        mt.from_dlpack(readonly)
    assert mt.from_numpy(readonly).data_ptr() == original.data_ptr()
    again = mt.from_dlpack(original)
    assert again.data_ptr() == original.data_ptr()
    array = np.arange(4.0)
    assert _address(np.from_dlpack(mt.from_dlpack(array))) == _address(array)


def test_capsules():
    t = mt.arange(3, dtype="int32")
    capsule = t.__dlpack__()
    assert "dltensor" in repr(capsule)
    imported = mt.from_dlpack(capsule)
    assert imported.tolist() == [0, 1, 2] and imported.data_ptr() == t.data_ptr()
    assert "used_dltensor" in repr(capsule)
    with pytest.raises(ValueError):
        mt.from_dlpack(capsule)  # a capsule is consumed once
    copied = mt.from_dlpack(t.__dlpack__(copy=True))
    assert copied.data_ptr() != t.data_ptr() and copied.tolist() == [0, 1, 2]
    assert t.__dlpack_device__() == (1, 0)
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))


def test_modal_tensors_do_not_export():
    t = mt.zeros(2, device="modal")
    with pytest.raises(mt.DeviceError, match="cpu"):
        t.__dlpack_device__()
    with pytest.raises(mt.DeviceError, match="mt_to_dlpack"):
        t.__dlpack__()
    with pytest.raises(mt.DeviceError):
        mt.from_dlpack(t)
    assert np.from_dlpack(t.cpu()).tolist() == [0.0, 0.0]


def test_from_dlpack_refuses_foreign_devices():
    class OnGpu:
        def __dlpack__(self, stream=None):
            raise AssertionError("must not be asked for a capsule")

        def __dlpack_device__(self):
            return (2, 0)
    with pytest.raises(mt.DeviceError, match="device type 2"):
        mt.from_dlpack(OnGpu())


def test_from_numpy_shares_and_pins():
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    t = mt.from_numpy(array)
    assert t.data_ptr() == _address(array) and t.dtype == mt.int16
    t[0, 0] = 7
    assert array[0, 0] == 7
    strided = mt.from_numpy(array[:, ::2])
    assert strided.strides == (3, 2) and strided.tolist() == [[7, 2], [3, 5]]
    key_count = len(_interop._pinned)
    del array
    gc.collect()
    assert t.sum().item() == 22  # the array lives as long as the tensor
    del t, strided
    gc.collect()
    assert len(_interop._pinned) == key_count - 2
    empty = mt.from_numpy(np.zeros((0, 3), dtype=np.float32))
    assert empty.shape == (0, 3) and empty.data_ptr() == 0


def test_numpy_view_keeps_the_tensor_alive():
    array = mt.arange(4, dtype="float64").numpy()
    gc.collect()
    assert array.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_torch_interop():
    torch = pytest.importorskip("torch")
    t = mt.arange(6, dtype="float32")
    shared = torch.from_dlpack(t)
    t[0] = 42.0
    assert shared[0].item() == 42.0 and shared.data_ptr() == t.data_ptr()
    flags = mt.tensor([True, False])
    if _torch_has_dlpack_bool(torch):
        assert torch.from_dlpack(flags).dtype == torch.bool
    else:
        # PyTorch before 2.0 predates kDLBool (it cannot even export its own
        # bool tensors); NumPy's zero-copy path still carries them across.
        with pytest.raises(RuntimeError, match="Unsupported code 6"):
            torch.from_dlpack(flags)
        shared = torch.from_numpy(flags.numpy())
        assert shared.dtype == torch.bool and shared.data_ptr() == flags.data_ptr()
    back = mt.from_dlpack(torch.arange(3, dtype=torch.int64))
    assert back.tolist() == [0, 1, 2]
    assert mt.from_dlpack(torch.zeros(2, dtype=torch.bfloat16)).dtype == mt.bfloat16
