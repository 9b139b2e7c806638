#!/bin/sh
# tests/cli/kill.sh — checkpoint durability under SIGKILL: dllm-train
# --save-every 1 is killed (kill -9) after random delays and, through the
# fault shim, exactly at chosen rename and fsync calls inside its saves;
# each time the checkpoint left under -o DIR must --resume to the same
# per-step losses and the same final model.safetensors bytes as one
# uninterrupted run (or, killed before its first save completed, there is no
# DIR and a fresh run matches).  The resume's own save must remove the
# killed run's DIR.tmp.<pid>.  Also fix 8 directly: a save removes a stale
# DIR.tmp.<dead pid> and keeps DIR.tmp.<live pid> and every other name.
# Delays are drawn from the shell's pid (printed in the test names, so a
# failure can be replayed with DLLM_KILL_SEED=N).
. "$(dirname "$0")/lib.sh"
SO=$ROOT/${DLLM_BUILD:-build}/tests/fault/inject.so
OMP_NUM_THREADS=1; export OMP_NUM_THREADS
# under AddressSanitizer (make test-asan) the shim is preloaded before the ASan runtime
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0; export ASAN_OPTIONS
losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }

awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
    for (k = 0; k < 200; k++) { s = "{\"ids\":["; n = 20 + (k * 13) % 50
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7) % 40); print s "]}" }
}' | dllm-cat --from-json -o "$T/tok.msgpack"
dllm-pack -q -L 32 --seed 1 "$T/tok.msgpack" -o "$T/rows.msgpack"
dllm-mask -q --seed 1 --copies 2 "$T/rows.msgpack" -o "$T/train.msgpack"
sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/t32.json"
STEPS=8
TRAIN="dllm-train -q --config $T/t32.json $T/train.msgpack --batch 4 --lr 1e-2 --warmup 2 --seed 3 --steps $STEPS --save-every 1"

# ---------------------------------------------------------------- the uninterrupted run
t0=$(date +%s%N)
check "uninterrupted run: $STEPS steps, a save after each" "$TRAIN -o '$T/ref' --metrics '$T/ref.jsonl'"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
losses "$T/ref.jsonl" > "$T/ref.l"

# verify NAME DIR: DIR (left by a killed run) resumes to the reference
verify() {
    name=$1; dir=$2
    if [ ! -d "$dir" ]; then   # killed before the first save completed: start again
        if $TRAIN -o "$dir" --metrics "$dir.jsonl" 2> "$ERR" && same_run "$dir" "$dir.jsonl" 0; then
            ok "$name: no checkpoint yet; a fresh run matches the reference and left no $(basename "$dir").tmp.*"
        else notok "$name: no checkpoint yet; fresh run" "$why$(head -c 200 "$ERR")"; fi
        return
    fi
    s=$(sed -n 's/.*"step": *\([0-9]*\),.*/\1/p' "$dir/trainer_state.json")
    if [ -z "$s" ]; then notok "$name: checkpoint has no step" "$(ls "$dir")"; return; fi
    rm -f "$dir.jsonl"
    if dllm-train -q --resume "$dir" "$T/train.msgpack" -o "$dir" --steps $STEPS --metrics "$dir.jsonl" 2> "$ERR" &&
       same_run "$dir" "$dir.jsonl" "$s"; then
        ok "$name: checkpoint at step $s resumes to the same losses and final weights; no $(basename "$dir").tmp.* left"
    else notok "$name: resume from step $s" "$why$(head -c 200 "$ERR")"; fi
}
# same_run DIR METRICS S: steps S+1.. of METRICS and DIR's weights equal the reference ($why says how not)
same_run() {
    why=""
    losses "$2" > "$T/got.l"; awk -v s="$3" '$1 > s' "$T/ref.l" > "$T/want.l"
    cmp -s "$T/got.l" "$T/want.l" || why="losses differ: $(diff "$T/want.l" "$T/got.l" | head -n 4 | tr '\n' ' ') "
    cmp -s "$1/model.safetensors" "$T/ref/model.safetensors" || why="${why}final weights differ "
    cmp -s "$1/optimizer.safetensors" "$T/ref/optimizer.safetensors" || why="${why}optimizer state differs "
    left=$(ls -d "$1".tmp.* "$1".old.* 2> /dev/null)
    [ -z "$left" ] || why="${why}left: $left "
    [ -z "$why" ]
}

