#!/usr/bin/env python3
"""gen_ckpt_fixture.py — tiny Hugging Face-style checkpoint directories for
tests/unit/test_ckpt.c (conversion reading).  numpy only; safetensors written
by hand (8-byte LE header length, JSON header padded to 8 bytes, raw data).

  tests/data/ckpt/llama_f16/        llama, tied, F16, vocab 20, no mask token
  tests/data/ckpt/qwen2_bf16/       qwen2, untied, q/k/v biases, BF16, config
                                    vocab 24 > tokenizer 20 (padded rows), a
                                    rotary_emb.inv_freq cache (F32) to ignore,
                                    tokenizer_config.json with added_tokens_decoder
  tests/data/ckpt/mistral_sharded/  mistral, untied, F32, two shards +
                                    model.safetensors.index.json, tokenizer with
                                    a [MASK] added token (id 20, vocab 21)

Every value is exactly representable in F16 and BF16, so the C test can
recompute it: for tensor `name`, element i (row-major),
    k = sum(name.encode()) % 251
    v = ((7*i + 13*k) % 255 - 127) / 64
dim 8, 2 layers, 2 heads (head_dim 4), 1 kv head, intermediate 12.
Run from the repository root:  /work/venv/bin/python tests/ref/gen_ckpt_fixture.py

Independent check of the llama2.c conversion (needs torch and tokenizers,
writes nothing):
    bin/dllm-train --init share/data/stories260K/stories260K.bin -o DIR --steps 0
    /work/venv/bin/python tests/ref/gen_ckpt_fixture.py --check-stories260k DIR
  1. HF `tokenizers` (Rust) on DIR/tokenizer.json encodes every line of
     share/data/tinystories/tinystories_val.txt exactly as llama2.c's run.c
     encode does on tok512.bin, and decodes the golden ids to the golden text;
  2. a plain PyTorch LLaMA forward with HF's rotate_half RoPE (what
     transformers' LlamaForCausalLM computes) on DIR/model.safetensors,
     greedy from BOS, reproduces expected_greedy_t0_ids.txt: the permuted
     wq/wk make the checkpoint a plain HF Llama.
"""
import json, os, struct
import numpy as np

OUT = "tests/data/ckpt"
D, L, H, KV, E, F = 8, 2, 2, 1, 4, 12


def value(name, n):
    k = sum(name.encode()) % 251
    i = np.arange(n, dtype=np.int64)
    return (((7 * i + 13 * k) % 255 - 127) / 64.0).astype(np.float32)


def tensors(vocab, tied, bias):
    t = {"model.embed_tokens.weight": (vocab, D)}
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = (D,)
        t[p + "self_attn.q_proj.weight"] = (H * E, D)
        t[p + "self_attn.k_proj.weight"] = (KV * E, D)
        t[p + "self_attn.v_proj.weight"] = (KV * E, D)
        if bias:
            t[p + "self_attn.q_proj.bias"] = (H * E,)
            t[p + "self_attn.k_proj.bias"] = (KV * E,)
            t[p + "self_attn.v_proj.bias"] = (KV * E,)
        t[p + "self_attn.o_proj.weight"] = (D, H * E)
        t[p + "post_attention_layernorm.weight"] = (D,)
        t[p + "mlp.gate_proj.weight"] = (F, D)
        t[p + "mlp.up_proj.weight"] = (F, D)
        t[p + "mlp.down_proj.weight"] = (D, F)
    t["model.norm.weight"] = (D,)
    if not tied:
        t["lm_head.weight"] = (vocab, D)
    return t


def encode(x, dtype):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        h = x.astype("<f2")
        assert np.array_equal(h.astype(np.float32), x)
        return h.tobytes()
    if dtype == "BF16":
        u = x.view(np.uint32)
        assert np.all(u & 0xFFFF == 0)          # exact in bf16
        return (u >> 16).astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, items, metadata=None):
    """items: list of (name, dtype, shape, float32 array)"""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, arr in items:
        b = encode(arr.reshape(shape), dtype)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tokenizer(extra=None):
    toks = ["<unk>", "<s>", "</s>"] + [chr(ord("a") + i) for i in range(17)]
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(3)]
    if extra:
        added.append({"id": 20, "content": extra, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": {t: i for i, t in enumerate(toks)}, "merges": []}}


def config(arch, vocab, tied, dtype):
    cls = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}[arch]
    return {"architectures": [cls], "model_type": arch, "hidden_size": D, "intermediate_size": F,
            "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
            "vocab_size": vocab, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "tie_word_embeddings": tied, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
            "torch_dtype": dtype}


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def make(name, arch, vocab, tied, bias, dtype, torch_dtype, mask=None, shards=0, extra=()):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    dump(os.path.join(d, "config.json"), config(arch, vocab, tied, torch_dtype))
    dump(os.path.join(d, "tokenizer.json"), tokenizer(mask))
    t = tensors(vocab, tied, bias)
    items = [(n, dtype, s, value(n, int(np.prod(s)))) for n, s in t.items()] + list(extra)
    if not shards:
        write_safetensors(os.path.join(d, "model.safetensors"), items, {"format": "pt"})
        return d
    cut = 1 + len(items) // 2
    parts = [items[:cut], items[cut:]]
    wmap = {}
    for k, part in enumerate(parts):
        fn = f"model-{k + 1:05d}-of-{len(parts):05d}.safetensors"
        write_safetensors(os.path.join(d, fn), part, {"format": "pt"})
        wmap.update({n: fn for n, *_ in part})
    size = sum(len(encode(a, dt)) for _, dt, _, a in items)
    dump(os.path.join(d, "model.safetensors.index.json"), {"metadata": {"total_size": size}, "weight_map": wmap})
    return d


def main():
    make("llama_f16", "llama", 20, True, False, "F16", "float16")
    inv = np.array([1.0, 0.01], dtype=np.float32)
    d = make("qwen2_bf16", "qwen2", 24, False, True, "BF16", "bfloat16",
             extra=[("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", (2,), inv)])
    dump(os.path.join(d, "tokenizer_config.json"),
         {"bos_token": None, "eos_token": "</s>", "pad_token": None, "tokenizer_class": "PreTrainedTokenizerFast",
          "added_tokens_decoder": {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                            "single_word": False, "special": True}
                                   for i, c in enumerate(["<unk>", "<s>", "</s>"])}})
    make("mistral_sharded", "mistral", 21, False, False, "F32", "float32", mask="[MASK]", shards=2)


