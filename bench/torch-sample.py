"""Sampling with a key/value cache in PyTorch, for bench/scaling.ts: the policy of models/README.md (as in
bench/torch-policy.py), its own decoding loop. The distinct prompts are prefilled once, their keys and values
copied to the G response rows of each, then one token per step for every unfinished row, the new key/value
written into a preallocated cache [rows, H, T, k] and attention over the slots so far. Rows stop at the
lengths given (the lengths the onnxruntime engine sampled on the same shape, so both do the same work), and
finished rows leave the batch once they are a quarter of it, as the engine does. Optional: needs Debian's
python3-torch; the tests never use it.

  python3 bench/torch-sample.py --prompts 2 --group 8 --lengths 48,12,... --threads 1 --steps 2 --d 128 --heads 4 --layers 2

Prints one JSON line: {"rows", "threads", "tokens", "ms": [wall per call], "cpu_ms": [process CPU per call],
"maxrss_mb"}.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--prompts", type=int, default=2)
p.add_argument("--group", type=int, default=8)
p.add_argument("--prompt", type=int, default=37)
p.add_argument("--lengths", type=str, required=True, help="comma-separated response lengths, one per row (prompts x group)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=2)
p.add_argument("--d", type=int, default=128)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--vocab", type=int, default=102)
p.add_argument("--patches", type=int, default=32)
p.add_argument("--patch-dim", type=int, default=147)
p.add_argument("--max-text", type=int, default=112)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
d, H, V, K = a.d, a.heads, a.vocab, a.d // a.heads
lengths = [int(x) for x in a.lengths.split(",")]
N = a.prompts * a.group
if len(lengths) != N:
    raise SystemExit(f"--lengths has {len(lengths)} values, expected prompts x group = {N}")


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.ln2 = torch.nn.LayerNorm(d)
        self.w1 = torch.nn.Linear(d, 4 * d)
        self.w2 = torch.nn.Linear(4 * d, d)

    def forward(self, x, kc, vc, start, bias):
        """x [B, S, d]; writes this call's keys/values at slots [start, start + S) of kc/vc [B, H, T, K]."""
        B, S, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, S, H, K).transpose(1, 2)
        kc[:, :, start : start + S] = self.k(h).view(B, S, H, K).transpose(1, 2)
        vc[:, :, start : start + S] = self.v(h).view(B, S, H, K).transpose(1, 2)
        k, v = kc[:, :, : start + S], vc[:, :, : start + S]
        att = q @ k.transpose(-1, -2) / math.sqrt(K)
        if bias is not None:
            att = att + bias
        x = x + self.o((torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, S, d))
        return x + self.w2(F.gelu(self.w1(self.ln2(x)), approximate="tanh"))


class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Linear(a.patch_dim, d)
        self.img_pos = torch.nn.Parameter(torch.randn(a.patches, d) * 0.02)
        self.tok = torch.nn.Parameter(torch.randn(V, d) * 0.02)
        self.txt_pos = torch.nn.Parameter(torch.randn(a.max_text, d) * 0.02)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(a.layers))
        self.ln_f = torch.nn.LayerNorm(d)

    def logits(self, x):
        return self.ln_f(x[:, -1]) @ self.tok.t()


model = Policy().eval()
S0 = a.patches + a.prompt
T = S0 + max(lengths) - 1


@torch.inference_mode()
def sample(seed):
    g = torch.Generator().manual_seed(seed)
    patches = torch.rand(a.prompts, a.patches, a.patch_dim)
    prompt = torch.randint(7, V, (a.prompts, a.prompt))
    # prefill: the distinct prompts once
    pre = [(torch.zeros(a.prompts, H, S0, K), torch.zeros(a.prompts, H, S0, K)) for _ in model.blocks]
    x = torch.cat([model.patch(patches) + model.img_pos, model.tok[prompt] + model.txt_pos[: a.prompt]], dim=1)
    causal = torch.triu(torch.full((S0, S0), -1e9), diagonal=1)
    for b, (kc, vc) in zip(model.blocks, pre):
        x = b(x, kc, vc, 0, causal)
    logits = model.logits(x).repeat_interleave(a.group, dim=0)
    # the response rows' caches, the prompt's slots copied from the prefill
    cache = []
    for kc, vc in pre:
        kr, vr = torch.zeros(N, H, T, K), torch.zeros(N, H, T, K)
        kr[:, :, :S0] = kc.repeat_interleave(a.group, dim=0)
        vr[:, :, :S0] = vc.repeat_interleave(a.group, dim=0)
        cache.append((kr, vr))
    rows = torch.arange(N)
    length = torch.tensor(lengths)
    for t in range(max(lengths)):
        tok = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=g)  # [B, 1]
        lp = torch.log_softmax(logits, dim=-1).gather(-1, tok)  # the sampled token's log-prob, as the engine reports
        del lp
        alive = length[rows] > t + 1
        if int(alive.sum()) == 0 or t == max(lengths) - 1:
            break
        if int(alive.sum()) <= 0.75 * len(rows):
            keep = alive.nonzero().squeeze(1)
            rows, tok = rows[keep], tok[keep]
            cache = [(kr[keep], vr[keep]) for kr, vr in cache]
        x = model.tok[tok] + model.txt_pos[a.prompt + t].view(1, 1, d)
        for b, (kr, vr) in zip(model.blocks, cache):
            x = b(x, kr, vr, S0 + t, None)
        logits = model.logits(x)
    return sum(lengths)


sample(0)  # warm-up
times, cpu = [], []
for s in range(a.steps):
    t, c = time.perf_counter(), time.process_time()
    tokens = sample(s + 1)
    times.append((time.perf_counter() - t) * 1000)
    cpu.append((time.process_time() - c) * 1000)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": N, "threads": a.threads, "tokens": tokens, "ms": times, "cpu_ms": cpu, "maxrss_mb": rss}), flush=True)
