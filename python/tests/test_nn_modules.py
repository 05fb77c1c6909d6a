"""mt.nn modules against torch.nn: the same weights (copied from a torch
module with load_state_dict) give the same forward; state_dict keys, order
and shapes equal torch's; load_state_dict's errors are torch's; train/eval
of Dropout and BatchNorm2d; to(device); default initialisations; repr;
state_dict round trips through mt.save_file / mt.load_file. On cpu and
modal."""

import collections
import copy
import math
import os
import pickle

import numpy as np
import pytest

import modaltensor as mt
from modaltensor import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def host(t):
    return np.asarray(t.cpu().numpy(), dtype=np.float64)


def from_torch(module, ours, device):
    """ours with module's state loaded, on device."""
    result = ours.load_state_dict(module.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    return ours.to(device)


def close(ours, want, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(host(ours), want.detach().numpy().astype(np.float64), rtol=rtol,
                               atol=atol)


def inputs(rng, shape):
    values = rng.standard_normal(shape).astype(np.float32)
    return values, torch.from_numpy(values.copy())


def same_state_layout(ours, theirs):
    """state_dict keys (in order) and shapes equal."""
    mine = ours.state_dict()
    want = theirs.state_dict()
    assert list(mine) == list(want)
    for key in want:
        assert tuple(mine[key].shape) == tuple(want[key].shape), key


# ------------------------------------------------------------ forwards

@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias, device, rng):
    theirs = tnn.Linear(7, 5, bias=bias)
    ours = from_torch(theirs, nn.Linear(7, 5, bias=bias), device)
    x, tx = inputs(rng, (3, 4, 7))
    close(ours(mt.tensor(x, device=device)), theirs(tx))
    assert ours.weight.device == mt.device(device)
    same_state_layout(ours, theirs)


def test_embedding_matches_torch(device, rng):
    theirs = tnn.Embedding(11, 6, padding_idx=2)
    ours = from_torch(theirs, nn.Embedding(11, 6, padding_idx=2), device)
    index = rng.integers(0, 11, size=(4, 5))
    index[0, 0] = 2
    close(ours(mt.tensor(index, device=device)), theirs(torch.from_numpy(index)))
    same_state_layout(ours, theirs)


@pytest.mark.parametrize("shape,affine", [((8,), True), ((8,), False), ((3, 8), True)])
def test_layer_norm_matches_torch(shape, affine, device, rng):
    theirs = tnn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine)
    if affine:  # not torch's ones/zeros, so that weight and bias matter
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
    ours = from_torch(theirs, nn.LayerNorm(shape, eps=1e-4, elementwise_affine=affine), device)
    x, tx = inputs(rng, (2, 3, 8))
    close(ours(mt.tensor(x, device=device)), theirs(tx), atol=2e-5)
    same_state_layout(ours, theirs)


@pytest.mark.parametrize("shape", [(8,), (3, 8)])
def test_rms_norm_matches_hand_computed(shape, device, rng):
    # torch 1.13 has no RMSNorm: the reference is written out in float64
    ours = nn.RMSNorm(shape, eps=1e-6).to(device)
    weight = rng.standard_normal(shape).astype(np.float32)
    ours.load_state_dict({"weight": weight})
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    axes = tuple(range(3 - len(shape), 3))
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64 ** 2).mean(axis=axes, keepdims=True) + 1e-6) * weight
    np.testing.assert_allclose(host(ours(mt.tensor(x, device=device))), want, rtol=1e-5,
                               atol=1e-5)
    assert list(ours.state_dict()) == ["weight"]
    assert nn.RMSNorm(4, elementwise_affine=False).state_dict() == collections.OrderedDict()


CONVS = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, bias=False),
    dict(in_channels=4, out_channels=4, kernel_size=3, padding="same", dilation=2, groups=2),
    dict(in_channels=3, out_channels=2, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=3, out_channels=2, kernel_size=3, padding=2, padding_mode="replicate"),
]


@pytest.mark.parametrize("config", CONVS, ids=lambda c: ",".join(f"{k}={v}" for k, v in
                                                               c.items()))
