#!/bin/sh
# bench/51-score_tasks.sh — dllm-score --task (CPU) next to the PyTorch
# reference bench/score_task_ref.py on the same model, items and threads, in
# the same run: PIQA (../shared/data/eval-mc/piqa.jsonl, the first
# DLLM_BENCH_PIQA_N items, default 200; skipped when absent) with llm-foundry's
# delimiter "\nAnswer: ", LLaDA's estimator at --mc 1 (one masked row per
# choice, one forward each, as LLaDA's get_log_likelihood).
# Model: the demo's fine-tuned diffusion model demo-out/stories260K-mdlm
# (`make demo`), or DLLM_BENCH_SCORE_CKPT; when absent, stories260K converted
# here into a temporary directory (same shapes, so the same speed).
# Timing: ours = wall clock of the whole dllm-score process (model load,
# tokenisation, stream writing included); reference = its scoring loop
# (tokenisation + forwards; torch import and model load excluded).  Each side
# runs DLLM_BENCH_REPS times (default 3), alternating; the best is kept.
# DLLM_BENCH_SCORE_THREADS threads (default 1) for both: one forward here is
# ~100 tokens through a 260K-parameter model, too small to split over
# threads (measured: with 2 threads on a busy 2-core machine both sides ran
# 10-50x slower, spin-waiting; with 1 thread ours 0.10 s, reference 0.21 s
# for 20 items).
# Lines:
#   records/s (one scores record per item): "ours X, reference Y, ratio Z"
#   accuracy at --mc 1 of both (different random draws: dllm's Philox vs torch's
#     generator, so they agree only within the noise of the estimate)
#   cross-check, exact: the converted AR stories260K scored --causal by both:
#     acc / acc_norm and the largest |ll difference| over all choices
cd "$(dirname "$0")/.." || exit 3
REPS=${DLLM_BENCH_REPS:-3}
TH=${DLLM_BENCH_SCORE_THREADS:-1}
N=${DLLM_BENCH_PIQA_N:-200}
SHARED=$(cd .. && pwd)/shared/data
PIQA=$SHARED/eval-mc/piqa.jsonl
[ -x bin/dllm-score ] || { echo "score_tasks: bin/dllm-score is not built (make first): skipped"; exit 0; }
[ -f "$PIQA" ] || { echo "score_tasks: $PIQA is absent: skipped"; exit 0; }
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-task.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=$TH
DELIM='\nAnswer: '
head -n "$N" "$PIQA" > "$W/piqa.jsonl"
N=$(wc -l < "$W/piqa.jsonl" | tr -d ' ')

AR=demo-out/stories260K
if [ ! -f "$AR/model.safetensors" ]; then
    bin/dllm-train -q --init share/data/stories260K/stories260K.bin -o "$W/stories260K" --steps 0 ||
        { echo "score_tasks: could not convert stories260K"; exit 1; }
    AR=$W/stories260K
fi
CK=${DLLM_BENCH_SCORE_CKPT:-demo-out/stories260K-mdlm}
if [ ! -f "$CK/model.safetensors" ]; then
    echo "score_tasks: $CK absent (make demo makes it): timing the converted stories260K scored as a diffusion model"
    CK=$AR
fi
MODEL=$(basename "$CK")

now() { date +%s.%N; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
jnum() { sed -n "s/^ *\"$1\": \\([-0-9.eE+]*\\),*\$/\\1/p" "$2" | head -n 1; }
pynum() { sed "s/.*\"$1\": \\([-0-9.eE+]*\\).*/\\1/" "$2"; }
# ours_once CKPT OUT [ARGS...] -> records/s
ours_once() {
    ck=$1; out=$2; shift 2
    t0=$(now)
    bin/dllm-score -q -m "$ck" --task "$W/piqa.jsonl" --delimiter "$DELIM" --threads "$TH" \
        -o "$W/$out.scores" --summary "$W/$out.json" "$@" 2> "$W/$out.err" ||
        { sed 's/^/    # /' "$W/$out.err" >&2; return 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.1f", n / (b - a) }'
}
PY=${DLLM_VENV:-$(cd .. && pwd)/venv}/bin/python
have_ref=0
[ -x "$PY" ] && "$PY" -c "import torch, tokenizers" 2>/dev/null && have_ref=1
# ref_once CKPT OUT [ARGS...] -> records/s
ref_once() {
    ck=$1; out=$2; shift 2
    "$PY" bench/score_task_ref.py --ckpt "$ck" --task "$W/piqa.jsonl" --delimiter "$DELIM" \
        --threads "$TH" --out "$W/$out.jsonl" "$@" > "$W/$out.json" || return 1
    pynum items_per_s "$W/$out.json" | awk '{ printf "%.1f", $1 }'
}

ours=""; ref=""
i=0
while [ "$i" -lt "$REPS" ]; do
    o=$(ours_once "$CK" ours --mc 1 --seed 1) || { echo "score_tasks: dllm-score failed"; exit 1; }
    ours=$(max "$ours" "$o")
    if [ $have_ref = 1 ]; then
        r=$(ref_once "$CK" ref --mc 1 --seed 1) || { echo "score_tasks: reference failed"; exit 1; }
        ref=$(max "$ref" "$r")
    fi
    i=$((i + 1))
done

CFG="$MODEL, $N items x 2 choices, --mc 1, $TH thread(s)"
printf "score_tasks PIQA (%s) records/s: ours %s, " "$CFG" "$ours"
if [ $have_ref = 0 ]; then
    echo "reference skipped (no torch/tokenizers in ${DLLM_VENV:-../venv})"
    exit 0
fi
echo "reference (PyTorch CPU, LLaDA get_log_likelihood) $ref, ratio $(ratio "$ours" "$ref")"
echo "score_tasks PIQA accuracy at --mc 1 (different random draws): ours acc $(jnum acc "$W/ours.json") acc_norm $(jnum acc_norm "$W/ours.json"), reference acc $(pynum acc "$W/ref.json") acc_norm $(pynum acc_norm "$W/ref.json")"

# exact cross-check: the AR model scored causally by both
ours_once "$AR" oc --causal > /dev/null || { echo "score_tasks: dllm-score --causal failed"; exit 1; }
ref_once "$AR" rc --causal > /dev/null || { echo "score_tasks: reference --causal failed"; exit 1; }
bin/dllm-cat --no-header "$W/oc.scores" > "$W/oc.jsonl"
d=$(awk 'function lls(s, a,   t) { t = s; sub(/.*"ll": *\[/, "", t); sub(/\].*/, "", t); return split(t, a, ",") }
         FNR == NR { n = lls($0, a); for (j = 1; j <= n; j++) R[FNR, j] = a[j]; next }
         { n = lls($0, a); for (j = 1; j <= n; j++) { d = a[j] - R[FNR, j]; if (d < 0) d = -d; if (d > m) m = d; c++ } }
         END { printf "%.2e over %d choices", m, c }' "$W/rc.jsonl" "$W/oc.jsonl")
echo "score_tasks PIQA --causal cross-check ($(basename "$AR"), exact): ours acc $(jnum acc "$W/oc.json") acc_norm $(jnum acc_norm "$W/oc.json"), reference acc $(pynum acc "$W/rc.json") acc_norm $(pynum acc_norm "$W/rc.json"); max |ll ours - reference| $d"