S260 = "share/data/stories260K/"


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        a, z = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + a:8 + n + z], dtype="<f4").reshape(v["shape"]).copy()
    return out


def llama2c_encode(vocab, scores, lookup, text):
    toks = [lookup[" "]] if text else []
    for ch in text:
        toks += [lookup[ch]] if ch in lookup else [x + 3 for x in ch.encode()]
    while True:
        best, bi, bid = -1e10, -1, -1
        for i in range(len(toks) - 1):
            j = lookup.get(vocab[toks[i]] + vocab[toks[i + 1]], -1)
            if j != -1 and scores[j] > best:
                best, bi, bid = scores[j], i, j
        if bi < 0:
            return toks
        toks[bi:bi + 2] = [bid]


def check_stories260k(d):
    import torch
    from tokenizers import Tokenizer
    b = open(S260 + "tok512.bin", "rb").read()
    o, vocab, scores = 4, [], []
    for _ in range(512):
        s, n = struct.unpack_from("<fi", b, o)
        vocab.append(b[o + 8:o + 8 + n].decode())
        scores.append(s)
        o += 8 + n
    lookup = {p: i for i, p in enumerate(vocab)}
    tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    lines = [l for l in open("share/data/tinystories/tinystories_val.txt").read().split("\n") if l.strip()]
    bad = sum(llama2c_encode(vocab, scores, lookup, l) != tk.encode(l, add_special_tokens=False).ids for l in lines)
    print(f"tokenizer: {len(lines)} lines, {bad} differ from llama2.c encode")
    want = [int(x) for x in open(S260 + "expected_greedy_t0_ids.txt").read().split()]
    text_ok = tk.decode(want) == open(S260 + "expected_greedy_t0.txt").read().rstrip("\n")
    print("tokenizer: golden ids decode to the golden text:", text_ok)

    cfg = json.load(open(os.path.join(d, "config.json")))
    W = {k: torch.from_numpy(v) for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    Dm, H, KVh = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    E, eps = Dm // H, cfg["rms_norm_eps"]
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rotate_half(x):
        return torch.cat((-x[..., E // 2:], x[..., :E // 2]), -1)

    def last_logits(ids):
        T = len(ids)
        x = W["model.embed_tokens.weight"][ids]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, E, 2).float() / E))
        f = torch.outer(torch.arange(T).float(), inv)
        cos, sin = torch.cat((f, f), -1).cos(), torch.cat((f, f), -1).sin()
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms(x, W[p + "input_layernorm.weight"])
            q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, H, E).transpose(0, 1)
            k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, KVh, E).transpose(0, 1)
            v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, KVh, E).transpose(0, 1)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            k, v = k.repeat_interleave(H // KVh, 0), v.repeat_interleave(H // KVh, 0)
            a = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
            x = x + a.transpose(0, 1).reshape(T, Dm) @ W[p + "self_attn.o_proj.weight"].T
            h = rms(x, W[p + "post_attention_layernorm.weight"])
            g = torch.nn.functional.silu(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)
            x = x + g @ W[p + "mlp.down_proj.weight"].T
        return rms(x, W["model.norm.weight"])[-1] @ head.T

    ids, out = [1], []
    with torch.no_grad():
        while len(out) < 400:
            t = int(last_logits(ids)[:512].argmax())   # the 512 llama2.c ids (not the appended mask)
            if t == 1:
                break
            ids.append(t)
            out.append(t)
    print(f"model: torch rotate_half greedy == expected_greedy_t0_ids.txt: {out == want} ({len(out)} ids)")
    return 0 if bad == 0 and text_ok and out == want else 1


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--check-stories260k":
        sys.exit(check_stories260k(sys.argv[2]))
    main()
