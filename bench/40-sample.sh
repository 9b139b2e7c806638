#!/bin/sh
# bench/40-sample.sh — dllm-sample (CPU) next to the PyTorch reference
# bench/sample_ref.py (LLaDA's generate(), full logits over the canvas every
# step) on the same model, prompts and threads, in the same run.
# Model: the demo's fine-tuned diffusion model demo-out/stories260K-mdlm
# (`make demo`); when absent, the demo's conversion + fine-tuning steps are
# run in a temporary directory first (DLLM_BENCH_FT_STEPS, default 300, as
# the demo); DLLM_BENCH_SAMPLE_CKPT names another checkpoint.
# Prompts: 8 story openings tokenized with the checkpoint's tokenizer, cut to
# the shortest one's length so the reference batches them without padding;
# one batch of 8, gen-length 128, steps 128, block-length 32, temperature 0.
# Timing: ours = wall clock of the whole dllm-sample process (model load,
# tokenization, stream writing included); reference = its sampling loop only
# (model load and torch import excluded).  Each side runs DLLM_BENCH_REPS
# times (default 3), alternating; the best is kept.  DLLM_BENCH_THREADS
# threads (default 2) for both.
# Lines:
#   tokens/s and NFE: "ours X, reference Y, ratio Z" (target ratio >= 2)
#   cross-check: fraction of generated tokens identical to the reference
#     (both at temperature 0; float rounding may flip near-ties, after which a
#     row's trajectories part)
#   --threshold 0.9 (Fast-dLLM) vs the fixed schedule, both ours: NFE per row,
#     tokens/s, fraction of generated tokens identical (the "equal output"
#     condition), and the reference with the same threshold as a cross-check;
#     then the same for lower thresholds (DLLM_BENCH_TAUS, default "0.7 0.5
#     0.3"; empty = none: the demo model is small and rarely 90% sure of a token).
cd "$(dirname "$0")/.." || exit 3
REPS=${DLLM_BENCH_REPS:-3}
TH=${DLLM_BENCH_THREADS:-2}
G=128; S=128; BL=32; TAU=0.9
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-sample.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
[ -x bin/dllm-sample ] || { echo "sample: bin/dllm-sample is not built (make first): skipped"; exit 0; }
export OMP_NUM_THREADS=$TH

# ---------------------------------------------------------------- the model
CK=${DLLM_BENCH_SAMPLE_CKPT:-demo-out/stories260K-mdlm}
if [ ! -f "$CK/model.safetensors" ]; then
    FT=${DLLM_BENCH_FT_STEPS:-300}
    echo "sample: $CK absent: converting stories260K and fine-tuning it $FT steps as the demo does (in $W)"
    TXT=share/data/tinystories/tinystories_val.txt
    bin/dllm-train -q --init share/data/stories260K/stories260K.bin -o "$W/stories260K" --steps 0 &&
    bin/dllm-tok -q -t "$W/stories260K/tokenizer.json" "$TXT" |
        bin/dllm-pack -q -L 256 --shuffle --seed 1 --split valid=0.05 -o "$W/rows.msgpack.zst" &&
    bin/dllm-mask -q --seed 1 --copies 4 "$W/rows.msgpack.zst" -o "$W/train.msgpack.zst" &&
    bin/dllm-train -q --init "$W/stories260K" "$W/train.msgpack.zst" -o "$W/stories260K-mdlm" \
        --steps "$FT" --batch 8 --lr 2e-3 --warmup 20 --threads "$TH" || { echo "sample: could not make the demo model"; exit 1; }
    CK=$W/stories260K-mdlm
fi
MODEL=$(basename "$CK")
ST=$(sed -n 's/^ *"step": *\([0-9]*\).*/\1/p' "$CK/trainer_state.json" 2>/dev/null | head -n 1)
[ -n "$ST" ] && MODEL="$MODEL at step $ST"

