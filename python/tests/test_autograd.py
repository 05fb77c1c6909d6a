"""Autograd from Python (Tensor.requires_grad, backward, grad, detach,
is_leaf; mt.no_grad, enable_grad, set_grad_enabled) against torch.autograd:
gradients of small expressions and of modules' parameters, grad modes
(also per thread), and the errors torch raises (an integer tensor that
requires grad, a second backward, a non-scalar without a gradient, values
changed in place after they were kept). On cpu and modal."""

import threading

import numpy as np
import pytest

import modaltensor as mt
from modaltensor import nn
from modaltensor.nn import functional as F

torch = pytest.importorskip("torch")


def host(t):
    return np.asarray(t.cpu().numpy(), dtype=np.float64)


def pair(rng, shape, device, dtype="float64"):
    """The same random values as a leaf requiring grad here and in torch."""
    values = rng.standard_normal(shape)
    ours = mt.tensor(values, dtype=dtype, device=device, requires_grad=True)
    theirs = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    return ours, theirs


def close(ours, theirs, rtol=1e-10, atol=1e-12):
    assert ours is not None, "no gradient"
    np.testing.assert_allclose(host(ours), theirs.detach().numpy().astype(np.float64),
                               rtol=rtol, atol=atol)


# Expressions of two leaves a [3, 4] and b [4, ...]: written once, run on both
# libraries (the methods and operators used are spelled the same).
EXPRESSIONS = {
    "mul_add_exp": lambda a, b: (a * b[0] + a.exp()).sum(),
    "matmul_relu_mean": lambda a, b: (a @ b).relu().mean(),
    "broadcast": lambda a, b: (a[:, :1] + b[0] * 2.0 - 1.0).sum(),
    "used_twice": lambda a, b: (a * a * a + a).sum(),
    "div_pow": lambda a, b: (a / (b[1] * b[1] + 1.0) + a.abs() ** 1.5).sum(),
    "tanh_sigmoid": lambda a, b: (a.tanh() * b[2].sigmoid()).sum(),
    "softmax": lambda a, b: (a.softmax(-1) * b[3]).sum(),
    "log_softmax": lambda a, b: (a.log_softmax(1) * b[0]).sum(),
    "views": lambda a, b: (a.T.reshape(2, 6)[1] * b.reshape(-1)[:6]).sum(),
    "reduce_dim": lambda a, b: (a.sum(1) * a.mean(0)[:3]).sum(),
    "sqrt_log": lambda a, b: ((a * a + 1.0).sqrt().log() * b[1]).sum(),
}


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_gradients_match_torch(name, device, rng):
    fn = EXPRESSIONS[name]
    a, ta = pair(rng, (3, 4), device)
    b, tb = pair(rng, (4, 4), device)
    out = fn(a, b)
    assert out.requires_grad and not out.is_leaf
    out.backward()
    fn(ta, tb).backward()
    close(a.grad, ta.grad)
    if tb.grad is not None:
        close(b.grad, tb.grad)
    else:
        assert b.grad is None
    assert a.grad.shape == a.shape and a.grad.dtype == a.dtype
    assert a.grad.device == mt.device(device)


def test_backward_with_an_explicit_gradient(device, rng):
    a, ta = pair(rng, (2, 3), device)
    g = rng.standard_normal((2, 3))
    (a * a).backward(mt.tensor(g, device=device))
    (ta * ta).backward(torch.tensor(g))
    close(a.grad, ta.grad)


def test_float32_module_gradients_match_torch(device, rng):
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                                 torch.nn.Linear(8, 3))
    ours = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 3))
    ours.load_state_dict(theirs.state_dict())
    ours.to(device)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=6)
    F.cross_entropy(ours(mt.tensor(x, device=device)), mt.tensor(y, device=device)).backward()
    torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)),
                                      torch.from_numpy(y)).backward()
    want = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, want[name].grad, rtol=1e-4, atol=1e-6)


def test_conv_batchnorm_gradients_match_torch(device, rng):
    def build(m):
        return m.Sequential(m.Conv2d(2, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                            m.Flatten(), m.Linear(4 * 5 * 5, 2))
    theirs, ours = build(torch.nn), build(nn)
    ours.load_state_dict(theirs.state_dict())
    ours.to(device)
    x = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    (ours(mt.tensor(x, device=device)) ** 2).mean().backward()
    (theirs(torch.from_numpy(x)) ** 2).mean().backward()
    want = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, want[name].grad, rtol=1e-3, atol=1e-5)


