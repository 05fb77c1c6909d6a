"""A GPT-style decoder in mt.nn: token and position embeddings, causal
multi-head attention with a KV cache, GELU MLPs, layer norms and an output
head tied to the token embedding. It generates bytes from a prompt with
top-k sampling and, with --train, first learns a text file's bytes.

    python3 gpt.py [--device cpu|modal] [--in-process] [--tokens N] [--no-cache]
                   [--seed S] [--prompt TEXT]
                   [--train [FILE] [--steps N] [--lr LR] [--print-every N]
                    [--checkpoint PATH] [--clip MAX_NORM]]

The port of examples/gpt.c: the same weights from the same seed (N(0, 0.02)
matrices from one Philox stream each, zero biases), the same windows, the
same AdamW step and the same sampling, so both print the same numbers.
Untrained the weights are random and the text is noise, the same on every
device. --train FILE (README.md of this repository when FILE is left out)
takes a window of context + 1 bytes a step, predicts every next byte
(cross-entropy over all positions), runs backward and one AdamW step; on a
modal device a step is one lazy graph and nothing is read but the printed
losses. Then the weights go to a safetensors checkpoint, load into a second
model that must give the same held-out loss, and that model generates with
grad off. Exits 1 with the library's message on a failure, 2 on a bad
command line.

The model is also what python/tests/test_models.py checks against PyTorch.
"""

import argparse
import os
import sys
import time

import numpy as np

import modaltensor as mt
import modaltensor.nn.functional as F
from modaltensor import nn

CONFIG = {"vocab": 256, "context": 128, "dim": 128, "heads": 4, "layers": 4}
DEFAULT_TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


