"""mt.nn.functional's normalisations and losses (rms_norm, group_norm,
batch_norm, cross_entropy) and functional forms (layer_norm, softmax,
log_softmax, activations) against PyTorch's torch.nn.functional, on cpu and
modal: every floating dtype, non-contiguous inputs, edge sizes, NaN/Inf, and
the errors of bad arguments."""

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from oracle import FLOATS, check, host, make, noncontiguous, random_array, round_to

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# Tolerances of results computed in float32 (or float64) and rounded once.
TOL = {"float16": (4e-3, 4e-3), "bfloat16": (2e-2, 2e-2), "float32": (1e-5, 1e-5),
       "float64": (1e-12, 1e-12)}


def as_torch(values):
    """NumPy values (bfloat16 carried as float32) as a float64 torch tensor."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))


def expect(t64, dtype):
    """A float64 torch reference rounded to dtype, as NumPy."""
    return round_to(t64.numpy(), dtype)


def check_close(t, want, dtype, scale=1.0):
    rtol, atol = TOL[dtype]
    check(t, want, dtype, rtol=rtol * scale, atol=atol * scale)


def _rms_reference(x, weight, eps):
    """torch 1.13 has no rms_norm: written in torch ops (float64)."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


# -------------------------------------------------------------- rms_norm

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [False, True])
def test_rms_norm(dtype, affine, device, rng):
    values = random_array(rng, (3, 4, 16), dtype)
    w = random_array(rng, (16,), dtype) if affine else None
    weight = make(w, dtype, device) if affine else None
    eps = 1e-6
    want = expect(_rms_reference(as_torch(values), None if w is None else as_torch(w), eps), dtype)
    check_close(F.rms_norm(make(values, dtype, device), (16,), weight, eps), want, dtype)
    check_close(F.rms_norm(noncontiguous(values, dtype, device), 16, weight, eps), want, dtype)


def test_rms_norm_default_eps_and_long_rows(device, rng):
    values = random_array(rng, (8, 5000), "float32")
    t = make(values, "float32", device)
    eps = float(np.finfo(np.float32).eps)
    check_close(F.rms_norm(t, [5000]), expect(_rms_reference(as_torch(values), None, eps),
                                               "float32"), "float32")
    empty = F.rms_norm(mt.zeros((0, 4), device=device), (4,))
    assert empty.shape == (0, 4)


def test_rms_norm_errors(device):
    t = mt.zeros((2, 3, 4), device=device)
    with pytest.raises(mt.InvalidArgumentError, match="normalized_shape"):
        F.rms_norm(t, (3, 4))
    with pytest.raises(mt.InvalidArgumentError, match="normalized_shape"):
        F.rms_norm(t, (3,))
    with pytest.raises(mt.ShapeError, match="mt_rms_norm"):
        F.rms_norm(t, (4,), mt.ones(5, device=device))
    with pytest.raises(mt.DTypeError, match="mt_rms_norm"):
        F.rms_norm(mt.zeros((2, 4), dtype="int32", device=device), (4,), eps=1e-5)
    with pytest.raises(mt.InvalidArgumentError, match="mt_rms_norm"):
        F.rms_norm(t, (4,), eps=-1.0)


# ------------------------------------------------------------ group_norm

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm(dtype, groups, device, rng):
    values = random_array(rng, (2, 6, 3, 5), dtype)
    w, b = random_array(rng, (6,), dtype), random_array(rng, (6,), dtype)
    want = TF.group_norm(as_torch(values), groups, as_torch(w), as_torch(b), 1e-5)
    got = F.group_norm(make(values, dtype, device), groups, make(w, dtype, device),
                       make(b, dtype, device))
    check_close(got, expect(want, dtype), dtype, scale=2)
    plain = TF.group_norm(as_torch(values), groups)
    check_close(F.group_norm(noncontiguous(values, dtype, device), groups), expect(plain, dtype),
                dtype, scale=2)


def test_group_norm_errors(device):
    t = mt.zeros((2, 6, 3), device=device)
    with pytest.raises(mt.InvalidArgumentError, match="mt_group_norm: groups"):
        F.group_norm(t, 4)
    with pytest.raises(mt.ShapeError, match="mt_group_norm"):
        F.group_norm(t, 2, mt.ones(4, device=device))
    with pytest.raises(mt.ShapeError, match="mt_group_norm"):
        F.group_norm(mt.zeros(6, device=device), 2)


