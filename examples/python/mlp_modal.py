"""Train a two-layer perceptron on the modal device, gradients by hand.

The task: three interleaved spirals in the plane (made with NumPy), one class
per arm. The model: logits = relu(x @ W1 + b1) @ W2 + b2, trained by full-batch
gradient descent on the cross-entropy loss. Every tensor of the training loop
lives on the device; only the loss and accuracy come back to print.

Usage: python3 examples/python/mlp_modal.py [--device modal|cpu] [--steps N]
                                            [--in-process]
  --in-process  run modal tensors in this process instead of in a worker
                (also chosen when no worker answers)
Exits 0 when the final training accuracy exceeds 90%, 1 otherwise.
"""

import argparse
import os
import sys
import time

import numpy as np

try:
    import modaltensor as mt
except ImportError:  # a source checkout: use the package next to this file's repo
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import modaltensor as mt

CLASSES = 3
HIDDEN = 64
POINTS_PER_CLASS = 200


def spirals(seed=0):
    """Points (N, 2) float32 and labels (N,) int64 of interleaved spirals."""
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for arm in range(CLASSES):
        radius = np.linspace(0.05, 1.0, POINTS_PER_CLASS)
        angle = np.linspace(arm * 4.0, arm * 4.0 + 4.0, POINTS_PER_CLASS)
        angle += rng.normal(scale=0.2, size=POINTS_PER_CLASS)
        points.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        labels.append(np.full(POINTS_PER_CLASS, arm))
    return np.concatenate(points).astype(np.float32), np.concatenate(labels).astype(np.int64)


def init(device):
    """He-initialised weights from the library's seeded generator."""
    w1 = mt.randn(2, HIDDEN, seed=1, device=device) * (2.0 / 2) ** 0.5
    w2 = mt.randn(HIDDEN, CLASSES, seed=2, device=device) * (2.0 / HIDDEN) ** 0.5
    return [w1, mt.zeros(HIDDEN, device=device), w2, mt.zeros(CLASSES, device=device)]


def step(params, x, onehot, learning_rate):
    """One gradient-descent step in place; returns the loss (a 0-d tensor)."""
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    hidden = pre.relu()
    logits = hidden @ w2 + b2
    count = x.shape[0]
    loss = -(logits.log_softmax(-1) * onehot).sum() / count
    grad_logits = (logits.softmax(-1) - onehot) / count
    grad_hidden = (grad_logits @ w2.T) * (pre > 0)
    grads = [x.T @ grad_hidden, grad_hidden.sum(0), hidden.T @ grad_logits, grad_logits.sum(0)]
    for param, grad in zip(params, grads):
        param -= learning_rate * grad            # in place: the tensors stay on the device
    return loss


def accuracy(params, x, labels):
    w1, b1, w2, b2 = params
    logits = (x @ w1 + b1).relu() @ w2 + b2
    return (logits.argmax(dim=1) == labels).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="modal")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()

    if args.in_process or (args.device.startswith("modal") and not mt.modal.is_available()):
        if not args.in_process:
            print("no worker answers: modal tensors run in-process")
        mt.modal.disable_remote_execution()

    points, labels = spirals()
    x = mt.tensor(points, device=args.device)
    y = mt.tensor(labels, device=args.device)
    onehot = (y.unsqueeze(1) == mt.arange(CLASSES, device=args.device)).float()
    params = init(args.device)

    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(params, x, onehot, learning_rate=1.0)
        if i % (args.steps // 5 or 1) == 0 or i == args.steps - 1:
            print(f"step {i:5d}  loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start
    final = accuracy(params, x, y)
    print(f"device {x.device}: {args.steps} steps in {elapsed:.2f} s, "
          f"training accuracy {final:.1%}")
    return 0 if final > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
