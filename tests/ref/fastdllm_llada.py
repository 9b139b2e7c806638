"""tests/ref/fastdllm_llada.py — a random LLaDA built with Fast-dLLM's own
model code, shared by tests/ref/gen_fastdllm_fixture.py (the tiny fixture
of tests/cli/sample_fastdllm.sh) and bench/fastdllm_speed.py (the speed
bench against Fast-dLLM's samplers).

Fast-dLLM (NVlabs/Fast-dLLM, commit 24cc59e) is not in this repository:
`src` is its llada directory, e.g.
  mkdir -p DIR && git -C /work/.mirror/NVlabs+Fast-dLLM/repo archive HEAD llada | tar -x -C DIR
load(src) puts it on sys.path and returns its generate.py (generate = no
cache, generate_with_prefix_cache, generate_with_dual_cache).

build(...) makes an LLaDAModelLM (llama blocks, RMSNorm with affine weights,
SwiGLU, RoPE, no biases, untied head, GQA when kv_heads < heads) whose
config.json and tensor names are that code's own (save_pretrained); its
weights are redrawn from torch.Generator(seed) in named_parameters() order:
norms 1 + 0.2 N(0,1), the head (ff_out) head_std N(0,1), the rest std N(0,1).
NoMask wraps it so the mask id's logit is -inf (dllm-sample never generates
the mask token; see gen_fastdllm_fixture.py's header).

Does not: download anything, build other block types (einops, which
modeling_llada.py imports for one, is stubbed when absent), or use a GPU.
"""
import os
import sys

import torch


def load(src):
    """Fast-dLLM's llada/generate.py as a module (src: its llada directory)."""
    src = os.path.abspath(src)
    if src not in sys.path:
        sys.path.insert(0, src)
    try:
        import einops  # noqa: F401
    except ImportError:   # modeling_llada.py imports it for a block type we do not build
        import types
        stub = types.ModuleType("einops")

        def rearrange(*a, **k):
            raise RuntimeError("einops is not installed")
        stub.rearrange = rearrange
        sys.modules["einops"] = stub
    import generate   # Fast-dLLM's llada/generate.py (imports model.modeling_llada)
    return generate


def build(src, d, n_layers, n_heads, n_kv_heads, mlp, vocab, mask_id, eos_id, max_seq, seed,
          std, head_std):
    """An LLaDAModelLM of that shape (fp32, CPU, eval mode), weights as in the header."""
    load(src)
    from model.configuration_llada import LLaDAConfig
    from model.modeling_llada import LLaDAModelLM, LLaDAModel, create_model_config_from_pretrained_config
    cfg = LLaDAConfig(d_model=d, n_heads=n_heads, n_kv_heads=n_kv_heads, n_layers=n_layers, mlp_ratio=4,
                      mlp_hidden_size=mlp, activation_type="silu", block_type="llama", block_group_size=1,
                      alibi=False, rope=True, rope_full_precision=True, rope_theta=10000.0, flash_attention=False,
                      attention_dropout=0.0, multi_query_attention=None, attention_layer_norm=False,
                      residual_dropout=0.0, embedding_dropout=0.0, input_emb_norm=False, layer_norm_type="rms",
                      layer_norm_with_affine=True, rms_norm_eps=1e-5, attention_layer_norm_with_affine=True,
                      max_sequence_length=max_seq, include_qkv_bias=False, include_bias=False,
                      bias_for_layer_norm=False, scale_logits=False, vocab_size=vocab, embedding_size=vocab,
                      weight_tying=False, eos_token_id=eos_id, pad_token_id=eos_id, mask_token_id=mask_id,
                      init_device="cpu", init_fn="mitchell", init_std=0.02, precision="amp_bf16", use_cache=False,
                      architectures=["LLaDAModelLM"],
                      auto_map={"AutoConfig": "configuration_llada.LLaDAConfig",
                                "AutoModel": "modeling_llada.LLaDAModelLM",
                                "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"})
    cfg.use_cache = False
    mc = create_model_config_from_pretrained_config(cfg)
    mc.init_device = "cpu"
    model = LLaDAModelLM(cfg, model=LLaDAModel(mc, init_params=True)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))
        model.model.transformer.ff_out.weight.mul_(head_std / std)
    return model


def save(model, out):
    """save_pretrained(out) as safetensors, without generation_config.json
    (not part of the layout dllm reads or the fixture keeps)."""
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for f in os.listdir(out):
        if f == "generation_config.json":
            os.remove(os.path.join(out, f))


class NoMask(torch.nn.Module):
    """The model with its mask-id logit at -inf (see the header); every
    argument, past_key_values and replace_position included, passes through."""

    def __init__(self, model, mask_id):
        super().__init__()
        self.m = model
        self.mask_id = mask_id

    @property
    def device(self):
        return self.m.device

    def forward(self, *a, **k):
        out = self.m(*a, **k)
        out.logits[..., self.mask_id] = float("-inf")
        return out
