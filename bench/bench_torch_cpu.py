#!/usr/bin/python3
"""The mt_bench suite with PyTorch on the cpu, by bench_numpy.py's method,
one JSON object per line (plus the BERT-style forward of bench_bert.c and the
neural-network rows of bench_nn.c).

Same case names and shapes as bench/bench_cpu.c; a case PyTorch cannot run
(an op it lacks for a dtype on the cpu) is reported on stderr and left out.
The thread count is torch.set_num_threads(--threads), which scripts/bench.sh
sets to libmodaltensor's count, and is stated in the first line.

Usage: bench_torch_cpu.py --threads N [--filter SUBSTR] [--reps N]
                          [--warmup N] [--seconds S] [--quick] [--no-bert]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_numpy as harness  # noqa: E402  (timing and shape text, shared)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TF_ROWS, TF_HIDDEN, TF_MLP = harness.TF_ROWS, harness.TF_HIDDEN, harness.TF_MLP
ATT_ROWS, ATT_COLS = harness.ATT_ROWS, harness.ATT_COLS


def make_cases(n, sq, m1, m2):
    """(name, input shapes, op, dtype) as bench_cpu.c."""
    f16, bf16 = torch.float16, torch.bfloat16
    return [
        ("add_f32_10M", [(n,), (n,)], torch.add),
        ("mul_bcast_4096x4096_by_4096", [(sq, sq), (sq,)], torch.mul),
        ("exp_f32_10M", [(n,)], torch.exp),
        ("sum_all_f32_10M", [(n,)], torch.sum),
        ("sum_dim1_4096x4096", [(sq, sq)], lambda a: a.sum(1)),
        ("softmax_lastdim_4096x4096", [(sq, sq)], lambda a: torch.softmax(a, -1)),
        ("layer_norm_4096x4096", [(sq, sq)], lambda a: F.layer_norm(a, a.shape[-1:], eps=1e-5)),
        ("matmul_f32_1024", [(m1, m1), (m1, m1)], torch.matmul),
        ("matmul_f32_2048", [(m2, m2), (m2, m2)], torch.matmul),
        ("transpose_contiguous_4096x4096", [(sq, sq)], lambda a: a.t().contiguous()),
        ("cast_f32_to_f16_10M", [(n,)], lambda a: a.to(torch.float16)),
        ("argmax_dim1_4096x4096", [(sq, sq)], lambda a: a.argmax(1)),
        ("sort_f32_1M", [(n // 10,)], lambda a: torch.sort(a, stable=True)),
        ("sort_lastdim_4096x256", [(sq, sq // 16)], lambda a: torch.sort(a, dim=-1, stable=True)),
        ("argsort_f32_1M", [(n // 10,)], lambda a: torch.argsort(a, stable=True)),
        ("topk10_lastdim_4096x1024", [(sq, sq // 4)], lambda a: torch.topk(a, 10)),
        ("topk10_f32_10M", [(n,)], lambda a: torch.topk(a, 10)),
        ("cumsum_dim1_4096x4096", [(sq, sq)], lambda a: torch.cumsum(a, 1)),
        ("var_dim1_4096x4096", [(sq, sq)], lambda a: torch.var(a, 1)),
        ("logsumexp_dim1_4096x4096", [(sq, sq)], lambda a: torch.logsumexp(a, 1)),
        ("max_dim1_4096x4096", [(sq, sq)], lambda a: torch.max(a, 1)),
        ("gelu_392x1536", [(TF_ROWS, TF_MLP)], F.gelu),
        ("gelu_tanh_392x1536", [(TF_ROWS, TF_MLP)], lambda a: F.gelu(a, approximate="tanh")),
        ("silu_392x1536", [(TF_ROWS, TF_MLP)], F.silu),
        ("gelu_f32_10M", [(n,)], F.gelu),
        ("softmax_2352x49", [(ATT_ROWS, ATT_COLS)], lambda a: torch.softmax(a, -1)),
        ("log_softmax_2352x49", [(ATT_ROWS, ATT_COLS)], lambda a: torch.log_softmax(a, -1)),
        ("log_softmax_4096x4096", [(sq, sq)], lambda a: torch.log_softmax(a, -1)),
        ("layer_norm_392x384", [(TF_ROWS, TF_HIDDEN)],
         lambda a: F.layer_norm(a, a.shape[-1:], eps=1e-5)),
        ("add_f16_10M", [(n,), (n,)], torch.add, f16),
        ("add_bf16_10M", [(n,), (n,)], torch.add, bf16),
        ("exp_f16_10M", [(n,)], torch.exp, f16),
        ("sum_all_f16_10M", [(n,)], torch.sum, f16),
        ("sum_all_bf16_10M", [(n,)], torch.sum, bf16),
        ("gelu_bf16_392x1536", [(TF_ROWS, TF_MLP)], F.gelu, bf16),
        ("mul_bf16_10M", [(n,), (n,)], torch.mul, bf16),
        ("exp_bf16_10M", [(n,)], torch.exp, bf16),
        ("cast_f32_to_bf16_10M", [(n,)], lambda a: a.to(torch.bfloat16)),
        ("cast_f16_to_f32_10M", [(n,)], lambda a: a.to(torch.float32), f16),
        ("sum_dim1_f16_4096x4096", [(sq, sq)], lambda a: a.sum(1), f16),
        ("sum_dim1_bf16_4096x4096", [(sq, sq)], lambda a: a.sum(1), bf16),
        ("softmax_lastdim_bf16_4096x4096", [(sq, sq)], lambda a: torch.softmax(a, -1), bf16),
        ("matmul_bf16_1024", [(m1, m1), (m1, m1)], torch.matmul, bf16),
        ("small_add_f32_16", [(16,), (16,)], torch.add),
        ("small_view_slice_16", [(16,)], lambda a: a[2:10]),
        ("small_sum_f32_16", [(16,)], torch.sum),
        ("small_matmul_f32_8", [(8, 8), (8, 8)], torch.matmul),
    ] + harness.index_cases(sq, sq // 4, "torch")


def attention_reference(q, k, v, causal):
    """torch 1.13 has no F.scaled_dot_product_attention: softmax(q k^T / sqrt(E)) v,
    the L x S scores materialised, as models written for it compute it."""
    scores = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5)
    if causal:
        length = q.shape[-2]
        mask = torch.ones(length, k.shape[-2], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return scores.softmax(-1) @ v


def nn_cases(quick):
    """bench_nn.c's rows: (name, shape text, inputs, fn)."""
    b, hw, ch = (2, 8, 8) if quick else (8, 56, 64)
    heads, length, feat = (2, 32, 64) if quick else (12, 512, 4096)
    vocab, rows = (1000, 16) if quick else (32000, 512)
    r = torch.randn
    qkv = [(b, heads, length, 64)] * 3
    return [
        ("linear_64x4096_by_4096x4096", "[64,64]" if quick else "[64,4096]x[4096,4096]",
         [r(64, feat), r(feat, feat), r(feat)], F.linear),
        ("conv2d_3x3_8x64x56x56", "[2,8,8,8]" if quick else "[8,64,56,56]x[64,64,3,3]",
         [r(b, ch, hw, hw), r(ch, ch, 3, 3), r(ch)], lambda x, w, c: F.conv2d(x, w, c, padding=1)),
        ("sdpa_8x12x512x64", "[2,2,32,64]" if quick else "[8,12,512,64]", [r(*s) for s in qkv],
         lambda q, k, v: attention_reference(q, k, v, False)),
        ("sdpa_causal_8x12x512x64", "[2,2,32,64]" if quick else "[8,12,512,64]",
         [r(*s) for s in qkv], lambda q, k, v: attention_reference(q, k, v, True)),
        ("cross_entropy_512x32000", "[16,1000]" if quick else "[512,32000]",
         [r(rows, vocab), torch.randint(0, vocab, (rows,))], F.cross_entropy),
        ("rms_norm_392x384", "[392,384]", [r(392, 384), r(384)],
         lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w),
    ]


