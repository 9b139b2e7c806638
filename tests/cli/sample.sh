#!/bin/sh
# tests/cli/sample.sh — dllm-sample as a program (the sampler's numbers are
# checked against the PyTorch reference by tests/unit/test_sample.c): usage
# errors, the samples stream, carried keys, Philox noise independent of
# --batch and --shard, --noise FILE too short, --keep-eos, pure infilling,
# --trace, -p TEXT = the same ids through dllm-tok.
# Model: tests/data/sample/ckpt (hash weights, vocab 300, mask 299, eos 1).
. "$(dirname "$0")/lib.sh"
CK=$ROOT/tests/data/sample/ckpt
S="dllm-sample -q -m $CK"

printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9],"id":"a"}' '{"ids":[10,11,12],"id":"b","lang":"xx"}' \
    '{"ids":[20,21,22,23,24,25,26,27],"n_prompt":4,"id":"c"}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"

check "help" "dllm-sample --help | grep -q -- --threshold"
expect_exit 2 "no -m is a usage error" "dllm-sample $T/p.msgpack"
expect_exit 2 "gen-length not a multiple of block-length" "$S -n 10 --block-length 4 $T/p.msgpack"
expect_exit 2 "steps not a multiple of the blocks" "$S -n 16 --block-length 4 --steps 6 $T/p.msgpack"
expect_exit 2 "unknown --remask" "$S --remask best $T/p.msgpack"
expect_exit 2 "origin refuses --threshold" "$S --alg origin --threshold 0.5 $T/p.msgpack"
expect_exit 2 "-p needs a tokenizer.json" "$S -p hello"
expect_err "tokenizer" "  ... and says so"
expect_exit 2 "bad --suppress" "$S --suppress 3,x $T/p.msgpack"
expect_exit 3 "missing input" "$S $T/absent.msgpack"

check "sample 3 prompts" "$S -n 8 --steps 4 -t 1 --seed 3 --trace $T/tr.jsonl $T/p.msgpack -o $T/a.msgpack"
dllm-cat "$T/a.msgpack" > "$T/a.jsonl"
check "header kind samples with the checkpoint's mask and eos" \
    "head -n 1 $T/a.jsonl | grep -q '\"kind\":\"samples\"' && head -n 1 $T/a.jsonl | grep -q '\"mask_id\":299,\"eos_id\":1'"
check "records carry n_prompt, nfe, steps and the user's keys" \
    "sed -n 3p $T/a.jsonl | grep -q '\"n_prompt\":3,\"nfe\":4,\"steps\":4,\"id\":\"b\",\"lang\":\"xx\"'"
check "n_prompt cuts the record's ids to its prompt" "sed -n 4p $T/a.jsonl | grep -q '\"ids\":\\[20,21,22,23,[0-9]'"
check "one trace line per row and step" "test \$(wc -l < $T/tr.jsonl) -eq 12 && grep -q '^{\"row\":2,\"step\":3,\"nfe\":4,\"block\":0,\"committed\":\\[\\[' $T/tr.jsonl"
check "no mask left in the samples" "! grep -q '[[,]299[],]' $T/a.jsonl"

check "--batch 1 gives the same samples (Philox noise per prompt)" \
    "$S -n 8 --steps 4 -t 1 --seed 3 --batch 1 $T/p.msgpack | dllm-cat --no-header > $T/b1.jsonl && tail -n +2 $T/a.jsonl | cmp -s - $T/b1.jsonl"
check "--shard 1/2 gives the last two samples of the full run" \
    "$S -n 8 --steps 4 -t 1 --seed 3 --shard 1/2 $T/p.msgpack | dllm-cat --no-header > $T/s1.jsonl && tail -n 2 $T/a.jsonl | cmp -s - $T/s1.jsonl"
check "another --seed gives other samples" \
    "$S -n 8 --steps 4 -t 1 --seed 4 $T/p.msgpack | dllm-cat --no-header > $T/s4.jsonl && ! tail -n +2 $T/a.jsonl | cmp -s - $T/s4.jsonl"

head -c 800 /dev/zero | tr '\0' '\077' > "$T/short.noise"   # 100 float64 of 0x3f3f..: 4.8e-4 each
expect_exit 1 "--noise file too short for temperature > 0" "$S -n 8 --steps 4 -t 1 --noise $T/short.noise $T/p.msgpack -o $T/n.msgpack"
expect_err "noise file too short" "  ... and says so"
no_file "$T/n.msgpack" "  ... and leaves no output"
check "--noise file of the right size is not needed at temperature 0" "$S -n 8 --steps 4 --noise $T/short.noise $T/p.msgpack > /dev/null"

