#!/usr/bin/env python3
"""tests/ref/gen_family_fixtures.py — tiny checkpoints in each model family's
OWN layout, with reference outputs from each family's OWN modeling code, for
tests/unit/test_family.c and tests/cli/family.sh.

Families (each directory is written by the family's code: config class +
model class + save_pretrained, so config keys and tensor names are exactly
what that code writes):
  llada      ML-GSAI/LLaDA  configuration_llada.py / modeling_llada.py
             (LLaDAModelLM; the copies in ZHZisZZ/dllm
             dllm/pipelines/llada/models are the HF repo GSAI-ML/LLaDA-8B-Base
             files), untied (weight_tying false), embedding_size 24 > vocab_size 22
  dream      DreamLM/Dream  configuration_dream.py / modeling_dream.py
             (DreamModel; copies in dllm/pipelines/dream/models), untied
  a2d-llama / a2d-qwen2 / a2d-qwen3   ZHZisZZ/dllm dllm/pipelines/a2d/models/*
             built as its convert.py does (base config -> A2D*Config ->
             A2D*LMHeadModel.save_pretrained); a2d-qwen3 tied, head_dim 8 != 16/4
  qwen3      transformers' Qwen3ForCausalLM (an AR model: causal reference)
Tokenizer: tests/data/ckpt/llama_f16/tokenizer.json (20 ids) plus each
family's special tokens as added tokens (<|endoftext|> 20, the mask token
21: <|mdm_mask|> for LLaDA / a2d, <|mask|> for Dream), tokenizer_config.json
with mask_token and a chat_template.

Weights: the model's own parameters re-drawn from torch.Generator(seed):
norms 1 + 0.2 N(0,1), everything else 0.25 N(0,1) (larger than the init so
the logits are far from uniform, small enough that the references' own fp32
steps stay far below 1e-5: transformers' RMSNorm computes in float32 even
in a float64 model), stored F32.

Reference outputs (tests/data/families/<name>/reference.json):
  ids        (B, T) input ids, with mask tokens
  logprobs   (B, T, V) log_softmax of the family model's logits, computed in
             float64 (model.double()), flattened; the C test wants 1e-5
  causal     1 for qwen3 (causal attention), else 0 (bidirectional)
  generate   llada: LLaDA's generate.py generate(model, prompt, steps,
             gen_length, block_length, temperature 0, remasking
             low_confidence, mask_id) on the float64 model: prompt and ids;
             dream: its diffusion_generate (maskgit_plus, temperature 0,
             steps 1);
             a2d-*: dLLM's MDLMSampler.sample (steps 8, block_size 4,
             temperature 0, low_confidence, suppress_tokens [mask])

Dream's multi-step generation (tests/data/families/dream/):
  diffusion_generate.txt  one line per case, "alg steps gen_length top_p top_k
             : ids": its diffusion_generate on the float64 model, temperature
             0, alg_temp 0, with a generation_logits_hook_func that sets the
             mask token's logit to -inf (dllm-sample never generates the mask
             token; with random weights Dream's argmax would sometimes pick it)
  dream_schedule.txt  one line per case "m steps eps : k_0 ... k_{steps-1}":
             the commit counts of its _sample (timesteps = torch.linspace(1,
             eps, steps + 1), int(num_mask_token * (1 - s / t)), all at the
             last step), the lines of _sample replayed on float32 tensors
             without a model (the counts depend only on the mask count)

Source files (not in this repository; `fetch` github:ZHZisZZ/dllm and
github:ML-GSAI/LLaDA) are read from --src DIR laid out as
  DIR/llada/{__init__,configuration_llada,modeling_llada,generate}.py
  DIR/dream/{__init__,configuration_dream,modeling_dream,generation_utils}.py
  DIR/a2d/{__init__,a2d_llama,a2d_qwen2,a2d_qwen3}.py   (modeling_*.py renamed)
  DIR/dllm/core/samplers/{base,utils,mdlm}.py, DIR/dllm/core/schedulers/*
      (empty __init__.py in DIR/dllm, DIR/dllm/core, DIR/dllm/core/samplers:
      the sampler without the rest of the dllm package)
Run from the repository root:
  /work/venv/bin/python tests/ref/gen_family_fixtures.py --src DIR [--only NAME]
`make test` never runs this script.
"""
import argparse
import copy
import json
import os
import sys

