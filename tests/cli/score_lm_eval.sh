#!/bin/sh
# tests/cli/score_lm_eval.sh — the lm-evaluation-harness bridge, score/lm_eval_dllm.py.
# Runs lm-eval (model type "dllm") on the local tasks of tests/data/lm_eval (no network:
# HF_*_OFFLINE, datasets from JSONL files) with the converted stories260K scored causally,
# and checks it agrees with the dllm programs run directly on the same items:
#   multiple choice   acc, acc_norm and every choice's log-likelihood == dllm-score --task
#   generate_until    == dllm-sample -p ... | dllm-tok -d, cut at the first "."
#   rolling           == -nll of dllm-score on {"prompt": "<s>", "response": text}
#   diffusion mc      (Monte-Carlo, mc=4) every choice's log-likelihood, acc and acc_norm
#                     == dllm-score --task --mc 4, through lm-eval (which reorders the
#                     requests) and through the Python API in file order and shuffled:
#                     draws are keyed by the context's ids, not the request's position
#   BOS               add_bos_token defaults to the tokenizer's setting (stories260K's
#                     tokenizer.json post-processor puts <s> first: on) == --task --bos;
#                     add_bos_token=False == --task without --bos
# plus diffusion (Monte-Carlo) requests through the bridge's Python API, its msgpack
# reader against dllm-cat, and errors (missing checkpoint, dllm-score's usage error).
# One lm-eval run (~10 s, most of it lm-eval's own start-up); -j 1 everywhere: the
# model is tiny, and idle OpenMP threads spinning on a busy 2-core machine cost more.
# Needs lm-eval in the Python of $DLLM_VENV (default: ../venv next to the repository);
# skips otherwise (CI has none).
. "$(dirname "$0")/lib.sh"

VENV=${DLLM_VENV:-$ROOT/../venv}
PY=$VENV/bin/python
if [ ! -x "$PY" ] || ! "$PY" -c 'import lm_eval' > /dev/null 2>&1; then
    skip "score_lm_eval" "lm-eval not installed (no lm_eval in $VENV; pip install lm-eval)"
    exit 0
fi

export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_EVALUATE_OFFLINE=1
export HF_HOME="$T/hf" HF_DATASETS_CACHE="$T/hf/datasets" TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1
export PY
cd "$ROOT" || exit 1
D=tests/data/lm_eval
dllm-train --init "$DATA/stories260K/stories260K.bin" -o "$T/s" --steps 0 -q 2> "$ERR" \
    || { notok "convert stories260K" "dllm-train failed"; exit 0; }

# --only_include_path: index only tests/data/lm_eval, not lm-eval's ~14000 task files;
# --seed ...,None,...: no torch seed (lm-eval would import torch for it).
LM="\"\$PY\" score/lm_eval_dllm.py --only_include_path --seed 0,1234,None,1234 --include_path $D"

check "lm-eval --model dllm (causal) runs mc, generation and rolling tasks offline" \
    "$LM --model dllm --model_args ckpt=$T/s,causal=True,threads=1 \
     --tasks dllm_stories_mc,dllm_stories_gen,dllm_stories_ppl --output_path $T/lm --log_samples"
check "dllm-score --task on the same items" \
    "dllm-score -m $T/s -j 1 --causal --bos --task $D/stories_mc.jsonl --delimiter ' ' --summary $T/direct.json -o $T/direct.msgpack"
dllm-cat "$T/direct.msgpack" > "$T/direct.jsonl" 2> /dev/null
check "dllm-sample on the generation prompts" \
    "dllm-sample -m $T/s -j 1 --causal --bos -n 16 -q -p 'Once upon a time' -p 'Lily went to the park' -p 'The dog was very' \
     | dllm-tok -d -t $T/s --jsonl --skip-special > $T/gen.jsonl"
"$PY" - "$D/stories_text.jsonl" > "$T/ppl-in.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    print(json.dumps({"prompt": "<s>", "response": json.loads(line)["text"]}))
EOF
check "lm-eval --model dllm (diffusion, mc=4) runs the mc task" \
    "$LM --model dllm --model_args ckpt=$T/s,mc=4,seed=3,threads=1 --tasks dllm_stories_mc --output_path $T/lmd --log_samples"
