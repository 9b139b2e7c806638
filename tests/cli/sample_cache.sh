#!/bin/sh
# tests/cli/sample_cache.sh — dllm-sample --cache none|prefix|dual (Fast-dLLM
# KV caches, share/model/dl_model_dcache.c; the model-level exactness of the
# window forward is tests/unit/test_dcache.c).  Checks: the flag in --help,
# a bad value is a usage error; --cache none is byte-identical to no flag;
# prefix and dual are deterministic (two runs byte-identical), fill every
# mask, keep the NFE of --cache none (same schedule: NFE = steps), also with
# --cfg (2 rows per prompt) and --threshold; the first step of every run
# refreshes the whole canvas, so its committed tokens equal --cache none's.
# Model: tests/data/sample/ckpt (hash weights, vocab 300, mask 299, eos 1).
. "$(dirname "$0")/lib.sh"
CK=$ROOT/tests/data/sample/ckpt
S="dllm-sample -q -m $CK --keep-eos"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9]}' '{"ids":[10,11,12]}' '{"ids":[20,21,22,23,24,25,26,27]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"

check "--cache in --help" "dllm-sample --help | grep -q -- '--cache'"
expect_exit 2 "--cache other is a usage error" "$S --cache full $T/p.msgpack"
A="-n 16 --steps 16 --block-length 4"
$S $A $T/p.msgpack -o $T/plain.msgpack --trace $T/plain.tr
# step 0's committed (position, token) pairs; confidences differ in the last
# digits (the cached attention sums in another order)
export NOCONF; NOCONF='s/\(\[[0-9]*,[0-9]*\),[^]]*\]/\1]/g'
grep -F '"step":0,' $T/plain.tr | sed "$NOCONF" > $T/plain.tr.0
$S $A --cache none $T/p.msgpack -o $T/none.msgpack
dllm-cat --no-header $T/plain.msgpack > $T/plain.rec; dllm-cat --no-header $T/none.msgpack > $T/none.rec
same $T/plain.rec $T/none.rec "--cache none == no flag (records byte-identical; the header's history differs)"
for c in prefix dual; do
    for extra in "" "--cfg 0.5" "--threshold 0.3" "-t 1 --seed 4"; do
        $S $A --cache $c $extra $T/p.msgpack --trace $T/$c.tr | dllm-cat --no-header > $T/$c.jsonl
        $S $A --cache $c $extra $T/p.msgpack | dllm-cat --no-header > $T/$c.2.jsonl
        same $T/$c.jsonl $T/$c.2.jsonl "--cache $c $extra: deterministic (records byte-identical)"
        check "--cache $c $extra: every mask filled" "! grep -q '[[,]299[],]' $T/$c.jsonl"
        if [ -z "$extra" ] || [ "$extra" = "--cfg 0.5" ]; then
            nfe=16; [ -n "$extra" ] && nfe=32
            check "--cache $c $extra: NFE $nfe per prompt as --cache none" \
                "test \$(grep -c '\"nfe\":$nfe,' $T/$c.jsonl) -eq 3"
        fi
        if [ -z "$extra" ]; then
            check "--cache $c: step 0 (a full refresh) commits what --cache none commits" \
                "grep -F '\"step\":0,' $T/$c.tr | sed \"\$NOCONF\" | cmp -s - $T/plain.tr.0"
        fi
    done
done
