#!/usr/bin/env python3
"""tests/ref/gen_sample_fixture.py — PyTorch reference for dllm-sample's
diffusion sampler (tests/unit/test_sample.c compares against it).

Run once from the repository root (needs torch in the venv):

    /work/venv/bin/python tests/ref/gen_sample_fixture.py

Model: model A of tests/ref/gen_model_fixture.py (llama, untied, qkv bias,
RoPE half; weights from its integer-hash weight()), computed in float64 by
that script's plain-PyTorch forward.  Written as a checkpoint the C side
loads with -m:
  tests/data/sample/ckpt/config.json        (mask 299, eos 1, bos 0)
  tests/data/sample/ckpt/model.safetensors  (F32, ~520 KB)

Sampler: LLaDA's generate() (github.com/ML-GSAI/LLaDA generate.py: canvas
[prompt | G masks], blocks, get_num_transfer_tokens, CFG with the prompt
masked, add_gumbel_noise in float64, low_confidence / random remasking,
torch.topk commits), Fast-dLLM's threshold rule (get_transfer_index with
threshold: the best one always, the others when confidence >= tau; adaptive
steps per block), Dream's `origin` algorithm (reveal with probability
1 - s/t on t_j = 1 - j(1-eps)/steps), written from those programs' code,
with the choices dllm fixes documented in sample/sample.h and
sample/diffusion.c:
  * logits in float64 (the reference is the exact answer; the C side is
    fp32, so confidences agree to ~1e-6 and the test allows 1e-4);
  * the mask token and --suppress ids get -inf logits;
  * Gumbel-max: argmax(logits - T log(-log u)) (= LLaDA's
    exp(logits) / (-log u)^T), after --top-k / --top-p filtering;
  * ties in commits: lower position first (torch.topk leaves them open);
  * a schedule step with k = 0 is not run; a block without masks is
    skipped; an origin step revealing nothing runs no forward;
  * uniforms come from ONE sequential stream (the --noise file) in the
    order of sample/sample.h; rows of a batch advance in lockstep (each
    iteration: every unfinished row, in row order, takes its next step's
    uniforms), which the driver below reproduces with one generator per
    row;
  * --alg-temp a: the k largest conf/a - log(-log u) (Gumbel-top-k =
    sampling without replacement from softmax(conf/a), Dream's alg_temp).
Noise file: u[i] = ((splitmix64(NOISE_SEED + i) >> 11) + 0.5) / 2^53; the
C test writes exactly `noise_count` values, so a sampler that consumed more
fails ("noise file too short").

Writes tests/data/sample/fixture.json: per configuration its dllm-sample
arguments, prompts, noise_count, the expected trace lines (row, step, nfe,
block, committed [[pos, token, confidence]...]), the final ids per prompt
and per step the decision margins (smallest top-1 / top-2 score gap of a
committed candidate, gap between the last committed and the best
uncommitted key, distance of a confidence to the threshold).  Configurations
are chosen so those margins are far above fp32 rounding; the script refuses
to write a fixture whose margin is below MIN_MARGIN.
`make test` never runs this script.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixture as gm  # noqa: E402

OUT = "tests/data/sample"
V = gm.V
MASK, EOS, BOS = 299, 1, 0
NOISE_SEED = 0x5EED
MIN_MARGIN = 1e-4
M64 = (1 << 64) - 1


# ------------------------------------------------------------------ checkpoint
def write_ckpt(ps):
    d = os.path.join(OUT, "ckpt")
    os.makedirs(d, exist_ok=True)
    with open("tests/data/model/config.json") as f:
        cfg = json.load(f)
    cfg["bos_token_id"], cfg["eos_token_id"], cfg["mask_token_id"] = BOS, EOS, MASK
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    header, blobs, off = {}, [], 0
    for name in sorted(ps):
        a = ps[name].detach().numpy().astype("<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------ noise
def noise_values(n):
    with np.errstate(over="ignore"):
        z = np.uint64(NOISE_SEED) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


class Noise:
    """One sequential stream, shared by all rows (the --noise file)."""

    def __init__(self):
        self.vals = noise_values(1 << 22)
        self.cursor = 0

    def take(self, n):
        a = self.vals[self.cursor:self.cursor + n]
        assert len(a) == n, "enlarge the noise pool"
        self.cursor += n
        return torch.tensor(a, dtype=torch.float64)


# ------------------------------------------------------------------ model
PS = None


def model_logits(x, shift):
    """x (1, L) long -> (1, L, V) float64 logits of every position."""
    L = x.shape[1]
    with torch.no_grad():
        h = gm.hidden(PS, x, [L], "bidir", bias=True, layout="half")
        lg = gm.head(PS, h, list(range(L)), False).reshape(1, L, V)
    if shift:   # Dream: logits = cat([logits[:, :1], logits[:, :-1]])
        lg = torch.cat([lg[:, :1], lg[:, :-1]], dim=1)
    return lg


def get_num_transfer_tokens(mask_index, steps):   # LLaDA generate.py
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        num[i, :remainder[i]] += 1
    return num


def order_desc(key_row, ids=None):
    """indices sorted by key descending, index ascending on ties"""
    k = key_row.numpy()
    return [int(i) for i in np.lexsort((np.arange(len(k)), -k))]


def filter_scores(lg, scores, top_k, top_p, T):
    """lg (L,V) logits; scores (L,V) noised; -inf where top-k / top-p drop."""
    if not ((0 < top_k < V) or (0 < top_p < 1)):
        return scores
    out = torch.full_like(scores, -math.inf)
    for p in range(lg.shape[0]):
        l = lg[p].numpy()
        order = list(np.lexsort((np.arange(V), -l)))   # logit desc, id asc
        if 0 < top_k < V:
            order = order[:top_k]
        if 0 < top_p < 1:
            z = l[order] / T
            w = np.exp(z - z.max())
            w = w / w.sum()
            keep, c = 0, 0.0
            while keep < len(order) and (keep == 0 or c < top_p):
                c += w[keep]
                keep += 1
            order = order[:keep]
        out[p, order] = scores[p, order]
    return out


def step_candidates(x, lg, o, noise_g, margins):
    """x0 (L) candidates and conf (L) for every position, LLaDA style."""
    T = o["temperature"]
    if T > 0:
        u = noise_g.reshape(lg.shape)
        scores = lg - T * torch.log(-torch.log(u))    # add_gumbel_noise in log form
        scores = filter_scores(lg, scores, o["top_k"], o["top_p"], T)
    else:
        scores = lg
    x0 = torch.argmax(scores, dim=-1)
    s2 = torch.sort(scores, dim=-1, descending=True).values
    gap = (s2[:, 0] - s2[:, 1])
    p = torch.softmax(lg, dim=-1)
    return x0, p, gap


def sampler(row, prompt, o, noise, trace, margins):
    """Generator: yields after taking the uniforms of each step it runs."""
    Lp, G = len(prompt), o["gen_length"]
    L = Lp + G
    x = torch.full((1, L), MASK, dtype=torch.long)
    x[0, :Lp] = torch.tensor(prompt, dtype=torch.long)
    prompt_index = (x != MASK)
    infill = bool((x[0, :Lp] == MASK).any())
    r0 = 0 if infill else Lp
    region = L - r0
    bk = o["block_length"] if 0 < o["block_length"] < region else region
    nb = -(-region // bk) if region else 0
    S = o["steps"] or (int((x == MASK).sum()) if infill else G)
    spb = max(1, -(-S // nb)) if nb else 1
    nfe = 0
    taken = 0
    T = o["temperature"]
    for blk in range(nb):
        lo, hi = r0 + blk * bk, min(r0 + (blk + 1) * bk, L)
        block_mask_index = (x[:, lo:hi] == MASK)
        if int(block_mask_index.sum()) == 0:
            continue
        if o["alg"] == "llada" and not o["threshold"]:
            num_transfer = get_num_transfer_tokens(block_mask_index, spb)
        i = 0
        while True:
            if o["alg"] == "origin":
                if i >= spb:
                    break
                t = 1.0 - i * (1.0 - o["eps"]) / spb
                s = 1.0 - (i + 1) * (1.0 - o["eps"]) / spb
                p_transfer = 1.0 - s / t if i < spb - 1 else 1.0
                d = noise.take(L)
                step = blk * spb + i
                i += 1
                mask_index = (x[0] == MASK)
                reveal = mask_index.clone()
                reveal[:lo] = False
                reveal[hi:] = False
                reveal &= d < p_transfer
                if not bool(reveal.any()):
                    continue
                ng = noise.take(L * V) if T > 0 else None
                yield
                lg = forward(x, prompt_index, o)
                nfe += 2 if o["cfg"] else 1
                x0, p, gap = step_candidates(x, lg, o, ng, margins)
                sel = [int(q) for q in torch.nonzero(reveal).flatten()]
                conf = {q: float(p[q, x0[q]]) for q in sel}
                margins.append({"row": row, "step": step, "tok_gap": min(float(gap[q]) for q in sel)})
                commit(x, row, step, nfe, blk, sel, x0, conf, trace)
                continue
            # llada schedule or threshold
            if o["threshold"]:
                if int((x[0, lo:hi] == MASK).sum()) == 0:
                    break
                step = taken
            else:
                if i >= spb:
                    break
                k = int(num_transfer[0, i])
                step = blk * spb + i
                i += 1
                if k == 0:
                    continue
            ng = noise.take(L * V) if T > 0 else None
            nr = noise.take(L) if o["remask"] == "random" else None
            na = noise.take(L) if (o["alg_temp"] > 0 and not o["threshold"]) else None
            yield
            lg = forward(x, prompt_index, o)
            nfe += 2 if o["cfg"] else 1
            taken += 1
            x0, p, gap = step_candidates(x, lg, o, ng, margins)
            if o["remask"] == "low-confidence":
                x0_p = torch.gather(p, -1, x0[:, None])[:, 0]
            elif o["remask"] == "random":
                x0_p = nr.clone()
            elif o["remask"] == "margin":
                ps = torch.sort(p, dim=-1, descending=True).values
                x0_p = ps[:, 0] - ps[:, 1]
            else:   # entropy: sum p log p (0 log 0 = 0)
                x0_p = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(-1)
            mask_index = (x[0] == MASK)
            inblock = torch.zeros(L, dtype=torch.bool)
            inblock[lo:hi] = True
            confidence = torch.where(mask_index & inblock, x0_p, torch.tensor(-math.inf, dtype=torch.float64))
            key = confidence.clone()
            if na is not None:
                key = torch.where(mask_index & inblock, confidence / o["alg_temp"] - torch.log(-torch.log(na)),
                                  key)
            cand = [q for q in order_desc(key) if bool(mask_index[q] & inblock[q])]
            if o["threshold"]:
                sel = [cand[0]] + [q for q in cand[1:] if float(confidence[q]) >= o["threshold"]]
                thr = min(abs(float(confidence[q]) - o["threshold"]) for q in cand[1:]) if len(cand) > 1 else 1.0
                kgap = None
            else:
                sel = cand[:k]
                kgap = float(key[cand[k - 1]] - key[cand[k]]) if len(cand) > k else None
                thr = None
            margins.append({"row": row, "step": step, "tok_gap": min(float(gap[q]) for q in sel),
                            "key_gap": kgap, "thr_gap": thr})
            conf = {q: float(confidence[q]) for q in sel}
            commit(x, row, step, nfe, blk, sorted(sel), x0, conf, trace)
    ids = [int(v) for v in x[0]]
    if not o["keep_eos"]:
        for q in range(Lp, L):
            if ids[q] == EOS:
                ids = ids[:q + 1]
                break
    trace.append(("final", row, ids, nfe))


def forward(x, prompt_index, o):
    lg = model_logits(x, o["shift"])[0]
    if o["cfg"]:
        un_x = x.clone()
        un_x[prompt_index] = MASK
        un = model_logits(un_x, o["shift"])[0]
        lg = un + (o["cfg"] + 1) * (lg - un)
    lg = lg.clone()
    lg[:, MASK] = -math.inf
    for s in o["suppress"]:
        lg[:, s] = -math.inf
    return lg


def commit(x, row, step, nfe, blk, sel, x0, conf, trace):
    for q in sel:
        x[0, q] = x0[q]
    trace.append({"row": row, "step": step, "nfe": nfe, "block": blk,
                  "committed": [[q, int(x0[q]), conf[q]] for q in sel]})


def run(o, prompts):
    noise = Noise()
    trace, margins = [], []
    gens = [sampler(r, p, o, noise, trace, margins) for r, p in enumerate(prompts)]
    alive = list(range(len(gens)))
    while alive:
        nxt = []
        for r in alive:
            try:
                next(gens[r])
                nxt.append(r)
            except StopIteration:
                pass
        alive = nxt
    finals = {t[1]: (t[2], t[3]) for t in trace if isinstance(t, tuple)}
    steps = [t for t in trace if isinstance(t, dict)]
    return steps, finals, margins, noise.cursor


DEFAULTS = dict(gen_length=16, steps=0, block_length=0, temperature=0.0, top_k=0, top_p=1.0, cfg=0.0,
                remask="low-confidence", alg="llada", alg_temp=0.0, eps=1e-3, threshold=0.0, suppress=[],
                keep_eos=False, shift=False, batch=8)


def args_of(o):
    a = ["--gen-length", str(o["gen_length"]), "--steps", str(o["steps"]), "--block-length", str(o["block_length"]),
         "--temperature", repr(o["temperature"]), "--top-k", str(o["top_k"]), "--top-p", repr(o["top_p"]),
         "--cfg", repr(o["cfg"]), "--remask", o["remask"], "--alg", o["alg"], "--alg-temp", repr(o["alg_temp"]),
         "--eps", repr(o["eps"]), "--threshold", repr(o["threshold"]), "--batch", str(o["batch"])]
    if o["suppress"]:
        a += ["--suppress", ",".join(str(s) for s in o["suppress"])]
    if o["keep_eos"]:
        a.append("--keep-eos")
    if o["shift"]:
        a.append("--shift-logits")
    return a


def prompt_ids(seed, n):
    v = gm.weight("prompt%d" % seed, n, "norm", 0)   # any hash in [0.8, 1.2)
    return [2 + int((float(x) - 0.8) / 0.4 * 290) % 290 for x in v]


CONFIGS = [
    ("greedy_single_block", dict(gen_length=16, steps=16), [prompt_ids(1, 8)]),
    ("multi_block", dict(gen_length=24, steps=12, block_length=8), [prompt_ids(20, 6)]),
    ("random_remask", dict(gen_length=16, steps=8, block_length=8, remask="random"), [prompt_ids(3, 7)]),
    ("cfg", dict(gen_length=16, steps=8, block_length=8, cfg=1.5), [prompt_ids(4, 9)]),
    ("threshold", dict(gen_length=24, block_length=8, steps=24, threshold=0.03), [prompt_ids(15, 6)]),
    ("origin_shift", dict(gen_length=16, steps=6, alg="origin", shift=True), [prompt_ids(6, 7)]),
    ("temperature_topk", dict(gen_length=16, steps=8, block_length=8, temperature=0.8, top_k=40,
                              suppress=[2, 3]), [prompt_ids(7, 6)]),
    ("temperature_topp_margin", dict(gen_length=16, steps=8, temperature=1.0, top_p=0.9, remask="margin"),
     [prompt_ids(8, 5)]),
    ("entropy_alg_temp", dict(gen_length=16, steps=8, block_length=8, remask="entropy", alg_temp=0.5),
     [prompt_ids(9, 6)]),
    ("infill", dict(gen_length=4, steps=6, block_length=8),
     [prompt_ids(10, 4) + [MASK] * 3 + prompt_ids(11, 3) + [MASK] * 2 + prompt_ids(12, 2)]),
    ("batch_two_lengths", dict(gen_length=16, steps=8, block_length=8, temperature=0.7, batch=2),
     [prompt_ids(13, 5), prompt_ids(14, 11)]),
]


def main():
    global PS
    torch.set_grad_enabled(False)
    os.makedirs(OUT, exist_ok=True)
    PS = {k: v.detach() for k, v in gm.make_params(False, True).items()}
    write_ckpt(PS)
    out = {"version": 1, "noise_seed": NOISE_SEED, "mask_id": MASK, "eos_id": EOS, "configs": []}
    bad = 0
    for name, over, prompts in CONFIGS:
        o = dict(DEFAULTS)
        o.update(over)
        steps, finals, margins, ncount = run(o, prompts)
        tg = min(m["tok_gap"] for m in margins)
        kg = [m["key_gap"] for m in margins if m.get("key_gap") is not None]
        th = [m["thr_gap"] for m in margins if m.get("thr_gap") is not None]
        low = min([tg] + kg + th)
        print("%-26s steps %3d  noise %7d  margins: token %.2e key %s thr %s" %
              (name, len(steps), ncount, tg, "%.2e" % min(kg) if kg else "-", "%.2e" % min(th) if th else "-"))
        if low < MIN_MARGIN:
            print("  margin below %g: pick another configuration" % MIN_MARGIN)
            bad += 1
        out["configs"].append({
            "name": name, "args": args_of(o), "prompts": prompts, "noise_count": ncount,
            "trace": steps, "margins": margins,
            "final": [{"ids": finals[r][0], "nfe": finals[r][1], "n_prompt": len(prompts[r])}
                      for r in range(len(prompts))]})
    if bad:
        sys.exit("refusing to write: %d configurations with near ties" % bad)
    with open(os.path.join(OUT, "fixture.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
