#!/usr/bin/python3
"""examples/gpt.c's decoder in PyTorch (cpu), for its tokens/s: the same
sizes (vocabulary 256, 128 positions, width 128, 4 heads, 4 layers), the same
KV cache written in place, top-40 sampling, 48 tokens after the same prompt,
one warm-up generation, then the median of --reps timed ones.

Usage: bench_gpt_torch.py [--threads N] [--tokens N] [--reps N] [--no-cache]
Compare with: build/examples/gpt --device cpu [--no-cache]
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

VOCAB, CONTEXT, DIM, HEADS, LAYERS, TOP_K = 256, 128, 128, 4, 4, 40


def weights(seed=7):
    g = torch.Generator().manual_seed(seed)
    normal = lambda *shape: torch.randn(*shape, generator=g) * 0.02
    layers = [{"ln1": (torch.ones(DIM), torch.zeros(DIM)), "ln2": (torch.ones(DIM), torch.zeros(DIM)),
               "qkv": (normal(3 * DIM, DIM), torch.zeros(3 * DIM)),
               "proj": (normal(DIM, DIM), torch.zeros(DIM)),
               "fc1": (normal(4 * DIM, DIM), torch.zeros(4 * DIM)),
               "fc2": (normal(DIM, 4 * DIM), torch.zeros(DIM))} for _ in range(LAYERS)]
    return {"tok": normal(VOCAB, DIM), "pos": normal(CONTEXT, DIM), "layers": layers,
            "lnf": (torch.ones(DIM), torch.zeros(DIM))}


def attention(q, k, v, causal):
    """softmax(q k^T / sqrt(d)) v over heads (torch 1.13 has no fused sdpa)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[-2]
        scores = scores.masked_fill(torch.ones(t, k.shape[-2], dtype=torch.bool).triu(1),
                                    float("-inf"))
    return scores.softmax(-1) @ v


def forward(w, cache, ids, pos):
    t = ids.shape[0]
    x = w["tok"][ids] + w["pos"][pos:pos + t]
    for i, y in enumerate(w["layers"]):
        h = F.layer_norm(x, (DIM,), *y["ln1"])
        q, k, v = (z.reshape(t, HEADS, -1).transpose(0, 1)
                   for z in F.linear(h, *y["qkv"]).split(DIM, dim=-1))
        if cache is not None:
            cache[0][i][:, pos:pos + t] = k
            cache[1][i][:, pos:pos + t] = v
            k, v = cache[0][i][:, :pos + t], cache[1][i][:, :pos + t]
        a = attention(q, k, v, t > 1).transpose(0, 1).reshape(t, DIM)
        x = x + F.linear(a, *y["proj"])
        h = F.layer_norm(x, (DIM,), *y["ln2"])
        x = x + F.linear(F.gelu(F.linear(h, *y["fc1"])), *y["fc2"])
    last = F.layer_norm(x[-1:], (DIM,), *w["lnf"])
    return F.linear(last, w["tok"])


def generate(w, prompt, tokens, use_cache, seed=7):
    cache = ([torch.zeros(HEADS, CONTEXT, DIM // HEADS) for _ in range(LAYERS)],
             [torch.zeros(HEADS, CONTEXT, DIM // HEADS) for _ in range(LAYERS)]) \
        if use_cache else None
    seq = torch.zeros(CONTEXT, dtype=torch.int64)
    n = len(prompt)
    seq[:n] = torch.tensor(prompt)
    g = torch.Generator().manual_seed(seed)
    for length in range(n, n + tokens):
        prefill = not use_cache or length == n
        pos, t = (0, length) if prefill else (length - 1, 1)
        values, indices = forward(w, cache, seq[pos:pos + t], pos).topk(TOP_K)
        pick = torch.multinomial(values.softmax(-1), 1, generator=g)
        seq[length] = indices.gather(1, pick)[0, 0]
    return seq[n:n + tokens].tolist()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-cache", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    w, prompt = weights(), list(b"Hello, modal")
    with torch.no_grad():
        generate(w, prompt, args.tokens, not args.no_cache)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            generate(w, prompt, args.tokens, not args.no_cache)
            times.append(time.perf_counter() - t0)
    elapsed = statistics.median(times)
    print(f"torch {torch.__version__}, {args.threads} threads: {args.tokens} tokens in "
          f"{elapsed * 1e3:.1f} ms ({args.tokens / elapsed:.0f} tokens/s, "
          f"{'no cache' if args.no_cache else 'KV cache'})")


if __name__ == "__main__":
    main()
