#!/bin/sh
# bench/71-trained-cache.sh — the diffusion caches on TRAINED checkpoints
# (issue 12; bench/70-decode.sh measures them on random weights, where the
# fraction of identical tokens means nothing).  Both checkpoints come from
# bench/trained_ckpts.sh (made once, shared with bench/73-cache-quality.sh,
# which measures their quality: cloze accuracy by sampling, ELBO):
# stories260K (converted: mask token added, bidirectional) fine-tuned
# DLLM_BENCH_CACHE_STEPS steps (default 1000) as MDLM (--shift-logits), and
# DLLM_BENCH_BD3_STEPS steps (default 100) as BD3 (batch 8, rows of 256
# tokens of share/data/tinystories/tinystories_val.txt without its held-out
# tail):
#  1. block diffusion (BD3LM, dllm-train --block-diffusion 32, dllm-mask
#     --block 32): sampling with the exact block cache (--cache prefix)
#     against recomputing every block-causal forward (--cache none):
#     tokens/s both, the ratio, NFE, and "identical: yes/no" (the records,
#     byte for byte: the cache is exact, as tests/cli/train_bd3.sh checks).
#  2. masked diffusion (MDLM/LLaDA loss): --cache prefix / dual against
#     --cache none: tokens/s both, the ratio, NFE, and the fraction of
#     generated tokens identical to --cache none (Fast-dLLM's caches are
#     approximate; the ELBO is the same model's, so only sampling changes).
# Sampling: 4 prompts of TinyStories openings in one batch, gen-length 128,
# steps 128, block 32, temperature 0, low-confidence remasking.
# Threads: DLLM_BENCH_THREADS (default 1, training too): the models are tiny
# (260K parameters), a second thread gains little, and on a loaded machine
# OpenMP's waiting made 2 threads 6-10x slower than 1 (2026-12-04).
# Numbers are as measured on whatever else runs on the machine.
cd "$(dirname "$0")/.." || exit 3
[ -x bin/dllm-sample ] || { echo "trained-cache: bin/dllm-sample is not built (make first): skipped"; exit 0; }
N=${DLLM_BENCH_CACHE_STEPS:-1000}
NB=${DLLM_BENCH_BD3_STEPS:-100}
TH=${DLLM_BENCH_THREADS:-1}
D=$(sh bench/trained_ckpts.sh) || { echo "trained-cache: training failed"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-cache.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
printf '%s\n' "Once upon a time" "One day, a little girl named Lily" "Tom and his dog" "The sun was" > "$W/p.txt"
bin/dllm-tok -q -t "$D/s260/tokenizer.json" --lines "$W/p.txt" -o "$W/p.msgpack" || exit 1

# run CKPT CACHE: records in $W/CKPT.CACHE.rec, generated ids (one a line) in .ids, stderr in .err
run() {
    bin/dllm-sample -j $TH -m "$D/$1" --keep-eos -n 128 --steps 128 --block-length 32 -t 0 --cache "$2" \
        "$W/p.msgpack" -o "$W/$1.$2.msgpack" 2> "$W/$1.$2.err" || { echo "trained-cache: dllm-sample failed"; exit 1; }
    bin/dllm-cat --no-header "$W/$1.$2.msgpack" > "$W/$1.$2.rec"
    sed 's/.*"ids":\[\([^]]*\)\].*"n_prompt":\([0-9]*\).*/\2 \1/' "$W/$1.$2.rec" |
        awk '{ n = split($2, a, ","); for (i = $1 + 1; i <= n; i++) print a[i] }' > "$W/$1.$2.ids"
}
tps() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' "$W/$1.$2.err"; }
nfe() { sed -n 's/.*NFE \([0-9]*\) .*/\1/p' "$W/$1.$2.err"; }
ratio() { echo "$1 $2" | awk '{ printf "%.2f", ($2 > 0 ? $1 / $2 : 0) }'; }
frac() { paste "$W/$1" "$W/$2" | awk '$1 == $2 { s++ } END { printf "%.3f", (NR ? s / NR : 0) }'; }

for c in none prefix; do run bd3 $c; done
t=$(tps bd3 prefix); tn=$(tps bd3 none)
if cmp -s "$W/bd3.prefix.rec" "$W/bd3.none.rec" && [ -s "$W/bd3.none.ids" ]; then same=yes; else same=no; fi
echo "trained-cache bd3 stories260K ($NB steps, --block-diffusion 32), gen 128, 4 prompts, $TH thread(s): tokens/s exact cache $t, recomputed $tn, ratio $(ratio "$t" "$tn"); NFE $(nfe bd3 prefix) vs $(nfe bd3 none); identical: $same"

for c in none prefix dual; do run mdlm $c; done
tn=$(tps mdlm none)
for c in prefix dual; do
    t=$(tps mdlm $c)
    echo "trained-cache mdlm stories260K ($N steps) --cache $c vs none, gen 128, block 32, 4 prompts, $TH thread(s): tokens/s ours $t, --cache none $tn, ratio $(ratio "$t" "$tn"); NFE $(nfe mdlm $c) vs $(nfe mdlm none); tokens identical to none $(frac mdlm.$c.ids mdlm.none.ids)"
done
