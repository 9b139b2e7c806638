#!/bin/sh
# tests/cli/train_dp.sh — data-parallel dllm-train over MPI on CPU:
# `mpirun -np 2` with global batch B against one process with batch B
# (losses and checkpoints within the tolerance below), ZeRO-1 against plain
# data parallel (bit for bit) while each rank holds about half the AdamW
# state, gradient buckets started during the backward (= one all-reduce,
# bit for bit), resume with another number of ranks, and the faults: a
# batch the ranks do not divide, an input missing on one rank, a rank that
# never joins (MPI init timeout), a rank that hangs (--comm-timeout), kill
# -9 of a rank mid-run (the job ends, the last checkpoint resumes).
# Skipped when mpirun is absent.
#
# Tolerance (one process vs two ranks).  The two runs add the same float32
# numbers in a different order: each rank's gradient is a sum over its own
# rows, and the all-reduce adds the two partial sums (one process adds all
# rows in one GEMM), so each gradient element differs by rounding only,
# ~1e-7 relative.  AdamW divides by sqrt(v), so such a relative change moves
# each update by about as much relative to lr, and the loss is a float64 sum
# of float32 terms.  Measured after 6 steps (lr 1e-2, dim 32): loss relative
# difference ~1e-8, weights max |diff| 1.1e-6 (NMSE 3e-14), AdamW moments
# max |diff| 1.1e-8.  Required: loss |a-b| <= 1e-6 |b|, weights |a-b| <= 2e-5,
# moments |a-b| <= 1e-6, and NMSE <= 1e-10 for both: 10x-100x above what
# reordering produced, far below what a wrong row split or a missing 1/P
# normaliser produces (those change the loss at step 1 by > 1e-2).
# ZeRO-1 vs plain data parallel: the same reduced gradients and an
# elementwise AdamW over each share: identical bits, tolerance 0.
. "$(dirname "$0")/lib.sh"
# Under make test-asan: OpenMPI's dlopen'd components leak at exit from
# modules already unloaded (their frames cannot be matched by an LSan
# suppression), so the MPI runs here check ASan/UBSan errors but not leaks;
# the same dllm code is leak-checked single-process by the other scripts.
[ -n "${DLLM_SAN_LOG:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"

if ! command -v mpirun > /dev/null 2>&1; then
    skip "data-parallel training" "mpirun is absent (scripts/deps.sh install mpi: openmpi-bin libopenmpi-dev)"
    exit 0
fi
if ! dllm-train --help 2>&1 | grep -q -- '--comm '; then
    skip "data-parallel training" "dllm-train has no --comm"; exit 0
fi
MPI="mpirun -np 2 --oversubscribe --allow-run-as-root"
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"; }
# close_losses A B: every step's loss within 1e-6 relative; prints the max
close_losses() {
    paste "$1" "$2" | awk '{ d = $2 - $4; if (d < 0) d = -d; r = d / ($4 < 0 ? -$4 : $4); if (r > m) m = r;
        if ($1 != $3 || r > 1e-6) bad = 1 } END { printf "%s max relative difference %.3g", bad || NR == 0 ? "no" : "ok", m }'
}
STC="python3 $ROOT/tests/cli/st_close.py"

# ---------------------------------------------------------------- data
awk 'BEGIN {
    print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
    for (k = 0; k < 400; k++) { s = "{\"ids\":["; n = 20 + (k * 13) % 50
        for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7) % 40)
        print s "]}" } }' > "$T/tok.jsonl"
dllm-cat --from-json "$T/tok.jsonl" -o "$T/tok.msgpack"
dllm-pack -q -L 32 --seed 1 "$T/tok.msgpack" -o "$T/rows.msgpack"
dllm-mask -q --seed 1 --copies 2 "$T/rows.msgpack" -o "$T/train.msgpack"
sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/t32.json"
A="--config $T/t32.json $T/train.msgpack --batch 4 --lr 1e-2 --warmup 2 --schedule constant --seed 3 --threads 1"

# ---------------------------------------------------------------- equal to one process
check "one process, batch 4, 6 steps" "dllm-train -q $A --steps 6 -o '$T/one' --metrics '$T/one.jsonl'"
check "mpirun -np 2, global batch 4 (2 rows per rank)" \
    "$MPI dllm-train -q $A --steps 6 -o '$T/two' --metrics '$T/two.jsonl'"
