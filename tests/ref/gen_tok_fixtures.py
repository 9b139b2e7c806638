#!/usr/bin/env python3
"""gen_tok_fixtures.py — expected token ids from HF `tokenizers` for test_tok.c.

Run with the venv that has `tokenizers` (the Rust library):
    /work/venv/bin/python tests/ref/gen_tok_fixtures.py [--shared ../shared/data] [--out tests/data/tok]

Writes (small, committed):
  vectors.json         text -> ids for llama.cpp's 46 tokenizer test vectors, our own edge
                       cases and ~300 seeded random strings, in full, for gpt2 / llama2 / qwen3;
                       plus HF decode of those ids (skip_special_tokens False and True), and
                       invalid-UTF-8 inputs whose expected ids are those of the text after
                       bytes.decode("utf-8", "replace") (= the engine's U+FFFD repair).
  corpus-<tok>.txt     per corpus and split mode: number of docs and tokens, sha256 of the
                       id stream (per doc: u32 LE count, then the ids as u32 LE) and of the
                       decode stream (per doc: HF decode(ids, skip_special_tokens=False) as
                       UTF-8, then one 0xFF byte), plus the first 8 hex digits of the same
                       hashes over each chunk of docs, so the C test can say which docs differ.
Expected ids are always HF `tokenizer.encode(text, add_special_tokens=False).ids`; gpt2's
truncation section is switched off (dllm ignores truncation/padding).
Split modes: file (the whole file is one doc), lines (text.split("\\n")), paras
(text.split("\\n\\n")), jsonl (every string value of each non-empty line, depth first, in key
order).  Files are read as bytes and decoded strictly (no newline translation).
"""
import argparse
import hashlib
import json
import os
import random
import struct
import sys

import tokenizers
from tokenizers import Tokenizer

TOKENIZERS = ["gpt2", "llama2", "qwen3"]

CORPORA = [
    ("tinyshakespeare/input.txt", ["file", "lines", "paras"]),
    ("tinystories/tinystories_val.txt", ["file", "lines", "paras"]),
    ("tinystories/tinystories_sample.txt", ["file", "lines"]),
    ("sft-dolly-hhrlhf/dolly_hhrlhf_train_small.jsonl", ["jsonl"]),
    ("eval-mc/arc_easy.jsonl", ["jsonl"]),
    ("eval-mc/copa.jsonl", ["jsonl"]),
    ("eval-mc/lambada_openai.jsonl", ["jsonl"]),
    ("eval-mc/piqa.jsonl", ["jsonl"]),
    ("eval-mc/piqa_valid_raw.jsonl", ["jsonl"]),
    ("eval-mc/winogrande.jsonl", ["jsonl"]),
]
CHUNK = {"file": 1, "lines": 64, "paras": 64, "jsonl": 64}

EDGE = [
    "", " ", "  ", "\t", "\n", "\r\n", " \n \n", "a", "Hello world", " Hello world", "Hello  world ",
    "it's IT'S it'S 'll 'LL 'Re 're've x'ſ 'ſa", "don't 'sup ''s", "12345678901 ١٢٣ ０１２ ² ½ Ⅻ",
    "a\u180eb x \u180ey", "a \u180e b", "\u2028\u2029x", "x\u0085\u0085y", "\u00a0\u00a0x \u3000y\u1680z",
    "x\t\tab  \r\n\r\n  y", "12345 ab\r\r\n!!\n\nx", "e\u0301 \u1100\u1161\u11a8 \ufb01 \u212b",
    "\u0130stanbul", "😀 👨‍👩‍👧 🇫🇷", "ក្រុមហ៊ុន", "Привет, мир!", "日本語のテキスト", "عربى",
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|endof", "<s></s><unk>",
    " <s> x </s> ", "<|im_start|>user\nhi<|im_end|>\n", "<think>\n\n</think>\n\n", "<tool_call>",
    "\u2581x \u2581 \u2581\u2581y", "<0x41> <0xZZ>", "\ufffd\ufffd", "\ue000\u0378\uffff",
    "=" * 100, "-" * 301, " " * 200, "\n" * 70, "a" * 500, "ab" * 300, "9" * 100, "!?" * 80,
    "x" + " " * 60 + "y", "The quick brown fox jumps over the lazy dog. " * 20,
    "a\x00b", "\x01\x02\x7f", "tab\there", "CamelCaseWordsAndALLCAPS", "émigré façade naïve",
]

POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "'", "'s", "'S", "'ll", "'RE", "'t", '"', ",", ".",
         "!", "?", "-", "_", "(", ")", "<", ">", "|", "#", "@", "$", "%", "&", "*", "/", "\\",
         "é", "ß", "Ω", "ж", "中", "日本", "ក", "ع", "\u0301", "e\u0301", "\u1100\u1161", "ﬁ", "😀",
         "👨‍👩‍👧", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2028", "\u2029", "\u3000", "\u180e",
         "\ufeff", "０", "²", "½", "Ⅻ", "٣", "123", "4567", "ſ", "İ", "\u2581", "<|endoftext|>",
         "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<think>", "<|endof", "<0x41>",
         "\ufffd", "\ue000", "Hello", "world", " the", "ing", "tion"])

INVALID = [b"a\xffb", b"\xe2\x82", b"\xe2\x82A", b"\xf0\x80\x80\x80", b"\xed\xa0\x80x", b"\xc0\xaf",
           b"\xf4\x90\x80\x80", b"abc\xf0\x9f\x98", b"\x80\x80x", b"ok \xe4\xb8 \xe4\xb8\xad",
           b"\xf0\x9f\x98\x80\xff\xfe", b"<|endoftext|>\xff<s>"]


def load_tok(shared, name):
    path = os.path.join(shared, f"{name}-tokenizer", "tokenizer.json")
    t = Tokenizer.from_file(path)
    t.no_truncation()
    t.no_padding()
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return t, sha


def random_texts(n, seed=1234):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out


