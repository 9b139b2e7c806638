#!/bin/sh
# tests/cuda/e2e.sh OUTDIR — the end-to-end CPU-vs-CUDA checks of
# `make test-cuda` (tests/cuda/check.sh runs it only where a GPU is
# visible).  On the stories260K model (fp32 weights, f32 compute on both
# devices) and a 200 kB TinyStories slice packed into rows of 64:
#   1. 20 training steps, --device cpu vs cuda: each step's loss within
#      rel 1e-3; final weights max|d| <= 2e-3 and rel L2 <= 1e-3 per tensor
#      (GEMM / reduction order differs; Adam turns tiny gradient
#      differences into up to lr-sized steps on near-zero gradients);
#   2. resume on CUDA: 10 steps + --resume 10 more == 20 in one run, losses
#      and weights bit for bit (determinism: no atomics in any kernel);
#   2b. the same 20 steps with --precision bf16 against the CPU's f32 run
#      (losses rel 2e-2, weights 2e-2), and its resume bit for bit;
#   2c. 10 bf16 steps of a head-dim-64 model (the tensor-core attention)
#      against the CPU's f32 (losses rel 2e-2);
#   2d. the chunked loss head (--xent-chunk 100), f32 and bf16, 8 steps
#      against the CPU's unchunked f32 run (losses rel 1e-3 / 2e-2);
#   3. sampling at temperature 0 from the CPU-trained model: the share of
#      equal token ids >= 0.95 (f32 compute: near-ties can flip, and one flip
#      changes what follows; the measured share is printed);
#   4. scoring (ELBO --mc 4, and AR with --causal): summary numbers within
#      rel 1e-4;
#   5. sampling (uncached, the AR KV cache, the window cache) and scoring
#      with --precision bf16 against the CPU's f32;
#   6. --comm nccl with one rank: losses bit for bit as without NCCL.
# Every file goes under OUTDIR (kept for the report).  Prints ok / not ok
# lines; exit 0 always (check.sh counts the lines).
set -u
O=$1
R=$(cd "$(dirname "$0")/../.." && pwd)
B=${DLLM_E2E_BIN:-$R/bin}   # DLLM_E2E_BIN: programs linked with the emulated CUDA backend (tests/cuda/emu)
C="python3 $R/tests/cuda/compare.py"
# DLLM_E2E_DEVICE=ref runs the same script CPU against the reference
# backend (checks the script itself without a GPU; cpu works too, but has
# no bf16 ops, so step 2b then fails by design)
D2=${DLLM_E2E_DEVICE:-cuda}
S=$R/share/data/stories260K
mkdir -p "$O" && cd "$O" || exit 0
run() {   # run NAME CMD...: log to NAME.log, "not ok" on failure
    n=$1; shift
    "$@" > "$n.log" 2>&1 && return 0
    rc=$?
    echo "not ok - $n: exit $rc ($(tail -n 1 "$n.log"))"; return 1
}
run prep-model "$B/dllm-train" --init "$S/stories260K.bin" -o s260 --steps 0 || exit 0
head -c 200000 "$R/share/data/tinystories/tinystories_sample.txt" > in.txt
"$B/dllm-tok" -q -t s260/tokenizer.json in.txt | "$B/dllm-pack" -q -L 64 --shuffle --seed 1 --split valid=0.1 -o rows.msgpack
"$B/dllm-mask" -q --seed 1 --copies 2 rows.msgpack -o train.msgpack
A="--init s260 train.msgpack --batch 4 --seed 3"
# 1. train 20 steps on each device
for td in c:cpu g:$D2; do
    tag=${td%%:*}; dev=${td#*:}
    run "train-$tag" "$B/dllm-train" -q --device $dev $A --steps 20 --metrics "$tag.jsonl" -o "t_$tag"
done
if [ -s c.jsonl ] && [ -s g.jsonl ]; then
    $C losses c.jsonl g.jsonl 1e-3
    $C weights t_c/model.safetensors t_g/model.safetensors 2e-3 1e-3
fi
# the step lines of a metrics file without their timing fields
losses_of() { grep '"loss"' "$1" | sed 's/"tokens_per_s".*//'; }
# resumed_same LABEL FULL RESUMED: FULL's run (20 steps, saved at 10) and
# RESUMED (--resume at 10): the same weights and last 10 losses, bit for bit
resumed_same() {
    if cmp -s "$2/model.safetensors" "$3/model.safetensors" &&
       [ "$(losses_of "$2.jsonl" | tail -n 10)" = "$(losses_of "$3.jsonl")" ]; then
        echo "ok - $1: 10 steps + --resume 10 == 20 steps, losses and weights bit for bit"
    else
        echo "not ok - $1: resumed run differs from the uninterrupted one ($2/, $3/)"
    fi
}
# 2. resume on CUDA is bit-exact against the uninterrupted CUDA run
if run resume-first "$B/dllm-train" -q --device $D2 $A --steps 20 --save-every 10 --keep-saves -o r1 --metrics r1.jsonl &&
   run resume-second "$B/dllm-train" -q --device $D2 --resume r1-step10 train.msgpack -o r2 --steps 20 --metrics r2.jsonl; then
    resumed_same "$D2" r1 r2
fi
# 2b. mixed precision (--precision bf16: bf16 activations and GEMMs, fp32
#     masters / gradients / AdamW) against the CPU's f32 run: losses rel
#     2e-2, weights max 2e-2 / rel L2 2e-2 (tests/cli/precision.sh
#     measures ref-bf16 vs f32 at 5e-3 / 1.7e-3); resume bit-exact in bf16
if run train-bf16 "$B/dllm-train" -q --device $D2 --precision bf16 $A --steps 20 --save-every 10 --keep-saves \
       -o b1 --metrics b1.jsonl &&
   run resume-bf16 "$B/dllm-train" -q --device $D2 --resume b1-step10 train.msgpack -o b2 --steps 20 --metrics b2.jsonl; then
    $C losses c.jsonl b1.jsonl 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16: /'
    $C weights t_c/model.safetensors b1/model.safetensors 2e-2 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16: /'
    resumed_same "$D2 bf16" b1 b2
fi
# 2c. the tensor-core attention (kernels/cuda/attention_mma.cu: bf16, head
#     dim 64) inside training: a 2-layer model with 2 heads of 64 (GQA 2/1)
#     from --config, rows of 200 (4 tiles of 64, the last ragged), 10 steps
#     --precision bf16 on CUDA against f32 on the CPU, losses rel 2e-2
"$B/dllm-tok" -q -t s260/tokenizer.json in.txt | "$B/dllm-pack" -q -L 200 --seed 1 -o rows200.msgpack
"$B/dllm-mask" -q --seed 1 rows200.msgpack -o train200.msgpack
cat > c64.json <<EOF
{"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
 "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64, "max_position_embeddings": 256,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false, "objective": "diffusion"}
EOF
A64="--config c64.json --tokenizer s260/tokenizer.json train200.msgpack --batch 4 --seed 3 --steps 10 --lr 1e-3"
if run train64-cpu "$B/dllm-train" -q --device cpu $A64 --metrics c64.jsonl -o t64_c &&
   run train64-bf16 "$B/dllm-train" -q --device $D2 --precision bf16 $A64 --metrics g64.jsonl -o t64_g; then
    $C losses c64.jsonl g64.jsonl 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16 head dim 64 (tensor-core attention): /'
fi
# 2d. the loss head over the vocabulary in chunks of 100 (513 = 5 x 100
#     + 13), f32 and bf16, 8 steps against the CPU's unchunked f32 run
run train-chunk-cpu "$B/dllm-train" -q --device cpu $A --steps 8 --metrics x.jsonl -o x_c
for p in f32:1e-3 bf16:2e-2; do
    pr=${p%%:*}; tol=${p#*:}
    if run "train-chunk-$pr" "$B/dllm-train" -q --device $D2 --precision $pr $A --steps 8 --xent-chunk 100 \
           --metrics "x$pr.jsonl" -o "x_$pr" && [ -s x.jsonl ]; then
        $C losses x.jsonl "x$pr.jsonl" $tol | sed "s/^\(n*o*t* *ok - \)/\1$pr, --xent-chunk 100: /"
    fi
done
# 3. sampling at temperature 0 (greedy): CPU vs CUDA ids
P="Once upon a time"
for td in c:cpu g:$D2; do
    tag=${td%%:*}; dev=${td#*:}
    run "sample-$tag" "$B/dllm-sample" -q --device $dev -m t_c -p "$P" --gen-length 32 --steps 32 --block-length 16 \
        -o "s_$tag.msgpack" && "$B/dllm-cat" "s_$tag.msgpack" > "s_$tag.txt" 2>&1
    run "sample-ar-$tag" "$B/dllm-sample" -q --device $dev -m s260 --causal --bos -p "$P" --gen-length 40 \
        -o "sa_$tag.msgpack" && "$B/dllm-cat" "sa_$tag.msgpack" > "sa_$tag.txt" 2>&1
done
[ -s s_c.txt ] && [ -s s_g.txt ] && $C ids s_c.txt s_g.txt 0.95
[ -s sa_c.txt ] && [ -s sa_g.txt ] && $C ids sa_c.txt sa_g.txt 0.95
# 4. scoring
for td in c:cpu g:$D2; do
    tag=${td%%:*}; dev=${td#*:}
    run "score-$tag" "$B/dllm-score" -q --device $dev -m t_c --mc 4 --seed 1 rows.valid.msgpack -o "e_$tag.msgpack" \
        --summary "e_$tag.json"
    run "score-ar-$tag" "$B/dllm-score" -q --device $dev -m s260 --causal rows.valid.msgpack -o "a_$tag.msgpack" \
        --summary "a_$tag.json"
done
[ -s e_c.json ] && [ -s e_g.json ] && $C summary e_c.json e_g.json 1e-4
[ -s a_c.json ] && [ -s a_g.json ] && $C summary a_c.json a_g.json 1e-4
# 6. NCCL with one rank (a lent machine has one GPU: NCCL refuses two ranks
#    on one device): init and every collective of the step run for real, and
#    the all-reduce of one rank is the identity, so the 20 losses equal the
#    plain CUDA run's bit for bit.  Skipped when the build has no NCCL.
if [ "$D2" = cuda ]; then
    if "$B/dllm-train" -q --device cuda --comm nccl $A --steps 20 --metrics n.jsonl -o t_n > nccl.log 2>&1; then
        if [ "$(losses_of n.jsonl)" = "$(losses_of g.jsonl)" ]; then
            echo "ok - cuda --comm nccl, 1 rank: 20 losses bit for bit as without NCCL"
        else
            echo "not ok - cuda --comm nccl, 1 rank: losses differ from the plain CUDA run (n.jsonl, g.jsonl)"
        fi
    elif grep -q "not built in" nccl.log; then
        echo "skip - cuda --comm nccl: this build has no NCCL ($(tail -n 1 nccl.log))"
    else
        echo "not ok - cuda --comm nccl, 1 rank: $(tail -n 1 nccl.log)"
    fi
fi
# 5. bf16 compute for sampling and scoring (--precision bf16) against the
#    CPU's f32: ids share >= 0.5 at temperature 0 (the 20-step model has
#    many near-ties; tests/cli/precision.sh measured 20/32 on ref), ELBO
#    summary within rel 2e-2
if run sample-bf16 "$B/dllm-sample" -q --device $D2 --precision bf16 -m t_c -p "$P" --gen-length 32 --steps 32 \
       --block-length 16 -o s_b.msgpack && "$B/dllm-cat" s_b.msgpack > s_b.txt 2>&1; then
    $C ids s_c.txt s_b.txt 0.5 | sed 's/^\(n*o*t* *ok - \)/\1bf16: /'
fi
# ... and the caches in bf16: the AR sampler's KV cache, the diffusion window cache (--cache dual)
if run sample-ar-bf16 "$B/dllm-sample" -q --device $D2 --precision bf16 -m s260 --causal --bos -p "$P" --gen-length 40 \
       -o sa_b.msgpack && "$B/dllm-cat" sa_b.msgpack > sa_b.txt 2>&1 && [ -s sa_c.txt ]; then
    $C ids sa_c.txt sa_b.txt 0.5 | sed 's/^\(n*o*t* *ok - \)/\1bf16 KV cache: /'
fi
if run sample-dual-cpu "$B/dllm-sample" -q --device cpu -m t_c -p "$P" --gen-length 32 --steps 32 --block-length 16 \
       --cache dual -o sd_c.msgpack && "$B/dllm-cat" sd_c.msgpack > sd_c.txt 2>&1 &&
   run sample-dual-bf16 "$B/dllm-sample" -q --device $D2 --precision bf16 -m t_c -p "$P" --gen-length 32 --steps 32 \
       --block-length 16 --cache dual -o sd_b.msgpack && "$B/dllm-cat" sd_b.msgpack > sd_b.txt 2>&1; then
    $C ids sd_c.txt sd_b.txt 0.5 | sed 's/^\(n*o*t* *ok - \)/\1bf16 window cache (--cache dual): /'
fi
run score-bf16 "$B/dllm-score" -q --device $D2 --precision bf16 -m t_c --mc 4 --seed 1 rows.valid.msgpack \
    -o e_b.msgpack --summary e_b.json && $C summary e_c.json e_b.json 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16: /'
exit 0
