#!/usr/bin/env python3
"""bench/score_ref.py — reference Monte-Carlo ELBO estimator for `make bench`
(bench/50-score.sh): the MDLM / LLaDA perplexity bound in plain PyTorch on the
CPU over a dllm checkpoint.

Model: bench/ref_llama.py's LLaMA forward with sdpa=True (embedding, per layer RMSNorm -> q/k/v
(+bias) -> RoPE rotate-half -> bidirectional GQA attention
(F.scaled_dot_product_attention) -> o_proj, RMSNorm -> SwiGLU MLP; final
RMSNorm -> head, tied or lm_head), fp32, from CKPT/config.json +
CKPT/model.safetensors (parsed by hand: 8-byte header length, JSON header, raw
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
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_llama import Llama  # noqa: E402  (bench/ref_llama.py)


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
    model = Llama(a.ckpt, sdpa=True)
    mask_id = model.mask_id
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