def llama_cpp_vectors(shared):
    d = os.path.join(shared, "tokenizer-test-vectors")
    with open(os.path.join(d, "gpt-2.inp"), "rb") as f:
        texts = f.read().decode("utf-8").split("\n__ggml_vocab_test__\n")[:-1]
    expect = {}
    for tok, base in (("gpt2", "gpt-2"), ("llama2", "llama-spm")):
        with open(os.path.join(d, f"{base}.out"), "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        expect[tok] = [[int(x) for x in ln.split()] for ln in lines[:len(texts)]]
    return texts, expect


def encode_all(t, texts):
    return [e.ids for e in t.encode_batch(texts, add_special_tokens=False)]


def decodes(t, ids, texts):
    """Per text: [decode, decode skipping specials], null meaning "same as the text" resp.
    "same as decode"."""
    out = []
    for x, text in zip(ids, texts):
        d = t.decode(x, skip_special_tokens=False)
        ds = t.decode(x, skip_special_tokens=True)
        out.append([None if d == text else d, None if ds == d else ds])
    return out


def gen_vectors(shared, out):
    toks = {n: load_tok(shared, n) for n in TOKENIZERS}
    lc_texts, lc_expect = llama_cpp_vectors(shared)
    texts = lc_texts + EDGE + random_texts(300)
    res = {"version": 1, "hf_tokenizers": tokenizers.__version__, "n_llama_cpp": len(lc_texts),
           "texts": texts, "invalid_hex": [b.hex() for b in INVALID], "tokenizers": {}}
    repaired = [b.decode("utf-8", "replace") for b in INVALID]
    for name, (t, sha) in toks.items():
        ids = encode_all(t, texts)
        if name in lc_expect:
            bad = [i for i, e in enumerate(lc_expect[name]) if e != ids[i]]
            if bad:
                sys.exit(f"{name}: HF disagrees with llama.cpp vectors at {bad[:5]}")
        res["tokenizers"][name] = {
            "sha256": sha,
            "ids": ids,
            "decode": decodes(t, ids, texts),
            "invalid_ids": encode_all(t, repaired),
            "vocab_size": max(max(t.get_vocab(with_added_tokens=True).values()) + 1, t.get_vocab_size(True)),
        }
    with open(os.path.join(out, "vectors.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- synthetic tokenizers
# Small BPE tokenizers trained here with pipelines the three real ones do not use, so that
# every supported component is checked against HF.  Stored whole in synth.json (each with
# the ids HF gives with it; HF's trainer breaks some ties by hash order, so a re-run may
# store a slightly different synth-cont vocab — still self-consistent).
def synth_tokenizers(train):
    from tokenizers import (AddedToken, Regex, decoders as D, models as M, normalizers as N,
                            pre_tokenizers as P, trainers as T)

    def make(pre, vocab_size=260, bytelevel=False, model_kw=None, trainer_kw=None, edit=None):
        model_kw = dict(model_kw or {})
        tok = Tokenizer(M.BPE(**model_kw))
        tok.pre_tokenizer = pre
        kw = dict(vocab_size=vocab_size, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
        if bytelevel:
            kw["initial_alphabet"] = P.ByteLevel.alphabet()
        kw.update(trainer_kw or {})
        tok.train_from_iterator(train, T.BpeTrainer(**kw))
        j = json.loads(tok.to_str())
        if edit:
            edit(j)
        return Tokenizer.from_str(json.dumps(j))

    def byte_fallback(j):
        v = j["model"]["vocab"]
        for b in range(256):
            v.setdefault(f"<0x{b:02X}>", len(v))
        j["model"]["byte_fallback"] = True

    def added(tok):
        tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, normalized=False, special=True)])
        tok.add_tokens([AddedToken("<sep>", single_word=True, normalized=False),
                        AddedToken("Hello", normalized=True),
                        AddedToken("ab c", normalized=True),
                        AddedToken("  ", normalized=False)])
        return tok

    out = {}
    # SentencePiece-like: byte fallback, Metaspace "first" + Digits, NFKC/Replace/Lowercase
    t = make(P.Sequence([P.Metaspace(prepend_scheme="first"), P.Digits(individual_digits=True)]),
             model_kw=dict(unk_token="<unk>", fuse_unk=True), edit=byte_fallback)
    t.normalizer = N.Sequence([N.NFKC(), N.Replace("``", '"'), N.Replace(Regex(" {3,}"), "  "), N.Lowercase()])
    t.decoder = D.Sequence([D.Metaspace(prepend_scheme="first"), D.ByteFallback(), D.Fuse(),
                            D.Strip(" ", 1, 0)])  # (stop > 0 panics in HF on an empty token)
    out["synth-spm"] = added(t)
    # unk without byte fallback, fused and not fused; Metaspace always / no split; NFD + StripAccents
    for fuse in (True, False):
        t = make(P.Metaspace(prepend_scheme="always", split=False), vocab_size=200,
                 model_kw=dict(unk_token="<unk>", fuse_unk=fuse),
                 trainer_kw=dict(limit_alphabet=40))
        t.normalizer = N.Sequence([N.NFD(), N.StripAccents(), N.Strip(left=True, right=False)])
        t.decoder = D.Metaspace(prepend_scheme="always")
        out["synth-unk-fuse" if fuse else "synth-unk"] = t
    # byte-level with Split behaviours
    t = make(P.Sequence([P.Split(" ", "merged_with_previous"), P.Split(Regex("[0-9]+"), "contiguous"),
                         P.ByteLevel(add_prefix_space=True, use_regex=False)]), bytelevel=True)
    t.decoder = D.ByteLevel()
    out["synth-split1"] = added(t)
    t = make(P.Sequence([P.Split(Regex(r"\s+"), "removed"), P.Punctuation("merged_with_next"),
                         P.ByteLevel(add_prefix_space=False, use_regex=False)]), bytelevel=True)
    t.normalizer = N.Sequence([N.NFKD(), N.Prepend("~")])
    t.decoder = D.Sequence([D.ByteLevel(), D.Replace("~", "")])
    out["synth-split2"] = t
    t = make(P.Sequence([P.WhitespaceSplit(), P.Split(Regex("[aeiou]"), "merged_with_next", invert=True),
                         P.ByteLevel(add_prefix_space=False, use_regex=False)]), bytelevel=True)
    t.normalizer = N.NFC()
    t.decoder = D.ByteLevel()
    out["synth-split3"] = t
    t = make(P.Sequence([P.Whitespace(), P.Punctuation("contiguous"), P.Digits(individual_digits=False),
                         P.ByteLevel(add_prefix_space=False, use_regex=False)]), bytelevel=True)
    t.decoder = D.ByteLevel()
    out["synth-ws"] = t
    # Llama-3 pattern (hand-written matcher with up to 3 digits) + ignore_merges; GPT-2 regex
    # with add_prefix_space; an unusual regex that needs the PCRE2 \s translation
    l3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    t = make(P.Sequence([P.Split(Regex(l3), "isolated"), P.ByteLevel(add_prefix_space=False, use_regex=False)]),
             bytelevel=True, edit=lambda j: j["model"].update(ignore_merges=True))
    t.decoder = D.ByteLevel()
    out["synth-llama3"] = added(t)
    t = make(P.ByteLevel(add_prefix_space=True, use_regex=True), bytelevel=True)
    t.decoder = D.ByteLevel()
    out["synth-gpt2pfx"] = added(t)
    t = make(P.Sequence([P.Split(Regex(r"\s\S|\S+|\s"), "isolated"),
                         P.ByteLevel(add_prefix_space=False, use_regex=False)]), bytelevel=True)
    t.decoder = D.ByteLevel()
    out["synth-pcre"] = t
    # prefix/suffix BPE (CLIP-like): BPEDecoder; and the same without decoder (tokens joined
    # with spaces)
    for dec in (True, False):
        t = make(P.Whitespace(), vocab_size=300,
                 model_kw=dict(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"),
                 trainer_kw=dict(continuing_subword_prefix="##", end_of_word_suffix="</w>"))
        if dec:
            t.decoder = D.BPEDecoder(suffix="</w>")
        out["synth-cont" if dec else "synth-cont-nodec"] = t
    return out


def gen_synth(shared, out):
    with open(os.path.join(shared, "tinyshakespeare/input.txt"), "rb") as f:
        shak = f.read().decode("utf-8")[:20000]
    # no NUL in the vocab: jansson (the C side's JSON parser) cannot hold "\u0000" in object keys
    train = [x.replace("\x00", "") for x in shak.split("\n") + EDGE + random_texts(200, seed=99)]
    texts = [x for x in EDGE if len(x) <= 60] + random_texts(50, seed=7) + ["HELLO hello Hello <sep> x<sep>y [MASK] a [MASK]  b",
                                                "AB C ab c  ab  c", "``quoted``     spaced", "ÀÉÎõü ﬁ ①"]
    res = {"version": 1, "hf_tokenizers": tokenizers.__version__, "texts": texts, "tokenizers": {}}
    for name, t in synth_tokenizers(train).items():
        j = t.to_str()
        t2 = Tokenizer.from_str(j)      # what the C side loads
        ids = encode_all(t2, texts)
        res["tokenizers"][name] = {"json": json.loads(j), "ids": ids, "decode": decodes(t2, ids, texts)}
    with open(os.path.join(out, "synth.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- Unicode class overrides
def gen_ucd():
    """Print the C table of code points that HF's regexes (Oniguruma, newer Unicode) class as
    \p{L} / \p{N} while utf8proc's categories (what share/tok/tok_utf8.c uses) say neither.
    Paste the output into tok_utf8.c (CLASS_FIX)."""
    import ctypes
    import ctypes.util
    from tokenizers import Regex, pre_tokenizers as P
    up = ctypes.CDLL(ctypes.util.find_library("utf8proc"))
    up.utf8proc_category.restype = ctypes.c_int
    white = {0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, *range(9, 14), 32, *range(0x2000, 0x200B)}

    def mine(c):
        if c in white:
            return 4
        cat = up.utf8proc_category(c)
        return 1 if 1 <= cat <= 5 else 2 if 9 <= cat <= 11 else 0

    def members(pat):
        sp = P.Split(Regex(pat), "removed")
        res = bytearray(0x110000)
        for base in range(0, 0x110000, 0x1000):
            cps = [c for c in range(base, base + 0x1000) if not 0xD800 <= c < 0xE000]
            inside = bytearray([1]) * len(cps)
            for _, (a, b) in sp.pre_tokenize_str("".join(map(chr, cps))):
                inside[a:b] = bytes(b - a)
            for i, c in enumerate(cps):
                res[c] = inside[i]
        return res
    L, N, S = members(r"\p{L}"), members(r"\p{N}"), members(r"\s")
    ranges = []
    for c in range(0x110000):
        if 0xD800 <= c < 0xE000:
            continue
        hf = 4 if S[c] else 1 if L[c] else 2 if N[c] else 0
        if hf != mine(c):
            if ranges and ranges[-1][1] == c - 1 and ranges[-1][2] == hf:
                ranges[-1][1] = c
            else:
                ranges.append([c, c, hf])
    print(f"/* CLASS_FIX: {len(ranges)} ranges, HF tokenizers {tokenizers.__version__} vs utf8proc */")
    for a, b, hf in ranges:
        print(f"    {{ 0x{a:05X}, 0x{b:05X}, {['TOK_CL_OTHER', 'TOK_CL_L', 'TOK_CL_N', '', 'TOK_CL_S'][hf]} }},")
    fixed = {c: hf for a, b, hf in ranges for c in range(a, b + 1)}

    # regex-syntax \w as HF's Whitespace pre-tokenizer sees it, vs tok_cp_is_word
    def my_word(c):
        if c in (0x200C, 0x200D) or 0x24B6 <= c <= 0x24E9 or 0x1F130 <= c <= 0x1F149 or \
                0x1F150 <= c <= 0x1F169 or 0x1F170 <= c <= 0x1F189 or fixed.get(c, 0) in (1, 2):
            return 1
        return 1 if up.utf8proc_category(c) in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12) else 0
    ws = P.Whitespace()
    wr = []
    for c in range(0x80, 0x110000):
        if 0xD800 <= c < 0xE000 or S[c]:
            continue
        hf = 1 if len(ws.pre_tokenize_str("a" + chr(c) + "a")) == 1 else 0
        if hf != my_word(c):
            if wr and wr[-1][1] == c - 1 and wr[-1][2] == hf:
                wr[-1][1] = c
            else:
                wr.append([c, c, hf])
    print(f"/* WORD_FIX: {len(wr)} ranges */")
    for a, b, hf in wr:
        print(f"    {{ 0x{a:05X}, 0x{b:05X}, {hf} }},")


def docs_of(data, mode):
    text = data.decode("utf-8")
    if mode == "file":
        return [text]
    if mode == "lines":
        return text.split("\n")
    if mode == "paras":
        return text.split("\n\n")
    docs = []

    def walk(v):
        if isinstance(v, str):
            docs.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
    for line in text.split("\n"):
        if line:
            walk(json.loads(line))
    return docs


def gen_corpus(shared, out, name):
    t, sha = load_tok(shared, name)
    lines = [f"# dllm tok fixture v1: HF tokenizers {tokenizers.__version__}, "
             f"encode(text, add_special_tokens=False); see tests/ref/gen_tok_fixtures.py",
             f"tokenizer {name} {sha}"]
    for rel, modes in CORPORA:
        with open(os.path.join(shared, rel), "rb") as f:
            data = f.read()
        for mode in modes:
            docs = docs_of(data, mode)
            ids = encode_all(t, docs)
            chunk = CHUNK[mode]
            h_ids, h_dec = hashlib.sha256(), hashlib.sha256()
            chunks = []
            ntok = 0
            rt_diff = 0
            for c0 in range(0, len(docs), chunk):
                ci, cd = hashlib.sha256(), hashlib.sha256()
                for k in range(c0, min(c0 + chunk, len(docs))):
                    b = struct.pack("<I", len(ids[k])) + struct.pack(f"<{len(ids[k])}I", *ids[k])
                    dec = t.decode(ids[k], skip_special_tokens=False)
                    rt_diff += dec != docs[k]
                    d = dec.encode("utf-8") + b"\xff"
                    ci.update(b); h_ids.update(b); cd.update(d); h_dec.update(d)
                    ntok += len(ids[k])
                chunks.append(f"c {ci.hexdigest()[:8]} {cd.hexdigest()[:8]}")
            lines.append(f"set {rel} {mode} {chunk} {len(docs)} {ntok} {rt_diff} "
                         f"{h_ids.hexdigest()} {h_dec.hexdigest()}")
            lines.extend(chunks)
            print(f"{name} {rel} {mode}: {len(docs)} docs, {ntok} tokens, {rt_diff} decode != text",
                  file=sys.stderr)
    with open(os.path.join(out, f"corpus-{name}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "tok"))
    ap.add_argument("--only", choices=["vectors", "synth", "corpus"], default=None)
    ap.add_argument("--ucd", action="store_true", help="print tok_utf8.c's CLASS_FIX table and exit")
    ap.add_argument("--show", nargs=4, metavar=("TOKENIZER", "CORPUS", "MODE", "DOC"),
                    help="print one corpus document and its expected ids (to debug test_tok), e.g. "
                         "--show gpt2 eval-mc/copa.jsonl jsonl 17")
    a = ap.parse_args()
    if a.ucd:
        gen_ucd()
        return
    if a.show:
        name, rel, mode, k = a.show
        t, _ = load_tok(a.shared, name)
        with open(os.path.join(a.shared, rel), "rb") as f:
            doc = docs_of(f.read(), mode)[int(k)]
        e = t.encode(doc, add_special_tokens=False)
        print(f"text: {doc!r}")
        print(f"ids ({len(e.ids)}): {' '.join(map(str, e.ids))}")
        print(f"tokens: {e.tokens}")
        return
    os.makedirs(a.out, exist_ok=True)
    if a.only in (None, "vectors"):
        gen_vectors(a.shared, a.out)
    if a.only in (None, "synth"):
        gen_synth(a.shared, a.out)
    if a.only in (None, "corpus"):
        for name in TOKENIZERS:
            gen_corpus(a.shared, a.out, name)


if __name__ == "__main__":
    main()
