#!/bin/sh
# bench/73-cache-quality.sh — quality next to speed for the diffusion caches
# (issue 12) on the trained checkpoints of bench/trained_ckpts.sh (MDLM with
# --shift-logits, and BD3 block diffusion, both fine-tuned from stories260K;
# held-out TinyStories text they never saw).  The cache changes sampling only, so the task is answered BY
# SAMPLING under each cache mode:
#  1. cloze accuracy: cloze.jsonl (bench/cloze_items.awk: LAMBADA layout,
#     the context a held-out story prefix, the target the next word, a word
#     that occurs earlier in the story).  Every context is a prompt of
#     dllm-sample -n 64 --steps 64 -t 0 (low-confidence remasking), MDLM
#     with --block-length 16 (4 blocks: the caches are refreshed and go
#     stale 4 times), BD3 with its own blocks of 32; the answer is the first
#     word (leading letters after whitespace) of the decoded continuation,
#     correct when equal to the target.  Printed per cache mode: accuracy ±
#     standard error (sqrt(p(1-p)/(n-1)), lm-eval's), items, tokens/s, NFE,
#     the fraction of generated tokens identical to --cache none, and the
#     generative perplexity of the continuations under the AR stories260K
#     (dllm-score --causal: exp of -log p(64 generated tokens | context) per
#     token; the MDLM / BD3LM papers' sample-quality measure; lower is
#     better, but repetitive text also scores low).
#     Baselines on the same items: the most frequent target ("chance" for an
#     open-vocabulary cloze) and dllm-score --task (likelihood-based greedy
#     match, one forward with the target's tokens masked: no cache, so one
#     figure per checkpoint; for BD3 dllm-score has no block-causal path and
#     runs full attention, a model it was not fine-tuned as: printed as
#     such), and the AR stories260K itself (--causal: greedy match, and
#     sampled at temperature 0 as the diffusion models).
#  2. ELBO (nats/token, lower is better) on the held-out rows, the same for
#     every cache mode: MDLM by dllm-score (--mc 4 per row, its standard
#     error) and by dllm-train --valid (one masking per row); BD3 by
#     dllm-train --valid with the checkpoint's own objective (x_t (+) x_0,
#     block-causal, one t per block of 32).
# Threads: DLLM_BENCH_THREADS (default 1, as bench/71).  Items:
# DLLM_BENCH_CLOZE_N (default all, 151).  Numbers are as measured on
# whatever else runs on the machine.
cd "$(dirname "$0")/.." || exit 3
[ -x bin/dllm-sample ] || { echo "cache-quality: bin/dllm-sample is not built (make first): skipped"; exit 0; }
TH=${DLLM_BENCH_THREADS:-1}
D=$(sh bench/trained_ckpts.sh) || { echo "cache-quality: trained checkpoints failed"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-quality.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
NI=${DLLM_BENCH_CLOZE_N:-0}
if [ "$NI" -gt 0 ]; then head -n "$NI" "$D/cloze.jsonl"; else cat "$D/cloze.jsonl"; fi > "$W/cloze.jsonl"
NI=$(wc -l < "$W/cloze.jsonl" | tr -d ' ')
sed 's/^{"context": \(".*"\), "continuation": "[A-Za-z]*"}$/{"text": \1}/' "$W/cloze.jsonl" > "$W/ctx.jsonl"
sed 's/.*"continuation": "\([A-Za-z]*\)"}$/\1/' "$W/cloze.jsonl" > "$W/target"
bin/dllm-tok -q -t "$D/s260" --jsonl "$W/ctx.jsonl" -o "$W/ctx.msgpack" || { echo "cache-quality: tokenising failed"; exit 1; }
STEPS=${DLLM_BENCH_CACHE_STEPS:-1000}
BSTEPS=${DLLM_BENCH_BD3_STEPS:-100}

# run CKPT CACHE BLOCK: $W/CKPT.CACHE.{msgpack,err,ids,word}
run() {
    sample "$1" "$2" --steps 64 --block-length "$3" --cache "$2"
}
# sample CKPT TAG [ARGS]: the same, any options
sample() {
    ck=$1 tag=$2; shift 2
    bin/dllm-sample -j "$TH" -m "$D/$ck" --keep-eos -n 64 -t 0 "$@" "$W/ctx.msgpack" -o "$W/$ck.$tag.msgpack" \
        2> "$W/$ck.$tag.err" || { echo "cache-quality: dllm-sample failed"; exit 1; }
    set -- "$ck" "$tag"
    bin/dllm-cat --no-header "$W/$1.$2.msgpack" > "$W/$1.$2.rec"
    sed 's/.*"ids":\[\([^]]*\)\].*"n_prompt":\([0-9]*\).*/\2 \1/' "$W/$1.$2.rec" |
        awk '{ n = split($2, a, ","); for (i = $1 + 1; i <= n; i++) print NR, a[i] }' > "$W/$1.$2.ids"
    bin/dllm-tok -q -d --jsonl -t "$D/s260" "$W/$1.$2.msgpack" |
        sed -e 's/.*"response":"//' -e 's/^\(\\n\|\\t\| \)*//' -e 's/^\([A-Za-z]*\).*/\1/' > "$W/$1.$2.word"
}
tps() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' "$W/$1.$2.err"; }
nfe() { sed -n 's/.*NFE \([0-9]*\) .*/\1/p' "$W/$1.$2.err"; }
# acc WORDFILE: "p ± se (k/n)"
acc() {
    paste -d ' ' "$1" "$W/target" | awk '{ n++; if ($1 != "" && $1 == $2) k++ }
        END { p = n ? k / n : 0; se = n > 1 ? sqrt(p * (1 - p) / (n - 1)) : 0; printf "%.3f ± %.3f (%d/%d)", p, se, k, n }'
}
frac() { paste -d ' ' "$W/$1" "$W/$2" | awk '$2 == $4 { s++ } END { printf "%.3f", (NR ? s / NR : 0) }'; }
# genppl CKPT CACHE: perplexity of the generated tokens under the AR stories260K
# (each record's n_prompt makes dllm-score score -log p(generated | context))
genppl() {
    bin/dllm-score -q -m "$D/s260" --causal -j "$TH" "$W/$1.$2.msgpack" -o /dev/null --summary "$W/$1.$2.ppl" 2> /dev/null &&
        sed -n 's/^ *"perplexity": \([0-9.eE+-]*\),*$/\1/p' "$W/$1.$2.ppl" | head -n 1 | awk '{ printf "%.2f", $1 }'
}
# task CKPT [ARGS]: dllm-score --task greedy-match accuracy "p ± se"
task() {
    ck=$1; shift
    bin/dllm-score -q -m "$D/$ck" --task "$W/cloze.jsonl" --mc 4 -j "$TH" -o /dev/null --summary "$W/$ck.task" "$@" 2> /dev/null &&
        awk '/"acc"/ { gsub(/[^0-9.eE-]/, "", $2); p = $2 } /"acc_stderr"/ { gsub(/[^0-9.eE-]/, "", $2); s = $2 }
             END { printf "%.3f ± %.3f", p, s }' "$W/$ck.task"
}

majority=$(sort "$W/target" | uniq -c | sort -k1,1nr -k2 | head -n 1 | awk -v n="$NI" '{ printf "%.3f (\"%s\", %d/%d)", $1 / n, $2, $1, n }')
sample s260 ar --causal
echo "cache-quality cloze: $NI held-out TinyStories items (context = story prefix, target = the next word, seen earlier in the story); most frequent target $majority; AR stories260K: dllm-score --causal greedy match $(task s260 --causal), sampled (--causal, t 0) $(acc "$W/s260.ar.word")"

for c in none prefix dual; do run mdlm $c 16; done
echo "cache-quality mdlm ($STEPS steps) dllm-score --task greedy match (likelihood, no cache): $(task mdlm)"
for c in none prefix dual; do
    same=""; [ $c = none ] || same=", tokens identical to none $(frac mdlm.$c.ids mdlm.none.ids)"
    echo "cache-quality mdlm --cache $c, gen 64, steps 64, block 16, $TH thread(s): cloze accuracy by sampling $(acc "$W/mdlm.$c.word"); tokens/s $(tps mdlm $c), NFE $(nfe mdlm $c)$same; gen. perplexity (AR stories260K) $(genppl mdlm $c)"
done

for c in none prefix; do run bd3 $c 32; done
if cmp -s "$W/bd3.prefix.rec" "$W/bd3.none.rec" && [ -s "$W/bd3.none.ids" ]; then same=yes; else same=no; fi
echo "cache-quality bd3 ($BSTEPS steps) dllm-score --task greedy match (full attention: dllm-score has no block-causal path): $(task bd3)"
for c in none prefix; do
    what=recomputed; [ $c = prefix ] && what="exact cache, output identical to none: $same"
    echo "cache-quality bd3 --cache $c ($what), gen 64, steps 64, block 32, $TH thread(s): cloze accuracy by sampling $(acc "$W/bd3.$c.word"); tokens/s $(tps bd3 $c), NFE $(nfe bd3 $c); gen. perplexity (AR stories260K) $(genppl bd3 $c)"
done

# ELBO on the held-out rows (the same for every cache mode)
velbo() { bin/dllm-train --init "$D/$1" --valid "$D/$2" --steps 0 -o "$W/v-$1" --threads "$TH" 2>&1 |
    sed -n 's/.*valid ELBO \([0-9.]*\) nats\/token.*(\([0-9]*\) rows.*/\1 (\2 rows)/p'; }
s=$(bin/dllm-score -m "$D/mdlm" --mc 4 -j "$TH" "$D/held-rows.msgpack" -o /dev/null --summary "$W/elbo.json" 2>&1 >/dev/null |
    tail -n 1)
e=$(sed -n 's/^ *"nats_per_token": \([0-9.eE+-]*\),*$/\1/p' "$W/elbo.json" | head -n 1 | awk '{ printf "%.4f", $1 }')
se=$(sed -n 's/^ *"se_nats_per_token": \([0-9.eE+-]*\),*$/\1/p' "$W/elbo.json" | head -n 1 | awk '{ printf "%.4f", $1 }')
echo "cache-quality ELBO held-out rows of 256, nats/token (upper bound; the same for every cache mode: the cache changes sampling only): mdlm dllm-score --mc 4 $e ± $se, dllm-train --valid $(velbo mdlm held-mdlm.msgpack); bd3 (its own objective: x_t (+) x_0, block-causal, t per block of 32) dllm-train --valid $(velbo bd3 held-bd3.msgpack)"
[ -n "$e" ] || echo "    # dllm-score: $s"
