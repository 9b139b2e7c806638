#!/usr/bin/env python3
"""tok_bench.py — reference for bench/tok_bench.c: HF `tokenizers` (Rust) encode speed.

    DLLM_VENV/bin/python bench/tok_bench.py TOKENIZER FILE [RUNS] [file|lines]

Single-threaded (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false, set before the import;
"lines" encodes line by line with encode(), never encode_batch), add_special_tokens=False,
truncation/padding off.  A fresh Tokenizer per run, so its BPE cache starts empty as ours does.
Prints the best of RUNS (default 5) as "<MB/s> MB/s <tokens> tokens <seconds> s", the same
line as tok_bench.c.
"""
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: tok_bench.py TOKENIZER FILE [RUNS] [file|lines]")
    path, file = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    lines = len(sys.argv) > 4 and sys.argv[4] == "lines"
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    with open(file, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8", "replace")
    docs = text.split("\n") if lines else [text]
    best, ntok = float("inf"), 0
    for _ in range(max(runs, 1)):
        t = Tokenizer.from_file(path)
        t.no_truncation()
        t.no_padding()
        t0 = time.perf_counter()
        n = 0
        for d in docs:
            n += len(t.encode(d, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
        best, ntok = min(best, dt), n
    print(f"{len(raw) / 1e6 / best:.2f} MB/s {ntok} tokens {best:.4f} s")


if __name__ == "__main__":
    main()
