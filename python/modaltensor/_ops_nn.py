"""The neural-network ops (0.2): their ctypes prototypes, as include/modaltensor.h declares them.
Their torch.nn.functional names and arguments are in modaltensor.nn.functional."""

from . import _lib
from ctypes import c_double, c_int

from ._lib import _TENSOR

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_linear": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR]),
    "mt_scaled_dot_product_attention": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR, _TENSOR, c_int,
                                                  c_double]),
}
_lib.declare(PROTOTYPES)