class Block(nn.Module):
    """One decoder layer: x += proj(attention(ln1(x))); x += fc2(gelu(fc1(ln2(x)))).
    The KV cache is two non-persistent buffers [heads, context, dim / heads]
    (they move with to() and stay out of the checkpoint), written in place."""

    def __init__(self, dim, heads, context, device):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim, device=device)
        self.qkv = nn.Linear(dim, 3 * dim, device=device)
        self.proj = nn.Linear(dim, dim, device=device)
        self.ln2 = nn.LayerNorm(dim, device=device)
        self.fc1 = nn.Linear(dim, 4 * dim, device=device)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim, device=device)
        cache_shape = (heads, context, dim // heads)
        self.register_buffer("k_cache", mt.zeros(cache_shape, device=device), persistent=False)
        self.register_buffer("v_cache", mt.zeros(cache_shape, device=device), persistent=False)

    def _split_heads(self, x):
        """[T, dim] -> [heads, T, dim / heads] (a view)."""
        return x.reshape(x.shape[0], self.heads, -1).transpose(0, 1)

    def _attention(self, h, pos, use_cache):
        """Causal self-attention of the T rows of h at positions pos..pos+T-1.
        With the cache the new keys and values are written into it and
        attention reads its first pos+T rows; pos > 0 then needs T = 1, since
        the causal mask of sdpa is aligned to the first query."""
        t, dim = h.shape
        q, k, v = (self._split_heads(part) for part in self.qkv(h).split(dim, dim=1))
        if use_cache:
            self.k_cache[:, pos:pos + t].copy_(k)
            self.v_cache[:, pos:pos + t].copy_(v)
            k, v = self.k_cache[:, :pos + t], self.v_cache[:, :pos + t]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        return self.proj(a.transpose(0, 1).reshape(t, dim))

    def forward(self, x, pos=0, use_cache=False):
        x = x + self._attention(self.ln1(x), pos, use_cache)
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    """The decoder (config as CONFIG) on one device, its weights drawn from
    seed as examples/gpt.c draws them. The output head is tok_emb's weight."""

    def __init__(self, config=CONFIG, device="cpu", seed=7):
        super().__init__()
        self.config = dict(config)
        vocab, context, dim = config["vocab"], config["context"], config["dim"]
        self.tok_emb = nn.Embedding(vocab, dim, device=device)
        self.pos_emb = nn.Embedding(context, dim, device=device)
        self.layers = nn.ModuleList(Block(dim, config["heads"], context, device)
                                    for _ in range(config["layers"]))
        self.ln_f = nn.LayerNorm(dim, device=device)
        self.init_weights(seed)

    def init_weights(self, seed):
        """GPT-2's initialisation in gpt.c's order: every matrix N(0, 0.02)
        from its own seed (seed, seed + 1, ...), biases 0, norms 1 and 0."""
        matrices = [self.tok_emb.weight, self.pos_emb.weight]
        for block in self.layers:
            matrices += [block.qkv.weight, block.proj.weight, block.fc1.weight, block.fc2.weight]
            for linear in (block.qkv, block.proj, block.fc1, block.fc2):
                nn.init.zeros_(linear.bias)
        for i, weight in enumerate(matrices):
            nn.init.normal_(weight, 0.0, 0.02, seed=seed + i)

    def forward(self, ids, pos=0, use_cache=False, last_only=False):
        """Logits [T, vocab] of the T tokens ids (int64 [T]) at positions
        pos..pos+T-1, or [1, vocab] of the last one (last_only). With the
        cache (grad off), pos > 0 takes one token at a time."""
        if use_cache and mt.is_grad_enabled():
            raise RuntimeError("GPT.forward: use_cache writes the KV cache in place, which "
                               "autograd does not record: run it under mt.no_grad()")
        t = ids.shape[0]
        positions = mt.arange(pos, pos + t, dtype="int64", device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(positions)
        for block in self.layers:
            x = block(x, pos, use_cache)
        if last_only:
            x = x[t - 1:]
        return F.linear(self.ln_f(x), self.tok_emb.weight)

    def loss(self, ids, targets):
        """Mean cross-entropy of predicting targets[i] after ids[..i]."""
        return F.cross_entropy(self(ids), targets)

    @mt.no_grad()
    def generate(self, prompt, tokens, top_k=40, seed=7, use_cache=True):
        """tokens ids drawn after the prompt (a list of ints), with grad off.
        The sequence stays on the device and is read once at the end."""
        n, device = len(prompt), self.tok_emb.weight.device
        seq = mt.zeros(self.config["context"], dtype="int64", device=device)
        seq[:n].copy_(mt.tensor(np.array(prompt, dtype=np.int64), device=device))
        for length in range(n, n + tokens):
            prefill = not use_cache or length == n
            pos, t = (0, length) if prefill else (length - 1, 1)
            logits = self(seq[pos:pos + t], pos, use_cache, last_only=True)
            values, indices = logits.topk(top_k)
            pick = F.softmax(values, dim=-1).multinomial(1, True, seed=seed * 1000003 + length)
            seq[length:length + 1].copy_(indices.gather(1, pick).reshape(1))
        return [int(v) for v in seq[n:n + tokens].cpu().numpy()]


# ------------------------------------------------------------------ training

def window_offsets(text_length, context, seed):
    """gpt.c's training windows: offsets from a 64-bit LCG seeded with seed,
    all in the first nine tenths of the text (the rest is held out)."""
    state, span = seed, text_length * 9 // 10 - context - 1
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        yield (state >> 33) % span


def window(text, offset, context, device):
    """(ids, targets): context bytes of text from offset and the bytes after
    each, as int64 tensors on device."""
    chunk = np.frombuffer(text, dtype=np.uint8, count=context + 1, offset=offset)
    chunk = chunk.astype(np.int64)
    return mt.tensor(chunk[:-1], device=device), mt.tensor(chunk[1:], device=device)


def make_optimizer(model, lr):
    """gpt.c's AdamW: betas (0.9, 0.95), weight decay 0.01 on every weight."""
    return mt.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                          weight_decay=0.01)


def train_step(model, optimizer, ids, targets, clip=None):
    """One step: loss, backward, optionally the gradients clipped to the
    2-norm clip, the update. Returns the loss, unread (on a modal device
    the whole step is one lazy graph until something reads it)."""
    loss = model.loss(ids, targets)
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def train(model, text, args):
    """args.steps steps on windows of text, printing the loss at the first,
    every args.print_every-th and the last step, then "loss fell" when the
    last is below 80% of the first (gpt.c's lines)."""
    optimizer = make_optimizer(model, args.lr)
    context = model.config["context"]
    offsets = window_offsets(len(text), context, args.seed)
    first = last = None
    for step in range(1, args.steps + 1):
        ids, targets = window(text, next(offsets), context, args.device)
        loss = train_step(model, optimizer, ids, targets, args.clip)
        if step == 1 or step % args.print_every == 0 or step == args.steps:
            last = loss.item()
            first = last if first is None else first
            print(f"step {step} loss {last:.4f}", flush=True)
    if last < 0.8 * first:
        print(f"loss fell: {first:.4f} -> {last:.4f}")


def reload_and_compare(model, text, args):
    """Saves model to args.checkpoint, loads that into a second model (drawn
    from another seed, so the checkpoint must give every weight) and prints
    both held-out losses (the text's last window: not trained on once the
    text has 10 * context bytes or more).
    Returns the loaded model, or None when the losses differ."""
    mt.save_file(model.state_dict(), args.checkpoint)
    loaded = GPT(model.config, args.device, args.seed + 1)
    loaded.load_state_dict(mt.load_file(args.checkpoint, device=args.device))
    context = model.config["context"]
    ids, targets = window(text, len(text) - context - 1, context, args.device)
    with mt.no_grad():
        trained, reloaded = model.loss(ids, targets).item(), loaded.loss(ids, targets).item()
    same = trained == reloaded
    print(f"checkpoint {args.checkpoint}: held-out loss {trained:.4f}, reloaded {reloaded:.4f}"
          f"{' (same)' if same else ' (DIFFERENT)'}")
    return loaded if same else None


# ---------------------------------------------------------------------- main

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--in-process", action="store_true",
                        help="run modal tensors in this process instead of in a worker")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prompt", default="Hello, modal")
    parser.add_argument("--train", nargs="?", const=DEFAULT_TEXT, metavar="FILE",
                        help="train on FILE's bytes first (default: the repository's README.md)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--print-every", type=int, default=10)
    parser.add_argument("--checkpoint", default="gpt-checkpoint.safetensors")
    parser.add_argument("--clip", type=float, default=None, metavar="MAX_NORM",
                        help="clip the gradients' 2-norm to MAX_NORM (gpt.c does not)")
    args = parser.parse_args(argv)
    prompt_bytes = len(args.prompt.encode())
    if prompt_bytes == 0 or args.tokens < 1 or prompt_bytes + args.tokens > CONFIG["context"]:
        parser.error(f"the prompt (1 or more bytes) and --tokens (1 or more) must fit in "
                     f"{CONFIG['context']} positions")
    if args.steps < 1 or args.print_every < 1 or not args.lr > 0:
        parser.error("--steps and --print-every must be >= 1, --lr > 0")
    if args.clip is not None and not args.clip > 0:
        parser.error("--clip must be > 0")
    return args


