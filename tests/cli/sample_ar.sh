#!/bin/sh
# tests/cli/sample_ar.sh — dllm-sample's autoregressive path (sample/ar.c,
# KV cache): the converted llama2.c stories260K sampled greedily from BOS
# prints llama2.c's story (share/data/stories260K/expected_greedy_t0.txt, and
# the ids of expected_greedy_t0_ids.txt); temperature / top-k / top-p are
# deterministic under --seed and reduce to greedy at their limits; a batch
# of prompts with different lengths equals each prompt run alone (greedy,
# and seeded sampling whatever --batch); --noise FILE takes exactly one
# uniform per running row per token in row order; stop rules (BOS not kept,
# EOS kept, --keep-eos), --suppress, --trace, objective "causal", errors.
#
# Text rule: run.c prints the story without the first leading space and
# without BOS; `dllm-tok -d --skip-special` gives exactly that (dropping BOS
# leaves the story's first token first, whose leading space the decoder
# strips), plus the newline every decoded record ends with.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BIN/dllm-sample" ]; then skip "sample --causal" "bin/dllm-sample is not built"; exit 0; fi
# gen FILE: the generated ids of every record, one record per line
gen() { dllm-tok -q -d -t "$S" --ids "$1" | sed 's/.*| *//'; }
# f64 V...: raw little-endian float64 uniforms (values with a 2-byte pattern)
f64() {
    for v; do
        case $v in
            .0625) printf '\000\000\000\000\000\000\260\077' ;;  .125) printf '\000\000\000\000\000\000\300\077' ;;
            .25) printf '\000\000\000\000\000\000\320\077' ;;    .5) printf '\000\000\000\000\000\000\340\077' ;;
            .75) printf '\000\000\000\000\000\000\350\077' ;;    .875) printf '\000\000\000\000\000\000\354\077' ;;
            .9375) printf '\000\000\000\000\000\000\356\077' ;;
        esac
    done
}
S260=$DATA/stories260K
S=$T/s
check "convert stories260K (dllm-train --steps 0)" "dllm-train -q --init '$S260/stories260K.bin' -o '$S' --steps 0"

# ---------------------------------------------------------------- greedy story
check "greedy from BOS alone (--causal --bos -p '')" \
    "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 400 -o '$T/g.msgpack'"
dllm-tok -q -d -t "$S" --skip-special "$T/g.msgpack" > "$T/g.txt"
same "$T/g.txt" "$S260/expected_greedy_t0.txt" "decoded text == llama2.c's greedy story (expected_greedy_t0.txt)"
gen "$T/g.msgpack" > "$T/g.ids"
echo $(cat "$S260/expected_greedy_t0_ids.txt") > "$T/want.ids"
same "$T/g.ids" "$T/want.ids" "generated ids == expected_greedy_t0_ids.txt (345 ids, the stopping BOS not kept)"
is "record: n_prompt 1 (BOS), nfe 346 (the last forward emitted BOS)" \
   "$(dllm-cat --no-header "$T/g.msgpack" | sed 's/.*"n_prompt":\([0-9]*\).*"nfe":\([0-9]*\).*/\1 \2/')" "1 346"
check "the same through a pipe: dllm-sample | dllm-tok -d" \
    "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 400 | dllm-tok -q -d -t '$S/tokenizer.json' --skip-special > '$T/g2.txt'"
same "$T/g2.txt" "$S260/expected_greedy_t0.txt" "piped text == expected_greedy_t0.txt"

