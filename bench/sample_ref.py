#!/usr/bin/env python3
"""bench/sample_ref.py — reference sampler for `make bench` (bench/40-sample.sh):
LLaDA's generate() in plain PyTorch on the CPU over a dllm checkpoint.

The model: a LLaMA forward written here (embedding, per layer RMSNorm ->
q/k/v (+bias) -> RoPE rotate-half -> bidirectional GQA attention -> o_proj,
RMSNorm -> SwiGLU MLP; final RMSNorm -> head, tied or lm_head), fp32, read
from CKPT/config.json + CKPT/model.safetensors (HF Llama names; parsed here:
8-byte header length, JSON header, raw little-endian data).  As LLaDA's
reference it computes the logits of every canvas position at every step.

The sampler (LLaDA generate(), temperature 0, low-confidence remasking):
canvas [prompt | G masks]; G/B blocks of B positions; steps/(G/B) steps per
block; per step k tokens revealed, k from get_num_transfer_tokens (base =
n // steps, the first n % steps steps one more); candidate = argmax of the
logits; confidence = softmax(logits in float64)[candidate]; positions
after the current block get -inf; the k most confident masked positions
are committed.  --threshold TAU (Fast-dLLM): every masked position of the
block with confidence >= TAU is committed, always at least the most
confident one; the block ends when it has no mask left (adaptive steps).
NFE per row = forwards in which that row still had masks in its block.

Prompts: --prompts FILE, a JSON list of id lists or JSON Lines records with
"ids" (dllm-cat of a tokens stream), all the same length (one batch of rows:
no padding is needed).  Output (stdout): one JSON object
{"tokens_per_s", "elapsed_s", "nfe": [per row], "rows", "gen_length"}; with
--out FILE the final canvases (prompt + generated, untrimmed) as JSON Lines
{"ids": [...], "n_prompt": P, "nfe": n} (the shape of `dllm-cat` records).
Timing covers the sampling loop only (model load excluded); with --reps N
the best of N runs is reported.
Does not do: temperature > 0, CFG, other remasking rules, causal models,
shift_logits (the bench's model has none; this is a speed baseline and a
cross-check at temperature 0, not the fixture generator of tests/ref/).
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

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def read_safetensors(path):
    """{name: float32 torch tensor} from a .safetensors file (parsed by hand)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        dt = info["dtype"]
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt in DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[dt]).newbyteorder("<")).astype(np.float32)
        else:
            sys.exit(f"sample_ref: {path}: tensor {name}: dtype {dt} not supported")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


