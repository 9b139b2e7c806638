#!/bin/sh
# tests/cli/train.sh — dllm-train end to end on a toy corpus: loss goes down,
# resume is bit-exact, gradient accumulation matches one big batch, --steps 0
# conversion, --causal, --mask-on-the-fly, SIGINT, and bad inputs (exit codes,
# nothing overwritten).  Data: a repetitive tokens stream (vocab 64, mask 63)
# made with `dllm-cat --from-json`, then dllm-pack -L 32 and dllm-mask.
# Models: share/configs/tiny.json once, a dim-32 2-layer config elsewhere.
. "$(dirname "$0")/lib.sh"

# losses FILE: "step loss" per training line of a metrics file (exact text)
losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }
# field FILE KEY: values of KEY, one per line
field() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" "$1"; }

# ---------------------------------------------------------------- data
awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
    for (k = 0; k < 400; k++) {          # documents of one repeated token (40 kinds), 20..69 long
        s = "{\"ids\":["; n = 20 + (k * 13) % 50
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7) % 40)
        print s "]}"
    }
}' > "$T/tok.jsonl"
dllm-cat --from-json "$T/tok.jsonl" -o "$T/tok.msgpack"
dllm-pack -q -L 32 --seed 1 --split valid=0.1 "$T/tok.msgpack" -o "$T/rows.msgpack"
dllm-mask -q --seed 1 --copies 4 "$T/rows.msgpack" -o "$T/train.msgpack"
dllm-mask -q --seed 2 "$T/rows.valid.msgpack" -o "$T/valid.msgpack"
check "toy masked shards made by cat | pack | mask" "test -s '$T/train.msgpack' && test -s '$T/valid.msgpack'"

sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/t32.json"
C32="--config $T/t32.json"
sed 's/"hidden_size"/"vocab_size": 64, "mask_token_id": 63, "hidden_size"/' "$T/t32.json" > "$T/t32v.json"

# ---------------------------------------------------------------- learning
check "tiny.json: 100 steps with eval and metrics" \
    "dllm-train -q --config '$ROOT/share/configs/tiny.json' '$T/train.msgpack' --valid '$T/valid.msgpack' \
     --eval-every 50 -o '$T/tiny' --steps 100 --batch 8 --lr 3e-3 --warmup 10 --metrics '$T/tiny.jsonl'"
for f in config.json model.safetensors optimizer.safetensors trainer_state.json; do
    check "checkpoint has $f" "test -s '$T/tiny/$f'"
done
is "one metrics line per step plus 3 evaluations" "$(wc -l < "$T/tiny.jsonl" | tr -d ' ')" 103
is "step lines carry loss, elbo, lr, grad_norm, tokens, tokens_per_s, elapsed" \
   "$(grep -c '"loss":.*"elbo":.*"lr":.*"grad_norm":.*"tokens":.*"tokens_per_s":.*"elapsed":' "$T/tiny.jsonl")" 100
is "eval lines carry valid_elbo and valid_ppl_bound" "$(grep -c '"valid_elbo":.*"valid_ppl_bound":' "$T/tiny.jsonl")" 3
got=$(losses "$T/tiny.jsonl" | awk '$1 <= 10 { a += $2; na++ } $1 > 90 { b += $2; nb++ }
    END { a /= na; b /= nb; printf "%s (first 10 steps %.3f, last 10 %.3f)", (b < a - 1) ? "ok" : "no", a, b }')
case $got in ok*) ok "loss goes down: $got";; *) notok "loss goes down" "$got";; esac
got=$(field "$T/tiny.jsonl" valid_elbo | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%s (%.3f -> %.3f)", b < a - 1 ? "ok" : "no", a, b }')
case $got in ok*) ok "held-out ELBO goes down: $got";; *) notok "held-out ELBO goes down" "$got";; esac
is "first ELBO is near log(64) (untrained)" \
   "$(field "$T/tiny.jsonl" valid_elbo | awk 'NR == 1 { print ($1 > 3.5 && $1 < 5) ? "ok" : $1 }')" ok

# ---------------------------------------------------------------- resume: bit for bit
A="$C32 $T/train.msgpack --batch 4 --lr 1e-2 --warmup 2 --seed 3"
check "8 steps in one run, saving at 4 (--keep-saves)" \
    "dllm-train -q $A -o '$T/one' --steps 8 --save-every 4 --keep-saves --metrics '$T/one.jsonl'"
check "--keep-saves kept the step-4 checkpoint" "grep -q '\"step\": *4,' '$T/one-step4/trainer_state.json'"
check "--resume from step 4 for 4 more" \
    "dllm-train -q --resume '$T/one-step4' '$T/train.msgpack' -o '$T/two' --steps 8 --metrics '$T/two.jsonl'"