# a checkpoint whose objective is "causal" needs no --causal
mkdir -p "$T/sc" && cp "$S"/* "$T/sc/"
sed 's/"objective": "diffusion"/"objective": "causal"/' "$S/config.json" > "$T/sc/config.json"
check "objective causal: sampled left to right without --causal" \
    "dllm-sample -q -m '$T/sc' --bos -p '' --gen-length 400 -o '$T/gc.msgpack'"
is "objective causal gives the same ids" "$(gen "$T/gc.msgpack")" "$(cat "$T/g.ids")"

# ---------------------------------------------------------------- stops, suppress, trace
check "--keep-eos: no stop token, exactly --gen-length tokens" \
    "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 360 --keep-eos -o '$T/k.msgpack'"
is "--keep-eos: 360 generated, the first 345 the story" \
   "$(gen "$T/k.msgpack" | wc -w | tr -d ' ') $(gen "$T/k.msgpack" | cut -d' ' -f1-345)" "360 $(cat "$T/g.ids")"
is "the 346th token is BOS (what stopped the default run)" "$(gen "$T/k.msgpack" | cut -d' ' -f346)" 1
# EOS = '.' (426) in a copy of the config: generation stops at the first '.', kept
mkdir -p "$T/se" && cp "$S"/* "$T/se/"
sed 's/"eos_token_id": 2/"eos_token_id": 426/' "$S/config.json" > "$T/se/config.json"
check "EOS stop" "dllm-sample -q -m '$T/se' --causal --bos -p '' --gen-length 400 -o '$T/e.msgpack'"
is "stops after the first EOS, which is kept" "$(gen "$T/e.msgpack")" "$(cut -d' ' -f1-15 "$T/g.ids")"
check "--gen-length 10 cuts the story" "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 10 -o '$T/c.msgpack'"
is "10 tokens, the story's first 10" "$(gen "$T/c.msgpack")" "$(cut -d' ' -f1-10 "$T/g.ids")"
check "--suppress 403 (the story's first token)" \
    "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 10 --suppress 403,2 -o '$T/x.msgpack'"
first=$(gen "$T/x.msgpack" | cut -d' ' -f1)
if [ -n "$first" ] && [ "$first" != 403 ]; then ok "--suppress: another first token ($first)"; else notok "--suppress" "first token '$first'"; fi
check "--trace" "dllm-sample -q -m '$S' --causal --bos -p '' --gen-length 12 --trace '$T/tr.jsonl' -o /dev/null"
is "--trace: one line per generated token" "$(wc -l < "$T/tr.jsonl" | tr -d ' ')" 12
is "--trace: first line is token 403 at canvas position 1, step 0, nfe 1, block 0" \
   "$(head -n 1 "$T/tr.jsonl" | sed 's/\(\[\[1,403,\)[0-9.e-]*\]\]/\1C]]/')" '{"row":0,"step":0,"nfe":1,"block":0,"committed":[[1,403,C]]}'

# ---------------------------------------------------------------- sampling determinism
smp() { dllm-sample -q -m "$S" --causal --bos -p 'Once upon a time' --gen-length 48 "$@"; }
for cfg in "--temperature 0.8" "--temperature 1 --top-k 10" "--temperature 1.2 --top-p 0.9" \
           "--temperature 1.5 --top-k 20 --top-p 0.8"; do
    smp $cfg --seed 3 -o "$T/a.msgpack" 2> "$ERR"
    smp $cfg --seed 3 -o "$T/b.msgpack" 2>> "$ERR"
    smp $cfg --seed 4 -o "$T/c.msgpack" 2>> "$ERR"
    a=$(gen "$T/a.msgpack"); b=$(gen "$T/b.msgpack"); c=$(gen "$T/c.msgpack")
    if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "$cfg: same --seed same sample, another seed another"
    else notok "$cfg: determinism under --seed" "seed 3: '$a' / '$b', seed 4: '$c'"; fi
done
smp -o "$T/g48.msgpack" 2> "$ERR"
greedy=$(gen "$T/g48.msgpack")
is "--temperature 1 --top-k 1 == greedy" "$(smp --temperature 1 --top-k 1 --seed 9 | gen -)" "$greedy"
is "--temperature 2 --top-p 1e-9 == greedy" "$(smp --temperature 2 --top-p 1e-9 --seed 9 | gen -)" "$greedy"
if [ "$(smp --temperature 1 --seed 9 | gen -)" != "$greedy" ]; then ok "--temperature 1 differs from greedy"
else notok "--temperature 1 differs from greedy" "same ids"; fi

# ---------------------------------------------------------------- batches of different prompt lengths
printf 'Once upon a time\nLily\nThe little dog was very happy and it ran to\n' > "$T/prompts.txt"
check "prompts: dllm-tok --bos --lines" "dllm-tok -q -t '$S' --bos --lines '$T/prompts.txt' -o '$T/prompts.msgpack'"
check "greedy batch of 3 prompts (6, 2, 14 tokens)" \
    "dllm-sample -q -m '$S' --causal --gen-length 40 --batch 3 '$T/prompts.msgpack' -o '$T/b3.msgpack'"
i=0
while IFS= read -r line; do
    i=$((i + 1))
    dllm-sample -q -m "$S" --causal --bos -p "$line" --gen-length 40 -o "$T/one.msgpack" 2> "$ERR"
    is "greedy batch row $i == the prompt alone ($line)" "$(gen "$T/b3.msgpack" | sed -n "${i}p")" "$(gen "$T/one.msgpack")"
done < "$T/prompts.txt"
# rows stopping at different forwards (EOS = '.' in $T/se): the rest go on unchanged
check "EOS '.', batch of 3" "dllm-sample -q -m '$T/se' --causal --gen-length 40 --batch 3 '$T/prompts.msgpack' -o '$T/e3.msgpack'"
check "EOS '.', one at a time" "dllm-sample -q -m '$T/se' --causal --gen-length 40 --batch 1 '$T/prompts.msgpack' -o '$T/e1.msgpack'"
is "rows stopping at different times: --batch 3 == --batch 1" "$(gen "$T/e3.msgpack" | tr '\n' '/')" "$(gen "$T/e1.msgpack" | tr '\n' '/')"
is "each row ends at its first '.'" "$(gen "$T/e3.msgpack" | awk '{ n = 0; for (i = 1; i <= NF; i++) n += $i == 426; printf "%d%s", n * ($NF == 426), NR < 3 ? " " : "" }')" "1 1 1"
for cfg in "--temperature 0.9" "--temperature 1 --top-k 8 --top-p 0.95"; do
    dllm-sample -q -m "$S" --causal --gen-length 40 $cfg --seed 5 --batch 3 "$T/prompts.msgpack" -o "$T/s3.msgpack" 2> "$ERR"
    dllm-sample -q -m "$S" --causal --gen-length 40 $cfg --seed 5 --batch 1 "$T/prompts.msgpack" -o "$T/s1.msgpack" 2>> "$ERR"
    dllm-sample -q -m "$S" --causal --gen-length 40 $cfg --seed 5 --batch 2 "$T/prompts.msgpack" -o "$T/s2.msgpack" 2>> "$ERR"
    a=$(gen "$T/s3.msgpack"); b=$(gen "$T/s1.msgpack"); c=$(gen "$T/s2.msgpack")
    if [ "$(printf '%s\n' "$a" | grep -c .)" = 3 ] && [ "$a" = "$b" ] && [ "$a" = "$c" ]; then
        ok "$cfg --seed 5: --batch 3 == --batch 2 == --batch 1"
    else notok "$cfg --seed 5: --batch 3 == --batch 2 == --batch 1" "differ"; fi
done

# ---------------------------------------------------------------- --noise FILE: one uniform per row per token
NZ="dllm-sample -q -m $S --causal --temperature 1.5 --gen-length 4 --keep-eos"
f64 .5 .25 .75 .125 > "$T/n4"
f64 .5 .25 .75 > "$T/n3"
check "--noise: 4 uniforms for 4 tokens" "$NZ --bos -p 'Lily' --noise '$T/n4' -o '$T/n4.msgpack'"
expect_exit 1 "--noise: 3 uniforms for 4 tokens is a data error" "$NZ --bos -p 'Lily' --noise '$T/n3' -o '$T/n3.msgpack'"
no_file "$T/n3.msgpack" "no output left behind"
# rows interleaved per token in row order: (a0 b0 a1 b1 ...) == row 0 on (a..), row 1 on (b..)
f64 .5 .9375 .25 .0625 .75 .875 .125 .5 > "$T/nab"
f64 .5 .25 .75 .125 > "$T/na"
f64 .9375 .0625 .875 .5 > "$T/nb"
check "--noise, batch of 2" "$NZ --bos -p 'Lily' -p 'Once upon a time' --batch 2 --noise '$T/nab' -o '$T/nab.msgpack'"
check "--noise, row 0 alone" "$NZ --bos -p 'Lily' --noise '$T/na' -o '$T/na.msgpack'"
check "--noise, row 1 alone" "$NZ --bos -p 'Once upon a time' --noise '$T/nb' -o '$T/nb.msgpack'"
is "--noise order: per token, running rows in row order" "$(gen "$T/nab.msgpack" | tr '\n' '/')" \
   "$(gen "$T/na.msgpack")/$(gen "$T/nb.msgpack")/"
if [ "$(gen "$T/na.msgpack")" != "$(gen "$T/n4.msgpack")" ] || [ "$(gen "$T/nb.msgpack")" = "$(gen "$T/nab.msgpack" | head -n 1)" ]; then
    notok "--noise: the uniforms decide the tokens" "same file, different output (or different files, same output)"
else ok "--noise: the uniforms decide the tokens"; fi

# ---------------------------------------------------------------- errors
expect_exit 1 "an empty prompt without --bos is a data error" "dllm-sample -q -m '$S' --causal -p '' --gen-length 4 -o '$T/err.msgpack'"
expect_err "needs at least one token.*--bos" "the message suggests --bos"
no_file "$T/err.msgpack" "no output left behind"