def test_conv2d_matches_torch(config, device, rng):
    theirs = tnn.Conv2d(**config)
    ours = from_torch(theirs, nn.Conv2d(**config), device)
    x, tx = inputs(rng, (2, config["in_channels"], 9, 8))
    close(ours(mt.tensor(x, device=device)), theirs(tx), rtol=1e-4, atol=1e-5)
    same_state_layout(ours, theirs)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_activations_match_torch(approximate, device, rng):
    x, tx = inputs(rng, (4, 9))
    t = mt.tensor(x, device=device)
    close(nn.GELU(approximate)(t), tnn.GELU(approximate)(tx))
    close(nn.ReLU()(t), tnn.ReLU()(tx))
    close(nn.SiLU()(t), tnn.SiLU()(tx))
    close(nn.Tanh()(t), tnn.Tanh()(tx))
    close(nn.Sigmoid()(t), tnn.Sigmoid()(tx))
    with pytest.raises(ValueError):
        nn.GELU("fast")


def test_sequential_mlp_matches_torch(device, rng):
    theirs = tnn.Sequential(tnn.Linear(6, 16), tnn.GELU(), tnn.LayerNorm(16),
                            tnn.Linear(16, 3))
    ours = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    ours = from_torch(theirs, ours, device)
    x, tx = inputs(rng, (5, 6))
    close(ours(mt.tensor(x, device=device)), theirs(tx))
    same_state_layout(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert len(ours) == 4 and isinstance(ours[-1], nn.Linear)
    assert isinstance(ours[1:3], nn.Sequential) and len(ours[1:3]) == 2


# ------------------------------------------------- BatchNorm2d and Dropout

def test_batch_norm2d_train_then_eval_matches_torch(device, rng):
    theirs = tnn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours = from_torch(theirs, nn.BatchNorm2d(3, momentum=0.2), device)
    assert ours.training
    for _ in range(3):
        x, tx = inputs(rng, (4, 3, 5, 5))
        close(ours(mt.tensor(x * 2 + 1, device=device)), theirs(tx * 2 + 1), atol=1e-4)
    mine, want = ours.state_dict(), theirs.state_dict()
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(host(mine[key]), want[key].numpy(), rtol=1e-5, atol=1e-5)
    assert mine["num_batches_tracked"].item() == 3 == int(want["num_batches_tracked"])
    assert mine["num_batches_tracked"].dtype == mt.int64

    ours.eval()
    theirs.eval()
    x, tx = inputs(rng, (2, 3, 5, 5))
    before = host(ours.running_mean)
    close(ours(mt.tensor(x, device=device)), theirs(tx), atol=1e-5)
    np.testing.assert_array_equal(host(ours.running_mean), before)  # eval leaves them
    assert ours.num_batches_tracked.item() == 3
    same_state_layout(ours, theirs)
    with pytest.raises(ValueError, match="expected 4D input"):
        ours(mt.zeros(3, 5, device=device))


def test_batch_norm2d_cumulative_and_untracked(device, rng):
    theirs = tnn.BatchNorm2d(2, momentum=None)
    ours = from_torch(theirs, nn.BatchNorm2d(2, momentum=None), device)
    for _ in range(2):
        x, tx = inputs(rng, (3, 2, 4, 4))
        ours(mt.tensor(x, device=device))
        theirs(tx)
    np.testing.assert_allclose(host(ours.running_var), theirs.running_var.numpy(), rtol=1e-5)
    theirs = tnn.BatchNorm2d(2, affine=False, track_running_stats=False)
    ours = nn.BatchNorm2d(2, affine=False, track_running_stats=False).to(device)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    x, tx = inputs(rng, (3, 2, 4, 4))
    close(ours.eval()(mt.tensor(x, device=device)), theirs.eval()(tx), atol=1e-5)


def test_dropout_drops_in_training_only(device):
    drop = nn.Dropout(0.25)
    x = mt.ones(200, 100, device=device)
    y = host(drop(x))
    kept = y != 0
    assert 0.22 < 1 - kept.mean() < 0.28
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    drop.eval()
    np.testing.assert_array_equal(host(drop(x)), 1.0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(1.0)).to(device)
    assert not host(model(mt.ones(2, 3, device=device))).any()
    model.eval()
    assert not model.training and not model[1].training
    assert host(model(mt.ones(2, 3, device=device))).any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout(0.25)) == repr(tnn.Dropout(0.25))


# ------------------------------------------------------ state dicts

