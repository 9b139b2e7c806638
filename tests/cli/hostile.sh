#!/bin/sh
# tests/cli/hostile.sh — inputs a hostile or careless user feeds the programs
# (issue 9): --shard on inputs that cannot be read twice (a named pipe,
# /dev/stdin, a process substitution) is the same usage error as stdin and
# never hangs; a tokenizer.json with one huge vocab id fails fast in little
# memory; a record that declares more array/map elements than the input holds
# is a data error, not "out of memory".  Every run is under `timeout` so a
# hang fails the test instead of the suite.
. "$(dirname "$0")/lib.sh"
CK=$ROOT/tests/data/sample/ckpt
TO="timeout 60"

printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9]}' '{"ids":[10,11,12]}' '{"ids":[13,14,15,16]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
dllm-pack -q -L 4 "$T/p.msgpack" -o "$T/rows.msgpack"

# ------------------------------------------------ --shard on a non-regular input
# fifo_run NAME FEED CMD: a writer copies FEED into a fresh FIFO in the
# background, CMD (reading $T/fifo) must exit 2 naming the FIFO; the writer is
# killed afterwards in case CMD never opened the FIFO.
fifo_run() {
    name=$1; feed=$2; shift 2
    rm -f "$T/fifo"; mkfifo "$T/fifo"
    cat "$feed" > "$T/fifo" 2>/dev/null &
    wpid=$!
    expect_exit 2 "$name" "$TO $*"
    expect_err "fifo is not a regular file" "$name: the message names the input"
    kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
}
if command -v mkfifo > /dev/null && command -v timeout > /dev/null; then
    fifo_run "pack --shard on a FIFO: usage error, no hang" "$T/p.msgpack" "dllm-pack -q -L 4 --shard 0/2 '$T/fifo' -o '$T/x'"
    fifo_run "mask --shard on a FIFO: usage error, no hang" "$T/rows.msgpack" "dllm-mask -q --shard 0/2 '$T/fifo' -o '$T/x'"
    fifo_run "score --shard on a FIFO: usage error, no hang" "$T/p.msgpack" "dllm-score -q -m '$CK' --shard 1/2 '$T/fifo' -o '$T/x'"
    fifo_run "sample --shard on a FIFO: usage error, no hang" "$T/p.msgpack" "dllm-sample -q -m '$CK' --shard 1/2 '$T/fifo' -o '$T/x'"
    no_file "$T/x" "no output left after a --shard usage error"
    # /dev/stdin redirected from a regular file is that file: it can be sliced
    check "pack --shard on /dev/stdin < a file works" "$TO dllm-pack -q -L 4 --shard 0/2 /dev/stdin < '$T/p.msgpack' -o '$T/x0'"
    expect_exit 2 "mask --shard on /dev/stdin (a pipe): usage error" "cat '$T/rows.msgpack' | $TO dllm-mask -q --shard 0/2 /dev/stdin -o '$T/x'"
    expect_err "/dev/stdin is not a regular file" "... the message names /dev/stdin"
    if command -v bash > /dev/null; then
        expect_exit 2 "pack --shard on a process substitution: usage error" \
            "bash -c \"$TO dllm-pack -q -L 4 --shard 1/2 <(cat '$T/p.msgpack') -o '$T/x'\""
    else
        skip "pack --shard on a process substitution" "no bash"
    fi
    # without --shard the same FIFO is read once, as before
    rm -f "$T/fifo"; mkfifo "$T/fifo"; cat "$T/p.msgpack" > "$T/fifo" &
    check "pack reads a FIFO without --shard" "$TO dllm-pack -q -L 4 '$T/fifo' -o '$T/fifo.rows'"
    is "... the same rows as from the file" "$(dllm-cat --no-header "$T/fifo.rows")" "$(dllm-cat --no-header "$T/rows.msgpack")"
else
    skip "--shard on a FIFO" "no mkfifo or timeout"
fi

# ------------------------------------------------ a tokenizer.json with one huge id
# 270 bytes that once made the id tables 4.7 GB; a memory limit keeps a
# regression from taking the machine down (it fails with "out of memory"
# instead): ulimit -v, or under ASan (which reserves terabytes of shadow
# address space, so ulimit -v kills it) ASan's own allocation cap.
if [ -n "${DLLM_SAN_LOG:-}" ]; then
    LIMIT="ASAN_OPTIONS=\${ASAN_OPTIONS:-}:max_allocation_size_mb=400:allocator_may_return_null=1"
else
    LIMIT="ulimit -v 400000;"
fi
printf '%s' '{"version":"1.0","model":{"type":"BPE","vocab":{"a":300000000,"b":1},"merges":[]}}' > "$T/huge.json"
expect_exit 1 "tokenizer.json with vocab id 300000000: data error in little memory" \
    "$LIMIT $TO dllm-tok -t '$T/huge.json' --lines /dev/null -o '$T/x'"
expect_err "huge.json: vocab entry \"a\": id 300000000 is unreasonable .*below 260" "... naming the file, the entry, the id and the rule"
printf '%s' '{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]},"added_tokens":[{"id":2147483000,"content":"x"}]}' > "$T/huge2.json"
expect_exit 1 "added token id near INT32_MAX: data error in little memory" \
    "$LIMIT $TO dllm-tok -t '$T/huge2.json' --lines /dev/null -o '$T/x'"
expect_err "huge2.json: added_tokens\[0\]: id 2147483000 is unreasonable" "... naming the file and the id"
# holes are tolerated: ids below twice the entries + 256 load
printf '%s' '{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":200},"merges":[]}}' > "$T/holes.json"
check "a vocab with holes below the limit loads" "echo ab | $TO dllm-tok -q -t '$T/holes.json' --lines - -o '$T/holes.msgpack'"

# ------------------------------------------------ hand-made msgpack
# hexbin HEX: the bytes of a hex string (portable: awk + printf octal escapes)
hexbin() {
    printf "$(echo "$1" | sed 's/../& /g' | awk 'BEGIN { for (i = 0; i < 256; i++) h[sprintf("%02x", i)] = i }
        { for (i = 1; i <= NF; i++) printf "\\%03o", h[$i] }')"
}
# a header with "history" twice: the last wins (as for every key), the first
# array is freed (a leak under ASan before)
hexbin 84a4646c6c6d01a46b696e64a6746f6b656e73a7686973746f727991a161a7686973746f727991a16281a3696473c40401000000 \
    > "$T/hist2.msgpack"
check "a header with \"history\" twice reads" "dllm-pack -q -L 1 --eos-id 0 '$T/hist2.msgpack' -o '$T/hist2.rows'"
is "... the last \"history\" wins" "$(dllm-cat "$T/hist2.rows" | head -n 1 | grep -o '"history":\["[ab]"')" '"history":["b"'

# ------------------------------------------------ empty values (UB under UBSan before)
# an empty ids bin and an empty string: msgpack-c may hand out NULL pointers
# for them, and memcpy(NULL, ..., 0) / NULL + 0 are undefined behaviour
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7382a3696473c400a173a0 > "$T/empty.msgpack"
is "an empty ids bin and an empty string print" "$(dllm-cat -n "$T/empty.msgpack")" '{"ids":[],"s":""}'
check "dllm-pack reads an empty ids bin" "dllm-pack -q -L 4 --eos-id 0 '$T/empty.msgpack' -o '$T/empty.rows'"
# a word of unknown characters only (no unk token): the BPE cache stores 0 ids
is "a word that encodes to no ids" "$(echo 'c a c' | dllm-tok -q -t "$T/holes.json" --lines - | dllm-cat -n)" '{"ids":[0]}'

# ------------------------------------------------ declared sizes beyond the input
# a record {"x": array32 of 4294967295} followed by 3 bytes: msgpack-c would
# allocate 96 GB for it ("out of memory", exit 3); it is a data error
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7381a3696473c4040100000081a178ddffffffff010203 > "$T/bigarr.msgpack"
expect_exit 1 "a record declaring 4294967295 array elements: data error" "$TO dllm-cat '$T/bigarr.msgpack'"
expect_err "record 1: truncated or corrupt record: declared array of 4294967295 elements exceeds the remaining input \(3 bytes\)" "... the message names the record and the size"
expect_exit 1 "... from a pipe (size unknown): data error at the end" "cat '$T/bigarr.msgpack' | $TO dllm-cat"
expect_err "declared array of 4294967295 elements exceeds" "... the same message"
if command -v zstd > /dev/null; then
    zstd -qc "$T/bigarr.msgpack" > "$T/bigarr.msgpack.zst"
    expect_exit 1 "... zstd-compressed: data error" "$TO dllm-cat '$T/bigarr.msgpack.zst'"
else
    skip "... zstd-compressed" "no zstd program"
fi
# the same array, then byte 0xc1 (never used): from a pipe the size is
# unknown, and the unpacker would allocate the array before reaching the byte
# (found by fuzz_stream_zstd; seed tests/fuzz/corpus/stream_zstd/c1-after-array32.msgpack)
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7381a3696473c4040100000081a178ddffffffff01c103 > "$T/bigarr-c1.msgpack"
expect_exit 1 "a declared 4294967295-element array, then byte 0xc1, from a pipe: data error" "cat '$T/bigarr-c1.msgpack' | $TO dllm-cat"
expect_err "record 1: malformed msgpack: byte 0xc1 inside an array that declares 4294967295 elements" "... the message names the byte and the declaration"
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7381a3696473c40401000000dfffffffff > "$T/bigmap.msgpack"
expect_exit 1 "a record that is a map of 4294967295 pairs: data error" "$TO dllm-pack -q -L 4 --eos-id 0 '$T/bigmap.msgpack' -o '$T/x'"
expect_err "declared map of 4294967295 elements" "... the message says map"
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7381a3696473c6ffffffff00 > "$T/bigbin.msgpack"
expect_exit 1 "a bin declaring 4 GB in a 40-byte file: data error" "$TO dllm-cat '$T/bigbin.msgpack'"
# 33 nested arrays: msgpack-c's limit is 32 open containers
hexbin 82a4646c6c6d01a46b696e64a6746f6b656e7381a178$(printf '91%.0s' $(seq 33))01 > "$T/deep.msgpack"
expect_exit 1 "arrays nested 33 deep: data error" "$TO dllm-cat '$T/deep.msgpack'"
expect_err "nested deeper than 32" "... the message names the limit"
# dllm-tok reads text streams with its own unpacker: the same rule
hexbin 82a4646c6c6d01a46b696e64a47465787481a474657874a2686981a474657874ddffffffff0102 > "$T/bigtext.msgpack"
expect_exit 1 "dllm-tok: a text record declaring 4294967295 elements: data error" \
    "$TO dllm-tok -q -t '$DATA/gpt2-tokenizer' '$T/bigtext.msgpack' -o '$T/x'"
expect_err "record 1: truncated or corrupt record: declared array of 4294967295 elements" "... the message names the record"
