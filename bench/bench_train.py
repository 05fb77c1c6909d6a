#!/usr/bin/python3
"""Training-step time on cpu: libmodaltensor against PyTorch CPU, same run.

Two models, each written once over a small backend table so both libraries
run the same computation with the same weights:
  decoder  examples/gpt.c's GPT-style decoder (vocabulary 256, width 128,
           4 heads, 4 layers), --batch sequences of 128 tokens, cross-entropy
           over every position, AdamW;
  cnn      examples/python/train_digits.py's CNN (two 3x3 convolutions with
           BatchNorm, ReLU and max pooling, a linear head) on 64 8x8 images,
           AdamW.
A step is forward, backward, optimizer step and zero_grad; the loss is read
each step (torch computes eagerly; this makes ours finish its graph too).
Prints the median ms per step of --reps after --warmup, for both, and the
ratio (torch / ours: > 1 means faster than PyTorch).

With --modal, also runs each model's step on the modal device (a local
worker unless MODALTENSOR_WORKER names one) and prints what a step costs on
the wire, from the client's counters (mt.modal.stats()): round trips, graphs,
nodes, bytes up and down and graph-message bytes per step, and ms per step.

Usage: bench_train.py [--threads N] [--reps N] [--warmup N] [--batch N]
                      [--model decoder|cnn|both] [--modal]
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import modaltensor as mt  # noqa: E402
import modaltensor.nn.functional as MF  # noqa: E402

VOCAB, CONTEXT, DIM, HEADS, LAYERS = 256, 128, 128, 4, 4


def torch_attention(q, k, v):
    """Causal softmax(q k^T / sqrt(d)) v (torch 1.13 has no fused sdpa)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    t = q.shape[-2]
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


BACKENDS = {
    "torch": dict(
        param=lambda a: torch.from_numpy(a.copy()).requires_grad_(),
        data=lambda a: torch.from_numpy(a.copy()),
        F=TF, attention=torch_attention, optim=torch.optim.AdamW),
    "modaltensor": dict(
        param=lambda a: mt.from_numpy(a.copy()).requires_grad_(),
        data=lambda a: mt.from_numpy(a.copy()),
        F=MF, attention=lambda q, k, v: MF.scaled_dot_product_attention(q, k, v, is_causal=True),
        optim=mt.optim.AdamW),
}
BACKENDS["modal"] = dict(
    BACKENDS["modaltensor"],
    param=lambda a: mt.tensor(a, device="modal").requires_grad_(),
    data=lambda a: mt.tensor(a, device="modal"))


def decoder_weights(rng):
    normal = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    ones, zeros = (lambda n: np.ones(n, np.float32)), (lambda n: np.zeros(n, np.float32))
    w = {"tok": normal(VOCAB, DIM), "pos": normal(CONTEXT, DIM), "lnf.w": ones(DIM),
         "lnf.b": zeros(DIM)}
    for l in range(LAYERS):
        for name, shape in [("qkv.w", (3 * DIM, DIM)), ("proj.w", (DIM, DIM)),
                            ("fc1.w", (4 * DIM, DIM)), ("fc2.w", (DIM, 4 * DIM))]:
            w[f"{l}.{name}"] = normal(*shape)
        for name, n in [("qkv.b", 3 * DIM), ("proj.b", DIM), ("fc1.b", 4 * DIM), ("fc2.b", DIM),
                        ("ln1.b", DIM), ("ln2.b", DIM)]:
            w[f"{l}.{name}"] = zeros(n)
        w[f"{l}.ln1.w"], w[f"{l}.ln2.w"] = ones(DIM), ones(DIM)
    return w


