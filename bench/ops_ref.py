#!/usr/bin/env python3
"""bench/ops_ref.py - the PyTorch side of bench/ops_bench.c: the same GEMMs
and attention at the same shapes, same dtype, same device, same FLOP
counts, printed as the same JSON lines (bench/gpu.sh pairs them up).

GEMMs: F.linear (x @ w^T) forward; backward as the two products autograd
runs (dx = dy @ w, dw = dy^T @ x; under autocast dw comes out in bf16 and
is accumulated into the fp32 grad by a separate kernel, not timed here,
while ours writes fp32 dw from the GEMM).  Attention:
F.scaled_dot_product_attention, bidirectional, (B, H, T, E) layout, with
the flash backend forced on CUDA (bf16 / f16; other dtypes or the CPU take
what torch picks); backward through autograd with a fixed dout.
Timing: best of --reps after one warm-up, torch.cuda.synchronize around
each rep.

usage: ops_ref.py [--device cuda] [--dtype bf16] [--dim 768 --hidden 2048
       --heads 12 --kv-heads 12 --head-dim 64 --vocab 32768 --batch 8
       --seq 1024] [--reps 10]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def timed(dev, reps, fn):
    best = float("inf")
    for r in range(reps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter() - t0
        if r > 0:
            best = min(best, t)
    return best


def linear(a, dev, dt, name, rows, k, n):
    x = torch.randn(rows, k, device=dev, dtype=dt)
    w = torch.randn(n, k, device=dev, dtype=dt) * 0.05
    dy = torch.randn(rows, n, device=dev, dtype=dt)
    fwd = timed(dev, a.reps, lambda: F.linear(x, w))

    def bwd():
        torch.matmul(dy, w)          # dx
        torch.matmul(dy.t(), x)      # dw (autocast's product is bf16; the fp32 accumulation is not timed)
    bw = timed(dev, a.reps, bwd)
    fl = 2.0 * rows * k * n
    for op, t, f in (("linear_fwd", fwd, fl), ("linear_bwd", bw, 2 * fl)):
        print(json.dumps({"op": op, "name": name, "M": rows, "N": n, "K": k, "dtype": a.dtype, "ms": round(t * 1e3, 4),
                          "tflops": round(f / t / 1e12, 2)}), flush=True)


def attention(a, dev, dt, B, T, H, K, E):
    q = torch.randn(B, H, T, E, device=dev, dtype=dt, requires_grad=True)
    k = torch.randn(B, K, T, E, device=dev, dtype=dt, requires_grad=True)
    v = torch.randn(B, K, T, E, device=dev, dtype=dt, requires_grad=True)
    dout = torch.randn(B, H, T, E, device=dev, dtype=dt)
    ctx = None
    if dev.type == "cuda" and dt in (torch.bfloat16, torch.float16):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        ctx = lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)  # noqa: E731
    gqa = {"enable_gqa": True} if K != H else {}

    def run_fwd():
        with torch.no_grad():
            return F.scaled_dot_product_attention(q, k, v, **gqa)

    def run_bwd_only(o):
        q.grad = k.grad = v.grad = None
        o.backward(dout, retain_graph=True)

    def wrap(fn):
        if ctx is None:
            return fn()
        with ctx():
            return fn()
    fwd = wrap(lambda: timed(dev, a.reps, run_fwd))
    o = wrap(lambda: F.scaled_dot_product_attention(q, k, v, **gqa))
    bwd = wrap(lambda: timed(dev, a.reps, lambda: run_bwd_only(o)))
    fl = 4.0 * B * H * T * T * E
    for op, t, f in (("attention_fwd", fwd, fl), ("attention_bwd", bwd, 2.5 * fl)):
        print(json.dumps({"op": op, "B": B, "T": T, "Hq": H, "Hk": K, "E": E, "att": 0, "dtype": a.dtype,
                          "ms": round(t * 1e3, 4), "tflops": round(f / t / 1e12, 2),
                          "backend": "flash" if ctx else "default"}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "f32"))
    for n, d in (("dim", 768), ("hidden", 2048), ("heads", 12), ("kv-heads", 12), ("head-dim", 64), ("vocab", 32768),
                 ("batch", 8), ("seq", 1024), ("reps", 10)):
        ap.add_argument("--" + n, type=int, default=d)
    a = ap.parse_args()
    dev = torch.device(a.device)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False   # f32 GEMMs stay fp32, as ours
    D, Fh, H, K, E, V, B, T = a.dim, a.hidden, a.heads, a.kv_heads, a.head_dim, a.vocab, a.batch, a.seq
    N = B * T
    for name, rows, k, n in (("qkv", N, D, (H + 2 * K) * E), ("o", N, H * E, D), ("gate_up", N, D, 2 * Fh),
                             ("down", N, Fh, D), ("head", N // 2, D, V)):
        linear(a, dev, dt, name, rows, k, n)
    attention(a, dev, dt, B, T, H, K, E)


if __name__ == "__main__":
    main()
