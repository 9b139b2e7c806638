#!/bin/sh
# tests/cli/omp_env.sh — how the programs wait on shared cores (issue 15,
# share/io/dl_omp_env.c): with no OpenMP policy in the environment a program
# that uses OpenMP re-executes itself once with GOMP_SPINCOUNT set (same pid
# and name), before libgomp starts, so libgomp sees the value and starts
# once; programs without OpenMP do not re-execute; the user's own
# OMP_WAIT_POLICY / GOMP_SPINCOUNT win, DLLM_OMP_REEXEC=0 turns it off; and
# the waiting policy never changes a result (a training run and a sample
# with and without it are byte-identical, at 1 and 2 threads).
. "$(dirname "$0")/lib.sh"

TOKJ=$ROOT/share/data/gpt2-tokenizer/tokenizer.json
# environment and name of a live program waiting on stdin for 1.5 s
env_of() {   # VAR=VALUE / -u VAR ... -- PROG ARGS: prints GOMP_SPINCOUNT's value (or "unset"), the
             # process name, and whether libgomp is loaded (gomp / nogomp)
    vars=""
    while [ "$1" != "--" ]; do vars="$vars $1"; shift; done
    shift
    ( sleep 1.5 | env $vars "$@" > /dev/null 2>&1 & pid=$!
      sleep 0.8
      v=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^GOMP_SPINCOUNT=//p')
      g=nogomp; grep -q libgomp /proc/$pid/maps 2>/dev/null && g=gomp
      echo "${v:-unset} $(cat /proc/$pid/comm 2>/dev/null) $g"
      wait $pid )
}
# what libgomp itself read, one line per time it started: OMP_DISPLAY_ENV
gomp_saw() {   # PROG VAR=VALUE...
    prog=$1; shift
    env "$@" OMP_DISPLAY_ENV=verbose $prog --help 2>&1 > /dev/null | sed -n "s/.*GOMP_SPINCOUNT = '\([0-9]*\)'.*/\1/p" | tr '\n' ' '
}
if [ ! -r /proc/self/environ ]; then skip "omp_env" "no /proc"; exit 0; fi
want=$(sed -n 's/^#define DL_OMP_SPINCOUNT "\([0-9]*\)".*/\1/p' "$ROOT/share/io/dl_omp_env.h")
U="-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DLLM_OMP_REEXEC"
is "no policy set: re-executed with GOMP_SPINCOUNT=$want, name kept" \
   "$(env_of $U -- dllm-tok -q -t "$TOKJ")" "$want dllm-tok gomp"
is "the user's OMP_WAIT_POLICY wins (no GOMP_SPINCOUNT added)" \
   "$(env_of -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive -- dllm-tok -q -t "$TOKJ")" "unset dllm-tok gomp"
is "the user's GOMP_SPINCOUNT wins" "$(env_of -u OMP_WAIT_POLICY GOMP_SPINCOUNT=77 -- dllm-tok -q -t "$TOKJ")" "77 dllm-tok gomp"
is "DLLM_OMP_REEXEC=0: libgomp's defaults" \
   "$(env_of $U DLLM_OMP_REEXEC=0 -- dllm-tok -q -t "$TOKJ")" "unset dllm-tok gomp"
# dllm-cat uses no OpenMP: a normal build does not load libgomp, and a
# program without it is not re-executed (sanitizer builds do load it, and
# then dl_prog_init re-executes, the fallback path)
got=$(env_of $U -- dllm-cat)
case $got in
    *" nogomp") is "dllm-cat, no libgomp loaded: not re-executed" "$got" "unset dllm-cat nogomp" ;;
    *) is "dllm-cat with libgomp loaded: re-executed from dl_prog_init" "$got" "$want dllm-cat gomp" ;;
esac
for p in dllm-tok dllm-train dllm-sample dllm-score; do
    is "$p: libgomp started once, with GOMP_SPINCOUNT=$want" "$(gomp_saw $p $U)" "$want "
done
is "dllm-sample, user's GOMP_SPINCOUNT=77: libgomp read 77" "$(gomp_saw dllm-sample -u OMP_WAIT_POLICY GOMP_SPINCOUNT=77)" "77 "

# results do not depend on the waiting policy
tiny_train_data 60
tiny32_config "$T/config.json"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":64,"mask_id":63,"eos_id":1}}' \
    '{"ids":[3,10,17]}' '{"ids":[24,31]}' | dllm-cat --from-json -o "$T/prompts.msgpack"
for j in 1 2; do
    for mode in settled libgomp; do
        if [ $mode = settled ]; then E="env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DLLM_OMP_REEXEC"
        else E="env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT DLLM_OMP_REEXEC=0"; fi
        $E dllm-train -q --threads $j --config "$T/config.json" "$T/train.msgpack" -o "$T/ck-$mode-$j" --steps 4 --batch 4 --seed 3 2> "$ERR" ||
            notok "train -j $j ($mode)" "$(head -n 3 "$ERR")"
        $E dllm-sample -q --threads $j -m "$T/ck-$mode-$j" "$T/prompts.msgpack" --gen-length 16 --steps 8 --block-length 8 -t 1 --seed 5 \
            -o "$T/s-$mode-$j.msgpack" 2> "$ERR" || notok "sample -j $j ($mode)" "$(head -n 3 "$ERR")"
    done
    same "$T/ck-settled-$j/model.safetensors" "$T/ck-libgomp-$j/model.safetensors" "train -j $j: weights identical under either policy"
    # records only: the header's history names the output file
    dllm-cat --no-header "$T/s-settled-$j.msgpack" > "$T/s-settled-$j.jsonl"
    dllm-cat --no-header "$T/s-libgomp-$j.msgpack" > "$T/s-libgomp-$j.jsonl"
    same "$T/s-settled-$j.jsonl" "$T/s-libgomp-$j.jsonl" "sample -j $j: samples identical under either policy"
done
