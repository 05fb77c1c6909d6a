#!/usr/bin/python3
"""The mt_bench suite with NumPy, by the same method, one JSON object per line.

Same cases, names, dtypes and shapes as bench/bench_cpu.c; same timing: inputs
made once per case outside the timed region, `warmup` untimed runs, then reps
timed one by one (the op and the release of its result) until the time budget
is spent (at least MIN_REPS, at most MAX_REPS) or exactly --reps times; the
median is reported. The first line describes NumPy and the BLAS it runs on.

Usage: bench_numpy.py [--filter SUBSTR] [--reps N] [--warmup N] [--seconds S]
                      [--quick] [--list]
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np

MIN_REPS = 5
MAX_REPS = 1000
SMALL_BATCH = 1000  # calls per timed rep of the small_ cases, as bench_cpu.c
INPUT_SEED = 1234


def softmax_lastdim(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def layer_norm(x):
    m = x.mean(-1, keepdims=True)
    v = x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5)


def topk(a, k):
    """The k largest along the last dim, sorted, with their indices (torch.topk)."""
    part = np.argpartition(-a, k - 1, axis=-1)[..., :k]
    vals = np.take_along_axis(a, part, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    return np.take_along_axis(vals, order, axis=-1), np.take_along_axis(part, order, axis=-1)


def logsumexp(a):
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def log_softmax_lastdim(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


# Transformer-sized rows as bench_cpu.c: BERT-base at batch 8 x 49 tokens.
TF_ROWS, TF_HIDDEN, TF_MLP, ATT_ROWS, ATT_COLS = 392, 384, 1536, 8 * 6 * 49, 49
VOCAB = 30522


def index_cases(sq, mid, lib):
    """The indexing rows of bench_cpu.c for NumPy (lib "numpy") or PyTorch:
    (name, shapes, fn) with the int64 indices made here, uniform over the
    indexed dim as bench_cpu.c's."""
    rng = np.random.default_rng(INPUT_SEED)
    g_idx = rng.integers(0, sq, (sq, mid), dtype=np.int64)
    s_idx = rng.integers(0, mid, (sq, mid), dtype=np.int64)
    e_idx = rng.integers(0, VOCAB, 8 * TF_ROWS, dtype=np.int64)
    if lib == "numpy":
        rows = np.arange(sq)[:, None]

        def scatter_add(a):
            out = a.copy()
            np.add.at(out, (rows, s_idx), a)
            return out
        gather = lambda a: np.take_along_axis(a, g_idx, 1)
        embed = lambda w: np.take(w, e_idx, axis=0)
    else:
        import torch
        g_t, s_t, e_t = (torch.from_numpy(i) for i in (g_idx, s_idx, e_idx))
        gather = lambda a: torch.gather(a, 1, g_t)
        scatter_add = lambda a: a.scatter_add(1, s_t, a)
        embed = lambda w: torch.nn.functional.embedding(e_t, w)
    # The index's shape is listed so that the rows' shapes read as
    # bench_cpu.c's; the float array made for it goes unused.
    return [
        ("gather_dim1_4096x4096_by_4096x1024", [(sq, sq), (sq, mid)], lambda a, _: gather(a)),
        ("scatter_add_dim1_4096x1024", [(sq, mid), (sq, mid)], lambda a, _: scatter_add(a)),
        ("embedding_30522x384_by_3136", [(VOCAB, TF_HIDDEN), (8 * TF_ROWS,)],
         lambda w, _: embed(w)),
    ]


