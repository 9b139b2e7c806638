#!/usr/bin/env python3
"""check_tok_save.py — a tokenizer.json written by dl_tok_add_special + dl_tok_save loads in
HF `tokenizers` and encodes with identical ids.

    make build/tests/test_tok && /work/venv/bin/python tests/ref/check_tok_save.py

Runs `build/tests/test_tok --save DIR`, which writes DIR/NAME.json for each real tokenizer it
finds (gpt2, llama2, qwen3) with "<|mdm_mask|>" appended, then for each file checks with HF:
  - the new token has the id dllm gave it (the old vocab size) and is special;
  - the texts of tests/data/tok/vectors.json encode exactly as with the original tokenizer;
  - "<|mdm_mask|>" inside text splits it as a special token (ids = pieces around it + the id).
Exit status 0 when every check passes.
"""
import json
import os
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_tokenizer(name):
    for d in ("share/data", "../shared/data"):
        p = os.path.join(ROOT, d, f"{name}-tokenizer", "tokenizer.json")
        if os.path.exists(p):
            return p
    return None


def load(path):
    t = Tokenizer.from_file(path)
    t.no_truncation()
    t.no_padding()
    return t


def main():
    with open(os.path.join(ROOT, "tests/data/tok/vectors.json"), encoding="utf-8") as f:
        texts = json.load(f)["texts"]
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([os.path.join(ROOT, "build/tests/test_tok"), "--save", d], cwd=ROOT,
                           capture_output=True, text=True)
        print(r.stdout, end="")
        if r.returncode:
            sys.exit("test_tok --save failed")
        for name in ("gpt2", "llama2", "qwen3"):
            saved = os.path.join(d, f"{name}.json")
            orig = find_tokenizer(name)
            if not os.path.exists(saved) or not orig:
                print(f"skip - {name}: no tokenizer")
                continue
            t0, t1 = load(orig), load(saved)
            want_id = max(t0.get_vocab(with_added_tokens=True).values()) + 1
            mid = t1.token_to_id("<|mdm_mask|>")
            added = t1.get_added_tokens_decoder().get(mid)
            ok = mid == want_id and added is not None and added.special
            print(f"{'ok' if ok else 'not ok'} - {name}: HF loads the saved file, <|mdm_mask|> = {mid} "
                  f"(want {want_id}), special")
            bad += not ok
            e0 = [e.ids for e in t0.encode_batch(texts, add_special_tokens=False)]
            e1 = [e.ids for e in t1.encode_batch(texts, add_special_tokens=False)]
            diff = sum(a != b for a, b in zip(e0, e1))
            print(f"{'ok' if not diff else 'not ok'} - {name}: {len(texts)} texts encode as before ({diff} differ)")
            bad += diff > 0
            a = t0.encode("Hi there", add_special_tokens=False).ids
            b = t0.encode(" you!", add_special_tokens=False).ids
            got = t1.encode("Hi there<|mdm_mask|> you!", add_special_tokens=False).ids
            ok = got == a + [want_id] + b
            print(f"{'ok' if ok else 'not ok'} - {name}: text around <|mdm_mask|> encodes as the pieces")
            bad += not ok
            ok = t1.decode([want_id], skip_special_tokens=True) == "" and \
                t1.decode([want_id], skip_special_tokens=False) == "<|mdm_mask|>"
            print(f"{'ok' if ok else 'not ok'} - {name}: decode shows it, skip_special_tokens drops it")
            bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
