#!/bin/sh
# tests/cli/cat.sh — dllm-cat: JSON Lines <-> stream round trips, zstd
# detection (files and stdin), shards, and bad inputs (message names the
# file, documented exit code, no output left under its final name).
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- fixtures
line() { printf '%s\n' "$1"; }   # dash's echo would expand backslashes
H1='{"dllm":1,"kind":"rows","tokenizer":{"sha256":"aaaa","vocab_size":1000,"mask_id":999},"seq_len":4,"history":["dllm-tok -t x"],"lang":"fr"}'
H2='{"dllm":1,"kind":"rows","tokenizer":{"sha256":"bbbb","vocab_size":1000,"mask_id":999},"seq_len":4,"history":["dllm-tok -t y"]}'
{
    line "$H1"
    line '{"ids":[1,2,3,4],"n_prompt":1,"docs":[0,2]}'
    line '{"x0":[5,6,7,8],"xt":[999,6,999,8],"t":0.1,"t_blocks":[0.25,0.75],"nll":2.5,"f":0.300000012,"pi":3.141592653589793}'
    line '{"s":"caf\u00e9 \"q\"\n\u0001","b":{"$bin":"AAEC/w=="},"neg":-5,"arr":[1,2.5,null,true,false],"nested":{"ids":[7]},"big":9223372036854775807,"small":-9223372036854775808}'
    line '{"inf":{"$f64":"inf"},"nanf":{"$f32":"nan"},"e":{"$ext":[5,"AQ=="]},"one":1.0,"empty":[],"ids":[]}'
} > "$T/a.jsonl"
i=0
{
    line "$H1"
    while [ $i -lt 300 ]; do
        echo "{\"ids\":[$i,$((i+1)),$((i+2)),$((i+3))],\"i\":$i,\"text\":\"row $i of the test stream, padded to be longer\"}"
        i=$((i+1))
    done
} > "$T/many.jsonl"
{ line "$H2"; line '{"ids":[9,9,9,9]}'; } > "$T/b.jsonl"

check "from-json writes a stream" "dllm-cat --from-json '$T/a.jsonl' -o '$T/a.msgpack'"
check "prints a stream" "dllm-cat '$T/a.msgpack' > '$T/a1.json'"
check "stream -> JSON -> stream -> JSON is the identity" \
    "dllm-cat --from-json '$T/a1.json' | dllm-cat > '$T/a2.json' && cmp '$T/a1.json' '$T/a2.json'"
check "header line first, kept verbatim (history not extended)" \
    "head -n 1 '$T/a1.json' | grep -qxF '$H1'"
check "id blobs print as integer arrays" "grep -qF '\"ids\":[1,2,3,4],\"n_prompt\":1,\"docs\":[0,2]' '$T/a1.json'"
check "t is float32 (%.9g), t_blocks a float array" \
    "grep -qF '\"t\":0.100000001,\"t_blocks\":[0.25,0.75]' '$T/a1.json'"
check "float64 printed with %.17g" "grep -qF '\"pi\":3.1415926535897931' '$T/a1.json'"
check "other bin as base64, escapes" \
    "grep -qF '\"s\":\"caf\\u00e9' '$T/a1.json' || grep -qF '\"b\":{\"\$bin\":\"AAEC/w==\"}' '$T/a1.json'"
check "integer-valued floats keep a .0" "grep -qF '\"one\":1.0' '$T/a1.json'"
check "--no-header omits the header" \
    "dllm-cat --no-header '$T/a.msgpack' > '$T/nh.json' && ! grep -q dllm '$T/nh.json' && [ \$(wc -l < '$T/nh.json') -eq 4 ]"
check "--header prints only the header" "[ \"\$(dllm-cat --header '$T/a.msgpack')\" = '$H1' ]"
check "--count" "[ \"\$(dllm-cat --count '$T/a.msgpack')\" = 4 ]"
check "two files: one header, all records" \
    "[ \$(dllm-cat '$T/a.msgpack' '$T/a.msgpack' | wc -l) -eq 9 ] && [ \$(dllm-cat '$T/a.msgpack' '$T/a.msgpack' | grep -c dllm) -eq 1 ]"
check "cat a b | dllm-cat: compatible re-appearing header is not repeated" \
    "cat '$T/a.msgpack' '$T/a.msgpack' | dllm-cat | grep -c dllm | grep -qx 1"

# ---------------------------------------------------------------- zstd
check "from-json -o x.msgpack.zst writes zstd" \
    "dllm-cat --from-json '$T/many.jsonl' -o '$T/m.msgpack.zst' && [ \"\$(od -An -tx1 -N4 '$T/m.msgpack.zst' | tr -d ' ')\" = 28b52ffd ]"
