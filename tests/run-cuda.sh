#!/bin/sh
# tests/run-cuda.sh — `make test-cuda`: the GPU tests.  They need a visible
# GPU; without one every test is skipped with the reason.  Last line:
# "N passed, N failed, N skipped" like tests/run.sh.
cd "$(dirname "$0")/.." || exit 3
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "skip - cuda: no GPU visible (nvidia-smi lists none)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
n=0
for t in build/tests/cuda_test_*; do [ -x "$t" ] && n=$((n + 1)); done
if [ "$n" -eq 0 ]; then
    echo "skip - cuda: a GPU is visible but no CUDA backend is built yet (issue 5/6)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
pass=0; fail=0
for t in build/tests/cuda_test_*; do
    out=$("$t" 2>&1); rc=$?
    echo "$out" | grep -v '^ok - '
    p=$(echo "$out" | grep -c '^ok - '); f=$(echo "$out" | grep -c '^not ok - ')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
