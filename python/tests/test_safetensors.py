"""mt.load_file / mt.save_file against the format's reference implementation
(the safetensors package, skipped without it) and PyTorch: files each side
writes load on the other, bit for bit, for every dtype both have, on the cpu
and the modal device."""

import numpy as np
import pytest

import modaltensor as mt
from oracle import DTYPES, host, make, noncontiguous, random_array

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")

TORCH_DTYPES = {"bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8,
                "int16": torch.int16, "int32": torch.int32, "int64": torch.int64,
                "float16": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32, "float64": torch.float64}
SHAPES = [(), (0,), (3,), (2, 3, 4), (0, 5)]


def as_torch(t):
    values = host(t)
    return torch.from_numpy(np.array(values, order="C")).to(TORCH_DTYPES[str(t.dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_our_files_load_in_the_reference(dtype, device, rng, tmp_path):
    tensors = {f"t{i}": make(random_array(rng, s, dtype), dtype, device)
               for i, s in enumerate(SHAPES)}
    tensors["view"] = noncontiguous(random_array(rng, (3, 4), dtype), dtype, device)
    path = tmp_path / "ours.safetensors"
    mt.save_file(tensors, path)
    theirs = st_torch.load_file(str(path))
    assert list(theirs) == sorted(tensors)  # the reference lists names sorted
    for name, t in tensors.items():
        assert theirs[name].dtype == TORCH_DTYPES[dtype] and tuple(theirs[name].shape) == t.shape
        assert torch.equal(theirs[name], as_torch(t)), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_files_load_here(dtype, device, rng, tmp_path):
    values = {f"w{i}": torch.from_numpy(np.ascontiguousarray(
        random_array(rng, s, "float32" if dtype == "bfloat16" else dtype))).to(TORCH_DTYPES[dtype])
        for i, s in enumerate(SHAPES)}
    path = tmp_path / "theirs.safetensors"
    st_torch.save_file(values, str(path), metadata={"format": "pt"})
    ours = mt.load_file(path, device=device)
    assert sorted(ours) == sorted(values)
    for name, t in ours.items():
        assert t.device == device and str(t.dtype) == dtype
        assert torch.equal(as_torch(t), values[name]), name


def test_round_trip_keeps_order_and_values(device, rng, tmp_path):
    tensors = {"z": mt.arange(5, device=device), "a": mt.ones((2, 2), device=device),
               "m": make(random_array(rng, (4,), "bfloat16"), "bfloat16", device)}
    mt.save_file(tensors, tmp_path / "r.safetensors")
    back = mt.load_file(tmp_path / "r.safetensors", device=device)
    assert list(back) == ["z", "a", "m"]
    for name in tensors:
        np.testing.assert_array_equal(host(back[name]), host(tensors[name]))


def test_broken_files_raise(tmp_path):
    path = tmp_path / "bad.safetensors"
    st_torch.save_file({"x": torch.ones(4)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(mt.InvalidArgumentError, match="mt_safetensors_open: .*the file has 15"):
        mt.load_file(path)
    with pytest.raises(mt.InvalidArgumentError, match="cannot open"):
        mt.load_file(tmp_path / "missing.safetensors")
    with pytest.raises(mt.InvalidArgumentError, match="mt_safetensors_save: .*cannot create"):
        mt.save_file({"a": mt.ones(1)}, tmp_path / "no" / "dir" / "x.safetensors")
    with pytest.raises(TypeError, match="expected str -> Tensor"):
        mt.save_file({"a": np.ones(2)}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="metadata"):
        mt.save_file({"a": mt.ones(1)}, tmp_path / "x.safetensors", metadata={"k": "v"})
