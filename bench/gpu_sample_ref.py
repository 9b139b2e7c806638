#!/usr/bin/env python3
"""bench/gpu_sample_ref.py - the sampling reference of bench/gpu.sh: a
LLaDA-shaped model with random weights, written once as a dllm checkpoint
and run in PyTorch through LLaDA's own generate().

  gpu_sample_ref.py make DIR [--dim 2048 --layers 12 --heads 16 --kv-heads 16
        --hidden 5632 --vocab 126464 --mask-id 126336 --seed 0 --device cuda]
      random weights (matrices N(0, 0.02), norms 1; drawn on --device, so
      a 1B model takes seconds) -> DIR/model.safetensors (BF16, Hugging
      Face Llama names, written by hand: 8-byte header length, JSON header,
      raw data) and DIR/config.json (llama, bidirectional, mask_token_id).
      dllm-sample reads the directory as it is.
  gpu_sample_ref.py run DIR [--batch 1 --prompt-len 32 --gen-length 128
        --steps 128 --block-length 32 --dtype bf16 --device cuda --reps 2
        --generate PATH --out FILE]
      loads DIR into a PyTorch LLaMA (RMSNorm, RoPE rotate-half, SDPA
      bidirectional attention, SwiGLU) in --dtype and times generate() at
      temperature 0 with low-confidence remasking.  generate() is LLaDA's
      own (generate.py of ML-GSAI/LLaDA, imported from --generate PATH or
      $DLLM_LLADA_GENERATE when the file exists), else the port below,
      which follows it line for line for these settings.  Prompt row b,
      position i: id (7 b + 3 i + 5) mod (mask_id - 1), the ids bench/gpu.sh
      gives dllm-sample.  Prints one JSON line: tokens_per_s (generated
      tokens / best wall time), elapsed_s, nfe (forwards), which generate();
      --out FILE gets each row's generated ids as a JSON list per line.
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def names(L):
    out = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(L):
        p = f"model.layers.{i}."
        out += [p + n for n in ("input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
                                "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")]
    return out


def shapes(c):
    D, H, K, F_, V = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"], \
        c["vocab_size"]
    E = D // H
    s = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,), "lm_head.weight": (V, D)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                  p + "self_attn.q_proj.weight": (H * E, D), p + "self_attn.k_proj.weight": (K * E, D),
                  p + "self_attn.v_proj.weight": (K * E, D), p + "self_attn.o_proj.weight": (D, H * E),
                  p + "mlp.gate_proj.weight": (F_, D), p + "mlp.up_proj.weight": (F_, D),
                  p + "mlp.down_proj.weight": (D, F_)})
    return s


def make(a):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.dim,
         "intermediate_size": a.hidden, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
         "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "max_position_embeddings": 4096,
         "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False, "attention_bias": False,
         "mask_token_id": a.mask_id, "objective": "diffusion", "shift_logits": False, "torch_dtype": "bfloat16"}
    os.makedirs(a.dir, exist_ok=True)
    sh = shapes(c)
    g = torch.Generator(device=a.device).manual_seed(a.seed)
    header, off = {}, 0
    for n in names(a.layers):
        nb = 2 * math.prod(sh[n])
        header[n] = {"dtype": "BF16", "shape": list(sh[n]), "data_offsets": [off, off + nb]}
        off += nb
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = os.path.join(a.dir, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for n in names(a.layers):
            if len(sh[n]) == 1:
                t = torch.ones(sh[n], device=a.device, dtype=torch.bfloat16)
            else:
                t = (torch.randn(sh[n], device=a.device, generator=g) * 0.02).to(torch.bfloat16)
            f.write(t.view(torch.int16).cpu().numpy().tobytes())
    os.replace(tmp, os.path.join(a.dir, "model.safetensors"))
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    n_params = sum(math.prod(v) for v in sh.values())
    print(json.dumps({"dir": a.dir, "params": n_params, "bytes": off}))


def load(d, dev, dt):
    c = json.load(open(os.path.join(d, "config.json")))
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    w = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        buf = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=torch.int16).view(torch.bfloat16)
        w[k] = buf.reshape(v["shape"]).to(dev).to(dt)
    return c, w


class Llama(torch.nn.Module):
    """LLaDA-shaped forward: model(x).logits, and .device, as generate() uses"""

    def __init__(self, c, w, dev):
        super().__init__()
        self.c, self.w, self._dev = c, w, dev
        self.D, self.H, self.K = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.E = self.D // self.H
        self.eps = c["rms_norm_eps"]
        self.rope = {}

    @property
    def device(self):
        return self._dev

    def tables(self, T, dt):
        if T not in self.rope:
            inv = 1.0 / (self.c["rope_theta"] ** (torch.arange(0, self.E, 2, dtype=torch.float64) / self.E))
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], dim=-1)
            self.rope[T] = (ang.cos().to(self._dev, dt), ang.sin().to(self._dev, dt))
        return self.rope[T]

    @torch.no_grad()
    def forward(self, x, attention_mask=None):
        B, T = x.shape
        w = self.w
        h = F.embedding(x, w["model.embed_tokens.weight"])
        cos, sin = self.tables(T, h.dtype)
        half = self.E // 2

        def rope(t):
            return t * cos + torch.cat([-t[..., half:], t[..., :half]], dim=-1) * sin
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            a = F.rms_norm(h, (self.D,), w[p + "input_layernorm.weight"], self.eps)
            q = F.linear(a, w[p + "self_attn.q_proj.weight"]).view(B, T, self.H, self.E).transpose(1, 2)
            k = F.linear(a, w[p + "self_attn.k_proj.weight"]).view(B, T, self.K, self.E).transpose(1, 2)
            v = F.linear(a, w[p + "self_attn.v_proj.weight"]).view(B, T, self.K, self.E).transpose(1, 2)
            o = F.scaled_dot_product_attention(rope(q), rope(k), v, enable_gqa=self.K != self.H)
            h = h + F.linear(o.transpose(1, 2).reshape(B, T, self.D), w[p + "self_attn.o_proj.weight"])
            a = F.rms_norm(h, (self.D,), w[p + "post_attention_layernorm.weight"], self.eps)
            h = h + F.linear(F.silu(F.linear(a, w[p + "mlp.gate_proj.weight"])) * F.linear(a, w[p + "mlp.up_proj.weight"]),
                             w[p + "mlp.down_proj.weight"])
        h = F.rms_norm(h, (self.D,), w["model.norm.weight"], self.eps)

        class Out:
            pass
        out = Out()
        out.logits = F.linear(h, w["lm_head.weight"])
        return out


def get_num_transfer_tokens(mask_index, steps):
    """as LLaDA's: base = n // steps, the first n % steps steps one more"""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base, remainder = mask_num // steps, mask_num % steps
    n = torch.zeros(mask_num.size(0), steps, device=mask_index.device, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        n[i, :remainder[i]] += 1
    return n


@torch.no_grad()
def generate_port(model, prompt, steps=128, gen_length=128, block_length=128, temperature=0., mask_id=126336):
    """LLaDA's generate() at temperature 0, low-confidence remasking, no CFG (the port used when
    generate.py is absent)"""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long).to(model.device)
    x[:, :prompt.shape[1]] = prompt.clone()
    num_blocks = gen_length // block_length
    steps = steps // num_blocks
    for num_block in range(num_blocks):
        lo = prompt.shape[1] + num_block * block_length
        num_transfer_tokens = get_num_transfer_tokens(x[:, lo:lo + block_length] == mask_id, steps)
        for i in range(steps):
            mask_index = x == mask_id
            logits = model(x).logits
            x0 = torch.argmax(logits, dim=-1)
            p = F.softmax(logits, dim=-1)
            x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)
            x0_p[:, lo + block_length:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -math.inf)
            transfer_index = torch.zeros_like(x0, dtype=torch.bool, device=x0.device)
            for j in range(confidence.shape[0]):
                _, select_index = torch.topk(confidence[j], k=int(num_transfer_tokens[j, i]))
                transfer_index[j, select_index] = True
            x[transfer_index] = x0[transfer_index]
    return x


