"""A quick tour of modaltensor, the Python binding of libmodaltensor.

Run from a source checkout after building the library:
    python3 examples/python/tour.py [--in-process]
(the binding finds build*/src/libmodaltensor.so; MODALTENSOR_LIBRARY=path
picks another one). Modal tensors run in a worker, or in this process with
--in-process or when no worker answers.
"""

import os
import sys

try:
    import modaltensor as mt
except ImportError:  # a source checkout: use the package next to this file's repo
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import modaltensor as mt


def section(title):
    print(f"\n== {title}")


section("making tensors")
x = mt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(x)
print("shape", x.shape, "dtype", x.dtype, "device", x.device, "strides", x.strides)
print(mt.zeros(2, 3, dtype="int32"))
print(mt.arange(0, 1, 0.25))
print(mt.full((2, 2), 7))                       # int64, as the fill value is an int
print(mt.rand(3, seed=0), mt.randn(3, seed=0))  # same seed, same values on every device

section("arithmetic, broadcasting, promotion")
print(x + 1)                                    # float32 stays float32
print(x * mt.tensor([1, 0, -1]))                # int64 column weights broadcast over rows
print(mt.arange(3) / 2)                         # true division: integers give float32
print(x.T @ x)                                  # matrix product
print((x > 2) & (x < 6))                        # comparisons give bool
print(x.exp().sum(dim=1), x.mean(), x.amax(dim=0))
print(x.softmax(dim=-1))

section("indexing gives views")
row = x[1]
row[0] = -4.0                                   # writes through to x
print(x)
print(x[:, ::2], x[None, 0].shape, x[..., -1])
print("integer arrays and masks copy:", x[[1, 0]], x[x > 2])

section("dtypes")
h = x.to("float16")
print(h, h.dtype, h.itemsize)
print(x.bfloat16(), x.int(), (x > 0).sum())    # sum of bool counts: int64

section("the modal device")
if "--in-process" in sys.argv[1:] or not mt.modal.is_available():
    print("modal tensors run in-process")
    mt.modal.disable_remote_execution()
props = mt.modal.get_device_properties(0)
print(f"modal:0 is {props.name!r}, {props.total_memory >> 20} MiB")
m = x.to("modal")
y = (m @ m.T).relu()
mt.modal.synchronize()                          # waits for queued work, reports its errors
print(y, "->", y.cpu().device)

section("errors carry the library's message")
try:
    x + mt.zeros(4)
except mt.ShapeError as error:                  # also a ValueError
    print(type(error).__name__, "|", error)
try:
    x + m
except mt.DeviceError as error:
    print(type(error).__name__, "|", error)

section("NumPy")
array = x.numpy()                               # shares x's memory
array[0, 0] = 100.0
print(x[0, 0].item(), mt.tensor(array.sum(axis=0)))