losses "$T/one.jsonl" | awk '$1 > 4' > "$T/one.l"
losses "$T/two.jsonl" > "$T/two.l"
is "resumed run has steps 5..8" "$(awk '{ printf "%s ", $1 }' "$T/two.l")" "5 6 7 8 "
same "$T/one.l" "$T/two.l" "resumed losses identical bit for bit"
same "$T/one/model.safetensors" "$T/two/model.safetensors" "resumed final weights identical"

# ---------------------------------------------------------------- gradient accumulation
check "batch 4 in micro-batches of 2" "dllm-train -q $A -o '$T/mb2' --steps 6 --micro-batch 2 --metrics '$T/mb2.jsonl'"
check "batch 4 in one micro-batch" "dllm-train -q $A -o '$T/mb4' --steps 6 --micro-batch 4 --metrics '$T/mb4.jsonl'"
losses "$T/mb2.jsonl" > "$T/mb2.l"; losses "$T/mb4.jsonl" > "$T/mb4.l"
is "accumulated losses equal within 1e-6 relative" "$(paste "$T/mb2.l" "$T/mb4.l" | awk '
    { d = $2 - $4; if (d < 0) d = -d; if (d > 1e-6 * $4) bad++; n++ } END { print (n == 6 && !bad) ? "ok" : "bad " bad "/" n }')" ok

# ---------------------------------------------------------------- objectives and inputs
check "--causal trains (next-token on x0) and evaluates exact NLL" \
    "dllm-train -q $C32 '$T/train.msgpack' --causal --valid '$T/valid.msgpack' -o '$T/ca' --steps 3 --metrics '$T/ca.jsonl'"
is "causal eval reports valid_nll" "$(grep -c '"valid_nll":' "$T/ca.jsonl")" 2
check "causal checkpoint says objective causal" "grep -q '\"objective\": *\"causal\"' '$T/ca/config.json'"
check "--mask-on-the-fly trains on rows" \
    "dllm-train -q $C32 '$T/rows.msgpack' --mask-on-the-fly --mask-seed 5 -o '$T/otf' --steps 3 --batch 4"
check "--shift-logits trains and is recorded" \
    "dllm-train -q $C32 '$T/train.msgpack' --shift-logits -o '$T/sh' --steps 2 --batch 4 && grep -q '\"shift_logits\": *true' '$T/sh/config.json'"
check "--loss-norm masked --weight uniform --path-loss train" \
    "dllm-train -q $C32 '$T/train.msgpack' --loss-norm masked --weight uniform --path-loss -o '$T/lo' --steps 2 --batch 4"
check "stdin input and a quoted glob" \
    "dllm-train -q $C32 < '$T/train.msgpack' -o '$T/si' --steps 2 --batch 4 && dllm-train -q $C32 '$T/tr*n.msgpack' -o '$T/gl' --steps 2 --batch 4"

# ---------------------------------------------------------------- --steps 0
check "--config --steps 0 writes a model" "dllm-train -q --config '$T/t32v.json' -o '$T/zero' --steps 0 && test -s '$T/zero/model.safetensors'"
check "... which --init loads and trains" "dllm-train -q --init '$T/zero' '$T/train.msgpack' -o '$T/zero2' --steps 2 --batch 4"
S260=$DATA/stories260K/stories260K.bin
check "--init stories260K.bin --steps 0 converts (config, weights, tokenizer.json)" \
    "dllm-train -q --init '$S260' -o '$T/s260' --steps 0 && test -s '$T/s260/config.json' && test -s '$T/s260/model.safetensors' && test -s '$T/s260/tokenizer.json'"
check "the converted checkpoint loads again (--init DIR --steps 0)" "dllm-train -q --init '$T/s260' -o '$T/s260b' --steps 0"
check "the converted tokenizer.json drives dllm-tok" \
    "echo 'Once upon a time' | dllm-tok -q -t '$T/s260/tokenizer.json' | dllm-cat -c | grep -qx 1"

