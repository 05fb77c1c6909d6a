"""mt.nn.functional.scaled_dot_product_attention against a PyTorch reference
written in torch ops (Debian's torch 1.13 has no F.scaled_dot_product_attention):
softmax(q @ k^T * scale + mask) @ v in float64, on the cpu and the modal
device, for every floating dtype, masks, is_causal, scales, L != S, heads
broadcast, transposed views, large logits, fully masked rows and bad
arguments."""

import math
import os

import numpy as np
import pytest

import modaltensor as mt
import modaltensor.nn.functional as F
from oracle import FLOATS, check, make, round_to

torch = pytest.importorskip("torch")

TOL = {"float16": (3e-3, 3e-3), "bfloat16": (2e-2, 2e-2), "float32": (2e-5, 2e-5),
       "float64": (1e-10, 1e-10)}


def reference(q, k, v, mask=None, is_causal=False, scale=None):
    """torch 2's math path, in float64 torch ops."""
    q, k, v = (torch.from_numpy(np.asarray(x, dtype=np.float64)) for x in (q, k, v))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    length, keys = scores.shape[-2:]
    if is_causal:
        keep = torch.ones(length, keys, dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        mask = torch.from_numpy(np.asarray(mask))
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.double()
    return (torch.softmax(scores, dim=-1) @ v).numpy()


def values(rng, shape, dtype, spread=2.0):
    """Random values exact in dtype."""
    return round_to(rng.uniform(-spread, spread, size=shape), dtype)


def run(rng, dtype, device, qs, ks, vs, mask=None, mask_dtype=None, **kw):
    q, k, v = values(rng, qs, dtype), values(rng, ks, dtype), values(rng, vs, dtype)
    tm = None
    if mask is not None:
        tm = make(mask, mask_dtype or ("bool" if mask.dtype == bool else dtype), device)
    out = F.scaled_dot_product_attention(make(q, dtype, device), make(k, dtype, device),
                                         make(v, dtype, device), attn_mask=tm, **kw)
    rtol, atol = TOL[dtype]
    check(out, reference(q, k, v, mask, **kw), dtype, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", FLOATS)
def test_shapes_and_options(dtype, device, rng):
    run(rng, dtype, device, (2, 3, 17, 8), (2, 3, 23, 8), (2, 3, 23, 5))          # no mask
    run(rng, dtype, device, (1, 2, 70, 16), (1, 2, 130, 16), (1, 2, 130, 16))     # S % tile != 0
    run(rng, dtype, device, (1, 2, 65, 8), (1, 2, 65, 8), (1, 2, 65, 8), is_causal=True)
    run(rng, dtype, device, (1, 2, 9, 8), (1, 2, 100, 8), (1, 2, 100, 8), is_causal=True)
    run(rng, dtype, device, (1, 1, 100, 8), (1, 1, 9, 8), (1, 1, 9, 8), is_causal=True)
    run(rng, dtype, device, (2, 4, 1, 32), (2, 4, 77, 32), (2, 4, 77, 32))        # L = 1
    run(rng, dtype, device, (2, 4, 1, 32), (2, 4, 77, 32), (2, 4, 77, 32), is_causal=True)
    run(rng, dtype, device, (2, 4, 10, 8), (2, 1, 12, 8), (2, 1, 12, 8), scale=0.3)  # heads
    run(rng, dtype, device, (4, 10, 8), (1, 12, 8), (4, 12, 6), scale=-1.0)        # 3-d
    bool_mask = rng.random((10, 12)) < 0.7
    run(rng, dtype, device, (2, 2, 10, 8), (2, 2, 12, 8), (2, 2, 12, 8), mask=bool_mask)
    float_mask = values(rng, (2, 1, 10, 12), dtype)
    run(rng, dtype, device, (2, 2, 10, 8), (2, 2, 12, 8), (2, 2, 12, 8), mask=float_mask)
    run(rng, dtype, device, (2, 2, 10, 8), (2, 2, 12, 8), (2, 2, 12, 8),
        mask=values(rng, (12,), "float32"), mask_dtype="float32")


@pytest.mark.parametrize("dtype", FLOATS)
def test_transposed_views(dtype, device, rng):
    """[B, L, H, E] projections viewed as [B, H, L, E], as models make them."""
    b, length, h, e = 2, 19, 3, 16
    q, k, v = (values(rng, (b, length, h, e), dtype) for _ in range(3))
    tq, tk, tv = (make(x, dtype, device).transpose(1, 2) for x in (q, k, v))
    assert not tq.is_contiguous()
    out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    want = reference(*(np.swapaxes(x, 1, 2) for x in (q, k, v)), is_causal=True)
    rtol, atol = TOL[dtype]
    check(out, want, dtype, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_logits_are_stable(dtype, device, rng):
    q = values(rng, (1, 2, 20, 16), dtype, 16) * 64
    k = values(rng, (1, 2, 30, 16), dtype, 16)
    v = values(rng, (1, 2, 30, 4), dtype)
    out = F.scaled_dot_product_attention(make(q, dtype, device), make(k, dtype, device),
                                         make(v, dtype, device))
    got = out.cpu().numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference(q, k, v), rtol=1e-4, atol=1e-4)


def test_masked_rows_edges_and_specials(device):
    q = mt.tensor([[1.0], [2.0]], device=device)
    k = mt.tensor([[1.0], [1.0]], device=device)
    v = mt.tensor([[3.0], [5.0]], device=device)
    mask = mt.tensor([[False, False], [False, True]], device=device)
    got = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).cpu().numpy()
    assert np.isnan(got[0, 0]) and got[1, 0] == 5.0  # a row with no kept key: NaN, as torch
    inf_q = mt.tensor([[math.inf], [1.0]], device=device)
    got = F.scaled_dot_product_attention(inf_q, k, v).cpu().numpy()
    assert np.isnan(got[0, 0]) and abs(got[1, 0] - 4.0) < 1e-6
    empty = F.scaled_dot_product_attention(mt.ones((2, 3, 4), device=device),
                                           mt.ones((2, 0, 4), device=device),
                                           mt.ones((2, 0, 5), device=device))
    assert empty.shape == (2, 3, 5) and not empty.cpu().numpy().any()  # S = 0: zeros
    none = F.scaled_dot_product_attention(mt.ones((2, 0, 4), device=device),
                                          mt.ones((2, 3, 4), device=device),
                                          mt.ones((2, 3, 6), device=device), is_causal=True)
    assert none.shape == (2, 0, 6)


def test_bad_arguments(device):
    q = mt.ones((2, 3, 4), device=device)
    k = mt.ones((2, 5, 4), device=device)
    v = mt.ones((2, 5, 6), device=device)
    mask = mt.ones((3, 5), dtype="bool", device=device)
    name = "mt_scaled_dot_product_attention"
    with pytest.raises(mt.InvalidArgumentError, match=f"{name}: attn_mask and is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)
    with pytest.raises(mt.InvalidArgumentError, match="scale"):
        F.scaled_dot_product_attention(q, k, v, scale=math.inf)
    with pytest.raises(mt.ShapeError, match=f"{name}: key: 3 features"):
        F.scaled_dot_product_attention(q, mt.ones((2, 5, 3), device=device), v)
    with pytest.raises(mt.ShapeError, match=f"{name}: value: 4 rows"):
        F.scaled_dot_product_attention(q, k, mt.ones((2, 4, 6), device=device))
    with pytest.raises(mt.ShapeError, match=f"{name}: attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mt.ones((3, 4), dtype="bool",
                                                                  device=device))
    with pytest.raises(mt.DTypeError, match=f"{name}: key: dtype float64"):
        F.scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(mt.DTypeError, match=f"{name}: query"):
        F.scaled_dot_product_attention(q.int(), k.int(), v.int())
    with pytest.raises(mt.DTypeError, match=f"{name}: attn_mask: dtype int64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mt.ones((3, 5), dtype="int64",
                                                                  device=device))


def _peak_kib(pid):
    """VmHWM (peak resident memory) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/status")


def _worker_pids():
    """The processes this one started (the local worker, in worker mode)."""
    me, pids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_stays_linear_for_8192_keys(device):
    """L = S = 8192, one head, E = 64: an L x S float32 matrix would be 256 MiB;
    the peak resident memory of the process that computes (this one for cpu
    and in-process modal, the worker otherwise) grows by far less."""
    n, e = 8192, 64
    q, k, v = (mt.randn((1, 1, n, e), device=device, seed=s) for s in (1, 2, 3))
    q.sum().item()  # inputs made before the peak is read
    k.sum().item(), v.sum().item()
    remote = device == "modal" and mt.modal.is_remote_execution_enabled()
    pids = _worker_pids() if remote else [os.getpid()]
    if not pids:
        pytest.skip("the worker is not a child of this process")
    before = [_peak_kib(p) for p in pids]
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.shape == (1, 1, n, e)
    assert np.isfinite(out[0, 0, -1].cpu().numpy()).all()
    grown = max(_peak_kib(p) - b for p, b in zip(pids, before))
    assert grown < 64 * 1024, f"peak memory grew by {grown} KiB (an L x S matrix is 262144 KiB)"
