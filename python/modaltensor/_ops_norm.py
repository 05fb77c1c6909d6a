"""The normalisations and losses: their ctypes prototypes and the
torch.nn.functional functions over them (rms_norm, group_norm, batch_norm,
cross_entropy), with PyTorch's names, argument names and defaults; plus the
functional forms of layer_norm, softmax, log_softmax and the activations that
exist as ops."""

import numbers
from ctypes import c_double, c_int, c_int64, c_void_p

from . import _lib
from .dtypes import finfo
from .errors import InvalidArgumentError
from .tensor import _call, where

_T = c_void_p  # mt_tensor *

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_rms_norm": (_T, [_T, _T, c_double]),
    "mt_group_norm": (_T, [_T, c_int64, _T, _T, c_double]),
    "mt_batch_norm": (_T, [_T, _T, _T, _T, _T, c_int, c_double, c_double]),
    "mt_cross_entropy": (_T, [_T, _T, c_int64, c_double]),
}
_lib.declare(PROTOTYPES)


def _handle(t):
    return None if t is None else t._h


def _last_dim_only(name, input, normalized_shape):
    """normalized_shape as torch takes it (an int or a sequence), which must
    name input's last dim alone: the ops normalise over that dim."""
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
        else tuple(normalized_shape)
    if len(shape) != 1 or input.ndim < 1 or shape[0] != input.shape[-1]:
        raise InvalidArgumentError(
            f"modaltensor.nn.functional.{name}: normalized_shape {list(shape)} must be the last "
            f"dim of the input alone (input shape {list(input.shape)}): only the last dim is "
            f"normalised")


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """input / sqrt(mean(input^2 over the last dim) + eps) * weight
    (F.rms_norm of torch 2.4); eps None is finfo(input.dtype).eps."""
    _last_dim_only("rms_norm", input, normalized_shape)
    if eps is None:
        eps = finfo(input.dtype).eps if input.dtype.is_floating_point else 0.0
    return _call("rms_norm", input._h, _handle(weight), float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """input [N, C, *] normalised over each of num_groups groups of channels
    (and the dims after C), then scaled and shifted per channel (F.group_norm)."""
    return _call("group_norm", input._h, int(num_groups), _handle(weight), _handle(bias),
                 float(eps))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """input [N, C, *] normalised per channel (F.batch_norm): training uses
    the batch statistics and updates running_mean/running_var in place (when
    given) with momentum and the unbiased variance; eval uses them."""
    if momentum is None:
        raise InvalidArgumentError("modaltensor.nn.functional.batch_norm: momentum=None (a "
                                   "cumulative average) is not supported; give a number")
    return _call("batch_norm", input._h, _handle(running_mean), _handle(running_var),
                 _handle(weight), _handle(bias), int(bool(training)), float(momentum),
                 float(eps))


_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """The cross-entropy of logits input ([N, C], [N, C, d...] or [C]) against
    int64 class targets (F.cross_entropy): mean over the targets that are not
    ignore_index, with label smoothing. reduction 'sum' is the mean times the
    count of those targets (0 when there are none, as torch); 'none' is
    composed from log_softmax and gather. Class weights and the deprecated
    size_average/reduce are not supported."""
    if weight is not None:
        raise InvalidArgumentError("modaltensor.nn.functional.cross_entropy: weight (class "
                                   "weights) is not supported")
    if size_average is not None or reduce is not None:
        raise InvalidArgumentError("modaltensor.nn.functional.cross_entropy: size_average and "
                                   "reduce are deprecated in torch; use reduction")
    if reduction not in _REDUCTIONS:
        raise InvalidArgumentError(f"modaltensor.nn.functional.cross_entropy: reduction "
                                   f"{reduction!r}: expected one of {list(_REDUCTIONS)}")
    if reduction == "none":
        return _cross_entropy_none(input, target, int(ignore_index), float(label_smoothing))
    loss = _call("cross_entropy", input._h, target._h, int(ignore_index), float(label_smoothing))
    if reduction == "sum":
        count = (target != ignore_index).sum().to(dtype=loss.dtype)
        loss = _sum_of(loss, count)
    return loss


def _sum_of(mean, count):
    """mean * count, 0 where count is 0 (the mean is NaN then)."""
    return where(count == 0, count, mean * count)


def _cross_entropy_none(input, target, ignore_index, label_smoothing):
    """Per-target losses (0 where ignored), from log_softmax and gather: the
    fused op only returns the mean."""
    if not (0.0 <= label_smoothing <= 1.0):
        raise InvalidArgumentError(f"modaltensor.nn.functional.cross_entropy: label_smoothing "
                                   f"{label_smoothing} is outside [0, 1]")
    cdim = 0 if input.ndim == 1 else 1
    # the fused op validates everything (shapes, dtypes, target range)
    _call("cross_entropy", input._h, target._h, ignore_index, label_smoothing)
    logp = input.log_softmax(cdim)
    ignored = target == ignore_index
    safe = target.masked_fill(ignored, 0)
    nll = -logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    if label_smoothing:
        smooth = -logp.mean(dim=cdim)
        nll = nll * (1.0 - label_smoothing) + smooth * label_smoothing
    return nll.masked_fill(ignored, 0.0)


# ------------------------------------------- functional forms of existing ops

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """F.layer_norm over the last dim (normalized_shape must name it alone)."""
    _last_dim_only("layer_norm", input, normalized_shape)
    return _call("layer_norm", input._h, _handle(weight), _handle(bias), float(eps))


def _dim_of(name, dim, dtype):
    if dim is None:
        raise InvalidArgumentError(f"modaltensor.nn.functional.{name}: dim is required (torch's "
                                   f"implicit dim choice is deprecated)")
    if dtype is not None:
        raise InvalidArgumentError(f"modaltensor.nn.functional.{name}: dtype is not supported; "
                                   f"cast the input first")
    return int(dim)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """F.softmax along dim."""
    return _call("softmax", input._h, _dim_of("softmax", dim, dtype))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """F.log_softmax along dim."""
    return _call("log_softmax", input._h, _dim_of("log_softmax", dim, dtype))


def _no_inplace(name, inplace):
    if inplace:
        raise InvalidArgumentError(f"modaltensor.nn.functional.{name}: inplace=True is not "
                                   f"supported; results are new tensors")


def relu(input, inplace=False):
    _no_inplace("relu", inplace)
    return _call("relu", input._h)


def gelu(input, approximate="none"):
    """F.gelu: the exact erf form, or the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise InvalidArgumentError(f"modaltensor.nn.functional.gelu: approximate "
                                   f"{approximate!r}: expected 'none' or 'tanh'")
    return _call("gelu" if approximate == "none" else "gelu_tanh", input._h)


def silu(input, inplace=False):
    _no_inplace("silu", inplace)
    return _call("silu", input._h)


def mish(input, inplace=False):
    _no_inplace("mish", inplace)
    return _call("mish", input._h)


def sigmoid(input):
    return _call("sigmoid", input._h)


def tanh(input):
    return _call("tanh", input._h)


def softplus(input, beta=1.0, threshold=20.0):
    """F.softplus with its defaults (beta 1, threshold 20), which the op has."""
    if beta != 1 or threshold != 20:
        raise InvalidArgumentError("modaltensor.nn.functional.softplus: only beta=1 and "
                                   "threshold=20 are supported")
    return _call("softplus", input._h)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    _no_inplace("leaky_relu", inplace)
    return _call("leaky_relu", input._h, float(negative_slope))


def elu(input, alpha=1.0, inplace=False):
    _no_inplace("elu", inplace)
    return _call("elu", input._h, float(alpha))


__all__ = ["rms_norm", "group_norm", "batch_norm", "cross_entropy", "layer_norm", "softmax",
           "log_softmax", "relu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus",
           "leaky_relu", "elu"]