# ids per record = n_prompt + 16 for every record (awk prints the bad ones)
full='{ t = $0; sub(/.*"ids":\[/, "", t); sub(/\].*/, "", t); p = $0; sub(/.*"n_prompt":/, "", p); sub(/,.*/, "", p)
        if (split(t, a, ",") != p + 16) bad = 1 } END { exit bad }'
check "--keep-eos keeps the whole canvas" \
    "$S -n 16 --steps 16 --keep-eos $T/p.msgpack | dllm-cat --no-header | awk '$full'"
check "--suppress 1 (eos) keeps it too" \
    "$S -n 16 --steps 16 --suppress 1 $T/p.msgpack | dllm-cat --no-header | awk '$full'"
check "without --suppress 1 (eos) the canvas may end early, never later" \
    "$S -n 16 --steps 16 $T/p.msgpack | dllm-cat --no-header | awk '{ t = \$0; sub(/.*\"ids\":\\[/, \"\", t); sub(/\\].*/, \"\", t); if (split(t, a, \",\") > 21) bad = 1 } END { exit bad }'"

printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,299,299,8,9,299,11]}' > "$T/inf.jsonl"
dllm-cat --from-json "$T/inf.jsonl" -o "$T/inf.msgpack"
check "pure infilling (-n 0) fills exactly the masks" \
    "$S -n 0 --keep-eos $T/inf.msgpack | dllm-cat --no-header | grep -q '\"ids\":\\[5,[0-9]*,[0-9]*,8,9,[0-9]*,11\\],\"n_prompt\":7,\"nfe\":3'"

# -p TEXT: a checkpoint with a small trained tokenizer (ids < 300)
mkdir -p "$T/ck"
ln -s "$CK/config.json" "$CK/model.safetensors" "$T/ck/"
printf 'the cat sat on the mat\nthe dog sat on the log\n' > "$T/corpus.txt"
dllm-tok train -q --vocab-size 270 "$T/corpus.txt" -o "$T/ck/tokenizer.json"
check "-p TEXT samples the same as the tokens stream of TEXT" \
    "$S -m $T/ck -p 'the cat' -n 8 --steps 8 | dllm-cat --no-header > $T/p1.jsonl &&
     printf 'the cat' | dllm-tok -q -t $T/ck/tokenizer.json | $S -m $T/ck -n 8 --steps 8 | dllm-cat --no-header | cmp -s - $T/p1.jsonl"
check "stats on stderr: NFE, tokens/s, ms/step" \
    "dllm-sample -m $CK -n 8 --steps 4 $T/p.msgpack -o $T/st.msgpack 2>&1 | grep -q 'NFE 12 (4.0 per prompt), .* tokens/s, .* ms/step'"

# EOS cut: a copy of the checkpoint whose eos is 231 (a token this model
# generates often); its samples = the --keep-eos canvases cut after the
# first 231 after the prompt
mkdir -p "$T/ck231"
ln -s "$CK/model.safetensors" "$T/ck231/"
sed 's/"eos_token_id": 1,/"eos_token_id": 231,/' "$CK/config.json" > "$T/ck231/config.json"
$S -n 16 --steps 16 --keep-eos $T/p.msgpack | dllm-cat --no-header > "$T/keep.jsonl"
awk '{ t = $0; sub(/.*"ids":\[/, "", t); sub(/\].*/, "", t); p = $0; sub(/.*"n_prompt":/, "", p); sub(/,.*/, "", p)
       n = split(t, a, ","); s = a[1]; cut = 0
       for (i = 2; i <= n; i++) { s = s "," a[i]; if (i > p && a[i] == 231) { cut = 1; break } }
       print s; c += cut } END { if (c == 0) print "no 231 generated: pick another token" > "/dev/stderr" }' "$T/keep.jsonl" > "$T/cut.want"
check "the samples end at the first EOS after the prompt (kept)" \
    "dllm-sample -q -m $T/ck231 -n 16 --steps 16 $T/p.msgpack | dllm-cat --no-header | sed 's/.*\"ids\":\\[//; s/\\].*//' | cmp -s - $T/cut.want"
