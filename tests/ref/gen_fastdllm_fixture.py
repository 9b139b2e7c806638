#!/usr/bin/env python3
"""tests/ref/gen_fastdllm_fixture.py — a tiny random LLaDA checkpoint and the
ids of Fast-dLLM's own samplers on it, for tests/cli/sample_fastdllm.sh
(dllm-sample --cache none | prefix | dual against Fast-dLLM's code).

Reference: NVlabs/Fast-dLLM (commit 24cc59e) llada/generate.py (generate = no cache,
generate_with_prefix_cache, generate_with_dual_cache) with its own
llada/model/modeling_llada.py (LLaDAModelLM with past_key_values and
replace_position), temperature 0, remasking low_confidence, fp32 on the CPU,
batch 1 (its samplers' shape), one call per (prompt, case).

Model (written by Fast-dLLM's LLaDAModelLM.save_pretrained, so config keys
and tensor names are that code's): dim 32, 2 layers, 4 heads, 2 kv heads
(GQA), MLP 48, vocab 48 (mask 47, eos 46), untied, RoPE theta 10000;
weights redrawn from torch.Generator(SEED): norms 1 + 0.2 N(0,1), the head
(ff_out) 1.0 N(0,1), the rest 0.25 N(0,1) (the head's scale makes the top
probabilities 0.1 - 0.5 rather than near-uniform, so the threshold cases
commit several tokens per step and near-ties are rarer).
The one change to Fast-dLLM's path: the model's logits at the mask id are
set to -inf (the wrapper NoMask) before its samplers see them.  dllm-sample
never generates the mask token (--help: "the mask token never is"), so its
softmax, hence every confidence, leaves the mask out; Fast-dLLM's includes
it.  The Dream fixture (gen_family_fixtures.py) does the same.

Cases (tests/data/fastdllm/cases.txt), one line each:
    sampler steps gen_length block_length threshold prompt_index nfe : ids
  sampler    none | prefix | dual (generate / _with_prefix_cache / _dual_cache)
  threshold  - (the LLaDA schedule: steps / blocks commits per step) or tau
  nfe        the NFE Fast-dLLM's sampler returned
  ids        the whole canvas (prompt + generated), as Fast-dLLM returns it
Prompts: tests/data/fastdllm/prompts.jsonl (a dllm tokens stream as JSON).
The same cases are also run on the float64 model; cases where float64 gives
other ids are listed in tests/data/fastdllm/fp64_differs.txt (empty = none).

No tokenizer is written: the test feeds ids.  einops (imported by
modeling_llada.py for a block type not built here) is stubbed when absent.

Source (not in this repository): Fast-dLLM's llada directory, e.g.
  mkdir -p DIR && git -C /work/.mirror/NVlabs+Fast-dLLM/repo archive HEAD llada | tar -x -C DIR
Run from the repository root:
  /work/venv/bin/python tests/ref/gen_fastdllm_fixture.py --src DIR/llada
`make test` never runs this script.
"""
import argparse
import copy
import json
import os
import sys

import torch

OUT = "tests/data/fastdllm"
D, L, H, KV, F, V = 32, 2, 4, 2, 48, 48
MASK, EOS = 47, 46
SEED = 4321
HEAD_STD = 1.0
PROMPTS = [[3, 17, 5, 29, 11, 8], [40, 2, 33, 7, 19, 25, 14, 9, 30, 12, 6]]
# (steps, gen_length, block_length, threshold)
GRID = [(16, 32, 8, None), (12, 32, 8, None), (32, 32, 8, None), (8, 32, 32, None), (6, 24, 12, None),
        (16, 32, 8, 0.3), (32, 32, 16, 0.5), (32, 32, 8, 0.9), (16, 16, 4, 0.1)]


