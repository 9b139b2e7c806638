#!/bin/sh
# tests/cli/precision.sh — bf16 compute (issue 11): `dllm-train
# --precision bf16` (mixed precision: bf16 activations and products on a
# bf16 copy of the fp32 masters; weight gradients, AdamW and checkpoints
# fp32), and `dllm-sample / dllm-score --precision bf16`.
# No GPU here, so the bf16 path runs on the reference backend (--device
# ref), whose ops the CUDA ops are tested against (test_backend_ops):
#   - ref f32 equals the CPU backend (same model, same steps): losses to
#     rel 1e-5, so ref is a fair stand-in for the f32 side;
#   - bf16 against f32, 20 steps of stories260K: every step's loss within
#     rel 2e-2 and the final weights within rel L2 2e-2 per tensor (bf16
#     keeps 8 bits of mantissa: ~4e-3 per rounding, measured 9e-3 and
#     1.6e-3), and on a Qwen3 (q/k norms) and a Qwen2 (q/k/v biases)
#     config, whose extra tensors the compute copy must carry too (biases
#     get the max|d| test only: they start at 0, so after 8 Adam steps
#     they ARE the update, and the k bias's gradient is rounding noise, as
#     softmax cancels it, which Adam turns into lr-sized steps);
#   - bf16 resume is bit-exact (the copy is rounded from the masters, which
#     the checkpoint holds in fp32): 10 + 10 steps == 20 steps;
#   - the checkpoint holds fp32 weights (F32), trainer_state.json records
#     the precision and --resume keeps it;
#   - sampling at temperature 0, bf16 against f32 on the 20-step model:
#     >= 50% equal ids (measured 20/32: a barely trained model has many
#     near-ties, bf16 logits flip some, and a flip changes what follows;
#     broken logits would share ~0), and scoring (ELBO, --mc 4), the
#     precise check of the bf16 forward: every summary number within rel
#     2e-2 (measured 5e-3);
#   - the window cache in bf16 (--cache dual): >= 50% of the f32 cached
#     run's ids (tests/unit/test_kv.c and test_dcache.c check the bf16
#     caches' logits against the full bf16 forward);
#   - refusals: the CPU backend (no bf16 ops: exit 4, names the op), an
#     unknown precision (exit 2), LoRA with bf16 (exit 2).
. "$(dirname "$0")/lib.sh"
C="python3 $ROOT/tests/cuda/compare.py"
dtypes() { head -c 100000 "$1" | tr ',{' '\n\n' | sed -n 's/.*"dtype":"\([A-Z0-9]*\)".*/\1/p' | sort -u | tr '\n' ' '; }

s260_train_data 100000

check "cpu f32, 20 steps" "dllm-train -q --device cpu $A --steps 20 --metrics '$T/cpu.jsonl' -o '$T/t-cpu'"
check "ref f32, 20 steps" "dllm-train -q --device ref $A --steps 20 --metrics '$T/ref.jsonl' -o '$T/t-ref'"
check "ref bf16, 20 steps" "dllm-train -q --device ref --precision bf16 $A --steps 20 --metrics '$T/bf.jsonl' -o '$T/t-bf'"
$C losses "$T/cpu.jsonl" "$T/ref.jsonl" 1e-5 | sed 's/^\(n*o*t* *ok - \)/\1ref f32 = cpu f32: /'
$C losses "$T/ref.jsonl" "$T/bf.jsonl" 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16 vs f32: /'
$C weights "$T/t-ref/model.safetensors" "$T/t-bf/model.safetensors" 2e-2 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1bf16 vs f32: /'
is "bf16 run saves fp32 weights" "$(dtypes "$T/t-bf/model.safetensors")" "F32 "
check "trainer_state.json records precision bf16" "grep -q '\"precision\": *\"bf16\"' '$T/t-bf/trainer_state.json'"

# resume: 10 + 10 == 20, bit for bit (precision comes from the run)
check "bf16 20 steps, saved at 10" "dllm-train -q --device ref --precision bf16 $A --steps 20 --save-every 10 --keep-saves -o '$T/r1' --metrics '$T/r1.jsonl'"
check "bf16 --resume at 10 (precision from the run)" "dllm-train -q --device ref --resume '$T/r1-step10' '$T/train.msgpack' --steps 20 -o '$T/r2' --metrics '$T/r2.jsonl'"
same "$T/r1/model.safetensors" "$T/r2/model.safetensors" "bf16 resume: weights bit-exact against the uninterrupted run"
is "bf16 resume: the last 10 losses bit-exact" "$(sed 's/"tokens_per_s".*//' "$T/r1.jsonl" | grep '"loss"' | tail -n 10)" \
    "$(sed 's/"tokens_per_s".*//' "$T/r2.jsonl" | grep '"loss"')"
