"""Real models through modaltensor against PyTorch with the same weights, on
the cpu and the modal device: the GPT-style decoder of examples/python/gpt.py
(its reference written in torch ops: Debian's torch 1.13 has no
scaled_dot_product_attention), generation with the KV cache against
generation without it, its training steps against torch.optim.AdamW, and a
small CNN forward with its loss."""

import math
import os
import sys

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from conftest import MODAL_MODE

torch = pytest.importorskip("torch")
TF = torch.nn.functional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
import gpt  # noqa: E402

SMALL = {"vocab": 256, "context": 32, "dim": 32, "heads": 4, "layers": 2}


def random_weights(seed, c):
    """The decoder's state_dict as float32 NumPy arrays, every entry random
    (biases and norms too, unlike gpt.py's initialisation, so that the
    comparisons see them)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    dim = c["dim"]
    w = {"tok_emb.weight": normal(c["vocab"], dim), "pos_emb.weight": normal(c["context"], dim)}
    for i in range(c["layers"]):
        for name, out, inp in (("qkv", 3 * dim, dim), ("proj", dim, dim), ("fc1", 4 * dim, dim),
                               ("fc2", dim, 4 * dim)):
            w[f"layers.{i}.{name}.weight"] = normal(out, inp)
            w[f"layers.{i}.{name}.bias"] = normal(out)
        for norm in ("ln1", "ln2"):
            w[f"layers.{i}.{norm}.weight"] = 1 + normal(dim)
            w[f"layers.{i}.{norm}.bias"] = normal(dim)
    w["ln_f.weight"], w["ln_f.bias"] = 1 + normal(dim), normal(dim)
    return w


def make_gpt(weights, device):
    model = gpt.GPT(SMALL, device)
    model.load_state_dict(weights)
    return model


def torch_gpt_logits(w, c, ids):
    """Logits [T, vocab] of the whole sequence ids, causal, in torch ops on
    the torch tensors w (named as the decoder's state_dict)."""
    t, dim, heads = len(ids), c["dim"], c["heads"]
    x = TF.embedding(torch.tensor(ids), w["tok_emb.weight"]) + w["pos_emb.weight"][:t]
    causal = torch.full((t, t), -math.inf, dtype=x.dtype).triu(1)
    for i in range(c["layers"]):
        p = lambda name: (w[f"layers.{i}.{name}.weight"], w[f"layers.{i}.{name}.bias"])
        h = TF.layer_norm(x, (dim,), *p("ln1"), 1e-5)
        q, k, v = TF.linear(h, *p("qkv")).split(dim, dim=-1)
        q, k, v = (z.reshape(t, heads, -1).transpose(0, 1) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dim // heads) + causal
        a = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, dim)
        x = x + TF.linear(a, *p("proj"))
        h = TF.layer_norm(x, (dim,), *p("ln2"), 1e-5)
        x = x + TF.linear(TF.gelu(TF.linear(h, *p("fc1"))), *p("fc2"))
    return TF.linear(TF.layer_norm(x, (dim,), w["ln_f.weight"], w["ln_f.bias"], 1e-5),
                     w["tok_emb.weight"])


def torch_logits_float64(weights, ids):
    w = {k: torch.from_numpy(v).double() for k, v in weights.items()}
    return torch_gpt_logits(w, SMALL, ids).numpy()


@pytest.fixture(scope="module")
def weights():
    return random_weights(11, SMALL)


def test_gpt_forward_matches_torch(weights, device):
    ids = [72, 101, 108, 108, 111, 44, 32, 109, 111, 100, 97, 108]
    model = make_gpt(weights, device)
    got = model(mt.tensor(np.array(ids), device=device)).detach().cpu().numpy()
    np.testing.assert_allclose(got, torch_logits_float64(weights, ids), rtol=1e-4, atol=1e-5)


def test_gpt_kv_cache_steps_match_torch(weights, device):
    """Prefill 5 tokens, then one token a step through the cache: each step's
    logits are the full sequence's at that position."""
    ids = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84]
    want = torch_logits_float64(weights, ids)
    model = make_gpt(weights, device)
    tensor = lambda v: mt.tensor(np.array(v, dtype=np.int64), device=device)
    with mt.no_grad():
        got = model(tensor(ids[:5]), 0, use_cache=True).cpu().numpy()
        np.testing.assert_allclose(got, want[:5], rtol=1e-4, atol=1e-5)
        for pos in range(5, len(ids)):
            step = model(tensor(ids[pos:pos + 1]), pos, use_cache=True).cpu().numpy()
            np.testing.assert_allclose(step[0], want[pos], rtol=1e-4, atol=1e-5,
                                       err_msg=f"position {pos}")