# ---------------------------------------------------------------- prompts
cat > "$W/prompts.txt" <<'EOF'
Once upon a time, there was a little girl named Lily. She loved to play
One day, a boy named Tim went to the park with his mom. He saw a big
There was a small dog who lived in a house near the woods. Every day the
Tom and Sue were best friends. They liked to play in the garden and look
The sun was shining and the birds were singing. A little bird flew to the
Once upon a time, in a big forest, there lived a kind old bear. The bear
Mia had a red ball. She liked to throw it high in the sky. One day the
Ben wanted to bake a cake for his mom. He got the flour, the eggs and the
EOF
bin/dllm-tok -q -t "$CK/tokenizer.json" --lines "$W/prompts.txt" | bin/dllm-cat > "$W/full.jsonl" || exit 1
# cut every prompt to the shortest one's length
awk 'NR == 1 { print; next }
     { t = $0; sub(/.*"ids":\[/, "", t); sub(/\].*/, "", t); n[NR] = split(t, a, ","); line[NR] = t
       if (min == "" || n[NR] < min) min = n[NR] }
     END { for (r = 2; r <= NR; r++) { split(line[r], a, ","); s = a[1]; for (i = 2; i <= min; i++) s = s "," a[i]
           print "{\"ids\":[" s "]}" } }' "$W/full.jsonl" > "$W/prompts.jsonl"
P=$(awk 'NR == 2 { t = $0; sub(/.*"ids":\[/, "", t); sub(/\].*/, "", t); print split(t, a, ",") }' "$W/prompts.jsonl")
NP=$(($(wc -l < "$W/prompts.jsonl") - 1))
bin/dllm-cat --from-json "$W/prompts.jsonl" -o "$W/prompts.msgpack" || exit 1

HELP=$(bin/dllm-sample --help 2>&1)
EXTRA=""
case "$HELP" in *--keep-eos*) EXTRA="$EXTRA --keep-eos" ;; esac   # compare whole canvases
case "$HELP" in *--threads*) EXTRA="$EXTRA --threads $TH" ;; esac
case "$HELP" in *--batch*) EXTRA="$EXTRA --batch $NP" ;; esac
SARGS="--gen-length $G --steps $S --block-length $BL$EXTRA"