def run(a):
    dev = torch.device(a.device)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    c, w = load(a.dir, dev, dt)
    model = Llama(c, w, dev)
    mask_id = c["mask_token_id"]
    gen, which = generate_port, "port (bench/gpu_sample_ref.py)"
    path = a.generate or os.environ.get("DLLM_LLADA_GENERATE", "")
    if path and os.path.isfile(path):
        try:   # generate.py imports transformers at the top and never uses it in generate()
            import transformers  # noqa: F401
        except ImportError:
            import types
            stub = types.ModuleType("transformers")
            stub.AutoTokenizer = stub.AutoModel = None
            sys.modules["transformers"] = stub
        spec = importlib.util.spec_from_file_location("llada_generate", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        gen, which = mod.generate, f"LLaDA generate.py ({path})"
    prompt = torch.tensor([[(7 * b + 3 * i + 5) % (mask_id - 1) for i in range(a.prompt_len)] for b in range(a.batch)],
                          device=dev)
    best = float("inf")
    for _ in range(a.reps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        x = gen(model, prompt, steps=a.steps, gen_length=a.gen_length, block_length=a.block_length, temperature=0.,
            mask_id=mask_id)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    if a.out:   # the generated ids, one JSON list per row (bench/gpu.sh compares them with dllm-sample's)
        with open(a.out, "w") as f:
            for row in x[:, a.prompt_len:].tolist():
                f.write(json.dumps(row) + "\n")
    print(json.dumps({"tokens_per_s": a.batch * a.gen_length / best, "elapsed_s": best, "nfe": a.steps,
                      "rows": a.batch, "dtype": a.dtype, "generate": which, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("make", "run"))
    ap.add_argument("dir")
    for n, d in (("dim", 2048), ("layers", 12), ("heads", 16), ("kv-heads", 16), ("hidden", 5632), ("vocab", 126464),
                 ("mask-id", 126336), ("seed", 0), ("batch", 1), ("prompt-len", 32), ("gen-length", 128),
                 ("steps", 128), ("block-length", 32), ("reps", 2)):
        ap.add_argument("--" + n, type=int, default=d)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "f32"))
    ap.add_argument("--generate", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.cmd == "make":
        make(a)
    else:
        if a.gen_length % a.block_length or a.steps % (a.gen_length // a.block_length):
            sys.exit("gpu_sample_ref: gen-length % block-length and steps % blocks must be 0")
        run(a)


if __name__ == "__main__":
    main()