check "plain output without .zst" \
    "dllm-cat --from-json '$T/many.jsonl' -o '$T/m.msgpack' && [ \"\$(od -An -tx1 -N1 '$T/m.msgpack' | tr -d ' ')\" != 28 ]"
check "zstd file reads like the plain one" \
    "dllm-cat '$T/m.msgpack.zst' > '$T/mz.json' && dllm-cat '$T/m.msgpack' > '$T/mp.json' && cmp '$T/mz.json' '$T/mp.json'"
check "--zstd to a pipe, detected on stdin" \
    "dllm-cat --from-json --zstd '$T/many.jsonl' | dllm-cat > '$T/ms.json' && cmp '$T/ms.json' '$T/mp.json'"
if command -v zstd >/dev/null 2>&1; then
    check "zstd -c f | dllm-cat" "zstd -q -c '$T/m.msgpack' | dllm-cat > '$T/mc.json' && cmp '$T/mc.json' '$T/mp.json'"
    check "JSON Lines input may be zstd too" \
        "zstd -q -c '$T/many.jsonl' | dllm-cat --from-json | dllm-cat > '$T/mj.json' && cmp '$T/mj.json' '$T/mp.json'"
else
    skip "zstd -c f | dllm-cat" "zstd CLI not installed"
fi
check "concatenated zstd frames (cat x.zst x.zst)" \
    "cat '$T/m.msgpack.zst' '$T/m.msgpack.zst' | dllm-cat --count | grep -qx 600"

# ---------------------------------------------------------------- shards
mkdir -p "$T/sh"
check "--shards 3 writes 3 named files" \
    "dllm-cat --from-json --shards 3 -o '$T/sh/p' '$T/many.jsonl' && ls '$T/sh' | sort | tr '\n' ' ' | grep -qx 'p-00000-of-00003.msgpack.zst p-00001-of-00003.msgpack.zst p-00002-of-00003.msgpack.zst '"
check "shards hold all records" \
    "dllm-cat --no-header '$T'/sh/p-*.msgpack.zst | sort > '$T/u.json' && dllm-cat --no-header '$T/m.msgpack' | sort > '$T/v.json' && cmp '$T/u.json' '$T/v.json'"
check "each shard starts with the header" \
    "for f in '$T'/sh/p-*; do dllm-cat --header \"\$f\" | grep -q '\"sha256\":\"aaaa\"' || exit 1; done"

# ---------------------------------------------------------------- bad inputs
head -c -3 "$T/m.msgpack" > "$T/trunc.msgpack"
expect_exit 1 "truncated msgpack: exit 1" "dllm-cat '$T/trunc.msgpack' -o '$T/out1.json'"
expect_err "trunc.msgpack: record 299: truncated" "truncated msgpack: message names file and record"
no_file "$T/out1.json" "truncated msgpack: no output file"
check "truncated msgpack: no temporary left" "! ls '$T' | grep -q 'out1.json.tmp'"

cp "$T/m.msgpack.zst" "$T/bad.msgpack.zst"
size=$(wc -c < "$T/bad.msgpack.zst")
printf '\377\377\377\377\377\377\377\377' | dd of="$T/bad.msgpack.zst" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_exit 1 "corrupted zstd frame: exit 1" "dllm-cat '$T/bad.msgpack.zst' -o '$T/out2.json'"
expect_err "bad.msgpack.zst: .*zstd" "corrupted zstd frame: message names the file"
no_file "$T/out2.json" "corrupted zstd frame: no output file"
head -c $((size - 5)) "$T/m.msgpack.zst" > "$T/cut.msgpack.zst"
expect_exit 1 "truncated zstd frame: exit 1" "dllm-cat '$T/cut.msgpack.zst'"
expect_err "cut.msgpack.zst: .*truncated zstd frame" "truncated zstd frame: message"

: > "$T/empty.msgpack"
expect_exit 1 "empty input: exit 1" "dllm-cat '$T/empty.msgpack' -o '$T/out3.json'"
expect_err "empty.msgpack: empty input / no header" "empty input: message"
no_file "$T/out3.json" "empty input: no output file"
expect_exit 1 "empty stdin: exit 1" "dllm-cat < /dev/null"
expect_err "<stdin>: empty input / no header" "empty stdin: message"

dllm-cat --from-json "$T/b.jsonl" -o "$T/b.msgpack"
expect_exit 1 "different tokenizers concatenated: exit 1" "cat '$T/m.msgpack' '$T/b.msgpack' | dllm-cat -o '$T/out4.json'"
expect_err "<stdin>: record 300: incompatible header: tokenizer" "different tokenizers: message"
no_file "$T/out4.json" "different tokenizers: no output file"
expect_exit 1 "different tokenizers as two files: exit 1" "dllm-cat '$T/m.msgpack' '$T/b.msgpack'"
expect_err "b.msgpack: record 0: incompatible header" "different tokenizers as files: names the second file"

