#!/bin/sh
# bench/gpu.sh [OUTDIR] — issue 11's GPU benchmarks: each line our figure,
# PyTorch's on the same GPU in the same run, and the ratio (ours / torch;
# above 1 is faster, except where a line says otherwise).  tests/run-cuda.sh
# runs it after the GPU tests; by hand: `make && bench/gpu.sh`.
#   1. ops: GEMM TFLOP/s at the 124M model's shapes (cuBLASLt, and
#      cublasGemmEx with DLLM_CUDA_GEMM=ex, build/bench/ops_bench
#      vs bench/ops_ref.py: F.linear / matmul), attention forward and
#      backward (ours without probabilities, as the model calls it on a GPU:
#      the tensor-core kernels in bf16; and with them kept, the FMA
#      kernels; torch: scaled_dot_product_attention, flash); attention as a
#      share of our own GEMM rate (goal: >= 60%);
#   2. train: a 124M-class LLaMA-style diffusion model (dim 768, 12 layers,
#      12 heads of 64, SwiGLU 2048, vocab 32768 untied) at T=1024, batch 8,
#      --precision bf16, tokens/s and MFU, next to bench/train_ref.py (the
#      same model and loss in PyTorch, autocast bf16, fused AdamW), eager,
#      and torch.compile at the end of the script (its compile takes a
#      minute: a timeout there costs no other figure).  FLOPs per token: 6·N_body + 3·V·D (the head runs
#      on the masked half of the positions: 6·V·D·1/2) + 12·layers·T·Hq·E
#      (attention scores and values, forward and backward, bidirectional:
#      no causal halving); MFU against DLLM_GPU_PEAK_TFLOPS (default 989,
#      the dense bf16 peak of an H100 / H200 SXM);
#   3. sample: a 1B-class LLaDA-shaped model with random weights (dim 2048,
#      12 layers, 16 heads, SwiGLU 5632, LLaDA's vocab 126464 and mask id),
#      one prompt of 32 tokens, 128 generated in blocks of 32, 128 steps
#      (NFE 128), temperature 0: dllm-sample (f32 and --precision bf16)
#      next to LLaDA's generate() in PyTorch (bench/gpu_sample_ref.py; its
#      own generate.py when $DLLM_LLADA_GENERATE names it), bf16 and f32;
#      and the share of generated ids ours (f32) and torch (f32) agree on.
# Results: OUTDIR (default build/gpu-bench) gets summary.txt (the lines),
# and every raw output.  Environment: DLLM_GPU_BENCH_DEVICE (cuda; ref or
# cpu check the script on a machine without a GPU, torch then on the CPU),
# DLLM_GPU_BENCH_SMALL=1 (tiny shapes, for those checks), DLLM_PY (the
# Python with torch: python3, else $DLLM_VENV/bin/python), DLLM_GPU_BENCH_COMPILE=0
# (skip torch.compile), DLLM_GPU_BENCH_STEPS (timed training steps, 5).
# Exit 0 when every part ran (a part that fails or times out prints
# "failed" and the script goes on; exit 1 then).
cd "$(dirname "$0")/.." || exit 3
R=$(pwd)
O=${1:-build/gpu-bench}
mkdir -p "$O" && O=$(cd "$O" && pwd)
S=$O/summary.txt
: > "$S"
DEV=${DLLM_GPU_BENCH_DEVICE:-cuda}
PYDEV=cpu; [ "$DEV" = cuda ] && PYDEV=cuda
PY=${DLLM_PY:-}
if [ -z "$PY" ]; then
    if python3 -c "import torch" 2>/dev/null; then PY=python3; else PY=${DLLM_VENV:-$(cd .. && pwd)/venv}/bin/python; fi
