#!/usr/bin/env python3
"""tests/cuda/compare.py — the CPU-vs-CUDA comparisons of tests/cuda/e2e.sh.
  compare.py losses A.jsonl B.jsonl RTOL     every step's loss: |a-b| <= RTOL*|a|
  compare.py weights A.safetensors B.safetensors ATOL RTOL2 [NOREL]
                                             every tensor: max|a-b| <= ATOL and
                                             ||a-b|| <= RTOL2 ||a||  (f32 / bf16);
                                             tensors whose name contains NOREL get
                                             the ATOL test only (their gradient is
                                             zero up to rounding: Adam steps noise)
  compare.py ids A.txt B.txt MINFRAC         dllm-cat listings of samples: the share of
                                             equal generated ids >= MINFRAC
  compare.py summary A.json B.json RTOL      every number of a score summary
Prints one line "ok - ..." or "not ok - ..." with the measured numbers.
Plain python3 (no numpy): the GPU machine's python has it, but CI need not.
Does not: decide tolerances (e2e.sh states them).
"""
import json, math, struct, sys

def line(ok, what):
    print(("ok - " if ok else "not ok - ") + what)
    return 0 if ok else 1

def losses(a, b, rtol):
    la = [json.loads(x) for x in open(a) if '"loss"' in x]
    lb = [json.loads(x) for x in open(b) if '"loss"' in x]
    if len(la) != len(lb) or not la:
        return line(False, f"losses: {len(la)} vs {len(lb)} steps")
    worst = max(abs(x["loss"] - y["loss"]) / max(abs(x["loss"]), 1e-12) for x, y in zip(la, lb))
    return line(worst <= rtol, f"losses of {len(la)} steps: max rel diff {worst:.3e} (tol {rtol:g})")

def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        s, e = t["data_offsets"]
        buf = raw[8 + n + s:8 + n + e]
        if t["dtype"] == "F32":
            out[name] = struct.unpack(f"<{len(buf)//4}f", buf)
        elif t["dtype"] == "BF16":
            out[name] = [struct.unpack("<f", b"\0\0" + buf[i:i + 2])[0] for i in range(0, len(buf), 2)]
    return out

def weights(a, b, atol, rtol2, norel=None):
    wa, wb = read_st(a), read_st(b)
    if set(wa) != set(wb) or not wa:
        return line(False, f"weights: tensor names differ ({len(wa)} vs {len(wb)})")
    mx, worst_rel, worst = 0.0, 0.0, ""
    for k in wa:
        x, y = wa[k], wb[k]
        d2 = sum((p - q) ** 2 for p, q in zip(x, y))
        n2 = sum(p * p for p in x)
        m = max(abs(p - q) for p, q in zip(x, y))
        rel = math.sqrt(d2 / n2) if n2 > 0 else math.sqrt(d2)
        mx = max(mx, m)
        if norel and norel in k:
            continue
        if rel > worst_rel:
            worst_rel, worst = rel, k
    return line(mx <= atol and worst_rel <= rtol2,
                f"final weights ({len(wa)} tensors): max|d| {mx:.3e} (tol {atol:g}), worst rel L2 {worst_rel:.3e} "
                f"in {worst} (tol {rtol2:g})")

def gen_ids(path):
    """the generated token ids (after n_prompt) of every record of a dllm-cat listing"""
    out = []
    for x in open(path):
        try:
            r = json.loads(x)
        except ValueError:
            continue
        if isinstance(r, dict) and "ids" in r:
            out += r["ids"][r.get("n_prompt", 0):]
    return out

def ids(a, b, minfrac):
    ta, tb = gen_ids(a), gen_ids(b)
    n = max(len(ta), len(tb))
    same = sum(1 for x, y in zip(ta, tb) if x == y)
    frac = same / n if n else 0.0
    return line(n > 0 and frac >= minfrac, f"sampled tokens equal: {same}/{n} = {frac:.4f} (min {minfrac:g})")

def numbers(v, path=""):
    if isinstance(v, bool):
        return
    if isinstance(v, (int, float)):
        yield path, float(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from numbers(x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from numbers(x, f"{path}[{i}]")

SKIP = ("seconds", "per_s", "elapsed", "threads")
def summary(a, b, rtol):
    na = dict(numbers(json.load(open(a))))
    nb = dict(numbers(json.load(open(b))))
    keys = [k for k in na if not any(s in k for s in SKIP)]
    if not keys or set(keys) - set(nb):
        return line(False, f"summary: fields differ ({sorted(set(keys) - set(nb))[:3]})")
    worst, wk = 0.0, ""
    for k in keys:
        r = abs(na[k] - nb[k]) / max(abs(na[k]), 1e-12)
        if r > worst:
            worst, wk = r, k
    return line(worst <= rtol, f"score summary ({len(keys)} numbers): max rel diff {worst:.3e} at {wk} (tol {rtol:g})")

if __name__ == "__main__":
    cmd, a, b, *t = sys.argv[1:]
    f = {"losses": losses, "weights": weights, "ids": ids, "summary": summary}[cmd]
    def arg(x):   # numbers are tolerances, anything else a name (weights' NOREL)
        try:
            return float(x)
        except ValueError:
            return x
    sys.exit(f(a, b, *map(arg, t)))
