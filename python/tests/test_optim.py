"""mt.optim.SGD, mt.optim.AdamW and mt.nn.utils.clip_grad_norm_ against
torch.optim and torch.nn.utils step by step, on the cpu and the modal
device: every floating dtype, momentum, nesterov, weight decay, bias
correction over several steps, param groups, learning-rate changes, params
without a gradient, and refusals. On a worker: an AdamW step downloads
nothing and adds no sync.

Gradients come from the backward of sum(p * G), which gives p exactly G
(the C autograd calls through ctypes, so this file needs only the library).
float32 and float64 are compared with torch in the same dtype; float16 and
bfloat16 with torch in float32 from the same rounded values (our update
computes in float32 and rounds the state once per step; torch rounds after
each of its ops), with a tolerance of a few units of the dtype.
"""

import ctypes
from ctypes import POINTER, byref, c_int, c_void_p

import numpy as np
import pytest

import modaltensor as mt
from modaltensor import _lib
from modaltensor.tensor import _wrap
from conftest import MODAL_MODE
from oracle import FLOATS, host, make, round_to

torch = pytest.importorskip("torch")

# The autograd calls on their own library handle (their prototypes here do
# not touch the binding's).
_ag = ctypes.CDLL(_lib.path)
_ag.mt_set_requires_grad.argtypes, _ag.mt_set_requires_grad.restype = [c_void_p, c_int], c_int
_ag.mt_backward.argtypes, _ag.mt_backward.restype = [c_void_p, c_void_p], c_int
_ag.mt_grad.argtypes, _ag.mt_grad.restype = [c_void_p, POINTER(c_void_p)], c_int
_ag.mt_zero_grad.argtypes, _ag.mt_zero_grad.restype = [c_void_p], c_int


def _ok(status, what):
    assert status == 0, f"{what}: {mt._lib.lib.mt_last_error().decode()}"


def leaf(values, dtype, device):
    p = make(values, dtype, device)
    _ok(_ag.mt_set_requires_grad(p._h, 1), "mt_set_requires_grad")
    return p


def set_grad(p, g, dtype):
    """p's gradient becomes g exactly (the old one is dropped first)."""
    _ok(_ag.mt_zero_grad(p._h), "mt_zero_grad")
    loss = (p * make(g, dtype, p.device)).sum()
    _ok(_ag.mt_backward(loss._h, None), "mt_backward")


def grad_of(p):
    out = c_void_p()
    _ok(_ag.mt_grad(p._h, byref(out)), "mt_grad")
    return None if not out.value else _wrap(out.value, "mt_grad")


TORCH_DTYPE = {"float16": torch.float32, "bfloat16": torch.float32, "float32": torch.float32,
               "float64": torch.float64}
TOL = {"float16": (4e-3, 4e-3), "bfloat16": (3e-2, 3e-2), "float32": (1e-5, 1e-6),
       "float64": (1e-12, 1e-13)}


def torch_leaf(values, dtype):
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=TORCH_DTYPE[dtype],
                        requires_grad=True)


def assert_close(ours, theirs, dtype, steps=1):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(host(ours).astype(np.float64),
                               theirs.detach().double().numpy(), rtol=rtol * steps,
                               atol=atol * steps)


def run_against_torch(make_ours, make_theirs, dtype, device, rng, shapes=((5, 3), (7,)),
                      steps=5, lr_schedule=None):
    """Both optimizers over the same params and gradients; the params must
    agree after every step. lr_schedule(step) sets every group's lr."""
    init = [round_to(rng.standard_normal(s), dtype) for s in shapes]
    ours = [leaf(v, dtype, device) for v in init]
    theirs = [torch_leaf(v, dtype) for v in init]
    opt, ref = make_ours(ours), make_theirs(theirs)
    for step in range(steps):
        if lr_schedule is not None:
            for o in (opt, ref):
                for group in o.param_groups:
                    group["lr"] = lr_schedule(step)
        for p, t, s in zip(ours, theirs, shapes):
            g = rng.standard_normal(s)
            if dtype == "float16":
                # |g| >= 0.25: AdamW's (1 - beta2) g^2 must not underflow float16 (both
                # torch's float16 state and ours would then divide by eps alone)
                g = np.sign(g) * (0.25 + np.abs(g))
            g = round_to(g, dtype)
            set_grad(p, g, dtype)
            t.grad = torch.tensor(np.asarray(g, dtype=np.float64), dtype=t.dtype)
        opt.step()
        ref.step()
        for p, t in zip(ours, theirs):
            assert_close(p, t, dtype, steps=1 if dtype in ("float32", "float64") else step + 1)


