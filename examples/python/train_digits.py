"""Train a small CNN on scikit-learn's digits on the modal device, with autograd.

The data: the 1,797 8x8 images of handwritten digits that ship with
scikit-learn (no download), split 80/20 into training and test sets. The
model, in mt.nn: two 3x3 convolutions (16 and 32 channels) with BatchNorm,
ReLU and 2x2 max pooling, then a linear layer to the 10 classes, trained with
mt.optim.AdamW on minibatches. The images live on the device; each step
uploads only its batch's indices, and records forward, backward and update
into one lazy graph; the loss comes back once per epoch.

Usage: python3 examples/python/train_digits.py [--device modal|cpu] [--epochs N]
                                               [--in-process]
  --in-process  run modal tensors in this process instead of in a worker
Exits 0 when the test accuracy reaches 95%, 1 otherwise.
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

BATCH = 64
TARGET_ACCURACY = 0.95


def digits(seed=0):
    """(train_x, train_y, test_x, test_y): images [N, 1, 8, 8] float32 in [0, 1]."""
    from sklearn.datasets import load_digits
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return images[train], labels[train], images[test], labels[test]


class DigitNet(nn.Module):
    def __init__(self, device):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, device=device)
        self.norm1 = nn.BatchNorm2d(16, device=device)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, device=device)
        self.norm2 = nn.BatchNorm2d(32, device=device)
        self.head = nn.Linear(32 * 2 * 2, 10, device=device)

    def forward(self, x):
        F = nn.functional
        x = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)  # [N, 16, 4, 4]
        x = F.max_pool2d(F.relu(self.norm2(self.conv2(x))), 2)  # [N, 32, 2, 2]
        return self.head(x.reshape(x.shape[0], -1))


def accuracy(model, x, y):
    """Fraction of x's images classified as y (one read)."""
    model.eval()
    with mt.no_grad():
        predicted = model(x).argmax(dim=1).numpy()
    model.train()
    return float((predicted == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="modal")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    if args.in_process or (args.device.startswith("modal") and not mt.modal.is_available()):
        if not args.in_process:
            print("no worker answers: modal tensors run in-process")
        mt.modal.disable_remote_execution()
    device = args.device
    train_x, train_y, test_x, test_y = digits()
    images = mt.tensor(train_x, device=device)
    labels = mt.tensor(train_y, device=device)
    test_images = mt.tensor(test_x, device=device)

    model = DigitNet(device)
    optimizer = mt.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train_y))
        losses = []
        for first in range(0, len(order), BATCH):
            index = mt.tensor(order[first:first + BATCH], device=device)
            loss = nn.functional.cross_entropy(model(images.index_select(0, index)),
                                               labels.index_select(0, index))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss)
        mean_loss = mt.stack(losses).mean().item()  # the epoch's one read
        print(f"epoch {epoch:2d}  loss {mean_loss:.4f}")
    elapsed = time.perf_counter() - start
    test_accuracy = accuracy(model, test_images, test_y)
    print(f"test accuracy {test_accuracy:.3f} on {len(test_y)} images "
          f"({elapsed:.1f} s of training on {args.device})")
    return 0 if test_accuracy >= TARGET_ACCURACY else 1


if __name__ == "__main__":
    sys.exit(main())