def build(src):
    sys.path.insert(0, os.path.abspath(src))
    try:
        import einops  # noqa: F401
    except ImportError:   # modeling_llada.py imports it for a block type we do not build
        import types
        stub = types.ModuleType("einops")
        def rearrange(*a, **k):
            raise RuntimeError("einops is not installed")
        stub.rearrange = rearrange
        sys.modules["einops"] = stub
    from model.configuration_llada import LLaDAConfig
    from model.modeling_llada import LLaDAModelLM, LLaDAModel, create_model_config_from_pretrained_config
    cfg = LLaDAConfig(d_model=D, n_heads=H, n_kv_heads=KV, n_layers=L, mlp_ratio=4, mlp_hidden_size=F,
                      activation_type="silu", block_type="llama", block_group_size=1, alibi=False, rope=True,
                      rope_full_precision=True, rope_theta=10000.0, flash_attention=False, attention_dropout=0.0,
                      multi_query_attention=None, attention_layer_norm=False, residual_dropout=0.0,
                      embedding_dropout=0.0, input_emb_norm=False, layer_norm_type="rms", layer_norm_with_affine=True,
                      rms_norm_eps=1e-5, attention_layer_norm_with_affine=True, max_sequence_length=64,
                      include_qkv_bias=False, include_bias=False, bias_for_layer_norm=False, scale_logits=False,
                      vocab_size=V, embedding_size=V, weight_tying=False, eos_token_id=EOS, pad_token_id=EOS,
                      mask_token_id=MASK, init_device="cpu", init_fn="mitchell", init_std=0.02,
                      precision="amp_bf16", use_cache=False, architectures=["LLaDAModelLM"],
                      auto_map={"AutoConfig": "configuration_llada.LLaDAConfig",
                                "AutoModel": "modeling_llada.LLaDAModelLM",
                                "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"})
    cfg.use_cache = False
    mc = create_model_config_from_pretrained_config(cfg)
    mc.init_device = "cpu"
    model = LLaDAModelLM(cfg, model=LLaDAModel(mc, init_params=True)).eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
        model.model.transformer.ff_out.weight.mul_(HEAD_STD / 0.25)
    return model


class NoMask(torch.nn.Module):
    """The model with its mask-id logit at -inf (see the header); every
    argument, past_key_values and replace_position included, passes through."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    @property
    def device(self):
        return self.m.device

    def forward(self, *a, **k):
        out = self.m(*a, **k)
        out.logits[..., MASK] = float("-inf")
        return out


def run_cases(gen, model):
    out = []
    for si, (steps, n, bl, thr) in enumerate(GRID):
        for pi, pr in enumerate(PROMPTS):
            prompt = torch.tensor([pr])
            for name, fn in (("none", gen.generate), ("prefix", gen.generate_with_prefix_cache),
                             ("dual", gen.generate_with_dual_cache)):
                x, nfe = fn(model, prompt, steps=steps, gen_length=n, block_length=bl, temperature=0.0,
                            remasking="low_confidence", mask_id=MASK, threshold=thr)
                ids = x[0].tolist()
                assert MASK not in ids, (name, steps, n, bl, thr, pi, ids)
                out.append((name, steps, n, bl, "-" if thr is None else "%g" % thr, pi, int(nfe), ids))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="Fast-dLLM's llada directory")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = build(args.src)
    import generate as gen   # Fast-dLLM's llada/generate.py (imports model.modeling_llada)
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    for f in os.listdir(OUT):   # generation_config.json: not part of the layout we test
        if f == "generation_config.json":
            os.remove(os.path.join(OUT, f))
    with open(os.path.join(OUT, "prompts.jsonl"), "w") as f:
        f.write(json.dumps({"dllm": 1, "kind": "tokens",
                            "tokenizer": {"vocab_size": V, "mask_id": MASK, "eos_id": EOS}},
                           separators=(",", ":")) + "\n")
        for i, p in enumerate(PROMPTS):
            f.write(json.dumps({"ids": p, "id": "p%d" % i}, separators=(",", ":")) + "\n")
    cases = run_cases(gen, NoMask(model))
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# sampler steps gen_length block_length threshold prompt nfe : ids (Fast-dLLM, fp32)\n")
        for name, steps, n, bl, thr, pi, nfe, ids in cases:
            f.write("%s %d %d %d %s %d %d : %s\n" % (name, steps, n, bl, thr, pi, nfe, ",".join(map(str, ids))))
    c64 = run_cases(gen, NoMask(copy.deepcopy(model).double()))
    with open(os.path.join(OUT, "fp64_differs.txt"), "w") as f:
        for a, b in zip(cases, c64):
            if a[7] != b[7]:
                f.write("%s %d %d %d %s %d : fp64 %s\n" % (a[:6] + (",".join(map(str, b[7])),)))
    print("%d cases" % len(cases))


if __name__ == "__main__":
    main()
