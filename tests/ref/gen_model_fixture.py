#!/usr/bin/env python3
"""tests/ref/gen_model_fixture.py — PyTorch reference for tests/unit/test_model.c.

Run once from the repository root (needs torch in the venv):

    /work/venv/bin/python tests/ref/gen_model_fixture.py

An independent, plain PyTorch LLaMA (no transformers): embedding, per layer
RMSNorm -> q/k/v (+bias) -> RoPE -> GQA attention (bidirectional / causal /
block, keys at positions >= len invisible) -> o_proj -> residual -> RMSNorm
-> down(silu(gate) * up) -> residual, final RMSNorm, head (tied or lm_head).
Computed in float64 from float32 weights, so the fixture is the exact answer
and the C test's tolerance measures only the C side's fp32 rounding.

Weights are not stored: both sides generate them from the formula in
`weight()` (splitmix64 of FNV-1a(name) + element index -> uniform), which
keeps tests/data/model under 1 MB while storing full gradients.

Writes tests/data/model/:
  config.json        model A (llama, untied, qkv bias, rope half) in HF form
  config_b.json      model B (llama, tied, no bias, rope pairs)
  fixture.json       version, batch (inline ints), scalars (losses), and the
                     index {name: [offset, count]} of the arrays in fixture.bin
  fixture.bin.zst    little-endian float32 arrays (zstd; dl_read_file reads it)
Arrays / scalars (A unless "b_" prefix):
  logits             (M,V) at the masked positions, bidirectional forward
  ce                 (M) per masked position
  loss/<norm>[+uniform][+path]   every combination, from ce by the dl_loss.h
                     formulas (float64)
  grad_all/<tensor>  gradient of loss `all`
  grad_resp/<tensor> gradient of loss `response` + uniform + path
  causal: loss_causal (next-token on x0, causal mask), grad_causal/<tensor>
         (sampled, see below)
  shift: loss_shift (`all` with shift_logits: target i from hidden i-1)
  block: loss_block (`all`, block attention, block 4)
  b_ce, b_loss_all, b_grad_all/<tensor>  tied / no-bias / pairs model (sampled)
  Sampled gradients (to stay under 1 MB): every s-th element, s =
  (numel // 256) | 1, plus <set>_sums/<tensor> = [sum, sum |g|, sum g^2].
  adamw_loss         (10) loss `all` before each of 10 AdamW steps (lr 1e-2,
                     betas .9/.95, eps 1e-8, wd .1 on matrices only, global
                     grad-norm clip 1.0 as torch.nn.utils.clip_grad_norm_),
  adamw_gnorm        (10) the unclipped gradient norms
`make test` never runs this script.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import zstandard

OUT = "tests/data/model"
V, D, L, HQ, HK, F, T, B = 300, 64, 2, 4, 2, 172, 16, 3
E = D // HQ
MASK_ID = V - 1
EPS, THETA = 1e-5, 10000.0
M64 = (1 << 64) - 1


# ------------------------------------------------------------------ weights
def fnv1a(s):
    h = 1469598103934665603
    for ch in s.encode():
        h ^= ch
        h = (h * 1099511628211) & M64
    return h


def weight(name, n, kind, fan_in):
    """uniform in [-a, a): u = top 24 bits of splitmix64(fnv1a(name) + j) / 2^24.
    kind 'mat' (embedding too): a = sqrt(3 / fan_in), std 1/sqrt(fan_in);
    'norm': 1 + 0.2 (2u-1); 'bias': 0.1 (2u-1).  Computed in float64, rounded
    once to float32 (the C test does the same)."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a(name)) + np.arange(n, dtype=np.uint64)
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    s = 2.0 * u - 1.0
    if kind == "mat":
        w = s * math.sqrt(3.0 / fan_in)
    elif kind == "norm":
        w = 1.0 + 0.2 * s
    else:
        w = 0.1 * s
    return w.astype(np.float32)


