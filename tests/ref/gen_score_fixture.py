#!/usr/bin/env python3
"""tests/ref/gen_score_fixture.py — PyTorch references for dllm-score's
estimators (tests/unit/test_score.c compares against them).

Run once from the repository root after `make` (needs torch and tokenizers in
the venv; part 2 runs bin/dllm-train to convert stories260K):

    /work/venv/bin/python tests/ref/gen_score_fixture.py

1. tests/data/score/cond.json — LLaDA's conditional log-likelihood
   (github.com/ML-GSAI/LLaDA get_log_likelihood.py: forward_process,
   get_logits with cfg, get_log_likelihood), written from that code, on
   model A of tests/ref/gen_model_fixture.py (weights from its integer-hash
   weight(), forward in float64 by its plain-PyTorch LLaMA).  The two
   random draws of forward_process are replaced by dllm's (score/estimate.c),
   reproduced here bit for bit from Philox4x32-10 (share/io/dl_rng.c):
     group g of the record (copy g, purpose DL_RNG_SCORE = 8):
       k = 1 + below(T); then per row a Fisher-Yates permutation
       (for j = T-1 .. 1: swap(perm[j], perm[below(j + 1)]))
   in place of torch.randint / torch.randperm.  Everything else is LLaDA's:
   x = round(linspace(k, k + (b-1) T/b, b)) (torch.round: half to even),
   x = ((x - 1) mod T) + 1, is_mask = (arange(T) < x)[perm], the prompt never
   masked, loss = ce / (x / T), sum / b, mean over groups, negated.  The
   script also asserts that torch's float32 linspace rounding equals the C
   side's exact integer formula on every case.  With an uneven last group
   (mc % batch != 0) the C side averages over all mc rows; so does this
   reference (LLaDA itself only runs mc // batch full groups).
   Cases: one group, several groups with rounding ties (T/b = 1.5, 2.5), an
   uneven last group, --cfg 0.5 and 2 (un = prompt masked,
   logits = un + (w+1)(cond - un)), a single-token answer, no prompt.
   The C side (fp32 forward) must match to 1e-5 relative.

2. tests/data/score/causal_stories260k.json — per-token log-probabilities
   log p(x_i | x_<i) of the converted stories260K (bin/dllm-train --init
   share/data/stories260K/stories260K.bin --steps 0), from an independent
   float64 HF-Llama forward written here (rotate_half RoPE, GQA, tied head)
   over the checkpoint's model.safetensors, on a few TinyStories sentences
   tokenized with the checkpoint's tokenizer.json by HF `tokenizers`, BOS
   first.  The C side (sc_causal_logprobs) must match within 1e-4.

`make test` never runs this script.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixture as gm  # noqa: E402

OUT = "tests/data/score"
M32 = 0xFFFFFFFF
DL_RNG_SCORE = 8


# ------------------------------------------------------------------ Philox (share/io/dl_rng.c)
def philox(key, ctr):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = p0 >> 32, p0 & M32
        hi1, lo1 = p1 >> 32, p1 & M32
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0) & M32, lo1, (hi0 ^ c3 ^ k1) & M32, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return [c0, c1, c2, c3]


class Rng:
    def __init__(self, seed, index, copy, purpose):
        self.key = [seed & M32, (seed >> 32) & M32]
        self.ctr = [index & M32, (index >> 32) & M32, ((copy << 8) | (purpose & 0xFF)) & M32, 0]
        self.buf, self.used = None, 4

    def u32(self):
        if self.used == 4:
            self.buf = philox(self.key, self.ctr)
            self.ctr[3] = (self.ctr[3] + 1) & M32
            self.used = 0
        v = self.buf[self.used]
        self.used += 1
        return v

    def below(self, n):   # Lemire with rejection, as dl_rng_below
        m = self.u32() * n
        low = m & M32
        if low < n:
            thresh = ((1 << 32) - n) % n
            while low < thresh:
                m = self.u32() * n
                low = m & M32
        return m >> 32


def philox_selftest():
    # Random123's known-answer test for philox4x32-10 (key 0, ctr 0)
    assert philox([0, 0], [0, 0, 0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


# ------------------------------------------------------------------ LLaDA's estimator
def stratified_exact(k, i, T, b):
    num = k * b + i * T
    q, r = divmod(num, b)
    if 2 * r > b or (2 * r == b and q % 2 == 1):
        q += 1
    return (q - 1) % T + 1


def forward_process(seq_b, n_prompt, mask_id, rng, b):
    """LLaDA's forward_process with dllm's draws (k, permutations from rng)."""
    target_len = seq_b.shape[1] - n_prompt
    k = 1 + rng.below(target_len)                       # torch.randint(1, target_len + 1, ())
    x = torch.round(torch.linspace(float(k), k + (b - 1) * (target_len / b), steps=b)).long()
    x = ((x - 1) % target_len) + 1
    assert x.min() >= 1 and x.max() <= target_len
    exact = [stratified_exact(k, i, target_len, b) for i in range(b)]
    assert x.tolist() == exact, (k, target_len, b, x.tolist(), exact)
    indices = torch.arange(target_len).repeat(b, 1)
    is_mask = indices < x.unsqueeze(1)
    perms = []
    for i in range(b):
        perm = list(range(target_len))
        for j in range(target_len - 1, 0, -1):
            s = rng.below(j + 1)
            perm[j], perm[s] = perm[s], perm[j]
        perms.append(perm)
        is_mask[i] = is_mask[i][torch.tensor(perm)]      # torch.randperm(target_len)
    is_mask = torch.cat((torch.zeros(b, n_prompt, dtype=torch.bool), is_mask), dim=1)
    noisy = torch.where(is_mask, torch.tensor(mask_id), seq_b)
    return noisy, (x / target_len).unsqueeze(1).repeat(1, seq_b.shape[1]).double(), k, x.tolist()


def model_a_logits(ps, ids):
    Bn, Tn = ids.shape
    h = gm.hidden(ps, ids, [Tn] * Bn, "bidir")
    return gm.head(ps, h, torch.arange(Bn * Tn), False).view(Bn, Tn, -1)


def get_logits(ps, batch, n_prompt, cfg_scale, mask_id):
    if cfg_scale > 0.0:
        un_batch = batch.clone()
        un_batch[:, :n_prompt] = mask_id
        batch = torch.cat([batch, un_batch])
    logits = model_a_logits(ps, batch)
    if cfg_scale > 0.0:
        logits, un_logits = torch.chunk(logits, 2, dim=0)
        logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
    return logits


def get_log_likelihood(ps, prompt, answer, mc, batch, cfg, seed, index, mask_id):
    seq = torch.tensor(prompt + answer)[None, :]
    rows, ks, xs = [], [], []
    g, done = 0, 0
    while done < mc:
        b = min(batch, mc - done)
        rng = Rng(seed, index, g, DL_RNG_SCORE)
        perturbed, p_mask, k, x = forward_process(seq.repeat(b, 1), len(prompt), mask_id, rng, b)
        mask_index = perturbed == mask_id
        logits = get_logits(ps, perturbed, len(prompt), cfg, mask_id)
        sb = seq.repeat(b, 1)
        loss = torch.nn.functional.cross_entropy(logits[mask_index], sb[mask_index], reduction="none") / p_mask[mask_index]
        # per-row sums (LLaDA: loss.sum() / batch_size, then the mean over groups)
        row_of = torch.arange(b)[:, None].repeat(1, seq.shape[1])[mask_index]
        per_row = torch.zeros(b, dtype=torch.float64).index_add_(0, row_of, loss)
        rows += per_row.tolist()
        ks.append(k)
        xs.append(x)
        done += b
        g += 1
    return -sum(rows) / len(rows), ks, xs, rows


def part_cond():
    ps = gm.make_params(False, True)
    for p in ps.values():
        p.requires_grad_(False)
    mask_id = gm.MASK_ID
    rng = np.random.default_rng(4)

    def ids(n):
        return [int(v) for v in rng.integers(2, gm.V - 1, size=n)]

    cases = [
        ("one group", 5, 7, 8, 8, 0.0, 1, 0),
        ("3 groups, ties (T/b = 1.5)", 3, 6, 12, 4, 0.0, 2, 5),
        ("ties T/b = 2.5", 4, 5, 4, 2, 0.0, 9, 3),
        ("uneven last group", 4, 5, 10, 4, 0.0, 3, 7),
        ("cfg 0.5", 6, 4, 6, 3, 0.5, 4, 11),
        ("cfg 2", 3, 3, 4, 4, 2.0, 5, 1 << 33),
        ("single-token answer", 8, 1, 1, 1, 0.0, 6, 2),
        ("no prompt", 0, 6, 8, 8, 0.0, 7, 9),
        ("long answer", 10, 40, 16, 16, 0.0, 8, 123),
    ]
    out = []
    for name, np_, nr, mc, batch, cfg, seed, index in cases:
        prompt, answer = ids(np_), ids(nr)
        with torch.no_grad():
            ll, ks, xs, rows = get_log_likelihood(ps, prompt, answer, mc, batch, cfg, seed, index, mask_id)
        t = np.array(rows)
        se = float(t.std(ddof=1) / math.sqrt(len(t))) if len(t) > 1 else None
        out.append({"name": name, "prompt": prompt, "answer": answer, "mc": mc, "batch": batch, "cfg": cfg,
                    "seed": seed, "index": index, "k": ks, "x": xs, "ll": ll, "se": se})
        print(f"  cond {name:32s} ll {ll:.6f}  k {ks}")
    return {"version": 1, "model": "tests/ref/gen_model_fixture.py model A", "config": "tests/data/model/config.json",
            "cases": out}


# ------------------------------------------------------------------ stories260K, causal
def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e["dtype"]
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(e["shape"])
        out[name] = torch.tensor(arr.astype(np.float64))
    return out


def llama_logprobs(cfg, w, ids):
    """Causal HF Llama forward (float64), log p(ids[i] | ids[<i]) for i >= 1."""
    D, H, Hk = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    E = cfg.get("head_dim") or D // H
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    assert cfg.get("rope_layout", "half") == "half"
    Tn = len(ids)

    def norm(x, g):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g

    inv = theta ** (-torch.arange(0, E, 2, dtype=torch.float64) / E)
    ang = torch.arange(Tn, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rot(x):   # (T, heads, E), HF apply_rotary_pos_emb with rotate_half
        x1, x2 = x[..., : E // 2], x[..., E // 2:]
        return x * cos[:, None, :] + torch.cat([-x2, x1], -1) * sin[:, None, :]

    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q = rot((h @ w[p + "self_attn.q_proj.weight"].T).view(Tn, H, E))
        k = rot((h @ w[p + "self_attn.k_proj.weight"].T).view(Tn, Hk, E))
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(Tn, Hk, E)
        k = k.repeat_interleave(H // Hk, dim=1)
        v = v.repeat_interleave(H // Hk, dim=1)
        s = torch.einsum("ihe,jhe->hij", q, k) / math.sqrt(E)
        s = s.masked_fill(~causal, float("-inf"))
        o = torch.einsum("hij,jhe->ihe", torch.softmax(s, -1), v).reshape(Tn, H * E)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        x = x + (torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)) \
            @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    lp = torch.log_softmax(x @ head.T, -1)
    return [float(lp[i - 1, ids[i]]) for i in range(1, Tn)]


def part_causal():
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "s")
        subprocess.run(["bin/dllm-train", "-q", "--init", "share/data/stories260K/stories260K.bin", "-o", ck,
                        "--steps", "0"], check=True)
        cfg = json.load(open(os.path.join(ck, "config.json")))
        w = read_safetensors(os.path.join(ck, "model.safetensors"))
        tok = Tokenizer.from_file(os.path.join(ck, "tokenizer.json"))
    text = open("share/data/tinystories/tinystories_val.txt", encoding="utf-8").read()
    sents = [s.strip() + "." for s in text.replace("\n", " ").split(".") if len(s.strip()) > 40][:4]
    out = []
    for s in sents:
        ids = [cfg["bos_token_id"]] + tok.encode(s, add_special_tokens=False).ids
        with torch.no_grad():
            lp = llama_logprobs(cfg, w, ids)
        out.append({"text": s, "ids": ids, "logprobs": lp})
        print(f"  causal {len(ids):3d} ids, sum log p {sum(lp):.4f}: {s[:50]}")
    return {"version": 1, "checkpoint": "bin/dllm-train --init share/data/stories260K/stories260K.bin --steps 0",
            "sentences": out}


def main():
    philox_selftest()
    torch.set_grad_enabled(False)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "cond.json"), "w") as f:
        json.dump(part_cond(), f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "causal_stories260k.json"), "w") as f:
        json.dump(part_causal(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
