#!/bin/sh
# tests/cli/tok.sh — dllm-tok: plain text / --lines / --split / JSONL /
# messages templates / text streams -> tokens, -d back to text, special
# tokens, the mask token, and bad inputs.  GPT-2 tokenizer; small inputs.
. "$(dirname "$0")/lib.sh"

TOKJ=$DATA/gpt2-tokenizer/tokenizer.json
[ -f "$TOKJ" ] || TOKJ=${SHARED:+$SHARED/gpt2-tokenizer/tokenizer.json}
if [ -z "$TOKJ" ] || [ ! -f "$TOKJ" ]; then
    skip "dllm-tok" "no GPT-2 tokenizer in share/data or ../shared/data"; exit 0
fi
STORIES=$DATA/tinystories/tinystories_sample.txt
[ -f "$STORIES" ] || STORIES=${SHARED:+$SHARED/tinystories/tinystories_sample.txt}

enc() { dllm-tok -q -t "$TOKJ" "$@"; }
ids() { dllm-tok -q -d -t "$TOKJ" --ids "$@"; }

# ---------------------------------------------------------------- plain text
is "encode one document" "$(printf 'Hello world' | enc | ids)" "15496 995"
is "final newline is not text" "$(printf 'Hello world\n' | enc | ids)" "15496 995"
is "decode to text" "$(printf 'Hello world\n' | enc | dllm-tok -q -d -t "$TOKJ")" "Hello world"
is "checkpoint directory as -t" "$(printf 'Hello world' | dllm-tok -q -t "$(dirname "$TOKJ")" | ids)" "15496 995"
printf 'Hello\n\nworld\r\n  x\n' > "$T/lines.txt"
is "--lines: one document per line, empty skipped, CR removed" \
   "$(enc --lines "$T/lines.txt" | ids | tr '\n' ';')" "15496;6894;220 2124;"
printf 'Hello\n<|endoftext|>\nworld\n\n<|endoftext|>\n<|endoftext|>\n' > "$T/split.txt"
is "--split: separator and adjacent newlines removed, empty skipped" \
   "$(enc --split '<|endoftext|>' "$T/split.txt" | ids | tr '\n' ';')" "15496;6894 198;"
is "special-token text encodes to its id" "$(printf 'a<|endoftext|>b' | enc | ids)" "64 50256 65"

# ---------------------------------------------------------------- --bos/--eos
is "--bos --eos" "$(printf 'Hello' | enc --bos --eos | ids)" "50256 15496 50256"
is "--eos-token override" "$(printf 'Hello' | enc --eos --eos-token '!' | ids)" "15496 0"
expect_exit 2 "--eos-token that is not a token: usage error" "printf x | dllm-tok -t '$TOKJ' --eos-token '<nope>'"
expect_err "nope" "... names the token"

# ---------------------------------------------------------------- JSONL
cat > "$T/pr.jsonl" <<'EOF'
{"prompt": "Hello", "response": " world", "id": 7, "source": "x", "meta": {"a": [1, 2.5, true, null]}}
{"text": "Hello world", "lang": "en"}

{"prompt": "Hello"}
EOF
is "JSONL: n_prompt = prompt ids, text, prompt only" \
   "$(enc "$T/pr.jsonl" | ids | tr '\n' ';')" "15496 | 995;15496 995;15496 |;"
is "--bos counts in n_prompt" "$(enc --bos "$T/pr.jsonl" | ids | head -n 1)" "50256 15496 | 995"
enc "$T/pr.jsonl" | dllm-tok -q -d -t "$TOKJ" --jsonl > "$T/pr.out.jsonl"
is "decode --jsonl: prompt/response and carried keys" "$(head -n 1 "$T/pr.out.jsonl")" \
   '{"prompt":"Hello","response":" world","id":7,"source":"x","meta":{"a":[1,2.5,true,null]}}'
is "decode --jsonl: text" "$(sed -n 2p "$T/pr.out.jsonl")" '{"text":"Hello world","lang":"en"}'
is "JSONL round trip (encode, decode --jsonl, encode)" \
   "$(enc --jsonl "$T/pr.out.jsonl" | ids | tr '\n' ';')" "15496 | 995;15496 995;15496 |;"
check "JSONL from stdin with --jsonl" "printf '{\"text\": \"a\"}\n' | dllm-tok -q -t '$TOKJ' --jsonl | dllm-tok -q -d -t '$TOKJ' --ids | grep -qx 64"

# ---------------------------------------------------------------- chat templates
MSG='{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": " U "}, {"role": "assistant", "content": "A"}]}'
chat() { printf '%s\n' "$MSG" | enc --jsonl --chat-template "$1" | dllm-tok -q -d -t "$TOKJ" --jsonl; }
is "template chatml" "$(chat chatml)" \
   '{"prompt":"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n U <|im_end|>\n<|im_start|>assistant\n","response":"A<|im_end|>"}'