def tensor_list(tied, bias):
    t = [("model.embed_tokens.weight", (V, D), "mat", D, 1)]
    for i in range(L):
        p = f"model.layers.{i}."
        t.append((p + "input_layernorm.weight", (D,), "norm", 0, 0))
        for nm, o in (("q", HQ * E), ("k", HK * E), ("v", HK * E)):
            t.append((p + f"self_attn.{nm}_proj.weight", (o, D), "mat", D, 1))
            if bias:
                t.append((p + f"self_attn.{nm}_proj.bias", (o,), "bias", 0, 0))
        t.append((p + "self_attn.o_proj.weight", (D, HQ * E), "mat", HQ * E, 1))
        t.append((p + "post_attention_layernorm.weight", (D,), "norm", 0, 0))
        t.append((p + "mlp.gate_proj.weight", (F, D), "mat", D, 1))
        t.append((p + "mlp.up_proj.weight", (F, D), "mat", D, 1))
        t.append((p + "mlp.down_proj.weight", (D, F), "mat", F, 1))
    t.append(("model.norm.weight", (D,), "norm", 0, 0))
    if not tied:
        t.append(("lm_head.weight", (V, D), "mat", D, 1))
    return t


def make_params(tied, bias):
    ps = {}
    for name, shape, kind, fan, _ in tensor_list(tied, bias):
        w = weight(name, int(np.prod(shape)), kind, fan).reshape(shape)
        ps[name] = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    return ps


# ------------------------------------------------------------------ model
def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + EPS) * w