import torch

OUT = "tests/data/families"
BASE_TOK = "tests/data/ckpt/llama_f16/tokenizer.json"
D, L, H, KV, F = 16, 2, 4, 2, 24
B, T = 2, 10
SEED = 1234
CHAT = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def write_tokenizer(d, mask_name, with_mask=True):
    tok = json.load(open(BASE_TOK))
    specials = [(20, "<|endoftext|>")] + ([(21, mask_name)] if with_mask else [])
    for i, s in specials:
        tok["added_tokens"].append({"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                                    "normalized": False, "special": True})
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"), indent=1)
    dec = {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
           for a in tok["added_tokens"]}
    tc = {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>",
          "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 64, "chat_template": CHAT,
          "added_tokens_decoder": dec}
    if with_mask:
        tc["mask_token"] = mask_name
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)


def redraw(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=g))


def input_ids(seed, mask_id, vocab):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    ids[0, 3] = ids[0, 7] = ids[1, 0] = ids[1, 5] = ids[1, 9] = mask_id
    return ids


def logprobs(model, ids):
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        logits = m(ids).logits
    return torch.log_softmax(logits.double(), dim=-1)


def save(d, model, ids, lp, causal, extra=None):
    try:
        model.save_pretrained(d, safe_serialization=True)
    except AttributeError:
        # modeling_dream.py's list-valued _tied_weights_keys breaks
        # transformers 5's save_pretrained: write what it would (the
        # config, the state dict under the model's own names, F32).
        from safetensors.torch import save_file
        model.config.save_pretrained(d)
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    ref = {"ids": ids.tolist(), "B": B, "T": T, "V": lp.shape[-1], "causal": causal,
           "logprobs": [float("%.9g" % x) for x in lp.reshape(-1).tolist()]}
    if extra:
        ref.update(extra)
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"))
    for f in os.listdir(d):   # generation_config.json: not part of the layout we test
        if f == "generation_config.json":
            os.remove(os.path.join(d, f))


def llada(src):
    from llada.configuration_llada import LLaDAConfig
    from llada.modeling_llada import LLaDAModelLM
    import llada.generate as lg
    cfg = LLaDAConfig(d_model=D, n_heads=H, n_kv_heads=KV, n_layers=L, mlp_ratio=4, mlp_hidden_size=F,
                      activation_type="silu", block_type="llama", block_group_size=1, alibi=False, rope=True,
                      rope_full_precision=True, rope_theta=500000.0, flash_attention=False, attention_dropout=0.0,
                      multi_query_attention=None, attention_layer_norm=False, residual_dropout=0.0,
                      embedding_dropout=0.0, input_emb_norm=False, layer_norm_type="rms", layer_norm_with_affine=True,
                      rms_norm_eps=1e-5, attention_layer_norm_with_affine=True, max_sequence_length=64,
                      include_qkv_bias=False, include_bias=False, bias_for_layer_norm=False, scale_logits=False,
                      vocab_size=22, embedding_size=24, weight_tying=False, eos_token_id=20, pad_token_id=20,
                      mask_token_id=21, init_device="cpu", init_fn="mitchell", init_std=0.02, precision="amp_bf16",
                      use_cache=False, architectures=["LLaDAModelLM"],
                      auto_map={"AutoConfig": "configuration_llada.LLaDAConfig",
                                "AutoModel": "modeling_llada.LLaDAModelLM",
                                "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"})
    cfg.use_cache = False   # transformers 5 no longer keeps use_cache from the kwargs
    # LLaDAModelLM(cfg) builds LLaDAModel on "cuda" in the dllm copy (the HF
    # original says "cpu"): build the same LLaDAModel on the CPU and hand it in.
    from llada.modeling_llada import LLaDAModel, create_model_config_from_pretrained_config
    mc = create_model_config_from_pretrained_config(cfg)
    mc.init_device = "cpu"
    model = LLaDAModelLM(cfg, model=LLaDAModel(mc, init_params=True)).eval()
    redraw(model, SEED)
    ids = input_ids(SEED + 1, 21, 22)
    lp = logprobs(model, ids)
    m64 = copy.deepcopy(model).double().eval()
    prompt = torch.tensor([[1, 5, 9, 3, 12, 7]])
    gen = lg.generate(m64, prompt, steps=8, gen_length=8, block_length=4, temperature=0.0, cfg_scale=0.0,
                      remasking="low_confidence", mask_id=21)
    return model, ids, lp, 0, {"generate": {"prompt": prompt[0].tolist(), "steps": 8, "gen_length": 8,
                                            "block_length": 4, "ids": gen[0].tolist()}}


