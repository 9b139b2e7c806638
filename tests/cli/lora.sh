#!/bin/sh
# tests/cli/lora.sh — LoRA end to end (issue 10 point 4): dllm-train --lora
# trains only the adapter (the base's bytes stay identical, the loss goes
# down, the output is a PEFT adapter directory without base weights),
# --resume of an adapter is bit-exact, --merge folds it into a normal
# checkpoint whose samples equal those of sample --adapter at temperature 0
# (and score likewise), and bad inputs: an unknown target (usage, naming
# the known ones), dropout, an adapter for another base (data error).
. "$(dirname "$0")/lib.sh"

losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }

tiny_train_data 400
tiny32_config "$T/t32.json"
check "base model: 20 full steps" \
    "dllm-train -q --config '$T/t32.json' '$T/train.msgpack' --steps 20 --batch 4 --lr 1e-2 -o '$T/base'"
cp "$T/base/model.safetensors" "$T/base.before"

# ---------------------------------------------------------------- training
check "--lora 8: 200 steps on the frozen base" \
    "dllm-train -q --init '$T/base' --lora 8 '$T/train.msgpack' --steps 200 --batch 8 --lr 1e-2 -o '$T/ad' --metrics '$T/ad.jsonl'"
for f in adapter_config.json adapter_model.safetensors optimizer.safetensors trainer_state.json; do
    check "adapter dir has $f" "test -s '$T/ad/$f'"
done
no_file "$T/ad/model.safetensors" "the base weights are not duplicated into the adapter dir"
same "$T/base/model.safetensors" "$T/base.before" "the base's bytes are unchanged"
check "adapter_config.json: PEFT LORA, r 8, alpha 8 (PEFT's default), all seven targets, base path" \
    "grep -q '\"peft_type\": \"LORA\"' '$T/ad/adapter_config.json' && grep -q '\"r\": 8,' '$T/ad/adapter_config.json' &&
     grep -q '\"lora_alpha\": 8,' '$T/ad/adapter_config.json' && grep -q '\"down_proj\"' '$T/ad/adapter_config.json' &&
     grep -q '\"base_model_name_or_path\": \".*/base\"' '$T/ad/adapter_config.json'"
check "PEFT tensor names" "grep -q 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight' '$T/ad/adapter_model.safetensors'"
got=$(losses "$T/ad.jsonl" | awk '$1 <= 20 { a += $2; na++ } $1 > 180 { b += $2; nb++ }
    END { a /= na; b /= nb; printf "%s (first 20 steps %.3f, last 20 %.3f)", (b < a - 0.2) ? "ok" : "no", a, b }')
case $got in ok*) ok "LoRA loss goes down: $got";; *) notok "LoRA loss goes down" "$got";; esac
check "--lora-targets q,v --lora-alpha 16 --lora 2" \
    "dllm-train -q --init '$T/base' --lora 2 --lora-alpha 16 --lora-targets q,v '$T/train.msgpack' --steps 2 --batch 4 -o '$T/adqv'"
check "only q_proj and v_proj adapted" \
    "grep -q '\"q_proj\"' '$T/adqv/adapter_config.json' && ! grep -q '\"k_proj\"' '$T/adqv/adapter_config.json' &&
     grep -q '\"lora_alpha\": 16' '$T/adqv/adapter_config.json'"

# ---------------------------------------------------------------- resume: bit for bit
A="--init $T/base --lora 4 $T/train.msgpack --batch 4 --lr 1e-2 --warmup 2 --seed 3"
check "8 adapter steps in one run, saving at 4 (--keep-saves)" \
    "dllm-train -q $A -o '$T/one' --steps 8 --save-every 4 --keep-saves"
check "--resume the step-4 adapter for 4 more" \
    "dllm-train -q --resume '$T/one-step4' '$T/train.msgpack' -o '$T/two' --steps 8"
same "$T/one/adapter_model.safetensors" "$T/two/adapter_model.safetensors" "resumed adapter is bit-identical"
same "$T/one/optimizer.safetensors" "$T/two/optimizer.safetensors" "resumed adapter optimizer state is bit-identical"
same "$T/base/model.safetensors" "$T/base.before" "the base's bytes are still unchanged"

# ---------------------------------------------------------------- merge = adapter
check "--merge: fold the adapter into a normal checkpoint" \
    "dllm-train -q --init '$T/base' --merge '$T/ad' --steps 0 -o '$T/merged'"
check "merged checkpoint has config.json and model.safetensors" \
    "test -s '$T/merged/config.json' && test -s '$T/merged/model.safetensors'"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":64,"mask_id":63,"eos_id":1}}' \
    '{"ids":[3,3,3]}' '{"ids":[10,10,10]}' '{"ids":[17,17,17]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
check "sample --adapter" "dllm-sample -q -m '$T/base' --adapter '$T/ad' -n 16 '$T/p.msgpack' | dllm-cat -n > '$T/s_ad.jsonl'"
check "sample the merged model" "dllm-sample -q -m '$T/merged' -n 16 '$T/p.msgpack' | dllm-cat -n > '$T/s_m.jsonl'"
check "sample the base" "dllm-sample -q -m '$T/base' -n 16 '$T/p.msgpack' | dllm-cat -n > '$T/s_b.jsonl'"
same "$T/s_ad.jsonl" "$T/s_m.jsonl" "merged model samples the same ids as base + adapter (temperature 0)"
check "the adapter changes the samples" "! cmp -s '$T/s_ad.jsonl' '$T/s_b.jsonl'"
check "score --adapter" "dllm-score -q -m '$T/base' --adapter '$T/ad' --mc 4 '$T/rows.msgpack' | dllm-cat -n > '$T/c_ad.jsonl'"
check "score the merged model" "dllm-score -q -m '$T/merged' --mc 4 '$T/rows.msgpack' | dllm-cat -n > '$T/c_m.jsonl'"
same "$T/c_ad.jsonl" "$T/c_m.jsonl" "merged model scores the same as base + adapter"

# ---------------------------------------------------------------- bad input
expect_exit 2 "--lora-targets with an unknown name" \
    "dllm-train -q --init '$T/base' --lora 4 --lora-targets q,qkv '$T/train.msgpack' --steps 1 -o '$T/bad1'"
expect_err "qkv.*known targets are q, k, v, o, gate, up, down" "the error names the known targets"
expect_exit 2 "--lora-dropout 0.1 is refused" \
    "dllm-train -q --init '$T/base' --lora 4 --lora-dropout 0.1 '$T/train.msgpack' --steps 1 -o '$T/bad2'"
expect_err "dropout" "the error names dropout"
expect_exit 2 "--lora with --config (no base directory)" \
    "dllm-train -q --config '$T/t32.json' --lora 4 '$T/train.msgpack' --steps 1 -o '$T/bad3'"
sed 's/"hidden_size": 32/"hidden_size": 48/' "$T/t32.json" > "$T/t48.json"
check "another base (dim 48)" "dllm-train -q --config '$T/t48.json' '$T/train.msgpack' --steps 0 -o '$T/base48'"
expect_exit 1 "sample --adapter on a base of another shape: data error" \
    "dllm-sample -q -m '$T/base48' --adapter '$T/ad' -n 4 '$T/p.msgpack' -o '$T/bad.msgpack'"
expect_err "shape.*another model" "the error names the mismatching tensor"
no_file "$T/bad.msgpack" "no output on a bad adapter"
expect_exit 1 "--merge an adapter of another shape: data error" \
    "dllm-train -q --init '$T/base48' --merge '$T/ad' --steps 0 -o '$T/bad4'"
no_file "$T/bad4" "no checkpoint on a bad merge"