def make_cases(n, sq, m1, m2):
    """(name, input shapes, op, dtype): the order and names of bench_cpu.c.
    Cases NumPy cannot run (gelu has no NumPy form without scipy, no
    bfloat16) are left out; compare.py shows them as missing on this side."""
    f16 = np.float16
    return [
        ("add_f32_10M", [(n,), (n,)], lambda a, b: a + b),
        ("mul_bcast_4096x4096_by_4096", [(sq, sq), (sq,)], lambda a, b: a * b),
        ("exp_f32_10M", [(n,)], np.exp),
        ("sum_all_f32_10M", [(n,)], lambda a: a.sum()),
        ("sum_dim1_4096x4096", [(sq, sq)], lambda a: a.sum(axis=1)),
        ("softmax_lastdim_4096x4096", [(sq, sq)], softmax_lastdim),
        ("layer_norm_4096x4096", [(sq, sq)], layer_norm),
        ("matmul_f32_1024", [(m1, m1), (m1, m1)], lambda a, b: a @ b),
        ("matmul_f32_2048", [(m2, m2), (m2, m2)], lambda a, b: a @ b),
        ("transpose_contiguous_4096x4096", [(sq, sq)], lambda a: np.ascontiguousarray(a.T)),
        ("cast_f32_to_f16_10M", [(n,)], lambda a: a.astype(np.float16)),
        ("argmax_dim1_4096x4096", [(sq, sq)], lambda a: a.argmax(axis=1)),
        ("sort_f32_1M", [(n // 10,)], lambda a: (np.sort(a, kind="stable"),
                                                  np.argsort(a, kind="stable"))),
        ("sort_lastdim_4096x256", [(sq, sq // 16)], lambda a: (np.sort(a, axis=-1, kind="stable"),
                                                              np.argsort(a, axis=-1, kind="stable"))),
        ("argsort_f32_1M", [(n // 10,)], lambda a: np.argsort(a, kind="stable")),
        ("topk10_lastdim_4096x1024", [(sq, sq // 4)], lambda a: topk(a, 10)),
        ("topk10_f32_10M", [(n,)], lambda a: topk(a, 10)),
        ("cumsum_dim1_4096x4096", [(sq, sq)], lambda a: np.cumsum(a, axis=1)),
        ("var_dim1_4096x4096", [(sq, sq)], lambda a: a.var(axis=1, ddof=1)),
        ("logsumexp_dim1_4096x4096", [(sq, sq)], logsumexp),
        ("max_dim1_4096x4096", [(sq, sq)], lambda a: (a.max(axis=1), a.argmax(axis=1))),
        ("gelu_tanh_392x1536", [(TF_ROWS, TF_MLP)], gelu_tanh),
        ("silu_392x1536", [(TF_ROWS, TF_MLP)], silu),
        ("softmax_2352x49", [(ATT_ROWS, ATT_COLS)], softmax_lastdim),
        ("log_softmax_2352x49", [(ATT_ROWS, ATT_COLS)], log_softmax_lastdim),
        ("log_softmax_4096x4096", [(sq, sq)], log_softmax_lastdim),
        ("layer_norm_392x384", [(TF_ROWS, TF_HIDDEN)], layer_norm),
        ("add_f16_10M", [(n,), (n,)], lambda a, b: a + b, f16),
        ("exp_f16_10M", [(n,)], np.exp, f16),
        ("sum_all_f16_10M", [(n,)], lambda a: a.sum(), f16),
        ("cast_f16_to_f32_10M", [(n,)], lambda a: a.astype(np.float32), f16),
        ("sum_dim1_f16_4096x4096", [(sq, sq)], lambda a: a.sum(axis=1), f16),
        ("small_add_f32_16", [(16,), (16,)], lambda a, b: a + b),
        ("small_view_slice_16", [(16,)], lambda a: a[2:10]),
        ("small_sum_f32_16", [(16,)], lambda a: a.sum()),
        ("small_matmul_f32_8", [(8, 8), (8, 8)], lambda a, b: a @ b),
    ] + index_cases(sq, sq // 4, "numpy")


def loaded_blas_libraries():
    """Paths of the BLAS/LAPACK libraries mapped into this process."""
    paths = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if path.startswith("/") and ("blas" in path or "lapack" in path or "mkl" in path):
                    paths.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(paths)


def openblas_details(paths):
    """OpenBLAS's own account of itself (version, core, threads), if loaded."""
    for path in paths:
        if "openblas" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return {
                "library": path,
                "config": lib.openblas_get_config().decode(),
                "corename": lib.openblas_get_corename().decode(),
                "threads": lib.openblas_get_num_threads(),
            }
        except (OSError, AttributeError):
            continue
    return None


def blas_description():
    """Which BLAS NumPy uses and with how many threads: threadpoolctl when
    it is installed, else the libraries mapped into the process."""
    try:
        from threadpoolctl import threadpool_info
        return {"source": "threadpoolctl", "pools": threadpool_info()}
    except ImportError:
        pass
    paths = loaded_blas_libraries()
    return {"source": "/proc/self/maps", "libraries": paths, "openblas": openblas_details(paths)}


def time_case(fn, inputs, reps, seconds, batch=1):
    """Median and minimum ms per call, and the reps; a rep times `batch`
    calls (small-op cases, as bench_cpu.c)."""
    samples = []
    cap = reps if reps else MAX_REPS
    calls = range(batch)
    start = time.perf_counter()
    while len(samples) < cap:
        t0 = time.perf_counter()
        for _ in calls:
            out = fn(*inputs)
            del out
        t1 = time.perf_counter()
        samples.append((t1 - t0) * 1e3 / batch)
        if not reps and len(samples) >= MIN_REPS and t1 - start >= seconds:
            break
    return statistics.median(samples), min(samples), len(samples)


def shape_text(shapes):
    return "x".join("[" + ",".join(str(d) for d in s) + "]" for s in shapes)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filter", help="run only the cases whose name contains FILTER")
    p.add_argument("--reps", type=int, default=0, help="exactly N timed reps (default: adaptive)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    p.add_argument("--seconds", type=float, default=0.5, help="adaptive time budget per case")
    p.add_argument("--quick", action="store_true", help="scaled-down sizes")
    p.add_argument("--list", action="store_true", help="print the case names and exit")
    args = p.parse_args()
    if args.reps < 0 or args.warmup < 0 or args.seconds < 0:
        p.error("--reps, --warmup and --seconds must not be negative")

    sizes = (100_000, 256, 128, 256) if args.quick else (10_000_000, 4096, 1024, 2048)
    cases = make_cases(*sizes)
    if args.list:
        print("\n".join(c[0] for c in cases))
        return 0

    selected = [(i, c) for i, c in enumerate(cases) if not args.filter or args.filter in c[0]]
    if not selected:
        print(f"bench_numpy.py: no case matches --filter {args.filter!r} (see --list)", file=sys.stderr)
        return 2

    meta = {
        "impl": "numpy",
        "version": np.__version__,
        "python": sys.version.split()[0],
        "quick": args.quick,
        "blas": blas_description(),
    }
    print(json.dumps({"meta": meta}), flush=True)

    for i, (name, shapes, fn, *dtype) in selected:
        rng = np.random.default_rng(INPUT_SEED + i)
        inputs = [rng.standard_normal(s, dtype=np.float32).astype(dtype[0] if dtype else np.float32)
                  for s in shapes]
        for _ in range(max(args.warmup, 1)):
            fn(*inputs)
        batch = SMALL_BATCH if name.startswith("small_") else 1
        median_ms, min_ms, reps = time_case(fn, inputs, args.reps, args.seconds, batch)
        print(json.dumps({"case": name, "shape": shape_text(shapes), "median_ms": round(median_ms, 6),
                          "min_ms": round(min_ms, 6), "reps": reps}), flush=True)
        del inputs
    return 0


if __name__ == "__main__":
    sys.exit(main())
