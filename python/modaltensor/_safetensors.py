"""Weights on disk in the safetensors format: mt.load_file and mt.save_file, with the names and
arguments of safetensors.torch."""

import os
from ctypes import POINTER, c_char_p, c_int, c_void_p, cast, create_string_buffer

from . import _lib
from ._lib import _TENSOR, MtDevice, lib
from .device import as_device
from .errors import check, last_error
from .tensor import Tensor, _wrap

_FILE = c_void_p  # mt_safetensors *

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_safetensors_open": (_FILE, [c_char_p]),
    "mt_safetensors_count": (c_int, [_FILE]),
    "mt_safetensors_name": (c_char_p, [_FILE, c_int]),
    "mt_safetensors_get": (_TENSOR, [_FILE, c_char_p, MtDevice]),
    "mt_safetensors_close": (None, [_FILE]),
    "mt_safetensors_save": (c_int, [c_char_p, c_int, POINTER(c_void_p), POINTER(c_void_p)]),
}
_lib.declare(PROTOTYPES)

__all__ = ["load_file", "save_file"]


def load_file(filename, device="cpu"):
    """{name: Tensor} of every tensor in the file, in the order of their
    bytes, each on device (safetensors.torch.load_file). The header is
    checked whole before anything loads."""
    handle = lib.mt_safetensors_open(os.fsencode(filename))
    if not handle:
        raise last_error("mt_safetensors_open")
    try:
        dev = as_device(device).c
        names = [lib.mt_safetensors_name(handle, i)
                 for i in range(lib.mt_safetensors_count(handle))]
        return {name.decode(): _wrap(lib.mt_safetensors_get(handle, name, dev),
                                     "mt_safetensors_get") for name in names}
    finally:
        lib.mt_safetensors_close(handle)


def save_file(tensors, filename, metadata=None):
    """Writes the dict {name: Tensor} to filename (safetensors.torch.save_file);
    the file appears whole or not at all. metadata is not supported."""
    if metadata:
        raise ValueError("modaltensor.save_file: metadata is not supported")
    items = list(tensors.items())
    for name, t in items:
        if not isinstance(name, str) or not isinstance(t, Tensor):
            raise TypeError(f"modaltensor.save_file: {name!r}: expected str -> Tensor, got "
                            f"{type(name).__name__} -> {type(t).__name__}")
    buffers = [create_string_buffer(name.encode()) for name, _ in items]
    names = (c_void_p * max(len(items), 1))(*[cast(b, c_void_p) for b in buffers])
    handles = (c_void_p * max(len(items), 1))(*[t._h for _, t in items])
    check(lib.mt_safetensors_save(os.fsencode(filename), len(items), names, handles),
          "mt_safetensors_save")