def read_text(path, context):
    """The bytes of path; exits 1 when it cannot be read or is too short:
    its first nine tenths must hold a training window of context + 1 bytes
    and one place more to start it (window_offsets)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        sys.exit(f"gpt: --train {path}: cannot open it ({e.strerror})")
    least = -(-(context + 2) * 10 // 9)
    if len(text) < least:
        sys.exit(f"gpt: --train {path}: needs {least} bytes or more, it has {len(text)}")
    return text


def run(args):
    """Trains (with --train), then generates twice (a warm-up, then timed)
    and prints gpt.c's lines. Returns the exit status."""
    model = GPT(CONFIG, args.device, args.seed)
    if args.train:
        text = read_text(args.train, CONFIG["context"])
        train(model, text, args)
        model = reload_and_compare(model, text, args)
        if model is None:
            return 1
    prompt = list(args.prompt.encode())
    generate = lambda: model.generate(prompt, args.tokens, seed=args.seed,
                                      use_cache=not args.no_cache)
    generate()  # warms the worker or the cpu engine up
    start = time.perf_counter()
    ids = generate()
    elapsed = time.perf_counter() - start
    text = "".join(chr(i) if 32 <= i < 127 else "." for i in ids)
    print("tokens:", " ".join(map(str, ids)))
    print(f"text: {args.prompt}{text}")
    print(f"checksum: {sum(ids)}")
    print(f"{args.tokens} tokens in {elapsed * 1e3:.1f} ms ({args.tokens / elapsed:.0f} tokens/s, "
          f"{'no cache' if args.no_cache else 'KV cache'}, {args.device})")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.in_process:
        mt.modal.disable_remote_execution()
    try:
        return run(args)
    except mt.ModalTensorError as e:
        print(f"gpt: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
