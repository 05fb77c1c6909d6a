"""The convolution and pooling ops (0.2): their ctypes prototypes and the
torch.nn.functional functions (conv1d, conv2d, max_pool2d, avg_pool2d,
adaptive_avg_pool2d) with PyTorch's argument names and defaults. They live
in mt.nn.functional."""

import operator
from ctypes import c_int64

from . import _lib
from ._lib import _SHAPE, _TENSOR, shape_array
from .tensor import _call

# name: (restype, argtypes), as include/modaltensor.h declares them.
PROTOTYPES = {
    "mt_conv1d": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR, c_int64, c_int64, c_int64, c_int64]),
    "mt_conv2d": (_TENSOR, [_TENSOR, _TENSOR, _TENSOR, _SHAPE, _SHAPE, _SHAPE, c_int64]),
    "mt_max_pool2d": (_TENSOR, [_TENSOR, _SHAPE, _SHAPE, _SHAPE]),
    "mt_avg_pool2d": (_TENSOR, [_TENSOR, _SHAPE, _SHAPE, _SHAPE]),
    "mt_adaptive_avg_pool2d": (_TENSOR, [_TENSOR, c_int64, c_int64]),
}
_lib.declare(PROTOTYPES)

__all__ = ["conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _ints(value, n, fn, name):
    """value as a tuple of n ints: an int repeats, a sequence of 1 or n is taken (torch)."""
    try:
        return (operator.index(value),) * n
    except TypeError:
        pass
    try:
        items = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"modaltensor.{fn}: {name} must be an int or a tuple of {n} ints, "
                        f"got {value!r}") from None
    if len(items) == 1:
        return items * n
    if len(items) != n:
        raise ValueError(f"modaltensor.{fn}: {name} must have {n} elements, got {len(items)}")
    return items


def _batched(input, spatial, fn):
    """input with a batch dim (unbatched input gets one, as torch): (tensor, added)."""
    if input.ndim == spatial + 1:
        return input.unsqueeze(0), True
    if input.ndim != spatial + 2:
        raise ValueError(f"modaltensor.{fn}: expected a {spatial + 1}-d (unbatched) or "
                         f"{spatial + 2}-d (batched) input, got {input.ndim}-d")
    return input, False


def _conv_padding(padding, weight, stride, dilation, spatial, fn):
    """torch's padding: ints, 'valid' (0) or 'same' (odd dilated kernels, stride 1)."""
    if padding == "same" and any(s != 1 for s in stride):
        raise ValueError(f"modaltensor.{fn}: padding='same' is not supported for strided "
                         "convolutions (as torch)")
    if not isinstance(padding, str):
        return _ints(padding, spatial, fn, "padding")
    if padding == "valid":
        return (0,) * spatial
    if padding != "same":
        raise ValueError(f"modaltensor.{fn}: padding {padding!r}: expected an int, a tuple, "
                         "'valid' or 'same'")
    pads = []
    for d in range(spatial):
        total = dilation[d] * (weight.shape[2 + d] - 1)
        if total % 2:
            raise ValueError(f"modaltensor.{fn}: padding='same' needs an even dilation * "
                             "(kernel - 1); pad the input with pad() instead")
        pads.append(total // 2)
    return tuple(pads)


def _conv(spatial, input, weight, bias, stride, padding, dilation, groups):
    fn = f"conv{spatial}d"
    stride = _ints(stride, spatial, fn, "stride")
    dilation = _ints(dilation, spatial, fn, "dilation")
    padding = _conv_padding(padding, weight, stride, dilation, spatial, fn)
    x, added = _batched(input, spatial, fn)
    b = None if bias is None else bias._h
    if spatial == 1:
        out = _call("conv1d", x._h, weight._h, b, stride[0], padding[0], dilation[0],
                    operator.index(groups))
    else:
        out = _call("conv2d", x._h, weight._h, b, shape_array(stride), shape_array(padding),
                    shape_array(dilation), operator.index(groups))
    return out.squeeze(0) if added else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv1d: input [N, C, L] (or [C, L]) by weight [out, C / groups, k]."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv2d: input [N, C, H, W] (or [C, H, W]) by weight [out, C / groups, kh, kw]."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def _pool_args(fn, kernel_size, stride, padding, dilation, ceil_mode):
    if ceil_mode:
        raise ValueError(f"modaltensor.{fn}: ceil_mode=True is not supported")
    if dilation is not None and _ints(dilation, 2, fn, "dilation") != (1, 1):
        raise ValueError(f"modaltensor.{fn}: dilation other than 1 is not supported")
    kernel = _ints(kernel_size, 2, fn, "kernel_size")
    # torch: stride None (or an empty list) means the kernel size
    stride = kernel if stride is None or stride == [] or stride == () else \
        _ints(stride, 2, fn, "stride")
    return kernel, stride, _ints(padding, 2, fn, "padding")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """F.max_pool2d over [N, C, H, W] or [C, H, W] (NaN propagates)."""
    if return_indices:
        raise ValueError("modaltensor.max_pool2d: return_indices=True is not supported")
    kernel, stride, padding = _pool_args("max_pool2d", kernel_size, stride, padding, dilation,
                                         ceil_mode)
    return _call("max_pool2d", input._h, shape_array(kernel), shape_array(stride),
                 shape_array(padding))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """F.avg_pool2d over [N, C, H, W] or [C, H, W] (count_include_pad)."""
    if not count_include_pad:
        raise ValueError("modaltensor.avg_pool2d: count_include_pad=False is not supported")
    if divisor_override is not None:
        raise ValueError("modaltensor.avg_pool2d: divisor_override is not supported")
    kernel, stride, padding = _pool_args("avg_pool2d", kernel_size, stride, padding, None,
                                         ceil_mode)
    return _call("avg_pool2d", input._h, shape_array(kernel), shape_array(stride),
                 shape_array(padding))


def adaptive_avg_pool2d(input, output_size):
    """F.adaptive_avg_pool2d to output_size (an int or a pair; None keeps that dim)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        sizes = tuple(input.shape[-2 + d] if s is None else operator.index(s)
                      for d, s in enumerate(output_size))
    else:
        sizes = _ints(output_size, 2, "adaptive_avg_pool2d", "output_size")
    return _call("adaptive_avg_pool2d", input._h, sizes[0], sizes[1])