same "$T/t-bf/model.safetensors" "$T/r1/model.safetensors" "bf16 runs are deterministic (same 20 steps twice)"

# sampling and scoring in bf16 against f32 (the f32-trained model)
for p in f32 bf16; do
    dllm-sample -q --device ref --precision $p -m "$T/t-ref" -p "Once upon a time" --gen-length 32 --steps 32 \
        --block-length 16 -o "$T/s-$p.msgpack" 2> "$ERR" && dllm-cat "$T/s-$p.msgpack" > "$T/s-$p.txt" ||
        notok "sample $p" "$(head -n 2 "$ERR")"
    dllm-score -q --device ref --precision $p -m "$T/t-ref" --mc 4 --seed 1 "$T/rows.msgpack" -o "$T/e-$p.msgpack" \
        --summary "$T/e-$p.json" 2> "$ERR" || notok "score $p" "$(head -n 2 "$ERR")"
done
$C ids "$T/s-f32.txt" "$T/s-bf16.txt" 0.5 | sed 's/^\(n*o*t* *ok - \)/\1sample bf16 vs f32: /'
$C summary "$T/e-f32.json" "$T/e-bf16.json" 2e-2 | sed 's/^\(n*o*t* *ok - \)/\1score bf16 vs f32: /'
# the window cache in bf16 (its keys / values, activations and head in bf16): against the f32 cached run
for p in f32 bf16; do
    dllm-sample -q --device ref --precision $p -m "$T/t-ref" -p "Once upon a time" --gen-length 32 --steps 32 \
        --block-length 16 --cache dual -o "$T/sc-$p.msgpack" 2> "$ERR" && dllm-cat "$T/sc-$p.msgpack" > "$T/sc-$p.txt" ||
        notok "sample --cache dual $p" "$(head -n 2 "$ERR")"
done
$C ids "$T/sc-f32.txt" "$T/sc-bf16.txt" 0.5 | sed 's/^\(n*o*t* *ok - \)/\1sample --cache dual, bf16 vs f32: /'

# refusals
expect_exit 4 "--device cpu --precision bf16: exit 4" "dllm-train -q $A --steps 1 --precision bf16 -o '$T/x1'"
expect_err "does not support .* in bf16" "  names the missing bf16 op"
no_file "$T/x1" "  no output"
expect_exit 2 "--precision f16: exit 2" "dllm-train -q --device ref $A --steps 1 --precision f16 -o '$T/x2'"
expect_err "expected f32 or bf16" "  says what is accepted"
expect_exit 2 "--lora with bf16: exit 2" "dllm-train -q --device ref $A --steps 1 --precision bf16 --lora 4 -o '$T/x3'"
expect_err "LoRA" "  names LoRA"

# families with extra tensors in the compute copy: q/k norms (Qwen3), biases (Qwen2)
tiny_train_data 60
for f in qwen3 qwen2; do
    if [ $f = qwen3 ]; then extra='"head_dim": 16,'; arch=Qwen3ForCausalLM; bias=false
    else extra=''; arch=Qwen2ForCausalLM; bias=true; fi
    tiny32_config "$T/$f.json" -e "s/LlamaForCausalLM/$arch/" -e "s/\"model_type\": \"llama\",/\"model_type\": \"$f\", $extra/" \
        -e "s/\"attention_bias\": false/\"attention_bias\": $bias/"
    for p in f32 bf16; do
        dllm-train -q --device ref --precision $p --config "$T/$f.json" "$T/train.msgpack" --steps 8 --batch 8 \
            --lr 1e-3 --seed 2 --metrics "$T/$f-$p.jsonl" -o "$T/$f-$p" 2> "$ERR" || notok "$f $p" "$(head -n 2 "$ERR")"
    done
    $C losses "$T/$f-f32.jsonl" "$T/$f-bf16.jsonl" 2e-2 | sed "s/^\(n*o*t* *ok - \)/\1$f bf16 vs f32: /"
    $C weights "$T/$f-f32/model.safetensors" "$T/$f-bf16/model.safetensors" 2e-2 2e-2 _proj.bias | sed "s/^\(n*o*t* *ok - \)/\1$f bf16 vs f32: /"
done