class Llama:
    def __init__(self, ckpt):
        with open(os.path.join(ckpt, "config.json")) as f:
            c = json.load(f)
        self.c = c
        self.D = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.K = c.get("num_key_value_heads") or self.H
        self.E = c.get("head_dim") or self.D // self.H
        self.eps = c.get("rms_norm_eps", 1e-5)
        self.theta = c.get("rope_theta", 10000.0)
        if c.get("rope_layout", "half") != "half":
            sys.exit("sample_ref: only rope_layout 'half' (HF rotate-half) is implemented")
        if c.get("shift_logits"):
            sys.exit("sample_ref: shift_logits models are not implemented")
        w = read_safetensors(os.path.join(ckpt, "model.safetensors"))
        self.w = w
        self.embed = w["model.embed_tokens.weight"]
        self.head = self.embed if c.get("tie_word_embeddings") or "lm_head.weight" not in w else w["lm_head.weight"]
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

    def rope_tables(self, T):
        if T != self.rope_T:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.E, 2, dtype=torch.float64) / self.E))
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], dim=-1)
            self.cos, self.sin = ang.cos().float(), ang.sin().float()
            self.rope_T = T
        return self.cos, self.sin

    def rope(self, x, cos, sin):  # x (B, h, T, E)
        h = self.E // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return x * cos + rot * sin

    @torch.no_grad()
    def forward(self, ids):  # ids (B, T) long -> logits (B, T, V)
        B, T = ids.shape
        cos, sin = self.rope_tables(T)
        x = F.embedding(ids, self.embed)
        for ly in self.layers:
            h = self.rmsnorm(x, ly["an"])
            q = F.linear(h, ly["wq"], ly["bq"]).view(B, T, self.H, self.E).transpose(1, 2)
            k = F.linear(h, ly["wk"], ly["bk"]).view(B, T, self.K, self.E).transpose(1, 2)
            v = F.linear(h, ly["wv"], ly["bv"]).view(B, T, self.K, self.E).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if self.K != self.H:
                k = k.repeat_interleave(self.H // self.K, dim=1)
                v = v.repeat_interleave(self.H // self.K, dim=1)
            att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(self.E), dim=-1)  # bidirectional
            o = (att @ v).transpose(1, 2).reshape(B, T, self.H * self.E)
            x = x + F.linear(o, ly["wo"])
            h = self.rmsnorm(x, ly["mn"])
            x = x + F.linear(F.silu(F.linear(h, ly["wg"])) * F.linear(h, ly["wu"]), ly["wd"])
        return F.linear(self.rmsnorm(x, self.norm), self.head)


def num_transfer_tokens(n_masked, steps):  # LLaDA's get_num_transfer_tokens, one row
    base, rem = divmod(int(n_masked), steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


@torch.no_grad()
def generate(model, prompt, mask_id, gen_length, steps, block_length, threshold=None):
    """LLaDA generate() at temperature 0, low-confidence remasking (+ Fast-dLLM threshold)."""
    B, P = prompt.shape
    x = torch.full((B, P + gen_length), mask_id, dtype=torch.long)
    x[:, :P] = prompt
    n_blocks = gen_length // block_length
    spb = steps // n_blocks
    nfe = [0] * B
    for nb in range(n_blocks):
        lo, hi = P + nb * block_length, P + (nb + 1) * block_length
        sched = [num_transfer_tokens((x[b, lo:hi] == mask_id).sum(), spb) for b in range(B)]
        i = 0
        while True:
            mask_index = x == mask_id
            left = mask_index[:, lo:hi].sum(dim=1)
            if threshold is None and i >= spb:
                break
            if threshold is not None and int(left.max()) == 0:
                break
            logits = model.forward(x)
            x0 = torch.argmax(logits, dim=-1)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, hi:] = -np.inf
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, x0_p, torch.tensor(-np.inf, dtype=torch.float64))
            for b in range(B):
                if int(left[b]) == 0:
                    continue
                nfe[b] += 1
                k = int(left[b]) if threshold is not None else sched[b][i]
                if k == 0:
                    continue
                val, idx = torch.topk(conf[b], k=k)
                if threshold is not None:
                    keep = val >= threshold
                    keep[0] = True
                    idx = idx[keep]
                x[b, idx] = x0[b, idx]
            i += 1
    return x, nfe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--prompts", required=True, help="JSON list of id lists or JSON Lines {ids}, equal lengths")
    ap.add_argument("--gen-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", help="write the final canvases as JSON Lines")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = Llama(a.ckpt)
    mask_id = model.c.get("mask_token_id")
    if mask_id is None:
        sys.exit("sample_ref: config.json has no mask_token_id")
    with open(a.prompts) as f:
        text = f.read()
    try:
        prompts = json.loads(text)
    except ValueError:  # JSON Lines records (dllm-cat output): their "ids"
        prompts = [json.loads(l)["ids"] for l in text.splitlines() if l.strip() and '"ids"' in l]
    if len({len(p) for p in prompts}) != 1:
        sys.exit("sample_ref: prompts must all have the same length")
    prompt = torch.tensor(prompts, dtype=torch.long)
    if a.gen_length % a.block_length or a.steps % (a.gen_length // a.block_length):
        sys.exit("sample_ref: gen-length % block-length and steps % blocks must be 0")
    best = None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        x, nfe = generate(model, prompt, mask_id, a.gen_length, a.steps, a.block_length, a.threshold)
        el = time.perf_counter() - t0
        best = el if best is None else min(best, el)
    if a.out:
        with open(a.out, "w") as f:
            for row, n in zip(x.tolist(), nfe):
                f.write(json.dumps({"ids": row, "n_prompt": prompt.shape[1], "nfe": n}, separators=(",", ":")) + "\n")
    print(json.dumps({"tokens_per_s": len(prompts) * a.gen_length / best, "elapsed_s": best,
                      "nfe": nfe, "rows": len(prompts), "gen_length": a.gen_length}))


if __name__ == "__main__":
    main()
