#!/bin/sh
# bench/60-rss.sh — peak resident memory of dllm-sample on a 1B-parameter
# bf16 checkpoint next to the checkpoint's file size (issue 10 point 2:
# inference keeps bf16 weights, never a full fp32 copy; target <= 1.3x).
# Model: LLaDA's shape scaled down — dim 2048, 16 layers, 16 heads (no GQA,
# as LLaDA), MLP 5632, vocab 32000, untied: 0.95 B parameters, random
# weights written by `dllm-train --config --dtype bf16 --steps 0` into a
# temporary directory (removed afterwards; about 1.9 GB, never in git).
# Run: one prompt of 4 tokens, 4 generated, 2 steps (the load dominates).
# Measured: /usr/bin/time -f %M (peak RSS of the process, KiB).
# Line: "peak RSS: ours X MB, file Y MB, ratio Z (target <= 1.3)".
cd "$(dirname "$0")/.." || exit 3
PATH=$PWD/bin:$PATH
if [ ! -x /usr/bin/time ]; then echo "rss: skipped (no /usr/bin/time)"; exit 0; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/dllm-rss.XXXXXX") || exit 3
trap 'rm -rf "$T"' EXIT
cat > "$T/c.json" <<'J'
{ "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16,
  "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632, "vocab_size": 32000,
  "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
  "mask_token_id": 31999, "bos_token_id": 1, "eos_token_id": 2 }
J
dllm-train -q --config "$T/c.json" --dtype bf16 --steps 0 -o "$T/m" || { echo "rss: writing the checkpoint failed"; exit 1; }
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":32000,"mask_id":31999,"eos_id":2}}' \
    '{"ids":[5,6,7,8]}' > "$T/p.jsonl"
dllm-cat --from-json "$T/p.jsonl" -o "$T/p.msgpack"
/usr/bin/time -f %M -o "$T/rss" dllm-sample -q -m "$T/m" -n 4 --block-length 4 --steps 2 "$T/p.msgpack" \
    -o "$T/s.msgpack" || { echo "rss: dllm-sample failed"; exit 1; }
kib=$(tail -n 1 "$T/rss")
bytes=$(stat -c %s "$T/m/model.safetensors")
awk -v k="$kib" -v b="$bytes" 'BEGIN { o = k * 1024 / 1e6; f = b / 1e6;
    printf "rss: dllm-sample peak RSS on a 1B bf16 checkpoint: ours %.0f MB, file %.0f MB, ratio %.2f (target <= 1.3)\n", o, f, o / f }'
