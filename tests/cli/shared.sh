#!/bin/sh
# tests/cli/shared.sh — threads on shared cores (issue 15, kernels/cpu/pool.c):
# results do not depend on the thread count, on other processes competing
# for the cores, or on the thread pool (DLLM_POOL=openmp runs the same
# chunks as OpenMP fork-join):
#   dllm-train: the checkpoint after 6 steps (model dim 128: its GEMMs are
#     cut into panels) is byte-identical with --threads 1, 2 and 3, with 2
#     threads next to one busy process per core, and under DLLM_POOL=openmp;
#   dllm-sample (temperature 1: Gumbel noise on every logit) and dllm-score:
#     records byte-identical the same ways.
. "$(dirname "$0")/lib.sh"
tiny_train_data 60
NB=""
neighbours_start() { i=0; while [ $i -lt "$(nproc)" ]; do sh -c 'while :; do :; done' & NB="$NB $!"; i=$((i + 1)); done; }
neighbours_stop() { for p in $NB; do kill "$p" 2> /dev/null; done; NB=""; }
trap 'neighbours_stop' EXIT

train() {  # NAME THREADS ENV...
    name=$1 th=$2; shift 2
    env "$@" dllm-train -q --config "$ROOT/share/configs/tiny.json" "$T/train.msgpack" -o "$T/ck-$name" --steps 6 \
        --batch 8 --seed 3 --threads "$th" 2> "$T/t-$name.err" || notok "train ($name)" "$(head -n 3 "$T/t-$name.err")"
}
sample() {  # NAME THREADS ENV...
    name=$1 th=$2; shift 2
    env "$@" dllm-sample --threads "$th" -m "$T/ck-1" "$T/prompts.msgpack" --gen-length 64 --steps 64 --block-length 32 \
        --temperature 1 --seed 5 -o "$T/s-$name.msgpack" 2> "$T/s-$name.err" || notok "sample ($name)" "$(head -n 3 "$T/s-$name.err")"
}
score() {  # NAME THREADS ENV...
    name=$1 th=$2; shift 2
    env "$@" dllm-score --threads "$th" -m "$T/ck-1" --mc 16 "$T/rows.msgpack" -o "$T/c-$name.msgpack" \
        2> "$T/c-$name.err" || notok "score ($name)" "$(head -n 3 "$T/c-$name.err")"
}
awk 'BEGIN { print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
             for (k = 0; k < 8; k++) print "{\"ids\":[" 3 + k "," 10 + k "," 17 + k "]}" }' |
    dllm-cat --from-json -o "$T/prompts.msgpack"

for th in 1 2 3; do train "$th" "$th"; done
train omp 2 DLLM_POOL=openmp
for th in 1 2; do sample "$th" "$th"; score "$th" "$th"; done
sample omp 2 DLLM_POOL=openmp
score omp 2 DLLM_POOL=openmp
neighbours_start
train busy 2
sample busy 2
score busy 2
neighbours_stop

check "the training run saved a model" "test -s '$T/ck-1/model.safetensors'"
for f in "$T"/s-*.msgpack "$T"/c-*.msgpack; do dllm-cat --no-header "$f" > "${f%.msgpack}.jsonl"; done   # headers name the command
check "the samples are not all one token" "tr -c '0-9' '\\n' < '$T/s-1.jsonl' | sort -u | wc -l | awk '{ exit !(\$1 > 10) }'"
for v in 2 3 omp busy; do
    same "$T/ck-1/model.safetensors" "$T/ck-$v/model.safetensors" "train: weights after 6 steps identical ($v vs 1 thread)"
done
for v in 2 omp busy; do
    same "$T/s-1.jsonl" "$T/s-$v.jsonl" "sample: records identical ($v vs 1 thread)"
    same "$T/c-1.jsonl" "$T/c-$v.jsonl" "score: records identical ($v vs 1 thread)"
done