def bert_forward(reps, quick):
    """bench_bert.c's model: median ms of `reps` forwards (no autograd)."""
    hidden, heads, layers, batch, tokens, vocab = 384, 6, 1 if quick else 6, 8, 49, 8192
    g = torch.Generator().manual_seed(1)

    def w(*shape, shift=0.0):
        return torch.randn(*shape, generator=g) * 0.02 + shift

    tok, pos = w(vocab, hidden), w(batch * tokens, hidden)
    ids = torch.arange(batch * tokens) * 7919 % vocab
    params = [[w(hidden, 3 * hidden), w(3 * hidden), w(hidden, hidden), w(hidden),
               w(hidden, 4 * hidden), w(4 * hidden), w(4 * hidden, hidden), w(hidden),
               w(hidden, shift=1.0), w(hidden), w(hidden, shift=1.0), w(hidden)]
              for _ in range(layers)]

    def forward():
        x = tok[ids] + pos
        for wqkv, bqkv, wo, bo, w1, b1, w2, b2, g1, n1, g2, n2 in params:
            qkv = (x @ wqkv + bqkv).view(batch, tokens, 3, heads, hidden // heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            p = torch.softmax(q @ k.transpose(2, 3) * 0.125, -1)
            ctx = (p @ v).permute(0, 2, 1, 3).reshape(batch * tokens, hidden)
            x = F.layer_norm(x + ctx @ wo + bo, (hidden,), g1, n1, 1e-5)
            x = F.layer_norm(x + F.gelu(x @ w1 + b1) @ w2 + b2, (hidden,), g2, n2, 1e-5)
        return x

    with torch.no_grad():
        forward()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            forward()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), reps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--filter")
    p.add_argument("--reps", type=int, default=0)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-bert", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(harness.INPUT_SEED)
    meta = {"impl": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
            "quick": args.quick}
    print(json.dumps({"meta": meta}), flush=True)
    sizes = (100_000, 256, 128, 256) if args.quick else (10_000_000, 4096, 1024, 2048)
    with torch.no_grad():
        for name, shapes, fn, *dtype in make_cases(*sizes):
            if args.filter and args.filter not in name:
                continue
            inputs = [torch.randn(*s).to(dtype[0] if dtype else torch.float32) for s in shapes]
            try:
                for _ in range(max(args.warmup, 1)):
                    fn(*inputs)
            except RuntimeError as e:
                print(f"bench_torch_cpu.py: {name}: {e}", file=sys.stderr)
                continue
            batch = harness.SMALL_BATCH if name.startswith("small_") else 1
            median_ms, min_ms, reps = harness.time_case(fn, inputs, args.reps, args.seconds, batch)
            print(json.dumps({"case": name, "shape": harness.shape_text(shapes),
                              "median_ms": round(median_ms, 6), "min_ms": round(min_ms, 6),
                              "reps": reps}), flush=True)
    with torch.no_grad():
        for name, shape, inputs, fn in nn_cases(args.quick):
            if args.filter and args.filter not in name:
                continue
            for _ in range(max(args.warmup, 1)):
                fn(*inputs)
            median_ms, min_ms, reps = harness.time_case(fn, inputs, args.reps, args.seconds, 1)
            print(json.dumps({"case": name, "shape": shape, "median_ms": round(median_ms, 6),
                              "min_ms": round(min_ms, 6), "reps": reps}), flush=True)
    if not args.no_bert and (not args.filter or args.filter in "bert_forward_6x384_8x49"):
        median_ms, min_ms, reps = bert_forward(1 if args.quick else max(args.reps, 10), args.quick)
        print(json.dumps({"case": "bert_forward_6x384_8x49", "shape": "[8,49]",
                          "median_ms": round(median_ms, 6), "min_ms": round(min_ms, 6),
                          "reps": reps}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