def _pairs():
    return [
        (lambda m: m.Linear(4, 3), "Linear"),
        (lambda m: m.Linear(4, 3, bias=False), "Linear no bias"),
        (lambda m: m.Embedding(10, 4), "Embedding"),
        (lambda m: m.LayerNorm(6), "LayerNorm"),
        (lambda m: m.LayerNorm((2, 6), elementwise_affine=False), "LayerNorm plain"),
        (lambda m: m.Conv2d(3, 8, 3, padding=1), "Conv2d"),
        (lambda m: m.BatchNorm2d(5), "BatchNorm2d"),
        (lambda m: m.Dropout(0.1), "Dropout"),
        (lambda m: m.GELU(), "GELU"),
        (lambda m: m.ReLU(), "ReLU"),
        (lambda m: m.Sequential(m.Conv2d(1, 2, 3), m.BatchNorm2d(2), m.ReLU(),
                                m.Sequential(m.Linear(2, 2), m.Dropout())), "nested"),
        (lambda m: m.ModuleList([m.Linear(2, 3), m.ModuleList([m.LayerNorm(3)])]),
         "ModuleList"),
    ]


@pytest.mark.parametrize("make,name", _pairs(), ids=[n for _, n in _pairs()])
def test_state_dict_layout_and_repr_equal_torch(make, name):
    ours, theirs = make(nn), make(tnn)
    same_state_layout(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert repr(ours) == repr(theirs)
    for p in ours.parameters():
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf


def _torch_error(module, state, strict=True):
    with pytest.raises(RuntimeError) as info:
        module.load_state_dict(state, strict=strict)
    return str(info.value)


def test_load_state_dict_errors_are_torchs():
    theirs, ours = tnn.Linear(3, 2), nn.Linear(3, 2)
    good = theirs.state_dict()
    missing = {"weight": good["weight"]}
    unexpected = dict(good, extra=torch.zeros(1), more=torch.zeros(2))
    wrong = {"weight": torch.zeros(3, 2), "bias": good["bias"]}
    both = {"weight": good["weight"], "junk": torch.zeros(1)}
    for state in (missing, unexpected, wrong, both):
        with pytest.raises(RuntimeError) as info:
            ours.load_state_dict(state)
        assert str(info.value) == _torch_error(theirs, state)
    # strict=False: the keys are reported, shape mismatches still raise
    result = ours.load_state_dict(both, strict=False)
    want = theirs.load_state_dict(both, strict=False)
    assert result.missing_keys == want.missing_keys == ["bias"]
    assert result.unexpected_keys == want.unexpected_keys == ["junk"]
    with pytest.raises(RuntimeError) as info:
        ours.load_state_dict(wrong, strict=False)
    assert str(info.value) == _torch_error(theirs, wrong, strict=False)


def test_failed_load_copies_nothing():
    ours = nn.Linear(3, 2)
    before = host(ours.weight)
    with pytest.raises(RuntimeError):
        ours.load_state_dict({"weight": np.ones((2, 3), np.float32), "bias": np.ones(5)})
    np.testing.assert_array_equal(host(ours.weight), before)
    with pytest.raises(RuntimeError, match='parameter named "weight"'):
        ours.load_state_dict({"weight": "not a tensor", "bias": np.ones(2)})


def test_nested_keys_load_by_dotted_name(device, rng):
    class Block(tnn.Module):
        def __init__(self, m):
            super().__init__()
            self.proj = m.Linear(4, 4)
            self.norm = m.LayerNorm(4)
            self.layers = m.ModuleList([m.Linear(4, 4) for _ in range(2)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).relu()
            return self.norm(self.proj(x))

    class OurBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])

        forward = Block.forward

    theirs, ours = Block(tnn), OurBlock()
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "proj.weight", "proj.bias", "norm.weight", "norm.bias", "layers.0.weight",
        "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    ours = from_torch(theirs, ours, device)
    x, tx = inputs(rng, (3, 4))
    close(ours(mt.tensor(x, device=device)), theirs(tx), atol=2e-5)


def test_state_dict_round_trips_through_safetensors(tmp_path, device, rng):
    mt.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).to(device)
    x = mt.tensor(rng.standard_normal((2, 2, 6, 6)).astype(np.float32), device=device)
    model(x)  # running statistics move away from their initial values
    model.eval()
    want = host(model(x))
    path = os.fspath(tmp_path / "model.safetensors")
    mt.save_file(model.state_dict(), path)
    loaded = mt.load_file(path)
    assert list(loaded) == list(model.state_dict()) or \
        sorted(loaded) == sorted(model.state_dict())
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    fresh.load_state_dict(loaded)
    fresh.to(device).eval()
    np.testing.assert_allclose(host(fresh(x)), want, rtol=1e-6, atol=1e-6)
    assert fresh[1].num_batches_tracked.item() == 1


