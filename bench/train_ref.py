#!/usr/bin/env python3
"""bench/train_ref.py - the PyTorch reference for bench/30-train.sh (CPU) and
bench/gpu.sh (CUDA: --device cuda --dtype bf16 [--compile]).

The same model as dllm-train's bench config (LLaMA-style: RMSNorm, RoPE
rotate-half, GQA, bidirectional attention, SwiGLU, untied head), the same
training step: masked-diffusion loss (head only at masked positions,
ce / t summed and divided by rows * L), clip_grad_norm_(1.0), AdamW
(betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only).  Random
token rows, t ~ U(1e-3, 1) per row, Bernoulli(t) masks, as dllm-mask makes.

On CUDA, --dtype bf16 is torch's mixed precision (autocast to bf16 over
fp32 parameters, fused AdamW on fp32), SDPA's flash kernel for attention,
and --compile wraps the model in torch.compile (the compile happens in the
warm-up steps, which are not timed).

Prints one JSON line: tokens/s over the timed steps (after warm-up steps),
and the GFLOP/s of a large torch.mm with the same thread count and dtype
(the machine's measured GEMM rate, for the "fraction of peak" line; 2048^3
on the CPU, 8192^3 on a GPU).

usage: train_ref.py --config FILE.json --seq-len 256 --batch 8 --steps 10 --warmup-steps 2 --threads 2
       [--device cuda --dtype bf16 --compile]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H, K, E, Fh = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
        self.H, self.K, self.E, self.eps = H, K, E, c["rms_norm_eps"]
        self.attn_norm = torch.nn.Parameter(torch.ones(D))
        self.q = torch.nn.Linear(D, H * E, bias=False)
        self.k = torch.nn.Linear(D, K * E, bias=False)
        self.v = torch.nn.Linear(D, K * E, bias=False)
        self.o = torch.nn.Linear(H * E, D, bias=False)
        self.mlp_norm = torch.nn.Parameter(torch.ones(D))
        self.gate = torch.nn.Linear(D, Fh, bias=False)
        self.up = torch.nn.Linear(D, Fh, bias=False)
        self.down = torch.nn.Linear(Fh, D, bias=False)

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        h = F.rms_norm(x, (D,), self.attn_norm, self.eps)
        q = self.q(h).view(B, T, self.H, self.E).transpose(1, 2)
        k = self.k(h).view(B, T, self.K, self.E).transpose(1, 2)
        v = self.v(h).view(B, T, self.K, self.E).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)   # bidirectional
        x = x + self.o(a.transpose(1, 2).reshape(B, T, self.H * self.E))
        h = F.rms_norm(x, (D,), self.mlp_norm, self.eps)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return x * cos + rot * sin


class Model(torch.nn.Module):
    def __init__(self, c, T):
        super().__init__()
        D, V, E = c["hidden_size"], c["vocab_size"], c["head_dim"]
        self.eps = c["rms_norm_eps"]
        self.embed = torch.nn.Embedding(V, D)
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = torch.nn.Parameter(torch.ones(D))
        self.head = torch.nn.Linear(D, V, bias=False)
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, E, 2).float() / E))
        ang = torch.outer(torch.arange(T).float(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, 0.0, 0.02)

    def forward(self, xt, sel_rows, sel_pos):
        x = self.embed(xt)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        h = x[sel_rows, sel_pos]                          # hidden states of the masked positions only
        return self.head(F.rms_norm(h, (h.shape[-1],), self.norm, self.eps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=("f32", "bf16"))
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    c = json.load(open(a.config))
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    B, T, V, M = a.batch, a.seq_len, c["vocab_size"], c["mask_token_id"]
    model = Model(c, T).to(dev)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if cuda else {}))
    fwd = torch.compile(model, dynamic=True) if a.compile else model   # dynamic: M (masked positions) varies per step
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def batch():
        x0 = torch.randint(0, V - 1, (B, T), device=dev)
        t = 1e-3 + (1 - 1e-3) * torch.rand(B, 1, device=dev)
        masked = torch.rand(B, T, device=dev) < t
        xt = torch.where(masked, torch.full_like(x0, M), x0)
        rows, pos = masked.nonzero(as_tuple=True)
        return xt, rows, pos, x0[rows, pos], t[rows, 0]

    t0 = None
    for s in range(a.warmup_steps + a.steps):
        if s == a.warmup_steps:
            sync()
            t0 = time.perf_counter()
        xt, rows, pos, tgt, tpos = batch()
        with amp:
            logits = fwd(xt, rows, pos)
        ce = F.cross_entropy(logits.float(), tgt, reduction="none")
        loss = (ce / tpos).sum() / (B * T)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sync()
    dt = time.perf_counter() - t0
    tok_s = a.steps * B * T / dt

    n = 8192 if cuda else 2048                             # the machine's GEMM rate, same threads / dtype
    gdt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    x, y = torch.randn(n, n, device=dev, dtype=gdt), torch.randn(n, n, device=dev, dtype=gdt)
    torch.mm(x, y)
    sync()
    reps, g0 = 5, time.perf_counter()
    for _ in range(reps):
        torch.mm(x, y)
    sync()
    gemm = 2 * n ** 3 * reps / (time.perf_counter() - g0) / 1e9
    print(json.dumps({"tokens_per_s": tok_s, "loss": loss.item(), "gemm_gflops": gemm, "threads": a.threads,
                      "torch": torch.__version__, "device": a.device, "dtype": a.dtype, "compile": a.compile,
                      "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}))


if __name__ == "__main__":
    main()
