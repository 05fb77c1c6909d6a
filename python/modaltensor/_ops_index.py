"""The indexing, shape, creation, sampling (0.2) ops: their ctypes prototypes, Tensor methods and module
functions, with PyTorch's names, argument names and defaults."""

from . import _lib
from .tensor import Tensor  # noqa: F401  (methods are attached to it)

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {}
_lib.declare(PROTOTYPES)

# Module functions (mt.<name>) this family adds.
__all__ = []