losses "$T/one.jsonl" > "$T/one.l"; losses "$T/two.jsonl" > "$T/two.l"
is "6 loss lines from rank 0 only" "$(wc -l < "$T/two.l" | tr -d ' ')" 6
got=$(close_losses "$T/one.l" "$T/two.l")
case $got in ok*) ok "2 ranks = 1 process, losses: $got";; *) notok "2 ranks = 1 process, losses" "$got";; esac
check "2 ranks = 1 process, weights (atol 2e-5, NMSE <= 1e-10)" \
    "$STC '$T/two/model.safetensors' '$T/one/model.safetensors' 2e-5 0 > '$T/w.txt' && cat '$T/w.txt' >&2 &&
     awk '{ exit !(\$6 <= 1e-10) }' '$T/w.txt'"
echo "# weights: $(cat "$T/w.txt")"
check "2 ranks = 1 process, AdamW moments (atol 1e-6)" \
    "$STC '$T/two/optimizer.safetensors' '$T/one/optimizer.safetensors' 1e-6 0"
is "trainer_state.json: the same data position and step" \
   "$(grep -E '"(step|data_epoch|data_record)"' "$T/two/trainer_state.json" | tr -d ' \n')" \
   "$(grep -E '"(step|data_epoch|data_record)"' "$T/one/trainer_state.json" | tr -d ' \n')"

check "--zero 1 on 2 ranks" "$MPI dllm-train -q $A --steps 6 --zero 1 -o '$T/z' --metrics '$T/z.jsonl'"
losses "$T/z.jsonl" > "$T/z.l"
same "$T/z.l" "$T/two.l" "ZeRO-1 = plain data parallel: identical losses"
same "$T/z/model.safetensors" "$T/two/model.safetensors" "ZeRO-1 = plain data parallel: identical weights"
same "$T/z/optimizer.safetensors" "$T/two/optimizer.safetensors" "ZeRO-1 = plain data parallel: identical AdamW state"

# ZeRO-1 holds 1/P of the AdamW state: each rank's start-up line (-v) says
# how many bytes of moments it allocated.  The shares are cut at 64-float
# boundaries, so the two shares add up to the whole and each is within
# 64 floats (x 2 moments x 4 bytes = 512 bytes) of half of it.
opt_bytes() { sed -n "s/^dllm-train$1: optimizer state: \([0-9]*\) bytes.*/\1/p" "$2"; }
check "plain data parallel, -v: the optimizer state per rank" \
    "$MPI dllm-train -v $A --steps 1 -o '$T/mp' 2> '$T/mp.err'"
check "--zero 1, -v: the optimizer state per rank" \
    "$MPI dllm-train -v $A --steps 1 --zero 1 -o '$T/mz' 2> '$T/mz.err'"
full=$(opt_bytes "" "$T/mp.err"); z0=$(opt_bytes "" "$T/mz.err"); z1=$(opt_bytes "\\[rank 1\\]" "$T/mz.err")
echo "# optimizer state bytes per rank: plain $full, ZeRO-1 rank 0 $z0, rank 1 $z1"
check "ZeRO-1: each rank holds about half the moments ($z0 + $z1 = $full)" \
    "[ -n '$full' ] && [ -n '$z0' ] && [ -n '$z1' ] && [ \$(( $z0 + $z1 )) -eq $full ] &&
     [ \$(( 2 * $z0 - $full )) -le 1024 ] && [ \$(( $full - 2 * $z1 )) -le 1024 ]"
check "ZeRO-1 checkpoint resumed with --zero 1 and plain checkpoint resumed plain, steps 7-8" \
    "$MPI dllm-train -q --resume '$T/z' '$T/train.msgpack' --threads 1 --zero 1 --steps 8 -o '$T/z8' &&
     $MPI dllm-train -q --resume '$T/two' '$T/train.msgpack' --threads 1 --steps 8 -o '$T/two8'"
same "$T/z8/optimizer.safetensors" "$T/two8/optimizer.safetensors" "... identical AdamW state (load whole, keep the share, gather)"
same "$T/z8/model.safetensors" "$T/two8/model.safetensors" "... identical weights"

