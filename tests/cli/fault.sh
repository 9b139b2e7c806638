#!/bin/sh
# tests/cli/fault.sh — injected write faults and a full disk, for every
# program that writes a named output (tok, pack, mask, cat, train, sample,
# score): each must exit 3 with a message naming the error, and leave
# nothing under the final name and no temporary file behind.
#
# 1. The shim build/tests/fault/inject.so (tests/fault/inject.c, LD_PRELOAD)
#    first counts a clean run's write/fsync/rename/close calls (N), then
#    fails call k for k in {1, 2, N/2, N-1, N} with ENOSPC or EIO in turn;
#    the shim's log proves the call was hit.  dllm-train also runs over an
#    existing checkpoint: a failed save leaves it byte-identical.
# 2. A full filesystem: a tmpfs (plain mount as root, else `unshare -rm`
#    re-runs this script in a user namespace; skipped with the reason when
#    neither works): every program into a completely full one, then the
#    programs with large outputs into one with 16 KiB free (the failure comes
#    mid-file).  Also dllm-train's --metrics log, written with stdio, which
#    the shim cannot reach.
# Not here: SIGKILL and resume (tests/cli/kill.sh), closed pipes (R1's
# tests), malformed inputs (each program's own script).
# Not root: re-run the whole script in a user + mount namespace when a tmpfs
# can be mounted there (then the full-disk part runs too).
if [ -z "${DLLM_FAULT_NS:-}" ] && [ "$(id -u)" -ne 0 ] &&
   unshare -rm sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=64k x "$d"; r=$?; rmdir "$d"; exit $r' 2> /dev/null; then
    DLLM_FAULT_NS=1; export DLLM_FAULT_NS
    exec unshare -rm sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
SO=$ROOT/${DLLM_BUILD:-build}/tests/fault/inject.so
OMP_NUM_THREADS=1; export OMP_NUM_THREADS
# under AddressSanitizer (make test-asan) the shim is preloaded before the ASan runtime
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0; export ASAN_OPTIONS
TOKJ=$DATA/gpt2-tokenizer/tokenizer.json
CK=$ROOT/tests/data/sample/ckpt

# ---------------------------------------------------------------- inputs (in $T/in)
mkdir -p "$T/in"
head -c 60000 "$DATA/tinystories/tinystories_val.txt" > "$T/in/text.txt"   # ~50 KiB of tokens
awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
    for (k = 0; k < 400; k++) { s = "{\"ids\":["; n = 20 + (k * 13) % 50
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7) % 40); print s "]}" }
}' > "$T/in/tok.jsonl"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":300,"mask_id":299,"eos_id":1}}' \
    '{"ids":[5,6,7,8,9],"id":"a"}' '{"ids":[20,21,22,23,24,25,26,27],"n_prompt":4,"id":"c"}' > "$T/in/p.jsonl"
dllm-cat --from-json "$T/in/tok.jsonl" -o "$T/in/tok.msgpack" &&
dllm-cat --from-json "$T/in/p.jsonl" -o "$T/in/p.msgpack" &&
dllm-pack -q -L 32 --seed 1 "$T/in/tok.msgpack" -o "$T/in/rows.msgpack" &&
dllm-mask -q --seed 1 --copies 2 "$T/in/rows.msgpack" -o "$T/in/train.msgpack"
check "inputs made" "test -s '$T/in/train.msgpack' && test -s '$T/in/p.msgpack'"
sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/in/t32.json"

# One line per program: NAME and the command; the output path is appended.
# (Paths hold no spaces: $T is a mktemp directory, $ROOT the checkout.)
PROGS="tok pack mask cat train sample score"
cmd_tok="dllm-tok -q -t $TOKJ $T/in/text.txt -o"
cmd_pack="dllm-pack -q -L 32 --seed 1 --split valid=0.1 $T/in/tok.msgpack -o"   # two outputs
cmd_mask="dllm-mask -q --seed 1 $T/in/rows.msgpack -o"
cmd_cat="dllm-cat --from-json $T/in/tok.jsonl -o"
cmd_train="dllm-train -q --config $T/in/t32.json $T/in/train.msgpack --steps 1 --batch 4 -o"
cmd_sample="dllm-sample -q -m $CK -n 8 --steps 4 $T/in/p.msgpack -o"
cmd_score="dllm-score -q -m $CK --mc 2 --seed 1 $T/in/p.msgpack -o"
out_name() { case $1 in train) echo ck ;; *) echo out.msgpack ;; esac; }
IOERR="No space left on device|Input/output error"

