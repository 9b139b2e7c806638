#!/bin/sh
# bench/pack_mask.sh — tokens/s of `dllm-pack | dllm-mask` through plain pipes
# and into zstd shards, on a synthetic tokens stream (bench/gen_tokens.c:
# documents of 50..2000 uniform ids, vocab 50000; DLLM_BENCH_TOKENS, default
# 50M tokens, written once to $TMPDIR).  Best of 3 runs each.
# Each line: our figure, the reference figure, their ratio.  References: the
# target of 30M tokens/s (2 cores), and `cat | cat` moving the same input
# bytes through a pipe on this machine in this run.
cd "$(dirname "$0")/.." || exit 3
N=${DLLM_BENCH_TOKENS:-50000000}
L=${DLLM_BENCH_L:-1024}
TARGET=30000000
B=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench.XXXXXX") || exit 3
trap 'rm -rf "$B"' EXIT
[ -x bin/dllm-pack ] && [ -x bin/dllm-mask ] && [ -f build/libdllm.a ] || { echo "pack_mask: run make first"; exit 3; }

GEN=$B/gen_tokens
for lib in -lmsgpackc -lmsgpack-c; do
    ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Ishare bench/gen_tokens.c build/libdllm.a -o "$GEN" \
        $lib -lzstd -lpcre2-8 -lutf8proc -ljansson -lm -lpthread 2>/dev/null && break
done
[ -x "$GEN" ] || { echo "pack_mask: cannot build bench/gen_tokens.c"; exit 3; }
"$GEN" "$N" > "$B/tokens.msgpack" || exit 3

now() { date +%s.%N; }
# best N_RUNS wall seconds of a shell command
best() {
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
s_cat=$(best "cat $B/tokens.msgpack | cat > /dev/null")
s_pack=$(best "$P > /dev/null")

r_pipe=$(rate "$N" "$s_pipe"); r_zst=$(rate "$N" "$s_zst"); r_cat=$(rate "$N" "$s_cat"); r_pack=$(rate "$N" "$s_pack")
mb=$(awk -v f="$(wc -c < "$B/tokens.msgpack")" 'BEGIN { printf "%.0f", f / 1e6 }')
echo "pack|mask plain pipes, L=$L, ${N} tokens ($mb MB): ${r_pipe}M tokens/s; target 30.0M tokens/s; ratio $(ratio "$r_pipe" 30)"
echo "pack|mask -> 4 zstd shards:           ${r_zst}M tokens/s; target 30.0M tokens/s; ratio $(ratio "$r_zst" 30)"
echo "pack|mask plain pipes vs cat|cat of the same bytes: ${r_pipe}M vs ${r_cat}M tokens/s; ratio $(ratio "$r_pipe" "$r_cat")"
echo "pack alone (to /dev/null):            ${r_pack}M tokens/s; target 30.0M tokens/s; ratio $(ratio "$r_pack" 30)"
