#!/usr/bin/env python3
"""bench/fastdllm_speed.py — dllm-sample against Fast-dLLM's own PyTorch
samplers (llada/generate.py: generate, generate_with_prefix_cache,
generate_with_dual_cache) on the SAME checkpoint, same settings, same run
(`make bench` via bench/72-fastdllm.sh; issue 12).

The model: a random LLaDA built with Fast-dLLM's LLaDAModelLM by
tests/ref/fastdllm_llada.py and written with its save_pretrained; default
the bench's 85M shape (bench/llama2c_model.c: dim 768, 12 layers, 12
heads, MLP 2048) with vocab 512 + the mask token (id 512; EOS 2), untied
head, max length 256.  "85M" counts the transformer layers' parameters
(embedding and head add 0.8M).  Weights: norms 1 + 0.2 N(0,1), matrices
--std N(0,1) (default 0.05, about the tiny fixture's gain at dim 768), the
head --head-std (0.2: logits of std ~5, so the top probabilities are not
uniform and ties are rare; with random weights some remain).
Fast-dLLM's model sees the mask logit at -inf (NoMask, as the fixture of
tests/cli/sample_fastdllm.sh), because dllm-sample never generates it.

Per cache mode (none / prefix / dual): Fast-dLLM's sampler at temperature
0, low-confidence remasking, fp32, batch 1 (its shape), torch threads
--threads; one warm-up call (one block in <= 4 steps) first, not timed; then one
timed call (time.perf_counter around the sampler call: sampling only).
dllm-sample on the saved checkpoint with -j THREADS, the same prompt and
settings, --keep-eos (Fast-dLLM returns the whole canvas); its tokens/s is
the one it prints on stderr (sampling only, model load excluded), as
bench/70-decode.sh reads it.  tokens/s = generated tokens / seconds.
Printed, one line per mode:
  fastdllm 85M --cache X (gen G, block B, T threads): tokens/s ours A,
  Fast-dLLM PyTorch B, ratio A/B; NFE a vs b; ids identical: yes/no (k/G
  generated tokens)
Numbers are as measured on whatever else runs on the machine.

Does not: run on a GPU, use --threshold, batch several prompts, or say
anything about quality (random weights).  --smoke: a tiny shape for
checking the script in seconds (its timings mean nothing).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import fastdllm_llada  # noqa: E402  (tests/ref/fastdllm_llada.py)

SAMPLERS = {"none": "generate", "prefix": "generate_with_prefix_cache", "dual": "generate_with_dual_cache"}
EOS = 2


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="Fast-dLLM's llada directory")
    ap.add_argument("--bin", default="bin", help="directory of dllm-sample and dllm-cat")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=0, help="default: --heads")
    ap.add_argument("--mlp", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=512, help="tokens before the mask token (its id)")
    ap.add_argument("--gen-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", default="3,17,5,29,11", help="prompt ids, comma-separated")
    ap.add_argument("--caches", default="none,prefix,dual")
    ap.add_argument("--std", type=float, default=0.05)
    ap.add_argument("--head-std", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--smoke", action="store_true", help="dim 64, 2 layers, 4 heads, MLP 128, gen 32, block 8")
    ap.add_argument("--work", help="directory for the checkpoint and outputs (default: a temporary one)")
    if "--smoke" in sys.argv[1:]:   # new defaults: options given explicitly still win
        ap.set_defaults(dim=64, layers=2, heads=4, mlp=128, gen_length=32, steps=32, block_length=8)
    a = ap.parse_args()
    a.kv_heads = a.kv_heads or a.heads
    a.prompt = [int(t) for t in a.prompt.split(",")]
    a.caches = a.caches.split(",")
    return a


def size_label(model):
    n = sum(p.numel() for name, p in model.named_parameters() if ".blocks." in name)
    return "%.0fM" % (n / 1e6) if n >= 1e6 else "%.0fK" % (n / 1e3)


def fastdllm_run(gen, model, a, cache):
    """Fast-dLLM's sampler: (tokens/s, nfe, canvas ids), after one untimed warm-up call."""
    fn = getattr(gen, SAMPLERS[cache])
    prompt = torch.tensor([a.prompt])
    kw = dict(temperature=0.0, remasking="low_confidence", mask_id=a.vocab, threshold=None)
    # warm-up: one block in <= 4 steps (torch's first calls are several times slower)
    fn(model, prompt, steps=min(4, a.block_length), gen_length=a.block_length, block_length=a.block_length, **kw)
    t0 = time.perf_counter()
    x, nfe = fn(model, prompt, steps=a.steps, gen_length=a.gen_length, block_length=a.block_length, **kw)
    dt = time.perf_counter() - t0
    return a.gen_length / dt, int(nfe), x[0].tolist()


