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
step() { printf '\n\033[1m== %b\033[0m\n' "$*"; }

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
# model on the bundled TinyStories text.  DEMO_STEPS (default 1200) steps of
# 8 rows x 256 tokens: a few minutes on 2 cores.
S260=share/data/stories260K
STEPS=${DEMO_STEPS:-1200}
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

step "6. fine-tune $STEPS steps as a masked-diffusion model (MDLM/LLaDA loss, AdamW, cosine LR),\n   held-out ELBO before, every 300 steps and after"
echo "\$ dllm-train --init $OUT/stories260K $OUT/s-train.msgpack.zst --valid $OUT/s-valid.msgpack.zst --eval-every 300 \\"
echo "      -o $OUT/stories260K-mdlm --steps $STEPS --batch 8 --lr 2e-3 --warmup 20 --metrics $OUT/train-metrics.jsonl"
$B/dllm-train --init "$OUT/stories260K" "$OUT/s-train.msgpack.zst" --valid "$OUT/s-valid.msgpack.zst" --eval-every 300 \
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

# ---------------------------------------------------------------- issue 3/6: sampling
# The same prompt through both models: the fine-tuned diffusion model
# (LLaDA's low-confidence remasking, semi-autoregressive blocks of 32, one
# token per step) and the original AR weights sampled left to right with a
# KV cache (--causal, greedy; --bos as llama2.c, which starts from BOS).
# One thread each (-j 1): for a 260K-parameter model every kernel is tiny
# and OpenMP fork/join would cost more than the work.
P=${DEMO_PROMPT:-Once upon a time}
G=${DEMO_GEN:-128}
step "7. sample a story from the prompt \"$P\" ($G tokens) with both models"
echo "   the fine-tuned diffusion model: steps = gen-length, blocks of 32, low-confidence remasking;"
echo "   the original autoregressive stories260K: --causal (left to right, greedy, KV cache)"
echo "\$ dllm-sample -m $OUT/stories260K-mdlm -p '$P' --gen-length $G --steps $G --block-length 32 --remask low-confidence \\"
echo "      | dllm-tok -d -t $OUT/stories260K-mdlm --skip-special"
$B/dllm-sample -j 1 -m "$OUT/stories260K-mdlm" -p "$P" --gen-length "$G" --steps "$G" --block-length 32 \
    --remask low-confidence -o "$OUT/story-diffusion.msgpack" 2> "$OUT/story-diffusion.log" ||
    { cat "$OUT/story-diffusion.log" >&2; exit 1; }
echo "\$ dllm-sample -m $OUT/stories260K --causal --bos -p '$P' --gen-length $G | dllm-tok -d -t $OUT/stories260K --skip-special"
$B/dllm-sample -j 1 -m "$OUT/stories260K" --causal --bos -p "$P" --gen-length "$G" \
    -o "$OUT/story-ar.msgpack" 2> "$OUT/story-ar.log" || { cat "$OUT/story-ar.log" >&2; exit 1; }
# stats of a run, from its last stderr line: "NFE n, x tokens/s"
stats() { sed -n 's/.* tokens generated, NFE \([0-9]*\) .*, \([0-9.]*\) tokens\/s.*/NFE \1, \2 tokens\/s/p' "$1" | tail -n 1; }
{ echo "DIFFUSION  stories260K-mdlm"; echo "$(stats "$OUT/story-diffusion.log")"; echo
  $B/dllm-tok -q -d -t "$OUT/stories260K-mdlm" --skip-special "$OUT/story-diffusion.msgpack" | fold -s -w 46; } > "$OUT/story-diffusion.txt"
{ echo "AUTOREGRESSIVE  stories260K --causal"; echo "$(stats "$OUT/story-ar.log")"; echo
  $B/dllm-tok -q -d -t "$OUT/stories260K" --skip-special "$OUT/story-ar.msgpack" | fold -s -w 46; } > "$OUT/story-ar.txt"
echo
paste -d '\t' "$OUT/story-diffusion.txt" "$OUT/story-ar.txt" | awk -F '\t' '{ printf "  %-48s | %s\n", $1, $2 }'
echo
echo "(both are the same 260K-parameter network: the AR weights were trained on TinyStories for"
echo " many epochs; the diffusion model had $STEPS fine-tuning steps to learn to fill masks in any order,"
echo " so its text is far rougher; NFE = forward passes; the AR forwards see one new token each)"

# ---------------------------------------------------------------- issue 4/6: scoring
# dllm-score on the held-out rows: the diffusion ELBO (a Monte-Carlo upper
# bound on the NLL: --mc samples of t per row, all in one forward) before and
# after fine-tuning, and the AR model's exact chain-rule NLL (--causal), as a
# table.  -j 1 as above (tiny kernels).
MC=${DEMO_MC:-8}
VROWS="$OUT/s-rows.valid.msgpack.zst"
step "8. held-out likelihood with dllm-score ($($B/dllm-cat --count "$VROWS") TinyStories rows of 256 tokens)"
echo "\$ dllm-score -m $OUT/stories260K --mc $MC $VROWS -o $OUT/scores-before.msgpack --summary $OUT/score-before.json"
echo "\$ dllm-score -m $OUT/stories260K-mdlm --mc $MC $VROWS -o $OUT/scores-after.msgpack --summary $OUT/score-after.json"
echo "\$ dllm-score -m $OUT/stories260K --causal $VROWS -o $OUT/scores-ar.msgpack --summary $OUT/score-ar.json"
for run in "before:$OUT/stories260K:--mc $MC" "after:$OUT/stories260K-mdlm:--mc $MC" "ar:$OUT/stories260K:--causal"; do
    name=${run%%:*}; rest=${run#*:}; ck=${rest%%:*}; args=${rest#*:}
    $B/dllm-score -q -j 1 -m "$ck" $args "$VROWS" -o "$OUT/scores-$name.msgpack" --summary "$OUT/score-$name.json"
done
# jnum FILE KEY: a number of a --summary JSON (null -> nan)
jnum() { tr -d ' \n' < "$1" | sed "s/.*\"$2\":\\([^,}]*\\).*/\\1/; s/null/nan/"; }
row() {  # row LABEL ESTIMATOR FILE REL
    printf '  %-36s %-24s %7d %10.4f %8.4f %10.4f  %s %.2f\n' "$1" "$2" "$(jnum "$3" tokens)" "$(jnum "$3" nats_per_token)" \
        "$(jnum "$3" se_nats_per_token)" "$(jnum "$3" bits_per_token)" "$4" "$(jnum "$3" perplexity)"
}
echo
printf '  %-36s %-24s %7s %10s %8s %10s  %s\n' "model" "estimator" "tokens" "nats/tok" "se" "bits/tok" "perplexity"
row "stories260K converted (before FT)" "diffusion ELBO, --mc $MC" "$OUT/score-before.json" "<="
row "stories260K-mdlm (after $STEPS steps)" "diffusion ELBO, --mc $MC" "$OUT/score-after.json" "<="
row "stories260K, the AR model" "exact, --causal" "$OUT/score-ar.json" "= "
echo
echo "(diffusion rows: an upper bound on the NLL of all 256 tokens of a row, estimated by Monte Carlo"
echo " with its standard error; AR rows: exact, the first token of a row is context so 255 are scored."
echo " The AR model is still far better: it was trained for many epochs, the diffusion one fine-tuned"
echo " $STEPS steps — and an ELBO over all masking orders is a harder task than left-to-right.)"
