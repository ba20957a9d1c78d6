"""PyTorch reference figures for `bun run bench`, on the same machine: fp32 matmul GFLOP/s and the
GPT training step (nanoGPT's baby and shakespeare_char configs) in eager fp32, as JSON lines in
the shape kiln's bench prints. Runs on CUDA when present (TF32 off: true fp32), else on the CPU.

    python3 tests/bench/torch_reference.py [--device cuda|cpu] [--configs baby shakespeare_char]
        [--sizes 4096] [--steps 30] [--gpt-shapes] [--threads n]

The model is GPT-2 as kiln's src/models/gpt.ts builds it (tied head, tanh GELU, pre-LN, no dropout,
AdamW lr 1e-3 betas 0.9/0.99 weight decay 0.1, clip 1.0) on random token ids.
"""
import argparse, json, math, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    "shakespeare_char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64),
}
VOCAB = 65  # Tiny Shakespeare's characters


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.c_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.c_fc_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = att.softmax(-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.c_fc_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))  # torch >= 1.12


class GPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, block_size, **_):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def bench_matmul(n, device, reps=20):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); a @ b; sync(device); times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    return {"name": f"matmul/{n}", "backend": f"torch-{device}", "gflops": round(2 * n ** 3 / (ms * 1e-3) / 1e9, 2), "ms": round(ms, 4)}


# the baby GPT's matmul shapes, as tests/bench/main.ts names them: (name, M, N, K, transA, transB)
GPT_SHAPES = [
    ("768x128x384", 768, 384, 128, False, False), ("768x128x512", 768, 512, 128, False, False),
    ("768x512x128", 768, 128, 512, False, False), ("768x128x65", 768, 65, 128, False, False),
    ("768x384x128_tB", 768, 128, 384, False, True), ("128x768x384_tA", 128, 384, 768, True, False),
]


def bench_shape(name, M, N, K, ta, tb, device, reps=15):
    a = torch.randn(K, M, device=device).t() if ta else torch.randn(M, K, device=device)
    b = torch.randn(N, K, device=device).t() if tb else torch.randn(K, N, device=device)
    for _ in range(3):
        a @ b
    inner = 1
    t0 = time.perf_counter(); a @ b; sync(device)
    inner = max(1, math.ceil(0.02 / max(time.perf_counter() - t0, 1e-5)))  # >= ~20 ms per sample, as kiln's bench
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync(device)
        times.append((time.perf_counter() - t0) / inner)
    ms = statistics.median(times) * 1e3
    return {"name": f"matmul/{name}", "backend": f"torch-{device}", "gflops": round(2 * M * N * K / (ms * 1e-3) / 1e9, 2), "ms": round(ms, 4)}


def bench_step(name, device, steps, warmup=5):
    cfg = CONFIGS[name]
    torch.manual_seed(1337)
    model = GPT(**cfg).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    B, T = cfg["batch_size"], cfg["block_size"]
    times = []
    for i in range(warmup + steps):
        idx = torch.randint(0, VOCAB, (B, T), device=device)
        targets = torch.randint(0, VOCAB, (B, T), device=device)
        sync(device)
        t0 = time.perf_counter()
        loss = model(idx, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()  # the host reads the loss every step, as a training loop that logs does
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    out = {"name": f"train_step/{name}", "backend": f"torch-{device}", "ms_per_iter": round(ms, 2), "tokens_per_s": round(B * T / (ms * 1e-3))}
    if device == "cuda":
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[4096])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--gpt-shapes", action="store_true", help="also the baby GPT's matmul shapes (kiln's matmul/<shape> figures)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
        torch.backends.cudnn.allow_tf32 = False
    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu", "threads": torch.get_num_threads()}
    for n in a.sizes:
        print(json.dumps({**bench_matmul(n, a.device), **meta}), flush=True)
    if a.gpt_shapes:
        for shape in GPT_SHAPES:
            print(json.dumps({**bench_shape(*shape, a.device), **meta}), flush=True)
    for name in a.configs:
        print(json.dumps({**bench_step(name, a.device, a.steps), **meta}), flush=True)


if __name__ == "__main__":
    main()
