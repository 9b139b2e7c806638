#!/bin/sh
# tests/cuda/emu/e2e.sh [BUILD] — `make test-cuda-emu`: tests/cuda/e2e.sh
# (train / resume / sample / score, CPU against CUDA, f32 and bf16) with
# the programs of BUILD/emu/bin, which run the CUDA backend emulated on
# the CPU (tests/cuda/emu/cu_emu.h), then tests/cuda/emu/dp.sh (2 GPU ranks
# over NCCL, both emulated: NCCL over MPI), then the emulated op tests once
# more with the lanes of every block run in reverse order.  Without them (no C++20 compiler) it
# says "skipped".  Prints the ok / not ok lines and "N passed, N failed,
# N skipped"; exit 1 on a failure.  The linear ops run twice more: through
# cublasGemmEx, and with cuBLASLt's heuristic finding nothing (gemm.cu's
# fallback).  And 1 against 3 training steps: the same number of device
# allocations.
cd "$(dirname "$0")/../../.." || exit 3
B=${1:-build}
if [ ! -x "$B/emu/bin/dllm-train" ]; then
    echo "skip - test-cuda-emu: $B/emu/bin has no programs (make test-cuda-emu builds them where g++ has C++20)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
O=$(mktemp -d "${TMPDIR:-/tmp}/dllm-cuda-emu.XXXXXX") || exit 3
trap 'rm -rf "$O"' EXIT
start=$(date +%s)
DLLM_E2E_BIN=$(cd "$B/emu/bin" && pwd) DLLM_E2E_DEVICE=cuda tests/cuda/e2e.sh "$O/e2e" > "$O/e2e.txt" 2>&1
tests/cuda/emu/dp.sh "$(cd "$B/emu/bin" && pwd)" >> "$O/e2e.txt" 2>&1
# No device allocation inside the step loop (issue 11: memory planned once
# per run): 1 and 3 steps make the same number of cudaMalloc calls, in f32
# and in bf16 with micro-batches and the chunked loss head
E=$(cd "$B/emu/bin" && pwd)
A="--init $O/e2e/s260 $O/e2e/train.msgpack --batch 4 --seed 3"
for cfg in "f32:" "bf16 --micro-batch 2 --xent-chunk 100:--precision bf16 --micro-batch 2 --xent-chunk 100"; do
    name=${cfg%%:*} opts=${cfg#*:} counts=
    for st in 1 3; do
        DLLM_CU_EMU_MALLOC_COUNT=1 "$E/dllm-train" -q --device cuda $A $opts --steps $st -o "$O/alloc$st" \
            2> "$O/alloc$st.err" || counts="$counts fail"
        counts="$counts $(sed -n 's/^cu_emu: \([0-9]*\) device allocations$/\1/p' "$O/alloc$st.err")"
        rm -rf "$O/alloc$st"
    done
    set -- $counts
    if [ $# -eq 2 ] && [ "$1" = "$2" ]; then
        echo "ok - $name: 1 and 3 training steps make the same $1 device allocations (none after the first step)" >> "$O/e2e.txt"
    else
        echo "not ok - $name: device allocations of 1 and 3 training steps:$counts" >> "$O/e2e.txt"
    fi
done
# again LABEL SETTING TEST [OP]: the emulated op test TEST (only OP's
# cases if given) once more with the environment SETTING
again() {
    [ -x "$B/tests/$3" ] || return 0
    f="$O/$3.$(echo "$2" | tr -c 'a-zA-Z0-9\n' _).txt"
    env "$2" DLLM_OPS_ONLY="$4" DLLM_BUILD=$B "$B/tests/$3" > "$f" 2>&1
    rc=$?
    n=$(grep -c '^ok - ' "$f"); bad=$(grep -c '^not ok - ' "$f")
    if [ $rc -eq 0 ] && [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]; then
        echo "ok - $3 $1: $n checks pass" >> "$O/e2e.txt"
    else
        echo "not ok - $3 $1: exit $rc, $bad failing ($(grep -m 3 '^not ok\|cu_emu' "$f" | tr '\n' ' '))" >> "$O/e2e.txt"
    fi
}
# make test runs the op tests in lane order, and every GEMM through cuBLASLt
again "with the lanes in reverse order" DLLM_CU_EMU_ORDER=reverse test_backend_ops_emu
for op in linear_fwd linear_bwd; do
    again "($op) through cublasGemmEx (DLLM_CUDA_GEMM=ex)" DLLM_CUDA_GEMM=ex test_backend_ops_emu $op
    again "($op) with no cuBLASLt algorithm (the GemmEx fallback)" DLLM_CU_EMU_LT_NONE=1 test_backend_ops_emu $op
done
cat "$O/e2e.txt"
p=$(grep -c '^ok - ' "$O/e2e.txt"); f=$(grep -c '^not ok - ' "$O/e2e.txt"); s=$(grep -c '^skip - ' "$O/e2e.txt")
[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && f=1 && echo "not ok - test-cuda-emu: no result"
echo "# the emulated CUDA backend end to end: $(($(date +%s) - start)) s"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
