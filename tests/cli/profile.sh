#!/bin/sh
# tests/cli/profile.sh — `--profile` of dllm-train and dllm-sample: every
# device op waits for the device and books its wall time; a table per op
# at the end (calls, total ms, ms per call, share).  Checked: the table
# has the ops the run called, with the call counts the model implies
# (stories260K, vocabulary 513 in chunks of 100: 6 chunks x 20 steps), and
# profiling changes no result (weights and sampled ids bit for bit).
. "$(dirname "$0")/lib.sh"
s260_train_data 60000
check "train 20 steps, chunks of 100" "dllm-train -q $A --steps 20 --xent-chunk 100 -o '$T/a'"
check "the same with --profile" "dllm-train $A --steps 20 --xent-chunk 100 --profile -o '$T/p' 2> '$T/p.err'"
check "  a row per op: the chunked head's 120 calls each, linear_bwd, adamw" \
    "grep -q 'xent_chunk_fwd  *120 ' '$T/p.err' && grep -q 'xent_chunk_bwd  *120 ' '$T/p.err' &&
     grep -q 'linear_bwd ' '$T/p.err' && grep -q 'adamw ' '$T/p.err' && grep -q 'all ops' '$T/p.err'"
same "$T/a/model.safetensors" "$T/p/model.safetensors" "  profiling changes no weight"
S="-m $T/a -p 'Once upon a time' --gen-length 16 --steps 16"
check "sample" "dllm-sample -q $S -o '$T/s.msgpack'"
check "sample --profile" "dllm-sample $S --profile -o '$T/sp.msgpack' 2> '$T/sp.err'"
check "  a row for token selection (16 steps)" "grep -q 'select_tokens  *16 ' '$T/sp.err'"
is "  profiling changes no sampled token" "$(dllm-cat "$T/sp.msgpack" | tail -n +2)" "$(dllm-cat "$T/s.msgpack" | tail -n +2)"
