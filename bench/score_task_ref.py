#!/usr/bin/env python3
"""bench/score_task_ref.py — reference multiple-choice scorer for `make bench`
(bench/51-score_tasks.sh): what `dllm-score --task` computes, in plain
PyTorch on the CPU, over a dllm checkpoint.

Items: JSON Lines {"query", "choices", "gold"} (ARC / PIQA / COPA layout).
Text of option j = strip(query) + delimiter + strip(choice_j) (ASCII
whitespace stripped, llm-foundry's strip_dataset), cut before the trailing
spaces of query + delimiter: context | continuation.  Both are encoded
separately with the checkpoint's tokenizer.json (HF `tokenizers`,
add_special_tokens=False); when " a" does not encode to one token (a
SentencePiece-style tokenizer that prepends its own word-start marker) one
leading space of the continuation is dropped first (llm-foundry's
tokenizer_needs_prefix_space).  Same rules as score/task.c.

Per option, log p(continuation | context):
  diffusion (default): LLaDA's get_log_likelihood with mc_num = batch = --mc:
    answer length T, k ~ U{1..T}, row i masks ((round(k + i*T/b) - 1) mod T) + 1
    answer tokens chosen by a random permutation (the prompt never), one
    bidirectional forward over the b rows, estimate = -mean_i sum_masked ce / (x_i/T);
  --causal: exact chain rule, sum of log p(x_i | x_<i) over the continuation
    (causal attention).
acc = mean(argmax_j ll_j == gold); acc_norm with ll_j / len(choice_j)
(characters).  Random draws come from torch's generator (--seed), not from
dllm's Philox: diffusion estimates agree with dllm-score in distribution
only; causal ones agree to float rounding.

The model: bench/ref_llama.py's LLaMA forward (embedding; per layer RMSNorm ->
q/k/v (+bias) -> RoPE rotate-half -> GQA attention (bidirectional or causal)
-> o_proj; RMSNorm -> SwiGLU MLP; final RMSNorm -> head, tied or lm_head),
fp32, from CKPT/config.json + CKPT/model.safetensors parsed by hand.

Output (stdout): one JSON object {"items", "items_per_s", "elapsed_s",
"acc", "acc_norm", "forwards"}; with --out FILE one JSON line per item
{"index", "ll": [...], "choice", "choice_norm", "gold"}.  Timing covers
tokenisation and scoring (torch import and model load excluded); with
--reps N the best of N runs.
Does not do: schema / LAMBADA layouts, --cfg, BOS, context truncation,
shift_logits models.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_llama import Llama  # noqa: E402  (bench/ref_llama.py)

WS = " \t\n\r\v\f"


@torch.no_grad()
def loglik_diffusion(model, prompt, answer, mc, gen):
    """LLaDA's stratified Monte-Carlo estimate of log p(answer | prompt), mc rows in one forward."""
    P, T, b = len(prompt), len(answer), mc
    seq = torch.tensor(prompt + answer, dtype=torch.long).repeat(b, 1)
    k = int(torch.randint(1, T + 1, (), generator=gen))
    x = torch.round(torch.linspace(float(k), k + (b - 1) * (T / b), steps=b)).long()
    x = ((x - 1) % T) + 1                                   # masked answer tokens per row
    is_mask = torch.arange(T).repeat(b, 1) < x[:, None]
    for i in range(b):
        is_mask[i] = is_mask[i][torch.randperm(T, generator=gen)]
    is_mask = torch.cat([torch.zeros(b, P, dtype=torch.bool), is_mask], dim=1)
    noisy = torch.where(is_mask, torch.full_like(seq, model.mask_id), seq)
    logits = model.forward(noisy)
    ce = F.cross_entropy(logits[is_mask].double(), seq[is_mask], reduction="none")
    p = (x.double() / T)[:, None].expand(b, P + T)[is_mask]
    return -float((ce / p).sum()) / b


@torch.no_grad()
def loglik_causal(model, prompt, answer):
    seq = torch.tensor([prompt + answer], dtype=torch.long)
    lp = torch.log_softmax(model.forward(seq, causal=True)[0].double(), dim=-1)
    P = len(prompt)
    return float(sum(lp[P - 1 + i, t] for i, t in enumerate(answer)))


def pairs(item, delim):
    """[(context, continuation, chars)] of an mc item (task_internal.h's rule)."""
    q = item["query"].strip(WS)
    out = []
    for ch in item["choices"]:
        c = ch.strip(WS)
        s = q + delim
        k = len(s.rstrip(" "))
        out.append((s[:k], s[k:] + c, len(c)))
    return out


def run(model, tok, items, delim, mc, causal, seed):
    gen = torch.Generator().manual_seed(seed)
    drop = len(tok.encode(" a", add_special_tokens=False).ids) != 1
    res, acc, accn, fw = [], 0, 0, 0
    t0 = time.perf_counter()
    for idx, it in enumerate(items):
        lls, norm = [], []
        for ctx, cont, chars in pairs(it, delim):
            if drop and cont.startswith(" "):
                cont = cont[1:]
            p = tok.encode(ctx, add_special_tokens=False).ids
            a = tok.encode(cont, add_special_tokens=False).ids
            ll = loglik_causal(model, p, a) if causal else loglik_diffusion(model, p, a, mc, gen)
            fw += 1
            lls.append(ll)
            norm.append(ll / chars)
        c, cn = int(np.argmax(lls)), int(np.argmax(norm))
        acc += c == it["gold"]
        accn += cn == it["gold"]
        res.append({"index": idx, "ll": lls, "choice": c, "choice_norm": cn, "gold": it["gold"]})
    return time.perf_counter() - t0, res, acc, accn, fw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--task", required=True, help="JSONL {query, choices, gold}")
    ap.add_argument("--delimiter", default=" ", help="as dllm-score: escapes \\n \\t \\r \\\\ expanded")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--mc", type=int, default=1)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    delim = a.delimiter.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r").replace("\0", "\\")
    with open(a.task) as f:
        items = [json.loads(line) for line in f if line.strip()]
    if a.limit:
        items = items[:a.limit]
    model = Llama(a.ckpt)
    tok = Tokenizer.from_file(os.path.join(a.ckpt, "tokenizer.json"))
    causal = a.causal or model.causal_ckpt
    if not causal and model.mask_id is None:
        sys.exit("score_task_ref: the checkpoint has no mask_token_id")
    best = None
    for _ in range(max(1, a.reps)):
        r = run(model, tok, items, delim, a.mc, causal, a.seed)
        if best is None or r[0] < best[0]:
            best = r
    secs, res, acc, accn, fw = best
    if a.out:
        with open(a.out, "w") as f:
            for r in res:
                f.write(json.dumps(r) + "\n")
    n = len(items)
    print(json.dumps({"items": n, "items_per_s": n / secs, "elapsed_s": secs, "acc": acc / n,
                      "acc_norm": accn / n, "forwards": fw, "causal": causal, "mc": a.mc}))


if __name__ == "__main__":
    main()
