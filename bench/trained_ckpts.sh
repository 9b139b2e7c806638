#!/bin/sh
# bench/trained_ckpts.sh — the trained checkpoints and held-out data of
# bench/71-trained-cache.sh and bench/73-cache-quality.sh (issue 12), made
# once and kept in build/bench-trained (DLLM_BENCH_TRAINED_DIR), reused while
# its stamp (step counts + checksums of this script and the programs used)
# matches.  Prints the directory on stdout; messages on stderr.
#
# Data: share/data/tinystories/tinystories_val.txt split at its line 6505
# (the first "Once upon a time" at or after line 6500): lines 1-6504
# (580 KB, ~1120 rows of 256 tokens) are the fine-tuning text, lines 6505-
# (214 KB, 173 stories starting "Once upon a time") are held out: neither
# checkpoint sees them.  stories260K (the AR base) was trained on
# TinyStories' train split, so the held-out part is new to it as well.
# Made in DIR:
#   s260/        stories260K converted (mask token added, bidirectional)
#   mdlm/        s260 fine-tuned DLLM_BENCH_CACHE_STEPS steps (default 1000)
#                with the MDLM/LLaDA loss and --shift-logits (Dream's AR
#                adaptation: position i is read at hidden i-1, so the AR
#                head keeps its meaning; measured at 800 steps on the cloze
#                task of bench/73: sampled accuracy 0.053 with, 0.020
#                without, chance 0.020), batch 8, rows of 256, lr 2e-3,
#                warmup 20, 4 maskings of every row
#   bd3/         s260 fine-tuned DLLM_BENCH_BD3_STEPS steps (default 100)
#                with --block-diffusion 32 (data masked --block 32; BD3 takes
#                no --shift-logits, so it cannot start from mdlm/).  BD3
#                training is ~10x slower per step than MDLM on the CPU (its
#                block-causal attention, see docs/bench.md), so it gets few
#                steps: enough to show the exact cache, not for quality
#   cloze.jsonl  the held-out cloze task (bench/cloze_items.awk)
#   held-rows.msgpack  the first 100 (HROWS) held-out rows of 256 tokens
#                (of ~410: enough for a standard error of ~0.02 nats/token,
#                and BD3's evaluation is slow), for dllm-score's ELBO
#   held-mdlm.msgpack, held-bd3.msgpack  the same rows masked once (seed 2;
#                --block 32 for BD3), for dllm-train --valid
# Threads: DLLM_BENCH_THREADS (default 1), as bench/71.
# Does not: check that an existing DIR was made by this script beyond the stamp.
cd "$(dirname "$0")/.." || exit 3
N=${DLLM_BENCH_CACHE_STEPS:-1000}
M=${DLLM_BENCH_BD3_STEPS:-100}
TH=${DLLM_BENCH_THREADS:-1}
D=${DLLM_BENCH_TRAINED_DIR:-build/bench-trained}
TXT=share/data/tinystories/tinystories_val.txt
SPLIT=6505
HROWS=100
stamp="$N $M $SPLIT $HROWS $(cat bench/trained_ckpts.sh bench/cloze_items.awk bin/dllm-train bin/dllm-tok bin/dllm-pack bin/dllm-mask | cksum)"
if [ -f "$D/stamp" ] && [ "$(cat "$D/stamp")" = "$stamp" ]; then echo "$D"; exit 0; fi
rm -rf "$D.tmp" && mkdir -p "$D.tmp" || exit 3
T=$D.tmp
fail() { echo "trained_ckpts: $*" >&2; rm -rf "$T"; exit 1; }
head -n $((SPLIT - 1)) "$TXT" > "$T/train.txt" && tail -n +$SPLIT "$TXT" > "$T/held.txt" || fail "split failed"
awk -f bench/cloze_items.awk "$T/held.txt" > "$T/cloze.jsonl" || fail "cloze items failed"
bin/dllm-train -q --init share/data/stories260K/stories260K.bin -o "$T/s260" --steps 0 || fail "conversion failed"
K="$T/s260/tokenizer.json"
bin/dllm-tok -q -t "$K" "$T/train.txt" | bin/dllm-pack -q -L 256 --shuffle --seed 1 -o "$T/rows.msgpack" &&
bin/dllm-mask -q --seed 1 --copies 4 "$T/rows.msgpack" -o "$T/mdlm-train.msgpack" &&
bin/dllm-mask -q --seed 1 --copies 4 --block 32 "$T/rows.msgpack" -o "$T/bd3-train.msgpack" &&
bin/dllm-tok -q -t "$K" "$T/held.txt" | bin/dllm-pack -q -L 256 | bin/dllm-cat | head -n $((HROWS + 1)) |
    bin/dllm-cat --from-json -o "$T/held-rows.msgpack" &&
bin/dllm-mask -q --seed 2 "$T/held-rows.msgpack" -o "$T/held-mdlm.msgpack" &&
bin/dllm-mask -q --seed 2 --block 32 "$T/held-rows.msgpack" -o "$T/held-bd3.msgpack" || fail "data failed"
O="--batch 8 --lr 2e-3 --warmup 20 --threads $TH"
bin/dllm-train -q --init "$T/s260" "$T/mdlm-train.msgpack" --shift-logits -o "$T/mdlm" --steps "$N" $O ||
    fail "MDLM training failed"
bin/dllm-train -q --init "$T/s260" "$T/bd3-train.msgpack" --block-diffusion 32 -o "$T/bd3" --steps "$M" $O ||
    fail "BD3 training failed"
rm -f "$T/rows.msgpack" "$T/mdlm-train.msgpack" "$T/bd3-train.msgpack" "$T/train.txt"
echo "$stamp" > "$T/stamp"
rm -rf "$D" && mv "$T" "$D" || exit 3
echo "$D"