fi
STEPS=${DLLM_GPU_BENCH_STEPS:-5}
PEAK=${DLLM_GPU_PEAK_TFLOPS:-989}
rc=0
say() { echo "$*" | tee -a "$S"; }
# the gigabyte checkpoints go even when a timeout cuts the script short
trap 'rm -rf "$O/sample/ckpt" "$O/train/ck"' EXIT
trap 'exit 124' TERM INT
fail() { say "$1: failed ($2)"; rc=1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
jget() { sed -n "s/.*\"$2\": *\([-0-9.e+]*\).*/\1/p" "$1" | tail -n 1; }   # jget FILE KEY: a number of its last JSON line

if [ "${DLLM_GPU_BENCH_SMALL:-0}" = 1 ]; then
    D=64; L=2; H=4; K=4; E=16; F=128; V=512; B=2; T=64; REPS=2
    SD=64; SL=2; SH=4; SF=128; SV=512; SM=500; GEN=32; SB=16
else
    D=768; L=12; H=12; K=12; E=64; F=2048; V=32768; B=8; T=1024; REPS=10
    SD=2048; SL=12; SH=16; SF=5632; SV=126464; SM=126336; GEN=128; SB=32
fi
say "# bench/gpu.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nvidia-smi -L 2>/dev/null | head -n 1), device $DEV, commit $(git rev-parse --short HEAD 2>/dev/null)"
say "# torch: $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")' 2>&1 | tail -n 1)"

# ---------------------------------------------------------------- 1. ops
SHAPE="--dim $D --hidden $F --heads $H --kv-heads $K --head-dim $E --vocab $V --batch $B --seq $T --reps $REPS"
timeout 120 build/bench/ops_bench --device "$DEV" --dtype bf16 $SHAPE > "$O/ops_ours.jsonl" 2> "$O/ops_ours.err" ||
    fail "ops (ours)" "exit $?: $(tail -n 1 "$O/ops_ours.err")"
DLLM_CUDA_GEMM=ex timeout 120 build/bench/ops_bench --device "$DEV" --dtype bf16 $SHAPE > "$O/ops_ours_ex.jsonl" \
    2> "$O/ops_ours_ex.err" || fail "ops (ours, cublasGemmEx)" "exit $?: $(tail -n 1 "$O/ops_ours_ex.err")"
timeout 120 "$PY" bench/ops_ref.py --device "$PYDEV" --dtype bf16 $SHAPE > "$O/ops_ref.jsonl" 2> "$O/ops_ref.err" ||
    fail "ops (torch)" "exit $?: $(tail -n 1 "$O/ops_ref.err")"
"$PY" - "$O/ops_ours.jsonl" "$O/ops_ref.jsonl" "$O/ops_ours_ex.jsonl" <<'EOF' | tee -a "$S"
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ref = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
def key(r):
    return (r["op"], r.get("name", ""))
rmap = {key(r): r for r in ref}
try:   # the same GEMMs through cublasGemmEx (DLLM_CUDA_GEMM=ex): what cuBLASLt gains
    emap = {key(r): r for r in (json.loads(l) for l in open(sys.argv[3]) if l.startswith("{"))}
except (OSError, ValueError):
    emap = {}
for r in ours:
    t = rmap.get(key(r))
    shape = f'{r["M"]}x{r["N"]}x{r["K"]}' if "M" in r else f'B{r["B"]} T{r["T"]} H{r["Hq"]}/{r["Hk"]} E{r["E"]}' + \
        (", probs kept" if r.get("att") else ", flash-style")
    fl = r["tflops"] * r["ms"]          # the FLOPs (x 1e9), the same for both sides
    tv = f'{fl / t["ms"]:.3g}' if t else "-"
    ra = f'{t["ms"] / r["ms"]:.2f}' if t and r["ms"] > 0 else "-"
    e = emap.get(key(r)) if r["op"].startswith("linear") else None
    ex = f', cublasGemmEx {e["tflops"]:.3g}' if e else ""
    print(f'{r["op"]} {r.get("name", "")} {shape} {r["dtype"]} TFLOP/s: ours {r["tflops"]:.3g}{ex}, torch {tv}, ratio {ra}')
lin = [r for r in ours if r["op"].startswith("linear")]
ms = sum(r["ms"] for r in lin)
if lin and ms > 0:
    rate = sum(r["tflops"] * r["ms"] for r in lin) / ms
    for r in ours:
        if r["op"].startswith("attention") and rate > 0:
            print(f'{r["op"]} (probs {"kept" if r.get("att") else "not kept"}) at {100 * r["tflops"] / rate:.0f}% of our '
                  f'mean GEMM rate {rate:.3g} TFLOP/s (goal 60%)')
EOF

# ---------------------------------------------------------------- 2. train
W=$O/train
mkdir -p "$W"
cat > "$W/config.json" <<EOF
{"model_type": "llama", "hidden_size": $D, "intermediate_size": $F, "num_hidden_layers": $L,
 "num_attention_heads": $H, "num_key_value_heads": $K, "head_dim": $E, "vocab_size": $V,
 "max_position_embeddings": $T, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "tie_word_embeddings": false, "mask_token_id": $((V - 1)), "objective": "diffusion"}