# ------------------------------------------------------------ batch_norm

@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_norm_training_updates_running_stats(dtype, device, rng):
    """Two training steps: y and the running stats as torch's, then eval."""
    w, b = random_array(rng, (3,), dtype), random_array(rng, (3,), dtype)
    weight, bias = make(w, dtype, device), make(b, dtype, device)
    rm, rv = mt.zeros(3, device=device), mt.ones(3, device=device)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for step in range(2):
        values = random_array(rng, (4, 3, 2, 5), dtype)
        want = TF.batch_norm(as_torch(values), trm, trv, as_torch(w), as_torch(b),
                             training=True, momentum=0.1, eps=1e-5)
        x = make(values, dtype, device) if step == 0 else noncontiguous(values, dtype, device)
        got = F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5)
        check_close(got, expect(want, dtype), dtype, scale=2)
        check(rm, trm.numpy(), "float32", rtol=1e-5, atol=1e-6)
        check(rv, trv.numpy(), "float32", rtol=1e-5, atol=1e-6)
    values = random_array(rng, (4, 3, 7), dtype)
    stored_rm, stored_rv = as_torch(host(rm)), as_torch(host(rv))  # float32, as mt keeps them
    want = TF.batch_norm(as_torch(values), stored_rm, stored_rv, as_torch(w), None,
                         training=False)
    got = F.batch_norm(make(values, dtype, device), rm, rv, weight, None, training=False)
    check_close(got, expect(want, dtype), dtype, scale=2)


def test_batch_norm_without_running_stats(device, rng):
    values = random_array(rng, (5, 4), "float64")
    want = TF.batch_norm(as_torch(values), None, None, training=True)
    check_close(F.batch_norm(make(values, "float64", device), None, None, training=True),
                want.numpy(), "float64")