# ---------------------------------------------------------------- kill -9 after random delays
seed=${DLLM_KILL_SEED:-$$}
delays=$(awk -v seed="$seed" -v ms="$ms" 'BEGIN { srand(seed); for (i = 0; i < 6; i++) printf "%d ", 20 + rand() * ms }')
i=0
for d in $delays; do
    i=$((i + 1)); dir=$T/rk$i
    $TRAIN -o "$dir" 2> /dev/null &
    pid=$!
    sleep "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 1000 }')"
    kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
    verify "kill -9 after $d ms of ~$ms (seed $seed)" "$dir"
done

# ---------------------------------------------------------------- SIGKILL at the k-th rename / fsync
if [ ! -f "$SO" ]; then
    skip "SIGKILL inside a save" "$SO is not built (run make)"
else
    DLLM_FAIL_COUNT=$T/count LD_PRELOAD=$SO $TRAIN -o "$T/cnt" 2> /dev/null
    # one save: 5 renames (4 files, the directory) and 10 fsyncs; all of the
    # first two saves (a new DIR, then a swap), and a few of the last ones
    for op in rename fsync; do
        n=$(sed -n "s/^$op //p" "$T/count"); per=$(( n / STEPS ))   # --save-every 1: STEPS saves (the last is the final one)
        [ "$per" -ge 1 ] || per=1
        for k in $(awk -v n="$n" -v p="$per" 'BEGIN { for (k = 1; k <= 2 * p; k++) print k; print n - p + 1; print n - 1; print n }' | awk -v n="$n" '$1 >= 1 && $1 <= n && !s[$1]++'); do
            dir=$T/$op$k; rm -f "$T/hit"
            DLLM_FAIL=$op:$k:KILL DLLM_FAIL_LOG=$T/hit LD_PRELOAD=$SO $TRAIN -o "$dir" 2> /dev/null
            if [ ! -s "$T/hit" ]; then notok "SIGKILL at $op $k of $n" "the call was not reached"; continue; fi
            verify "SIGKILL at $op $k of $n" "$dir"
        done
    done
fi

# ---------------------------------------------------------------- fix 8: stale DIR.tmp.<pid>
d=$T/stale; mkdir -p "$d"
sh -c 'exit 0' & dead=$!; wait $dead
sleep 60 & live=$!
for n in "ck.tmp.$dead" "ck.tmp.$live" "ck.tmp.${dead}x" "ckx.tmp.$dead" "ck.old.$dead" "ck.tmp.$dead.bak" "ck.tmp."; do
    mkdir -p "$d/$n"; echo x > "$d/$n/model.safetensors.tmp.$dead"
done
sh -c 'exit 0' & dead2=$!; wait $dead2
echo x > "$d/ck.tmp.$dead2"                     # a plain file with the pattern: not a directory, kept
check "a save beside stale temporaries" \
    "dllm-train -q --config '$T/t32.json' '$T/train.msgpack' --batch 4 --steps 1 -o '$d/ck'"
no_file "$d/ck.tmp.$dead" "stale ck.tmp.<dead pid> removed by the next save"
check "ck.tmp.<live pid> kept" "test -f '$d/ck.tmp.$live/model.safetensors.tmp.$dead'"
for n in "ck.tmp.${dead}x" "ckx.tmp.$dead" "ck.old.$dead" "ck.tmp.$dead.bak" "ck.tmp."; do
    check "other name $n kept" "test -f '$d/$n/model.safetensors.tmp.$dead'"
done
check "plain file ck.tmp.<dead pid> kept" "test -f '$d/ck.tmp.$dead2'"
kill $live 2> /dev/null; wait $live 2> /dev/null
exit 0
