"""torch.nn.init's initialisers over the library's seeded random ops.

Each fills a tensor in place (under no_grad, so a parameter stays a leaf)
and returns it. The values come from mt.rand/mt.randn: without seed= one is
drawn from the sequence mt.manual_seed seeds, so a model built after
mt.manual_seed(s) is the same on every run and on every device. The numbers
differ from torch's (another generator); the distributions are torch's.
"""

import math

from .._autograd import no_grad
from ..tensor import rand, randn

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"]


def calculate_gain(nonlinearity, param=None):
    """The gain torch.nn.init recommends for a nonlinearity."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"modaltensor.nn.init: unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor):
    """(fan_in, fan_out) of a weight [out, in, *kernel] as torch counts them."""
    if tensor.ndim < 2:
        raise ValueError("modaltensor.nn.init: fan in and fan out need a tensor of at least 2 "
                         f"dims (got shape {list(tensor.shape)})")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _write(tensor, values):
    with no_grad():
        tensor.copy_(values)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, *, seed=None):
    """Values uniform in [a, b)."""
    u = rand(tensor.shape, dtype=tensor.dtype, device=tensor.device, seed=seed)
    return _write(tensor, u * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0, *, seed=None):
    """Values from N(mean, std^2)."""
    n = randn(tensor.shape, dtype=tensor.dtype, device=tensor.device, seed=seed)
    return _write(tensor, n * std + mean)


def constant_(tensor, val):
    return _write(tensor, val)


def zeros_(tensor):
    return _write(tensor, 0.0)


def ones_(tensor):
    return _write(tensor, 1.0)


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"modaltensor.nn.init: mode {mode!r}: expected 'fan_in' or 'fan_out'")
    fan_in, fan_out = _fans(tensor)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", *, seed=None):
    """He uniform: bound gain * sqrt(3 / fan). With a = sqrt(5) (what
    Linear and Conv2d use) the bound is 1 / sqrt(fan_in)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor  # torch warns and leaves an empty tensor as it is
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, seed=seed)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", *, seed=None):
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), seed=seed)


def xavier_uniform_(tensor, gain=1.0, *, seed=None):
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, seed=seed)


def xavier_normal_(tensor, gain=1.0, *, seed=None):
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), seed=seed)
