#!/bin/sh
# bench/70-decode.sh — fast inference (issue 12), each line ours, the
# reference from the same run, and the ratio:
#  1. greedy AR decoding vs llama2.c's run.c (bench/third_party/llama2c/run.c,
#     MIT, built here with -Ofast -march=native; the OpenMP build for 2
#     threads) on stories260K and on a random 85M model (bench/llama2c_model.c:
#     dim 768, 12 layers, 12 heads, vocab 512, 341 MB f32).  Both generate
#     DLLM_BENCH_AR_N tokens (default 200) after "Once upon a time"; tokens/s:
#     run.c's own "achieved tok/s", ours dllm-sample's (prefill included).
#     Then batched decoding: tokens/s of --batch 1, 2, 4, 8 (same prompt).
#  2. diffusion with --cache prefix / dual vs --cache none on the 85M model
#     (converted as a diffusion model: random weights, so no task accuracy or
#     ELBO is meaningful here), gen-length 128, steps 128, block 32,
#     temperature 0, 2 threads then 1: tokens/s, NFE, and the fraction of
#     generated tokens identical to --cache none.
# DLLM_BENCH_DECODE="ar diffusion": only those parts (default both).
# Numbers are as measured on whatever else runs on the machine.
cd "$(dirname "$0")/.." || exit 3
[ -x bin/dllm-sample ] || { echo "decode: bin/dllm-sample is not built (make first): skipped"; exit 0; }
N=${DLLM_BENCH_AR_N:-200}
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-decode.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
CC=${CC:-cc}
$CC -Ofast -march=native -o "$W/run" bench/third_party/llama2c/run.c -lm &&
$CC -Ofast -march=native -fopenmp -o "$W/runomp" bench/third_party/llama2c/run.c -lm &&
$CC -O2 -o "$W/mk" bench/llama2c_model.c || { echo "decode: cannot build run.c"; exit 1; }
S=share/data/stories260K
"$W/mk" "$W/m85.bin" || exit 1
cp $S/tok512.bin "$W/"
part() { case " ${DLLM_BENCH_DECODE:-ar diffusion} " in *" $1 "*) return 0 ;; esac; return 1; }
part ar && for m in stories260K:$S/stories260K.bin m85:$W/m85.bin; do
    name=${m%%:*}; bin=${m#*:}
    bin/dllm-train --init "$bin" --init-tokenizer $S/tok512.bin -o "$W/$name" --steps 0 2>/dev/null || exit 1
    for j in 1 2; do
        if [ $j = 1 ]; then R="$W/run"; else R="$W/runomp"; fi
        ref=$(OMP_NUM_THREADS=$j "$R" "$bin" -z $S/tok512.bin -t 0 -n $((N + 5)) -i "Once upon a time" 2>&1 >/dev/null |
              sed -n 's/achieved tok\/s: //p')
        ours=$(bin/dllm-sample -j $j -m "$W/$name" --causal --bos --keep-eos -p "Once upon a time" -n $N -o /dev/null 2>&1 |
               sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
        echo "decode $name greedy AR, $j thread(s): tokens/s ours $ours, llama2.c run.c $ref, ratio $(echo "$ours $ref" | awk "{printf \"%.2f\", (\$2 > 0 ? \$1 / \$2 : 0)}")"
    done
done
part ar && for B in 1 2 4 8; do
    P=""; i=0; while [ $i -lt $B ]; do P="$P -p \"Once upon a time\""; i=$((i + 1)); done
    tps=$(eval bin/dllm-sample -j 2 -m "$W/m85" --causal --bos --keep-eos $P -b $B -n 64 -o /dev/null 2>&1 |
          sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
    echo "decode m85 batched AR, 2 threads, batch $B: $tps tokens/s"
done
part diffusion || exit 0
rm -rf "$W/m85dif"; bin/dllm-train --init "$W/m85.bin" --init-tokenizer $S/tok512.bin -o "$W/m85dif" --steps 0 2>/dev/null
for j in 2 1; do
    A="-j $j -m $W/m85dif -p \"Once upon a time\" --keep-eos -n 128 --steps 128 --block-length 32 -t 0"
    for c in none prefix dual; do
        eval bin/dllm-sample $A --cache $c -o "$W/$c.msgpack" 2> "$W/$c.err"
        bin/dllm-cat --no-header "$W/$c.msgpack" | sed 's/.*"ids":\[//; s/\].*//' | tr ',' '\n' > "$W/$c.ids"
    done
    tn=$(sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' "$W/none.err"); nn=$(sed -n 's/.*NFE \([0-9]*\) .*/\1/p' "$W/none.err")
    for c in prefix dual; do
        t=$(sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' "$W/$c.err"); nf=$(sed -n 's/.*NFE \([0-9]*\) .*/\1/p' "$W/$c.err")
        same=$(paste "$W/$c.ids" "$W/none.ids" | tail -n 128 | awk '$1 == $2 { s++ } END { printf "%.3f", s / NR }')
        echo "decode m85 diffusion --cache $c vs none (gen 128, block 32, $j thread(s)): tokens/s ours $t, --cache none $tn, ratio $(echo "$t $tn" | awk "{printf \"%.2f\", (\$2 > 0 ? \$1 / \$2 : 0)}"); NFE $nf vs $nn; tokens identical to none $same"
    done
done