def test_embedding_gradient_accumulates_repeated_rows(device, rng):
    theirs = torch.nn.Embedding(6, 3, padding_idx=1)
    ours = nn.Embedding(6, 3, padding_idx=1)
    ours.load_state_dict(theirs.state_dict())
    ours.to(device)
    index = np.array([[0, 1, 2], [2, 2, 5]])
    w = rng.standard_normal((2, 3, 3))
    (ours(mt.tensor(index, device=device)) * mt.tensor(w, dtype="float32",
                                                         device=device)).sum().backward()
    (theirs(torch.from_numpy(index)) * torch.tensor(w, dtype=torch.float32)).sum().backward()
    close(ours.weight.grad, theirs.weight.grad, rtol=1e-6, atol=1e-6)
    assert not host(ours.weight.grad)[1].any()  # the padding row gets none


def test_gradients_accumulate_until_dropped(device, rng):
    a, ta = pair(rng, (4,), device)
    for _ in range(2):
        (a * 3.0).sum().backward()
        (ta * 3.0).sum().backward()
    close(a.grad, ta.grad)
    np.testing.assert_allclose(host(a.grad), 6.0)
    a.grad.zero_()  # a handle on the accumulated gradient itself
    np.testing.assert_array_equal(host(a.grad), 0.0)
    assert not a.data.requires_grad
    a.grad = None
    assert a.grad is None
    (a * 2.0).sum().backward()
    np.testing.assert_allclose(host(a.grad), 2.0)
    with pytest.raises(TypeError):
        a.grad = mt.zeros(4, device=device)


def test_no_grad_enable_grad_and_set_grad_enabled(device):
    a = mt.ones(3, device=device, requires_grad=True)
    assert mt.is_grad_enabled()
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        b = a * 2.0
        with mt.enable_grad():
            c = a * 2.0
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()
    assert not b.requires_grad and b.is_leaf
    assert c.requires_grad

    @mt.no_grad()
    def inference(t):
        assert not mt.is_grad_enabled()
        return t * 2.0
    assert not inference(a).requires_grad and mt.is_grad_enabled()

    mt.set_grad_enabled(False)
    try:
        assert not (a * 2.0).requires_grad
    finally:
        mt.set_grad_enabled(True)
    with mt.set_grad_enabled(False):
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()
    with pytest.raises(KeyError):
        with mt.no_grad():
            raise KeyError("the mode comes back also when the block raises")
    assert mt.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = {}

    def worker():
        seen["mode"] = mt.is_grad_enabled()
        a = mt.ones(2, requires_grad=True)
        seen["records"] = (a * 2.0).requires_grad

    with mt.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert not mt.is_grad_enabled()
    assert seen == {"mode": True, "records": True}


def test_detach_shares_values_and_stops_the_gradient(device, rng):
    a, ta = pair(rng, (3,), device)
    d = a.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(host(d), host(a))
    (a * d).sum().backward()
    (ta * ta.detach()).sum().backward()
    close(a.grad, ta.grad)  # d counts as a constant: the gradient is d, not 2a


def test_requires_grad_flags_and_creation_functions(device):
    for make in (lambda **k: mt.zeros(2, 3, **k), lambda **k: mt.ones(2, **k),
                 lambda **k: mt.empty(2, **k), lambda **k: mt.full((2,), 1.5, **k),
                 lambda **k: mt.rand(2, **k), lambda **k: mt.randn(2, **k),
                 lambda **k: mt.arange(0.0, 3.0, **k), lambda **k: mt.tensor([1.0, 2.0], **k),
                 lambda **k: mt.eye(2, **k), lambda **k: mt.linspace(0, 1, 5, **k),
                 lambda **k: mt.zeros_like(mt.ones(2), **k)):
        assert not make(device=device).requires_grad
        t = make(device=device, requires_grad=True)
        assert t.requires_grad and t.is_leaf and t.grad is None
    t = mt.ones(2, device=device)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad = False
    assert not t.requires_grad


def test_requires_grad_on_an_integer_tensor_raises(device):
    with pytest.raises(mt.DTypeError):
        mt.zeros(3, dtype=mt.int64, device=device, requires_grad=True)
    with pytest.raises(mt.DTypeError):
        mt.arange(4, device=device).requires_grad_()
    with pytest.raises(mt.DTypeError):
        mt.tensor([True], device=device).requires_grad = True