# ---------------------------------------------------------------- interrupt
rm -f "$T/int.jsonl"
dllm-train -q $C32 "$T/train.msgpack" -o "$T/int" --steps 1000000 --batch 4 --metrics "$T/int.jsonl" 2> "$ERR" &
pid=$!
n=0; while [ ! -s "$T/int.jsonl" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid; wait $pid; rc=$?
is "SIGINT: exit 130 after the step" "$rc" 130
expect_err "interrupted: stopped after step [0-9]+, checkpoint saved" "SIGINT message names the step"
check "SIGINT checkpoint resumes" "dllm-train -q --resume '$T/int' '$T/train.msgpack' -o '$T/int' --steps \$(sed -n 's/.*\"step\": *\\([0-9]*\\),.*/\\1/p' '$T/int/trainer_state.json' | awk '{ print \$1 + 1 }')"

# ---------------------------------------------------------------- bad inputs
mkmasked() {  # mkmasked VOCAB MASK L BADID -> masked stream on stdout (JSON -> msgpack)
    awk -v V="$1" -v M="$2" -v L="$3" -v bad="$4" 'BEGIN {
        printf "{\"dllm\":1,\"kind\":\"masked\",\"tokenizer\":{\"vocab_size\":%d,\"mask_id\":%d},\"seq_len\":%d}\n", V, M, L
        for (r = 0; r < 4; r++) {
            a = ""; b = ""
            for (i = 0; i < L; i++) { x = 3 + i % 20; if (r == 3 && i == 5 && bad) x = bad
                a = a (i ? "," : "") x; b = b (i ? "," : "") (i % 2 ? M : x) }
            print "{\"x0\":[" a "],\"xt\":[" b "],\"t\":0.5}"
        }
    }' | dllm-cat --from-json
}
mkmasked 64 63 16 0 > "$T/l16.msgpack"
mkmasked 100 99 32 0 > "$T/v100.msgpack"
mkmasked 64 63 32 70 > "$T/badid.msgpack"
expect_exit 1 "shard seq_len differs from the run's: exit 1" "dllm-train --resume '$T/one' '$T/l16.msgpack' -o '$T/x1' --steps 9"
expect_err "seq_len 16 differs" "... message names both lengths"
expect_exit 1 "shard tokenizer (vocab) differs from the model's: exit 1" "dllm-train --init '$T/zero' '$T/v100.msgpack' -o '$T/x2' --steps 1"
expect_err "vocab_size 100 differs from the model's vocab_size 64" "... message names both vocabularies"
expect_exit 1 "id >= vocab: exit 1" "dllm-train $C32 '$T/badid.msgpack' -o '$T/x3' --steps 1 --batch 4"
expect_err "badid.msgpack: record 3: .*id 70 .*>= vocab_size 64" "... message names file, record and id"
expect_exit 1 "resume dir from another config: exit 1" \
    "dllm-train --resume '$T/one' '$T/train.msgpack' --config '$ROOT/share/configs/tiny.json' -o '$T/x4' --steps 9"
expect_err "another config" "... message says so"
expect_exit 1 "resume with another --batch: exit 1" "dllm-train --resume '$T/one' '$T/train.msgpack' --batch 8 -o '$T/x5' --steps 9"
expect_err "batch = 4, this one 8" "... message names the option"
expect_exit 1 "resume from a --steps 0 checkpoint (no trainer state): exit 1" \
    "dllm-train --resume '$T/zero' '$T/train.msgpack' -o '$T/x6' --steps 2"
for x in x1 x2 x3 x4 x5 x6; do no_file "$T/$x" "no checkpoint written by the failed run $x"; done

cp -r "$T/one" "$T/keep"
expect_exit 1 "NaN loss (--lr 1e30): exit 1" "dllm-train --resume '$T/one' '$T/train.msgpack' -o '$T/one' --steps 20 --lr 1e30"
expect_err "step [0-9]+: loss is (nan|inf)" "... message names the step"
check "... the last checkpoint is intact" "for f in config.json model.safetensors optimizer.safetensors trainer_state.json; do cmp -s '$T/one/'\$f '$T/keep/'\$f || exit 1; done"
expect_exit 1 "NaN with --save-every 1 keeps the last finite step's checkpoint" \
    "dllm-train $C32 '$T/train.msgpack' -o '$T/nan' --steps 20 --lr 1e30 --save-every 1 --batch 4"
step=$(sed -n 's/.*step \([0-9]*\): loss is.*/\1/p' "$ERR")
is "... saved step is the one before the NaN" "$(sed -n 's/.*"step": *\([0-9]*\),.*/\1/p' "$T/nan/trainer_state.json" 2>/dev/null)" "$((step - 1))"

expect_exit 3 "missing input file: exit 3" "dllm-train $C32 '$T/nope.msgpack' -o '$T/x7' --steps 1"
expect_exit 3 "glob matching nothing: exit 3" "dllm-train $C32 '$T/nope*.msgpack' -o '$T/x7' --steps 1"
expect_exit 3 "missing --resume dir: exit 3" "dllm-train --resume '$T/nope' '$T/train.msgpack' -o '$T/x7' --steps 1"
expect_exit 3 "missing --config: exit 3" "dllm-train --config '$T/nope.json' '$T/train.msgpack' -o '$T/x7' --steps 1"
no_file "$T/x7" "no checkpoint written by the I/O failures"
expect_exit 2 "no -o: usage error" "dllm-train $C32 '$T/train.msgpack' --steps 1"
expect_exit 2 "--micro-batch not dividing --batch: usage error" "dllm-train $C32 '$T/train.msgpack' -o '$T/x8' --steps 1 --batch 4 --micro-batch 3"
if command -v nvidia-smi > /dev/null 2>&1; then skip "--device cuda without a GPU: exit 4" "this machine has a GPU"
else expect_exit 4 "--device cuda without a GPU: exit 4" "dllm-train $C32 '$T/train.msgpack' -o '$T/x9' --steps 1 --device cuda"; fi
expect_exit 1 "masked shard with --mask-on-the-fly: exit 1" "dllm-train $C32 '$T/train.msgpack' --mask-on-the-fly -o '$T/x10' --steps 1"
