"""tests/ref/gen_lora_fixture.py — the PEFT reference for tests/unit/test_lora.c.

Writes tests/data/lora/:
  base/config.json, base/model.safetensors   a tiny random Llama (HF names, F32) with the
                                             dllm fields (objective "causal", so HF
                                             LlamaForCausalLM's causal attention is ours)
  adapter/                                   a PEFT LoRA adapter saved by peft's save_pretrained:
                                             r 4, alpha 8, all seven targets, init_lora_weights
                                             False (B random, not zero, so it matters)
  logits.json                                {"ids": [...], "logits": [[...]]} of
                                             PeftModel(base, adapter) on ids (one row, causal)
With --ours DIR (an adapter written by dllm-train --init tests/data/lora/base --lora 4 ...):
copies its adapter_config.json and adapter_model.safetensors to tests/data/lora/ours/ and writes
tests/data/lora/ours_logits.json: PeftModel.from_pretrained(base, ours) on IDS, so the C test shows
that PEFT reads OUR files and gives our logits (the commands that made ours/ are in
tests/data/lora/ours/HOW.md).
With --check DIR (a dllm-written adapter on this base, e.g. dllm-train --init base --lora ...):
prints the max |logit| difference of PEFT with that adapter vs PEFT with the adapter folded in by
hand, after loading it with PeftModel.from_pretrained (peft reads our files).
Run: /work/venv/bin/python tests/ref/gen_lora_fixture.py
"""
import json, os, sys
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model, PeftModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "lora")
CFG = dict(vocab_size=48, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
           tie_word_embeddings=False, attention_bias=False, bos_token_id=1, eos_token_id=2)
IDS = [1, 5, 9, 17, 33, 40, 3, 12, 22, 47, 8, 2]

def base_model():
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(**CFG, torch_dtype="float32")).float().eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn_like(p))   # non-trivial norms
    return m

def main():
    torch.manual_seed(0)
    base = base_model()
    bdir = os.path.join(OUT, "base")
    if len(sys.argv) > 2 and sys.argv[1] == "--ours":
        import shutil
        odir = os.path.join(OUT, "ours")
        os.makedirs(odir, exist_ok=True)
        for fn in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy(os.path.join(sys.argv[2], fn), os.path.join(odir, fn))
        with open(os.path.join(odir, "adapter_config.json")) as f:
            ac = json.load(f)
        ac["base_model_name_or_path"] = "tests/data/lora/base"   # not the machine's absolute path
        with open(os.path.join(odir, "adapter_config.json"), "w") as f:
            json.dump(ac, f, indent=1)
        pm = PeftModel.from_pretrained(base, odir).eval()
        with torch.no_grad():
            logits = pm(torch.tensor([IDS])).logits[0].double()
        with open(os.path.join(OUT, "ours_logits.json"), "w") as f:
            json.dump({"ids": IDS, "logits": [[float("%.9g" % v) for v in row] for row in logits.tolist()]}, f)
        print("peft loaded our adapter; wrote", odir, "and ours_logits.json")
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--check":
        pm = PeftModel.from_pretrained(base, sys.argv[2]).eval()
        ids = torch.tensor([IDS])
        with torch.no_grad():
            a = pm(ids).logits
            merged = pm.merge_and_unload()
            b = merged(ids).logits
        print("peft loaded %s; max|adapter - merged| = %.3g" % (sys.argv[2], (a - b).abs().max().item()))
        return
    os.makedirs(bdir, exist_ok=True)
    base.save_pretrained(bdir, safe_serialization=True)
    with open(os.path.join(bdir, "config.json")) as f:
        c = json.load(f)
    c.update({"objective": "causal", "mask_token_id": None, "shift_logits": False})
    c.pop("mask_token_id")
    with open(os.path.join(bdir, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    for extra in ("generation_config.json",):
        p = os.path.join(bdir, extra)
        if os.path.exists(p):
            os.remove(p)
    lc = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                    init_lora_weights=False)
    torch.manual_seed(1)
    pm = get_peft_model(base_model(), lc).eval()
    pm.save_pretrained(os.path.join(OUT, "adapter"))
    for extra in ("README.md",):
        p = os.path.join(OUT, "adapter", extra)
        if os.path.exists(p):
            os.remove(p)
    with torch.no_grad():
        logits = pm(torch.tensor([IDS])).logits[0].double()
    with open(os.path.join(OUT, "logits.json"), "w") as f:
        json.dump({"ids": IDS, "logits": [[float("%.9g" % v) for v in row] for row in logits.tolist()]}, f)
    print("wrote", OUT)

if __name__ == "__main__":
    main()
