#!/bin/sh
# tests/cli/score.sh — dllm-score on token streams (the estimators themselves
# are checked against references in tests/unit/test_score.c): the `scores`
# stream (keys, carried keys, header), the summary (stderr and --summary
# JSON: nats/token = sum nll / sum tokens, bits, perplexity), --causal exact
# (se 0, n-1 tokens per record, the same with --mc 1 and 64), conditional
# records (n_prompt), determinism under --seed, --batch (fp32 rounding),
# --shard slices concatenated = one run, rows with n_pad, and the errors:
# no -m, --mc 0, a checkpoint without a mask token, a wrong stream kind, a
# record longer than the model, --task with streams; no output left behind.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BIN/dllm-score" ]; then skip "score" "bin/dllm-score is not built"; exit 0; fi
# one thread: the model is tiny, and OpenMP barriers on a busy 2-core CI box cost more than they give
OMP_NUM_THREADS=1; export OMP_NUM_THREADS
S=$T/s
check "convert stories260K (dllm-train --steps 0)" \
    "dllm-train -q --init '$DATA/stories260K/stories260K.bin' -o '$S' --steps 0"
head -n 12 "$DATA/tinystories/tinystories_val.txt" | grep -v '^$' | head -n 5 > "$T/five.txt"
check "tokenize 5 lines" "dllm-tok -q -t '$S' --bos --lines '$T/five.txt' -o '$T/tok.msgpack'"

# ---------------------------------------------------------------- ELBO
check "ELBO --mc 8 with --summary" \
    "dllm-score -m '$S' --mc 8 --seed 1 '$T/tok.msgpack' -o '$T/e.msgpack' --summary '$T/e.json'"
expect_err "5 records .*nats/token .*perplexity <= " "summary line on stderr"
dllm-cat "$T/e.msgpack" > "$T/e.jsonl"
is "header kind scores" "$(head -n 1 "$T/e.jsonl" | grep -o '"kind":"scores"')" '"kind":"scores"'
is "header records mc" "$(head -n 1 "$T/e.jsonl" | grep -o '"mc":8')" '"mc":8'
is "5 score records" "$(dllm-cat --count "$T/e.msgpack")" 5
is "records have nll, n_tokens, se" "$(sed -n 2p "$T/e.jsonl" | grep -c '"nll":.*"n_tokens":.*"se":')" 1
# nats_per_token == sum nll / sum tokens, bits = nats / ln 2, ppl = exp(nats)
sums=$(tail -n +2 "$T/e.jsonl" | sed 's/.*"nll":\([^,]*\),"n_tokens":\([0-9]*\).*/\1 \2/' | awk '{ n += $1; t += $2 } END { printf "%.6f %d", n / t, t }')
js=$(tr -d ' \n' < "$T/e.json")
npt=$(echo "$js" | sed 's/.*"nats_per_token":\([^,}]*\).*/\1/')
bpt=$(echo "$js" | sed 's/.*"bits_per_token":\([^,}]*\).*/\1/')
ppl=$(echo "$js" | sed 's/.*"perplexity":\([^,}]*\).*/\1/')
tok=$(echo "$js" | sed 's/.*"tokens":\([^,}]*\).*/\1/')
is "summary nats/token = sum nll / sum tokens" "$(awk -v a="$npt" 'BEGIN { printf "%.6f", a }') $tok" "$sums"
is "summary bits and perplexity" "$(awk -v a="$npt" -v b="$bpt" -v p="$ppl" 'function rel(x, y) { return x > y ? (x - y) / y : (y - x) / y } BEGIN { print (rel(b, a / log(2)) < 1e-7 && rel(p, exp(a)) < 1e-7) }')" 1
is "summary has se, records" "$(echo "$js" | grep -c '"se_nats_per_token":[0-9].*"seconds"')$(echo "$js" | grep -o '"records":5')" '1"records":5'
check "same seed: identical output" \
    "dllm-score -q -m '$S' --mc 8 --seed 1 '$T/tok.msgpack' -o '$T/e2.msgpack' && cmp '$T/e.msgpack' '$T/e2.msgpack' 2>/dev/null || \
     [ \"\$(dllm-cat --no-header '$T/e.msgpack')\" = \"\$(dllm-cat --no-header '$T/e2.msgpack')\" ]"
