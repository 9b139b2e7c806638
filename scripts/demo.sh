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

# ---------------------------------------------------------------- issue 2/6: model + CPU training
# stories260K (Karpathy's 260K-parameter llama2.c TinyStories model) converted
# into a diffusion-ready checkpoint, then fine-tuned as a masked-diffusion
# model on the bundled TinyStories text.  DEMO_STEPS (default 300) steps of
# 8 rows x 256 tokens: a few minutes on 2 cores.
S260=share/data/stories260K
STEPS=${DEMO_STEPS:-300}
step "4. convert stories260K (llama2.c .bin + tok512.bin) into an HF-layout diffusion checkpoint:\n   mask token appended (id 512), attention made bidirectional, tok512 written as tokenizer.json"
echo "\$ dllm-train --init $S260/stories260K.bin -o $OUT/stories260K --steps 0"
$B/dllm-train --init "$S260/stories260K.bin" -o "$OUT/stories260K" --steps 0
ls -l "$OUT/stories260K"

step "5. tokenize the TinyStories text with the converted tokenizer.json, pack 256-token rows\n   (5% held out), mask: 4 copies for training, 1 for the held-out ELBO"
echo "\$ dllm-tok -t $OUT/stories260K/tokenizer.json $TXT | dllm-pack -L 256 --shuffle --seed 1 --split valid=0.05 -o $OUT/s-rows.msgpack.zst"
$B/dllm-tok -q -t "$OUT/stories260K/tokenizer.json" "$TXT" | \
    $B/dllm-pack -q -L 256 --shuffle --seed 1 --split valid=0.05 -o "$OUT/s-rows.msgpack.zst"
echo "\$ dllm-mask --seed 1 --copies 4 $OUT/s-rows.msgpack.zst -o $OUT/s-train.msgpack.zst"
$B/dllm-mask -q --seed 1 --copies 4 "$OUT/s-rows.msgpack.zst" -o "$OUT/s-train.msgpack.zst"
echo "\$ dllm-mask --seed 2 $OUT/s-rows.valid.msgpack.zst -o $OUT/s-valid.msgpack.zst"
$B/dllm-mask -q --seed 2 "$OUT/s-rows.valid.msgpack.zst" -o "$OUT/s-valid.msgpack.zst"

step "6. fine-tune $STEPS steps as a masked-diffusion model (MDLM/LLaDA loss, AdamW, cosine LR),\n   held-out ELBO before, every 100 steps and after"
echo "\$ dllm-train --init $OUT/stories260K $OUT/s-train.msgpack.zst --valid $OUT/s-valid.msgpack.zst --eval-every 100 \\"
echo "      -o $OUT/stories260K-mdlm --steps $STEPS --batch 8 --lr 2e-3 --warmup 20 --metrics $OUT/train-metrics.jsonl"
$B/dllm-train --init "$OUT/stories260K" "$OUT/s-train.msgpack.zst" --valid "$OUT/s-valid.msgpack.zst" --eval-every 100 \
    -o "$OUT/stories260K-mdlm" --steps "$STEPS" --batch 8 --lr 2e-3 --warmup 20 \
    --metrics "$OUT/train-metrics.jsonl"
echo
echo "held-out ELBO (nats/token; exp(ELBO) bounds the perplexity), from $OUT/train-metrics.jsonl:"
grep '"valid_elbo"' "$OUT/train-metrics.jsonl" | awk -v n="$STEPS" '
    { s = $0; sub(/.*"step":/, "", s); sub(/,.*/, "", s); e = $0; sub(/.*"valid_elbo":/, "", e); sub(/,.*/, "", e)
      if (NR == 1) first = e; last = e
      printf "  step %5d: ELBO %.4f nats/token, perplexity <= %.2f\n", s, e, exp(e) }
    END { printf "  before -> after fine-tuning: %.4f -> %.4f nats/token\n", first, last }'
echo "(the converted model was trained causally: right after conversion, bidirectional attention and"
echo " the new mask token make its diffusion ELBO poor; a few hundred steps adapt it)"
