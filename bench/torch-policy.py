"""The policy of models/README.md in PyTorch, for bench/update-step.ts and bench/scaling.ts: one training
step (forward, token-mean NLL of the response tokens, backward, global-norm clipping, AdamW with decay on
matrices only) on random data of the given shapes, timed; with `--mode logprobs`, the teacher-forced
log-probs of the response tokens (forward only, no autograd). Optional: needs Debian's python3-torch; the tests never use it.

  python3 bench/torch-policy.py --rows 16 64 --prompt 37 --response 48 --threads 1 --steps 5

Shape flags: --d --heads --layers (the width, heads and decoder layers), --prompt --response (tokens per
row), --max-text (rows of the text position table: maxPromptLen + maxResponseLen).

Prints one JSON line per shape: {"rows", "tokens", "threads", "ms": [per-step wall times], "cpu_ms": [process
CPU time per step], "maxrss_mb": peak RSS so far}, and (unless --skip-matmul) one with
the best GFLOP/s of a 1024^3 matmul ({"matmul_gflops"}): Debian's python3-torch calls the system BLAS,
which is the slow reference BLAS unless an optimized one is installed (apt-get install libopenblas0-pthread).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, nargs="+", default=[16, 64])
p.add_argument("--prompt", type=int, default=37)
p.add_argument("--response", type=int, default=48)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--d", type=int, default=128)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--vocab", type=int, default=102)
p.add_argument("--patches", type=int, default=32)
p.add_argument("--patch-dim", type=int, default=147)
p.add_argument("--max-text", type=int, default=112)
p.add_argument("--mode", choices=["update", "logprobs"], default="update")
p.add_argument("--skip-matmul", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
d, H, V = a.d, a.heads, a.vocab


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.ln2 = torch.nn.LayerNorm(d)
        self.w1 = torch.nn.Linear(d, 4 * d)
        self.w2 = torch.nn.Linear(4 * d, d)

    def forward(self, x, bias):
        B, S, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, S, H, d // H).transpose(1, 2)
        k = self.k(h).view(B, S, H, d // H).transpose(1, 2)
        v = self.v(h).view(B, S, H, d // H).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // H) + bias, dim=-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, S, d))
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

    def forward(self, patches, tokens, positions, key_valid, Lp):
        x = torch.cat([self.patch(patches) + self.img_pos, self.tok[tokens] + self.txt_pos[positions]], dim=1)
        B, S, _ = x.shape
        causal = torch.triu(torch.full((S, S), -1e9), diagonal=1)
        valid = torch.cat([torch.ones(B, a.patches), key_valid], dim=1)
        bias = torch.minimum(causal, ((1 - valid) * -1e9)[:, None, None, :])
        for b in self.blocks:
            x = b(x, bias)
        h = self.ln_f(x[:, a.patches + Lp - 1 : -1])
        logp = torch.log_softmax(h @ self.tok.t(), dim=-1)
        return logp.gather(-1, tokens[:, Lp:, None]).squeeze(-1)


model = Policy()
decay = [q for q in model.parameters() if q.dim() >= 2]
no_decay = [q for q in model.parameters() if q.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)

if not a.skip_matmul:
    x = torch.randn(1024, 1024)
    y = torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(4):
        t = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"matmul_gflops": 2 * 1024**3 / best / 1e9, "threads": a.threads}), flush=True)

for B in a.rows:
    Lp, Lr = a.prompt, a.response
    patches = torch.rand(B, a.patches, a.patch_dim)
    tokens = torch.randint(7, V, (B, Lp + Lr))
    positions = torch.arange(Lp + Lr).repeat(B, 1)
    key_valid = torch.ones(B, Lp + Lr)
    mask = torch.ones(B, Lr)

    def logprobs():
        with torch.inference_mode():
            model(patches, tokens, positions, key_valid, Lp)

    def update():
        opt.zero_grad(set_to_none=True)
        lp = model(patches, tokens, positions, key_valid, Lp)
        loss = -(lp * mask).sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step = update if a.mode == "update" else logprobs
    step()  # warm-up
    times, cpu = [], []
    for _ in range(a.steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": B, "tokens": a.patches + Lp + Lr, "threads": a.threads, "ms": times, "cpu_ms": cpu, "maxrss_mb": rss}), flush=True)