def ours_run(a, ckpt, prompts, cache, work):
    """dllm-sample: (tokens/s, nfe, canvas ids) from its stderr and its record."""
    out = os.path.join(work, "ours.%s.msgpack" % cache)
    cmd = [os.path.join(a.bin, "dllm-sample"), "-j", str(a.threads), "-m", ckpt, "--keep-eos", "-t", "0",
           "-n", str(a.gen_length), "--steps", str(a.steps), "--block-length", str(a.block_length),
           "--cache", cache, "-o", out, prompts]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("fastdllm: dllm-sample failed (%d): %s" % (r.returncode, r.stderr.strip()))
    tps = re.search(r"([0-9.]+) tokens/s", r.stderr)
    nfe = re.search(r"NFE ([0-9]+) ", r.stderr)
    rec = subprocess.run([os.path.join(a.bin, "dllm-cat"), "--no-header", out], capture_output=True, text=True,
                         check=True).stdout.splitlines()[0]
    return float(tps.group(1)) if tps else 0.0, int(nfe.group(1)) if nfe else -1, json.loads(rec)["ids"]


def main():
    a = parse_args()
    try:   # transformers' deprecation notes and save_pretrained's progress bar: not bench output
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    torch.set_num_threads(a.threads)
    work = a.work or tempfile.mkdtemp(prefix="dllm-bench-fastdllm.")
    os.makedirs(work, exist_ok=True)
    gen = fastdllm_llada.load(a.src)
    model = fastdllm_llada.build(a.src, a.dim, a.layers, a.heads, a.kv_heads, a.mlp, a.vocab + 1, a.vocab, EOS,
                                 max(256, len(a.prompt) + a.gen_length), a.seed, a.std, a.head_std)
    ckpt = os.path.join(work, "llada")
    fastdllm_llada.save(model, ckpt)
    prompts_json, prompts = os.path.join(work, "prompt.jsonl"), os.path.join(work, "prompt.msgpack")
    with open(prompts_json, "w") as f:
        f.write(json.dumps({"dllm": 1, "kind": "tokens",
                            "tokenizer": {"vocab_size": a.vocab + 1, "mask_id": a.vocab, "eos_id": EOS}}) + "\n")
        f.write(json.dumps({"ids": a.prompt, "id": "p0"}) + "\n")
    subprocess.run([os.path.join(a.bin, "dllm-cat"), "--from-json", prompts_json, "-o", prompts], check=True)
    wrapped = fastdllm_llada.NoMask(model, a.vocab)
    label = size_label(model) + (" (smoke)" if a.smoke else "")
    P = len(a.prompt)
    for cache in a.caches:
        rt, rn, rids = fastdllm_run(gen, wrapped, a, cache)
        ot, on, oids = ours_run(a, ckpt, prompts, cache, work)
        same = sum(1 for i in range(P, P + a.gen_length)
                   if i < len(oids) and i < len(rids) and oids[i] == rids[i])
        print("fastdllm %s --cache %s (gen %d, block %d, %d thread%s): tokens/s ours %.1f, Fast-dLLM PyTorch %.1f, "
              "ratio %.2f; NFE %d vs %d; ids identical: %s (%d/%d generated tokens)"
              % (label, cache, a.gen_length, a.block_length, a.threads, "" if a.threads == 1 else "s",
                 ot, rt, ot / rt if rt > 0 else 0.0,
                 on, rn, "yes" if oids == rids else "no", same, a.gen_length), flush=True)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
