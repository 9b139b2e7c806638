#!/usr/bin/env python3
"""experiments/reversal/gen.py — the seeded synthetic fact corpus and its questions.

    gen.py --seed S --pairs N --both F --repeat R --choices K OUTDIR

N pairs of made-up names (A, B), each A's mentor is B.  The first F*N pairs
("control") appear in training in both directions ("A's mentor is B." and
"B is the mentor of A."), so the reverse wording itself is learnable; the
rest ("test") appear forward only.  Every fact is written R times, one per
line, in a seeded shuffled order (OUTDIR/corpus.txt).  Questions, dllm-score
--task mc format {query, choices, gold} with K choices (gold among K-1
distractors of the same role, seeded):
  forward.jsonl          test pairs, "A's mentor is" -> "B."   (seen direction)
  reverse.jsonl          test pairs, "B is the mentor of" -> "A."  (the reversal)
  reverse-control.jsonl  control pairs, reverse wording (seen in training)
Only Python's random.Random(seed) is used (its integer and choice
algorithms are stable across Python 3 versions), so the files are the same
on every machine.  It does NOT tokenize (dllm-tok does).
"""
import argparse, json, os, random

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "tr", "gr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
CODAS = ["", "", "n", "r", "l", "m", "s", "x"]
# --names short: an initial that the stories260K tokenizer has as a word-start
# token, then two of its two-letter pieces ("Tomen" -> T om en): 3 tokens a
# name, so a fact is ~14 tokens instead of ~21 and the models spend their
# capacity on the pairing rather than on spelling long names
SHORT_INITIALS = ["B", "H", "L", "M", "O", "S", "T"]
SHORT_PIECES = ["an", "en", "in", "on", "ar", "er", "or", "il", "ot", "et", "id", "im", "ad", "am", "om",
                "un", "ut", "ay", "ow", "es", "is", "it", "at", "ed", "ir", "ig", "ou", "re", "le", "ri"]


def names(rng, n, style):
    """n distinct capitalised names: 2-3 syllables (long) or 3 tokens (short)."""
    out, seen = [], set()
    while len(out) < n:
        if style == "short":
            w = rng.choice(SHORT_INITIALS) + rng.choice(SHORT_PIECES) + rng.choice(SHORT_PIECES)
        else:
            w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randrange(2, 4))) + rng.choice(CODAS)
            w = w.capitalize()
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def question(rng, query, gold, pool, k):
    choices = [gold] + rng.sample([p for p in pool if p != gold], k - 1)
    rng.shuffle(choices)
    return {"query": query, "choices": [c + "." for c in choices], "gold": choices.index(gold)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--both", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--choices", type=int, default=4)
    ap.add_argument("--names", choices=["short", "long"], default="short")
    ap.add_argument("outdir")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    people = names(rng, 2 * a.pairs, a.names)
    pairs = list(zip(people[:a.pairs], people[a.pairs:]))
    n_both = int(a.both * a.pairs)
    control, test = pairs[:n_both], pairs[n_both:]
    if len(test) < a.choices or len(control) < a.choices:
        ap.error("need at least --choices pairs in both the control and the test set")
    lines = [f"{x}'s mentor is {y}." for x, y in pairs] + [f"{y} is the mentor of {x}." for x, y in control]
    lines = lines * a.repeat
    rng.shuffle(lines)
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "corpus.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    sets = {
        "forward": [question(rng, f"{x}'s mentor is", y, [q for _, q in test], a.choices) for x, y in test],
        "reverse": [question(rng, f"{y} is the mentor of", x, [p for p, _ in test], a.choices) for x, y in test],
        "reverse-control": [question(rng, f"{y} is the mentor of", x, [p for p, _ in control], a.choices) for x, y in control],
    }
    for name, qs in sets.items():
        with open(os.path.join(a.outdir, name + ".jsonl"), "w") as f:
            for q in qs:
                f.write(json.dumps(q) + "\n")


if __name__ == "__main__":
    main()