def test_batch_norm_errors(device):
    x = mt.zeros((2, 3, 4), device=device)
    with pytest.raises(mt.InvalidArgumentError, match="mt_batch_norm: running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(mt.InvalidArgumentError, match="more than 1 value per channel"):
        F.batch_norm(mt.zeros((1, 3), device=device), None, None, training=True)
    with pytest.raises(mt.ShapeError, match="mt_batch_norm: running_mean"):
        F.batch_norm(x, mt.zeros(4, device=device), mt.ones(4, device=device), training=True)
    with pytest.raises(mt.InvalidArgumentError, match="momentum"):
        F.batch_norm(x, mt.zeros(3, device=device), mt.ones(3, device=device), training=True,
                     momentum=None)


# --------------------------------------------------------- cross_entropy

def _targets(rng, shape, classes, ignore_every=0):
    t = rng.integers(0, classes, size=shape, dtype=np.int64)
    if ignore_every:
        t.reshape(-1)[1::ignore_every] = -100
    return t


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy(dtype, smoothing, device, rng):
    values = random_array(rng, (6, 9), dtype)
    target = _targets(rng, (6,), 9, ignore_every=3)
    want = TF.cross_entropy(as_torch(values), torch.from_numpy(target),
                            label_smoothing=smoothing)
    tt = mt.tensor(target, device=device)
    got = F.cross_entropy(make(values, dtype, device), tt, label_smoothing=smoothing)
    check_close(got, expect(want, dtype), dtype, scale=3)
    got = F.cross_entropy(noncontiguous(values, dtype, device), tt, label_smoothing=smoothing)
    check_close(got, expect(want, dtype), dtype, scale=3)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cross_entropy_spatial(dtype, device, rng):
    values = random_array(rng, (2, 5, 3, 4), dtype)
    target = _targets(rng, (2, 3, 4), 5, ignore_every=7)
    want = TF.cross_entropy(as_torch(values), torch.from_numpy(target), label_smoothing=0.2)
    got = F.cross_entropy(make(values, dtype, device), mt.tensor(target, device=device),
                          label_smoothing=0.2)
    check_close(got, expect(want, dtype), dtype, scale=3)


def test_cross_entropy_large_logits_and_many_classes(device, rng):
    values = random_array(rng, (4, 32768), "float32") + np.float32(1e4)
    target = _targets(rng, (4,), 32768)
    want = TF.cross_entropy(as_torch(values), torch.from_numpy(target), label_smoothing=0.1)
    got = F.cross_entropy(make(values, "float32", device), mt.tensor(target, device=device),
                          label_smoothing=0.1)
    check(got, want.numpy(), "float32", rtol=1e-4, atol=1e-4)


def test_cross_entropy_ignore_index_and_reductions(device, rng):
    values = random_array(rng, (5, 4), "float64")
    target = np.array([0, 3, 1, 1, 2], dtype=np.int64)
    x, t = make(values, "float64", device), mt.tensor(target, device=device)
    for reduction in ("mean", "sum", "none"):
        for ignore in (-100, 1):
            want = TF.cross_entropy(as_torch(values), torch.from_numpy(target),
                                    ignore_index=ignore, reduction=reduction,
                                    label_smoothing=0.3)
            got = F.cross_entropy(x, t, ignore_index=ignore, reduction=reduction,
                                  label_smoothing=0.3)
            check(got, want.numpy(), "float64", rtol=1e-10, atol=1e-12)
    ignored = mt.tensor(np.full(5, -100, dtype=np.int64), device=device)
    assert np.isnan(F.cross_entropy(x, ignored).item())  # 0 / 0, as torch
    assert F.cross_entropy(x, ignored, reduction="sum").item() == 0.0


def test_cross_entropy_nan_and_inf(device):
    x = make(np.array([[0.0, np.nan, 1.0], [np.inf, 0.0, 1.0], [1.0, 2.0, 3.0]]), "float32",
             device)
    for row in range(3):
        target = mt.tensor(np.array([0], dtype=np.int64), device=device)
        want = TF.cross_entropy(torch.from_numpy(host(x)[row:row + 1]), torch.tensor([0]))
        got = F.cross_entropy(x[row:row + 1], target)
        check(got, want.numpy(), "float32")


def test_cross_entropy_errors(device):
    x = mt.zeros((3, 4), device=device)
    bad = mt.tensor(np.array([0, 4, 1], dtype=np.int64), device=device)
    with pytest.raises(mt.InvalidArgumentError, match="mt_cross_entropy"):
        F.cross_entropy(x, bad).item()  # modal: reported at the read
    with pytest.raises(mt.DTypeError, match="mt_cross_entropy: target"):
        F.cross_entropy(x, mt.zeros(3, dtype="int32", device=device))
    with pytest.raises(mt.ShapeError, match="mt_cross_entropy: target"):
        F.cross_entropy(x, mt.zeros(2, dtype="int64", device=device))
    target = mt.zeros(3, dtype="int64", device=device)
    with pytest.raises(mt.InvalidArgumentError, match="label_smoothing"):
        F.cross_entropy(x, target, label_smoothing=1.5)
    with pytest.raises(mt.InvalidArgumentError, match="weight"):
        F.cross_entropy(x, target, weight=mt.ones(4, device=device))
    with pytest.raises(mt.InvalidArgumentError, match="reduction"):
        F.cross_entropy(x, target, reduction="max")


# ----------------------------------------- functional forms of existing ops

def test_layer_norm_softmax_and_activations(device, rng):
    values = random_array(rng, (3, 8), "float32")
    x, tx = make(values, "float32", device), torch.from_numpy(values)
    check_close(F.layer_norm(x, (8,)), TF.layer_norm(tx, (8,)).numpy(), "float32", scale=10)
    with pytest.raises(mt.InvalidArgumentError, match="normalized_shape"):
        F.layer_norm(x, (3, 8))
    check_close(F.softmax(x, dim=0), TF.softmax(tx, dim=0).numpy(), "float32")
    check_close(F.log_softmax(x, 1), TF.log_softmax(tx, 1).numpy(), "float32")
    pairs = [(F.relu(x), TF.relu(tx)), (F.gelu(x), TF.gelu(tx)),
             (F.gelu(x, approximate="tanh"), TF.gelu(tx, approximate="tanh")),
             (F.silu(x), TF.silu(tx)), (F.sigmoid(x), torch.sigmoid(tx)),
             (F.tanh(x), torch.tanh(tx)), (F.softplus(x), TF.softplus(tx)),
             (F.mish(x), TF.mish(tx)), (F.leaky_relu(x, 0.2), TF.leaky_relu(tx, 0.2)),
             (F.elu(x, 0.5), TF.elu(tx, 0.5))]
    for got, want in pairs:
        check(got, want.numpy(), "float32", rtol=1e-5, atol=1e-5)
    with pytest.raises(mt.InvalidArgumentError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(mt.InvalidArgumentError, match="inplace"):
        F.relu(x, inplace=True)