def test_requires_grad_on_a_recorded_result_raises(device):
    a = mt.ones(2, device=device, requires_grad=True)
    b = a * 2.0
    with pytest.raises(mt.InvalidArgumentError):
        b.requires_grad_(False)
    assert b.detach().requires_grad_().is_leaf


def test_backward_twice_raises(device):
    a = mt.ones(3, device=device, requires_grad=True)
    loss = (a.exp() * a).sum()
    loss.backward()
    with pytest.raises(mt.InvalidArgumentError):
        loss.backward()


def test_backward_of_a_non_scalar_needs_a_gradient(device):
    a = mt.ones(3, device=device, requires_grad=True)
    with pytest.raises(mt.ModalTensorError):
        (a * 2.0).backward()
    with pytest.raises(ValueError):
        (a * 2.0).sum().backward(retain_graph=True)


def test_values_changed_in_place_after_being_kept_raise(device):
    a = mt.ones(3, device=device, requires_grad=True)
    w = mt.full((3,), 2.0, device=device, requires_grad=True)
    loss = (a * w).sum()  # mul keeps a and w for its backward
    with mt.no_grad():
        w += 1.0
    with pytest.raises(mt.InvalidArgumentError):
        loss.backward()
    assert a.grad is None  # nothing was accumulated


def test_manual_sgd_step_lowers_the_loss(device, rng):
    model = nn.Linear(4, 1).to(device)
    x = mt.tensor(rng.standard_normal((32, 4)).astype(np.float32), device=device)
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with mt.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_is_leaf_follows_torch(device):
    a = mt.ones(2, 2, device=device, requires_grad=True)
    assert a.is_leaf
    assert a.contiguous().is_leaf == torch.ones(2, requires_grad=True).contiguous().is_leaf
    assert not (a * 1.0).is_leaf and not a.T.is_leaf and not a[0].is_leaf
    assert a.is_leaf and a.requires_grad  # asking changed nothing
    (a * 2.0).sum().backward()
    np.testing.assert_array_equal(host(a.grad), 2.0)
    assert mt.ones(2, device=device).is_leaf
    assert (mt.ones(2, device=device) * 2.0).is_leaf  # no grad: a leaf, as torch


def _training_step(model, x, y):
    loss = F.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    with mt.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    return loss.item()


def test_worker_training_step_is_one_sync_and_keeps_memory_flat(rng):
    if not mt.modal.is_remote_execution_enabled() or not mt.modal.is_available():
        pytest.skip("needs a worker (MODALTENSOR_TEST_MODAL=worker)")
    import gc
    gc.collect()
    mt.modal.synchronize(0)
    before = mt.modal.memory_allocated(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32),
                          nn.Linear(32, 4)).to("modal")
    x = mt.tensor(rng.standard_normal((16, 8)).astype(np.float32), device="modal")
    y = mt.tensor(rng.integers(0, 4, size=16), device="modal")
    for _ in range(3):
        _training_step(model, x, y)
    gc.collect()
    mt.modal.synchronize(0)
    steady = mt.modal.memory_allocated(0)
    syncs = mt.modal.stats()["syncs"]
    for _ in range(10):
        _training_step(model, x, y)
    assert mt.modal.stats()["syncs"] - syncs == 10  # only loss.item() waits
    gc.collect()
    mt.modal.synchronize(0)
    assert mt.modal.memory_allocated(0) == steady  # the tapes are freed by each backward
    del model, x, y
    gc.collect()
    mt.modal.synchronize(0)
    assert mt.modal.memory_allocated(0) == before


def test_module_trained_with_optim_sgd_follows_torch(device, rng):
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    ours = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ours.load_state_dict(theirs.state_dict())
    ours.to(device)
    mine = mt.optim.SGD(ours.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    want = torch.optim.SGD(theirs.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.integers(0, 2, size=10)
    for _ in range(5):
        for model, opt, lib, xs, ys in ((ours, mine, None, mt.tensor(x, device=device),
                                         mt.tensor(y, device=device)),
                                        (theirs, want, torch, torch.from_numpy(x),
                                         torch.from_numpy(y))):
            opt.zero_grad()
            loss = (F.cross_entropy if lib is None else torch.nn.functional.cross_entropy)(
                model(xs), ys)
            loss.backward()
            opt.step()
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], rtol=1e-4, atol=1e-5)
