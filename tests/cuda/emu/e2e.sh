#!/bin/sh
# tests/cuda/emu/e2e.sh [BUILD] — `make test-cuda-emu`: tests/cuda/e2e.sh
# (train / resume / sample / score, CPU against CUDA, f32 and bf16) with
# the programs of BUILD/emu/bin, which run the CUDA backend emulated on
# the CPU (tests/cuda/emu/cu_emu.h), then tests/cuda/emu/dp.sh (2 GPU ranks
# over NCCL, both emulated: NCCL over MPI).  Without them (no C++20 compiler) it
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
cat "$O/e2e.txt"
p=$(grep -c '^ok - ' "$O/e2e.txt"); f=$(grep -c '^not ok - ' "$O/e2e.txt"); s=$(grep -c '^skip - ' "$O/e2e.txt")
[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && f=1 && echo "not ok - test-cuda-emu: no result"
echo "# the emulated CUDA backend end to end: $(($(date +%s) - start)) s"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