def rope(x, layout):
    # x (B,T,H,E); freq_j = theta^(-2j/E), angle = pos * freq_j
    Tn = x.shape[1]
    j = torch.arange(E // 2, dtype=torch.float64)
    freq = THETA ** (-2.0 * j / E)
    ang = torch.arange(Tn, dtype=torch.float64)[:, None] * freq[None, :]   # (T, E/2)
    cos, sin = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    if layout == "half":
        a, b = x[..., : E // 2], x[..., E // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], -1).flatten(-2)


def attn_mask(Tn, lens, kind, block):
    i = torch.arange(Tn)[:, None]
    k = torch.arange(Tn)[None, :]
    if kind == "bidir":
        ok = torch.ones(Tn, Tn, dtype=torch.bool)
    elif kind == "causal":
        ok = k <= i
    else:
        ok = (k // block) <= (i // block)
    ok = ok[None].repeat(len(lens), 1, 1)
    for b, n in enumerate(lens):
        ok[b, :, n:] = False
    return ok[:, None]   # (B,1,T,T)


def hidden(ps, ids, lens, kind="bidir", block=4, bias=True, layout="half"):
    Bn, Tn = ids.shape
    x = ps["model.embed_tokens.weight"][ids]
    mask = attn_mask(Tn, lens, kind, block)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rmsnorm(x, ps[p + "input_layernorm.weight"])

        def proj(nm, H):
            y = h @ ps[p + f"self_attn.{nm}_proj.weight"].T
            if bias:
                y = y + ps[p + f"self_attn.{nm}_proj.bias"]
            return y.view(Bn, Tn, H, E)

        q, k, v = rope(proj("q", HQ), layout), rope(proj("k", HK), layout), proj("v", HK)
        rep = HQ // HK   # query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))   # (B,H,T,E)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(E)
        s = s.masked_fill(~mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(Bn, Tn, HQ * E)
        x = x + o @ ps[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, ps[p + "post_attention_layernorm.weight"])
        g = h @ ps[p + "mlp.gate_proj.weight"].T
        u = h @ ps[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ ps[p + "mlp.down_proj.weight"].T
    return x


def head(ps, x, sel, tied):
    h = rmsnorm(x.reshape(-1, D)[sel], ps["model.norm.weight"])
    w = ps["model.embed_tokens.weight"] if tied else ps["lm_head.weight"]
    return h @ w.T


def ce_of(logits, targets):
    return torch.nn.functional.cross_entropy(logits, targets, reduction="none")


# ------------------------------------------------------------------ loss (dl_loss.h)
def loss_of(ce, row, t, n_prompt, norm, uniform, path, tot):
    rows, elig, masked = tot
    out = 0.0
    for m in range(len(ce)):
        r = row[m]
        s = 1.0 if uniform else 1.0 / t[m]
        if norm == "all":
            k = s / (rows * T)
        elif norm == "response":
            k = s / (T - n_prompt[r]) / rows
        elif norm == "maskable":
            k = s / elig
        elif norm == "masked":
            k = 1.0 / masked
        else:   # causal
            k = 1.0 / masked
        term = k * ce[m]
        if path and norm != "causal":
            term = term + s * torch.exp(-ce[m]).detach() * ce[m] / masked
        out = out + term
    return out


def sample_stride(n):
    return (n // 256) | 1


# ------------------------------------------------------------------ batch
def make_batch():
    rng = np.random.default_rng(1234)
    x0 = rng.integers(0, V - 1, size=(B, T))
    t = np.array([0.5, 0.35, 0.7], dtype=np.float32)
    n_prompt = [0, 4, 0]
    lens = [T, T, 11]
    xt = x0.copy()
    masked = np.zeros((B, T), dtype=bool)
    elig = 0
    for b in range(B):
        for i in range(n_prompt[b], lens[b]):
            elig += 1
            if rng.random() < t[b]:
                masked[b, i] = True
        masked[b, 0 if n_prompt[b] == 0 else n_prompt[b]] = True   # at least one, and pos 0 of row 0
        xt[b][masked[b]] = MASK_ID
    return x0, xt, t, n_prompt, lens, masked, elig


def main():
    torch.set_grad_enabled(True)
    os.makedirs(OUT, exist_ok=True)
    x0, xt, t, n_prompt, lens, masked, elig = make_batch()
    sel = [b * T + i for b in range(B) for i in range(T) if masked[b, i]]
    row = [s // T for s in sel]
    tm = [float(t[r]) for r in row]
    targets = torch.tensor([int(x0[s // T, s % T]) for s in sel])
    n_masked = len(sel)
    tot = (float(B), float(elig), float(n_masked))
    ids_t = torch.tensor(xt)
    arrays, scalars = {}, {}
    tensors_a = tensor_list(False, True)

    def grads(ps, loss, prefix, tl, sampled=False):
        for p in ps.values():
            p.grad = None
        loss.backward()
        for name, *_ in tl:
            g = ps[name].grad.numpy().ravel()
            if not sampled:
                arrays[prefix + "/" + name] = g
                continue
            # every s-th element (s odd, <= 257 samples) + [sum, sum |g|, sum g^2]
            arrays[prefix + "/" + name] = g[:: sample_stride(g.size)]
            arrays[prefix + "_sums/" + name] = np.array([g.sum(), np.abs(g).sum(), (g * g).sum()])

    # ---- model A, bidirectional
    ps = make_params(False, True)
    with torch.no_grad():
        logits = head(ps, hidden(ps, ids_t, lens), sel, False)
    arrays["logits"] = logits.numpy().ravel()
    ce = ce_of(logits, targets)
    arrays["ce"] = ce.numpy()
    for norm in ("all", "response", "maskable", "masked"):
        for uniform in (0, 1):
            for path in (0, 1):
                key = "loss/" + norm + ("+uniform" if uniform else "") + ("+path" if path else "")
                scalars[key] = float(loss_of(ce, row, tm, n_prompt, norm, uniform, path, tot))
    cek = ce_of(head(ps, hidden(ps, ids_t, lens), sel, False), targets)
    grads(ps, loss_of(cek, row, tm, n_prompt, "all", 0, 0, tot), "grad_all", tensors_a)
    cek = ce_of(head(ps, hidden(ps, ids_t, lens), sel, False), targets)
    grads(ps, loss_of(cek, row, tm, n_prompt, "response", 1, 1, tot), "grad_resp", tensors_a)

    # ---- causal: next-token on x0, targets i+1 < len
    csel = [b * T + i for b in range(B) for i in range(lens[b] - 1)]
    ctg = torch.tensor([int(x0[s // T, s % T + 1]) for s in csel])
    cce = ce_of(head(ps, hidden(ps, torch.tensor(x0), lens, "causal"), csel, False), ctg)
    closs = cce.sum() / len(csel)
    scalars["loss_causal"] = closs.item()
    grads(ps, closs, "grad_causal", tensors_a, True)

    # ---- shift logits: masked i >= 1 predicted from hidden i-1
    ssel = [s - 1 for s in sel if s % T > 0]
    srow = [(s + 1) // T for s in ssel]
    stg = torch.tensor([int(x0[(s + 1) // T, (s + 1) % T]) for s in ssel])
    with torch.no_grad():
        sce = ce_of(head(ps, hidden(ps, ids_t, lens), ssel, False), stg)
    scalars["loss_shift"] = float(loss_of(sce, srow, [float(t[r]) for r in srow], n_prompt, "all", 0, 0, tot))

    # ---- block attention
    with torch.no_grad():
        bce = ce_of(head(ps, hidden(ps, ids_t, lens, "block", 4), sel, False), targets)
    scalars["loss_block"] = float(loss_of(bce, row, tm, n_prompt, "all", 0, 0, tot))

    # ---- model B: tied, no bias, rope pairs
    tensors_b = tensor_list(True, False)
    pb = make_params(True, False)
    bce = ce_of(head(pb, hidden(pb, ids_t, lens, bias=False, layout="pairs"), sel, True), targets)
    arrays["b_ce"] = bce.detach().numpy()
    bl = loss_of(bce, row, tm, n_prompt, "all", 0, 0, tot)
    scalars["b_loss_all"] = bl.item()
    grads(pb, bl, "b_grad_all", tensors_b, True)

    # ---- 10 AdamW steps on model A, loss `all`, same batch
    ps = make_params(False, True)
    decay = [ps[n] for n, _, _, _, dec in tensors_a if dec]
    nodecay = [ps[n] for n, _, _, _, dec in tensors_a if not dec]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    losses, gnorms = [], []
    for _ in range(10):
        opt.zero_grad()
        cek = ce_of(head(ps, hidden(ps, ids_t, lens), sel, False), targets)
        loss = loss_of(cek, row, tm, n_prompt, "all", 0, 0, tot)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(list(ps.values()), 1.0)
        losses.append(loss.item())
        gnorms.append(float(gn))
        opt.step()
    arrays["adamw_loss"] = np.array(losses)
    arrays["adamw_gnorm"] = np.array(gnorms)

    # ---- write
    blob, index, off = bytearray(), {}, 0
    for k, a in arrays.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        index[k] = [off, int(a.size)]
        blob += a.tobytes()
        off += a.size
    with open(os.path.join(OUT, "fixture.bin.zst"), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(bytes(blob)))
    fx = {
        "version": 1,
        "model": {"V": V, "D": D, "L": L, "Hq": HQ, "Hk": HK, "F": F, "eps": EPS, "theta": THETA},
        "batch": {
            "B": B, "T": T, "mask_id": MASK_ID,
            "x0": x0.ravel().tolist(), "xt": xt.ravel().tolist(), "t": [float(v) for v in t],
            "n_prompt": n_prompt, "lens": lens, "eligible": elig,
            "sel": sel, "targets": targets.tolist(),
            "causal_sel": csel, "causal_targets": ctg.tolist(),
            "shift_sel": ssel, "shift_targets": stg.tolist(), "shift_row": srow,
        },
        "scalars": scalars,
        "arrays": index,
    }
    with open(os.path.join(OUT, "fixture.json"), "w") as f:
        json.dump(fx, f, indent=1)
        f.write("\n")
    for fn, tied, bias, layout in (("config.json", False, True, "half"), ("config_b.json", True, False, "pairs")):
        cfg = {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": D, "intermediate_size": F, "num_hidden_layers": L,
            "num_attention_heads": HQ, "num_key_value_heads": HK, "vocab_size": V,
            "max_position_embeddings": 64, "rms_norm_eps": EPS, "rope_theta": THETA,
            "tie_word_embeddings": tied, "attention_bias": bias, "hidden_act": "silu",
            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": None,
            "mask_token_id": MASK_ID, "objective": "diffusion", "rope_layout": layout,
            "torch_dtype": "float32",
        }
        with open(os.path.join(OUT, fn), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    print(f"{OUT}: {len(blob)} bytes of arrays, {n_masked} masked positions, {elig} eligible")
    for k, v in scalars.items():
        print(f"  {k} = {v:.8f}")
    print("  adamw losses:", " ".join(f"{x:.6f}" for x in losses))


if __name__ == "__main__":
    main()