def test_state_dict_values_are_detached_views():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    assert not state["weight"].requires_grad
    assert not isinstance(state["weight"], nn.Parameter)
    with mt.no_grad():
        model.weight.fill_(3.0)
    np.testing.assert_array_equal(host(state["weight"]), 3.0)  # shares the storage
    assert model.state_dict(keep_vars=True)["weight"] is model.weight


# ---------------------------------------------------------- devices

def test_to_moves_parameters_and_buffers_to_modal():
    if not pytest.importorskip("conftest").MODAL_AVAILABLE:
        pytest.skip("no modal device")
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm2d(4))
    weight = model[0].weight
    values = host(weight)
    assert model.to("modal") is model
    assert model[0].weight is weight  # the same Parameter, now on modal
    for _, t in list(model.named_parameters()) + list(model.named_buffers()):
        assert t.device == mt.device("modal")
    assert weight.requires_grad and weight.is_leaf
    np.testing.assert_array_equal(host(weight), values)
    assert model[1].num_batches_tracked.dtype == mt.int64
    model.to(dtype=mt.float64)
    assert weight.dtype == mt.float64 and model[1].num_batches_tracked.dtype == mt.int64
    model.cpu()
    assert weight.device == mt.device("cpu")
    with pytest.raises(TypeError):
        model.to(mt.int32)


def test_factory_kwargs(device):
    layer = nn.Linear(3, 2, device=device, dtype=mt.float64)
    assert layer.weight.device == mt.device(device) and layer.weight.dtype == mt.float64
    norm = nn.BatchNorm2d(4, device=device, dtype="float16")
    assert norm.running_var.dtype == mt.float16 and norm.running_var.device == mt.device(device)
    assert norm.num_batches_tracked.dtype == mt.int64


# ---------------------------------------------------- initialisation

def test_default_initialisations_follow_torchs_rules(device):
    mt.manual_seed(0)
    linear = nn.Linear(400, 300, device=device)
    w, b = host(linear.weight), host(linear.bias)
    bound = 1 / math.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # uniform, not normal
    assert abs(w.mean()) < 0.01 * bound
    conv = nn.Conv2d(6, 8, (3, 5), groups=2, device=device)
    bound = 1 / math.sqrt(3 * 3 * 5)
    assert np.abs(host(conv.weight)).max() <= bound and np.abs(host(conv.bias)).max() <= bound
    emb = host(nn.Embedding(500, 64, padding_idx=3, device=device).weight)
    assert abs(emb.std() - 1) < 0.02 and abs(emb.mean()) < 0.02
    assert not emb[3].any()
    norm = nn.LayerNorm(5, device=device)
    np.testing.assert_array_equal(host(norm.weight), 1.0)
    np.testing.assert_array_equal(host(norm.bias), 0.0)
    bn = nn.BatchNorm2d(3, device=device)
    np.testing.assert_array_equal(host(bn.running_mean), 0.0)
    np.testing.assert_array_equal(host(bn.running_var), 1.0)
    assert bn.num_batches_tracked.item() == 0


def test_initialisation_is_reproducible_with_manual_seed():
    mt.manual_seed(42)
    a = host(nn.Linear(5, 5).weight)
    mt.manual_seed(42)
    b = host(nn.Linear(5, 5).weight)
    c = host(nn.Linear(5, 5).weight)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


# --------------------------------------------------- Module machinery

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(mt.ones(3))
        self.register_buffer("offset", mt.zeros(3))
        self.register_buffer("cache", mt.zeros(2), persistent=False)
        self.inner = nn.Linear(3, 3)
        self.plain = 7

    def forward(self, x):
        return self.inner(x * self.scale + self.offset)