printf '\201\241a\001' > "$T/nohdr.msgpack"
expect_exit 1 "stream not starting with a header: exit 1" "dllm-cat '$T/nohdr.msgpack' -o '$T/out5.json'"
expect_err "nohdr.msgpack: record 0: stream does not start with a header" "no header: message"
no_file "$T/out5.json" "no header: no output file"

expect_exit 3 "missing input file: exit 3" "dllm-cat '$T/missing.msgpack' -o '$T/out6.json'"
expect_err "missing.msgpack: cannot open" "missing input file: message"
no_file "$T/out6.json" "missing input file: no output file"

# from-json data errors: file and line named, no output under the final name
{ echo "$H1"; echo '{"ids":[1]}'; echo '{"ids":[1,'; } > "$T/badjson.jsonl"
expect_exit 1 "from-json: invalid JSON line: exit 1" "dllm-cat --from-json '$T/badjson.jsonl' -o '$T/out7.msgpack'"
expect_err "badjson.jsonl: line 3: invalid JSON" "from-json: invalid JSON names file and line"
no_file "$T/out7.msgpack" "from-json: invalid JSON: no output file"
{ echo "$H1"; echo '[1,2]'; } > "$T/arr.jsonl"
expect_exit 1 "from-json: non-object line: exit 1" "dllm-cat --from-json '$T/arr.jsonl' -o '$T/out8.msgpack'"
expect_err "arr.jsonl: line 2: not a JSON object" "from-json: non-object names file and line"
no_file "$T/out8.msgpack" "from-json: non-object: no output file"
echo '{"ids":[1,2]}' > "$T/nohdr.jsonl"
expect_exit 1 "from-json: first line not a header: exit 1" "dllm-cat --from-json '$T/nohdr.jsonl' -o '$T/out9.msgpack'"
expect_err "nohdr.jsonl: line 1: the first line must be a header" "from-json: no header message"
no_file "$T/out9.msgpack" "from-json: no header: no output file"
echo '{"dllm":1,"kind":"nonsense"}' > "$T/badkind.jsonl"
expect_exit 1 "from-json: invalid header: exit 1" "dllm-cat --from-json '$T/badkind.jsonl'"
expect_err "badkind.jsonl: line 1: .*unknown kind" "from-json: invalid header message"
expect_exit 1 "from-json: empty input: exit 1" "dllm-cat --from-json < /dev/null"
expect_err "empty input / no header" "from-json: empty input message"
expect_exit 3 "from-json: output directory missing: exit 3" "dllm-cat --from-json '$T/a.jsonl' -o '$T/nodir/x.msgpack'"

# write errors: disk full on stdout, in both directions
expect_exit 3 "disk full (binary output): exit 3" "dllm-cat --from-json '$T/many.jsonl' > /dev/full"
expect_err "write error: No space left" "disk full (binary output): message"
expect_exit 3 "disk full (JSON output): exit 3" "dllm-cat '$T/m.msgpack' > /dev/full"
check "-o /dev/null is written in place" "dllm-cat --from-json '$T/many.jsonl' -o /dev/null && ! ls /dev/null.tmp.* 2>/dev/null"

# SIGTERM while writing: exit 130, the temporary output is removed
mkfifo "$T/fifo" 2>/dev/null
if [ -p "$T/fifo" ]; then
    dllm-cat --from-json "$T/fifo" -o "$T/sig.msgpack" 2> "$ERR" &
    pid=$!
    exec 3> "$T/fifo"
    line "$H1" >&3
    n=0
    while [ $n -lt 100 ] && ! ls "$T" | grep -q 'sig.msgpack.tmp'; do sleep 0.05; n=$((n + 1)); done
    kill -TERM $pid
    wait $pid; rc=$?
    exec 3>&-
    if [ $rc -eq 130 ]; then ok "SIGTERM: exit 130"; else notok "SIGTERM: exit 130" "exit $rc"; fi
    no_file "$T/sig.msgpack" "SIGTERM: no output file"
    check "SIGTERM: temporary removed" "! ls '$T' | grep -q 'sig.msgpack.tmp'"
else
    skip "SIGTERM while writing" "mkfifo failed"
fi

# usage
expect_exit 2 "unknown option: exit 2" "dllm-cat --bogus"
expect_exit 2 "--shards without --from-json: exit 2" "dllm-cat --shards 2 -o '$T/x' '$T/a.msgpack'"
check "--help shows options and exit codes" "dllm-cat --help | grep -q -- '--from-json' && dllm-cat --help | grep -q 'exit codes'"
