#!/usr/bin/python3
"""conv2d forward and backward on cpu: libmodaltensor against PyTorch CPU, same run.

The shapes of bench_train.py's CNN (64 8x8 images, 3x3 kernels, padding 1):
conv 1 -> 16 channels and 16 -> 32 channels. Times the forward (F.conv2d
with bias) and the backward alone (the input's and the weight's gradients
of sum(y * dy): a forward is recorded outside the timed region for each
backward), as the median of --reps after --warmup, and prints the ratio
(torch / ours: > 1 means faster than PyTorch).

Usage: bench_conv.py [--threads N] [--reps N] [--warmup N]
"""
import argparse
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

SHAPES = [("conv 1->16", (64, 1, 8, 8), (16, 1, 3, 3)),
          ("conv 16->32", (64, 16, 8, 8), (32, 16, 3, 3))]


def median_ms(fn, reps, warmup, setup=None):
    times = []
    for k in range(warmup + reps):
        state = setup() if setup else None
        start = time.perf_counter()
        fn(state)
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def forward_ms(lib, F, x, w, b, reps, warmup):
    def run(_):
        y = F.conv2d(x, w, b, padding=1)
        if lib == "mt":
            y.numpy()  # finish like torch does (one read of the output)
    return median_ms(run, reps, warmup)


def backward_ms(lib, F, x, w, b, dy, reps, warmup):
    def setup():
        x.grad = w.grad = None
        return F.conv2d(x, w, b, padding=1)

    def run(y):
        y.backward(dy)
        if lib == "mt":
            w.grad.numpy()
    return median_ms(run, reps, warmup, setup)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mt.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"conv2d on cpu, {args.threads} threads, median of {args.reps} (ms)")
    for name, xs, ws in SHAPES:
        xv = rng.standard_normal(xs).astype(np.float32)
        wv = rng.standard_normal(ws).astype(np.float32)
        bv = rng.standard_normal(ws[0]).astype(np.float32)
        dyv = rng.standard_normal((xs[0], ws[0], xs[2], xs[3])).astype(np.float32)
        res = {}
        for lib, F, make in [("torch", TF, torch.from_numpy), ("mt", MF, mt.from_numpy)]:
            x, w, b, dy = (make(v.copy()) for v in (xv, wv, bv, dyv))
            fwd = forward_ms(lib, F, x, w, b, args.reps, args.warmup)
            x.requires_grad_()
            w.requires_grad_()
            bwd = backward_ms(lib, F, x, w, b, dy, args.reps, args.warmup)
            res[lib] = (fwd, bwd)
        (tf, tb), (mf, mb) = res["torch"], res["mt"]
        print(f"{name:12s} forward: modaltensor {mf:7.3f} torch {tf:7.3f} ratio {tf / mf:5.2f}x"
              f" | backward: modaltensor {mb:7.3f} torch {tb:7.3f} ratio {tb / mb:5.2f}x")


if __name__ == "__main__":
    main()