# ---------------------------------------------------------------- gradient buckets
# --grad-bucket 4K: 1024 floats, less than one layer of this model, so each
# layer's matrices are a bucket started from the backward hook as soon as
# that layer is done (2 layers), then embedding and norms after it: 4
# all-reduces a step instead of one.  Each element still gets a + b: the
# same bits.  3 ranks: MPI may sum in another order for another count, so
# only the tolerance of the header is required there (measured: identical).
check "2 ranks, --grad-bucket 4K, micro-batches of 1 row" \
    "$MPI dllm-train -v $A --steps 6 --micro-batch 1 --grad-bucket 4K -o '$T/gb' 2> '$T/gb.err'"
check "2 ranks, --grad-bucket 0 (one all-reduce), micro-batches of 1 row" \
    "$MPI dllm-train -q $A --steps 6 --micro-batch 1 --grad-bucket 0 -o '$T/g0'"
echo "# $(grep -h 'gradient buckets:' "$T/gb.err" | tr '\n' ' ')"
check "... buckets were started inside the backward on rank 0" \
    "grep -Eq '^dllm-train: gradient buckets: 24 started, [1-9][0-9]* of them during the backward' '$T/gb.err'"
same "$T/gb/model.safetensors" "$T/g0/model.safetensors" "bucketed = one all-reduce: identical weights"
same "$T/gb/optimizer.safetensors" "$T/g0/optimizer.safetensors" "bucketed = one all-reduce: identical AdamW state"
check "--zero 1 with buckets = plain data parallel: identical AdamW state" \
    "$MPI dllm-train -q $A --steps 6 --zero 1 --grad-bucket 4K -o '$T/gz' && cmp '$T/gz/optimizer.safetensors' '$T/two/optimizer.safetensors'"
M3="mpirun -np 3 --oversubscribe --allow-run-as-root"
A6=$(echo "$A" | sed 's/--batch 4/--batch 6/')
check "3 ranks, batch 6: bucketed, one all-reduce, and one process" \
    "$M3 dllm-train -q $A6 --steps 4 --grad-bucket 4K -o '$T/h3' --metrics '$T/h3.jsonl' &&
     $M3 dllm-train -q $A6 --steps 4 --grad-bucket 0 -o '$T/h0' && dllm-train -q $A6 --steps 4 -o '$T/h1' --metrics '$T/h1.jsonl'"
check "... 3 ranks bucketed = one all-reduce (atol 2e-5)" "$STC '$T/h3/model.safetensors' '$T/h0/model.safetensors' 2e-5 0"
losses "$T/h3.jsonl" > "$T/h3.l"; losses "$T/h1.jsonl" > "$T/h1.l"
got=$(close_losses "$T/h3.l" "$T/h1.l")
case $got in ok*) ok "... 3 ranks bucketed = 1 process, losses: $got";; *) notok "3 ranks bucketed = 1 process" "$got";; esac

# ---------------------------------------------------------------- resume with another rank count
check "2 ranks, steps 1-3" "$MPI dllm-train -q $A --steps 3 -o '$T/r2'"
check "--resume on 1 process, steps 4-6" \
    "dllm-train -q --resume '$T/r2' '$T/train.msgpack' --threads 1 --steps 6 -o '$T/r1' --metrics '$T/r1.jsonl'"
losses "$T/r1.jsonl" > "$T/r1.l"
got=$(sed -n '4,6p' "$T/one.l" > "$T/one46.l"; close_losses "$T/r1.l" "$T/one46.l")
case $got in ok*) ok "resume 2 ranks -> 1 process continues like one process: $got";; *) notok "resume 2 -> 1" "$got";; esac
check "--resume on 2 ranks with --zero 1 from a 1-process checkpoint" \
    "dllm-train -q $A --steps 3 -o '$T/s1' && $MPI dllm-train -q --resume '$T/s1' '$T/train.msgpack' --threads 1 \
     --zero 1 --steps 6 -o '$T/s2' --metrics '$T/s2.jsonl'"
losses "$T/s2.jsonl" > "$T/s2.l"
got=$(close_losses "$T/s2.l" "$T/one46.l")
case $got in ok*) ok "resume 1 process -> 2 ranks ZeRO-1 continues: $got";; *) notok "resume 1 -> 2" "$got";; esac

# ---------------------------------------------------------------- faults
expect_exit 2 "a batch the ranks do not divide: usage error" "$MPI dllm-train -q $A --batch 3 --steps 2 -o '$T/b3'"
expect_err "batch 3 is not a multiple of the 2 ranks" "... the message says so"
no_file "$T/b3" "... and nothing is written"
expect_exit 2 "2 ranks on stdin: usage error" "$MPI dllm-train -q --config '$T/t32.json' --steps 2 -o '$T/si' < '$T/train.msgpack'"
expect_exit 3 "an input missing on rank 1 only ends both ranks (exit 3)" \
    "$MPI -np 1 dllm-train -q $A --steps 2 -o '$T/mi' : -np 1 dllm-train -q --config '$T/t32.json' '$T/gone.msgpack' \
     --batch 4 --seed 3 --threads 1 --steps 2 -o '$T/mi'"
