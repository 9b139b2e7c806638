#!/bin/sh
# bench/50-score.sh — dllm-score's Monte-Carlo ELBO (CPU) next to the PyTorch
# reference estimator bench/score_ref.py on the same model, rows, --mc and
# threads, in the same run.
# Model: the demo's fine-tuned diffusion model demo-out/stories260K-mdlm
# (`make demo`); when absent, the demo's conversion + fine-tuning steps run
# in a temporary directory first (DLLM_BENCH_FT_STEPS, default 300);
# DLLM_BENCH_SCORE_CKPT names another checkpoint.
# Rows: the demo's held-out TinyStories rows (demo-out/s-rows.valid.msgpack.zst,
# 256 tokens each; made here when absent), the first DLLM_BENCH_SCORE_RECORDS
# (default 32).  --mc 16 (DLLM_BENCH_SCORE_MC): all 16 samples of a row in
# one forward of 16 rows, on both sides.
# Timing: ours = wall clock of the whole dllm-score process (model and
# tokenizer load, stream reading and writing included); reference = its
# scoring loop only (model load and torch import excluded).  Each side runs
# DLLM_BENCH_REPS times (default 3), alternating; the best is kept.
# DLLM_BENCH_THREADS threads (default 2) for both.
# Lines:
#   sequences/s: "ours X, reference Y, ratio Z"
#   cross-check: nats/token of both (different random draws: they agree
#     within a few combined standard errors, not bit for bit)
cd "$(dirname "$0")/.." || exit 3
REPS=${DLLM_BENCH_REPS:-3}
TH=${DLLM_BENCH_THREADS:-2}
MC=${DLLM_BENCH_SCORE_MC:-16}
NR=${DLLM_BENCH_SCORE_RECORDS:-32}
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-score.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
[ -x bin/dllm-score ] || { echo "score: bin/dllm-score is not built (make first): skipped"; exit 0; }
export OMP_NUM_THREADS=$TH

# ---------------------------------------------------------------- model and rows
CK=${DLLM_BENCH_SCORE_CKPT:-demo-out/stories260K-mdlm}
ROWS=demo-out/s-rows.valid.msgpack.zst
TXT=share/data/tinystories/tinystories_val.txt
if [ ! -f "$CK/model.safetensors" ] || [ ! -f "$ROWS" ]; then
    FT=${DLLM_BENCH_FT_STEPS:-300}
    echo "score: $CK or $ROWS absent: converting stories260K and fine-tuning it $FT steps as the demo does (in $W)"
    bin/dllm-train -q --init share/data/stories260K/stories260K.bin -o "$W/stories260K" --steps 0 &&
    bin/dllm-tok -q -t "$W/stories260K/tokenizer.json" "$TXT" |
        bin/dllm-pack -q -L 256 --shuffle --seed 1 --split valid=0.05 -o "$W/rows.msgpack.zst" || { echo "score: could not make the rows"; exit 1; }
    ROWS=$W/rows.valid.msgpack.zst
    if [ ! -f "$CK/model.safetensors" ]; then
        bin/dllm-mask -q --seed 1 --copies 4 "$W/rows.msgpack.zst" -o "$W/train.msgpack.zst" &&
        bin/dllm-train -q --init "$W/stories260K" "$W/train.msgpack.zst" -o "$W/stories260K-mdlm" \
            --steps "$FT" --batch 8 --lr 2e-3 --warmup 20 --threads "$TH" || { echo "score: could not make the demo model"; exit 1; }
        CK=$W/stories260K-mdlm
    fi
fi
MODEL=$(basename "$CK")
bin/dllm-cat "$ROWS" | head -n $((NR + 1)) > "$W/rows.jsonl" || exit 1
bin/dllm-cat --from-json "$W/rows.jsonl" -o "$W/rows.msgpack" || exit 1
NR=$(($(wc -l < "$W/rows.jsonl") - 1))
L=$(awk 'NR == 2 { t = $0; sub(/.*"ids":\[/, "", t); sub(/\].*/, "", t); print split(t, a, ",") }' "$W/rows.jsonl")

now() { date +%s.%N; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
jget() { sed "s/.*\"$1\": *\\([0-9.e+-]*\\).*/\\1/" "$2"; }
ours_once() {  # -> sequences/s (records / wall seconds of the process)
    t0=$(now)
    bin/dllm-score -q -m "$CK" --mc "$MC" --threads "$TH" "$W/rows.msgpack" -o "$W/ours.msgpack" \
        --summary "$W/ours.json" 2> "$W/ours.err" || { sed 's/^/    # /' "$W/ours.err" >&2; return 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" -v n="$NR" 'BEGIN { printf "%.2f", n / (b - a) }'
}

PY=${DLLM_VENV:-$(cd .. && pwd)/venv}/bin/python
have_ref=0
[ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null && have_ref=1
ref_once() {
    "$PY" bench/score_ref.py --ckpt "$CK" --rows "$W/rows.jsonl" --mc "$MC" --threads "$TH" > "$W/ref.json" || return 1
    jget sequences_per_s "$W/ref.json" | awk '{ printf "%.2f", $1 }'
}

ours=""; ref=""
i=0
while [ $i -lt "$REPS" ]; do
    o=$(ours_once) || { echo "score: dllm-score failed"; exit 1; }
    ours=$(max "$ours" "$o")
    if [ $have_ref = 1 ]; then
        r=$(ref_once) || { echo "score: reference failed"; exit 1; }
        ref=$(max "$ref" "$r")
    fi
    i=$((i + 1))
done

CFG="$MODEL, $NR rows x $L tokens, --mc $MC in one forward per row, $TH threads"
tr -d '\n' < "$W/ours.json" > "$W/ours1.json"
on=$(jget nats_per_token "$W/ours1.json"); os=$(jget se_nats_per_token "$W/ours1.json")
printf "score ELBO --mc %s (%s) sequences/s: ours %s, " "$MC" "$CFG" "$ours"
if [ $have_ref = 1 ]; then
    echo "reference (PyTorch CPU, full logits) $ref, ratio $(ratio "$ours" "$ref")"
    rn=$(jget nats_per_token "$W/ref.json"); rs=$(jget se_nats_per_token "$W/ref.json")
    echo "score ELBO cross-check (independent draws): nats/token ours $(printf '%.4f' "$on") (se $(printf '%.4f' "$os")), reference $(printf '%.4f' "$rn") (se $(printf '%.4f' "$rs")): $(awk -v a="$on" -v b="$rn" -v s="$os" -v t="$rs" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.2f", d / sqrt(s * s + t * t) }') combined se apart"
else
    echo "reference skipped (no torch in ${DLLM_VENV:-../venv})"
    echo "score ELBO: nats/token ours $on (se $os)"
fi
# (the task helper appends the PIQA --mc 1 records/s line here, or in bench/51-score_tasks.sh)