EOF
NSTEP=$((STEPS + 2))
awk -v V=$V -v L=$T -v n=$((B * NSTEP)) 'BEGIN { srand(1)
    printf "{\"dllm\":1,\"kind\":\"rows\",\"tokenizer\":{\"vocab_size\":%d,\"mask_id\":%d},\"seq_len\":%d}\n", V, V - 1, L
    for (r = 0; r < n; r++) { s = "{\"ids\":["; for (i = 0; i < L; i++) s = s (i ? "," : "") int(rand() * (V - 1)); print s "]}" } }' |
    bin/dllm-cat --from-json | bin/dllm-mask -q --seed 1 --random-length 0 -o "$W/train.msgpack"
FPT=$(awk -v D=$D -v F=$F -v NL=$L -v H=$H -v K=$K -v E=$E -v V=$V -v T=$T 'BEGIN {
    n = NL * (D * H * E * 2 + 2 * D * K * E + 3 * D * F)
    printf "%.0f", 6 * n + 3 * V * D + 12 * NL * T * H * E }')
say "train model: dim $D, $L layers, $H/$K heads x $E, SwiGLU $F, vocab $V; batch $B x $T; FLOPs/token $FPT"
mfu() { awk -v t="$1" -v f="$FPT" -v p="$PEAK" 'BEGIN { printf "%.1f%%", 100 * t * f / (p * 1e12) }'; }
ours_tok=""
if timeout 240 bin/dllm-train -q --device "$DEV" --precision bf16 --config "$W/config.json" "$W/train.msgpack" \
       -o "$W/ck" --steps $NSTEP --batch $B --metrics "$W/m.jsonl" 2> "$W/ours.err"; then
    ours_tok=$(awk -v s=$STEPS -v B=$B -v L=$T '
        { e = $0; sub(/.*"elapsed":/, "", e); sub(/[,}].*/, "", e); el[NR] = e }
        END { printf "%.1f", s * B * L / (el[s + 2] - el[2]) }' "$W/m.jsonl")
else
    fail "train (ours)" "exit $?: $(tail -n 1 "$W/ours.err")"
fi
# where our step's time goes: 3 more steps with --profile (each op waits for
# the device, so its time is its own; the table is not a speed figure)
if timeout 120 bin/dllm-train --device "$DEV" --precision bf16 --config "$W/config.json" "$W/train.msgpack" \
       -o "$W/pf" --steps 3 --batch $B --profile 2> "$W/profile.err"; then
    say "train step, device time per op (--profile, 3 steps; each op synchronised):"
    sed -n 's/^dllm-train:   /  /p' "$W/profile.err" | tee -a "$S"
else
    fail "train --profile (ours)" "exit $?: $(tail -n 1 "$W/profile.err")"
fi
ref_train() {   # ref_train eager|compile
    mode=$1; flag=""; [ $mode = compile ] && flag=--compile
    if timeout 300 "$PY" bench/train_ref.py --config "$O/train/config.json" --seq-len $T --batch $B --steps $STEPS \
           --warmup-steps 2 --device "$PYDEV" --dtype bf16 $flag > "$O/train/ref_$mode.json" 2> "$O/train/ref_$mode.err"; then
        rt=$(jget "$O/train/ref_$mode.json" tokens_per_s)
        say "train tokens/s (bf16) vs PyTorch $mode: ours ${ours_tok:--}, torch $(printf %.1f "$rt"), ratio $(ratio "${ours_tok:-0}" "$rt")"
        say "train MFU (peak $PEAK TFLOP/s) vs PyTorch $mode: ours $(mfu "${ours_tok:-0}"), torch $(mfu "$rt")"
        [ $mode = eager ] && say "torch.mm bf16 8192^3 on this GPU: $(awk -v g="$(jget "$O/train/ref_$mode.json" gemm_gflops)" 'BEGIN { printf "%.0f", g / 1000 }') TFLOP/s"
    else
        fail "train (torch $mode)" "exit $?: $(tail -n 1 "$O/train/ref_$mode.err")"
    fi
}
ref_train eager
[ -n "$ours_tok" ] && say "train ours: $ours_tok tokens/s, MFU $(mfu "$ours_tok")"