def decoder_loss(b, p, ids, targets, positions):
    F = b["F"]
    n, t = ids.shape
    x = F.embedding(ids, p["tok"]) + F.embedding(positions, p["pos"])
    for l in range(LAYERS):
        h = F.layer_norm(x, (DIM,), p[f"{l}.ln1.w"], p[f"{l}.ln1.b"])
        qkv = F.linear(h, p[f"{l}.qkv.w"], p[f"{l}.qkv.b"])
        heads = qkv.reshape(n, t, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        a = b["attention"](heads[0], heads[1], heads[2])
        x = x + F.linear(a.transpose(1, 2).reshape(n, t, DIM), p[f"{l}.proj.w"], p[f"{l}.proj.b"])
        h = F.layer_norm(x, (DIM,), p[f"{l}.ln2.w"], p[f"{l}.ln2.b"])
        up = F.gelu(F.linear(h, p[f"{l}.fc1.w"], p[f"{l}.fc1.b"]))
        x = x + F.linear(up, p[f"{l}.fc2.w"], p[f"{l}.fc2.b"])
    logits = F.linear(F.layer_norm(x, (DIM,), p["lnf.w"], p["lnf.b"]), p["tok"])
    return F.cross_entropy(logits.reshape(n * t, VOCAB), targets.reshape(n * t))


def cnn_weights(rng):
    def uniform(*shape, fan_in):
        bound = 1 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    return {"c1.w": uniform(16, 1, 3, 3, fan_in=9), "c1.b": uniform(16, fan_in=9),
            "n1.w": np.ones(16, np.float32), "n1.b": np.zeros(16, np.float32),
            "c2.w": uniform(32, 16, 3, 3, fan_in=144), "c2.b": uniform(32, fan_in=144),
            "n2.w": np.ones(32, np.float32), "n2.b": np.zeros(32, np.float32),
            "fc.w": uniform(10, 128, fan_in=128), "fc.b": uniform(10, fan_in=128)}


def cnn_loss(b, p, images, labels):
    F = b["F"]
    x = F.conv2d(images, p["c1.w"], p["c1.b"], padding=1)
    x = F.max_pool2d(F.relu(F.batch_norm(x, None, None, p["n1.w"], p["n1.b"], training=True)), 2)
    x = F.conv2d(x, p["c2.w"], p["c2.b"], padding=1)
    x = F.max_pool2d(F.relu(F.batch_norm(x, None, None, p["n2.w"], p["n2.b"], training=True)), 2)
    return F.cross_entropy(F.linear(x.reshape(x.shape[0], -1), p["fc.w"], p["fc.b"]), labels)


def time_steps(loss_fn, params, optim_cls, reps, warmup, after_warmup=lambda: None):
    optimizer = optim_cls(list(params.values()), lr=1e-3)
    times, losses = [], []
    for k in range(warmup + reps):
        if k == warmup:
            after_warmup()
        start = time.perf_counter()
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, losses


def model_inputs(model, args):
    """The weights and the per-backend loss closure of a model."""
    rng = np.random.default_rng(0)
    if model == "decoder":
        weights = decoder_weights(rng)
        ids = rng.integers(0, VOCAB, (args.batch, CONTEXT + 1)).astype(np.int64)
        positions = np.broadcast_to(np.arange(CONTEXT), (args.batch, CONTEXT)).copy()

        def make_loss(b, p):
            x, y, pos = b["data"](ids[:, :-1]), b["data"](ids[:, 1:]), b["data"](positions)
            return lambda: decoder_loss(b, p, x, y, pos)
    else:
        weights = cnn_weights(rng)
        images = rng.random((64, 1, 8, 8), dtype=np.float32)
        labels = rng.integers(0, 10, 64).astype(np.int64)

        def make_loss(b, p):
            x, y = b["data"](images), b["data"](labels)
            return lambda: cnn_loss(b, p, x, y)
    return weights, make_loss


def run(model, args):
    weights, make_loss = model_inputs(model, args)
    results = {}
    for name in ("torch", "modaltensor"):
        b = BACKENDS[name]
        p = {k: b["param"](v) for k, v in weights.items()}
        results[name] = time_steps(make_loss(b, p), p, b["optim"], args.reps, args.warmup)
    ours, theirs = results["modaltensor"][0], results["torch"][0]
    drift = max(abs(a - c) for a, c in zip(results["modaltensor"][1], results["torch"][1]))
    print(f"{model:8s} step: modaltensor {ours:8.2f} ms  torch {theirs:8.2f} ms  "
          f"ratio {theirs / ours:5.2f}x  (losses agree within {drift:.1e})")


def run_modal(model, args):
    """A step's traffic on the modal device, counted after the warmup."""
    weights, make_loss = model_inputs(model, args)
    b = BACKENDS["modal"]
    p = {k: b["param"](v) for k, v in weights.items()}
    loss_fn = make_loss(b, p)
    ms, _ = time_steps(loss_fn, p, b["optim"], args.reps, args.warmup, mt.modal.reset_stats)
    s = {k: v / args.reps for k, v in mt.modal.stats().items()}
    print(f"{model:8s} modal step: {s['round_trips']:.1f} round trips, {s['graphs']:.1f} graphs "
          f"({s['graphs_reused']:.1f} by reference), {s['nodes']:.0f} nodes, "
          f"{s['bytes_up']:.0f} B up, {s['bytes_down']:.0f} B down, "
          f"{s['graph_bytes']:.0f} B of graph messages; {ms:.2f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model", choices=["decoder", "cnn", "both"], default="both")
    parser.add_argument("--modal", action="store_true",
                        help="also count a step's traffic on the modal device")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mt.set_num_threads(args.threads)
    print(f"training steps on cpu, {args.threads} threads, median of {args.reps}")
    for model in (["decoder", "cnn"] if args.model == "both" else [args.model]):
        run(model, args)
        if args.modal:
            run_modal(model, args)


if __name__ == "__main__":
    main()
