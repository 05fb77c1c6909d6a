"""Train a two-layer perceptron on the modal device with autograd.

The task: three interleaved spirals in the plane (made with NumPy), one class
per arm. The model: mt.nn.Sequential(Linear(2, 64), ReLU(), Linear(64, 3)),
trained by full-batch gradient descent (mt.optim.SGD) on the cross-entropy
loss; the gradients come from loss.backward(). Every tensor of the training
loop lives on the device, and the update runs there too; only the loss and
accuracy come back to print.

Usage: python3 examples/python/mlp_modal.py [--device modal|cpu] [--steps N]
                                            [--in-process]
  --in-process  run modal tensors in this process instead of in a worker
                (also chosen when no worker answers)
Exits 0 when the final loss is below 0.3 and the training accuracy exceeds
90%, 1 otherwise.
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
from modaltensor import nn
from modaltensor.nn import functional as F

CLASSES = 3
HIDDEN = 64
POINTS_PER_CLASS = 200
LOSS_BELOW = 0.3         # what the run must reach (the CTest case checks the exit status)
ACCURACY_ABOVE = 0.9


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


def build(device):
    """The model, initialised as torch does (from the library's seeded
    generator, so every run starts from the same weights)."""
    mt.manual_seed(0)
    return nn.Sequential(nn.Linear(2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES)).to(device)


def step(model, optimizer, x, y):
    """One gradient-descent step in place; returns the loss (a 0-d tensor)."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()    # the backward is recorded on the device, after the forward
    optimizer.step()   # one fused update per parameter, in place on the device
    return loss


def accuracy(model, x, labels):
    with mt.no_grad():
        return (model(x).argmax(dim=1) == labels).float().mean().item()


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
    model = build(args.device)
    optimizer = mt.optim.SGD(model.parameters(), lr=1.0)

    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(model, optimizer, x, y)
        if i % (args.steps // 5 or 1) == 0 or i == args.steps - 1:
            print(f"step {i:5d}  loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start
    with mt.no_grad():
        final_loss = F.cross_entropy(model(x), y).item()
    final = accuracy(model, x, y)
    print(f"device {x.device}: {args.steps} steps in {elapsed:.2f} s, "
          f"final loss {final_loss:.4f}, training accuracy {final:.1%}")
    if final_loss < LOSS_BELOW and final > ACCURACY_ABOVE:
        print(f"ok: loss below {LOSS_BELOW} and accuracy above {ACCURACY_ABOVE:.0%}")
        return 0
    print(f"FAILED: expected loss below {LOSS_BELOW} and accuracy above {ACCURACY_ABOVE:.0%}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
