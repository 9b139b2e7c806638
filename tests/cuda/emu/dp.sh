#!/bin/sh
# tests/cuda/emu/dp.sh BIN — data-parallel training over NCCL with GPU
# ranks, as far as a machine without a GPU can run it: BIN/dllm-train is
# linked with the emulated CUDA backend and with tests/cuda/emu/nccl_emu.c
# (NCCL over MPI, buffers in host memory), so share/model/dl_comm_nccl.c
# itself runs: rank / id exchange over MPI, init, the all-reduces of the
# step, ZeRO-1's broadcasts, the gradient buckets.  Checks, after 6 steps
# of the dim-32 model (the tolerances of tests/cli/train_dp.sh, which
# explains them): `mpirun -np 2 --comm nccl` with global batch 8 against
# one process with batch 8 (losses rel 1e-6, weights atol 2e-5, AdamW
# moments 1e-6); --zero 1 against plain data parallel (identical AdamW
# state); --grad-bucket 0 (one all-reduce) against 4K buckets (identical).
# The emulated collectives complete asynchronously (dl_comm_nccl.c polls
# them), so a rank that stalls inside one runs our timeout path for real:
# DLLM_NCCL_EMU_STALL makes rank 1 stop posting collectives in step 4 of
# 6 (its collective count taken from a 3-step run); both ranks must end
# with exit 4 and a message naming the step and the all-reduce within the
# timeout, rank 0 having saved step 2, and --resume from it must give the
# uninterrupted run's weights bit for bit.
# Skipped without mpirun or without an MPI build.  Not shown here: real
# NCCL, real GPUs, NCCL's async errors (tests/run-cuda.sh).
EB=$1
DLLM_ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
. "$DLLM_ROOT/tests/cli/lib.sh"   # ok / check / is, T, the data tools on PATH; dllm-train is $EB's
if ! command -v mpirun > /dev/null 2>&1; then skip "NCCL data parallel (emulated)" "mpirun is absent"; exit 0; fi
if ! nm "$EB/dllm-train" 2>/dev/null | grep -q ncclCommInitRankConfig; then
    skip "NCCL data parallel (emulated)" "$EB/dllm-train has no emulated NCCL (a build without MPI)"; exit 0
fi
MPI="mpirun -np 2 --oversubscribe --allow-run-as-root"
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
STC="python3 $ROOT/tests/cli/st_close.py"
E=$EB/dllm-train
tiny_train_data 400
tiny32_config "$T/c.json"
A="--device cuda --config $T/c.json $T/train.msgpack --steps 6 --batch 8 --lr 1e-2 --seed 3"
check "cuda (emulated), 1 process, batch 8" "$E -q $A -o '$T/one' --metrics '$T/one.jsonl'"
check "cuda (emulated), 2 ranks over NCCL (emulated), global batch 8" \
    "$MPI $E -q --comm nccl $A -o '$T/two' --metrics '$T/two.jsonl'"
is "  6 losses on both" "$(grep -c '"loss"' "$T/one.jsonl" 2>/dev/null) $(grep -c '"loss"' "$T/two.jsonl" 2>/dev/null)" "6 6"
check "  losses within rel 1e-6 (6 pairs)" "paste '$T/one.jsonl' '$T/two.jsonl' | sed 's/\"loss\":/ /g' | awk '{ n++; a = \$2 + 0; b = \$4 + 0; d = a - b; if (d < 0) d = -d; if (b == 0 || d > 1e-6 * (b < 0 ? -b : b)) bad = 1 } END { exit bad || n != 6 }'"
check "  weights within 2e-5" "$STC '$T/two/model.safetensors' '$T/one/model.safetensors' 2e-5 0"
check "  AdamW moments within 1e-6" "$STC '$T/two/optimizer.safetensors' '$T/one/optimizer.safetensors' 1e-6 0"
check "--zero 1 over NCCL = plain data parallel (identical AdamW state)" \
    "$MPI $E -q --comm nccl $A --zero 1 -o '$T/z' && cmp '$T/z/optimizer.safetensors' '$T/two/optimizer.safetensors'"
check "--grad-bucket 4K = --grad-bucket 0 over NCCL (identical weights)" \
    "$MPI $E -q --comm nccl $A --micro-batch 1 --grad-bucket 4K -o '$T/gb' &&
     $MPI $E -q --comm nccl $A --micro-batch 1 --grad-bucket 0 -o '$T/g0' &&
     cmp '$T/gb/model.safetensors' '$T/g0/model.safetensors'"

# a rank stuck inside a collective: the others time out, nobody hangs
n3=$(DLLM_NCCL_EMU_COUNT=1 $MPI $E -q --comm nccl $A --steps 3 -o "$T/c3" 2>&1 |
     sed -n 's/^nccl_emu: rank 1: \([0-9]*\) collectives$/\1/p')
if [ -z "$n3" ]; then notok "collective count of a 3-step run" "no nccl_emu count line"
else
    t0=$(date +%s)
    DLLM_NCCL_EMU_STALL=1:$((n3 + 2)) timeout 120 $MPI $E -q --comm nccl $A --steps 6 --save-every 2 --comm-timeout 3 \
        -o "$T/st" > "$T/st.out" 2>&1
    rc=$? dt=$(($(date +%s) - t0))
    is "rank 1 stalls in a collective of step 4: mpirun ends with exit 4 (not a hang: $dt s)" "$rc" 4
    is "  both ranks say which step and collective timed out" \
        "$(grep -c 'error: step 4: NCCL all-reduce did not complete in 3 s' "$T/st.out")" 2
    check "  the step-2 checkpoint is there" "grep -q '\"step\": *2' '$T/st/trainer_state.json'"
    check "  --resume from it: the uninterrupted 6-step run's weights, bit for bit" \
        "$MPI $E -q --comm nccl --device cuda --resume '$T/st' '$T/train.msgpack' --steps 6 -o '$T/st2' &&
         $MPI $E -q --comm nccl $A --steps 6 -o '$T/u6' && cmp '$T/st2/model.safetensors' '$T/u6/model.safetensors'"
fi
