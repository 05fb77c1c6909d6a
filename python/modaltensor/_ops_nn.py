"""The neural-network ops (0.2): their ctypes prototypes, as include/modaltensor.h declares them.
Their torch.nn.functional names and arguments are in modaltensor.nn.functional."""

from . import _lib
from ._lib import _TENSOR

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_linear": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR]),
}
_lib.declare(PROTOTYPES)
