#!/usr/bin/env python3
"""tests/ref/plateau_ref.py - an independent PyTorch re-run of dllm-train's
from-scratch masked-diffusion training, to tell a training plateau from a
defect in dllm (docs/results.md, "Why the from-scratch diffusion model
plateaus").

The model is bench/train_ref.py's (LLaMA: RMSNorm, rotate-half RoPE, GQA,
bidirectional attention, SwiGLU), with the TIED head of the experiments'
scratch config (head = embed_tokens).  The step is dllm-train's defaults:
masked positions only, sum(ce / t) / (rows * L) (--weight timestep,
--loss-norm all), clip_grad_norm_(1.0), AdamW (0.9, 0.95, eps 1e-8, weight
decay 0.1 on matrices only), linear warmup then cosine to 0.  The rows and
their masks are dllm-mask's records read through `dllm-cat` in file order,
--batch consecutive records per step, so both programs see identical masks.

Weights: --init DIR loads a dllm checkpoint (`dllm-train --steps 0` writes
the one dllm starts from), else N(0, --init-std) for every matrix
(embedding included) and ones for the norms, dllm's rule
(share/model/dl_model.c, dl_model_init_weights, std 0.02).

Prints one JSON line per step (step, loss, grad_norm before clipping, lr),
like dllm-train --metrics.  It does NOT evaluate held-out data, handle
padding / doc masks / `len`-tagged rows (the conversion data has none), or
run on a GPU.

usage: plateau_ref.py --data train.msgpack.zst --config DIR/config.json [--init DIR]
                      --steps 400 --batch 8 --lr 2e-3 --warmup 20 [--init-std 0.02]
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from train_ref import Block  # noqa: E402  (the same layer as the bench reference)


class TiedModel(torch.nn.Module):
    def __init__(self, c, T):
        super().__init__()
        D, V, E = c["hidden_size"], c["vocab_size"], c["head_dim"]
        self.eps = c["rms_norm_eps"]
        self.embed = torch.nn.Embedding(V, D)
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = torch.nn.Parameter(torch.ones(D))
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, E, 2).double() / E))
        ang = torch.outer(torch.arange(T).double(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos().float())
        self.register_buffer("sin", ang.sin().float())

    def forward(self, xt, rows, pos):
        x = self.embed(xt)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        h = F.rms_norm(x[rows, pos], (x.shape[-1],), self.norm, self.eps)
        return h @ self.embed.weight.t()        # tied head, masked positions only


def load_dllm(model, path):
    """dllm / HF names -> this model's parameters."""
    from safetensors.torch import load_file
    sd = load_file(os.path.join(path, "model.safetensors"))
    g = lambda k: sd[k].float()
    with torch.no_grad():
        model.embed.weight.copy_(g("model.embed_tokens.weight"))
        model.norm.copy_(g("model.norm.weight"))
        for i, b in enumerate(model.layers):
            p = f"model.layers.{i}."
            b.attn_norm.copy_(g(p + "input_layernorm.weight"))
            b.mlp_norm.copy_(g(p + "post_attention_layernorm.weight"))
            for mine, theirs in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                                 ("o", "self_attn.o_proj"), ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                                 ("down", "mlp.down_proj")):
                getattr(b, mine).weight.copy_(g(p + theirs + ".weight"))


def read_records(cat, path, n):
    """the first n masked records (x0, xt, t) of a dllm stream, in file order"""
    p = subprocess.Popen([cat, "-n", path], stdout=subprocess.PIPE, text=True)
    out = []
    for line in p.stdout:
        r = json.loads(line)
        out.append((r["x0"], r["xt"], r["t"]))
        if len(out) == n:
            break
    p.stdout.close()
    p.wait()
    return out


def lr_at(step, a):
    """dllm-train's schedule: linear warmup to --lr, then cosine to 0 (step is 1-based)"""
    if step <= a.warmup:
        return a.lr * step / a.warmup
    prog = (step - a.warmup) / max(1, a.steps - a.warmup)
    return 0.5 * a.lr * (1 + math.cos(math.pi * prog))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True, help="the config.json dllm-train wrote (vocab and ids filled in)")
    ap.add_argument("--init", help="dllm checkpoint directory to start from")
    ap.add_argument("--init-std", type=float, default=0.02)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dllm-cat", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                       "bin", "dllm-cat"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    c = json.load(open(a.config))
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    recs = read_records(a.dllm_cat, a.data, 10 ** 9)
    T, M, B = len(recs[0][0]), c["mask_token_id"], a.batch
    model = TiedModel(c, T)
    if a.init:
        load_dllm(model, a.init)
    else:
        for p in model.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, 0.0, a.init_std)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    for step in range(1, a.steps + 1):
        i0 = ((step - 1) * B) % (len(recs) - len(recs) % B)   # whole batches, epochs wrap
        x0 = torch.tensor([r[0] for r in recs[i0:i0 + B]])
        xt = torch.tensor([r[1] for r in recs[i0:i0 + B]])
        t = torch.tensor([r[2] for r in recs[i0:i0 + B]], dtype=torch.float32)
        rows, pos = (xt == M).nonzero(as_tuple=True)
        ce = F.cross_entropy(model(xt, rows, pos), x0[rows, pos], reduction="none")
        loss = (ce / t[rows]).sum() / (B * T)
        lr = lr_at(step, a)
        for gr in opt.param_groups:
            gr["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        print(json.dumps({"step": step, "loss": loss.item(), "grad_norm": gn.item(), "lr": lr}), flush=True)


if __name__ == "__main__":
    main()