is "template llama3 (content trimmed)" "$(chat llama3)" \
   '{"prompt":"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n","response":"A<|eot_id|>"}'
is "template llada" "$(chat llada)" \
   '{"prompt":"<|startoftext|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n","response":"A<|eot_id|>"}'
is "template plain" "$(chat plain)" '{"prompt":"System: S\nUser:  U \nAssistant: ","response":"A\n"}'
is "auto = plain for GPT-2" "$(chat auto)" "$(chat plain)"
MSG='{"messages": [{"role": "user", "content": "hi"}], "id": 1}'
is "no final assistant turn: generation prompt" "$(chat chatml)" \
   '{"prompt":"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n","response":"","id":1}'
expect_exit 2 "unknown template" "printf x | dllm-tok -t '$TOKJ' --chat-template nope"

# ---------------------------------------------------------------- text msgpack stream input
# {"dllm":1,"kind":"text"} {"text":"Hello world","id":3}
printf '\202\244dllm\001\244kind\244text\202\244text\253Hello world\242id\003' > "$T/text.msgpack"
is "text stream input, carried id" "$(enc "$T/text.msgpack" | dllm-tok -q -d -t "$TOKJ" --jsonl)" '{"text":"Hello world","id":3}'

# ---------------------------------------------------------------- mask token, -T
printf 'a<|mdm_mask|>b' > "$T/mask.txt"
enc --add-mask-token -T "$T/ext.json" "$T/mask.txt" > "$T/mask.msgpack"
is "... id is 50257" "$(dllm-tok -q -d -t "$T/ext.json" --ids < "$T/mask.msgpack")" "64 50257 65"
is "-T tokenizer loads and encodes the mask text" "$(dllm-tok -q -t "$T/ext.json" "$T/mask.txt" | dllm-tok -q -d -t "$T/ext.json" --ids)" "64 50257 65"
SHA=$(sha256sum "$T/ext.json" | cut -c1-64)
check "header records the extended tokenizer's sha256" "grep -aq '$SHA' '$T/mask.msgpack'"
check "header records mask_id" "grep -aq mask_id '$T/mask.msgpack'"
is "decode shows the mask token" "$(dllm-tok -q -d -t "$T/ext.json" < "$T/mask.msgpack")" "a<|mdm_mask|>b"
is "--skip-special drops it" "$(dllm-tok -q -d -t "$T/ext.json" --skip-special < "$T/mask.msgpack")" "ab"
expect_exit 1 "decode of an id >= vocab" "dllm-tok -d -t '$TOKJ' < '$T/mask.msgpack'"
expect_err "record 0" "... names the record"
expect_err "sha256" "... and warns about the tokenizer mismatch"
expect_exit 1 "decode error with -o" "dllm-tok -d -t '$TOKJ' -o '$T/dec.txt' < '$T/mask.msgpack'"
no_file "$T/dec.txt" "... leaves no output under its final name"
expect_exit 1 "--strict refuses another tokenizer" "dllm-tok -d --strict -t '$TOKJ' < '$T/mask.msgpack'"
dllm-tok -q -t "$T/ext.json" --add-mask-token -T "$T/ext2.json" "$T/mask.txt" > "$T/mask2.msgpack"
is "--add-mask-token keeps an existing mask token" "$(dllm-tok -q -d -t "$T/ext2.json" --ids < "$T/mask2.msgpack")" "64 50257 65"
same "$T/ext.json" "$T/ext2.json" "... and does not change the tokenizer"

if [ -x "$BIN/dllm-pack" ] && [ -x "$BIN/dllm-mask" ]; then
    printf 'one two three four five six seven eight' | dllm-tok -q -t "$T/ext.json" \
        | dllm-pack -q -L 8 | dllm-mask -q --seed 3 > "$T/masked.msgpack"
    is "masked stream: x0 by default" "$(dllm-tok -q -d -t "$T/ext.json" < "$T/masked.msgpack")" "one two three four five six seven eight"
    check "masked stream: --key xt shows mask tokens" "dllm-tok -q -d -t '$T/ext.json' --key xt < '$T/masked.msgpack' | grep -q '<|mdm_mask|>'"
else
    skip "masked stream decode" "dllm-pack / dllm-mask not built"
fi

