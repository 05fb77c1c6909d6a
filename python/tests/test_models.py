"""Real models through modaltensor against PyTorch with the same weights, on
the cpu and the modal device: the GPT-style decoder of examples/python/gpt.py
(its reference written in torch ops: Debian's torch 1.13 has no
scaled_dot_product_attention), generation with the KV cache against
generation without it, and a small CNN forward with its loss."""

import math
import os
import sys

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
import gpt  # noqa: E402

SMALL = {"vocab": 256, "context": 32, "dim": 32, "heads": 4, "layers": 2}


def torch_gpt_logits(w, c, ids):
    """Logits [T, vocab] of the whole sequence ids, causal, in torch ops."""
    w = {k: torch.from_numpy(v).double() for k, v in w.items()}
    t, dim, heads = len(ids), c["dim"], c["heads"]
    x = w["tok_emb"][torch.tensor(ids)] + w["pos_emb"][:t]
    causal = torch.full((t, t), -math.inf, dtype=torch.float64).triu(1)
    for i in range(c["layers"]):
        h = TF.layer_norm(x, (dim,), w[f"{i}.ln1.w"], w[f"{i}.ln1.b"], 1e-5)
        q, k, v = TF.linear(h, w[f"{i}.qkv.w"], w[f"{i}.qkv.b"]).split(dim, dim=-1)
        q, k, v = (z.reshape(t, heads, -1).transpose(0, 1) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dim // heads) + causal
        a = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, dim)
        x = x + TF.linear(a, w[f"{i}.proj.w"], w[f"{i}.proj.b"])
        h = TF.layer_norm(x, (dim,), w[f"{i}.ln2.w"], w[f"{i}.ln2.b"], 1e-5)
        x = x + TF.linear(TF.gelu(TF.linear(h, w[f"{i}.fc1.w"], w[f"{i}.fc1.b"])),
                          w[f"{i}.fc2.w"], w[f"{i}.fc2.b"])
    return TF.linear(TF.layer_norm(x, (dim,), w["lnf.w"], w["lnf.b"], 1e-5), w["tok_emb"]).numpy()


@pytest.fixture(scope="module")
def weights():
    return gpt.random_weights(11, **SMALL)


def test_gpt_forward_matches_torch(weights, device):
    ids = [72, 101, 108, 108, 111, 44, 32, 109, 111, 100, 97, 108]
    model = gpt.GPT(weights, SMALL, device)
    got = model.forward(mt.tensor(np.array(ids), device=device)).cpu().numpy()
    np.testing.assert_allclose(got, torch_gpt_logits(weights, SMALL, ids), rtol=1e-4, atol=1e-5)


def test_gpt_kv_cache_steps_match_torch(weights, device):
    """Prefill 5 tokens, then one token a step through the cache: each step's
    logits are the full sequence's at that position."""
    ids = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84]
    want = torch_gpt_logits(weights, SMALL, ids)
    model = gpt.GPT(weights, SMALL, device)
    tensor = lambda v: mt.tensor(np.array(v, dtype=np.int64), device=device)
    got = model.forward(tensor(ids[:5]), 0, use_cache=True).cpu().numpy()
    np.testing.assert_allclose(got, want[:5], rtol=1e-4, atol=1e-5)
    for pos in range(5, len(ids)):
        step = model.forward(tensor(ids[pos:pos + 1]), pos, use_cache=True).cpu().numpy()
        np.testing.assert_allclose(step[0], want[pos], rtol=1e-4, atol=1e-5,
                                   err_msg=f"position {pos}")


def test_gpt_generation_with_cache_equals_without(weights, device):
    model = gpt.GPT(weights, SMALL, device)
    prompt = list(b"The cache")
    cached = model.generate(prompt, 12, top_k=8, seed=3, use_cache=True)
    recomputed = model.generate(prompt, 12, top_k=8, seed=3, use_cache=False)
    assert cached == recomputed
    assert len(cached) == 12 and all(0 <= t < SMALL["vocab"] for t in cached)


def test_gpt_generation_is_the_same_on_every_device(weights):
    prompt = list(b"devices")
    cpu = gpt.GPT(weights, SMALL, "cpu").generate(prompt, 10, top_k=8, seed=5)
    modal = gpt.GPT(weights, SMALL, "modal").generate(prompt, 10, top_k=8, seed=5)
    assert cpu == modal


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
