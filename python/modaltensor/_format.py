"""repr() of tensors, laid out as PyTorch does:

    tensor([[1.0000, 2.5000],
            [3.0000, 4.0000]], device='modal:0', dtype=modaltensor.float16)
"""

import math

import numpy as np

from . import dtypes

_PREFIX = "tensor("
_PLAIN_DTYPES = (dtypes.float32, dtypes.int64, dtypes.bool_)  # not spelled out, as in PyTorch


def _float_formatter(values):
    """PyTorch's float layout: whole numbers as "3.", otherwise four
    decimals, or scientific notation when magnitudes are far apart."""
    finite = np.abs(values[np.isfinite(values)].astype(np.float64))
    nonzero = finite[finite != 0]
    if nonzero.size == 0:
        whole, high, low = True, 0.0, 0.0
    else:
        whole = bool(np.all(np.ceil(nonzero) == nonzero))
        high, low = float(nonzero.max()), float(nonzero.min())
    if whole:
        scientific = nonzero.size > 0 and (high / low > 1000.0 or high > 1.0e8)
    else:
        scientific = high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4

    def layout(value):
        value = float(value)
        if scientific:
            return f"{value:.4e}"
        if whole:
            text = f"{value:.0f}"
            return text if math.isinf(value) or math.isnan(value) else text + "."
        return f"{value:.4f}"

    return layout


def _formatter(values):
    """A function formatting one element, padded to a common width."""
    kind = values.dtype.kind
    if kind == "b":
        layout = lambda v: str(bool(v))  # noqa: E731
        samples = np.unique(values)
    elif kind in "ui":
        layout = lambda v: str(int(v))  # noqa: E731
        samples = [values.min(), values.max()]
    else:
        # As PyTorch: the width is that of the widest non-zero finite value
        # (the extremes, and the smallest magnitude for exponents like e-10).
        layout = _float_formatter(values)
        nonzero = values[np.isfinite(values) & (values != 0)]
        samples = [nonzero.min(), nonzero.max(),
                   nonzero[np.argmin(np.abs(nonzero))]] if nonzero.size else []
    width = max([1] + [len(layout(v)) for v in samples])
    return lambda v: layout(v).rjust(width)


def tensor_repr(tensor):
    """The PyTorch-style repr of a Tensor (downloads a modal tensor)."""
    values = tensor._host_values()
    if values.size == 0:
        body = "[]"
    else:
        body = np.array2string(values, max_line_width=80, separator=", ", prefix=_PREFIX,
                               formatter={"all": _formatter(values)}, threshold=1000,
                               edgeitems=3)
    extras = []
    if values.size == 0 and values.shape != (0,):
        extras.append(f"size={tuple(values.shape)}")
    if tensor.device.type != "cpu":
        extras.append(f"device='{tensor.device}'")
    if tensor.dtype not in _PLAIN_DTYPES:
        extras.append(f"dtype={tensor.dtype!r}")
    return _PREFIX + body + "".join(", " + e for e in extras) + ")"