def test_module_registration_and_traversal():
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.named_buffers()] == ["offset", "cache"]
    assert list(m.state_dict()) == ["scale", "offset", "inner.weight", "inner.bias"]
    assert list(m.children()) == [m.inner] and list(m.modules()) == [m, m.inner]
    assert m.plain == 7 and "plain" not in m.state_dict()
    with pytest.raises(TypeError, match="cannot assign"):
        m.scale = mt.ones(3)  # a plain tensor where a Parameter is registered
    m.offset = mt.ones(3)  # a buffer takes a plain tensor
    assert host(m.state_dict()["offset"]).tolist() == [1, 1, 1]
    with pytest.raises(AttributeError, match="has no attribute"):
        m.missing
    shared = nn.Linear(2, 2)
    twice = nn.Sequential(shared, shared)
    assert len(list(twice.parameters())) == 2
    assert list(twice.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    del m.inner
    assert "inner.weight" not in m.state_dict()
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Broken(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(mt.ones(1))
        Broken()
    with pytest.raises(NotImplementedError):
        nn.Module()(1)


def test_train_eval_flags_are_recursive():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm2d(2)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not model[1][0].training


def test_module_list_operations():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    layers.append(nn.GELU())
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "ReLU", "GELU"]
    assert list(layers.state_dict()) == ["1.weight", "1.bias"]
    del layers[0]
    assert list(layers.state_dict()) == ["0.weight", "0.bias"]
    assert isinstance(layers[-1], nn.GELU) and len(layers[1:]) == 2
    with pytest.raises(IndexError):
        layers[5]


def test_parameter_is_a_leaf_sharing_values():
    data = mt.ones(2, 3)
    p = nn.Parameter(data)
    assert isinstance(p, mt.Tensor) and p.requires_grad and p.is_leaf
    assert not data.requires_grad
    assert host(p).tolist() == [[1, 1, 1]] * 2
    assert repr(p).startswith("Parameter containing:\n")
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    with pytest.raises(mt.DTypeError):
        nn.Parameter(mt.zeros(2, dtype=mt.int64))


def test_zero_grad_and_requires_grad_():
    model = nn.Linear(3, 1)
    model(mt.ones(2, 3)).sum().backward()
    assert model.weight.grad is not None and model.bias.grad is not None
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(host(model.weight.grad), 0.0)
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_deepcopy_and_pickle_keep_parameters(device):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm2d(3)).to(device)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        weight = clone[0].weight
        assert isinstance(weight, nn.Parameter) and weight.requires_grad and weight.is_leaf
        assert weight is not model[0].weight and weight.device == mt.device(device)
        np.testing.assert_array_equal(host(weight), host(model[0].weight))
        assert list(clone.state_dict()) == list(model.state_dict())


def test_losses_flatten_and_from_pretrained_match_torch(device, rng):
    x, tx = inputs(rng, (5, 4))
    target = rng.integers(0, 4, size=5)
    t = mt.tensor(x, device=device)
    close(nn.CrossEntropyLoss(label_smoothing=0.1)(t, mt.tensor(target, device=device)),
          tnn.CrossEntropyLoss(label_smoothing=0.1)(tx, torch.from_numpy(target)))
    other, tother = inputs(rng, (5, 4))
    for reduction in ("mean", "sum", "none"):
        close(nn.MSELoss(reduction)(t, mt.tensor(other, device=device)),
              tnn.MSELoss(reduction=reduction)(tx, tother))
    images, timages = inputs(rng, (2, 3, 4, 5))
    close(nn.Flatten()(mt.tensor(images, device=device)), tnn.Flatten()(timages))
    table = rng.standard_normal((6, 3)).astype(np.float32)
    frozen = nn.Embedding.from_pretrained(mt.tensor(table, device=device))
    assert not frozen.weight.requires_grad
    assert nn.Embedding.from_pretrained(mt.tensor(table), freeze=False).weight.requires_grad
    np.testing.assert_array_equal(host(frozen(mt.tensor([5, 0], device=device))),
                                  table[[5, 0]])


def test_init_functions_follow_torchs_formulas(device):
    for name, param in (("linear", None), ("relu", None), ("tanh", None),
                        ("leaky_relu", 0.2), ("conv2d", None), ("selu", None)):
        assert nn.init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param))
    w = mt.empty(200, 300, device=device)
    assert nn.init.xavier_uniform_(w, seed=3) is w
    bound = math.sqrt(6 / 500)
    values = host(w)
    assert np.abs(values).max() <= bound and values.std() > 0.9 * bound / math.sqrt(3)
    a = host(nn.init.normal_(mt.empty(1000, device=device), 2.0, 0.5, seed=1))
    assert abs(a.mean() - 2.0) < 0.05 and abs(a.std() - 0.5) < 0.05
    b = host(nn.init.normal_(mt.empty(1000, device=device), 2.0, 0.5, seed=1))
    np.testing.assert_array_equal(a, b)  # the same seed, the same values
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(mt.empty(3, device=device))
