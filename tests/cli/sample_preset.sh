#!/bin/sh
# tests/cli/sample_preset.sh — dllm-sample --preset NAME (sample/preset.c): every
# preset sets exactly the options its --help lines list (read back from -v's
# "sampling:" line, which prints the options in effect), samples the same bytes as
# those options typed out, and is overridden by an explicit flag placed before or
# after it; an unknown preset is a usage error naming the known ones.
# Model: tests/data/sample/ckpt (hash weights, vocab 300, mask 299, eos 1).
. "$(dirname "$0")/lib.sh"
CK=$ROOT/tests/data/sample/ckpt
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9],"id":"a"}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"

dllm-sample --help > "$T/help.txt"
for p in llada dream fast-dllm; do
    # the preset's "--opt value" lines in --help (two words after 12 spaces), up to the next preset
    awk -v p="$p" '/^  [a-z]/ { on = ($1 == p) } on && /^            --/ { print $1, $2 }' "$T/help.txt" > "$T/want.$p"
    if [ ! -s "$T/want.$p" ]; then notok "--help lists what --preset $p sets" "no lines"; continue; fi
    ok "--help lists what --preset $p sets ($(wc -l < "$T/want.$p") options)"
    # a short canvas keeps the test fast: the preset's gen-length/steps are checked from
    # -v without sampling (an unknown input is an error after the line is printed)
    dllm-sample -v -m "$CK" --preset $p "$T/missing.msgpack" 2> "$T/v.$p" > /dev/null
    line=$(grep 'sampling:' "$T/v.$p")
    bad=""
    while read -r o v; do
        case " $line " in *" $o $v "*) ;; *) bad="$bad $o $v;" ;; esac
    done < "$T/want.$p"
    is "--preset $p sets every option it lists" "$bad" ""
done

# the preset samples as its options typed out (shortened canvas: -n/-s override both)
for p in llada dream fast-dllm; do
    args=$(tr '\n' ' ' < "$T/want.$p")
    check "--preset $p -n 8 -s 8 runs" "dllm-sample -q -m $CK -j 1 --seed 4 --preset $p -n 8 -s 8 --block-length 8 $T/p.msgpack -o $T/a.$p"
    check "the same options typed out" "dllm-sample -q -m $CK -j 1 --seed 4 $args -n 8 -s 8 --block-length 8 $T/p.msgpack -o $T/b.$p"
    # records only: the header's history holds the command line
    dllm-cat "$T/a.$p" | grep -v '"dllm"' > "$T/a.$p.jsonl"; dllm-cat "$T/b.$p" | grep -v '"dllm"' > "$T/b.$p.jsonl"
    check "--preset $p wrote a sample" "test -s $T/a.$p.jsonl"
    same "$T/a.$p.jsonl" "$T/b.$p.jsonl" "--preset $p == its options typed out (same samples)"
done

# explicit flags override, before or after
dllm-sample -v -m "$CK" --preset llada -n 16 -t 0.5 "$T/missing.msgpack" 2> "$ERR" > /dev/null
expect_err "sampling: --preset llada --gen-length 16 --steps 128 --block-length 32 --temperature 0.5 " \
    "a flag after --preset overrides it (the rest stays the preset's)"
dllm-sample -v -m "$CK" --block-length 64 --preset fast-dllm "$T/missing.msgpack" 2> "$ERR" > /dev/null
expect_err "sampling: --preset fast-dllm --gen-length 256 --steps 8 --block-length 64 .*--threshold 0.9" \
    "a flag before --preset overrides it too"
dllm-sample -v -m "$CK" --preset dream --remask low-confidence --preset dream "$T/missing.msgpack" 2> "$ERR" > /dev/null
expect_err "sampling: .* --remask low-confidence " "a repeated --preset does not undo an explicit flag"

expect_exit 2 "an unknown preset is a usage error" "dllm-sample -m $CK --preset gpt $T/p.msgpack"
expect_err "error: --preset 'gpt': unknown \(known: llada, dream, fast-dllm\)" "  ... naming the known presets"
expect_exit 2 "a preset's options are checked like typed ones" "dllm-sample -m $CK --preset llada -n 100 $T/p.msgpack"
expect_err "not a multiple of --block-length 32" "  ... (gen-length 100 vs the preset's block-length 32)"

# Dream's algs name their own confidence and schedule
expect_exit 2 "--alg entropy with --remask random is a usage error" "dllm-sample -m $CK --alg entropy --remask random $T/p.msgpack"
expect_err "remask random is for --alg llada" "  ... naming the conflict"
expect_exit 2 "--alg maskgit_plus with --threshold is a usage error" "dllm-sample -m $CK --alg maskgit_plus --threshold 0.9 $T/p.msgpack"
expect_exit 2 "an unknown --alg names the known ones" "dllm-sample -m $CK --alg foo $T/p.msgpack"
expect_err "expected llada, maskgit_plus, topk_margin, entropy or origin" "  ... listed"