# ---------------------------------------------------------------- 1. the shim
if [ ! -f "$SO" ]; then
    skip "injected faults" "$SO is not built (run make)"
else
    # trial PROG OP K HOW DIR -> "" when all held, else why not; the run's stderr in $ERR
    trial() {
        eval "c=\$cmd_$1"; o=$5/$(out_name "$1")
        rm -f "$T/hit"
        DLLM_FAIL=$2:$3:$4 DLLM_FAIL_LOG=$T/hit LD_PRELOAD=$SO $c "$o" > /dev/null 2> "$ERR"; rc=$?
        if [ ! -s "$T/hit" ]; then echo "call $3 not reached (rc $rc)"; return; fi
        [ "$rc" -eq 3 ] || { echo "k=$3: exit $rc"; return; }
        grep -qE "$IOERR" "$ERR" || { echo "k=$3: no I/O message: $(head -c 200 "$ERR")"; return; }
        left=$(ls -A "$5")
        [ -z "$left" ] || echo "k=$3: left behind: $left"
    }
    for p in $PROGS; do
        d=$T/w/$p; mkdir -p "$d"
        eval "c=\$cmd_$p"
        if ! DLLM_FAIL_COUNT=$T/count LD_PRELOAD=$SO $c "$d/$(out_name "$p")" > /dev/null 2> "$ERR"; then
            notok "$p: clean run under the shim" "$(head -c 300 "$ERR")"; continue
        fi
        rm -rf "$d"; mkdir -p "$d"
        for op in write fsync rename close; do
            n=$(sed -n "s/^$op //p" "$T/count")
            ks=$(printf '%s\n' 1 2 $((n / 2)) $((n - 1)) "$n" | awk -v n="$n" '$1 >= 1 && $1 <= n && !s[$1]++' | tr '\n' ' ')
            bad=""; how=ENOSPC
            for k in $ks; do
                why=$(trial "$p" "$op" "$k" "$how" "$d")
                [ -n "$why" ] && bad="$bad$why; "
                rm -rf "$d"; mkdir -p "$d"
                if [ $how = ENOSPC ]; then how=EIO; else how=ENOSPC; fi
            done
            if [ -z "$ks" ]; then skip "$p: failing $op" "no $op calls in a clean run"
            elif [ -z "$bad" ]; then ok "$p: failing $op call k of $n (k = $ks): exit 3, message, nothing left"
            else notok "$p: failing $op call k of $n" "$bad"; fi
        done
    done

    # a failed save over an existing checkpoint leaves it as it was
    d=$T/w/replace; mkdir -p "$d"
    dllm-train -q --config "$T/in/t32.json" "$T/in/train.msgpack" --steps 1 --batch 4 --seed 2 -o "$T/in/prev"
    DLLM_FAIL_COUNT=$T/count LD_PRELOAD=$SO $cmd_train "$d/ck" 2> /dev/null
    rm -rf "$d"
    for op in write fsync rename close; do
        n=$(sed -n "s/^$op //p" "$T/count"); bad=""
        for k in $(printf '%s\n' 1 $((n / 2)) $((n - 1)) "$n" | awk -v n="$n" '$1 >= 1 && $1 <= n && !s[$1]++'); do
            mkdir -p "$d"; cp -r "$T/in/prev" "$d/ck"; rm -f "$T/hit"
            DLLM_FAIL=$op:$k:EIO DLLM_FAIL_LOG=$T/hit LD_PRELOAD=$SO $cmd_train "$d/ck" > /dev/null 2> "$ERR"; rc=$?
            if [ ! -s "$T/hit" ]; then bad="${bad}k=$k not reached; "
            elif [ $rc -ne 3 ]; then bad="${bad}k=$k: exit $rc; "
            elif ! cmp -s "$d/ck/model.safetensors" "$T/in/prev/model.safetensors" ||
                 ! cmp -s "$d/ck/trainer_state.json" "$T/in/prev/trainer_state.json"; then bad="${bad}k=$k: checkpoint changed; "
            elif [ "$(ls -A "$d")" != ck ]; then bad="${bad}k=$k: left $(ls -A "$d" | tr '\n' ' '); "; fi
            rm -rf "$d"
        done
        if [ -z "$bad" ]; then ok "train over a checkpoint: failing $op call k of $n: exit 3, previous checkpoint intact"
        else notok "train over a checkpoint: failing $op" "$bad"; fi
    done

    # the swap without RENAME_EXCHANGE (the 5th rename of the save refused
    # with EINVAL, as some filesystems do): old aside, new in, old removed;
    # then a failure at each later step restores the previous checkpoint
    mkdir -p "$d"; cp -r "$T/in/prev" "$d/ck"
    DLLM_FAIL=rename:5:EINVAL LD_PRELOAD=$SO $cmd_train "$d/ck" > /dev/null 2> "$ERR"; rc=$?
    if [ $rc -eq 0 ] && [ "$(ls -A "$d")" = ck ] && ! cmp -s "$d/ck/model.safetensors" "$T/in/prev/model.safetensors" &&
       dllm-train -q --resume "$d/ck" "$T/in/train.msgpack" --steps 2 -o "$d/ck" 2> "$ERR"; then
        ok "train over a checkpoint without RENAME_EXCHANGE: new checkpoint in place, resumable, nothing left"
    else notok "train over a checkpoint without RENAME_EXCHANGE" "exit $rc, left $(ls -A "$d" | tr '\n' ' '): $(head -c 200 "$ERR")"; fi
    rm -rf "$d"
    for f in rename:6:EIO rename:7:EIO fsync:10:EIO; do
        mkdir -p "$d"; cp -r "$T/in/prev" "$d/ck"
        DLLM_FAIL=rename:5:EINVAL,$f LD_PRELOAD=$SO $cmd_train "$d/ck" > /dev/null 2> "$ERR"; rc=$?
        if [ $rc -eq 3 ] && grep -q "Input/output error" "$ERR" && [ "$(ls -A "$d")" = ck ] &&
           cmp -s "$d/ck/model.safetensors" "$T/in/prev/model.safetensors"; then
            ok "... and with $f after it: exit 3, previous checkpoint restored, nothing left"
        else notok "... and with $f after it" "exit $rc, left $(ls -A "$d" | tr '\n' ' '): $(head -c 200 "$ERR")"; fi
        rm -rf "$d"
    done
