#!/bin/sh
# bench/20-pack_mask.sh — tokens/s of `dllm-pack | dllm-mask` end to end, on
# real text: the bundled TinyStories file repeated to ~20M GPT-2 tokens
# (DLLM_BENCH_REPEAT, default 100), rows of L=1024.  Best of 3 runs each.
# Each line: our figure, the reference figure, their ratio.
#   plain pipes      reference: the issue's target, 30M tokens/s
#   into .zst shards reference: the zstd CLI (same level, 2 threads) compressing
#                    the very bytes dllm-mask writes, from a file — i.e. how fast
#                    this machine can make those shards at all
cd "$(dirname "$0")/.." || exit 3
R=${DLLM_BENCH_REPEAT:-100}
L=1024
B=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench.XXXXXX") || exit 3
trap 'rm -rf "$B"' EXIT
TOK=share/data/gpt2-tokenizer/tokenizer.json
i=0; while [ $i -lt "$R" ]; do cat share/data/tinystories/tinystories_val.txt; i=$((i + 1)); done > "$B/text.txt"
bin/dllm-tok -q -t "$TOK" --add-mask-token --lines "$B/text.txt" -o "$B/tokens.msgpack" || exit 1
N=$(bin/dllm-pack -L $L "$B/tokens.msgpack" 2>&1 >/dev/null | sed -n 's/.*documents, \([0-9]*\) tokens.*/\1/p')
N=$(( N / L * L ))

now() { date +%s.%N; }
best() {   # best wall seconds of 3 runs of a shell command
    b=""
    for _ in 1 2 3; do
        t0=$(now); sh -c "$1" || return 1; t1=$(now)
        b=$(awk -v a="$t0" -v c="$t1" -v b="$b" 'BEGIN { d = c - a; print (b == "" || d < b) ? d : b }')
    done
    echo "$b"
}
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

P="bin/dllm-pack -q -L $L $B/tokens.msgpack"
M="bin/dllm-mask -q --seed 1"
s_pipe=$(best "$P | $M > /dev/null") || { echo "pack_mask: pipeline failed"; exit 1; }
s_zst=$(best "rm -f $B/out-*; $P | $M -o $B/out --shards 4") || { echo "pack_mask: shard run failed"; exit 1; }
$P | $M > "$B/masked.msgpack"
s_ref=$(best "zstd -q -1 -T2 -c $B/masked.msgpack > /dev/null")
r_pipe=$(rate "$N" "$s_pipe"); r_zst=$(rate "$N" "$s_zst"); r_ref=$(rate "$N" "$s_ref")
mb=$(awk -v f="$(wc -c < "$B/masked.msgpack")" 'BEGIN { printf "%.0f", f / 1e6 }')
echo "pack|mask, plain pipes, $N TinyStories tokens, L=$L: ours ${r_pipe}M tokens/s; target 30.0M; ratio $(ratio "$r_pipe" 30)"
echo "pack|mask -> 4 .zst shards (level 1):          ours ${r_zst}M tokens/s; zstd -1 -T2 CLI on the same $mb MB ${r_ref}M tokens/s; ratio $(ratio "$r_zst" "$r_ref") (target 30.0M: $(ratio "$r_zst" 30))"
