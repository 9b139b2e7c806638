#!/bin/sh
# tests/cli/pipes.sh — one rule for a closed pipe (README, exit codes): every
# program, text or binary output, small or large, exits 3 with one message
# "<stdout>: write error: Broken pipe" (SIGPIPE is ignored by dl_prog_init;
# dllm-cat used to die by SIGPIPE, 141, silently).  The reader is gone before
# the program starts (a FIFO opened read-write, its write end kept, the read
# end closed), so the first write fails whatever the output size: no race.
. "$(dirname "$0")/lib.sh"
CK=$ROOT/tests/data/sample/ckpt
TO="timeout 120"
command -v timeout > /dev/null || TO=""

# closed_run NAME CMD: CMD's stdout is a pipe without a reader; ok when it
# exits 3 and says Broken pipe exactly once
closed_run() {
    name=$1; shift
    rm -f "$T/cp"; mkfifo "$T/cp"
    exec 4<>"$T/cp" 5>"$T/cp"
    exec 4<&-
    sh -c "$TO $*" >&5 2> "$ERR"; rc=$?
    exec 5>&-
    if [ "$rc" -eq 3 ] && [ "$(grep -c 'Broken pipe' "$ERR")" -eq 1 ]; then ok "$name"
    else notok "$name" "exit $rc, $(grep -c 'Broken pipe' "$ERR") 'Broken pipe' lines: $*"; sed 's/^/    # /' "$ERR" | head -n 5; fi
}

if ! command -v mkfifo > /dev/null; then skip "closed pipe" "no mkfifo"; exit 0; fi
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9]}' '{"ids":[10,11,12]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
dllm-pack -q -L 4 "$T/p.msgpack" -o "$T/rows.msgpack"
# large: 20000 records (~2 MB of JSON, ~1.5 MB of msgpack), past any pipe or stdio buffer
awk 'BEGIN { print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":300,\"mask_id\":299,\"eos_id\":1}}";
             for (i = 0; i < 20000; i++) printf "{\"ids\":[%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d]}\n", i % 290, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }' > "$T/big.jsonl"
dllm-cat --from-json "$T/big.jsonl" -o "$T/big.msgpack"
dllm-pack -q -L 16 "$T/big.msgpack" -o "$T/bigrows.msgpack"
head -c 2000000 "$DATA/tinystories/tinystories_val.txt" > "$T/big.txt"
echo "one small line" > "$T/small.txt"
TOK=$DATA/gpt2-tokenizer

for size in small big; do
    if [ $size = small ]; then s=$T/p.msgpack; r=$T/rows.msgpack; j=$T/p.jsonl; txt=$T/small.txt
    else s=$T/big.msgpack; r=$T/bigrows.msgpack; j=$T/big.jsonl; txt=$T/big.txt; fi
    closed_run "dllm-cat text ($size)" "dllm-cat '$s'"
    closed_run "dllm-cat --from-json binary ($size)" "dllm-cat --from-json '$j'"
    closed_run "dllm-pack ($size)" "dllm-pack -q -L 4 '$s'"
    closed_run "dllm-mask ($size)" "dllm-mask -q '$r'"
    closed_run "dllm-tok encode ($size)" "dllm-tok -q -t '$TOK' '$txt'"
    closed_run "dllm-tok -d ($size)" "dllm-tok -q -d -t '$TOK' '$s'"
done
closed_run "dllm-sample" "dllm-sample -q -m '$CK' -n 4 --block-length 4 --steps 4 '$T/p.msgpack'"
closed_run "dllm-score" "dllm-score -q -m '$CK' '$T/p.msgpack'"
closed_run "--help" "dllm-pack --help"
closed_run "dllm-train --help" "dllm-train --help"