fi

# ---------------------------------------------------------------- 2. a full disk
# full_disk_tests MOUNTPOINT: run inside a place where mount works
full_disk_tests() {
    M=$1
    fill() {  # fill FREE_KB: leave FREE_KB free on the tmpfs
        rm -f "$M/filler"; dd if=/dev/zero of="$M/filler" bs=4096 2> /dev/null
        [ "$1" -gt 0 ] && truncate -s "-$(( $1 * 1024 ))" "$M/filler"; sync
    }
    for free in 0 16; do
        fill $free
        progs=$PROGS; [ $free -gt 0 ] && progs="tok pack mask cat train"   # outputs > 16 KiB
        for p in $progs; do
            eval "c=\$cmd_$p"; mkdir -p "$M/$p"; o=$M/$p/$(out_name "$p")
            $c "$o" > /dev/null 2> "$ERR"; rc=$?
            left=$(ls -A "$M/$p")
            if [ $rc -eq 3 ] && grep -q "No space left on device" "$ERR" && [ -z "$left" ]; then
                ok "$p: full disk ($free KiB free): exit 3, 'No space left on device', nothing left"
            else notok "$p: full disk ($free KiB free)" "exit $rc, left '$left': $(head -c 200 "$ERR")"; fi
            rm -rf "$M/$p"
        done
    done
    # stdio side output: the --metrics log of dllm-train
    fill 0
    dllm-train -q --config "$T/in/t32.json" "$T/in/train.msgpack" --steps 1 --batch 4 -o "$T/w/mt" \
        --metrics "$M/metrics.jsonl" > /dev/null 2> "$ERR"; rc=$?
    if [ $rc -eq 3 ] && grep -q "metrics" "$ERR"; then ok "train --metrics on a full disk: exit 3, message"
    else notok "train --metrics on a full disk" "exit $rc: $(head -c 200 "$ERR")"; fi
    rm -rf "$T/w/mt" "$M/metrics.jsonl" "$M/filler"
}

M=$T/full; mkdir -p "$M"
if mount -t tmpfs -o size=1m dllm-full "$M" 2> "$T/mnt.err"; then
    full_disk_tests "$M"
    umount "$M"
else
    skip "full disk" "cannot mount tmpfs: $(head -c 200 "$T/mnt.err" | tr -s '\n ' '  ')(needs root or unshare -rm)"
fi
