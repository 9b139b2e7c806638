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
The model is built by tests/ref/fastdllm_llada.py (shared with
bench/fastdllm_speed.py).  Run from the repository root:
  /work/venv/bin/python tests/ref/gen_fastdllm_fixture.py --src DIR/llada
`make test` never runs this script.
"""
import argparse
import copy
import json
import os

import torch

import fastdllm_llada   # tests/ref/fastdllm_llada.py: Fast-dLLM's model and samplers

OUT = "tests/data/fastdllm"
D, L, H, KV, F, V = 32, 2, 4, 2, 48, 48
MASK, EOS = 47, 46
SEED = 4321
HEAD_STD = 1.0
PROMPTS = [[3, 17, 5, 29, 11, 8], [40, 2, 33, 7, 19, 25, 14, 9, 30, 12, 6]]
# (steps, gen_length, block_length, threshold)
GRID = [(16, 32, 8, None), (12, 32, 8, None), (32, 32, 8, None), (8, 32, 32, None), (6, 24, 12, None),
        (16, 32, 8, 0.3), (32, 32, 16, 0.5), (32, 32, 8, 0.9), (16, 16, 4, 0.1)]


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
    gen = fastdllm_llada.load(args.src)
    model = fastdllm_llada.build(args.src, D, L, H, KV, F, V, MASK, EOS, 64, SEED, 0.25, HEAD_STD)
    fastdllm_llada.save(model, OUT)
    with open(os.path.join(OUT, "prompts.jsonl"), "w") as f:
        f.write(json.dumps({"dllm": 1, "kind": "tokens",
                            "tokenizer": {"vocab_size": V, "mask_id": MASK, "eos_id": EOS}},
                           separators=(",", ":")) + "\n")
        for i, p in enumerate(PROMPTS):
            f.write(json.dumps({"ids": p, "id": "p%d" % i}, separators=(",", ":")) + "\n")
    cases = run_cases(gen, fastdllm_llada.NoMask(model, MASK))
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# sampler steps gen_length block_length threshold prompt nfe : ids (Fast-dLLM, fp32)\n")
        for name, steps, n, bl, thr, pi, nfe, ids in cases:
            f.write("%s %d %d %d %s %d %d : %s\n" % (name, steps, n, bl, thr, pi, nfe, ",".join(map(str, ids))))
    c64 = run_cases(gen, fastdllm_llada.NoMask(copy.deepcopy(model).double(), MASK))
    with open(os.path.join(OUT, "fp64_differs.txt"), "w") as f:
        for a, b in zip(cases, c64):
            if a[7] != b[7]:
                f.write("%s %d %d %d %s %d : fp64 %s\n" % (a[:6] + (",".join(map(str, b[7])),)))
    print("%d cases" % len(cases))


if __name__ == "__main__":
    main()
