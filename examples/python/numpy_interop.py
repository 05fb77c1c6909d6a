"""modaltensor and NumPy (and PyTorch, where installed) share memory.

  - mt.from_numpy(array) and mt.from_dlpack(array) wrap a NumPy array's
    memory in a cpu tensor: no copy, and the array lives as long as the tensor.
  - t.numpy() of a cpu tensor, and numpy.from_dlpack(t), are views of the
    tensor's memory (a modal tensor is downloaded by t.numpy()).
  - mt.tensor(array) copies; NumPy arrays mix with tensors in operators.

Usage: python3 examples/python/numpy_interop.py [--in-process]
  --in-process  run modal tensors in this process (also chosen when no
                worker answers)
"""

import os
import sys

import numpy as np

try:
    import modaltensor as mt
except ImportError:  # a source checkout: use the package next to this file's repo
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import modaltensor as mt


def address(array):
    return array.__array_interface__["data"][0]


# NumPy -> modaltensor without a copy.
image = np.arange(12, dtype=np.float32).reshape(3, 4)
t = mt.from_numpy(image)
print("from_numpy shares memory:", t.data_ptr() == address(image))
image[0, 0] = -1.0
print("a write to the array shows in the tensor:", t[0, 0].item())
u = mt.from_dlpack(image[:, ::2])  # DLPack keeps strides: a view, still no copy
print("from_dlpack of a strided view:", u.strides, u.data_ptr() == address(image))

# modaltensor -> NumPy without a copy.
weights = mt.randn(2, 3, seed=0, dtype="float64")
view = weights.numpy()
shared = np.from_dlpack(weights)   # read-only in NumPy's hands
weights[1, 2] = 42.0
print("numpy() and numpy.from_dlpack() see the write:", view[1, 2], shared[1, 2])
print("bool tensors too, via numpy():", mt.tensor([True, False]).numpy())

# Mixing: NumPy arrays in operators become tensors; np.asarray reads tensors.
total = weights + np.ones((2, 3))
print("tensor + ndarray ->", type(total).__name__, total.dtype)
print("np.asarray(tensor) ->", type(np.asarray(total)).__name__)
print("np.mean over a tensor:", np.mean(mt.arange(10)))

# NumPy as a reference for a computation on the modal device.
if "--in-process" in sys.argv[1:] or not mt.modal.is_available():
    mt.modal.disable_remote_execution()  # modal tensors run in this process
a = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
b = np.random.default_rng(2).standard_normal((32, 16)).astype(np.float32)
on_device = (mt.tensor(a, device="modal") @ mt.tensor(b, device="modal")).softmax(-1)
reference = np.exp(a @ b) / np.exp(a @ b).sum(-1, keepdims=True)
print("modal softmax(a @ b) matches NumPy:", np.allclose(on_device.numpy(), reference,
                                                         rtol=1e-4, atol=1e-6))

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipping the torch round trip")
else:
    tt = torch.from_dlpack(mt.arange(4, dtype="float32"))
    back = mt.from_dlpack(tt)
    print("torch round trip shares memory:", back.data_ptr() == tt.data_ptr())
