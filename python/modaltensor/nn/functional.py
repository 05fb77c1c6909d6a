"""torch.nn.functional's names and arguments over modaltensor ops."""

from .. import _ops_nn  # noqa: F401  (declares the nn ops' prototypes)
from .._lib import shape_array
from .._ops_index import PAD_MODES, _seed
from ..tensor import _call, _index_tensor
from .._ops_conv import (adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d,  # noqa: F401
                         max_pool2d)

__all__ = ["linear", "embedding", "one_hot", "pad", "dropout"]
__all__ += ["scaled_dot_product_attention"]
__all__ += ["conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def linear(input, weight, bias=None):
    """input @ weight.T + bias in one product (F.linear): input [..., in],
    weight [out, in], bias [out] or None -> [..., out]."""
    return _call("linear", input._h, weight._h, None if bias is None else bias._h)


def embedding(input, weight):
    """Rows of the 2-D weight picked by the integer input (any shape):
    input's shape + [weight.shape[1]] (F.embedding)."""
    input = _index_tensor(input, weight.device)
    return _call("embedding", weight._h, input._h)


def one_hot(tensor, num_classes=-1):
    """int64 tensor's shape + [num_classes], 1 at each value (F.one_hot).
    num_classes=-1 means max + 1, which reads the values first (a sync on a
    modal device: the C API needs the number of classes up front)."""
    if num_classes == -1:
        if tensor.numel() == 0:
            raise ValueError("modaltensor.one_hot: num_classes=-1 needs a non-empty tensor")
        num_classes = int(tensor.amax().item()) + 1
    return _call("one_hot", tensor._h, num_classes)


def pad(input, pad, mode="constant", value=None):
    """input padded by (before, after) pairs from the last dim backwards
    (F.pad); constant fills with value (0 when None) and crops for negative
    pads; reflect and replicate take no value."""
    if mode not in PAD_MODES:
        raise ValueError(f"modaltensor.pad: mode {mode!r}: expected one of {sorted(PAD_MODES)}")
    pads = tuple(int(p) for p in pad)
    return _call("pad", input._h, len(pads), shape_array(pads), PAD_MODES[mode],
                 0.0 if value is None else float(value))


def dropout(input, p=0.5, training=True, inplace=False, *, seed=None):
    """input with elements zeroed with probability p and the rest scaled by
    1 / (1 - p) when training (F.dropout; input itself otherwise). The mask
    comes from seed (drawn when None, see mt.manual_seed): the same on every
    device."""
    if inplace:
        raise ValueError("modaltensor.dropout: inplace=True is not supported; results are new "
                         "tensors")
    if not training:
        return input
    return _call("dropout", input._h, float(p), _seed(seed))

# ---- normalisations, losses, softmax and activations ----
from .._ops_norm import (batch_norm, cross_entropy, elu, gelu, group_norm,  # noqa: E402
                         layer_norm, leaky_relu, log_softmax, mish, relu, rms_norm, sigmoid,
                         silu, softmax, softplus, tanh)
from .._ops_norm import __all__ as _norm_all  # noqa: E402

__all__ += _norm_all


# ---- attention ----

def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(query @ key^T * scale + attn_mask) @ value (torch 2's
    F.scaled_dot_product_attention): query [..., L, E], key [..., S, E],
    value [..., S, Ev] give [..., L, Ev]. attn_mask is None, bool (True
    keeps) or an additive float of query's dtype or float32; is_causal
    lets query i see keys j <= i; scale None means 1/sqrt(E). Computed
    without an L x S matrix. dropout_p must be 0 (attention dropout is not
    implemented)."""
    if dropout_p != 0.0:
        raise ValueError("modaltensor.scaled_dot_product_attention: dropout_p must be 0.0 "
                         "(attention dropout is not implemented; apply F.dropout elsewhere)")
    return _call("scaled_dot_product_attention", query._h, key._h, value._h,
                 None if attn_mask is None else attn_mask._h, 1 if is_causal else 0,
                 float("nan") if scale is None else float(scale))
