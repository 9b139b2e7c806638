#!/usr/bin/env python3
# tests/cli/st_close.py — compare two safetensors files tensor by tensor with
# the tolerance model |a - b| <= atol + rtol*|b| (STYLE.md 3), plus the
# whole-file NMSE sum (a-b)^2 / sum b^2.  F32, F16 and BF16 tensors (read as
# float); same names, dtypes and shapes required.  Pure Python (no numpy).
#   st_close.py A B ATOL RTOL   -> prints "max_abs X max_rel Y nmse Z (N values)"; exit 0 when within, 1 not
import json, math, struct, sys

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        dt = t["dtype"]
        if dt == "F32":
            v = struct.unpack("<%df" % (len(raw) // 4), raw)
        elif dt == "F16":
            v = struct.unpack("<%de" % (len(raw) // 2), raw)
        elif dt == "BF16":
            v = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
        else:
            sys.exit("%s: %s: dtype %s not compared" % (path, name, dt))
        out[name] = (dt, t["shape"], v)
    return out

def main():
    pa, pb, atol, rtol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    A, B = load(pa), load(pb)
    if sorted(A) != sorted(B):
        print("tensor names differ"); return 1
    max_abs = max_rel = num = den = 0.0
    n = bad = 0
    worst = ""
    for name in sorted(A):
        (da, sa, va), (db, sb, vb) = A[name], B[name]
        if da != db or sa != sb:
            print("%s: %s %s vs %s %s" % (name, da, sa, db, sb)); return 1
        for x, y in zip(va, vb):
            d = abs(x - y)
            n += 1
            num += d * d
            den += y * y
            if d > max_abs:
                max_abs, worst = d, "%s (%r vs %r)" % (name, x, y)
            if y != 0:
                max_rel = max(max_rel, d / abs(y))
            if not d <= atol + rtol * abs(y):
                bad += 1
    nmse = num / den if den > 0 else 0.0
    print("max_abs %.3g max_rel %.3g nmse %.3g (%d values, %d outside atol %g + rtol %g; worst %s)"
          % (max_abs, max_rel, nmse, n, bad, atol, rtol, worst))
    return 1 if bad else 0

sys.exit(main())
