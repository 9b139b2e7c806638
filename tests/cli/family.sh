#!/bin/sh
# tests/cli/family.sh — the programs on each model family's own directory
# (tests/data/families, written by tests/ref/gen_family_fixtures.py with the
# families' own code; log-probs and gradients are compared in
# tests/unit/test_family.c):
#  - dllm-sample -m DIR at temperature 0 on LLaDA gives exactly the ids of
#    LLaDA's own generate.py (low-confidence remasking, blocks), and on Dream
#    those of its diffusion_generate (maskgit_plus, one step: shifted logits;
#    and several steps with --alg maskgit_plus / topk_margin / entropy, top-p,
#    top-k: dream/diffusion_generate.txt), on a2d-* those of dLLM's MDLMSampler;
#  - dllm-sample / dllm-score -m DIR run on every family (a2d-*: the mask id
#    from the tokenizer), qwen3 as an AR model (--causal);
#  - dllm-train --init DIR writes the canonical layout (model_type llama /
#    qwen2 / qwen3) with the family's conventions (shift_logits, mask id,
#    chat template) and trains from it (qwen3: q_norm / k_norm backward);
#  - --chat wraps -p in the checkpoint's chat template (chatml recognised),
#    --chat-template NAME, presets never turn it on;
#  - bad input: an unknown model_type names the supported ones; an LLaDA
#    option we do not implement is refused by name (exit 1).
. "$(dirname "$0")/lib.sh"
FAM=$ROOT/tests/data/families

printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":24,"mask_id":21,"eos_id":20}}' \
    '{"ids":[1,5,9,3,12,7],"id":"a"}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":24,"mask_id":21,"eos_id":20}}' \
    '{"ids":[1,5,9,3,12,7,4,8,2,6],"n_prompt":4,"id":"a"}' '{"ids":[3,3,4,5,6,7,8,9],"id":"b"}' > "$T/s.jsonl"
dllm-cat --from-json "$T/s.jsonl" -o "$T/s.msgpack"

# LLaDA's generate(model, prompt, steps 8, gen_length 8, block_length 4, temperature 0)
want=$(tr -d ' \n' < "$FAM/llada/reference.json" | sed 's/.*"generate":{[^}]*"ids":\[\([^]]*\)\].*/\1/')
check "llada: dllm-sample -m DIR (no conversion)" \
    "dllm-sample -q -m '$FAM/llada' -n 8 -s 8 --block-length 4 --keep-eos '$T/p.msgpack' -o '$T/llada.msgpack'"
