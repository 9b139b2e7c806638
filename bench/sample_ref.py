#!/usr/bin/env python3
"""bench/sample_ref.py — reference sampler for `make bench` (bench/40-sample.sh):
LLaDA's generate() in plain PyTorch on the CPU over a dllm checkpoint.

The model: bench/ref_llama.py's LLaMA forward (embedding, per layer RMSNorm ->
q/k/v (+bias) -> RoPE rotate-half -> bidirectional GQA attention -> o_proj,
RMSNorm -> SwiGLU MLP; final RMSNorm -> head, tied or lm_head), fp32, read
from CKPT/config.json + CKPT/model.safetensors (HF Llama names; parsed by hand:
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
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_llama import Llama  # noqa: E402  (bench/ref_llama.py)


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
    mask_id = model.mask_id
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
