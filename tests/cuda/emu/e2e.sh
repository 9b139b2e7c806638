#!/bin/sh
# tests/cuda/emu/e2e.sh [BUILD] — `make test-cuda-emu`: tests/cuda/e2e.sh
# (train / resume / sample / score, CPU against CUDA, f32 and bf16) with
# the programs of BUILD/emu/bin, which run the CUDA backend emulated on
# the CPU (tests/cuda/emu/cu_emu.h), then tests/cuda/emu/dp.sh (2 GPU ranks
# over NCCL, both emulated: NCCL over MPI), then the emulated op tests once
# more with the lanes of every block run in reverse order.  Without them (no C++20 compiler) it
# says "skipped".  Prints the ok / not ok lines and "N passed, N failed,
# N skipped"; exit 1 on a failure.
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
# the op tests again with the lanes in reverse order (make test runs them in lane order)
for t in test_backend_ops_emu test_attn_mma_emu; do
    [ -x "$B/tests/$t" ] || continue
    DLLM_CU_EMU_ORDER=reverse DLLM_BUILD=$B "$B/tests/$t" > "$O/$t.txt" 2>&1
    rc=$?
    n=$(grep -c '^ok - ' "$O/$t.txt"); bad=$(grep -c '^not ok - ' "$O/$t.txt")
    if [ $rc -eq 0 ] && [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]; then
        echo "ok - $t with the lanes in reverse order: $n checks pass" >> "$O/e2e.txt"
    else
        echo "not ok - $t with the lanes in reverse order: exit $rc, $bad failing ($(grep -m 3 '^not ok\|cu_emu' "$O/$t.txt" | tr '\n' ' '))" >> "$O/e2e.txt"
    fi
done
cat "$O/e2e.txt"
p=$(grep -c '^ok - ' "$O/e2e.txt"); f=$(grep -c '^not ok - ' "$O/e2e.txt"); s=$(grep -c '^skip - ' "$O/e2e.txt")
[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && f=1 && echo "not ok - test-cuda-emu: no result"
echo "# the emulated CUDA backend end to end: $(($(date +%s) - start)) s"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