now() { date +%s.%N; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
# ours_once OUT [ARGS...] -> tokens/s (generated tokens / wall seconds)
ours_once() {
    out=$1; shift
    t0=$(now)
    bin/dllm-sample -q -m "$CK" "$W/prompts.msgpack" $SARGS "$@" > "$W/$out.msgpack" 2> "$W/$out.err" ||
        { sed 's/^/    # /' "$W/$out.err" >&2; return 1; }
    t1=$(now)
    bin/dllm-cat --no-header "$W/$out.msgpack" > "$W/$out.jsonl" || return 1
    awk -v a="$t0" -v b="$t1" -v n=$((NP * G)) 'BEGIN { printf "%.1f", n / (b - a) }'
}
mean_nfe() { awk '{ t = $0; if (!sub(/.*"nfe":/, "", t)) next; sub(/[,}].*/, "", t); s += t; n++ } END { if (n) printf "%.1f", s / n; else print "?" }' "$1"; }
# same_ids A.jsonl B.jsonl -> "identical_generated total_generated rows_identical rows"
same_ids() {
    awk -v P="$P" -v G="$G" '
        function ids(s, a,   t) { t = s; if (!sub(/.*"ids":\[/, "", t)) return 0; sub(/\].*/, "", t); return split(t, a, ",") }
        FNR == NR { n = ids($0, a); if (!n) next; r1++; len[r1] = n; for (i = 1; i <= n; i++) A[r1, i] = a[i]; next }
        { n = ids($0, b); if (!n) next; r2++; same = 0
          for (i = P + 1; i <= P + G; i++) if (i <= n && i <= len[r2] && b[i] == A[r2, i]) same++
          tot += same; rows += (same == G) }
        END { printf "%d %d %d %d", tot, r2 * G, rows, r2 }' "$1" "$2"
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a" }'; }

PY=${DLLM_VENV:-$(cd .. && pwd)/venv}/bin/python
have_ref=0
[ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null && have_ref=1
ref_once() {  # ref_once OUT [ARGS...] -> tokens/s
    out=$1; shift
    "$PY" bench/sample_ref.py --ckpt "$CK" --prompts "$W/prompts.jsonl" --gen-length $G --steps $S \
        --block-length $BL --threads "$TH" --out "$W/$out.jsonl" "$@" > "$W/$out.json" || return 1
    sed 's/.*"tokens_per_s": \([0-9.e+-]*\).*/\1/' "$W/$out.json" | awk '{ printf "%.1f", $1 }'
}

ours=""; rt=""; ourt=""; rtt=""
i=0
while [ $i -lt "$REPS" ]; do
    o=$(ours_once ours) || { echo "sample: dllm-sample failed"; exit 1; }
    ours=$(max "$ours" "$o")
    o=$(ours_once ourt --threshold $TAU) || { echo "sample: dllm-sample --threshold failed"; exit 1; }
    ourt=$(max "$ourt" "$o")
    if [ $have_ref = 1 ]; then
        r=$(ref_once ref) || { echo "sample: reference failed"; exit 1; }
        rt=$(max "$rt" "$r")
        r=$(ref_once reft --threshold $TAU) || { echo "sample: reference --threshold failed"; exit 1; }
        rtt=$(max "$rtt" "$r")
    fi
    i=$((i + 1))
done

CFG="$MODEL, $NP prompts x $P tokens, gen $G, steps $S, block $BL, batch $NP, $TH threads"
nfe_o=$(mean_nfe "$W/ours.jsonl"); nfe_t=$(mean_nfe "$W/ourt.jsonl")
printf "sample (%s) tokens/s: ours %s, " "$CFG" "$ours"
if [ $have_ref = 1 ]; then
    nfe_r=$(mean_nfe "$W/ref.jsonl"); nfe_rt=$(mean_nfe "$W/reft.jsonl")
    echo "reference (PyTorch CPU, LLaDA generate) $rt, ratio $(ratio "$ours" "$rt")"
    echo "sample NFE per row: ours $nfe_o, reference $nfe_r, ratio $(ratio "$nfe_o" "$nfe_r")"
    # shellcheck disable=SC2046  # split into four numbers on purpose
    set -- $(same_ids "$W/ref.jsonl" "$W/ours.jsonl")
    echo "sample cross-check at temperature 0: $(pct "$1" "$2") of generated tokens identical to the reference ($1/$2; rows identical $3/$4)"
    echo "sample --threshold $TAU tokens/s: ours $ourt, reference $rtt, ratio $(ratio "$ourt" "$rtt")"
    # shellcheck disable=SC2046  # split into four numbers on purpose
    set -- $(same_ids "$W/reft.jsonl" "$W/ourt.jsonl")
    echo "sample --threshold $TAU NFE per row: ours $nfe_t, reference $nfe_rt; cross-check: $(pct "$1" "$2") of generated tokens identical ($1/$2; rows $3/$4)"
else
    echo "reference skipped (no torch at $PY)"
    echo "sample NFE per row: ours $nfe_o, reference skipped"
    echo "sample --threshold $TAU tokens/s: ours $ourt, reference skipped"
fi
# shellcheck disable=SC2046  # split into four numbers on purpose
set -- $(same_ids "$W/ours.jsonl" "$W/ourt.jsonl")
echo "sample NFE per row, --threshold $TAU vs fixed schedule (ours): threshold $nfe_t, fixed $nfe_o, ratio $(ratio "$nfe_t" "$nfe_o") ($(awk -v a="$nfe_t" -v b="$nfe_o" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * (1 - a / b); else print "n/a" }') fewer forwards); output: $(pct "$1" "$2") of generated tokens identical to the fixed schedule ($1/$2; rows $3/$4)"
for tau in ${DLLM_BENCH_TAUS-0.7 0.5 0.3}; do   # empty: no sweep
    o=$(ours_once oursw --threshold "$tau") || { echo "sample: dllm-sample --threshold $tau failed"; exit 1; }
    n=$(mean_nfe "$W/oursw.jsonl")
    # shellcheck disable=SC2046  # split into four numbers on purpose
    set -- $(same_ids "$W/ours.jsonl" "$W/oursw.jsonl")
    echo "sample --threshold $tau (ours): NFE per row $n vs fixed $nfe_o ($(awk -v a="$n" -v b="$nfe_o" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * (1 - a / b); else print "n/a" }') fewer), tokens/s $o; $(pct "$1" "$2") of generated tokens identical to the fixed schedule (rows $3/$4)"
done
