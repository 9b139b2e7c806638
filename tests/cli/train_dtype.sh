#!/bin/sh
# tests/cli/train_dtype.sh — checkpoint storage dtypes (issue 10 point 2):
# --config saves f32 by default, --dtype bf16 / f16 store the weights so
# (config.json torch_dtype says which), --init keeps its source's dtype,
# a bf16 run keeps fp32 masters in optimizer.safetensors so --resume is
# bit-exact, and sample / score run a bf16 checkpoint (bf16 weights in
# memory) with the same ids as its f32 upcast at temperature 0.
# Data: the toy stream of train.sh (vocab 64, mask 63), dim-32 2-layer model.
. "$(dirname "$0")/lib.sh"

losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }
# dtypes FILE: the distinct "dtype" values of a safetensors header
dtypes() { head -c 100000 "$1" | tr ',{' '\n\n' | sed -n 's/.*"dtype":"\([A-Z0-9]*\)".*/\1/p' | sort -u | tr '\n' ' '; }

tiny_train_data 200
tiny32_config "$T/c.json" -e 's/"hidden_size"/"vocab_size": 64, "mask_token_id": 63, "eos_token_id": 1, "hidden_size"/'

# ---------------------------------------------------------------- what is stored
check "--config --steps 0: f32 by default" "dllm-train -q --config '$T/c.json' -o '$T/f32' --steps 0"
is "  model.safetensors is F32" "$(dtypes "$T/f32/model.safetensors")" "F32 "
check "--dtype bf16" "dllm-train -q --config '$T/c.json' -o '$T/b' --steps 0 --dtype bf16"
is "  model.safetensors is BF16" "$(dtypes "$T/b/model.safetensors")" "BF16 "
check "  config.json says bfloat16" "grep -q '\"torch_dtype\": *\"bfloat16\"' '$T/b/config.json'"
check "--dtype f16" "dllm-train -q --config '$T/c.json' -o '$T/h' --steps 0 --dtype f16"
is "  model.safetensors is F16" "$(dtypes "$T/h/model.safetensors")" "F16 "
check "--init of a bf16 checkpoint" "dllm-train -q --init '$T/b' -o '$T/b2' --steps 0"
is "  stays bf16" "$(dtypes "$T/b2/model.safetensors")" "BF16 "
same "$T/b/model.safetensors" "$T/b2/model.safetensors" "  bf16 round trip (save, load, save): identical bytes"
check "--init of an f16 checkpoint stays f16" "dllm-train -q --init '$T/h' -o '$T/h2' --steps 0 && test \"\$(head -c 4000 '$T/h2/model.safetensors' | grep -c F16)\" = 1"
check "--init bf16 --dtype f32 upcasts" "dllm-train -q --init '$T/b' -o '$T/bf' --steps 0 --dtype f32"
is "  model.safetensors is F32" "$(dtypes "$T/bf/model.safetensors")" "F32 "
expect_exit 2 "--dtype f64 is a usage error" "dllm-train --config '$T/c.json' -o '$T/x' --steps 0 --dtype f64"
expect_exit 2 "--bf16-save with --dtype f16 is a usage error" "dllm-train --config '$T/c.json' -o '$T/x' --steps 0 --dtype f16 --bf16-save"

# ---------------------------------------------------------------- bf16 resume: bit for bit
A="--config $T/c.json $T/train.msgpack --batch 4 --lr 1e-2 --warmup 2 --seed 3 --dtype bf16"
check "bf16: 8 steps in one run, saving at 4 (--keep-saves)" \
    "dllm-train -q $A -o '$T/one' --steps 8 --save-every 4 --keep-saves --metrics '$T/one.jsonl'"
is "  model.safetensors is BF16" "$(dtypes "$T/one-step4/model.safetensors")" "BF16 "
check "  optimizer.safetensors holds the fp32 masters" \
    "head -c 100000 '$T/one-step4/optimizer.safetensors' | grep -q '\"master.model.embed_tokens.weight\":{\"dtype\":\"F32\"'"
check "bf16: --resume from step 4 for 4 more" \
    "dllm-train -q --resume '$T/one-step4' '$T/train.msgpack' -o '$T/two' --steps 8 --metrics '$T/two.jsonl'"
losses "$T/one.jsonl" | awk '$1 > 4' > "$T/one.l"
losses "$T/two.jsonl" > "$T/two.l"
is "  resumed run has steps 5..8" "$(awk '{ printf "%s ", $1 }' "$T/two.l")" "5 6 7 8 "
same "$T/one.l" "$T/two.l" "  resumed losses identical bit for bit"
same "$T/one/model.safetensors" "$T/two/model.safetensors" "  resumed final weights identical"
same "$T/one/optimizer.safetensors" "$T/two/optimizer.safetensors" "  resumed masters and moments identical"
is "  --resume keeps bf16" "$(dtypes "$T/two/model.safetensors")" "BF16 "

# ---------------------------------------------------------------- inference on bf16 weights
check "the bf16 checkpoint upcast to f32" "dllm-train -q --init '$T/one' -o '$T/one32' --steps 0 --dtype f32"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":64,"mask_id":63,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9]}' '{"ids":[10,11,12]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
check "sample from bf16 weights" "dllm-sample -q -m '$T/one' -n 8 --steps 4 -t 0 '$T/p.msgpack' -o '$T/sb.msgpack'"
check "sample from the f32 upcast" "dllm-sample -q -m '$T/one32' -n 8 --steps 4 -t 0 '$T/p.msgpack' -o '$T/sf.msgpack'"
dllm-cat "$T/sb.msgpack" | tail -n +2 > "$T/sb.jsonl"; dllm-cat "$T/sf.msgpack" | tail -n +2 > "$T/sf.jsonl"
check "  samples made" "test -s '$T/sb.jsonl'"
same "$T/sb.jsonl" "$T/sf.jsonl" "  same samples at temperature 0"
if [ -x "$BIN/dllm-score" ]; then
    check "score with bf16 weights" "dllm-score -q -m '$T/one' --mc 4 --seed 1 '$T/tok.msgpack' --summary '$T/eb.json' -o '$T/eb.msgpack'"
    check "score with the f32 upcast" "dllm-score -q -m '$T/one32' --mc 4 --seed 1 '$T/tok.msgpack' --summary '$T/ef.json' -o '$T/ef.msgpack'"
    got=$(dllm-cat "$T/eb.msgpack" | sed -n 's/.*"nll":\([-0-9.e+]*\).*/\1/p' > "$T/eb.t"; dllm-cat "$T/ef.msgpack" | sed -n 's/.*"nll":\([-0-9.e+]*\).*/\1/p' > "$T/ef.t"
          paste "$T/eb.t" "$T/ef.t" | awk '{ d = $1 - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-4 * (1 + s)) bad++; n++ }
              END { print (n > 0 && !bad) ? "ok" : "bad " bad "/" n }')
    is "  per-document NLL within 1e-4 relative of the f32 path" "$got" ok
fi