# ---------------------------------------------------------------- shards and slices
printf 'a\nb\nc\nd\ne\n' > "$T/five.txt"
enc --lines -o "$T/sh" --shards 2 "$T/five.txt"
is "--shards 2: round-robin" "$(ids "$T/sh-00000-of-00002.msgpack.zst" | tr '\n' ' ')|$(ids "$T/sh-00001-of-00002.msgpack.zst" | tr '\n' ' ')" "64 66 68 |65 67 "
is "--shard 1/2 keeps odd documents" "$(enc --lines --shard 1/2 "$T/five.txt" | ids | tr '\n' ' ')" "65 67 "
if command -v zstd > /dev/null 2>&1; then
    zstd -q -c "$T/five.txt" > "$T/five.txt.zst"
    is "zstd-compressed input" "$(enc --lines "$T/five.txt.zst" | ids | tr '\n' ' ')" "64 65 66 67 68 "
else
    skip "zstd-compressed input" "no zstd command"
fi

# ---------------------------------------------------------------- round trips on corpora
if [ -n "$STORIES" ] && [ -f "$STORIES" ]; then
    enc --split '<|endoftext|>' "$STORIES" > "$T/st.msgpack"
    ids < "$T/st.msgpack" > "$T/st.ids"
    is "tinystories sample: 5 stories" "$(wc -l < "$T/st.ids" | tr -d ' ')" 5
    dllm-tok -q -d -t "$TOKJ" --split '<|endoftext|>' < "$T/st.msgpack" > "$T/st.txt"
    enc --split '<|endoftext|>' "$T/st.txt" | ids > "$T/st2.ids"
    same "$T/st.ids" "$T/st2.ids" "tinystories: decode --split then encode gives the same ids"
    dllm-tok -q -d -t "$TOKJ" --jsonl < "$T/st.msgpack" | enc --jsonl | ids > "$T/st3.ids"
    same "$T/st.ids" "$T/st3.ids" "tinystories: decode --jsonl then encode gives the same ids"
else
    skip "tinystories round trip" "no tinystories sample"
fi
if need_shared "tinyshakespeare round trip"; then
    enc --lines -j 2 "$SHARED/tinyshakespeare/input.txt" > "$T/sh.msgpack"
    ids < "$T/sh.msgpack" > "$T/sh.ids"
    dllm-tok -q -d -t "$TOKJ" < "$T/sh.msgpack" | enc --lines | ids > "$T/sh2.ids"
    same "$T/sh.ids" "$T/sh2.ids" "tinyshakespeare: decode then encode gives the same ids (threads 2 vs 1)"
    is "tinyshakespeare: one document per non-empty line" "$(wc -l < "$T/sh.ids" | tr -d ' ')" \
       "$(grep -c . "$SHARED/tinyshakespeare/input.txt")"
fi

# ---------------------------------------------------------------- bad inputs
expect_exit 3 "missing tokenizer file" "printf x | dllm-tok -t '$T/nope.json'"
expect_err "nope.json" "... names it"
expect_exit 3 "missing input file" "dllm-tok -t '$TOKJ' '$T/missing.txt'"
expect_err "missing.txt" "... names it"
printf '{"text": "ok"}\n{"text": oops}\n' > "$T/bad.jsonl"
expect_exit 1 "malformed JSONL" "dllm-tok -t '$TOKJ' '$T/bad.jsonl'"
expect_err "bad.jsonl: line 2" "... names file and line"
printf '{"text": 5}\n' > "$T/num.jsonl"
expect_exit 1 "text field that is not a string" "dllm-tok -t '$TOKJ' '$T/num.jsonl'"
expect_err "line 1.*not a string" "... says so"
printf '{"id": 5}\n' > "$T/nokey.jsonl"
expect_exit 1 "JSON object without text" "dllm-tok -t '$TOKJ' '$T/nokey.jsonl'"
: > "$T/empty.txt"
expect_exit 1 "empty input" "dllm-tok -t '$TOKJ' '$T/empty.txt'"
expect_err "no documents" "... says no documents"
is "invalid UTF-8 becomes U+FFFD" "$(printf 'a\377b' | enc | ids)" "$(printf 'a\357\277\275b' | enc | ids)"
expect_exit 1 "-o: error after a good document" "dllm-tok -t '$TOKJ' -o '$T/out.msgpack' '$T/bad.jsonl'"
no_file "$T/out.msgpack" "... leaves no output under its final name"
expect_exit 3 "-o: missing second input" "dllm-tok -t '$TOKJ' -o '$T/out2.msgpack' '$T/five.txt' '$T/missing.txt'"
no_file "$T/out2.msgpack" "... leaves no output under its final name"
expect_exit 1 "decode of a text file" "dllm-tok -d -t '$TOKJ' '$T/five.txt'"
expect_exit 2 "no -t" "printf x | dllm-tok"
check "--help" "dllm-tok --help | grep -q chatml"