dllm-score -q -m "$S" --mc 8 --seed 2 "$T/tok.msgpack" -o "$T/e3.msgpack"
if [ "$(dllm-cat --no-header "$T/e.msgpack")" != "$(dllm-cat --no-header "$T/e3.msgpack")" ]; then ok "another seed: other draws"; else notok "another seed: other draws"; fi
dllm-score -q -m "$S" --mc 8 --batch 3 --seed 1 "$T/tok.msgpack" -o "$T/e4.msgpack"
nlls() { dllm-cat --no-header "$1" | sed 's/.*"nll":\([^,]*\),.*/\1/'; }
nlls "$T/e.msgpack" > "$T/n1"; nlls "$T/e4.msgpack" > "$T/n4"
d=$(paste -d' ' "$T/n1" "$T/n4" | awk '{ r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > m) m = r } END { print (NR == 5 && m < 1e-5) }')
is "--batch 3 = one batch (up to fp32 rounding)" "$d" 1
check "--shard 0/2 and 1/2" \
    "dllm-score -q -m '$S' --mc 8 --seed 1 --shard 0/2 '$T/tok.msgpack' -o '$T/s0.msgpack' && \
     dllm-score -q -m '$S' --mc 8 --seed 1 --shard 1/2 '$T/tok.msgpack' -o '$T/s1.msgpack'"
is "shards concatenated = one run" "$(dllm-cat --no-header "$T/s0.msgpack" "$T/s1.msgpack" | md5sum)" \
    "$(dllm-cat --no-header "$T/e.msgpack" | md5sum)"

