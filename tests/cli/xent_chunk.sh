#!/bin/sh
# tests/cli/xent_chunk.sh — the loss head over the vocabulary in chunks
# (issue 11, `dllm-train --xent-chunk N`): only (M, N) logits exist at a
# time; the backward computes each block again for its gradient.
#   - stories260K (vocabulary 513), 20 steps on the CPU, chunks of 100 (the
#     last one ragged) and of 1, against the whole vocabulary: every loss
#     within rel 1e-5 and the weights within rel L2 1e-4 per tensor (the
#     same sums in another order: float32 rounding only; measured about
#     1e-7 and 1e-6);
#   - a chunk >= the vocabulary is the unchunked head, bit for bit;
#   - bf16 compute on ref, chunked against unchunked: losses rel 2e-2;
#   - resume with chunks is bit-exact (10 + 10 steps == 20);
#   - LoRA (the head frozen, no gradient buffer) trains with chunks;
#   - a negative chunk exits 2.
. "$(dirname "$0")/lib.sh"
C="python3 $ROOT/tests/cuda/compare.py"

s260_train_data 60000

check "whole vocabulary, 20 steps" "dllm-train -q $A --steps 20 --metrics '$T/w.jsonl' -o '$T/w'"
for n in 100 1; do
    check "--xent-chunk $n, 20 steps" "dllm-train -q $A --steps 20 --xent-chunk $n --metrics '$T/c$n.jsonl' -o '$T/c$n'"
    $C losses "$T/w.jsonl" "$T/c$n.jsonl" 1e-5 | sed "s/^\(n*o*t* *ok - \)/\1chunks of $n: /"
    $C weights "$T/w/model.safetensors" "$T/c$n/model.safetensors" 1e-4 1e-4 | sed "s/^\(n*o*t* *ok - \)/\1chunks of $n: /"
done
check "--xent-chunk 513 (= the vocabulary)" "dllm-train -q $A --steps 20 --xent-chunk 513 -o '$T/c513'"
same "$T/w/model.safetensors" "$T/c513/model.safetensors" "a chunk of the whole vocabulary is the unchunked head, bit for bit"

B="--device ref --precision bf16 $A --steps 6"
check "ref bf16, whole vocabulary" "dllm-train -q $B --metrics '$T/bw.jsonl' -o '$T/bw'"
check "ref bf16, --xent-chunk 64" "dllm-train -q $B --xent-chunk 64 --metrics '$T/bc.jsonl' -o '$T/bc'"
$C losses "$T/bw.jsonl" "$T/bc.jsonl" 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16 chunks of 64: /'

check "chunks of 100, 20 steps, saved at 10" "dllm-train -q $A --steps 20 --xent-chunk 100 --save-every 10 --keep-saves -o '$T/r1'"
check "--resume at 10 with chunks" "dllm-train -q --resume '$T/r1-step10' '$T/train.msgpack' --steps 20 --xent-chunk 100 -o '$T/r2'"
same "$T/r1/model.safetensors" "$T/r2/model.safetensors" "chunked resume: weights bit-exact against the uninterrupted run"

check "LoRA with chunks of 100" "dllm-train -q $A --steps 3 --lora 4 --xent-chunk 100 -o '$T/lora'"
expect_exit 2 "--xent-chunk -1: exit 2" "dllm-train -q $A --steps 1 --xent-chunk -1 -o '$T/x1'"
expect_err "xent-chunk" "  names the option"
no_file "$T/x1" "  no output"
