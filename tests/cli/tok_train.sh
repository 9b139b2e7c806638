#!/bin/sh
# tests/cli/tok_train.sh — dllm-tok train: deterministic, byte-identical to
# the committed tests/data/bpe_train/expected.json (itself byte-identical to
# HF BpeTrainer's output, see tests/ref/gen_bpe_train_fixture.py); encoding
# with the trained tokenizer gives the ids HF gives; inputs (files, stdin,
# zstd, several files), options and exit codes.
. "$(dirname "$0")/lib.sh"

FIX=$ROOT/tests/data/bpe_train
CORPUS=$DATA/tinystories/tinystories_sample.txt
if [ ! -f "$CORPUS" ]; then skip "dllm-tok train" "no $CORPUS"; exit 0; fi
train() { dllm-tok train -q "$@"; }

# ---------------------------------------------------------------- the fixture
check "train --vocab-size 500 on the TinyStories sample" "dllm-tok train -q --vocab-size 500 '$CORPUS' -o '$T/tok.json'"
same "$T/tok.json" "$FIX/expected.json" "... same bytes as the committed expected.json (= HF BpeTrainer's)"
train -V 500 < "$CORPUS" > "$T/stdin.json"
same "$T/stdin.json" "$FIX/expected.json" "stdin in, stdout out: same bytes"
if command -v zstd > /dev/null 2>&1; then
    zstd -q -c "$CORPUS" > "$T/corpus.txt.zst"
    train -V 500 "$T/corpus.txt.zst" -o "$T/zst.json"
    same "$T/zst.json" "$FIX/expected.json" "zstd input: same bytes"
else
    skip "zstd input" "no zstd command"
fi
head -n 10 "$CORPUS" > "$T/a.txt"; tail -n +11 "$CORPUS" > "$T/b.txt"
train -V 500 "$T/a.txt" "$T/b.txt" -o "$T/ab.json"
same "$T/ab.json" "$FIX/expected.json" "lines are independent: two files split at a line = one file"
is "vocab ids: special first, then the byte alphabet" \
   "$(grep -c -e '"<|endoftext|>": 0,' -e '"!": 1,' -e '"Ā": 189,' "$T/tok.json")" "3"

# ---------------------------------------------------------------- encoding (dllm-tok, tok/main.c)
got=$(dllm-tok -q -t "$T/tok.json" --lines "$FIX/texts.txt" 2> "$T/enc.err" | dllm-tok -q -d -t "$T/tok.json" --ids 2> "$T/dec.err")
is "encoding with the trained tokenizer gives HF's ids" "$got" "$(cat "$FIX/ids.txt")"
[ "$got" = "$(cat "$FIX/ids.txt")" ] || cat "$T/enc.err" "$T/dec.err" | sed 's/^/    # /' | head -n 5

# ---------------------------------------------------------------- options
train --no-special -V 300 "$CORPUS" -o "$T/nosp.json"
is "--no-special: no added tokens, bytes from id 0" \
   "$(grep -c -e '"<|endoftext|>"' -e '"!": 0,' "$T/nosp.json")" "1"
train -V 300 --special '<|endoftext|>' --special '<pad>' "$CORPUS" -o "$T/sp2.json"
is "--special twice: ids 0 and 1" "$(grep -c -e '"<|endoftext|>": 0,' -e '"<pad>": 1,' "$T/sp2.json")" "2"
expect_exit 0 "the corpus runs out of pairs before --vocab-size 4096" "dllm-tok train '$CORPUS' -o '$T/small.json'"
expect_err "warning: vocab 580 < --vocab-size 4096" "... a warning says where it stopped"
is "special-token text is cut out of the training text (no '<|' merges)" "$(grep -c '<|' "$T/small.json")" "2"
expect_exit 0 "--min-frequency 40 stops early" "dllm-tok train --min-frequency 40 '$CORPUS' -o '$T/mf.json'"
expect_err "vocab 265 " "... after 8 merges"
printf 'ab\377cd ab\n' > "$T/bad.txt"
expect_exit 0 "invalid UTF-8 is replaced, not fatal" "dllm-tok train -V 300 '$T/bad.txt' -o '$T/bad.json'"
expect_err "1 invalid UTF-8 bytes replaced" "... with a warning"
check "--help" "dllm-tok train --help | grep -q -- --vocab-size"

# ---------------------------------------------------------------- errors
expect_exit 2 "vocab size below 256 + specials: usage error" "dllm-tok train -V 256 '$CORPUS' -o '$T/e2.json'"
expect_err "vocab-size" "... names the option"
no_file "$T/e2.json" "... and writes nothing"
expect_exit 2 "unknown option: usage error" "dllm-tok train --nope '$CORPUS'"
expect_exit 3 "missing input: I/O error" "dllm-tok train '$T/missing.txt' -o '$T/e3.json'"
expect_err "missing.txt" "... names the file"
no_file "$T/e3.json" "... and writes nothing"
: > "$T/empty.txt"
expect_exit 1 "empty corpus: data error" "dllm-tok train '$T/empty.txt' -o '$T/e1.json'"
no_file "$T/e1.json" "... and writes nothing"
expect_exit 3 "unwritable output: I/O error" "dllm-tok train '$CORPUS' -o '$T/no/such/dir/tok.json'"