expect_err "rank 1\\]: error: .*gone.msgpack: No such file" "... rank 1 names the file"
expect_err "rank 1 of 2 failed" "... rank 0 names rank 1"

# A rank that never joins: rank 1 of the job is `sleep`, not dllm-train, so
# rank 0's MPI_Init waits for it forever; dl_comm gives MPI_Init at most
# --comm-timeout (it runs on a helper thread) and rank 0 ends with exit 4,
# after which mpirun ends the job.  `timeout 60` turns a hang into a failure.
t0=$(date +%s)
expect_exit 4 "a rank that never joins: MPI init times out, exit 4 (--comm-timeout 3)" \
    "timeout 60 $MPI -np 1 dllm-train -q $A --steps 2 --comm-timeout 3 -o '$T/nj' : -np 1 sleep 45"
dt=$(( $(date +%s) - t0 ))
expect_err "MPI init did not complete in 3 s" "... the message names the init and the timeout"
check "... within 30 s ($dt s)" "[ $dt -le 30 ]"
no_file "$T/nj" "... and nothing is written"

# rank_pid MPIRUN_PID RANK: the pid of that rank (its OMPI_COMM_WORLD_RANK)
rank_pid() {
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
    done
}
# wait_job PID: wait for it, at most 60 s (then kill -9); its exit status
wait_job() {
    n=0
    while kill -0 "$1" 2> /dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
    kill -9 "$1" 2> /dev/null
    wait "$1"
}
# wait_ckpt DIR: until DIR/trainer_state.json exists (at most ~20 s)
wait_ckpt() { for i in $(seq 100); do [ -f "$1/trainer_state.json" ] && return 0; sleep 0.2; done; return 1; }

$MPI dllm-train -q $A --steps 1000000 --save-every 10 --comm-timeout 3 -o "$T/hang" 2> "$T/hang.err" & mp=$!
if wait_ckpt "$T/hang" && p=$(rank_pid $mp 1) && [ -n "$p" ]; then
    kill -STOP "$p"; t0=$(date +%s)
    wait_job $mp; rc=$?
    is "a rank that hangs: the job ends with exit 4 (--comm-timeout 3)" "$rc" 4
    check "... within 30 s" "[ $(( $(date +%s) - t0 )) -le 30 ]"
    grep -q "all-reduce did not complete in 3 s" "$T/hang.err" && ok "... the message names the timeout" ||
        notok "... the message names the timeout" "$(head -c 300 "$T/hang.err")"
else
    notok "a rank that hangs" "no checkpoint or no rank 1 ($(head -c 300 "$T/hang.err"))"; kill -9 $mp 2> /dev/null
fi

$MPI dllm-train -q $A --steps 1000000 --save-every 10 -o "$T/kill" 2> "$T/kill.err" & mp=$!
if wait_ckpt "$T/kill" && sleep 0.3 && p=$(rank_pid $mp 1) && [ -n "$p" ]; then
    kill -9 "$p"; t0=$(date +%s)
    wait_job $mp; rc=$?
    check "kill -9 of rank 1 mid-run: the job ends (exit $rc), within 30 s" "[ $rc -ne 0 ] && [ $(( $(date +%s) - t0 )) -le 30 ]"
    grep -q "rank 1 .*signal 9" "$T/kill.err" && ok "... mpirun says rank 1 was killed" ||
        notok "... mpirun says rank 1 was killed" "$(head -c 300 "$T/kill.err")"
    s=$(sed -n 's/^ *"step": *\([0-9]*\),.*/\1/p' "$T/kill/trainer_state.json")
    check "... the last checkpoint (step $s) resumes on 2 ranks" \
        "$MPI dllm-train -q --resume '$T/kill' '$T/train.msgpack' --threads 1 --steps $((s + 2)) -o '$T/kill2'"
else
    notok "kill -9 of a rank" "no checkpoint or no rank 1 ($(head -c 300 "$T/kill.err"))"; kill -9 $mp 2> /dev/null
fi