# ---------------------------------------------------------------- causal
check "--causal with --mc 1" "dllm-score -m '$S' --causal --mc 1 '$T/tok.msgpack' -o '$T/c1.msgpack'"
expect_err "perplexity = .*exact" "causal summary says exact"
check "--causal with --mc 64" "dllm-score -q -m '$S' --causal --mc 64 '$T/tok.msgpack' -o '$T/c2.msgpack'"
is "--causal ignores --mc" "$(dllm-cat --no-header "$T/c1.msgpack" | md5sum)" "$(dllm-cat --no-header "$T/c2.msgpack" | md5sum)"
dllm-cat --no-header "$T/c1.msgpack" > "$T/c1.jsonl"
is "--causal: se 0" "$(grep -c '"se":0' "$T/c1.jsonl")" 5
ntok=$(dllm-cat --no-header "$T/tok.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/' | awk -F, '{ printf "%d ", NF - 1 }')
is "--causal: n_tokens = ids - 1" "$(sed 's/.*"n_tokens":\([0-9]*\).*/\1/' "$T/c1.jsonl" | tr '\n' ' ')" "$ntok"
is "diffusion ELBO bound above the causal NLL here (converted AR model)" \
    "$(nlls "$T/c1.msgpack" | paste -d' ' - "$T/n1" | awk '$2 <= $1 { bad++ } END { print NR, bad + 0 }')" "5 0"

# ---------------------------------------------------------------- conditional
dllm-cat --no-header "$T/tok.msgpack" | head -n 2 | \
    sed 's/^{/{"n_prompt":6,"id":"q/; s/"id":"q/&1",/' > "$T/cond.body"
{ dllm-cat "$T/tok.msgpack" | head -n 1; cat "$T/cond.body"; } > "$T/cond.jsonl"
check "records with n_prompt (conditional)" \
    "dllm-cat --from-json '$T/cond.jsonl' -o '$T/cond.msgpack' && dllm-score -m '$S' --mc 16 '$T/cond.msgpack' -o '$T/cs.msgpack'"
expect_err "2 records \\(2 conditional\\)" "summary counts conditional records"
dllm-cat --no-header "$T/cs.msgpack" > "$T/cs.jsonl"
is "conditional: n_prompt and id carried" "$(grep -c '"n_prompt":6.*"id":"q1"' "$T/cs.jsonl")" 2
is "conditional: n_tokens = ids - n_prompt" "$(sed 's/.*"n_tokens":\([0-9]*\).*/\1/' "$T/cs.jsonl" | tr '\n' ' ')" \
    "$(echo "$ntok" | awk '{ printf "%d %d ", $1 + 1 - 6, $2 + 1 - 6 }')"
check "conditional --cfg 1 --batch 4" "dllm-score -q -m '$S' --mc 8 --batch 4 --cfg 1 '$T/cond.msgpack' -o '$T/cs2.msgpack'"
check "conditional --causal" "dllm-score -q -m '$S' --causal '$T/cond.msgpack' -o '$T/cs3.msgpack'"

# ---------------------------------------------------------------- rows with n_pad
check "rows (dllm-pack --mode sft, EOS padding)" \
    "dllm-pack -q --mode sft -L 128 --truncate drop '$T/tok.msgpack' -o '$T/rows.msgpack' && \
     dllm-score -q -m '$S' --causal '$T/rows.msgpack' -o '$T/rs.msgpack'"
is "n_pad padding is not scored (n_tokens = 128 - n_pad - 1)" \
    "$(dllm-cat --no-header "$T/rs.msgpack" | sed 's/.*"n_tokens":\([0-9]*\).*/\1/' | tr '\n' ' ')" \
    "$(dllm-cat --no-header "$T/rows.msgpack" | sed 's/.*"n_pad":\([0-9]*\).*/\1/' | awk '{ printf "%d ", 127 - $1 }')"

# ---------------------------------------------------------------- errors
expect_exit 2 "no -m: usage error" "dllm-score '$T/tok.msgpack' -o '$T/x.msgpack'"
expect_exit 2 "--mc 0: usage error" "dllm-score -m '$S' --mc 0 '$T/tok.msgpack' -o '$T/x.msgpack'"
expect_err "[-]-mc must" "--mc 0 named"
expect_exit 2 "--task with streams: usage error" "dllm-score -m '$S' --task x.jsonl '$T/tok.msgpack'"
expect_exit 2 "--delimiter without --task: usage error" "dllm-score -m '$S' --delimiter x '$T/tok.msgpack'"
mkdir -p "$T/nomask"
cp "$S"/* "$T/nomask/"
sed 's/"mask_token_id": *[0-9]*/"mask_token_id": null/' "$S/config.json" > "$T/nomask/config.json"
expect_exit 1 "checkpoint without a mask token: data error" "dllm-score -m '$T/nomask' '$T/tok.msgpack' -o '$T/x.msgpack'"
expect_err "mask_token_id" "the message names the missing mask token"
check "... but --causal scores it" "dllm-score -q -m '$T/nomask' --causal '$T/tok.msgpack' -o '$T/x2.msgpack'"
expect_exit 1 "a masked stream: data error" \
    "dllm-pack -q -L 16 '$T/tok.msgpack' | dllm-mask -q | dllm-score -m '$S' -o '$T/x.msgpack'"
awk 'BEGIN { printf "{\"dllm\":1,\"kind\":\"tokens\"}\n{\"ids\":[1"; for (i = 0; i < 600; i++) printf ",300"; print "]}" }' > "$T/long.jsonl"
expect_exit 1 "a record longer than max_position_embeddings: data error" \
    "dllm-cat --from-json '$T/long.jsonl' | dllm-score -m '$S' --causal -o '$T/x.msgpack'"
expect_err "record 0.*512" "the message names the record and the limit"
no_file "$T/x.msgpack" "no output left after an error"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":50257}}' '{"ids":[1,2,3]}' > "$T/bigvocab.jsonl"
expect_exit 1 "input vocab larger than the model's: data error (was a use-after-free in the message)" \
    "dllm-cat --from-json '$T/bigvocab.jsonl' | dllm-score -m '$S' -o '$T/x.msgpack'"
expect_err "input vocab 50257 > the model's [0-9]+" "the message names both vocab sizes"

# ------------------------------------------------ --greedy (lm-eval's is_greedy)
# the greedy story's own continuation is greedy; a changed token is not
G=$(tr -s ' \n' ' ' < "$DATA/stories260K/expected_greedy_t0_ids.txt" | sed 's/^ //')
P=$(echo "$G" | cut -d' ' -f1-10 | tr ' ' ','); R=$(echo "$G" | cut -d' ' -f11-15 | tr ' ' ',')
printf '%s\n' '{"dllm":1,"kind":"tokens"}' "{\"ids\":[1,$P,$R],\"n_prompt\":11}" "{\"ids\":[1,$P,300,$R],\"n_prompt\":11}" \
    > "$T/greedy.jsonl"
dllm-cat --from-json "$T/greedy.jsonl" | dllm-score -q -m "$S" --causal --greedy | dllm-cat -n > "$T/greedy.out"
is "--greedy: the model's own greedy continuation is greedy, a changed one is not" \
   "$(sed -n 's/.*"greedy":\([a-z]*\).*/\1/p' "$T/greedy.out" | tr '\n' ' ')" "true false "
is "without --greedy no greedy key" \
   "$(dllm-cat --from-json "$T/greedy.jsonl" | dllm-score -q -m "$S" --causal | dllm-cat -n | grep -c greedy)" 0

# ------------------------------------------------ a `samples` stream (generative perplexity)
# dllm-sample's records carry n_prompt: scored as -log p(response | prompt), the same as a tokens stream of them
dllm-sample -q -m "$S" --causal -p "Once upon a time" -n 12 -t 0 -o "$T/gen.msgpack" 2> "$ERR" || notok "sample for scoring" "$(head -n 3 "$ERR")"
dllm-score -q -m "$S" --causal "$T/gen.msgpack" | dllm-cat --no-header > "$T/gen-samples.out"
dllm-cat --no-header "$T/gen.msgpack" | sed 's/,"nfe".*}/}/' > "$T/gen.jsonl"
{ echo '{"dllm":1,"kind":"tokens"}'; cat "$T/gen.jsonl"; } | dllm-cat --from-json | dllm-score -q -m "$S" --causal |
    dllm-cat --no-header > "$T/gen-tokens.out"
is "a samples stream scores like the same ids and n_prompt as tokens" \
   "$(sed 's/,"nfe".*}/}/' "$T/gen-samples.out")" "$(cat "$T/gen-tokens.out")"
check "its nll is finite and over the 12 generated tokens" "grep -q '\"n_tokens\":12' '$T/gen-samples.out'"