for b in bos nobos; do
    flag=; [ $b = bos ] && flag=--bos
    check "dllm-score --task (diffusion, mc=4, $b)" \
        "dllm-score -m $T/s -j 1 --mc 4 --seed 3 $flag --task $D/stories_mc.jsonl --delimiter ' ' --summary $T/d_$b.json -o $T/d_$b.msgpack"
    dllm-cat "$T/d_$b.msgpack" > "$T/d_$b.jsonl" 2> /dev/null
done
check "dllm-score on the rolling texts" \
    "dllm-tok -t $T/s --jsonl -q $T/ppl-in.jsonl | dllm-score -m $T/s -j 1 --causal -q - | dllm-cat > $T/ppl.jsonl"

cat > "$T/check.py" <<'EOF'
import glob, json, math, sys
what, T = sys.argv[1], sys.argv[2]
def jl(p):
    return [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
def samples(task, out="lm"):
    f = glob.glob(T + "/" + out + "/*/samples_%s_*.jsonl" % task)
    assert len(f) == 1, f
    return sorted(jl(f[0]), key=lambda s: s["doc_id"])
if what == "mc":
    res = json.load(open(glob.glob(T + "/lm/*/results_*.json")[0]))["results"]["dllm_stories_mc"]
    direct = json.load(open(T + "/direct.json"))
    print("lm-eval acc %.4f acc_norm %.4f; dllm-score acc %.4f acc_norm %.4f"
          % (res["acc,none"], res["acc_norm,none"], direct["acc"], direct["acc_norm"]))
    assert direct["n"] == 10 and res["sample_len"] == 10
    assert abs(res["acc,none"] - direct["acc"]) < 1e-12
    assert abs(res["acc_norm,none"] - direct["acc_norm"]) < 1e-12
    recs = [r for r in jl(T + "/direct.jsonl") if "dllm" not in r]
    for s, r in zip(samples("dllm_stories_mc"), recs):
        lls = [float(x[0]) for x in s["filtered_resps"]]
        assert len(lls) == len(r["ll"]), (lls, r)
        for a, b in zip(lls, r["ll"]):
            assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (s["doc_id"], lls, r["ll"])
elif what == "diffusion_mc":
    # lm-eval (its own request order) vs dllm-score --task: same numbers exactly
    res = json.load(open(glob.glob(T + "/lmd/*/results_*.json")[0]))["results"]["dllm_stories_mc"]
    direct = json.load(open(T + "/d_bos.json"))
    print("lm-eval acc %.4f acc_norm %.4f; dllm-score acc %.4f acc_norm %.4f"
          % (res["acc,none"], res["acc_norm,none"], direct["acc"], direct["acc_norm"]))
    assert direct["rng_key"] == "content" and not direct["causal"]
    assert res["acc,none"] == direct["acc"] and res["acc_norm,none"] == direct["acc_norm"]
    recs = [r for r in jl(T + "/d_bos.jsonl") if "dllm" not in r]
    for s, r in zip(samples("dllm_stories_mc", "lmd"), recs):
        assert [float(x[0]) for x in s["filtered_resps"]] == r["ll"], (s["doc_id"], s["filtered_resps"], r["ll"])
    # the Python API: in file order, shuffled, and with add_bos_token=False
    import random
    sys.path.insert(0, "score")
    import lm_eval_dllm as b
    class Req:
        def __init__(self, *a):
            self.args = a
    items = jl("tests/data/lm_eval/stories_mc.jsonl")
    reqs = [Req(it["query"], " " + c) for it in items for c in it["choices"]]
    for bos in ("bos", "nobos"):
        want = [x for r in jl(T + "/d_%s.jsonl" % bos) if "dllm" not in r for x in r["ll"]]
        kw = {} if bos == "bos" else {"add_bos_token": "False"}
        m = b.DllmLM(ckpt=T + "/s", mc=4, seed=3, threads=1, **kw)
        assert m.add_bos == (bos == "bos")
        got = [x for x, g in m.loglikelihood(reqs)]
        assert got == want, (bos, got, want)
        order = list(range(len(reqs)))
        random.Random(7).shuffle(order)
        sh = m.loglikelihood([reqs[k] for k in order])
        assert [x for x, g in sh] == [want[k] for k in order], (bos, "shuffled")
    a, c = [x for r in jl(T + "/d_bos.jsonl") if "dllm" not in r for x in r["ll"]], want
    assert a != c, "BOS changed nothing"
elif what == "gen":
    direct = jl(T + "/gen.jsonl")
    got = [s["filtered_resps"][0] for s in samples("dllm_stories_gen")]
    want = [d["response"].split(".")[0] for d in direct]
    print("lm-eval:", got)
    assert got == want, (got, want)
elif what == "ppl":
    direct = [-r["nll"] for r in jl(T + "/ppl.jsonl") if "dllm" not in r]
    got = [float(s["filtered_resps"][0]) for s in samples("dllm_stories_ppl")]
    assert len(got) == 3 and all(abs(a - b) <= 1e-9 * abs(b) for a, b in zip(got, direct)), (got, direct)
elif what == "diffusion":
    sys.path.insert(0, "score")
    import lm_eval_dllm as b
    class Req:
        def __init__(self, *a):
            self.args = a
    m = b.DllmLM(ckpt=T + "/s", mc=4, seed=1, threads=1)
    items = jl("tests/data/lm_eval/stories_mc.jsonl")
    reqs = [Req(it["query"], " " + c) for it in items for c in it["choices"]]
    r = m.loglikelihood(reqs)
    assert len(r) == len(reqs) and all(math.isfinite(x) and x <= 0 for x, g in r), r
    assert r == m.loglikelihood(reqs), "not reproducible"
    texts = [d["text"] for d in jl("tests/data/lm_eval/stories_text.jsonl")]
    r = m.loglikelihood_rolling([Req(t) for t in texts])
    assert len(r) == 3 and all(math.isfinite(x) and x < 0 for x in r), r
elif what == "msgpack":
    sys.path.insert(0, "score")
    import lm_eval_dllm as b
    objs = b.unpackb_stream(open(T + "/direct.msgpack", "rb").read())
    want = jl(T + "/direct.jsonl")
    assert len(objs) == len(want)
    for o, w in zip(objs, want):
        assert o == w, (o, w)
    assert b.unpackb_stream(b"\x92\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xff") == [[1.0, -1]]
    assert b.unpackb_stream(b"\xc4\x03abc\xd9\x02hi\xc0\xc2\xd1\xff\x00") == [b"abc", "hi", None, False, -256]
    try:
        b.unpackb_stream(b"\x92\x01")
        raise SystemExit("truncated data accepted")
    except b.MsgpackError:
        pass
elif what == "errors":
    sys.path.insert(0, "score")
    import lm_eval_dllm as b
    class Req:
        def __init__(self, *a):
            self.args = a
    try:
        b.DllmLM(ckpt=T + "/nope")
        raise SystemExit("missing checkpoint accepted")
    except FileNotFoundError as e:
        assert "nope" in str(e), e
    m = b.DllmLM(ckpt=T + "/s", mc=0, threads=1)
    try:
        m.loglikelihood([Req("Once upon a", " time")])
        raise SystemExit("--mc 0 accepted")
    except RuntimeError as e:
        assert "dllm-score" in str(e) and "exited 2" in str(e), e
    m = b.DllmLM(ckpt=T + "/s", causal=True, threads=1)
    r = m.loglikelihood([Req("", "Once"), Req("Once upon a", " time")])
    assert len(r) == 2 and all(x[0] < 0 for x in r), r
print("ok")
EOF
check "lm-eval acc, acc_norm and every log-likelihood equal dllm-score --task's" "\"\$PY\" $T/check.py mc $T"
check "generate_until equals dllm-sample cut at the first '.'" "\"\$PY\" $T/check.py gen $T"
check "diffusion mc: lm-eval and the bridge (file order, shuffled; BOS on and off) equal dllm-score --task exactly" \
    "\"\$PY\" $T/check.py diffusion_mc $T"
check "loglikelihood_rolling equals -nll of dllm-score given <s>" "\"\$PY\" $T/check.py ppl $T"
check "the bridge's msgpack reader decodes a scores stream as dllm-cat does" "\"\$PY\" $T/check.py msgpack $T"
check "diffusion (Monte-Carlo, mc=4): loglikelihood and rolling ELBO through the bridge" \
    "\"\$PY\" $T/check.py diffusion $T"
check "errors: missing checkpoint; dllm-score's usage error (--mc 0) is raised with its message" \
    "\"\$PY\" $T/check.py errors $T"
