#!/bin/sh
# tests/cli/sample_fastdllm.sh — dllm-sample --cache none | prefix | dual
# against Fast-dLLM's own samplers (llada/generate.py: generate,
# generate_with_prefix_cache, generate_with_dual_cache, with its
# modeling_llada.py's past_key_values / replace_position), temperature 0,
# low-confidence remasking, the LLaDA schedule and --threshold: every case
# of tests/data/fastdllm/cases.txt (tests/ref/gen_fastdllm_fixture.py, fp32;
# float64 gives the same ids) must give identical ids and the same NFE.
# Both prompts run in one dllm-sample batch (rows of different lengths in
# lockstep); Fast-dLLM ran each alone (batch 1).
# The one NFE difference, by design: with --threshold, when a block's first
# (refreshing) step commits the whole block, Fast-dLLM's cached samplers
# still run one forward of the cached loop (which commits nothing) before
# they see the block is full; dllm-sample does not.  So there its NFE is
# Fast-dLLM's minus the blocks finished in one step (read from --trace).
. "$(dirname "$0")/lib.sh"
D=$ROOT/tests/data/fastdllm
dllm-cat --from-json "$D/prompts.jsonl" -o "$T/p.msgpack"
grep -v '^#' "$D/cases.txt" | while read -r c steps n bl thr pi nfe colon want; do
    th=""; [ "$thr" != "-" ] && th="--threshold $thr"
    key="$c-$steps-$n-$bl-$thr"
    [ -f "$T/$key.jsonl" ] ||
        dllm-sample -q -m "$D" -n "$n" -s "$steps" --block-length "$bl" $th --cache "$c" --keep-eos -t 0 \
            --trace "$T/$key.tr" "$T/p.msgpack" | dllm-cat --no-header > "$T/$key.jsonl"
    rec=$(sed -n "$((pi + 1))p" "$T/$key.jsonl")
    name="--cache $c -s $steps -n $n --block-length $bl ${th:-(schedule)}, prompt $pi"
    is "$name: ids = Fast-dLLM's" "$(echo "$rec" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')" "$want"
    extra=0
    if [ -n "$th" ] && [ "$c" != none ]; then
        extra=$(grep "\"row\":$pi," "$T/$key.tr" | sed 's/.*"block":\([0-9]*\).*/\1/' | uniq -c |
                awk '$1 == 1 { n++ } END { print n + 0 }')
    fi
    is "$name: NFE = Fast-dLLM's ($nfe) - $extra" "$(echo "$rec" | sed 's/.*"nfe":\([0-9]*\).*/\1/')" $((nfe - extra))
done
