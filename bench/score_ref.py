#!/usr/bin/env python3
"""bench/score_ref.py — reference Monte-Carlo ELBO estimator for `make bench`
(bench/50-score.sh): the MDLM / LLaDA perplexity bound in plain PyTorch on the
CPU over a dllm checkpoint.

Model: a LLaMA forward written here (embedding, per layer RMSNorm -> q/k/v
(+bias) -> RoPE rotate-half -> bidirectional GQA attention
(F.scaled_dot_product_attention) -> o_proj, RMSNorm -> SwiGLU MLP; final
RMSNorm -> head, tied or lm_head), fp32, from CKPT/config.json +
CKPT/model.safetensors (parsed here: 8-byte header length, JSON header, raw
little-endian F32/BF16/F16 data).

Estimator (docs/ALGORITHMS.md §4, as dllm-score's default): per record of L
tokens, --mc N samples batched into one forward of N rows: t ~ U(eps, 1),
every position masked with probability t, term = sum_masked ce / t (the
reference computes the logits of every position, as LLaDA's
get_log_likelihood and MDLM do, then picks the masked ones); nll = mean of
the terms, se = sd / sqrt(N).  Draws come from torch's generator (seeded), so
values agree with dllm-score statistically, not bit for bit.

Input: --rows FILE, JSON Lines records with "ids" (dllm-cat of a rows or
tokens stream; the header line is skipped), at most --records of them.
Output (stdout): one JSON object {"sequences_per_s", "elapsed_s", "records",
"tokens", "nats_per_token", "se_nats_per_token", "mc"}.  Timing covers the
scoring loop only (model load excluded); --reps R keeps the best of R runs.
Does not do: causal scoring, conditional records, shift_logits.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw, dt = data[a:b], info["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        else:
            sys.exit(f"score_ref: {path}: tensor {name}: dtype {dt} not supported")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


class Llama:
    def __init__(self, ckpt):
        with open(os.path.join(ckpt, "config.json")) as f:
            c = json.load(f)
        self.c = c
        self.D, self.L, self.H = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        self.K = c.get("num_key_value_heads") or self.H
        self.E = c.get("head_dim") or self.D // self.H
        self.eps = c.get("rms_norm_eps", 1e-5)
        self.theta = c.get("rope_theta", 10000.0)
        if c.get("rope_layout", "half") != "half" or c.get("shift_logits"):
            sys.exit("score_ref: only rope_layout 'half' without shift_logits is implemented")
        w = read_safetensors(os.path.join(ckpt, "model.safetensors"))
        self.embed = w["model.embed_tokens.weight"]
        self.head = w.get("lm_head.weight", self.embed) if not c.get("tie_word_embeddings") else self.embed
        self.norm = w["model.norm.weight"]
        self.layers = []
        for i in range(self.L):
            p = f"model.layers.{i}."
            g = lambda n: w.get(p + n)  # noqa: E731
            self.layers.append(dict(
                an=g("input_layernorm.weight"), mn=g("post_attention_layernorm.weight"),
                wq=g("self_attn.q_proj.weight"), wk=g("self_attn.k_proj.weight"),
                wv=g("self_attn.v_proj.weight"), wo=g("self_attn.o_proj.weight"),
                bq=g("self_attn.q_proj.bias"), bk=g("self_attn.k_proj.bias"), bv=g("self_attn.v_proj.bias"),
                wg=g("mlp.gate_proj.weight"), wu=g("mlp.up_proj.weight"), wd=g("mlp.down_proj.weight")))
        self.rope_T = 0

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, T):
        if T != self.rope_T:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.E, 2, dtype=torch.float64) / self.E))
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], dim=-1)
            self.cos, self.sin, self.rope_T = ang.cos().float(), ang.sin().float(), T
        h = self.E // 2
        return x * self.cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * self.sin

    @torch.no_grad()
    def forward(self, ids):  # (B, T) -> logits (B, T, V)
        B, T = ids.shape
        x = F.embedding(ids, self.embed)
        for ly in self.layers:
            h = self.rmsnorm(x, ly["an"])
            q = F.linear(h, ly["wq"], ly["bq"]).view(B, T, self.H, self.E).transpose(1, 2)
            k = F.linear(h, ly["wk"], ly["bk"]).view(B, T, self.K, self.E).transpose(1, 2)
            v = F.linear(h, ly["wv"], ly["bv"]).view(B, T, self.K, self.E).transpose(1, 2)
            q, k = self.rope(q, T), self.rope(k, T)
            if self.K != self.H:
                k = k.repeat_interleave(self.H // self.K, dim=1)
                v = v.repeat_interleave(self.H // self.K, dim=1)
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, self.H * self.E)
            x = x + F.linear(o, ly["wo"])
            h = self.rmsnorm(x, ly["mn"])
            x = x + F.linear(F.silu(F.linear(h, ly["wg"])) * F.linear(h, ly["wu"]), ly["wd"])
        return F.linear(self.rmsnorm(x, self.norm), self.head)


@torch.no_grad()
def elbo(model, ids, mc, eps, mask_id, gen):
    L = ids.shape[0]
    x0 = ids[None, :].repeat(mc, 1)
    t = eps + (1 - eps) * torch.rand(mc, 1, generator=gen)
    masked = torch.rand(mc, L, generator=gen) < t
    xt = torch.where(masked, torch.tensor(mask_id), x0)
    logits = model.forward(xt)
    ce = F.cross_entropy(logits[masked], x0[masked], reduction="none")
    rows = torch.zeros(mc, dtype=torch.float64).index_add_(0, masked.nonzero()[:, 0], (ce / t.expand(mc, L)[masked]).double())
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--rows", required=True, help="JSON Lines records with ids (dllm-cat output)")
    ap.add_argument("--records", type=int, default=0, help="at most N records (0: all)")
    ap.add_argument("--mc", type=int, default=16)
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model = Llama(a.ckpt)
    mask_id = model.c.get("mask_token_id")
    if mask_id is None:
        sys.exit("score_ref: the checkpoint has no mask_token_id")
    recs = []
    with open(a.rows) as f:
        for line in f:
            r = json.loads(line)
            if "dllm" in r or "ids" not in r:
                continue
            ids = r["ids"][: len(r["ids"]) - int(r.get("n_pad", 0))]
            recs.append(torch.tensor(ids, dtype=torch.long))
            if a.records and len(recs) == a.records:
                break
    best = None
    for _ in range(a.reps):
        gen = torch.Generator().manual_seed(a.seed)
        nll = var = 0.0
        tokens = 0
        t0 = time.perf_counter()
        for ids in recs:
            rows = elbo(model, ids, a.mc, a.eps, mask_id, gen)
            nll += float(rows.mean())
            var += float(rows.var(unbiased=True)) / a.mc if a.mc > 1 else 0.0
            tokens += ids.shape[0]
        dt = time.perf_counter() - t0
        if best is None or dt < best[0]:
            best = (dt, nll, var, tokens)
    dt, nll, var, tokens = best
    print(json.dumps({"sequences_per_s": len(recs) / dt, "elapsed_s": dt, "records": len(recs), "tokens": tokens,
                      "nats_per_token": nll / tokens, "se_nats_per_token": math.sqrt(var) / tokens, "mc": a.mc}))


if __name__ == "__main__":
    main()
