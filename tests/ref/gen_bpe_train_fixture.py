#!/usr/bin/env python3
"""tests/ref/gen_bpe_train_fixture.py — fixtures for tests/cli/tok_train.sh.

Run once from the repository root (needs the HF `tokenizers` venv and a built
dllm-tok):

    /work/venv/bin/python tests/ref/gen_bpe_train_fixture.py [--bin bin/dllm-tok]

Writes tests/data/bpe_train/:
  expected.json  `dllm-tok train --vocab-size 500` on the bundled TinyStories
                 sample (share/data/tinystories/tinystories_sample.txt, which
                 holds <|endoftext|> separators); the CLI test retrains and
                 requires the same bytes
  texts.txt      a few lines to encode (one document per line)
  ids.txt        the ids HF `tokenizers` gives each line with expected.json
                 (space-separated, one line per text)

It also checks, and prints, how our trainer compares with HF's own
BpeTrainer (ByteLevel pre-tokenizer, 256-byte initial alphabet, same special
tokens and min_frequency), fed the same text: each line with its newline,
with the special-token strings cut out (which dllm-tok train does and HF
does not).  Reported: merges agreeing in rank order, and whether the two
tokenizer.json files are byte-identical.  With --extra FILE... it does the
same on larger corpora (e.g. ../shared/data/tinyshakespeare/input.txt).
`make test` never runs this script.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "share/data/tinystories/tinystories_sample.txt")
OUT = os.path.join(ROOT, "tests/data/bpe_train")
SPECIAL = ["<|endoftext|>"]
VOCAB = 500
MIN_FREQ = 2

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "He said, \u201cWow, that is a really amazing vase! Can I buy it?\u201d",
    "The end.<|endoftext|>Once upon a time there was a boy.",
    "  Two  spaces,\ta tab, and trailing spaces   ",
    "Numbers 12345 and 3.14, don't we'll they're I'm you've he'd it's",
    "\u00c9milie a vu 12 \u00e9l\u00e9phants \u2014 \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \U0001F642 \u03a9\u2248\u00e7\u221a",
    "unseen words: xylophone quizzically zebra",
]


def ours(binary, files, vocab, min_freq, out):
    cmd = [binary, "train", "-q", "--vocab-size", str(vocab), "--min-frequency", str(min_freq)]
    for s in SPECIAL:
        cmd += ["--special", s]
    subprocess.run(cmd + list(files) + ["-o", out], check=True)


def pieces(files):
    """What dllm-tok train trains on: lines with their newline, special
    tokens cut out (earliest first, longest on a tie)."""
    pat = re.compile("|".join(re.escape(s) for s in sorted(SPECIAL, key=len, reverse=True)))
    for f in files:
        with open(f, "rb") as fh:
            for raw in fh:  # lines keep b"\n"
                line = raw.decode("utf-8")
                for p in pat.split(line):
                    if p:
                        yield p


def hf(files, vocab, min_freq, out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel()
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab, min_frequency=min_freq, special_tokens=SPECIAL,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(pieces(files), tr)
    tok.save(out)


def merges_of(path):
    import json
    with open(path, encoding="utf-8") as f:
        return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in json.load(f)["model"]["merges"]]


def compare(binary, files, vocab, min_freq, tmp):
    a, b = os.path.join(tmp, "ours.json"), os.path.join(tmp, "hf.json")
    ours(binary, files, vocab, min_freq, a)
    hf(files, vocab, min_freq, b)
    ma, mb = merges_of(a), merges_of(b)
    prefix = 0
    while prefix < min(len(ma), len(mb)) and ma[prefix] == mb[prefix]:
        prefix += 1
    same = open(a, "rb").read() == open(b, "rb").read()
    name = ", ".join(os.path.relpath(f, ROOT) for f in files)
    print(f"{name} vocab {vocab}: ours {len(ma)} merges, HF {len(mb)}; {prefix} agree in order, "
          f"{len(set(ma) & set(mb))} in common; tokenizer.json byte-identical: {same}")
    return same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin/dllm-tok"))
    ap.add_argument("--extra", nargs="*", default=[], help="larger corpora to compare on (not written)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    expected = os.path.join(OUT, "expected.json")
    ours(args.bin, [CORPUS], VOCAB, MIN_FREQ, expected)
    tok = Tokenizer.from_file(expected)
    with open(os.path.join(OUT, "texts.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in TEXTS))
    with open(os.path.join(OUT, "ids.txt"), "w", newline="\n") as f:
        for t in TEXTS:
            enc = tok.encode(t, add_special_tokens=False)
            assert tok.decode(enc.ids, skip_special_tokens=False) == t, t
            f.write(" ".join(map(str, enc.ids)) + "\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}/expected.json, texts.txt, ids.txt "
          f"(vocab {tok.get_vocab_size()})")

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        ok &= compare(args.bin, [CORPUS], VOCAB, MIN_FREQ, tmp)
        ok &= compare(args.bin, [CORPUS], 4096, MIN_FREQ, tmp)
        for f in args.extra:
            for v in (4096, 32000):
                ok &= compare(args.bin, [f], v, MIN_FREQ, tmp)
    if not ok:
        print("note: some outputs differ from HF's (see above)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
