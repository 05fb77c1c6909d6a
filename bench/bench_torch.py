#!/usr/bin/python3
"""bench_gpu.c's suite with PyTorch on the same GPU, one line per case.

Same cases, names, dtypes and shapes as bench/bench_gpu.c, same units
(TFLOP/s for matmul, GB/s of bytes read + written otherwise) and the same
method: inputs made once, 2 untimed warm-up ops, then --reps ops enqueued
back to back and timed with CUDA events around them. TF32 follows
torch.backends.cuda.matmul.allow_tf32 per case (f32 cases exact, tf32 cases
allowed), as our mt_set_matmul_tf32. A last line measures the device's copy
bandwidth: a 256 MiB device-to-device copy (read + write), the reference the
memory-bound cases are held to.

Output lines: "case<TAB>value<TAB>unit"; comments start with "#".
Usage: bench_torch.py [--reps N] [--quick]
"""
import argparse
import sys

MIB = 1 << 20


def cases(quick):
    """(name, kind, dtype name, tf32, n, rows) as in bench_gpu.c."""
    mm = [(f"matmul_{tag}_{n}", "matmul", dt, tf32, 256 if quick else n, 0)
          for n in (4096, 8192)
          for tag, dt, tf32 in (("f32", "float32", False), ("tf32", "float32", True),
                                ("bf16", "bfloat16", False))]
    flat = MIB if quick else 64 * MIB
    side = 256 if quick else 8192
    return mm + [
        ("add_256MiB", "add", "float32", False, flat, 0),
        ("softmax_8192x8192", "softmax", "float32", False, side, side),
        ("layer_norm_8192x8192", "layer_norm", "float32", False, side, side),
        ("sum_256MiB", "sum", "float32", False, flat, 0),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("bench_torch.py: PyTorch is not installed (pip install torch)")
    if not torch.cuda.is_available():
        sys.exit("bench_torch.py: PyTorch sees no CUDA device")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    p = torch.cuda.get_device_properties(dev)
    print(f"# device\t{p.name}\ttorch {torch.__version__}, CUDA {torch.version.cuda}")

    def timed(fn, reps):
        for _ in range(2):
            fn()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3 / reps

    for name, kind, dt, tf32, n, rows in cases(args.quick):
        dtype = getattr(torch, dt)
        torch.backends.cuda.matmul.allow_tf32 = tf32
        if kind == "matmul":
            a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
            s = timed(lambda: torch.matmul(a, b), args.reps)
            print(f"{name}\t{2.0 * n ** 3 / s * 1e-12:.3f}\tTFLOP/s")
            continue
        shape = (rows, n) if rows else (n,)
        x = torch.randn(*shape, device=dev, dtype=dtype)
        nbytes = x.numel() * x.element_size()
        if kind == "add":
            y = torch.randn(*shape, device=dev, dtype=dtype)
            s, moved = timed(lambda: x + y, args.reps), 3 * nbytes
        elif kind == "softmax":
            s, moved = timed(lambda: torch.softmax(x, -1), args.reps), 2 * nbytes
        elif kind == "layer_norm":
            w = torch.randn(n, device=dev, dtype=dtype)
            b = torch.randn(n, device=dev, dtype=dtype)
            s = timed(lambda: torch.nn.functional.layer_norm(x, (n,), w, b, 1e-5), args.reps)
            moved = 2 * nbytes
        else:
            s, moved = timed(lambda: x.sum(), args.reps), nbytes
        print(f"{name}\t{moved / s * 1e-9:.3f}\tGB/s")
    torch.backends.cuda.matmul.allow_tf32 = False

    src = torch.empty((MIB if args.quick else 64 * MIB,), device=dev, dtype=torch.float32)
    dst = torch.empty_like(src)
    s = timed(lambda: dst.copy_(src), args.reps)
    print(f"copy_d2d_256MiB\t{2 * src.numel() * 4 / s * 1e-9:.3f}\tGB/s")


if __name__ == "__main__":
    main()