got=$(dllm-cat --no-header "$T/llada.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')
is "llada: temperature-0 ids = LLaDA's generate.py" "$got" "$want"

# Dream's diffusion_generate(maskgit_plus, temperature 0, steps 1): shifted logits, argmax
want=$(tr -d ' \n' < "$FAM/dream/reference.json" | sed 's/.*"generate":{[^}]*"ids":\[\([^]]*\)\].*/\1/')
check "dream: dllm-sample -m DIR -s 1" \
    "dllm-sample -q -m '$FAM/dream' -n 8 -s 1 --keep-eos '$T/p.msgpack' -o '$T/dream1.msgpack'"
got=$(dllm-cat --no-header "$T/dream1.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')
is "dream: temperature-0 ids = Dream's diffusion_generate (one step)" "$got" "$want"

# Dream's diffusion_generate over several steps (temperature 0, alg_temp 0):
# its schedule int(m (1 - s/t)) and its confidences on the top-p / top-k
# filtered distribution; one line per case, "alg steps gen top_p top_k : ids"
grep -v '^#' "$FAM/dream/diffusion_generate.txt" | while read -r alg steps gen tp tk colon want; do
    got=$(dllm-sample -q -m "$FAM/dream" -n "$gen" -s "$steps" --alg "$alg" --temperature 0 --top-p "$tp" \
          --top-k "$tk" --alg-temp 0 --keep-eos "$T/p.msgpack" | dllm-cat --no-header | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')
    is "dream: --alg $alg -s $steps -n $gen --top-p $tp --top-k $tk = Dream's diffusion_generate" "$got" "$want"
done

# dLLM's MDLMSampler (steps 8, block_size 4, temperature 0, low_confidence,
# suppress_tokens [mask]: dllm-sample never generates the mask token)
for f in a2d-llama a2d-qwen2 a2d-qwen3; do
    want=$(tr -d ' \n' < "$FAM/$f/reference.json" | sed 's/.*"generate":{[^}]*"ids":\[\([^]]*\)\].*/\1/')
    check "$f: dllm-sample -m DIR (mask id from the tokenizer)" \
        "dllm-sample -q -m '$FAM/$f' -n 8 -s 8 --block-length 4 --keep-eos '$T/p.msgpack' -o '$T/$f.msgpack'"
    got=$(dllm-cat --no-header "$T/$f.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')
    is "$f: temperature-0 ids = dLLM's MDLMSampler" "$got" "$want"
done
check "dream: dllm-sample -m DIR" "dllm-sample -q -m '$FAM/dream' -n 8 -s 8 --block-length 4 '$T/p.msgpack' -o '$T/dream.msgpack'"
check "qwen3: dllm-sample -m DIR --causal" "dllm-sample -q -m '$FAM/qwen3' --causal -n 8 '$T/p.msgpack' -o '$T/q3.msgpack'"
for f in llada dream a2d-llama a2d-qwen2 a2d-qwen3; do
    check "$f: dllm-score -m DIR" "dllm-score -q -m '$FAM/$f' --mc 4 '$T/s.msgpack' -o '$T/$f.score.msgpack'"
done
check "qwen3: dllm-score -m DIR --causal" "dllm-score -q -m '$FAM/qwen3' --causal '$T/s.msgpack' -o '$T/q3.score.msgpack'"

# --init: canonical layout + the family's conventions
check "llada: dllm-train --init DIR --steps 0" "dllm-train -q --init '$FAM/llada' -o '$T/llada-c' --steps 0"
is "... model_type llama" "$(grep -c '"model_type": "llama"' "$T/llada-c/config.json")" 1
is "... mask_token_id 21 from its config" "$(grep -c '"mask_token_id": 21' "$T/llada-c/config.json")" 1
is "... canonical tensor names" "$(grep -c 'model.transformer' "$T/llada-c/model.safetensors")" 0
is "... chat template kept" "$(grep -c chat_template "$T/llada-c/tokenizer_config.json")" 1
check "dream: dllm-train --init DIR --steps 0" "dllm-train -q --init '$FAM/dream' -o '$T/dream-c' --steps 0"
is "... model_type qwen2, shift_logits true" \
    "$(grep -c '"model_type": "qwen2"\|"shift_logits": true' "$T/dream-c/config.json")" 2
check "a2d-qwen3: dllm-train --init DIR --steps 0" "dllm-train -q --init '$FAM/a2d-qwen3' -o '$T/a2d-c' --steps 0"
is "... model_type qwen3, mask id from the tokenizer" \
    "$(grep -c '"model_type": "qwen3"\|"mask_token_id": 21' "$T/a2d-c/config.json")" 2
check "the canonical checkpoint samples like the original (dream)" \
    "dllm-sample -q -m '$T/dream-c' -n 8 -s 8 --block-length 4 '$T/p.msgpack' -o '$T/dream-c.msgpack' && dllm-cat --no-header '$T/dream.msgpack' > '$T/d1' && dllm-cat --no-header '$T/dream-c.msgpack' > '$T/d2' && cmp -s '$T/d1' '$T/d2'"
awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":24,\"mask_id\":21,\"eos_id\":20}}"
    for (k = 0; k < 40; k++) {
        s = "{\"ids\":["; n = 10 + k % 7
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k + i) % 16)
        print s "]}"
    }
}' > "$T/tr.jsonl"
dllm-cat --from-json "$T/tr.jsonl" -o "$T/tr-tok.msgpack"
dllm-pack -q -L 16 --seed 1 "$T/tr-tok.msgpack" -o "$T/tr-rows.msgpack"
dllm-mask -q --seed 1 "$T/tr-rows.msgpack" -o "$T/tr.msgpack"
check "qwen3: dllm-train --init DIR trains (q_norm / k_norm backward)" \
    "dllm-train -q --init '$FAM/qwen3' '$T/tr.msgpack' -o '$T/q3-t' --steps 2 --batch 4"

# --chat (sample/main.c, share/tok/dl_chat.h): -p TEXT as one user turn in the
# checkpoint's template = dllm-tok's rendering of {"messages": [user TEXT]};
# the fixtures' own template is none we know: refused by name; presets never
# turn chat on (the rule in sample/preset.c)
mkdir -p "$T/chatml"
cp "$FAM/dream/config.json" "$FAM/dream/model.safetensors" "$FAM/dream/tokenizer.json" "$T/chatml/"
sed 's/"chat_template": "[^"]*"/"chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{% endfor %}"/' \
    "$FAM/dream/tokenizer_config.json" > "$T/chatml/tokenizer_config.json"
echo '{"messages":[{"role":"user","content":"hello"}]}' > "$T/m.jsonl"
dllm-tok -q -t "$T/chatml" --chat-template chatml "$T/m.jsonl" -o "$T/m.msgpack"
want=$(dllm-cat --no-header "$T/m.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/')
got=$(dllm-sample -q -m "$T/chatml" --chat -p hello -n 4 -s 4 --keep-eos | dllm-cat --no-header \
      | sed 's/.*"ids":\[\([^]]*\)\].*/\1/' | cut -d, -f1-"$(echo "$want" | tr ',' '\n' | wc -l)")
is "--chat: the checkpoint's chatml template = dllm-tok --chat-template chatml" "$got" "$want"
got=$(dllm-sample -q -m "$FAM/dream" --chat-template chatml -p hello -n 4 -s 4 --keep-eos | dllm-cat --no-header \
      | sed 's/.*"ids":\[\([^]]*\)\].*/\1/' | cut -d, -f1-"$(echo "$want" | tr ',' '\n' | wc -l)")
is "--chat-template chatml names it (and implies --chat)" "$got" "$want"
np=$(dllm-sample -q -m "$T/chatml" --preset dream -p hello -n 4 -s 4 | dllm-cat --no-header | sed 's/.*"n_prompt":\([0-9]*\).*/\1/')
echo hello | dllm-tok -q -t "$T/chatml" -o "$T/plain.msgpack"
is "--preset dream does not turn chat on (-p encoded as it is)" "$np" \
    "$(dllm-cat --no-header "$T/plain.msgpack" | sed 's/.*"ids":\[\([^]]*\)\].*/\1/' | tr ',' '\n' | wc -l | tr -d ' ')"
expect_exit 1 "--chat on an unknown chat_template: data error" "dllm-sample -q -m '$FAM/dream' --chat -p hello -n 4"
expect_err "chat_template is none of chatml, llada, llama3.*--chat-template NAME" "... naming the file and the way out"
expect_exit 2 "--chat without -p: usage error" "dllm-sample -q -m '$FAM/dream' --chat '$T/p.msgpack'"

# bad input
mkdir -p "$T/gpt2" "$T/alibi"
cp "$FAM/llada/model.safetensors" "$FAM/llada/tokenizer.json" "$T/gpt2/"
sed 's/"model_type": "llada"/"model_type": "gpt2"/' "$FAM/llada/config.json" > "$T/gpt2/config.json"
expect_exit 1 "unknown model_type: data error" "dllm-sample -q -m '$T/gpt2' -n 8 '$T/p.msgpack'"
expect_err "gpt2.*llama, qwen2, mistral, qwen3, llada, Dream, a2d-llama, a2d-qwen2, a2d-qwen3" "... naming the supported ones"
cp "$FAM/llada/model.safetensors" "$FAM/llada/tokenizer.json" "$T/alibi/"
sed 's/"alibi": false/"alibi": true/' "$FAM/llada/config.json" > "$T/alibi/config.json"
expect_exit 1 "llada with alibi: data error" "dllm-score -q -m '$T/alibi' '$T/s.msgpack'"
expect_err "alibi" "... naming the option"
