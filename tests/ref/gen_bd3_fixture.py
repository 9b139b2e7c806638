#!/usr/bin/env python3
"""tests/ref/gen_bd3_fixture.py — PyTorch reference of the BD3LM (block
diffusion) training loss for tests/unit/test_bd3.c.

Run once from the repository root (needs torch in the venv):

    /work/venv/bin/python tests/ref/gen_bd3_fixture.py

Model A and the masked batch of tests/ref/gen_model_fixture.py (imported:
same weights formula, B=3 rows of L=16, lens, prompts, t), run the BD3LM way
(kuleshov-group/bd3lms, ZHZisZZ/dllm): each row is [x_t ; x_0] (2L ids, both
halves at RoPE positions 0..L-1) with the three-part mask of bd3lms'
block_diff_mask, written out independently of the C side:
  block diagonal     q, kv in the same half and the same block
  offset causal      q in x_t, kv in x_0, block(kv) <  block(q)
  block causal       q, kv in x_0,        block(kv) <= block(q)
plus the random-length cut: keys with (kv mod L) >= lens[b] invisible.
Loss at the masked positions of the x_t half (targets x_0), dl_loss.h `all`
normalisation.  Float64 from float32 weights.

Writes tests/data/bd3/fixture.json: block, sel (b*L + i), ce (M), loss_all,
grad_sums {tensor: [sum, sum |g|, sum g^2]} and grad_sample {tensor: every
s-th element, s = (numel // 256) | 1} of loss_all's gradient.
`make test` never runs this script.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixture as g  # noqa: E402

BLOCK = 4
OUT = "tests/data/bd3"


def bd3_mask(n, lens, block):
    """(B,1,2n,2n) bool: bd3lms block_diff_mask, then the lens cut."""
    q = torch.arange(2 * n)[:, None]
    kv = torch.arange(2 * n)[None, :]
    x0q, x0kv = q >= n, kv >= n
    bq = torch.where(x0q, (q - n) // block, q // block)
    bkv = torch.where(x0kv, (kv - n) // block, kv // block)
    diag = (bq == bkv) & (x0q == x0kv)
    offset = (bq > bkv) & x0kv & ~x0q
    causal = (bq >= bkv) & x0kv & x0q
    ok = (diag | offset | causal)[None].repeat(len(lens), 1, 1)
    for b, m in enumerate(lens):
        ok[b, :, (kv[0] % n) >= m] = False
    return ok[:, None]


def rope_at(x, pos):
    E = g.E
    j = torch.arange(E // 2, dtype=torch.float64)
    freq = g.THETA ** (-2.0 * j / E)
    ang = pos.to(torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    a, b = x[..., : E // 2], x[..., E // 2:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)


def hidden_bd3(ps, ids, lens):
    Bn, Tn = ids.shape
    n = Tn // 2
    pos = torch.arange(Tn) % n
    mask = bd3_mask(n, lens, BLOCK)
    x = ps["model.embed_tokens.weight"][ids]
    E, HQ, HK = g.E, g.HQ, g.HK
    for i in range(g.L):
        p = f"model.layers.{i}."
        h = g.rmsnorm(x, ps[p + "input_layernorm.weight"])

        def proj(nm, H):
            y = h @ ps[p + f"self_attn.{nm}_proj.weight"].T + ps[p + f"self_attn.{nm}_proj.bias"]
            return y.view(Bn, Tn, H, E)

        q, k, v = rope_at(proj("q", HQ), pos), rope_at(proj("k", HK), pos), proj("v", HK)
        k = k.repeat_interleave(HQ // HK, dim=2)
        v = v.repeat_interleave(HQ // HK, dim=2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(E)
        s = s.masked_fill(~mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(Bn, Tn, HQ * E)
        x = x + o @ ps[p + "self_attn.o_proj.weight"].T
        h = g.rmsnorm(x, ps[p + "post_attention_layernorm.weight"])
        gt = h @ ps[p + "mlp.gate_proj.weight"].T
        u = h @ ps[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gt) * u) @ ps[p + "mlp.down_proj.weight"].T
    return x


def main():
    os.makedirs(OUT, exist_ok=True)
    x0, xt, t, n_prompt, lens, masked, elig = g.make_batch()
    B, T = g.B, g.T
    sel = [b * T + i for b in range(B) for i in range(T) if masked[b, i]]
    row = [s // T for s in sel]
    tm = [float(t[r]) for r in row]
    targets = torch.tensor([int(x0[s // T, s % T]) for s in sel])
    tot = (float(B), float(elig), float(len(sel)))
    ids = torch.tensor(np.concatenate([xt, x0], axis=1))   # (B, 2T): [x_t ; x_0]
    sel2 = [r * 2 * T + s % T for r, s in zip(row, sel)]    # the x_t half's hidden rows
    ps = g.make_params(False, True)
    ce = g.ce_of(g.head(ps, hidden_bd3(ps, ids, lens), sel2, False), targets)
    loss = g.loss_of(ce, row, tm, n_prompt, "all", 0, 0, tot)
    loss.backward()
    sums, sample = {}, {}
    for name, *_ in g.tensor_list(False, True):
        gr = ps[name].grad.numpy().ravel()
        sums[name] = [float(gr.sum()), float(np.abs(gr).sum()), float((gr * gr).sum())]
        sample[name] = [float(v) for v in gr[:: (gr.size // 256) | 1]]
    fx = {"version": 1, "block": BLOCK, "sel": sel, "ce": [float(v) for v in ce.detach().numpy()],
          "loss_all": float(loss.item()), "grad_sums": sums, "grad_sample": sample}
    with open(os.path.join(OUT, "fixture.json"), "w") as f:
        json.dump(fx, f)
    print(f"{OUT}/fixture.json: {len(sel)} masked positions, loss {loss.item():.9g}")


if __name__ == "__main__":
    main()
