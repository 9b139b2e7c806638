#!/bin/sh
# scripts/demo.sh — `make demo`: the whole dllm pipeline on bundled data.
# Today (issue 1/6): TinyStories text -> tokens -> 256-token rows -> masked,
# mask-ratio-tagged zstd shards, with a held-out split; then a look inside.
set -eu
cd "$(dirname "$0")/.."
B=bin
OUT=${DEMO_OUT:-demo-out}
TOK=share/data/gpt2-tokenizer/tokenizer.json
TXT=share/data/tinystories/tinystories_val.txt
rm -rf "$OUT"; mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. tokenize $TXT with GPT-2's tokenizer.json, adding a mask token\n   (this file marks no story boundaries, so it is one document)"
echo "\$ dllm-tok -t $TOK --add-mask-token -T $OUT/tokenizer.json --split '<|endoftext|>' $TXT -o $OUT/tokens.msgpack.zst"
$B/dllm-tok -t "$TOK" --add-mask-token -T "$OUT/tokenizer.json" --split '<|endoftext|>' "$TXT" -o "$OUT/tokens.msgpack.zst"

step "2. pack into rows of 256 tokens, EOS between documents, 5% held out"
echo "\$ dllm-pack -L 256 --shuffle --seed 1 --split valid=0.05 $OUT/tokens.msgpack.zst -o $OUT/rows.msgpack.zst"
$B/dllm-pack -L 256 --shuffle --seed 1 --split valid=0.05 "$OUT/tokens.msgpack.zst" -o "$OUT/rows.msgpack.zst"

step "3. mask: t ~ U(eps,1) per row, 2 copies (epochs), 4 zstd shards"
echo "\$ dllm-mask --seed 1 --copies 2 $OUT/rows.msgpack.zst -o $OUT/train --shards 4"
$B/dllm-mask --seed 1 --copies 2 "$OUT/rows.msgpack.zst" -o "$OUT/train" --shards 4

step "what was made"
ls -l "$OUT"
echo
echo "header of a shard (dllm-cat prints JSON Lines; jq works on it):"
$B/dllm-cat "$OUT/train-00000-of-00004.msgpack.zst" | head -n 1
echo
echo "a masked row with t near 0.5, as the model will see it (xt decoded):"
$B/dllm-cat "$OUT/train-00000-of-00004.msgpack.zst" | \
    awk 'NR == 1 { print; next } match($0, /"t":0\.[45][0-9]*/) { print; exit }' > "$OUT/one-row.jsonl"
sed -n '2s/.*"t":\([0-9.e-]*\).*/  t = \1/p' "$OUT/one-row.jsonl"
$B/dllm-cat --from-json "$OUT/one-row.jsonl" | $B/dllm-tok -q -d -t "$OUT/tokenizer.json" --key xt | head -c 700; echo
echo
echo "records per file:"
for f in "$OUT"/*.msgpack.zst; do printf '  %-40s %s\n' "$f" "$($B/dllm-cat --count "$f")"; done
