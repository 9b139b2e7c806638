#!/bin/sh
# tests/cli/adapt.sh — threads on shared cores (issue 15, share/io/dl_adapt.h):
# while as many busy processes as there are cores compete, dllm-sample and
# dllm-score -j 2 lower their thread count (they say so on stderr), and
# their records are byte-identical to a run that keeps 2 threads
# (DLLM_ADAPT_THREADS=0); OMP_DYNAMIC=false keeps the count too.
. "$(dirname "$0")/lib.sh"
if [ ! -r /proc/thread-self/schedstat ]; then
    skip "adapt" "no /proc/thread-self/schedstat (kernel without schedstats)"; exit 0
fi
tiny_train_data 60
# dim 128, 4 layers: a sample of 8 prompts x 64 tokens runs long enough
# (a few tenths of a second at least) for several 0.1 s looks
dllm-train -q --config "$ROOT/share/configs/tiny.json" "$T/train.msgpack" -o "$T/ck" --steps 2 --batch 4 --seed 3 2> "$ERR" ||
    notok "train the model" "$(head -n 3 "$ERR")"
awk 'BEGIN { print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
             for (k = 0; k < 8; k++) print "{\"ids\":[" 3 + k "," 10 + k "," 17 + k "]}" }' |
    dllm-cat --from-json -o "$T/prompts.msgpack"

NB=""
neighbours_start() { i=0; while [ $i -lt "$(nproc)" ]; do sh -c 'while :; do :; done' & NB="$NB $!"; i=$((i + 1)); done; }
neighbours_stop() { for p in $NB; do kill "$p" 2> /dev/null; done; NB=""; }
trap 'neighbours_stop' EXIT

run_sample() {  # NAME ENV...
    name=$1; shift
    env "$@" dllm-sample --threads 2 -m "$T/ck" "$T/prompts.msgpack" --gen-length 64 --steps 64 --block-length 32 \
        -o "$T/s-$name.msgpack" 2> "$T/s-$name.err" || notok "sample ($name)" "$(head -n 3 "$T/s-$name.err")"
    dllm-cat --no-header "$T/s-$name.msgpack" > "$T/s-$name.jsonl"
}
run_score() {
    name=$1; shift
    env "$@" dllm-score --threads 2 -m "$T/ck" --mc 16 "$T/rows.msgpack" -o "$T/c-$name.msgpack" 2> "$T/c-$name.err" ||
        notok "score ($name)" "$(head -n 3 "$T/c-$name.err")"
    dllm-cat --no-header "$T/c-$name.msgpack" > "$T/c-$name.jsonl"
}
run_sample fixed DLLM_ADAPT_THREADS=0
run_score fixed DLLM_ADAPT_THREADS=0
neighbours_start
run_sample busy -u DLLM_ADAPT_THREADS
run_score busy -u DLLM_ADAPT_THREADS
run_sample dynfalse -u DLLM_ADAPT_THREADS OMP_DYNAMIC=false
neighbours_stop
check "sample under contention lowered its threads and said so" "grep -q 'threads lowered from 2' '$T/s-busy.err'"
check "score under contention lowered its threads and said so" "grep -q 'threads lowered from 2' '$T/c-busy.err'"
same "$T/s-fixed.jsonl" "$T/s-busy.jsonl" "sample: records identical with adapted threads"
same "$T/c-fixed.jsonl" "$T/c-busy.jsonl" "score: records identical with adapted threads"
check "OMP_DYNAMIC=false keeps 2 threads (no note)" "! grep -q 'threads lowered' '$T/s-dynfalse.err'"
same "$T/s-fixed.jsonl" "$T/s-dynfalse.jsonl" "sample: records identical under OMP_DYNAMIC=false"
