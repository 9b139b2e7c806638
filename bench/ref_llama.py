"""bench/ref_llama.py — the PyTorch LLaMA forward shared by the bench reference
scripts (bench/sample_ref.py, bench/score_ref.py, bench/score_task_ref.py),
imported from the script's own directory.

read_safetensors(path): {name: float32 CPU tensor} from a .safetensors file
parsed by hand (8-byte little-endian header length, JSON header, raw
little-endian F32 / F16 / BF16 / F64 data).

Llama(ckpt, sdpa=False): a dllm checkpoint directory (config.json +
model.safetensors, HF Llama names) in fp32: embedding; per layer RMSNorm ->
q/k/v (+bias) -> RoPE rotate-half -> GQA attention -> o_proj; RMSNorm ->
SwiGLU MLP; final RMSNorm -> head (tied, or lm_head when present and not
tied).  forward(ids, causal=False): (B, T) long -> logits (B, T, V) of every
position; bidirectional attention by default, causal=True adds the -inf
upper triangle.  Attention is written out (softmax(q k^T / sqrt(E)) v) unless
sdpa=True, which uses F.scaled_dot_product_attention (score_ref.py's choice;
the two differ in float rounding).  Refused (exit with a message): rope_layout
other than "half", shift_logits models.  Attributes the scripts use: c (the
config), mask_id (mask_token_id or None), causal_ckpt (objective "causal").
Not a training model: bench/train_ref.py has its own nn.Module.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def _prog():
    """The running script's name without .py, for error messages ("sample_ref: ...")."""
    return os.path.splitext(os.path.basename(sys.argv[0] or "ref_llama"))[0] or "ref_llama"


def read_safetensors(path):
    """{name: float32 tensor} from a .safetensors file (8-byte header length, JSON header, raw LE data)."""
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
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F64":
            arr = np.frombuffer(raw, dtype="<f8").astype(np.float32)
        else:
            sys.exit(f"{_prog()}: {path}: tensor {name}: dtype {dt} not supported")
        out[name] = torch.from_numpy(np.array(arr, dtype=np.float32)).reshape(info["shape"])
    return out


class Llama:
    def __init__(self, ckpt, sdpa=False):
        with open(os.path.join(ckpt, "config.json")) as f:
            c = json.load(f)
        self.c = c
        self.D, self.L, self.H = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        self.K = c.get("num_key_value_heads") or self.H
        self.E = c.get("head_dim") or self.D // self.H
        self.eps = c.get("rms_norm_eps", 1e-5)
        self.theta = c.get("rope_theta", 10000.0)
        self.mask_id = c.get("mask_token_id")
        self.causal_ckpt = c.get("objective") == "causal"
        if c.get("rope_layout", "half") != "half":
            sys.exit(f"{_prog()}: only rope_layout 'half' (HF rotate-half) is implemented")
        if c.get("shift_logits"):
            sys.exit(f"{_prog()}: shift_logits models are not implemented")
        self.sdpa = sdpa
        w = read_safetensors(os.path.join(ckpt, "model.safetensors"))
        self.embed = w["model.embed_tokens.weight"]
        self.head = self.embed if c.get("tie_word_embeddings") else w.get("lm_head.weight", self.embed)
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
        self.rope_cache = {}  # T -> (cos, sin), each (T, E) float32
        self.mask_cache = {}  # T -> (T, T) causal additive mask

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope_tables(self, T):
        if T not in self.rope_cache:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.E, 2, dtype=torch.float64) / self.E))
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], dim=-1)
            self.rope_cache[T] = (ang.cos().float(), ang.sin().float())
        return self.rope_cache[T]

    def causal_mask(self, T):
        if T not in self.mask_cache:
            self.mask_cache[T] = torch.full((T, T), float("-inf")).triu(1)
        return self.mask_cache[T]

    def rope(self, x, cos, sin):  # x (B, h, T, E), rotate-half
        h = self.E // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin

    @torch.no_grad()
    def forward(self, ids, causal=False):  # ids (B, T) long -> logits (B, T, V)
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
            if self.sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            else:
                s = (q @ k.transpose(-1, -2)) / math.sqrt(self.E)
                if causal:
                    s = s + self.causal_mask(T)
                o = torch.softmax(s, dim=-1) @ v
            o = o.transpose(1, 2).reshape(B, T, self.H * self.E)
            x = x + F.linear(o, ly["wo"])
            h = self.rmsnorm(x, ly["mn"])
            x = x + F.linear(F.silu(F.linear(h, ly["wg"])) * F.linear(h, ly["wu"]), ly["wd"])
        return F.linear(self.rmsnorm(x, self.norm), self.head)
