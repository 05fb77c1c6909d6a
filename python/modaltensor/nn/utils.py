"""torch.nn.utils' gradient clipping over mt_clip_grad_norm."""

import math
from ctypes import POINTER, byref, c_int, c_void_p

from .. import _lib
from ..errors import check
from ..tensor import Tensor, _wrap

__all__ = ["clip_grad_norm_"]

# mt_grad as include/modaltensor.h declares it (the same entry as the
# binding's autograd prototypes, whichever module loads first);
# mt_clip_grad_norm is declared with the optimizers (modaltensor/optim.py).
_lib.declare({"mt_grad": (c_int, [c_void_p, POINTER(c_void_p)])})


def _params_list(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scales the gradients of parameters (a Tensor or an iterable of them)
    in place so that their 2-norm, taken over all of them together, is at
    most max_norm (torch.nn.utils.clip_grad_norm_: factor min(1, max_norm /
    (total + 1e-6))). Returns the total norm before clipping, a 0-d float32
    tensor on the first gradient's device; on a modal device nothing is
    downloaded unless error_if_nonfinite=True, which reads the total."""
    if float(norm_type) != 2.0:
        raise NotImplementedError(f"modaltensor.nn.utils.clip_grad_norm_: norm_type "
                                  f"{norm_type}: only the 2-norm is supported")
    params = _params_list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"modaltensor.nn.utils.clip_grad_norm_: a parameter is a "
                            f"{type(p).__name__}, expected a Tensor")
    array = (c_void_p * max(len(params), 1))(*[p._h for p in params])
    out = c_void_p()
    check(_lib.lib.mt_clip_grad_norm(len(params), array, float(max_norm), byref(out)),
          "mt_clip_grad_norm")
    total = _wrap(out.value, "mt_clip_grad_norm")
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {float(norm_type)} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable this "
                           "error and scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return total


def fill_grad_(p, value):
    """Fills p's gradient, if it has one, with value in place (zero_grad with
    set_to_none=False)."""
    g = c_void_p()
    check(_lib.lib.mt_grad(p._h, byref(g)), "mt_grad")
    if not g.value:
        return
    _wrap(g.value, "mt_grad").copy_(value)  # the handle shares the gradient's storage