def default_rope(config, device=None, seq_len=None, **kw):
    """transformers 4.x's _compute_default_rope_parameters: transformers 5
    dropped "default" from ROPE_INIT_FUNCTIONS, which modeling_dream.py uses."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    inv = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    return inv, 1.0


def dream(src):
    import transformers.modeling_rope_utils as ru
    added = "default" not in ru.ROPE_INIT_FUNCTIONS
    if added:
        ru.ROPE_INIT_FUNCTIONS["default"] = default_rope
    try:
        return dream_build()
    finally:   # transformers' own models must not see it
        if added:
            del ru.ROPE_INIT_FUNCTIONS["default"]


def dream_build():
    from dream.configuration_dream import DreamConfig
    from dream.modeling_dream import DreamModel
    cfg = DreamConfig(vocab_size=24, hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
                      num_key_value_heads=KV, hidden_act="silu", max_position_embeddings=64, rms_norm_eps=1e-6,
                      tie_word_embeddings=False, rope_theta=10000.0, use_sliding_window=False, attention_dropout=0.0,
                      mask_token_id=21, pad_token_id=20, bos_token_id=20, eos_token_id=20,
                      architectures=["DreamModel"],
                      auto_map={"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"})
    cfg._attn_implementation = "sdpa"
    model = DreamModel(cfg).eval()
    redraw(model, SEED + 10)
    ids = input_ids(SEED + 11, 21, 22)
    lp = logprobs(model, ids)
    # Dream's own diffusion_generate, maskgit_plus at temperature 0, ONE step:
    # every mask committed from one forward of the right-shifted logits.
    # (With more steps its schedule int(n (1 - s/t)) is not one dllm-sample
    # implements, so only the one-step case is compared id for id.)
    m64 = copy.deepcopy(model).double().eval()
    prompt = torch.tensor([[1, 5, 9, 3, 12, 7]])
    try:
        from dream.generation_utils import DreamGenerationConfig
        # passed explicitly: transformers 5's from_model_config returns a plain
        # GenerationConfig, without Dream's fields (eps, alg, steps ...)
        gc = DreamGenerationConfig(max_new_tokens=8, steps=1, temperature=0.0, alg="maskgit_plus", eps=1e-3,
                                   mask_token_id=21, pad_token_id=20, bos_token_id=20, eos_token_id=20,
                                   output_history=False, return_dict_in_generate=False)
        gen = m64.diffusion_generate(prompt, generation_config=gc)
        gen = gen.sequences if hasattr(gen, "sequences") else gen
        extra = {"generate": {"prompt": prompt[0].tolist(), "steps": 1, "gen_length": 8, "block_length": 8,
                              "ids": gen[0].tolist()}}
    except Exception as e:   # recorded, not hidden: the CLI test then skips
        print("dream: diffusion_generate failed:", repr(e))
        extra = None
    dream_multistep(m64, prompt)
    return model, ids, lp, 0, extra


DREAM_CASES = [   # alg, steps, gen_length, top_p (1: None), top_k (0: None)
    ("maskgit_plus", 8, 16, 1.0, 0), ("topk_margin", 8, 16, 1.0, 0), ("entropy", 8, 16, 1.0, 0),
    ("entropy", 16, 16, 1.0, 0), ("entropy", 8, 16, 0.95, 0), ("maskgit_plus", 5, 16, 0.9, 3),
    ("topk_margin", 6, 12, 1.0, 4), ("entropy", 12, 24, 0.8, 0),
]
SCHEDULE_CASES = [(512, 512, 1e-3), (16, 8, 1e-3), (16, 16, 1e-3), (256, 128, 1e-3), (100, 37, 1e-2),
                  (1000, 999, 0.05), (2048, 2048, 1e-3), (7, 3, 1e-3)]


def dream_multistep(m64, prompt):
    """Dream's own diffusion_generate with several steps: ids per DREAM_CASES
    (diffusion_generate.txt), and its commit schedule (dream_schedule.txt)."""
    from dream.generation_utils import DreamGenerationConfig
    d = os.path.join(OUT, "dream")
    os.makedirs(d, exist_ok=True)

    def no_mask(step, x, logits):   # dllm-sample never generates the mask token
        logits = logits.clone()
        logits[..., 21] = -float("inf")
        return logits
    lines = ["# alg steps gen_length top_p top_k : ids (Dream's diffusion_generate, temperature 0, alg_temp 0;"
             " tests/ref/gen_family_fixtures.py)"]
    for alg, steps, gen_len, top_p, top_k in DREAM_CASES:
        gc = DreamGenerationConfig(max_new_tokens=gen_len, steps=steps, temperature=0.0, alg=alg, alg_temp=0.0,
                                   top_p=None if top_p >= 1 else top_p, top_k=top_k or None, eps=1e-3,
                                   mask_token_id=21, pad_token_id=20, bos_token_id=20, eos_token_id=20,
                                   output_history=False, return_dict_in_generate=False)
        out = m64.diffusion_generate(prompt, generation_config=gc, generation_logits_hook_func=no_mask)
        out = out.sequences if hasattr(out, "sequences") else out
        lines.append("%s %d %d %g %d : %s" % (alg, steps, gen_len, top_p, top_k, ",".join(map(str, out[0].tolist()))))
    open(os.path.join(d, "diffusion_generate.txt"), "w").write("\n".join(lines) + "\n")

    lines = ["# m steps eps : commit count of each step (Dream's _sample; tests/ref/gen_family_fixtures.py)"]
    for m, steps, eps in SCHEDULE_CASES:
        timesteps = torch.linspace(1, eps, steps + 1)
        mask_index = torch.ones(1, m, dtype=torch.bool)
        ks = []
        for i in range(steps):   # the lines of _sample, without the model
            num_mask_token = mask_index.sum() / mask_index.shape[0]
            t, s = timesteps[i], timesteps[i + 1]
            k = int(num_mask_token * (1 - s / t)) if i < steps - 1 else int(num_mask_token)
            ks.append(k)
            mask_index[0, :k] = False
            mask_index = torch.cat([mask_index[:, k:], mask_index[:, :k]], dim=1)
        lines.append("%d %d %g : %s" % (m, steps, eps, " ".join(map(str, ks))))
    open(os.path.join(d, "dream_schedule.txt"), "w").write("\n".join(lines) + "\n")


def a2d(kind, tied, seed):
    import transformers
    import a2d.a2d_llama, a2d.a2d_qwen2, a2d.a2d_qwen3  # noqa: F401  (register the a2d-* types)
    base = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config, "qwen3": transformers.Qwen3Config}[kind]
    tgt = {"llama": a2d.a2d_llama.A2DLlamaConfig, "qwen2": a2d.a2d_qwen2.A2DQwen2Config,
           "qwen3": a2d.a2d_qwen3.A2DQwen3Config}[kind]
    cls = {"llama": a2d.a2d_llama.A2DLlamaLMHeadModel, "qwen2": a2d.a2d_qwen2.A2DQwen2LMHeadModel,
           "qwen3": a2d.a2d_qwen3.A2DQwen3LMHeadModel}[kind]
    kw = dict(vocab_size=24, hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
              num_key_value_heads=KV, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=tied,
              bos_token_id=1, eos_token_id=20, attention_dropout=0.0)
    if kind == "qwen3":
        kw["head_dim"] = 8
    src_cfg = base(**kw)
    # as dllm/pipelines/a2d/convert.py: drop auto_map / architectures, rebuild as the A2D config
    cfg_dict = src_cfg.to_dict()
    for k in ("auto_map", "architectures", "model_type"):
        cfg_dict.pop(k, None)
    cfg = tgt(**cfg_dict)
    cfg._attn_implementation = "sdpa"
    model = cls(cfg).eval()
    for i, layer in enumerate(model.model.layers):
        # the a2d forward reads layer.attention_type, which transformers 5's
        # Qwen2DecoderLayer no longer sets (4.x: config.layer_types[i])
        if not hasattr(layer, "attention_type"):
            layer.attention_type = (getattr(cfg, "layer_types", None) or ["full_attention"] * L)[i]
    redraw(model, seed)
    ids = input_ids(seed + 1, 21, 22)
    # dLLM's own MDLM sampler (dllm/core/samplers/mdlm.py, linear alpha
    # scheduler, low_confidence, temperature 0) on the float64 model; it reads
    # only mask / bos / eos ids from the tokenizer.  suppress_tokens=[mask]:
    # dllm-sample never generates the mask token (its softmax leaves it out);
    # with random weights p(mask) ~ 1/V would otherwise reorder the commits.
    from types import SimpleNamespace
    from dllm.core.samplers.mdlm import MDLMSampler
    m64 = copy.deepcopy(model).double().eval()
    tok = SimpleNamespace(mask_token_id=21, bos_token_id=1, eos_token_id=20)
    prompt = [1, 5, 9, 3, 12, 7]
    gen = MDLMSampler(model=m64, tokenizer=tok).sample([prompt], max_new_tokens=8, steps=8, block_size=4,
                                                        temperature=0.0, remasking="low_confidence", suppress_tokens=[21],
                                                        return_dict=False)
    extra = {"generate": {"prompt": prompt, "steps": 8, "gen_length": 8, "block_length": 4, "ids": gen[0].tolist()}}
    return model, ids, logprobs(model, ids), 0, extra


def qwen3(src):
    import transformers
    cfg = transformers.Qwen3Config(vocab_size=24, hidden_size=D, intermediate_size=F, num_hidden_layers=L,
                                   num_attention_heads=H, num_key_value_heads=KV, head_dim=8,
                                   max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                                   attention_bias=False, bos_token_id=1, eos_token_id=20, attention_dropout=0.0,
                                   architectures=["Qwen3ForCausalLM"])
    cfg._attn_implementation = "eager"
    model = transformers.Qwen3ForCausalLM(cfg).eval()
    redraw(model, SEED + 40)
    ids = input_ids(SEED + 41, 19, 20)   # no mask token: an AR model
    # gradients of loss = mean over all (b, i) of -log p(ids[b, i] | causal
    # prefix up to i), float64: tests the q_norm / k_norm backward
    m = copy.deepcopy(model).double().train()
    lp = torch.log_softmax(m(ids).logits.double(), dim=-1)
    loss = -lp.gather(-1, ids[..., None]).mean()
    loss.backward()
    names = ["model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
             "model.layers.1.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight",
             "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
             "model.layers.0.input_layernorm.weight"]
    params = dict(m.named_parameters())
    grads = {n: [float("%.9g" % x) for x in params[n].grad.reshape(-1).tolist()] for n in names}
    return model, ids, logprobs(model, ids), 1, {"loss": float(loss), "grads": grads}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--only", help="write one family's directory (e.g. dream)")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.src))
    torch.manual_seed(0)
    fams = {
        "llada": (lambda: llada(args.src), "<|mdm_mask|>", True),
        "dream": (lambda: dream(args.src), "<|mask|>", True),
        "a2d-llama": (lambda: a2d("llama", False, SEED + 20), "<|mdm_mask|>", True),
        "a2d-qwen2": (lambda: a2d("qwen2", False, SEED + 25), "<|mdm_mask|>", True),
        "a2d-qwen3": (lambda: a2d("qwen3", True, SEED + 30), "<|mdm_mask|>", True),
        "qwen3": (qwen3 and (lambda: qwen3(args.src)), None, False),
    }
    for name, (fn, mask_name, with_mask) in fams.items():
        if args.only and name != args.only:
            continue
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model, ids, lp, causal, extra = fn()
        save(d, model, ids, lp, causal, extra)
        write_tokenizer(d, mask_name, with_mask)
        print(name, "->", d, sorted(os.listdir(d)))


if __name__ == "__main__":
    main()