SGD_CONFIGS = [dict(lr=0.1), dict(lr=0.05, weight_decay=0.01), dict(lr=0.05, momentum=0.9),
               dict(lr=0.02, momentum=0.8, weight_decay=0.1, nesterov=True)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(c))
def test_sgd_matches_torch(dtype, config, device, rng):
    run_against_torch(lambda ps: mt.optim.SGD(ps, **config),
                      lambda ps: torch.optim.SGD(ps, **config), dtype, device, rng)


ADAMW_CONFIGS = [dict(), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                 dict(lr=0.1, betas=(0.0, 0.5), weight_decay=0.0)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("config", ADAMW_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
def test_adamw_matches_torch(dtype, config, device, rng):
    run_against_torch(lambda ps: mt.optim.AdamW(ps, **config),
                      lambda ps: torch.optim.AdamW(ps, **config), dtype, device, rng, steps=6)


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_lr_schedule_applies_to_the_next_step(name, device, rng):
    cls = {"SGD": (mt.optim.SGD, torch.optim.SGD), "AdamW": (mt.optim.AdamW, torch.optim.AdamW)}
    ours, theirs = cls[name]
    run_against_torch(lambda ps: ours(ps, lr=0.1, momentum=0.9) if name == "SGD" else ours(ps),
                      lambda ps: theirs(ps, lr=0.1, momentum=0.9) if name == "SGD" else
                      theirs(ps), "float32", device, rng,
                      lr_schedule=lambda step: 0.1 * 0.5 ** step)


def test_param_groups_have_their_own_hyperparameters(device, rng):
    def groups(ps, cls):
        return cls([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.01, "weight_decay": 0.5}],
                   lr=0.1, weight_decay=0.01)
    run_against_torch(lambda ps: groups(ps, mt.optim.AdamW),
                      lambda ps: groups(ps, torch.optim.AdamW), "float32", device, rng)
    sgd = lambda cls: (lambda ps: cls([{"params": ps[:1], "momentum": 0.9},
                                       {"params": ps[1:], "nesterov": True, "momentum": 0.5}],
                                      lr=0.05))
    run_against_torch(sgd(mt.optim.SGD), sgd(torch.optim.SGD), "float64", device, rng)
    opt = mt.optim.SGD([{"params": [leaf([1.0], "float32", device)]}], lr=0.3)
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["momentum"] == 0


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_param_without_grad_is_skipped(name, device, rng):
    """Only params with a gradient move; one that gets its first gradient
    later starts its own step count (AdamW's bias correction), as torch."""
    a0, b0 = round_to(rng.standard_normal(4), "float64"), round_to(rng.standard_normal(3),
                                                                   "float64")
    ours = [leaf(a0, "float64", device), leaf(b0, "float64", device)]
    theirs = [torch_leaf(a0, "float64"), torch_leaf(b0, "float64")]
    kw = dict(lr=0.1, momentum=0.9) if name == "SGD" else dict(lr=0.1)
    opt, ref = getattr(mt.optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    for step in range(4):
        live = [0] if step < 2 else [0, 1]
        for i in live:
            g = rng.standard_normal(ours[i].shape)
            set_grad(ours[i], g, "float64")
            theirs[i].grad = torch.tensor(g)
        opt.step()
        ref.step()
        for p, t in zip(ours, theirs):
            assert_close(p, t, "float64")
        if step < 2:
            assert host(ours[1]).tolist() == b0.tolist()


def test_zero_grad(device):
    p = leaf([1.0, 2.0], "float32", device)
    opt = mt.optim.SGD([p], lr=0.1)
    set_grad(p, [3.0, 4.0], "float32")
    opt.zero_grad(set_to_none=False)
    g = grad_of(p)
    assert g is not None and host(g).tolist() == [0.0, 0.0]
    opt.step()  # a zero gradient: p unchanged
    assert host(p).tolist() == [1.0, 2.0]
    set_grad(p, [3.0, 4.0], "float32")
    opt.zero_grad()
    assert grad_of(p) is None


def test_step_returns_the_closure_loss(device):
    p = leaf([1.0], "float32", device)
    opt = mt.optim.AdamW([p])
    assert opt.step(lambda: 42) == 42
    assert opt.step() is None


def test_bad_arguments(device):
    p = leaf([1.0], "float32", device)
    with pytest.raises(ValueError, match="learning rate"):
        mt.optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        mt.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(NotImplementedError, match="dampening"):
        mt.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1)
    with pytest.raises(TypeError, match="required"):
        mt.optim.SGD([p])
    with pytest.raises(ValueError, match="empty"):
        mt.optim.AdamW([])
    with pytest.raises(ValueError, match="beta"):
        mt.optim.AdamW([p], betas=(1.0, 0.9))
    with pytest.raises(NotImplementedError, match="amsgrad"):
        mt.optim.AdamW([p], amsgrad=True)
    with pytest.raises(TypeError, match="iterable"):
        mt.optim.AdamW(p)
    with pytest.raises(ValueError, match="more than one"):
        mt.optim.AdamW([{"params": [p]}, {"params": [p]}])
    with pytest.raises(mt.DTypeError, match="mt_sgd"):
        mt.optim.SGD([make([1, 2], "int32", device)], lr=0.1)
    with pytest.raises(mt.InvalidArgumentError, match="leaf"):
        mt.optim.SGD([p * 2], lr=0.1)
    opt = mt.optim.SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = -0.5
    with pytest.raises(mt.InvalidArgumentError, match="mt_optimizer_set_lr"):
        opt.step()


# ------------------------------------------------------------ clipping


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])
def test_clip_grad_norm_matches_torch(dtype, max_norm, device, rng):
    shapes = [(4, 3), (5,), (2,)]
    values = [round_to(rng.standard_normal(s), dtype) for s in shapes]
    grads = [round_to(rng.standard_normal(s), dtype) for s in shapes]
    ours = [leaf(v, dtype, device) for v in values]
    theirs = [torch_leaf(v, dtype) for v in values]
    for i in (0, 2):  # the middle param has no gradient
        set_grad(ours[i], grads[i], dtype)
        theirs[i].grad = torch.tensor(np.asarray(grads[i], dtype=np.float64),
                                      dtype=theirs[i].dtype)
    total = mt.nn.utils.clip_grad_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert total.dtype == mt.float32 and total.shape == () and total.device == ours[0].device
    np.testing.assert_allclose(host(total), expected.double().numpy(), rtol=1e-5)
    for i in (0, 2):
        assert_close(grad_of(ours[i]), theirs[i].grad, dtype)
    assert grad_of(ours[1]) is None