# ---------------------------------------------------------------- 3. sample
W=$O/sample
mkdir -p "$W"
if timeout 180 "$PY" bench/gpu_sample_ref.py make "$W/ckpt" --dim $SD --layers $SL --heads $SH --kv-heads $SH \
       --hidden $SF --vocab $SV --mask-id $SM --device "$PYDEV" > "$W/make.json" 2> "$W/make.err"; then
    say "sample model: $(cat "$W/make.json")"
    awk -v M=$SM -v V=$SV 'BEGIN { printf "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":%d,\"mask_id\":%d}}\n", V, M
        s = "{\"ids\":["; for (i = 0; i < 32; i++) s = s (i ? "," : "") (3 * i + 5) % (M - 1); print s "]}" }' |
        bin/dllm-cat --from-json -o "$W/prompts.msgpack"
    SA="--gen-length $GEN --steps $GEN --block-length $SB"
    for p in f32 bf16; do
        # best of two runs, as torch's (the first pays cuBLAS's first-use set-up)
        if timeout 180 sh -c "for r in 1 2; do bin/dllm-sample --device $DEV --precision $p -m '$W/ckpt' '$W/prompts.msgpack' \
               $SA -o '$W/ours_$p.msgpack' || exit 1; done" 2> "$W/ours_$p.err"; then
            eval "ours_$p=$(sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' "$W/ours_$p.err" | sort -n | tail -n 1)"
        else
            fail "sample (ours $p)" "exit $?: $(tail -n 1 "$W/ours_$p.err")"
        fi
        if timeout 180 "$PY" bench/gpu_sample_ref.py run "$W/ckpt" --device "$PYDEV" --dtype $p $SA --out "$W/ref_$p.txt" \
               > "$W/ref_$p.json" 2> "$W/ref_$p.err"; then
            eval "ref_$p=$(printf %.1f "$(jget "$W/ref_$p.json" tokens_per_s)")"
        else
            fail "sample (torch $p)" "exit $?: $(tail -n 1 "$W/ref_$p.err")"
        fi
    done
    gen=$(sed -n 's/.*"generate": "\([^"]*\)".*/\1/p' "$W/ref_bf16.json" 2>/dev/null)
    say "sample tokens/s (NFE $GEN, f32): ours ${ours_f32:--}, torch ${ref_f32:--} ($gen), ratio $(ratio "${ours_f32:-0}" "${ref_f32:-0}")"
    say "sample tokens/s (NFE $GEN, bf16): ours ${ours_bf16:--}, torch ${ref_bf16:--}, ratio $(ratio "${ours_bf16:-0}" "${ref_bf16:-0}")"
    # where our bf16 sampling's time goes (--profile: each op synchronised; not a speed figure)
    if timeout 120 bin/dllm-sample --device $DEV --precision bf16 -m "$W/ckpt" "$W/prompts.msgpack" $SA --profile \
           -o "$W/pf.msgpack" 2> "$W/profile.err"; then
        say "sample (bf16), device time per op (--profile; each op synchronised):"
        sed -n 's/^dllm-sample:   /  /p' "$W/profile.err" | tee -a "$S"
    else
        fail "sample --profile (ours)" "exit $?: $(tail -n 1 "$W/profile.err")"
    fi
    if [ -s "$W/ref_f32.txt" ] && [ -s "$W/ours_f32.msgpack" ]; then
        bin/dllm-cat "$W/ours_f32.msgpack" > "$W/ours_f32.txt"
        "$PY" - "$W/ours_f32.txt" "$W/ref_f32.txt" <<'EOF' | tee -a "$S"
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"ids\"")]
ref = [json.loads(l) for l in open(sys.argv[2])]
a = [x for r in ours for x in r["ids"][r["n_prompt"]:]]
b = [x for r in ref for x in r]
same = sum(x == y for x, y in zip(a, b))
print(f"sample ids, ours f32 vs torch f32 (same weights, temperature 0): {same}/{len(b)} equal")
EOF
    fi
else
    fail "sample (making the model)" "exit $?: $(tail -n 1 "$W/make.err")"
fi
rm -rf "$O/sample/ckpt" "$O/train/ck"   # gigabytes; nothing to copy back

# ---------------------------------------------------------------- 4. torch.compile (last: the slowest to start)
[ "${DLLM_GPU_BENCH_COMPILE:-1}" = 0 ] || ref_train compile
say "# bench/gpu.sh exit $rc"
exit $rc
