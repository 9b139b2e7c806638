#!/bin/sh
# tests/cli/train_bd3.sh — block diffusion (BD3LM) end to end: dllm-mask
# --block 8 (t per block) feeds dllm-train --block-diffusion 8 (x_t (+) x_0
# rows, DL_ATTN_BD3; the kernels' mask is checked against the reference
# backend in tests/unit/test_backend_ops.c); the loss goes down; config.json
# records block_diffusion; dllm-sample then samples block by block, and
# --cache prefix|dual (the exact block cache) gives records byte-identical to
# --cache none (recomputing every block-causal forward) at temperature 0 and
# with sampling, with CFG and --threshold, for prompts that end inside a
# block or on its boundary.  Bad combinations are usage errors.
# Data: the repetitive toy corpus of train.sh (vocab 64, mask 63), L = 32.
. "$(dirname "$0")/lib.sh"

losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }
awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
    for (k = 0; k < 200; k++) {          # documents counting up from a start token, 20..69 long
        s = "{\"ids\":["; n = 20 + (k * 13) % 50
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7 + i) % 40)
        print s "]}"
    }
}' > "$T/tok.jsonl"
dllm-cat --from-json "$T/tok.jsonl" -o "$T/tok.msgpack"
dllm-pack -q -L 32 --seed 1 "$T/tok.msgpack" -o "$T/rows.msgpack"
dllm-mask -q --seed 1 --block 8 --copies 4 "$T/rows.msgpack" -o "$T/train.msgpack"
sed -e 's/"hidden_size": 128/"vocab_size": 64, "mask_token_id": 63, "hidden_size": 32/' \
    -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/t32.json"

check "--block-diffusion in dllm-train --help" "dllm-train --help | grep -q -- '--block-diffusion'"
expect_exit 2 "--block-diffusion with --causal is a usage error" \
    "dllm-train -q --config '$T/t32.json' '$T/train.msgpack' --block-diffusion 8 --causal -o '$T/bad' --steps 1"
check "dllm-train --block-diffusion 8 trains" \
    "dllm-train -q --config '$T/t32.json' '$T/train.msgpack' --block-diffusion 8 --batch 8 --lr 3e-3 -o '$T/ck' \
     --steps 40 --metrics '$T/m.jsonl'"
check "config.json records block_diffusion 8" "grep -q '\"block_diffusion\": *8' '$T/ck/config.json'"
first=$(losses "$T/m.jsonl" | head -n 5 | awk '{ s += $2 } END { print s / NR }')
last=$(losses "$T/m.jsonl" | tail -n 5 | awk '{ s += $2 } END { print s / NR }')
check "the loss goes down ($first -> $last, means of 5 steps)" "awk 'BEGIN { exit !($last < 0.95 * $first) }'"

printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":64,"mask_id":63,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9]}' '{"ids":[10,11,12,13,14,15,16,17]}' '{"ids":[20,21,22,23,24,25,26,27,28,29,30]}' \
    > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
S="dllm-sample -q -m $T/ck --keep-eos -n 16 --steps 16"
expect_exit 2 "--block-length other than the checkpoint's 8 is a usage error" "$S --block-length 4 $T/p.msgpack"
for extra in "" "-t 1 --seed 4" "--cfg 0.5" "--threshold 0.3"; do
    $S $extra $T/p.msgpack | dllm-cat --no-header > $T/none.jsonl
    for c in prefix dual; do
        $S --cache $c $extra $T/p.msgpack | dllm-cat --no-header > $T/$c.jsonl
        same $T/none.jsonl $T/$c.jsonl "block diffusion --cache $c $extra == --cache none (records byte-identical)"
    done
    check "block diffusion $extra: every mask filled" "! grep -q '[[,]63[],]' $T/none.jsonl"
done

# dllm-score has no block-causal path: a block-diffusion checkpoint is refused, not scored with full attention
expect_exit 2 "dllm-score refuses a block-diffusion checkpoint" "dllm-score -q -m $T/ck $T/p.msgpack -o $T/sc.msgpack"
expect_err "block_diffusion 8.*dllm-train --init" "the refusal names block_diffusion and says how to get its ELBO"
no_file "$T/sc.msgpack" "no scores file left behind"
