"""A GPT-style decoder with modaltensor: token and position embeddings, causal
multi-head attention with a KV cache, GELU MLPs, layer norms and an output
head tied to the token embedding. Generates bytes from a prompt with top-k
sampling; the weights are random (std 0.02, as GPT-2 initialises them) from a
seed, so the text is noise, the same on every device.

    python3 gpt.py [--device cpu|modal] [--tokens N] [--no-cache] [--in-process]

The model is also what python/tests/test_models.py checks against PyTorch.
"""

import argparse
import time

import numpy as np

import modaltensor as mt
import modaltensor.nn.functional as F

CONFIG = {"vocab": 256, "context": 128, "dim": 128, "heads": 4, "layers": 4}


def random_weights(seed, vocab, context, dim, heads, layers):
    """The model's weights as float32 NumPy arrays (loadable by PyTorch too)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    ones, zeros = (lambda n: np.ones(n, np.float32)), (lambda n: np.zeros(n, np.float32))
    w = {"tok_emb": normal(vocab, dim), "pos_emb": normal(context, dim),
         "lnf.w": ones(dim), "lnf.b": zeros(dim)}
    for i in range(layers):
        w.update({f"{i}.ln1.w": ones(dim), f"{i}.ln1.b": zeros(dim),
                  f"{i}.ln2.w": ones(dim), f"{i}.ln2.b": zeros(dim),
                  f"{i}.qkv.w": normal(3 * dim, dim), f"{i}.qkv.b": normal(3 * dim),
                  f"{i}.proj.w": normal(dim, dim), f"{i}.proj.b": normal(dim),
                  f"{i}.fc1.w": normal(4 * dim, dim), f"{i}.fc1.b": normal(4 * dim),
                  f"{i}.fc2.w": normal(dim, 4 * dim), f"{i}.fc2.b": normal(dim)})
    return w


class GPT:
    """The decoder on one device; the KV cache is preallocated per layer as
    [heads, context, dim / heads] and written in place (copy_ into a slice)."""

    def __init__(self, weights, config, device="cpu"):
        self.c = dict(config)
        self.w = {name: mt.tensor(value, device=device) for name, value in weights.items()}
        self.device = device
        heads, context, dim = self.c["heads"], self.c["context"], self.c["dim"]
        shape = (heads, context, dim // heads)
        self.k_cache = [mt.zeros(shape, device=device) for _ in range(self.c["layers"])]
        self.v_cache = [mt.zeros(shape, device=device) for _ in range(self.c["layers"])]

    def _heads(self, x):
        t = x.shape[0]
        return x.reshape(t, self.c["heads"], -1).transpose(0, 1)

    def _attention(self, i, h, pos, use_cache):
        w, dim, t = self.w, self.c["dim"], h.shape[0]
        qkv = F.linear(h, w[f"{i}.qkv.w"], w[f"{i}.qkv.b"])
        q, k, v = (self._heads(qkv[:, j * dim:(j + 1) * dim]) for j in range(3))
        if use_cache:
            self.k_cache[i][:, pos:pos + t].copy_(k)
            self.v_cache[i][:, pos:pos + t].copy_(v)
            k, v = self.k_cache[i][:, :pos + t], self.v_cache[i][:, :pos + t]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        return F.linear(a.transpose(0, 1).reshape(t, dim), w[f"{i}.proj.w"], w[f"{i}.proj.b"])

    def forward(self, ids, pos=0, use_cache=False):
        """Logits [T, vocab] of the T tokens ids (int64 [T]) at positions
        pos..pos+T-1. With the cache, pos > 0 takes one token at a time (the
        causal mask is aligned to the first query)."""
        w, t = self.w, ids.shape[0]
        positions = mt.arange(pos, pos + t, dtype="int64", device=self.device)
        x = F.embedding(ids, w["tok_emb"]) + F.embedding(positions, w["pos_emb"])
        for i in range(self.c["layers"]):
            h = mt.layer_norm(x, w[f"{i}.ln1.w"], w[f"{i}.ln1.b"])
            x = x + self._attention(i, h, pos, use_cache)
            h = mt.layer_norm(x, w[f"{i}.ln2.w"], w[f"{i}.ln2.b"])
            up = F.gelu(F.linear(h, w[f"{i}.fc1.w"], w[f"{i}.fc1.b"]))
            x = x + F.linear(up, w[f"{i}.fc2.w"], w[f"{i}.fc2.b"])
        return F.linear(mt.layer_norm(x, w["lnf.w"], w["lnf.b"]), w["tok_emb"])

    def generate(self, prompt, tokens, top_k=40, seed=7, use_cache=True):
        """tokens ids drawn after the prompt (a list of ints). The sequence
        stays on the device and is read once at the end."""
        n = len(prompt)
        seq = mt.zeros(self.c["context"], dtype="int64", device=self.device)
        seq[:n].copy_(mt.tensor(np.array(prompt, dtype=np.int64), device=self.device))
        for length in range(n, n + tokens):
            prefill = not use_cache or length == n
            pos, t = (0, length) if prefill else (length - 1, 1)
            logits = self.forward(seq[pos:pos + t], pos, use_cache)[-1:]
            values, indices = logits.topk(top_k)
            pick = F.softmax(values, dim=-1).multinomial(1, seed=seed * 1000003 + length)
            seq[length:length + 1].copy_(indices.gather(1, pick).reshape(1))
        return [int(v) for v in seq[n:n + tokens].cpu().numpy()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--prompt", default="Hello, modal")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--in-process", action="store_true",
                        help="run modal tensors in this process instead of in a worker")
    args = parser.parse_args()
    if args.in_process:
        mt.modal.disable_remote_execution()
    model = GPT(random_weights(7, **CONFIG), CONFIG, args.device)
    prompt = list(args.prompt.encode())
    model.generate(prompt, args.tokens, use_cache=not args.no_cache)  # warm-up
    start = time.perf_counter()
    ids = model.generate(prompt, args.tokens, use_cache=not args.no_cache)
    elapsed = time.perf_counter() - start
    text = "".join(chr(i) if 32 <= i < 127 else "." for i in ids)
    print("tokens:", " ".join(map(str, ids)))
    print(f"text: {args.prompt}{text}")
    print(f"checksum: {sum(ids)}")
    print(f"{args.tokens} tokens in {elapsed * 1e3:.1f} ms ({args.tokens / elapsed:.0f} tokens/s, "
          f"{'no cache' if args.no_cache else 'KV cache'}, {args.device})")


if __name__ == "__main__":
    main()