def test_gpt_kv_cache_needs_grad_off(weights):
    model = make_gpt(weights, "cpu")
    with pytest.raises(RuntimeError, match="mt.no_grad"):
        model(mt.tensor(np.array([1, 2], dtype=np.int64)), use_cache=True)


def test_gpt_generation_with_cache_equals_without(weights, device):
    model = make_gpt(weights, device)
    prompt = list(b"The cache")
    cached = model.generate(prompt, 12, top_k=8, seed=3, use_cache=True)
    recomputed = model.generate(prompt, 12, top_k=8, seed=3, use_cache=False)
    assert cached == recomputed
    assert len(cached) == 12 and all(0 <= t < SMALL["vocab"] for t in cached)


def test_gpt_generation_is_the_same_on_every_device(weights):
    """Built on modal, or built on cpu and moved there with its KV cache
    (buffers move with to()): the tokens are the cpu's."""
    prompt = list(b"devices")
    moved = make_gpt(weights, "cpu")
    cpu = moved.generate(prompt, 10, top_k=8, seed=5)
    modal = make_gpt(weights, "modal").generate(prompt, 10, top_k=8, seed=5)
    moved.to("modal")
    assert str(moved.layers[1].v_cache.device) == "modal:0"
    assert cpu == modal == moved.generate(prompt, 10, top_k=8, seed=5)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_gpt_adamw_steps_match_torch(weights, device, clip):
    """Three training steps of gpt.py (loss, backward, optional clipping,
    AdamW) against torch.optim.AdamW from the same weights on the same
    windows of the README: the same losses and the same weights after."""
    with open(gpt.DEFAULT_TEXT, "rb") as f:
        text = f.read()
    context, lr = SMALL["context"], 3e-3
    model = make_gpt(weights, device)
    optimizer = gpt.make_optimizer(model, lr)
    ref = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in weights.items()}
    ref_optimizer = torch.optim.AdamW(ref.values(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                                      weight_decay=0.01)
    offsets = gpt.window_offsets(len(text), context, seed=3)
    for step in range(3):
        ids, targets = gpt.window(text, next(offsets), context, device)
        loss = gpt.train_step(model, optimizer, ids, targets, clip).item()
        ref_loss = TF.cross_entropy(torch_gpt_logits(ref, SMALL, ids.cpu().numpy().tolist()),
                                    torch.from_numpy(targets.cpu().numpy()))
        ref_loss.backward()
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(ref.values(), clip)
            assert norm > clip  # the clipping is exercised
        ref_optimizer.step()
        ref_optimizer.zero_grad()
        np.testing.assert_allclose(loss, ref_loss.item(), rtol=1e-5, err_msg=f"step {step}")
    trained = {name: value.cpu().numpy() for name, value in model.state_dict().items()}
    want = {name: value.detach().numpy() for name, value in ref.items()}
    assert trained.keys() == want.keys()
    # The keys' bias gets a gradient that is 0 but for rounding (a constant
    # added to a query's scores leaves its softmax the same), and Adam
    # divides that noise by its own size plus eps: it moves by up to
    # lr * noise / (noise + eps) a step on either side, so only loosely.
    dim = SMALL["dim"]
    for i in range(SMALL["layers"]):
        name = f"layers.{i}.qkv.bias"
        np.testing.assert_allclose(trained[name][dim:2 * dim], want[name][dim:2 * dim],
                                   atol=1e-4, err_msg=name + " (keys)")
        trained[name][dim:2 * dim] = want[name][dim:2 * dim]
    for name in want:
        np.testing.assert_allclose(trained[name], want[name], rtol=1e-4, atol=5e-6, err_msg=name)


@pytest.mark.skipif(MODAL_MODE != "worker", reason="traffic counters need a worker")
@pytest.mark.parametrize("clip", [None, 1.0])
def test_gpt_training_step_on_a_worker_is_one_round_trip(weights, clip):
    """Forward, backward, clipping and AdamW of a step are recorded into one
    graph; reading the loss sends it and downloads the loss alone."""
    if not mt.modal.is_available():
        pytest.skip("no worker answers for the modal device")
    model = make_gpt(weights, "modal")
    optimizer = gpt.make_optimizer(model, 3e-3)
    text = bytes(range(256)) * 2
    for offset in (0, 100, 200):
        ids, targets = gpt.window(text, offset, SMALL["context"], "modal")
        mt.modal.synchronize()  # the weights and the window are on the worker
        mt.modal.reset_stats()
        gpt.train_step(model, optimizer, ids, targets, clip).item()
        stats = mt.modal.stats()
        assert (stats["round_trips"], stats["graphs"], stats["bytes_up"],
                stats["bytes_down"]) == (1, 1, 0, 4), stats


# ------------------------------------------------------------------ the CNN

def cnn_weights(seed=5):
    rng = np.random.default_rng(seed)
    normal = lambda *shape, s=0.2: (rng.standard_normal(shape) * s).astype(np.float32)
    return {"c1.w": normal(8, 3, 3, 3), "c1.b": normal(8),
            "bn1.mean": normal(8), "bn1.var": (rng.random(8) + 0.5).astype(np.float32),
            "bn1.w": 1 + normal(8), "bn1.b": normal(8),
            "c2.w": normal(16, 8, 3, 3), "c2.b": normal(16),
            "dw.w": normal(16, 1, 3, 3), "fc.w": normal(10, 16), "fc.b": normal(10)}


def cnn_forward(lib, f, w, x, targets):
    """The same CNN in modaltensor (lib=mt, f=F) or torch (lib=torch, f=TF):
    conv, batch norm (eval), relu, max pool, strided conv, depthwise conv,
    average pools, linear, then the loss."""
    h = f.conv2d(x, w["c1.w"], w["c1.b"], padding=1)
    h = f.batch_norm(h, w["bn1.mean"], w["bn1.var"], w["bn1.w"], w["bn1.b"], training=False)
    h = f.max_pool2d(f.relu(h), 2)
    h = f.relu(f.conv2d(h, w["c2.w"], w["c2.b"], stride=2, padding=1))
    h = f.conv2d(h, w["dw.w"], None, padding=1, groups=16)
    h = f.avg_pool2d(h, 2, stride=1)
    logits = f.linear(f.adaptive_avg_pool2d(h, 1).reshape(x.shape[0], 16), w["fc.w"], w["fc.b"])
    return logits, f.cross_entropy(logits, targets, label_smoothing=0.1)


def test_cnn_forward_and_loss_match_torch(device):
    rng = np.random.default_rng(9)
    w = cnn_weights()
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    targets = np.array([1, 7, 3, 0])
    ours = cnn_forward(mt, F, {k: mt.tensor(v, device=device) for k, v in w.items()},
                       mt.tensor(x, device=device), mt.tensor(targets, device=device))
    ref = cnn_forward(torch, TF, {k: torch.from_numpy(v).double() for k, v in w.items()},
                      torch.from_numpy(x).double(), torch.from_numpy(targets))
    np.testing.assert_allclose(ours[0].cpu().numpy(), ref[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours[1].item(), ref[1].item(), rtol=1e-5)