def test_clip_grad_norm_edges(device):
    p = leaf([1.0, 2.0], "float32", device)
    total = mt.nn.utils.clip_grad_norm_(p, 1.0)  # no gradient: 0
    assert host(total).tolist() == 0.0
    set_grad(p, [3.0, 4.0], "float32")
    with pytest.raises(mt.InvalidArgumentError, match="max_norm"):
        mt.nn.utils.clip_grad_norm_([p], 0.0)
    with pytest.raises(mt.InvalidArgumentError, match="max_norm"):
        mt.nn.utils.clip_grad_norm_([p], float("nan"))
    with pytest.raises(NotImplementedError, match="norm_type"):
        mt.nn.utils.clip_grad_norm_([p], 1.0, norm_type=1)
    total = mt.nn.utils.clip_grad_norm_([p], float("inf"))
    assert host(total).tolist() == 5.0 and host(grad_of(p)).tolist() == [3.0, 4.0]
    set_grad(p, [np.inf, 1.0], "float32")
    with pytest.raises(RuntimeError, match="non-finite"):
        mt.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ------------------------------------------------------------ lazy on a worker


@pytest.mark.skipif(MODAL_MODE != "worker", reason="traffic counters need a worker")
def test_adamw_step_on_modal_downloads_nothing_and_adds_no_sync(rng):
    if not mt.modal.is_available():
        pytest.skip("no worker answers for the modal device")
    params = [leaf(rng.standard_normal((64, 32)), "float32", "modal"),
              leaf(rng.standard_normal((32,)), "float32", "modal")]
    grads = [make(rng.standard_normal(p.shape), "float32", "modal") for p in params]
    opt = mt.optim.AdamW(params, lr=0.01)
    for t in params + grads:
        host(t)  # everything above has reached the worker
    mt.modal.reset_stats()
    for _ in range(3):
        for p, g in zip(params, grads):
            _ok(_ag.mt_zero_grad(p._h), "mt_zero_grad")
            loss = (p * g).sum()
            _ok(_ag.mt_backward(loss._h, None), "mt_backward")
        mt.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    stats = mt.modal.stats()
    assert stats["syncs"] == 0, stats
    assert stats["bytes_down"] == 0, stats
    assert stats["bytes_up"] == 0, stats
    assert stats["round_trips"] == 0, stats
    host(params[1])  # now one sync runs the recorded steps
    assert mt.modal.stats()["syncs"] == 1
