#!/bin/sh
# bench/30-train.sh — training speed of dllm-train (CPU) next to PyTorch CPU
# (bench/train_ref.py) on the same model and batch, in the same run:
# LLaMA-style dim 256, 4 layers, 8 heads / 4 kv heads (head dim 32), SwiGLU
# 704, vocab 4096 (untied), seq 256, batch 8, masked-diffusion loss, AdamW,
# clipping; both with DLLM_BENCH_THREADS threads (default 2).
# Timed: DLLM_BENCH_STEPS steps (default 10) after 2 warm-up steps; each
# side runs DLLM_BENCH_REPS times (default 3), alternating, best kept (a
# shared machine's load otherwise decides the ratio).
# FLOPs per token: 6·N + 12·layers·T·Hq·E (matmul parameters N = every
# matrix but the input embedding, counted for all T positions although the
# head only runs on masked ones; attention scores and values, fwd + bwd).
# Lines: "ours X, reference Y, ratio Z".  "fraction of GEMM peak" divides by
# the GFLOP/s torch.mm reaches on 2048x2048 fp32 with the same threads.
cd "$(dirname "$0")/.." || exit 3
STEPS=${DLLM_BENCH_STEPS:-10}
REPS=${DLLM_BENCH_REPS:-3}
TH=${DLLM_BENCH_THREADS:-2}
B=8; L=256; V=4096
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-train.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
[ -x bin/dllm-train ] || { echo "train: run make first"; exit 3; }

cat > "$W/config.json" <<EOF
{"model_type": "llama", "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
 "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 32, "vocab_size": $V,
 "max_position_embeddings": $L, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "tie_word_embeddings": false, "mask_token_id": $((V - 1)), "objective": "diffusion"}
EOF
# 64 random rows (uniform ids), masked by dllm-mask: t ~ U(1e-3, 1) per row
awk -v V=$V -v L=$L 'BEGIN { srand(1)
    printf "{\"dllm\":1,\"kind\":\"rows\",\"tokenizer\":{\"vocab_size\":%d,\"mask_id\":%d},\"seq_len\":%d}\n", V, V - 1, L
    for (r = 0; r < 64; r++) { s = "{\"ids\":["; for (i = 0; i < L; i++) s = s (i ? "," : "") int(rand() * (V - 1)); print s "]}" } }' |
    bin/dllm-cat --from-json | bin/dllm-mask -q --seed 1 --random-length 0 -o "$W/train.msgpack" || exit 1

# FLOPs per token of this config
FPT=$(awk -v D=256 -v F=704 -v NL=4 -v H=8 -v K=4 -v E=32 -v V=$V -v T=$L 'BEGIN {
    n = NL * (D * H * E * 2 + 2 * D * K * E + 3 * D * F) + V * D
    printf "%.0f", 6 * n + 12 * NL * T * H * E }')

ours_once() {
    rm -rf "$W/ck" "$W/m.jsonl"
    OMP_NUM_THREADS=$TH bin/dllm-train -q --config "$W/config.json" "$W/train.msgpack" -o "$W/ck" \
        --steps $((STEPS + 2)) --batch $B --threads "$TH" --metrics "$W/m.jsonl" || return 1
    awk -v s=$STEPS -v B=$B -v L=$L '
        { e = $0; sub(/.*"elapsed":/, "", e); sub(/[,}].*/, "", e); el[NR] = e }
        END { printf "%.1f", s * B * L / (el[s + 2] - el[2]) }' "$W/m.jsonl"
}
PY=$DLLM_VENV/bin/python
have_ref=0
[ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null && have_ref=1
ref_once() {
    OMP_NUM_THREADS=$TH "$PY" bench/train_ref.py --config "$W/config.json" --seq-len $L --batch $B \
        --steps "$STEPS" --warmup-steps 2 --threads "$TH"
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
ours=""; rt=""; gemm=""
i=0
while [ $i -lt "$REPS" ]; do
    o=$(ours_once) || { echo "train: dllm-train failed"; exit 1; }
    ours=$(max "$ours" "$o")
    if [ $have_ref = 1 ]; then
        ref=$(ref_once) || { echo "train: reference failed"; exit 1; }
        rt=$(max "$rt" "$(echo "$ref" | sed 's/.*"tokens_per_s": \([0-9.e+-]*\).*/\1/')")
        gemm=$(max "$gemm" "$(echo "$ref" | sed 's/.*"gemm_gflops": \([0-9.e+-]*\).*/\1/')")
    fi
    i=$((i + 1))
done
gf() { awk -v t="$1" -v f="$FPT" 'BEGIN { printf "%.2f", t * f / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf "train (dim 256, 4 layers, seq %s, batch %s, %s threads) tokens/s: ours %s, " "$L" "$B" "$TH" "$ours"
if [ $have_ref = 1 ]; then
    rt=$(awk -v x="$rt" 'BEGIN { printf "%.1f", x }')
    echo "reference (PyTorch CPU) $rt, ratio $(ratio "$ours" "$rt")"
    echo "train GFLOP/s (6·N·tokens + attention): ours $(gf "$ours"), reference $(gf "$rt"), ratio $(ratio "$ours" "$rt")"
    echo "train fraction of GEMM peak (torch.mm 2048^3 fp32: $(awk -v g="$gemm" 'BEGIN { printf "%.1f", g }') GFLOP/s): ours $(awk -v a="$(gf "$ours")" -v g="$gemm" 'BEGIN { printf "%.1f%%", 100 * a / g }'), reference $(awk -v a="$(gf "$rt")" -v g="$gemm" 'BEGIN { printf "%.1f%%", 100 * a / g }'), ratio $(ratio "$ours" "$rt")"
else
    echo "reference skipped (no torch in $DLLM_VENV)"
    echo "train GFLOP/s (6·N·tokens + attention): ours $(gf "$ours"), reference skipped"
fi
